//! cirrus-compositor: the Wayland compositor and phone shell of Cirrus.
//!
//! Built on smithay 0.7 and drawn entirely with the pixman renderer, so it runs the same way on
//! a phone's KMS display, in QEMU's virtio-gpu and headless in tests.
//!
//! Map of the crate (modelled on niri):
//! - [`state`]: [`state::State`], everything the compositor knows (Wayland globals, windows, the
//!   shell, the output) and the phone window policy.
//! - [`handlers`]: the Wayland protocol handlers (`delegate_*` impls).
//! - [`shell`]: the shell drawn by the compositor itself (status bar, wallpaper), from `cirrus-ui`.
//! - [`apps`]: launcher entries (`.desktop`) and starting apps; [`app_watch`] re-reads them when
//!   apps are installed or removed.
//! - [`notifications`]: the `org.freedesktop.Notifications` server and the banner.
//! - [`osk`]: the built-in on-screen keyboard; [`builtin_input_method`] is the input method it
//!   types through (an in-process client speaking input-method-v2 and virtual-keyboard-v1).
//! - [`render`]: builds the list of elements an output shows.
//! - [`backend`]: where frames go: [`backend::drm`] (KMS, the device) and [`backend::headless`]
//!   (offscreen, tests and screenshots).
//! - [`compositor`]: [`Compositor`], the event loop tying it together; what `main.rs` and the tests use.

pub mod allocator;
pub mod app_watch;
pub mod apps;
pub mod backend;
pub mod builtin_input_method;
pub mod compositor;
pub mod handlers;
pub mod input;
pub mod limits;
pub mod notifications;
pub mod notify;
pub mod osk;
pub mod overview;
pub mod render;
pub mod shell;
pub mod state;
pub mod system_status;

pub use compositor::{
    BackendKind, Cirrus, Command, Compositor, Config, HeadlessSession, InjectedInput, Screenshot,
    SocketChoice, spawn_headless, spawn_headless_config, spawn_headless_with_sysfs,
};
