//! The Cirrus JS API (`navigator.cirrus`, typed in docs/web-apps.d.ts): the user script injected
//! into the app's pages, and the validation of every message those pages post to the host through
//! the `cirrus` script message handler. Messages are untrusted: a JSON object no larger than
//! [`MAX_MESSAGE_BYTES`] with a known `type` and fields of the right type and size, or they are
//! dropped with a warning.
//!
//! Host → page calls go through `window.__cirrusHost` (lifecycle changes, replies to requests).

use serde::Serialize;

/// Largest message accepted from a page.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024;

/// The script message handler's name (`window.webkit.messageHandlers.cirrus`).
pub const HANDLER: &str = "cirrus";

/// What the page's script knows about its app (`navigator.cirrus.app`).
#[derive(Debug, Clone, Serialize)]
pub struct AppInfo {
    pub id: String,
    pub name: String,
    pub short_name: String,
    pub version: String,
    /// Permissions the app holds now.
    pub permissions: Vec<String>,
    /// Permissions its manifest asks for.
    pub requested: Vec<String>,
}

/// A valid message from a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageMessage {
    /// `navigator.cirrus.close()`: the app ends itself.
    Close,
    /// `navigator.cirrus.requestPermission(name)`: answered with `granted`/`denied`.
    RequestPermission { request: u32, name: String },
}

/// Why a message was dropped.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MessageError {
    #[error("the message is {0} bytes (limit {MAX_MESSAGE_BYTES})")]
    TooLarge(usize),
    #[error("the message is not a JSON object: {0}")]
    NotJson(String),
    #[error("unknown message type `{0}`")]
    UnknownType(String),
    #[error("message field `{0}` is missing or of the wrong type/size")]
    Field(&'static str),
}

/// Parses and validates one message posted by a page.
pub fn parse_message(text: &str) -> Result<PageMessage, MessageError> {
    if text.len() > MAX_MESSAGE_BYTES {
        return Err(MessageError::TooLarge(text.len()));
    }
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| MessageError::NotJson(e.to_string()))?;
    let object = value
        .as_object()
        .ok_or_else(|| MessageError::NotJson("not an object".into()))?;
    let kind = object
        .get("type")
        .and_then(|t| t.as_str())
        .ok_or(MessageError::Field("type"))?;
    match kind {
        "close" => Ok(PageMessage::Close),
        "request-permission" => {
            let request = object
                .get("id")
                .and_then(|v| v.as_u64())
                .and_then(|v| u32::try_from(v).ok())
                .ok_or(MessageError::Field("id"))?;
            let name = object
                .get("name")
                .and_then(|v| v.as_str())
                .filter(|n| !n.is_empty() && n.len() <= 64)
                .ok_or(MessageError::Field("name"))?;
            Ok(PageMessage::RequestPermission {
                request,
                name: name.to_owned(),
            })
        }
        other => Err(MessageError::UnknownType(other.chars().take(64).collect())),
    }
}

/// The user script: `navigator.cirrus` with the app's info, lifecycle and permission requests,
/// and `document.visibilityState`/`hidden` following the app's lifecycle.
pub fn user_script(info: &AppInfo) -> String {
    let info = serde_json::to_string(info).unwrap_or_else(|_| "{}".into());
    include_str!("cirrus-api.js").replace("__CIRRUS_APP_INFO__", &info)
}

/// The host → page call for a lifecycle change (`paused` or `active`).
pub fn lifecycle_call(paused: bool) -> String {
    format!(
        "window.__cirrusHost && window.__cirrusHost.lifecycle({});",
        if paused { "'paused'" } else { "'active'" }
    )
}

/// The host → page call answering request `request` with a JSON `value`.
pub fn reply_call(request: u32, value: &serde_json::Value) -> String {
    format!("window.__cirrusHost && window.__cirrusHost.reply({request}, {value});")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_valid_messages() {
        assert_eq!(parse_message(r#"{"type":"close"}"#), Ok(PageMessage::Close));
        assert_eq!(
            parse_message(r#"{"type":"request-permission","id":7,"name":"notifications"}"#),
            Ok(PageMessage::RequestPermission {
                request: 7,
                name: "notifications".into()
            })
        );
    }

    #[test]
    fn refuses_malformed_messages() {
        let long = format!(
            r#"{{"type":"close","x":"{}"}}"#,
            "a".repeat(MAX_MESSAGE_BYTES)
        );
        for bad in [
            "",
            "null",
            "[1]",
            "\"close\"",
            r#"{"kind":"close"}"#,
            r#"{"type":1}"#,
            r#"{"type":"rm -rf"}"#,
            r#"{"type":"request-permission","id":-1,"name":"x"}"#,
            r#"{"type":"request-permission","id":4294967296,"name":"x"}"#,
            r#"{"type":"request-permission","id":1,"name":""}"#,
            r#"{"type":"request-permission","id":1}"#,
            long.as_str(),
        ] {
            assert!(parse_message(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_script_carries_the_app_info() {
        let info = AppInfo {
            id: "org.test.a".into(),
            name: "A </script>".into(),
            short_name: "A".into(),
            version: "1.0".into(),
            permissions: vec![],
            requested: vec![],
        };
        let s = user_script(&info);
        assert!(s.contains(r#""id":"org.test.a""#));
        assert!(!s.contains("__CIRRUS_APP_INFO__"));
    }
}
