//! A device image booted headless in QEMU: serial console to a file, QMP for screenshots and keys.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use cirrus_images::{QemuDisplay, QemuOptions, qemu_command};

use crate::image::BuiltImage;
use crate::interrupt;
use crate::qmp::Qmp;
use crate::screenshot::RgbImage;
use crate::serial_log::SerialLog;

/// Lines after which no boot can complete, so waiting for the deadline is pointless: the kernel
/// giving up, and cirrus-init's emergency mode (it logs from that module only after a failure).
const FATAL_MARKERS: &[&str] = &["Kernel panic - not syncing", "cirrus_init::emergency"];

/// A running headless VM. Dropping it kills QEMU if it still runs.
pub struct Vm {
    child: Child,
    exit: Option<ExitStatus>,
    pub qmp: Qmp,
    pub serial: SerialLog,
    /// When QEMU was started.
    pub started: Instant,
    qemu_log: PathBuf,
    // Holds the QMP socket: a short path under /tmp, as Unix socket paths are limited to 108 bytes.
    _socket_dir: tempfile::TempDir,
}

impl Vm {
    /// Boots `built` headless. The serial console goes to `<run_dir>/serial.log` (printed live with
    /// `echo`), QEMU's own messages to `<run_dir>/qemu.log`. `data_image` replaces the image's
    /// data.img (the boot test passes a scratch copy).
    pub fn start_headless(
        built: &BuiltImage,
        run_dir: &Path,
        data_image: Option<PathBuf>,
        echo: bool,
    ) -> Result<Vm> {
        std::fs::create_dir_all(run_dir)
            .with_context(|| format!("creating {}", run_dir.display()))?;
        let serial_log = run_dir.join("serial.log");
        let qemu_log = run_dir.join("qemu.log");
        remove_if_exists(&serial_log)?;
        let socket_dir = tempfile::Builder::new()
            .prefix("cirrus-qmp-")
            .tempdir()
            .context("creating a directory for the QMP socket")?;
        let qmp_socket = socket_dir.path().join("qmp.sock");
        let options = QemuOptions {
            display: QemuDisplay::Headless,
            qmp_socket: qmp_socket.clone(),
            serial_log: Some(serial_log.clone()),
            data_image,
            extra_cmdline: Vec::new(),
        };
        let mut cmd = qemu_command(&built.device, &built.image, &options);
        let log =
            File::create(&qemu_log).with_context(|| format!("creating {}", qemu_log.display()))?;
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone().context("duplicating the QEMU log file")?)
            .stderr(log)
            // Its own process group: the terminal's Ctrl-C reaches only us, and we power the VM off.
            .process_group(0);
        die_with_parent(&mut cmd);
        println!("qemu: {}", describe(&cmd));
        println!("qemu: serial console → {}", serial_log.display());
        let started = Instant::now();
        let mut child = cmd
            .spawn()
            .with_context(|| format!("could not start {}", cmd.get_program().to_string_lossy()))?;

