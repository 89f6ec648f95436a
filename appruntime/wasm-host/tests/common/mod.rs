//! Test helpers: build the C test apps in tests/apps with Debian's clang for wasm32-wasi and
//! componentize them with the SDK's code; run the real host binary.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

pub const HOST: &str = env!("CARGO_BIN_EXE_cirrus-wasm-host");

/// The SDK's AssemblyScript build (the same code `cirrus app build` runs).
use cirrus_package::assemblyscript;

/// Builds the AssemblyScript example `tests/apps/assemblyscript/<name>.ts` as a project's
/// `assembly/index.ts` beside the SDK's `cirrus.ts`, with asc from `cargo xtask deps`, and
/// componentizes it; returns the component's path in `dir`.
pub fn build_as_app(name: &str, dir: &Path) -> PathBuf {
    let sources = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/apps/assemblyscript");
    let project = dir.join(format!("{name}-as"));
    let assembly = project.join("assembly");
    std::fs::create_dir_all(&assembly).unwrap();
    std::fs::copy(sources.join("cirrus.ts"), assembly.join("cirrus.ts")).unwrap();
    std::fs::copy(
        sources.join(format!("{name}.ts")),
        assembly.join("index.ts"),
    )
    .unwrap();
    let module = assemblyscript::compile(&project, &assembly.join("index.ts"), &project)
        .unwrap_or_else(|e| panic!("{e} (run `cargo xtask deps`: it installs Node.js and asc)"));
    let component = cirrus_package::componentize(&module)
        .unwrap_or_else(|e| panic!("componentize {name}: {e}"));
    let path = dir.join(format!("{name}-as.wasm"));
    std::fs::write(&path, component).unwrap();
    path
}

/// Compiles `tests/apps/<name>.c` and componentizes it; returns the component's path in `dir`.
pub fn build_c_app(name: &str, dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/apps")
        .join(format!("{name}.c"));
    let module = dir.join(format!("{name}.core.wasm"));
    let out = Command::new("clang")
        .args(["--target=wasm32-wasi", "-O2", "-mexec-model=reactor", "-o"])
        .arg(&module)
        .arg(&src)
        .output()
        .unwrap_or_else(|e| panic!("clang is needed to build the wasm test apps ({e}): run `cargo xtask deps` (clang, lld, wasi-libc, libclang-rt-14-dev-wasm32)"));
    assert!(
        out.status.success(),
        "clang failed on {}: {} (run `cargo xtask deps` if wasi-libc or libclang-rt-14-dev-wasm32 is missing)",
        src.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let component = cirrus_package::componentize(&std::fs::read(&module).unwrap())
        .unwrap_or_else(|e| panic!("componentize {name}: {e}"));
    let path = dir.join(format!("{name}.wasm"));
    std::fs::write(&path, component).unwrap();
    path
}

/// A running host in headless mode.
pub struct Host {
    pub child: Child,
    stdin: Option<ChildStdin>,
    status: Receiver<String>,
    pub log: PathBuf,
}

impl Host {
    pub fn start(
        component: &Path,
        data: &Path,
        package: Option<&Path>,
        extra: &[&str],
        log: &Path,
    ) -> Host {
        let mut cmd = Command::new(HOST);
        cmd.args([
            "run",
            "--headless",
            "--app-id",
            "org.test.app",
            "--component",
        ])
        .arg(component)
        .arg("--data-dir")
        .arg(data);
        if let Some(p) = package {
            cmd.arg("--package-dir").arg(p);
        }
        cmd.args(extra);
        let log_file = std::fs::File::create(log).unwrap();
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let stdin = child.stdin.take();
        Host {
            child,
            stdin,
            status: rx,
            log: log.to_owned(),
        }
    }

    /// Waits for the status line `want` (other lines are skipped).
    pub fn wait_status(&self, want: &str) {
        loop {
            match self.status.recv_timeout(Duration::from_secs(30)) {
                Ok(line) if line == want => return,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => panic!(
                    "no `{want}` from the host in 30 s; log:\n{}",
                    self.log_text()
                ),
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("the host exited before `{want}`; log:\n{}", self.log_text())
                }
            }
        }
    }

    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for exit (30 s at most); returns the exit code.
    pub fn wait_exit(&mut self) -> Option<i32> {
        for _ in 0..3000 {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("the host did not exit; log:\n{}", self.log_text());
    }

    pub fn terminate(&self) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads a frame written by `--frame-out`.
pub fn read_frame(path: &Path) -> (u32, u32, Vec<u8>) {
    let bytes = std::fs::read(path).unwrap();
    let w = u32::from_le_bytes(bytes[0..4].try_into().unwrap());
    let h = u32::from_le_bytes(bytes[4..8].try_into().unwrap());
    (w, h, bytes[8..].to_vec())
}
