//! [`State`]: everything the compositor knows, and the phone window policy.
//!
//! Window policy (phone): every xdg toplevel is shown maximised in the area below the status bar;
//! the most recently opened or activated one is on top, has keyboard focus and is the only one
//! drawn. When it closes, the one below it comes back; with none left, the home screen shows.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Child;
use std::time::Instant;

use smithay::desktop::{PopupManager, Space, Window, WindowSurfaceType};
use smithay::input::{Seat, SeatState};
use smithay::output::Output;
use smithay::reexports::calloop::LoopSignal;
use smithay::reexports::wayland_protocols::xdg::shell::server::xdg_toplevel;
use smithay::reexports::wayland_server::DisplayHandle;
use smithay::reexports::wayland_server::backend::{ClientData, ClientId, DisconnectReason};
use smithay::reexports::wayland_server::protocol::wl_surface::WlSurface;
use smithay::utils::{Logical, Point, Rectangle, SERIAL_COUNTER, Size};
use smithay::wayland::compositor::{CompositorClientState, CompositorState};
use smithay::wayland::output::OutputManagerState;
use smithay::wayland::selection::data_device::DataDeviceState;
use smithay::wayland::shell::xdg::{ToplevelSurface, XdgShellState};
use smithay::wayland::shm::ShmState;

use crate::apps::AppEntry;
use crate::input::Contact;
use crate::shell::Shell;

/// Per-client data smithay needs.
#[derive(Default)]
pub struct ClientState {
    pub compositor_state: CompositorClientState,
    /// May bind input-method-v2 and virtual-keyboard-v1, i.e. type into other apps (see
    /// [`crate::handlers::input_method`] for who is trusted).
    pub may_inject_input: bool,
}

impl ClientState {
    /// The state of a client connecting over `stream`: trusted to inject input when its peer
    /// credentials say so.
    pub fn for_stream(stream: &std::os::unix::net::UnixStream) -> Self {
        let own_uid = nix::unistd::geteuid().as_raw();
        let may_inject_input =
            nix::sys::socket::getsockopt(stream, nix::sys::socket::sockopt::PeerCredentials)
                .map(|cred| crate::handlers::input_method::may_inject_input(cred.uid(), own_uid))
                .unwrap_or(false);
        Self {
            compositor_state: CompositorClientState::default(),
            may_inject_input,
        }
    }

    /// The state of the compositor's own built-in keyboard client.
    pub fn builtin() -> Self {
        Self {
            compositor_state: CompositorClientState::default(),
            may_inject_input: true,
        }
    }
}

impl ClientData for ClientState {
    fn initialized(&self, client_id: ClientId) {
        tracing::debug!(?client_id, "client connected");
    }

    fn disconnected(&self, client_id: ClientId, reason: DisconnectReason) {
        match reason {
            DisconnectReason::ProtocolError(err) => {
                tracing::warn!(?client_id, error = %err.message, code = err.code, object = %err.object_interface, "client disconnected for a protocol error")
            }
            DisconnectReason::ConnectionClosed => {
                tracing::debug!(?client_id, "client disconnected")
            }
        }
    }
}

/// The compositor's whole state; the calloop event loop's data.
pub struct State {
    pub display_handle: DisplayHandle,
    pub loop_signal: LoopSignal,
    pub started: Instant,

    pub compositor_state: CompositorState,
    pub xdg_shell_state: XdgShellState,
    pub xdg_decoration_state: smithay::wayland::shell::xdg::decoration::XdgDecorationState,
    /// The smaller protocols (viewporter, fractional scale, presentation time, …).
    pub protocols: crate::handlers::protocols::Protocols,
    /// text-input-v3, input-method-v2, virtual-keyboard-v1.
    pub text_input_protocols: crate::handlers::input_method::TextInputProtocols,
    pub shm_state: ShmState,
    pub output_manager_state: OutputManagerState,
    pub seat_state: SeatState<State>,
    pub data_device_state: DataDeviceState,
    pub popups: PopupManager,
    pub seat: Seat<State>,

    /// Windows, stacked: the last mapped/raised is on top.
    pub space: Space<Window>,
    pub shell: Shell,
    pub output: Output,

    /// Apps on the launcher.
    pub apps: Vec<AppEntry>,
    /// The launcher page shown.
    pub launcher_page: usize,
    /// The home screen is shown over (in place of) the app windows.
    pub showing_home: bool,
    /// The app switcher is shown.
    pub overview: bool,
    /// The lock screen is shown: no app sees input until the user unlocks.
    pub locked: bool,
    /// Fingers (and the held pointer button, slot `None`) currently down.
    pub contacts: HashMap<Option<u32>, Contact>,
    /// Last pointer/touch position, logical.
    pub pointer_location: Point<f64, Logical>,
    /// Apps this compositor started, reaped when they exit.
    pub children: Vec<Child>,
    /// The Wayland socket apps are started with.
    pub socket_path: PathBuf,

