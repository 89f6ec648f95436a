//! Web apps end to end on the real shell: the headless compositor in-process, the app manager on a
//! private dbus-daemon (with a recording org.freedesktop.Notifications server on it), and the real
//! cirrus-web-host (WebKitGTK) as a Wayland client. Two signed web apps are built here and
//! installed through AppManager1:
//!
//! - A (notifications permission, no network): its page script checks, and paints the verdict as
//!   the page colour, that the inline script and `eval` were blocked by the default CSP, that
//!   path-traversal URLs under `app://` answer 404 while a real entry answers, that `fetch` to a
//!   loopback HTTP server fails, and that `navigator.cirrus.app` is its own; it stores a secret in
//!   localStorage and posts a standard `Notification`, and one on each `visibilitychange`.
//! - B (no permissions): its page reads localStorage (must not see A's secret) and tries a
//!   `Notification` (must not arrive).
//!
//! Launching B sends A to the background (A's page goes hidden); launching A again brings it back
//! (visible). The loopback server must never be reached; A's secret is stored in A's data dir only.
//! Run as root, the apps run under their own uids and the manager names them in its user database
//! (extrausers), which the bus resolves them through: every leg runs as root and unprivileged.
//!
//! Then the SDK's web template (`cirrus app new --template web`) is installed and started through
//! `Inspect` (developer mode): its page shows, WebKit's remote inspector answers HTTP on the
//! loopback address returned, and after an ordinary relaunch nothing answers there. Its buttons
//! are then tapped with a finger (wl_touch) and clicked with a pointer (wl_pointer), where the
//! screenshot shows them: each "Tap" counts in the page's JS, each "Notify me" posts the count.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cirrus_appmanager::bus::manager_when_ready;
use cirrus_appmanager::{DeviceConfig, RuntimeOptions, ServeOptions, serve_with};
use cirrus_compositor::input::Pointing;
use cirrus_compositor::{HeadlessSession, Screenshot, spawn_headless};
use cirrus_package::{DeveloperKey, PackageContents};
use cirrus_ui::IRect;
use cirrus_ui::shell::ShellLayout;
use common::{SharedBus, close, keep};
use futures_util::StreamExt;

const W: u32 = 720;
const H: u32 = 1440;
const APP_A: &str = "org.test.weba";
const APP_B: &str = "org.test.webb";
/// A's page when every check passed.
const A_PASS: [u8; 3] = [0x20, 0x60, 0xc0];
/// A's page after it saw `pause` + hidden, then visible + active again.
const A_RESUMED: [u8; 3] = [0x20, 0xc0, 0x60];
/// B's page when it did not see A's secret.
const B_PASS: [u8; 3] = [0xc0, 0x60, 0x20];

const PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>Web test</title>
<style>html, body { margin: 0; height: 100%; background: #808080; }</style>
<script>window.inlineRan = true;</script>
<script src="http://127.0.0.1:__PORT__/remote.js"></script>
<script src="main.js"></script>
</head><body></body></html>
"#;

/// A's checks; each failure paints its own colour (named in the test's message).
const A_SCRIPT: &str = r#"
const paint = (c) => { document.body.style.background = c; };
const here = 'app://org.test.weba/';
async function check() {
  if (window.inlineRan || window.remoteRan) return paint('#ff0000');
  let evalRan = false;
  try { evalRan = eval('true'); } catch (e) {}
  if (evalRan) return paint('#ff00ff');
  for (const p of ['..%2f..%2f..%2fetc%2fpasswd', '%2Fetc%2Fpasswd', 'js%5c..%5cindex.html', '..%2fdata.txt']) {
    const r = await fetch(here + p).catch(() => null);
    if (!r || r.status !== 404) return paint('#ffff00');
  }
  const data = await fetch(here + 'data.txt').then((r) => r.text()).catch(() => '');
  if (data !== 'package data') return paint('#00ffff');
  let reached = false;
  try { await fetch('http://127.0.0.1:__PORT__/fetch'); reached = true; } catch (e) {}
  if (reached) return paint('#ff8000');
  if (navigator.cirrus.app.id !== 'org.test.weba' || navigator.cirrus.state !== 'active') return paint('#800000');
  if (Notification.permission !== 'granted') return paint('#008000');
  localStorage.setItem('secret', 'A-secret-7f3c');
  let paused = false;
  navigator.cirrus.addEventListener('pause', () => { paused = true; });
  document.addEventListener('visibilitychange', () => {
    new Notification('A is ' + document.visibilityState, { body: navigator.cirrus.state });
    if (document.visibilityState === 'visible' && paused && navigator.cirrus.state === 'active') paint('#20c060');
  });
  new Notification('Hello from A', { body: 'posted by a web app' });
  paint('#2060c0');
}
check();
"#;

const B_SCRIPT: &str = r#"
document.addEventListener('DOMContentLoaded', () => {
document.body.style.background = localStorage.getItem('secret') === null ? '#c06020' : '#ff0000';
localStorage.setItem('secret', 'B-secret-91ad');
if (Notification.permission !== 'granted') { try { new Notification('Hello from B'); } catch (e) {} }
else { document.body.style.background = '#ff00ff'; }
});
"#;

/// The SDK's web template (`cirrus app new --template web`): the same files, manifest and name
/// substitution as `crates/cli`.
const TEMPLATE_ID: &str = "org.test.webtaps";
const TEMPLATE_NAME: &str = "Web Taps";
/// The template's page background (style.css, background_color), header and "Notify me" button.
const TEMPLATE_BACKGROUND: [u8; 3] = [0xf8, 0xfa, 0xfc];
const TEMPLATE_HEADER: [u8; 3] = [0x1e, 0x3a, 0x8a];
const TEMPLATE_NOTIFY: [u8; 3] = [0x0f, 0x76, 0x6e];

fn icon_png(size: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, size, size);
    enc.set_color(png::ColorType::Rgba);
    enc.set_depth(png::BitDepth::Eight);
    let mut w = enc.write_header().unwrap();
    w.write_image_data(&vec![0x80; (size * size * 4) as usize])
        .unwrap();
    w.finish().unwrap();
    out
}

fn template_package(key: &DeveloperKey) -> Vec<u8> {
    let manifest = serde_json::json!({
        "name": TEMPLATE_NAME, "short_name": TEMPLATE_NAME, "start_url": "index.html",
        "display": "standalone", "orientation": "portrait",
        "theme_color": "#1e3a8a", "background_color": "#f8fafc",
        "icons": [
            {"src": "icons/icon-96.png", "sizes": "96x96", "type": "image/png"},
            {"src": "icons/icon-192.png", "sizes": "192x192", "type": "image/png"}
        ],
        "cirrus": {"id": TEMPLATE_ID, "version": "0.1.0", "kind": "web", "permissions": ["notifications"]}
    });
    let mut c = PackageContents::new();
    c.insert(
        "manifest.webmanifest",
        serde_json::to_vec(&manifest).unwrap(),
    )
    .unwrap();
    for (name, text) in [
        ("index.html", include_str!("../template/index.html")),
        ("app.js", include_str!("../template/app.js")),
        ("style.css", include_str!("../template/style.css")),
    ] {
        c.insert(
            name,
            text.replace("__APP_NAME__", TEMPLATE_NAME).into_bytes(),
        )
        .unwrap();
    }
    c.insert("icons/icon-96.png", icon_png(96)).unwrap();
    c.insert("icons/icon-192.png", icon_png(192)).unwrap();
    c.sign(key).unwrap()
}

/// Where `want` covers the screen: the centre of its pixels (None: nowhere).
fn find_colour(shot: &Screenshot, want: [u8; 3]) -> Option<(f64, f64)> {
    let (mut n, mut sx, mut sy) = (0u64, 0u64, 0u64);
    for y in (0..shot.height).step_by(2) {
        for x in (0..shot.width).step_by(2) {
            if shot.pixel(x, y).is_some_and(|p| close(p, want, 4)) {
                n += 1;
                sx += u64::from(x);
                sy += u64::from(y);
            }
        }
    }
    (n > 50).then(|| (sx as f64 / n as f64, sy as f64 / n as f64))
}

