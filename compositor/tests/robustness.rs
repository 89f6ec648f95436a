//! Misbehaving clients: a commit flood, huge or lying shm buffers, a client that never acks its
//! configure, clients that die mid-frame, protocol errors. In every case the compositor keeps
//! running, the offender is disconnected or throttled, and a well-behaved client (the witness) still
//! gets frame callbacks and touch input.

mod common;

use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use cirrus_compositor::input::Pointing;
use cirrus_compositor::{HeadlessSession, spawn_headless};
use common::TestApp;
use wayland_client::backend::WaylandError;
use wayland_client::protocol::{
    wl_buffer, wl_callback, wl_compositor, wl_registry, wl_seat, wl_shm, wl_shm_pool, wl_surface,
    wl_touch,
};
use wayland_client::{Connection, Dispatch, EventQueue, QueueHandle, WEnum, delegate_noop};
use wayland_protocols::xdg::shell::client::{xdg_surface, xdg_toplevel, xdg_wm_base};

const W: u32 = 720;
const H: u32 = 1440;

fn start() -> (tempfile::TempDir, HeadlessSession) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let session = spawn_headless(W, H, dir.path().join("wl"), vec![])
        .unwrap_or_else(|e| panic!("compositor: {e:#}"));
    (dir, session)
}

/// What the witness has seen.
#[derive(Default)]
struct WitnessState {
    compositor: Option<wl_compositor::WlCompositor>,
    shm: Option<wl_shm::WlShm>,
    wm_base: Option<xdg_wm_base::XdgWmBase>,
    touch: Option<wl_touch::WlTouch>,
    pending_size: (i32, i32),
    configure: Option<(u32, i32, i32)>,
    acked: Option<u32>,
    frames: u32,
    touch_downs: u32,
}

/// A well-behaved app: one window, redrawn on request, listening for touch.
struct Witness {
    conn: Connection,
    queue: EventQueue<WitnessState>,
    state: WitnessState,
    surface: wl_surface::WlSurface,
    xdg: xdg_surface::XdgSurface,
    _toplevel: xdg_toplevel::XdgToplevel,
    frame: u32,
}

