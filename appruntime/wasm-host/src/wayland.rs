//! The Wayland display: the app's window is an xdg-toplevel (title = the app's label, app id = the
//! app's id) on the compositor, its frames go through wl_shm (two buffers, paced by frame
//! callbacks), and pointer, touch and keyboard input come back as the app's `events`.
//!
//! Sizes the app sees are buffer pixels: the configured (logical) size times the output's scale,
//! so an app draws at the screen's resolution; input positions are scaled the same way.

use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use smithay_client_toolkit::compositor::{CompositorHandler, CompositorState, FrameCallbackData};
use smithay_client_toolkit::dispatch2::Dispatch2;
use smithay_client_toolkit::output::{OutputHandler, OutputState};
use smithay_client_toolkit::reexports::csd_frame::WindowState;
use smithay_client_toolkit::registry::{ProvidesRegistryState, RegistryState};
use smithay_client_toolkit::seat::pointer::{PointerEvent, PointerEventKind, PointerHandler};
use smithay_client_toolkit::seat::touch::TouchHandler;
use smithay_client_toolkit::seat::{Capability, SeatHandler, SeatState};
use smithay_client_toolkit::shell::WaylandSurface;
use smithay_client_toolkit::shell::xdg::XdgShell;
use smithay_client_toolkit::shell::xdg::window::{
    Window, WindowConfigure, WindowDecorations, WindowHandler,
};
use smithay_client_toolkit::shm::slot::{Buffer, SlotPool};
use smithay_client_toolkit::shm::{Shm, ShmHandler};
use smithay_client_toolkit::{delegate_dispatch2, delegate_registry, registry_handlers};
use wayland_client::globals::registry_queue_init;
use wayland_client::protocol::{
    wl_keyboard, wl_output, wl_pointer, wl_seat, wl_shm, wl_surface, wl_touch,
};
use wayland_client::{Connection, EventQueue, QueueHandle, WEnum};

use crate::host::exports::cirrus::app::events::PointerPhase;

/// Linux evdev code of the left mouse button (`BTN_LEFT`).
const BTN_LEFT: u32 = 0x110;
/// Size asked for when the compositor leaves it to us (logical pixels; a phone's portrait).
const DEFAULT_SIZE: (u32, u32) = (360, 640);

/// What the window says to the app.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum WindowEvent {
    /// The surface is now this many buffer pixels.
    Resize(u32, u32),
    /// Pointer or touch (one finger), in buffer pixels.
    Pointer(PointerPhase, f64, f64),
    /// A key by evdev code.
    Key(u32, bool),
    /// The compositor suspended (true) or un-suspended (false) the window: not visible at all.
    Suspended(bool),
    /// The user closed the window.
    Close,
}

/// The window and its connection.
pub struct WaylandWindow {
    queue: EventQueue<Client>,
    client: Client,
}

/// What the event handlers see.
struct Client {
    registry: RegistryState,
    seats: SeatState,
    outputs: OutputState,
    shm: Shm,
    window: Window,
    pool: SlotPool,
    buffers: Vec<Buffer>,
    /// Logical size from the last configure (None before the first).
    logical: Option<(u32, u32)>,
    scale: i32,
    suspended: bool,
    /// A frame callback is outstanding: do not draw until it is done.
    frame_pending: bool,
    /// The app's latest frame not yet committed (held while a frame callback is outstanding).
    pending_frame: Option<(u32, u32, Vec<u8>)>,
    events: Vec<WindowEvent>,
    pointer: Option<wl_pointer::WlPointer>,
    pointer_down: bool,
    touch: Option<wl_touch::WlTouch>,
    /// The touch point the app follows (one finger).
    touch_id: Option<i32>,
    /// Where that finger was last seen (wl_touch.up carries no position).
    last_touch: (f64, f64),
    keyboard: Option<wl_keyboard::WlKeyboard>,
}

