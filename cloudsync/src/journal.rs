//! The sync metadata kept in the bucket under the reserved prefix `.cirrus-sync/`:
//!
//! - `.cirrus-sync/devices/<device>.json`: one object per device (its name and first-seen time);
//!   the list of journals to read.
//! - `.cirrus-sync/journal/<device>/<seq>.json`: that device's append-only journal, one segment per
//!   commit, `seq` zero-padded to 20 digits. Only the owning device ever writes under its prefix and
//!   never rewrites a segment with different content, so no write needs compare-and-swap.
//!
//! Each record says "at version vector `vv`, path `path` has content `sha256` (or is deleted)".
//! Version vectors order the versions of one path across devices; two versions neither of which
//! includes the other are concurrent edits and become a conflict copy, never a silent overwrite.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Reserved key prefix for sync metadata; never synced as a user file.
pub const META_PREFIX: &str = ".cirrus-sync/";
/// Current segment format.
pub const FORMAT: u32 = 1;

/// Per-device counters: the version of a path as seen by each device that changed it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct VersionVector(pub BTreeMap<String, u64>);

/// How two version vectors relate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Causality {
    Equal,
    /// The left one happened before the right one.
    Before,
    /// The left one includes the right one.
    After,
    Concurrent,
}

impl VersionVector {
    pub fn compare(&self, other: &VersionVector) -> Causality {
        let mut less = false;
        let mut greater = false;
        for key in self.0.keys().chain(other.0.keys()) {
            let a = self.0.get(key).copied().unwrap_or(0);
            let b = other.0.get(key).copied().unwrap_or(0);
            match a.cmp(&b) {
                Ordering::Less => less = true,
                Ordering::Greater => greater = true,
                Ordering::Equal => {}
            }
        }
        match (less, greater) {
            (false, false) => Causality::Equal,
            (true, false) => Causality::Before,
            (false, true) => Causality::After,
            (true, true) => Causality::Concurrent,
        }
    }
    /// Element-wise maximum.
    pub fn join(&self, other: &VersionVector) -> VersionVector {
        let mut out = self.0.clone();
        for (k, v) in &other.0 {
            let e = out.entry(k.clone()).or_insert(0);
            *e = (*e).max(*v);
        }
        VersionVector(out)
    }
    /// A copy with `device`'s counter incremented.
    pub fn bumped(&self, device: &str) -> VersionVector {
        let mut out = self.0.clone();
        *out.entry(device.to_owned()).or_insert(0) += 1;
        VersionVector(out)
    }
}

/// One version of one path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub path: String,
    /// Content SHA-256 (hex); `None` = deleted (a tombstone).
    pub sha256: Option<String>,
    pub size: u64,
    pub vv: VersionVector,
    /// Device that wrote this version.
    pub device: String,
    /// Unix milliseconds when it was written.
    pub time: i64,
    /// A tombstone of a mass deletion the user confirmed on the writing device (after its
    /// mass-delete guard held it): the other devices apply it without asking again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub confirmed: bool,
}

impl Record {
    pub fn is_tombstone(&self) -> bool {
        self.sha256.is_none()
    }
    /// Deterministic tie-break between concurrent versions: later time wins, then device id.
    pub fn wins_over(&self, other: &Record) -> bool {
        (self.time, &self.device) > (other.time, &other.device)
    }
}

/// The merged view of one path over all journals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteEntry {
    pub current: Record,
    /// A concurrent version that lost the tie-break (kept as a conflict copy by its device).
    pub loser: Option<Record>,
}

impl RemoteEntry {
    /// Folds one more journal record into the entry.
    pub fn merge(existing: Option<RemoteEntry>, rec: Record) -> RemoteEntry {
        let Some(cur) = existing else {
            return RemoteEntry {
                current: rec,
                loser: None,
            };
        };
        match rec.vv.compare(&cur.current.vv) {
            Causality::After => RemoteEntry {
                current: rec,
                loser: None,
            },
            Causality::Before | Causality::Equal => cur,
            Causality::Concurrent if rec.sha256 == cur.current.sha256 => {
                let mut merged = if rec.wins_over(&cur.current) {
                    rec
                } else {
                    cur.current.clone()
                };
                merged.vv = merged.vv.join(&cur.current.vv);
                RemoteEntry {
                    current: merged,
                    loser: cur.loser,
                }
            }
            Causality::Concurrent => {
                if rec.wins_over(&cur.current) {
                    RemoteEntry {
                        current: rec,
                        loser: Some(cur.current),
                    }
                } else {
                    RemoteEntry {
                        current: cur.current,
                        loser: Some(rec),
                    }
                }
            }
        }
    }
}