impl Witness {
    fn open(socket: &Path) -> Self {
        let stream = UnixStream::connect(socket).unwrap_or_else(|e| panic!("connect: {e}"));
        let conn = Connection::from_socket(stream).unwrap_or_else(|e| panic!("{e}"));
        let mut queue = conn.new_event_queue();
        let qh = queue.handle();
        conn.display().get_registry(&qh, ());
        let mut state = WitnessState::default();
        queue
            .roundtrip(&mut state)
            .unwrap_or_else(|e| panic!("{e}"));
        queue
            .roundtrip(&mut state)
            .unwrap_or_else(|e| panic!("{e}"));
        let (Some(compositor), Some(wm_base)) = (state.compositor.clone(), state.wm_base.clone())
        else {
            panic!("globals missing")
        };
        assert!(state.touch.is_some(), "the compositor offers no wl_touch");
        let surface = compositor.create_surface(&qh, ());
        let xdg = wm_base.get_xdg_surface(&surface, &qh, ());
        let toplevel = xdg.get_toplevel(&qh, ());
        toplevel.set_title("witness".into());
        surface.commit();
        let mut witness = Self {
            conn,
            queue,
            state,
            surface,
            xdg,
            _toplevel: toplevel,
            frame: 0,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while witness.state.configure.is_none() {
            assert!(Instant::now() < deadline, "witness: no configure");
            witness.pump(Duration::from_millis(100));
        }
        witness
    }

    /// Sends what is queued, then reads and dispatches events for up to `timeout`.
    fn pump(&mut self, timeout: Duration) {
        let _ = self.conn.flush();
        if let Some(guard) = self.queue.prepare_read() {
            let mut fds = [nix::poll::PollFd::new(
                guard.connection_fd(),
                nix::poll::PollFlags::POLLIN,
            )];
            let ms = nix::poll::PollTimeout::try_from(timeout.as_millis() as i32)
                .unwrap_or(nix::poll::PollTimeout::ZERO);
            if nix::poll::poll(&mut fds, ms).unwrap_or(0) > 0 {
                match guard.read() {
                    Ok(_) => {}
                    Err(WaylandError::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) => panic!("witness: connection lost: {e}"),
                }
            }
        }
        self.queue
            .dispatch_pending(&mut self.state)
            .unwrap_or_else(|e| panic!("witness: {e}"));
    }

    /// Draws a new frame (new colour) and waits for its frame callback.
    fn draw_and_wait(&mut self, what: &str) {
        let qh = self.queue.handle();
        let (serial, w, h) = self
            .state
            .configure
            .unwrap_or_else(|| panic!("not configured"));
        let (w, h) = (w.max(1), h.max(1));
        let size = (w * h * 4) as usize;
        let mut file = tempfile::tempfile().unwrap_or_else(|e| panic!("{e}"));
        self.frame += 1;
        let px = [self.frame as u8, 0x40, 0x80, 0xff];
        let row: Vec<u8> = px.iter().copied().cycle().take(w as usize * 4).collect();
        for _ in 0..h {
            file.write_all(&row).unwrap_or_else(|e| panic!("{e}"));
        }
        let Some(shm) = self.state.shm.clone() else {
            panic!("no wl_shm")
        };
        let pool = shm.create_pool(file.as_fd(), size as i32, &qh, ());
        let buffer = pool.create_buffer(0, w, h, w * 4, wl_shm::Format::Argb8888, &qh, ());
        pool.destroy();
        if self.state.acked != Some(serial) {
            self.xdg.ack_configure(serial);
            self.state.acked = Some(serial);
        }
        self.surface.attach(Some(&buffer), 0, 0);
        self.surface.damage_buffer(0, 0, w, h);
        self.surface.frame(&qh, ());
        let before = self.state.frames;
        self.surface.commit();
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.state.frames == before {
            assert!(
                Instant::now() < deadline,
                "{what}: the well-behaved client got no frame callback within 20 s"
            );
            self.pump(Duration::from_millis(50));
        }
    }

    /// Taps the middle of the screen and waits until the witness sees the touch.
    fn expect_touch(&mut self, session: &HeadlessSession, what: &str) {
        let before = self.state.touch_downs;
        let (x, y) = (W as f64 / 4.0, H as f64 / 4.0);
        session
            .tap(Pointing::Touch, x, y)
            .unwrap_or_else(|e| panic!("tap: {e:#}"));
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.state.touch_downs == before {
            assert!(
                Instant::now() < deadline,
                "{what}: the well-behaved client got no touch within 20 s"
            );
            self.pump(Duration::from_millis(50));
        }
    }

    /// The compositor runs, and the witness gets frames and input.
    fn expect_served(&mut self, session: &HeadlessSession, what: &str) {
        assert!(session.is_running(), "{what}: the compositor stopped");
        self.draw_and_wait(what);
        self.draw_and_wait(what);
        self.expect_touch(session, what);
        assert!(session.is_running(), "{what}: the compositor stopped");
    }
}

impl Dispatch<wl_registry::WlRegistry, ()> for WitnessState {
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
            match interface.as_str() {
                "wl_compositor" => {
                    state.compositor = Some(registry.bind(name, version.min(4), qh, ()))
                }
                "wl_shm" => state.shm = Some(registry.bind(name, 1, qh, ())),
                "xdg_wm_base" => state.wm_base = Some(registry.bind(name, version.min(3), qh, ())),
                "wl_seat" => {
                    let _: wl_seat::WlSeat = registry.bind(name, version.min(5), qh, ());
                }
                _ => {}
            }
        }
    }
}

impl Dispatch<wl_seat::WlSeat, ()> for WitnessState {
    fn event(
        state: &mut Self,
        seat: &wl_seat::WlSeat,
        event: wl_seat::Event,
        _: &(),
        _: &Connection,
        qh: &QueueHandle<Self>,
    ) {
        if let wl_seat::Event::Capabilities {
            capabilities: WEnum::Value(caps),
        } = event
            && caps.contains(wl_seat::Capability::Touch)
            && state.touch.is_none()
        {
            state.touch = Some(seat.get_touch(qh, ()));
        }
    }
}

impl Dispatch<wl_touch::WlTouch, ()> for WitnessState {
    fn event(
        state: &mut Self,
        _: &wl_touch::WlTouch,
        event: wl_touch::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let wl_touch::Event::Down { .. } = event {
            state.touch_downs += 1;
        }
    }
}

impl Dispatch<wl_callback::WlCallback, ()> for WitnessState {
    fn event(
        state: &mut Self,
        _: &wl_callback::WlCallback,
        event: wl_callback::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let wl_callback::Event::Done { .. } = event {
            state.frames += 1;
        }
    }
}

