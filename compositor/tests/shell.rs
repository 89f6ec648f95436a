//! The real compositor, headless, with a real Wayland client: the home screen, an app shown
//! below the status bar in the phone layout, and the home screen back when it closes.

mod common;

use cirrus_compositor::spawn_headless;
use cirrus_ui::shell::{ShellLayout, render_home_reference};
use cirrus_ui::theme;
use common::{TestApp, keep, match_ratio};
use wayland_protocols::xdg::shell::client::xdg_toplevel;

const W: u32 = 720;
const H: u32 = 1440;

fn reference_pixel(reference: &cirrus_ui::tiny_skia::Pixmap, x: u32, y: u32) -> [u8; 3] {
    reference
        .pixel(x, y)
        .map(|c| {
            let c = c.demultiply();
            [c.red(), c.green(), c.blue()]
        })
        .unwrap_or([0, 0, 0])
}

fn socket_in(dir: &tempfile::TempDir) -> std::path::PathBuf {
    dir.path().join("wayland-test")
}

#[test]
fn home_screen_shows_status_bar_clock_and_wallpaper() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let session = spawn_headless(W, H, socket_in(&dir), vec![])
        .unwrap_or_else(|e| panic!("compositor: {e:#}"));
    let shot = session
        .screenshot()
        .unwrap_or_else(|e| panic!("screenshot: {e:#}"));
    let path = keep(&shot, "home-screen");
    let layout = ShellLayout::new(W, H);
    let reference = render_home_reference(&layout);

    let home = match_ratio(&shot, layout.home, 8, |x, y| {
        reference_pixel(&reference, x, y)
    });
    assert!(
        home > 0.99,
        "home screen differs from the wallpaper ({home:.3} match), see {}",
        path.display()
    );
    let bar_without_clock = cirrus_ui::IRect::new(
        layout.clock.right(),
        0,
        W - layout.clock.right() as u32,
        layout.status_bar.height,
    );
    let bar = match_ratio(&shot, bar_without_clock, 4, |_, _| theme::STATUS_BAR_BG);
    assert!(
        bar > 0.99,
        "status bar background wrong ({bar:.3} match), see {}",
        path.display()
    );
    let clock_text = match_ratio(&shot, layout.clock, 40, |_, _| theme::STATUS_BAR_TEXT);
    assert!(
        clock_text > 0.03,
        "no clock drawn in the status bar ({clock_text:.3} of the clock box), see {}",
        path.display()
    );
    session
        .stop()
        .unwrap_or_else(|e| panic!("compositor stopped with an error: {e:#}"));
}

