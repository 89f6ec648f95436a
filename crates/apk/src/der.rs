//! A small strict DER reader and the X.509 certificate facts APK signing needs (subject and issuer
//! names as Java prints them, serial number, public key, key algorithm and size, digests).
//!
//! Only what certificates and PKCS#7 SignedData use: single-byte tags, definite lengths.

use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DerError {
    #[error("DER data is truncated or malformed: {0}")]
    Malformed(&'static str),
    #[error("unexpected DER tag {found:#04x} where {expected} was expected")]
    UnexpectedTag { found: u8, expected: &'static str },
}

/// One tag-length-value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    pub tag: u8,
    pub content: &'a [u8],
    /// The whole encoding (tag and length included).
    pub raw: &'a [u8],
}

pub mod tag {
    pub const INTEGER: u8 = 0x02;
    pub const BIT_STRING: u8 = 0x03;
    pub const OCTET_STRING: u8 = 0x04;
    pub const NULL: u8 = 0x05;
    pub const OID: u8 = 0x06;
    pub const SEQUENCE: u8 = 0x30;
    pub const SET: u8 = 0x31;
    pub const CONTEXT_0: u8 = 0xa0;
    pub const CONTEXT_1: u8 = 0xa1;
    pub const IMPLICIT_0: u8 = 0x80;
}

/// Reads consecutive TLVs from a buffer.
#[derive(Debug, Clone)]
pub struct DerReader<'a> {
    data: &'a [u8],
}

impl<'a> DerReader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        DerReader { data }
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn peek_tag(&self) -> Option<u8> {
        self.data.first().copied()
    }

    pub fn any(&mut self) -> Result<Tlv<'a>, DerError> {
        let d = self.data;
        let tag = *d.first().ok_or(DerError::Malformed("missing tag"))?;
        if tag & 0x1f == 0x1f {
            return Err(DerError::Malformed("multi-byte tags are not supported"));
        }
        let first = *d.get(1).ok_or(DerError::Malformed("missing length"))?;
        let (len, header) = if first < 0x80 {
            (first as usize, 2)
        } else {
            let n = (first & 0x7f) as usize;
            if n == 0 {
                return Err(DerError::Malformed("indefinite length (BER) is not DER"));
            }
            if n > 4 {
                return Err(DerError::Malformed("length too long"));
            }
            let bytes = d
                .get(2..2 + n)
                .ok_or(DerError::Malformed("truncated length"))?;
            (
                bytes.iter().fold(0usize, |acc, &b| (acc << 8) | b as usize),
                2 + n,
            )
        };
        let end = header
            .checked_add(len)
            .ok_or(DerError::Malformed("length overflows"))?;
        let content = d
            .get(header..end)
            .ok_or(DerError::Malformed("content runs past the end"))?;
        let raw = &d[..end];
        self.data = &d[end..];
        Ok(Tlv { tag, content, raw })
    }

    pub fn expect(&mut self, tag: u8, expected: &'static str) -> Result<Tlv<'a>, DerError> {
        let tlv = self.any()?;
        if tlv.tag != tag {
            return Err(DerError::UnexpectedTag {
                found: tlv.tag,
                expected,
            });
        }
        Ok(tlv)
    }

    /// Reads the next TLV only if it has `tag`.
    pub fn optional(&mut self, tag: u8) -> Result<Option<Tlv<'a>>, DerError> {
        if self.peek_tag() == Some(tag) {
            self.any().map(Some)
        } else {
            Ok(None)
        }
    }
}

/// Parses exactly one TLV spanning all of `data`.
pub fn single<'a>(data: &'a [u8], tag: u8, expected: &'static str) -> Result<Tlv<'a>, DerError> {
    let mut r = DerReader::new(data);
    let tlv = r.expect(tag, expected)?;
    if !r.is_empty() {
        return Err(DerError::Malformed("trailing bytes after the value"));
    }
    Ok(tlv)
}

/// Object identifiers (content bytes) Cirrus recognises.
pub mod oid {
    pub const RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
    pub const SHA1_WITH_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05];
    pub const SHA256_WITH_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b];
    pub const SHA512_WITH_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d];
    pub const EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    pub const DSA: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x38, 0x04, 0x01];
    pub const P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    pub const P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
    pub const ECDSA_SHA1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x01];
    pub const ECDSA_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
    pub const ECDSA_SHA512: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04];
    pub const SHA1: &[u8] = &[0x2b, 0x0e, 0x03, 0x02, 0x1a];
    pub const SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
    pub const SHA512: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03];
    pub const SIGNED_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02];
    pub const DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01];
    pub const CONTENT_TYPE: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x03];
    pub const MESSAGE_DIGEST: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x04];
}

