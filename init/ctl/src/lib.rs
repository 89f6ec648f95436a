//! cirrusctl: the on-device control command. Lists, inspects, starts, stops and restarts units,
//! reads, sets and watches properties, powers off and reboots, through `org.cirrus.Init1` on the
//! system bus; when the bus is down it talks to init's control socket directly (same requests, same
//! access rules: init checks the caller's uid either way).

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use cirrus_init_bus::client::Init1Proxy;
use cirrus_init_bus::{ControlClient, DEFAULT_CONTROL_SOCKET};
use futures_util::StreamExt;

pub const USAGE: &str = "usage: cirrusctl [--bus ADDRESS | --socket PATH] COMMAND
commands:
  list                     units: name, state, pid
  status UNIT              one unit's details
  start|stop|restart UNIT
  getprop NAME             print a property's value
  setprop NAME VALUE
  props [PREFIX]           NAME=VALUE for every property (starting with PREFIX)
  watch [PREFIX]           print property changes as they happen
  poweroff | reboot
  logs [-f] [--service NAME] [--level LEVEL] [--since UNIX-SECONDS]
                           the system log from logd ($CIRRUS_LOGD_SOCKET or
                           /run/cirrus/logd-reader.sock); -f follows new entries
The bus is $DBUS_SYSTEM_BUS_ADDRESS or unix:path=/run/dbus/system_bus_socket; without it, init's control socket
($CIRRUS_INIT_SOCKET or /run/cirrus/init.sock) is used.";

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    List,
    Status(String),
    Start(String),
    Stop(String),
    Restart(String),
    GetProp(String),
    SetProp(String, String),
    Props(String),
    Watch(String),
    PowerOff,
    Reboot,
    Logs(cirrus_logd::Query),
}

/// Where to send it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// The bus (an address, or the system bus), falling back to the socket.
    Bus(Option<String>),
    Socket(PathBuf),
}

pub fn parse(args: &[String]) -> Result<(Transport, Command), String> {
    let mut transport = Transport::Bus(Some(cirrus_init_bus::system_bus_address()));
    let mut rest = args;
    loop {
        match rest {
            [flag, value, tail @ ..] if flag == "--bus" => {
                transport = Transport::Bus(Some(value.clone()));
                rest = tail;
            }
            [flag, value, tail @ ..] if flag == "--socket" => {
                transport = Transport::Socket(PathBuf::from(value));
                rest = tail;
            }
            _ => break,
        }
    }
    let word = |s: &String| s.clone();
    let command = match rest {
        [c] if c == "list" => Command::List,
        [c, n] if c == "status" => Command::Status(word(n)),
        [c, n] if c == "start" => Command::Start(word(n)),
        [c, n] if c == "stop" => Command::Stop(word(n)),
        [c, n] if c == "restart" => Command::Restart(word(n)),
        [c, n] if c == "getprop" => Command::GetProp(word(n)),
        [c, n, v] if c == "setprop" => Command::SetProp(word(n), word(v)),
        [c] if c == "props" => Command::Props(String::new()),
        [c, p] if c == "props" => Command::Props(word(p)),
        [c] if c == "watch" => Command::Watch(String::new()),
        [c, p] if c == "watch" => Command::Watch(word(p)),
        [c] if c == "poweroff" => Command::PowerOff,
        [c] if c == "reboot" => Command::Reboot,
        [c, filters @ ..] if c == "logs" => Command::Logs(parse_log_filters(filters)?),
        _ => return Err(USAGE.to_string()),
    };
    Ok((transport, command))
}

fn parse_log_filters(args: &[String]) -> Result<cirrus_logd::Query, String> {
    let mut query = cirrus_logd::Query::default();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("`{arg}` needs a value"))
        };
        match arg.as_str() {
            "-f" | "--follow" => query.follow = true,
            "--service" => query.tag = Some(value()?),
            "--level" => {
                let v = value()?;
                query.max_level = Some(
                    cirrus_logd::parse_level(&v).ok_or_else(|| format!("unknown level `{v}`"))?,
                );
            }
            "--since" => {
                let v = value()?;
                let secs: f64 = v
                    .parse()
                    .map_err(|_| format!("--since takes Unix seconds, got `{v}`"))?;
                query.since_us = Some((secs.max(0.0) * 1e6) as u64);
            }
            other => return Err(format!("unknown `logs` option `{other}`\n{USAGE}")),
        }
    }
    Ok(query)
}

