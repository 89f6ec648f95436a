//! `cargo xtask test`: every test of the workspace, then the boot test, and one summary line.

use std::io::{BufRead, BufReader};
use std::process::{ExitCode, Stdio};

use anyhow::{Context, Result};

use crate::boot_test;
use crate::interrupt;
use crate::workspace::{Workspace, cargo};

/// Counts from the `test result:` lines of cargo test's output.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub passed: u64,
    pub failed: u64,
    pub ignored: u64,
}

impl Counts {
    /// Adds one libtest summary line, e.g.
    /// `test result: ok. 12 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s`.
    pub fn add_line(&mut self, line: &str) -> bool {
        let Some(rest) = line.trim().strip_prefix("test result: ") else {
            return false;
        };
        let mut seen = false;
        for part in rest.split(';') {
            let mut words = part.split_whitespace().rev();
            let (Some(what), Some(number)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(n) = number.parse::<u64>() else {
                continue;
            };
            match what {
                "passed" => self.passed += n,
                "failed" => self.failed += n,
                "ignored" => self.ignored += n,
                _ => continue,
            }
            seen = true;
        }
        seen
    }
}

/// `cargo xtask test` (`boot_only`: skip `cargo test --workspace`, for iterating on the image).
pub fn run(device: &str, boot_only: bool) -> Result<ExitCode> {
    interrupt::install();
    let ws = Workspace::locate()?;

    let (counts, cargo_ok) = if boot_only {
        println!("test: --boot-only: skipping cargo test --workspace");
        (Counts::default(), true)
    } else {
        println!("test: cargo test --workspace --no-fail-fast");
        cargo_test(&ws)?
    };
    if interrupted() {
        return Ok(ExitCode::FAILURE);
    }

    println!("test: boot test ({device})");
    let boot = boot_test::run(&ws, device);
    if interrupted() {
        return Ok(ExitCode::FAILURE);
    }

    println!();
    println!("==== summary ====");
    let mut passed = counts.passed;
    let mut failed = counts.failed;
    if cargo_ok {
        println!(
            "cargo test --workspace: {} passed, {} failed, {} ignored",
            counts.passed, counts.failed, counts.ignored
        );
    } else {
        println!(
            "cargo test --workspace: FAILED ({} passed, {} failed, {} ignored{})",
            counts.passed,
            counts.failed,
            counts.ignored,
            if counts.failed == 0 {
                "; it stopped before running every test, see above"
            } else {
                ""
            }
        );
        // A build failure runs no test: count it, so the summary cannot read as a pass.
        failed = failed.max(1);
    }
    match &boot {
        Ok(()) => {
            println!("boot test: ok");
            passed += 1;
        }
        Err(err) => {
            println!("boot test: FAILED");
            for line in format!("{err:#}").lines() {
                println!("  {line}");
            }
            failed += 1;
        }
    }
    println!("summary: {passed} passed, {failed} failed");
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn interrupted() -> bool {
    if interrupt::requested() {
        println!("test: interrupted");
    }
    interrupt::requested()
}

/// Runs `cargo test --workspace`, echoing its output and adding up its summary lines.
fn cargo_test(ws: &Workspace) -> Result<(Counts, bool)> {
    let mut child = cargo()
        .args(["test", "--workspace", "--no-fail-fast"])
        .current_dir(&ws.root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("could not run cargo test")?;
    let stdout = child.stdout.take().context("cargo test has no stdout")?;
    let mut counts = Counts::default();
    for line in BufReader::new(stdout).lines() {
        let line = line.context("reading cargo test's output")?;
        println!("{line}");
        counts.add_line(&line);
    }
    let status = child.wait().context("waiting for cargo test")?;
    Ok((counts, status.success()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_up_libtest_summaries() {
        let mut c = Counts::default();
        assert!(c.add_line("test result: ok. 12 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s"));
        assert!(c.add_line("test result: FAILED. 3 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1.2s"));
        assert!(c.add_line("  test result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s"));
        assert!(!c.add_line("test parses_things ... ok"));
        assert!(!c.add_line("running 12 tests"));
        assert_eq!(
            c,
            Counts {
                passed: 15,
                failed: 2,
                ignored: 1
            }
        );
    }
}
