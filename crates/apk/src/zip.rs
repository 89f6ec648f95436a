//! The APK's zip container, read from memory with the quirks real APKs have and the limits a
//! package installer needs against hostile files.
//!
//! Accepted: data descriptors (flag bit 3: the central directory's sizes and CRC are authoritative),
//! alignment padding in local extra fields (zipalign), directory entries, an archive comment, zip64
//! end records and zip64 extra fields, bytes before the first entry.
//! Rejected (like Android's libziparchive, or stricter): duplicate names (the "Master Key" class of
//! attacks), a local header whose name differs from the central one, encrypted entries, entries
//! that overlap each other or the central directory (overlapping-entry zip bombs), more than
//! [`ZipLimits::max_entries`] entries, declared sizes beyond the caps, a compression ratio beyond
//! [`ZipLimits::max_ratio`], inflated data longer or shorter than declared, CRC mismatches.
//!
//! [`ZipArchive::signing_block`] locates the APK Signing Block between the entries and the central
//! directory.

use std::collections::HashMap;
use std::io::Read;

use crate::reader::{Reader, u16_at, u32_at, u64_at};

/// Caps that protect the reader; [`ZipLimits::default`] suits phone APKs (games included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZipLimits {
    /// Most entries an archive may list.
    pub max_entries: usize,
    /// Largest uncompressed size of a single entry, bytes.
    pub max_entry_size: u64,
    /// Largest sum of all entries' uncompressed sizes, bytes.
    pub max_total_size: u64,
    /// Largest uncompressed/compressed ratio, checked for entries above [`Self::ratio_floor`].
    pub max_ratio: u64,
    /// Entries smaller than this are not ratio-checked (tiny files compress absurdly well).
    pub ratio_floor: u64,
}

impl Default for ZipLimits {
    fn default() -> Self {
        ZipLimits {
            max_entries: 100_000,
            max_entry_size: 1 << 30,
            max_total_size: 8 << 30,
            max_ratio: 200,
            ratio_floor: 1 << 20,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ZipError {
    #[error("not a zip archive: no end of central directory record (truncated or not a zip file)")]
    NoEndOfCentralDirectory,
    #[error("zip archive truncated or corrupt: {0}")]
    Corrupt(String),
    #[error("zip archive lists {count} entries, more than the limit of {limit}")]
    TooManyEntries { count: u64, limit: usize },
    #[error("zip entry `{0}` appears more than once (duplicate entries are refused)")]
    DuplicateEntry(String),
    #[error("zip entry name is not valid UTF-8 (at central directory offset {0})")]
    NameNotUtf8(u64),
    #[error("zip entry `{0}` is encrypted (not supported in APKs)")]
    Encrypted(String),
    #[error("zip entry `{name}`: local header name `{local}` differs from the central directory")]
    NameMismatch { name: String, local: String },
    #[error("zip entries `{0}` and `{1}` overlap (overlapping-entry zip bomb or corrupt archive)")]
    Overlap(String, String),
    #[error("zip entry `{name}` is too large: {size} bytes uncompressed, limit {limit}")]
    EntryTooLarge { name: String, size: u64, limit: u64 },
    #[error("zip archive too large: {size} bytes uncompressed in total, limit {limit} (zip bomb?)")]
    TotalTooLarge { size: u64, limit: u64 },
    #[error(
        "zip entry `{name}` compresses {ratio}:1, more than the limit of {limit}:1 (zip bomb?)"
    )]
    RatioTooHigh {
        name: String,
        ratio: u64,
        limit: u64,
    },
    #[error(
        "zip entry `{name}` uses compression method {method} (only stored and deflate exist in APKs)"
    )]
    UnsupportedMethod { name: String, method: u16 },
    #[error("zip entry `{name}`: {what}")]
    BadData { name: String, what: String },
    #[error("no zip entry named `{0}`")]
    NotFound(String),
    #[error("APK Signing Block is malformed: {0}")]
    BadSigningBlock(String),
}

fn corrupt(what: impl Into<String>) -> ZipError {
    ZipError::Corrupt(what.into())
}

