//! Per-service sandboxing, applied in the child between fork and exec: resource limits, a private
//! mount namespace (read-only paths, then a private `/tmp` over the real one), the capability bounding set, supplementary
//! groups, gid, uid, and ambient capabilities.
//!
//! Everything that can fail on outside data (user and group names, the last capability number) is
//! resolved in the supervisor before the fork ([`Sandbox::prepare`]); [`Sandbox::apply_in_child`]
//! only makes system calls. Unprivileged (not root), the mount namespace is made inside a user
//! namespace that maps the caller's own uid, so `private_tmp` and `read_only_paths` work in tests.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;

use cirrus_init_config::{Rlimit, UnitFile};
use nix::unistd::{Gid, Group, Uid, User};

/// Everything the child needs, resolved.
#[derive(Debug, Default, Clone)]
pub struct Sandbox {
    uid: Option<u32>,
    gid: Option<u32>,
    groups: Option<Vec<libc::gid_t>>,
    /// Capabilities to drop from the bounding set.
    drop_bounding: Vec<u8>,
    /// Ambient capabilities to raise (bitmask over capability numbers).
    ambient: u64,
    rlimits: Vec<(libc::__rlimit_resource_t, libc::rlimit)>,
    private_tmp: bool,
    read_only: Vec<CString>,
    /// Unprivileged: wrap the mount namespace in a user namespace mapping these ids.
    user_namespace: Option<(u32, u32)>,
    uid_map: CString,
    gid_map: CString,
}

/// A user or group written as a number or a name.
fn lookup_uid(text: &str) -> Result<(u32, u32), String> {
    if let Ok(n) = text.parse::<u32>() {
        let gid = User::from_uid(Uid::from_raw(n))
            .ok()
            .flatten()
            .map_or(n, |u| u.gid.as_raw());
        return Ok((n, gid));
    }
    match User::from_name(text) {
        Ok(Some(user)) => Ok((user.uid.as_raw(), user.gid.as_raw())),
        Ok(None) => Err(format!("no user `{text}` in the user database")),
        Err(e) => Err(format!("cannot look up user `{text}`: {e}")),
    }
}

fn lookup_gid(text: &str) -> Result<u32, String> {
    if let Ok(n) = text.parse::<u32>() {
        return Ok(n);
    }
    match Group::from_name(text) {
        Ok(Some(group)) => Ok(group.gid.as_raw()),
        Ok(None) => Err(format!("no group `{text}` in the group database")),
        Err(e) => Err(format!("cannot look up group `{text}`: {e}")),
    }
}

/// The highest capability number the running kernel knows.
fn last_capability() -> u8 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

fn resource(limit: Rlimit) -> libc::__rlimit_resource_t {
    match limit {
        Rlimit::As => libc::RLIMIT_AS,
        Rlimit::Core => libc::RLIMIT_CORE,
        Rlimit::Cpu => libc::RLIMIT_CPU,
        Rlimit::Data => libc::RLIMIT_DATA,
        Rlimit::Fsize => libc::RLIMIT_FSIZE,
        Rlimit::Locks => libc::RLIMIT_LOCKS,
        Rlimit::Memlock => libc::RLIMIT_MEMLOCK,
        Rlimit::Msgqueue => libc::RLIMIT_MSGQUEUE,
        Rlimit::Nice => libc::RLIMIT_NICE,
        Rlimit::Nofile => libc::RLIMIT_NOFILE,
        Rlimit::Nproc => libc::RLIMIT_NPROC,
        Rlimit::Rss => libc::RLIMIT_RSS,
        Rlimit::Rtprio => libc::RLIMIT_RTPRIO,
        Rlimit::Rttime => libc::RLIMIT_RTTIME,
        Rlimit::Sigpending => libc::RLIMIT_SIGPENDING,
        Rlimit::Stack => libc::RLIMIT_STACK,
    }
}

