//! The "newc" cpio format (`070701`), as the kernel unpacks an initramfs: a writer for the
//! builder and a reader for checks and tests.
//!
//! Each entry is a 110-byte ASCII header (magic + 13 eight-digit hex fields), the NUL-terminated
//! name padded to a multiple of 4 bytes (counting the header), then the data padded to 4 bytes.
//! The archive ends with an entry named `TRAILER!!!`. Timestamps are 0 and inode numbers are
//! sequential, so the same input gives the same bytes.

use std::io::{self, Write};

const MAGIC: &[u8; 6] = b"070701";
const HEADER_LEN: usize = 110;
const TRAILER: &str = "TRAILER!!!";

pub const S_IFMT: u32 = 0o170000;
pub const S_IFDIR: u32 = 0o040000;
pub const S_IFREG: u32 = 0o100000;
pub const S_IFLNK: u32 = 0o120000;
pub const S_IFCHR: u32 = 0o020000;

/// Writes a newc archive to `W`, entry by entry. Parents must be written before their children.
pub struct CpioWriter<W: Write> {
    out: W,
    next_ino: u32,
    written: u64,
}

impl<W: Write> CpioWriter<W> {
    pub fn new(out: W) -> CpioWriter<W> {
        CpioWriter {
            out,
            next_ino: 1,
            written: 0,
        }
    }

    /// A directory (`mode` = permission bits).
    pub fn dir(&mut self, path: &str, mode: u32) -> io::Result<()> {
        self.entry(path, S_IFDIR | (mode & 0o7777), 2, (0, 0), b"")
    }

    /// A regular file (`mode` = permission bits).
    pub fn file(&mut self, path: &str, mode: u32, data: &[u8]) -> io::Result<()> {
        self.entry(path, S_IFREG | (mode & 0o7777), 1, (0, 0), data)
    }

    /// A symbolic link to `target`.
    pub fn symlink(&mut self, path: &str, target: &str) -> io::Result<()> {
        self.entry(path, S_IFLNK | 0o777, 1, (0, 0), target.as_bytes())
    }

    /// A character device node.
    pub fn char_device(&mut self, path: &str, mode: u32, major: u32, minor: u32) -> io::Result<()> {
        self.entry(path, S_IFCHR | (mode & 0o7777), 1, (major, minor), b"")
    }

    /// Writes the trailer and returns the output.
    pub fn finish(mut self) -> io::Result<W> {
        self.raw_entry(TRAILER, 0, 0, 1, (0, 0), b"")?;
        self.out.flush()?;
        Ok(self.out)
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.written
    }

    pub fn is_empty(&self) -> bool {
        self.written == 0
    }

    fn entry(
        &mut self,
        path: &str,
        mode: u32,
        nlink: u32,
        rdev: (u32, u32),
        data: &[u8],
    ) -> io::Result<()> {
        let name = path.trim_start_matches('/');
        if name.is_empty() || name == TRAILER || name.contains('\0') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("bad cpio entry name {path:?}"),
            ));
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        self.raw_entry(name, ino, mode, nlink, rdev, data)
    }

    fn raw_entry(
        &mut self,
        name: &str,
        ino: u32,
        mode: u32,
        nlink: u32,
        rdev: (u32, u32),
        data: &[u8],
    ) -> io::Result<()> {
        let size = u32::try_from(data.len()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{name} is larger than 4 GiB"),
            )
        })?;
        let namesize = name.len() as u32 + 1;
        let fields = [
            ino, mode, 0, 0, nlink, 0, size, 0, 0, rdev.0, rdev.1, namesize, 0,
        ];
        let mut header = Vec::with_capacity(HEADER_LEN + name.len() + 4);
        header.extend_from_slice(MAGIC);
        for f in fields {
            header.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        header.extend_from_slice(name.as_bytes());
        header.push(0);
        header.resize(align4(header.len()), 0);
        self.out.write_all(&header)?;
        self.out.write_all(data)?;
        let pad = align4(data.len()) - data.len();
        self.out.write_all(&[0u8; 3][..pad])?;
        self.written += (header.len() + data.len() + pad) as u64;
        Ok(())
    }
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// One entry read back from an archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpioEntry {
    pub name: String,
    pub ino: u32,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u32,
    pub mtime: u32,
    pub rdev_major: u32,
    pub rdev_minor: u32,
    pub data: Vec<u8>,
}

impl CpioEntry {
    pub fn is_dir(&self) -> bool {
        self.mode & S_IFMT == S_IFDIR
    }
    pub fn is_file(&self) -> bool {
        self.mode & S_IFMT == S_IFREG
    }
    pub fn is_symlink(&self) -> bool {
        self.mode & S_IFMT == S_IFLNK
    }
    pub fn is_char_device(&self) -> bool {
        self.mode & S_IFMT == S_IFCHR
    }
}

