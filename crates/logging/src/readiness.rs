//! Telling the service manager how a daemon is doing: the sd_notify datagram protocol
//! (`READY=1`, `STATUS=…`, `STOPPING=1`) that cirrus-init reads from `$NOTIFY_SOCKET` for units
//! with `ready = "notify"` (docs/units.md). Every Cirrus daemon reports through this one function.

use std::os::unix::net::UnixDatagram;

/// Environment variable naming the service manager's notification socket.
pub const NOTIFY_SOCKET_ENV: &str = "NOTIFY_SOCKET";

/// Sends `message` (newline-separated `KEY=value` assignments, e.g. `"READY=1\nSTATUS=serving"`)
/// to `$NOTIFY_SOCKET` when the service manager set it. Returns whether it was sent; a failure is
/// logged, never fatal (the daemon works the same without a manager).
pub fn notify(message: &str) -> bool {
    let Some(path) = std::env::var_os(NOTIFY_SOCKET_ENV).filter(|p| !p.is_empty()) else {
        return false;
    };
    let sent = UnixDatagram::unbound().and_then(|sock| sock.send_to(message.as_bytes(), &path));
    match sent {
        Ok(_) => true,
        Err(err) => {
            tracing::warn!(socket = ?path, %err, "could not notify the service manager");
            false
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sends_one_datagram_to_the_socket_in_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let listener = UnixDatagram::bind(&path).unwrap();
        // The only test in this crate touching the variable.
        unsafe { std::env::set_var(NOTIFY_SOCKET_ENV, &path) };
        assert!(notify("READY=1\nSTATUS=serving"));
        let mut buf = [0u8; 64];
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\nSTATUS=serving");
        unsafe { std::env::set_var(NOTIFY_SOCKET_ENV, dir.path().join("gone")) };
        assert!(
            !notify("READY=1"),
            "a missing socket is reported, not fatal"
        );
        unsafe { std::env::remove_var(NOTIFY_SOCKET_ENV) };
        assert!(!notify("READY=1"));
    }
}