impl Sandbox {
    /// Resolves `unit`'s sandbox settings (user and group names through the user database).
    pub fn prepare(unit: &UnitFile) -> Result<Sandbox, String> {
        let mut sandbox = Sandbox::default();
        if let Some(user) = &unit.user {
            let (uid, gid) = lookup_uid(user)?;
            sandbox.uid = Some(uid);
            sandbox.gid = Some(gid);
            // A service running as another user does not keep init's supplementary groups.
            sandbox.groups = Some(Vec::new());
        }
        if let Some(group) = &unit.group {
            sandbox.gid = Some(lookup_gid(group)?);
        }
        if !unit.supplementary_groups.is_empty() {
            let mut groups = Vec::new();
            for g in &unit.supplementary_groups {
                groups.push(lookup_gid(g)?);
            }
            sandbox.groups = Some(groups);
        }
        if let Some(bounding) = &unit.capabilities {
            let last = last_capability();
            sandbox.drop_bounding = (0..=last)
                .filter(|n| !bounding.iter().any(|c| c.number() == *n))
                .collect();
        }
        for cap in &unit.ambient_capabilities {
            if cap.number() < 64 {
                sandbox.ambient |= 1 << cap.number();
            }
        }
        for (limit, value) in &unit.rlimits {
            let to_rlim = |v: Option<u64>| v.unwrap_or(libc::RLIM_INFINITY);
            sandbox.rlimits.push((
                resource(*limit),
                libc::rlimit {
                    rlim_cur: to_rlim(value.soft),
                    rlim_max: to_rlim(value.hard),
                },
            ));
        }
        sandbox.private_tmp = unit.private_tmp;
        for path in &unit.read_only_paths {
            let c = CString::new(path.as_os_str().as_bytes())
                .map_err(|_| format!("{} contains NUL", path.display()))?;
            sandbox.read_only.push(c);
        }
        if unit.needs_mount_namespace() && !Uid::effective().is_root() {
            let uid = Uid::effective().as_raw();
            let gid = Gid::effective().as_raw();
            sandbox.user_namespace = Some((uid, gid));
            sandbox.uid_map = CString::new(format!("{uid} {uid} 1")).unwrap_or_default();
            sandbox.gid_map = CString::new(format!("{gid} {gid} 1")).unwrap_or_default();
        }
        Ok(sandbox)
    }

    /// Applies everything. Runs in the forked child: system calls on prepared data only.
    pub fn apply_in_child(&self) -> std::io::Result<()> {
        for (res, limit) in &self.rlimits {
            // SAFETY: `limit` is a valid rlimit.
            check(unsafe { libc::setrlimit(*res, limit) })?;
        }
        if self.private_tmp || !self.read_only.is_empty() {
            self.enter_mount_namespace()?;
        }
        for cap in &self.drop_bounding {
            // SAFETY: prctl with integer arguments.
            check(unsafe {
                libc::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(*cap), 0, 0, 0)
            })?;
        }
        let switching_user = self
            .uid
            .is_some_and(|uid| uid != unsafe { libc::geteuid() });
        if switching_user && self.ambient != 0 {
            // Keep the permitted set across setuid so the ambient capabilities can be raised after.
            // SAFETY: prctl with integer arguments.
            check(unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) })?;
        }
        if let Some(groups) = &self.groups {
            // SAFETY: `groups` is a live slice of gids.
            check(unsafe { libc::setgroups(groups.len(), groups.as_ptr()) })?;
        }
        if let Some(gid) = self.gid {
            // SAFETY: plain system call.
            check(unsafe { libc::setresgid(gid, gid, gid) })?;
        }
        if let Some(uid) = self.uid {
            // SAFETY: plain system call.
            check(unsafe { libc::setresuid(uid, uid, uid) })?;
        }
        if self.ambient != 0 {
            raise_ambient(self.ambient)?;
        }
        Ok(())
    }

    fn enter_mount_namespace(&self) -> std::io::Result<()> {
        if self.user_namespace.is_some() {
            // SAFETY: plain system call.
            check(unsafe { libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNS) })?;
            write_file(c"/proc/self/setgroups", b"deny")?;
            write_file(c"/proc/self/uid_map", self.uid_map.as_bytes())?;
            write_file(c"/proc/self/gid_map", self.gid_map.as_bytes())?;
        } else {
            // SAFETY: plain system call.
            check(unsafe { libc::unshare(libc::CLONE_NEWNS) })?;
        }
        // Nothing done in here may propagate back to the system's mounts.
        // SAFETY: C strings are NUL-terminated literals; null pointers are allowed for these arguments.
        check(unsafe {
            libc::mount(
                std::ptr::null(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            )
        })?;
        for path in &self.read_only {
            // SAFETY: `path` is a NUL-terminated string.
            check(unsafe {
                libc::mount(
                    path.as_ptr(),
                    path.as_ptr(),
                    std::ptr::null(),
                    libc::MS_BIND | libc::MS_REC,
                    std::ptr::null(),
                )
            })?;
            // SAFETY: as above.
            check(unsafe {
                libc::mount(
                    std::ptr::null(),
                    path.as_ptr(),
                    std::ptr::null(),
                    libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY,
                    std::ptr::null(),
                )
            })?;
        }
        if self.private_tmp {
            // SAFETY: as above.
            check(unsafe {
                libc::mount(
                    c"tmpfs".as_ptr(),
                    c"/tmp".as_ptr(),
                    c"tmpfs".as_ptr(),
                    libc::MS_NOSUID | libc::MS_NODEV,
                    c"mode=1777".as_ptr().cast(),
                )
            })?;
        }
        Ok(())
    }
}

