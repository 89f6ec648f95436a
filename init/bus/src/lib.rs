//! `org.cirrus.Init1`: cirrus-init on the D-Bus system bus.
//!
//! PID 1 stays small and never depends on the bus: this separate service (`cirrus-init-bus`) owns
//! the name `org.cirrus.Init1` on the system bus (Debian's dbus-daemon, which enforces the bus
//! policy) and relays each call to init's control socket as `as UID REQUEST`, UID being the
//! caller's uid as the bus daemon knows it. Init then applies its own access rules to that uid, so
//! the relay grants nothing by itself.
//!
//! This crate is the contract: [`client::Init1Proxy`] (used by `cirrusctl`) and the served
//! interface [`Init1Relay`], plus the bus policy ([`BUS_POLICY`]). Interface, object path and
//! methods are documented in `docs/init-bus.md`.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use zbus::message::Header;
use zbus::object_server::SignalEmitter;
use zbus::{Connection, interface};

/// The well-known bus name.
pub const BUS_NAME: &str = "org.cirrus.Init1";
/// The one object.
pub const OBJECT_PATH: &str = "/org/cirrus/Init1";
/// The system bus on a Cirrus device (Debian's default, without relying on the /var/run link).
pub const SYSTEM_BUS_ADDRESS: &str = "unix:path=/run/dbus/system_bus_socket";
/// The system bus address: `$DBUS_SYSTEM_BUS_ADDRESS`, else [`SYSTEM_BUS_ADDRESS`].
pub fn system_bus_address() -> String {
    std::env::var("DBUS_SYSTEM_BUS_ADDRESS").unwrap_or_else(|_| SYSTEM_BUS_ADDRESS.to_string())
}
/// Default control socket of init.
pub const DEFAULT_CONTROL_SOCKET: &str = "/run/cirrus/init.sock";

/// The system-bus policy for `org.cirrus.Init1`: root owns the name, everyone may call it (init
/// decides per uid what is allowed). Also what `cirrus-init-bus write-bus-config` adds to Debian's
/// system bus configuration. It also lets the compositor (root) serve desktop notifications
/// (`org.freedesktop.Notifications`, which every app may call).
pub const BUS_POLICY: &str = r#"  <policy user="root">
    <allow own="org.cirrus.Init1"/>
    <allow own="org.freedesktop.Notifications"/>
  </policy>
  <policy context="default">
    <allow send_destination="org.cirrus.Init1"/>
    <allow receive_sender="org.cirrus.Init1"/>
    <allow send_destination="org.freedesktop.Notifications"/>
    <allow receive_sender="org.freedesktop.Notifications"/>
  </policy>
"#;

/// The system user cirrus-syncd runs as (images/units/sync.toml): Debian's `backup` (uid 34), the
/// one account of the image's user database (base-passwd) meant for backup and nothing else uses.
pub const SYNC_USER: &str = "backup";

/// The system-bus policy for `org.cirrus.Sync1` (cirrus-syncd, see docs/sync.md): only the sync
/// daemon's user (and root, for developers running it by hand) may own the name; everyone may call
/// it and receive its signals (status, progress and the user's own pause/confirm requests).
pub const SYNC1_BUS_POLICY: &str = r#"  <policy user="backup">
    <allow own="org.cirrus.Sync1"/>
  </policy>
  <policy user="root">
    <allow own="org.cirrus.Sync1"/>
  </policy>
  <policy context="default">
    <allow send_destination="org.cirrus.Sync1"/>
    <allow receive_sender="org.cirrus.Sync1"/>
  </policy>
"#;

/// The system-bus policy for `org.cirrus.AppManager1` (cirrus-appmanager, root): root owns the name
/// and only root may call it — installing, launching and granting permissions are the shell's and
/// the developer's (over adb-style root access) business, never an app's (apps have no system
/// bus) nor another system user's. Its `StateChanged` signals are broadcast to every listener.
pub const APPMANAGER1_BUS_POLICY: &str = r#"  <policy user="root">
    <allow own="org.cirrus.AppManager1"/>
    <allow send_destination="org.cirrus.AppManager1"/>
  </policy>
  <policy context="default">
    <allow receive_sender="org.cirrus.AppManager1"/>
  </policy>
"#;

/// A bus configuration: Debian's system bus (`/usr/share/dbus-1/system.conf`) plus [`BUS_POLICY`],
/// [`SYNC1_BUS_POLICY`] and [`APPMANAGER1_BUS_POLICY`], with the daemon staying root (an image has
/// no `messagebus` user).
pub fn system_bus_config() -> String {
    format!(
        "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN\"\n \
         \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n<busconfig>\n  \
         <include>/usr/share/dbus-1/system.conf</include>\n  <user>root</user>\n{BUS_POLICY}{SYNC1_BUS_POLICY}{APPMANAGER1_BUS_POLICY}</busconfig>\n"
    )
}