/// Connects to the compositor at `display` (a socket path) or, without it, `$WAYLAND_DISPLAY`.
fn connect(display: Option<&Path>) -> Result<Connection> {
    match display {
        Some(path) => {
            let stream = UnixStream::connect(path)
                .with_context(|| format!("connecting to the compositor at {}", path.display()))?;
            Connection::from_socket(stream)
                .with_context(|| format!("starting Wayland on {}", path.display()))
        }
        None => Connection::connect_to_env()
            .context("connecting to the compositor named by WAYLAND_DISPLAY"),
    }
}

impl WaylandWindow {
    /// Connects, opens the toplevel and waits for its first configure.
    pub fn open(display: Option<&Path>, title: &str, app_id: &str) -> Result<WaylandWindow> {
        let conn = connect(display)?;
        let (globals, mut queue) =
            registry_queue_init::<Client>(&conn).context("reading the compositor's globals")?;
        let qh = queue.handle();
        let compositor = CompositorState::bind(&globals, &qh)
            .map_err(|e| anyhow!("the compositor has no wl_compositor: {e}"))?;
        let xdg = XdgShell::bind(&globals, &qh)
            .map_err(|e| anyhow!("the compositor has no xdg_wm_base: {e}"))?;
        let shm =
            Shm::bind(&globals, &qh).map_err(|e| anyhow!("the compositor has no wl_shm: {e}"))?;
        let surface = compositor.create_surface(&qh);
        let window = xdg.create_window(surface, WindowDecorations::None, &qh);
        window.set_title(title);
        window.set_app_id(app_id);
        let (w, h) = DEFAULT_SIZE;
        let pool = SlotPool::new((w * h * 4) as usize, &shm).context("creating the shm pool")?;
        let mut client = Client {
            registry: RegistryState::new(&globals),
            seats: SeatState::new(&globals, &qh),
            outputs: OutputState::new(&globals, &qh),
            shm,
            window,
            pool,
            buffers: Vec::new(),
            logical: None,
            scale: 1,
            suspended: false,
            frame_pending: false,
            pending_frame: None,
            events: Vec::new(),
            pointer: None,
            pointer_down: false,
            touch: None,
            touch_id: None,
            last_touch: (0.0, 0.0),
            keyboard: None,
        };
        // Learn the outputs' scale before the first configure, so the first frame is already
        // drawn at the screen's resolution (a phone has one output).
        queue
            .roundtrip(&mut client)
            .context("talking to the compositor")?;
        client.scale = client
            .outputs
            .outputs()
            .filter_map(|o| client.outputs.info(&o).map(|i| i.scale_factor))
            .max()
            .unwrap_or(1)
            .max(1);
        // The initial commit without a buffer asks for the first configure.
        client.window.commit();
        let mut window = WaylandWindow { queue, client };
        for _ in 0..1000 {
            if window.client.logical.is_some() {
                window.client.events.clear();
                return Ok(window);
            }
            window.dispatch(Duration::from_millis(10))?;
        }
        bail!("the compositor did not configure the window in 10 s")
    }

    /// The surface size in buffer pixels.
    pub fn size(&self) -> (u32, u32) {
        let (w, h) = self.client.logical.unwrap_or(DEFAULT_SIZE);
        let s = self.client.scale.max(1) as u32;
        (w * s, h * s)
    }

    /// Whether a frame drawn now would be shown soon (no frame callback outstanding, not
    /// suspended, nothing waiting to be committed).
    pub fn ready_for_frame(&self) -> bool {
        !self.client.frame_pending && !self.client.suspended && self.client.pending_frame.is_none()
    }

