//! Desktop notifications: the compositor serves `org.freedesktop.Notifications` (Desktop
//! Notifications spec 1.2) so `notify-send` and every libnotify/GNotification app works, and the
//! shell shows each new notification as a banner under the status bar.
//!
//! Threads: zbus runs the D-Bus side on its own thread and executor ([`start`]); each validated
//! call becomes a [`BusEvent`] on a calloop channel, handled on the compositor's loop, which owns the
//! [`Store`] of open notifications. The loop answers with [`Signal`]s (NotificationClosed,
//! ActionInvoked) over a std channel that the bus thread emits.
//!
//! Everything from the bus is untrusted: strings are cut to [`MAX_TEXT`]/[`MAX_BODY`] characters
//! and stripped of control characters, hints of the wrong type are ignored, actions are bounded,
//! and at most [`MAX_OPEN`] notifications are kept (the oldest is closed, reason 4, when a new one
//! would exceed that).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use cirrus_ui::IRect;
use cirrus_ui::shell::ShellLayout;
use cirrus_ui::text::{HAlign, TextRenderer, TextStyle};
use cirrus_ui::theme;
use cirrus_ui::tiny_skia::{self, FillRule, Paint, PathBuilder, Pixmap, Transform};
use smithay::reexports::calloop::channel::Sender as LoopSender;
use zbus::OwnedVariant as OwnedValue;
use zbus::object_server::SignalEmitter;

/// The well-known name served.
pub const BUS_NAME: &str = "org.freedesktop.Notifications";
/// The object path served.
pub const OBJECT_PATH: &str = "/org/freedesktop/Notifications";
/// Longest app name / summary / action label kept, in characters.
pub const MAX_TEXT: usize = 256;
/// Longest body kept, in characters.
pub const MAX_BODY: usize = 2048;
/// Most actions kept per notification.
pub const MAX_ACTIONS: usize = 8;
/// Most notifications kept open at once.
pub const MAX_OPEN: usize = 32;
/// How long a banner stays when the sender leaves it to the server (`expire_timeout` = -1).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest timeout honoured (a sender asking for more gets this).
pub const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);

/// Which bus to serve notifications on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotificationBus {
    /// No notification server.
    None,
    /// The system bus (`$DBUS_SYSTEM_BUS_ADDRESS`, else the standard socket): the device.
    System,
    /// A bus at this address (`unix:path=…`): tests, development.
    Address(String),
}

/// Why a notification closed (the spec's NotificationClosed reason codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum CloseReason {
    Expired = 1,
    Dismissed = 2,
    /// Closed by a CloseNotification call.
    Closed = 3,
    /// Any other reason; here: dropped because too many were open.
    Undefined = 4,
}

/// Urgency hint (spec: byte 0 low, 1 normal, 2 critical).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Urgency {
    Low,
    #[default]
    Normal,
    Critical,
}

/// A validated notification.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub id: u32,
    pub app_name: String,
    pub summary: String,
    pub body: String,
    /// (key, label) pairs; the key "default" is what a tap on the banner invokes.
    pub actions: Vec<(String, String)>,
    pub urgency: Urgency,
    /// `None` = shown until dismissed.
    pub timeout: Option<Duration>,
}

impl Notification {
    pub fn has_default_action(&self) -> bool {
        self.actions.iter().any(|(key, _)| key == "default")
    }
}

/// What the bus thread hands to the compositor's loop.
#[derive(Debug, Clone, PartialEq)]
pub enum BusEvent {
    /// Show (or, for an id already open, replace) a notification.
    Notify(Notification),
    /// A CloseNotification call.
    Close(u32),
}

/// What the loop asks the bus thread to emit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    Closed { id: u32, reason: CloseReason },
    ActionInvoked { id: u32, action: String },
}

/// Keeps the printable part of `text`, at most `max` characters; line breaks and tabs become spaces.
pub fn sanitize(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max * 4));
    let mut kept = 0;
    for c in text.chars() {
        if kept >= max {
            break;
        }
        match c {
            '\n' | '\r' | '\t' => out.push(' '),
            c if c.is_control() => continue,
            c => out.push(c),
        }
        kept += 1;
    }
    out
}

