//! cirrus-wasm-host: runs one WebAssembly app (a component for the `cirrus:app/app` world in
//! docs/wit plus WASI 0.2) in its own process, started by the app manager.
//!
//! `cirrus-wasm-host engine-hash` prints the engine's compatibility hash (keys the precompiled
//! cache); `precompile COMPONENT OUT` compiles at install; `run …` runs the app: instance from an
//! `InstancePre` on the pooling allocator, WASI with only the app's data dir preopened, sockets only
//! with the network permission, a per-app memory cap, and an epoch deadline on every call into the
//! app (past it the host reports `not-responding` on stdout; SIGTERM then ends the app even inside
//! a runaway loop). Lifecycle signals from the manager: SIGUSR1 pause, SIGUSR2 resume, SIGTERM stop.
//!
//! Status lines on stdout (read by the manager): `running`, `first-frame`, `not-responding`,
//! `responding`. The app's stdout/stderr go to this process's stderr (the app's log).
//!
//! Presenting: on Wayland (`--wayland-display SOCKET` or `$WAYLAND_DISPLAY`) the app is an
//! xdg-toplevel titled with `--title`, app id = `--app-id`; its frames go through wl_shm, paced by
//! frame callbacks; configure sizes become `resize` (in buffer pixels: logical size × the output's
//! scale); pointer, touch and keys become `events`; closing the window runs `destroy` and exits.
//! `--headless` keeps frames in memory (and writes the latest to `--frame-out` for
//! tests and benchmarks) and reads input commands from stdin (`pointer down|move|up X Y`,
//! `key CODE 0|1`, `resize W H`, `pause`, `resume`, `stop`).

mod engine;
mod headless;
mod host;
mod wayland;

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "cirrus-wasm-host")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Print the engine's compatibility hash (precompiled code is cached under it).
    EngineHash,
    /// Compile a component ahead of time.
    Precompile { component: PathBuf, out: PathBuf },
    /// Run an app.
    Run(host::RunArgs),
}

fn main() -> std::process::ExitCode {
    cirrus_logging::init("cirrus-wasm-host");
    let cli = Cli::parse();
    let result: Result<()> = match cli.command {
        Cmd::EngineHash => engine::engine().map(|e| {
            #[allow(clippy::print_stdout)]
            {
                println!("{}", engine::compatibility_hash(&e));
            }
        }),
        Cmd::Precompile { component, out } => precompile(&component, &out),
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

fn precompile(component: &std::path::Path, out: &std::path::Path) -> Result<()> {
    let engine = engine::engine()?;
    let bytes =
        std::fs::read(component).with_context(|| format!("reading {}", component.display()))?;
    let compiled = engine
        .precompile_component(&bytes)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("compiling {}", component.display()))?;
    std::fs::write(out, compiled).with_context(|| format!("writing {}", out.display()))?;
    Ok(())
}
