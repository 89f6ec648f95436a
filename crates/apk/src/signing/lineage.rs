//! APK Signature Scheme v3 proof-of-rotation: the signing-certificate lineage, oldest first, each
//! certificate signed by its predecessor's key, and each carrying the capabilities the newer
//! signers grant it.

use super::crypto::{self, scheme_algorithm};
use crate::der::Certificate;
use crate::reader::Reader;

/// Capability flags of a lineage node (SigningCertificateLineage).
pub mod capability {
    pub const INSTALLED_DATA: u32 = 1;
    pub const SHARED_USER_ID: u32 = 2;
    pub const PERMISSION: u32 = 4;
    pub const ROLLBACK: u32 = 8;
    pub const AUTH: u32 = 16;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineageNode {
    pub certificate: Certificate,
    pub flags: u32,
}

/// A verified lineage, oldest signer first; the last node is the current signer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lineage {
    pub nodes: Vec<LineageNode>,
}

impl Lineage {
    /// Parses and verifies the proof-of-rotation attribute value.
    pub fn parse(value: &[u8]) -> Result<Lineage, String> {
        let mut r = Reader::new(value);
        let version = r.u32().ok_or("truncated lineage version")?;
        if version != 1 {
            return Err(format!("unsupported lineage version {version}"));
        }
        let mut nodes: Vec<LineageNode> = Vec::new();
        let mut previous_signing_alg: Option<u32> = None;
        while !r.is_empty() {
            let index = nodes.len() + 1;
            let node = r.prefixed().ok_or("truncated lineage node")?;
            let mut n = Reader::new(node);
            let signed_data = n.prefixed().ok_or("truncated lineage signed data")?;
            let flags = n.u32().ok_or("truncated lineage flags")?;
            let signing_alg = n.u32().ok_or("truncated lineage algorithm")?;
            let signature = n.prefixed().ok_or("truncated lineage signature")?;
            let mut sd = Reader::new(signed_data);
            let der = sd.prefixed().ok_or("truncated lineage certificate")?;
            let parent_alg = sd.u32().ok_or("truncated lineage parent algorithm")?;
            let certificate = Certificate::parse(der)
                .map_err(|e| format!("lineage certificate #{index}: {e}"))?;
            if let (Some(prev), Some(parent)) = (previous_signing_alg, nodes.last()) {
                if prev != parent_alg {
                    return Err(format!(
                        "lineage node #{index}: signing algorithm id mismatch ({parent_alg:#x} vs {prev:#x})"
                    ));
                }
                let alg = scheme_algorithm(prev).ok_or_else(|| {
                    format!("lineage node #{index}: unsupported algorithm {prev:#x}")
                })?;
                crypto::verify(
                    &parent.certificate.public_key_der,
                    alg.kind,
                    alg.hash,
                    signed_data,
                    signature,
                )
                .map_err(|e| {
                    format!("lineage node #{index} is not signed by its predecessor: {e}")
                })?;
            }
            if nodes.iter().any(|n| n.certificate.der == certificate.der) {
                return Err(format!(
                    "lineage node #{index}: the same certificate appears twice"
                ));
            }
            previous_signing_alg = Some(signing_alg);
            nodes.push(LineageNode { certificate, flags });
        }
        if nodes.is_empty() {
            return Err("empty lineage".into());
        }
        Ok(Lineage { nodes })
    }

    pub fn current(&self) -> &Certificate {
        &self.nodes[self.nodes.len() - 1].certificate
    }

    /// The node for `cert` (compared by encoding), if it is in the lineage.
    pub fn node_of(&self, cert_sha256: &[u8; 32]) -> Option<&LineageNode> {
        self.nodes
            .iter()
            .find(|n| &n.certificate.sha256() == cert_sha256)
    }
}
