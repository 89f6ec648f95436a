//! xdg_wm_base: app windows (toplevels) in the phone layout, and popups.

use smithay::delegate_xdg_shell;
use smithay::desktop::{PopupKind, Window, find_popup_root_surface, get_popup_toplevel_coords};
use smithay::reexports::wayland_server::protocol::wl_seat::WlSeat;
use smithay::reexports::wayland_server::protocol::wl_surface::WlSurface;
use smithay::utils::Serial;
use smithay::wayland::shell::xdg::{
    PopupSurface, PositionerState, ToplevelSurface, XdgShellHandler, XdgShellState,
};

use crate::state::State;

impl XdgShellHandler for State {
    fn xdg_shell_state(&mut self) -> &mut XdgShellState {
        &mut self.xdg_shell_state
    }

    fn new_toplevel(&mut self, surface: ToplevelSurface) {
        self.apply_phone_layout(&surface);
        let window = Window::new_wayland_window(surface);
        self.map_on_top(window);
        tracing::info!(windows = self.space.elements().count(), "app window opened");
    }

    fn toplevel_destroyed(&mut self, surface: ToplevelSurface) {
        let closed: Vec<Window> = self
            .space
            .elements()
            .filter(|w| w.toplevel().is_some_and(|t| t == &surface))
            .cloned()
            .collect();
        for window in closed {
            self.space.unmap_elem(&window);
        }
        if let Some(top) = self.top_window().and_then(|w| w.toplevel()).cloned() {
            self.apply_phone_layout(&top);
            if top.is_initial_configure_sent() {
                top.send_pending_configure();
            }
        }
        self.focus_top();
        self.needs_redraw = true;
        tracing::info!(windows = self.space.elements().count(), "app window closed");
    }

    fn new_popup(&mut self, surface: PopupSurface, _positioner: PositionerState) {
        self.unconstrain_popup(&surface);
        if let Err(err) = self.popups.track_popup(PopupKind::Xdg(surface)) {
            tracing::warn!(%err, "could not track popup");
        }
    }

    fn reposition_request(
        &mut self,
        surface: PopupSurface,
        positioner: PositionerState,
        token: u32,
    ) {
        surface.with_pending_state(|state| {
            state.geometry = positioner.get_geometry();
            state.positioner = positioner;
        });
        self.unconstrain_popup(&surface);
        surface.send_repositioned(token);
    }

    fn grab(&mut self, _surface: PopupSurface, _seat: WlSeat, _serial: Serial) {
        // Popup grabs (menus that close when tapping outside) come with touch input handling.
    }
}

delegate_xdg_shell!(State);

impl State {
    /// Sends the initial configure of toplevels and popups on their first commit.
    pub(crate) fn handle_xdg_commit(&mut self, surface: &WlSurface) {
        if let Some(window) = self
            .space
            .elements()
            .find(|w| w.toplevel().is_some_and(|t| t.wl_surface() == surface))
            .cloned()
            && let Some(toplevel) = window.toplevel()
            && !toplevel.is_initial_configure_sent()
        {
            toplevel.send_configure();
        }

        self.popups.commit(surface);
        if let Some(PopupKind::Xdg(popup)) = self.popups.find_popup(surface)
            && !popup.is_initial_configure_sent()
            && let Err(err) = popup.send_configure()
        {
            tracing::warn!(?err, "initial popup configure failed");
        }
    }

    /// Keeps a popup inside the app area.
    fn unconstrain_popup(&self, popup: &PopupSurface) {
        let Ok(root) = find_popup_root_surface(&PopupKind::Xdg(popup.clone())) else {
            return;
        };
        let Some(window) = self
            .space
            .elements()
            .find(|w| w.toplevel().is_some_and(|t| t.wl_surface() == &root))
        else {
            return;
        };
        let Some(window_geo) = self.space.element_geometry(window) else {
            return;
        };
        let mut target = self.app_area();
        target.loc -= get_popup_toplevel_coords(&PopupKind::Xdg(popup.clone()));
        target.loc -= window_geo.loc;
        popup.with_pending_state(|state| {
            state.geometry = state.positioner.get_unconstrained_geometry(target);
        });
    }
}