/// The public key algorithm of a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlgorithm {
    Rsa,
    /// ECDSA over P-256 or P-384.
    Ec,
    Dsa,
    Other,
}

impl KeyAlgorithm {
    pub fn name(self) -> &'static str {
        match self {
            KeyAlgorithm::Rsa => "RSA",
            KeyAlgorithm::Ec => "EC",
            KeyAlgorithm::Dsa => "DSA",
            KeyAlgorithm::Other => "unknown",
        }
    }
}

/// What apksigner prints about a certificate, and what the verifier needs from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    pub der: Vec<u8>,
    pub subject: String,
    pub issuer: String,
    /// Raw issuer Name and serial INTEGER content, to match PKCS#7 signer identifiers.
    pub issuer_der: Vec<u8>,
    pub serial: Vec<u8>,
    /// SubjectPublicKeyInfo, DER.
    pub public_key_der: Vec<u8>,
    pub key_algorithm: KeyAlgorithm,
    pub key_bits: u32,
}

impl Certificate {
    pub fn parse(der: &[u8]) -> Result<Self, DerError> {
        let cert = single(der, tag::SEQUENCE, "Certificate")?;
        let mut c = DerReader::new(cert.content);
        let tbs = c.expect(tag::SEQUENCE, "TBSCertificate")?;
        let mut t = DerReader::new(tbs.content);
        t.optional(tag::CONTEXT_0)?;
        let serial = t.expect(tag::INTEGER, "serialNumber")?;
        t.expect(tag::SEQUENCE, "signature AlgorithmIdentifier")?;
        let issuer = t.expect(tag::SEQUENCE, "issuer Name")?;
        t.expect(tag::SEQUENCE, "validity")?;
        let subject = t.expect(tag::SEQUENCE, "subject Name")?;
        let spki = t.expect(tag::SEQUENCE, "SubjectPublicKeyInfo")?;
        let (key_algorithm, key_bits) = key_info(spki.raw)?;
        Ok(Certificate {
            der: der.to_vec(),
            subject: format_name(subject.content)?,
            issuer: format_name(issuer.content)?,
            issuer_der: issuer.raw.to_vec(),
            serial: serial.content.to_vec(),
            public_key_der: spki.raw.to_vec(),
            key_algorithm,
            key_bits,
        })
    }

    pub fn sha256(&self) -> [u8; 32] {
        Sha256::digest(&self.der).into()
    }
    pub fn sha1(&self) -> [u8; 20] {
        Sha1::digest(&self.der).into()
    }
    pub fn md5(&self) -> [u8; 16] {
        Md5::digest(&self.der).into()
    }
    pub fn public_key_sha256(&self) -> [u8; 32] {
        Sha256::digest(&self.public_key_der).into()
    }
    pub fn public_key_sha1(&self) -> [u8; 20] {
        Sha1::digest(&self.public_key_der).into()
    }
    pub fn public_key_md5(&self) -> [u8; 16] {
        Md5::digest(&self.public_key_der).into()
    }
}

/// Lowercase hex, as apksigner prints digests.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// (algorithm, key size in bits) of a SubjectPublicKeyInfo.
pub fn key_info(spki: &[u8]) -> Result<(KeyAlgorithm, u32), DerError> {
    let s = single(spki, tag::SEQUENCE, "SubjectPublicKeyInfo")?;
    let mut r = DerReader::new(s.content);
    let alg = r.expect(tag::SEQUENCE, "AlgorithmIdentifier")?;
    let key = r.expect(tag::BIT_STRING, "subjectPublicKey")?;
    let mut a = DerReader::new(alg.content);
    let oid = a.expect(tag::OID, "algorithm OID")?.content;
    if oid == oid::RSA_ENCRYPTION {
        // RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }
        let bits = key
            .content
            .get(1..)
            .ok_or(DerError::Malformed("empty key"))?;
        let rsa = single(bits, tag::SEQUENCE, "RSAPublicKey")?;
        let modulus = DerReader::new(rsa.content)
            .expect(tag::INTEGER, "modulus")?
            .content;
        let m: Vec<u8> = modulus.iter().copied().skip_while(|&b| b == 0).collect();
        let bits = match m.first() {
            Some(&top) => (m.len() as u32 - 1) * 8 + (8 - top.leading_zeros()),
            None => 0,
        };
        return Ok((KeyAlgorithm::Rsa, bits));
    }
    if oid == oid::EC_PUBLIC_KEY {
        let curve = a.optional(tag::OID)?.map(|t| t.content);
        let bits = match curve {
            Some(c) if c == oid::P256 => 256,
            Some(c) if c == oid::P384 => 384,
            _ => 0,
        };
        return Ok((KeyAlgorithm::Ec, bits));
    }
    if oid == oid::DSA {
        return Ok((KeyAlgorithm::Dsa, 0));
    }
    Ok((KeyAlgorithm::Other, 0))
}

