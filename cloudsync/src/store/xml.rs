//! The XML bodies of the S3/OSS REST API that cirrus-syncd reads and writes (both dialects use the
//! same element names for the operations it needs).

use serde::Deserialize;

use super::UploadedPart;

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct ListBucketResult {
    pub is_truncated: bool,
    pub next_continuation_token: Option<String>,
    pub contents: Vec<ListedContents>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct ListedContents {
    pub key: String,
    pub size: u64,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct InitiateMultipartUploadResult {
    pub upload_id: String,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct ListPartsResult {
    pub is_truncated: bool,
    pub next_part_number_marker: Option<u32>,
    pub part: Vec<ListedPart>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct ListedPart {
    pub part_number: u32,
    pub size: u64,
    #[serde(rename = "ETag")]
    pub etag: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
}

/// Parses an XML body, naming the operation on failure.
pub fn parse<T: for<'de> Deserialize<'de>>(what: &str, body: &str) -> Result<T, super::StoreError> {
    quick_xml::de::from_str(body)
        .map_err(|e| super::StoreError::Permanent(format!("unreadable {what} response: {e}")))
}

/// Body of CompleteMultipartUpload.
pub fn complete_body(parts: &[UploadedPart]) -> String {
    let mut s = String::from("<CompleteMultipartUpload>");
    for p in parts {
        s.push_str(&format!(
            "<Part><PartNumber>{}</PartNumber><ETag>\"{}\"</ETag></Part>",
            p.number, p.etag
        ));
    }
    s.push_str("</CompleteMultipartUpload>");
    s
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_list_and_parts() {
        let l: ListBucketResult = parse(
            "list",
            "<ListBucketResult><IsTruncated>true</IsTruncated><NextContinuationToken>t1</NextContinuationToken>\
             <Contents><Key>a/b.txt</Key><Size>3</Size><ETag>\"x\"</ETag></Contents><Contents><Key>c</Key><Size>0</Size></Contents></ListBucketResult>",
        )
        .unwrap();
        assert!(l.is_truncated);
        assert_eq!(l.next_continuation_token.as_deref(), Some("t1"));
        assert_eq!(l.contents.len(), 2);
        assert_eq!(l.contents[0].key, "a/b.txt");
        let p: ListPartsResult = parse(
            "parts",
            "<ListPartsResult><Part><PartNumber>2</PartNumber><Size>5</Size><ETag>\"ab\"</ETag></Part></ListPartsResult>",
        )
        .unwrap();
        assert_eq!(p.part[0].part_number, 2);
        assert_eq!(p.part[0].etag.as_deref(), Some("\"ab\""));
    }
}