/// Runs cirrusctl with `args` (without argv[0]).
pub fn run(args: &[String]) -> ExitCode {
    let (transport, command) = match parse(args) {
        Ok(parsed) => parsed,
        Err(usage) => {
            eprintln!("{usage}");
            return ExitCode::from(2);
        }
    };
    if let Command::Logs(query) = &command {
        // The log comes from logd, not from init.
        return match cirrus_logd::read_logs(
            &cirrus_logd::reader_socket_path(),
            query,
            &mut std::io::stdout(),
        ) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("cirrusctl: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let result = match transport {
        Transport::Bus(address) => match zbus::block_on(connect(address.as_deref())) {
            Ok(conn) => zbus::block_on(over_bus(&conn, &command)),
            Err(e) => {
                eprintln!(
                    "cirrusctl: the system bus is not available ({e:#}); using init's control socket"
                );
                over_socket(&default_socket(), &command)
            }
        },
        Transport::Socket(path) => over_socket(&path, &command),
    };
    match result {
        Ok(text) => {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cirrusctl: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn default_socket() -> PathBuf {
    std::env::var_os("CIRRUS_INIT_SOCKET")
        .map_or_else(|| PathBuf::from(DEFAULT_CONTROL_SOCKET), PathBuf::from)
}

async fn connect(address: Option<&str>) -> anyhow::Result<zbus::Connection> {
    let builder = match address {
        Some(address) => zbus::connection::Builder::address(address),
        None => zbus::connection::Builder::system(),
    };
    Ok(builder.build().await?)
}

fn lines<I: IntoIterator<Item = String>>(items: I) -> String {
    items.into_iter().map(|l| l + "\n").collect()
}

async fn over_bus(conn: &zbus::Connection, command: &Command) -> anyhow::Result<String> {
    let init = Init1Proxy::new(conn)
        .await
        .context("no org.cirrus.Init1 on the bus")?;
    let ok = |s: String| if s.is_empty() { s } else { s + "\n" };
    Ok(match command {
        Command::List => lines(init.list_units().await?.into_iter().map(|(n, s, p)| {
            format!(
                "{n} {s} {}",
                if p == 0 {
                    "-".to_string()
                } else {
                    p.to_string()
                }
            )
        })),
        Command::Status(name) => {
            let mut fields: Vec<(String, String)> =
                init.unit_status(name).await?.into_iter().collect();
            fields.sort();
            lines(fields.into_iter().map(|(k, v)| format!("{k}: {v}")))
        }
        Command::Start(name) => ok(init.start_unit(name).await?),
        Command::Stop(name) => ok(init.stop_unit(name).await?),
        Command::Restart(name) => ok(init.restart_unit(name).await?),
        Command::GetProp(name) => init.get_property(name).await? + "\n",
        Command::SetProp(name, value) => {
            init.set_property(name, value).await?;
            String::new()
        }
        Command::Props(prefix) => {
            let mut props: Vec<(String, String)> =
                init.list_properties(prefix).await?.into_iter().collect();
            props.sort();
            lines(props.into_iter().map(|(k, v)| format!("{k}={v}")))
        }
        Command::Watch(prefix) => {
            let mut changes = init.receive_property_changed().await?;
            let mut out = std::io::stdout();
            while let Some(signal) = changes.next().await {
                let args = signal.args()?;
                if args.name.starts_with(prefix.as_str()) {
                    writeln!(out, "{}={}", args.name, args.value)?;
                    out.flush()?;
                }
            }
            String::new()
        }
        Command::PowerOff => ok(init.power_off().await?),
        Command::Reboot => ok(init.reboot().await?),
        Command::Logs(_) => String::new(),
    })
}

fn over_socket(socket: &std::path::Path, command: &Command) -> anyhow::Result<String> {
    let client = ControlClient::new(socket);
    let line = match command {
        Command::List => "status".to_string(),
        Command::Status(n) => format!("status {n}"),
        Command::Start(n) => format!("start {n}"),
        Command::Stop(n) => format!("stop {n}"),
        Command::Restart(n) => format!("restart {n}"),
        Command::GetProp(n) => format!("get {n}"),
        Command::SetProp(n, v) => format!("set {n} {v}"),
        Command::Props(p) => format!("props {p}"),
        Command::Watch(p) => return watch_socket(socket, p),
        Command::PowerOff => "poweroff".into(),
        Command::Reboot => "reboot".into(),
        Command::Logs(_) => return Ok(String::new()),
    };
    let reply = client.request(&line).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(match command {
        Command::GetProp(_) => {
            reply
                .split_once('=')
                .map(|(_, v)| v.to_string())
                .unwrap_or_default()
                + "\n"
        }
        Command::SetProp(..) => String::new(),
        _ if reply.is_empty() => reply,
        _ => reply + "\n",
    })
}

fn watch_socket(socket: &std::path::Path, prefix: &str) -> anyhow::Result<String> {
    use std::io::{BufRead, BufReader};
    let mut stream = std::os::unix::net::UnixStream::connect(socket)
        .with_context(|| format!("cannot reach cirrus-init at {}", socket.display()))?;
    stream.write_all(format!("watch {prefix}\n").as_bytes())?;
    let mut out = std::io::stdout();
    let mut first = true;
    for line in BufReader::new(stream).lines() {
        let line = line?;
        if std::mem::replace(&mut first, false) {
            anyhow::ensure!(line.starts_with("ok"), "{line}");
            continue;
        }
        writeln!(out, "{line}")?;
        out.flush()?;
    }
    Ok(String::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_commands_and_transports() {
        assert_eq!(
            parse(&args(&["--bus", "unix:path=/x", "setprop", "a", "b c"])),
            Ok((
                Transport::Bus(Some("unix:path=/x".into())),
                Command::SetProp("a".into(), "b c".into())
            ))
        );
        assert_eq!(
            parse(&args(&["--socket", "/s", "props"])),
            Ok((
                Transport::Socket("/s".into()),
                Command::Props(String::new())
            ))
        );
        assert!(parse(&args(&["start"])).is_err());
        let (_, logs) = parse(&args(&[
            "logs",
            "-f",
            "--service",
            "svc",
            "--level",
            "warn",
        ]))
        .unwrap();
        assert_eq!(
            logs,
            Command::Logs(cirrus_logd::Query {
                follow: true,
                tag: Some("svc".into()),
                max_level: Some(4),
                since_us: None
            })
        );
        assert!(parse(&args(&["logs", "--level", "loud"])).is_err());
        assert!(parse(&args(&["frob"])).is_err());
    }
}
