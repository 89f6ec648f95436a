//! Command line: which mode this invocation runs, and the dispatch to it.
//!
//! ```text
//! cirrus-init                               PID 1 in the initramfs: first stage
//! cirrus-init --second-stage                PID 1 after switching root: supervisor
//! cirrus-init --user --root DIR [--event-log FILE]   unprivileged supervisor over DIR
//! cirrus-init poweroff | reboot | status    ask the running init (also argv[0] `poweroff`/`reboot`)
//! cirrus-init start|stop|restart|status NAME, getprop NAME, setprop NAME VALUE, props [PREFIX],
//!             watch [PREFIX]                the other control-socket requests
//! cirrus-init notify READY=1 [STATUS=…]     sd_notify from a service (like systemd-notify)
//! ```

use std::io::Write;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::control::{self, Request};
use crate::supervisor::{self, SupervisorConfig};
use crate::{emergency, first_stage, notify, shutdown};

pub const USAGE: &str = "\
usage: cirrus-init                      (as PID 1 in the initramfs: first stage)
       cirrus-init --second-stage       (as PID 1 on the system image: service supervisor)
       cirrus-init --user --root DIR [--event-log FILE]
                                        (unprivileged supervisor over DIR/system/etc/init and
                                         DIR/vendor/etc/init, sockets in DIR/run/cirrus)
       cirrus-init poweroff|reboot|status   (ask the running init over $CIRRUS_INIT_SOCKET,
                                         default /run/cirrus/init.sock)
       cirrus-init status|start|stop|restart UNIT
       cirrus-init getprop NAME | setprop NAME VALUE | props [PREFIX] | watch [PREFIX]
       cirrus-init notify READY=1 [STATUS=...]  (report readiness to $NOTIFY_SOCKET)";

/// What this invocation does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invocation {
    FirstStage,
    SecondStage {
        event_log: Option<PathBuf>,
    },
    User {
        root: PathBuf,
        event_log: Option<PathBuf>,
    },
    Control(Request),
    Notify(Vec<String>),
    Help,
    Version,
}

/// Parses `argv` (with argv[0]).
pub fn parse(argv: &[String]) -> Result<Invocation, String> {
    let program = argv.first().map(String::as_str).unwrap_or("cirrus-init");
    let basename = program.rsplit('/').next().unwrap_or(program);
    match basename {
        "poweroff" => return Ok(Invocation::Control(Request::PowerOff)),
        "reboot" => return Ok(Invocation::Control(Request::Reboot)),
        _ => {}
    }
    let args = argv.get(1..).unwrap_or_default();
    let Some(first) = args.first() else {
        return Ok(Invocation::FirstStage);
    };
    match first.as_str() {
        "--help" | "-h" | "help" => Ok(Invocation::Help),
        "--version" | "-V" => Ok(Invocation::Version),
        "poweroff" | "reboot" | "status" | "list" | "start" | "stop" | "restart" | "props"
        | "watch" => Ok(Invocation::Control(Request::parse(&args.join(" "))?)),
        "getprop" | "get" => match &args[1..] {
            [name] => Ok(Invocation::Control(Request::GetProperty(name.clone()))),
            _ => Err("usage: cirrus-init getprop NAME".into()),
        },
        "setprop" | "set" => match &args[1..] {
            [name, value] => Ok(Invocation::Control(Request::SetProperty(
                name.clone(),
                value.clone(),
            ))),
            _ => Err("usage: cirrus-init setprop NAME VALUE".into()),
        },
        "notify" => {
            let fields = args[1..].to_vec();
            if fields.is_empty() {
                return Err(
                    "`notify` needs at least one KEY=VALUE, e.g. `cirrus-init notify READY=1`"
                        .into(),
                );
            }
            if let Some(bad) = fields.iter().find(|f| !f.contains('=')) {
                return Err(format!("`{bad}` is not KEY=VALUE"));
            }
            Ok(Invocation::Notify(fields))
        }
        "--second-stage" | "--user" => {
            let mut root = None;
            let mut event_log = None;
            let mut rest = args[1..].iter();
            while let Some(arg) = rest.next() {
                let mut value = |name: &str| {
                    rest.next()
                        .cloned()
                        .ok_or_else(|| format!("`{name}` needs a value"))
                };
                match arg.as_str() {
                    "--root" if first == "--user" => root = Some(PathBuf::from(value("--root")?)),
                    "--event-log" => event_log = Some(PathBuf::from(value("--event-log")?)),
                    other => return Err(format!("unknown argument `{other}`")),
                }
            }
            if first == "--second-stage" {
                return Ok(Invocation::SecondStage { event_log });
            }
            let root = root.ok_or("`--user` needs `--root DIR`")?;
            Ok(Invocation::User { root, event_log })
        }
        other => Err(format!("unknown command `{other}`")),
    }
}

