//! What the web host's end-to-end tests share: the shared system-bus stand-in (Debian's
//! dbus-daemon, app uids resolved through libnss-extrausers in a private mount namespace) and
//! screenshot helpers.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cirrus_compositor::Screenshot;

/// Whether every channel of `a` is within `tol` of `b`.
pub fn close(a: [u8; 3], b: [u8; 3], tol: i32) -> bool {
    a.iter()
        .zip(b)
        .all(|(x, y)| (i32::from(*x) - i32::from(y)).abs() <= tol)
}

/// Saves `shot` under the test target's screenshots directory; returns the path.
pub fn keep(shot: &Screenshot, name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(format!("web-{name}.png"));
    let _ = shot.save_png(&path);
    path
}

/// Debian's dbus-daemon on `<dir>/shared-bus`, open to every uid (the apps run under their own uids
/// when the test runs as root, as the device's system bus lets them reach notifications).
///
/// dbus-daemon drops a connection whose uid it cannot look up. As root the apps run under their
/// own uids, which only the app manager's user database names (`accounts`, read through
/// libnss-extrausers as on the device): the daemon then runs in a private mount namespace where
/// `/etc/nsswitch.conf` says `files extrausers` and `/var/lib/extrausers` is `accounts`, so the
/// machine's own files are never touched.
pub struct SharedBus {
    child: std::process::Child,
    address: String,
}

impl SharedBus {
    pub fn start(dir: &Path, accounts: Option<&Path>) -> SharedBus {
        let socket = dir.join("shared-bus");
        let address = format!("unix:path={}", socket.display());
        let config = dir.join("shared-bus.conf");
        std::fs::write(
            &config,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>{address}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
"#
            ),
        )
        .unwrap();
        let mut cmd = std::process::Command::new("dbus-daemon");
        cmd.args(["--nofork", "--nopidfile"])
            .arg(format!("--config-file={}", config.display()))
            .stdout(std::process::Stdio::null());
        if let Some(accounts) = accounts {
            let nsswitch = dir.join("nsswitch.conf");
            std::fs::write(
                &nsswitch,
                "passwd: files extrausers\ngroup: files extrausers\nshadow: files\nhosts: files\n",
            )
            .unwrap();
            let extrausers = Path::new("/var/lib/extrausers");
            assert!(
                extrausers.is_dir() && Path::new("/etc/nsswitch.conf").exists(),
                "libnss-extrausers is needed: run `cargo xtask deps`"
            );
            private_mounts(
                &mut cmd,
                vec![
                    (nsswitch, PathBuf::from("/etc/nsswitch.conf")),
                    (accounts.to_owned(), extrausers.to_owned()),
                ],
            );
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("dbus-daemon is needed ({e}): run `cargo xtask deps`"));
        // Dropped (killed and reaped) on every way out.
        let bus = SharedBus { child, address };
        for _ in 0..500 {
            if socket.exists() {
                std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o777)).unwrap();
                return bus;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("dbus-daemon did not create {}", socket.display());
    }

    pub fn address(&self) -> &str {
        &self.address
    }
}

impl Drop for SharedBus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `cmd` in a mount namespace of its own (propagation private) with each `(source, target)`
/// bind-mounted.
pub fn private_mounts(cmd: &mut std::process::Command, binds: Vec<(PathBuf, PathBuf)>) {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::process::CommandExt;
    let c = |p: &Path| CString::new(p.as_os_str().as_bytes()).unwrap();
    let binds: Vec<(CString, CString)> = binds.iter().map(|(s, t)| (c(s), c(t))).collect();
    let root = c(Path::new("/"));
    // SAFETY: between fork and exec only unshare(2) and mount(2), on strings made before the fork.
    unsafe {
        cmd.pre_exec(move || {
            if libc::unshare(libc::CLONE_NEWNS) != 0
                || libc::mount(
                    std::ptr::null(),
                    root.as_ptr(),
                    std::ptr::null(),
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null(),
                ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            for (source, target) in &binds {
                if libc::mount(
                    source.as_ptr(),
                    target.as_ptr(),
                    std::ptr::null(),
                    libc::MS_BIND,
                    std::ptr::null(),
                ) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}
