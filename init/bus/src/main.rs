//! cirrus-init-bus: serves `org.cirrus.Init1` on the system bus by relaying to cirrus-init's control
//! socket (see the library). Started by init after the bus (`images/units/init-bus.toml`).
//!
//! ```text
//! cirrus-init-bus [--address BUS-ADDRESS] [--control SOCKET]
//! cirrus-init-bus write-bus-config PATH      (Debian's system bus config + the Init1 policy)
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use cirrus_init_bus::{BUS_NAME, ControlClient, DEFAULT_CONTROL_SOCKET, Init1Relay, OBJECT_PATH};

const USAGE: &str = "usage: cirrus-init-bus [--address BUS-ADDRESS] [--control SOCKET]
       cirrus-init-bus write-bus-config PATH";

fn main() -> ExitCode {
    cirrus_logging::init("cirrus-init-bus");
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("write-bus-config") => match args.get(1) {
            Some(path) if args.len() == 2 => write_bus_config(&PathBuf::from(path)),
            _ => Err(anyhow::anyhow!("{USAGE}")),
        },
        Some("--help" | "-h") => {
            eprintln!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => parse_serve_args(&args).and_then(|(address, control)| serve(address, control)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

fn parse_serve_args(args: &[String]) -> anyhow::Result<(Option<String>, PathBuf)> {
    let mut address = None;
    let mut control = std::env::var_os("CIRRUS_INIT_SOCKET")
        .map_or_else(|| PathBuf::from(DEFAULT_CONTROL_SOCKET), PathBuf::from);
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--address" => address = Some(it.next().context("--address needs a value")?.clone()),
            "--control" => control = PathBuf::from(it.next().context("--control needs a value")?),
            other => anyhow::bail!("unknown argument `{other}`\n{USAGE}"),
        }
    }
    Ok((address, control))
}

fn write_bus_config(path: &std::path::Path) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, cirrus_init_bus::system_bus_config())
        .with_context(|| format!("writing {}", path.display()))?;
    tracing::info!("wrote the system bus configuration to {}", path.display());
    Ok(())
}

fn serve(address: Option<String>, control: PathBuf) -> anyhow::Result<()> {
    let relay = Init1Relay {
        control: ControlClient::new(&control),
    };
    let address = address.unwrap_or_else(cirrus_init_bus::system_bus_address);
    let builder = zbus::connection::Builder::address(address.as_str());
    let conn = zbus::block_on(builder.name(BUS_NAME).serve_at(OBJECT_PATH, relay).build())
        .with_context(|| format!("cannot own {BUS_NAME} on the bus {}", address))?;
    tracing::info!(
        "serving {BUS_NAME} at {OBJECT_PATH}, relaying to {}",
        control.display()
    );
    cirrus_logging::readiness::notify("READY=1\nSTATUS=serving org.cirrus.Init1");
    let watch_conn = conn.clone();
    let watch_control = ControlClient::new(&control);
    std::thread::Builder::new()
        .name("property-watch".into())
        .spawn(move || cirrus_init_bus::relay_property_changes(watch_conn, watch_control))
        .context("cannot start the property watch thread")?;
    // zbus serves the object on its own threads; this one only keeps the connection alive.
    loop {
        std::thread::park();
    }
}
