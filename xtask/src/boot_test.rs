//! The boot test: the real image booted in QEMU reaches the home screen and shuts down cleanly.
//!
//! 1. Build the image; boot it headless with a scratch copy of data.img.
//! 2. Wait for `boot completed in` on the serial console (deadline [`BOOT_DEADLINE`] of wall time:
//!    TCG is slow and CI machines are noisy; this is a deadline, not a speed assertion).
//! 3. Screenshot through QMP; compare with the shell's reference rendering
//!    ([`crate::home_screen_check`]). Files in `<target>/cirrus/<device>/boot-test/`:
//!    `serial.log`, `home-screen.png`, and on failure `expected.png` and `diff.png`.
//! 4. Touch: a tap on the first launcher entry opens the app; a swipe up from the bottom edge
//!    brings the home screen back ([`crate::touch_test`]; `app-open.png`, `home-again.png`).
//! 5. System apps: Notes and Settings (web apps) are on the launcher, and a tap on each shows its
//!    page ([`crate::system_apps_test`]; `launcher-apps.png`, `notes-open.png`, `settings-open.png`).
//! 6. Ctrl-Alt-Del through QMP: init must shut down and QEMU exit within [`SHUTDOWN_DEADLINE`].
//! 7. Print the boot timeline (never asserted).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::home_screen_check::{self, HomeScreenReport, Rect, ShellRegions};
use crate::image::{self, BuiltImage};
use crate::screenshot::RgbImage;
use crate::timeline::{self, BOOT_COMPLETED_MESSAGE};
use crate::vm::Vm;
use crate::workspace::Workspace;

/// Wall time allowed from QEMU's start to `boot completed in`.
pub const BOOT_DEADLINE: Duration = Duration::from_secs(300);
/// Wall time allowed from Ctrl-Alt-Del to QEMU's exit.
pub const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(120);
/// Screenshots taken until one matches: the clock or the wallpaper may land a frame after
/// `boot completed`.
const SCREENSHOT_ATTEMPTS: u32 = 5;
const SCREENSHOT_INTERVAL: Duration = Duration::from_secs(2);
/// Printed by the image's `bus-check` unit once `org.cirrus.Init1` introspects on the system bus.
const INIT1_MARKER: &str = "org.cirrus.Init1 introspection ok";
/// Printed by the image's `sync-check` unit once cirrus-syncd (running as its own user) answers
/// `org.cirrus.Sync1.Status()` on the system bus.
const SYNC1_MARKER: &str = "org.cirrus.Sync1 status ok";
/// Printed by the image's `appmanager-check` unit once cirrus-appmanager answers
/// `org.cirrus.AppManager1.List()` on the system bus.
const APPMANAGER1_MARKER: &str = "org.cirrus.AppManager1 list ok";
/// Serial lines printed when something fails.
const TAIL_LINES: usize = 150;

