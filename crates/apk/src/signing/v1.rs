//! JAR signing (APK Signature Scheme v1): META-INF/MANIFEST.MF digests every entry, each
//! META-INF/X.SF digests the manifest (whole or per section), and META-INF/X.{RSA,EC,DSA} is a
//! PKCS#7 SignedData signature over X.SF. Rules follow apksigner, including which digest and key
//! algorithms each minSdkVersion supports.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine;

use super::SignatureError;
use super::crypto::{self, HashAlgorithm, SignatureKind};
use crate::der::{self, Certificate, DerReader, KeyAlgorithm, oid, tag};
use crate::zip::ZipArchive;

/// A verified JAR signer.
#[derive(Debug, Clone)]
pub struct JarSigner {
    /// "META-INF/CERT" for META-INF/CERT.SF + .RSA.
    pub name: String,
    pub certificate: Certificate,
    /// Scheme ids listed in the .SF's `X-Android-APK-Signed` (stripping protection).
    pub android_apk_signed: Vec<u32>,
}

fn jar(what: impl Into<String>) -> SignatureError {
    SignatureError::Jar(what.into())
}

/// Whether `name` needs a digest in MANIFEST.MF.
fn needs_digest(name: &str) -> bool {
    if name.ends_with('/') {
        return false;
    }
    if let Some(file) = name.strip_prefix("META-INF/") {
        if file.contains('/') {
            return true;
        }
        let upper = file.to_ascii_uppercase();
        return !(upper == "MANIFEST.MF"
            || upper.ends_with(".SF")
            || upper.ends_with(".RSA")
            || upper.ends_with(".DSA")
            || upper.ends_with(".EC")
            || upper.starts_with("SIG-"));
    }
    true
}

/// A manifest section: its attributes and its exact bytes (what the .SF digests).
struct Section<'a> {
    attrs: Vec<(String, String)>,
    raw: &'a [u8],
}

impl Section<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }
}

/// Splits a JAR manifest into sections (the first is the main section).
fn parse_manifest(data: &[u8]) -> Result<Vec<Section<'_>>, String> {
    let mut sections = Vec::new();
    let mut start = 0;
    let mut at = 0;
    let mut attrs: Vec<(String, String)> = Vec::new();
    while at < data.len() {
        let line_end = data[at..]
            .iter()
            .position(|&b| b == b'\n' || b == b'\r')
            .map(|p| at + p)
            .unwrap_or(data.len());
        let mut next = line_end;
        if data.get(next) == Some(&b'\r') {
            next += 1;
        }
        if line_end < data.len() && data.get(next) == Some(&b'\n') && data[line_end] == b'\r' {
            next += 1;
        } else if data.get(line_end) == Some(&b'\n') {
            next = line_end + 1;
        }
        let line = &data[at..line_end];
        if line.is_empty() {
            sections.push(Section {
                attrs: std::mem::take(&mut attrs),
                raw: &data[start..next],
            });
            start = next;
        } else if line[0] == b' ' {
            let last = attrs
                .last_mut()
                .ok_or("manifest continuation line without an attribute")?;
            last.1.push_str(&String::from_utf8_lossy(&line[1..]));
        } else {
            let text = String::from_utf8_lossy(line);
            let (k, v) = text
                .split_once(':')
                .ok_or_else(|| format!("manifest line without a colon: {text:?}"))?;
            attrs.push((
                k.trim().to_owned(),
                v.strip_prefix(' ').unwrap_or(v).to_owned(),
            ));
        }
        if next == at {
            break;
        }
        at = next;
    }
    if !attrs.is_empty() || start < data.len() {
        sections.push(Section {
            attrs,
            raw: &data[start..],
        });
    }
    Ok(sections)
}

/// Digest attributes (e.g. `SHA-256-Digest`) with the given suffix that `min_sdk` supports.
fn digests_in(section: &Section<'_>, suffix: &str, min_sdk: u32) -> Vec<(HashAlgorithm, Vec<u8>)> {
    let mut out = Vec::new();
    for (k, v) in &section.attrs {
        let Some(alg) = k
            .len()
            .checked_sub(suffix.len())
            .filter(|&n| k[n..].eq_ignore_ascii_case(suffix))
            .map(|n| &k[..n])
        else {
            continue;
        };
        let hash = match alg.to_ascii_uppercase().as_str() {
            "SHA1" | "SHA-1" => HashAlgorithm::Sha1,
            // Android accepts SHA-256/512 JAR digests from API 18 on.
            "SHA-256" if min_sdk >= 18 => HashAlgorithm::Sha256,
            "SHA-512" if min_sdk >= 18 => HashAlgorithm::Sha512,
            _ => continue,
        };
        if let Ok(d) = base64::engine::general_purpose::STANDARD.decode(v.trim()) {
            out.push((hash, d));
        }
    }
    out
}