impl Dispatch<xdg_wm_base::XdgWmBase, ()> for WitnessState {
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

impl Dispatch<xdg_surface::XdgSurface, ()> for WitnessState {
    fn event(
        state: &mut Self,
        _: &xdg_surface::XdgSurface,
        event: xdg_surface::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let xdg_surface::Event::Configure { serial } = event {
            let (w, h) = state.pending_size;
            state.configure = Some((serial, w, h));
        }
    }
}

impl Dispatch<xdg_toplevel::XdgToplevel, ()> for WitnessState {
    fn event(
        state: &mut Self,
        _: &xdg_toplevel::XdgToplevel,
        event: xdg_toplevel::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let xdg_toplevel::Event::Configure { width, height, .. } = event {
            state.pending_size = (width, height);
        }
    }
}

delegate_noop!(WitnessState: ignore wl_compositor::WlCompositor);
delegate_noop!(WitnessState: ignore wl_surface::WlSurface);
delegate_noop!(WitnessState: ignore wl_shm::WlShm);
delegate_noop!(WitnessState: ignore wl_shm_pool::WlShmPool);
delegate_noop!(WitnessState: ignore wl_buffer::WlBuffer);

/// Waits until the compositor ends `app`'s connection; returns the protocol error it was sent, if
/// any. Panics if the client is still connected after 20 s.
fn wait_disconnected(
    app: &mut TestApp,
    what: &str,
) -> Option<wayland_client::backend::protocol::ProtocolError> {
    // Only reads (a write could fail first on the closed socket and hide the error event).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(err) = app.conn.protocol_error() {
            return Some(err);
        }
        if let Err(e) = app.conn.flush()
            && !matches!(&e, WaylandError::Io(io) if io.kind() == std::io::ErrorKind::WouldBlock)
        {
            return app.conn.protocol_error();
        }
        if let Some(guard) = app.queue.prepare_read() {
            let mut fds = [nix::poll::PollFd::new(
                guard.connection_fd(),
                nix::poll::PollFlags::POLLIN,
            )];
            if nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(100u16)).unwrap_or(0) > 0 {
                match guard.read() {
                    Ok(_) => {}
                    Err(WaylandError::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(_) => return app.conn.protocol_error(),
                }
            }
        }
        if app.queue.dispatch_pending(&mut app.state).is_err() {
            return app.conn.protocol_error();
        }
        assert!(
            Instant::now() < deadline,
            "{what}: the offending client is still connected after 20 s"
        );
    }
}

/// An offender's window, configured and acked but not drawn (so it is on top, blank).
fn offender(socket: &Path) -> TestApp {
    let mut app = TestApp::connect(socket);
    app.open_window("offender");
    app
}

/// A memfd-like file of `len` bytes (sparse: costs no memory until written).
fn sparse_file(len: u64) -> std::fs::File {
    let file = tempfile::tempfile().unwrap_or_else(|e| panic!("tempfile: {e}"));
    file.set_len(len)
        .unwrap_or_else(|e| panic!("sizing the file: {e}"));
    file
}

// ---------------------------------------------------------------------------------------------
// (a) commit flood

#[test]
fn commit_flood_disconnects_the_flooder_and_others_keep_getting_frames() {
    let (_dir, session) = start();
    let socket = session.socket_path.clone();
    // The flooder's window opens first; the witness is then in front.
    let flooder = offender(&socket);
    let mut witness = Witness::open(&socket);
    witness.expect_served(&session, "before the flood");

    let stop = Arc::new(AtomicBool::new(false));
    let flood = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let app = flooder;
            let Some(surface) = app.surface.clone() else {
                panic!("no surface")
            };
            let deadline = Instant::now() + Duration::from_secs(30);
            let mut sent: u64 = 0;
            let ended = loop {
                if stop.load(Ordering::Relaxed) || Instant::now() > deadline {
                    break None;
                }
                for _ in 0..256 {
                    surface.commit();
                }
                sent += 256;
                match app.conn.flush() {
                    Ok(()) => {}
                    Err(WaylandError::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) => break Some(e.to_string()),
                }
            };
            (sent, ended)
        })
    };
    // While the flood runs: the witness is still drawn and still gets input.
    witness.expect_served(&session, "during the commit flood");
    stop.store(true, Ordering::Relaxed);
    let (sent, ended) = flood
        .join()
        .unwrap_or_else(|_| panic!("flood thread panicked"));
    assert!(
        ended.is_some(),
        "the flooder sent {sent} commits and was never disconnected"
    );
    witness.expect_served(&session, "after the commit flood");
    session.stop().unwrap_or_else(|e| panic!("{e:#}"));
}

