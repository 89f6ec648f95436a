//! Hands service output lines to logd (`RUNDIR/logd.sock`, an AF_UNIX datagram socket) besides the
//! console echo. Init never waits for logd: datagrams are sent non-blocking, and lines logd cannot
//! take yet (not started, busy) wait in a small bounded queue, oldest dropped first, so the lines
//! of early boot reach the log once logd is up.
//!
//! Datagram format (contract with `init/logd`): `NAME\tPID\tLEVEL\tMESSAGE`, LEVEL a syslog
//! priority 0–7. A line starting with `<N>` (the sd-daemon convention) has level N, else 6 (info).

use std::collections::VecDeque;
use std::io::ErrorKind;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

/// Lines kept while logd is not reachable.
const QUEUE_LIMIT: usize = 512;

/// The level and text of a line: `<3>disk failed` → (3, "disk failed").
pub fn split_level(line: &[u8]) -> (u8, &[u8]) {
    match line {
        [b'<', d @ b'0'..=b'7', b'>', rest @ ..] => (d - b'0', rest),
        _ => (6, line),
    }
}

/// Init's end of the link to logd.
#[derive(Debug)]
pub struct LogForwarder {
    socket: Option<UnixDatagram>,
    target: PathBuf,
    queue: VecDeque<Vec<u8>>,
    dropped: u64,
}

impl LogForwarder {
    pub fn new(target: &Path) -> LogForwarder {
        let socket = UnixDatagram::unbound()
            .and_then(|s| s.set_nonblocking(true).map(|()| s))
            .map_err(|e| tracing::warn!("no log forwarding to logd: {e}"))
            .ok();
        LogForwarder {
            socket,
            target: target.to_path_buf(),
            queue: VecDeque::new(),
            dropped: 0,
        }
    }

    /// Queues one line of `name`'s output and sends what logd can take.
    pub fn forward(&mut self, name: &str, pid: i32, line: &[u8]) {
        if self.socket.is_none() {
            return;
        }
        let (level, text) = split_level(line);
        let mut datagram = Vec::with_capacity(name.len() + text.len() + 16);
        datagram.extend_from_slice(name.as_bytes());
        datagram.extend_from_slice(format!("\t{pid}\t{level}\t").as_bytes());
        datagram.extend_from_slice(text);
        if self.queue.len() >= QUEUE_LIMIT {
            self.queue.pop_front();
            self.dropped += 1;
        }
        self.queue.push_back(datagram);
        self.flush();
    }

    /// Sends queued lines until logd cannot take more.
    pub fn flush(&mut self) {
        let Some(socket) = &self.socket else { return };
        while let Some(front) = self.queue.front() {
            match socket.send_to(front, &self.target) {
                Ok(_) => {
                    self.queue.pop_front();
                }
                // Not there yet (NotFound, ConnectionRefused) or full (WouldBlock): later.
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        if self.queue.is_empty() && self.dropped > 0 {
            tracing::warn!(
                "{} service output line(s) were not passed to logd (queue full)",
                self.dropped
            );
            self.dropped = 0;
        }
    }

    pub fn has_queued(&self) -> bool {
        !self.queue.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels() {
        assert_eq!(split_level(b"<3>bad"), (3, &b"bad"[..]));
        assert_eq!(split_level(b"<9>x"), (6, &b"<9>x"[..]));
        assert_eq!(split_level(b"plain"), (6, &b"plain"[..]));
    }

    #[test]
    fn queues_until_logd_listens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logd.sock");
        let mut fwd = LogForwarder::new(&path);
        fwd.forward("svc", 42, b"<4>early");
        assert!(fwd.has_queued());
        let logd = UnixDatagram::bind(&path).unwrap();
        fwd.forward("svc", 42, b"later");
        assert!(!fwd.has_queued());
        let mut buf = [0u8; 256];
        let n = logd.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"svc\t42\t4\tearly");
        let n = logd.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"svc\t42\t6\tlater");
    }

    #[test]
    fn queue_is_bounded_oldest_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let mut fwd = LogForwarder::new(&dir.path().join("absent.sock"));
        for i in 0..(QUEUE_LIMIT + 10) {
            fwd.forward("svc", 1, format!("line {i}").as_bytes());
        }
        assert_eq!(fwd.queue.len(), QUEUE_LIMIT);
        assert_eq!(fwd.dropped, 10);
        assert!(fwd.queue.front().unwrap().ends_with(b"\tline 10"));
    }
}
