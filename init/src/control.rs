//! The control socket: `RUNDIR/init.sock`, an AF_UNIX stream socket taking one-line requests.
//!
//! Requests are listed on [`Request`]. Each connection gets one reply and is closed, except `watch`,
//! which stays open and receives property changes. Anyone may connect (mode 0666); privileged
//! requests (start/stop/restart, poweroff/reboot, set) are accepted only from root or the user init
//! runs as, checked with the peer's credentials (SO_PEERCRED). A privileged relay (the D-Bus
//! front-end) may act for another uid with `as UID REQUEST`, and is then judged as that uid.
//! [`request`] is the client side used by `cirrus-init` client commands.

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

/// Longest request accepted (a `set` with the longest value fits).
const MAX_REQUEST: usize = 8192;
/// A client that sends no complete request in this time is dropped.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// What a client asks for. One request per line:
///
/// ```text
/// status | list            every unit: NAME STATE PID
/// status NAME              one unit, with its last STATUS= text
/// start|stop|restart NAME  (privileged)
/// poweroff | reboot        (privileged)
/// get NAME                 NAME=VALUE
/// set NAME VALUE…          (privileged; the value is the rest of the line)
/// props [PREFIX]           NAME=VALUE lines
/// watch [PREFIX]           the current NAME=VALUE lines, then one per change, until the client leaves
/// as UID REQUEST           (from a privileged peer only: a relay acting for uid UID)
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    PowerOff,
    Reboot,
    Status,
    ServiceStatus(String),
    Start(String),
    Stop(String),
    Restart(String),
    GetProperty(String),
    SetProperty(String, String),
    ListProperties(String),
    Watch(String),
    As { uid: u32, request: Box<Request> },
}

impl Request {
    /// Parses one request line.
    pub fn parse(line: &str) -> Result<Request, String> {
        let line = line.trim_start().trim_end_matches(['\n', '\r']);
        let (verb, rest) = match line.split_once(' ') {
            Some((verb, rest)) => (verb, rest.trim_start()),
            None => (line.trim_end(), ""),
        };
        let one_name = |what: &str| -> Result<String, String> {
            let name = rest.trim();
            if name.is_empty() || name.contains(char::is_whitespace) {
                Err(format!("`{verb}` needs one {what}"))
            } else {
                Ok(name.to_string())
            }
        };
        let no_args = |r: Request| {
            if rest.trim().is_empty() {
                Ok(r)
            } else {
                Err(format!("`{verb}` takes no arguments"))
            }
        };
        match verb {
            "poweroff" => no_args(Request::PowerOff),
            "reboot" => no_args(Request::Reboot),
            "status" | "list" if rest.trim().is_empty() => Ok(Request::Status),
            "status" => Ok(Request::ServiceStatus(one_name("unit name")?)),
            "start" => Ok(Request::Start(one_name("unit name")?)),
            "stop" => Ok(Request::Stop(one_name("unit name")?)),
            "restart" => Ok(Request::Restart(one_name("unit name")?)),
            "get" => Ok(Request::GetProperty(one_name("property name")?)),
            "set" => match rest.split_once(' ') {
                Some((name, value)) if !name.is_empty() => {
                    Ok(Request::SetProperty(name.to_string(), value.to_string()))
                }
                _ if !rest.trim().is_empty() => {
                    Ok(Request::SetProperty(rest.trim().to_string(), String::new()))
                }
                _ => Err("`set` needs a property name and a value".to_string()),
            },
            "props" => Ok(Request::ListProperties(rest.trim().to_string())),
            "watch" => Ok(Request::Watch(rest.trim().to_string())),
            "as" => {
                let (uid, inner) = rest
                    .split_once(' ')
                    .ok_or("`as` needs a uid and a request")?;
                let uid = uid.parse().map_err(|_| format!("`{uid}` is not a uid"))?;
                let inner = Request::parse(inner)?;
                if matches!(inner, Request::As { .. }) {
                    return Err("`as` cannot be nested".to_string());
                }
                Ok(Request::As {
                    uid,
                    request: Box::new(inner),
                })
            }
            other => Err(format!(
                "unknown request `{other}`, expected one of status, list, start, stop, restart, poweroff, reboot, get, set, props, watch"
            )),
        }
    }

    /// Whether only privileged callers (root, or the user init runs as) may send it.
    pub fn is_privileged(&self) -> bool {
        match self {
            Request::PowerOff
            | Request::Reboot
            | Request::Start(_)
            | Request::Stop(_)
            | Request::Restart(_) => true,
            // Judged per property by the access rules (`property_access`).
            Request::SetProperty(..) => false,
            Request::As { request, .. } => request.is_privileged(),
            _ => false,
        }
    }

