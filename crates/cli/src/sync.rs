//! `cirrus sync …`: talks to cirrus-syncd over `org.cirrus.Sync1` (the contract in
//! `cirrus_syncd::bus`): `status`, `now` (runs a cycle and waits for it, showing progress), `pause`,
//! `resume`, `conflicts`, `confirm-deletes`. The bus is the system bus (or `DBUS_SYSTEM_BUS_ADDRESS`),
//! or `--bus-address`.

// A command-line tool: its output is the point.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use cirrus_syncd::bus::{ReportCounts, Sync1ClientProxy, SyncStatus};
use clap::{Args, Subcommand};
use futures_util::StreamExt;

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// D-Bus address of the bus cirrus-syncd is on (default: the system bus).
    #[arg(long, global = true)]
    bus_address: Option<String>,
    #[command(subcommand)]
    command: SyncCommand,
}

#[derive(Debug, Subcommand)]
pub enum SyncCommand {
    /// What sync is doing: state, progress, last sync, held deletions, errors.
    Status {
        /// Print the status as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Sync now (even when a charging-only or unmetered-only condition holds it back) and wait
    /// for the cycle to finish.
    Now {
        /// Return once the cycle is requested.
        #[arg(long)]
        no_wait: bool,
    },
    /// Pause sync (persists across restarts) until `cirrus sync resume`.
    Pause,
    /// Resume sync; a cycle starts at once.
    Resume,
    /// Conflict copies this device made (both versions of a file kept).
    Conflicts {
        #[arg(long)]
        json: bool,
    },
    /// Let the deletions held back by the mass-delete guard go through.
    ConfirmDeletes,
}

pub fn run(args: SyncArgs) -> ExitCode {
    match execute(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("cirrus sync: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn execute(args: SyncArgs) -> Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let conn = match &args.bus_address {
            Some(a) => zbus::connection::Builder::address(a.as_str())
                .build()
                .await
                .with_context(|| format!("connecting to {a}"))?,
            None => zbus::Connection::system()
                .await
                .context("connecting to the system bus")?,
        };
        let proxy = Sync1ClientProxy::new(&conn).await?;
        let not_running = |e: zbus::Error| {
            anyhow::Error::new(e).context("asking cirrus-syncd (org.cirrus.Sync1); is it running?")
        };
        match args.command {
            SyncCommand::Status { json } => {
                let s = proxy.status().await.map_err(not_running)?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&s)?);
                } else {
                    print!("{}", describe_status(&s, now_ms()));
                }
            }
            SyncCommand::Now { no_wait } => return sync_now(&proxy, no_wait).await,
            SyncCommand::Pause => {
                proxy.pause().await.map_err(not_running)?;
                println!(
                    "sync paused (it stays paused across restarts; `cirrus sync resume` resumes it)"
                );
            }
            SyncCommand::Resume => {
                proxy.resume().await.map_err(not_running)?;
                println!("sync resumed");
            }
            SyncCommand::Conflicts { json } => {
                let list = proxy.conflicts().await.map_err(not_running)?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&list)?);
                } else if list.is_empty() {
                    println!("no conflicts");
                } else {
                    for c in list {
                        println!(
                            "{}\n    other version kept as {} (device {}, {})",
                            c.path,
                            c.copy,
                            c.device,
                            ago(c.time_ms as i64, now_ms())
                        );
                    }
                }
            }
            SyncCommand::ConfirmDeletes => {
                let n = proxy.confirm_deletes().await.map_err(not_running)?;
                if n == 0 {
                    println!(
                        "no deletions were held; the next cycle propagates any the guard holds now"
                    );
                } else {
                    println!(
                        "{n} held deletion(s) confirmed; they go through in the cycle starting now"
                    );
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

async fn sync_now(proxy: &Sync1ClientProxy<'static>, no_wait: bool) -> Result<ExitCode> {
    let mut finished = proxy.receive_cycle_finished().await?;
    let mut progress = proxy.receive_progress().await?;
    let want = proxy
        .sync_now()
        .await
        .context("asking cirrus-syncd for a cycle")?;
    if no_wait {
        println!("sync cycle {want} requested");
        return Ok(ExitCode::SUCCESS);
    }
    loop {
        tokio::select! {
            sig = finished.next() => {
                let Some(sig) = sig else { bail!("cirrus-syncd left the bus before the cycle finished") };
                let a = sig.args()?;
                if a.cycle < want {
                    continue;
                }
                if a.ok {
                    println!("sync done: {}", describe_report(&a.report));
                    return Ok(ExitCode::SUCCESS);
                }
                eprintln!("sync failed: {}", a.error);
                return Ok(ExitCode::FAILURE);
            }
            Some(sig) = progress.next() => {
                if let Ok(a) = sig.args() && a.files_total > 0 {
                    eprintln!("syncing: {}/{} files, {}/{}", a.files_done, a.files_total, bytes(a.bytes_done), bytes(a.bytes_total));
                }
            }
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn ago(then_ms: i64, now_ms: i64) -> String {
    let s = (now_ms - then_ms).max(0) / 1000;
    match s {
        0..60 => format!("{s} s ago"),
        60..3600 => format!("{} min ago", s / 60),
        3600..86400 => format!("{} h ago", s / 3600),
        _ => format!("{} days ago", s / 86400),
    }
}

fn bytes(n: u64) -> String {
    match n {
        0..1024 => format!("{n} B"),
        1024..1_048_576 => format!("{:.1} KiB", n as f64 / 1024.0),
        1_048_576..1_073_741_824 => format!("{:.1} MiB", n as f64 / 1_048_576.0),
        _ => format!("{:.2} GiB", n as f64 / 1_073_741_824.0),
    }
}

fn describe_report(r: &ReportCounts) -> String {
    let parts: Vec<String> = [
        (r.uploaded, "uploaded"),
        (r.copied, "copied server-side"),
        (r.downloaded, "downloaded"),
        (r.deleted_remote, "deleted in the cloud"),
        (r.deleted_local, "deleted here"),
        (r.conflicts, "conflict(s)"),
        (r.held_deletes, "deletion(s) held"),
        (r.failed, "failed"),
        (r.skipped, "left for later (paused)"),
    ]
    .iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| format!("{n} {what}"))
    .collect();
    if parts.is_empty() {
        "nothing to do".into()
    } else {
        parts.join(", ")
    }
}

fn describe_status(s: &SyncStatus, now: i64) -> String {
    let mut out = String::new();
    let state = if s.detail.is_empty() {
        s.state.clone()
    } else {
        format!("{} ({})", s.state, s.detail)
    };
    out += &format!("state:        {state}\n");
    if s.state == "syncing" {
        out += &format!(
            "progress:     {}/{} files, {}/{}\n",
            s.files_done,
            s.files_total,
            bytes(s.bytes_done),
            bytes(s.bytes_total)
        );
    }
    let last = if s.last_sync_ms > 0 {
        ago(s.last_sync_ms, now)
    } else {
        "never".into()
    };
    out += &format!("last sync:    {last}\n");
    if s.cycles_finished > 0 {
        out += &format!("last cycle:   {}\n", describe_report(&s.last_report));
    }
    if s.held_deletes > 0 {
        out += &format!(
            "held deletes: {} (more than the mass-delete guard allows; `cirrus sync confirm-deletes` lets them through)\n",
            s.held_deletes
        );
    }
    for e in &s.errors {
        out += &format!("error:        {e}\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_text_says_what_a_user_needs() {
        let s = SyncStatus {
            state: "waiting".into(),
            detail: "waiting for the charger (charging-only is on)".into(),
            last_sync_ms: 1_000_000,
            held_deletes: 80,
            errors: vec!["store error: denied".into()],
            last_report: ReportCounts {
                uploaded: 2,
                held_deletes: 80,
                ..Default::default()
            },
            cycles_finished: 3,
            ..Default::default()
        };
        let text = describe_status(&s, 1_000_000 + 125_000);
        assert!(
            text.contains("state:        waiting (waiting for the charger"),
            "{text}"
        );
        assert!(text.contains("last sync:    2 min ago"), "{text}");
        assert!(
            text.contains("last cycle:   2 uploaded, 80 deletion(s) held"),
            "{text}"
        );
        assert!(text.contains("held deletes: 80"), "{text}");
        assert!(text.contains("error:        store error: denied"), "{text}");
        assert_eq!(describe_report(&ReportCounts::default()), "nothing to do");
        assert_eq!(bytes(5 << 20), "5.0 MiB");
    }
}