#[test]
fn app_window_fills_the_area_below_the_status_bar_and_home_returns_when_closed() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let session = spawn_headless(W, H, socket_in(&dir), vec![])
        .unwrap_or_else(|e| panic!("compositor: {e:#}"));
    let layout = ShellLayout::new(W, H);
    let mut app = TestApp::connect(&session.socket_path);

    let (w, h, states) = app.open_window("test app");
    // 720x1440 at scale 2 is 360x720 logical; the status bar takes 28 dp.
    assert_eq!((w, h), (360, 692), "window not sized to the app area");
    assert!(
        states.contains(&xdg_toplevel::State::Maximized),
        "window not maximised: {states:?}"
    );
    assert!(
        states.contains(&xdg_toplevel::State::Activated),
        "window not activated: {states:?}"
    );

    const APP: [u8; 3] = [0xe0, 0x20, 0x90];
    app.draw(APP, 2);
    app.wait_for_frame();
    let shot = session
        .screenshot()
        .unwrap_or_else(|e| panic!("screenshot: {e:#}"));
    let path = keep(&shot, "app-window");
    let in_app = match_ratio(&shot, layout.home, 2, |_, _| APP);
    assert!(
        in_app > 0.999,
        "app window does not cover the app area ({in_app:.4}), see {}",
        path.display()
    );
    let bar_without_clock = cirrus_ui::IRect::new(
        layout.clock.right(),
        0,
        W - layout.clock.right() as u32,
        layout.status_bar.height,
    );
    let bar = match_ratio(&shot, bar_without_clock, 4, |_, _| theme::STATUS_BAR_BG);
    assert!(
        bar > 0.99,
        "status bar hidden by the app ({bar:.3}), see {}",
        path.display()
    );

    app.close_window();
    let reference = render_home_reference(&layout);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let shot = session
            .screenshot()
            .unwrap_or_else(|e| panic!("screenshot: {e:#}"));
        let home = match_ratio(&shot, layout.home, 8, |x, y| {
            reference_pixel(&reference, x, y)
        });
        if home > 0.99 {
            break;
        }
        if std::time::Instant::now() > deadline {
            let path = keep(&shot, "after-close");
            panic!(
                "home screen did not come back after the app closed ({home:.3}), see {}",
                path.display()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    session
        .stop()
        .unwrap_or_else(|e| panic!("compositor stopped with an error: {e:#}"));
}

#[test]
fn a_client_breaking_the_protocol_is_disconnected_and_others_keep_working() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let session = spawn_headless(W, H, socket_in(&dir), vec![])
        .unwrap_or_else(|e| panic!("compositor: {e:#}"));

    // A buffer larger than its pool is a protocol error (wl_shm.invalid_stride / invalid size).
    let mut bad = TestApp::connect(&session.socket_path);
    let qh = bad.queue.handle();
    let file = tempfile::tempfile().unwrap_or_else(|e| panic!("tempfile: {e}"));
    file.set_len(4096)
        .unwrap_or_else(|e| panic!("set_len: {e}"));
    let Some(shm) = bad.state.shm.clone() else {
        panic!("no shm")
    };
    let pool = shm.create_pool(std::os::fd::AsFd::as_fd(&file), 4096, &qh, ());
    let _buffer = pool.create_buffer(
        0,
        1000,
        1000,
        4000,
        wayland_client::protocol::wl_shm::Format::Argb8888,
        &qh,
        (),
    );
    let result = bad.queue.roundtrip(&mut bad.state);
    assert!(
        result.is_err(),
        "the compositor accepted a buffer larger than its pool"
    );

    assert!(
        session.is_running(),
        "the compositor died because of a bad client"
    );
    let mut good = TestApp::connect(&session.socket_path);
    let (w, h, _) = good.open_window("well-behaved");
    assert_eq!((w, h), (360, 692));
    good.draw([0x10, 0xa0, 0x30], 2);
    good.wait_for_frame();
    session
        .stop()
        .unwrap_or_else(|e| panic!("compositor stopped with an error: {e:#}"));
}

#[test]
fn status_bar_shows_battery_and_network_from_sysfs() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let sys = dir.path().join("sys");
    for (rel, text) in [
        ("class/power_supply/BAT0/type", "Battery\n"),
        ("class/power_supply/BAT0/capacity", "64\n"),
        ("class/power_supply/BAT0/status", "Discharging\n"),
        ("class/net/wlan0/operstate", "up\n"),
        ("class/net/wlan0/wireless/.keep", ""),
    ] {
        let path = sys.join(rel);
        std::fs::create_dir_all(path.parent().unwrap_or(&sys)).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(path, text).unwrap_or_else(|e| panic!("{e}"));
    }
    let session = cirrus_compositor::spawn_headless_with_sysfs(W, H, socket_in(&dir), vec![], sys)
        .unwrap_or_else(|e| panic!("compositor: {e:#}"));
    let layout = ShellLayout::new(W, H);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let shot = session
            .screenshot()
            .unwrap_or_else(|e| panic!("screenshot: {e:#}"));
        let background = match_ratio(&shot, layout.indicators, 16, |_, _| theme::STATUS_BAR_BG);
        let text = match_ratio(&shot, layout.indicators, 40, |_, _| theme::STATUS_BAR_TEXT);
        if background < 0.97 && text > 0.02 {
            keep(&shot, "indicators");
            break;
        }
        if std::time::Instant::now() > deadline {
            let path = keep(&shot, "indicators");
            panic!(
                "battery/network indicators not drawn ({background:.3} background, {text:.3} text), see {}",
                path.display()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    session.stop().unwrap_or_else(|e| panic!("{e:#}"));
}
