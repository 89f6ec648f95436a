//! Running one app: the store (WASI context, surface state, memory limits), the `InstancePre`
//! built once from the precompiled component, calls into the app under an epoch deadline, and the
//! event loop driving lifecycle, input and frames.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store, StoreLimits, StoreLimitsBuilder, UpdateDeadline};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::engine;
use crate::headless::{Command, Headless};
use crate::wayland::{WaylandWindow, WindowEvent};

wasmtime::component::bindgen!({
    path: "../../docs/wit",
    world: "app",
    imports: { default: trappable },
});

use cirrus::app::surface;
use exports::cirrus::app::events::PointerPhase;

/// Epoch ticks per second.
const TICKS_PER_SECOND: u64 = 100;
/// A call into the app longer than this is "not responding" (Android's input ANR is 5 s).
const RESPONSE_DEADLINE_TICKS: u64 = TICKS_PER_SECOND;
/// Largest surface accepted.
pub(crate) const MAX_SIDE: u32 = 8192;

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[arg(long)]
    app_id: String,
    #[arg(long)]
    component: PathBuf,
    /// Precompiled code from install (compiled now if missing or from another engine).
    #[arg(long)]
    precompiled: Option<PathBuf>,
    /// Preopened as `/` (read-write): the app's only writable place.
    #[arg(long)]
    data_dir: PathBuf,
    /// Preopened as `/package` (read-only).
    #[arg(long)]
    package_dir: Option<PathBuf>,
    #[arg(long, default_value = "")]
    title: String,
    /// Granted permissions (`network` links sockets).
    #[arg(long = "permission")]
    permissions: Vec<String>,
    /// Memory cap (MiB) over all of the app's linear memories and tables.
    #[arg(long, default_value_t = 64)]
    memory_mb: u32,
    /// Run without a display (tests, benchmarks): input from stdin, frames to --frame-out.
    #[arg(long)]
    headless: bool,
    /// Headless: write each presented frame here (8-byte header width,height LE u32 + RGBA).
    #[arg(long)]
    frame_out: Option<PathBuf>,
    /// Headless surface size, WIDTHxHEIGHT.
    #[arg(long, default_value = "360x640")]
    size: String,
    /// The compositor's socket (default: `$WAYLAND_DISPLAY`, relative to `$XDG_RUNTIME_DIR`).
    #[arg(long)]
    wayland_display: Option<PathBuf>,
}

/// What the store holds for one app.
pub struct AppState {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: StoreLimits,
    pub width: u32,
    pub height: u32,
    pub frame_requested: bool,
    pub frames_presented: u64,
    pub last_frame: Option<(u32, u32, Vec<u8>)>,
    not_responding_reported: bool,
}

impl WasiView for AppState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl surface::Host for AppState {
    fn width(&mut self) -> wasmtime::Result<u32> {
        Ok(self.width)
    }
    fn height(&mut self) -> wasmtime::Result<u32> {
        Ok(self.height)
    }
    fn present(&mut self, width: u32, height: u32, pixels: Vec<u8>) -> wasmtime::Result<()> {
        if width == 0
            || height == 0
            || width > MAX_SIDE
            || height > MAX_SIDE
            || pixels.len() as u64 != u64::from(width) * u64::from(height) * 4
        {
            return Err(wasmtime::Error::msg(format!(
                "present: {} bytes is not a {width}x{height} RGBA frame",
                pixels.len()
            )));
        }
        self.frames_presented += 1;
        self.last_frame = Some((width, height, pixels));
        Ok(())
    }
    fn request_frame(&mut self) -> wasmtime::Result<()> {
        self.frame_requested = true;
        Ok(())
    }
}