fn check_digests(found: &[(HashAlgorithm, Vec<u8>)], data: &[u8]) -> bool {
    !found.is_empty() && found.iter().all(|(h, d)| &h.digest(data) == d)
}

/// Verifies the JAR signature of `zip` for platforms from `min_sdk` on.
pub fn verify(zip: &ZipArchive<'_>, min_sdk: u32) -> Result<Vec<JarSigner>, SignatureError> {
    let manifest_bytes = zip
        .read_by_name("META-INF/MANIFEST.MF")
        .map_err(|_| jar("no META-INF/MANIFEST.MF"))?;
    let sections =
        parse_manifest(&manifest_bytes).map_err(|e| jar(format!("META-INF/MANIFEST.MF: {e}")))?;
    let main = sections
        .first()
        .ok_or_else(|| jar("META-INF/MANIFEST.MF is empty"))?;
    let mut entry_sections: BTreeMap<String, &Section<'_>> = BTreeMap::new();
    for s in sections.iter().skip(1) {
        if let Some(name) = s.get("Name")
            && entry_sections.insert(name.to_owned(), s).is_some()
        {
            return Err(jar(format!("META-INF/MANIFEST.MF lists `{name}` twice")));
        }
    }

    // Signature block files and their .SF.
    let mut signers = Vec::new();
    for entry in zip.entries() {
        let Some(file) = entry.name.strip_prefix("META-INF/") else {
            continue;
        };
        if file.contains('/') {
            continue;
        }
        let upper = file.to_ascii_uppercase();
        let Some(base) = [".RSA", ".EC", ".DSA"].iter().find_map(|ext| {
            upper
                .strip_suffix(ext)
                .map(|_| &file[..file.len() - ext.len()])
        }) else {
            continue;
        };
        let sf_name = format!("META-INF/{base}.SF");
        let sf = zip
            .read_by_name(&sf_name)
            .map_err(|_| jar(format!("{} has no matching {sf_name}", entry.name)))?;
        let block = zip.read(entry)?;
        let certificate =
            verify_pkcs7(&block, &sf).map_err(|e| jar(format!("{}: {e}", entry.name)))?;
        if certificate.key_algorithm == KeyAlgorithm::Ec && min_sdk < 18 {
            return Err(jar(format!(
                "{}: ECDSA JAR signatures are not supported on API levels below 18 (minSdkVersion is {min_sdk})",
                entry.name
            )));
        }
        let sf_sections = parse_manifest(&sf).map_err(|e| jar(format!("{sf_name}: {e}")))?;
        let sf_main = sf_sections
            .first()
            .ok_or_else(|| jar(format!("{sf_name} is empty")))?;
        // Whole-manifest digest, else main attributes + every section individually.
        let whole = digests_in(sf_main, "-Digest-Manifest", min_sdk);
        let whole_ok = check_digests(&whole, &manifest_bytes);
        let mut signed_names: BTreeSet<String> = BTreeSet::new();
        if whole_ok {
            signed_names.extend(entry_sections.keys().cloned());
        } else {
            let main_digests = digests_in(sf_main, "-Digest-Manifest-Main-Attributes", min_sdk);
            if !main_digests.is_empty() && !check_digests(&main_digests, main.raw) {
                return Err(jar(format!(
                    "{sf_name}: digest of the manifest's main attributes does not match"
                )));
            }
            for s in sf_sections.iter().skip(1) {
                let Some(name) = s.get("Name") else { continue };
                let manifest_section = entry_sections.get(name).ok_or_else(|| {
                    jar(format!(
                        "{sf_name} signs `{name}`, which MANIFEST.MF does not list"
                    ))
                })?;
                let d = digests_in(s, "-Digest", min_sdk);
                if d.is_empty() {
                    return Err(jar(format!(
                        "{sf_name}: no digest of `{name}` supported on API level {min_sdk}"
                    )));
                }
                if !check_digests(&d, manifest_section.raw) {
                    return Err(jar(format!(
                        "{sf_name}: digest of the MANIFEST.MF section of `{name}` does not match"
                    )));
                }
                signed_names.insert(name.to_owned());
            }
        }
        let android_apk_signed = sf_main
            .get("X-Android-APK-Signed")
            .map(|v| v.split(',').filter_map(|s| s.trim().parse().ok()).collect())
            .unwrap_or_default();
        signers.push((
            format!("META-INF/{base}"),
            certificate,
            android_apk_signed,
            signed_names,
        ));
    }
    if signers.is_empty() {
        return Err(jar(
            "no signature block files (META-INF/*.RSA, *.EC, *.DSA)",
        ));
    }

    // Every entry that needs one has a matching digest in MANIFEST.MF and is signed by every signer.
    let mut seen = BTreeSet::new();
    for entry in zip.entries().iter().filter(|e| needs_digest(&e.name)) {
        let section = entry_sections.get(&entry.name).ok_or_else(|| {
            jar(format!(
                "`{}` is not in META-INF/MANIFEST.MF (added after signing?)",
                entry.name
            ))
        })?;
        let d = digests_in(section, "-Digest", min_sdk);
        if d.is_empty() {
            return Err(jar(format!(
                "MANIFEST.MF: no digest of `{}` supported on API level {min_sdk}",
                entry.name
            )));
        }
        let data = zip.read(entry)?;
        if !check_digests(&d, &data) {
            return Err(jar(format!(
                "digest of `{}` does not match MANIFEST.MF: the entry was modified after signing",
                entry.name
            )));
        }
        for (name, _, _, signed) in &signers {
            if !signed.contains(&entry.name) {
                return Err(jar(format!("`{}` is not signed by {name}", entry.name)));
            }
        }
        seen.insert(entry.name.clone());
    }
    for name in entry_sections.keys() {
        if !seen.contains(name) && needs_digest(name) && zip.entry(name).is_none() {
            return Err(jar(format!(
                "MANIFEST.MF lists `{name}`, which is not in the APK"
            )));
        }
    }
    Ok(signers
        .into_iter()
        .map(|(name, certificate, android_apk_signed, _)| JarSigner {
            name,
            certificate,
            android_apk_signed,
        })
        .collect())
}

