//! logd end to end: the real cirrus-init (user mode) passes its services' output to the real
//! cirrus-logd, which also takes syslog datagrams from Debian's `logger` and the kernel log; readers
//! filter by service, level and time, follow new entries, and the log under data/log rotates
//! within its size cap.
//!
//! `harness = false`: this binary also plays cirrus-init (`LOGD_TEST_ROLE=init`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::path::Path;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use cirrus_logd::Query;

const LOGD: &str = env!("CARGO_BIN_EXE_cirrus-logd");
const DEADLINE: Duration = Duration::from_secs(20);

fn main() -> ExitCode {
    if std::env::var("LOGD_TEST_ROLE").as_deref() == Ok("init") {
        return cirrus_init::cli::main();
    }
    println!("test logd_collects_filters_follows_and_rotates ...");
    match std::panic::catch_unwind(logd_collects_filters_follows_and_rotates) {
        Ok(()) => {
            println!("test logd_collects_filters_follows_and_rotates ... ok");
            ExitCode::SUCCESS
        }
        Err(_) => {
            println!("test logd_collects_filters_follows_and_rotates ... FAILED");
            ExitCode::FAILURE
        }
    }
}

struct Init(Child);

impl Drop for Init {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn dump(root: &Path, query: &str) -> String {
    let mut out = Vec::new();
    cirrus_logd::read_logs(
        &root.join("run/cirrus/logd-reader.sock"),
        &Query::parse(query).unwrap(),
        &mut out,
    )
    .unwrap();
    String::from_utf8(out).unwrap()
}

fn wait_until(what: &str, root: &Path, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !check() {
        if Instant::now() > deadline {
            let console = std::fs::read_to_string(root.join("console.log")).unwrap_or_default();
            panic!("timed out waiting for {what}\nconsole:\n{console}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn logd_collects_filters_follows_and_rotates() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let units = root.join("system/etc/init");
    std::fs::create_dir_all(&units).unwrap();
    let kmsg_readable = std::fs::File::open("/dev/kmsg").is_ok();
    let kmsg = if kmsg_readable { "/dev/kmsg" } else { "none" };
    std::fs::write(
        units.join("logd.toml"),
        format!(
            "exec = \"{LOGD}\"\nargs = [\"--run-dir\", \"{r}/run/cirrus\", \"--syslog\", \"{r}/dev-log\", \"--kmsg\", \"{kmsg}\", \
             \"--log-dir\", \"{r}/data/log\", \"--max-file-kib\", \"8\", \"--keep\", \"2\"]\nready = \"notify\"\n",
            r = root.display()
        ),
    )
    .unwrap();
    // Starts with logd, so its line waits in init's queue until logd listens.
    std::fs::write(
        units.join("early.toml"),
        "oneshot = true\nexec = \"/bin/sh\"\nargs = [\"-c\", \"echo early line\"]\n",
    )
    .unwrap();
    std::fs::write(
        units.join("chatty.toml"),
        "oneshot = true\nafter = [\"logd\"]\nexec = \"/bin/sh\"\nargs = [\"-c\", \"echo '<3>chatty error'; echo chatty info\"]\n",
    )
    .unwrap();
    // Enough output to rotate the 8 KiB log files several times.
    std::fs::write(
        units.join("flood.toml"),
        "oneshot = true\nafter = [\"chatty\"]\nexec = \"/bin/sh\"\nargs = [\"-c\", \"i=0; while [ $i -lt 600 ]; do echo flood line $i; i=$((i+1)); done\"]\n",
    )
    .unwrap();
    let console = std::fs::File::create(root.join("console.log")).unwrap();
    let _init = Init(
        Command::new(std::env::current_exe().unwrap())
            .env("LOGD_TEST_ROLE", "init")
            .args(["--user", "--root"])
            .arg(root)
            .stdout(Stdio::null())
            .stderr(console)
            .spawn()
            .unwrap(),
    );
    let reader = root.join("run/cirrus/logd-reader.sock");
    wait_until("logd's reader socket", root, || reader.exists());
    wait_until("the flood's last line", root, || {
        dump(root, "dump service=flood").contains("flood line 599")
    });

    let all = dump(root, "dump");
    assert!(
        all.contains("early[") && all.contains("]: early line"),
        "{all}"
    );
    let errors = dump(root, "dump service=chatty level=error");
    assert_eq!(errors.lines().count(), 1, "{errors}");
    assert!(
        errors.contains(" error  chatty[") && errors.ends_with("]: chatty error\n"),
        "{errors}"
    );
    assert!(dump(root, "dump service=chatty").contains("chatty info"));
    let future = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    assert_eq!(dump(root, &format!("dump since={future}")), "");

    // Follow, then a syslog datagram from Debian's logger arrives.
    let (tx, rx) = std::sync::mpsc::channel();
    let follow_reader = reader.clone();
    std::thread::spawn(move || {
        struct Lines(std::sync::mpsc::Sender<String>);
        impl std::io::Write for Lines {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                let _ = self.0.send(String::from_utf8_lossy(buf).into_owned());
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let query = Query::parse("follow service=mytag").unwrap();
        let _ = cirrus_logd::read_logs(&follow_reader, &query, &mut Lines(tx));
    });
    let deadline = Instant::now() + DEADLINE;
    let followed = loop {
        let status = Command::new("logger")
            .arg("--socket")
            .arg(root.join("dev-log"))
            .args(["-t", "mytag", "-p", "user.warning", "hello from syslog"])
            .status()
            .unwrap();
        assert!(status.success());
        if let Ok(text) = rx.recv_timeout(Duration::from_millis(500)) {
            break text;
        }
        assert!(Instant::now() < deadline, "follow saw nothing");
    };
    assert!(
        followed.contains(" warn   mytag[") && followed.contains("]: hello from syslog"),
        "{followed}"
    );

    if kmsg_readable {
        let kernel = dump(root, "dump service=kernel");
        assert!(kernel.lines().count() > 0, "no kernel entries");
    } else {
        println!("kernel log part skipped: /dev/kmsg is not readable here");
    }

    // The persistent log rotated and stays within its cap (3 files of at most 8 KiB).
    let log_dir = root.join("data/log");
    let mut files: Vec<String> = std::fs::read_dir(&log_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files, ["logd.log", "logd.log.1", "logd.log.2"]);
    for f in &files {
        assert!(
            std::fs::metadata(log_dir.join(f)).unwrap().len() <= 8 * 1024,
            "{f}"
        );
    }
}