/// One entry of the central directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZipEntry {
    pub name: String,
    /// 0 stored, 8 deflate.
    pub method: u16,
    pub flags: u16,
    pub crc32: u32,
    pub compressed_size: u64,
    pub uncompressed_size: u64,
    pub local_header_offset: u64,
    /// Where the entry's (compressed) bytes start, after the local header and its padding.
    pub data_offset: u64,
}

impl ZipEntry {
    pub fn is_dir(&self) -> bool {
        self.name.ends_with('/')
    }

    /// True if the name could be extracted under a directory without escaping it.
    pub fn is_safe_path(&self) -> bool {
        !self.name.starts_with('/')
            && !self.name.contains('\\')
            && !self.name.split('/').any(|part| part == ".." || part == ".")
    }
}

/// Where the zip's sections are (what APK Signature Scheme v2+ digests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZipSections {
    pub central_directory_offset: u64,
    pub central_directory_size: u64,
    /// Offset of the (classic) end of central directory record.
    pub eocd_offset: u64,
    /// Where the central directory section the signature covers ends (the zip64 end records, if
    /// any, sit between the central directory and the classic EOCD and belong to this section).
    pub central_directory_section_end: u64,
}

/// The APK Signing Block: ID-value pairs between the entries and the central directory.
#[derive(Debug, Clone)]
pub struct SigningBlock<'a> {
    /// Offset of the block's first byte (its leading size field).
    pub offset: u64,
    pub pairs: Vec<(u32, &'a [u8])>,
}

impl<'a> SigningBlock<'a> {
    pub fn get(&self, id: u32) -> Option<&'a [u8]> {
        self.pairs.iter().find(|(i, _)| *i == id).map(|(_, v)| *v)
    }
}

/// A zip archive held in memory.
#[derive(Debug)]
pub struct ZipArchive<'a> {
    data: &'a [u8],
    entries: Vec<ZipEntry>,
    by_name: HashMap<String, usize>,
    sections: ZipSections,
    limits: ZipLimits,
}

const EOCD_SIG: u32 = 0x0605_4b50;
const ZIP64_LOCATOR_SIG: u32 = 0x0706_4b50;
const ZIP64_EOCD_SIG: u32 = 0x0606_4b50;
const CENTRAL_SIG: u32 = 0x0201_4b50;
const LOCAL_SIG: u32 = 0x0403_4b50;
const SIGNING_BLOCK_MAGIC: &[u8; 16] = b"APK Sig Block 42";

impl<'a> ZipArchive<'a> {
    pub fn parse(data: &'a [u8]) -> Result<Self, ZipError> {
        Self::parse_with_limits(data, ZipLimits::default())
    }