/// Verifies a PKCS#7 SignedData over `content`; returns the signer's certificate.
fn verify_pkcs7(block: &[u8], content: &[u8]) -> Result<Certificate, String> {
    let e = |x: der::DerError| x.to_string();
    let ci = der::single(block, tag::SEQUENCE, "ContentInfo").map_err(e)?;
    let mut r = DerReader::new(ci.content);
    if r.expect(tag::OID, "contentType").map_err(e)?.content != oid::SIGNED_DATA {
        return Err("not a PKCS#7 SignedData".into());
    }
    let explicit = r.expect(tag::CONTEXT_0, "[0] content").map_err(e)?;
    let sd = der::single(explicit.content, tag::SEQUENCE, "SignedData").map_err(e)?;
    let mut s = DerReader::new(sd.content);
    s.expect(tag::INTEGER, "version").map_err(e)?;
    s.expect(tag::SET, "digestAlgorithms").map_err(e)?;
    s.expect(tag::SEQUENCE, "encapContentInfo").map_err(e)?;
    let mut certificates = Vec::new();
    if let Some(certs) = s.optional(tag::CONTEXT_0).map_err(e)? {
        let mut c = DerReader::new(certs.content);
        while !c.is_empty() {
            let cert = c.expect(tag::SEQUENCE, "Certificate").map_err(e)?;
            certificates
                .push(Certificate::parse(cert.raw).map_err(|x| format!("bad certificate: {x}"))?);
        }
    }
    s.optional(tag::CONTEXT_1).map_err(e)?;
    let infos = s.expect(tag::SET, "signerInfos").map_err(e)?;
    let mut infos = DerReader::new(infos.content);
    let info = infos.expect(tag::SEQUENCE, "SignerInfo").map_err(e)?;
    if !infos.is_empty() {
        return Err("more than one SignerInfo (Android uses the first only; refused)".into());
    }
    let mut i = DerReader::new(info.content);
    i.expect(tag::INTEGER, "SignerInfo version").map_err(e)?;
    let sid = i
        .expect(tag::SEQUENCE, "IssuerAndSerialNumber")
        .map_err(e)?;
    let mut sid = DerReader::new(sid.content);
    let issuer = sid.expect(tag::SEQUENCE, "issuer").map_err(e)?;
    let serial = sid.expect(tag::INTEGER, "serialNumber").map_err(e)?;
    let digest_alg = i.expect(tag::SEQUENCE, "digestAlgorithm").map_err(e)?;
    let signed_attrs = i.optional(tag::CONTEXT_0).map_err(e)?;
    let sig_alg = i.expect(tag::SEQUENCE, "signatureAlgorithm").map_err(e)?;
    let signature = i.expect(tag::OCTET_STRING, "signature").map_err(e)?;
    let cert = certificates
        .into_iter()
        .find(|c| c.issuer_der == issuer.raw && c.serial == serial.content)
        .ok_or("the signer's certificate is not in the signature block")?;
    let digest_oid = DerReader::new(digest_alg.content)
        .expect(tag::OID, "digest OID")
        .map_err(e)?
        .content;
    let hash = match digest_oid {
        o if o == oid::SHA1 => HashAlgorithm::Sha1,
        o if o == oid::SHA256 => HashAlgorithm::Sha256,
        o if o == oid::SHA512 => HashAlgorithm::Sha512,
        o => {
            return Err(format!(
                "unsupported digest algorithm {}",
                der::format_oid(o)
            ));
        }
    };
    let sig_oid = DerReader::new(sig_alg.content)
        .expect(tag::OID, "signature OID")
        .map_err(e)?
        .content;
    let kind = match sig_oid {
        o if [
            oid::RSA_ENCRYPTION,
            oid::SHA1_WITH_RSA,
            oid::SHA256_WITH_RSA,
            oid::SHA512_WITH_RSA,
        ]
        .contains(&o) =>
        {
            SignatureKind::RsaPkcs1
        }
        o if [
            oid::EC_PUBLIC_KEY,
            oid::ECDSA_SHA1,
            oid::ECDSA_SHA256,
            oid::ECDSA_SHA512,
        ]
        .contains(&o) =>
        {
            SignatureKind::Ecdsa
        }
        o => {
            return Err(format!(
                "unsupported signature algorithm {}",
                der::format_oid(o)
            ));
        }
    };
    let message: Vec<u8> = match signed_attrs {
        None => content.to_vec(),
        Some(attrs) => {
            // contentType must be data and messageDigest the digest of the .SF.
            let mut a = DerReader::new(attrs.content);
            let (mut content_type_ok, mut digest_ok) = (false, false);
            while !a.is_empty() {
                let attr = a.expect(tag::SEQUENCE, "Attribute").map_err(e)?;
                let mut ar = DerReader::new(attr.content);
                let attr_oid = ar.expect(tag::OID, "attribute type").map_err(e)?.content;
                let values = ar.expect(tag::SET, "attribute values").map_err(e)?;
                let value = DerReader::new(values.content).any().map_err(e)?;
                if attr_oid == oid::CONTENT_TYPE {
                    content_type_ok = value.tag == tag::OID && value.content == oid::DATA;
                } else if attr_oid == oid::MESSAGE_DIGEST {
                    digest_ok = value.tag == tag::OCTET_STRING
                        && value.content == hash.digest(content).as_slice();
                }
            }
            if !content_type_ok || !digest_ok {
                return Err("signed attributes do not match the .SF file".into());
            }
            // Signed over the attributes re-tagged as a SET.
            let mut m = attrs.raw.to_vec();
            m[0] = tag::SET;
            m
        }
    };
    crypto::verify(
        &cert.public_key_der,
        kind,
        hash,
        &message,
        signature.content,
    )
    .map_err(|x| format!("signature over the .SF: {x}"))?;
    Ok(cert)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn manifest_sections_keep_exact_bytes_and_continuations() {
        let m = b"Manifest-Version: 1.0\r\nCreated-By: x\r\n\r\nName: res/a-very-long-name-that-wra\r\n ps.png\r\nSHA-256-Digest: abc=\r\n\r\n";
        let s = parse_manifest(m).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].raw, b"Manifest-Version: 1.0\r\nCreated-By: x\r\n\r\n");
        assert_eq!(
            s[1].get("Name"),
            Some("res/a-very-long-name-that-wraps.png")
        );
        assert_eq!(s[1].get("sha-256-digest"), Some("abc="));
    }

    #[test]
    fn which_entries_need_digests() {
        assert!(needs_digest("classes.dex"));
        assert!(needs_digest("META-INF/services/x"));
        assert!(needs_digest("META-INF/notes.txt"));
        assert!(!needs_digest("META-INF/CERT.RSA"));
        assert!(!needs_digest("META-INF/MANIFEST.MF"));
        assert!(!needs_digest("res/"));
    }

    #[test]
    fn sha256_digests_need_api_18() {
        let m = b"Name: a\nSHA-256-Digest: AAAA\nSHA1-Digest: AAAA\n\n";
        let s = parse_manifest(m).unwrap();
        assert_eq!(digests_in(&s[0], "-Digest", 17).len(), 1);
        assert_eq!(digests_in(&s[0], "-Digest", 18).len(), 2);
    }
}