    /// Sends requests, waits up to `timeout` for events and handles them.
    pub fn dispatch(&mut self, timeout: Duration) -> Result<()> {
        self.queue
            .flush()
            .context("the compositor connection failed")?;
        self.queue
            .dispatch_pending(&mut self.client)
            .context("handling Wayland events")?;
        if let Some(guard) = self.queue.prepare_read() {
            let readable = {
                let fd = guard.connection_fd();
                let mut fds = [nix::poll::PollFd::new(
                    fd.as_fd(),
                    nix::poll::PollFlags::POLLIN,
                )];
                let ms = timeout.as_millis().min(u128::from(u16::MAX)) as u16;
                match nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(ms)) {
                    Ok(n) => n > 0,
                    Err(nix::errno::Errno::EINTR) => false,
                    Err(e) => return Err(anyhow!("waiting for the compositor: {e}")),
                }
            };
            if readable {
                match guard.read() {
                    Ok(_) => {}
                    Err(wayland_client::backend::WaylandError::Io(e))
                        if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(anyhow!("the compositor connection failed: {e}")),
                }
            }
        }
        self.queue
            .dispatch_pending(&mut self.client)
            .context("handling Wayland events")?;
        self.commit_pending();
        self.queue
            .flush()
            .context("the compositor connection failed")?;
        Ok(())
    }

    /// Events since the last call.
    pub fn take_events(&mut self) -> Vec<WindowEvent> {
        std::mem::take(&mut self.client.events)
    }

    /// Shows an app frame (RGBA, premultiplied) as soon as the compositor is ready for one.
    pub fn present(&mut self, frame: (u32, u32, Vec<u8>)) {
        self.client.pending_frame = Some(frame);
        self.commit_pending();
    }

    /// Whether the app's frame given to `present` has been committed.
    pub fn committed(&self) -> bool {
        self.client.pending_frame.is_none()
    }

    fn commit_pending(&mut self) {
        if self.client.frame_pending || self.client.logical.is_none() {
            return;
        }
        let Some(frame) = self.client.pending_frame.take() else {
            return;
        };
        if let Err(frame) = self.client.draw(&self.queue.handle(), frame) {
            // Both buffers are still with the compositor: try again after its next release.
            self.client.pending_frame = Some(frame);
        }
    }
}

/// Copies an RGBA frame into an ARGB8888 (little-endian B, G, R, A) buffer of `bw`×`bh`, clipped
/// to the buffer; what the frame does not cover is black.
pub fn rgba_to_argb8888(frame: &(u32, u32, Vec<u8>), canvas: &mut [u8], bw: u32, bh: u32) {
    let (fw, fh, pixels) = (frame.0 as usize, frame.1 as usize, &frame.2);
    let (bw, bh) = (bw as usize, bh as usize);
    for y in 0..bh {
        let row = &mut canvas[y * bw * 4..(y + 1) * bw * 4];
        if y >= fh {
            row.fill(0);
            continue;
        }
        let n = fw.min(bw);
        let src = &pixels[y * fw * 4..y * fw * 4 + n * 4];
        for (d, s) in row[..n * 4].chunks_exact_mut(4).zip(src.chunks_exact(4)) {
            d[0] = s[2];
            d[1] = s[1];
            d[2] = s[0];
            d[3] = s[3];
        }
        row[n * 4..].fill(0);
    }
}

/// Whether a configure's states mean the window is suspended (not visible at all).
pub fn is_suspended(state: WindowState) -> bool {
    state.contains(WindowState::SUSPENDED)
}

impl Client {
    /// Draws `frame` into a free buffer and commits it with a frame callback; gives the frame back
    /// if no buffer is free.
    fn draw(
        &mut self,
        qh: &QueueHandle<Client>,
        frame: (u32, u32, Vec<u8>),
    ) -> Result<(), (u32, u32, Vec<u8>)> {
        let (lw, lh) = self.logical.unwrap_or(DEFAULT_SIZE);
        let scale = self.scale.max(1);
        let (bw, bh) = (lw * scale as u32, lh * scale as u32);
        let stride = bw as i32 * 4;
        // Double buffering: reuse one of two buffers of the right size the compositor released.
        self.buffers
            .retain(|b| b.height() == bh as i32 && b.stride() == stride);
        let free = self
            .buffers
            .iter()
            .position(|b| b.canvas(&mut self.pool).is_some());
        let index = match free {
            Some(i) => i,
            None if self.buffers.len() < 2 => {
                match self.pool.create_buffer(
                    bw as i32,
                    bh as i32,
                    stride,
                    wl_shm::Format::Argb8888,
                ) {
                    Ok((buffer, _)) => {
                        self.buffers.push(buffer);
                        self.buffers.len() - 1
                    }
                    Err(err) => {
                        tracing::warn!("no shm buffer of {bw}x{bh}: {err}");
                        return Err(frame);
                    }
                }
            }
            None => return Err(frame),
        };
        let buffer = &self.buffers[index];
        let Some(canvas) = buffer.canvas(&mut self.pool) else {
            return Err(frame);
        };
        rgba_to_argb8888(&frame, canvas, bw, bh);
        let surface = self.window.wl_surface().clone();
        surface.set_buffer_scale(scale);
        surface.damage_buffer(0, 0, bw as i32, bh as i32);
        surface.frame(qh, FrameCallbackData(surface.clone()));
        if let Err(err) = buffer.attach_to(&surface) {
            tracing::warn!("attaching the frame: {err}");
            return Err(frame);
        }
        self.window.commit();
        self.frame_pending = true;
        Ok(())
    }

