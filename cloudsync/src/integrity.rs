//! Content digests: SHA-256 (the content identity used in journals and object metadata), MD5
//! (`Content-MD5`, checked by the server on every upload) and CRC-64/XZ (OSS's
//! `x-oss-hash-crc64ecma`, returned by OSS for every upload and download and compared here).

use std::io::Read;
use std::path::Path;

use base64::Engine;
use md5::Md5;
use sha2::{Digest, Sha256};

/// CRC-64/XZ (ECMA-182 polynomial, reflected, init and xorout all ones): what OSS calls crc64ecma.
pub const CRC64_XZ: crc::Crc<u64> = crc::Crc::<u64>::new(&crc::CRC_64_XZ);

/// Base64 MD5 of a body, as sent in `Content-MD5`.
pub fn content_md5(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Md5::digest(data))
}

/// Hex MD5 (S3 ETag of a single-part upload or of one part).
pub fn md5_hex(data: &[u8]) -> String {
    hex::encode(Md5::digest(data))
}

/// CRC-64/XZ of a body, as OSS prints it (decimal).
pub fn crc64_decimal(data: &[u8]) -> String {
    CRC64_XZ.checksum(data).to_string()
}

/// Hex SHA-256 of a byte slice.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Hex SHA-256 and size of a file, read in 256 KiB blocks.
pub fn sha256_file(path: &Path) -> std::io::Result<(String, u64)> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), total))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn crc64_xz_check_value() {
        // The catalogue check value of CRC-64/XZ over "123456789".
        assert_eq!(CRC64_XZ.checksum(b"123456789"), 0x995dc9bbdf1939fa);
    }

    #[test]
    fn content_md5_of_documented_body() {
        // Alibaba's V4 example sends Content-MD5 ICy5YqxZB1uWSwcVLSNLcA== for the body "123".
        assert_eq!(content_md5(b"123"), "ICy5YqxZB1uWSwcVLSNLcA==");
    }
}