    pub fn parse_with_limits(data: &'a [u8], limits: ZipLimits) -> Result<Self, ZipError> {
        let eocd = find_eocd(data)?;
        let disk_entries = u16_at(data, eocd + 8).ok_or_else(|| corrupt("short EOCD"))?;
        let mut count = u64::from(u16_at(data, eocd + 10).ok_or_else(|| corrupt("short EOCD"))?);
        let mut cd_size = u64::from(u32_at(data, eocd + 12).ok_or_else(|| corrupt("short EOCD"))?);
        let mut cd_offset =
            u64::from(u32_at(data, eocd + 16).ok_or_else(|| corrupt("short EOCD"))?);
        if u16_at(data, eocd + 4) != Some(0)
            || u16_at(data, eocd + 6) != Some(0)
            || u64::from(disk_entries) != count
        {
            return Err(corrupt("multi-disk (spanned) archives are not supported"));
        }
        let mut cd_section_end = eocd as u64;
        // zip64: the locator sits right before the classic EOCD.
        if eocd >= 20 && u32_at(data, eocd - 20) == Some(ZIP64_LOCATOR_SIG) {
            let z64 = u64_at(data, eocd - 20 + 8).ok_or_else(|| corrupt("short zip64 locator"))?;
            let z64 =
                usize::try_from(z64).map_err(|_| corrupt("zip64 EOCD offset out of range"))?;
            if z64 >= eocd - 20 || u32_at(data, z64) != Some(ZIP64_EOCD_SIG) {
                return Err(corrupt("zip64 end of central directory record not found"));
            }
            count = u64_at(data, z64 + 32).ok_or_else(|| corrupt("short zip64 EOCD"))?;
            cd_size = u64_at(data, z64 + 40).ok_or_else(|| corrupt("short zip64 EOCD"))?;
            cd_offset = u64_at(data, z64 + 48).ok_or_else(|| corrupt("short zip64 EOCD"))?;
            cd_section_end = z64 as u64;
        }
        if count > limits.max_entries as u64 {
            return Err(ZipError::TooManyEntries {
                count,
                limit: limits.max_entries,
            });
        }
        if cd_offset.checked_add(cd_size) != Some(cd_section_end) {
            return Err(corrupt(format!(
                "central directory (offset {cd_offset}, size {cd_size}) does not end where the end record starts ({cd_section_end})"
            )));
        }
        let cd = &data[cd_offset as usize..cd_section_end as usize];
        let mut reader = Reader::new(cd);
        let mut entries = Vec::with_capacity(count.min(4096) as usize);
        let mut by_name = HashMap::new();
        let mut total: u64 = 0;
        for _ in 0..count {
            let at = cd_offset + (cd.len() - reader.remaining()) as u64;
            let entry = read_central_entry(&mut reader, data, cd_offset, at)?;
            if entry.uncompressed_size > limits.max_entry_size {
                return Err(ZipError::EntryTooLarge {
                    name: entry.name,
                    size: entry.uncompressed_size,
                    limit: limits.max_entry_size,
                });
            }
            total = total.saturating_add(entry.uncompressed_size);
            if total > limits.max_total_size {
                return Err(ZipError::TotalTooLarge {
                    size: total,
                    limit: limits.max_total_size,
                });
            }
            if by_name.insert(entry.name.clone(), entries.len()).is_some() {
                return Err(ZipError::DuplicateEntry(entry.name));
            }
            entries.push(entry);
        }
        if !reader.is_empty() {
            return Err(corrupt(
                "bytes left over after the last central directory entry",
            ));
        }
        // No two entries may share bytes: sort by position and check each ends before the next.
        let mut order: Vec<usize> = (0..entries.len()).collect();
        order.sort_by_key(|&i| entries[i].local_header_offset);
        for pair in order.windows(2) {
            let (a, b) = (&entries[pair[0]], &entries[pair[1]]);
            if a.data_offset + a.compressed_size > b.local_header_offset {
                return Err(ZipError::Overlap(a.name.clone(), b.name.clone()));
            }
        }
        Ok(ZipArchive {
            data,
            entries,
            by_name,
            sections: ZipSections {
                central_directory_offset: cd_offset,
                central_directory_size: cd_size,
                eocd_offset: eocd as u64,
                central_directory_section_end: cd_section_end,
            },
            limits,
        })
    }

    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    pub fn entries(&self) -> &[ZipEntry] {
        &self.entries
    }

    pub fn sections(&self) -> ZipSections {
        self.sections
    }

    pub fn entry(&self, name: &str) -> Option<&ZipEntry> {
        self.by_name.get(name).map(|&i| &self.entries[i])
    }