/// What runs for `argv` in a process whose pid is `pid`. PID 1 never runs a client command and
/// never stops at a bad command line: the kernel passes unknown boot parameters to init.
pub fn resolve(argv: &[String], pid: u32) -> Result<Invocation, String> {
    let parsed = parse(argv);
    if pid != 1 {
        return parsed;
    }
    match parsed {
        Ok(
            invocation @ (Invocation::FirstStage
            | Invocation::SecondStage { .. }
            | Invocation::User { .. }),
        ) => Ok(invocation),
        _ => Ok(Invocation::FirstStage),
    }
}

/// The whole program.
pub fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let pid = std::process::id();
    let invocation = resolve(&argv, pid);
    if invocation == Ok(Invocation::FirstStage) {
        first_stage::ensure_console();
    }
    cirrus_logging::init("cirrus-init");
    emergency::install_panic_hook();

    match invocation {
        Err(e) => {
            eprintln!("cirrus-init: {e}\n{USAGE}");
            ExitCode::from(2)
        }
        Ok(Invocation::Help) => print_out(&format!("{USAGE}\n")),
        Ok(Invocation::Version) => print_out(&format!("cirrus-init {}\n", crate::VERSION)),
        Ok(Invocation::FirstStage) if pid != 1 => {
            eprintln!(
                "cirrus-init: the first stage runs only as PID 1 (use `--user --root DIR` to supervise unprivileged)\n{USAGE}"
            );
            ExitCode::from(2)
        }
        Ok(Invocation::SecondStage { .. }) if pid != 1 => {
            eprintln!(
                "cirrus-init: --second-stage runs only as PID 1 (use `--user --root DIR` to supervise unprivileged)"
            );
            ExitCode::from(2)
        }
        Ok(Invocation::FirstStage) => pid1(|| {
            first_stage::run()?;
            // The exec of the second stage failed: supervise from this process.
            second_stage(None)
        }),
        Ok(Invocation::SecondStage { event_log }) => pid1(|| second_stage(event_log)),
        Ok(Invocation::User { root, event_log }) => user(root, event_log),
        Ok(Invocation::Control(request)) => control_client(request),
        Ok(Invocation::Notify(fields)) => notify_client(&fields),
    }
}

fn second_stage(event_log: Option<PathBuf>) -> anyhow::Result<()> {
    tracing::info!("cirrus-init {} starting (second stage)", crate::VERSION);
    let config = SupervisorConfig {
        event_log,
        ..SupervisorConfig::device()
    };
    let kind = supervisor::run(config)?;
    shutdown::finish(kind)
}

/// Runs a PID 1 mode; whatever goes wrong (error or panic) ends in the emergency loop, never in exit.
fn pid1(f: impl FnOnce() -> anyhow::Result<()>) -> ExitCode {
    let reason = match std::panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => "init returned".to_string(),
        Ok(Err(e)) => format!("{e:#}"),
        Err(_) => "init panicked (see above)".to_string(),
    };
    emergency::run(&reason)
}

