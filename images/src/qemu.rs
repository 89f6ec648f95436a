//! The QEMU command line that boots a built image (`cargo xtask run`, the boot tests).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::Image;
use crate::device::Device;

/// Where the emulator shows the screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QemuDisplay {
    /// A GTK window scaled to fit.
    Window,
    /// No window (tests read the screen through QMP `screendump`).
    Headless,
}

/// Per-run options.
#[derive(Debug, Clone)]
pub struct QemuOptions {
    pub display: QemuDisplay,
    /// QMP server socket (created by QEMU).
    pub qmp_socket: PathBuf,
    /// `None`: the serial console on stdio.
    pub serial_log: Option<PathBuf>,
    /// Use this image instead of `image.data`, e.g. a scratch copy for tests.
    pub data_image: Option<PathBuf>,
    /// Appended to the kernel command line.
    pub extra_cmdline: Vec<String>,
}

/// QEMU option values are comma-separated: a literal comma is written twice.
fn escape(path: &Path) -> OsString {
    let text = path.as_os_str().to_string_lossy();
    OsString::from(text.replace(',', ",,"))
}

fn opt(prefix: &str, path: &Path, suffix: &str) -> OsString {
    let mut s = OsString::from(prefix);
    s.push(escape(path));
    s.push(suffix);
    s
}

/// `-device` values from `[qemu] devices`; a `virtio-gpu*` device without a size gets `[display]`'s.
pub fn device_args(device: &Device) -> Vec<String> {
    device
        .qemu
        .devices
        .iter()
        .map(|d| {
            let model = d.split(',').next().unwrap_or_default();
            if model.starts_with("virtio-gpu") && !d.contains("xres=") && !d.contains("yres=") {
                format!(
                    "{d},xres={},yres={}",
                    device.display.width, device.display.height
                )
            } else {
                d.clone()
            }
        })
        .collect()
}

