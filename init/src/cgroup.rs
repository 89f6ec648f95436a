//! One cgroup v2 per service: created before the service starts, limited (`memory.max`,
//! `cpu.weight`, `pids.max`), joined by the service's process between fork and exec, and killed
//! whole (`cgroup.kill`) when the service stops, so daemons that fork away from their process group
//! go with it.
//!
//! As PID 1 the services' cgroups live under `/sys/fs/cgroup/services/`. Unprivileged (`--user`)
//! they live under `<own cgroup>/cirrus-init.<pid>/` when that part of the cgroup2 tree is writable;
//! otherwise services run without cgroups and the reason is logged once.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use cirrus_init_config::unit::CgroupLimits;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Where services' cgroups are created.
#[derive(Debug)]
pub struct CgroupTree {
    base: PathBuf,
    /// Remove `base` itself when init exits (user mode: it is ours alone).
    remove_base: bool,
}

impl CgroupTree {
    /// PID 1: `/sys/fs/cgroup/services`, with the memory, cpu and pids controllers delegated to it.
    pub fn for_pid1() -> Result<CgroupTree, String> {
        let root = Path::new("/sys/fs/cgroup");
        if !root.join("cgroup.controllers").exists() {
            return Err("cgroup2 is not mounted on /sys/fs/cgroup".to_string());
        }
        let base = root.join("services");
        enable_controllers(root);
        std::fs::create_dir_all(&base)
            .map_err(|e| format!("cannot create {}: {e}", base.display()))?;
        enable_controllers(&base);
        Ok(CgroupTree {
            base,
            remove_base: false,
        })
    }

    /// User mode: a child of init's own cgroup, if the cgroup2 tree lets us write there.
    pub fn for_user() -> Result<CgroupTree, String> {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| format!("cannot read /proc/self/mountinfo: {e}"))?;
        let mount = cgroup2_mount_point(&mountinfo).ok_or("no cgroup2 file system is mounted")?;
        let own = std::fs::read_to_string("/proc/self/cgroup")
            .map_err(|e| format!("cannot read /proc/self/cgroup: {e}"))?;
        let own = own_cgroup_path(&own).ok_or("this process has no cgroup2 path")?;
        let own_dir = mount.join(own.trim_start_matches('/'));
        let base = own_dir.join(format!("cirrus-init.{}", std::process::id()));
        std::fs::create_dir(&base).map_err(|e| {
            format!(
                "the cgroup2 tree is not writable here ({}: {e})",
                base.display()
            )
        })?;
        enable_controllers(&base);
        Ok(CgroupTree {
            base,
            remove_base: true,
        })
    }

    pub fn base(&self) -> &Path {
        &self.base
    }

    /// Creates (or empties and reuses) `name`'s cgroup and applies `limits`. A limit whose
    /// controller is not available is logged and skipped.
    pub fn create(&self, name: &str, limits: &CgroupLimits) -> Result<ServiceCgroup, String> {
        let dir = self.base.join(name);
        if dir.exists() {
            // Left over from an earlier run of the service: empty it.
            kill_cgroup(&dir);
        } else {
            std::fs::create_dir(&dir)
                .map_err(|e| format!("cannot create cgroup {}: {e}", dir.display()))?;
        }
        let settings = [
            ("memory.max", limits.memory_max.map(|v| v.to_string())),
            ("cpu.weight", limits.cpu_weight.map(|v| v.to_string())),
            ("pids.max", limits.pids_max.map(|v| v.to_string())),
        ];
        for (file, value) in settings {
            let Some(value) = value else { continue };
            let path = dir.join(file);
            if !path.exists() {
                tracing::warn!(
                    "{name}: cannot apply {file}: its controller is not enabled for {}",
                    self.base.display()
                );
                continue;
            }
            if let Err(e) = std::fs::write(&path, &value) {
                tracing::warn!("{name}: cannot set {file} = {value}: {e}");
            }
        }
        let procs = OpenOptions::new()
            .write(true)
            .open(dir.join("cgroup.procs"))
            .map_err(|e| format!("cannot open {}/cgroup.procs: {e}", dir.display()))?;
        Ok(ServiceCgroup { dir, procs })
    }

    /// Removes the service cgroups and, in user mode, the base. Killed processes may take a moment
    /// to leave their cgroup, so this retries for up to half a second.
    pub fn remove_all(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_millis(500);
        loop {
            let mut left = 0;
            if let Ok(entries) = std::fs::read_dir(&self.base) {
                for entry in entries.flatten() {
                    if entry.file_type().is_ok_and(|t| t.is_dir())
                        && std::fs::remove_dir(entry.path()).is_err()
                    {
                        left += 1;
                    }
                }
            }
            if left == 0 || std::time::Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        if self.remove_base {
            let _ = std::fs::remove_dir(&self.base);
        }
    }
}