/// Parses a whole newc archive (up to and excluding the trailer), checking magic and alignment.
pub fn read_newc(bytes: &[u8]) -> Result<Vec<CpioEntry>, String> {
    let mut entries = Vec::new();
    let mut pos = 0usize;
    loop {
        if !pos.is_multiple_of(4) {
            return Err(format!("entry at offset {pos} is not 4-byte aligned"));
        }
        let header = bytes
            .get(pos..pos + HEADER_LEN)
            .ok_or_else(|| format!("truncated header at offset {pos}"))?;
        if &header[..6] != MAGIC {
            return Err(format!(
                "bad magic at offset {pos}: {:?}",
                String::from_utf8_lossy(&header[..6])
            ));
        }
        let mut fields = [0u32; 13];
        for (i, f) in fields.iter_mut().enumerate() {
            let hex = std::str::from_utf8(&header[6 + i * 8..14 + i * 8])
                .map_err(|_| format!("non-ASCII header at {pos}"))?;
            *f = u32::from_str_radix(hex, 16)
                .map_err(|_| format!("bad hex field {hex:?} at offset {pos}"))?;
        }
        let [
            ino,
            mode,
            uid,
            gid,
            nlink,
            mtime,
            size,
            _maj,
            _min,
            rdev_major,
            rdev_minor,
            namesize,
            _check,
        ] = fields;
        let name_start = pos + HEADER_LEN;
        let name_end = name_start + namesize as usize;
        let name_bytes = bytes
            .get(name_start..name_end)
            .ok_or_else(|| format!("truncated name at offset {pos}"))?;
        let (nul, name) = name_bytes
            .split_last()
            .ok_or_else(|| format!("empty name at offset {pos}"))?;
        if *nul != 0 {
            return Err(format!("name at offset {pos} is not NUL-terminated"));
        }
        let name = String::from_utf8(name.to_vec())
            .map_err(|_| format!("non-UTF-8 name at offset {pos}"))?;
        let data_start = align4(name_end);
        if bytes[name_end..data_start.min(bytes.len())]
            .iter()
            .any(|&b| b != 0)
        {
            return Err(format!("non-zero name padding for {name}"));
        }
        if name == TRAILER {
            return Ok(entries);
        }
        let data_end = data_start + size as usize;
        let data = bytes
            .get(data_start..data_end)
            .ok_or_else(|| format!("truncated data of {name}"))?;
        entries.push(CpioEntry {
            name,
            ino,
            mode,
            uid,
            gid,
            nlink,
            mtime,
            rdev_major,
            rdev_minor,
            data: data.to_vec(),
        });
        pos = align4(data_end);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let mut w = CpioWriter::new(Vec::new());
        w.dir("dev", 0o755).unwrap();
        w.char_device("dev/console", 0o600, 5, 1).unwrap();
        w.dir("/etc", 0o755).unwrap();
        w.file("etc/a", 0o644, b"").unwrap();
        w.file("etc/abc", 0o644, b"x").unwrap();
        w.file("etc/four", 0o600, b"1234").unwrap();
        w.file("init", 0o755, b"\x7fELF and more bytes").unwrap();
        w.symlink("lib", "usr/lib").unwrap();
        let len = w.len();
        let out = w.finish().unwrap();
        assert!(out.len() as u64 > len);
        out
    }

    #[test]
    fn round_trip() {
        let bytes = sample();
        let entries = read_newc(&bytes).unwrap();
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "dev",
                "dev/console",
                "etc",
                "etc/a",
                "etc/abc",
                "etc/four",
                "init",
                "lib"
            ]
        );
        let console = &entries[1];
        assert!(console.is_char_device());
        assert_eq!((console.rdev_major, console.rdev_minor), (5, 1));
        assert_eq!(console.mode & 0o7777, 0o600);
        assert!(entries[0].is_dir());
        assert_eq!(entries[6].data, b"\x7fELF and more bytes");
        assert_eq!(entries[6].mode, S_IFREG | 0o755);
        assert!(entries[7].is_symlink());
        assert_eq!(entries[7].data, b"usr/lib");
        assert!(
            entries
                .iter()
                .all(|e| e.mtime == 0 && e.uid == 0 && e.gid == 0)
        );
        // Distinct inode numbers (the kernel hard-links entries that share one).
        let mut inos: Vec<u32> = entries.iter().map(|e| e.ino).collect();
        inos.sort();
        inos.dedup();
        assert_eq!(inos.len(), entries.len());
    }

    #[test]
    fn layout_is_aligned_and_deterministic() {
        let bytes = sample();
        assert_eq!(bytes.len() % 4, 0);
        assert_eq!(bytes, sample());
        // First header: "dev\0" after 110 bytes → 114, padded to 116; a directory has no data.
        assert_eq!(&bytes[..6], b"070701");
        assert_eq!(&bytes[110..114], b"dev\0");
        assert_eq!(&bytes[114..116], b"\0\0");
        assert_eq!(&bytes[116..122], b"070701");
        // namesize field of the first entry: 4 ("dev" + NUL).
        assert_eq!(&bytes[94..102], b"00000004");
        assert!(bytes.ends_with(b"TRAILER!!!\0\0\0\0"));
    }

    #[test]
    fn reader_rejects_corruption() {
        let mut bytes = sample();
        bytes[116] = b'9';
        assert!(read_newc(&bytes).unwrap_err().contains("bad magic"));
        let bytes = sample();
        assert!(read_newc(&bytes[..bytes.len() - 20]).is_err());
    }

    #[test]
    fn rejects_bad_names() {
        let mut w = CpioWriter::new(Vec::new());
        assert!(w.file("TRAILER!!!", 0o644, b"").is_err());
        assert!(w.file("/", 0o644, b"").is_err());
    }

    #[test]
    fn cpio_tool_lists_our_archive() {
        // GNU cpio is the independent reader of our archives (`cargo xtask deps` installs it).
        let out = std::process::Command::new("cpio")
            .arg("--version")
            .output()
            .unwrap_or_else(|e| panic!("cpio is not installed ({e}): run `cargo xtask deps`"));
        assert!(out.status.success());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.cpio");
        std::fs::write(&path, sample()).unwrap();
        let out = std::process::Command::new("cpio")
            .args(["-it", "-F"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let listed = String::from_utf8_lossy(&out.stdout);
        let names: Vec<&str> = listed.lines().collect();
        assert_eq!(
            names,
            [
                "dev",
                "dev/console",
                "etc",
                "etc/a",
                "etc/abc",
                "etc/four",
                "init",
                "lib"
            ]
        );
    }
}
