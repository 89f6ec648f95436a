//! `cirrus-compositor`: the Wayland compositor and phone shell (see the library docs).

use std::path::PathBuf;

use anyhow::Context;
use cirrus_compositor::notifications::NotificationBus;
use cirrus_compositor::{BackendKind, Compositor, Config, SocketChoice};
use clap::{Parser, ValueEnum};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum BackendArg {
    /// KMS display (phone, QEMU virtio-gpu).
    Drm,
    /// Offscreen (tests, screenshots).
    Headless,
}

/// Cirrus's Wayland compositor and phone shell.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Where to draw.
    #[arg(long, value_enum, default_value = "drm")]
    backend: BackendArg,
    /// DRM card to drive (drm backend).
    #[arg(long, default_value = "/dev/dri/card0")]
    card: PathBuf,
    /// Screen size WIDTHxHEIGHT in pixels (headless backend).
    #[arg(long, default_value = "720x1440", value_parser = parse_size)]
    size: (u32, u32),
    /// Wayland socket path; default: the first free wayland-N in $XDG_RUNTIME_DIR.
    #[arg(long)]
    socket: Option<PathBuf>,
    /// Output scale advertised to clients; default: from the screen width (360 dp wide).
    #[arg(long)]
    scale: Option<i32>,
    /// Data directory whose applications/*.desktop fill the launcher (repeatable; default
    /// /usr/local/share and /usr/share).
    #[arg(long)]
    app_dir: Vec<PathBuf>,
    /// Headless: write the first frame as PNG to this path, then keep running.
    #[arg(long)]
    screenshot: Option<PathBuf>,
    /// Where to serve org.freedesktop.Notifications: `system` (the system bus), `none`, or a
    /// D-Bus address such as `unix:path=/run/dbus/system_bus_socket`.
    #[arg(long, default_value = "system")]
    notification_bus: String,
    /// Leave the input method to an external on-screen keyboard (squeekboard, wvkbd) instead of
    /// the built-in one (there is one input method per seat).
    #[arg(long)]
    no_builtin_keyboard: bool,
}

fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let (w, h) = s
        .split_once('x')
        .ok_or_else(|| format!("`{s}` is not WIDTHxHEIGHT, e.g. 720x1440"))?;
    let w: u32 = w.parse().map_err(|_| format!("bad width `{w}`"))?;
    let h: u32 = h.parse().map_err(|_| format!("bad height `{h}`"))?;
    if w == 0 || h == 0 || w > 16384 || h > 16384 {
        return Err(format!("size {w}x{h} out of range (1..=16384)"));
    }
    Ok((w, h))
}

fn ensure_runtime_dir() -> anyhow::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from) else {
        anyhow::bail!(
            "XDG_RUNTIME_DIR is not set: set it (e.g. /run/user/0) or pass --socket PATH"
        );
    };
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .with_context(|| format!("creating {}", dir.display()))?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("chmod {}", dir.display()))?;
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    cirrus_compositor::allocator::tune();
    cirrus_logging::init("cirrus-compositor");
    let args = Args::parse();
    let socket = match &args.socket {
        Some(path) => SocketChoice::Path(path.clone()),
        None => {
            ensure_runtime_dir()?;
            SocketChoice::Auto
        }
    };
    let backend = match args.backend {
        BackendArg::Drm => BackendKind::Drm {
            card: args.card.clone(),
        },
        BackendArg::Headless => BackendKind::Headless {
            width: args.size.0,
            height: args.size.1,
        },
    };
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        ?backend,
        "cirrus-compositor starting"
    );
    let app_dirs = if args.app_dir.is_empty() {
        Config::default_app_dirs()
    } else {
        args.app_dir.clone()
    };
    let mut compositor = Compositor::new(Config {
        backend,
        socket,
        scale: args.scale,
        font_dirs: vec![],
        app_dirs,
        sysfs: PathBuf::from("/sys"),
        notification_bus: match args.notification_bus.as_str() {
            "system" => NotificationBus::System,
            "none" => NotificationBus::None,
            address => NotificationBus::Address(address.to_string()),
        },
    })?;
    compositor.stop_on_signals()?;
    if args.no_builtin_keyboard {
        compositor.data().state.release_builtin_keyboard();
    }
    if let Some(path) = &args.screenshot {
        compositor.data().render_if_needed();
        let shot = compositor.data().screenshot()?;
        shot.save_png(path)?;
        tracing::info!(path = %path.display(), "screenshot written");
    }
    compositor.run()
}
