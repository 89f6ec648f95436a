//! The compiled resource table (`resources.arsc`) and resource resolution: the value of a resource
//! id for a device's locale, density and SDK level, following Android's matching rules (locale with
//! fallback to the default, best density with Android's "scale down beats scale up" preference,
//! `anydpi` first).
//!
//! Entries are not materialised: the table keeps each type chunk's bytes and reads an entry when it
//! is looked up, so hostile offset tables cannot amplify memory.

use crate::reader::{u16_at, u32_at};
use crate::strings::{StringPool, StringPoolError};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArscError {
    #[error("not a resource table (first chunk type {0:#06x})")]
    NotResourceTable(u16),
    #[error("resource table is truncated or corrupt at byte {offset}: {what}")]
    Corrupt { offset: usize, what: String },
    #[error("resource table string pool: {0}")]
    Strings(#[from] StringPoolError),
}

/// A typed value (`Res_value`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResValue {
    pub data_type: u8,
    pub data: u32,
}

impl ResValue {
    pub const TYPE_NULL: u8 = 0x00;
    pub const TYPE_REFERENCE: u8 = 0x01;
    pub const TYPE_STRING: u8 = 0x03;
    pub const TYPE_DYNAMIC_REFERENCE: u8 = 0x07;
    pub const TYPE_INT_DEC: u8 = 0x10;
    pub const TYPE_INT_HEX: u8 = 0x11;
    pub const TYPE_BOOLEAN: u8 = 0x12;

    pub fn is_reference(&self) -> bool {
        matches!(
            self.data_type,
            Self::TYPE_REFERENCE | Self::TYPE_DYNAMIC_REFERENCE
        ) && self.data != 0
    }

    pub fn is_int(&self) -> bool {
        matches!(self.data_type, Self::TYPE_INT_DEC | Self::TYPE_INT_HEX)
    }

    /// True for the colour types (`#argb`, `#rgb`, …).
    pub fn is_color(&self) -> bool {
        (0x1c..=0x1f).contains(&self.data_type)
    }
}

/// The qualifiers of a resource configuration that Cirrus resolves on (`ResTable_config`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    /// ISO 639 language ("" = any).
    pub language: String,
    /// ISO 3166 region ("" = any).
    pub country: String,
    pub script: String,
    /// dpi; 0 = unspecified, 0xfffe = anydpi, 0xffff = nodpi.
    pub density: u16,
    pub sdk_version: u16,
    /// Some other qualifier (orientation, night mode, screen size, mcc…) is set.
    pub has_other_qualifiers: bool,
}

pub const DENSITY_DEFAULT: u16 = 0;
pub const DENSITY_MEDIUM: u16 = 160;
pub const DENSITY_ANY: u16 = 0xfffe;
pub const DENSITY_NONE: u16 = 0xffff;

impl Config {
    fn parse(bytes: &[u8]) -> Config {
        let mut raw = [0u8; 64];
        let n = bytes.len().min(64);
        raw[..n].copy_from_slice(&bytes[..n]);
        let u16_at = |at: usize| u16::from_le_bytes([raw[at], raw[at + 1]]);
        let language = unpack_code(raw[8], raw[9], b'a');
        let country = unpack_code(raw[10], raw[11], b'0');
        let script: String = raw[36..40]
            .iter()
            .take_while(|&&b| b != 0)
            .map(|&b| b as char)
            .collect();
        let other = u16_at(4) != 0
            || u16_at(6) != 0
            || raw[12..14].iter().any(|&b| b != 0)
            || raw[16..24].iter().any(|&b| b != 0)
            || raw[28..36].iter().any(|&b| b != 0)
            || raw[48..50].iter().any(|&b| b != 0);
        Config {
            language,
            country,
            script,
            density: u16_at(14),
            sdk_version: u16_at(24),
            has_other_qualifiers: other,
        }
    }

    /// The locale as aapt prints it: "" (default), "de", "fr-CA".
    pub fn locale(&self) -> String {
        match (self.language.is_empty(), self.country.is_empty()) {
            (true, _) => String::new(),
            (false, true) => self.language.clone(),
            (false, false) => format!("{}-{}", self.language, self.country),
        }
    }
}

