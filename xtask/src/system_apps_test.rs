//! The system-apps part of the boot test: the web apps the image ships (Notes, Settings) are on the
//! launcher with their own icons, and each opens — a tap on its icon (QMP tablet) shows its page in
//! the app's colours (WebKitGTK under TCG: slow, hence the long deadline). Screenshots
//! `launcher-apps.png`, `notes-open.png`, `settings-open.png`.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::screenshot::RgbImage;
use crate::touch_test::{button, home_share, move_to, swipe_up_from_bottom, wait_for_screen};
use crate::vm::Vm;

/// How long the launcher may take to show the system apps after the home screen is up (the app
/// manager installs them at its first start).
const LAUNCHER_DEADLINE: Duration = Duration::from_secs(90);
/// A web app's first page under TCG (WebKit's web and network processes start too).
const WEB_APP_DEADLINE: Duration = Duration::from_secs(300);
const HOME_DEADLINE: Duration = Duration::from_secs(60);

/// One system app: its launcher icon's main colour (icons/*.png, drawn by make-icons.py), its
/// page's header and background colours (www/style.css), and the colour of text its script writes
/// (so the page counts as shown only once the app's script has run), and what else must show.
pub struct SystemApp {
    pub name: &'static str,
    pub icon: [u8; 3],
    pub header: [u8; 3],
    pub page: [u8; 3],
    pub script_text: [u8; 3],
    /// Colours of which one must also be shown (none: nothing more), e.g. Settings' cloud-sync
    /// dot once org.cirrus.Sync1 answered (its error red is not among them).
    pub one_of: &'static [[u8; 3]],
}

/// Pixels of `script_text` that prove the script wrote something (a short line of text has
/// several hundred).
const MIN_SCRIPT_TEXT_PIXELS: u64 = 150;

pub const SYSTEM_APPS: [SystemApp; 2] = [
    SystemApp {
        name: "notes",
        icon: [0xf5, 0x9e, 0x0b],
        header: [0xb4, 0x53, 0x09],
        page: [0xff, 0xfb, 0xeb],
        // `--muted`: the "No notes yet" line, or each note's preview and date.
        script_text: [0x78, 0x71, 0x6c],
        one_of: &[],
    },
    SystemApp {
        name: "settings",
        icon: [0x33, 0x41, 0x55],
        header: [0x33, 0x41, 0x55],
        page: [0xf1, 0xf5, 0xf9],
        // `--ink`: the About device values (from /system/etc/build.toml).
        script_text: [0x0f, 0x17, 0x2a],
        // The cloud-sync dot (style.css): idle, syncing, waiting, paused.
        one_of: &[
            [0x16, 0xa3, 0x4a],
            [0x25, 0x63, 0xeb],
            [0xd9, 0x77, 0x06],
            [0x94, 0xa3, 0xb8],
        ],
    },
];

fn close(a: [u8; 3], b: [u8; 3], tolerance: i32) -> bool {
    a.iter()
        .zip(b)
        .all(|(p, q)| (i32::from(*p) - i32::from(q)).abs() <= tolerance)
}

/// Share of `rect`'s pixels (sampled every 2) within ±12 of `want`.
fn share(shot: &RgbImage, rect: &cirrus_ui::IRect, want: [u8; 3]) -> f64 {
    let (mut same, mut total) = (0u64, 0u64);
    let y1 = (rect.bottom().max(0) as u32).min(shot.height);
    let x1 = (rect.right().max(0) as u32).min(shot.width);
    for y in (rect.y.max(0) as u32..y1).step_by(2) {
        for x in (rect.x.max(0) as u32..x1).step_by(2) {
            total += 1;
            if close(shot.get(x, y), want, 12) {
                same += 1;
            }
        }
    }
    if total == 0 {
        0.0
    } else {
        same as f64 / total as f64
    }
}

/// The launcher slot whose icon is mostly `colour` (the grid's first page).
fn slot_with_icon(
    shot: &RgbImage,
    grid: &cirrus_ui::launcher::LauncherLayout,
    colour: [u8; 3],
) -> Option<usize> {
    (0..grid.per_page()).find(|&slot| share(shot, &grid.icon_rect(slot), colour) > 0.3)
}

