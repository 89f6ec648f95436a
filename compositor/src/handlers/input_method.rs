//! Text input and on-screen keyboards: text-input-v3 (apps' text fields), input-method-v2 (the
//! keyboard that types into them: the compositor's built-in one, or an external one such as
//! squeekboard or wvkbd) and virtual-keyboard-v1 (key events from such a keyboard).
//!
//! Trust: an input method reads what the user types into every app and a virtual keyboard types
//! into every app, so only trusted clients may even see those two globals. A client is trusted when
//! its peer credentials (SO_PEERCRED, read when it connects) show the compositor's own uid or
//! root: system components started by init as the compositor's user (or the compositor's own
//! built-in keyboard). Apps run under their own per-app uids and are refused; text-input-v3 is
//! open to every client, it only receives text.

use smithay::desktop::{PopupKind, PopupManager};
use smithay::reexports::wayland_server::Client;
use smithay::reexports::wayland_server::protocol::wl_surface::WlSurface;
use smithay::utils::{Logical, Rectangle};
use smithay::wayland::input_method::{InputMethodHandler, InputMethodManagerState, PopupSurface};
use smithay::wayland::text_input::TextInputManagerState;
use smithay::wayland::virtual_keyboard::VirtualKeyboardManagerState;
use smithay::{
    delegate_input_method_manager, delegate_text_input_manager, delegate_virtual_keyboard_manager,
};

use crate::state::{ClientState, State};

/// Whether a client whose peer runs as `peer_uid` may type into other apps (input method, virtual
/// keyboard) of a compositor running as `own_uid`.
pub fn may_inject_input(peer_uid: u32, own_uid: u32) -> bool {
    peer_uid == own_uid || peer_uid == 0
}

fn client_is_trusted(client: &Client) -> bool {
    client
        .get_data::<ClientState>()
        .is_some_and(|data| data.may_inject_input)
}

/// The globals of this module.
pub struct TextInputProtocols {
    pub text_input: TextInputManagerState,
    pub input_method: InputMethodManagerState,
    pub virtual_keyboard: VirtualKeyboardManagerState,
}

impl TextInputProtocols {
    pub fn new(dh: &smithay::reexports::wayland_server::DisplayHandle) -> Self {
        Self {
            text_input: TextInputManagerState::new::<State>(dh),
            input_method: InputMethodManagerState::new::<State, _>(dh, client_is_trusted),
            virtual_keyboard: VirtualKeyboardManagerState::new::<State, _>(dh, client_is_trusted),
        }
    }
}

impl InputMethodHandler for State {
    fn new_popup(&mut self, surface: PopupSurface) {
        if let Err(err) = self.popups.track_popup(PopupKind::from(surface)) {
            tracing::warn!(%err, "could not track an input method popup");
        }
    }

    fn dismiss_popup(&mut self, surface: PopupSurface) {
        if let Some(parent) = surface.get_parent().map(|p| p.surface.clone()) {
            let _ = PopupManager::dismiss_popup(&parent, &PopupKind::from(surface));
        }
    }

    fn popup_repositioned(&mut self, _surface: PopupSurface) {
        self.needs_redraw = true;
    }

    fn parent_geometry(&self, parent: &WlSurface) -> Rectangle<i32, Logical> {
        self.space
            .elements()
            .find(|w| w.toplevel().is_some_and(|t| t.wl_surface() == parent))
            .and_then(|w| self.space.element_geometry(w))
            .unwrap_or_default()
    }
}

delegate_text_input_manager!(State);
delegate_input_method_manager!(State);
delegate_virtual_keyboard_manager!(State);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_compositors_user_and_root_may_inject_input() {
        assert!(may_inject_input(1000, 1000));
        assert!(may_inject_input(0, 1000));
        assert!(may_inject_input(0, 0));
        assert!(!may_inject_input(10_042, 1000), "an app's uid");
        assert!(!may_inject_input(65_534, 0), "nobody");
    }
}
