//! The control socket: `RUNDIR/init.sock`, an AF_UNIX stream socket taking one-line requests.
//!
//! Requests: `poweroff`, `reboot`, `status`. Each connection gets one reply and is closed.
//! `poweroff`/`reboot` are accepted only from root or the user init runs as (the socket is also
//! mode 0600). [`request`] is the client side used by `cirrus-init poweroff|reboot|status`.

use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use nix::sys::socket::{getsockopt, sockopt};

/// Default control socket path on a device.
pub const DEFAULT_SOCKET: &str = "/run/cirrus/init.sock";
/// Environment variable overriding the control socket path for clients.
pub const SOCKET_ENV: &str = "CIRRUS_INIT_SOCKET";

/// Longest request accepted.
const MAX_REQUEST: usize = 1024;
/// A client that sends no complete request in this time is dropped.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// What a client asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    PowerOff,
    Reboot,
    Status,
}

impl Request {
    /// Parses one request line.
    pub fn parse(line: &str) -> Result<Request, String> {
        match line.trim() {
            "poweroff" => Ok(Request::PowerOff),
            "reboot" => Ok(Request::Reboot),
            "status" => Ok(Request::Status),
            other => Err(format!(
                "unknown request `{other}`, expected `poweroff`, `reboot` or `status`"
            )),
        }
    }

    /// Whether only privileged clients may send it.
    pub fn is_privileged(self) -> bool {
        matches!(self, Request::PowerOff | Request::Reboot)
    }
}

/// One accepted client waiting to send its request line.
#[derive(Debug)]
pub struct Connection {
    stream: UnixStream,
    buf: Vec<u8>,
    deadline: Instant,
}

/// What reading from a connection gave.
#[derive(Debug)]
pub enum ConnectionEvent {
    /// Nothing complete yet.
    Pending,
    /// A complete request line (or the client closed its side).
    Request(Result<Request, String>),
    /// The client went away or misbehaved; drop it.
    Closed,
}

impl Connection {
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.stream.as_fd()
    }

    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Whether the peer may ask for `request` (root, or the same user as init).
    pub fn may(&self, request: Request) -> bool {
        if !request.is_privileged() {
            return true;
        }
        match getsockopt(&self.stream, sockopt::PeerCredentials) {
            Ok(cred) => cred.uid() == 0 || cred.uid() == nix::unistd::geteuid().as_raw(),
            Err(_) => false,
        }
    }

    /// Reads what is available.
    pub fn read(&mut self) -> ConnectionEvent {
        let mut chunk = [0u8; 256];
        match self.stream.read(&mut chunk) {
            Ok(0) if self.buf.is_empty() => ConnectionEvent::Closed,
            Ok(0) => ConnectionEvent::Request(self.take_line()),
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                if self.buf.contains(&b'\n') {
                    ConnectionEvent::Request(self.take_line())
                } else if self.buf.len() > MAX_REQUEST {
                    ConnectionEvent::Request(Err("request too long".to_string()))
                } else {
                    ConnectionEvent::Pending
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {
                ConnectionEvent::Pending
            }
            Err(_) => ConnectionEvent::Closed,
        }
    }

    fn take_line(&mut self) -> Result<Request, String> {
        let end = self
            .buf
            .iter()
            .position(|&b| b == b'\n')
            .unwrap_or(self.buf.len());
        let line = String::from_utf8_lossy(&self.buf[..end]).into_owned();
        Request::parse(&line)
    }

    /// Sends the reply (bounded by a short timeout) and closes the connection.
    pub fn reply(self, text: &str) {
        let mut stream = self.stream;
        let _ = stream.set_nonblocking(false);
        let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
        let mut text = text.to_string();
        if !text.ends_with('\n') {
            text.push('\n');
        }
        let _ = stream.write_all(text.as_bytes());
    }
}

/// The listening socket.
#[derive(Debug)]
pub struct ControlSocket {
    listener: UnixListener,
    path: PathBuf,
}

impl ControlSocket {
    /// Binds `path` (replacing a stale socket file), mode 0600.
    pub fn bind(path: &Path) -> anyhow::Result<ControlSocket> {
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => {
                return Err(e).with_context(|| format!("cannot remove stale {}", path.display()));
            }
        }
        let listener = UnixListener::bind(path)
            .with_context(|| format!("cannot bind control socket {}", path.display()))?;
        listener
            .set_nonblocking(true)
            .context("cannot make the control socket non-blocking")?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot chmod {}", path.display()))?;
        Ok(ControlSocket {
            listener,
            path: path.to_path_buf(),
        })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.listener.as_fd()
    }

    /// Accepts every pending client.
    pub fn accept_all(&self) -> Vec<Connection> {
        let mut out = Vec::new();
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    if stream.set_nonblocking(true).is_ok() {
                        out.push(Connection {
                            stream,
                            buf: Vec::new(),
                            deadline: Instant::now() + REQUEST_TIMEOUT,
                        });
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => {
                    tracing::warn!("control socket: accept failed: {e}");
                    break;
                }
            }
        }
        out
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The control socket clients use: `$CIRRUS_INIT_SOCKET` or [`DEFAULT_SOCKET`].
pub fn client_socket_path() -> PathBuf {
    std::env::var_os(SOCKET_ENV).map_or_else(|| PathBuf::from(DEFAULT_SOCKET), PathBuf::from)
}

/// Sends one request line to the init listening on `socket` and returns its reply.
pub fn request(socket: &Path, line: &str) -> anyhow::Result<String> {
    let mut stream = UnixStream::connect(socket).with_context(|| {
        format!(
            "cannot reach cirrus-init at {} (is it running? set {SOCKET_ENV} to use another socket)",
            socket.display()
        )
    })?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.set_write_timeout(Some(Duration::from_secs(30)))?;
    stream
        .write_all(format!("{line}\n").as_bytes())
        .context("cannot send the request to cirrus-init")?;
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut reply = String::new();
    stream
        .read_to_string(&mut reply)
        .context("no answer from cirrus-init")?;
    if reply.is_empty() {
        anyhow::bail!("cirrus-init closed the connection without answering");
    }
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_requests() {
        assert_eq!(Request::parse("poweroff\n"), Ok(Request::PowerOff));
        assert_eq!(Request::parse(" reboot "), Ok(Request::Reboot));
        assert_eq!(Request::parse("status"), Ok(Request::Status));
        assert!(
            Request::parse("halt")
                .unwrap_err()
                .contains("unknown request `halt`")
        );
        assert!(Request::Reboot.is_privileged() && !Request::Status.is_privileged());
    }

    #[test]
    fn request_reply_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("init.sock");
        let server = ControlSocket::bind(&path).unwrap();
        let client_path = path.clone();
        let client = std::thread::spawn(move || request(&client_path, "status"));
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut conns = Vec::new();
        let request = loop {
            conns.extend(server.accept_all());
            if let Some(conn) = conns.first_mut()
                && let ConnectionEvent::Request(r) = conn.read()
            {
                break r;
            }
            assert!(Instant::now() < deadline, "no request received");
            std::thread::sleep(Duration::from_millis(10));
        };
        assert_eq!(request, Ok(Request::Status));
        let conn = conns.remove(0);
        assert!(conn.may(Request::PowerOff));
        conn.reply("a running 12");
        assert_eq!(client.join().unwrap().unwrap(), "a running 12\n");
    }

    #[test]
    fn unreachable_init_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = request(&dir.path().join("none.sock"), "poweroff").unwrap_err();
        assert!(
            format!("{err:#}").contains("cannot reach cirrus-init"),
            "{err:#}"
        );
    }
}
