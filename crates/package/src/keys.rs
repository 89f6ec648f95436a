//! Developer keys: ed25519 signing keys and the public keys (publisher identities) installs are
//! pinned to. Text forms are one line: `cirrus-ed25519-secret:<base64 seed>` and
//! `cirrus-ed25519-public:<base64 key>`.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{SigningKey, VerifyingKey};
use rand::RngCore;
use sha2::{Digest, Sha256};

const SECRET_PREFIX: &str = "cirrus-ed25519-secret:";
const PUBLIC_PREFIX: &str = "cirrus-ed25519-public:";

/// Why a key could not be read.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "not a Cirrus {0} key: expected one line starting with `{1}` (make one with `cirrus keys generate`)"
    )]
    WrongFormat(&'static str, &'static str),
    #[error("the key's base64 is damaged: {0}")]
    Base64(#[from] base64::DecodeError),
    #[error("the key has {0} bytes; an ed25519 key has 32")]
    Length(usize),
    #[error("the bytes are not a valid ed25519 public key")]
    NotAPoint,
}

/// A developer's signing key (keep it secret).
pub struct DeveloperKey(SigningKey);

impl DeveloperKey {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> DeveloperKey {
        let mut seed = [0u8; 32];
        rand::rng().fill_bytes(&mut seed);
        DeveloperKey(SigningKey::from_bytes(&seed))
    }

    pub fn from_seed(seed: [u8; 32]) -> DeveloperKey {
        DeveloperKey(SigningKey::from_bytes(&seed))
    }

    pub fn parse(text: &str) -> Result<DeveloperKey, KeyError> {
        let b64 = text
            .trim()
            .strip_prefix(SECRET_PREFIX)
            .ok_or(KeyError::WrongFormat("secret", SECRET_PREFIX))?;
        let bytes = BASE64.decode(b64)?;
        let seed: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::Length(bytes.len()))?;
        Ok(DeveloperKey::from_seed(seed))
    }

    pub fn to_text(&self) -> String {
        format!("{SECRET_PREFIX}{}\n", BASE64.encode(self.0.to_bytes()))
    }

    pub fn public(&self) -> PublisherKey {
        PublisherKey(self.0.verifying_key())
    }

    pub(crate) fn signing_key(&self) -> &SigningKey {
        &self.0
    }
}

impl fmt::Debug for DeveloperKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeveloperKey({})", self.public().fingerprint())
    }
}

/// A publisher's public key: what a package's signature is checked against and what an installed
/// app's updates must be signed by.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublisherKey(pub(crate) VerifyingKey);

impl PublisherKey {
    pub fn from_bytes(bytes: &[u8]) -> Result<PublisherKey, KeyError> {
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| KeyError::Length(bytes.len()))?;
        VerifyingKey::from_bytes(&arr)
            .map(PublisherKey)
            .map_err(|_| KeyError::NotAPoint)
    }

    /// Parses either the `cirrus-ed25519-public:` line or bare base64.
    pub fn parse(text: &str) -> Result<PublisherKey, KeyError> {
        let t = text.trim();
        let b64 = t.strip_prefix(PUBLIC_PREFIX).unwrap_or(t);
        PublisherKey::from_bytes(&BASE64.decode(b64)?)
    }

    pub fn to_base64(&self) -> String {
        BASE64.encode(self.0.as_bytes())
    }

    pub fn to_text(&self) -> String {
        format!("{PUBLIC_PREFIX}{}\n", self.to_base64())
    }

    /// Short, stable name for humans: the first 8 bytes of SHA-256(key) as `ab12:cd34:…`.
    pub fn fingerprint(&self) -> String {
        let digest = Sha256::digest(self.0.as_bytes());
        digest[..8]
            .chunks(2)
            .map(hex::encode)
            .collect::<Vec<_>>()
            .join(":")
    }
}

impl fmt::Debug for PublisherKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublisherKey({})", self.fingerprint())
    }
}

impl fmt::Display for PublisherKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.fingerprint())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_text() {
        let key = DeveloperKey::generate();
        let again = DeveloperKey::parse(&key.to_text()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(key.public(), again.public());
        let public = PublisherKey::parse(&key.public().to_text()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(public, key.public());
        assert_ne!(DeveloperKey::generate().public(), key.public());
        assert_eq!(key.public().fingerprint().len(), 19);
    }

    #[test]
    fn bad_keys_are_refused() {
        assert!(matches!(
            DeveloperKey::parse("hello"),
            Err(KeyError::WrongFormat(..))
        ));
        assert!(matches!(
            DeveloperKey::parse("cirrus-ed25519-secret:AAAA"),
            Err(KeyError::Length(3))
        ));
        assert!(matches!(
            DeveloperKey::parse("cirrus-ed25519-secret:!!"),
            Err(KeyError::Base64(_))
        ));
    }
}
