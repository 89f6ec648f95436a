//! `navigator.cirrus.system`: system state for the platform's own apps (Settings). Only a host
//! started with `--system-bus ADDRESS` has it — the app manager passes the system bus only to
//! apps signed with the platform key — and it offers one read-only call today:
//! `syncStatus()`, org.cirrus.Sync1's `Status()` (open to everyone on the bus) as an object.
//!
//! Requests come through their own script message handler (`cirrusSystem`, registered only
//! then), answered through `window.__cirrusSystem.reply`.

use std::cell::RefCell;
use std::rc::Rc;

use gtk::{gio, glib};

/// The script message handler's name.
pub const HANDLER: &str = "cirrusSystem";
/// Largest message from a page.
const MAX_MESSAGE_BYTES: usize = 1024;
/// How long a bus call may take.
const CALL_TIMEOUT_MS: i32 = 5000;

/// A valid request: `(request id, operation)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    SyncStatus,
}

/// Parses one message posted to the `cirrusSystem` handler.
pub fn parse_request(text: &str) -> Result<(u32, Request), String> {
    if text.len() > MAX_MESSAGE_BYTES {
        return Err(format!("the message is {} bytes", text.len()));
    }
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let id = value
        .get("id")
        .and_then(|v| v.as_u64())
        .and_then(|v| u32::try_from(v).ok())
        .ok_or("field `id` is missing or not a number")?;
    match value.get("op").and_then(|v| v.as_str()) {
        Some("sync-status") => Ok((id, Request::SyncStatus)),
        _ => Err("unknown operation".into()),
    }
}

/// org.cirrus.Sync1 `Status()`'s reply (a struct `(sstttttuasb…)`) as the page's object.
pub fn sync_status_json(reply: &glib::Variant) -> Option<serde_json::Value> {
    // One struct argument, or its fields as the reply's arguments (how zbus sends a returned
    // struct): both are read.
    let first = reply.try_child_value(0)?;
    let status = if reply.n_children() == 1 && first.is_container() {
        first
    } else {
        reply.clone()
    };
    let s = |i: usize| status.try_child_value(i)?.get::<String>();
    let i64_at = |i: usize| status.try_child_value(i)?.get::<i64>();
    let u64_at = |i: usize| status.try_child_value(i)?.get::<u64>();
    Some(serde_json::json!({
        "state": s(0)?,
        "detail": s(1)?,
        "lastSyncMs": i64_at(2)?,
        "filesDone": u64_at(3)?,
        "filesTotal": u64_at(4)?,
        "bytesDone": u64_at(5)?,
        "bytesTotal": u64_at(6)?,
        "heldDeletes": status.try_child_value(7)?.get::<u32>()?,
        "errors": status.try_child_value(8)?.get::<Vec<String>>()?,
        "paused": status.try_child_value(9)?.get::<bool>()?,
    }))
}

fn reply_call(id: u32, result: Result<serde_json::Value, String>) -> String {
    let (ok, value) = match result {
        Ok(v) => (true, v),
        Err(e) => (false, serde_json::Value::from(e)),
    };
    format!("window.__cirrusSystem && window.__cirrusSystem.reply({id}, {ok}, {value});")
}

const SCRIPT: &str = r#"(() => {
  'use strict';
  const handler = window.webkit && window.webkit.messageHandlers && window.webkit.messageHandlers.cirrusSystem;
  if (!handler || !navigator.cirrus) return;
  const pending = new Map();
  let next = 1;
  const call = (op) => new Promise((resolve, reject) => {
    const id = next++;
    pending.set(id, { resolve, reject });
    handler.postMessage(JSON.stringify({ id, op }));
  });
  Object.defineProperty(navigator.cirrus, 'system', {
    configurable: false, enumerable: true, writable: false,
    value: Object.freeze({ syncStatus() { return call('sync-status'); } }),
  });
  Object.defineProperty(window, '__cirrusSystem', {
    configurable: false, writable: false, enumerable: false,
    value: Object.freeze({
      reply(id, ok, value) {
        const p = pending.get(id);
        if (!p) return;
        pending.delete(id);
        if (ok) p.resolve(value); else p.reject(new Error(String(value)));
      },
    }),
  });
})();"#;

