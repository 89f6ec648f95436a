//! End to end on the real shell: the headless compositor in-process, the app manager on a private
//! dbus-daemon with the compositor as its apps' display, and the real host as a Wayland client.
//! Install the signed C counter → the launcher shows its icon and label → a tap on the icon runs
//! the launcher entry's Exec (a D-Bus Launch call) → the app's first frame is on screen → a tap in
//! the app changes its state (picture and count file) → stop and relaunch from the launcher shows
//! the saved state → closing the window from the overview runs the app's `destroy` and the host
//! exits.
//!
//! As root (CI) the manager runs the host under the app's uid: the test makes the compositor's
//! socket and its directory reachable by that uid, as the device's compositor must.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use cirrus_appmanager::bus::manager_when_ready;
use cirrus_appmanager::{ServeOptions, serve};
use cirrus_compositor::input::Pointing;
use cirrus_compositor::overview::OverviewLayout;
use cirrus_compositor::{HeadlessSession, InjectedInput, Screenshot, spawn_headless};
use cirrus_package::{DeveloperKey, PackageContents};
use cirrus_ui::IRect;
use cirrus_ui::launcher::{LauncherItem, LauncherLayout, draw_launcher};
use cirrus_ui::shell::{ShellLayout, render_home_reference};
use cirrus_ui::text::TextRenderer;
use cirrus_ui::tiny_skia::{Pixmap, PixmapPaint, Transform};
use futures_util::StreamExt;

const W: u32 = 720;
const H: u32 = 1440;
const APP: &str = "org.test.counter";
const ICON: [u8; 3] = [0xf0, 0x90, 0x10];
/// The counter's background (tests/apps/counter.c).
const COUNTER_BLUE: [u8; 3] = [0x1e, 0x3a, 0x8a];

fn close(a: [u8; 3], b: [u8; 3], tol: i32) -> bool {
    a.iter()
        .zip(b)
        .all(|(x, y)| (i32::from(*x) - i32::from(y)).abs() <= tol)
}

/// Share of `region`'s pixels within `tol` of `want(x, y)`.
fn match_ratio(
    shot: &Screenshot,
    region: IRect,
    tol: i32,
    want: impl Fn(u32, u32) -> [u8; 3],
) -> f64 {
    let (mut total, mut ok) = (0u64, 0u64);
    for y in region.y.max(0) as u32..(region.bottom().max(0) as u32).min(shot.height) {
        for x in region.x.max(0) as u32..(region.right().max(0) as u32).min(shot.width) {
            total += 1;
            if shot.pixel(x, y).is_some_and(|p| close(p, want(x, y), tol)) {
                ok += 1;
            }
        }
    }
    if total == 0 {
        0.0
    } else {
        ok as f64 / total as f64
    }
}

fn pixmap_rgb(p: &Pixmap, x: u32, y: u32) -> [u8; 3] {
    p.pixel(x, y)
        .map(|c| {
            let c = c.demultiply();
            [c.red(), c.green(), c.blue()]
        })
        .unwrap_or([0, 0, 0])
}

fn keep(shot: &Screenshot, name: &str) -> std::path::PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(format!("wasm-{name}.png"));
    let _ = shot.save_png(&path);
    path
}

/// Screenshots until `ok` accepts one (kept as NAME.png); fails after 30 s naming `what`.
fn wait_screen(
    session: &HeadlessSession,
    what: &str,
    name: &str,
    ok: impl Fn(&Screenshot) -> bool,
) -> Screenshot {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let shot = session
            .screenshot()
            .unwrap_or_else(|e| panic!("screenshot: {e:#}"));
        if ok(&shot) {
            keep(&shot, name);
            return shot;
        }
        if Instant::now() > deadline {
            let path = keep(&shot, name);
            panic!("{what}: not seen within 30 s, see {}", path.display());
        }
        std::thread::sleep(Duration::from_millis(40));
    }
}

/// The home screen as it must look with the launcher showing `items`.
fn launcher_reference(shell: &ShellLayout, items: &[LauncherItem]) -> Pixmap {
    let mut screen = render_home_reference(shell);
    let grid = LauncherLayout::new(shell);
    let mut page = Pixmap::new(grid.area.width, grid.area.height).unwrap();
    draw_launcher(&mut page, &grid, items, 0, &mut TextRenderer::new());
    screen.draw_pixmap(
        grid.area.x,
        grid.area.y,
        page.as_ref(),
        &PixmapPaint::default(),
        Transform::identity(),
        None,
    );
    screen
}

fn package(component: &[u8], icon: &[u8], key: &DeveloperKey) -> Vec<u8> {
    let manifest = serde_json::json!({
        "name": "Counter Test", "short_name": "Counter",
        "icons": [{"src": "icons/icon.png", "sizes": "64x64", "type": "image/png"}],
        "cirrus": {"id": APP, "version": "1.0.0", "kind": "wasm"}
    });
    let mut c = PackageContents::new();
    c.insert(
        "manifest.webmanifest",
        serde_json::to_vec(&manifest).unwrap(),
    )
    .unwrap();
    c.insert("icons/icon.png", icon.to_vec()).unwrap();
    c.insert("app.wasm", component.to_vec()).unwrap();
    c.sign(key).unwrap()
}

