//! The app switcher with two real Wayland clients: swipe up from the bottom edge and hold opens
//! it with one card per app (most recent first); tapping a card switches app; swiping a card up
//! asks that app to close.

mod common;

use std::time::{Duration, Instant};

use cirrus_compositor::input::Pointing;
use cirrus_compositor::overview::OverviewLayout;
use cirrus_compositor::{HeadlessSession, InjectedInput, spawn_headless};
use cirrus_ui::shell::ShellLayout;
use common::{TestApp, match_ratio, wait_until};

const W: u32 = 720;
const H: u32 = 1440;
const FIRST: [u8; 3] = [0xe0, 0x30, 0x30];
const SECOND: [u8; 3] = [0x30, 0xc0, 0x40];

/// Swipe up from the bottom edge and rest before letting go.
fn swipe_up_and_hold(session: &HeadlessSession) {
    let (w, h) = (W as f64 / 2.0, H as f64 / 2.0);
    let p = Pointing::Pointer;
    let send = |i| session.input(i).unwrap_or_else(|e| panic!("input: {e:#}"));
    send(InjectedInput::Down {
        pointing: p,
        x: w / 2.0,
        y: h - 4.0,
    });
    for step in 1..=8 {
        send(InjectedInput::Motion {
            pointing: p,
            x: w / 2.0,
            y: h - 4.0 - step as f64 * 30.0,
        });
    }
    std::thread::sleep(Duration::from_millis(500));
    send(InjectedInput::Up { pointing: p });
}

#[test]
fn overview_shows_both_apps_switches_and_closes() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let session = spawn_headless(W, H, dir.path().join("wl"), vec![])
        .unwrap_or_else(|e| panic!("compositor: {e:#}"));
    let shell = ShellLayout::new(W, H);
    let cards = OverviewLayout::new(shell.home, shell.scale);

    let mut first = TestApp::connect(&session.socket_path);
    first.open_window("first");
    first.draw(FIRST, 2);
    first.wait_for_frame();
    let mut second = TestApp::connect(&session.socket_path);
    second.open_window("second");
    second.draw(SECOND, 2);
    second.wait_for_frame();

    swipe_up_and_hold(&session);
    // Card 0 is the most recent app (second), card 1 the first.
    wait_until(
        &session,
        "two cards in the overview",
        "overview-two-apps",
        |shot| {
            match_ratio(shot, cards.card(0), 4, |_, _| SECOND) > 0.95
                && match_ratio(shot, cards.card(1), 4, |_, _| FIRST) > 0.95
        },
    );
    let outside = cirrus_ui::IRect::new(0, cards.card(0).bottom() + 40, W, 40);
    let shot = session.screenshot().unwrap_or_else(|e| panic!("{e:#}"));
    assert!(
        match_ratio(&shot, outside, 4, |_, _| SECOND) < 0.01,
        "the app still covers the screen under its card"
    );

    // Tap the first app's card → it is in front again, full size.
    let card = cards.card(1);
    let scale = shell.scale as f64;
    session
        .tap(
            Pointing::Pointer,
            (card.x as f64 + card.width as f64 / 2.0) / scale,
            (card.y as f64 + card.height as f64 / 2.0) / scale,
        )
        .unwrap_or_else(|e| panic!("tap: {e:#}"));
    wait_until(
        &session,
        "the first app in front",
        "overview-switched",
        |shot| match_ratio(shot, shell.home, 4, |_, _| FIRST) > 0.99,
    );

    // Overview again; swipe the second app's card (now card 1) up → it is asked to close.
    swipe_up_and_hold(&session);
    wait_until(&session, "the overview again", "overview-again", |shot| {
        match_ratio(shot, cards.card(1), 4, |_, _| SECOND) > 0.95
    });
    let card = cards.card(1);
    let (cx, cy) = (
        (card.x as f64 + card.width as f64 / 2.0) / scale,
        (card.y as f64 + card.height as f64 / 2.0) / scale,
    );
    session
        .swipe(Pointing::Pointer, (cx, cy), (cx, cy - 200.0), 6)
        .unwrap_or_else(|e| panic!("swipe: {e:#}"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !second.state.close_requested {
        assert!(
            Instant::now() < deadline,
            "swiping the card up did not ask the app to close"
        );
        second.roundtrip();
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !first.state.close_requested,
        "the wrong app was asked to close"
    );
    session.stop().unwrap_or_else(|e| panic!("{e:#}"));
}
