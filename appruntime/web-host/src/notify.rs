//! The web `Notification` API mapped to the system's `org.freedesktop.Notifications`: WebKit
//! implements the standard API (permission per origin, `show`/`close` events) and hands each shown
//! notification to the host, which posts it on the bus the app manager named (`--bus-address`; the
//! system bus on the device, where the compositor serves notifications). The bus is only connected
//! to when the app holds the `notifications` permission and shows one.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use gtk::gio;
use gtk::glib;
use gtk::glib::ToVariant;
use webkit2gtk::{Notification, NotificationExt};

const BUS_NAME: &str = "org.freedesktop.Notifications";
const OBJECT_PATH: &str = "/org/freedesktop/Notifications";

/// Longest title/body passed on (the notification server clips further).
const MAX_TITLE: usize = 256;
const MAX_BODY: usize = 4096;

fn clip(text: &str, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// Posts an app's notifications.
pub struct Notifier {
    app_id: String,
    app_name: String,
    address: Option<String>,
    connection: RefCell<Option<gio::DBusConnection>>,
    /// WebKit notification id → the server's id (to close it).
    shown: Rc<RefCell<HashMap<u64, u32>>>,
}

impl Notifier {
    pub fn new(app_id: &str, app_name: &str, address: Option<String>) -> Notifier {
        Notifier {
            app_id: app_id.to_owned(),
            app_name: app_name.to_owned(),
            address,
            connection: RefCell::new(None),
            shown: Rc::default(),
        }
    }

    fn connection(&self) -> Option<gio::DBusConnection> {
        if let Some(c) = self.connection.borrow().as_ref() {
            return Some(c.clone());
        }
        let address = self.address.as_deref()?;
        match gio::DBusConnection::for_address_sync(
            address,
            gio::DBusConnectionFlags::AUTHENTICATION_CLIENT
                | gio::DBusConnectionFlags::MESSAGE_BUS_CONNECTION,
            None,
            None::<&gio::Cancellable>,
        ) {
            Ok(c) => {
                *self.connection.borrow_mut() = Some(c.clone());
                Some(c)
            }
            Err(e) => {
                tracing::warn!(app = %self.app_id, %address, "cannot reach the notification bus: {e}");
                None
            }
        }
    }

    /// Shows `notification` (WebKit already checked the page may).
    pub fn show(&self, notification: &Notification) {
        let Some(conn) = self.connection() else {
            return;
        };
        let title = clip(notification.title().as_deref().unwrap_or(""), MAX_TITLE);
        let body = clip(notification.body().as_deref().unwrap_or(""), MAX_BODY);
        let web_id = notification.id();
        let replaces = self.shown.borrow().get(&web_id).copied().unwrap_or(0);
        let hints = glib::VariantDict::new(None);
        hints.insert_value(
            "desktop-entry",
            &format!("cirrus-app-{}", self.app_id).to_variant(),
        );
        // Built element by element: the hints must stay `a{sv}` (a tuple of a `Variant` would box
        // it as `v`, and the server refuses the call's signature).
        let params = glib::Variant::tuple_from_iter([
            self.app_name.to_variant(),
            replaces.to_variant(),
            "".to_variant(),
            title.to_variant(),
            body.to_variant(),
            Vec::<String>::new().to_variant(),
            hints.end(),
            (-1i32).to_variant(),
        ]);
        let shown = self.shown.clone();
        let app = self.app_id.clone();
        conn.call(
            Some(BUS_NAME),
            OBJECT_PATH,
            BUS_NAME,
            "Notify",
            Some(&params),
            glib::VariantTy::new("(u)").ok(),
            gio::DBusCallFlags::NONE,
            5000,
            None::<&gio::Cancellable>,
            move |reply| match reply {
                Ok(v) => {
                    if let Some((id,)) = v.get::<(u32,)>() {
                        shown.borrow_mut().insert(web_id, id);
                        tracing::info!(%app, id, "notification shown");
                    }
                }
                Err(e) => tracing::warn!(%app, "Notify failed: {e}"),
            },
        );
    }

    /// The page closed `notification`: close it on the server too.
    pub fn close(&self, notification: &Notification) {
        let Some(id) = self.shown.borrow_mut().remove(&notification.id()) else {
            return;
        };
        if let Some(conn) = self.connection() {
            conn.call(
                Some(BUS_NAME),
                OBJECT_PATH,
                BUS_NAME,
                "CloseNotification",
                Some(&(id,).to_variant()),
                None,
                gio::DBusCallFlags::NONE,
                5000,
                None::<&gio::Cancellable>,
                |_| {},
            );
        }
    }
}
