//! Change detection: inotify on every directory of the synced tree (new directories are added as
//! they appear). Events are coalesced into "something changed" notifications; the daemon debounces
//! them and runs a cycle, whose stat-based scan finds what changed. A periodic rescan covers what
//! inotify cannot see (overflowed queues, changes made while the daemon was down).

use std::path::{Path, PathBuf};

use inotify::{Inotify, WatchMask};
use tokio::sync::mpsc;

use crate::engine::TMP_PREFIX;

fn mask() -> WatchMask {
    WatchMask::CLOSE_WRITE
        | WatchMask::CREATE
        | WatchMask::DELETE
        | WatchMask::MOVED_FROM
        | WatchMask::MOVED_TO
        | WatchMask::ATTRIB
        | WatchMask::DELETE_SELF
}

fn add_tree(
    inotify: &mut Inotify,
    dir: &Path,
    watches: &mut std::collections::HashMap<inotify::WatchDescriptor, PathBuf>,
) {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        if let Ok(wd) = inotify.watches().add(&d, mask()) {
            watches.insert(wd, d.clone());
        }
        if let Ok(rd) = std::fs::read_dir(&d) {
            for e in rd.flatten() {
                if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    stack.push(e.path());
                }
            }
        }
    }
}

/// Starts watching `root`; a message arrives on the receiver after every batch of changes.
pub fn watch(root: &Path) -> std::io::Result<mpsc::UnboundedReceiver<()>> {
    let mut inotify = Inotify::init()?;
    let (tx, rx) = mpsc::unbounded_channel();
    let root = root.to_path_buf();
    let mut watches = std::collections::HashMap::new();
    add_tree(&mut inotify, &root, &mut watches);
    std::thread::Builder::new().name("inotify".into()).spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let events = match inotify.read_events_blocking(&mut buf) {
                Ok(ev) => ev,
                Err(e) => {
                    tracing::warn!(error = %e, "inotify read failed; relying on the periodic rescan");
                    return;
                }
            };
            let mut relevant = false;
            let mut new_dirs = Vec::new();
            for ev in events {
                let name = ev.name.and_then(|n| n.to_str()).unwrap_or("");
                if name.starts_with(TMP_PREFIX) {
                    continue;
                }
                relevant = true;
                if ev.mask.contains(inotify::EventMask::ISDIR)
                    && (ev.mask.contains(inotify::EventMask::CREATE) || ev.mask.contains(inotify::EventMask::MOVED_TO))
                    && let Some(parent) = watches.get(&ev.wd)
                {
                    new_dirs.push(parent.join(name));
                }
                if ev.mask.contains(inotify::EventMask::Q_OVERFLOW) {
                    relevant = true;
                }
            }
            for d in new_dirs {
                add_tree(&mut inotify, &d, &mut watches);
            }
            if relevant && tx.send(()).is_err() {
                return;
            }
        }
    })?;
    Ok(rx)
}