/// The spec's `expire_timeout` (ms; -1 = server default, 0 = never) as a duration.
pub fn timeout_from(expire_timeout: i32, urgency: Urgency) -> Option<Duration> {
    match expire_timeout {
        0 => None,
        // Critical notifications stay until dismissed unless the sender set a timeout (spec).
        t if t < 0 && urgency == Urgency::Critical => None,
        t if t < 0 => Some(DEFAULT_TIMEOUT),
        t => Some(Duration::from_millis(t as u64).min(MAX_TIMEOUT)),
    }
}

/// Reads the urgency hint; a missing hint or one of the wrong type or range means normal.
pub fn urgency_from(hints: &HashMap<String, OwnedValue>) -> Urgency {
    let Some(value) = hints.get("urgency") else {
        return Urgency::Normal;
    };
    match u8::try_from(value) {
        Ok(0) => Urgency::Low,
        Ok(2) => Urgency::Critical,
        _ => Urgency::Normal,
    }
}

/// Pairs up the spec's flat action list (key, label, key, label, …), bounded and sanitised.
pub fn actions_from(actions: &[String]) -> Vec<(String, String)> {
    actions
        .chunks_exact(2)
        .take(MAX_ACTIONS)
        .map(|pair| (sanitize(&pair[0], MAX_TEXT), sanitize(&pair[1], MAX_TEXT)))
        .filter(|(key, _)| !key.is_empty())
        .collect()
}

/// The open notifications, oldest first.
#[derive(Debug, Default)]
pub struct Store {
    open: Vec<Notification>,
    /// Bumped on every change of a notification, so a stale expiry timer can tell.
    serials: HashMap<u32, u64>,
    next_serial: u64,
}

impl Store {
    /// Shows `n`, replacing the open one with its id if any. Returns the serial of this version
    /// (for its expiry) and the notifications dropped to stay within [`MAX_OPEN`].
    pub fn add(&mut self, n: Notification) -> (u64, Vec<Signal>) {
        self.next_serial += 1;
        let serial = self.next_serial;
        self.serials.insert(n.id, serial);
        let mut dropped = Vec::new();
        if let Some(slot) = self.open.iter_mut().find(|o| o.id == n.id) {
            *slot = n;
        } else {
            self.open.push(n);
            while self.open.len() > MAX_OPEN {
                let old = self.open.remove(0);
                self.serials.remove(&old.id);
                dropped.push(Signal::Closed {
                    id: old.id,
                    reason: CloseReason::Undefined,
                });
            }
        }
        (serial, dropped)
    }

    /// Closes `id` if open.
    pub fn close(&mut self, id: u32, reason: CloseReason) -> Option<Signal> {
        let index = self.open.iter().position(|n| n.id == id)?;
        self.open.remove(index);
        self.serials.remove(&id);
        Some(Signal::Closed { id, reason })
    }

    /// Closes `id` as expired, unless it changed since the timer for `serial` was set.
    pub fn expire(&mut self, id: u32, serial: u64) -> Option<Signal> {
        if self.serials.get(&id) != Some(&serial) {
            return None;
        }
        self.close(id, CloseReason::Expired)
    }

    /// The notification the banner shows: the newest open one.
    pub fn banner(&self) -> Option<&Notification> {
        self.open.last()
    }

    pub fn is_open(&self, id: u32) -> bool {
        self.serials.contains_key(&id)
    }

    pub fn len(&self) -> usize {
        self.open.len()
    }

    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }
}

/// The served object. Runs on the bus thread.
pub struct NotificationServer {
    to_loop: LoopSender<BusEvent>,
    /// The last id handed out; ids start at 1 (0 means "none" in the spec).
    last_id: AtomicU32,
}

impl NotificationServer {
    pub fn new(to_loop: LoopSender<BusEvent>) -> Self {
        Self {
            to_loop,
            last_id: AtomicU32::new(0),
        }
    }

    fn send(&self, event: BusEvent) -> zbus::fdo::Result<()> {
        self.to_loop
            .send(event)
            .map_err(|_| zbus::fdo::Error::Failed("the compositor is shutting down".into()))
    }

    /// The id for a Notify call: `replaces_id` if it is one we handed out, else a new one.
    fn id_for(&self, replaces_id: u32) -> u32 {
        if replaces_id != 0 && replaces_id <= self.last_id.load(Ordering::SeqCst) {
            return replaces_id;
        }
        let id = self.last_id.fetch_add(1, Ordering::SeqCst).wrapping_add(1);
        if id == 0 {
            // Wrapped after 4 billion notifications: skip 0.
            self.last_id.fetch_add(1, Ordering::SeqCst).wrapping_add(1)
        } else {
            id
        }
    }
}