/// Two-letter codes are stored as is; three-letter ones packed into 15 bits.
fn unpack_code(b0: u8, b1: u8, base: u8) -> String {
    if b0 == 0 {
        return String::new();
    }
    if b0 & 0x80 != 0 {
        let first = b1 & 0x1f;
        let second = ((b1 & 0xe0) >> 5) | ((b0 & 0x03) << 3);
        let third = (b0 & 0x7c) >> 2;
        return [first, second, third]
            .iter()
            .map(|&c| (c + base) as char)
            .collect();
    }
    [b0 as char, b1 as char]
        .iter()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect()
}

/// What a device asks resources for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceConfig {
    /// BCP-47-ish tag: "de-DE", "fr", "" for none.
    pub locale: String,
    pub density: u16,
    pub sdk_version: u16,
}

impl Default for DeviceConfig {
    fn default() -> Self {
        DeviceConfig {
            locale: String::new(),
            density: 320,
            sdk_version: 34,
        }
    }
}

impl DeviceConfig {
    fn language(&self) -> &str {
        self.locale.split(['-', '_']).next().unwrap_or("")
    }

    fn country(&self) -> &str {
        self.locale
            .split(['-', '_'])
            .nth(1)
            .filter(|c| c.len() == 2 || c.len() == 3)
            .unwrap_or("")
    }
}

/// A resource entry's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryValue {
    Simple(ResValue),
    /// A bag (style, array, plurals…): parent and (name, value) items.
    Complex {
        parent: u32,
        items: Vec<(u32, ResValue)>,
    },
}

#[derive(Debug, Clone)]
struct TypeChunk<'a> {
    type_id: u8,
    flags: u8,
    entry_count: usize,
    entries_start: usize,
    /// Where the offset table starts inside `chunk`.
    header_size: usize,
    config: Config,
    chunk: &'a [u8],
}

#[derive(Debug, Clone)]
struct Package<'a> {
    id: u8,
    name: String,
    type_names: StringPool,
    types: Vec<TypeChunk<'a>>,
}

/// A parsed resource table.
#[derive(Debug, Clone)]
pub struct ResourceTable<'a> {
    pub strings: StringPool,
    packages: Vec<Package<'a>>,
}

/// Deepest reference chain followed (`@string/a` → `@string/b` → …).
const MAX_REFERENCE_DEPTH: usize = 8;

impl<'a> ResourceTable<'a> {
    pub fn parse(data: &'a [u8]) -> Result<Self, ArscError> {
        let corrupt = |offset: usize, what: &str| ArscError::Corrupt {
            offset,
            what: what.to_owned(),
        };
        let kind = u16_at(data, 0).ok_or_else(|| corrupt(0, "shorter than a chunk header"))?;
        if kind != 0x0002 {
            return Err(ArscError::NotResourceTable(kind));
        }
        let (header, size) =
            chunk_bounds(data, 0).ok_or_else(|| corrupt(0, "table size out of range"))?;
        let mut strings = None;
        let mut packages = Vec::new();
        let mut at = header;
        while at < size {
            let (_, chunk_size) = chunk_bounds(&data[..size], at)
                .ok_or_else(|| corrupt(at, "chunk size out of range"))?;
            let chunk = &data[at..at + chunk_size];
            match u16_at(chunk, 0) {
                Some(0x0001) if strings.is_none() => strings = Some(StringPool::parse(chunk)?),
                Some(0x0200) => packages.push(parse_package(chunk, at)?),
                _ => {}
            }
            at += chunk_size;
        }
        Ok(ResourceTable {
            strings: strings.unwrap_or_default(),
            packages,
        })
    }

    /// Every (config, value) defined for `id`.
    pub fn entries(&self, id: u32) -> Vec<(Config, EntryValue)> {
        let (pkg, ty, entry) = (
            (id >> 24) as u8,
            ((id >> 16) & 0xff) as u8,
            (id & 0xffff) as usize,
        );
        let mut out = Vec::new();
        for p in self.packages.iter().filter(|p| p.id == pkg) {
            for t in p.types.iter().filter(|t| t.type_id == ty) {
                if let Some(v) = read_entry(t, entry) {
                    out.push((t.config.clone(), v));
                }
            }
        }
        out
    }

