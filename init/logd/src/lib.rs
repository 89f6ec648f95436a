//! logd: the system log. Collects every service's stdout/stderr (passed on by init over
//! `RUNDIR/logd.sock`), syslog datagrams on `/dev/log`, and the kernel log (`/dev/kmsg`), tags each
//! entry with its source, service or tag, pid, level and time, and keeps them in a bounded ring
//! buffer (for readers) and a size-capped, rotated log under `/data/log`. Readers (`cirrusctl logs`)
//! ask `RUNDIR/logd-reader.sock` with filters (service, level, since) and can follow new entries.
//!
//! Formats and the protocol are described in `docs/logging.md`.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod entry;
pub mod query;
pub mod store;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

pub use entry::{Entry, LEVEL_NAMES, Source, parse_level};
pub use query::Query;

/// Init → logd: service output datagrams (name of the socket in the runtime directory).
pub const INPUT_SOCKET: &str = "logd.sock";
/// Readers → logd (name of the socket in the runtime directory).
pub const READER_SOCKET: &str = "logd-reader.sock";

/// The reader socket: `$CIRRUS_LOGD_SOCKET`, else `/run/cirrus/logd-reader.sock`.
pub fn reader_socket_path() -> PathBuf {
    std::env::var_os("CIRRUS_LOGD_SOCKET").map_or_else(
        || Path::new("/run/cirrus").join(READER_SOCKET),
        PathBuf::from,
    )
}

/// Asks logd at `socket` for `query`'s entries and writes them to `out` as readers print them
/// (`Entry::display`), until logd closes the connection (at once for a dump; never, while logd
/// runs, for `follow`).
pub fn read_logs(socket: &Path, query: &Query, out: &mut dyn Write) -> anyhow::Result<()> {
    use anyhow::Context;
    let mut stream = UnixStream::connect(socket)
        .with_context(|| format!("cannot reach logd at {} (is it running?)", socket.display()))?;
    stream.write_all(format!("{}\n", query.to_line()).as_bytes())?;
    for line in BufReader::new(stream).lines() {
        let line = line.context("reading from logd")?;
        if let Some(message) = line.strip_prefix("error: ") {
            anyhow::bail!("logd: {message}");
        }
        if let Some(entry) = Entry::from_line(&line) {
            writeln!(out, "{}", entry.display())?;
            out.flush()?;
        }
    }
    Ok(())
}
