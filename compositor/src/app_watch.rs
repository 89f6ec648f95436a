//! Keeps the launcher current: an inotify watch on every `<data dir>/applications` (and on the data
//! dir itself, for when `applications` appears later — the app manager creates
//! /data/system/applications at its first install). Any change of entries or icons there makes the
//! shell re-read the launcher entries; no polling, so an idle phone stays asleep.

use std::os::fd::AsFd;
use std::path::PathBuf;

use anyhow::{Context, anyhow};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use smithay::reexports::calloop::generic::Generic;
use smithay::reexports::calloop::{Interest, LoopHandle, Mode, PostAction};

use crate::compositor::Cirrus;

/// The watches on the launcher's data directories.
pub struct AppWatch {
    inotify: Inotify,
    dirs: Vec<PathBuf>,
}

impl AppWatch {
    /// Watches `dirs` (data directories; each one's `applications` subdirectory holds entries).
    pub fn new(dirs: Vec<PathBuf>) -> nix::Result<AppWatch> {
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)?;
        let watch = AppWatch { inotify, dirs };
        watch.rewatch();
        Ok(watch)
    }

    /// (Re)adds a watch for every directory that exists now (a path already watched keeps its one
    /// watch, so this is idempotent; missing directories are skipped until they appear).
    fn rewatch(&self) {
        let entries = AddWatchFlags::IN_CREATE
            | AddWatchFlags::IN_DELETE
            | AddWatchFlags::IN_MOVED_TO
            | AddWatchFlags::IN_MOVED_FROM
            | AddWatchFlags::IN_CLOSE_WRITE
            | AddWatchFlags::IN_ATTRIB;
        let parents =
            AddWatchFlags::IN_CREATE | AddWatchFlags::IN_MOVED_TO | AddWatchFlags::IN_ONLYDIR;
        for dir in &self.dirs {
            for (path, flags) in [
                (
                    dir.join("applications"),
                    entries | AddWatchFlags::IN_ONLYDIR,
                ),
                (dir.join("icons"), entries | AddWatchFlags::IN_ONLYDIR),
                (dir.clone(), parents),
            ] {
                let _ = self.inotify.add_watch(&path, flags);
            }
        }
    }

    /// Drains pending events; whether any arrived.
    fn drain(&self) -> bool {
        let mut any = false;
        while let Ok(events) = self.inotify.read_events() {
            if events.is_empty() {
                break;
            }
            any = true;
        }
        any
    }

    /// Puts the watch on the compositor's event loop: on a change, the launcher is re-read.
    pub fn insert(self, handle: &LoopHandle<'static, Cirrus>) -> anyhow::Result<()> {
        let dirs = self.dirs.clone();
        let source = Generic::new(self, Interest::READ, Mode::Level);
        handle
            .insert_source(source, move |_, watch, data: &mut Cirrus| {
                if watch.drain() {
                    watch.rewatch();
                    data.state.set_apps(crate::apps::discover(&dirs));
                }
                Ok(PostAction::Continue)
            })
            .map_err(|e| anyhow!("watching the launcher's directories: {e}"))
            .context("launcher")?;
        Ok(())
    }
}

impl AsFd for AppWatch {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.inotify.as_fd()
    }
}
