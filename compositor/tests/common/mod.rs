//! Test fixture: a headless compositor on its own thread plus a minimal wayland-client app.

#![allow(dead_code)]

use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use wayland_client::protocol::{
    wl_buffer, wl_compositor, wl_registry, wl_shm, wl_shm_pool, wl_surface,
};
use wayland_client::{Connection, Dispatch, EventQueue, QueueHandle, WEnum, delegate_noop};
use wayland_protocols::xdg::shell::client::{xdg_surface, xdg_toplevel, xdg_wm_base};

/// What the test app has learnt from the compositor.
#[derive(Default)]
pub struct AppState {
    pub compositor: Option<wl_compositor::WlCompositor>,
    pub shm: Option<wl_shm::WlShm>,
    pub wm_base: Option<xdg_wm_base::XdgWmBase>,
    pub configured: Option<(i32, i32, Vec<xdg_toplevel::State>)>,
    pub configure_serial: Option<u32>,
    pub close_requested: bool,
    pub frames_done: u32,
    /// `frames_done` when the last frame callback was requested (see `TestApp::wait_for_frame`).
    pub frames_before_commit: u32,
    /// Registry globals seen: (name, interface, version).
    pub globals: Vec<(u32, String, u32)>,
    pub registry: Option<wl_registry::WlRegistry>,
    /// Presentation feedback state (tests/protocols.rs).
    pub extra: Option<PresentationFeedback>,
}

/// What presentation-time said about a frame.
#[derive(Debug, Default, Clone)]
pub struct PresentationFeedback {
    pub presented: Option<(u64, u32)>,
    pub discarded: bool,
}

/// A one-window Wayland app drawing a solid colour.
pub struct TestApp {
    pub conn: Connection,
    pub queue: EventQueue<AppState>,
    pub state: AppState,
    pub surface: Option<wl_surface::WlSurface>,
    pub xdg_surface: Option<xdg_surface::XdgSurface>,
    pub toplevel: Option<xdg_toplevel::XdgToplevel>,
}

impl TestApp {
    pub fn connect(socket: &Path) -> Self {
        let stream = UnixStream::connect(socket)
            .unwrap_or_else(|e| panic!("connecting to {}: {e}", socket.display()));
        let conn =
            Connection::from_socket(stream).unwrap_or_else(|e| panic!("wayland connection: {e}"));
        let mut queue = conn.new_event_queue();
        let qh = queue.handle();
        conn.display().get_registry(&qh, ());
        let mut state = AppState::default();
        queue
            .roundtrip(&mut state)
            .unwrap_or_else(|e| panic!("roundtrip: {e}"));
        assert!(
            state.compositor.is_some() && state.shm.is_some() && state.wm_base.is_some(),
            "compositor lacks wl_compositor/wl_shm/xdg_wm_base"
        );
        Self {
            conn,
            queue,
            state,
            surface: None,
            xdg_surface: None,
            toplevel: None,
        }
    }

