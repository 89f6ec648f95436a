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
    let mode = match kind {
        ShutdownKind::PowerOff => RebootMode::RB_POWER_OFF,
        ShutdownKind::Reboot => RebootMode::RB_AUTOBOOT,
    };
    tracing::info!(
        "{}",
        if kind == ShutdownKind::PowerOff {
            "powering off"
        } else {
            "rebooting"
        }
    );
    let Err(err) = nix::sys::reboot::reboot(mode);
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
