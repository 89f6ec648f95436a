//! Limits that keep one misbehaving client from hurting the compositor or the other clients.
//!
//! Checked on every `wl_surface.commit`, before smithay applies it (a pre-commit hook installed on
//! each new surface):
//! - **commit flood**: a client committing one surface faster than [`MAX_COMMITS_PER_WINDOW`] per
//!   [`COMMIT_WINDOW`] is disconnected. The Wayland server reads a client's requests until its
//!   socket is empty, so a client that commits faster than we can process would otherwise keep the
//!   event loop inside its requests: no frame would be drawn for anyone.
//! - **piled-up frame callbacks**: a surface that is not drawn (an app behind the home screen)
//!   keeps the frame callbacks its commits ask for until it is shown again. Past
//!   [`MAX_PENDING_FRAME_CALLBACKS`] the oldest are answered at once, so a client committing
//!   without waiting cannot grow the compositor's memory without bound.
//! - **huge buffers**: a buffer wider or taller than [`MAX_BUFFER_SIDE`] pixels is a protocol error
//!   (`wl_surface.invalid_size`) naming the limit. Sampling a 16384² buffer (the overview scales windows down) would make the
//!   compositor touch gigabytes of the client's memory.
//! - **unconfigured buffers**: an xdg toplevel that attaches a buffer before acknowledging its
//!   first configure gets xdg-shell's `not_constructed` error, as the protocol requires.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use smithay::backend::renderer::buffer_dimensions;
use smithay::reexports::wayland_server::backend::protocol::ProtocolError;
use smithay::reexports::wayland_server::protocol::wl_surface::{self, WlSurface};
use smithay::reexports::wayland_server::{DisplayHandle, Resource};
use smithay::wayland::compositor::{
    BufferAssignment, SurfaceAttributes, add_pre_commit_hook, with_states,
};

use crate::state::State;

/// The largest width or height of a client buffer, in pixels.
pub const MAX_BUFFER_SIDE: i32 = 8192;

/// The window over which commits are counted.
pub const COMMIT_WINDOW: Duration = Duration::from_millis(250);

/// Commits a client may make in one [`COMMIT_WINDOW`] (8,000 a second: two orders of magnitude
/// above an app drawing at 120 Hz with a few subsurfaces).
pub const MAX_COMMITS_PER_WINDOW: u32 = 2000;

/// Frame callbacks a surface may have waiting; beyond this the oldest are answered at once.
pub const MAX_PENDING_FRAME_CALLBACKS: usize = 8;

/// Commit counters of one surface (kept in the surface's data map).
#[derive(Debug, Default)]
pub struct CommitRate {
    /// Start of the current commit window, in ms since [`epoch`].
    window_start_ms: AtomicU64,
    /// Commits in the current window.
    commits: AtomicU32,
}

impl CommitRate {
    /// Counts one commit at `now_ms`; returns the count in the current window.
    fn count_commit(&self, now_ms: u64) -> u32 {
        let start = self.window_start_ms.load(Ordering::Relaxed);
        if now_ms.saturating_sub(start) >= COMMIT_WINDOW.as_millis() as u64 {
            self.window_start_ms.store(now_ms, Ordering::Relaxed);
            self.commits.store(1, Ordering::Relaxed);
            return 1;
        }
        self.commits.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// Time base for the commit windows.
fn epoch() -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Installs the checks on a new surface (from `CompositorHandler::new_surface`).
pub fn watch_surface(surface: &WlSurface) {
    add_pre_commit_hook::<State, _>(surface, |state, dh, surface| {
        check_commit(state, dh, surface);
    });
}

/// Disconnects the client owning `surface` (the reason goes to the log: the protocol has no error
/// code for it that the client could be sent).
fn disconnect(dh: &DisplayHandle, surface: &WlSurface, message: String) {
    let Some(client) = surface.client() else {
        return;
    };
    tracing::warn!(client = ?client.id(), "{message}");
    client.kill(
        dh,
        ProtocolError {
            // wl_display.error.implementation
            code: 3,
            object_id: 1,
            object_interface: "wl_display".into(),
            message,
        },
    );
}

fn check_commit(state: &mut State, dh: &DisplayHandle, surface: &WlSurface) {
    if !surface.is_alive() {
        return;
    }
    // Commit flood.
    let now_ms = epoch().elapsed().as_millis() as u64;
    let commits = with_states(surface, |states| {
        states
            .data_map
            .insert_if_missing_threadsafe(CommitRate::default);
        states
            .data_map
            .get::<CommitRate>()
            .map_or(0, |rate| rate.count_commit(now_ms))
    });
    if commits > MAX_COMMITS_PER_WINDOW {
        disconnect(
            dh,
            surface,
            format!(
                "commit flood: more than {MAX_COMMITS_PER_WINDOW} commits of one surface in {} ms \
                 (the compositor's limit); disconnected",
                COMMIT_WINDOW.as_millis()
            ),
        );
        return;
    }

    let (new_buffer, stale_callbacks) = with_states(surface, |states| {
        let mut attrs = states.cached_state.get::<SurfaceAttributes>();
        let new_buffer = match &attrs.pending().buffer {
            Some(BufferAssignment::NewBuffer(buffer)) => Some(buffer.clone()),
            _ => None,
        };
        // Callbacks already waiting plus the ones this commit adds.
        let waiting = attrs.current().frame_callbacks.len() + attrs.pending().frame_callbacks.len();
        let stale: Vec<_> = if waiting > MAX_PENDING_FRAME_CALLBACKS {
            let excess =
                (waiting - MAX_PENDING_FRAME_CALLBACKS).min(attrs.current().frame_callbacks.len());
            attrs.current().frame_callbacks.drain(..excess).collect()
        } else {
            Vec::new()
        };
        (new_buffer, stale)
    });
    if !stale_callbacks.is_empty() {
        let time = state.started.elapsed().as_millis() as u32;
        for callback in stale_callbacks {
            callback.done(time);
        }
    }

    let Some(buffer) = new_buffer else {
        return;
    };
    if let Some(size) = buffer_dimensions(&buffer)
        && (size.w > MAX_BUFFER_SIDE || size.h > MAX_BUFFER_SIDE)
    {
        let message = format!(
            "buffer of {}x{} pixels is larger than the compositor's limit of \
             {MAX_BUFFER_SIDE}x{MAX_BUFFER_SIDE}",
            size.w, size.h
        );
        tracing::warn!(client = ?surface.client().map(|c| c.id()), "{message}");
        surface.post_error(wl_surface::Error::InvalidSize, message);
        return;
    }
    // xdg-shell: no buffer before the first configure is acknowledged.
    if let Some(toplevel) = state
        .space
        .elements()
        .find_map(|w| w.toplevel().filter(|t| t.wl_surface() == surface))
    {
        // Posts `xdg_surface.not_constructed` when the client never acked a configure.
        let _ = toplevel.ensure_configured();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_window_counts_and_resets() {
        let limits = CommitRate::default();
        let start = 10_000;
        for i in 1..=5 {
            assert_eq!(limits.count_commit(start + i), i as u32);
        }
        // A new window starts COMMIT_WINDOW later.
        assert_eq!(
            limits.count_commit(start + COMMIT_WINDOW.as_millis() as u64 + 10),
            1
        );
        assert_eq!(
            limits.count_commit(start + COMMIT_WINDOW.as_millis() as u64 + 11),
            2
        );
    }
}
