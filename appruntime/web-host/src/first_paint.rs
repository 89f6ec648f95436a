//! "First paint", one definition for the web host and its benchmark peer (`cirrus-webkit-baseline`):
//! the view's load finished (`load-changed` with `WEBKIT_LOAD_FINISHED`: the document and its
//! subresources loaded, scripts run) and then two animation frames ran, i.e. the page as loaded
//! has been rendered into a frame given to the compositor. Measured from inside the page with
//! `requestAnimationFrame`, in an isolated script world the page cannot see.

use std::cell::Cell;
use std::rc::Rc;

use gtk::gio;
use webkit2gtk::{LoadEvent, WebView, WebViewExt};

/// The script world the probe runs in (invisible to the page's own scripts).
const WORLD: &str = "cirrus-first-paint";
const PROBE: &str = "await new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done))); return true;";

/// Calls `painted` once, at the first paint of `view` after this call.
pub fn on_first_paint(view: &WebView, painted: impl Fn() + 'static) {
    let painted = Rc::new(painted);
    let seen = Rc::new(Cell::new(false));
    view.connect_load_changed(move |view, event| {
        if event != LoadEvent::Finished || seen.replace(true) {
            return;
        }
        let painted = painted.clone();
        view.call_async_javascript_function(
            PROBE,
            None,
            Some(WORLD),
            None,
            None::<&gio::Cancellable>,
            move |result| {
                if let Err(e) = result {
                    tracing::warn!("first-paint probe failed: {e}");
                }
                painted();
            },
        );
    });
}
