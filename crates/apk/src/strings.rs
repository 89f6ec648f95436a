//! Android's binary string pool (`ResStringPool`), shared by binary XML and the resource table.
//!
//! Strings are decoded once, eagerly, under a budget proportional to the chunk's size: a hostile
//! pool whose offsets all point at the same long string (or whose lengths lie) is refused instead of
//! exploding in memory.

use crate::reader::{u16_at, u32_at};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StringPoolError {
    #[error("string pool header is truncated or inconsistent: {0}")]
    BadHeader(String),
    #[error("string #{index} of the pool is out of bounds or malformed: {what}")]
    BadString { index: usize, what: &'static str },
    #[error("string pool decodes to more than {limit} bytes: malicious or corrupt")]
    TooLarge { limit: usize },
}

/// A decoded string pool.
#[derive(Debug, Clone, Default)]
pub struct StringPool {
    strings: Vec<String>,
}

const UTF8_FLAG: u32 = 0x100;

impl StringPool {
    /// Parses a whole `RES_STRING_POOL_TYPE` chunk (header included).
    pub fn parse(chunk: &[u8]) -> Result<Self, StringPoolError> {
        let bad = |w: &str| StringPoolError::BadHeader(w.to_owned());
        let header_size = u16_at(chunk, 2).ok_or_else(|| bad("short header"))? as usize;
        let count = u32_at(chunk, 8).ok_or_else(|| bad("short header"))? as usize;
        let style_count = u32_at(chunk, 12).ok_or_else(|| bad("short header"))? as usize;
        let flags = u32_at(chunk, 16).ok_or_else(|| bad("short header"))?;
        let strings_start = u32_at(chunk, 20).ok_or_else(|| bad("short header"))? as usize;
        if header_size < 28 || header_size > chunk.len() {
            return Err(bad("header size out of range"));
        }
        let offsets_end = count
            .checked_add(style_count)
            .and_then(|n| n.checked_mul(4))
            .and_then(|n| n.checked_add(header_size))
            .ok_or_else(|| bad("string count overflows"))?;
        if offsets_end > chunk.len() {
            return Err(bad("more string offsets than the chunk holds"));
        }
        if count > 0 && (strings_start < offsets_end || strings_start > chunk.len()) {
            return Err(bad("strings start out of range"));
        }
        let utf8 = flags & UTF8_FLAG != 0;
        let data = &chunk[strings_start.min(chunk.len())..];
        let budget = chunk.len().saturating_mul(4).saturating_add(1 << 16);
        let mut used = 0usize;
        let mut strings = Vec::with_capacity(count);
        for index in 0..count {
            let off = u32_at(chunk, header_size + index * 4).ok_or_else(|| bad("short offsets"))?
                as usize;
            let s = if utf8 {
                decode_utf8(data, off)
            } else {
                decode_utf16(data, off)
            }
            .map_err(|what| StringPoolError::BadString { index, what })?;
            used = used.saturating_add(s.len() + 24);
            if used > budget {
                return Err(StringPoolError::TooLarge { limit: budget });
            }
            strings.push(s);
        }
        Ok(StringPool { strings })
    }

    pub fn get(&self, index: u32) -> Option<&str> {
        self.strings.get(index as usize).map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.strings.len()
    }

    pub fn is_empty(&self) -> bool {
        self.strings.is_empty()
    }
}

fn decode_utf8(data: &[u8], off: usize) -> Result<String, &'static str> {
    let mut at = off;
    let length = |at: &mut usize| -> Result<usize, &'static str> {
        let b0 = *data.get(*at).ok_or("offset out of bounds")? as usize;
        *at += 1;
        if b0 & 0x80 != 0 {
            let b1 = *data.get(*at).ok_or("truncated length")? as usize;
            *at += 1;
            Ok(((b0 & 0x7f) << 8) | b1)
        } else {
            Ok(b0)
        }
    };
    let _utf16_len = length(&mut at)?;
    let len = length(&mut at)?;
    let bytes = data
        .get(at..at.checked_add(len).ok_or("length overflows")?)
        .ok_or("string runs past the pool")?;
    // aapt writes modified UTF-8 at times; be lenient about the encoding, strict about bounds.
    Ok(String::from_utf8_lossy(bytes).into_owned())
}

