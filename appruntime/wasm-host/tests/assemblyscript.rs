//! The AssemblyScript counter (tests/apps/assemblyscript) built from source with the SDK's asc
//! build, run by the host: it draws text, a tap changes its count (picture and file), and the count
//! survives a restart.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Host, build_as_app, read_frame};

const PURPLE: [u8; 4] = [0x4c, 0x1d, 0x95, 0xff];

fn count_colour(pixels: &[u8], rgba: [u8; 4]) -> usize {
    pixels.chunks_exact(4).filter(|p| *p == rgba).count()
}

#[test]
fn assemblyscript_counter_draws_text_counts_taps_and_keeps_state() {
    let dir = tempfile::tempdir().unwrap();
    let component = build_as_app("counter", dir.path());
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let frame = dir.path().join("frame.rgba");
    let frame_arg = frame.display().to_string();
    let args = ["--size", "160x240", "--frame-out", frame_arg.as_str()];

    let mut host = Host::start(&component, &data, None, &args, &dir.path().join("log1"));
    host.wait_status("first-frame");
    assert!(
        host.log_text().contains("counter: created with count 0"),
        "{}",
        host.log_text()
    );
    let (w, h, before) = read_frame(&frame);
    assert_eq!((w, h), (160, 240));
    assert_eq!(&before[0..4], &PURPLE, "background colour");
    // Text: white glyph cells ("TAPS" and "0").
    let white = count_colour(&before, [255; 4]);
    assert!(white > 100, "no text drawn ({white} white pixels)");

    host.send("pointer down 80 120");
    host.send("pointer up 80 120");
    let mut after = before.clone();
    for _ in 0..500 {
        if std::fs::read_to_string(data.join("count.txt")).is_ok_and(|c| c == "1\n") {
            after = read_frame(&frame).2;
            if after != before {
                break;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_ne!(after, before, "the tap did not change the picture");
    assert_eq!(
        std::fs::read_to_string(data.join("count.txt")).unwrap(),
        "1\n"
    );
    host.terminate();
    assert_eq!(host.wait_exit(), Some(0));
    assert!(
        host.log_text().contains("counter: destroyed at 1"),
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
        "the relaunched app draws the saved count"
    );
}