    /// "drawable", "string", … for a resource id.
    pub fn type_name(&self, id: u32) -> Option<&str> {
        let (pkg, ty) = ((id >> 24) as u8, ((id >> 16) & 0xff) as u8);
        let p = self.packages.iter().find(|p| p.id == pkg)?;
        p.type_names.get(u32::from(ty).checked_sub(1)?)
    }

    pub fn package_name(&self) -> Option<&str> {
        self.packages.first().map(|p| p.name.as_str())
    }

    /// The best value of `id` for `device`, references followed.
    pub fn resolve(&self, id: u32, device: &DeviceConfig) -> Option<(Config, EntryValue)> {
        let mut id = id;
        for _ in 0..MAX_REFERENCE_DEPTH {
            let best = self.best(id, device)?;
            match &best.1 {
                EntryValue::Simple(v) if v.is_reference() => id = v.data,
                _ => return Some(best),
            }
        }
        None
    }

    /// The string value of `id` for `device`, references followed.
    pub fn resolve_string(&self, id: u32, device: &DeviceConfig) -> Option<String> {
        match self.resolve(id, device)?.1 {
            EntryValue::Simple(v) if v.data_type == ResValue::TYPE_STRING => {
                self.strings.get(v.data).map(str::to_owned)
            }
            _ => None,
        }
    }

    /// The configuration the device would pick for `id` (no references followed).
    pub fn best(&self, id: u32, device: &DeviceConfig) -> Option<(Config, EntryValue)> {
        let all = self.entries(id);
        let plain: Vec<&(Config, EntryValue)> = all
            .iter()
            .filter(|(c, _)| !c.has_other_qualifiers)
            .collect();
        let pool: Vec<&(Config, EntryValue)> = if plain.is_empty() {
            all.iter().collect()
        } else {
            plain
        };
        let mut best: Option<&(Config, EntryValue)> = None;
        for cand in pool {
            if !matches(&cand.0, device) {
                continue;
            }
            best = match best {
                Some(b) if !is_better(&cand.0, &b.0, device) => Some(b),
                _ => Some(cand),
            };
        }
        best.cloned()
    }

