//! APK signature verification the way apksigner applies it, and the update rule.
//!
//! For an APK whose manifest says it runs on SDK levels `min_sdk..=max_sdk`:
//! - v3 (API 28+) is verified if present; its signers' SDK ranges must be continuous and cover
//!   28.., and a proof-of-rotation lineage, if any, must verify and end at the signer.
//! - v2 (API 24+) is verified if present; a v2 signature that announces v3 (stripping protection)
//!   makes a missing v3 an error.
//! - v1 (JAR) is verified when `min_sdk < 24` or nothing newer is present, with the digest and key
//!   algorithms each API level supports; its `X-Android-APK-Signed` header makes missing v2/v3
//!   blocks an error.
//! - Signers must agree across schemes (v1 = v2; v3 = v2 or, with rotation, v2 is in the lineage).
//!
//! Content digests are always recomputed over the file. [`check_update`] decides whether an APK may
//! replace an installed one.

pub mod crypto;
pub mod lineage;
pub mod schemes;
pub mod v1;

use crate::der::Certificate;
use crate::zip::{ZipArchive, ZipError};
pub use lineage::{Lineage, LineageNode, capability};
use schemes::{
    ContentDigests, PROOF_OF_ROTATION_ATTR, STRIPPING_PROTECTION_ATTR, V2_BLOCK_ID, V3_BLOCK_ID,
};

/// First API level of each scheme.
pub const SDK_V2: u32 = 24;
pub const SDK_V3: u32 = 28;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("the APK is not signed (no v1, v2 or v3 signature); sign it with apksigner")]
    Unsigned,
    #[error(transparent)]
    Zip(#[from] ZipError),
    #[error("APK Signature Scheme v{scheme}: {what}")]
    Scheme { scheme: u8, what: String },
    #[error(
        "APK Signature Scheme v{scheme}: {algorithm} content digest does not match: the APK was modified after signing"
    )]
    DigestMismatch { scheme: u8, algorithm: &'static str },
    #[error("JAR signature (v1): {0}")]
    Jar(String),
    #[error("{0}")]
    Inconsistent(String),
}

/// What verification established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    pub v1: bool,
    pub v2: bool,
    pub v3: bool,
    /// The signers of the newest verified scheme (one for almost every APK).
    pub signers: Vec<Certificate>,
    /// The v3 proof-of-rotation lineage, oldest first.
    pub lineage: Option<Lineage>,
}

impl Verification {
    /// What the update rule needs to remember about this APK.
    pub fn identity(&self) -> SigningIdentity {
        let mut signers: Vec<[u8; 32]> = self.signers.iter().map(Certificate::sha256).collect();
        signers.sort();
        SigningIdentity {
            signers,
            lineage: self.lineage.as_ref().map(|l| {
                l.nodes
                    .iter()
                    .map(|n| (n.certificate.sha256(), n.flags))
                    .collect()
            }),
        }
    }
}

/// Target SDK level from which APK Signature Scheme v2 or newer is mandatory (Android 11).
pub const SDK_TARGET_NEEDS_V2: u32 = 30;

/// The SDK levels an APK's manifest declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SdkLevels {
    pub min: u32,
    pub target: u32,
    /// `u32::MAX` when the manifest sets none.
    pub max: u32,
}

