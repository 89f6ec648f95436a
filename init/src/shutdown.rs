//! The end of PID 1's life, after the supervisor stopped the services: kill what is left, sync,
//! unmount, `reboot(2)`. Runs only as PID 1 (exercised by the QEMU boot test).

use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::reboot::RebootMode;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::supervisor::ShutdownKind;

/// How long leftover processes get between SIGTERM and SIGKILL.
const LEFTOVER_GRACE: Duration = Duration::from_secs(3);

/// Powers off or reboots. Never returns: if `reboot(2)` fails, PID 1 falls into the emergency loop.
pub fn finish(kind: ShutdownKind) -> ! {
    tracing::info!("sending SIGTERM to remaining processes");
    // kill(-1) signals every process but PID 1 itself.
    let _ = kill(Pid::from_raw(-1), Signal::SIGTERM);
    if !reap_until_none_left(Instant::now() + LEFTOVER_GRACE) {
        tracing::info!("sending SIGKILL to remaining processes");
        let _ = kill(Pid::from_raw(-1), Signal::SIGKILL);
        reap_until_none_left(Instant::now() + LEFTOVER_GRACE);
    }
    nix::unistd::sync();
    tracing::info!("unmounting file systems");
    crate::mounts::unmount_all();
    nix::unistd::sync();
    tracing::info!("{}", kind.describe());
    let target = match kind {
        ShutdownKind::PowerOff => {
            let Err(err) = nix::sys::reboot::reboot(RebootMode::RB_POWER_OFF);
            crate::emergency::run(&format!("reboot(2) failed: {err}"))
        }
        ShutdownKind::Reboot => {
            let Err(err) = nix::sys::reboot::reboot(RebootMode::RB_AUTOBOOT);
            crate::emergency::run(&format!("reboot(2) failed: {err}"))
        }
        ShutdownKind::RebootRecovery => c"recovery",
        ShutdownKind::RebootBootloader => c"bootloader",
    };
    // LINUX_REBOOT_CMD_RESTART2 passes the target to the bootloader (Android's `reboot recovery`).
    // SAFETY: reboot(2) with its magic numbers and a NUL-terminated argument.
    unsafe {
        libc::syscall(
            libc::SYS_reboot,
            libc::LINUX_REBOOT_MAGIC1,
            libc::LINUX_REBOOT_MAGIC2,
            libc::LINUX_REBOOT_CMD_RESTART2,
            target.as_ptr(),
        );
    }
    let err = std::io::Error::last_os_error();
    tracing::error!("reboot into {target:?} failed ({err}); rebooting normally");
    let Err(err) = nix::sys::reboot::reboot(RebootMode::RB_AUTOBOOT);
    crate::emergency::run(&format!("reboot(2) failed: {err}"))
}

/// Reaps children until there are none (true) or `deadline` passes (false).
fn reap_until_none_left(deadline: Instant) -> bool {
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => {
                if Instant::now() >= deadline {
                    return false;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => return true, // ECHILD: nothing left
        }
    }
}
