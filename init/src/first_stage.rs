//! First stage: PID 1 in the initramfs, as `docs/boot.md` describes.
//!
//! Mounts the API file systems, loads the early modules, waits for the root device, mounts the
//! system image on `/newroot` (and the `[[mount]]`s below it), moves the API mounts over, frees the
//! initramfs, switches root and execs `/system/bin/cirrus-init --second-stage`.
//!
//! Everything here needs PID 1 in an initramfs and runs only in the QEMU boot test. Each step logs
//! what failed and goes on where the boot can still succeed; only a missing boot config or root
//! file system stops it (the caller then falls back to the emergency loop).

use std::ffi::CString;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use cirrus_init_config::{BOOT_CONFIG_PATH, BootConfig};
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::kmod::{ModuleInitFlags, finit_module};
use nix::mount::MsFlags;
use nix::sys::stat::Mode;

use crate::mounts::{ensure_dir, mount, mount_api_fs};

/// Where the system image is mounted before it becomes `/`.
pub const NEW_ROOT: &str = "/newroot";
/// What the first stage execs after switching root.
pub const SECOND_STAGE: &str = "/system/bin/cirrus-init";

/// `MODULE_INIT_COMPRESSED_FILE`: the kernel decompresses `.ko.xz`/`.ko.zst` itself (Linux 5.17+).
const MODULE_INIT_COMPRESSED_FILE: u32 = 4;
/// `RAMFS_MAGIC` / `TMPFS_MAGIC`: the only file systems the initramfs may be on.
const RAMFS_MAGIC: u64 = 0x8584_58f6;
const TMPFS_MAGIC: u64 = 0x0102_1994;

/// Makes sure fds 0, 1, 2 are open on the console. The kernel opens `/dev/console` for PID 1
/// only if the initramfs has that node; without it every log line would be lost (and the first
/// files opened would become stdin/stdout/stderr). Call before logging anything.
pub fn ensure_console() {
    let closed = (0..3).any(|fd| {
        // SAFETY: fd 0-2 are only inspected, never closed or taken over.
        let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        fcntl(fd, FcntlArg::F_GETFD).is_err()
    });
    if !closed {
        return;
    }
    ensure_dir(Path::new("/dev"));
    let _ = mount(
        "devtmpfs",
        Path::new("/dev"),
        "devtmpfs",
        MsFlags::MS_NOSUID,
        Some("mode=0755"),
    );
    let console = nix::fcntl::open(
        "/dev/console",
        OFlag::O_RDWR | OFlag::O_NOCTTY,
        Mode::empty(),
    )
    .or_else(|_| nix::fcntl::open("/dev/null", OFlag::O_RDWR, Mode::empty()));
    if let Ok(console) = console {
        let _ = nix::unistd::dup2_stdin(&console);
        let _ = nix::unistd::dup2_stdout(&console);
        let _ = nix::unistd::dup2_stderr(&console);
        // If `open` itself returned 0, 1 or 2, dropping would close a stdio fd we just set up.
        if console.as_raw_fd() <= 2 {
            std::mem::forget(console);
        }
    }
}