    fn set_scale(&mut self, scale: i32) {
        let scale = scale.max(1);
        if scale != self.scale {
            self.scale = scale;
            if let Some((w, h)) = self.logical {
                let s = scale as u32;
                self.events.push(WindowEvent::Resize(w * s, h * s));
            }
        }
    }

    fn to_buffer(&self, (x, y): (f64, f64)) -> (f64, f64) {
        let s = f64::from(self.scale.max(1));
        (x * s, y * s)
    }
}

impl CompositorHandler for Client {
    fn scale_factor_changed(
        &mut self,
        _: &Connection,
        _: &QueueHandle<Self>,
        _: &wl_surface::WlSurface,
        factor: i32,
    ) {
        self.set_scale(factor);
    }

    fn transform_changed(
        &mut self,
        _: &Connection,
        _: &QueueHandle<Self>,
        _: &wl_surface::WlSurface,
        _: wl_output::Transform,
    ) {
    }

    fn frame(&mut self, _: &Connection, _: &QueueHandle<Self>, _: &wl_surface::WlSurface, _: u32) {
        self.frame_pending = false;
    }

    fn surface_enter(
        &mut self,
        _: &Connection,
        _: &QueueHandle<Self>,
        _: &wl_surface::WlSurface,
        output: &wl_output::WlOutput,
    ) {
        // Compositors that do not send wl_surface.preferred_buffer_scale: the output's scale.
        if let Some(info) = self.outputs.info(output) {
            self.set_scale(info.scale_factor);
        }
    }

    fn surface_leave(
        &mut self,
        _: &Connection,
        _: &QueueHandle<Self>,
        _: &wl_surface::WlSurface,
        _: &wl_output::WlOutput,
    ) {
    }
}

impl OutputHandler for Client {
    fn output_state(&mut self) -> &mut OutputState {
        &mut self.outputs
    }
    fn new_output(&mut self, _: &Connection, _: &QueueHandle<Self>, _: wl_output::WlOutput) {}
    fn update_output(&mut self, _: &Connection, _: &QueueHandle<Self>, _: wl_output::WlOutput) {}
    fn output_destroyed(&mut self, _: &Connection, _: &QueueHandle<Self>, _: wl_output::WlOutput) {}
}

impl WindowHandler for Client {
    fn request_close(&mut self, _: &Connection, _: &QueueHandle<Self>, _: &Window) {
        self.events.push(WindowEvent::Close);
    }

    fn configure(
        &mut self,
        _: &Connection,
        _: &QueueHandle<Self>,
        _: &Window,
        configure: WindowConfigure,
        _: u32,
    ) {
        // The compositor's size (a phone maximises below its status bar), else its bounds, else
        // a portrait default.
        let bounds = configure.suggested_bounds.filter(|(w, h)| *w > 0 && *h > 0);
        let w = configure
            .new_size
            .0
            .map(|v| v.get())
            .or(bounds.map(|b| b.0))
            .unwrap_or(DEFAULT_SIZE.0)
            .min(crate::host::MAX_SIDE);
        let h = configure
            .new_size
            .1
            .map(|v| v.get())
            .or(bounds.map(|b| b.1))
            .unwrap_or(DEFAULT_SIZE.1)
            .min(crate::host::MAX_SIDE);
        if self.logical != Some((w, h)) {
            self.logical = Some((w, h));
            let s = self.scale.max(1) as u32;
            self.events.push(WindowEvent::Resize(w * s, h * s));
        }
        let suspended = is_suspended(configure.state);
        if suspended != self.suspended {
            self.suspended = suspended;
            self.events.push(WindowEvent::Suspended(suspended));
        }
    }
}

