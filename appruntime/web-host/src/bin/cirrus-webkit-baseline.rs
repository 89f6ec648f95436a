//! `cirrus-webkit-baseline PAGE.html`: the peer of `cargo xtask bench web` — a plain WebKitGTK
//! program (a GTK 3 window with one WebView, WebKit's defaults) loading a page from a `file://`
//! path, with none of the web host's work (no package verification, no `app://` scheme, no CSP,
//! no JS API, no per-app data dirs, no proxy). It renders the way the host does (Wayland, wl_shm,
//! no compositing mode, same window size) and prints `first-frame` at the first paint, defined as
//! for the host (`first_paint.rs`). Ends on SIGTERM.

#[path = "../first_paint.rs"]
mod first_paint;

use std::io::Write;

use anyhow::{Context, Result};
use gtk::glib;
use gtk::prelude::*;
use webkit2gtk::{WebView, WebViewExt};

fn main() -> Result<()> {
    let page = std::env::args_os()
        .nth(1)
        .context("usage: cirrus-webkit-baseline PAGE.html")?;
    let page = std::fs::canonicalize(&page)
        .with_context(|| format!("{}", std::path::Path::new(&page).display()))?;
    for (k, v) in [
        ("GDK_BACKEND", "wayland"),
        ("WEBKIT_DISABLE_DMABUF_RENDERER", "1"),
        ("WEBKIT_DISABLE_COMPOSITING_MODE", "1"),
        ("NO_AT_BRIDGE", "1"),
    ] {
        // SAFETY: at the start of main, before any thread exists.
        unsafe { std::env::set_var(k, v) };
    }
    gtk::init().context("connecting to the compositor")?;
    let view = WebView::new();
    let window = gtk::Window::new(gtk::WindowType::Toplevel);
    window.set_title("WebKit baseline");
    // As the Cirrus host: no title bar, so both draw the same.
    window.set_decorated(false);
    window.set_default_size(360, 640);
    window.add(&view);
    first_paint::on_first_paint(&view, || {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "first-frame");
        let _ = out.flush();
    });
    window.connect_delete_event(|_, _| {
        gtk::main_quit();
        glib::Propagation::Proceed
    });
    glib::unix_signal_add_local(libc::SIGTERM, || {
        gtk::main_quit();
        glib::ControlFlow::Break
    });
    view.load_uri(&format!("file://{}", page.display()));
    window.show_all();
    gtk::main();
    Ok(())
}