#[test]
fn frame_callbacks_of_a_hidden_window_do_not_pile_up() {
    let (_dir, session) = start();
    let socket = session.socket_path.clone();
    let mut hidden = offender(&socket);
    hidden.draw([0, 200, 0], 1);
    hidden.wait_for_frame();
    // The witness opens on top: `hidden` is no longer drawn, so its frame callbacks wait.
    let mut witness = Witness::open(&socket);
    witness.expect_served(&session, "witness on top");

    let qh = hidden.queue.handle();
    let Some(surface) = hidden.surface.clone() else {
        panic!("no surface")
    };
    let commits = 200u32;
    let before = hidden.state.frames_done;
    for _ in 0..commits {
        surface.frame(&qh, ());
        surface.commit();
    }
    hidden.roundtrip();
    hidden.roundtrip();
    let answered = hidden.state.frames_done - before;
    // All but a few were answered at once instead of being kept until the window shows again.
    let limit = cirrus_compositor::limits::MAX_PENDING_FRAME_CALLBACKS as u32;
    assert!(
        answered >= commits - limit,
        "{answered} of {commits} frame callbacks of a hidden window answered: they pile up"
    );
    witness.expect_served(&session, "after the callback pile");
    session.stop().unwrap_or_else(|e| panic!("{e:#}"));
}

// ---------------------------------------------------------------------------------------------
// (b) huge and lying buffers

/// Attaches a `width`×`height` XRGB buffer from a pool of `pool_size` bytes backed by a file of
/// `file_len` bytes, and commits.
fn attach_buffer(app: &mut TestApp, width: i32, height: i32, pool_size: i32, file_len: u64) {
    let qh = app.queue.handle();
    let file = sparse_file(file_len);
    let Some(shm) = app.state.shm.clone() else {
        panic!("no wl_shm")
    };
    let (Some(surface), Some(xdg)) = (app.surface.clone(), app.xdg_surface.clone()) else {
        panic!("no window")
    };
    let pool = shm.create_pool(file.as_fd(), pool_size, &qh, ());
    let buffer = pool.create_buffer(
        0,
        width,
        height,
        width * 4,
        wl_shm::Format::Xrgb8888,
        &qh,
        (),
    );
    if let Some(serial) = app.state.configure_serial {
        xdg.ack_configure(serial);
    }
    surface.attach(Some(&buffer), 0, 0);
    surface.damage_buffer(0, 0, width, height);
    surface.frame(&qh, ());
    surface.commit();
    let _ = app.conn.flush();
}

#[test]
fn a_huge_buffer_is_refused_with_an_error_naming_the_limit() {
    let (_dir, session) = start();
    let socket = session.socket_path.clone();
    let mut witness = Witness::open(&socket);
    witness.expect_served(&session, "before");
    let mut app = offender(&socket);
    let side = 16384;
    attach_buffer(
        &mut app,
        side,
        side,
        side * side * 4,
        (side * side * 4) as u64,
    );
    let err = wait_disconnected(&mut app, "16384x16384 buffer")
        .unwrap_or_else(|| panic!("disconnected without a protocol error"));
    assert!(
        err.message
            .contains(&cirrus_compositor::limits::MAX_BUFFER_SIDE.to_string()),
        "the error does not name the limit: {err:?}"
    );
    assert_eq!(err.object_interface, "wl_surface", "{err:?}");
    witness.expect_served(&session, "after the huge buffer");
    session.stop().unwrap_or_else(|e| panic!("{e:#}"));
}

#[test]
fn a_buffer_larger_than_its_pool_is_a_protocol_error() {
    let (_dir, session) = start();
    let socket = session.socket_path.clone();
    let mut witness = Witness::open(&socket);
    let mut app = offender(&socket);
    // 720x1370 needs ~3.9 MB; the pool says 4 KiB.
    attach_buffer(&mut app, 720, 1370, 4096, 4096);
    let err = wait_disconnected(&mut app, "buffer larger than its pool")
        .unwrap_or_else(|| panic!("disconnected without a protocol error"));
    assert_eq!(err.object_interface, "wl_shm_pool", "{err:?}");
    witness.expect_served(&session, "after the pool lie");
    session.stop().unwrap_or_else(|e| panic!("{e:#}"));
}

