//! Building the programs that go into a device image.
//!
//! Dev profile on purpose: in this workspace dependencies are built at opt-level 2 even in dev, and
//! the dev build shares its dependency artifacts with `cargo test`, so CI compiles the dependency
//! tree once. The exception is PID 1, resident for the device's whole life: it is built with the
//! size-optimised `pid1` profile (root Cargo.toml), whose dependency tree is small.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::Stdio;

use anyhow::{Context, Result, bail};

use crate::workspace::{Workspace, cargo};

/// Programs built with their own cargo profile instead of dev.
const PROFILES: &[(&str, &str)] = &[("cirrus-init", "pid1")];

/// The cargo profile a device program is built with (`None`: dev).
pub fn profile_of(name: &str) -> Option<&'static str> {
    PROFILES
        .iter()
        .find(|(program, _)| *program == name)
        .map(|(_, profile)| *profile)
}

/// Builds each program in `names` (a Cirrus package whose binary has the same name, e.g.
/// `cirrus-init`) and returns binary name → path of the executable.
pub fn build(ws: &Workspace, names: &[String]) -> Result<BTreeMap<String, PathBuf>> {
    if names.is_empty() {
        bail!("the device lists no programs to build");
    }
    let mut by_profile: BTreeMap<Option<&str>, Vec<String>> = BTreeMap::new();
    for name in names {
        by_profile
            .entry(profile_of(name))
            .or_default()
            .push(name.clone());
    }
    let mut built = BTreeMap::new();
    for (profile, names) in by_profile {
        built.extend(build_with(ws, &names, profile)?);
    }
    Ok(built)
}

/// Builds `names` with cargo `profile` (`None`: dev) and returns binary name → executable.
pub fn build_with(
    ws: &Workspace,
    names: &[String],
    profile: Option<&str>,
) -> Result<BTreeMap<String, PathBuf>> {
    let packages = names
        .iter()
        .map(|n| format!("-p {n}"))
        .collect::<Vec<_>>()
        .join(" ");
    match profile {
        Some(profile) => println!("build: cargo build --profile {profile} {packages}"),
        None => println!("build: cargo build {packages}"),
    }
    let mut cmd = cargo();
    cmd.arg("build")
        .arg("--message-format=json-render-diagnostics")
        .current_dir(&ws.root);
    if let Some(profile) = profile {
        cmd.args(["--profile", profile]);
    }
    for name in names {
        cmd.arg("-p").arg(name);
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("could not run cargo build")?;
    let stdout = child.stdout.take().context("cargo build has no stdout")?;
    let mut executables = BTreeMap::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.context("reading cargo build's output")?;
        if let Some((name, path)) = parse_executable(&line) {
            executables.insert(name, path);
        }
    }
    let status = child.wait().context("waiting for cargo build")?;
    if !status.success() {
        bail!("cargo build failed ({status})");
    }
    select(executables, names)
}

/// The binary's name and path from one `compiler-artifact` message of `--message-format=json`.
fn parse_executable(line: &str) -> Option<(String, PathBuf)> {
    let msg: serde_json::Value = serde_json::from_str(line).ok()?;
    if msg.get("reason")?.as_str()? != "compiler-artifact" {
        return None;
    }
    let target = msg.get("target")?;
    let is_bin = target
        .get("kind")?
        .as_array()?
        .iter()
        .any(|k| k.as_str() == Some("bin"));
    if !is_bin {
        return None;
    }
    let name = target.get("name")?.as_str()?.to_owned();
    let path = PathBuf::from(msg.get("executable")?.as_str()?);
    Some((name, path))
}

fn select(
    mut executables: BTreeMap<String, PathBuf>,
    names: &[String],
) -> Result<BTreeMap<String, PathBuf>> {
    let mut selected = BTreeMap::new();
    for name in names {
        match executables.remove(name) {
            Some(path) => {
                selected.insert(name.clone(), path);
            }
            None => bail!(
                "cargo build produced no binary named `{name}` (a device's program must be a package \
                 with a binary of the same name); it built: {}",
                executables.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        }
    }
    Ok(selected)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn picks_binaries_from_cargo_messages() {
        let lines = [
            r#"{"reason":"compiler-artifact","package_id":"x","target":{"kind":["lib"],"name":"cirrus_logging"},"executable":null,"filenames":["/t/debug/libcirrus_logging.rlib"]}"#,
            r#"{"reason":"compiler-artifact","package_id":"x","target":{"kind":["bin"],"name":"cirrus-init"},"executable":"/t/debug/cirrus-init","filenames":["/t/debug/cirrus-init"]}"#,
            r#"{"reason":"build-script-executed","package_id":"y"}"#,
            r#"{"reason":"compiler-artifact","package_id":"x","target":{"kind":["bin"],"name":"cirrus-compositor"},"executable":"/t/debug/cirrus-compositor","filenames":[]}"#,
            r#"{"reason":"build-finished","success":true}"#,
            "not json",
        ];
        let found: BTreeMap<_, _> = lines.iter().filter_map(|l| parse_executable(l)).collect();
        assert_eq!(found.len(), 2);
        let names = vec!["cirrus-init".to_owned(), "cirrus-compositor".to_owned()];
        let selected = select(found.clone(), &names).unwrap();
        assert_eq!(
            selected["cirrus-init"],
            PathBuf::from("/t/debug/cirrus-init")
        );
        let err = select(found, &["cirrus-logd".to_owned()]).unwrap_err();
        assert!(err.to_string().contains("cirrus-logd"), "{err}");
    }

    #[test]
    fn every_special_profile_is_defined_in_the_workspace() {
        // A profile named here but missing from the root Cargo.toml fails only when an image is
        // built; catch it in the unit tests instead.
        let manifest: toml::Table = include_str!("../../Cargo.toml").parse().unwrap();
        let profiles = manifest["profile"].as_table().unwrap();
        for (program, profile) in PROFILES {
            let defined = profiles.get(*profile).and_then(|p| p.as_table());
            assert!(
                defined.is_some(),
                "{program} is built with profile `{profile}`, which the root Cargo.toml does not define"
            );
            assert_eq!(profile_of(program), Some(*profile));
        }
        assert_eq!(profile_of("cirrus-compositor"), None);
    }
}
