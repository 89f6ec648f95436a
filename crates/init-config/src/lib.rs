//! The file formats cirrus-init reads, shared with the image builder (`images/`).
//!
//! * [`UnitFile`]: one service per `*.toml` file under `/system/etc/init` and `/vendor/etc/init`
//!   (documented in `docs/unit-files.md`); [`load_unit_dirs`] applies the vendor-overrides-system rule.
//! * [`BootConfig`]: `/etc/cirrus/boot.toml` in the initramfs, written by the image builder and read
//!   by the first stage of cirrus-init (see `docs/boot.md`).
//!
//! * [`properties`]: system property names and the build/persist property files.
//! * [`property_access`]: who may set and read which properties.
//! * [`sandbox`]: capability, rlimit and size names used by unit files.
//!
//! Every parse error is a [`ConfigError`] naming the file, line and column, printed as
//! `PATH:LINE:COL: message`.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod boot;
mod error;
pub mod properties;
pub mod property_access;
pub mod sandbox;
pub mod unit;

pub use boot::*;
pub use error::ConfigError;
pub use sandbox::{Capability, Rlimit, RlimitValue};
pub use unit::*;