#[test]
fn a_pool_whose_file_is_shorter_than_claimed_does_not_crash_the_compositor() {
    let (_dir, session) = start();
    let socket = session.socket_path.clone();
    let mut witness = Witness::open(&socket);
    let mut app = offender(&socket);
    // The pool claims 8 MiB, the file behind it has 4 KiB: reading the buffer faults (SIGBUS).
    attach_buffer(&mut app, 720, 1370, 8 << 20, 4096);
    let err = wait_disconnected(&mut app, "pool file shorter than claimed")
        .unwrap_or_else(|| panic!("disconnected without a protocol error"));
    assert_eq!(err.object_interface, "wl_buffer", "{err:?}");
    witness.expect_served(&session, "after the short pool file");
    session.stop().unwrap_or_else(|e| panic!("{e:#}"));
}

// ---------------------------------------------------------------------------------------------
// (c) never acking the configure

#[test]
fn a_buffer_before_acking_the_configure_is_a_protocol_error() {
    let (_dir, session) = start();
    let socket = session.socket_path.clone();
    let mut witness = Witness::open(&socket);
    let mut app = offender(&socket);
    // Never ack: attach and commit a buffer straight away.
    app.state.configure_serial = None;
    attach_buffer(&mut app, 64, 64, 64 * 64 * 4, 64 * 64 * 4);
    let err = wait_disconnected(&mut app, "buffer without ack_configure")
        .unwrap_or_else(|| panic!("disconnected without a protocol error"));
    assert_eq!(err.object_interface, "xdg_surface", "{err:?}");
    witness.expect_served(&session, "after the unacked buffer");
    session.stop().unwrap_or_else(|e| panic!("{e:#}"));
}

#[test]
fn a_window_that_never_acks_does_not_lock_the_user_out() {
    let (_dir, session) = start();
    let socket = session.socket_path.clone();
    let mut witness = Witness::open(&socket);
    witness.expect_served(&session, "before");
    // Opens a window, gets its configure, never answers; stays connected (a hung app).
    let mut silent = TestApp::connect(&socket);
    silent.open_window("silent");
    silent.roundtrip();
    // The user switches back through the app switcher: the witness is served again while the
    // silent app is still there.
    swipe_up_and_hold(&session);
    let shell = cirrus_ui::shell::ShellLayout::new(W, H);
    let card = cirrus_compositor::overview::OverviewLayout::new(shell.home, shell.scale).card(1);
    let scale = shell.scale as f64;
    session
        .tap(
            Pointing::Pointer,
            (card.x as f64 + card.width as f64 / 2.0) / scale,
            (card.y as f64 + card.height as f64 / 2.0) / scale,
        )
        .unwrap_or_else(|e| panic!("tap: {e:#}"));
    witness.expect_served(&session, "switched back past a window that never acks");
    silent.roundtrip();
    drop(silent);
    witness.expect_served(&session, "after the silent app left");
    session.stop().unwrap_or_else(|e| panic!("{e:#}"));
}

/// Swipe up from the bottom edge and rest before letting go: the app switcher.
fn swipe_up_and_hold(session: &HeadlessSession) {
    use cirrus_compositor::InjectedInput;
    let (w, h) = (W as f64 / 2.0, H as f64 / 2.0);
    let p = Pointing::Pointer;
    let send = |i| session.input(i).unwrap_or_else(|e| panic!("input: {e:#}"));
    send(InjectedInput::Down {
        pointing: p,
        x: w / 2.0,
        y: h - 4.0,
    });
    for step in 1..=8 {
        send(InjectedInput::Motion {
            pointing: p,
            x: w / 2.0,
            y: h - 4.0 - step as f64 * 30.0,
        });
    }
    std::thread::sleep(Duration::from_millis(500));
    send(InjectedInput::Up { pointing: p });
}

// ---------------------------------------------------------------------------------------------
// (d) dying mid-frame