#[zbus::interface(name = "org.freedesktop.Notifications")]
impl NotificationServer {
    /// What this server supports: actions (a tap invokes "default") and plain-text bodies.
    fn get_capabilities(&self) -> Vec<String> {
        vec!["actions".into(), "body".into()]
    }

    #[allow(clippy::too_many_arguments)]
    fn notify(
        &self,
        app_name: &str,
        replaces_id: u32,
        _app_icon: &str,
        summary: &str,
        body: &str,
        actions: Vec<String>,
        hints: HashMap<String, OwnedValue>,
        expire_timeout: i32,
    ) -> zbus::fdo::Result<u32> {
        let urgency = urgency_from(&hints);
        let id = self.id_for(replaces_id);
        let notification = Notification {
            id,
            app_name: sanitize(app_name, MAX_TEXT),
            summary: sanitize(summary, MAX_TEXT),
            body: sanitize(body, MAX_BODY),
            actions: actions_from(&actions),
            urgency,
            timeout: timeout_from(expire_timeout, urgency),
        };
        tracing::debug!(id, app = %notification.app_name, "notification");
        self.send(BusEvent::Notify(notification))?;
        Ok(id)
    }

    fn close_notification(&self, id: u32) -> zbus::fdo::Result<()> {
        self.send(BusEvent::Close(id))
    }

    /// (name, vendor, version, spec version).
    fn get_server_information(&self) -> (String, String, String, String) {
        (
            "Cirrus".into(),
            "Cirrus".into(),
            env!("CARGO_PKG_VERSION").into(),
            "1.2".into(),
        )
    }

    #[zbus(signal)]
    async fn notification_closed(
        emitter: &SignalEmitter<'_>,
        id: u32,
        reason: u32,
    ) -> zbus::Result<()>;

    #[zbus(signal)]
    async fn action_invoked(
        emitter: &SignalEmitter<'_>,
        id: u32,
        action_key: &str,
    ) -> zbus::Result<()>;
}

/// The address of `bus`, or `None` for [`NotificationBus::None`].
fn bus_address(bus: &NotificationBus) -> Option<String> {
    match bus {
        NotificationBus::None => None,
        NotificationBus::Address(a) => Some(a.clone()),
        NotificationBus::System => Some(
            std::env::var("DBUS_SYSTEM_BUS_ADDRESS")
                .ok()
                .filter(|a| !a.is_empty())
                .unwrap_or_else(|| "unix:path=/run/dbus/system_bus_socket".into()),
        ),
    }
}

/// Longest pause between attempts to reach a bus that is not up yet.
const RETRY_MAX: Duration = Duration::from_secs(5);

/// Starts serving on `bus` from a thread of its own; the loop gets [`BusEvent`]s on `to_loop` and
/// sends [`Signal`]s on the returned sender. `None` when `bus` is [`NotificationBus::None`] or the
/// thread cannot start. A bus that cannot be reached is logged and retried, never fatal: the
/// shell runs on without notifications until it can serve them.
pub fn start(
    bus: &NotificationBus,
    to_loop: LoopSender<BusEvent>,
) -> Option<std::sync::mpsc::Sender<Signal>> {
    let address = bus_address(bus)?;
    let (signals, from_loop) = std::sync::mpsc::channel::<Signal>();
    let spawned = std::thread::Builder::new()
        .name("notifications-bus".into())
        .spawn(move || serve(address, to_loop, from_loop));
    match spawned {
        Ok(_) => Some(signals),
        Err(err) => {
            tracing::error!(%err, "could not start the notification server thread");
            None
        }
    }
}

fn connect(address: &str, to_loop: LoopSender<BusEvent>) -> zbus::Result<zbus::Connection> {
    let builder = zbus::connection::Builder::address(address)
        .name(BUS_NAME)
        .serve_at(OBJECT_PATH, NotificationServer::new(to_loop));
    zbus::block_on(builder.build())
}