/// Pixels of `rect` within ±4 of `want`.
fn count(shot: &RgbImage, rect: &cirrus_ui::IRect, want: [u8; 3]) -> u64 {
    let y1 = (rect.bottom().max(0) as u32).min(shot.height);
    let x1 = (rect.right().max(0) as u32).min(shot.width);
    let mut n = 0;
    for y in rect.y.max(0) as u32..y1 {
        for x in rect.x.max(0) as u32..x1 {
            if close(shot.get(x, y), want, 4) {
                n += 1;
            }
        }
    }
    n
}

/// Does the app area show `app`'s page (its background over most of it, its header colour, text
/// its script wrote)?
fn shows_page(shot: &RgbImage, home: &cirrus_ui::IRect, app: &SystemApp) -> bool {
    // (Settings' cards cover most of its page background.)
    share(shot, home, app.page) > 0.05
        && share(shot, home, app.header) > 0.02
        && count(shot, home, app.script_text) >= MIN_SCRIPT_TEXT_PIXELS
        && (app.one_of.is_empty()
            || app
                .one_of
                .iter()
                .any(|&c| count(shot, home, c) >= MIN_SCRIPT_TEXT_PIXELS))
}

/// Finds Notes and Settings on the launcher, then opens each and goes home again.
pub fn run(vm: &mut Vm, width: u32, height: u32, dir: &Path) -> Result<()> {
    let shell = cirrus_ui::shell::ShellLayout::new(width, height);
    let grid = cirrus_ui::launcher::LauncherLayout::new(&shell);
    let reference = cirrus_ui::shell::render_home_reference(&shell);
    let reference =
        RgbImage::from_opaque_rgba(reference.width(), reference.height(), reference.data())?;
    let home = shell.home;

    // Both icons on the launcher.
    let ppm = dir.join("launcher.ppm");
    let start = Instant::now();
    let slots = loop {
        let shot = vm
            .screendump(&ppm)
            .context("taking a screenshot through QMP")?;
        let slots: Vec<Option<usize>> = SYSTEM_APPS
            .iter()
            .map(|app| slot_with_icon(&shot, &grid, app.icon))
            .collect();
        if slots.iter().all(Option::is_some) || start.elapsed() > LAUNCHER_DEADLINE {
            let png = dir.join("launcher-apps.png");
            shot.save_png(&png)?;
            let _ = std::fs::remove_file(&ppm);
            let missing: Vec<&str> = SYSTEM_APPS
                .iter()
                .zip(&slots)
                .filter(|(_, s)| s.is_none())
                .map(|(a, _)| a.name)
                .collect();
            if !missing.is_empty() {
                bail!(
                    "not on the launcher after {} s: {} (no icon of its colour; see {})",
                    LAUNCHER_DEADLINE.as_secs(),
                    missing.join(", "),
                    png.display()
                );
            }
            println!(
                "boot test: system apps on the launcher after {:.1} s ({})",
                start.elapsed().as_secs_f64(),
                png.display()
            );
            break slots.into_iter().flatten().collect::<Vec<usize>>();
        }
        vm.check_running()?;
        std::thread::sleep(Duration::from_secs(1));
    };

    for (app, slot) in SYSTEM_APPS.iter().zip(slots) {
        let icon = grid.icon_rect(slot);
        let (x, y) = (
            icon.x as f64 + icon.width as f64 / 2.0,
            icon.y as f64 + icon.height as f64 / 2.0,
        );
        println!(
            "boot test: tapping {} (slot {slot}) at ({x:.0}, {y:.0})",
            app.name
        );
        move_to(vm, x, y, width, height)?;
        button(vm, true)?;
        button(vm, false)?;
        wait_for_screen(
            vm,
            dir,
            &format!("{}-open", app.name),
            WEB_APP_DEADLINE,
            &format!("{}'s page is shown", app.name),
            |shot| shows_page(shot, &home, app),
        )?;
        swipe_up_from_bottom(vm, width, height)?;
        wait_for_screen(
            vm,
            dir,
            &format!("{}-home", app.name),
            HOME_DEADLINE,
            "the home screen is back",
            |shot| home_share(shot, &reference, &home) > 0.85,
        )?;
    }
    Ok(())
}
