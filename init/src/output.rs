//! Service output: each service's stdout+stderr pipe, split into lines and forwarded to the console
//! as `[   boot-time] NAME | line`, and to logd (`log_forward.rs`).
//!
//! Pipes are non-blocking and read at most one buffer per wakeup, so a chatty service cannot stall
//! the supervisor. Lines longer than [`MAX_LINE`] bytes are split; a last line without newline is
//! printed when the pipe closes.

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};

use crate::log_forward::LogForwarder;

/// Longest line forwarded as one; longer lines are cut into pieces of this size.
pub const MAX_LINE: usize = 4096;

/// Accumulates bytes and hands out complete lines.
#[derive(Debug, Default)]
pub struct LineSplitter {
    buf: Vec<u8>,
}

impl LineSplitter {
    /// Adds `data`, calling `emit` for every complete line (without `\n` or a trailing `\r`) and for
    /// every [`MAX_LINE`]-byte piece of an over-long line.
    pub fn push(&mut self, data: &[u8], mut emit: impl FnMut(&[u8])) {
        self.buf.extend_from_slice(data);
        let mut start = 0;
        loop {
            let rest = &self.buf[start..];
            let window = &rest[..rest.len().min(MAX_LINE + 1)];
            if let Some(i) = window.iter().position(|&b| b == b'\n') {
                let line = &rest[..i];
                emit(line.strip_suffix(b"\r").unwrap_or(line));
                start += i + 1;
            } else if rest.len() >= MAX_LINE {
                emit(&rest[..MAX_LINE]);
                start += MAX_LINE;
            } else {
                break;
            }
        }
        self.buf.drain(..start);
    }

    /// Emits what is left (a last line without newline).
    pub fn finish(&mut self, mut emit: impl FnMut(&[u8])) {
        if !self.buf.is_empty() {
            emit(&self.buf);
            self.buf.clear();
        }
    }
}

/// Formats one forwarded line: `[   boot-time] NAME | line\n`.
pub fn format_console_line(stamp_secs: Option<f64>, name: &str, line: &[u8]) -> String {
    let stamp = match stamp_secs {
        Some(secs) => cirrus_logging::format_boot_stamp(secs),
        None => "[           ?]".to_string(),
    };
    format!("{stamp} {name} | {}\n", String::from_utf8_lossy(line))
}

/// Writes one line of `name`'s output to init's stderr (the console).
pub fn write_console_line(name: &str, line: &[u8]) {
    let text = format_console_line(cirrus_logging::boot_time_secs(), name, line);
    // The console is best effort: a failed write must not disturb the supervisor.
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// The read end of one service's output pipe.
#[derive(Debug)]
pub struct OutputPipe {
    pub name: String,
    /// The service's main process when the pipe was made (tags lines for logd).
    pub pid: i32,
    file: File,
    splitter: LineSplitter,
}

impl OutputPipe {
    /// Wraps a non-blocking read end carrying `name`'s output.
    pub fn new(name: String, pid: i32, file: File) -> OutputPipe {
        OutputPipe {
            name,
            pid,
            file,
            splitter: LineSplitter::default(),
        }
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }

    /// Reads one buffer's worth and forwards complete lines. On [`ReadOutcome::Closed`] (every
    /// writer gone) the last partial line has been forwarded too.
    pub fn read_available(&mut self, logd: &mut LogForwarder) -> ReadOutcome {
        let mut buf = [0u8; 16 * 1024];
        let name = &self.name;
        let pid = self.pid;
        let mut emit = |line: &[u8]| {
            write_console_line(name, line);
            logd.forward(name, pid, line);
        };
        match self.file.read(&mut buf) {
            Ok(0) => {
                self.splitter.finish(&mut emit);
                ReadOutcome::Closed
            }
            Ok(n) => {
                self.splitter.push(&buf[..n], &mut emit);
                ReadOutcome::Data
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {
                ReadOutcome::Empty
            }
            Err(e) => {
                tracing::warn!("{name}: cannot read service output: {e}");
                self.splitter.finish(&mut emit);
                ReadOutcome::Closed
            }
        }
    }

    /// Forwards whatever is buffered in the pipe now, then the last partial line (used on exit).
    pub fn drain(mut self, logd: &mut LogForwarder) {
        for _ in 0..64 {
            if self.read_available(logd) != ReadOutcome::Data {
                break;
            }
        }
        let (name, pid) = (&self.name, self.pid);
        self.splitter.finish(|line| {
            write_console_line(name, line);
            logd.forward(name, pid, line);
        });
    }
}

/// What [`OutputPipe::read_available`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOutcome {
    Data,
    Empty,
    Closed,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut s = LineSplitter::default();
        for chunk in chunks {
            s.push(chunk, |l| out.push(l.to_vec()));
        }
        s.finish(|l| out.push(l.to_vec()));
        out
    }

    #[test]
    fn splits_lines_across_chunks() {
        let out = split(&[b"one\ntw", b"o\r\nthr", b"ee"]);
        assert_eq!(out, [b"one".to_vec(), b"two".to_vec(), b"three".to_vec()]);
    }

    #[test]
    fn empty_lines_are_kept() {
        assert_eq!(
            split(&[b"\n\nx\n"]),
            [b"".to_vec(), b"".to_vec(), b"x".to_vec()]
        );
    }

    #[test]
    fn long_lines_are_cut_at_max_line() {
        let long = vec![b'a'; MAX_LINE * 2 + 10];
        let mut data = long.clone();
        data.push(b'\n');
        let out = split(&[&data[..100], &data[100..]]);
        assert_eq!(out.len(), 3);
        assert_eq!(out[0].len(), MAX_LINE);
        assert_eq!(out[1].len(), MAX_LINE);
        assert_eq!(out[2].len(), 10);
        // A line of exactly MAX_LINE bytes followed by a newline is one line, not two.
        let mut exact = vec![b'b'; MAX_LINE];
        exact.push(b'\n');
        assert_eq!(split(&[&exact]), [vec![b'b'; MAX_LINE]]);
    }

    #[test]
    fn console_line_format() {
        assert_eq!(
            format_console_line(Some(1.5), "svc", b"hello \xff"),
            "[    1.500000] svc | hello \u{fffd}\n"
        );
    }
}