fn serve(
    address: String,
    to_loop: LoopSender<BusEvent>,
    from_loop: std::sync::mpsc::Receiver<Signal>,
) {
    // The bus may start after the compositor (which never waits for it to draw): keep trying,
    // backing off to RETRY_MAX, and say so once.
    let mut pause = Duration::from_millis(250);
    let mut reported = false;
    let conn = loop {
        match connect(&address, to_loop.clone()) {
            Ok(conn) => break conn,
            Err(err) => {
                if !reported {
                    tracing::warn!(%address, %err, "cannot serve {BUS_NAME} yet; retrying");
                    reported = true;
                }
                std::thread::sleep(pause);
                pause = (pause * 2).min(RETRY_MAX);
            }
        }
    };
    tracing::info!(%address, "serving {BUS_NAME}");
    let emitter = match SignalEmitter::new(&conn, OBJECT_PATH) {
        Ok(e) => e,
        Err(err) => {
            tracing::error!(%err, "notification signals");
            return;
        }
    };
    // Ends when the compositor drops its sender (it stopped).
    for signal in from_loop {
        let result = match &signal {
            Signal::Closed { id, reason } => zbus::block_on(
                NotificationServer::notification_closed(&emitter, *id, *reason as u32),
            ),
            Signal::ActionInvoked { id, action } => {
                zbus::block_on(NotificationServer::action_invoked(&emitter, *id, action))
            }
        };
        if let Err(err) = result {
            tracing::warn!(%err, ?signal, "could not emit a notification signal");
        }
    }
}

/// Where the banner goes: under the status bar, inset by 8 dp, 76 dp tall (physical pixels).
pub fn banner_rect(layout: &ShellLayout) -> IRect {
    let dp = |v: f32| (v * layout.scale).round() as i32;
    let margin = dp(8.0);
    IRect::new(
        margin,
        layout.status_bar.bottom() + margin,
        (layout.width as i32 - 2 * margin).max(1) as u32,
        dp(76.0).max(1) as u32,
    )
}

/// Where the unread indicator goes: a dot right of the clock, in the status bar.
pub fn indicator_rect(layout: &ShellLayout) -> IRect {
    let size = (8.0 * layout.scale).round().max(2.0) as i32;
    let bar = layout.status_bar;
    IRect::new(
        layout.clock.right() + (4.0 * layout.scale).round() as i32,
        bar.y + (bar.height as i32 - size) / 2,
        size as u32,
        size as u32,
    )
}