    /// The request line for [`Request::parse`].
    pub fn to_line(&self) -> String {
        match self {
            Request::PowerOff => "poweroff".into(),
            Request::Reboot => "reboot".into(),
            Request::Status => "status".into(),
            Request::ServiceStatus(n) => format!("status {n}"),
            Request::Start(n) => format!("start {n}"),
            Request::Stop(n) => format!("stop {n}"),
            Request::Restart(n) => format!("restart {n}"),
            Request::GetProperty(n) => format!("get {n}"),
            Request::SetProperty(n, v) => format!("set {n} {v}"),
            Request::ListProperties(p) => format!("props {p}").trim_end().to_string(),
            Request::Watch(p) => format!("watch {p}").trim_end().to_string(),
            Request::As { uid, request } => format!("as {uid} {}", request.to_line()),
        }
    }
}

/// Whether `uid` may send privileged requests: root, or the user init itself runs as.
pub fn is_privileged_uid(uid: u32) -> bool {
    uid == 0 || uid == nix::unistd::geteuid().as_raw()
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

    /// The peer's uid (SO_PEERCRED), if the kernel tells.
    pub fn peer_uid(&self) -> Option<u32> {
        getsockopt(&self.stream, sockopt::PeerCredentials)
            .ok()
            .map(|cred| cred.uid())
    }

    /// Whether the peer may ask for `request` (root, or the same user as init, for privileged ones).
    pub fn may(&self, request: &Request) -> bool {
        !request.is_privileged() || self.peer_uid().is_some_and(is_privileged_uid)
    }

    /// Turns the connection into a watcher's stream (non-blocking).
    pub fn into_stream(self) -> UnixStream {
        self.stream
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
    /// Binds `path` (replacing a stale socket file), mode 0666 (access is checked per request).
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
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))
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

/// Sends a `watch` request and copies what init sends to `out` until init closes the connection.
pub fn watch(socket: &Path, line: &str, out: &mut dyn Write) -> anyhow::Result<()> {
    let mut stream = UnixStream::connect(socket).with_context(|| {
        format!(
            "cannot reach cirrus-init at {} (is it running? set {SOCKET_ENV} to use another socket)",
            socket.display()
        )
    })?;
    stream
        .write_all(format!("{line}\n").as_bytes())
        .context("cannot send the request to cirrus-init")?;
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).context("reading from cirrus-init")?;
        if n == 0 {
            return Ok(());
        }
        out.write_all(&buf[..n])?;
        out.flush()?;
        if buf[..n].starts_with(b"error:") {
            anyhow::bail!("cirrus-init refused the request");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_requests() {
        assert_eq!(Request::parse("poweroff\n"), Ok(Request::PowerOff));
        assert_eq!(Request::parse(" reboot "), Ok(Request::Reboot));
        assert_eq!(Request::parse("status"), Ok(Request::Status));
        assert_eq!(Request::parse("list"), Ok(Request::Status));
        assert_eq!(
            Request::parse("status a"),
            Ok(Request::ServiceStatus("a".into()))
        );
        assert_eq!(
            Request::parse("restart b"),
            Ok(Request::Restart("b".into()))
        );
        assert_eq!(
            Request::parse("set persist.x hello world\n"),
            Ok(Request::SetProperty(
                "persist.x".into(),
                "hello world".into()
            ))
        );
        assert_eq!(
            Request::parse("set x"),
            Ok(Request::SetProperty("x".into(), String::new()))
        );
        assert_eq!(
            Request::parse("props"),
            Ok(Request::ListProperties(String::new()))
        );
        assert_eq!(
            Request::parse("watch sys."),
            Ok(Request::Watch("sys.".into()))
        );
        let relayed = Request::parse("as 1000 set a b").unwrap();
        assert_eq!(
            relayed,
            Request::As {
                uid: 1000,
                request: Box::new(Request::SetProperty("a".into(), "b".into()))
            }
        );
        // Setting a property is judged by the access rules, not refused up front.
        assert!(!relayed.is_privileged());
        assert!(Request::parse("as 1000 stop x").unwrap().is_privileged());
        assert_eq!(Request::parse(&relayed.to_line()), Ok(relayed));
        assert!(Request::parse("as 1 as 2 status").is_err());
        assert!(Request::parse("as x status").is_err());
        assert!(Request::parse("start").is_err());
        assert!(Request::parse("start a b").is_err());
        assert!(Request::parse("poweroff now").is_err());
        assert!(
            Request::parse("halt")
                .unwrap_err()
                .contains("unknown request `halt`")
        );
        assert!(Request::Reboot.is_privileged() && !Request::Status.is_privileged());
        assert!(!Request::GetProperty("a".into()).is_privileged());
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
        assert!(conn.may(&Request::PowerOff));
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
