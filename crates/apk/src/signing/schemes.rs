//! APK Signature Scheme v2 and v3: the signer blocks inside the APK Signing Block, their
//! signatures, and the content digests recomputed over the zip's three sections (entries, central
//! directory, end of central directory with its offset field pointing at the signing block),
//! chunked in 1 MiB pieces as the scheme defines.

use std::collections::HashMap;

use sha2::{Digest, Sha256, Sha512};

use super::SignatureError;
use super::crypto::{self, HashAlgorithm, scheme_algorithm};
use crate::der::Certificate;
use crate::reader::Reader;
use crate::zip::ZipArchive;

pub const V2_BLOCK_ID: u32 = 0x7109_871a;
pub const V3_BLOCK_ID: u32 = 0xf053_68c0;
/// v2 signed-data attribute saying "this APK also carries a v3 signature" (stripping protection).
pub const STRIPPING_PROTECTION_ATTR: u32 = 0xbeef_f00d;
/// v3 signed-data attribute holding the proof-of-rotation lineage.
pub const PROOF_OF_ROTATION_ATTR: u32 = 0x3ba0_6f8c;

const CHUNK: usize = 1 << 20;

/// One verified signer of a v2 or v3 block.
#[derive(Debug, Clone)]
pub struct SchemeSigner {
    pub certificates: Vec<Certificate>,
    pub min_sdk: u32,
    pub max_sdk: u32,
    pub additional_attributes: Vec<(u32, Vec<u8>)>,
    /// (algorithm id, content digest) pairs, all checked.
    pub digests: Vec<(u32, Vec<u8>)>,
}

impl SchemeSigner {
    pub fn attribute(&self, id: u32) -> Option<&[u8]> {
        self.additional_attributes
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, v)| v.as_slice())
    }
}

/// The chunked content digests of one APK, each computed at most once.
pub struct ContentDigests<'z, 'a> {
    zip: &'z ZipArchive<'a>,
    signing_block_offset: u64,
    cache: HashMap<&'static str, Vec<u8>>,
}

impl<'z, 'a> ContentDigests<'z, 'a> {
    pub fn new(zip: &'z ZipArchive<'a>, signing_block_offset: u64) -> Self {
        ContentDigests {
            zip,
            signing_block_offset,
            cache: HashMap::new(),
        }
    }

    pub fn get(&mut self, hash: HashAlgorithm) -> Vec<u8> {
        if let Some(d) = self.cache.get(hash.name()) {
            return d.clone();
        }
        let d = chunked_digest(self.zip, self.signing_block_offset, hash);
        self.cache.insert(hash.name(), d.clone());
        d
    }
}

/// The top-level content digest: H(0x5a || count || H(0xa5 || len || chunk)…).
fn chunked_digest(zip: &ZipArchive<'_>, signing_block_offset: u64, hash: HashAlgorithm) -> Vec<u8> {
    let data = zip.data();
    let s = zip.sections();
    let mut eocd = data[s.eocd_offset as usize..].to_vec();
    // The EOCD's central directory offset field, replaced by the signing block's offset.
    eocd[16..20]
        .copy_from_slice(&(signing_block_offset.min(u64::from(u32::MAX)) as u32).to_le_bytes());
    let sections: [&[u8]; 3] = [
        &data[..signing_block_offset as usize],
        &data[s.central_directory_offset as usize..s.central_directory_section_end as usize],
        &eocd,
    ];
    let count: usize = sections.iter().map(|s| s.len().div_ceil(CHUNK)).sum();
    let mut chunk_digests = Vec::with_capacity(count * 64);
    for section in sections {
        for chunk in section.chunks(CHUNK) {
            let len = (chunk.len() as u32).to_le_bytes();
            match hash {
                HashAlgorithm::Sha512 => {
                    let mut h = Sha512::new();
                    h.update([0xa5]);
                    h.update(len);
                    h.update(chunk);
                    chunk_digests.extend_from_slice(&h.finalize());
                }
                _ => {
                    let mut h = Sha256::new();
                    h.update([0xa5]);
                    h.update(len);
                    h.update(chunk);
                    chunk_digests.extend_from_slice(&h.finalize());
                }
            }
        }
    }
    let mut top = vec![0x5a];
    top.extend_from_slice(&(count as u32).to_le_bytes());
    top.extend_from_slice(&chunk_digests);
    match hash {
        HashAlgorithm::Sha512 => Sha512::digest(&top).to_vec(),
        _ => Sha256::digest(&top).to_vec(),
    }
}

