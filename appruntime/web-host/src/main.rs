//! cirrus-web-host: runs one HTML5 web app in its own process, started by the app manager
//! (`cirrus-web-host run --app-id ID --package PKG --signer KEY --data-dir DIR …`, under the app's
//! uid). The verified package is served under `app://<id>/` (`package.rs`) with the app's
//! Content-Security-Policy (`csp.rs`) to a WebKitGTK view shown as a Wayland client of the
//! compositor (`host.rs`); pages get the Cirrus JS API (`api.rs`, `cirrus-api.js`) and the
//! standard Notification API posted to org.freedesktop.Notifications (`notify.rs`).
//!
//! Status lines on stdout (read by the manager): `running`, `first-frame` (the first paint of the
//! loaded start page, as `first_paint.rs` defines it). Lifecycle signals:
//! SIGUSR1 pause (the page becomes hidden, `pause` fires), SIGUSR2 resume, SIGTERM stop.

mod api;
mod csp;
mod device;
mod files;
mod first_paint;
mod host;
mod notify;
mod package;
mod system;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "cirrus-web-host")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run a web app.
    Run(host::RunArgs),
}

fn main() -> std::process::ExitCode {
    cirrus_logging::init("cirrus-web-host");
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Run(args) => host::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err:#}");
            std::process::ExitCode::from(3)
        }
    }
}
