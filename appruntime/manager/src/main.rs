//! `cirrus-appmanager serve`: the app manager daemon; `cirrus-appmanager launch ID`: asks the
//! running manager to launch an app (what launcher entries run).

use std::path::PathBuf;

use anyhow::{Context, Result};
use cirrus_appmanager::bus::AppManager1ClientProxy;
use cirrus_appmanager::{
    RuntimeOptions, ServeOptions, SystemOptions, android, default_web_host, serve_system,
};
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "cirrus-appmanager")]
struct Cli {
    /// D-Bus address to use (default: the system bus).
    #[arg(long, global = true)]
    bus_address: Option<String>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run the daemon.
    Serve {
        /// Where app data, code and the package database live (/data on the device).
        #[arg(long, default_value = "/data")]
        data_root: PathBuf,
        /// The wasm host binary (default: cirrus-wasm-host beside this binary).
        #[arg(long)]
        wasm_host: Option<PathBuf>,
        /// The web host binary (default: cirrus-web-host beside the wasm host).
        #[arg(long)]
        web_host: Option<PathBuf>,
        /// Keep passwd/group entries for app uids in DIR (`/var/lib/extrausers` on the device,
        /// where /etc/nsswitch.conf reads `files extrausers`), so every program can resolve them.
        #[arg(long, value_name = "DIR")]
        accounts_dir: Option<PathBuf>,
        /// Developer mode: `cirrus app inspect` may start web apps with WebKit's remote inspector
        /// (on loopback). For emulators and developer devices; never on by default.
        #[arg(long)]
        developer_mode: bool,
        /// Memory cap per app, MiB.
        #[arg(long, default_value_t = 64)]
        memory_mb: u32,
        /// Run apps without a display (tests, benchmarks).
        #[arg(long)]
        headless_apps: bool,
        /// Device locale APK labels are chosen for, e.g. de-DE (default: from LC_ALL/LANG).
        #[arg(long)]
        locale: Option<String>,
        /// Display density in dpi APK icons are chosen for (default: $CIRRUS_DISPLAY_DPI or 320).
        #[arg(long)]
        dpi: Option<u16>,
        /// The user's files (/data/user/0): opened to web apps holding `user-files`.
        #[arg(long, value_name = "DIR")]
        user_files: Option<PathBuf>,
        /// Install/update the system apps in DIR (/system/app) at start; needs --platform-key.
        #[arg(long, value_name = "DIR", requires = "platform_key")]
        system_apps: Option<PathBuf>,
        /// The platform key's public half system apps must be signed with.
        #[arg(long, value_name = "FILE")]
        platform_key: Option<PathBuf>,
    },
    /// Ask the running manager to launch an app.
    Launch { id: String },
}

async fn connect(address: Option<&str>) -> Result<zbus::Connection> {
    match address {
        Some(a) => zbus::connection::Builder::address(a)
            .build()
            .await
            .with_context(|| format!("connecting to the bus at {a}")),
        None => zbus::Connection::system()
            .await
            .context("connecting to the system bus"),
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    cirrus_logging::init("cirrus-appmanager");
    let cli = Cli::parse();
    match cli.command {
        Cmd::Launch { id } => {
            let conn = connect(cli.bus_address.as_deref()).await?;
            let proxy = AppManager1ClientProxy::new(&conn).await?;
            proxy
                .launch(&id)
                .await
                .with_context(|| format!("launching {id}"))?;
            Ok(())
        }
        Cmd::Serve {
            data_root,
            wasm_host,
            web_host,
            accounts_dir,
            developer_mode,
            memory_mb,
            headless_apps,
            locale,
            dpi,
            user_files,
            system_apps,
            platform_key,
        } => {
            let mut device = android::device_from_env();
            if let Some(l) = locale {
                device.locale = android::locale_tag(&l);
            }
            if let Some(d) = dpi {
                device.density = d;
            }
            let exe = std::env::current_exe().context("locating cirrus-appmanager")?;
            let wasm_host = wasm_host.unwrap_or_else(|| exe.with_file_name("cirrus-wasm-host"));
            let web_host = web_host.unwrap_or_else(|| default_web_host(&wasm_host));
            let mut launch_command = vec![exe.display().to_string()];
            if let Some(a) = &cli.bus_address {
                launch_command.push(format!("--bus-address={a}"));
            }
            launch_command.push("launch".into());
            let opts = ServeOptions {
                bus_address: cli.bus_address,
                data_root,
                wasm_host,
                memory_mb,
                headless_apps,
                launch_command,
            };
            let shutdown = async {
                if let Ok(mut term) =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                {
                    tokio::select! { _ = term.recv() => {}, _ = tokio::signal::ctrl_c() => {} }
                }
            };
            let runtime = RuntimeOptions {
                web_host,
                accounts_dir,
                developer_mode,
            };
            let system = SystemOptions {
                user_files,
                system_apps,
                platform_key,
            };
            serve_system(opts, device, runtime, system, shutdown).await
        }
    }
}