/// One status line to the manager.
pub fn status(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

static TERMINATE: AtomicBool = AtomicBool::new(false);
static PAUSE: AtomicBool = AtomicBool::new(false);
static RESUME: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(sig: libc::c_int) {
    match sig {
        libc::SIGTERM | libc::SIGINT => TERMINATE.store(true, Ordering::SeqCst),
        libc::SIGUSR1 => PAUSE.store(true, Ordering::SeqCst),
        libc::SIGUSR2 => RESUME.store(true, Ordering::SeqCst),
        _ => {}
    }
}

fn install_signal_handlers() -> Result<()> {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    let action = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for sig in [
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
    ] {
        // SAFETY: the handler only stores to atomics.
        unsafe { sigaction(sig, &action) }
            .with_context(|| format!("installing the {sig} handler"))?;
    }
    Ok(())
}

/// Loads the component: the precompiled file when it fits this engine, else compiles (and logs).
pub fn load_component(
    engine: &Engine,
    component: &Path,
    precompiled: Option<&Path>,
) -> Result<Component> {
    if let Some(path) = precompiled.filter(|p| p.exists()) {
        // SAFETY: the precompiled file is written by the app manager at install from a verified
        // package, into a system directory apps cannot write; wasmtime checks it fits the engine.
        match unsafe { Component::deserialize_file(engine, path) } {
            Ok(c) => return Ok(c),
            Err(err) => {
                tracing::warn!(path = %path.display(), "precompiled code not usable ({err}); compiling")
            }
        }
    }
    Component::from_file(engine, component)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("compiling {}", component.display()))
}

/// A running app instance with its store.
pub struct RunningApp {
    pub store: Store<AppState>,
    pub bindings: App,
}

impl RunningApp {
    /// Instantiates the app from `pre`.
    pub fn start(
        engine: &Engine,
        pre: &AppPre<AppState>,
        args: &RunArgs,
        width: u32,
        height: u32,
    ) -> Result<RunningApp> {
        let mut wasi = WasiCtxBuilder::new();
        wasi.stdout(std::io::stderr()).stderr(std::io::stderr());
        wasi.env("CIRRUS_APP_ID", &args.app_id);
        wasi.preopened_dir(&args.data_dir, "/", FsPerms::ReadWrite)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("opening {}", args.data_dir.display()))?;
        if let Some(pkg) = &args.package_dir {
            wasi.preopened_dir(pkg, "/package", FsPerms::ReadOnly)
                .map_err(anyhow::Error::from)
                .with_context(|| format!("opening {}", pkg.display()))?;
        }
        if args.permissions.iter().any(|p| p == "network") {
            wasi.inherit_network().allow_ip_name_lookup(true);
        } else {
            wasi.allow_tcp(false)
                .allow_udp(false)
                .allow_ip_name_lookup(false);
        }
        let cap = (args.memory_mb as usize)
            .saturating_mul(1 << 20)
            .min(engine::MAX_MEMORY_BYTES);
        let limits = StoreLimitsBuilder::new()
            .memory_size(cap)
            .table_elements(1 << 20)
            .instances(32)
            .trap_on_grow_failure(false)
            .build();
        let state = AppState {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            limits,
            width,
            height,
            frame_requested: false,
            frames_presented: 0,
            last_frame: None,
            not_responding_reported: false,
        };
        let mut store = Store::new(engine, state);
        store.limiter(|s| &mut s.limits);
        store.epoch_deadline_callback(|mut ctx| {
            if TERMINATE.load(Ordering::SeqCst) {
                return Err(wasmtime::Error::msg("stopped while not responding"));
            }
            if !ctx.data().not_responding_reported {
                status("not-responding");
                ctx.data_mut().not_responding_reported = true;
            }
            Ok(UpdateDeadline::Continue(TICKS_PER_SECOND / 10))
        });
        store.set_epoch_deadline(RESPONSE_DEADLINE_TICKS);
        let bindings = pre
            .instantiate(&mut store)
            .map_err(anyhow::Error::from)
            .context("instantiating the app")?;
        Ok(RunningApp { store, bindings })
    }

    /// Calls into the app under the response deadline.
    fn call(
        &mut self,
        what: &str,
        f: impl FnOnce(&App, &mut Store<AppState>) -> wasmtime::Result<()>,
    ) -> Result<()> {
        self.store.set_epoch_deadline(RESPONSE_DEADLINE_TICKS);
        f(&self.bindings, &mut self.store)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("the app trapped in {what}"))?;
        if self.store.data().not_responding_reported {
            self.store.data_mut().not_responding_reported = false;
            status("responding");
        }
        Ok(())
    }

    pub fn create(&mut self) -> Result<()> {
        self.call("create", |b, s| b.cirrus_app_lifecycle().call_create(s))
    }
    pub fn resume(&mut self) -> Result<()> {
        self.call("resume", |b, s| b.cirrus_app_lifecycle().call_resume(s))
    }
    pub fn pause(&mut self) -> Result<()> {
        self.call("pause", |b, s| b.cirrus_app_lifecycle().call_pause(s))
    }
    pub fn destroy(&mut self) -> Result<()> {
        self.call("destroy", |b, s| b.cirrus_app_lifecycle().call_destroy(s))
    }
    pub fn pointer(&mut self, phase: PointerPhase, x: f64, y: f64) -> Result<()> {
        self.call("pointer", |b, s| {
            b.cirrus_app_events().call_pointer(s, phase, x, y)
        })
    }
    pub fn key(&mut self, code: u32, pressed: bool) -> Result<()> {
        self.call("key", |b, s| {
            b.cirrus_app_events().call_key(s, code, pressed)
        })
    }
    pub fn resize(&mut self, width: u32, height: u32) -> Result<()> {
        self.store.data_mut().width = width;
        self.store.data_mut().height = height;
        self.call("resize", |b, s| {
            b.cirrus_app_events().call_resize(s, width, height)
        })
    }
    pub fn frame(&mut self, time_ms: u64) -> Result<()> {
        self.store.data_mut().frame_requested = false;
        self.call("frame", |b, s| b.cirrus_app_events().call_frame(s, time_ms))
    }
}

