//! cirrus-init: PID 1 and service manager of Cirrus.
//!
//! One binary, several modes (see [`cli`]): the first stage in the initramfs ([`first_stage`]), the
//! supervisor as PID 1 on the system image or unprivileged over a scratch root for tests
//! ([`supervisor`], [`service`], [`output`], [`notify`], [`control`]), per-service sandboxing
//! ([`sandbox`], [`cgroup`]), the property store and its access rules ([`properties`], [`property_access`]), the end of PID 1's life
//! ([`shutdown`], [`mounts`]), the last resorts that keep PID 1 up ([`emergency`]), and the small
//! clients (`poweroff`, `reboot`, `status`, `notify`).
//!
//! Everything is single-threaded and synchronous: one poll loop, no async runtime, so PID 1 stays
//! small and its behaviour easy to follow. Unit files are parsed by `cirrus-init-config`.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod cgroup;
pub mod cli;
pub mod control;
pub mod deps;
pub mod emergency;
pub mod event_log;
pub mod first_stage;
pub mod log_forward;
pub mod mounts;
pub mod notify;
pub mod output;
pub mod properties;
pub mod property_access;
pub mod sandbox;
pub mod service;
pub mod shutdown;
pub mod supervisor;

/// The version logged at start (`cirrus-init <version> starting (first stage)`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
