//! Readiness notification to the service manager (sd_notify protocol, as cirrus-init speaks it).

use std::os::unix::net::UnixDatagram;

/// Environment variable naming the service manager's notification socket.
pub const NOTIFY_SOCKET_ENV: &str = "NOTIFY_SOCKET";

/// Sends `message` (e.g. `"READY=1"`) to `$NOTIFY_SOCKET` if the service manager set it.
/// Returns whether a message was sent; a failure is logged, never fatal.
pub fn notify(message: &str) -> bool {
    let Some(path) = std::env::var_os(NOTIFY_SOCKET_ENV) else {
        return false;
    };
    let result = UnixDatagram::unbound().and_then(|sock| sock.send_to(message.as_bytes(), &path));
    match result {
        Ok(_) => true,
        Err(err) => {
            tracing::warn!(socket = ?path, %err, "could not notify the service manager");
            false
        }
    }
}
