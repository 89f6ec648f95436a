//! Last resorts that keep PID 1 alive: the panic hook and the emergency loop.
//!
//! PID 1 must never exit (the kernel would panic). When the first stage cannot mount the root,
//! the supervisor cannot run, or anything panics, init logs why and stays in [`run`]: it reaps
//! zombies forever and still honours SIGTERM (power off) and SIGINT / Ctrl-Alt-Del (reboot).

use std::time::Duration;

use nix::sys::reboot::RebootMode;
use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

/// Logs panics through tracing (the console), with their location.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".to_string());
        tracing::error!("cirrus-init panicked{location}: {message}");
    }));
}

/// The emergency loop. Never returns.
pub fn run(reason: &str) -> ! {
    tracing::error!("EMERGENCY: {reason}");
    tracing::error!(
        "cirrus-init stays up reaping processes; SIGTERM powers off, Ctrl-Alt-Del (SIGINT) reboots"
    );
    let _ = nix::sys::reboot::set_cad_enabled(false);
    let mut mask = SigSet::empty();
    for sig in [Signal::SIGCHLD, Signal::SIGTERM, Signal::SIGINT] {
        mask.add(sig);
    }
    let _ = sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), None);
    loop {
        match mask.wait() {
            Ok(Signal::SIGTERM) => halt(RebootMode::RB_POWER_OFF),
            Ok(Signal::SIGINT) => halt(RebootMode::RB_AUTOBOOT),
            Ok(_) => {}
            // Should not happen; do not spin.
            Err(_) => std::thread::sleep(Duration::from_secs(1)),
        }
        reap_all();
    }
}

fn reap_all() {
    while let Ok(status) = waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
        if status == WaitStatus::StillAlive {
            break;
        }
    }
}

fn halt(mode: RebootMode) {
    tracing::info!(
        "emergency: {}",
        if mode == RebootMode::RB_POWER_OFF {
            "powering off"
        } else {
            "rebooting"
        }
    );
    nix::unistd::sync();
    crate::mounts::unmount_all();
    nix::unistd::sync();
    let Err(e) = nix::sys::reboot::reboot(mode);
    tracing::error!("reboot(2) failed: {e}");
}