/// Runs the first stage. Returns only if the final exec failed (after the root switch), in which
/// case the caller runs the second stage in this process; errors mean the root is not usable.
pub fn run() -> anyhow::Result<()> {
    tracing::info!("cirrus-init {} starting (first stage)", crate::VERSION);
    mount_api_file_systems();

    let config =
        BootConfig::load(Path::new(BOOT_CONFIG_PATH)).map_err(|e| anyhow::anyhow!("{e}"))?;
    load_modules(&config);

    let deadline = Instant::now() + Duration::from_millis(config.device_timeout_ms);
    if !wait_for_node(&config.root.device, deadline) {
        tracing::error!(
            "root device {} did not appear within {} ms; trying to mount it anyway",
            config.root.device.display(),
            config.device_timeout_ms
        );
    }
    mount_new_root(&config)?;
    mount_extra(&config, deadline);

    let new_root = Path::new(NEW_ROOT);
    ensure_dir(&new_root.join("tmp"));
    if let Err(e) = mount(
        "tmpfs",
        &new_root.join("tmp"),
        "tmpfs",
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=1777"),
    ) {
        tracing::error!("cannot mount tmpfs on {NEW_ROOT}/tmp: {e}");
    }

    tracing::info!("switching root to {NEW_ROOT}");
    for api in ["/dev", "/proc", "/sys", "/run"] {
        let target = new_root.join(api.trim_start_matches('/'));
        ensure_dir(&target);
        if let Err(e) = nix::mount::mount(
            Some(api),
            &target,
            None::<&str>,
            MsFlags::MS_MOVE,
            None::<&str>,
        ) {
            tracing::error!("cannot move {api} to {}: {e}", target.display());
        }
    }
    free_initramfs();
    switch_root(new_root)?;

    let program = CString::new(SECOND_STAGE).context("second stage path")?;
    let arg = CString::new("--second-stage").context("second stage argument")?;
    let Err(err) = nix::unistd::execv(&program, &[program.clone(), arg]);
    tracing::error!(
        "cannot exec {SECOND_STAGE} --second-stage: {err}; running the second stage in this process"
    );
    Ok(())
}

fn mount_api_file_systems() {
    let nosuid_nodev = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    mount_api_fs(
        "proc",
        "/proc",
        "proc",
        nosuid_nodev | MsFlags::MS_NOEXEC,
        None,
    );
    mount_api_fs(
        "sysfs",
        "/sys",
        "sysfs",
        nosuid_nodev | MsFlags::MS_NOEXEC,
        None,
    );
    mount_api_fs(
        "devtmpfs",
        "/dev",
        "devtmpfs",
        MsFlags::MS_NOSUID,
        Some("mode=0755"),
    );
    mount_api_fs(
        "devpts",
        "/dev/pts",
        "devpts",
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("gid=5,mode=0620,ptmxmode=0666"),
    );
    mount_api_fs(
        "tmpfs",
        "/dev/shm",
        "tmpfs",
        nosuid_nodev,
        Some("mode=1777"),
    );
    mount_api_fs("tmpfs", "/run", "tmpfs", nosuid_nodev, Some("mode=0755"));
    mount_api_fs(
        "cgroup2",
        "/sys/fs/cgroup",
        "cgroup2",
        nosuid_nodev | MsFlags::MS_NOEXEC,
        None,
    );
}

/// Loads each module in order; a module already loaded is fine, a failing one is logged and skipped.
fn load_modules(config: &BootConfig) {
    let dir = PathBuf::from("/lib/modules").join(&config.kernel_version);
    let no_params = c"";
    let mut loaded = 0;
    for module in &config.modules {
        let path = dir.join(module);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) => {
                tracing::error!("module {}: cannot open: {e}", path.display());
                continue;
            }
        };
        let compressed = [".xz", ".zst", ".gz"]
            .iter()
            .any(|ext| module.ends_with(ext));
        let flags = if compressed {
            ModuleInitFlags::from_bits_retain(MODULE_INIT_COMPRESSED_FILE)
        } else {
            ModuleInitFlags::empty()
        };
        match finit_module(&file, no_params, flags) {
            Ok(()) => loaded += 1,
            Err(Errno::EEXIST) => tracing::debug!("module {module} already loaded"),
            Err(e) => tracing::error!("module {}: cannot load: {e}", path.display()),
        }
    }
    tracing::info!("loaded {loaded} of {} module(s)", config.modules.len());
}

