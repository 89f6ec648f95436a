//! The smaller protocols every modern client expects, with the phone policy where one is needed:
//! - viewporter (crop/scale of surfaces), single-pixel-buffer (solid colours without shm),
//! - fractional-scale-v1 (the output's scale is an integer today; clients are told it exactly),
//! - presentation-time (frame timing feedback, sent when a frame reaches the screen),
//! - xdg-activation-v1 (an app asking to come to the front is raised, and leaves the home screen),
//! - cursor-shape-v1 (accepted; the phone shell draws no cursor).

use smithay::input::Seat;
use smithay::reexports::wayland_server::DisplayHandle;
use smithay::reexports::wayland_server::protocol::wl_surface::WlSurface;
use smithay::wayland::compositor::with_states;
use smithay::wayland::cursor_shape::CursorShapeManagerState;
use smithay::wayland::fractional_scale::{
    FractionalScaleHandler, FractionalScaleManagerState, with_fractional_scale,
};
use smithay::wayland::presentation::PresentationState;
use smithay::wayland::single_pixel_buffer::SinglePixelBufferState;
use smithay::wayland::tablet_manager::TabletSeatHandler;
use smithay::wayland::viewporter::ViewporterState;
use smithay::wayland::xdg_activation::{
    XdgActivationHandler, XdgActivationState, XdgActivationToken, XdgActivationTokenData,
};
use smithay::{
    delegate_cursor_shape, delegate_fractional_scale, delegate_presentation,
    delegate_single_pixel_buffer, delegate_viewporter, delegate_xdg_activation,
};

use crate::state::State;

/// Global state of these protocols.
pub struct Protocols {
    pub viewporter: ViewporterState,
    pub single_pixel_buffer: SinglePixelBufferState,
    pub fractional_scale: FractionalScaleManagerState,
    pub presentation: PresentationState,
    pub activation: XdgActivationState,
    pub cursor_shape: CursorShapeManagerState,
}

impl Protocols {
    pub fn new(dh: &DisplayHandle) -> Self {
        Self {
            viewporter: ViewporterState::new::<State>(dh),
            single_pixel_buffer: SinglePixelBufferState::new::<State>(dh),
            fractional_scale: FractionalScaleManagerState::new::<State>(dh),
            presentation: PresentationState::new::<State>(dh, libc::CLOCK_MONOTONIC as u32),
            activation: XdgActivationState::new::<State>(dh),
            cursor_shape: CursorShapeManagerState::new::<State>(dh),
        }
    }
}

impl FractionalScaleHandler for State {
    fn new_fractional_scale(&mut self, surface: WlSurface) {
        let scale = self.output_scale();
        with_states(&surface, |states| {
            with_fractional_scale(states, |fractional| fractional.set_preferred_scale(scale));
        });
    }
}

impl XdgActivationHandler for State {
    fn activation_state(&mut self) -> &mut XdgActivationState {
        &mut self.protocols.activation
    }

    fn request_activation(
        &mut self,
        token: XdgActivationToken,
        token_data: XdgActivationTokenData,
        surface: WlSurface,
    ) {
        // Only tokens made while the asking app had the user's attention are honoured (the token
        // names a serial of our seat): a background app cannot jump in front of the user.
        let seat_ok = token_data
            .serial
            .as_ref()
            .is_some_and(|(_, seat)| Seat::<State>::from_resource(seat).is_some());
        if seat_ok && token_data.timestamp.elapsed().as_secs() < 10 {
            let window = self
                .space
                .elements()
                .find(|w| w.toplevel().is_some_and(|t| t.wl_surface() == &surface))
                .cloned();
            if let Some(window) = window {
                self.space.raise_element(&window, true);
                self.showing_home = false;
                self.focus_top();
                self.needs_redraw = true;
                tracing::info!("app activated");
            }
        }
        self.protocols.activation.remove_token(&token);
    }
}

impl TabletSeatHandler for State {}

delegate_viewporter!(State);
delegate_single_pixel_buffer!(State);
delegate_fractional_scale!(State);
delegate_presentation!(State);
delegate_xdg_activation!(State);
delegate_cursor_shape!(State);
