//! The optional event log (`--event-log FILE`): one line per lifecycle event, for tests and devices.
//!
//! Lines: `start NAME pid=N`, `ready NAME`, `exit NAME status=N`, `exit NAME signal=SIG`,
//! `restart NAME in=MSms`, `stop NAME`, `boot-completed`, `config-error PATH[:LINE]`, `shutdown`.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

/// Appends events to a file, or does nothing when disabled.
#[derive(Debug, Default)]
pub struct EventLog {
    file: Option<File>,
    failed: bool,
}

impl EventLog {
    /// An event log that records nothing.
    pub fn disabled() -> EventLog {
        EventLog::default()
    }

    /// Opens (creating, appending to) `path`.
    pub fn open(path: &Path) -> std::io::Result<EventLog> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(EventLog {
            file: Some(file),
            failed: false,
        })
    }

    /// Appends one event line (without the newline).
    pub fn record(&mut self, event: &str) {
        let Some(file) = &mut self.file else { return };
        let line = format!("{event}\n");
        // One write per line: O_APPEND keeps lines whole even if a reader polls the file meanwhile.
        if let Err(e) = file.write_all(line.as_bytes())
            && !self.failed
        {
            tracing::warn!("cannot write to the event log: {e}; further events are dropped");
            self.failed = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events");
        let mut log = EventLog::open(&path).unwrap();
        log.record("start a pid=1");
        log.record("ready a");
        drop(log);
        let mut log = EventLog::open(&path).unwrap();
        log.record("shutdown");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "start a pid=1\nready a\nshutdown\n"
        );
        EventLog::disabled().record("nothing");
    }
}
