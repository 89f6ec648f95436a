//! The C counter app end to end in the headless host: first frame, a tap changes the state (the
//! count and the pixels), stop and relaunch keeps the state, and the precompiled code path.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{HOST, Host, build_c_app, read_frame};

#[test]
fn tap_changes_state_and_it_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let component = build_c_app("counter", dir.path());
    // Precompile as the manager does at install; the host must accept it.
    let cwasm = dir.path().join("counter.cwasm");
    let st = std::process::Command::new(HOST)
        .arg("precompile")
        .arg(&component)
        .arg(&cwasm)
        .status()
        .unwrap();
    assert!(st.success());
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let frame = dir.path().join("frame.rgba");
    let frame_arg = frame.display().to_string();
    let cwasm_arg = cwasm.display().to_string();
    let args = [
        "--size",
        "120x200",
        "--frame-out",
        frame_arg.as_str(),
        "--precompiled",
        cwasm_arg.as_str(),
    ];

    let mut host = Host::start(&component, &data, None, &args, &dir.path().join("log1"));
    host.wait_status("first-frame");
    let (w, h, before) = read_frame(&frame);
    assert_eq!((w, h), (120, 200));
    assert_eq!(
        &before[0..4],
        &[0x1e, 0x3a, 0x8a, 0xff],
        "background colour"
    );
    host.send("pointer down 60 100");
    host.send("pointer up 60 100");
    // Wait for the redraw after the tap.
    let mut after = before.clone();
    for _ in 0..500 {
        if std::fs::read_to_string(data.join("count.txt"))
            .map(|c| c.trim() == "1")
            .unwrap_or(false)
        {
            after = read_frame(&frame).2;
            if after != before {
                break;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_ne!(after, before, "the tap did not change the picture");
    host.terminate();
    assert_eq!(host.wait_exit(), Some(0));
    assert!(
        host.log_text().contains("counter: destroyed at 1"),
        "{}",
        host.log_text()
    );
    assert!(
        !host.log_text().contains("precompiled code not usable"),
        "{}",
        host.log_text()
    );

    let host = Host::start(&component, &data, None, &args, &dir.path().join("log2"));
    host.wait_status("first-frame");
    assert!(
        host.log_text().contains("counter: created with count 1"),
        "{}",
        host.log_text()
    );
    assert_eq!(
        read_frame(&frame).2,
        after,
        "the relaunched app draws the saved state"
    );
}

#[test]
fn engine_hash_is_stable_and_hex() {
    let a = std::process::Command::new(HOST)
        .arg("engine-hash")
        .output()
        .unwrap();
    let b = std::process::Command::new(HOST)
        .arg("engine-hash")
        .output()
        .unwrap();
    assert!(a.status.success());
    assert_eq!(a.stdout, b.stdout);
    let hash = String::from_utf8_lossy(&a.stdout).trim().to_owned();
    assert_eq!(hash.len(), 16);
    assert!(hash.bytes().all(|c| c.is_ascii_hexdigit()));
}