/// Verifies the signatures of an APK whose manifest declares `sdk`.
pub fn verify(zip: &ZipArchive<'_>, sdk: SdkLevels) -> Result<Verification, SignatureError> {
    let SdkLevels {
        min: min_sdk,
        target: target_sdk,
        max: max_sdk,
    } = sdk;
    let block = zip.signing_block()?;
    let mut v2_signers = None;
    let mut v3_signers = None;
    let mut lineage = None;
    if let Some(block) = &block {
        let mut digests = ContentDigests::new(zip, block.offset);
        if let Some(v3) = block.get(V3_BLOCK_ID).filter(|_| max_sdk >= SDK_V3) {
            let signers = schemes::verify_block(v3, 3, &mut digests)?;
            check_v3_ranges(&signers, min_sdk.max(SDK_V3), max_sdk)?;
            // The lineage is carried by the signer for the newest platforms.
            let newest = signers
                .iter()
                .max_by_key(|s| s.max_sdk)
                .unwrap_or(&signers[0]);
            if let Some(attr) = newest.attribute(PROOF_OF_ROTATION_ATTR) {
                let l = Lineage::parse(attr).map_err(|what| SignatureError::Scheme {
                    scheme: 3,
                    what: format!("proof-of-rotation: {what}"),
                })?;
                if l.current().der != newest.certificates[0].der {
                    return Err(SignatureError::Scheme {
                        scheme: 3,
                        what: "the rotation lineage does not end at the signer's certificate"
                            .into(),
                    });
                }
                lineage = Some(l);
            }
            v3_signers = Some(signers);
        }
        if let Some(v2) = block.get(V2_BLOCK_ID).filter(|_| max_sdk >= SDK_V2) {
            let signers = schemes::verify_block(v2, 2, &mut digests)?;
            for s in &signers {
                if let Some(attr) = s.attribute(STRIPPING_PROTECTION_ATTR)
                    && attr
                        .get(..4)
                        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                        == Some(3)
                    && block.get(V3_BLOCK_ID).is_none()
                {
                    return Err(SignatureError::Inconsistent("the v2 signature says the APK is also signed with v3, but no v3 signature is present (stripped?)".into()));
                }
            }
            v2_signers = Some(signers);
        }
    }
    let mut v1_signers = None;
    let has_jar = zip.entry("META-INF/MANIFEST.MF").is_some();
    if min_sdk < SDK_V2 || (v2_signers.is_none() && v3_signers.is_none()) {
        if !has_jar && v2_signers.is_none() && v3_signers.is_none() {
            return Err(SignatureError::Unsigned);
        }
        if !has_jar {
            return Err(SignatureError::Jar(format!(
                "no JAR signature (META-INF/MANIFEST.MF), which API levels {min_sdk}..{} need (minSdkVersion is {min_sdk})",
                SDK_V2 - 1
            )));
        }
        let signers = v1::verify(zip, min_sdk)?;
        for s in &signers {
            for scheme in &s.android_apk_signed {
                let present = match scheme {
                    2 => block.as_ref().is_some_and(|b| b.get(V2_BLOCK_ID).is_some()),
                    3 => block.as_ref().is_some_and(|b| b.get(V3_BLOCK_ID).is_some()),
                    _ => true,
                };
                if !present {
                    return Err(SignatureError::Inconsistent(format!(
                        "{}.SF says the APK is signed with APK Signature Scheme v{scheme}, but that signature is missing (stripped?)",
                        s.name
                    )));
                }
            }
        }
        v1_signers = Some(signers);
    }

    // Signers must agree across schemes.
    let digests_of = |certs: &mut dyn Iterator<Item = &Certificate>| {
        let mut d: Vec<[u8; 32]> = certs.map(Certificate::sha256).collect();
        d.sort();
        d
    };
    if let (Some(v1), Some(v2)) = (&v1_signers, &v2_signers)
        && digests_of(&mut v1.iter().map(|s| &s.certificate))
            != digests_of(&mut v2.iter().map(|s| &s.certificates[0]))
    {
        return Err(SignatureError::Inconsistent(
            "v1 and v2 signers differ".into(),
        ));
    }
    if let (Some(v2), Some(v3)) = (&v2_signers, &v3_signers) {
        let v2d = digests_of(&mut v2.iter().map(|s| &s.certificates[0]));
        match &lineage {
            None => {
                if v2d != digests_of(&mut v3.iter().map(|s| &s.certificates[0])) {
                    return Err(SignatureError::Inconsistent(
                        "v2 and v3 signers differ".into(),
                    ));
                }
            }
            Some(l) => {
                if v2d.len() != 1 || l.node_of(&v2d[0]).is_none() {
                    return Err(SignatureError::Inconsistent(
                        "the v2 signer is not in the v3 rotation lineage".into(),
                    ));
                }
            }
        }
    }
    if v3_signers.is_some()
        && lineage.is_none()
        && v2_signers.is_none()
        && min_sdk < SDK_V3
        && let Some(v1) = &v1_signers
    {
        let v3d = digests_of(&mut v3_signers.iter().flatten().map(|s| &s.certificates[0]));
        if v3d != digests_of(&mut v1.iter().map(|s| &s.certificate)) {
            return Err(SignatureError::Inconsistent(
                "v1 and v3 signers differ".into(),
            ));
        }
    }

    if target_sdk >= SDK_TARGET_NEEDS_V2 && v2_signers.is_none() && v3_signers.is_none() {
        return Err(SignatureError::Inconsistent(format!(
            "targetSdkVersion {target_sdk} requires APK Signature Scheme v2 or newer, and the APK is only JAR (v1) signed; sign it with apksigner (v2/v3 enabled)"
        )));
    }
    let signers: Vec<Certificate> = if let Some(v3) = &v3_signers {
        let newest = v3.iter().max_by_key(|s| s.max_sdk).unwrap_or(&v3[0]);
        vec![newest.certificates[0].clone()]
    } else if let Some(v2) = &v2_signers {
        v2.iter().map(|s| s.certificates[0].clone()).collect()
    } else if let Some(v1) = &v1_signers {
        v1.iter().map(|s| s.certificate.clone()).collect()
    } else {
        return Err(SignatureError::Unsigned);
    };
    Ok(Verification {
        v1: v1_signers.is_some(),
        v2: v2_signers.is_some(),
        v3: v3_signers.is_some(),
        signers,
        lineage,
    })
}

