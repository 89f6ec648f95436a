//! `cargo xtask run`: build the image and boot it in QEMU.
//!
//! With a display (`$DISPLAY` or `$WAYLAND_DISPLAY`) and without `--headless`: a QEMU window, the
//! serial console on this terminal. Otherwise headless: the console goes to
//! `<target>/cirrus/<device>/run/serial.log` (and to this terminal), the home screen is saved as
//! `run/home-screen.png` once the boot completes, and the boot timeline is printed; then the VM keeps
//! running until Ctrl-C when stdin is a terminal (or with `--keep-running`), else it is powered off.

use std::io::IsTerminal;
use std::process::{ExitCode, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use cirrus_images::{QemuDisplay, QemuOptions, qemu_command};

use crate::boot_test::{BOOT_DEADLINE, SHUTDOWN_DEADLINE};
use crate::image::{self, BuiltImage};
use crate::interrupt;
use crate::timeline::{self, BOOT_COMPLETED_MESSAGE};
use crate::vm::{self, Vm};
use crate::workspace::Workspace;

pub fn run(device: &str, headless: bool, keep_running: bool) -> Result<ExitCode> {
    interrupt::install();
    let ws = Workspace::locate()?;
    let built = image::build(&ws, device)?;
    if !headless && has_display() {
        run_in_window(&built)
    } else {
        if !headless {
            println!("run: no display ($DISPLAY and $WAYLAND_DISPLAY are unset): booting headless");
        }
        run_headless(&built, keep_running)
    }
}

fn has_display() -> bool {
    ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|var| std::env::var_os(var).is_some_and(|v| !v.is_empty()))
}

fn run_in_window(built: &BuiltImage) -> Result<ExitCode> {
    let socket_dir = tempfile::Builder::new()
        .prefix("cirrus-qmp-")
        .tempdir()
        .context("creating a directory for the QMP socket")?;
    let options = QemuOptions {
        display: QemuDisplay::Window,
        qmp_socket: socket_dir.path().join("qmp.sock"),
        serial_log: None,
        data_image: None,
        extra_cmdline: Vec::new(),
    };
    let mut cmd = qemu_command(&built.device, &built.image, &options);
    cmd.stdin(Stdio::inherit())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit());
    println!("qemu: {}", vm::describe(&cmd));
    println!(
        "run: QEMU window opening; the serial console is on this terminal; close the window to stop"
    );
    println!(
        "run: QMP socket (screendump, input): {}",
        options.qmp_socket.display()
    );
    vm::die_with_parent(&mut cmd);
    let mut child = cmd
        .spawn()
        .with_context(|| format!("could not start {}", cmd.get_program().to_string_lossy()))?;
    // Ctrl-C in the terminal reaches QEMU too (same process group) and it quits by itself; a SIGTERM
    // sent to us alone closes it after a grace period.
    let mut interrupted_at = None;
    let status = loop {
        if let Some(status) = child.try_wait().context("waiting for QEMU")? {
            break status;
        }
        if interrupt::requested() {
            let since = *interrupted_at.get_or_insert_with(std::time::Instant::now);
            if since.elapsed() > Duration::from_secs(2) {
                let _ = child.kill();
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    if interrupt::requested() {
        println!("run: interrupted; QEMU stopped ({status})");
        return Ok(ExitCode::FAILURE);
    }
    if !status.success() {
        bail!("QEMU exited with {status}");
    }
    Ok(ExitCode::SUCCESS)
}

fn run_headless(built: &BuiltImage, keep_running: bool) -> Result<ExitCode> {
    let dir = built.out_dir.join("run");
    let mut vm = Vm::start_headless(built, &dir, None, true)?;
    let booted = vm.wait_for_line(BOOT_COMPLETED_MESSAGE, BOOT_DEADLINE);
    let total_wall = booted.as_ref().ok().map(|&i| vm.serial.seen_at[i]);
    let t = timeline::parse(&vm.serial.lines);
    if let Err(err) = booted {
        print!("{}", t.render(|i| vm.serial.seen_at.get(i).copied(), None));
        println!("qemu: {}", vm.qemu_messages(20));
        return Err(err.context(format!(
            "the image did not finish booting (console: {})",
            vm.serial.path().display()
        )));
    }

    let ppm = dir.join("screendump.ppm");
    let png = dir.join("home-screen.png");
    // A moment for the frame after `boot completed` to reach the screen.
    std::thread::sleep(Duration::from_secs(1));
    let shot = vm
        .screendump(&ppm)
        .context("taking a screenshot through QMP")?;
    let _ = std::fs::remove_file(&ppm);
    shot.save_png(&png)?;
    println!(
        "run: home screen ({}x{}) saved to {}",
        shot.width,
        shot.height,
        png.display()
    );
    print!(
        "{}",
        t.render(|i| vm.serial.seen_at.get(i).copied(), total_wall)
    );

    if keep_running || std::io::stdin().is_terminal() {
        println!("run: the VM keeps running; press Ctrl-C to power it off");
        if let Some(status) = vm.follow_until_interrupted()? {
            println!("run: QEMU exited ({status})");
            return Ok(if status.success() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            });
        }
        println!();
    }
    println!("run: powering off");
    vm.power_off(SHUTDOWN_DEADLINE)?;
    Ok(ExitCode::SUCCESS)
}
