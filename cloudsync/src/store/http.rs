//! An S3-compatible or Alibaba OSS bucket over HTTP(S).
//!
//! One client for both dialects: the request shapes of the operations cirrus-syncd needs are the
//! same; what differs is the signature ([`crate::sign`]), the vendor header prefix (`x-amz-` /
//! `x-oss-`) and OSS's CRC-64/XZ integrity header, which is checked on every upload and download
//! when the server sends it. Endpoints are configurable, with path-style, virtual-hosted and
//! custom-domain (CNAME) addressing; STS temporary credentials add a signed security-token header.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use reqwest::{Method, StatusCode};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::{
    ConditionalCaps, Fetched, ListedObject, ObjectMeta, RequestCounters, SHA256_META, StoreError,
    UploadedPart, WriteCondition, xml,
};
use crate::integrity;
use crate::sign::{self, Dialect, RequestToSign, UNSIGNED_PAYLOAD};

/// How the bucket appears in request URLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Addressing {
    /// `https://endpoint/bucket/key` (s3s, MinIO, most self-hosted stores).
    #[default]
    Path,
    /// `https://bucket.endpoint/key` (AWS, OSS default).
    VirtualHost,
    /// `https://custom.domain/key`: the endpoint is the bucket's own domain (OSS CNAME).
    CustomDomain,
}

/// Where and how to reach the bucket.
#[derive(Debug, Clone)]
pub struct HttpStoreConfig {
    pub dialect: Dialect,
    /// `scheme://host[:port]`.
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    pub addressing: Addressing,
    pub access_key: String,
    pub secret_key: String,
    /// STS security token of temporary credentials.
    pub session_token: Option<String>,
}

#[derive(Debug)]
pub struct HttpStore {
    config: HttpStoreConfig,
    client: reqwest::Client,
    pub counters: RequestCounters,
}

fn transient(e: reqwest::Error) -> StoreError {
    StoreError::Transient(format!("{e}"))
}

/// A request before signing.
struct Call<'a> {
    method: Method,
    key: Option<&'a str>,
    query: Vec<(String, Option<String>)>,
    headers: Vec<(String, String)>,
    body: Option<Bytes>,
    /// A part streamed from a local file (sent with its length, never held whole in memory).
    file_part: Option<&'a super::FilePart>,
}

