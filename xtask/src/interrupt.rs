//! Ctrl-C (SIGINT) and SIGTERM as a flag, so a running VM is powered off or killed instead of being
//! left behind (QEMU runs in its own process group and does not get the terminal's Ctrl-C).

use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_signal: libc::c_int) {
    REQUESTED.store(true, Ordering::SeqCst);
}

/// From now on SIGINT and SIGTERM only set the flag that [`requested`] reads.
pub fn install() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe; sigaction is
        // given a zeroed, then filled, struct that lives through the call.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as *const () as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
}

/// Whether Ctrl-C (or SIGTERM) arrived since [`install`].
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signal_sets_the_flag() {
        install();
        assert!(!requested());
        // SAFETY: raise sends a signal to this thread; the handler installed above is async-signal-safe.
        unsafe { libc::raise(libc::SIGTERM) };
        assert!(requested());
        REQUESTED.store(false, Ordering::SeqCst);
    }
}
