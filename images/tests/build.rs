//! Builds the real `qemu-x86_64` image with a real ELF (`/bin/sleep`) standing in for the Cirrus
//! binaries, then inspects every output with independent tools where they exist (`fsck.erofs`,
//! `dump.erofs`) and with the crate's cpio reader.
//!
//! Downloads about 80 MB of Debian packages the first time (kept in `$CIRRUS_CACHE_DIR` or
//! `~/.cache/cirrus`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use cirrus_images::{BuildRequest, Device, Image, build, cpio};
use cirrus_init_config::BootConfig;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("images/ has a parent")
        .to_path_buf()
}

fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CIRRUS_CACHE_DIR") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").expect("HOME is set");
    Path::new(&home).join(".cache/cirrus")
}

fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("info")
        .with_test_writer()
        .try_init();
}

/// Real ELF programs standing in for the Cirrus binaries: `/bin/sleep` for cirrus-init, and this
/// test program (not stripped: it has a symbol table) for cirrus-compositor.
/// A real ELF for every program the device lists: this test binary for the compositor (it has a
/// symbol table to strip), `/bin/sleep` for the others.
fn stand_in_binaries(dir: &Path, device: &Device) -> BTreeMap<String, PathBuf> {
    std::fs::create_dir_all(dir).unwrap();
    let me = std::env::current_exe().unwrap();
    device
        .binaries
        .iter()
        .map(|name| {
            let program = if name == "cirrus-compositor" {
                me.as_path()
            } else {
                Path::new("/bin/sleep")
            };
            let path = dir.join(name);
            std::fs::copy(program, &path).unwrap();
            (name.to_string(), path)
        })
        .collect()
}

fn has_symbol_table(elf: &[u8]) -> bool {
    use object::{Object as _, ObjectSection as _};
    let file = object::File::parse(elf).unwrap();
    file.section_by_name(".symtab")
        .is_some_and(|s| s.size() > 0)
}

/// `len` bytes at `offset` of a (large, sparse) file.
fn read_at(path: &Path, offset: u64, len: usize) -> Vec<u8> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    let mut buf = vec![0; len];
    f.read_exact(&mut buf).unwrap();
    buf
}

fn position(list: &[String], file: &str) -> usize {
    list.iter()
        .position(|m| m == file)
        .unwrap_or_else(|| panic!("{file} is not in the module list {list:?}"))
}

