//! Mount helpers for PID 1: mounting with `mount(8)`-style options, reading `/proc/self/mounts`,
//! and unmounting everything at shutdown.
//!
//! Only the pure parts (option and mount-table parsing) are exercised by unit tests; the rest runs
//! in the QEMU boot test.

use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};

/// Splits `mount(8)`-style options into mount flags and the file-system-specific data string.
pub fn parse_options(options: Option<&str>) -> (MsFlags, Option<String>) {
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    for option in options
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
    {
        match option {
            "ro" => flags |= MsFlags::MS_RDONLY,
            "rw" => flags &= !MsFlags::MS_RDONLY,
            "nosuid" => flags |= MsFlags::MS_NOSUID,
            "suid" => flags &= !MsFlags::MS_NOSUID,
            "nodev" => flags |= MsFlags::MS_NODEV,
            "dev" => flags &= !MsFlags::MS_NODEV,
            "noexec" => flags |= MsFlags::MS_NOEXEC,
            "exec" => flags &= !MsFlags::MS_NOEXEC,
            "noatime" => flags |= MsFlags::MS_NOATIME,
            "nodiratime" => flags |= MsFlags::MS_NODIRATIME,
            "relatime" => flags |= MsFlags::MS_RELATIME,
            "strictatime" => flags |= MsFlags::MS_STRICTATIME,
            "lazytime" => flags |= MsFlags::MS_LAZYTIME,
            "sync" => flags |= MsFlags::MS_SYNCHRONOUS,
            "dirsync" => flags |= MsFlags::MS_DIRSYNC,
            "defaults" => {}
            other => data.push(other),
        }
    }
    let data = if data.is_empty() {
        None
    } else {
        Some(data.join(","))
    };
    (flags, data)
}

/// Creates `path` and its parents (mode 0755) if missing; errors are left to the mount that follows.
pub fn ensure_dir(path: &Path) {
    if !path.is_dir() {
        let _ = std::fs::create_dir_all(path);
    }
}

/// `mount(source, target, fstype, flags + options)`.
pub fn mount(
    source: &str,
    target: &Path,
    fstype: &str,
    flags: MsFlags,
    options: Option<&str>,
) -> nix::Result<()> {
    let (option_flags, data) = parse_options(options);
    nix::mount::mount(
        Some(source),
        target,
        Some(fstype),
        flags | option_flags,
        data.as_deref(),
    )
}

/// Mounts an API file system at `target` (creating it), logging instead of failing; an
/// already-mounted target (EBUSY) is fine.
pub fn mount_api_fs(
    source: &str,
    target: &str,
    fstype: &str,
    flags: MsFlags,
    options: Option<&str>,
) {
    let target = Path::new(target);
    ensure_dir(target);
    match mount(source, target, fstype, flags, options) {
        Ok(()) => tracing::debug!("mounted {fstype} on {}", target.display()),
        Err(Errno::EBUSY) => tracing::debug!("{} is already mounted", target.display()),
        Err(e) => tracing::error!("cannot mount {fstype} on {}: {e}", target.display()),
    }
}

/// One line of `/proc/self/mounts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    pub source: String,
    pub target: PathBuf,
    pub fstype: String,
}

/// Parses `/proc/self/mounts` (octal escapes such as `\040` for spaces are decoded).
pub fn parse_mount_table(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let source = unescape(fields.next()?);
            let target = PathBuf::from(unescape(fields.next()?));
            let fstype = unescape(fields.next()?);
            Some(MountEntry {
                source,
                target,
                fstype,
            })
        })
        .collect()
}

fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let value = bytes[i + 1..i + 4]
                .iter()
                .fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0'));
            out.push(u8::try_from(value).unwrap_or(b'?'));
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Unmounts every file system, innermost first; `/` is remounted read-only, busy ones are detached
/// lazily after a read-only remount. Called by PID 1 at shutdown, after `sync`.
pub fn unmount_all() {
    let table = match std::fs::read_to_string("/proc/self/mounts") {
        Ok(text) => parse_mount_table(&text),
        Err(e) => {
            tracing::error!("cannot read /proc/self/mounts: {e}; remounting / read-only only");
            Vec::new()
        }
    };
    for entry in table.iter().rev() {
        if entry.target == Path::new("/") {
            continue;
        }
        match nix::mount::umount2(&entry.target, MntFlags::empty()) {
            Ok(()) => tracing::debug!("unmounted {}", entry.target.display()),
            Err(Errno::EINVAL | Errno::ENOENT) => {} // already gone with its parent
            Err(e) => {
                let _ = remount_read_only(&entry.target);
                match nix::mount::umount2(&entry.target, MntFlags::MNT_DETACH) {
                    Ok(()) => tracing::debug!("detached busy {} ({e})", entry.target.display()),
                    Err(e2) => tracing::warn!(
                        "cannot unmount {}: {e}, detaching: {e2}",
                        entry.target.display()
                    ),
                }
            }
        }
    }
    if let Err(e) = remount_read_only(Path::new("/")) {
        tracing::warn!("cannot remount / read-only: {e}");
    }
}

fn remount_read_only(target: &Path) -> nix::Result<()> {
    nix::mount::mount(
        None::<&str>,
        target,
        None::<&str>,
        MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
        None::<&str>,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_flags_from_data() {
        let (flags, data) = parse_options(Some("noatime,ro,size=10%,mode=0755"));
        assert_eq!(flags, MsFlags::MS_NOATIME | MsFlags::MS_RDONLY);
        assert_eq!(data.as_deref(), Some("size=10%,mode=0755"));
        let (flags, data) = parse_options(Some("ro,rw,defaults"));
        assert_eq!(flags, MsFlags::empty());
        assert_eq!(data, None);
        assert_eq!(parse_options(None), (MsFlags::empty(), None));
    }

    #[test]
    fn parses_mount_table() {
        let text = "rootfs / rootfs rw 0 0\n/dev/vdb /data\\040dir ext4 rw,noatime 0 0\nshort\n";
        assert_eq!(
            parse_mount_table(text),
            [
                MountEntry {
                    source: "rootfs".into(),
                    target: "/".into(),
                    fstype: "rootfs".into()
                },
                MountEntry {
                    source: "/dev/vdb".into(),
                    target: "/data dir".into(),
                    fstype: "ext4".into()
                },
            ]
        );
        assert_eq!(unescape("a\\134b\\0"), "a\\b\\0");
    }
}
