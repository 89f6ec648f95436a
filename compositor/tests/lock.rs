//! The lock screen: locking hides the app behind the lock screen (big clock, date, hint) and keeps
//! input from the app; a swipe up unlocks back to the app.

mod common;

use cirrus_compositor::input::Pointing;
use cirrus_compositor::spawn_headless;
use cirrus_ui::lock::LockLayout;
use cirrus_ui::shell::ShellLayout;
use common::{TestApp, match_ratio, wait_until};

const W: u32 = 720;
const H: u32 = 1440;
const APP: [u8; 3] = [0x20, 0x90, 0xe0];

#[test]
fn lock_hides_the_app_and_swipe_up_unlocks() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let session = spawn_headless(W, H, dir.path().join("wl"), vec![])
        .unwrap_or_else(|e| panic!("compositor: {e:#}"));
    let shell = ShellLayout::new(W, H);
    let lock = LockLayout::new(&shell);
    let mut app = TestApp::connect(&session.socket_path);
    app.open_window("private");
    app.draw(APP, 2);
    app.wait_for_frame();

    session.lock().unwrap_or_else(|e| panic!("{e:#}"));
    wait_until(&session, "the lock screen", "lock-screen", |shot| {
        let app_visible = match_ratio(shot, shell.home, 4, |_, _| APP);
        let clock_text = match_ratio(shot, lock.clock, 40, |_, _| {
            cirrus_ui::theme::STATUS_BAR_TEXT
        });
        app_visible < 0.001 && clock_text > 0.05
    });

    // A tap on the lock screen does nothing; the app must not get it.
    session
        .tap(Pointing::Touch, 180.0, 300.0)
        .unwrap_or_else(|e| panic!("{e:#}"));
    let shot = session.screenshot().unwrap_or_else(|e| panic!("{e:#}"));
    assert!(
        match_ratio(&shot, shell.home, 4, |_, _| APP) < 0.001,
        "a tap unlocked the phone"
    );

    session
        .swipe(Pointing::Touch, (180.0, 600.0), (180.0, 300.0), 6)
        .unwrap_or_else(|e| panic!("{e:#}"));
    wait_until(&session, "the app after unlocking", "unlocked", |shot| {
        match_ratio(shot, shell.home, 4, |_, _| APP) > 0.99
    });
    session.stop().unwrap_or_else(|e| panic!("{e:#}"));
}
