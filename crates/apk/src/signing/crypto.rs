//! Signature primitives over a SubjectPublicKeyInfo: RSA PKCS#1 v1.5 and PSS, ECDSA on P-256 and
//! P-384, with SHA-1 (JAR signatures only), SHA-256 and SHA-512.

use rsa::pkcs8::DecodePublicKey;
use rsa::{Pkcs1v15Sign, Pss, RsaPublicKey};
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};

use crate::der::{self, KeyAlgorithm};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlgorithm {
    Sha1,
    Sha256,
    Sha512,
}

impl HashAlgorithm {
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            HashAlgorithm::Sha1 => Sha1::digest(data).to_vec(),
            HashAlgorithm::Sha256 => Sha256::digest(data).to_vec(),
            HashAlgorithm::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            HashAlgorithm::Sha1 => "SHA-1",
            HashAlgorithm::Sha256 => "SHA-256",
            HashAlgorithm::Sha512 => "SHA-512",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureKind {
    RsaPkcs1,
    RsaPss,
    Ecdsa,
}

/// Verifies `signature` over `message` with the key in `spki` (DER SubjectPublicKeyInfo).
pub fn verify(
    spki: &[u8],
    kind: SignatureKind,
    hash: HashAlgorithm,
    message: &[u8],
    signature: &[u8],
) -> Result<(), String> {
    let hashed = hash.digest(message);
    let (alg, bits) = der::key_info(spki).map_err(|e| format!("bad public key: {e}"))?;
    match kind {
        SignatureKind::RsaPkcs1 | SignatureKind::RsaPss => {
            if alg != KeyAlgorithm::Rsa {
                return Err(format!("an RSA signature with a {} key", alg.name()));
            }
            let key = RsaPublicKey::from_public_key_der(spki)
                .map_err(|e| format!("bad RSA public key: {e}"))?;
            let result = match (kind, hash) {
                (SignatureKind::RsaPkcs1, HashAlgorithm::Sha1) => {
                    key.verify(Pkcs1v15Sign::new::<Sha1>(), &hashed, signature)
                }
                (SignatureKind::RsaPkcs1, HashAlgorithm::Sha256) => {
                    key.verify(Pkcs1v15Sign::new::<Sha256>(), &hashed, signature)
                }
                (SignatureKind::RsaPkcs1, HashAlgorithm::Sha512) => {
                    key.verify(Pkcs1v15Sign::new::<Sha512>(), &hashed, signature)
                }
                (_, HashAlgorithm::Sha1) => key.verify(Pss::new::<Sha1>(), &hashed, signature),
                (_, HashAlgorithm::Sha256) => key.verify(Pss::new::<Sha256>(), &hashed, signature),
                (_, HashAlgorithm::Sha512) => key.verify(Pss::new::<Sha512>(), &hashed, signature),
            };
            result.map_err(|_| "RSA signature does not verify".to_owned())
        }
        SignatureKind::Ecdsa => {
            use p256::ecdsa::signature::hazmat::PrehashVerifier;
            if alg != KeyAlgorithm::Ec {
                return Err(format!("an ECDSA signature with a {} key", alg.name()));
            }
            match bits {
                256 => {
                    let key = p256::ecdsa::VerifyingKey::from_public_key_der(spki)
                        .map_err(|e| format!("bad P-256 key: {e}"))?;
                    let sig = p256::ecdsa::Signature::from_der(signature)
                        .map_err(|_| "malformed ECDSA signature".to_owned())?;
                    key.verify_prehash(&hashed, &sig)
                        .map_err(|_| "ECDSA signature does not verify".to_owned())
                }
                384 => {
                    let key = p384::ecdsa::VerifyingKey::from_public_key_der(spki)
                        .map_err(|e| format!("bad P-384 key: {e}"))?;
                    let sig = p384::ecdsa::Signature::from_der(signature)
                        .map_err(|_| "malformed ECDSA signature".to_owned())?;
                    key.verify_prehash(&hashed, &sig)
                        .map_err(|_| "ECDSA signature does not verify".to_owned())
                }
                _ => Err("unsupported elliptic curve (only P-256 and P-384)".to_owned()),
            }
        }
    }
}

/// An APK Signature Scheme v2/v3 signature algorithm id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchemeAlgorithm {
    pub id: u32,
    pub kind: SignatureKind,
    pub hash: HashAlgorithm,
    pub name: &'static str,
}

/// The algorithms Cirrus verifies; DSA (0x0301) and the verity ones (0x04xx) are known but not
/// supported, like apksigner ignores algorithms it does not know when others are present.
pub fn scheme_algorithm(id: u32) -> Option<SchemeAlgorithm> {
    let (kind, hash, name) = match id {
        0x0101 => (
            SignatureKind::RsaPss,
            HashAlgorithm::Sha256,
            "RSASSA-PSS with SHA2-256",
        ),
        0x0102 => (
            SignatureKind::RsaPss,
            HashAlgorithm::Sha512,
            "RSASSA-PSS with SHA2-512",
        ),
        0x0103 => (
            SignatureKind::RsaPkcs1,
            HashAlgorithm::Sha256,
            "RSASSA-PKCS1-v1_5 with SHA2-256",
        ),
        0x0104 => (
            SignatureKind::RsaPkcs1,
            HashAlgorithm::Sha512,
            "RSASSA-PKCS1-v1_5 with SHA2-512",
        ),
        0x0201 => (
            SignatureKind::Ecdsa,
            HashAlgorithm::Sha256,
            "ECDSA with SHA2-256",
        ),
        0x0202 => (
            SignatureKind::Ecdsa,
            HashAlgorithm::Sha512,
            "ECDSA with SHA2-512",
        ),
        _ => return None,
    };
    Some(SchemeAlgorithm {
        id,
        kind,
        hash,
        name,
    })
}
