//! Notifications: the headless compositor serves org.freedesktop.Notifications on a private
//! dbus-daemon; Debian's real `notify-send` (libnotify-bin) and a zbus client talk to it, and
//! screenshots show the banner under the status bar and the unread dot in it.

mod common;

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cirrus_compositor::input::Pointing;
use cirrus_compositor::notifications::{MAX_OPEN, NotificationBus, banner_rect, indicator_rect};
use cirrus_compositor::{BackendKind, Config, HeadlessSession, Screenshot, SocketChoice};
use cirrus_testsupport::dbus::PrivateBus;
use cirrus_ui::IRect;
use cirrus_ui::shell::ShellLayout;
use cirrus_ui::theme;
use common::{close, wait_until};
use futures_util::StreamExt;

const W: u32 = 720;
const H: u32 = 1440;

#[zbus::proxy(
    interface = "org.freedesktop.Notifications",
    default_service = "org.freedesktop.Notifications",
    default_path = "/org/freedesktop/Notifications"
)]
trait Notifications {
    fn get_capabilities(&self) -> zbus::Result<Vec<String>>;
    fn get_server_information(&self) -> zbus::Result<(String, String, String, String)>;
    #[allow(clippy::too_many_arguments)]
    fn notify(
        &self,
        app_name: &str,
        replaces_id: u32,
        app_icon: &str,
        summary: &str,
        body: &str,
        actions: &[&str],
        hints: HashMap<&str, zbus::Variant<'_>>,
        expire_timeout: i32,
    ) -> zbus::Result<u32>;
    fn close_notification(&self, id: u32) -> zbus::Result<()>;
    #[zbus(signal)]
    fn notification_closed(&self, id: u32, reason: u32) -> zbus::Result<()>;
    #[zbus(signal)]
    fn action_invoked(&self, id: u32, action_key: String) -> zbus::Result<()>;
}

/// What the test heard on the bus, in order.
#[derive(Debug, Clone, PartialEq)]
enum Heard {
    Closed(u32, u32),
    Action(u32, String),
}

struct Fixture {
    // Field order: the compositor stops before the bus goes away.
    session: HeadlessSession,
    proxy: NotificationsProxy<'static>,
    heard: Arc<Mutex<Vec<Heard>>>,
    bus: PrivateBus,
    _dir: tempfile::TempDir,
    layout: ShellLayout,
    /// The home screen before any notification: wallpaper and status bar only.
    baseline: Screenshot,
}

impl Fixture {
    fn start() -> Fixture {
        Self::start_with(true)
    }