    /// The entry's bytes, inflated if needed, checked against its declared size and CRC-32 and
    /// against the limits.
    pub fn read(&self, entry: &ZipEntry) -> Result<Vec<u8>, ZipError> {
        let name = &entry.name;
        if entry.uncompressed_size > self.limits.max_entry_size {
            return Err(ZipError::EntryTooLarge {
                name: name.clone(),
                size: entry.uncompressed_size,
                limit: self.limits.max_entry_size,
            });
        }
        let start = entry.data_offset as usize;
        let raw = &self.data[start..start + entry.compressed_size as usize];
        let out = match entry.method {
            0 => raw.to_vec(),
            8 => {
                if entry.uncompressed_size >= self.limits.ratio_floor {
                    let ratio = entry.uncompressed_size / entry.compressed_size.max(1);
                    if ratio > self.limits.max_ratio {
                        return Err(ZipError::RatioTooHigh {
                            name: name.clone(),
                            ratio,
                            limit: self.limits.max_ratio,
                        });
                    }
                }
                let want = entry.uncompressed_size;
                let mut out = Vec::with_capacity(want.min(64 << 20) as usize);
                // Read at most one byte more than declared, to detect lies without inflating a bomb.
                flate2::read::DeflateDecoder::new(raw)
                    .take(want + 1)
                    .read_to_end(&mut out)
                    .map_err(|e| ZipError::BadData {
                        name: name.clone(),
                        what: format!("deflate stream is corrupt: {e}"),
                    })?;
                if out.len() as u64 != want {
                    return Err(ZipError::BadData {
                        name: name.clone(),
                        what: format!(
                            "inflates to {}{} bytes, but the directory says {want}",
                            out.len(),
                            if out.len() as u64 > want { "+" } else { "" }
                        ),
                    });
                }
                out
            }
            method => {
                return Err(ZipError::UnsupportedMethod {
                    name: name.clone(),
                    method,
                });
            }
        };
        let crc = crc32fast::hash(&out);
        if crc != entry.crc32 {
            return Err(ZipError::BadData {
                name: name.clone(),
                what: format!(
                    "CRC-32 {crc:08x} does not match the directory's {:08x}",
                    entry.crc32
                ),
            });
        }
        Ok(out)
    }

    /// Reads the named entry.
    pub fn read_by_name(&self, name: &str) -> Result<Vec<u8>, ZipError> {
        let entry = self
            .entry(name)
            .ok_or_else(|| ZipError::NotFound(name.to_owned()))?;
        self.read(entry)
    }

    /// Locates the APK Signing Block (None if the archive has none).
    pub fn signing_block(&self) -> Result<Option<SigningBlock<'a>>, ZipError> {
        let cd = self.sections.central_directory_offset as usize;
        let bad = |w: &str| ZipError::BadSigningBlock(w.to_owned());
        if cd < 32 || self.data.get(cd - 16..cd) != Some(&SIGNING_BLOCK_MAGIC[..]) {
            return Ok(None);
        }
        let size = u64_at(self.data, cd - 24).ok_or_else(|| bad("short footer"))?;
        if size < 24 || size > (cd as u64).saturating_sub(8) {
            return Err(bad("size out of range"));
        }
        let start = cd - size as usize - 8;
        if u64_at(self.data, start) != Some(size) {
            return Err(bad("the two size fields differ"));
        }
        // Entries must end before the block starts.
        if let Some(last) = self
            .entries
            .iter()
            .map(|e| e.data_offset + e.compressed_size)
            .max()
            && last > start as u64
        {
            return Err(bad("zip entries overlap the signing block"));
        }
        let mut reader = Reader::new(&self.data[start + 8..cd - 24]);
        let mut pairs = Vec::new();
        while !reader.is_empty() {
            let len = reader.u64().ok_or_else(|| bad("truncated pair length"))?;
            if len < 4 || len > reader.remaining() as u64 {
                return Err(bad("pair length out of range"));
            }
            let id = reader.u32().ok_or_else(|| bad("truncated pair id"))?;
            let value = reader
                .bytes(len as usize - 4)
                .ok_or_else(|| bad("truncated pair value"))?;
            pairs.push((id, value));
        }
        Ok(Some(SigningBlock {
            offset: start as u64,
            pairs,
        }))
    }
}

/// Finds the classic EOCD: the last signature whose comment length reaches exactly the end.
fn find_eocd(data: &[u8]) -> Result<usize, ZipError> {
    if data.len() < 22 {
        return Err(ZipError::NoEndOfCentralDirectory);
    }
    let last = data.len() - 22;
    let first = last.saturating_sub(0xffff);
    for at in (first..=last).rev() {
        if u32_at(data, at) == Some(EOCD_SIG)
            && u16_at(data, at + 20).map(usize::from) == Some(data.len() - at - 22)
        {
            return Ok(at);
        }
    }
    Err(ZipError::NoEndOfCentralDirectory)
}

