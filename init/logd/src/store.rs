//! Where entries go: a bounded in-memory ring (what readers see first) and a size-capped log file
//! under /data/log, rotated `logd.log` → `logd.log.1` → … → `logd.log.N` (the oldest dropped).

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::entry::Entry;

/// The newest entries, within a byte budget.
#[derive(Debug)]
pub struct Ring {
    entries: VecDeque<Entry>,
    bytes: usize,
    budget: usize,
}

impl Ring {
    pub fn new(budget: usize) -> Ring {
        Ring {
            entries: VecDeque::new(),
            bytes: 0,
            budget,
        }
    }

    pub fn push(&mut self, entry: Entry) {
        self.bytes += entry.size();
        self.entries.push_back(entry);
        while self.bytes > self.budget {
            match self.entries.pop_front() {
                Some(old) => self.bytes -= old.size(),
                None => break,
            }
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The persistent log: appends lines, rotates past `max_bytes`, keeps `keep` old files.
#[derive(Debug)]
pub struct RotatingLog {
    path: PathBuf,
    file: Option<File>,
    size: u64,
    max_bytes: u64,
    keep: u32,
}

impl RotatingLog {
    /// Opens (creating) `dir/logd.log`.
    pub fn open(dir: &Path, max_bytes: u64, keep: u32) -> std::io::Result<RotatingLog> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("logd.log");
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let size = file.metadata()?.len();
        Ok(RotatingLog {
            path,
            file: Some(file),
            size,
            max_bytes,
            keep,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `entry`; a write error is returned once and the log keeps trying later.
    pub fn append(&mut self, entry: &Entry) -> std::io::Result<()> {
        let mut line = entry.to_line();
        line.push('\n');
        if self.size + line.len() as u64 > self.max_bytes && self.size > 0 {
            self.rotate()?;
        }
        let file = match &mut self.file {
            Some(file) => file,
            None => {
                self.file = Some(
                    OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&self.path)?,
                );
                self.size = 0;
                self.file
                    .as_mut()
                    .ok_or_else(|| std::io::Error::other("log file not open"))?
            }
        };
        file.write_all(line.as_bytes())?;
        self.size += line.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        self.file = None;
        let numbered = |n: u32| PathBuf::from(format!("{}.{n}", self.path.display()));
        let _ = std::fs::remove_file(numbered(self.keep));
        for n in (1..self.keep).rev() {
            let _ = std::fs::rename(numbered(n), numbered(n + 1));
        }
        if self.keep > 0 {
            std::fs::rename(&self.path, numbered(1))?;
        } else {
            std::fs::remove_file(&self.path)?;
        }
        self.file = Some(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)?,
        );
        self.size = 0;
        Ok(())
    }

    /// Pushes written lines to the disk (called after each batch).
    pub fn flush(&mut self) {
        if let Some(file) = &mut self.file {
            let _ = file.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::Source;

    fn entry(message: &str) -> Entry {
        Entry {
            time_us: 1,
            source: Source::Service,
            tag: "t".into(),
            pid: 1,
            level: 6,
            message: message.into(),
        }
    }

    #[test]
    fn ring_keeps_the_newest_within_budget() {
        let mut ring = Ring::new(entry("x").size() * 3);
        for i in 0..10 {
            ring.push(entry(&i.to_string()));
        }
        let kept: Vec<&str> = ring.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(kept, ["7", "8", "9"]);
    }

    #[test]
    fn rotates_and_caps_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = RotatingLog::open(dir.path(), 200, 2).unwrap();
        for i in 0..40 {
            log.append(&entry(&format!("message number {i}"))).unwrap();
        }
        log.flush();
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["logd.log", "logd.log.1", "logd.log.2"]);
        let total: u64 = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum();
        assert!(total <= 3 * 200, "{total}");
        let newest = std::fs::read_to_string(dir.path().join("logd.log")).unwrap();
        assert!(newest.contains("message number 39"), "{newest}");
    }
}