#[test]
fn builds_the_qemu_device_image() {
    init_logging();
    let root = repo_root();
    let device = Device::load(&root, "qemu-x86_64").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("out");
    let req = BuildRequest {
        device: &device,
        repo_root: &root,
        binaries: stand_in_binaries(&tmp.path().join("bin"), &device),
        out_dir: out_dir.clone(),
        cache_dir: cache_dir(),
    };
    let image = build(&req).unwrap();

    // image.json describes what was returned.
    assert_eq!(Image::load(&out_dir).unwrap(), image);
    assert_eq!(image.kernel, image.vmlinux, "[qemu] kernel = \"vmlinux\"");
    assert!(
        image.kernel_version.starts_with("6.1."),
        "{}",
        image.kernel_version
    );
    assert!(image.packages.iter().any(|(n, _)| n == "libc6"));
    assert!(
        image
            .packages
            .iter()
            .any(|(n, _)| n == "libwayland-server0"),
        "closure includes libgbm1's dependencies"
    );
    assert!(
        !image
            .packages
            .iter()
            .any(|(n, _)| n == "debconf" || n == "perl-base" || n == "dpkg")
    );

    // Kernel: vmlinux is an ELF, vmlinuz a bzImage.
    let vmlinux = std::fs::read(&image.vmlinux).unwrap();
    assert!(
        vmlinux.starts_with(b"\x7fELF"),
        "vmlinux is not an ELF file"
    );
    let vmlinuz = std::fs::read(&image.vmlinuz).unwrap();
    assert_eq!(&vmlinuz[0x202..0x206], b"HdrS", "vmlinuz is not a bzImage");

    // Modules: dependencies first.
    let m = &image.modules;
    assert!(position(m, "virtio_ring.ko") < position(m, "virtio_blk.ko"));
    assert!(position(m, "virtio.ko") < position(m, "virtio_pci.ko"));
    assert!(
        position(m, "virtio_pci.ko") < position(m, "virtio_blk.ko"),
        "listed order kept"
    );
    assert!(position(m, "libcrc32c.ko") < position(m, "erofs.ko"));
    assert!(
        position(m, "crc32c_generic.ko") < position(m, "libcrc32c.ko"),
        "softdep pre: crc32c"
    );
    assert!(position(m, "jbd2.ko") < position(m, "ext4.ko"));
    assert!(position(m, "drm.ko") < position(m, "virtio-gpu.ko"));
    assert!(position(m, "virtio-gpu.ko") < position(m, "evdev.ko"));

    // Initramfs.
    let entries = cpio::read_newc(&std::fs::read(&image.initrd).unwrap()).unwrap();
    let by_name: BTreeMap<&str, &cpio::CpioEntry> =
        entries.iter().map(|e| (e.name.as_str(), e)).collect();
    let init = by_name["init"];
    assert!(init.is_file() && init.data.starts_with(b"\x7fELF") && init.mode & 0o111 != 0);
    let console = by_name["dev/console"];
    assert!(console.is_char_device() && (console.rdev_major, console.rdev_minor) == (5, 1));
    assert_eq!(by_name["lib"].data, b"usr/lib");
    assert_eq!(by_name["lib64"].data, b"usr/lib64");
    assert!(by_name["usr/lib64/ld-linux-x86-64.so.2"].is_symlink());
    assert!(by_name["usr/lib/x86_64-linux-gnu/libc.so.6"].is_file());
    let boot_text = String::from_utf8(by_name["etc/cirrus/boot.toml"].data.clone()).unwrap();
    let boot = BootConfig::parse(Path::new("boot.toml"), &boot_text).unwrap();
    assert_eq!(boot.kernel_version, image.kernel_version);
    assert_eq!(&boot.modules, m);
    assert_eq!(boot.root.device, Path::new("/dev/vda"));
    assert_eq!(boot.root.fstype, "erofs");
    assert_eq!(boot.mounts.len(), 1);
    assert_eq!(boot.mounts[0].target, Path::new("/data"));
    assert_eq!(boot.mounts[0].fallback.as_deref(), Some("tmpfs"));
    for module in m {
        let entry = by_name[format!("usr/lib/modules/{}/{module}", image.kernel_version).as_str()];
        assert!(entry.data.starts_with(b"\x7fELF"), "{module}");
    }

    // System image: listed by dump.erofs, verified and extracted by fsck.erofs.
    let ls = Command::new("dump.erofs")
        .args(["--ls", "--path=/system/bin"])
        .arg(&image.system)
        .output()
        .unwrap();
    assert!(
        ls.status.success(),
        "{}",
        String::from_utf8_lossy(&ls.stderr)
    );
    let listing = String::from_utf8_lossy(&ls.stdout);
    assert!(
        listing.contains("cirrus-compositor") && listing.contains("cirrus-init"),
        "{listing}"
    );
    let extracted = tmp.path().join("extracted");
    let fsck = Command::new("fsck.erofs")
        .arg(format!("--extract={}", extracted.display()))
        .arg(&image.system)
        .output()
        .unwrap();
    assert!(
        fsck.status.success(),
        "{}",
        String::from_utf8_lossy(&fsck.stderr)
    );
    let compositor = std::fs::read(extracted.join("system/bin/cirrus-compositor")).unwrap();
    let original = std::fs::read(&req.binaries["cirrus-compositor"]).unwrap();
    assert!(
        has_symbol_table(&original),
        "the stand-in must have symbols for this check to mean anything"
    );
    assert!(
        !has_symbol_table(&compositor),
        "installed binaries are stripped"
    );
    assert!(compositor.len() < original.len());
    assert_eq!(
        std::fs::read_link(extracted.join("lib")).unwrap(),
        Path::new("usr/lib")
    );
    assert!(
        extracted
            .join("usr/lib/x86_64-linux-gnu/libpixman-1.so.0")
            .exists()
    );
    assert!(
        extracted.join("usr/share/X11/xkb/rules/evdev").is_file(),
        "xkb-data"
    );
    assert!(!extracted.join("usr/share/doc").exists(), "docs are pruned");
    for dir in ["proc", "sys", "dev", "run", "tmp", "data", "vendor"] {
        assert!(extracted.join(dir).is_dir(), "mount point /{dir}");
    }
    let unit = std::fs::read_to_string(extracted.join("system/etc/init/compositor.toml")).unwrap();
    assert!(unit.contains("/system/bin/cirrus-compositor"));
    let build_toml = std::fs::read_to_string(extracted.join("system/etc/build.toml")).unwrap();
    assert!(
        build_toml.contains("device = \"qemu-x86_64\"")
            && build_toml.contains(&image.kernel_version),
        "{build_toml}"
    );

    // data.img: ext4 (superblock magic 0xEF53 at 1024 + 56), of the size asked.
    assert_eq!(
        std::fs::metadata(&image.data).unwrap().len(),
        512 * 1024 * 1024
    );
    assert_eq!(read_at(&image.data, 1080, 2), [0x53, 0xef]);

    // A rebuild reuses everything, keeps user data and gives the same system image and initrd.
    let marker = b"user data that must survive a rebuild";
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(&image.data)
            .unwrap();
        f.seek(SeekFrom::Start(300 * 1024 * 1024)).unwrap();
        f.write_all(marker).unwrap();
    }
    let system_before = std::fs::read(&image.system).unwrap();
    let initrd_before = std::fs::read(&image.initrd).unwrap();
    let again = build(&req).unwrap();
    assert_eq!(again, image);
    assert!(
        std::fs::read(&image.system).unwrap() == system_before,
        "system.erofs is not reproducible"
    );
    assert!(
        std::fs::read(&image.initrd).unwrap() == initrd_before,
        "initrd.img is not reproducible"
    );
    assert_eq!(
        read_at(&image.data, 300 * 1024 * 1024, marker.len()),
        marker,
        "data.img was recreated"
    );
}

#[test]
fn a_library_no_package_provides_fails_the_build() {
    init_logging();
    let root = repo_root();
    let device = Device::load(&root, "qemu-x86_64").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    // QEMU needs libraries (libcapstone, libslirp, …) that nothing a phone image includes pulls
    // in; `cargo xtask deps` installs QEMU on every build machine.
    let qemu = Path::new("/usr/bin/qemu-system-x86_64");
    let mut binaries = stand_in_binaries(&tmp.path().join("bin"), &device);
    let bad = tmp.path().join("bin/cirrus-compositor");
    std::fs::copy(qemu, &bad).unwrap();
    binaries.insert("cirrus-compositor".into(), bad);
    let req = BuildRequest {
        device: &device,
        repo_root: &root,
        binaries,
        out_dir: tmp.path().join("out"),
        cache_dir: cache_dir(),
    };
    let err = format!("{:#}", build(&req).unwrap_err());
    assert!(
        err.contains("cirrus-compositor needs lib") && err.contains(", which no package in"),
        "{err}"
    );
    assert!(
        err.contains("images/devices/qemu-x86_64/device.toml"),
        "{err}"
    );
    assert!(err.contains("[packages] include"), "{err}");
    assert!(!tmp.path().join("out/system.erofs").exists());
}