/// Polls for `node` until `deadline`; true once it exists.
fn wait_for_node(node: &Path, deadline: Instant) -> bool {
    loop {
        if node.exists() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn mount_new_root(config: &BootConfig) -> anyhow::Result<()> {
    let new_root = Path::new(NEW_ROOT);
    ensure_dir(new_root);
    let root = &config.root;
    let device = root
        .device
        .to_str()
        .context("root device path is not UTF-8")?;
    if let Err(e) = mount(
        device,
        new_root,
        &root.fstype,
        MsFlags::MS_RDONLY,
        root.options.as_deref(),
    ) {
        bail!(
            "cannot mount the system image {device} ({}) on {NEW_ROOT}: {e}",
            root.fstype
        );
    }
    tracing::info!("mounted {device} ({}) read-only on {NEW_ROOT}", root.fstype);
    Ok(())
}

/// Mounts each `[[mount]]` below the new root, with its fallback where it fails.
fn mount_extra(config: &BootConfig, deadline: Instant) {
    for m in &config.mounts {
        let target = Path::new(NEW_ROOT).join(m.target.strip_prefix("/").unwrap_or(&m.target));
        if m.device.starts_with("/dev/") && !wait_for_node(Path::new(&m.device), deadline) {
            tracing::warn!("{} did not appear in time", m.device);
        }
        ensure_dir(&target);
        match mount(
            &m.device,
            &target,
            &m.fstype,
            MsFlags::empty(),
            m.options.as_deref(),
        ) {
            Ok(()) => tracing::info!(
                "mounted {} ({}) on {}",
                m.device,
                m.fstype,
                m.target.display()
            ),
            Err(e) => match &m.fallback {
                Some(fallback) => {
                    tracing::error!(
                        "cannot mount {} ({}) on {}: {e}; mounting {fallback} there instead: NOTHING WRITTEN THERE WILL PERSIST",
                        m.device,
                        m.fstype,
                        m.target.display()
                    );
                    if let Err(e) = mount("none", &target, fallback, MsFlags::empty(), None) {
                        tracing::error!(
                            "cannot mount fallback {fallback} on {}: {e}",
                            m.target.display()
                        );
                    }
                }
                None => tracing::error!(
                    "cannot mount {} ({}) on {}: {e}",
                    m.device,
                    m.fstype,
                    m.target.display()
                ),
            },
        }
    }
}

/// Deletes the initramfs contents (they would hold RAM forever), never crossing into another
/// mount, and only if `/` really is a ramfs/tmpfs.
fn free_initramfs() {
    let fs_type = match nix::sys::statfs::statfs("/") {
        Ok(s) => s.filesystem_type().0 as u64,
        Err(e) => {
            tracing::warn!("cannot statfs /: {e}; not freeing the initramfs");
            return;
        }
    };
    if fs_type != RAMFS_MAGIC && fs_type != TMPFS_MAGIC {
        tracing::warn!("/ is not a ramfs/tmpfs (type {fs_type:#x}); not freeing the initramfs");
        return;
    }
    let root_dev = match std::fs::symlink_metadata("/") {
        Ok(m) => m.dev(),
        Err(e) => {
            tracing::warn!("cannot stat /: {e}; not freeing the initramfs");
            return;
        }
    };
    let mut failures = 0usize;
    remove_contents(Path::new("/"), root_dev, &mut failures);
    if failures > 0 {
        tracing::warn!("{failures} initramfs file(s) could not be removed");
    }
}

fn remove_contents(dir: &Path, root_dev: u64, failures: &mut usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        *failures += 1;
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            *failures += 1;
            continue;
        };
        if meta.dev() != root_dev {
            continue; // a mount point (/newroot): never cross into it
        }
        let removed = if meta.is_dir() {
            remove_contents(&path, root_dev, failures);
            std::fs::remove_dir(&path)
        } else {
            std::fs::remove_file(&path)
        };
        if removed.is_err() {
            *failures += 1;
        }
    }
}

/// `chdir(new_root); mount(".", "/", MS_MOVE); chroot("."); chdir("/")`.
fn switch_root(new_root: &Path) -> anyhow::Result<()> {
    nix::unistd::chdir(new_root)
        .with_context(|| format!("cannot chdir to {}", new_root.display()))?;
    nix::mount::mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
        .with_context(|| format!("cannot move {} to /", new_root.display()))?;
    nix::unistd::chroot(".").context("cannot chroot into the new root")?;
    nix::unistd::chdir("/").context("cannot chdir to the new /")?;
    Ok(())
}