    /// Something changed on screen since the last frame.
    pub needs_redraw: bool,
    /// Open notifications (the banner shows the newest) and where their signals go.
    pub notifications: crate::notifications::Store,
    pub notification_signals: Option<std::sync::mpsc::Sender<crate::notifications::Signal>>,
    /// Set once the first frame has reached the screen.
    pub first_frame_done: bool,
    /// The on-screen keyboard the shell draws, and the input method it types through.
    pub osk: crate::osk::OnScreenKeyboard,
    pub builtin_input_method: Option<crate::builtin_input_method::BuiltinInputMethod>,
}

impl State {
    /// The output's scale (physical pixels per logical pixel).
    pub fn output_scale(&self) -> f64 {
        self.output.current_scale().fractional_scale()
    }

    /// The area apps get, in logical coordinates: everything below the status bar, and above the
    /// on-screen keyboard while it is up.
    pub fn app_area(&self) -> Rectangle<i32, Logical> {
        let scale = self.output_scale();
        let mut home = self.shell.layout().home;
        if self.osk.visible() {
            let top = self.osk.layout().panel.y;
            home.height = (top - home.y).max(1) as u32;
        }
        let loc: Point<i32, Logical> = Point::from((
            (home.x as f64 / scale).round() as i32,
            (home.y as f64 / scale).round() as i32,
        ));
        let size: Size<i32, Logical> = Size::from((
            (home.width as f64 / scale).floor() as i32,
            (home.height as f64 / scale).floor() as i32,
        ));
        Rectangle::new(loc, size)
    }

    /// Sets the pending state of a toplevel to the phone layout: maximised, tiled on every edge
    /// (so clients draw no shadows or rounded corners), activated, sized to the app area.
    pub fn apply_phone_layout(&self, toplevel: &ToplevelSurface) {
        let area = self.app_area();
        toplevel.with_pending_state(|state| {
            state.size = Some(area.size);
            state.bounds = Some(area.size);
            state.states.set(xdg_toplevel::State::Maximized);
            state.states.set(xdg_toplevel::State::Activated);
            state.states.set(xdg_toplevel::State::TiledLeft);
            state.states.set(xdg_toplevel::State::TiledRight);
            state.states.set(xdg_toplevel::State::TiledTop);
            state.states.set(xdg_toplevel::State::TiledBottom);
        });
    }

    /// The window on top, if any: the one shown and focused.
    pub fn top_window(&self) -> Option<&Window> {
        self.space.elements().last()
    }

    /// Whether the home screen (launcher) is what the user sees.
    pub fn home_visible(&self) -> bool {
        !self.locked && !self.overview && (self.showing_home || self.top_window().is_none())
    }

    /// The window shown on screen, if an app is in front.
    pub fn shown_window(&self) -> Option<&Window> {
        if self.locked || self.showing_home || self.overview {
            None
        } else {
            self.top_window()
        }
    }

    /// Shows the lock screen: apps lose keyboard focus and get no input until unlocked.
    pub fn lock(&mut self) {
        if self.locked {
            return;
        }
        self.locked = true;
        self.contacts.clear();
        if let Some(keyboard) = self.seat.get_keyboard() {
            keyboard.set_focus(self, None, SERIAL_COUNTER.next_serial());
        }
        self.needs_redraw = true;
        tracing::info!("locked");
    }

    /// Leaves the lock screen for what was shown before.
    pub fn unlock(&mut self) {
        if !self.locked {
            return;
        }
        self.locked = false;
        self.focus_top();
        self.needs_redraw = true;
        tracing::info!("unlocked");
    }

    /// Windows, most recently used first (the overview's card order).
    pub fn windows_recent_first(&self) -> Vec<Window> {
        self.space.elements().rev().cloned().collect()
    }

    /// Where the overview's cards are.
    pub fn overview_layout(&self) -> crate::overview::OverviewLayout {
        crate::overview::OverviewLayout::new(self.shell.layout().home, self.shell.layout().scale)
    }

    /// Shows the app switcher (or home, when no app runs).
    pub fn open_overview(&mut self) {
        if self.space.elements().next().is_none() {
            self.go_home();
            return;
        }
        self.overview = true;
        if let Some(keyboard) = self.seat.get_keyboard() {
            keyboard.set_focus(self, None, SERIAL_COUNTER.next_serial());
        }
        self.needs_redraw = true;
        tracing::info!(apps = self.space.elements().count(), "overview");
    }

    /// Carries out a tap or swipe in the overview.
    pub fn perform_overview(&mut self, action: crate::overview::OverviewAction) {
        use crate::overview::OverviewAction;
        let windows = self.windows_recent_first();
        match action {
            OverviewAction::Switch(i) => {
                if let Some(window) = windows.get(i) {
                    self.space.raise_element(window, true);
                    self.overview = false;
                    self.showing_home = false;
                    self.focus_top();
                }
            }
            OverviewAction::Close(i) => {
                if let Some(toplevel) = windows.get(i).and_then(|w| w.toplevel()) {
                    tracing::info!("closing an app from the overview");
                    toplevel.send_close();
                }
            }
            OverviewAction::Home => {
                self.overview = false;
                self.showing_home = true;
            }
            OverviewAction::None => {}
        }
        self.needs_redraw = true;
    }