/// Runs the boot test; `Err` lists every check that failed.
pub fn run(ws: &Workspace, device: &str) -> Result<()> {
    println!("boot test: building the image of {device}");
    let built = image::build(ws, device)?;
    let dir = built.out_dir.join("boot-test");
    prepare_dir(&dir)?;
    let data = dir.join("data.img");
    copy_sparse(Path::new(&built.image.data), &data)?;

    println!(
        "boot test: booting {device} headless in QEMU (deadline {} s)",
        BOOT_DEADLINE.as_secs()
    );
    let mut vm = Vm::start_headless(&built, &dir, Some(data.clone()), false)?;
    let mut failures = Vec::new();

    let booted = vm.wait_for_line(BOOT_COMPLETED_MESSAGE, BOOT_DEADLINE);
    let total_wall = booted.as_ref().ok().map(|&i| vm.serial.seen_at[i]);
    if let Err(err) = booted {
        vm.kill();
        print_serial_tail(&vm);
        print_timeline(&vm, None);
        println!(
            "boot test: serial log kept at {}",
            vm.serial.path().display()
        );
        let _ = std::fs::remove_file(&data);
        return Err(err.context("the image did not finish booting"));
    }
    println!("boot test: boot completed");

    // init's system bus front-end: the image's `bus-check` oneshot introspects org.cirrus.Init1
    // over the system bus (dbus-send) and prints this line when the interface is there.
    if let Err(err) = vm.wait_for_line(INIT1_MARKER, Duration::from_secs(60)) {
        failures.push(format!("system bus: {err:#} (see the `bus-check |` lines)"));
    }
    // Cloud sync: the `sync-check` oneshot calls org.cirrus.Sync1.Status() as `nobody`.
    if let Err(err) = vm.wait_for_line(SYNC1_MARKER, Duration::from_secs(60)) {
        failures.push(format!(
            "cloud sync: {err:#} (see the `sync |` and `sync-check |` lines)"
        ));
    }
    // The app manager: the `appmanager-check` oneshot calls org.cirrus.AppManager1.List() as root.
    if let Err(err) = vm.wait_for_line(APPMANAGER1_MARKER, Duration::from_secs(60)) {
        failures.push(format!(
            "app manager: {err:#} (see the `appmanager |` and `appmanager-check |` lines)"
        ));
    }

    match check_home_screen(&mut vm, &built, &dir) {
        Ok(report) if report.passed() => {}
        Ok(report) => failures.extend(
            report
                .failures()
                .into_iter()
                .map(|f| format!("home screen: {f}")),
        ),
        Err(err) => failures.push(format!("home screen: {err:#}")),
    }

    if failures.is_empty()
        && let Err(err) = crate::touch_test::run(
            &mut vm,
            built.device.display.width,
            built.device.display.height,
            &dir,
        )
    {
        failures.push(format!("touch: {err:#}"));
    }

    // The system apps (web apps): on the launcher, and each opens.
    if failures.is_empty()
        && let Err(err) = crate::system_apps_test::run(
            &mut vm,
            built.device.display.width,
            built.device.display.height,
            &dir,
        )
    {
        failures.push(format!(
            "system apps: {err:#} (see the `appmanager |` lines)"
        ));
    }

    match vm.power_off(SHUTDOWN_DEADLINE) {
        Ok(_) => failures.extend(shutdown_problems(&vm.serial.lines)),
        Err(err) => failures.push(format!("shutdown: {err:#}")),
    }

    print_timeline(&vm, total_wall);
    println!("boot test: serial log at {}", vm.serial.path().display());
    let _ = std::fs::remove_file(&data);
    if failures.is_empty() {
        return Ok(());
    }
    print_serial_tail(&vm);
    bail!("{}", failures.join("\n"))
}

/// Takes screenshots until one matches the reference (or the attempts run out), saves it as
/// `home-screen.png`, and on failure also `expected.png` and `diff.png`.
fn check_home_screen(vm: &mut Vm, built: &BuiltImage, dir: &Path) -> Result<HomeScreenReport> {
    let (expected, regions) =
        shell_reference(built.device.display.width, built.device.display.height)?;
    let text_colour = cirrus_ui::theme::STATUS_BAR_TEXT;

    let ppm = dir.join("screendump.ppm");
    let png = dir.join("home-screen.png");
    let mut attempt = 1;
    let (actual, report) = loop {
        let actual = vm
            .screendump(&ppm)
            .context("taking a screenshot through QMP")?;
        let report = home_screen_check::check(&actual, &expected, &regions, text_colour);
        if report.passed() || attempt == SCREENSHOT_ATTEMPTS {
            break (actual, report);
        }
        attempt += 1;
        std::thread::sleep(SCREENSHOT_INTERVAL);
        vm.check_running()?;
    };
    let _ = std::fs::remove_file(&ppm);
    actual.save_png(&png)?;
    println!(
        "boot test: home screen ({}x{}) saved to {}",
        actual.width,
        actual.height,
        png.display()
    );
    for region in &report.regions {
        println!("  {}", region.describe());
    }
    if !report.passed() {
        let expected_png = dir.join("expected.png");
        let diff_png = dir.join("diff.png");
        expected.save_png(&expected_png)?;
        home_screen_check::diff_image(&actual, &expected, &regions, text_colour)
            .save_png(&diff_png)?;
        println!(
            "boot test: the home screen does not match after {attempt} screenshot(s); see {} and {} (red: differs)",
            expected_png.display(),
            diff_png.display()
        );
    }
    Ok(report)
}