/// Builds the linker (WASI 0.2 + the Cirrus surface) and the `InstancePre`.
pub fn prepare(engine: &Engine, component: &Component) -> Result<AppPre<AppState>> {
    let mut linker: Linker<AppState> = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
        .map_err(anyhow::Error::from)
        .context("linking WASI")?;
    surface::add_to_linker::<AppState, wasmtime::component::HasSelf<AppState>>(&mut linker, |s| s)
        .map_err(anyhow::Error::from)?;
    let pre = linker
        .instantiate_pre(component)
        .map_err(anyhow::Error::from)
        .context("the component does not fit the cirrus:app world (see docs/wit)")?;
    AppPre::new(pre)
        .map_err(anyhow::Error::from)
        .context("the component does not export the cirrus:app world")
}

fn parse_size(text: &str) -> Result<(u32, u32)> {
    let (w, h) = text
        .split_once('x')
        .ok_or_else(|| anyhow!("--size `{text}`: use WIDTHxHEIGHT"))?;
    let (w, h): (u32, u32) = (w.parse()?, h.parse()?);
    if w == 0 || h == 0 || w > MAX_SIDE || h > MAX_SIDE {
        bail!("--size `{text}` out of range");
    }
    Ok((w, h))
}

/// `cirrus-wasm-host run`.
pub fn run(args: RunArgs) -> Result<()> {
    let _span = tracing::info_span!("app", id = %args.app_id).entered();
    install_signal_handlers()?;
    let engine = engine::engine()?;
    {
        let engine = engine.clone();
        std::thread::Builder::new()
            .name("epoch".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(Duration::from_millis(1000 / TICKS_PER_SECOND));
                    engine.increment_epoch();
                }
            })?;
    }
    let component = load_component(&engine, &args.component, args.precompiled.as_deref())?;
    let pre = prepare(&engine, &component)?;
    if args.headless {
        run_headless(&engine, &pre, &args)
    } else {
        run_on_wayland(&engine, &pre, &args)
    }
}

/// Pause/resume/stop asked by the manager's signals (or the display): applies them to the app.
/// Returns false once the app was destroyed.
fn lifecycle_signals(app: &mut RunningApp, paused: &mut bool) -> Result<bool> {
    if TERMINATE.load(Ordering::SeqCst) {
        app.destroy()?;
        return Ok(false);
    }
    if PAUSE.swap(false, Ordering::SeqCst) && !*paused {
        *paused = true;
        app.pause()?;
    }
    if RESUME.swap(false, Ordering::SeqCst) && *paused {
        *paused = false;
        app.resume()?;
    }
    Ok(true)
}