/// Errors returned to D-Bus callers (`org.cirrus.Init1.Error.*`).
#[derive(Debug, zbus::DBusError)]
#[zbus(prefix = "org.cirrus.Init1.Error")]
pub enum Init1Error {
    #[zbus(error)]
    ZBus(zbus::Error),
    /// Init refused: the caller's uid may not do that.
    AccessDenied(String),
    /// No such unit, or the property is not set.
    NotFound(String),
    /// Init is not reachable on its control socket.
    InitUnreachable(String),
    /// Anything else init said no to.
    Failed(String),
}

/// Talks to init's control socket (one request line, one reply).
#[derive(Debug, Clone)]
pub struct ControlClient {
    pub socket: PathBuf,
}

impl ControlClient {
    pub fn new(socket: &Path) -> ControlClient {
        ControlClient {
            socket: socket.to_path_buf(),
        }
    }

    /// Sends `line` and returns the reply; a reply starting with `error:` becomes an [`Init1Error`].
    pub fn request(&self, line: &str) -> Result<String, Init1Error> {
        let unreachable = |e: std::io::Error| {
            Init1Error::InitUnreachable(format!("{}: {e}", self.socket.display()))
        };
        let mut stream = UnixStream::connect(&self.socket).map_err(unreachable)?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(unreachable)?;
        stream
            .write_all(format!("{line}\n").as_bytes())
            .map_err(unreachable)?;
        let _ = stream.shutdown(std::net::Shutdown::Write);
        let mut reply = String::new();
        stream.read_to_string(&mut reply).map_err(unreachable)?;
        classify(reply)
    }
}

/// Turns init's reply into a result.
fn classify(reply: String) -> Result<String, Init1Error> {
    let Some(message) = reply.strip_prefix("error: ") else {
        return Ok(reply.trim_end_matches('\n').to_string());
    };
    let message = message.trim_end().to_string();
    Err(if message.starts_with("permission denied") {
        Init1Error::AccessDenied(message)
    } else if message.starts_with("no unit") || message.contains("is not set") {
        Init1Error::NotFound(message)
    } else {
        Init1Error::Failed(message)
    })
}

/// Parses `NAME=VALUE` lines.
pub fn parse_property_lines(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Parses init's `status` reply (`NAME STATE PID` lines).
pub fn parse_unit_lines(text: &str) -> Vec<(String, String, u32)> {
    text.lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let name = words.next()?.to_string();
            let state = words.next()?.to_string();
            let pid = words.next()?.parse().unwrap_or(0);
            Some((name, state, pid))
        })
        .collect()
}

/// Rejects words that would break the one-line protocol.
fn one_word(what: &str, text: &str) -> Result<(), Init1Error> {
    if text.is_empty() || text.contains(char::is_whitespace) {
        return Err(Init1Error::Failed(format!(
            "{what} `{text}` must be one word"
        )));
    }
    Ok(())
}

/// The served object: each method relays to init as the caller.
pub struct Init1Relay {
    pub control: ControlClient,
}

impl Init1Relay {
    /// The uid of the caller of the current method, asked of the bus daemon.
    async fn caller_uid(conn: &Connection, header: &Header<'_>) -> Result<u32, Init1Error> {
        let sender = header
            .sender()
            .ok_or_else(|| Init1Error::Failed("the call has no sender".into()))?;
        let dbus = zbus::fdo::DBusProxy::new(conn).await?;
        dbus.get_connection_unix_user(sender.clone().into())
            .await
            .map_err(|e| Init1Error::Failed(format!("cannot learn the caller's uid: {e}")))
    }

    async fn relay(
        &self,
        conn: &Connection,
        header: &Header<'_>,
        line: &str,
    ) -> Result<String, Init1Error> {
        let uid = Self::caller_uid(conn, header).await?;
        tracing::debug!("uid {uid}: {line}");
        self.control.request(&format!("as {uid} {line}"))
    }
}