/// The shell's reference rendering of the home screen and where its pieces are, at the display's size.
fn shell_reference(width: u32, height: u32) -> Result<(RgbImage, ShellRegions)> {
    let layout = cirrus_ui::shell::ShellLayout::new(width, height);
    let regions = ShellRegions {
        status_bar: rect(&layout.status_bar),
        clock: rect(&layout.clock),
        home: rect(&layout.home),
    };
    let reference = cirrus_ui::shell::render_home_reference(&layout);
    let expected =
        RgbImage::from_opaque_rgba(reference.width(), reference.height(), reference.data())
            .context("the shell's reference rendering")?;
    Ok((expected, regions))
}

fn rect(r: &cirrus_ui::IRect) -> Rect {
    Rect {
        x: r.x,
        y: r.y,
        width: r.width,
        height: r.height,
    }
}

/// What is wrong with the shutdown seen on the console after `boot completed`: init must have logged
/// its shutdown and the kernel its reboot (which only `reboot(2)` prints).
pub fn shutdown_problems(lines: &[String]) -> Vec<String> {
    let Some(completed) = lines
        .iter()
        .position(|l| l.contains(BOOT_COMPLETED_MESSAGE))
    else {
        return vec!["shutdown: `boot completed` is not in the console".to_owned()];
    };
    let after = &lines[completed + 1..];
    let mut problems = Vec::new();
    if !after.iter().any(|l| is_init_shutdown_line(l)) {
        problems.push(
            "shutdown: init logged no shutdown after Ctrl-Alt-Del (the kernel may have rebooted \
             by itself: init must disable Ctrl-Alt-Del with reboot(RB_DISABLE_CAD) to get SIGINT)"
                .to_owned(),
        );
    }
    if !after
        .iter()
        .any(|l| l.contains("reboot: Restarting system") || l.contains("reboot: Power down"))
    {
        problems.push("shutdown: the kernel did not log `reboot: Restarting system` (init did not call reboot(2))".to_owned());
    }
    if let Some(panic) = after.iter().find(|l| l.contains("Kernel panic")) {
        problems.push(format!("shutdown: {panic}"));
    }
    problems
}

/// A line of cirrus-init about shutting down, e.g.
/// `[   40.1] INFO cirrus_init::shutdown: stopping services for reboot`.
fn is_init_shutdown_line(line: &str) -> bool {
    let lower = line.to_ascii_lowercase();
    let from_init = lower.contains("cirrus_init") || lower.contains("cirrus-init");
    let about_shutdown = [
        "shutdown",
        "shutting down",
        "reboot",
        "power off",
        "powering off",
        "poweroff",
        "stopping",
    ]
    .iter()
    .any(|w| lower.contains(w));
    from_init && about_shutdown
}

fn print_timeline(vm: &Vm, total_wall: Option<Duration>) {
    let t = timeline::parse(&vm.serial.lines);
    print!(
        "{}",
        t.render(|i| vm.serial.seen_at.get(i).copied(), total_wall)
    );
}

fn print_serial_tail(vm: &Vm) {
    let tail = vm.serial.tail(TAIL_LINES);
    println!(
        "---- last {} line(s) of the serial console ({}) ----",
        tail.len(),
        vm.serial.path().display()
    );
    for line in tail {
        println!("{line}");
    }
    println!(
        "---- QEMU's own messages ----\n{}\n----",
        vm.qemu_messages(20)
    );
}