    /// Binds a global by interface name (panics if the compositor lacks it).
    pub fn bind_global<I: wayland_client::Proxy + 'static>(
        &mut self,
        interface: &str,
        version: u32,
    ) -> I
    where
        AppState: Dispatch<I, ()>,
    {
        let qh = self.queue.handle();
        let Some((name, _, max)) = self
            .state
            .globals
            .iter()
            .find(|(_, i, _)| i == interface)
            .cloned()
        else {
            panic!("the compositor does not advertise {interface}")
        };
        let Some(registry) = self.state.registry.clone() else {
            panic!("no registry")
        };
        registry.bind::<I, (), AppState>(name, version.min(max), &qh, ())
    }

    pub fn roundtrip(&mut self) {
        self.queue
            .roundtrip(&mut self.state)
            .unwrap_or_else(|e| panic!("roundtrip: {e}"));
    }

    /// Creates the toplevel and waits for its first configure; returns (width, height, states).
    pub fn open_window(&mut self, title: &str) -> (i32, i32, Vec<xdg_toplevel::State>) {
        let qh = self.queue.handle();
        let (Some(compositor), Some(wm_base)) =
            (self.state.compositor.clone(), self.state.wm_base.clone())
        else {
            panic!("globals missing")
        };
        let surface = compositor.create_surface(&qh, ());
        let xdg_surface = wm_base.get_xdg_surface(&surface, &qh, ());
        let toplevel = xdg_surface.get_toplevel(&qh, ());
        toplevel.set_title(title.to_owned());
        surface.commit();
        self.surface = Some(surface);
        self.xdg_surface = Some(xdg_surface);
        self.toplevel = Some(toplevel);
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.state.configure_serial.is_none() {
            assert!(
                Instant::now() < deadline,
                "no configure from the compositor"
            );
            self.roundtrip();
        }
        self.state
            .configured
            .clone()
            .unwrap_or_else(|| panic!("configure without toplevel state"))
    }

    /// Draws the window in one colour at `scale` and commits it.
    pub fn draw(&mut self, rgb: [u8; 3], scale: i32) {
        let qh = self.queue.handle();
        let (w, h, _) = self
            .state
            .configured
            .clone()
            .unwrap_or_else(|| panic!("not configured"));
        let (bw, bh) = (w * scale, h * scale);
        let stride = bw * 4;
        let size = (stride * bh) as usize;
        let mut file = tempfile::tempfile().unwrap_or_else(|e| panic!("tempfile: {e}"));
        let mut pixels = Vec::with_capacity(size);
        for _ in 0..(bw * bh) {
            pixels.extend_from_slice(&[rgb[2], rgb[1], rgb[0], 0xff]);
        }
        file.write_all(&pixels)
            .unwrap_or_else(|e| panic!("writing the buffer: {e}"));
        let Some(shm) = self.state.shm.clone() else {
            panic!("no wl_shm")
        };
        let pool = shm.create_pool(file.as_fd(), size as i32, &qh, ());
        let buffer = pool.create_buffer(0, bw, bh, stride, wl_shm::Format::Argb8888, &qh, ());
        pool.destroy();
        let (Some(surface), Some(xdg_surface)) = (self.surface.clone(), self.xdg_surface.clone())
        else {
            panic!("no window")
        };
        if let Some(serial) = self.state.configure_serial {
            xdg_surface.ack_configure(serial);
        }
        surface.set_buffer_scale(scale);
        surface.attach(Some(&buffer), 0, 0);
        surface.damage_buffer(0, 0, bw, bh);
        surface.frame(&qh, ());
        // The callback may arrive before `draw`'s own roundtrip returns: count from here.
        self.state.frames_before_commit = self.state.frames_done;
        surface.commit();
        self.roundtrip();
    }

    /// Waits until the compositor sends the frame callback of the last `draw` (our commit was drawn).
    pub fn wait_for_frame(&mut self) {
        let start = self.state.frames_before_commit;
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.state.frames_done == start {
            assert!(
                Instant::now() < deadline,
                "no frame callback from the compositor"
            );
            self.roundtrip();
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    pub fn close_window(&mut self) {
        if let Some(t) = self.toplevel.take() {
            t.destroy();
        }
        if let Some(x) = self.xdg_surface.take() {
            x.destroy();
        }
        if let Some(s) = self.surface.take() {
            s.destroy();
        }
        self.roundtrip();
    }
}

impl Dispatch<wl_registry::WlRegistry, ()> for AppState {
    fn event(
        state: &mut Self,
        registry: &wl_registry::WlRegistry,
        event: wl_registry::Event,
        _: &(),
        _: &Connection,
        qh: &QueueHandle<Self>,
    ) {
        if let wl_registry::Event::Global {
            name,
            interface,
            version,
        } = event
        {
            state.registry = Some(registry.clone());
            state.globals.push((name, interface.clone(), version));
            match interface.as_str() {
                "wl_compositor" => {
                    state.compositor = Some(registry.bind(name, version.min(4), qh, ()))
                }
                "wl_shm" => state.shm = Some(registry.bind(name, 1, qh, ())),
                "xdg_wm_base" => state.wm_base = Some(registry.bind(name, version.min(3), qh, ())),
                _ => {}
            }
        }
    }
}

impl Dispatch<xdg_wm_base::XdgWmBase, ()> for AppState {
    fn event(
        _: &mut Self,
        wm: &xdg_wm_base::XdgWmBase,
        event: xdg_wm_base::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let xdg_wm_base::Event::Ping { serial } = event {
            wm.pong(serial);
        }
    }
}

impl Dispatch<xdg_surface::XdgSurface, ()> for AppState {
    fn event(
        state: &mut Self,
        _: &xdg_surface::XdgSurface,
        event: xdg_surface::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let xdg_surface::Event::Configure { serial } = event {
            state.configure_serial = Some(serial);
        }
    }
}

impl Dispatch<xdg_toplevel::XdgToplevel, ()> for AppState {
    fn event(
        state: &mut Self,
        _: &xdg_toplevel::XdgToplevel,
        event: xdg_toplevel::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        match event {
            xdg_toplevel::Event::Configure {
                width,
                height,
                states,
            } => {
                let states = states
                    .chunks_exact(4)
                    .filter_map(|c| {
                        let v = u32::from_ne_bytes([c[0], c[1], c[2], c[3]]);
                        match WEnum::<xdg_toplevel::State>::from(v) {
                            WEnum::Value(s) => Some(s),
                            WEnum::Unknown(_) => None,
                        }
                    })
                    .collect();
                state.configured = Some((width, height, states));
            }
            xdg_toplevel::Event::Close => state.close_requested = true,
            _ => {}
        }
    }
}

impl Dispatch<wayland_client::protocol::wl_callback::WlCallback, ()> for AppState {
    fn event(
        state: &mut Self,
        _: &wayland_client::protocol::wl_callback::WlCallback,
        event: wayland_client::protocol::wl_callback::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let wayland_client::protocol::wl_callback::Event::Done { .. } = event {
            state.frames_done += 1;
        }
    }
}

delegate_noop!(AppState: ignore wl_compositor::WlCompositor);
delegate_noop!(AppState: ignore wl_surface::WlSurface);
delegate_noop!(AppState: ignore wl_shm::WlShm);
delegate_noop!(AppState: ignore wl_shm_pool::WlShmPool);
delegate_noop!(AppState: ignore wl_buffer::WlBuffer);

/// Whether two colours differ by at most `tol` per channel.
pub fn close(a: [u8; 3], b: [u8; 3], tol: i32) -> bool {
    a.iter()
        .zip(b)
        .all(|(x, y)| (*x as i32 - y as i32).abs() <= tol)
}

/// Share of the pixels of `region` of `shot` for which `want(x, y)` is within `tol` of the shot.
pub fn match_ratio(
    shot: &cirrus_compositor::Screenshot,
    region: cirrus_ui::IRect,
    tol: i32,
    want: impl Fn(u32, u32) -> [u8; 3],
) -> f64 {
    let mut total = 0u64;
    let mut ok = 0u64;
    for y in region.y.max(0) as u32..(region.bottom().max(0) as u32).min(shot.height) {
        for x in region.x.max(0) as u32..(region.right().max(0) as u32).min(shot.width) {
            total += 1;
            if shot.pixel(x, y).is_some_and(|p| close(p, want(x, y), tol)) {
                ok += 1;
            }
        }
    }
    if total == 0 {
        0.0
    } else {
        ok as f64 / total as f64
    }
}

/// Saves `shot` under target/test-screenshots/NAME.png and returns the path (kept for inspection).
pub fn keep(shot: &cirrus_compositor::Screenshot, name: &str) -> std::path::PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(format!("{name}.png"));
    if let Err(e) = shot.save_png(&path) {
        eprintln!("could not save {}: {e}", path.display());
    }
    path
}

/// Takes screenshots until `ok` accepts one (kept as NAME.png), or fails after 20 s naming `what`.
pub fn wait_until(
    session: &cirrus_compositor::HeadlessSession,
    what: &str,
    name: &str,
    ok: impl Fn(&cirrus_compositor::Screenshot) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let shot = session
            .screenshot()
            .unwrap_or_else(|e| panic!("screenshot: {e:#}"));
        if ok(&shot) {
            keep(&shot, name);
            return;
        }
        if Instant::now() > deadline {
            let path = keep(&shot, name);
            panic!("{what}: not seen within 20 s, see {}", path.display());
        }
        std::thread::sleep(Duration::from_millis(30));
    }
}
