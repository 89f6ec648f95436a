//! `cargo xtask fuzz [--seconds N] [TARGET…]`: runs every cargo-fuzz target of the workspace for a
//! bounded time each and fails if any finds a crash.
//!
//! Fuzz crates live beside the crate they fuzz (`<crate>/fuzz/`, each its own cargo workspace, as
//! cargo-fuzz lays them out). They are found by looking for `fuzz/Cargo.toml` one or two levels
//! below the workspace root. Targets run without a sanitizer (`--sanitizer none`): that is what the
//! stable toolchain allows, and libFuzzer's coverage guidance still works; a panic is a crash.
//!
//! Seeds: `<crate>/fuzz/seeds/<target>/` (committed, small). The growing corpus lives in
//! `target/fuzz/corpus/<target>/` and crash artefacts in `target/fuzz/artifacts/<target>/`.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context, Result, bail};

use crate::workspace::{Workspace, cargo};

/// A fuzz crate and its targets.
#[derive(Debug, Clone)]
pub struct FuzzCrate {
    pub dir: PathBuf,
    pub targets: Vec<String>,
}

/// Finds `*/fuzz/Cargo.toml` and `*/*/fuzz/Cargo.toml` below `root`.
pub fn discover(root: &Path) -> Result<Vec<FuzzCrate>> {
    let mut dirs = Vec::new();
    for level1 in read_dirs(root)? {
        if level1
            .file_name()
            .is_some_and(|n| n == "target" || n.to_string_lossy().starts_with('.'))
        {
            continue;
        }
        if level1.join("fuzz/Cargo.toml").is_file() {
            dirs.push(level1.join("fuzz"));
        }
        for level2 in read_dirs(&level1)? {
            if level2.join("fuzz/Cargo.toml").is_file() {
                dirs.push(level2.join("fuzz"));
            }
        }
    }
    dirs.sort();
    dirs.into_iter()
        .map(|dir| {
            let targets = targets_of(&dir)?;
            Ok(FuzzCrate { dir, targets })
        })
        .collect()
}

fn read_dirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            out.push(entry.path());
        }
    }
    Ok(out)
}

/// The `[[bin]]` names of a fuzz crate's Cargo.toml.
fn targets_of(fuzz_dir: &Path) -> Result<Vec<String>> {
    let manifest = fuzz_dir.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest)
        .with_context(|| format!("reading {}", manifest.display()))?;
    Ok(parse_bin_names(&text))
}

/// Reads `name = "…"` inside each `[[bin]]` table (a tiny reader: xtask stays dependency-light).
pub fn parse_bin_names(manifest: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut in_bin = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_bin = line == "[[bin]]";
            continue;
        }
        if in_bin
            && let Some(value) = line
                .strip_prefix("name")
                .map(str::trim_start)
                .and_then(|l| l.strip_prefix('='))
        {
            let value = value.trim().trim_matches('"');
            if !value.is_empty() {
                names.push(value.to_owned());
            }
        }
    }
    names
}

fn ensure_cargo_fuzz() -> Result<()> {
    let found = cargo()
        .args(["fuzz", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if found {
        return Ok(());
    }
    println!("fuzz: installing cargo-fuzz from crates.io (cargo install cargo-fuzz --locked)");
    let status = cargo()
        .args(["install", "cargo-fuzz", "--locked"])
        .status()
        .context("running cargo install")?;
    if !status.success() {
        bail!("cargo install cargo-fuzz failed ({status})");
    }
    Ok(())
}

/// `cargo xtask fuzz`.
pub fn run(seconds: u64, only: &[String]) -> Result<ExitCode> {
    let ws = Workspace::locate()?;
    ensure_cargo_fuzz()?;
    let crates = discover(&ws.root)?;
    let known: Vec<&str> = crates
        .iter()
        .flat_map(|c| c.targets.iter().map(String::as_str))
        .collect();
    for name in only {
        if !known.contains(&name.as_str()) {
            bail!(
                "no fuzz target named `{name}`; the targets are: {}",
                known.join(", ")
            );
        }
    }
    let fuzz_root = ws.root.join("target").join("fuzz");
    let mut failed = Vec::new();
    let mut ran = 0;
    for krate in &crates {
        for target in &krate.targets {
            if !only.is_empty() && !only.contains(target) {
                continue;
            }
            let corpus = fuzz_root.join("corpus").join(target);
            let artifacts = fuzz_root.join("artifacts").join(target);
            std::fs::create_dir_all(&corpus)
                .with_context(|| format!("creating {}", corpus.display()))?;
            std::fs::create_dir_all(&artifacts)
                .with_context(|| format!("creating {}", artifacts.display()))?;
            let seeds = krate.dir.join("seeds").join(target);
            println!(
                "fuzz: {target} ({}) for {seconds} s",
                krate
                    .dir
                    .strip_prefix(&ws.root)
                    .unwrap_or(&krate.dir)
                    .display()
            );
            let mut cmd: Command = cargo();
            cmd.current_dir(krate.dir.parent().unwrap_or(&krate.dir))
                .env("CARGO_TARGET_DIR", fuzz_root.join("build"))
                .args(["fuzz", "run", "--sanitizer", "none", "--fuzz-dir"])
                .arg(&krate.dir)
                .arg(target)
                .arg(&corpus);
            if seeds.is_dir() {
                cmd.arg(&seeds);
            }
            cmd.arg("--")
                .arg(format!("-max_total_time={seconds}"))
                .arg(format!("-artifact_prefix={}/", artifacts.display()))
                .arg("-print_final_stats=1");
            let status = cmd
                .status()
                .with_context(|| format!("running cargo fuzz for {target}"))?;
            ran += 1;
            if !status.success() {
                println!(
                    "fuzz: {target} FAILED ({status}); crash inputs are in {}",
                    artifacts.display()
                );
                failed.push(target.clone());
            }
        }
    }
    println!(
        "summary: {} passed, {} failed",
        ran - failed.len(),
        failed.len()
    );
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_bin_names_only_from_bin_tables() {
        let manifest = r#"
[package]
name = "x-fuzz"

[[bin]]
name = "unit_file"
path = "fuzz_targets/unit_file.rs"

[dependencies]
name = "not-a-target"

[[bin]]
name= "boot_config"
"#;
        assert_eq!(parse_bin_names(manifest), ["unit_file", "boot_config"]);
    }

    #[test]
    fn finds_the_fuzz_crates_of_this_workspace() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let crates = discover(&root).unwrap_or_default();
        let targets: Vec<&str> = crates
            .iter()
            .flat_map(|c| c.targets.iter().map(String::as_str))
            .collect();
        assert!(
            targets.contains(&"unit_file"),
            "unit_file fuzz target not found: {targets:?}"
        );
    }
}
