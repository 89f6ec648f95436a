//! The touch part of the boot test: through QEMU's virtio tablet (QMP `input-send-event`), a tap on
//! the first launcher entry opens that app (its window covers the app area), and a swipe up from the
//! bottom edge brings the home screen back.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::json;

use crate::screenshot::RgbImage;
use crate::vm::Vm;

/// QEMU's absolute axes run from 0 to this.
const ABS_MAX: f64 = 32767.0;
/// How long an app may take to show its first window under TCG.
const APP_DEADLINE: Duration = Duration::from_secs(90);
const HOME_DEADLINE: Duration = Duration::from_secs(30);

fn abs(v: f64, size: u32) -> i64 {
    ((v / (size.max(2) - 1) as f64) * ABS_MAX)
        .round()
        .clamp(0.0, ABS_MAX) as i64
}

fn send(vm: &mut Vm, events: serde_json::Value) -> Result<()> {
    // No `device`: QEMU routes absolute motion to the tablet (the only absolute pointer) and the
    // button to the active pointer; the compositor treats any pointer's left button alike.
    vm.qmp
        .execute("input-send-event", Some(json!({ "events": events })))
        .context("QMP input-send-event")?;
    Ok(())
}

pub(crate) fn move_to(vm: &mut Vm, x: f64, y: f64, w: u32, h: u32) -> Result<()> {
    send(
        vm,
        json!([
            { "type": "abs", "data": { "axis": "x", "value": abs(x, w) } },
            { "type": "abs", "data": { "axis": "y", "value": abs(y, h) } },
        ]),
    )
}

pub(crate) fn button(vm: &mut Vm, down: bool) -> Result<()> {
    send(
        vm,
        json!([{ "type": "btn", "data": { "down": down, "button": "left" } }]),
    )
}

/// Share of the app area (below the status bar) equal to the home screen reference.
pub(crate) fn home_share(shot: &RgbImage, reference: &RgbImage, home: &cirrus_ui::IRect) -> f64 {
    let mut same = 0u64;
    let mut total = 0u64;
    let y1 = (home.bottom().max(0) as u32).min(shot.height);
    let x1 = (home.right().max(0) as u32).min(shot.width);
    for y in (home.y.max(0) as u32..y1).step_by(4) {
        for x in (home.x.max(0) as u32..x1).step_by(4) {
            total += 1;
            let (a, b) = (shot.get(x, y), reference.get(x, y));
            if a.iter()
                .zip(b)
                .all(|(p, q)| (*p as i32 - q as i32).abs() <= 24)
            {
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

pub(crate) fn wait_for_screen(
    vm: &mut Vm,
    dir: &Path,
    name: &str,
    deadline: Duration,
    what: &str,
    ok: impl Fn(&RgbImage) -> bool,
) -> Result<()> {
    let ppm = dir.join("touch.ppm");
    let start = Instant::now();
    loop {
        let shot = vm
            .screendump(&ppm)
            .context("taking a screenshot through QMP")?;
        let done = ok(&shot);
        if done || start.elapsed() > deadline {
            let png = dir.join(format!("{name}.png"));
            shot.save_png(&png)?;
            let _ = std::fs::remove_file(&ppm);
            if done {
                println!(
                    "boot test: {what} after {:.1} s ({})",
                    start.elapsed().as_secs_f64(),
                    png.display()
                );
                return Ok(());
            }
            bail!(
                "{what}: not seen within {} s; last screenshot {}",
                deadline.as_secs(),
                png.display()
            );
        }
        vm.check_running()?;
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The home gesture: a swipe up from the bottom edge.
pub(crate) fn swipe_up_from_bottom(vm: &mut Vm, width: u32, height: u32) -> Result<()> {
    let mid = width as f64 / 2.0;
    let bottom = height as f64 - 3.0;
    move_to(vm, mid, bottom, width, height)?;
    button(vm, true)?;
    for step in 1..=10 {
        move_to(
            vm,
            mid,
            bottom - step as f64 * (height as f64 * 0.04),
            width,
            height,
        )?;
    }
    button(vm, false)
}

/// Taps the first launcher entry, waits for its window, swipes home, waits for the home screen.
pub fn run(vm: &mut Vm, width: u32, height: u32, dir: &Path) -> Result<()> {
    let shell = cirrus_ui::shell::ShellLayout::new(width, height);
    let grid = cirrus_ui::launcher::LauncherLayout::new(&shell);
    let reference = cirrus_ui::shell::render_home_reference(&shell);
    let reference =
        RgbImage::from_opaque_rgba(reference.width(), reference.height(), reference.data())?;
    let home = shell.home;

    let icon = grid.icon_rect(0);
    let (x, y) = (
        icon.x as f64 + icon.width as f64 / 2.0,
        icon.y as f64 + icon.height as f64 / 2.0,
    );
    println!("boot test: tapping the first launcher entry at ({x:.0}, {y:.0})");
    move_to(vm, x, y, width, height)?;
    button(vm, true)?;
    button(vm, false)?;
    wait_for_screen(
        vm,
        dir,
        "app-open",
        APP_DEADLINE,
        "the app's window covers the home screen",
        |shot| home_share(shot, &reference, &home) < 0.3,
    )?;

    println!("boot test: swiping up from the bottom edge");
    swipe_up_from_bottom(vm, width, height)?;
    wait_for_screen(
        vm,
        dir,
        "home-again",
        HOME_DEADLINE,
        "the home screen is back",
        |shot| home_share(shot, &reference, &home) > 0.9,
    )
}