/// One journal object.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Segment {
    pub format: u32,
    pub device: String,
    pub seq: u64,
    pub records: Vec<Record>,
}

/// Key of a device's registry object.
pub fn device_key(device: &str) -> String {
    format!("{META_PREFIX}devices/{device}.json")
}

/// Prefix of a device's journal.
pub fn journal_prefix(device: &str) -> String {
    format!("{META_PREFIX}journal/{device}/")
}

/// Key of one journal segment.
pub fn segment_key(device: &str, seq: u64) -> String {
    format!("{}{seq:020}.json", journal_prefix(device))
}

/// Name of the conflict copy of `path` holding `device`'s version written at `time_ms`:
/// `dir/name.sync-conflict-<device>-<YYYYMMDD-HHMMSS>.ext`.
pub fn conflict_path(path: &str, device: &str, time_ms: i64) -> String {
    let stamp = chrono::DateTime::from_timestamp_millis(time_ms)
        .map(|t| t.format("%Y%m%d-%H%M%S").to_string())
        .unwrap_or_else(|| time_ms.to_string());
    let (dir, file) = match path.rfind('/') {
        Some(i) => (&path[..=i], &path[i + 1..]),
        None => ("", path),
    };
    let (stem, ext) = match file.rfind('.') {
        Some(i) if i > 0 => (&file[..i], &file[i..]),
        _ => (file, ""),
    };
    format!("{dir}{stem}.sync-conflict-{device}-{stamp}{ext}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn vv(pairs: &[(&str, u64)]) -> VersionVector {
        VersionVector(pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect())
    }
    fn rec(sha: Option<&str>, v: VersionVector, device: &str, time: i64) -> Record {
        Record {
            path: "p".into(),
            sha256: sha.map(Into::into),
            size: 1,
            vv: v,
            device: device.into(),
            time,
            confirmed: false,
        }
    }

    #[test]
    fn version_vector_order() {
        assert_eq!(vv(&[("a", 1)]).compare(&vv(&[("a", 2)])), Causality::Before);
        assert_eq!(
            vv(&[("a", 2), ("b", 1)]).compare(&vv(&[("a", 2)])),
            Causality::After
        );
        assert_eq!(
            vv(&[("a", 1)]).compare(&vv(&[("b", 1)])),
            Causality::Concurrent
        );
        assert_eq!(vv(&[]).compare(&vv(&[])), Causality::Equal);
    }

    #[test]
    fn concurrent_versions_keep_the_loser() {
        let a = rec(Some("aa"), vv(&[("a", 1)]), "a", 10);
        let b = rec(Some("bb"), vv(&[("b", 1)]), "b", 20);
        let m = RemoteEntry::merge(Some(RemoteEntry::merge(None, a.clone())), b.clone());
        assert_eq!(m.current, b);
        assert_eq!(m.loser, Some(a.clone()));
        // Order of arrival does not matter.
        let m2 = RemoteEntry::merge(Some(RemoteEntry::merge(None, b.clone())), a);
        assert_eq!(m2.current, b);
        // A later version that saw both supersedes them.
        let c = rec(Some("cc"), vv(&[("a", 1), ("b", 2)]), "b", 30);
        assert_eq!(
            RemoteEntry::merge(Some(m), c.clone()),
            RemoteEntry {
                current: c,
                loser: None
            }
        );
    }

    #[test]
    fn stale_record_is_ignored() {
        let new = rec(Some("n"), vv(&[("a", 2)]), "a", 10);
        let old = rec(Some("o"), vv(&[("a", 1)]), "a", 5);
        assert_eq!(
            RemoteEntry::merge(Some(RemoteEntry::merge(None, new.clone())), old).current,
            new
        );
    }

    #[test]
    fn conflict_names() {
        assert_eq!(
            conflict_path("Docs/report.txt", "dev1", 0),
            "Docs/report.sync-conflict-dev1-19700101-000000.txt"
        );
        assert_eq!(
            conflict_path("README", "d", 0),
            "README.sync-conflict-d-19700101-000000"
        );
        assert_eq!(
            conflict_path(".bashrc", "d", 0),
            ".bashrc.sync-conflict-d-19700101-000000"
        );
    }
}
