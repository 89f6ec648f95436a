//! `cirrus`: the command for app developers and OEMs. `main.rs` only dispatches: each group of
//! subcommands (`apk`, `sync`, …) lives in its own module.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod apk;
mod app;
mod keys;
mod sync;

/// Cirrus developer and OEM tools.
#[derive(Debug, Parser)]
#[command(name = "cirrus", version)]
struct Cli {
    #[command(subcommand)]
    command: Group,
}

#[derive(Debug, Subcommand)]
enum Group {
    /// Inspect and verify Android packages (APKs).
    #[command(subcommand)]
    Apk(apk::ApkCommand),
    /// Build, package, sign, verify, install and run Cirrus apps.
    #[command(subcommand)]
    App(app::AppCommand),
    /// Developer signing keys for app packages.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Cloud sync (cirrus-syncd): status, sync now, pause, resume, conflicts.
    Sync(sync::SyncArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Group::Apk(cmd) => apk::run(cmd),
        Group::App(cmd) => app::run(cmd),
        Group::Keys(cmd) => keys::run(cmd),
        Group::Sync(args) => sync::run(args),
    }
}