fn check_v3_ranges(
    signers: &[schemes::SchemeSigner],
    from: u32,
    to: u32,
) -> Result<(), SignatureError> {
    let err = |what: &str| SignatureError::Scheme {
        scheme: 3,
        what: what.to_owned(),
    };
    let mut ranges: Vec<(u32, u32)> = signers.iter().map(|s| (s.min_sdk, s.max_sdk)).collect();
    ranges.sort();
    for w in ranges.windows(2) {
        if w[1].0 <= w[0].1 {
            return Err(err("signers' SDK ranges overlap"));
        }
        if w[1].0 != w[0].1 + 1 {
            return Err(err("signers' SDK ranges are not continuous"));
        }
    }
    let (lo, hi) = (ranges[0].0, ranges[ranges.len() - 1].1);
    if lo > from || hi < to.min(i32::MAX as u32) {
        return Err(err(&format!(
            "signers cover API levels {lo}..{hi}, not all of {from}.."
        )));
    }
    Ok(())
}

/// What the package database keeps about an installed APK's signing, for [`check_update`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningIdentity {
    /// SHA-256 of each signer certificate, sorted.
    pub signers: Vec<[u8; 32]>,
    /// (certificate SHA-256, capability flags) oldest first, if the APK carries a v3 lineage.
    pub lineage: Option<Vec<([u8; 32], u32)>>,
}

/// Why an update was allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateAllowed {
    SameSigner,
    /// The update's lineage rotates from the installed signer.
    Rotated,
    /// The update is signed by an older key the installed lineage lets roll back.
    RolledBack,
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum UpdateError {
    #[error(
        "the update is signed by a different key than the installed app (and no rotation lineage links them); uninstall the app first"
    )]
    DifferentSigner,
    #[error(
        "the update's rotation lineage withdraws the installed signer's right to keep the app's data"
    )]
    CapabilityRevoked,
    #[error("the installed app's and the update's rotation lineages diverge")]
    DivergentLineage,
}