fn check(ret: libc::c_int) -> std::io::Result<()> {
    if ret < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn write_file(path: &std::ffi::CStr, data: &[u8]) -> std::io::Result<()> {
    // SAFETY: `path` is NUL-terminated; `data` is a live buffer.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: as above.
    let written = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
    // SAFETY: `fd` is ours.
    unsafe { libc::close(fd) };
    if written < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAP_VERSION_3: u32 = 0x2008_0522;

/// Makes `mask` permitted, effective and inheritable (keeping the permitted set otherwise as is),
/// then raises each capability of `mask` in the ambient set, so they survive exec for any uid.
fn raise_ambient(mask: u64) -> std::io::Result<()> {
    let mut header = CapHeader {
        version: CAP_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: header and a 2-element data array, as capget v3 expects.
    check(unsafe {
        libc::syscall(
            libc::SYS_capget,
            &mut header as *mut CapHeader,
            data.as_mut_ptr(),
        ) as libc::c_int
    })?;
    let low = mask as u32;
    let high = (mask >> 32) as u32;
    data[0].inheritable |= low & data[0].permitted;
    data[1].inheritable |= high & data[1].permitted;
    data[0].effective |= low & data[0].permitted;
    data[1].effective |= high & data[1].permitted;
    // SAFETY: as above.
    check(unsafe {
        libc::syscall(
            libc::SYS_capset,
            &mut header as *mut CapHeader,
            data.as_ptr(),
        ) as libc::c_int
    })?;
    for cap in 0..64u64 {
        if mask & (1 << cap) != 0 {
            // SAFETY: prctl with integer arguments.
            check(unsafe {
                libc::prctl(
                    libc::PR_CAP_AMBIENT,
                    libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
                    cap as libc::c_ulong,
                    0,
                    0,
                )
            })?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn resolves_numbers_names_and_caps() {
        let unit = UnitFile::parse(
            Path::new("/u/x.toml"),
            "exec = \"/bin/true\"\nuser = \"0\"\ngroup = \"root\"\nsupplementary_groups = [5]\ncapabilities = [\"kill\"]\nambient_capabilities = [\"kill\"]\nrlimits = { nofile = 64 }\n",
        )
        .unwrap();
        let sandbox = Sandbox::prepare(&unit).unwrap();
        assert_eq!(sandbox.uid, Some(0));
        assert_eq!(sandbox.gid, Some(0));
        assert_eq!(sandbox.groups, Some(vec![5]));
        assert!(!sandbox.drop_bounding.contains(&5) && sandbox.drop_bounding.contains(&0));
        assert_eq!(sandbox.ambient, 1 << 5);
        assert_eq!(sandbox.rlimits.len(), 1);
        let unit = UnitFile::parse(
            Path::new("/u/x.toml"),
            "exec = \"/bin/true\"\nuser = \"no-such-user-here\"\n",
        )
        .unwrap();
        assert!(Sandbox::prepare(&unit).unwrap_err().contains("no user"));
    }
}