    /// `bus_first`: start the bus before the compositor (as on the device), or after it.
    fn start_with(bus_first: bool) -> Fixture {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        // PrivateBus listens on <dir>/bus.
        let address = format!("unix:path={}", dir.path().join("bus").display());
        let early_bus = bus_first.then(|| PrivateBus::start(dir.path()));
        let session = cirrus_compositor::spawn_headless_config(Config {
            backend: BackendKind::Headless {
                width: W,
                height: H,
            },
            socket: SocketChoice::Path(dir.path().join("wl")),
            scale: None,
            font_dirs: vec![],
            app_dirs: vec![],
            sysfs: "/nonexistent-sysfs".into(),
            notification_bus: NotificationBus::Address(address.clone()),
        })
        .unwrap_or_else(|e| panic!("compositor: {e:#}"));
        let bus = early_bus.unwrap_or_else(|| PrivateBus::start(dir.path()));
        assert_eq!(bus.address(), address);
        let conn = zbus::block_on(zbus::connection::Builder::address(bus.address()).build())
            .unwrap_or_else(|e| panic!("test bus connection: {e}"));
        let proxy =
            zbus::block_on(NotificationsProxy::new(&conn)).unwrap_or_else(|e| panic!("proxy: {e}"));
        // Until the compositor owns the name, calls fail with ServiceUnknown.
        let deadline = Instant::now() + Duration::from_secs(20);
        while let Err(err) = zbus::block_on(proxy.get_server_information()) {
            assert!(
                Instant::now() < deadline,
                "the compositor never served {}: {err}",
                cirrus_compositor::notifications::BUS_NAME
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let heard = Arc::new(Mutex::new(Vec::new()));
        let mut closed = zbus::block_on(proxy.receive_notification_closed())
            .unwrap_or_else(|e| panic!("subscribing to NotificationClosed: {e}"));
        let mut actions = zbus::block_on(proxy.receive_action_invoked())
            .unwrap_or_else(|e| panic!("subscribing to ActionInvoked: {e}"));
        let h = heard.clone();
        std::thread::spawn(move || {
            while let Some(signal) = zbus::block_on(closed.next()) {
                if let Ok(args) = signal.args() {
                    lock(&h).push(Heard::Closed(args.id, args.reason));
                }
            }
        });
        let h = heard.clone();
        std::thread::spawn(move || {
            while let Some(signal) = zbus::block_on(actions.next()) {
                if let Ok(args) = signal.args() {
                    lock(&h).push(Heard::Action(args.id, args.action_key));
                }
            }
        });
        let baseline = session
            .screenshot()
            .unwrap_or_else(|e| panic!("screenshot: {e:#}"));
        Fixture {
            session,
            proxy,
            heard,
            bus,
            _dir: dir,
            layout: ShellLayout::new(W, H),
            baseline,
        }
    }

    /// Runs Debian's notify-send against the private bus; returns what it printed.
    fn notify_send(&self, args: &[&str]) -> String {
        let out = self
            .notify_send_command(args)
            .output()
            .unwrap_or_else(|e| panic!("notify-send is needed ({e}): run `cargo xtask deps`"));
        assert!(
            out.status.success(),
            "notify-send {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn notify_send_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("notify-send");
        cmd.args(args)
            .env("DBUS_SESSION_BUS_ADDRESS", self.bus.address())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// notify-send --print-id: the id the server answered.
    fn send_id(&self, args: &[&str]) -> u32 {
        let mut all = vec!["--print-id"];
        all.extend_from_slice(args);
        let out = self.notify_send(&all);
        out.lines()
            .next()
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or_else(|| panic!("notify-send printed no id: {out:?}"))
    }

    fn heard(&self) -> Vec<Heard> {
        lock(&self.heard).clone()
    }

    /// Waits until `want` was heard on the bus.
    fn wait_heard(&self, want: &Heard) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.heard().contains(want) {
            assert!(
                Instant::now() < deadline,
                "never heard {want:?}; heard {:?}",
                self.heard()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn banner(&self) -> IRect {
        banner_rect(&self.layout)
    }

    /// Share of the banner's pixels that differ from the wallpaper-only screen.
    fn banner_changed(&self, shot: &Screenshot) -> f64 {
        changed_share(shot, &self.baseline, self.banner())
    }

    /// Whether the banner is shown with text in its three rows (app name, summary, body).
    fn banner_shown(&self, shot: &Screenshot) -> bool {
        let b = self.banner();
        let s = self.layout.scale;
        let pad = (16.0 * s) as i32;
        let row = |y_dp: f32, h_dp: f32| {
            IRect::new(
                b.x + pad,
                b.y + (y_dp * s) as i32,
                b.width - 2 * pad as u32,
                (h_dp * s) as u32,
            )
        };
        let bg_ok = self.banner_changed(shot) > 0.8;
        // Text: pixels inside the card that are not its background.
        let text = |r: IRect| count(shot, r, |p| !close(p, theme::STATUS_BAR_BG, 12));
        let bright = |r: IRect| count(shot, r, |p| close(p, theme::STATUS_BAR_TEXT, 40));
        bg_ok
            && text(row(12.0, 12.0)) > 40
            && bright(row(30.0, 16.0)) > 40
            && text(row(50.0, 14.0)) > 40
    }

    fn banner_gone(&self, shot: &Screenshot) -> bool {
        self.banner_changed(shot) < 0.01
    }

    /// Whether the unread dot is drawn in the status bar.
    fn dot_shown(&self, shot: &Screenshot) -> bool {
        let r = indicator_rect(&self.layout);
        let centre = shot.pixel(
            (r.x + r.width as i32 / 2) as u32,
            (r.y + r.height as i32 / 2) as u32,
        );
        centre.is_some_and(|p| close(p, theme::STATUS_BAR_TEXT, 30))
    }

    fn tap_banner(&self) {
        let b = self.banner();
        let s = self.layout.scale as f64;
        let (x, y) = (
            (b.x as f64 + b.width as f64 / 2.0) / s,
            (b.y as f64 + b.height as f64 / 2.0) / s,
        );
        self.session
            .tap(Pointing::Touch, x, y)
            .unwrap_or_else(|e| panic!("{e:#}"));
    }
}

fn lock(heard: &Mutex<Vec<Heard>>) -> std::sync::MutexGuard<'_, Vec<Heard>> {
    heard.lock().unwrap_or_else(|e| e.into_inner())
}

fn count(shot: &Screenshot, r: IRect, pred: impl Fn([u8; 3]) -> bool) -> usize {
    let mut n = 0;
    for y in r.y.max(0)..r.bottom() {
        for x in r.x.max(0)..r.right() {
            if shot.pixel(x as u32, y as u32).is_some_and(&pred) {
                n += 1;
            }
        }
    }
    n
}

fn changed_share(a: &Screenshot, b: &Screenshot, r: IRect) -> f64 {
    let total = (r.width * r.height).max(1) as f64;
    let changed = count(a, r, |_| true) - count_same(a, b, r);
    changed as f64 / total
}

fn count_same(a: &Screenshot, b: &Screenshot, r: IRect) -> usize {
    let mut n = 0;
    for y in r.y.max(0)..r.bottom() {
        for x in r.x.max(0)..r.right() {
            let (x, y) = (x as u32, y as u32);
            if let (Some(p), Some(q)) = (a.pixel(x, y), b.pixel(x, y))
                && close(p, q, 6)
            {
                n += 1;
            }
        }
    }
    n
}

#[test]
fn notify_send_shows_a_banner_a_tap_dismisses_it() {
    let f = Fixture::start();
    let (name, vendor, _version, spec) = zbus::block_on(f.proxy.get_server_information())
        .unwrap_or_else(|e| panic!("GetServerInformation: {e}"));
    assert_eq!(
        (name.as_str(), vendor.as_str(), spec.as_str()),
        ("Cirrus", "Cirrus", "1.2")
    );
    let caps = zbus::block_on(f.proxy.get_capabilities())
        .unwrap_or_else(|e| panic!("GetCapabilities: {e}"));
    assert!(
        caps.iter().any(|c| c == "body") && caps.iter().any(|c| c == "actions"),
        "{caps:?}"
    );
    assert!(
        !f.dot_shown(&f.baseline),
        "unread dot before any notification"
    );

    let id = f.send_id(&["-a", "Mail", "-t", "0", "New message", "Lunch at noon?"]);
    wait_until(
        &f.session,
        "the notification banner",
        "notification-banner",
        |shot| f.banner_shown(shot) && f.dot_shown(shot),
    );

    f.tap_banner();
    wait_until(
        &f.session,
        "the banner dismissed",
        "notification-dismissed",
        |shot| f.banner_gone(shot) && !f.dot_shown(shot),
    );
    f.wait_heard(&Heard::Closed(id, 2));
    // No default action was given: none is invoked.
    assert!(
        !f.heard().iter().any(|h| matches!(h, Heard::Action(..))),
        "{:?}",
        f.heard()
    );
    assert!(f.session.is_running());
}

#[test]
fn tapping_invokes_the_default_action() {
    let f = Fixture::start();
    // notify-send with an action waits for it and prints the action's name.
    let child = f
        .notify_send_command(&["-A", "default=Open", "Call missed", "From Ada"])
        .spawn()
        .unwrap_or_else(|e| panic!("notify-send is needed ({e}): run `cargo xtask deps`"));
    wait_until(
        &f.session,
        "the banner with an action",
        "notification-action",
        |shot| f.banner_shown(shot),
    );
    f.tap_banner();
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("notify-send: {e}"));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "default");
    // notify-send may have seen the signal before this test's listener did: wait for it.
    let deadline = Instant::now() + Duration::from_secs(20);
    let action = loop {
        let found = f.heard().iter().find_map(|h| match h {
            Heard::Action(id, key) if key == "default" => Some(*id),
            _ => None,
        });
        if let Some(id) = found {
            break id;
        }
        assert!(
            Instant::now() < deadline,
            "no ActionInvoked: {:?}",
            f.heard()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    f.wait_heard(&Heard::Closed(action, 2));
}

#[test]
fn replaces_id_replaces_and_close_notification_closes() {
    let f = Fixture::start();
    let id = f.send_id(&["-t", "0", "Downloading", "10 %"]);
    wait_until(
        &f.session,
        "the first banner",
        "notification-first",
        |shot| f.banner_shown(shot),
    );
    let first = f.session.screenshot().unwrap_or_else(|e| panic!("{e:#}"));
    let again = f.send_id(&[
        "-r",
        &id.to_string(),
        "-t",
        "0",
        "Downloaded",
        "All done, 100 %",
    ]);
    assert_eq!(again, id, "replaces_id must keep the id");
    wait_until(
        &f.session,
        "the replaced banner",
        "notification-replaced",
        |shot| f.banner_shown(shot) && changed_share(shot, &first, f.banner()) > 0.001,
    );
    // Replacing closes nothing.
    assert!(f.heard().is_empty(), "{:?}", f.heard());

    zbus::block_on(f.proxy.close_notification(id)).unwrap_or_else(|e| panic!("{e}"));
    f.wait_heard(&Heard::Closed(id, 3));
    // One notification was open: after closing it nothing is left (a replacement that had
    // added a second one would still show).
    wait_until(
        &f.session,
        "the banner closed",
        "notification-closed",
        |shot| f.banner_gone(shot) && !f.dot_shown(shot),
    );
    // Closing it again (or an unknown id) is no error and says nothing.
    zbus::block_on(f.proxy.close_notification(id)).unwrap_or_else(|e| panic!("{e}"));
    zbus::block_on(f.proxy.close_notification(424242)).unwrap_or_else(|e| panic!("{e}"));
    let closed = |h: &&Heard| matches!(h, Heard::Closed(..));
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        f.heard().iter().filter(closed).count(),
        1,
        "{:?}",
        f.heard()
    );
}

#[test]
fn a_notification_expires_after_its_timeout() {
    let f = Fixture::start();
    let id = f.send_id(&["-t", "300", "Timer", "Short-lived"]);
    f.wait_heard(&Heard::Closed(id, 1));
    wait_until(
        &f.session,
        "the expired banner gone",
        "notification-expired",
        |shot| f.banner_gone(shot) && !f.dot_shown(shot),
    );
}

#[test]
fn hostile_calls_are_bounded_and_harmless() {
    let f = Fixture::start();
    let huge = "x".repeat(1 << 20);
    let mut bad_hints: HashMap<&str, zbus::Variant<'_>> = HashMap::new();
    bad_hints.insert("urgency", zbus::Variant::from("very"));
    bad_hints.insert("image-data", zbus::Variant::from(7u32));
    // Huge strings, wrong-typed hints, an odd action list, a silly timeout.
    let id = zbus::block_on(f.proxy.notify(
        &huge,
        0,
        &huge,
        &huge,
        &huge,
        &["default", "Open", "dangling"],
        bad_hints,
        i32::MIN,
    ))
    .unwrap_or_else(|e| panic!("Notify with huge strings: {e}"));
    assert!(id > 0);
    wait_until(
        &f.session,
        "the banner of the huge notification",
        "notification-huge",
        |shot| f.banner_changed(shot) > 0.8,
    );
    // A flood: only MAX_OPEN stay open; the oldest are closed (reason 4) as new ones come.
    let flood = MAX_OPEN as u32 + 8;
    let mut ids = vec![id];
    for i in 0..flood {
        let summary = format!("flood {i}");
        ids.push(
            zbus::block_on(
                f.proxy
                    .notify("flood", 0, "", &summary, "", &[], HashMap::new(), 0),
            )
            .unwrap_or_else(|e| panic!("Notify {i}: {e}")),
        );
    }
    let dropped = ids.len() - MAX_OPEN;
    for old in &ids[..dropped] {
        f.wait_heard(&Heard::Closed(*old, 4));
    }
    std::thread::sleep(Duration::from_millis(200));
    let closed = f
        .heard()
        .iter()
        .filter(|h| matches!(h, Heard::Closed(..)))
        .count();
    assert_eq!(closed, dropped, "{:?}", f.heard());
    assert!(f.session.is_running(), "the compositor died");
    wait_until(
        &f.session,
        "the flood's newest banner",
        "notification-flood",
        |shot| f.banner_shown(shot) || f.banner_changed(shot) > 0.8,
    );
}

#[test]
fn a_replacement_gets_its_own_timeout() {
    let f = Fixture::start();
    let id = f.send_id(&["-t", "300", "Uploading", "1 of 3"]);
    // Replaced before it expires by a version shown until dismissed.
    let again = f.send_id(&[
        "-r",
        &id.to_string(),
        "-t",
        "0",
        "Upload paused",
        "Tap to resume",
    ]);
    assert_eq!(again, id);
    // A later notification with a longer timeout: the loop fires timers in deadline order, so
    // once this one has expired the first version's timer has run too.
    let later = f.send_id(&["-t", "600", "Later", "Expires"]);
    f.wait_heard(&Heard::Closed(later, 1));
    assert!(
        !f.heard().contains(&Heard::Closed(id, 1)),
        "the replaced notification expired on its old timer: {:?}",
        f.heard()
    );
    wait_until(
        &f.session,
        "the replacement still shown",
        "notification-kept",
        |shot| f.banner_shown(shot) && f.dot_shown(shot),
    );
}

#[test]
fn a_bus_that_starts_after_the_compositor_is_served() {
    let f = Fixture::start_with(false);
    let id = f.send_id(&["-t", "0", "Late bus", "Still delivered"]);
    wait_until(
        &f.session,
        "the banner via a late bus",
        "notification-late-bus",
        |shot| f.banner_shown(shot),
    );
    zbus::block_on(f.proxy.close_notification(id)).unwrap_or_else(|e| panic!("{e}"));
    f.wait_heard(&Heard::Closed(id, 3));
}