impl SeatHandler for Client {
    fn seat_state(&mut self) -> &mut SeatState {
        &mut self.seats
    }
    fn new_seat(&mut self, _: &Connection, _: &QueueHandle<Self>, _: wl_seat::WlSeat) {}

    fn new_capability(
        &mut self,
        _: &Connection,
        qh: &QueueHandle<Self>,
        seat: wl_seat::WlSeat,
        capability: Capability,
    ) {
        match capability {
            Capability::Pointer if self.pointer.is_none() => {
                match self.seats.get_pointer(qh, &seat) {
                    Ok(p) => self.pointer = Some(p),
                    Err(e) => tracing::warn!("no pointer: {e}"),
                }
            }
            Capability::Touch if self.touch.is_none() => match self.seats.get_touch(qh, &seat) {
                Ok(t) => self.touch = Some(t),
                Err(e) => tracing::warn!("no touch: {e}"),
            },
            Capability::Keyboard if self.keyboard.is_none() => {
                // Raw wl_keyboard: the app gets evdev codes, which is what wl_keyboard.key carries.
                self.keyboard = Some(seat.get_keyboard(qh, KeyboardData));
            }
            _ => {}
        }
    }

    fn remove_capability(
        &mut self,
        _: &Connection,
        _: &QueueHandle<Self>,
        _: wl_seat::WlSeat,
        capability: Capability,
    ) {
        match capability {
            Capability::Pointer => {
                if let Some(p) = self.pointer.take() {
                    p.release();
                }
            }
            Capability::Touch => {
                if let Some(t) = self.touch.take() {
                    t.release();
                }
            }
            Capability::Keyboard => {
                if let Some(k) = self.keyboard.take() {
                    k.release();
                }
            }
            _ => {}
        }
    }

    fn remove_seat(&mut self, _: &Connection, _: &QueueHandle<Self>, _: wl_seat::WlSeat) {}
}

impl PointerHandler for Client {
    fn pointer_frame(
        &mut self,
        _: &Connection,
        _: &QueueHandle<Self>,
        _: &wl_pointer::WlPointer,
        events: &[PointerEvent],
    ) {
        for event in events {
            if &event.surface != self.window.wl_surface() {
                continue;
            }
            let (x, y) = self.to_buffer(event.position);
            let phase = match event.kind {
                PointerEventKind::Press { button, .. } if button == BTN_LEFT => {
                    self.pointer_down = true;
                    PointerPhase::Down
                }
                PointerEventKind::Motion { .. } if self.pointer_down => PointerPhase::Move,
                PointerEventKind::Release { button, .. } if button == BTN_LEFT => {
                    if !std::mem::replace(&mut self.pointer_down, false) {
                        continue;
                    }
                    PointerPhase::Up
                }
                PointerEventKind::Leave { .. } if self.pointer_down => {
                    self.pointer_down = false;
                    PointerPhase::Cancel
                }
                _ => continue,
            };
            self.events.push(WindowEvent::Pointer(phase, x, y));
        }
    }
}

impl TouchHandler for Client {
    fn down(
        &mut self,
        _: &Connection,
        _: &QueueHandle<Self>,
        _: &wl_touch::WlTouch,
        _: u32,
        _: u32,
        surface: wl_surface::WlSurface,
        id: i32,
        position: (f64, f64),
    ) {
        if &surface != self.window.wl_surface() || self.touch_id.is_some() {
            return;
        }
        self.touch_id = Some(id);
        let (x, y) = self.to_buffer(position);
        self.last_touch = (x, y);
        self.events
            .push(WindowEvent::Pointer(PointerPhase::Down, x, y));
    }

