//! The launcher with real apps: entries from .desktop files are drawn, a tap starts the app (a real
//! Debian client, foot), its window covers the app area, and a swipe up from the bottom edge brings
//! the home screen back.

mod common;

use std::time::{Duration, Instant};

use cirrus_compositor::input::Pointing;
use cirrus_compositor::spawn_headless;
use cirrus_ui::launcher::LauncherLayout;
use cirrus_ui::shell::{ShellLayout, render_home_reference};
use common::{keep, match_ratio};

const W: u32 = 720;
const H: u32 = 1440;

fn reference_pixel(reference: &cirrus_ui::tiny_skia::Pixmap, x: u32, y: u32) -> [u8; 3] {
    reference
        .pixel(x, y)
        .map(|c| {
            let c = c.demultiply();
            [c.red(), c.green(), c.blue()]
        })
        .unwrap_or([0, 0, 0])
}

fn write_entry(dir: &std::path::Path, id: &str, name: &str, exec: &str) {
    let apps = dir.join("applications");
    std::fs::create_dir_all(&apps).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        apps.join(format!("{id}.desktop")),
        format!("[Desktop Entry]\nType=Application\nName={name}\nExec={exec}\n"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
}

/// Share of the app area that still shows the wallpaper (1.0 = home screen without launcher).
fn wallpaper_share(shot: &cirrus_compositor::Screenshot, layout: &ShellLayout) -> f64 {
    let reference = render_home_reference(layout);
    match_ratio(shot, layout.home, 8, |x, y| {
        reference_pixel(&reference, x, y)
    })
}

fn wait_for(
    session: &cirrus_compositor::HeadlessSession,
    what: &str,
    name: &str,
    ok: impl Fn(&cirrus_compositor::Screenshot) -> bool,
) -> cirrus_compositor::Screenshot {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let shot = session
            .screenshot()
            .unwrap_or_else(|e| panic!("screenshot: {e:#}"));
        if ok(&shot) {
            keep(&shot, name);
            return shot;
        }
        if Instant::now() > deadline {
            let path = keep(&shot, name);
            panic!("{what}: not seen within 30 s, see {}", path.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn launcher_shows_apps_and_a_tap_opens_foot_then_swipe_up_goes_home() {
    if std::process::Command::new("foot")
        .arg("--version")
        .output()
        .is_err()
    {
        panic!("foot is not installed: run `cargo xtask deps`");
    }
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    write_entry(
        dir.path(),
        "foot",
        "Terminal",
        "foot --override=colors.background=e02090 --override=colors.alpha=1.0",
    );
    write_entry(dir.path(), "viewer", "Viewer", "/bin/false"); // sorts after "Terminal": slot 1
    let session = spawn_headless(
        W,
        H,
        dir.path().join("wayland-test"),
        vec![dir.path().to_path_buf()],
    )
    .unwrap_or_else(|e| panic!("compositor: {e:#}"));
    let shell = ShellLayout::new(W, H);
    let grid = LauncherLayout::new(&shell);

    // The launcher draws both apps over the wallpaper: the icons' area no longer shows wallpaper.
    let home = session
        .screenshot()
        .unwrap_or_else(|e| panic!("screenshot: {e:#}"));
    keep(&home, "launcher");
    for slot in 0..2 {
        let icon = grid.icon_rect(slot);
        let reference = render_home_reference(&shell);
        let same = match_ratio(&home, icon, 8, |x, y| reference_pixel(&reference, x, y));
        assert!(
            same < 0.2,
            "launcher icon {slot} not drawn ({same:.2} of it is wallpaper)"
        );
    }
    let third = grid.icon_rect(2);
    let reference = render_home_reference(&shell);
    assert!(
        match_ratio(&home, third, 8, |x, y| reference_pixel(&reference, x, y)) > 0.99,
        "an empty launcher cell was drawn"
    );

    // Tap the first app (the tablet in QEMU is a pointer; tap as one) → foot's window covers the app area.
    let icon = grid.icon_rect(0);
    let scale = shell.scale as f64;
    let (tx, ty) = (
        (icon.x as f64 + icon.width as f64 / 2.0) / scale,
        (icon.y as f64 + icon.height as f64 / 2.0) / scale,
    );
    session
        .tap(Pointing::Pointer, tx, ty)
        .unwrap_or_else(|e| panic!("tap: {e:#}"));
    let magenta = [0xe0, 0x20, 0x90];
    wait_for(&session, "foot's window", "foot-open", |shot| {
        match_ratio(shot, shell.home, 10, |_, _| magenta) > 0.5
    });

    // Swipe up from the bottom edge → the home screen again (foot keeps running behind it).
    let (w, h) = (W as f64 / scale, H as f64 / scale);
    session
        .swipe(
            Pointing::Pointer,
            (w / 2.0, h - 4.0),
            (w / 2.0, h - 300.0),
            8,
        )
        .unwrap_or_else(|e| panic!("swipe: {e:#}"));
    wait_for(
        &session,
        "the home screen after the swipe",
        "home-after-swipe",
        |shot| {
            match_ratio(shot, shell.home, 10, |_, _| magenta) < 0.01
                && wallpaper_share(shot, &shell) > 0.8
        },
    );
    session
        .stop()
        .unwrap_or_else(|e| panic!("compositor stopped with an error: {e:#}"));
}

/// Apps installed while the shell runs appear on the launcher and leave it when removed, without a
/// restart — including the first install, when the app manager creates `applications/` itself.
#[test]
fn launcher_follows_installs_and_removals() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let session = spawn_headless(
        W,
        H,
        dir.path().join("wayland-test"),
        vec![dir.path().to_path_buf()],
    )
    .unwrap_or_else(|e| panic!("compositor: {e:#}"));
    let shell = ShellLayout::new(W, H);
    let grid = LauncherLayout::new(&shell);
    let reference = render_home_reference(&shell);
    let wallpaper_in = |shot: &cirrus_compositor::Screenshot, slot: usize| {
        match_ratio(shot, grid.icon_rect(slot), 8, |x, y| {
            reference_pixel(&reference, x, y)
        })
    };
    let empty = session
        .screenshot()
        .unwrap_or_else(|e| panic!("screenshot: {e:#}"));
    assert!(
        wallpaper_in(&empty, 0) > 0.99,
        "no app yet, but a tile was drawn"
    );

    // The first install: `applications/` does not exist until now.
    write_entry(dir.path(), "notes", "Notes", "/bin/false");
    wait_for(
        &session,
        "the installed app's tile",
        "launcher-installed",
        |shot| wallpaper_in(shot, 0) < 0.2,
    );
    // A second one, written the way installers do (a temporary file renamed into place).
    let apps = dir.path().join("applications");
    std::fs::write(
        apps.join(".tmp-zeta"),
        "[Desktop Entry]\nType=Application\nName=Zeta\nExec=/bin/false\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    std::fs::rename(apps.join(".tmp-zeta"), apps.join("zeta.desktop"))
        .unwrap_or_else(|e| panic!("{e}"));
    wait_for(&session, "the second app's tile", "launcher-two", |shot| {
        wallpaper_in(shot, 1) < 0.2
    });
    // Uninstall both: the launcher is empty again.
    std::fs::remove_file(apps.join("notes.desktop")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::remove_file(apps.join("zeta.desktop")).unwrap_or_else(|e| panic!("{e}"));
    wait_for(&session, "the empty launcher", "launcher-removed", |shot| {
        wallpaper_in(shot, 0) > 0.99 && wallpaper_in(shot, 1) > 0.99
    });
    session.stop().unwrap_or_else(|e| panic!("stop: {e:#}"));
}