fn decode_utf16(data: &[u8], off: usize) -> Result<String, &'static str> {
    let mut at = off;
    let first = u16_at(data, at).ok_or("offset out of bounds")? as usize;
    at += 2;
    let len = if first & 0x8000 != 0 {
        let second = u16_at(data, at).ok_or("truncated length")? as usize;
        at += 2;
        ((first & 0x7fff) << 16) | second
    } else {
        first
    };
    let end = len
        .checked_mul(2)
        .and_then(|n| n.checked_add(at))
        .ok_or("length overflows")?;
    let bytes = data.get(at..end).ok_or("string runs past the pool")?;
    let units = bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]));
    Ok(char::decode_utf16(units)
        .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
pub(crate) mod tests {
    use super::*;

    /// Builds a UTF-16 or UTF-8 pool chunk for tests.
    pub(crate) fn build_pool(strings: &[&str], utf8: bool) -> Vec<u8> {
        let mut data = Vec::new();
        let mut offsets = Vec::new();
        for s in strings {
            offsets.push(data.len() as u32);
            if utf8 {
                let n16 = s.encode_utf16().count();
                data.push(n16 as u8);
                data.push(s.len() as u8);
                data.extend_from_slice(s.as_bytes());
                data.push(0);
            } else {
                let units: Vec<u16> = s.encode_utf16().collect();
                data.extend_from_slice(&(units.len() as u16).to_le_bytes());
                for u in units {
                    data.extend_from_slice(&u.to_le_bytes());
                }
                data.extend_from_slice(&[0, 0]);
            }
        }
        while data.len() % 4 != 0 {
            data.push(0);
        }
        let header = 28usize;
        let strings_start = header + offsets.len() * 4;
        let size = strings_start + data.len();
        let mut chunk = Vec::new();
        chunk.extend_from_slice(&1u16.to_le_bytes());
        chunk.extend_from_slice(&(header as u16).to_le_bytes());
        chunk.extend_from_slice(&(size as u32).to_le_bytes());
        chunk.extend_from_slice(&(strings.len() as u32).to_le_bytes());
        chunk.extend_from_slice(&0u32.to_le_bytes());
        chunk.extend_from_slice(&(if utf8 { UTF8_FLAG } else { 0 }).to_le_bytes());
        chunk.extend_from_slice(&(strings_start as u32).to_le_bytes());
        chunk.extend_from_slice(&0u32.to_le_bytes());
        for o in offsets {
            chunk.extend_from_slice(&o.to_le_bytes());
        }
        chunk.extend_from_slice(&data);
        chunk
    }

    #[test]
    fn decodes_both_encodings() {
        for utf8 in [false, true] {
            let pool =
                StringPool::parse(&build_pool(&["", "manifest", "Grüße", "日本"], utf8)).unwrap();
            assert_eq!(pool.len(), 4);
            assert_eq!(pool.get(1), Some("manifest"));
            assert_eq!(pool.get(2), Some("Grüße"));
            assert_eq!(pool.get(3), Some("日本"));
            assert_eq!(pool.get(4), None);
        }
    }

    #[test]
    fn refuses_amplification_and_bad_lengths() {
        // 2000 offsets all pointing at one 0x7fff-unit string: would decode to ~130 MB.
        let long: String = "x".repeat(0x7fff);
        let mut chunk = build_pool(&[&long], false);
        let count = 2000u32;
        let header = 28usize;
        let data_start = header + 4;
        let data = chunk[data_start..].to_vec();
        chunk.truncate(header);
        chunk[8..12].copy_from_slice(&count.to_le_bytes());
        let strings_start = header + count as usize * 4;
        chunk[20..24].copy_from_slice(&(strings_start as u32).to_le_bytes());
        chunk.extend(std::iter::repeat_n(0u8, count as usize * 4));
        chunk.extend_from_slice(&data);
        let size = chunk.len() as u32;
        chunk[4..8].copy_from_slice(&size.to_le_bytes());
        assert!(matches!(
            StringPool::parse(&chunk).unwrap_err(),
            StringPoolError::TooLarge { .. }
        ));

        let mut chunk = build_pool(&["abc"], false);
        chunk[32] = 0xff; // length 0x7fff.. runs past the end
        chunk[33] = 0x7f;
        assert!(matches!(
            StringPool::parse(&chunk).unwrap_err(),
            StringPoolError::BadString { .. }
        ));
        let mut chunk = build_pool(&["abc"], false);
        chunk[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            StringPool::parse(&chunk).unwrap_err(),
            StringPoolError::BadHeader(_)
        ));
    }
}
