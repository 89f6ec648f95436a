//! cirrus-apk: reads Android application packages (APKs) for the app manager and the `cirrus apk`
//! command, without trusting a byte of them.
//!
//! Layers, bottom up:
//! - [`zip`]: the APK's zip container with the quirks real APKs have (data descriptors, alignment
//!   padding, zip64) and strict limits (entry count, sizes, compression ratio, overlapping entries),
//!   plus the APK Signing Block locator.
//! - [`strings`], [`axml`], [`arsc`]: Android's binary string pools, binary XML
//!   (AndroidManifest.xml) and resource table (resources.arsc), with locale/density resolution.
//! - [`manifest`]: the manifest facts (package, versions, SDKs, permissions, components).
//! - [`signing`]: APK Signature Scheme v2/v3 and JAR (v1) verification, v3 rotation lineage, and the
//!   update rule ([`signing::check_update`]).
//! - [`package`]: [`AndroidPackage`], the summary the app manager installs, and
//!   [`permissions`]: the Android → Cirrus permission table.
//!
//! Every parser returns a typed error on bad input and bounds its allocations by the input size.

pub mod arsc;
pub mod axml;
pub mod der;
pub mod manifest;
pub mod package;
pub mod permissions;
pub mod signing;
pub mod strings;
pub mod zip;

mod reader;

pub use package::{AndroidPackage, ApkError, ApkInfo, Icon, IconLayer, inspect, open_apk};
pub use signing::{SdkLevels, SignatureError, SigningIdentity, Verification, check_update, verify};
