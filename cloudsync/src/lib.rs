//! cirrus-syncd: mirrors the user's files (`/data/user/0`) to an object store, two-way, for several
//! devices on one account. The bucket is a browsable mirror of the user's paths; sync metadata
//! (per-device append-only journals) lives under the reserved `.cirrus-sync/` prefix. See
//! docs/sync.md for the design, the bucket layout and the journal format.
//!
//! Map: [`store`] (embedded directory, S3, OSS), [`sign`] (AWS V4 / OSS V4 signatures),
//! [`journal`] (records, version vectors), [`state`] (SQLite state), [`engine`] (one sync cycle),
//! [`watch`] (inotify), [`policy`] (conditions, bandwidth), [`config`] (the daemon's TOML file),
//! [`bus`] (the `org.cirrus.Sync1` D-Bus contract, shared with `cirrus sync`), [`daemon`] (the main
//! loop).

pub mod bus;
pub mod config;
pub mod crypto;
pub mod daemon;
pub mod engine;
pub mod integrity;
pub mod journal;
pub mod policy;
pub mod retry;
pub mod sign;
pub mod state;
pub mod store;
pub mod watch;
