//! The device's crash-safe sync state: an SQLite database (WAL, `synchronous=FULL`) under the
//! state directory. It holds what the engine must not forget across a crash or power loss:
//! the device id, what each path looked like locally (stat cache + hash), the version both sides
//! agreed on last ("synced"), the merged view of every journal ("remote"), journal read cursors,
//! journal segments written ahead of their upload, and multipart uploads in flight with their
//! completed parts. Every commit of a sync batch is one transaction.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::journal::{Record, RemoteEntry};

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("state database {path}: {source}")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error("state database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("state database holds unreadable JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// What the last scan saw of a local file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalFile {
    pub size: u64,
    pub mtime_ns: i64,
    pub ino: u64,
    pub sha256: String,
}

/// A multipart upload in flight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadInFlight {
    pub upload_id: String,
    pub sha256: String,
    pub size: u64,
    pub part_size: u64,
}

/// A conflict copy made on this device (for the status interface).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConflictCopy {
    pub path: String,
    pub copy: String,
    pub device: String,
    pub time: i64,
}

pub struct StateDb {
    conn: Mutex<Connection>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS local (path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    ino INTEGER NOT NULL, sha256 TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS synced (path TEXT PRIMARY KEY, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS remote (path TEXT PRIMARY KEY, entry TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cursors (device TEXT PRIMARY KEY, last_key TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pending_segments (seq INTEGER PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS uploads (path TEXT PRIMARY KEY, upload_id TEXT NOT NULL, sha256 TEXT NOT NULL,
    size INTEGER NOT NULL, part_size INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS upload_parts (path TEXT NOT NULL, number INTEGER NOT NULL, etag TEXT NOT NULL,
    size INTEGER NOT NULL, PRIMARY KEY (path, number));
CREATE TABLE IF NOT EXISTS conflicts (id INTEGER PRIMARY KEY AUTOINCREMENT, path TEXT NOT NULL, copy TEXT NOT NULL,
    device TEXT NOT NULL, time INTEGER NOT NULL);
";

impl StateDb {
    pub fn open(path: &Path) -> Result<Self, StateError> {
        let open_err = |source| StateError::Open {
            path: path.display().to_string(),
            source,
        };
        let conn = Connection::open(path).map_err(open_err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(open_err)?;
        conn.execute_batch(SCHEMA).map_err(open_err)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent (transactions roll back).
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` in one transaction.
    pub fn transaction<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, StateError>,
    ) -> Result<T, StateError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }

    pub fn get_meta(&self, key: &str) -> Result<Option<String>, StateError> {
        Ok(self
            .lock()
            .query_row("SELECT value FROM meta WHERE key=?1", [key], |r| r.get(0))
            .optional()?)
    }

    pub fn set_meta(&self, key: &str, value: &str) -> Result<(), StateError> {
        self.lock().execute(
            "INSERT OR REPLACE INTO meta(key,value) VALUES(?1,?2)",
            [key, value],
        )?;
        Ok(())
    }

    pub fn local_files(&self) -> Result<HashMap<String, LocalFile>, StateError> {
        let conn = self.lock();
        let mut stmt = conn.prepare("SELECT path,size,mtime_ns,ino,sha256 FROM local")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                LocalFile {
                    size: r.get::<_, i64>(1)? as u64,
                    mtime_ns: r.get(2)?,
                    ino: r.get::<_, i64>(3)? as u64,
                    sha256: r.get(4)?,
                },
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn synced(&self) -> Result<HashMap<String, Record>, StateError> {
        let conn = self.lock();
        let mut stmt = conn.prepare("SELECT path,record FROM synced")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = HashMap::new();
        for row in rows {
            let (p, j) = row?;
            out.insert(p, serde_json::from_str(&j)?);
        }
        Ok(out)
    }

    pub fn remote(&self) -> Result<HashMap<String, RemoteEntry>, StateError> {
        let conn = self.lock();
        let mut stmt = conn.prepare("SELECT path,entry FROM remote")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = HashMap::new();
        for row in rows {
            let (p, j) = row?;
            out.insert(p, serde_json::from_str(&j)?);
        }
        Ok(out)
    }

    pub fn cursor(&self, device: &str) -> Result<Option<String>, StateError> {
        Ok(self
            .lock()
            .query_row(
                "SELECT last_key FROM cursors WHERE device=?1",
                [device],
                |r| r.get(0),
            )
            .optional()?)
    }

    pub fn pending_segments(&self) -> Result<Vec<(u64, String)>, StateError> {
        let conn = self.lock();
        let mut stmt = conn.prepare("SELECT seq,body FROM pending_segments ORDER BY seq")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn remove_pending_segment(&self, seq: u64) -> Result<(), StateError> {
        self.lock()
            .execute("DELETE FROM pending_segments WHERE seq=?1", [seq as i64])?;
        Ok(())
    }

    pub fn upload(&self, path: &str) -> Result<Option<UploadInFlight>, StateError> {
        Ok(self
            .lock()
            .query_row(
                "SELECT upload_id,sha256,size,part_size FROM uploads WHERE path=?1",
                [path],
                |r| {
                    Ok(UploadInFlight {
                        upload_id: r.get(0)?,
                        sha256: r.get(1)?,
                        size: r.get::<_, i64>(2)? as u64,
                        part_size: r.get::<_, i64>(3)? as u64,
                    })
                },
            )
            .optional()?)
    }

    pub fn start_upload(&self, path: &str, u: &UploadInFlight) -> Result<(), StateError> {
        self.transaction(|tx| {
            tx.execute("DELETE FROM upload_parts WHERE path=?1", [path])?;
            tx.execute(
                "INSERT OR REPLACE INTO uploads(path,upload_id,sha256,size,part_size) VALUES(?1,?2,?3,?4,?5)",
                params![path, u.upload_id, u.sha256, u.size as i64, u.part_size as i64],
            )?;
            Ok(())
        })
    }

    pub fn upload_parts(&self, path: &str) -> Result<HashMap<u32, (String, u64)>, StateError> {
        let conn = self.lock();
        let mut stmt = conn.prepare("SELECT number,etag,size FROM upload_parts WHERE path=?1")?;
        let rows = stmt.query_map([path], |r| {
            Ok((
                r.get::<_, u32>(0)?,
                (r.get::<_, String>(1)?, r.get::<_, i64>(2)? as u64),
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn add_upload_part(
        &self,
        path: &str,
        number: u32,
        etag: &str,
        size: u64,
    ) -> Result<(), StateError> {
        self.lock().execute(
            "INSERT OR REPLACE INTO upload_parts(path,number,etag,size) VALUES(?1,?2,?3,?4)",
            params![path, number, etag, size as i64],
        )?;
        Ok(())
    }

    pub fn finish_upload(&self, path: &str) -> Result<(), StateError> {
        self.transaction(|tx| {
            tx.execute("DELETE FROM upload_parts WHERE path=?1", [path])?;
            tx.execute("DELETE FROM uploads WHERE path=?1", [path])?;
            Ok(())
        })
    }

    pub fn conflicts(&self) -> Result<Vec<ConflictCopy>, StateError> {
        let conn = self.lock();
        let mut stmt = conn.prepare("SELECT path,copy,device,time FROM conflicts ORDER BY id")?;
        let rows = stmt.query_map([], |r| {
            Ok(ConflictCopy {
                path: r.get(0)?,
                copy: r.get(1)?,
                device: r.get(2)?,
                time: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// Statements used inside a commit transaction.
pub mod tx {
    use super::*;

    pub fn set_local(tx: &Transaction<'_>, path: &str, f: &LocalFile) -> Result<(), StateError> {
        tx.execute(
            "INSERT OR REPLACE INTO local(path,size,mtime_ns,ino,sha256) VALUES(?1,?2,?3,?4,?5)",
            params![path, f.size as i64, f.mtime_ns, f.ino as i64, f.sha256],
        )?;
        Ok(())
    }
    pub fn remove_local(tx: &Transaction<'_>, path: &str) -> Result<(), StateError> {
        tx.execute("DELETE FROM local WHERE path=?1", [path])?;
        Ok(())
    }
    pub fn set_synced(tx: &Transaction<'_>, rec: &Record) -> Result<(), StateError> {
        tx.execute(
            "INSERT OR REPLACE INTO synced(path,record) VALUES(?1,?2)",
            params![rec.path, serde_json::to_string(rec)?],
        )?;
        Ok(())
    }
    pub fn set_remote(tx: &Transaction<'_>, path: &str, e: &RemoteEntry) -> Result<(), StateError> {
        tx.execute(
            "INSERT OR REPLACE INTO remote(path,entry) VALUES(?1,?2)",
            params![path, serde_json::to_string(e)?],
        )?;
        Ok(())
    }
    pub fn get_remote(tx: &Transaction<'_>, path: &str) -> Result<Option<RemoteEntry>, StateError> {
        let j: Option<String> = tx
            .query_row("SELECT entry FROM remote WHERE path=?1", [path], |r| {
                r.get(0)
            })
            .optional()?;
        Ok(match j {
            Some(j) => Some(serde_json::from_str(&j)?),
            None => None,
        })
    }
    pub fn set_cursor(tx: &Transaction<'_>, device: &str, key: &str) -> Result<(), StateError> {
        tx.execute(
            "INSERT OR REPLACE INTO cursors(device,last_key) VALUES(?1,?2)",
            [device, key],
        )?;
        Ok(())
    }
    pub fn add_pending_segment(
        tx: &Transaction<'_>,
        seq: u64,
        body: &str,
    ) -> Result<(), StateError> {
        tx.execute(
            "INSERT INTO pending_segments(seq,body) VALUES(?1,?2)",
            params![seq as i64, body],
        )?;
        Ok(())
    }
    pub fn set_meta(tx: &Transaction<'_>, key: &str, value: &str) -> Result<(), StateError> {
        tx.execute(
            "INSERT OR REPLACE INTO meta(key,value) VALUES(?1,?2)",
            [key, value],
        )?;
        Ok(())
    }
    pub fn add_conflict(tx: &Transaction<'_>, c: &ConflictCopy) -> Result<(), StateError> {
        tx.execute(
            "INSERT INTO conflicts(path,copy,device,time) VALUES(?1,?2,?3,?4)",
            params![c.path, c.copy, c.device, c.time],
        )?;
        Ok(())
    }
}
