//! Readiness notification: the sd_notify protocol over an AF_UNIX datagram socket.
//!
//! The supervisor binds `RUNDIR/notify` with `SO_PASSCRED`, so the kernel attaches the sender's pid
//! to every datagram; services find it through `$NOTIFY_SOCKET`. Messages are `KEY=VALUE` lines
//! (`READY=1`, `STATUS=…`, `STOPPING=1`). When the sender has an address (ours autobinds one), the
//! supervisor answers `OK` once the message is handled, so `cirrus-init notify` can stay alive until
//! then: the supervisor identifies senders by pid and needs the process to still exist.
//!
//! [`send`] is the client side used by `cirrus-init notify`.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{
    AddressFamily, MsgFlags, SockFlag, SockType, UnixAddr, bind, sendto, setsockopt, socket,
    sockopt,
};

/// Environment variable naming the notify socket (as systemd's).
pub const NOTIFY_SOCKET_ENV: &str = "NOTIFY_SOCKET";
/// Set for services by cirrus-init: its notify socket acknowledges each message.
pub const NOTIFY_ACK_ENV: &str = "CIRRUS_NOTIFY_ACK";

/// Biggest datagram read; longer ones are truncated (sd_notify messages are tiny).
const MAX_MESSAGE: usize = 4096;

/// One received notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyMessage {
    /// Sender pid from `SCM_CREDENTIALS` (None if the kernel attached none).
    pub pid: Option<i32>,
    pub fields: Vec<(String, String)>,
    reply_to: Option<UnixAddr>,
}

/// Parses `KEY=VALUE` lines; lines without `=` are ignored.
pub fn parse_fields(data: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(data)
        .lines()
        .filter_map(|line| {
            line.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        })
        .filter(|(k, _)| !k.is_empty())
        .collect()
}

/// The supervisor's end.
#[derive(Debug)]
pub struct NotifySocket {
    socket: UnixDatagram,
    path: PathBuf,
}

impl NotifySocket {
    /// Binds `path` (replacing a stale socket file), with `SO_PASSCRED`.
    pub fn bind(path: &Path) -> anyhow::Result<NotifySocket> {
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(e).with_context(|| format!("cannot remove stale {}", path.display()));
            }
        }
        let socket = UnixDatagram::bind(path)
            .with_context(|| format!("cannot bind notify socket {}", path.display()))?;
        socket
            .set_nonblocking(true)
            .context("cannot make the notify socket non-blocking")?;
        setsockopt(&socket, sockopt::PassCred, &true)
            .context("cannot set SO_PASSCRED on the notify socket")?;
        // Services may run under other uids later; senders are identified by pid, not by who can write.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))
            .with_context(|| format!("cannot chmod {}", path.display()))?;
        Ok(NotifySocket {
            socket,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }

    /// Receives one pending message, or None when there is none.
    pub fn recv(&self) -> anyhow::Result<Option<NotifyMessage>> {
        let mut buf = [0u8; MAX_MESSAGE];
        let received = match recv_with_credentials(self.socket.as_raw_fd(), &mut buf) {
            Ok(r) => r,
            Err(Errno::EAGAIN | Errno::EINTR) => return Ok(None),
            Err(e) => bail!("cannot receive from the notify socket: {e}"),
        };
        let fields = parse_fields(&buf[..received.bytes.min(MAX_MESSAGE)]);
        Ok(Some(NotifyMessage {
            pid: received.pid,
            fields,
            reply_to: received.sender,
        }))
    }

    /// Tells the sender of `msg` that it was handled (best effort, never blocks).
    pub fn acknowledge(&self, msg: &NotifyMessage) {
        if let Some(addr) = &msg.reply_to {
            let _ = sendto(self.socket.as_raw_fd(), b"OK", addr, MsgFlags::MSG_DONTWAIT);
        }
    }
}

/// What one `recvmsg` brought.
struct Received {
    bytes: usize,
    pid: Option<i32>,
    /// The sender's address when it is bound (path or abstract); unbound senders cannot be answered.
    sender: Option<UnixAddr>,
}

