//! Input devices on a device (phone, QEMU): libinput over udev, devices opened directly.
//!
//! A phone has no VTs to switch and no seat daemon: the compositor runs as root and opens
//! `/dev/input/event*` itself. libinput finds devices through udev's database, so the image runs
//! `systemd-udevd` (and a coldplug trigger) before the compositor.

use std::fs::OpenOptions;
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::anyhow;
use smithay::backend::libinput::LibinputInputBackend;
use smithay::reexports::calloop::LoopHandle;
use smithay::reexports::input::{Libinput, LibinputInterface};

use crate::compositor::Cirrus;

/// Opens input devices with plain `open(2)`.
struct DirectOpen;

impl LibinputInterface for DirectOpen {
    fn open_restricted(&mut self, path: &Path, flags: i32) -> Result<OwnedFd, i32> {
        let access = flags & libc::O_ACCMODE;
        OpenOptions::new()
            .custom_flags(flags & !libc::O_ACCMODE)
            .read(access == libc::O_RDONLY || access == libc::O_RDWR)
            .write(access == libc::O_WRONLY || access == libc::O_RDWR)
            .open(path)
            .map(OwnedFd::from)
            .map_err(|err| {
                tracing::warn!(path = %path.display(), %err, "cannot open input device");
                err.raw_os_error().unwrap_or(libc::EIO)
            })
    }

    fn close_restricted(&mut self, fd: OwnedFd) {
        drop(fd);
    }
}

/// Starts delivering the input devices of `seat` to the compositor.
pub fn start(handle: &LoopHandle<'static, Cirrus>, seat: &str) -> anyhow::Result<()> {
    let mut libinput = Libinput::new_with_udev(DirectOpen);
    libinput
        .udev_assign_seat(seat)
        .map_err(|()| anyhow!("libinput could not use udev seat {seat}"))?;
    let backend = LibinputInputBackend::new(libinput);
    handle
        .insert_source(backend, |event, _, data: &mut Cirrus| {
            data.state.process_input_event(event)
        })
        .map_err(|e| anyhow!("watching input devices: {e}"))?;
    Ok(())
}
