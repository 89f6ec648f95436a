//! The protocol globals apps look for are advertised, and presentation-time feedback reports when
//! a committed frame reached the (headless) screen.

mod common;

use std::time::{Duration, Instant};

use cirrus_compositor::spawn_headless;
use common::TestApp;
use wayland_client::protocol::wl_registry;
use wayland_client::{Connection, Dispatch, QueueHandle, delegate_noop};
use wayland_protocols::wp::presentation_time::client::{wp_presentation, wp_presentation_feedback};

#[derive(Default)]
struct Globals {
    names: Vec<(String, u32)>,
}

impl Dispatch<wl_registry::WlRegistry, ()> for Globals {
    fn event(
        state: &mut Self,
        _: &wl_registry::WlRegistry,
        event: wl_registry::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let wl_registry::Event::Global {
            interface, version, ..
        } = event
        {
            state.names.push((interface, version));
        }
    }
}

#[test]
fn advertises_the_protocols_apps_need() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let session = spawn_headless(720, 1440, dir.path().join("wl"), vec![])
        .unwrap_or_else(|e| panic!("compositor: {e:#}"));
    // Apps connect under their own uids: the socket must be open to every local user.
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&session.socket_path)
            .unwrap_or_else(|e| panic!("{e}"))
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o666, "socket mode {mode:o}");
    let stream = std::os::unix::net::UnixStream::connect(&session.socket_path)
        .unwrap_or_else(|e| panic!("connect: {e}"));
    let conn = Connection::from_socket(stream).unwrap_or_else(|e| panic!("{e}"));
    let mut queue = conn.new_event_queue();
    conn.display().get_registry(&queue.handle(), ());
    let mut globals = Globals::default();
    queue
        .roundtrip(&mut globals)
        .unwrap_or_else(|e| panic!("roundtrip: {e}"));
    for wanted in [
        "wl_compositor",
        "wl_subcompositor",
        "wl_shm",
        "wl_seat",
        "wl_output",
        "wl_data_device_manager",
        "xdg_wm_base",
        "zxdg_decoration_manager_v1",
        "zxdg_output_manager_v1",
        "wp_viewporter",
        "wp_single_pixel_buffer_manager_v1",
        "wp_fractional_scale_manager_v1",
        "wp_presentation",
        "xdg_activation_v1",
        "wp_cursor_shape_manager_v1",
    ] {
        assert!(
            globals.names.iter().any(|(n, _)| n == wanted),
            "{wanted} is not advertised; globals: {:?}",
            globals.names
        );
    }
    session.stop().unwrap_or_else(|e| panic!("{e:#}"));
}

impl Dispatch<wp_presentation_feedback::WpPresentationFeedback, ()> for common::AppState {
    fn event(
        state: &mut Self,
        _: &wp_presentation_feedback::WpPresentationFeedback,
        event: wp_presentation_feedback::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        let fb = state.extra.get_or_insert_with(Default::default);
        match event {
            wp_presentation_feedback::Event::Presented {
                tv_sec_hi,
                tv_sec_lo,
                seq_lo,
                ..
            } => {
                fb.presented = Some((((tv_sec_hi as u64) << 32) | tv_sec_lo as u64, seq_lo));
            }
            wp_presentation_feedback::Event::Discarded => fb.discarded = true,
            _ => {}
        }
    }
}

delegate_noop!(common::AppState: ignore wp_presentation::WpPresentation);

#[test]
fn presentation_feedback_reports_the_frame() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let session = spawn_headless(720, 1440, dir.path().join("wl"), vec![])
        .unwrap_or_else(|e| panic!("compositor: {e:#}"));
    let mut app = TestApp::connect(&session.socket_path);
    app.open_window("timed");
    let qh = app.queue.handle();
    let presentation: wp_presentation::WpPresentation = app.bind_global("wp_presentation", 1);
    let Some(surface) = app.surface.clone() else {
        panic!("no surface")
    };
    let _feedback = presentation.feedback(&surface, &qh, ());
    app.draw([0x30, 0x60, 0x90], 2);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        app.roundtrip();
        if let Some(fb) = &app.state.extra {
            assert!(
                !fb.discarded,
                "the frame was discarded although the window is shown"
            );
            if let Some((secs, seq)) = fb.presented {
                let now = nix_monotonic_secs();
                assert!(
                    secs <= now && now - secs < 60,
                    "presented at {secs}s of CLOCK_MONOTONIC, now is {now}s"
                );
                assert!(seq > 0, "sequence number not counted");
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no presentation feedback within 20 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    session.stop().unwrap_or_else(|e| panic!("{e:#}"));
}

fn nix_monotonic_secs() -> u64 {
    let mut ts = libc_timespec();
    // SAFETY: clock_gettime writes into the timespec we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64
}

fn libc_timespec() -> libc::timespec {
    libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    }
}