/// `recvmsg(2)` with `SCM_CREDENTIALS`, done by hand: nix's address decoding asserts on the empty
/// address an unbound sender (the common sd_notify client) arrives with, and PID 1 must not panic on
/// what a client sends. File descriptors a client passes along are closed, never kept.
fn recv_with_credentials(fd: RawFd, buf: &mut [u8]) -> Result<Received, Errno> {
    // SAFETY: all-zero is a valid `sockaddr_un` and `msghdr`.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // Room for the credentials and a few passed fds, 8-byte aligned as cmsg headers need.
    let mut control = [0u64; 32];
    let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
    hdr.msg_name = (&mut addr as *mut libc::sockaddr_un).cast();
    hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
    hdr.msg_iov = &mut iov;
    hdr.msg_iovlen = 1;
    hdr.msg_control = control.as_mut_ptr().cast();
    hdr.msg_controllen = std::mem::size_of_val(&control);
    // SAFETY: every pointer in `hdr` points at live buffers of the lengths given.
    let n = unsafe { libc::recvmsg(fd, &mut hdr, libc::MSG_DONTWAIT | libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(Errno::last());
    }
    let mut pid = None;
    // SAFETY: walking the control buffer the kernel filled, with the libc macros, bounds-checked by them.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&hdr);
        while !c.is_null() {
            let h = &*c;
            let data = libc::CMSG_DATA(c);
            let data_len = (h.cmsg_len as usize).saturating_sub(libc::CMSG_LEN(0) as usize);
            if h.cmsg_level == libc::SOL_SOCKET
                && h.cmsg_type == libc::SCM_CREDENTIALS
                && data_len >= std::mem::size_of::<libc::ucred>()
            {
                let cred: libc::ucred = std::ptr::read_unaligned(data.cast());
                pid = Some(cred.pid);
            } else if h.cmsg_level == libc::SOL_SOCKET && h.cmsg_type == libc::SCM_RIGHTS {
                for i in 0..data_len / std::mem::size_of::<RawFd>() {
                    let passed: RawFd = std::ptr::read_unaligned(data.cast::<RawFd>().add(i));
                    libc::close(passed);
                }
            }
            c = libc::CMSG_NXTHDR(&hdr, c);
        }
    }
    let path_offset = std::mem::offset_of!(libc::sockaddr_un, sun_path);
    let name_len = (hdr.msg_namelen as usize)
        .min(std::mem::size_of::<libc::sockaddr_un>())
        .saturating_sub(path_offset);
    let name: Vec<u8> = addr.sun_path[..name_len].iter().map(|&c| c as u8).collect();
    let sender = match name.split_first() {
        None => None,
        Some((0, abstract_name)) if !abstract_name.is_empty() => {
            UnixAddr::new_abstract(abstract_name).ok()
        }
        Some(_) => {
            let path_bytes = name.split(|&b| b == 0).next().unwrap_or_default();
            (!path_bytes.is_empty())
                .then(|| {
                    UnixAddr::new(std::path::Path::new(std::ffi::OsStr::from_bytes(
                        path_bytes,
                    )))
                    .ok()
                })
                .flatten()
        }
    };
    Ok(Received {
        bytes: n as usize,
        pid,
        sender,
    })
}

impl Drop for NotifySocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn socket_address(target: &str) -> anyhow::Result<UnixAddr> {
    if let Some(name) = target.strip_prefix('@') {
        Ok(UnixAddr::new_abstract(name.as_bytes())?)
    } else if target.starts_with('/') {
        Ok(UnixAddr::new(target)?)
    } else {
        bail!("${NOTIFY_SOCKET_ENV} must be an absolute path or an @abstract name, got `{target}`")
    }
}

/// Sends `message` (`KEY=VALUE` lines) to the notify socket `target` (a path or `@abstract`).
///
/// When `wait_for_ack` is set, waits up to `ack_timeout` for the supervisor's `OK` so this process
/// is still alive while the supervisor looks up who sent the message.
pub fn send(
    target: &str,
    message: &str,
    wait_for_ack: bool,
    ack_timeout: Duration,
) -> anyhow::Result<()> {
    let addr = socket_address(target)?;
    let fd: OwnedFd = socket(
        AddressFamily::Unix,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .context("cannot create a datagram socket")?;
    if wait_for_ack {
        // Autobind an abstract address so the supervisor can answer.
        bind(fd.as_raw_fd(), &UnixAddr::new_unnamed())
            .context("cannot bind the notify client socket")?;
    }
    sendto(fd.as_raw_fd(), message.as_bytes(), &addr, MsgFlags::empty())
        .with_context(|| format!("cannot send to the notify socket {target}"))?;
    if wait_for_ack {
        let timeout = PollTimeout::try_from(ack_timeout).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
            Ok(n) if n > 0 => {
                let mut buf = [0u8; 64];
                let _ = nix::sys::socket::recv(fd.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT);
            }
            // No answer in time: the message was delivered anyway.
            Ok(_) | Err(_) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fields() {
        assert_eq!(
            parse_fields(b"READY=1\nSTATUS=Loading fonts=ok\n\ngarbage\n=x\n"),
            [
                ("READY".to_string(), "1".to_string()),
                ("STATUS".to_string(), "Loading fonts=ok".to_string())
            ]
        );
    }

    #[test]
    fn round_trip_with_credentials_and_ack() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let server = NotifySocket::bind(&path).unwrap();
        let target = path.to_str().unwrap().to_string();
        let client = std::thread::spawn(move || {
            send(&target, "READY=1\nSTATUS=up", true, Duration::from_secs(20))
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let msg = loop {
            if let Some(msg) = server.recv().unwrap() {
                break msg;
            }
            assert!(std::time::Instant::now() < deadline, "no message received");
            std::thread::sleep(Duration::from_millis(10));
        };
        assert_eq!(msg.pid, Some(std::process::id() as i32));
        assert_eq!(msg.fields[0], ("READY".to_string(), "1".to_string()));
        assert!(msg.reply_to.is_some());
        server.acknowledge(&msg);
        client.join().unwrap().unwrap();
    }

    #[test]
    fn accepts_messages_from_unbound_senders() {
        // What sd_notify clients in most languages do: send from an unbound socket.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let server = NotifySocket::bind(&path).unwrap();
        let client = std::os::unix::net::UnixDatagram::unbound().unwrap();
        client.send_to(b"READY=1", &path).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let msg = loop {
            if let Some(msg) = server.recv().unwrap() {
                break msg;
            }
            assert!(std::time::Instant::now() < deadline, "no message received");
            std::thread::sleep(Duration::from_millis(10));
        };
        assert_eq!(msg.fields, [("READY".to_string(), "1".to_string())]);
        assert!(msg.reply_to.is_none());
        server.acknowledge(&msg);
    }

    #[test]
    fn rejects_relative_socket() {
        assert!(send("relative", "READY=1", false, Duration::ZERO).is_err());
    }
}