/// The template's "Tap" and "Notify me" buttons: the centres, in logical coordinates (the output's
/// scale is 2), of the lowest run of the header colour and of the Notify colour down the column
/// through the Notify button.
fn template_buttons(shot: &Screenshot) -> Option<((f64, f64), (f64, f64))> {
    let (nx, _) = find_colour(shot, TEMPLATE_NOTIFY)?;
    let x = nx as u32;
    let runs = |want: [u8; 3]| {
        let mut runs: Vec<(u32, u32)> = Vec::new();
        for y in 0..shot.height {
            if shot.pixel(x, y).is_some_and(|p| close(p, want, 4)) {
                match runs.last_mut() {
                    Some((_, end)) if *end + 1 == y => *end = y,
                    _ => runs.push((y, y)),
                }
            }
        }
        runs.retain(|(a, b)| b - a >= 40);
        runs
    };
    let centre = |(a, b): (u32, u32)| (f64::from(x) / 2.0, f64::from(a + b) / 4.0);
    let notify = *runs(TEMPLATE_NOTIFY).first()?;
    let tap = runs(TEMPLATE_HEADER)
        .into_iter()
        .rfind(|(_, end)| *end < notify.0)?;
    Some((centre(tap), centre(notify)))
}

/// Waits up to `within` for a notification from `app` with `body`; whether it came.
fn heard_notification(heard: &Heard, app: &str, body: &str, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if heard
            .lock()
            .unwrap()
            .iter()
            .any(|(a, _, b)| a == app && b == body)
        {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A plain HTTP/1.0 GET on loopback: (status line, body).
fn http_get(url: &str) -> std::io::Result<(String, String)> {
    use std::io::{Read, Write};
    let rest = url.trim_start_matches("http://");
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let mut stream = std::net::TcpStream::connect(host)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(stream, "GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n")?;
    let mut text = String::new();
    stream.read_to_string(&mut text)?;
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    Ok((
        head.lines().next().unwrap_or("").to_owned(),
        body.to_owned(),
    ))
}

fn package(id: &str, permissions: &[&str], script: &str, port: u16, key: &DeveloperKey) -> Vec<u8> {
    let manifest = serde_json::json!({
        "name": format!("Web {id}"), "start_url": "index.html",
        "cirrus": {"id": id, "version": "1.0.0", "kind": "web", "permissions": permissions}
    });
    let port = port.to_string();
    let mut c = PackageContents::new();
    c.insert(
        "manifest.webmanifest",
        serde_json::to_vec(&manifest).unwrap(),
    )
    .unwrap();
    c.insert("index.html", PAGE.replace("__PORT__", &port).into_bytes())
        .unwrap();
    c.insert("main.js", script.replace("__PORT__", &port).into_bytes())
        .unwrap();
    c.insert("data.txt", b"package data".to_vec()).unwrap();
    c.sign(key).unwrap()
}

/// A loopback HTTP "server" that only counts the connections it gets.
fn counting_server() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            counter.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    (port, hits)
}

/// The notifications heard: (app name, summary, body).
type Heard = Arc<Mutex<Vec<(String, String, String)>>>;

/// The notification server the apps' notifications reach: records (app name, summary, body).
#[derive(Clone, Default)]
struct RecordingNotifications {
    heard: Heard,
}

#[zbus::interface(name = "org.freedesktop.Notifications")]
impl RecordingNotifications {
    #[allow(clippy::too_many_arguments)]
    fn notify(
        &self,
        app_name: String,
        _replaces_id: u32,
        _app_icon: String,
        summary: String,
        body: String,
        _actions: Vec<String>,
        _hints: HashMap<String, zbus::OwnedVariant>,
        _expire_timeout: i32,
    ) -> u32 {
        let mut heard = self.heard.lock().unwrap();
        heard.push((app_name, summary, body));
        heard.len() as u32
    }

    fn close_notification(&self, _id: u32) {}

    fn get_capabilities(&self) -> Vec<String> {
        vec!["body".into()]
    }

    fn get_server_information(&self) -> (String, String, String, String) {
        ("test".into(), "cirrus".into(), "1".into(), "1.2".into())
    }
}

fn ratio(shot: &Screenshot, region: IRect, want: [u8; 3]) -> f64 {
    let (mut total, mut ok) = (0u64, 0u64);
    for y in region.y.max(0) as u32..(region.bottom().max(0) as u32).min(shot.height) {
        for x in region.x.max(0) as u32..(region.right().max(0) as u32).min(shot.width) {
            total += 1;
            if shot.pixel(x, y).is_some_and(|p| close(p, want, 6)) {
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

/// The colour most of `region` has (to name a failed check).
fn dominant(shot: &Screenshot, region: IRect) -> [u8; 3] {
    let mut counts: HashMap<[u8; 3], usize> = HashMap::new();
    for y in (region.y.max(0) as u32..(region.bottom().max(0) as u32).min(shot.height)).step_by(7) {
        for x in (region.x.max(0) as u32..(region.right().max(0) as u32).min(shot.width)).step_by(7)
        {
            if let Some(p) = shot.pixel(x, y) {
                *counts.entry(p).or_default() += 1;
            }
        }
    }
    counts
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .map(|(c, _)| c)
        .unwrap_or_default()
}

fn wait_colour(
    session: &HeadlessSession,
    region: IRect,
    want: [u8; 3],
    name: &str,
    logs: &[&Path],
) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let shot = session
            .screenshot()
            .unwrap_or_else(|e| panic!("screenshot: {e:#}"));
        if ratio(&shot, region, want) > 0.8 {
            keep(&shot, name);
            return;
        }
        if Instant::now() > deadline {
            let path = keep(&shot, name);
            let logs: Vec<String> = logs
                .iter()
                .map(|l| std::fs::read_to_string(l).unwrap_or_default())
                .collect();
            panic!(
                "{name}: the page never showed {want:?} (it shows {:?}: see the colour legend in the page script), see {}\nlogs:\n{}",
                dominant(&shot, region),
                path.display(),
                logs.join("\n---\n")
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_heard(heard: &Heard, summary: &str, logs: &[&Path]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !heard.lock().unwrap().iter().any(|(_, s, _)| s == summary) {
        if Instant::now() > deadline {
            let logs: Vec<String> = logs
                .iter()
                .map(|l| std::fs::read_to_string(l).unwrap_or_default())
                .collect();
            panic!(
                "no notification `{summary}`; heard {:?}\nlogs:\n{}",
                heard.lock().unwrap(),
                logs.join("\n---\n")
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Does any file under `dir` hold `text` (as UTF-8 or UTF-16, as WebKit may store it)?
fn holds(dir: &Path, text: &str) -> bool {
    let utf16: Vec<u8> = text.encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|e| {
        let path = e.path();
        if path.is_dir() {
            holds(&path, text)
        } else {
            std::fs::read(&path).is_ok_and(|b| {
                b.windows(text.len()).any(|w| w == text.as_bytes())
                    || b.windows(utf16.len()).any(|w| w == utf16.as_slice())
            })
        }
    })
}

#[test]
fn web_apps_show_their_page_talk_to_the_system_and_stay_isolated() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let socket = dir.path().join("wayland-web");
    // SAFETY: set before this test starts any thread (it is the only test in this binary).
    unsafe { std::env::set_var("WAYLAND_DISPLAY", &socket) };
    let root = dir.path().join("data");
    // As root the apps run under their own uids: the manager names them in its user database.
    let as_root = nix::unistd::geteuid().is_root();
    let accounts = dir.path().join("extrausers");
    std::fs::create_dir_all(&accounts).unwrap();
    let bus = SharedBus::start(dir.path(), as_root.then_some(accounts.as_path()));
    let host =
        cirrus_testsupport::ExecutableCopy::new(env!("CARGO_BIN_EXE_cirrus-web-host")).unwrap();
    let (port, hits) = counting_server();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let notifications = RecordingNotifications::default();
    let heard = notifications.heard.clone();
    let _server_conn = rt
        .block_on(
            zbus::connection::Builder::address(bus.address())
                .name("org.freedesktop.Notifications")
                .serve_at("/org/freedesktop/Notifications", notifications)
                .build(),
        )
        .unwrap();
    let opts = ServeOptions {
        bus_address: Some(bus.address().to_string()),
        data_root: root.clone(),
        // No wasm app here: the wasm host is never run.
        wasm_host: dir.path().join("no-wasm-host"),
        memory_mb: 64,
        headless_apps: false,
        launch_command: vec!["/bin/true".into()],
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let runtime = RuntimeOptions {
        web_host: host.path().to_path_buf(),
        accounts_dir: as_root.then(|| accounts.clone()),
        // For `Inspect` (the SDK's `cirrus app inspect`).
        developer_mode: true,
    };
    let server = rt.spawn(serve_with(
        opts,
        DeviceConfig::default(),
        runtime,
        async move {
            let _ = stop_rx.await;
        },
    ));
    let conn = rt
        .block_on(zbus::connection::Builder::address(bus.address()).build())
        .unwrap();
    let p = rt
        .block_on(manager_when_ready(&conn, Duration::from_secs(5)))
        .unwrap_or_else(|e| panic!("the manager never answered on the bus: {e}"));
    let mut states = rt.block_on(p.receive_state_changed()).unwrap();
    let mut next_state = |app: &str, want: &str| {
        rt.block_on(async {
            loop {
                let sig = tokio::time::timeout(Duration::from_secs(30), states.next())
                    .await
                    .unwrap_or_else(|_| panic!("no `{want}` state signal for {app}"))
                    .unwrap();
                let args = sig.args().unwrap();
                if args.id == app && args.state == want {
                    return;
                }
            }
        })
    };

    let key = DeveloperKey::generate();
    for (id, perms, script) in [
        (APP_A, &["notifications"][..], A_SCRIPT),
        (APP_B, &[][..], B_SCRIPT),
    ] {
        let path = dir.path().join(format!("{id}.cpkg"));
        std::fs::write(&path, package(id, perms, script, port, &key)).unwrap();
        assert_eq!(rt.block_on(p.install(path.to_str().unwrap())).unwrap(), id);
    }
    let session = spawn_headless(W, H, socket.clone(), vec![root.join("system")])
        .unwrap_or_else(|e| panic!("compositor: {e:#}"));
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o777)).unwrap();
    let shell = ShellLayout::new(W, H);
    let area = shell.home;
    let log_a = PathBuf::from(rt.block_on(p.log_path(APP_A)).unwrap());
    let log_b = PathBuf::from(rt.block_on(p.log_path(APP_B)).unwrap());
    let logs = [log_a.as_path(), log_b.as_path()];

    // A: its page is on screen, every check passed, its notification reached the server.
    assert_eq!(rt.block_on(p.launch(APP_A)).unwrap(), "foreground");
    wait_colour(&session, area, A_PASS, "a-checks", &logs);
    // The page fills the whole app area: no title bar drawn by the toolkit above it (the shell
    // is the only chrome on a phone).
    let top = IRect::new(area.x, area.y, area.width, 48);
    let shot = session.screenshot().unwrap();
    assert!(
        ratio(&shot, top, A_PASS) > 0.95,
        "something covers the top of the app area (a title bar?), see {}",
        keep(&shot, "a-top").display()
    );
    wait_heard(&heard, "Hello from A", &logs);
    let from_a = heard
        .lock()
        .unwrap()
        .iter()
        .find(|(_, s, _)| s == "Hello from A")
        .cloned()
        .unwrap();
    assert_eq!(from_a.0, format!("Web {APP_A}"));
    assert_eq!(from_a.2, "posted by a web app");

    // B: A goes to the background (hidden); B does not see A's storage, and may not notify.
    assert_eq!(rt.block_on(p.launch(APP_B)).unwrap(), "foreground");
    wait_heard(&heard, "A is hidden", &logs);
    assert!(
        heard
            .lock()
            .unwrap()
            .iter()
            .any(|(_, s, b)| s == "A is hidden" && b == "paused")
    );
    wait_colour(&session, area, B_PASS, "b-storage", &logs);

    // A again: visible and active.
    rt.block_on(p.launch(APP_A)).unwrap();
    wait_heard(&heard, "A is visible", &logs);
    // (Launch resumes a background app but does not raise its window: B is closed to see A.)
    rt.block_on(p.stop(APP_B)).unwrap();
    wait_colour(&session, area, A_RESUMED, "a-resumed", &logs);
    assert!(
        !heard
            .lock()
            .unwrap()
            .iter()
            .any(|(_, s, _)| s.contains("from B")),
        "B has no notifications permission, yet: {:?}",
        heard.lock().unwrap()
    );

    // Stop both: website data is flushed; A's secret is in A's data dir only.
    rt.block_on(p.stop(APP_A)).unwrap();
    next_state(APP_A, "stopped");

    // The SDK's web template, launched debuggable through `Inspect`: its page is on screen (header,
    // page and buttons in its colours), and WebKit's inspector answers on loopback.
    let path = dir.path().join("template.cpkg");
    std::fs::write(&path, template_package(&key)).unwrap();
    assert_eq!(
        rt.block_on(p.install(path.to_str().unwrap())).unwrap(),
        TEMPLATE_ID
    );
    let log_t = PathBuf::from(rt.block_on(p.log_path(TEMPLATE_ID)).unwrap());

    let logs = [log_t.as_path()];
    let url = rt.block_on(p.inspect(TEMPLATE_ID)).unwrap();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let page = IRect::new(
        area.x,
        area.y + (area.height / 2) as i32,
        area.width,
        area.height / 2,
    );
    wait_colour(&session, page, TEMPLATE_BACKGROUND, "template", &logs);
    let shot = session.screenshot().unwrap();
    assert!(
        find_colour(&shot, TEMPLATE_HEADER)
            .is_some_and(|(_, y)| y < f64::from(area.y) + f64::from(area.height) / 4.0),
        "no template header, see {}",
        keep(&shot, "template-header").display()
    );
    assert!(
        find_colour(&shot, TEMPLATE_NOTIFY).is_some(),
        "no Notify button, see {}",
        keep(&shot, "template-button").display()
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let (status, body) = loop {
        match http_get(&url) {
            Ok(r) => break r,
            Err(e) if Instant::now() > deadline => panic!("the inspector at {url}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    assert!(status.contains(" 200"), "{url}: {status}\n{body}");
    eprintln!("inspector at {url}: {status}\n{body}");
    // Launched the ordinary way, the app has no inspector.
    rt.block_on(p.stop(TEMPLATE_ID)).unwrap();
    rt.block_on(p.launch(TEMPLATE_ID)).unwrap();
    wait_colour(&session, page, TEMPLATE_BACKGROUND, "template-plain", &logs);
    assert!(
        http_get(&url).is_err(),
        "an inspector answers at {url} without Inspect"
    );
    // The template's buttons answer a finger (wl_touch) and a pointer (wl_pointer): each tap on
    // "Tap" counts, each tap on "Notify me" posts the count as a notification.
    let shot = session.screenshot().unwrap();
    let (tap, notify) = template_buttons(&shot).unwrap_or_else(|| {
        panic!(
            "no Tap/Notify buttons, see {}",
            keep(&shot, "template-buttons").display()
        )
    });
    let no_notification = |how: &str, body: &str| -> ! {
        let state = rt
            .block_on(p.list())
            .unwrap()
            .into_iter()
            .find(|a| a.0 == TEMPLATE_ID)
            .map(|a| a.5)
            .unwrap_or_default();
        panic!(
            "after {how} taps on Tap {tap:?} and Notify {notify:?}: no notification `{body}` \
             (the app is {state}); heard {:?}, see {}\nlog:\n{}",
            heard.lock().unwrap(),
            keep(&session.screenshot().unwrap(), "template-taps").display(),
            std::fs::read_to_string(&log_t).unwrap_or_default()
        )
    };
    // The page's script (a module) may still be loading when its background shows: a finger taps
    // "Notify me" until the page answers.
    let ready = (0..30).any(|_| {
        session.tap(Pointing::Touch, notify.0, notify.1).unwrap();
        heard_notification(
            &heard,
            TEMPLATE_NAME,
            "0 taps so far",
            Duration::from_secs(1),
        )
    });
    if !ready {
        no_notification("Touch", "0 taps so far");
    }
    let mut expected_taps = 0;
    for pointing in [Pointing::Touch, Pointing::Pointer] {
        for _ in 0..2 {
            session.tap(pointing, tap.0, tap.1).unwrap();
            expected_taps += 1;
        }
        session.tap(pointing, notify.0, notify.1).unwrap();
        let body = format!("{expected_taps} taps so far");
        if !heard_notification(&heard, TEMPLATE_NAME, &body, Duration::from_secs(30)) {
            no_notification(&format!("{pointing:?}"), &body);
        }
    }
    rt.block_on(p.stop(TEMPLATE_ID)).unwrap();
    let data_a = root.join("app").join(APP_A);
    let data_b = root.join("app").join(APP_B);
    assert!(
        holds(&data_a, "A-secret-7f3c"),
        "A's localStorage is not under its data dir {}",
        data_a.display()
    );
    assert!(
        !holds(&data_b, "A-secret-7f3c"),
        "A's secret is in B's data dir"
    );
    assert!(holds(&data_b, "B-secret-91ad"));
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "an app without the network permission reached the network"
    );

    let _ = stop_tx.send(());
    rt.block_on(server).unwrap().unwrap();
    session.stop().unwrap_or_else(|e| panic!("{e:#}"));
}
