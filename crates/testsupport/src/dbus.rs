//! A private D-Bus bus for tests: Debian's `dbus-daemon` on a socket in a test's directory.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running `dbus-daemon --session` on `<dir>/bus`; killed on drop.
#[derive(Debug)]
pub struct PrivateBus {
    child: Child,
    address: String,
}

impl PrivateBus {
    /// Starts the daemon and waits for its socket. Panics (naming `cargo xtask deps`) when
    /// dbus-daemon is missing or never listens: this is a test fixture.
    pub fn start(dir: &Path) -> PrivateBus {
        let socket = dir.join("bus");
        let address = format!("unix:path={}", socket.display());
        let child = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--nopidfile"])
            .arg(format!("--address={address}"))
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("dbus-daemon is needed ({e}): run `cargo xtask deps`"));
        let mut bus = PrivateBus { child, address };
        for _ in 0..500 {
            if socket.exists() {
                return bus;
            }
            if let Ok(Some(status)) = bus.child.try_wait() {
                panic!("dbus-daemon exited with {status}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("dbus-daemon did not create {}", socket.display());
    }

    /// The bus address (`unix:path=…`).
    pub fn address(&self) -> &str {
        &self.address
    }
}

impl Drop for PrivateBus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