impl HttpStore {
    pub fn new(config: HttpStoreConfig) -> Result<Self, StoreError> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(30))
            .pool_idle_timeout(Duration::from_secs(20))
            .build()
            .map_err(|e| StoreError::Permanent(format!("HTTP client: {e}")))?;
        Ok(Self {
            config,
            client,
            counters: RequestCounters::default(),
        })
    }

    fn header(&self, name: &str) -> String {
        format!("{}{name}", self.config.dialect.header_prefix())
    }

    pub fn identity(&self) -> String {
        format!(
            "{}/{}",
            self.config.endpoint.trim_end_matches('/'),
            self.config.bucket
        )
    }

    /// The conditional writes the dialect defines: S3 has `If-None-Match: *` and `If-Match`
    /// (AWS since 2024; other S3-compatible servers may ignore them, hence the probe); OSS has
    /// only `x-oss-forbid-overwrite` (ignored on versioned buckets) and refuses `If-Match` /
    /// `If-None-Match` on PutObject with 400 NotImplemented.
    pub fn conditional_dialect(&self) -> ConditionalCaps {
        ConditionalCaps {
            if_absent: true,
            if_match: self.config.dialect == Dialect::S3,
        }
    }

    /// Headers expressing `cond` on a PutObject / CompleteMultipartUpload.
    fn condition_headers(
        &self,
        key: &str,
        cond: &WriteCondition,
    ) -> Result<Vec<(String, String)>, StoreError> {
        Ok(match (self.config.dialect, cond) {
            (_, WriteCondition::None) => vec![],
            (Dialect::S3, WriteCondition::IfAbsent) => {
                vec![("if-none-match".to_owned(), "*".to_owned())]
            }
            (Dialect::S3, WriteCondition::IfMatch(etag)) => {
                vec![("if-match".to_owned(), etag.clone())]
            }
            (Dialect::Oss, WriteCondition::IfAbsent) => {
                vec![("x-oss-forbid-overwrite".to_owned(), "true".to_owned())]
            }
            (Dialect::Oss, WriteCondition::IfMatch(_)) => {
                return Err(StoreError::Permanent(format!(
                    "{key}: OSS has no conditional overwrite (If-Match)"
                )));
            }
        })
    }

    /// URL (without query) and canonical URI for a key (`None` = the bucket itself).
    fn locate(&self, key: Option<&str>) -> Result<(String, String, String), StoreError> {
        let c = &self.config;
        let endpoint = c.endpoint.trim_end_matches('/');
        let (scheme, host) = endpoint.split_once("://").ok_or_else(|| {
            StoreError::Permanent(format!(
                "endpoint {endpoint:?} has no scheme (http:// or https://)"
            ))
        })?;
        let enc_key = key.map(sign::path_encode).unwrap_or_default();
        let (url, host) = match c.addressing {
            Addressing::Path => (
                format!("{endpoint}/{}/{enc_key}", c.bucket),
                host.to_owned(),
            ),
            Addressing::VirtualHost => {
                let h = format!("{}.{host}", c.bucket);
                (format!("{scheme}://{h}/{enc_key}"), h)
            }
            Addressing::CustomDomain => (format!("{endpoint}/{enc_key}"), host.to_owned()),
        };
        let canonical = match (c.dialect, c.addressing) {
            (Dialect::Oss, _) => format!("/{}/{enc_key}", c.bucket),
            (Dialect::S3, Addressing::Path) if key.is_none() => format!("/{}", c.bucket),
            (Dialect::S3, Addressing::Path) => format!("/{}/{enc_key}", c.bucket),
            (Dialect::S3, _) => format!("/{enc_key}"),
        };
        let url = if key.is_none() && c.addressing == Addressing::Path {
            url.trim_end_matches('/').to_owned()
        } else {
            url
        };
        Ok((url, canonical, host))
    }

    async fn send(&self, call: Call<'_>) -> Result<reqwest::Response, StoreError> {
        self.counters.count();
        let (url, canonical_uri, host) = self.locate(call.key)?;
        let timestamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
        let mut headers = call.headers;
        headers.push((self.header("date"), timestamp.clone()));
        headers.push((self.header("content-sha256"), UNSIGNED_PAYLOAD.to_owned()));
        if let Some(token) = &self.config.session_token {
            headers.push((self.header("security-token"), token.clone()));
        }
        headers.push(("host".to_owned(), host));
        let sig = sign::sign(
            self.config.dialect,
            &self.config.access_key,
            &self.config.secret_key,
            &RequestToSign {
                method: call.method.as_str(),
                canonical_uri: &canonical_uri,
                query: &call.query,
                headers: &headers,
                additional_headers: &[],
                timestamp: &timestamp,
                region: &self.config.region,
                payload_hash: UNSIGNED_PAYLOAD,
            },
        );
        let query: String = call
            .query
            .iter()
            .map(|(k, v)| match v {
                Some(v) => format!("{}={}", sign::uri_encode(k), sign::uri_encode(v)),
                None => sign::uri_encode(k),
            })
            .collect::<Vec<_>>()
            .join("&");
        let full = if query.is_empty() {
            url
        } else {
            format!("{url}?{query}")
        };
        let mut req = self
            .client
            .request(call.method, &full)
            .header("authorization", sig.authorization);
        for (k, v) in headers.iter().filter(|(k, _)| k != "host") {
            req = req.header(k.as_str(), v.as_str());
        }
        if let Some(body) = call.body {
            self.counters
                .bytes_up
                .fetch_add(body.len() as u64, Ordering::Relaxed);
            req = req.body(body);
        }
        if let Some(part) = call.file_part {
            self.counters
                .bytes_up
                .fetch_add(part.len, Ordering::Relaxed);
            req = req
                .header("content-length", part.len.to_string())
                .body(reqwest::Body::wrap_stream(part.stream()));
        }
        let resp = req.send().await.map_err(transient)?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let what = call.key.unwrap_or("(bucket)").to_owned();
        let text = resp.text().await.unwrap_or_default();
        let err: xml::ErrorBody = quick_xml::de::from_str(&text).unwrap_or_default();
        let detail = format!("{what}: HTTP {status} {} {}", err.code, err.message);
        Err(match status {
            StatusCode::NOT_FOUND => StoreError::NotFound(detail),
            StatusCode::PRECONDITION_FAILED => StoreError::PreconditionFailed(detail),
            StatusCode::CONFLICT if err.code == "FileAlreadyExists" => {
                StoreError::PreconditionFailed(detail)
            }
            s if s.is_server_error()
                || s == StatusCode::TOO_MANY_REQUESTS
                || s == StatusCode::REQUEST_TIMEOUT =>
            {
                StoreError::Transient(detail)
            }
            // Content-MD5 mismatch: the body was damaged on the way, sending it again may work.
            _ if err.code == "BadDigest" || err.code == "InvalidDigest" => {
                StoreError::Transient(detail)
            }
            _ => StoreError::Permanent(detail),
        })
    }

    /// Checks the CRC-64 the server computed (OSS sends `x-oss-hash-crc64ecma`) against ours.
    fn check_crc(
        &self,
        resp: &reqwest::Response,
        body: &[u8],
        key: &str,
    ) -> Result<(), StoreError> {
        if let Some(theirs) = resp
            .headers()
            .get(self.header("hash-crc64ecma"))
            .and_then(|v| v.to_str().ok())
        {
            let ours = integrity::crc64_decimal(body);
            if theirs != ours {
                return Err(StoreError::Transient(format!(
                    "{key}: CRC-64 mismatch (server {theirs}, sent {ours})"
                )));
            }
        }
        Ok(())
    }

    /// Plain (overwriting) PutObject.
    pub async fn put(&self, key: &str, body: Bytes, sha256: &str) -> Result<(), StoreError> {
        self.put_if(key, body, sha256, &WriteCondition::None)
            .await
            .map(drop)
    }

    pub async fn put_if(
        &self,
        key: &str,
        body: Bytes,
        sha256: &str,
        cond: &WriteCondition,
    ) -> Result<Option<String>, StoreError> {
        let mut headers = vec![
            ("content-md5".to_owned(), integrity::content_md5(&body)),
            (
                self.header(&format!("meta-{SHA256_META}")),
                sha256.to_owned(),
            ),
        ];
        headers.extend(self.condition_headers(key, cond)?);
        let resp = self
            .send(Call {
                method: Method::PUT,
                key: Some(key),
                query: vec![],
                headers,
                body: Some(body.clone()),
                file_part: None,
            })
            .await?;
        self.check_crc(&resp, &body, key)?;
        Ok(etag_of(&resp))
    }

    pub async fn get_to_file(
        &self,
        key: &str,
        dest: &Path,
        limiter: Option<&crate::policy::RateLimiter>,
    ) -> Result<Fetched, StoreError> {
        let mut resp = self
            .send(Call {
                method: Method::GET,
                key: Some(key),
                query: vec![],
                headers: vec![],
                body: None,
                file_part: None,
            })
            .await?;
        let server_crc = resp
            .headers()
            .get(self.header("hash-crc64ecma"))
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let etag = etag_of(&resp);
        let mut file = tokio::fs::File::create(dest)
            .await
            .map_err(|e| StoreError::io(dest, e))?;
        let mut sha = Sha256::new();
        let mut crc = integrity::CRC64_XZ.digest();
        while let Some(chunk) = resp.chunk().await.map_err(transient)? {
            if let Some(l) = limiter {
                l.take(chunk.len() as u64).await;
            }
            sha.update(&chunk);
            crc.update(&chunk);
            self.counters
                .bytes_down
                .fetch_add(chunk.len() as u64, Ordering::Relaxed);
            file.write_all(&chunk)
                .await
                .map_err(|e| StoreError::io(dest, e))?;
        }
        file.sync_all().await.map_err(|e| StoreError::io(dest, e))?;
        if let Some(theirs) = server_crc {
            let ours = crc.finalize().to_string();
            if theirs != ours {
                return Err(StoreError::Transient(format!(
                    "{key}: CRC-64 mismatch on download (server {theirs}, got {ours})"
                )));
            }
        }
        Ok(Fetched {
            sha256: hex::encode(sha.finalize()),
            etag,
        })
    }

    pub async fn get_bytes(&self, key: &str) -> Result<Bytes, StoreError> {
        let resp = self
            .send(Call {
                method: Method::GET,
                key: Some(key),
                query: vec![],
                headers: vec![],
                body: None,
                file_part: None,
            })
            .await?;
        let server_crc = resp
            .headers()
            .get(self.header("hash-crc64ecma"))
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = resp.bytes().await.map_err(transient)?;
        self.counters
            .bytes_down
            .fetch_add(body.len() as u64, Ordering::Relaxed);
        if let Some(theirs) = server_crc
            && theirs != integrity::crc64_decimal(&body)
        {
            return Err(StoreError::Transient(format!(
                "{key}: CRC-64 mismatch on download"
            )));
        }
        Ok(body)
    }

    pub async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, StoreError> {
        match self
            .send(Call {
                method: Method::HEAD,
                key: Some(key),
                query: vec![],
                headers: vec![],
                body: None,
                file_part: None,
            })
            .await
        {
            Ok(resp) => {
                // The header, not `content_length()`: a HEAD response has no body, and reqwest
                // reports the body's length (0).
                let size = resp
                    .headers()
                    .get(reqwest::header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                let sha256 = resp
                    .headers()
                    .get(self.header(&format!("meta-{SHA256_META}")))
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                Ok(Some(ObjectMeta { size, sha256 }))
            }
            Err(StoreError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        match self
            .send(Call {
                method: Method::DELETE,
                key: Some(key),
                query: vec![],
                headers: vec![],
                body: None,
                file_part: None,
            })
            .await
        {
            Ok(_) | Err(StoreError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    pub async fn copy(&self, src: &str, dst: &str) -> Result<(), StoreError> {
        let source = format!("/{}/{}", self.config.bucket, sign::path_encode(src));
        let headers = vec![(self.header("copy-source"), source)];
        self.send(Call {
            method: Method::PUT,
            key: Some(dst),
            query: vec![],
            headers,
            body: None,
            file_part: None,
        })
        .await?;
        Ok(())
    }

    pub async fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
    ) -> Result<Vec<ListedObject>, StoreError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut query = vec![
                ("list-type".to_owned(), Some("2".to_owned())),
                ("max-keys".to_owned(), Some("1000".to_owned())),
            ];
            if !prefix.is_empty() {
                query.push(("prefix".to_owned(), Some(prefix.to_owned())));
            }
            if let Some(s) = start_after {
                query.push(("start-after".to_owned(), Some(s.to_owned())));
            }
            if let Some(t) = &token {
                query.push(("continuation-token".to_owned(), Some(t.clone())));
            }
            let resp = self
                .send(Call {
                    method: Method::GET,
                    key: None,
                    query,
                    headers: vec![],
                    body: None,
                    file_part: None,
                })
                .await?;
            let text = resp.text().await.map_err(transient)?;
            let page: xml::ListBucketResult = xml::parse("ListObjectsV2", &text)?;
            out.extend(page.contents.into_iter().map(|c| ListedObject {
                key: c.key,
                size: c.size,
            }));
            match (page.is_truncated, page.next_continuation_token) {
                (true, Some(t)) => token = Some(t),
                _ => break,
            }
        }
        Ok(out)
    }

    pub async fn create_multipart(
        &self,
        key: &str,
        sha256: &str,
        cond: &WriteCondition,
    ) -> Result<String, StoreError> {
        let mut headers = vec![(
            self.header(&format!("meta-{SHA256_META}")),
            sha256.to_owned(),
        )];
        // S3's CreateMultipartUpload takes no conditional header (checked at completion); OSS
        // checks `x-oss-forbid-overwrite` here too.
        if self.config.dialect == Dialect::Oss {
            headers.extend(self.condition_headers(key, cond)?);
        }
        let resp = self
            .send(Call {
                method: Method::POST,
                key: Some(key),
                query: vec![("uploads".to_owned(), None)],
                headers,
                body: None,
                file_part: None,
            })
            .await?;
        let text = resp.text().await.map_err(transient)?;
        let r: xml::InitiateMultipartUploadResult = xml::parse("InitiateMultipartUpload", &text)?;
        if r.upload_id.is_empty() {
            return Err(StoreError::Permanent(format!(
                "{key}: InitiateMultipartUpload returned no UploadId"
            )));
        }
        Ok(r.upload_id)
    }

    pub async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: u32,
        body: Bytes,
    ) -> Result<String, StoreError> {
        let query = vec![
            ("partNumber".to_owned(), Some(number.to_string())),
            ("uploadId".to_owned(), Some(upload_id.to_owned())),
        ];
        let headers = vec![("content-md5".to_owned(), integrity::content_md5(&body))];
        let resp = self
            .send(Call {
                method: Method::PUT,
                key: Some(key),
                query,
                headers,
                body: Some(body.clone()),
                file_part: None,
            })
            .await?;
        self.check_crc(&resp, &body, key)?;
        let md5 = integrity::md5_hex(&body);
        part_etag(&resp, key, number, md5)
    }

    pub async fn upload_part_file(
        &self,
        key: &str,
        upload_id: &str,
        number: u32,
        part: &super::FilePart,
    ) -> Result<String, StoreError> {
        let query = vec![
            ("partNumber".to_owned(), Some(number.to_string())),
            ("uploadId".to_owned(), Some(upload_id.to_owned())),
        ];
        let headers = vec![("content-md5".to_owned(), part.content_md5())];
        let resp = self
            .send(Call {
                method: Method::PUT,
                key: Some(key),
                query,
                headers,
                body: None,
                file_part: Some(part),
            })
            .await?;
        if let Some(theirs) = resp
            .headers()
            .get(self.header("hash-crc64ecma"))
            .and_then(|v| v.to_str().ok())
            && theirs != part.crc64.to_string()
        {
            return Err(StoreError::Transient(format!(
                "{key} part {number}: CRC-64 mismatch (server {theirs}, sent {})",
                part.crc64
            )));
        }
        let md5 = hex::encode(part.md5);
        part_etag(&resp, key, number, md5)
    }

    pub async fn list_parts(
        &self,
        key: &str,
        upload_id: &str,
    ) -> Result<Option<Vec<UploadedPart>>, StoreError> {
        let mut out = Vec::new();
        let mut marker: Option<u32> = None;
        loop {
            let mut query = vec![("uploadId".to_owned(), Some(upload_id.to_owned()))];
            if let Some(m) = marker {
                query.push(("part-number-marker".to_owned(), Some(m.to_string())));
            }
            let resp = match self
                .send(Call {
                    method: Method::GET,
                    key: Some(key),
                    query,
                    headers: vec![],
                    body: None,
                    file_part: None,
                })
                .await
            {
                Ok(r) => r,
                Err(StoreError::NotFound(_)) => return Ok(None),
                Err(e) => return Err(e),
            };
            let text = resp.text().await.map_err(transient)?;
            let page: xml::ListPartsResult = xml::parse("ListParts", &text)?;
            out.extend(page.part.into_iter().map(|p| UploadedPart {
                number: p.part_number,
                size: p.size,
                etag: p.etag.unwrap_or_default().trim_matches('"').to_owned(),
            }));
            match (page.is_truncated, page.next_part_number_marker) {
                (true, Some(m)) => marker = Some(m),
                _ => break,
            }
        }
        Ok(Some(out))
    }

    pub async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[UploadedPart],
        cond: &WriteCondition,
    ) -> Result<(), StoreError> {
        let query = vec![("uploadId".to_owned(), Some(upload_id.to_owned()))];
        let body = Bytes::from(xml::complete_body(parts));
        let headers = self.condition_headers(key, cond)?;
        let resp = self
            .send(Call {
                method: Method::POST,
                key: Some(key),
                query,
                headers,
                body: Some(body),
                file_part: None,
            })
            .await?;
        // S3 may report an error inside a 200 response to CompleteMultipartUpload.
        let text = resp.text().await.map_err(transient)?;
        if text.contains("<Error>") {
            return Err(StoreError::Transient(format!(
                "{key}: CompleteMultipartUpload failed: {text}"
            )));
        }
        Ok(())
    }

    pub async fn abort_multipart(&self, key: &str, upload_id: &str) -> Result<(), StoreError> {
        let query = vec![("uploadId".to_owned(), Some(upload_id.to_owned()))];
        match self
            .send(Call {
                method: Method::DELETE,
                key: Some(key),
                query,
                headers: vec![],
                body: None,
                file_part: None,
            })
            .await
        {
            Ok(_) | Err(StoreError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// The `ETag` header of an answer, as sent (quotes included: `If-Match` takes it back as is).
fn etag_of(resp: &reqwest::Response) -> Option<String> {
    resp.headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// The ETag a part upload answered, checked against the MD5 of what was sent (when the store's
/// ETag is a plain MD5: 32 hex digits); the MD5 itself when the store sent none.
fn part_etag(
    resp: &reqwest::Response,
    key: &str,
    number: u32,
    md5: String,
) -> Result<String, StoreError> {
    let etag = resp
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim_matches('"')
        .to_owned();
    if !etag.is_empty() && etag.len() == 32 && !etag.eq_ignore_ascii_case(&md5) {
        return Err(StoreError::Transient(format!(
            "{key} part {number}: ETag {etag} is not the MD5 {md5} of what was sent"
        )));
    }
    Ok(if etag.is_empty() { md5 } else { etag })
}