/// `text` cut (with an ellipsis) to fit `width` pixels in `style`.
fn fit(text: &mut TextRenderer, line: &str, style: &TextStyle, width: f32) -> String {
    if text.measure(line, style).0 <= width {
        return line.to_string();
    }
    let chars: Vec<char> = line.chars().collect();
    // Longest prefix that fits with the ellipsis: binary search on the character count.
    let (mut lo, mut hi) = (0usize, chars.len());
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        let candidate: String = chars[..mid].iter().collect::<String>() + "…";
        if text.measure(&candidate, style).0 <= width {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    let kept: String = chars[..lo].iter().collect();
    format!("{}…", kept.trim_end())
}

/// Draws the banner for `n` into `pixmap` (the size of [`banner_rect`]): a rounded card in the
/// status bar's colours with the app name, the summary (bold) and the body's first line.
pub fn draw_banner(pixmap: &mut Pixmap, n: &Notification, scale: f32, text: &mut TextRenderer) {
    let (w, h) = (pixmap.width() as f32, pixmap.height() as f32);
    let mut paint = Paint {
        anti_alias: true,
        ..Default::default()
    };
    paint.set_color(theme::color(theme::STATUS_BAR_BG));
    if let Some(path) = tiny_skia::Rect::from_xywh(0.0, 0.0, w, h)
        .and_then(|r| cirrus_ui::shape::rounded_rect(r, 14.0 * scale))
    {
        pixmap.fill_path(
            &path,
            &paint,
            FillRule::Winding,
            Transform::identity(),
            None,
        );
    }
    if n.urgency == Urgency::Critical {
        paint.set_color(theme::color(theme::BATTERY_LOW));
        if let Some(rect) =
            tiny_skia::Rect::from_xywh(0.0, 14.0 * scale, 4.0 * scale, h - 28.0 * scale)
        {
            pixmap.fill_rect(rect, &paint, Transform::identity(), None);
        }
    }
    let dp = |v: f32| (v * scale).round() as i32;
    let pad = dp(14.0);
    let inner = (w as i32 - 2 * pad).max(1);
    let rows = [
        (
            n.app_name.as_str(),
            TextStyle {
                size_px: 12.0 * scale,
                color: theme::LOCK_HINT,
                bold: false,
            },
            dp(10.0),
            dp(16.0),
        ),
        (
            n.summary.as_str(),
            TextStyle {
                size_px: 15.0 * scale,
                color: theme::STATUS_BAR_TEXT,
                bold: true,
            },
            dp(28.0),
            dp(20.0),
        ),
        (
            n.body.as_str(),
            TextStyle {
                size_px: 13.0 * scale,
                color: theme::LOCK_HINT,
                bold: false,
            },
            dp(48.0),
            dp(18.0),
        ),
    ];
    for (line, style, y, height) in rows {
        if line.trim().is_empty() {
            continue;
        }
        let shown = fit(text, line.trim(), &style, inner as f32);
        let area = IRect::new(pad, y, inner as u32, height.max(1) as u32);
        text.draw_line(pixmap, &shown, &style, area, HAlign::Left);
    }
}

/// Draws the unread indicator (a dot) into `pixmap` (the size of [`indicator_rect`]).
pub fn draw_indicator(pixmap: &mut Pixmap) {
    let d = pixmap.width().min(pixmap.height()) as f32;
    let mut paint = Paint {
        anti_alias: true,
        ..Default::default()
    };
    paint.set_color(theme::color(theme::STATUS_BAR_TEXT));
    if let Some(path) = PathBuilder::from_circle(d / 2.0, d / 2.0, d / 2.0) {
        pixmap.fill_path(
            &path,
            &paint,
            FillRule::Winding,
            Transform::identity(),
            None,
        );
    }
}

impl crate::state::State {
    /// Sends `signal` to the bus thread (if a notification server runs).
    pub fn emit_notification_signal(&self, signal: Signal) {
        if let Some(signals) = &self.notification_signals {
            // The bus thread gone means no server: nothing to tell.
            let _ = signals.send(signal);
        }
    }

    /// Brings the banner and the unread indicator in line with the open notifications.
    pub fn refresh_notifications(&mut self) {
        let banner_changed = self.shell.set_banner(self.notifications.banner());
        let unread_changed = self.shell.set_unread(!self.notifications.is_empty());
        if banner_changed || unread_changed {
            self.needs_redraw = true;
        }
    }

    /// Handles a call from the bus; returns the serial and timeout of a notification to expire.
    pub fn on_bus_event(&mut self, event: BusEvent) -> Option<(u32, u64, Duration)> {
        let expiry = match event {
            BusEvent::Notify(n) => {
                let (id, timeout) = (n.id, n.timeout);
                let (serial, dropped) = self.notifications.add(n);
                for signal in dropped {
                    self.emit_notification_signal(signal);
                }
                timeout.map(|t| (id, serial, t))
            }
            BusEvent::Close(id) => {
                // Spec: closing an unknown (or already closed) id is not an error, and emits nothing.
                if let Some(signal) = self.notifications.close(id, CloseReason::Closed) {
                    self.emit_notification_signal(signal);
                }
                None
            }
        };
        self.refresh_notifications();
        expiry
    }

    /// The timer of version `serial` of notification `id` ran out.
    pub fn expire_notification(&mut self, id: u32, serial: u64) {
        if let Some(signal) = self.notifications.expire(id, serial) {
            self.emit_notification_signal(signal);
            self.refresh_notifications();
        }
    }

    /// Whether the banner covers the physical point (`x`, `y`).
    pub fn banner_hit(&self, x: i32, y: i32) -> bool {
        self.shell
            .banner()
            .is_some_and(|(_, rect)| rect.contains(x, y))
    }

    /// The user dismissed the banner; a tap (`tapped`) also invokes its "default" action.
    pub fn dismiss_banner(&mut self, tapped: bool) {
        let Some(id) = self.shell.banner_id() else {
            return;
        };
        let invoke = tapped
            && self
                .notifications
                .banner()
                .is_some_and(Notification::has_default_action);
        if invoke {
            self.emit_notification_signal(Signal::ActionInvoked {
                id,
                action: "default".into(),
            });
        }
        if let Some(signal) = self.notifications.close(id, CloseReason::Dismissed) {
            self.emit_notification_signal(signal);
        }
        self.refresh_notifications();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(id: u32) -> Notification {
        Notification {
            id,
            app_name: "app".into(),
            summary: format!("n{id}"),
            body: String::new(),
            actions: vec![],
            urgency: Urgency::Normal,
            timeout: Some(DEFAULT_TIMEOUT),
        }
    }

    #[test]
    fn sanitize_cuts_and_strips() {
        assert_eq!(sanitize("a\nb\u{7}c", 10), "a bc");
        assert_eq!(sanitize(&"é".repeat(5000), 3), "ééé");
    }

    #[test]
    fn timeouts() {
        assert_eq!(timeout_from(0, Urgency::Normal), None);
        assert_eq!(timeout_from(-1, Urgency::Normal), Some(DEFAULT_TIMEOUT));
        assert_eq!(timeout_from(-1, Urgency::Critical), None);
        assert_eq!(timeout_from(i32::MIN, Urgency::Low), Some(DEFAULT_TIMEOUT));
        assert_eq!(
            timeout_from(250, Urgency::Normal),
            Some(Duration::from_millis(250))
        );
        assert_eq!(timeout_from(i32::MAX, Urgency::Normal), Some(MAX_TIMEOUT));
    }

    #[test]
    fn bad_hints_are_ignored() {
        let mut hints = HashMap::new();
        hints.insert("urgency".to_string(), OwnedValue::from(2u8));
        assert_eq!(urgency_from(&hints), Urgency::Critical);
        hints.insert("urgency".to_string(), OwnedValue::from(9u8));
        assert_eq!(urgency_from(&hints), Urgency::Normal);
        if let Ok(loud) = OwnedValue::try_from(zbus::Variant::from("loud")) {
            hints.insert("urgency".to_string(), loud);
            assert_eq!(urgency_from(&hints), Urgency::Normal);
        }
    }

    #[test]
    fn actions_are_paired_and_bounded() {
        let flat: Vec<String> = (0..41).map(|i| format!("k{i}")).collect();
        let pairs = actions_from(&flat);
        assert_eq!(pairs.len(), MAX_ACTIONS);
        assert_eq!(pairs[0], ("k0".to_string(), "k1".to_string()));
        assert!(actions_from(&["".into(), "label".into()]).is_empty());
    }

    #[test]
    fn store_replaces_bounds_and_expires() {
        let mut store = Store::default();
        let (s1, dropped) = store.add(note(1));
        assert!(dropped.is_empty());
        let (s1b, _) = store.add(Notification {
            summary: "again".into(),
            ..note(1)
        });
        assert_eq!(store.len(), 1);
        assert_eq!(store.banner().map(|n| n.summary.as_str()), Some("again"));
        // The first version's timer is stale after the replacement.
        assert_eq!(store.expire(1, s1), None);
        assert_eq!(
            store.expire(1, s1b),
            Some(Signal::Closed {
                id: 1,
                reason: CloseReason::Expired
            })
        );
        assert!(store.is_empty());
        let mut dropped = Vec::new();
        for id in 10..(10 + MAX_OPEN as u32 + 3) {
            dropped.extend(store.add(note(id)).1);
        }
        assert_eq!(store.len(), MAX_OPEN);
        assert_eq!(dropped.len(), 3);
        assert_eq!(
            dropped[0],
            Signal::Closed {
                id: 10,
                reason: CloseReason::Undefined
            }
        );
        assert_eq!(store.close(10, CloseReason::Closed), None);
    }

    #[test]
    fn ids_reuse_only_known_replaces_ids() {
        let (tx, _rx) = smithay::reexports::calloop::channel::channel();
        let server = NotificationServer::new(tx);
        assert_eq!(server.id_for(0), 1);
        assert_eq!(server.id_for(0), 2);
        assert_eq!(server.id_for(1), 1);
        assert_eq!(server.id_for(999), 3);
    }

    #[test]
    fn long_text_is_ellipsised_to_fit() {
        let mut text = TextRenderer::new();
        let style = TextStyle {
            size_px: 15.0,
            color: [255, 255, 255],
            bold: false,
        };
        let long = "word ".repeat(200);
        let shown = fit(&mut text, &long, &style, 200.0);
        assert!(shown.ends_with('…'));
        assert!(text.measure(&shown, &style).0 <= 200.0);
        assert_eq!(fit(&mut text, "short", &style, 200.0), "short");
    }
}