#[interface(name = "org.cirrus.Init1")]
impl Init1Relay {
    /// Every unit: (name, state, pid or 0).
    async fn list_units(
        &self,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] header: Header<'_>,
    ) -> Result<Vec<(String, String, u32)>, Init1Error> {
        let text = self.relay(conn, &header, "status").await?;
        Ok(parse_unit_lines(&text))
    }

    /// One unit's details (`name`, `state`, `pid`, `status`, `description`, `cgroup`, `unit` …).
    async fn unit_status(
        &self,
        name: &str,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] header: Header<'_>,
    ) -> Result<HashMap<String, String>, Init1Error> {
        one_word("unit", name)?;
        let text = self.relay(conn, &header, &format!("status {name}")).await?;
        Ok(text
            .lines()
            .filter_map(|l| l.split_once(": "))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect())
    }

    async fn start_unit(
        &self,
        name: &str,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] header: Header<'_>,
    ) -> Result<String, Init1Error> {
        one_word("unit", name)?;
        self.relay(conn, &header, &format!("start {name}")).await
    }

    async fn stop_unit(
        &self,
        name: &str,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] header: Header<'_>,
    ) -> Result<String, Init1Error> {
        one_word("unit", name)?;
        self.relay(conn, &header, &format!("stop {name}")).await
    }

    async fn restart_unit(
        &self,
        name: &str,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] header: Header<'_>,
    ) -> Result<String, Init1Error> {
        one_word("unit", name)?;
        self.relay(conn, &header, &format!("restart {name}")).await
    }

    async fn get_property(
        &self,
        name: &str,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] header: Header<'_>,
    ) -> Result<String, Init1Error> {
        one_word("property", name)?;
        let text = self.relay(conn, &header, &format!("get {name}")).await?;
        Ok(text
            .split_once('=')
            .map(|(_, v)| v.to_string())
            .unwrap_or_default())
    }

    async fn set_property(
        &self,
        name: &str,
        value: &str,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] header: Header<'_>,
    ) -> Result<(), Init1Error> {
        one_word("property", name)?;
        if value.contains(['\n', '\r', '\0']) {
            return Err(Init1Error::Failed(
                "a property value has no line breaks".into(),
            ));
        }
        self.relay(conn, &header, &format!("set {name} {value}"))
            .await
            .map(|_| ())
    }

    /// Properties whose names start with `prefix` (all for "").
    async fn list_properties(
        &self,
        prefix: &str,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] header: Header<'_>,
    ) -> Result<HashMap<String, String>, Init1Error> {
        if prefix.contains(char::is_whitespace) {
            return Err(Init1Error::Failed("a prefix is one word".into()));
        }
        let text = self
            .relay(conn, &header, &format!("props {prefix}"))
            .await?;
        Ok(parse_property_lines(&text).into_iter().collect())
    }

    async fn power_off(
        &self,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] header: Header<'_>,
    ) -> Result<String, Init1Error> {
        self.relay(conn, &header, "poweroff").await
    }

    async fn reboot(
        &self,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] header: Header<'_>,
    ) -> Result<String, Init1Error> {
        self.relay(conn, &header, "reboot").await
    }

    /// Emitted for every property change init reports (`watch` on the control socket).
    #[zbus(signal)]
    pub async fn property_changed(
        emitter: &SignalEmitter<'_>,
        name: &str,
        value: &str,
    ) -> zbus::Result<()>;
}

/// The client side (`cirrusctl`, tests, other services).
pub mod client {
    use std::collections::HashMap;

    use zbus::proxy;

    #[proxy(
        interface = "org.cirrus.Init1",
        default_service = "org.cirrus.Init1",
        default_path = "/org/cirrus/Init1"
    )]
    pub trait Init1 {
        fn list_units(&self) -> zbus::Result<Vec<(String, String, u32)>>;
        fn unit_status(&self, name: &str) -> zbus::Result<HashMap<String, String>>;
        fn start_unit(&self, name: &str) -> zbus::Result<String>;
        fn stop_unit(&self, name: &str) -> zbus::Result<String>;
        fn restart_unit(&self, name: &str) -> zbus::Result<String>;
        fn get_property(&self, name: &str) -> zbus::Result<String>;
        fn set_property(&self, name: &str, value: &str) -> zbus::Result<()>;
        fn list_properties(&self, prefix: &str) -> zbus::Result<HashMap<String, String>>;
        fn power_off(&self) -> zbus::Result<String>;
        fn reboot(&self) -> zbus::Result<String>;
        #[zbus(signal)]
        fn property_changed(&self, name: String, value: String) -> zbus::Result<()>;
    }
}

