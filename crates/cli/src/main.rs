//! `cirrus`: the command for app developers and OEMs. `main.rs` only dispatches: each group of
//! subcommands (`apk`, `sync`, …) lives in its own module.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod apk;

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Group::Apk(cmd) => apk::run(cmd),
    }
}
