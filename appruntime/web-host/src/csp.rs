//! The Content-Security-Policy every `app://` response carries (documented in docs/web-apps.md).
//!
//! The default lets what common frameworks need run (module and classic scripts from the package,
//! inline styles as CSS-in-JS and framework transitions write them, images/media/fonts from the
//! package and `data:`/`blob:`, WebAssembly, workers) and refuses what turns an injection into code
//! execution: inline scripts, `eval`, remote code, plugins, framing by others, `<base>` hijacking.
//!
//! A manifest may widen it within limits through its `content_security_policy` member:
//! `{"script-src": ["'unsafe-eval'", "https://cdn.example.com"], "connect-src": ["https://api.example.com"]}`.
//! Allowed: the directives in [`WIDENABLE`]; as sources, `https://`/`wss://` origins (with an optional
//! `*.` host prefix) — only for apps holding the `network` permission — and `'unsafe-eval'` in
//! `script-src`. Never: `'unsafe-inline'` scripts, `*`, `http:`, `data:` or `blob:` scripts,
//! nonces/hashes (there is no server to mint them). A refused override fails the launch, naming it.

/// Directives a manifest may add sources to.
pub const WIDENABLE: [&str; 7] = [
    "script-src",
    "connect-src",
    "img-src",
    "media-src",
    "font-src",
    "style-src",
    "frame-src",
];

/// Why a manifest's `content_security_policy` is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CspError {
    #[error("content_security_policy must be an object of directive → list of sources")]
    Shape,
    #[error("content_security_policy: `{0}` cannot be widened (allowed: {list})", list = WIDENABLE.join(", "))]
    Directive(String),
    #[error("content_security_policy `{directive}`: `{value}` is not allowed ({why})")]
    Source {
        directive: String,
        value: String,
        why: &'static str,
    },
}

/// The base directives, in order.
const BASE: [(&str, &str); 13] = [
    ("default-src", "'self'"),
    ("script-src", "'self' 'wasm-unsafe-eval'"),
    ("style-src", "'self' 'unsafe-inline'"),
    ("img-src", "'self' data: blob:"),
    ("media-src", "'self' data: blob:"),
    ("font-src", "'self' data:"),
    ("connect-src", "'self'"),
    ("worker-src", "'self' blob:"),
    ("frame-src", "'self'"),
    ("object-src", "'none'"),
    ("base-uri", "'self'"),
    ("form-action", "'self'"),
    ("frame-ancestors", "'none'"),
];

/// Is `source` an `https://` or `wss://` origin (`scheme://host[:port]`, host may start `*.`).
fn is_remote_origin(source: &str) -> bool {
    let Some(rest) = source
        .strip_prefix("https://")
        .or_else(|| source.strip_prefix("wss://"))
    else {
        return false;
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (rest, None),
    };
    let host = host.strip_prefix("*.").unwrap_or(host);
    let labels_ok = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    let port_ok =
        port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    labels_ok && port_ok
}

/// Builds the policy for an app: the default, widened by the manifest's `content_security_policy`
/// member (the raw manifest JSON) within the limits above.
pub fn policy(raw_manifest: &serde_json::Value, network: bool) -> Result<String, CspError> {
    let mut extra: Vec<(String, Vec<String>)> = Vec::new();
    if let Some(member) = raw_manifest.get("content_security_policy") {
        let object = member.as_object().ok_or(CspError::Shape)?;
        for (directive, sources) in object {
            if !WIDENABLE.contains(&directive.as_str()) {
                return Err(CspError::Directive(directive.clone()));
            }
            let list = sources.as_array().ok_or(CspError::Shape)?;
            let mut added = Vec::new();
            for source in list {
                let source = source.as_str().ok_or(CspError::Shape)?;
                let refuse = |why| CspError::Source {
                    directive: directive.clone(),
                    value: source.to_owned(),
                    why,
                };
                if source == "'unsafe-eval'" {
                    if directive != "script-src" {
                        return Err(refuse("'unsafe-eval' only belongs in script-src"));
                    }
                } else if is_remote_origin(source) {
                    if !network {
                        return Err(refuse(
                            "remote origins need the `network` permission in cirrus.permissions",
                        ));
                    }
                } else {
                    return Err(refuse(
                        "only https:// and wss:// origins, and 'unsafe-eval' in script-src",
                    ));
                }
                added.push(source.to_owned());
            }
            extra.push((directive.clone(), added));
        }
    }
    let mut out = Vec::with_capacity(BASE.len());
    for (directive, sources) in BASE {
        let mut line = format!("{directive} {sources}");
        for (d, added) in &extra {
            if d == directive {
                for s in added {
                    line.push(' ');
                    line.push_str(s);
                }
            }
        }
        out.push(line);
    }
    Ok(out.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn default_refuses_inline_eval_and_remote_code() {
        let p = policy(&json!({}), true).unwrap_or_default();
        assert!(p.contains("script-src 'self' 'wasm-unsafe-eval';"), "{p}");
        assert!(p.contains("object-src 'none'"));
        assert!(p.contains("connect-src 'self';"));
        assert!(!p.contains("unsafe-eval'") || p.contains("'wasm-unsafe-eval'"));
        assert!(!p.contains("'unsafe-eval'"));
    }

    #[test]
    fn manifest_widens_within_limits() {
        let m = json!({"content_security_policy": {
            "script-src": ["'unsafe-eval'", "https://cdn.example.com"],
            "connect-src": ["https://api.example.com:8443", "wss://*.example.com"]
        }});
        let p = policy(&m, true).unwrap_or_default();
        assert!(
            p.contains(
                "script-src 'self' 'wasm-unsafe-eval' 'unsafe-eval' https://cdn.example.com;"
            ),
            "{p}"
        );
        assert!(
            p.contains("connect-src 'self' https://api.example.com:8443 wss://*.example.com;"),
            "{p}"
        );
        // Remote origins need the network permission.
        assert!(matches!(policy(&m, false), Err(CspError::Source { .. })));
        for (directive, source) in [
            ("script-src", "'unsafe-inline'"),
            ("script-src", "*"),
            ("script-src", "http://example.com"),
            ("script-src", "data:"),
            ("script-src", "https://evil.com; script-src *"),
            ("connect-src", "'unsafe-eval'"),
            ("img-src", "https://"),
        ] {
            let m = json!({"content_security_policy": {directive: [source]}});
            assert!(policy(&m, true).is_err(), "{directive} {source}");
        }
        let m = json!({"content_security_policy": {"object-src": ["https://a.com"]}});
        assert_eq!(
            policy(&m, true),
            Err(CspError::Directive("object-src".into()))
        );
        assert_eq!(
            policy(&json!({"content_security_policy": "x"}), true),
            Err(CspError::Shape)
        );
    }
}