/// A Name as Java's `X500Principal.toString()`/`X500Name` prints it: most specific RDN first.
fn format_name(name: &[u8]) -> Result<String, DerError> {
    let mut rdns = Vec::new();
    let mut r = DerReader::new(name);
    while !r.is_empty() {
        let set = r.expect(tag::SET, "RelativeDistinguishedName")?;
        let mut parts = Vec::new();
        let mut s = DerReader::new(set.content);
        while !s.is_empty() {
            let atv = s.expect(tag::SEQUENCE, "AttributeTypeAndValue")?;
            let mut a = DerReader::new(atv.content);
            let oid = a.expect(tag::OID, "attribute type")?.content;
            let value = a.any()?;
            let text = match value.tag {
                0x1e => {
                    let units: Vec<u16> = value
                        .content
                        .chunks_exact(2)
                        .map(|c| u16::from_be_bytes([c[0], c[1]]))
                        .collect();
                    String::from_utf16_lossy(&units)
                }
                _ => String::from_utf8_lossy(value.content).into_owned(),
            };
            parts.push(format!("{}={}", attribute_name(oid), text));
        }
        rdns.push(parts.join(" + "));
    }
    rdns.reverse();
    Ok(rdns.join(", "))
}

fn attribute_name(oid: &[u8]) -> String {
    match oid {
        [0x55, 0x04, 0x03] => "CN".into(),
        [0x55, 0x04, 0x06] => "C".into(),
        [0x55, 0x04, 0x07] => "L".into(),
        [0x55, 0x04, 0x08] => "ST".into(),
        [0x55, 0x04, 0x09] => "STREET".into(),
        [0x55, 0x04, 0x0a] => "O".into(),
        [0x55, 0x04, 0x0b] => "OU".into(),
        [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01] => "EMAILADDRESS".into(),
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19] => "DC".into(),
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x01] => "UID".into(),
        other => format_oid(other),
    }
}

/// Dotted form of an OID's content bytes.
pub fn format_oid(bytes: &[u8]) -> String {
    let mut parts = Vec::new();
    let mut value: u64 = 0;
    for (i, &b) in bytes.iter().enumerate() {
        value = (value << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if parts.is_empty() {
                let first = (value / 40).min(2);
                parts.push(first.to_string());
                parts.push((value - first * 40).to_string());
            } else {
                parts.push(value.to_string());
            }
            value = 0;
        }
        if i > 64 {
            break;
        }
    }
    parts.join(".")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_lengths_and_refuses_ber() {
        let mut r = DerReader::new(&[0x30, 0x81, 0x02, 0x05, 0x00, 0x04, 0x00]);
        let seq = r.expect(tag::SEQUENCE, "seq").unwrap();
        assert_eq!(seq.content, &[0x05, 0x00]);
        assert_eq!(r.any().unwrap().tag, tag::OCTET_STRING);
        assert!(r.is_empty());
        assert!(DerReader::new(&[0x30, 0x80, 0, 0]).any().is_err());
        assert!(DerReader::new(&[0x30, 0x05, 0]).any().is_err());
        assert!(DerReader::new(&[0x30, 0x85, 1, 1, 1, 1, 1]).any().is_err());
    }

    #[test]
    fn formats_oids() {
        assert_eq!(format_oid(oid::SHA256), "2.16.840.1.101.3.4.2.1");
        assert_eq!(format_oid(oid::P384), "1.3.132.0.34");
    }
}