#[test]
fn a_client_dying_after_attach_before_commit_is_cleaned_up() {
    let (_dir, session) = start();
    let socket = session.socket_path.clone();
    let mut witness = Witness::open(&socket);
    let mut app = offender(&socket);
    app.draw([200, 0, 0], 1);
    app.wait_for_frame();
    // Next frame: attach, damage, frame callback … and exit before the commit.
    let qh = app.queue.handle();
    let file = sparse_file(64 * 64 * 4);
    let Some(shm) = app.state.shm.clone() else {
        panic!("no wl_shm")
    };
    let Some(surface) = app.surface.clone() else {
        panic!("no surface")
    };
    let pool = shm.create_pool(file.as_fd(), 64 * 64 * 4, &qh, ());
    let buffer = pool.create_buffer(0, 64, 64, 256, wl_shm::Format::Xrgb8888, &qh, ());
    surface.attach(Some(&buffer), 0, 0);
    surface.damage_buffer(0, 0, 64, 64);
    surface.frame(&qh, ());
    let _ = app.conn.flush();
    drop(app);
    witness.expect_served(&session, "after a client died before its commit");
    session.stop().unwrap_or_else(|e| panic!("{e:#}"));
}

#[test]
fn a_client_dying_with_frame_callbacks_pending_is_cleaned_up() {
    let (_dir, session) = start();
    let socket = session.socket_path.clone();
    let mut witness = Witness::open(&socket);
    for round in 0..3 {
        let mut app = offender(&socket);
        // Commits a frame (with its callback pending in the compositor) and vanishes at once.
        app.draw([0, 0, 200], 1);
        let qh = app.queue.handle();
        if let Some(surface) = app.surface.clone() {
            surface.frame(&qh, ());
            surface.commit();
        }
        let _ = app.conn.flush();
        drop(app);
        witness.expect_served(&session, &format!("after dying client {round}"));
    }
    session.stop().unwrap_or_else(|e| panic!("{e:#}"));
}

// ---------------------------------------------------------------------------------------------
// (e) protocol errors

#[test]
fn an_invalid_buffer_scale_disconnects_only_the_offender() {
    let (_dir, session) = start();
    let socket = session.socket_path.clone();
    let mut witness = Witness::open(&socket);
    let mut app = offender(&socket);
    let Some(surface) = app.surface.clone() else {
        panic!("no surface")
    };
    surface.set_buffer_scale(0);
    surface.commit();
    let err = wait_disconnected(&mut app, "buffer scale 0")
        .unwrap_or_else(|| panic!("disconnected without a protocol error"));
    assert_eq!(err.object_interface, "wl_surface", "{err:?}");
    witness.expect_served(&session, "after the invalid scale");
    session.stop().unwrap_or_else(|e| panic!("{e:#}"));
}

#[test]
fn destroying_objects_in_the_wrong_order_disconnects_only_the_offender() {
    let (_dir, session) = start();
    let socket = session.socket_path.clone();
    let mut witness = Witness::open(&socket);
    let mut app = offender(&socket);
    app.draw([10, 10, 10], 1);
    // xdg_surface before its xdg_toplevel: a protocol error.
    if let Some(xdg) = app.xdg_surface.take() {
        xdg.destroy();
    }
    let err = wait_disconnected(&mut app, "xdg_surface destroyed before its toplevel")
        .unwrap_or_else(|| panic!("disconnected without a protocol error"));
    assert_eq!(err.object_interface, "xdg_wm_base", "{err:?}");
    witness.expect_served(&session, "after the wrong destruction order");
    session.stop().unwrap_or_else(|e| panic!("{e:#}"));
}

#[test]
fn garbage_on_the_socket_disconnects_only_the_sender() {
    let (_dir, session) = start();
    let socket = session.socket_path.clone();
    let mut witness = Witness::open(&socket);
    // A raw connection: a request to wl_display (object 1) with opcode 77, then nonsense.
    let mut raw = UnixStream::connect(&socket).unwrap_or_else(|e| panic!("{e}"));
    let mut msg = Vec::new();
    msg.extend_from_slice(&1u32.to_ne_bytes());
    msg.extend_from_slice(&((12u32 << 16) | 77).to_ne_bytes());
    msg.extend_from_slice(&0xdead_beefu32.to_ne_bytes());
    msg.extend_from_slice(&[0xff; 64]);
    raw.write_all(&msg).unwrap_or_else(|e| panic!("{e}"));
    raw.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap_or_else(|e| panic!("{e}"));
    // The compositor closes the connection (read_to_end returns at EOF, not at the timeout).
    let mut reply = Vec::new();
    let read = std::io::Read::read_to_end(&mut raw, &mut reply);
    assert!(
        read.is_ok(),
        "the connection that sent garbage is still open: {read:?}"
    );
    witness.expect_served(&session, "after garbage on a socket");
    session.stop().unwrap_or_else(|e| panic!("{e:#}"));
}
