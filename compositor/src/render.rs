//! What an output shows, as smithay render elements, top-most first:
//! unread indicator, notification banner, status bar, the on-screen keyboard, the top app window
//! (with its popups), wallpaper.

use smithay::backend::renderer::element::memory::MemoryRenderBufferRenderElement;
use smithay::backend::renderer::element::surface::WaylandSurfaceRenderElement;
use smithay::backend::renderer::element::utils::RescaleRenderElement;
use smithay::backend::renderer::element::{AsRenderElements, Kind};
use smithay::backend::renderer::pixman::PixmanRenderer;
use smithay::desktop::Window;
use smithay::render_elements;
use smithay::utils::{Physical, Point, Scale};

use crate::state::State;

render_elements! {
    /// Everything the compositor draws.
    pub OutputElement<=PixmanRenderer>;
    Memory=MemoryRenderBufferRenderElement<PixmanRenderer>,
    Surface=WaylandSurfaceRenderElement<PixmanRenderer>,
    Card=RescaleRenderElement<WaylandSurfaceRenderElement<PixmanRenderer>>,
}

/// Builds the element list for the current output, top-most first.
pub fn output_elements(state: &State, renderer: &mut PixmanRenderer) -> Vec<OutputElement> {
    let mut elements: Vec<OutputElement> = Vec::new();
    let layout = *state.shell.layout();
    let scale = state.output_scale();

    // Notifications: the banner over everything but the status bar, the unread dot on the bar.
    for (buffer, rect, what) in [
        state
            .shell
            .unread_indicator()
            .map(|(b, r)| (b, r, "unread indicator")),
        state
            .shell
            .banner()
            .map(|(b, r)| (b, r, "notification banner")),
    ]
    .into_iter()
    .flatten()
    {
        match MemoryRenderBufferRenderElement::from_buffer(
            renderer,
            Point::<f64, Physical>::from((rect.x as f64, rect.y as f64)),
            buffer,
            None,
            None,
            None,
            Kind::Unspecified,
        ) {
            Ok(e) => elements.push(e.into()),
            Err(err) => tracing::warn!(?err, "{what} not drawn"),
        }
    }

    match MemoryRenderBufferRenderElement::from_buffer(
        renderer,
        Point::<f64, Physical>::from((layout.status_bar.x as f64, layout.status_bar.y as f64)),
        state.shell.status_bar(),
        None,
        None,
        None,
        Kind::Unspecified,
    ) {
        Ok(e) => elements.push(e.into()),
        Err(err) => tracing::warn!(?err, "status bar not drawn"),
    }

    if state.locked {
        match MemoryRenderBufferRenderElement::from_buffer(
            renderer,
            Point::<f64, Physical>::from((layout.home.x as f64, layout.home.y as f64)),
            state.shell.lock_screen(),
            None,
            None,
            None,
            Kind::Unspecified,
        ) {
            Ok(e) => elements.push(e.into()),
            Err(err) => tracing::warn!(?err, "lock screen not drawn"),
        }
    } else if state.overview {
        elements.extend(overview_elements(state, renderer, scale));
    } else if let Some(window) = state.shown_window() {
        if state.keyboard_shown() {
            let panel = state.osk.panel_at(std::time::Instant::now());
            match MemoryRenderBufferRenderElement::from_buffer(
                renderer,
                Point::<f64, Physical>::from((panel.x as f64, panel.y as f64)),
                state.osk.buffer(),
                None,
                None,
                None,
                Kind::Unspecified,
            ) {
                Ok(e) => elements.push(e.into()),
                Err(err) => tracing::warn!(?err, "on-screen keyboard not drawn"),
            }
        }
        elements.extend(window_elements(state, renderer, window, scale));
    } else {
        match MemoryRenderBufferRenderElement::from_buffer(
            renderer,
            Point::<f64, Physical>::from((layout.home.x as f64, layout.home.y as f64)),
            state.shell.launcher(),
            None,
            None,
            None,
            Kind::Unspecified,
        ) {
            Ok(e) => elements.push(e.into()),
            Err(err) => tracing::warn!(?err, "launcher not drawn"),
        }
    }

    match MemoryRenderBufferRenderElement::from_buffer(
        renderer,
        Point::<f64, Physical>::from((layout.home.x as f64, layout.home.y as f64)),
        state.shell.wallpaper(),
        None,
        None,
        None,
        Kind::Unspecified,
    ) {
        Ok(e) => elements.push(e.into()),
        Err(err) => tracing::warn!(?err, "wallpaper not drawn"),
    }
    elements
}

fn window_elements(
    state: &State,
    renderer: &mut PixmanRenderer,
    window: &Window,
    scale: f64,
) -> Vec<OutputElement> {
    let Some(location) = state.space.element_location(window) else {
        return Vec::new();
    };
    // The window's surface tree and its popups (smithay puts popups first, i.e. on top).
    let origin = (location - window.geometry().loc).to_physical_precise_round(scale);
    let elements: Vec<WaylandSurfaceRenderElement<PixmanRenderer>> =
        AsRenderElements::render_elements(window, renderer, origin, Scale::from(scale), 1.0);
    elements.into_iter().map(OutputElement::from).collect()
}

/// The overview's cards: each app's window drawn small at its card's place, most recent first.
fn overview_elements(
    state: &State,
    renderer: &mut PixmanRenderer,
    scale: f64,
) -> Vec<OutputElement> {
    let layout = state.overview_layout();
    let mut out: Vec<OutputElement> = Vec::new();
    for (i, window) in state.windows_recent_first().iter().enumerate() {
        let card = layout.card(i);
        let Some(surface) = window.toplevel().map(|t| t.wl_surface().clone()) else {
            continue;
        };
        // Drawn at full size with the window's geometry origin (client-side shadows excluded) on
        // the card's corner, then scaled down around that corner.
        let geo = window
            .geometry()
            .loc
            .to_physical_precise_round::<f64, i32>(scale);
        let corner = Point::<i32, Physical>::from((card.x, card.y));
        let elements: Vec<WaylandSurfaceRenderElement<PixmanRenderer>> =
            smithay::backend::renderer::element::surface::render_elements_from_surface_tree(
                renderer,
                &surface,
                corner - geo,
                Scale::from(scale),
                1.0,
                Kind::Unspecified,
            );
        out.extend(elements.into_iter().map(|e| {
            OutputElement::from(RescaleRenderElement::from_element(
                e,
                corner,
                layout.card_scale,
            ))
        }));
    }
    out
}