/// The full command; the caller adds stdio handling and spawns it.
pub fn qemu_command(device: &Device, image: &Image, opts: &QemuOptions) -> Command {
    let mut cmd = Command::new(&device.qemu.binary);
    cmd.args(["-accel", &device.qemu.accel, "-cpu", &device.qemu.cpu]);
    cmd.args([
        "-m",
        &device.qemu.memory_mib.to_string(),
        "-smp",
        &device.qemu.smp.to_string(),
    ]);
    cmd.arg("-kernel").arg(&image.kernel);
    cmd.arg("-initrd").arg(&image.initrd);
    let mut cmdline = image.cmdline.clone();
    for extra in &opts.extra_cmdline {
        if !cmdline.is_empty() {
            cmdline.push(' ');
        }
        cmdline.push_str(extra);
    }
    cmd.arg("-append").arg(cmdline);

    // Disks in partition order: the first is /dev/vda, the next /dev/vdb, …
    let root = device.root_partition();
    cmd.arg("-drive").arg(opt(
        "file=",
        &image.system,
        &format!(",if=none,id={},format=raw,readonly=on", root.name),
    ));
    cmd.arg("-device")
        .arg(format!("virtio-blk-pci,drive={}", root.name));
    for (i, part) in device.writable_partitions().enumerate() {
        let file = if i == 0 {
            opts.data_image
                .clone()
                .unwrap_or_else(|| image.data.clone())
        } else {
            image.dir.join(format!("{}.img", part.name))
        };
        cmd.arg("-drive").arg(opt(
            "file=",
            &file,
            &format!(",if=none,id={},format=raw", part.name),
        ));
        cmd.arg("-device")
            .arg(format!("virtio-blk-pci,drive={}", part.name));
    }
    for d in device_args(device) {
        cmd.arg("-device").arg(d);
    }
    cmd.args(["-vga", "none", "-nodefaults", "-no-reboot"]);
    cmd.arg("-qmp")
        .arg(opt("unix:", &opts.qmp_socket, ",server=on,wait=off"));
    match &opts.serial_log {
        Some(log) => cmd.arg("-serial").arg(opt("file:", log, "")),
        None => cmd.args(["-serial", "stdio"]),
    };
    match opts.display {
        QemuDisplay::Headless => cmd.args(["-display", "none"]),
        // SDL, not GTK: QEMU's GTK window reports its own (initially 640x480) size to virtio-gpu
        // as the monitor's preferred mode before the guest starts, so the phone would boot at
        // 640x480; the SDL window opens at the size the device defines (measured under Xvfb).
        QemuDisplay::Window => cmd.args(["-display", "sdl"]),
    };
    cmd
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::Display;

    fn args(cmd: &Command) -> Vec<String> {
        cmd.get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    fn value_after<'a>(args: &'a [String], flag: &str) -> Vec<&'a str> {
        args.windows(2)
            .filter(|w| w[0] == flag)
            .map(|w| w[1].as_str())
            .collect()
    }

    #[test]
    fn command_for_the_qemu_device() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let device = Device::load(root, "qemu-x86_64").unwrap();
        let dir = PathBuf::from("/img,dir");
        let image = Image {
            dir: dir.clone(),
            kernel: dir.join("vmlinux"),
            vmlinuz: dir.join("vmlinuz"),
            vmlinux: dir.join("vmlinux"),
            initrd: dir.join("initrd.img"),
            system: dir.join("system.erofs"),
            data: dir.join("data.img"),
            cmdline: "console=ttyS0 quiet".into(),
            kernel_version: "6.1.0-56-amd64".into(),
            display: Display {
                width: 720,
                height: 1440,
            },
            modules: vec![],
            packages: vec![],
        };
        let mut opts = QemuOptions {
            display: QemuDisplay::Headless,
            qmp_socket: "/run/q.sock".into(),
            serial_log: None,
            data_image: None,
            extra_cmdline: vec!["cirrus.test=1".into()],
        };
        let cmd = qemu_command(&device, &image, &opts);
        assert_eq!(cmd.get_program(), "qemu-system-x86_64");
        let a = args(&cmd);
        assert_eq!(
            &a[..10],
            [
                "-accel",
                "tcg",
                "-cpu",
                "max",
                "-m",
                "1024",
                "-smp",
                "1",
                "-kernel",
                "/img,dir/vmlinux"
            ]
        );
        assert_eq!(
            value_after(&a, "-append"),
            ["console=ttyS0 quiet cirrus.test=1"]
        );
        assert_eq!(
            value_after(&a, "-drive"),
            [
                "file=/img,,dir/system.erofs,if=none,id=system,format=raw,readonly=on",
                "file=/img,,dir/data.img,if=none,id=data,format=raw"
            ]
        );
        assert_eq!(
            value_after(&a, "-device"),
            [
                "virtio-blk-pci,drive=system",
                "virtio-blk-pci,drive=data",
                "virtio-gpu-pci,xres=720,yres=1440",
                "virtio-tablet-pci",
                "virtio-keyboard-pci"
            ]
        );
        assert_eq!(
            value_after(&a, "-qmp"),
            ["unix:/run/q.sock,server=on,wait=off"]
        );
        assert_eq!(value_after(&a, "-serial"), ["stdio"]);
        assert_eq!(value_after(&a, "-display"), ["none"]);
        for flag in ["-nodefaults", "-no-reboot"] {
            assert!(a.iter().any(|x| x == flag), "{flag}");
        }

        opts.display = QemuDisplay::Window;
        opts.serial_log = Some("/tmp/serial.log".into());
        opts.data_image = Some("/tmp/scratch.img".into());
        let a = args(&qemu_command(&device, &image, &opts));
        assert_eq!(value_after(&a, "-display"), ["sdl"]);
        assert_eq!(value_after(&a, "-serial"), ["file:/tmp/serial.log"]);
        assert_eq!(
            value_after(&a, "-drive")[1],
            "file=/tmp/scratch.img,if=none,id=data,format=raw"
        );
    }
}