fn user(root: PathBuf, event_log: Option<PathBuf>) -> ExitCode {
    tracing::info!(
        "cirrus-init {} starting (user mode over {})",
        crate::VERSION,
        root.display()
    );
    match supervisor::run(SupervisorConfig::user(&root, event_log)) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

fn control_client(request: Request) -> ExitCode {
    if let Request::Watch(_) = request {
        return match control::watch(
            &control::client_socket_path(),
            &request.to_line(),
            &mut std::io::stdout(),
        ) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("cirrus-init: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    match control::request(&control::client_socket_path(), &request.to_line()) {
        Ok(reply) => {
            let code = print_out(&reply);
            if reply.starts_with("error:") {
                ExitCode::FAILURE
            } else {
                code
            }
        }
        Err(e) => {
            eprintln!("cirrus-init: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn notify_client(fields: &[String]) -> ExitCode {
    let Some(target) = std::env::var_os(notify::NOTIFY_SOCKET_ENV) else {
        eprintln!(
            "cirrus-init: ${} is not set: run `notify` from a service started by cirrus-init (with ready = \"notify\")",
            notify::NOTIFY_SOCKET_ENV
        );
        return ExitCode::FAILURE;
    };
    let wait_for_ack = std::env::var_os(notify::NOTIFY_ACK_ENV).is_some_and(|v| v == "1");
    let message = fields.join("\n");
    match notify::send(
        &target.to_string_lossy(),
        &message,
        wait_for_ack,
        Duration::from_secs(5),
    ) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cirrus-init: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn print_out(text: &str) -> ExitCode {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::FAILURE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn modes() {
        assert_eq!(parse(&argv(&["/init"])), Ok(Invocation::FirstStage));
        assert_eq!(
            parse(&argv(&["cirrus-init", "--second-stage"])),
            Ok(Invocation::SecondStage { event_log: None })
        );
        assert_eq!(
            parse(&argv(&[
                "cirrus-init",
                "--user",
                "--event-log",
                "/tmp/e",
                "--root",
                "/tmp/r"
            ])),
            Ok(Invocation::User {
                root: "/tmp/r".into(),
                event_log: Some("/tmp/e".into())
            })
        );
        assert!(
            parse(&argv(&["cirrus-init", "--user"]))
                .unwrap_err()
                .contains("--root")
        );
        assert!(parse(&argv(&["cirrus-init", "--user", "--root"])).is_err());
        assert!(parse(&argv(&["cirrus-init", "--second-stage", "--root", "/x"])).is_err());
        assert!(parse(&argv(&["cirrus-init", "frobnicate"])).is_err());
    }

    #[test]
    fn clients() {
        assert_eq!(
            parse(&argv(&["/sbin/poweroff"])),
            Ok(Invocation::Control(Request::PowerOff))
        );
        assert_eq!(
            parse(&argv(&["reboot", "-f"])),
            Ok(Invocation::Control(Request::Reboot))
        );
        assert_eq!(
            parse(&argv(&["cirrus-init", "status"])),
            Ok(Invocation::Control(Request::Status))
        );
        assert_eq!(
            parse(&argv(&["cirrus-init", "notify", "READY=1", "STATUS=up"])),
            Ok(Invocation::Notify(argv(&["READY=1", "STATUS=up"])))
        );
        assert!(parse(&argv(&["cirrus-init", "notify"])).is_err());
        assert_eq!(
            parse(&argv(&["cirrus-init", "setprop", "persist.a", "b c"])),
            Ok(Invocation::Control(Request::SetProperty(
                "persist.a".into(),
                "b c".into()
            )))
        );
        assert_eq!(
            parse(&argv(&["cirrus-init", "restart", "svc"])),
            Ok(Invocation::Control(Request::Restart("svc".into())))
        );
        assert!(parse(&argv(&["cirrus-init", "getprop"])).is_err());
        assert!(parse(&argv(&["cirrus-init", "status", "a", "b"])).is_err());
        assert!(parse(&argv(&["cirrus-init", "notify", "READY"])).is_err());
    }

    #[test]
    fn pid1_ignores_kernel_leftovers() {
        assert_eq!(
            resolve(&argv(&["/init", "single", "splash"]), 1),
            Ok(Invocation::FirstStage)
        );
        assert_eq!(
            resolve(&argv(&["/init", "status"]), 1),
            Ok(Invocation::FirstStage)
        );
        assert_eq!(
            resolve(&argv(&["x", "--second-stage"]), 1),
            Ok(Invocation::SecondStage { event_log: None })
        );
        assert!(resolve(&argv(&["/init", "single"]), 42).is_err());
    }
}
