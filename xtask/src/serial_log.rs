//! Following the serial console that QEMU writes to a file.

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The lines of a growing log file, each with the wall time it was first read at.
pub struct SerialLog {
    path: PathBuf,
    file: Option<File>,
    partial: Vec<u8>,
    started: Instant,
    echo: bool,
    pub lines: Vec<String>,
    /// Wall time since `started` at which each line of `lines` was read.
    pub seen_at: Vec<Duration>,
}

impl SerialLog {
    /// Follows `path` (it may not exist yet). With `echo`, new lines are printed as they come.
    pub fn new(path: &Path, started: Instant, echo: bool) -> SerialLog {
        SerialLog {
            path: path.to_owned(),
            file: None,
            partial: Vec::new(),
            started,
            echo,
            lines: Vec::new(),
            seen_at: Vec::new(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads what was appended since the last call; returns how many complete lines were added.
    pub fn poll(&mut self) -> std::io::Result<usize> {
        if self.file.is_none() {
            match File::open(&self.path) {
                Ok(file) => self.file = Some(file),
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(0),
                Err(e) => return Err(e),
            }
        }
        let Some(file) = self.file.as_mut() else {
            return Ok(0);
        };
        let mut buf = Vec::new();
        file.read_to_end(&mut buf)?;
        Ok(self.push_bytes(&buf))
    }

    /// Ends the last line even without a newline (call when the writer is gone).
    pub fn finish(&mut self) -> std::io::Result<usize> {
        let added = self.poll()?;
        if self.partial.is_empty() {
            return Ok(added);
        }
        let rest = std::mem::take(&mut self.partial);
        self.push_line(&rest);
        Ok(added + 1)
    }

    fn push_bytes(&mut self, bytes: &[u8]) -> usize {
        let mut added = 0;
        self.partial.extend_from_slice(bytes);
        while let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            self.push_line(&line[..end]);
            added += 1;
        }
        added
    }

    fn push_line(&mut self, raw: &[u8]) {
        let text = String::from_utf8_lossy(raw);
        let text = text.trim_end_matches('\r').to_owned();
        if self.echo {
            println!("{text}");
        }
        self.lines.push(text);
        self.seen_at.push(self.started.elapsed());
    }

    /// Index of the first line at or after `from` containing `needle`.
    pub fn find_from(&self, from: usize, needle: &str) -> Option<usize> {
        self.lines
            .iter()
            .skip(from)
            .position(|l| l.contains(needle))
            .map(|i| i + from)
    }

    /// The last `n` lines, for error reports.
    pub fn tail(&self, n: usize) -> &[String] {
        &self.lines[self.lines.len().saturating_sub(n)..]
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn follows_a_growing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("serial.log");
        let mut log = SerialLog::new(&path, Instant::now(), false);
        assert_eq!(log.poll().unwrap(), 0, "no file yet");

        let mut file = File::create(&path).unwrap();
        file.write_all(b"[    0.1] one\r\n[    0.2] tw").unwrap();
        assert_eq!(log.poll().unwrap(), 1);
        file.write_all(b"o\n\xffthree\nfour").unwrap();
        assert_eq!(log.poll().unwrap(), 2);
        assert_eq!(
            log.lines,
            ["[    0.1] one", "[    0.2] two", "\u{fffd}three"]
        );
        assert_eq!(log.find_from(0, "two"), Some(1));
        assert_eq!(log.find_from(2, "two"), None);
        assert_eq!(log.finish().unwrap(), 1);
        assert_eq!(log.tail(2), ["\u{fffd}three", "four"]);
        assert_eq!(log.seen_at.len(), 4);
    }
}
