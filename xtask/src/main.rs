//! `cargo xtask …`: Cirrus's build automation, in Rust instead of shell scripts (the xtask pattern).
//!
//! On a fresh Debian 12 machine with Rust installed, `cargo xtask run` and `cargo xtask test` do all
//! the set-up themselves: every subcommand but `deps` first installs the Debian packages it needs.
//!
//! * `deps [--check]`: install (or only check) the Debian packages ([`deps::PACKAGES`]).
//! * `build`: build the device's programs (`cirrus-init`, `cirrus-compositor`, …) for the image.
//! * `image [--device NAME]`: build the programs, then the boot image (`cirrus-images`).
//! * `run [--device NAME] [--headless] [--keep-running]`: build the image and boot it in QEMU.
//! * `test`: `cargo test --workspace`, then the boot test ([`boot_test`]).
//! * `fuzz [--seconds N] [TARGET…]`: every cargo-fuzz target for a bounded time ([`fuzz`]).
//! * `bench [SUITE [ARGS…]]`: benchmarks printed beside their peer's figures ([`bench`]).
//!
//! `.ci/run` runs `cargo xtask test`. This crate sits outside the device: it drives cargo, the image
//! builder and QEMU on the developer's machine. Its own dependency tree must stay pure Rust (no crate
//! that needs a system library), because it is built before `deps` has installed anything.

// A command-line tool for people: printing to stdout is its job.
#![allow(clippy::print_stdout)]

mod bench;
mod binaries;
mod boot_test;
mod deps;
mod fuzz;
mod home_screen_check;
mod image;
mod interrupt;
mod qmp;
mod run;
mod screenshot;
mod serial_log;
mod system_apps_test;
mod test;
mod timeline;
mod touch_test;
mod vm;
mod workspace;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The device built when `--device` is not given.
pub const DEFAULT_DEVICE: &str = "qemu-x86_64";

#[derive(Parser)]
#[command(
    name = "xtask",
    bin_name = "cargo xtask",
    about = "Build, run and test Cirrus",
    version
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Install the Debian 12 packages needed to build, run and test Cirrus (only the missing ones).
    Deps {
        /// Only report which packages are missing; install nothing (exits 1 if any is missing).
        #[arg(long)]
        check: bool,
    },
    /// Build the programs that go into the device image (dev profile) and print their paths.
    Build {
        /// Device whose programs to build (a directory under images/devices/).
        #[arg(long, default_value = DEFAULT_DEVICE)]
        device: String,
    },
    /// Build the device image (kernel, initramfs, system.erofs, data.img) under target/cirrus/DEVICE.
    Image {
        /// Device to build the image for (a directory under images/devices/).
        #[arg(long, default_value = DEFAULT_DEVICE)]
        device: String,
    },
    /// Build the image and boot it in QEMU: in a window when there is a display, else headless
    /// (waits for the boot, saves a screenshot of the home screen, prints the boot timeline).
    Run {
        /// Device to boot (a directory under images/devices/).
        #[arg(long, default_value = DEFAULT_DEVICE)]
        device: String,
        /// Boot without a window even when a display is available.
        #[arg(long)]
        headless: bool,
        /// Headless: keep the VM running after the screenshot until Ctrl-C, even when stdin is not a
        /// terminal (with a terminal this is the default).
        #[arg(long)]
        keep_running: bool,
    },
    /// Run every test: `cargo test --workspace`, then the boot test in QEMU.
    Test {
        /// Device to boot for the boot test.
        #[arg(long, default_value = DEFAULT_DEVICE)]
        device: String,
        /// Only the boot test (for iterating on the image; CI runs everything).
        #[arg(long)]
        boot_only: bool,
    },
    /// Fuzz every parser of outside data (each cargo-fuzz target) for a bounded time.
    Fuzz {
        /// Seconds to run each target.
        #[arg(long, default_value_t = 30)]
        seconds: u64,
        /// Only these targets (default: all).
        targets: Vec<String>,
    },
    /// Run a benchmark suite, printing Cirrus's figures beside its peer's (no suite: list them).
    Bench {
        /// The suite to run.
        suite: Option<String>,
        /// Arguments for the suite.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The image builder reports its steps through `tracing`: show them (filter: CIRRUS_LOG, e.g.
    // `CIRRUS_LOG=debug`).
    let filter = tracing_subscriber::EnvFilter::try_from_env("CIRRUS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .without_time()
        .with_target(false)
        .init();
    let result = match cli.command {
        Command::Deps { check } => deps::run(check),
        Command::Build { device } => deps::ensure().and_then(|()| build(&device)),
        Command::Image { device } => deps::ensure().and_then(|()| image::run(&device)),
        Command::Run {
            device,
            headless,
            keep_running,
        } => deps::ensure().and_then(|()| run::run(&device, headless, keep_running)),
        Command::Test { device, boot_only } => {
            deps::ensure().and_then(|()| test::run(&device, boot_only))
        }
        Command::Fuzz { seconds, targets } => {
            deps::ensure().and_then(|()| fuzz::run(seconds, &targets))
        }
        Command::Bench { suite, args } => {
            deps::ensure().and_then(|()| bench::run(suite.as_deref(), &args))
        }
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn build(device: &str) -> anyhow::Result<ExitCode> {
    let ws = workspace::Workspace::locate()?;
    let device = image::load_device(&ws, device)?;
    let built = binaries::build(&ws, &device.binaries)?;
    println!("built {} program(s):", built.len());
    for (name, path) in &built {
        println!("  {name:<24} {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