/// Empties the results of an earlier run.
fn prepare_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for name in [
        "serial.log",
        "qemu.log",
        "home-screen.png",
        "expected.png",
        "diff.png",
        "screendump.ppm",
        "data.img",
    ] {
        let path: PathBuf = dir.join(name);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("removing {}", path.display()));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Copies a disk image keeping it sparse (std's copy would write every hole).
fn copy_sparse(from: &Path, to: &Path) -> Result<()> {
    let status = Command::new("cp")
        .arg("--sparse=always")
        .arg(from)
        .arg(to)
        .status()
        .context("could not run cp")?;
    if !status.success() {
        bail!("cp {} {} failed ({status})", from.display(), to.display());
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_owned).collect()
    }

    #[test]
    fn clean_shutdown_is_recognised() {
        let log = lines(
            "[    3.5] INFO cirrus_init: boot completed in 3.50s\n\
             [   40.0] INFO cirrus_init::shutdown: Ctrl-Alt-Del: stopping services, then reboot\n\
             [   40.2] INFO cirrus_init::shutdown: syncing and unmounting\n\
             [   40.3] reboot: Restarting system",
        );
        assert!(
            shutdown_problems(&log).is_empty(),
            "{:?}",
            shutdown_problems(&log)
        );
    }

    #[test]
    fn kernel_reboot_without_init_is_not_a_clean_shutdown() {
        let log = lines(
            "[    3.5] INFO cirrus_init: boot completed in 3.50s\n[   40.3] reboot: Restarting system",
        );
        let problems = shutdown_problems(&log);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("init logged no shutdown"));
    }

    #[test]
    fn init_without_reboot_or_with_panic_fails() {
        let log = lines(
            "[    1.0] INFO cirrus_init: a reboot: early line before boot completed\n\
             [    3.5] INFO cirrus_init: boot completed in 3.50s\n\
             [   40.0] INFO cirrus_init: shutting down\n\
             [   41.0] Kernel panic - not syncing: Attempted to kill init!",
        );
        let problems = shutdown_problems(&log);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems.iter().any(|p| p.contains("reboot(2)")));
        assert!(
            problems
                .iter()
                .any(|p| p.contains("Attempted to kill init"))
        );
        assert_eq!(shutdown_problems(&[]).len(), 1);
    }

    #[test]
    fn the_shells_own_rendering_passes_and_an_empty_status_bar_does_not() {
        use cirrus_ui::shell::{ShellLayout, StatusBarState, draw_status_bar};
        use cirrus_ui::text::TextRenderer;

        let (width, height) = (720, 1440);
        let (expected, regions) = shell_reference(width, height).unwrap();
        let text_colour = cirrus_ui::theme::STATUS_BAR_TEXT;

        // The reference alone has no clock: only the clock check fails.
        let report = home_screen_check::check(&expected, &expected, &regions, text_colour);
        let failed: Vec<_> = report
            .regions
            .iter()
            .filter(|r| !r.passed())
            .map(|r| r.name)
            .collect();
        assert_eq!(failed, [home_screen_check::CLOCK]);

        // The reference with the status bar drawn as the compositor draws it (clock "09:41") passes.
        let layout = ShellLayout::new(width, height);
        let mut bar =
            cirrus_ui::tiny_skia::Pixmap::new(layout.status_bar.width, layout.status_bar.height)
                .unwrap();
        draw_status_bar(
            &mut bar,
            &layout,
            &StatusBarState {
                clock: "09:41".into(),
                ..Default::default()
            },
            &mut TextRenderer::new(),
        );
        let bar = RgbImage::from_opaque_rgba(bar.width(), bar.height(), bar.data()).unwrap();
        let mut screen = expected.clone();
        for y in 0..bar.height {
            for x in 0..bar.width {
                screen.set(x, y, bar.get(x, y));
            }
        }
        let report = home_screen_check::check(&screen, &expected, &regions, text_colour);
        assert!(report.passed(), "{:?}", report.failures());
    }

    #[test]
    fn copies_sparse_files() {
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("a.img");
        let file = std::fs::File::create(&from).unwrap();
        file.set_len(64 << 20).unwrap();
        let to = dir.path().join("b.img");
        copy_sparse(&from, &to).unwrap();
        let meta = std::fs::metadata(&to).unwrap();
        assert_eq!(meta.len(), 64 << 20);
        assert!(meta.blocks() * 512 < 1 << 20, "the copy is not sparse");
    }
}