    /// The client surface under a logical point, with its origin, among what is shown.
    pub fn surface_under(
        &self,
        pos: Point<f64, Logical>,
    ) -> Option<(WlSurface, Point<f64, Logical>)> {
        let window = self.shown_window()?;
        let loc = self.space.element_location(window)?;
        window
            .surface_under(pos - loc.to_f64(), WindowSurfaceType::ALL)
            .map(|(surface, offset)| (surface, (offset + loc).to_f64()))
    }

    /// Shows the home screen; apps keep running behind it.
    pub fn go_home(&mut self) {
        if !self.showing_home || self.overview {
            self.showing_home = true;
            self.overview = false;
            if let Some(keyboard) = self.seat.get_keyboard() {
                keyboard.set_focus(self, None, SERIAL_COUNTER.next_serial());
            }
            self.needs_redraw = true;
            tracing::info!("home");
        }
    }

    /// Replaces the launcher's apps (the entries changed on disk), keeping the page in range.
    pub fn set_apps(&mut self, apps: Vec<AppEntry>) {
        if apps
            .iter()
            .map(|a| &a.id)
            .eq(self.apps.iter().map(|a| &a.id))
            && apps
                .iter()
                .map(|a| &a.name)
                .eq(self.apps.iter().map(|a| &a.name))
            && apps
                .iter()
                .map(|a| a.icon.as_ref().map(|i| i.data()))
                .eq(self.apps.iter().map(|a| a.icon.as_ref().map(|i| i.data())))
        {
            return;
        }
        tracing::info!(count = apps.len(), "launcher entries changed");
        self.shell
            .set_launcher_items(crate::apps::launcher_items(&apps));
        let pages = self.shell.launcher_pages(apps.len()).max(1);
        self.launcher_page = self.launcher_page.min(pages - 1);
        self.apps = apps;
        self.needs_redraw = true;
    }

    /// Starts the `index`-th launcher app.
    pub fn launch_app(&mut self, index: usize) {
        let Some(app) = self.apps.get(index) else {
            return;
        };
        match crate::apps::launch(app, &self.socket_path) {
            Ok(child) => {
                tracing::info!(app = %app.id, pid = child.id(), "launched");
                self.children.push(child);
            }
            Err(err) => tracing::error!(app = %app.id, exec = ?app.exec, %err, "could not launch"),
        }
    }

    /// Asks the apps this compositor started to quit (they would lose their display anyway).
    pub fn terminate_children(&mut self) {
        for child in &self.children {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        self.reap_children();
    }

    /// Reaps apps that exited.
    pub fn reap_children(&mut self) {
        self.children.retain_mut(|child| match child.try_wait() {
            Ok(Some(status)) => {
                tracing::info!(pid = child.id(), %status, "app exited");
                false
            }
            Ok(None) => true,
            Err(_) => false,
        });
    }

    /// Maps `window` on top of the stack in the app area and gives it keyboard focus.
    pub fn map_on_top(&mut self, window: Window) {
        self.showing_home = false;
        self.overview = false;
        let area = self.app_area();
        for other in self.space.elements() {
            if let Some(toplevel) = other.toplevel() {
                toplevel.with_pending_state(|state| {
                    state.states.unset(xdg_toplevel::State::Activated);
                });
                if toplevel.is_initial_configure_sent() {
                    toplevel.send_pending_configure();
                }
            }
        }
        self.space.map_element(window.clone(), area.loc, true);
        // Keyboard focus follows once the window shows its first buffer (see `focus_if_mapped`):
        // some clients (foot 1.13) crash on a keyboard enter before their first configure.
        self.needs_redraw = true;
    }

    /// Gives keyboard focus to the top window (or to nothing on the home screen).
    pub fn focus_top(&mut self) {
        let focus = self
            .shown_window()
            .and_then(|w| w.toplevel())
            .map(|t| t.wl_surface().clone());
        if let Some(keyboard) = self.seat.get_keyboard() {
            keyboard.set_focus(self, focus, SERIAL_COUNTER.next_serial());
        }
    }

    /// Focuses the shown window once it has content, if it does not have focus yet.
    pub fn focus_if_mapped(&mut self, root: &WlSurface) {
        let Some(window) = self.shown_window() else {
            return;
        };
        if window.toplevel().is_none_or(|t| t.wl_surface() != root) {
            return;
        }
        let has_buffer =
            smithay::backend::renderer::utils::with_renderer_surface_state(root, |s| {
                s.buffer().is_some()
            })
            .unwrap_or(false);
        let focused = self.seat.get_keyboard().and_then(|k| k.current_focus());
        if has_buffer && focused.as_ref() != Some(root) {
            self.focus_top();
        }
    }

    /// Relayouts every window after the screen changed (size, scale).
    pub fn relayout(&mut self) {
        let area = self.app_area();
        let windows: Vec<Window> = self.space.elements().cloned().collect();
        for window in windows {
            if let Some(toplevel) = window.toplevel() {
                self.apply_phone_layout(toplevel);
                if toplevel.is_initial_configure_sent() {
                    toplevel.send_pending_configure();
                }
            }
            self.space.map_element(window, area.loc, false);
        }
        self.needs_redraw = true;
    }
}