/// Verifies every signer of a v2 (`scheme` 2) or v3 (`scheme` 3) block.
pub fn verify_block(
    block: &[u8],
    scheme: u8,
    digests: &mut ContentDigests<'_, '_>,
) -> Result<Vec<SchemeSigner>, SignatureError> {
    let err = |what: String| SignatureError::Scheme { scheme, what };
    let short = |what: &str| SignatureError::Scheme {
        scheme,
        what: format!("malformed block: truncated {what}"),
    };
    let mut outer = Reader::new(block);
    let signers_bytes = outer.prefixed().ok_or_else(|| short("signer list"))?;
    let mut signers_reader = Reader::new(signers_bytes);
    let mut signers = Vec::new();
    while !signers_reader.is_empty() {
        let index = signers.len() + 1;
        let signer = signers_reader.prefixed().ok_or_else(|| short("signer"))?;
        let mut r = Reader::new(signer);
        let signed_data = r.prefixed().ok_or_else(|| short("signed data"))?;
        let (outer_min, outer_max) = if scheme == 3 {
            (
                r.u32().ok_or_else(|| short("minSdk"))?,
                r.u32().ok_or_else(|| short("maxSdk"))?,
            )
        } else {
            (0, u32::MAX)
        };
        let signatures = r.prefixed().ok_or_else(|| short("signatures"))?;
        let public_key = r.prefixed().ok_or_else(|| short("public key"))?;
        if !r.is_empty() {
            return Err(err(format!("signer #{index}: trailing bytes")));
        }

        // Signatures over the signed data: every supported one must verify.
        let mut sig_reader = Reader::new(signatures);
        let mut signature_ids = Vec::new();
        let mut verified = 0;
        while !sig_reader.is_empty() {
            let record = sig_reader
                .prefixed()
                .ok_or_else(|| short("signature record"))?;
            let mut rec = Reader::new(record);
            let id = rec.u32().ok_or_else(|| short("signature algorithm"))?;
            let sig = rec.prefixed().ok_or_else(|| short("signature"))?;
            signature_ids.push(id);
            if let Some(alg) = scheme_algorithm(id) {
                crypto::verify(public_key, alg.kind, alg.hash, signed_data, sig).map_err(|e| {
                    err(format!(
                        "signer #{index}: {} signature over the signed data is invalid: {e}",
                        alg.name
                    ))
                })?;
                verified += 1;
            }
        }
        if verified == 0 {
            return Err(err(format!(
                "signer #{index}: no supported signature algorithm among {signature_ids:04x?}"
            )));
        }

        // The signed data.
        let mut sd = Reader::new(signed_data);
        let digests_bytes = sd.prefixed().ok_or_else(|| short("digests"))?;
        let certs_bytes = sd.prefixed().ok_or_else(|| short("certificates"))?;
        let (inner_min, inner_max) = if scheme == 3 {
            (
                sd.u32().ok_or_else(|| short("signed minSdk"))?,
                sd.u32().ok_or_else(|| short("signed maxSdk"))?,
            )
        } else {
            (0, u32::MAX)
        };
        let attrs_bytes = sd
            .prefixed()
            .ok_or_else(|| short("additional attributes"))?;
        if scheme == 3 && (inner_min != outer_min || inner_max != outer_max) {
            return Err(err(format!(
                "signer #{index}: signed SDK range {inner_min}-{inner_max} differs from the unsigned {outer_min}-{outer_max}"
            )));
        }
        let mut signer_digests = Vec::new();
        let mut dr = Reader::new(digests_bytes);
        while !dr.is_empty() {
            let rec = dr.prefixed().ok_or_else(|| short("digest record"))?;
            let mut rr = Reader::new(rec);
            let id = rr.u32().ok_or_else(|| short("digest algorithm"))?;
            let d = rr.prefixed().ok_or_else(|| short("digest"))?;
            signer_digests.push((id, d.to_vec()));
        }
        let digest_ids: Vec<u32> = signer_digests.iter().map(|(id, _)| *id).collect();
        if digest_ids != signature_ids {
            return Err(err(format!(
                "signer #{index}: signature algorithms {signature_ids:04x?} differ from the digest algorithms {digest_ids:04x?}"
            )));
        }
        let mut certificates = Vec::new();
        let mut cr = Reader::new(certs_bytes);
        while !cr.is_empty() {
            let der = cr.prefixed().ok_or_else(|| short("certificate"))?;
            certificates.push(
                Certificate::parse(der)
                    .map_err(|e| err(format!("signer #{index}: bad certificate: {e}")))?,
            );
        }
        let first = certificates
            .first()
            .ok_or_else(|| err(format!("signer #{index}: no certificates")))?;
        if first.public_key_der != public_key {
            return Err(err(format!(
                "signer #{index}: the public key differs from the certificate's"
            )));
        }
        let mut additional_attributes = Vec::new();
        let mut ar = Reader::new(attrs_bytes);
        while !ar.is_empty() {
            let rec = ar.prefixed().ok_or_else(|| short("attribute"))?;
            let mut rr = Reader::new(rec);
            let id = rr.u32().ok_or_else(|| short("attribute id"))?;
            additional_attributes.push((id, rr.bytes(rr.remaining()).unwrap_or(&[]).to_vec()));
        }
        // The content digests, recomputed.
        for (id, expected) in &signer_digests {
            let Some(alg) = scheme_algorithm(*id) else {
                continue;
            };
            let actual = digests.get(alg.hash);
            if &actual != expected {
                return Err(SignatureError::DigestMismatch {
                    scheme,
                    algorithm: alg.hash.name(),
                });
            }
        }
        signers.push(SchemeSigner {
            certificates,
            min_sdk: outer_min,
            max_sdk: outer_max,
            additional_attributes,
            digests: signer_digests,
        });
    }
    if signers.is_empty() {
        return Err(err("no signers".into()));
    }
    Ok(signers)
}