fn run_headless(engine: &Engine, pre: &AppPre<AppState>, args: &RunArgs) -> Result<()> {
    let (width, height) = parse_size(&args.size)?;
    let mut app = RunningApp::start(engine, pre, args, width, height)?;
    status("running");
    app.create()?;
    app.resize(width, height)?;
    let mut display = Headless::new(args.frame_out.clone());
    let started = Instant::now();
    let mut paused = false;
    let mut first_frame_shown = false;
    loop {
        if !lifecycle_signals(&mut app, &mut paused)? {
            return Ok(());
        }
        match display.next_command(Duration::from_millis(16)) {
            Some(Command::Pointer(phase, x, y)) => app.pointer(phase, x, y)?,
            Some(Command::Key(code, pressed)) => app.key(code, pressed)?,
            Some(Command::Resize(w, h)) => app.resize(w, h)?,
            Some(Command::Pause) => PAUSE.store(true, Ordering::SeqCst),
            Some(Command::Resume) => RESUME.store(true, Ordering::SeqCst),
            Some(Command::Stop) => TERMINATE.store(true, Ordering::SeqCst),
            None => {}
        }
        if app.store.data().frame_requested && !paused {
            app.frame(started.elapsed().as_millis() as u64)?;
        }
        if let Some(frame) = app.store.data_mut().last_frame.take() {
            display.show(&frame)?;
            if !first_frame_shown {
                first_frame_shown = true;
                status("first-frame");
            }
        }
    }
}

/// The app in an xdg-toplevel: configure sizes → `resize`, input → `events`, frames through
/// wl_shm paced by frame callbacks, close → `destroy` and exit, suspended → `pause`/`resume`.
fn run_on_wayland(engine: &Engine, pre: &AppPre<AppState>, args: &RunArgs) -> Result<()> {
    let title = if args.title.is_empty() {
        &args.app_id
    } else {
        &args.title
    };
    let mut window = WaylandWindow::open(args.wayland_display.as_deref(), title, &args.app_id)
        .with_context(|| format!("opening the window of {}", args.app_id))?;
    let (width, height) = window.size();
    let mut app = RunningApp::start(engine, pre, args, width, height)?;
    status("running");
    app.create()?;
    app.resize(width, height)?;
    let started = Instant::now();
    let mut paused = false;
    // Paused by the compositor (suspended window) as opposed to by the manager.
    let mut suspended = false;
    let mut first_frame_shown = false;
    loop {
        if !lifecycle_signals(&mut app, &mut paused)? {
            return Ok(());
        }
        let wait = if app.store.data().frame_requested && window.ready_for_frame() && !paused {
            Duration::ZERO
        } else {
            Duration::from_millis(100)
        };
        if let Err(err) = window.dispatch(wait) {
            // The compositor went away: let the app save its state, then report.
            let _ = app.destroy();
            return Err(err);
        }
        for event in window.take_events() {
            match event {
                WindowEvent::Resize(w, h) => app.resize(w, h)?,
                WindowEvent::Pointer(phase, x, y) => app.pointer(phase, x, y)?,
                WindowEvent::Key(code, pressed) => app.key(code, pressed)?,
                WindowEvent::Suspended(true) if !paused => {
                    suspended = true;
                    paused = true;
                    app.pause()?;
                }
                WindowEvent::Suspended(false) if suspended => {
                    suspended = false;
                    paused = false;
                    app.resume()?;
                }
                WindowEvent::Suspended(_) => {}
                WindowEvent::Close => {
                    app.destroy()?;
                    return Ok(());
                }
            }
        }
        if app.store.data().frame_requested && window.ready_for_frame() && !paused {
            app.frame(started.elapsed().as_millis() as u64)?;
        }
        if let Some(frame) = app.store.data_mut().last_frame.take() {
            window.present(frame);
        }
        if !first_frame_shown && window.committed() && app.store.data().frames_presented > 0 {
            first_frame_shown = true;
            status("first-frame");
        }
    }
}