/// Android's rule: same signer(s); or a single-signer update whose lineage contains the installed
/// signer with the INSTALLED_DATA capability; or an installed lineage that contains the update's
/// signer with the ROLLBACK capability. Lineages that both exist must not diverge.
pub fn check_update(
    installed: &SigningIdentity,
    update: &SigningIdentity,
) -> Result<UpdateAllowed, UpdateError> {
    if let (Some(a), Some(b)) = (&installed.lineage, &update.lineage) {
        let n = a.len().min(b.len());
        if a[..n].iter().map(|x| x.0).ne(b[..n].iter().map(|x| x.0)) {
            return Err(UpdateError::DivergentLineage);
        }
    }
    if installed.signers == update.signers {
        return Ok(UpdateAllowed::SameSigner);
    }
    let ([old], [new]) = (installed.signers.as_slice(), update.signers.as_slice()) else {
        return Err(UpdateError::DifferentSigner);
    };
    if let Some(l) = &update.lineage
        && let Some((_, flags)) = l.iter().find(|(d, _)| d == old)
    {
        return if flags & capability::INSTALLED_DATA != 0 {
            Ok(UpdateAllowed::Rotated)
        } else {
            Err(UpdateError::CapabilityRevoked)
        };
    }
    if let Some(l) = &installed.lineage
        && let Some((_, flags)) = l.iter().find(|(d, _)| d == new)
        && flags & capability::ROLLBACK != 0
    {
        return Ok(UpdateAllowed::RolledBack);
    }
    Err(UpdateError::DifferentSigner)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const ALL: u32 = 0x1f;

    fn id(signer: u8, lineage: Option<&[(u8, u32)]>) -> SigningIdentity {
        SigningIdentity {
            signers: vec![[signer; 32]],
            lineage: lineage.map(|l| l.iter().map(|&(d, f)| ([d; 32], f)).collect()),
        }
    }

    #[test]
    fn same_signer_updates() {
        assert_eq!(
            check_update(&id(1, None), &id(1, None)),
            Ok(UpdateAllowed::SameSigner)
        );
        assert_eq!(
            check_update(&id(1, None), &id(2, None)),
            Err(UpdateError::DifferentSigner)
        );
    }

    #[test]
    fn rotation_needs_the_installed_signer_in_the_lineage_with_installed_data() {
        assert_eq!(
            check_update(&id(1, None), &id(2, Some(&[(1, ALL), (2, ALL)]))),
            Ok(UpdateAllowed::Rotated)
        );
        assert_eq!(
            check_update(
                &id(1, None),
                &id(2, Some(&[(1, ALL & !capability::INSTALLED_DATA), (2, ALL)]))
            ),
            Err(UpdateError::CapabilityRevoked)
        );
        assert_eq!(
            check_update(&id(3, None), &id(2, Some(&[(1, ALL), (2, ALL)]))),
            Err(UpdateError::DifferentSigner)
        );
        // Two rotations: 1 → 2 → 3, installed with 1.
        assert_eq!(
            check_update(&id(1, None), &id(3, Some(&[(1, ALL), (2, ALL), (3, ALL)]))),
            Ok(UpdateAllowed::Rotated)
        );
    }

    #[test]
    fn rollback_needs_the_rollback_capability() {
        let installed = id(2, Some(&[(1, ALL), (2, ALL)]));
        assert_eq!(
            check_update(&installed, &id(1, None)),
            Ok(UpdateAllowed::RolledBack)
        );
        let installed = id(2, Some(&[(1, ALL & !capability::ROLLBACK), (2, ALL)]));
        assert_eq!(
            check_update(&installed, &id(1, None)),
            Err(UpdateError::DifferentSigner)
        );
    }

    #[test]
    fn divergent_lineages_are_refused() {
        let installed = id(2, Some(&[(1, ALL), (2, ALL)]));
        assert_eq!(
            check_update(&installed, &id(3, Some(&[(1, ALL), (4, ALL), (3, ALL)]))),
            Err(UpdateError::DivergentLineage)
        );
        assert_eq!(
            check_update(&installed, &id(3, Some(&[(1, ALL), (2, ALL), (3, ALL)]))),
            Ok(UpdateAllowed::Rotated)
        );
    }

    #[test]
    fn multi_signer_sets_must_match_exactly() {
        let a = SigningIdentity {
            signers: vec![[1; 32], [2; 32]],
            lineage: None,
        };
        let b = SigningIdentity {
            signers: vec![[1; 32]],
            lineage: None,
        };
        assert_eq!(check_update(&a, &a.clone()), Ok(UpdateAllowed::SameSigner));
        assert_eq!(check_update(&a, &b), Err(UpdateError::DifferentSigner));
    }
}
