//! cirrus-package: the Cirrus app package format, in one place (documented for app developers in
//! `docs/app-packages.md`). A package is a zip holding `manifest.webmanifest` (a W3C Web App
//! Manifest with a `cirrus` member), icons, assets and, for wasm apps, the component; it is signed
//! with the developer's ed25519 key over the name, size and SHA-256 of every entry.
//!
//! Readers: the app manager (install: [`verify`] then [`check_update`]), the `cirrus` SDK command
//! (pack, sign, verify), the fuzz targets in `fuzz/`.

mod archive;
mod keys;
mod manifest;

pub use archive::{
    Limits, MANIFEST_ENTRY, PackageContents, PackageError, SIGNATURE_ENTRY, UpdateError,
    VerifiedPackage, check_update, verify, verify_with, write_zip,
};
pub use keys::{DeveloperKey, KeyError, PublisherKey};
pub use manifest::{
    AppKind, BackgroundWork, Display, Icon, IntentFilter, MAX_MANIFEST_BYTES, Manifest,
    ManifestError, Orientation, Permission, Version, valid_app_id, valid_entry_path,
};

#[cfg(feature = "componentize")]
pub mod assemblyscript;
#[cfg(feature = "componentize")]
mod componentize;
#[cfg(feature = "componentize")]
pub use componentize::{APP_WIT, ComponentizeError, componentize};