        let qmp =
            Qmp::connect_retrying(
                &qmp_socket,
                started + Duration::from_secs(30),
                || match child.try_wait()? {
                    Some(status) => bail!(
                        "QEMU exited at once ({status}):\n{}",
                        tail_of_file(&qemu_log, 20)
                    ),
                    None => Ok(()),
                },
            );
        let qmp = match qmp {
            Ok(qmp) => qmp,
            Err(err) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(err);
            }
        };
        Ok(Vm {
            child,
            exit: None,
            qmp,
            serial: SerialLog::new(&serial_log, started, echo),
            started,
            qemu_log,
            _socket_dir: socket_dir,
        })
    }

    /// `Err` when QEMU has exited (or Ctrl-C was pressed), with what QEMU said.
    pub fn check_running(&mut self) -> Result<()> {
        if interrupt::requested() {
            bail!("interrupted");
        }
        if let Some(status) = self.poll_exit()? {
            bail!(
                "QEMU exited ({status}); its messages:\n{}",
                tail_of_file(&self.qemu_log, 20)
            );
        }
        Ok(())
    }

    fn poll_exit(&mut self) -> Result<Option<ExitStatus>> {
        if self.exit.is_none() {
            self.exit = self.child.try_wait().context("checking on QEMU")?;
        }
        Ok(self.exit)
    }

    /// Reads the serial console until a line containing `needle` appears; returns its index.
    /// Gives up after `timeout` (counted from QEMU's start), when QEMU exits, or on a kernel panic.
    pub fn wait_for_line(&mut self, needle: &str, timeout: Duration) -> Result<usize> {
        let deadline = self.started + timeout;
        let mut from = 0;
        loop {
            self.serial
                .poll()
                .with_context(|| format!("reading {}", self.serial.path().display()))?;
            if let Some(i) = self.serial.find_from(from, needle) {
                return Ok(i);
            }
            if let Some(i) = FATAL_MARKERS
                .iter()
                .filter_map(|m| self.serial.find_from(from, m))
                .min()
            {
                // Let the lines that explain it arrive.
                std::thread::sleep(Duration::from_secs(2));
                self.serial.poll()?;
                bail!("the boot failed: {}", self.serial.lines[i]);
            }
            from = self.serial.lines.len();
            self.check_running()
                .with_context(|| format!("QEMU stopped before the console said `{needle}`"))?;
            if Instant::now() >= deadline {
                bail!(
                    "the console did not say `{needle}` within {} s of QEMU's start",
                    timeout.as_secs()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Keeps reading the serial console until Ctrl-C or QEMU's exit.
    pub fn follow_until_interrupted(&mut self) -> Result<Option<ExitStatus>> {
        loop {
            self.serial.poll()?;
            if interrupt::requested() {
                return Ok(None);
            }
            if let Some(status) = self.poll_exit()? {
                self.serial.finish()?;
                return Ok(Some(status));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Takes a screenshot through QMP, keeping QEMU's PPM at `ppm`.
    pub fn screendump(&mut self, ppm: &Path) -> Result<RgbImage> {
        remove_if_exists(ppm)?;
        self.qmp.screendump(ppm)?;
        RgbImage::load_ppm(ppm)
    }

    /// Presses Ctrl-Alt-Del (the kernel sends SIGINT to init, which stops the services, syncs,
    /// unmounts and reboots; QEMU runs with -no-reboot and exits) and waits up to `timeout` for QEMU
    /// to exit. Kills it and fails when it does not.
    pub fn power_off(&mut self, timeout: Duration) -> Result<ExitStatus> {
        if let Some(status) = self.poll_exit()? {
            bail!("QEMU had already exited ({status}) before the power-off");
        }
        println!("qemu: pressing Ctrl-Alt-Del (init shuts down, QEMU exits on the reboot)");
        let asked = Instant::now();
        self.qmp
            .send_key(&["ctrl", "alt", "delete"])
            .context("sending Ctrl-Alt-Del through QMP")?;
        loop {
            self.serial.poll()?;
            if let Some(status) = self.poll_exit()? {
                self.serial.finish()?;
                // QMP events (SHUTDOWN with its reason…) say how the guest went down.
                self.qmp.drain_events(Duration::from_millis(500));
                println!(
                    "qemu: exited {:.1} s after Ctrl-Alt-Del ({status}); QMP events: {}",
                    asked.elapsed().as_secs_f64(),
                    self.qmp.event_names().join(", ")
                );
                return Ok(status);
            }
            if asked.elapsed() >= timeout {
                self.kill();
                bail!(
                    "QEMU did not exit within {} s of Ctrl-Alt-Del; killed it",
                    timeout.as_secs()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Kills QEMU (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        if self.exit.is_none() {
            let _ = self.child.kill();
            self.exit = self.child.wait().ok();
            let _ = self.serial.finish();
        }
    }

    /// The last lines QEMU itself printed.
    pub fn qemu_messages(&self, lines: usize) -> String {
        tail_of_file(&self.qemu_log, lines)
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Makes the kernel kill QEMU if we die first (SIGKILL from a CI timeout, a crash): a VM must never
/// outlive the command that started it.
pub fn die_with_parent(cmd: &mut Command) {
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// `program arg arg …`, for people to copy.
pub fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| {
            let a = a.to_string_lossy();
            if a.is_empty() || a.contains(|c: char| c.is_whitespace() || "\"'$\\".contains(c)) {
                format!("'{}'", a.replace('\'', "'\\''"))
            } else {
                a.into_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn remove_if_exists(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing {}", path.display()))
        }
        _ => Ok(()),
    }
}

fn tail_of_file(path: &Path, lines: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            let tail = all[all.len().saturating_sub(lines)..].join("\n");
            if tail.trim().is_empty() {
                "(nothing)".to_owned()
            } else {
                tail
            }
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_are_quoted_for_the_shell() {
        let mut cmd = Command::new("qemu-system-x86_64");
        cmd.args(["-append", "console=ttyS0 quiet", "-m", "512", "it's"]);
        assert_eq!(
            describe(&cmd),
            r"qemu-system-x86_64 -append 'console=ttyS0 quiet' -m 512 'it'\''s'"
        );
    }
}
