//! Android binary XML (`RES_XML_TYPE`), the compiled form of AndroidManifest.xml and of XML
//! resources such as adaptive icons.
//!
//! The document becomes a flat list of elements that refer to the string pool by index, so its size
//! is bounded by the input's. Attributes are identified the way Android does: by the resource id the
//! resource map gives their name (obfuscators strip attribute names), falling back to the name.

use crate::arsc::ResValue;
use crate::reader::{u16_at, u32_at};
use crate::strings::{StringPool, StringPoolError};

/// The `android` XML namespace.
pub const ANDROID_NS: &str = "http://schemas.android.com/apk/res/android";
/// Deepest element nesting accepted.
pub const MAX_DEPTH: usize = 256;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AxmlError {
    #[error("not an Android binary XML document (first chunk type {0:#06x})")]
    NotBinaryXml(u16),
    #[error("binary XML is truncated or corrupt at byte {offset}: {what}")]
    Corrupt { offset: usize, what: String },
    #[error("binary XML string pool: {0}")]
    Strings(#[from] StringPoolError),
    #[error("binary XML refers to string #{0}, which the pool does not have")]
    BadStringRef(u32),
    #[error("binary XML nests elements deeper than {MAX_DEPTH}")]
    TooDeep,
    #[error("binary XML has no root element")]
    Empty,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// String pool indices (`u32::MAX` = none).
    pub namespace: u32,
    pub name: u32,
    pub raw_value: u32,
    pub value: ResValue,
    /// The attribute's resource id from the resource map, if any.
    pub resource_id: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    pub namespace: u32,
    pub name: u32,
    pub attributes: Vec<Attribute>,
    pub children: Vec<usize>,
    pub parent: Option<usize>,
    pub line: u32,
}

/// A parsed binary XML document.
#[derive(Debug, Clone)]
pub struct XmlDocument {
    pub strings: StringPool,
    pub elements: Vec<Element>,
}

const NONE: u32 = u32::MAX;

impl XmlDocument {
    pub fn parse(data: &[u8]) -> Result<Self, AxmlError> {
        let corrupt = |offset: usize, what: &str| AxmlError::Corrupt {
            offset,
            what: what.to_owned(),
        };
        let kind = u16_at(data, 0).ok_or_else(|| corrupt(0, "shorter than a chunk header"))?;
        if kind != 0x0003 {
            return Err(AxmlError::NotBinaryXml(kind));
        }
        let header_size = u16_at(data, 2).ok_or_else(|| corrupt(2, "short header"))? as usize;
        let size = u32_at(data, 4).ok_or_else(|| corrupt(4, "short header"))? as usize;
        if header_size < 8 || size > data.len() || header_size > size {
            return Err(corrupt(4, "document size out of range"));
        }
        let data = &data[..size];
        let mut strings = None;
        let mut resource_map: Vec<u32> = Vec::new();
        let mut elements: Vec<Element> = Vec::new();
        let mut stack: Vec<usize> = Vec::new();
        let mut at = header_size;
        while at < size {
            let kind = u16_at(data, at).ok_or_else(|| corrupt(at, "truncated chunk header"))?;
            let chunk_header =
                u16_at(data, at + 2).ok_or_else(|| corrupt(at, "truncated chunk header"))? as usize;
            let chunk_size =
                u32_at(data, at + 4).ok_or_else(|| corrupt(at, "truncated chunk header"))? as usize;
            if chunk_size < 8
                || chunk_header < 8
                || chunk_header > chunk_size
                || at.checked_add(chunk_size).is_none_or(|e| e > size)
            {
                return Err(corrupt(at, "chunk size out of range"));
            }
            let chunk = &data[at..at + chunk_size];
            match kind {
                0x0001 if strings.is_none() => strings = Some(StringPool::parse(chunk)?),
                0x0180 => {
                    resource_map = chunk[chunk_header..]
                        .chunks_exact(4)
                        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                        .collect();
                }
                0x0102 => {
                    if stack.len() >= MAX_DEPTH {
                        return Err(AxmlError::TooDeep);
                    }
                    let element = parse_start(chunk, chunk_header, &resource_map)
                        .ok_or_else(|| corrupt(at, "malformed start element"))?;
                    let index = elements.len();
                    let parent = stack.last().copied();
                    if let Some(p) = parent {
                        elements[p].children.push(index);
                    } else if !elements.is_empty() {
                        return Err(corrupt(at, "more than one root element"));
                    }
                    elements.push(Element { parent, ..element });
                    stack.push(index);
                }
                0x0103 if stack.pop().is_none() => {
                    return Err(corrupt(at, "end element without a start"));
                }
                // Namespaces, CDATA, unknown chunks: nothing the manifest reader needs.
                _ => {}
            }
            at += chunk_size;
        }
        if !stack.is_empty() {
            return Err(corrupt(
                size,
                "element not closed at the end of the document",
            ));
        }
        let strings = strings.ok_or_else(|| corrupt(header_size, "no string pool"))?;
        if elements.is_empty() {
            return Err(AxmlError::Empty);
        }
        let doc = XmlDocument { strings, elements };
        // Every string index must resolve: check once so accessors never fail later.
        for e in &doc.elements {
            for idx in [e.namespace, e.name].into_iter().chain(
                e.attributes
                    .iter()
                    .flat_map(|a| [a.namespace, a.name, a.raw_value]),
            ) {
                if idx != NONE && doc.strings.get(idx).is_none() {
                    return Err(AxmlError::BadStringRef(idx));
                }
            }
            for a in &e.attributes {
                if a.value.data_type == ResValue::TYPE_STRING
                    && doc.strings.get(a.value.data).is_none()
                {
                    return Err(AxmlError::BadStringRef(a.value.data));
                }
            }
        }
        Ok(doc)
    }

    pub fn root(&self) -> usize {
        0
    }

    pub fn str(&self, index: u32) -> Option<&str> {
        if index == NONE {
            None
        } else {
            self.strings.get(index)
        }
    }

    pub fn name(&self, element: usize) -> &str {
        self.elements
            .get(element)
            .and_then(|e| self.str(e.name))
            .unwrap_or("")
    }

    pub fn children<'s>(
        &'s self,
        element: usize,
        name: &'s str,
    ) -> impl Iterator<Item = usize> + 's {
        self.elements
            .get(element)
            .map(|e| e.children.as_slice())
            .unwrap_or(&[])
            .iter()
            .copied()
            .filter(move |&c| self.name(c) == name)
    }

    /// The attribute of `element` with the given android resource id, or else (for attributes
    /// without resource ids) the given name: an `android:` name when `id` is `Some`, a name in no
    /// namespace when it is `None`.
    pub fn attr(&self, element: usize, id: Option<u32>, name: &str) -> Option<&Attribute> {
        let e = self.elements.get(element)?;
        if let Some(id) = id
            && let Some(a) = e.attributes.iter().find(|a| a.resource_id == Some(id))
        {
            return Some(a);
        }
        e.attributes.iter().find(|a| {
            let ns = self.str(a.namespace);
            let ns_ok = if id.is_some() {
                ns == Some(ANDROID_NS)
            } else {
                ns.is_none()
            };
            // An attribute with a resource id is matched by id only.
            ns_ok && (a.resource_id.is_none() || id.is_none()) && self.str(a.name) == Some(name)
        })
    }

    /// The attribute as a string: its string value, else its raw text.
    pub fn attr_str(&self, element: usize, id: Option<u32>, name: &str) -> Option<&str> {
        let a = self.attr(element, id, name)?;
        if a.value.data_type == ResValue::TYPE_STRING {
            return self.strings.get(a.value.data);
        }
        self.str(a.raw_value)
    }
}

