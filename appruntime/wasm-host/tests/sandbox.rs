//! The sandbox must hold: an app reads only its own data dir (and its package, read-only); an
//! infinite loop is reported `not-responding` and the app stays killable; a memory bomb is capped.
//! Real C apps (tests/apps) built with clang, componentized, run by the real host binary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Host, build_c_app};

#[test]
fn files_outside_the_data_dir_are_out_of_reach() {
    let dir = tempfile::tempdir().unwrap();
    let component = build_c_app("sandbox", dir.path());
    let data = dir.path().join("app/org.test.app");
    let other = dir.path().join("app/other.app");
    let package = dir.path().join("package");
    for d in [&data, &other, &package] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(data.join("mode"), "files").unwrap();
    std::fs::write(data.join("own.txt"), "mine").unwrap();
    std::fs::write(other.join("secret.txt"), "SECRET").unwrap();
    std::fs::write(package.join("asset.txt"), "asset").unwrap();
    let mut host = Host::start(
        &component,
        &data,
        Some(&package),
        &[],
        &dir.path().join("log"),
    );
    host.wait_status("first-frame");
    host.terminate();
    assert_eq!(host.wait_exit(), Some(0));
    let log = host.log_text();
    for line in [
        "probe own: READ mine",
        "probe passwd: denied",
        "probe dotdot: denied",
        "probe abs-dotdot: denied",
        "probe package: READ asset",
        "probe package-write: denied",
    ] {
        assert!(
            log.contains(line),
            "expected `{line}` in the app's log:\n{log}"
        );
    }
    assert!(!log.contains("SECRET") && !log.contains("root:"), "{log}");
}

#[test]
fn an_infinite_loop_is_reported_and_killable() {
    let dir = tempfile::tempdir().unwrap();
    let component = build_c_app("sandbox", dir.path());
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("mode"), "spin").unwrap();
    let mut host = Host::start(&component, &data, None, &[], &dir.path().join("log"));
    host.wait_status("first-frame");
    host.send("pointer down 1 1");
    host.wait_status("not-responding");
    // Still spinning: SIGTERM must end it (the epoch callback traps the runaway call).
    host.terminate();
    let code = host.wait_exit();
    assert_eq!(
        code,
        Some(3),
        "a stopped runaway app exits with the host's error code; log:\n{}",
        host.log_text()
    );
    assert!(
        host.log_text().contains("stopped while not responding"),
        "{}",
        host.log_text()
    );
}

#[test]
fn a_memory_bomb_is_contained() {
    let dir = tempfile::tempdir().unwrap();
    let component = build_c_app("sandbox", dir.path());
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("mode"), "bomb").unwrap();
    let mut host = Host::start(
        &component,
        &data,
        None,
        &["--memory-mb", "32"],
        &dir.path().join("log"),
    );
    // The app survives its refused allocations and goes on to draw.
    host.wait_status("first-frame");
    let log = host.log_text();
    let mib: u64 = log
        .lines()
        .find_map(|l| l.strip_prefix("bomb: refused after "))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no bomb report in:\n{log}"));
    assert!(mib < 32, "the app got {mib} MiB past a 32 MiB cap");
    assert!(
        mib >= 16,
        "the app got only {mib} MiB: the cap is far too tight"
    );
    host.terminate();
    assert_eq!(host.wait_exit(), Some(0));
}