/// A service's cgroup, ready to be joined.
#[derive(Debug)]
pub struct ServiceCgroup {
    pub dir: PathBuf,
    procs: File,
}

impl ServiceCgroup {
    /// The raw fd of the open `cgroup.procs`, for the child to write its pid to.
    pub fn procs_fd(&self) -> i32 {
        self.procs.as_raw_fd()
    }
}

/// Kills every process in the cgroup at `dir` (`cgroup.kill`, or SIGKILL to each listed process on
/// kernels before 5.14). Returns the processes that were in it.
pub fn kill_cgroup(dir: &Path) -> Vec<i32> {
    let pids = cgroup_pids(dir);
    let kill_file = dir.join("cgroup.kill");
    if kill_file.exists() {
        if let Err(e) = std::fs::OpenOptions::new()
            .write(true)
            .open(&kill_file)
            .and_then(|mut f| f.write_all(b"1"))
        {
            tracing::warn!("cannot write {}: {e}", kill_file.display());
        } else {
            return pids;
        }
    }
    for pid in &pids {
        let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
    }
    pids
}

/// The pids in the cgroup at `dir`.
pub fn cgroup_pids(dir: &Path) -> Vec<i32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .map(|text| text.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}

/// Called in the child between fork and exec: moves the calling process into the cgroup whose
/// `cgroup.procs` is open as `procs_fd`. Async-signal-safe: formats the pid on the stack.
pub fn join_in_child(procs_fd: i32) -> std::io::Result<()> {
    let mut buf = [0u8; 16];
    // SAFETY: getpid has no preconditions.
    let mut pid = unsafe { libc::getpid() } as u32;
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (pid % 10) as u8;
        pid /= 10;
        if pid == 0 || i == 0 {
            break;
        }
    }
    let digits = &buf[i..];
    // SAFETY: `digits` is a live buffer of the given length.
    let written = unsafe { libc::write(procs_fd, digits.as_ptr().cast(), digits.len()) };
    if written < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Enables the memory, cpu and pids controllers for the children of `dir`, each on its own (one
/// that is not available must not keep the others off).
fn enable_controllers(dir: &Path) {
    let available = std::fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
    for controller in ["memory", "cpu", "pids"] {
        if available.split_whitespace().any(|c| c == controller) {
            let _ = std::fs::write(dir.join("cgroup.subtree_control"), format!("+{controller}"));
        }
    }
}

/// The mount point of the cgroup2 file system, from `/proc/self/mountinfo`.
fn cgroup2_mount_point(mountinfo: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        let fstype = right.split_whitespace().next()?;
        if fstype != "cgroup2" {
            return None;
        }
        left.split_whitespace().nth(4).map(PathBuf::from)
    })
}

/// The `0::PATH` line of `/proc/self/cgroup`.
fn own_cgroup_path(text: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_cgroup2_mount_and_own_path() {
        let mountinfo = "24 30 0:22 / /sys/fs/cgroup rw,nosuid - tmpfs tmpfs rw\n\
                         35 24 0:31 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw\n";
        assert_eq!(
            cgroup2_mount_point(mountinfo),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        assert_eq!(
            cgroup2_mount_point("1 2 0:1 / / rw - ext4 /dev/x rw\n"),
            None
        );
        assert_eq!(
            own_cgroup_path("4:memory:/x\n0::/user.slice/a\n").as_deref(),
            Some("/user.slice/a")
        );
        assert_eq!(own_cgroup_path("4:memory:/x\n"), None);
    }
}