/// Gives the pages of `origin` in `view` `navigator.cirrus.system` over the bus at `address`.
/// Call before the first load.
pub fn attach(
    content: &webkit2gtk::UserContentManager,
    view: &webkit2gtk::WebView,
    address: &str,
    origin: &str,
    app_id: &str,
) {
    use javascriptcore::ValueExt;
    use webkit2gtk::{
        UserContentInjectedFrames, UserContentManagerExt, UserScript, UserScriptInjectionTime,
        WebViewExt,
    };
    let own_pages = format!("{origin}/*");
    content.add_script(&UserScript::new(
        SCRIPT,
        UserContentInjectedFrames::TopFrame,
        UserScriptInjectionTime::Start,
        &[own_pages.as_str()],
        &[],
    ));
    content.register_script_message_handler(HANDLER);
    let connection: Rc<RefCell<Option<gio::DBusConnection>>> = Rc::new(RefCell::new(None));
    let address = address.to_owned();
    let view = view.clone();
    let origin = origin.to_owned();
    let id = app_id.to_owned();
    content.connect_script_message_received(Some(HANDLER), move |_, result| {
        let page = view.uri().map(|u| u.to_string()).unwrap_or_default();
        if !page.starts_with(&format!("{origin}/")) {
            tracing::warn!(app = %id, %page, "system request from a page outside the app dropped");
            return;
        }
        let text = result
            .js_value()
            .map(|v| v.to_str().to_string())
            .unwrap_or_default();
        let (request, Request::SyncStatus) = match parse_request(&text) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(app = %id, "system request dropped: {e}");
                return;
            }
        };
        let answer = move |view: &webkit2gtk::WebView,
                           result: Result<serde_json::Value, String>| {
            view.evaluate_javascript(
                &reply_call(request, result),
                None,
                None,
                None::<&gio::Cancellable>,
                |_| {},
            );
        };
        let existing = connection.borrow().clone();
        let bus = existing.or_else(|| {
            match gio::DBusConnection::for_address_sync(
                &address,
                gio::DBusConnectionFlags::AUTHENTICATION_CLIENT
                    | gio::DBusConnectionFlags::MESSAGE_BUS_CONNECTION,
                None,
                None::<&gio::Cancellable>,
            ) {
                Ok(c) => {
                    *connection.borrow_mut() = Some(c.clone());
                    Some(c)
                }
                Err(e) => {
                    tracing::warn!(app = %id, "connecting to the system bus: {e}");
                    None
                }
            }
        });
        let Some(bus) = bus else {
            answer(&view, Err("the system bus is not reachable".into()));
            return;
        };
        let view = view.clone();
        bus.call(
            Some("org.cirrus.Sync1"),
            "/org/cirrus/Sync1",
            "org.cirrus.Sync1",
            "Status",
            None,
            None,
            gio::DBusCallFlags::NONE,
            CALL_TIMEOUT_MS,
            None::<&gio::Cancellable>,
            move |reply| {
                let result = match reply {
                    Ok(v) => sync_status_json(&v)
                        .ok_or_else(|| "Sync1 answered an unexpected status".to_owned()),
                    Err(e) => Err(format!("cloud sync is not answering: {e}")),
                };
                answer(&view, result);
            },
        );
    });
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use glib::prelude::*;

    #[test]
    fn requests_are_parsed_strictly() {
        assert_eq!(
            parse_request(r#"{"id":2,"op":"sync-status"}"#).unwrap(),
            (2, Request::SyncStatus)
        );
        for bad in [
            "",
            "{}",
            r#"{"id":2}"#,
            r#"{"id":2,"op":"pause"}"#,
            r#"{"op":"sync-status"}"#,
        ] {
            assert!(parse_request(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_sync1_status_becomes_an_object() {
        let report = (1u64, 2u64, 3u64).to_variant();
        let status = glib::Variant::tuple_from_iter([
            "syncing".to_variant(),
            "".to_variant(),
            1_700_000_000_000i64.to_variant(),
            3u64.to_variant(),
            10u64.to_variant(),
            300u64.to_variant(),
            1000u64.to_variant(),
            0u32.to_variant(),
            vec!["x: failed".to_owned()].to_variant(),
            false.to_variant(),
            report,
            7u64.to_variant(),
        ]);
        let reply = glib::Variant::tuple_from_iter([status]);
        let json = sync_status_json(&reply).unwrap();
        assert_eq!(json["state"], "syncing");
        assert_eq!(json["filesTotal"], 10);
        assert_eq!(json["lastSyncMs"], 1_700_000_000_000i64);
        assert_eq!(json["errors"][0], "x: failed");
        assert_eq!(json["paused"], false);
        // The fields flattened into the reply's arguments read the same.
        let flat = reply.try_child_value(0).unwrap();
        assert_eq!(sync_status_json(&flat).unwrap(), json);
        // A reply of another shape is refused, not guessed at.
        let wrong = glib::Variant::tuple_from_iter(["idle".to_variant()]);
        assert!(sync_status_json(&wrong).is_none());
    }
}