    /// Every locale any resource is defined for ("" for the default), sorted, deduplicated.
    pub fn locales(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .packages
            .iter()
            .flat_map(|p| p.types.iter().map(|t| t.config.locale()))
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Every density any resource is defined for (0 = unspecified), sorted, deduplicated.
    pub fn densities(&self) -> Vec<u16> {
        let mut out: Vec<u16> = self
            .packages
            .iter()
            .flat_map(|p| p.types.iter().map(|t| t.config.density))
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

fn chunk_bounds(data: &[u8], at: usize) -> Option<(usize, usize)> {
    let header = u16_at(data, at + 2)? as usize;
    let size = u32_at(data, at + 4)? as usize;
    if header < 8 || header > size || at.checked_add(size)? > data.len() {
        return None;
    }
    Some((header, size))
}

fn parse_package(chunk: &[u8], base: usize) -> Result<Package<'_>, ArscError> {
    let corrupt = |offset: usize, what: &str| ArscError::Corrupt {
        offset: base + offset,
        what: what.to_owned(),
    };
    let (header, size) =
        chunk_bounds(chunk, 0).ok_or_else(|| corrupt(0, "package size out of range"))?;
    if header < 8 + 4 + 256 + 16 {
        return Err(corrupt(0, "package header too short"));
    }
    let id = u32_at(chunk, 8).ok_or_else(|| corrupt(8, "short package header"))?;
    let id = u8::try_from(id).map_err(|_| corrupt(8, "package id out of range"))?;
    let name_units: Vec<u16> = chunk[12..12 + 256]
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .take_while(|&u| u != 0)
        .collect();
    let name = String::from_utf16_lossy(&name_units);
    let type_strings = u32_at(chunk, 268).unwrap_or(0) as usize;
    let mut type_names = StringPool::default();
    if type_strings != 0 {
        let (_, s) = chunk_bounds(chunk, type_strings)
            .ok_or_else(|| corrupt(type_strings, "type strings out of range"))?;
        type_names = StringPool::parse(&chunk[type_strings..type_strings + s])?;
    }
    let mut types = Vec::new();
    let mut at = header;
    while at < size {
        let (h, s) =
            chunk_bounds(chunk, at).ok_or_else(|| corrupt(at, "chunk size out of range"))?;
        let c = &chunk[at..at + s];
        if u16_at(c, 0) == Some(0x0201) {
            let config_size =
                u32_at(c, 20).ok_or_else(|| corrupt(at, "short type chunk"))? as usize;
            let entry_count =
                u32_at(c, 12).ok_or_else(|| corrupt(at, "short type chunk"))? as usize;
            let entries_start =
                u32_at(c, 16).ok_or_else(|| corrupt(at, "short type chunk"))? as usize;
            let flags = c.get(9).copied().unwrap_or(0);
            if config_size < 4 || 20 + config_size > h {
                return Err(corrupt(at, "type chunk config out of range"));
            }
            let per_entry = if flags & 0x03 == 0x02 { 2 } else { 4 };
            if entry_count
                .checked_mul(per_entry)
                .and_then(|n| n.checked_add(h))
                .is_none_or(|end| end > s)
                || entries_start > s
            {
                return Err(corrupt(at, "type chunk offsets out of range"));
            }
            types.push(TypeChunk {
                type_id: c[8],
                flags,
                entry_count,
                entries_start,
                header_size: h,
                config: Config::parse(&c[20..20 + config_size]),
                chunk: c,
            });
        }
        at += s;
    }
    Ok(Package {
        id,
        name,
        type_names,
        types,
    })
}

const FLAG_SPARSE: u8 = 0x01;
const FLAG_OFFSET16: u8 = 0x02;

fn read_entry(t: &TypeChunk<'_>, index: usize) -> Option<EntryValue> {
    let c = t.chunk;
    let offset = if t.flags & FLAG_SPARSE != 0 {
        // (u16 index, u16 offset / 4) pairs sorted by index.
        (0..t.entry_count).find_map(|i| {
            let at = t.header_size + i * 4;
            (u16_at(c, at)? as usize == index).then(|| u16_at(c, at + 2).map(|o| o as usize * 4))?
        })?
    } else {
        if index >= t.entry_count {
            return None;
        }
        if t.flags & FLAG_OFFSET16 != 0 {
            let o = u16_at(c, t.header_size + index * 2)?;
            if o == 0xffff {
                return None;
            }
            o as usize * 4
        } else {
            let o = u32_at(c, t.header_size + index * 4)?;
            if o == u32::MAX {
                return None;
            }
            o as usize
        }
    };
    let at = t.entries_start.checked_add(offset)?;
    let size = u16_at(c, at)? as usize;
    let flags = u16_at(c, at + 2)?;
    if flags & 0x0008 != 0 {
        // Compact entry: type in the high byte of the flags, data inline.
        return Some(EntryValue::Simple(ResValue {
            data_type: (flags >> 8) as u8,
            data: u32_at(c, at + 4)?,
        }));
    }
    if flags & 0x0001 != 0 {
        let parent = u32_at(c, at + 8)?;
        let count = u32_at(c, at + 12)? as usize;
        let items_at = at.checked_add(size)?;
        if count.checked_mul(12)?.checked_add(items_at)? > c.len() {
            return None;
        }
        let items = (0..count)
            .map(|i| {
                let m = items_at + i * 12;
                Some((
                    u32_at(c, m)?,
                    ResValue {
                        data_type: *c.get(m + 7)?,
                        data: u32_at(c, m + 8)?,
                    },
                ))
            })
            .collect::<Option<Vec<_>>>()?;
        return Some(EntryValue::Complex { parent, items });
    }
    let v = at.checked_add(size)?;
    Some(EntryValue::Simple(ResValue {
        data_type: *c.get(v + 3)?,
        data: u32_at(c, v + 4)?,
    }))
}

/// Can a resource with config `c` be used on `device` at all?
fn matches(c: &Config, device: &DeviceConfig) -> bool {
    if c.sdk_version != 0 && device.sdk_version != 0 && c.sdk_version > device.sdk_version {
        return false;
    }
    if !c.language.is_empty() {
        if c.language != device.language() {
            return false;
        }
        if !c.country.is_empty() && c.country != device.country() {
            return false;
        }
    }
    true
}

/// Android's `ResTable_config::isBetterThan`, restricted to locale, density and SDK version.
fn is_better(a: &Config, b: &Config, device: &DeviceConfig) -> bool {
    // Locale: a more specific match wins.
    let score = |c: &Config| (!c.language.is_empty()) as u8 * 2 + (!c.country.is_empty()) as u8;
    if score(a) != score(b) {
        return score(a) > score(b);
    }
    if a.density != b.density {
        if a.density == DENSITY_ANY {
            return true;
        }
        if b.density == DENSITY_ANY {
            return false;
        }
        let requested = if device.density == 0 || device.density == DENSITY_ANY {
            DENSITY_MEDIUM
        } else {
            device.density
        } as i64;
        let norm = |d: u16| {
            if d == 0 {
                DENSITY_MEDIUM as i64
            } else {
                d as i64
            }
        };
        let (mut h, mut l) = (norm(a.density), norm(b.density));
        let mut a_bigger = true;
        if l > h {
            std::mem::swap(&mut h, &mut l);
            a_bigger = false;
        }
        if h == l {
            // 0 and 160 both normalise to medium: prefer the explicit one.
            return a.density != 0;
        }
        if requested >= h {
            return a_bigger;
        }
        if l >= requested {
            return !a_bigger;
        }
        // Scaling down is twice as good as scaling up.
        return if (2 * l - requested) * h > requested * requested {
            !a_bigger
        } else {
            a_bigger
        };
    }
    a.sdk_version > b.sdk_version
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn cfg(lang: &str, country: &str, density: u16) -> Config {
        Config {
            language: lang.into(),
            country: country.into(),
            density,
            ..Config::default()
        }
    }

    #[test]
    fn density_choice_follows_android() {
        let dev = |d| DeviceConfig {
            locale: String::new(),
            density: d,
            sdk_version: 34,
        };
        let (m, h, xxh) = (cfg("", "", 160), cfg("", "", 240), cfg("", "", 480));
        // Exact wins; above all → the highest; between → scale down preferred when not too far.
        assert!(is_better(&h, &m, &dev(240)));
        assert!(is_better(&xxh, &h, &dev(640)));
        assert!(is_better(&xxh, &h, &dev(320)));
        assert!(is_better(&m, &h, &dev(120)));
        assert!(is_better(&cfg("", "", DENSITY_ANY), &xxh, &dev(480)));
    }

    #[test]
    fn locale_matching_falls_back() {
        let dev = DeviceConfig {
            locale: "fr-BE".into(),
            density: 160,
            sdk_version: 34,
        };
        assert!(matches(&cfg("fr", "", 0), &dev));
        assert!(!matches(&cfg("fr", "CA", 0), &dev));
        assert!(!matches(&cfg("de", "", 0), &dev));
        assert!(matches(&cfg("", "", 0), &dev));
        assert!(is_better(&cfg("fr", "", 0), &cfg("", "", 0), &dev));
    }

    #[test]
    fn unpacks_three_letter_codes() {
        // "fil" packed as aapt does.
        let (f, i, l) = (b'f' - b'a', b'i' - b'a', b'l' - b'a');
        let b0 = 0x80 | (l << 2) | (i >> 3);
        let b1 = ((i & 0x07) << 5) | f;
        assert_eq!(unpack_code(b0, b1, b'a'), "fil");
        assert_eq!(unpack_code(b'd', b'e', b'a'), "de");
    }

    #[test]
    fn refuses_garbage() {
        assert!(matches!(
            ResourceTable::parse(b"\x03\x00\x08\x00").unwrap_err(),
            ArscError::NotResourceTable(3)
        ));
        assert!(ResourceTable::parse(&[2, 0, 12, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0]).is_err());
    }
}