fn log_count(log: &Path, text: &str) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .matches(text)
        .count()
}

fn wait_log(log: &Path, text: &str, times: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while log_count(log, text) < times {
        assert!(
            Instant::now() < deadline,
            "`{text}` ×{times} never appeared in {}:\n{}",
            log.display(),
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn install_launch_from_the_launcher_tap_stop_relaunch_close_on_the_headless_shell() {
    let dir = tempfile::tempdir().unwrap();
    // The app's uid must reach the compositor's socket in here (and its code under data/).
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let socket = dir.path().join("wayland-apps");
    // The manager gives its apps the display it was started with, as the device's unit does.
    // SAFETY: set before this test starts any thread (it is the only test in this binary).
    unsafe { std::env::set_var("WAYLAND_DISPLAY", &socket) };

    let bus = cirrus_testsupport::dbus::PrivateBus::start(dir.path());
    let component = std::fs::read(common::build_c_app("counter", dir.path())).unwrap();
    let icon_png = cirrus_testsupport::apk::png(64, ICON);
    let root = dir.path().join("data");
    let host = cirrus_testsupport::ExecutableCopy::new(common::HOST).unwrap();
    // The launcher entry's Exec calls Launch on the manager, as `cirrus-appmanager launch ID` does
    // on the device; here through Debian's dbus-send (the manager's binary is not built for this
    // crate's tests), on the private bus. The app id is appended as `$0`.
    let launch_command = vec![
        "/bin/sh".to_owned(),
        "-c".to_owned(),
        format!(
            "exec dbus-send --bus={} --print-reply --dest=org.cirrus.AppManager1 /org/cirrus/AppManager1 org.cirrus.AppManager1.Launch \"string:$0\"",
            bus.address()
        ),
    ];
    let opts = ServeOptions {
        bus_address: Some(bus.address().to_string()),
        data_root: root.clone(),
        wasm_host: host.path().to_path_buf(),
        memory_mb: 64,
        headless_apps: false,
        launch_command,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = rt.spawn(serve(opts, async move {
        let _ = stop_rx.await;
    }));
    let conn = rt
        .block_on(zbus::connection::Builder::address(bus.address()).build())
        .unwrap();
    let p = rt
        .block_on(manager_when_ready(&conn, Duration::from_secs(5)))
        .unwrap_or_else(|e| panic!("the manager never answered on the bus: {e}"));
    let mut states = rt.block_on(p.receive_state_changed()).unwrap();
    let mut next_state = |want: &str| {
        rt.block_on(async {
            loop {
                let sig = tokio::time::timeout(Duration::from_secs(30), states.next())
                    .await
                    .unwrap_or_else(|_| panic!("no `{want}` state signal"))
                    .unwrap();
                let args = sig.args().unwrap();
                if args.id == APP && args.state == want {
                    return;
                }
            }
        })
    };

    // Install, then start the shell (its launcher reads the entries at start).
    let key = DeveloperKey::generate();
    let pkg = dir.path().join("counter.cpkg");
    std::fs::write(&pkg, package(&component, &icon_png, &key)).unwrap();
    assert_eq!(rt.block_on(p.install(pkg.to_str().unwrap())).unwrap(), APP);
    let session = spawn_headless(W, H, socket.clone(), vec![root.join("system")])
        .unwrap_or_else(|e| panic!("compositor: {e:#}"));
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o777)).unwrap();
    let shell = ShellLayout::new(W, H);
    let grid = LauncherLayout::new(&shell);
    let scale = f64::from(shell.scale);

    // The launcher: the package's icon in the first cell, its label under it.
    let icon = grid.icon_rect(0);
    let home = wait_screen(
        &session,
        "the app's icon on the launcher",
        "launcher",
        |shot| {
            match_ratio(
                shot,
                IRect::new(
                    icon.x + icon.width as i32 / 4,
                    icon.y + icon.height as i32 / 4,
                    icon.width / 2,
                    icon.height / 2,
                ),
                6,
                |_, _| ICON,
            ) > 0.95
        },
    );
    let item = |label: &str| LauncherItem {
        label: label.into(),
        icon: Pixmap::decode_png(&icon_png).ok(),
    };
    let label = grid.label_rect(0);
    let want = launcher_reference(&shell, &[item("Counter")]);
    let other = launcher_reference(&shell, &[item("Notes")]);
    let with_label = match_ratio(&home, label, 10, |x, y| pixmap_rgb(&want, x, y));
    let with_other = match_ratio(&home, label, 10, |x, y| pixmap_rgb(&other, x, y));
    assert!(
        with_label > 0.97 && with_other < with_label - 0.02,
        "the label under the icon is not `Counter` ({with_label:.3} like it, {with_other:.3} like `Notes`), see {}",
        keep(&home, "launcher-label").display()
    );

    // Tap the icon → Exec → Launch over D-Bus → the host's window shows the counter at 0.
    let tap_icon = || {
        session
            .tap(
                Pointing::Pointer,
                (f64::from(icon.x) + f64::from(icon.width) / 2.0) / scale,
                (f64::from(icon.y) + f64::from(icon.height) / 2.0) / scale,
            )
            .unwrap_or_else(|e| panic!("tap: {e:#}"))
    };
    tap_icon();
    next_state("foreground");
    let log = std::path::PathBuf::from(rt.block_on(p.log_path(APP)).unwrap());
    let first = wait_screen(
        &session,
        "the counter's first frame",
        "counter-first-frame",
        |shot| match_ratio(shot, shell.home, 4, |_, _| COUNTER_BLUE) > 0.8,
    );
    // White digit pixels: the app drew its count, not just a background.
    assert!(
        match_ratio(&first, shell.home, 4, |_, _| [255, 255, 255]) > 0.002,
        "no digits in the counter's frame, see {}",
        keep(&first, "counter-no-digits").display()
    );
    assert!(match_ratio(&home, shell.home, 4, |_, _| COUNTER_BLUE) < 0.1);

    // A tap in the app: the count is saved and the picture changes.
    let (cx, cy) = (
        (f64::from(shell.home.x) + f64::from(shell.home.width) / 2.0) / scale,
        (f64::from(shell.home.y) + f64::from(shell.home.height) / 2.0) / scale,
    );
    session
        .tap(Pointing::Pointer, cx, cy)
        .unwrap_or_else(|e| panic!("tap: {e:#}"));
    let counted = wait_screen(
        &session,
        "the counter after a tap",
        "counter-after-tap",
        |shot| {
            match_ratio(shot, shell.home, 0, |x, y| {
                first.pixel(x, y).unwrap_or_default()
            }) < 0.995
                && match_ratio(shot, shell.home, 4, |_, _| COUNTER_BLUE) > 0.8
        },
    );
    let count_file = root.join("app").join(APP).join("count.txt");
    assert_eq!(std::fs::read_to_string(&count_file).unwrap(), "1\n");

    // Stop: the app's destroy runs, the shell goes back home.
    rt.block_on(p.stop(APP)).unwrap();
    wait_log(&log, "counter: destroyed at 1", 1);
    next_state("stopped");
    wait_screen(
        &session,
        "the launcher after stop",
        "home-after-stop",
        |shot| match_ratio(shot, shell.home, 4, |_, _| COUNTER_BLUE) < 0.1,
    );

    // Relaunch from the launcher: the saved count is drawn, pixel for pixel as before.
    tap_icon();
    next_state("foreground");
    wait_log(&log, "counter: created with count 1", 1);
    wait_screen(
        &session,
        "the relaunched counter at 1",
        "counter-relaunched",
        |shot| {
            match_ratio(shot, shell.home, 0, |x, y| {
                counted.pixel(x, y).unwrap_or_default()
            }) > 0.999
        },
    );

    // Close the window from the overview (swipe up and hold, then fling the card up): the app's
    // destroy runs and the host exits.
    let (w, h) = (f64::from(W) / scale, f64::from(H) / scale);
    let send = |i| session.input(i).unwrap_or_else(|e| panic!("input: {e:#}"));
    send(InjectedInput::Down {
        pointing: Pointing::Pointer,
        x: w / 2.0,
        y: h - 4.0,
    });
    for step in 1..=8 {
        send(InjectedInput::Motion {
            pointing: Pointing::Pointer,
            x: w / 2.0,
            y: h - 4.0 - f64::from(step) * 30.0,
        });
    }
    std::thread::sleep(Duration::from_millis(500));
    send(InjectedInput::Up {
        pointing: Pointing::Pointer,
    });
    let card = OverviewLayout::new(shell.home, shell.scale).card(0);
    wait_screen(
        &session,
        "the counter's card in the overview",
        "overview",
        |shot| match_ratio(shot, card, 6, |_, _| COUNTER_BLUE) > 0.5,
    );
    let (kx, ky) = (
        (f64::from(card.x) + f64::from(card.width) / 2.0) / scale,
        (f64::from(card.y) + f64::from(card.height) / 2.0) / scale,
    );
    session
        .swipe(Pointing::Pointer, (kx, ky), (kx, ky - 200.0), 6)
        .unwrap_or_else(|e| panic!("swipe: {e:#}"));
    wait_log(&log, "counter: destroyed at 1", 2);
    next_state("stopped");
    assert_eq!(rt.block_on(p.list()).unwrap()[0].5, "stopped");
    assert!(
        !std::fs::read_to_string(&log).unwrap().contains("ERROR"),
        "{}",
        std::fs::read_to_string(&log).unwrap()
    );

    let _ = stop_tx.send(());
    rt.block_on(server).unwrap().unwrap();
    session.stop().unwrap_or_else(|e| panic!("{e:#}"));
}