fn parse_start(chunk: &[u8], header: usize, resource_map: &[u32]) -> Option<Element> {
    let line = u32_at(chunk, 8)?;
    let namespace = u32_at(chunk, header)?;
    let name = u32_at(chunk, header + 4)?;
    let attr_start = u16_at(chunk, header + 8)? as usize;
    let attr_size = u16_at(chunk, header + 10)? as usize;
    let attr_count = u16_at(chunk, header + 12)? as usize;
    if attr_size < 20 {
        return None;
    }
    let base = header + attr_start;
    if base.checked_add(attr_count.checked_mul(attr_size)?)? > chunk.len() {
        return None;
    }
    let mut attributes = Vec::with_capacity(attr_count);
    for i in 0..attr_count {
        let a = base + i * attr_size;
        let name = u32_at(chunk, a + 4)?;
        attributes.push(Attribute {
            namespace: u32_at(chunk, a)?,
            name,
            raw_value: u32_at(chunk, a + 8)?,
            value: ResValue {
                data_type: *chunk.get(a + 15)?,
                data: u32_at(chunk, a + 16)?,
            },
            resource_id: resource_map
                .get(name as usize)
                .copied()
                .filter(|&id| id != 0),
        });
    }
    Some(Element {
        namespace,
        name,
        attributes,
        children: Vec::new(),
        parent: None,
        line,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::strings::tests::build_pool;

    fn start(ns: u32, name: u32, attrs: &[(u32, u32, u8, u32)]) -> Vec<u8> {
        let mut c = Vec::new();
        c.extend_from_slice(&0x0102u16.to_le_bytes());
        c.extend_from_slice(&16u16.to_le_bytes());
        c.extend_from_slice(&((36 + 20 * attrs.len()) as u32).to_le_bytes());
        c.extend_from_slice(&1u32.to_le_bytes());
        c.extend_from_slice(&NONE.to_le_bytes());
        c.extend_from_slice(&ns.to_le_bytes());
        c.extend_from_slice(&name.to_le_bytes());
        c.extend_from_slice(&20u16.to_le_bytes());
        c.extend_from_slice(&20u16.to_le_bytes());
        c.extend_from_slice(&(attrs.len() as u16).to_le_bytes());
        c.extend_from_slice(&[0; 6]);
        for &(ans, aname, ty, data) in attrs {
            c.extend_from_slice(&ans.to_le_bytes());
            c.extend_from_slice(&aname.to_le_bytes());
            c.extend_from_slice(&(if ty == 3 { data } else { NONE }).to_le_bytes());
            c.extend_from_slice(&8u16.to_le_bytes());
            c.push(0);
            c.push(ty);
            c.extend_from_slice(&data.to_le_bytes());
        }
        c
    }

    fn end() -> Vec<u8> {
        let mut c = vec![0x03, 0x01, 16, 0, 24, 0, 0, 0];
        c.extend_from_slice(&[0; 16]);
        c
    }

    pub(crate) fn build_doc(pool: &[&str], resource_map: &[u32], body: &[Vec<u8>]) -> Vec<u8> {
        let mut out = vec![0x03, 0x00, 8, 0, 0, 0, 0, 0];
        out.extend_from_slice(&build_pool(pool, false));
        let mut map = vec![0x80, 0x01, 8, 0];
        map.extend_from_slice(&((8 + 4 * resource_map.len()) as u32).to_le_bytes());
        for id in resource_map {
            map.extend_from_slice(&id.to_le_bytes());
        }
        out.extend_from_slice(&map);
        for b in body {
            out.extend_from_slice(b);
        }
        let size = out.len() as u32;
        out[4..8].copy_from_slice(&size.to_le_bytes());
        out
    }

    #[test]
    fn parses_elements_and_attributes_by_id_and_name() {
        // 0: versionCode (id 0x0101021b), 1: ns, 2: manifest, 3: package, 4: org.x, 5: application
        let pool = [
            "versionCode",
            ANDROID_NS,
            "manifest",
            "package",
            "org.x",
            "application",
        ];
        let doc = build_doc(
            &pool,
            &[0x0101_021b],
            &[
                start(NONE, 2, &[(1, 0, 0x10, 7), (NONE, 3, 3, 4)]),
                start(NONE, 5, &[]),
                end(),
                end(),
            ],
        );
        let doc = XmlDocument::parse(&doc).unwrap();
        assert_eq!(doc.name(0), "manifest");
        assert_eq!(
            doc.attr(0, Some(0x0101_021b), "versionCode")
                .unwrap()
                .value
                .data,
            7
        );
        assert_eq!(doc.attr_str(0, None, "package"), Some("org.x"));
        assert_eq!(doc.children(0, "application").count(), 1);
    }

    #[test]
    fn refuses_bad_string_refs_depth_and_truncation() {
        let pool = ["manifest"];
        let bad = build_doc(&pool, &[], &[start(NONE, 9, &[]), end()]);
        assert_eq!(
            XmlDocument::parse(&bad).unwrap_err(),
            AxmlError::BadStringRef(9)
        );
        let deep: Vec<Vec<u8>> = (0..MAX_DEPTH + 1).map(|_| start(NONE, 0, &[])).collect();
        assert_eq!(
            XmlDocument::parse(&build_doc(&pool, &[], &deep)).unwrap_err(),
            AxmlError::TooDeep
        );
        let good = build_doc(&pool, &[], &[start(NONE, 0, &[]), end()]);
        assert!(XmlDocument::parse(&good).is_ok());
        for len in 0..good.len() {
            let mut cut = good[..len].to_vec();
            if cut.len() >= 8 {
                cut[4..8].copy_from_slice(&(len as u32).to_le_bytes());
            }
            assert!(
                XmlDocument::parse(&cut).is_err(),
                "accepted a document cut at {len}"
            );
        }
    }
}