fn read_central_entry(
    r: &mut Reader<'_>,
    data: &[u8],
    cd_offset: u64,
    at: u64,
) -> Result<ZipEntry, ZipError> {
    let short = || corrupt(format!("central directory entry at {at} is truncated"));
    if r.u32().ok_or_else(short)? != CENTRAL_SIG {
        return Err(corrupt(format!(
            "bad central directory entry signature at {at}"
        )));
    }
    let _made_by = r.u16().ok_or_else(short)?;
    let _needed = r.u16().ok_or_else(short)?;
    let flags = r.u16().ok_or_else(short)?;
    let method = r.u16().ok_or_else(short)?;
    let _time = r.u32().ok_or_else(short)?;
    let crc32 = r.u32().ok_or_else(short)?;
    let mut compressed_size = u64::from(r.u32().ok_or_else(short)?);
    let mut uncompressed_size = u64::from(r.u32().ok_or_else(short)?);
    let name_len = r.u16().ok_or_else(short)? as usize;
    let extra_len = r.u16().ok_or_else(short)? as usize;
    let comment_len = r.u16().ok_or_else(short)? as usize;
    let _disk = r.u16().ok_or_else(short)?;
    let _internal = r.u16().ok_or_else(short)?;
    let _external = r.u32().ok_or_else(short)?;
    let mut local_header_offset = u64::from(r.u32().ok_or_else(short)?);
    let name_bytes = r.bytes(name_len).ok_or_else(short)?;
    let extra = r.bytes(extra_len).ok_or_else(short)?;
    r.bytes(comment_len).ok_or_else(short)?;
    let name = std::str::from_utf8(name_bytes)
        .map_err(|_| ZipError::NameNotUtf8(at))?
        .to_owned();
    if name.is_empty() || name.contains('\0') {
        return Err(corrupt(format!(
            "entry at {at} has an empty name or a NUL in its name"
        )));
    }
    // zip64 extended information: only the fields whose 32-bit value is saturated, in this order.
    let mut ex = Reader::new(extra);
    while ex.remaining() >= 4 {
        let (Some(id), Some(len)) = (ex.u16(), ex.u16()) else {
            break;
        };
        let Some(body) = ex.bytes(len as usize) else {
            break;
        };
        if id == 0x0001 {
            let mut z = Reader::new(body);
            if uncompressed_size == 0xffff_ffff {
                uncompressed_size = z
                    .u64()
                    .ok_or_else(|| corrupt(format!("`{name}`: short zip64 extra field")))?;
            }
            if compressed_size == 0xffff_ffff {
                compressed_size = z
                    .u64()
                    .ok_or_else(|| corrupt(format!("`{name}`: short zip64 extra field")))?;
            }
            if local_header_offset == 0xffff_ffff {
                local_header_offset = z
                    .u64()
                    .ok_or_else(|| corrupt(format!("`{name}`: short zip64 extra field")))?;
            }
        }
    }
    if flags & 0x0001 != 0 {
        return Err(ZipError::Encrypted(name));
    }
    if method == 0 && compressed_size != uncompressed_size {
        return Err(ZipError::BadData {
            name,
            what: "stored entry with different compressed and uncompressed sizes".into(),
        });
    }
    // Local header: must sit before the central directory and name the same file.
    let lho = usize::try_from(local_header_offset)
        .map_err(|_| corrupt(format!("`{name}`: local header offset out of range")))?;
    if local_header_offset + 30 > cd_offset || u32_at(data, lho) != Some(LOCAL_SIG) {
        return Err(corrupt(format!(
            "`{name}`: no local header at offset {local_header_offset}"
        )));
    }
    let local_name_len = u16_at(data, lho + 26).ok_or_else(short)? as usize;
    let local_extra_len = u16_at(data, lho + 28).ok_or_else(short)? as usize;
    let local_name = data
        .get(lho + 30..lho + 30 + local_name_len)
        .ok_or_else(short)?;
    if local_name != name_bytes {
        return Err(ZipError::NameMismatch {
            local: String::from_utf8_lossy(local_name).into_owned(),
            name,
        });
    }
    let local_flags = u16_at(data, lho + 6).ok_or_else(short)?;
    if local_flags & 0x0001 != 0 {
        return Err(ZipError::Encrypted(name));
    }
    let data_offset = local_header_offset + 30 + local_name_len as u64 + local_extra_len as u64;
    if data_offset
        .checked_add(compressed_size)
        .is_none_or(|end| end > cd_offset)
    {
        return Err(corrupt(format!(
            "`{name}`: data runs past the start of the central directory"
        )));
    }
    Ok(ZipEntry {
        name,
        method,
        flags,
        crc32,
        compressed_size,
        uncompressed_size,
        local_header_offset,
        data_offset,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
pub(crate) mod tests {
    use super::*;

    /// A minimal zip writer for tests: (name, data, deflate?) entries, optional data descriptors.
    pub(crate) fn build_zip(entries: &[(&str, &[u8], bool)], descriptors: bool) -> Vec<u8> {
        use std::io::Write;
        let mut out = Vec::new();
        let mut central = Vec::new();
        for (name, content, deflate) in entries {
            let body = if *deflate {
                let mut enc =
                    flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
                enc.write_all(content).unwrap();
                enc.finish().unwrap()
            } else {
                content.to_vec()
            };
            let crc = crc32fast::hash(content);
            let method: u16 = if *deflate { 8 } else { 0 };
            let flags: u16 = if descriptors { 8 } else { 0 };
            let offset = out.len() as u32;
            out.extend_from_slice(&LOCAL_SIG.to_le_bytes());
            out.extend_from_slice(&20u16.to_le_bytes());
            out.extend_from_slice(&flags.to_le_bytes());
            out.extend_from_slice(&method.to_le_bytes());
            out.extend_from_slice(&0u32.to_le_bytes());
            let (lc, ls, lu) = if descriptors {
                (0, 0, 0)
            } else {
                (crc, body.len() as u32, content.len() as u32)
            };
            out.extend_from_slice(&lc.to_le_bytes());
            out.extend_from_slice(&ls.to_le_bytes());
            out.extend_from_slice(&lu.to_le_bytes());
            out.extend_from_slice(&(name.len() as u16).to_le_bytes());
            out.extend_from_slice(&3u16.to_le_bytes()); // 3 bytes of alignment padding
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(&[0, 0, 0]);
            out.extend_from_slice(&body);
            if descriptors {
                out.extend_from_slice(&0x0807_4b50u32.to_le_bytes());
                out.extend_from_slice(&crc.to_le_bytes());
                out.extend_from_slice(&(body.len() as u32).to_le_bytes());
                out.extend_from_slice(&(content.len() as u32).to_le_bytes());
            }
            central.extend_from_slice(&CENTRAL_SIG.to_le_bytes());
            central.extend_from_slice(&20u16.to_le_bytes());
            central.extend_from_slice(&20u16.to_le_bytes());
            central.extend_from_slice(&flags.to_le_bytes());
            central.extend_from_slice(&method.to_le_bytes());
            central.extend_from_slice(&0u32.to_le_bytes());
            central.extend_from_slice(&crc.to_le_bytes());
            central.extend_from_slice(&(body.len() as u32).to_le_bytes());
            central.extend_from_slice(&(content.len() as u32).to_le_bytes());
            central.extend_from_slice(&(name.len() as u16).to_le_bytes());
            central.extend_from_slice(&[0; 12]);
            central.extend_from_slice(&offset.to_le_bytes());
            central.extend_from_slice(name.as_bytes());
        }
        let cd_offset = out.len() as u32;
        out.extend_from_slice(&central);
        out.extend_from_slice(&EOCD_SIG.to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        out.extend_from_slice(&(central.len() as u32).to_le_bytes());
        out.extend_from_slice(&cd_offset.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out
    }

    #[test]
    fn reads_stored_and_deflated_with_descriptors_and_padding() {
        for descriptors in [false, true] {
            let zip = build_zip(
                &[
                    ("a.txt", b"hello", false),
                    ("dir/", b"", false),
                    ("b.bin", &[7u8; 5000], true),
                ],
                descriptors,
            );
            let archive = ZipArchive::parse(&zip).unwrap();
            assert_eq!(archive.entries().len(), 3);
            assert_eq!(archive.read_by_name("a.txt").unwrap(), b"hello");
            assert_eq!(archive.read_by_name("b.bin").unwrap(), vec![7u8; 5000]);
            assert!(archive.entry("dir/").unwrap().is_dir());
            assert!(archive.signing_block().unwrap().is_none());
        }
    }

    #[test]
    fn refuses_duplicates() {
        let zip = build_zip(&[("a", b"1", false), ("a", b"2", false)], false);
        assert_eq!(
            ZipArchive::parse(&zip).unwrap_err(),
            ZipError::DuplicateEntry("a".into())
        );
    }

    #[test]
    fn refuses_truncation_anywhere() {
        let zip = build_zip(
            &[("a.txt", b"hello", false), ("b", &[1u8; 300], true)],
            false,
        );
        for len in 0..zip.len() {
            assert!(
                ZipArchive::parse(&zip[..len]).is_err(),
                "accepted a zip truncated to {len} bytes"
            );
        }
    }

    #[test]
    fn refuses_bombs_by_ratio_and_size() {
        let zeros = vec![0u8; 4 << 20];
        let zip = build_zip(&[("bomb", &zeros, true)], false);
        let archive = ZipArchive::parse(&zip).unwrap();
        let err = archive.read_by_name("bomb").unwrap_err();
        assert!(matches!(err, ZipError::RatioTooHigh { .. }), "{err}");
        let small = ZipLimits {
            max_entry_size: 1 << 20,
            ..ZipLimits::default()
        };
        assert!(matches!(
            ZipArchive::parse_with_limits(&zip, small).unwrap_err(),
            ZipError::EntryTooLarge { .. }
        ));
        let few = ZipLimits {
            max_entries: 0,
            ..ZipLimits::default()
        };
        assert!(matches!(
            ZipArchive::parse_with_limits(&zip, few).unwrap_err(),
            ZipError::TooManyEntries { .. }
        ));
    }

    #[test]
    fn refuses_lying_sizes_and_crc() {
        let mut zip = build_zip(&[("x", &[5u8; 100], true)], false);
        // Declare 50 bytes uncompressed in the central directory (offset of the usize field).
        let cd = u32_at(&zip, zip.len() - 6).unwrap() as usize;
        zip[cd + 24..cd + 28].copy_from_slice(&50u32.to_le_bytes());
        let archive = ZipArchive::parse(&zip).unwrap();
        assert!(matches!(
            archive.read_by_name("x").unwrap_err(),
            ZipError::BadData { .. }
        ));
        let mut zip = build_zip(&[("x", b"abc", false)], false);
        let cd = u32_at(&zip, zip.len() - 6).unwrap() as usize;
        zip[cd + 16] ^= 1;
        let archive = ZipArchive::parse(&zip).unwrap();
        let err = archive.read_by_name("x").unwrap_err();
        assert!(err.to_string().contains("CRC-32"), "{err}");
    }

    #[test]
    fn refuses_overlapping_entries() {
        let mut zip = build_zip(&[("a", b"aaaa", false), ("b", b"bbbb", false)], false);
        // Point b's central entry at a's local header... with a's name it mismatches; instead
        // grow a's sizes so it overlaps b.
        let cd = u32_at(&zip, zip.len() - 6).unwrap() as usize;
        zip[cd + 20..cd + 24].copy_from_slice(&40u32.to_le_bytes());
        zip[cd + 24..cd + 28].copy_from_slice(&40u32.to_le_bytes());
        let err = ZipArchive::parse(&zip).unwrap_err();
        assert!(matches!(err, ZipError::Overlap(..)), "{err}");
    }
}