    fn up(
        &mut self,
        _: &Connection,
        _: &QueueHandle<Self>,
        _: &wl_touch::WlTouch,
        _: u32,
        _: u32,
        id: i32,
    ) {
        if self.touch_id != Some(id) {
            return;
        }
        self.touch_id = None;
        // wl_touch.up has no position: the last one the app saw.
        let (x, y) = self.last_touch;
        self.events
            .push(WindowEvent::Pointer(PointerPhase::Up, x, y));
    }

    fn motion(
        &mut self,
        _: &Connection,
        _: &QueueHandle<Self>,
        _: &wl_touch::WlTouch,
        _: u32,
        id: i32,
        position: (f64, f64),
    ) {
        if self.touch_id != Some(id) {
            return;
        }
        let (x, y) = self.to_buffer(position);
        self.last_touch = (x, y);
        self.events
            .push(WindowEvent::Pointer(PointerPhase::Move, x, y));
    }

    fn shape(
        &mut self,
        _: &Connection,
        _: &QueueHandle<Self>,
        _: &wl_touch::WlTouch,
        _: i32,
        _: f64,
        _: f64,
    ) {
    }

    fn orientation(
        &mut self,
        _: &Connection,
        _: &QueueHandle<Self>,
        _: &wl_touch::WlTouch,
        _: i32,
        _: f64,
    ) {
    }

    fn cancel(&mut self, _: &Connection, _: &QueueHandle<Self>, _: &wl_touch::WlTouch) {
        if self.touch_id.take().is_some() {
            let (x, y) = self.last_touch;
            self.events
                .push(WindowEvent::Pointer(PointerPhase::Cancel, x, y));
        }
    }
}

/// User data of our raw wl_keyboard.
struct KeyboardData;

impl Dispatch2<wl_keyboard::WlKeyboard, Client> for KeyboardData {
    fn event(
        &self,
        client: &mut Client,
        _: &wl_keyboard::WlKeyboard,
        event: wl_keyboard::Event,
        _: &Connection,
        _: &QueueHandle<Client>,
    ) {
        // The keymap's fd is closed when the event is dropped; evdev codes need no keymap.
        if let wl_keyboard::Event::Key { key, state, .. } = event {
            let pressed = matches!(state, WEnum::Value(wl_keyboard::KeyState::Pressed));
            client.events.push(WindowEvent::Key(key, pressed));
        }
    }
}

impl ShmHandler for Client {
    fn shm_state(&mut self) -> &mut Shm {
        &mut self.shm
    }
}

impl ProvidesRegistryState for Client {
    fn registry(&mut self) -> &mut RegistryState {
        &mut self.registry
    }
    registry_handlers![OutputState, SeatState];
}

delegate_registry!(Client);
delegate_dispatch2!(Client);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rgba_becomes_bgra_and_is_clipped_and_padded() {
        // A 2x1 frame into a 3x2 buffer: red, green; the rest black.
        let frame = (2, 1, vec![255, 0, 0, 255, 0, 255, 0, 128]);
        let mut canvas = vec![9u8; 3 * 2 * 4];
        rgba_to_argb8888(&frame, &mut canvas, 3, 2);
        assert_eq!(&canvas[0..4], &[0, 0, 255, 255]);
        assert_eq!(&canvas[4..8], &[0, 255, 0, 128]);
        assert_eq!(&canvas[8..12], &[0, 0, 0, 0]);
        assert!(canvas[12..].iter().all(|b| *b == 0));
        // A larger frame is clipped to the buffer.
        let big = (4, 3, vec![7u8; 4 * 3 * 4]);
        let mut canvas = vec![0u8; 2 * 2 * 4];
        rgba_to_argb8888(&big, &mut canvas, 2, 2);
        assert!(canvas.iter().all(|b| *b == 7));
    }

    #[test]
    fn suspended_state_is_read_from_the_configure() {
        assert!(is_suspended(
            WindowState::SUSPENDED | WindowState::MAXIMIZED
        ));
        assert!(!is_suspended(
            WindowState::ACTIVATED | WindowState::MAXIMIZED
        ));
    }
}