/// Follows init's property changes (`watch` on the control socket) and emits them as
/// `PropertyChanged` signals, reconnecting when init's socket goes away. Runs on its own thread.
pub fn relay_property_changes(conn: Connection, control: ControlClient) {
    loop {
        match watch_once(&conn, &control) {
            Ok(()) => tracing::info!("init closed the watch connection; reconnecting"),
            Err(e) => tracing::warn!("cannot watch init's properties: {e}; retrying"),
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn watch_once(conn: &Connection, control: &ControlClient) -> anyhow::Result<()> {
    let mut stream = UnixStream::connect(&control.socket)?;
    stream.write_all(b"watch\n")?;
    let emitter = SignalEmitter::new(conn, OBJECT_PATH)?;
    let mut reader = std::io::BufReader::new(stream);
    let mut first = true;
    let mut line = String::new();
    loop {
        line.clear();
        if std::io::BufRead::read_line(&mut reader, &mut line)? == 0 {
            return Ok(());
        }
        if first {
            first = false;
            if !line.starts_with("ok") {
                anyhow::bail!("init refused to watch: {}", line.trim_end());
            }
            // The current values follow; only changes become signals.
            continue;
        }
        if let Some((name, value)) = line.trim_end_matches('\n').split_once('=') {
            zbus::block_on(Init1Relay::property_changed(&emitter, name, value))?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_become_typed_errors() {
        assert_eq!(classify("a=b\n".into()).unwrap(), "a=b");
        assert!(matches!(
            classify("error: permission denied: only root\n".into()),
            Err(Init1Error::AccessDenied(_))
        ));
        assert!(matches!(
            classify("error: no unit `x`\n".into()),
            Err(Init1Error::NotFound(_))
        ));
        assert!(matches!(
            classify("error: property `x` is not set\n".into()),
            Err(Init1Error::NotFound(_))
        ));
        assert!(matches!(
            classify("error: other\n".into()),
            Err(Init1Error::Failed(_))
        ));
    }

    #[test]
    fn parses_status_and_properties() {
        assert_eq!(
            parse_unit_lines("a running 12\nb inactive -\n"),
            [
                ("a".into(), "running".into(), 12),
                ("b".into(), "inactive".into(), 0)
            ]
        );
        assert_eq!(
            parse_property_lines("x=1\ny=a=b\n"),
            [("x".into(), "1".into()), ("y".into(), "a=b".into())]
        );
        assert!(system_bus_config().contains("<allow own=\"org.cirrus.Init1\"/>"));
    }

    #[test]
    fn the_system_bus_lets_the_sync_user_own_org_cirrus_sync1() {
        let config = system_bus_config();
        let own = "<allow own=\"org.cirrus.Sync1\"/>";
        let owners: Vec<&str> = config
            .split("<policy ")
            .filter(|p| p.contains(own))
            .filter_map(|p| p.split('>').next())
            .collect();
        assert_eq!(
            owners,
            [format!("user=\"{SYNC_USER}\""), "user=\"root\"".into()]
        );
        let default = config
            .split("<policy ")
            .find(|p| p.starts_with("context=\"default\"") && p.contains("org.cirrus.Sync1"))
            .unwrap_or_default();
        assert!(
            default.contains("<allow send_destination=\"org.cirrus.Sync1\"/>"),
            "{config}"
        );
        assert!(
            default.contains("<allow receive_sender=\"org.cirrus.Sync1\"/>"),
            "{config}"
        );
        assert!(
            !default.contains(own),
            "anyone could take the name: {config}"
        );
    }

    #[test]
    fn only_root_owns_and_calls_org_cirrus_appmanager1() {
        let config = system_bus_config();
        let name = "org.cirrus.AppManager1";
        for policy in config.split("<policy ").skip(1) {
            let head = policy.split('>').next().unwrap_or_default();
            let grants_own = policy.contains(&format!("<allow own=\"{name}\"/>"));
            let grants_send = policy.contains(&format!("<allow send_destination=\"{name}\"/>"));
            if grants_own || grants_send {
                assert_eq!(head, "user=\"root\"", "{name} opened to {head}: {config}");
            }
        }
        assert!(
            config.contains(&format!("<allow own=\"{name}\"/>")),
            "{config}"
        );
        let default = config
            .split("<policy ")
            .find(|p| p.starts_with("context=\"default\"") && p.contains(name))
            .unwrap_or_default();
        assert!(
            default.contains(&format!("<allow receive_sender=\"{name}\"/>")),
            "{config}"
        );
    }

    /// dbus-daemon ignores (with a warning) a policy naming a user the user database lacks: the
    /// sync user must exist in the image's /etc/passwd, which is Debian's base-passwd master file.
    #[test]
    fn the_sync_user_is_in_the_images_user_database() {
        let Ok(master) = std::fs::read_to_string("/usr/share/base-passwd/passwd.master") else {
            panic!("base-passwd is missing: install it with `cargo xtask deps`");
        };
        assert!(
            master
                .lines()
                .any(|l| l.split(':').next() == Some(SYNC_USER)),
            "{SYNC_USER} is not in base-passwd's passwd.master"
        );
    }
}
