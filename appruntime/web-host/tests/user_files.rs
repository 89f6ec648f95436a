//! The user's files for web apps, end to end: the app manager (on a private dbus-daemon) installs
//! three platform-signed system apps from a system-app directory at start (as on the device), then
//! runs them in the real cirrus-web-host on the headless compositor:
//!
//! - a test app holding `user-files`: its page writes, reads, lists, renames and removes files
//!   through `navigator.cirrus.files`, and checks that escaping paths, hidden names, a missing file
//!   and an oversized write are refused with the right error; it paints its verdict. The files it
//!   wrote are then checked on disk (and, as root, that they belong to the app's uid and the
//!   user-files group, in a setgid directory).
//! - an ordinary app (another publisher, installed by the user) without the permission: it has no
//!   `navigator.cirrus.files`, no `navigator.cirrus.system`, and no handlers for them.
//! - the real Notes system app (`appruntime/system-apps/notes`): a note put in
//!   `Documents/Notes/` shows in its list; tapping it opens the editor; Delete, tapped twice,
//!   removes the file.
//! - the real Settings system app: its script runs and fills in its rows, and cloud sync's state
//!   from a stand-in org.cirrus.Sync1 on the bus (platform apps get the system bus).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cirrus_appmanager::bus::manager_when_ready;
use cirrus_appmanager::{DeviceConfig, RuntimeOptions, ServeOptions, SystemOptions, serve_system};
use cirrus_compositor::input::Pointing;
use cirrus_compositor::{HeadlessSession, Screenshot, spawn_headless};
use cirrus_package::{DeveloperKey, PackageContents};
use cirrus_ui::IRect;
use cirrus_ui::shell::ShellLayout;
use common::{SharedBus, close, keep};

const W: u32 = 720;
const H: u32 = 1440;
/// The compositor's output scale (logical = pixels / 2).
const SCALE: f64 = 2.0;
const FILES_APP: &str = "org.test.files";
const NO_FILES_APP: &str = "org.test.nofiles";
const NOTES_APP: &str = "org.cirrus.notes";
const SETTINGS_APP: &str = "org.cirrus.settings";
/// Settings' page, and the colour of its values (style.css `--ink`), written by its script.
const SETTINGS_PAGE: [u8; 3] = [0xf1, 0xf5, 0xf9];
const SETTINGS_INK: [u8; 3] = [0x0f, 0x17, 0x2a];
/// Settings' cloud-sync dot while syncing.
const SETTINGS_SYNCING: [u8; 3] = [0x25, 0x63, 0xeb];
const PASS: [u8; 3] = [0x20, 0x60, 0xc0];
const NO_FILES_PASS: [u8; 3] = [0xc0, 0x60, 0x20];
/// Notes' colours (style.css).
const NOTES_HEADER: [u8; 3] = [0xb4, 0x53, 0x09];
const NOTES_PAGE: [u8; 3] = [0xff, 0xfb, 0xeb];
const NOTES_CARD: [u8; 3] = [0xff, 0xff, 0xff];
const NOTES_DELETE: [u8; 3] = [0xb9, 0x1c, 0x1c];

const PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>Files test</title>
<style>html, body { margin: 0; height: 100%; background: #808080; }</style>
<script src="main.js"></script>
</head><body></body></html>
"#;

/// Each failed check paints its own colour (named in the test's message).
const FILES_SCRIPT: &str = r#"
const paint = (c) => { document.body.style.background = c; };
async function check() {
  const f = navigator.cirrus.files;
  if (!f) return paint('#ff0000');
  await f.write('Documents/Test/hello.md', 'Hello, files \u2713');
  if (await f.read('Documents/Test/hello.md') !== 'Hello, files \u2713') return paint('#ff00ff');
  const list = await f.list('Documents/Test');
  if (list.length !== 1 || list[0].name !== 'hello.md' || list[0].kind !== 'file' || list[0].size !== 16) return paint('#ffff00');
  if ((await f.list('Documents/Nothing')).length !== 0) return paint('#ffff80');
  await f.write('Documents/Test/other.md', 'x');
  let refused = '';
  try { await f.rename('Documents/Test/other.md', 'Documents/Test/hello.md'); } catch (e) { refused = e.name; }
  if (refused !== 'AlreadyExistsError') return paint('#00ffff');
  await f.rename('Documents/Test/other.md', 'Documents/Test/renamed.md');
  await f.write('Documents/Test/gone.md', 'soon gone');
  await f.remove('Documents/Test/gone.md');
  for (const bad of ['../escape.md', '/etc/passwd', 'Documents/../../escape.md', '.hidden', 'a\\b', '']) {
    let name = '';
    try { await f.write(bad, 'escaped'); } catch (e) { name = e.name; }
    if (name !== 'InvalidPathError') return paint('#ff8000');
  }
  let missing = '';
  try { await f.read('Documents/Test/nothing.md'); } catch (e) { missing = e.name; }
  if (missing !== 'NotFoundError') return paint('#800000');
  let big = '';
  try { await f.write('Documents/Test/big.txt', 'x'.repeat(1024 * 1024 + 1)); } catch (e) { big = e.name; }
  if (big !== 'TooLargeError') return paint('#008000');
  paint('#2060c0');
}
check().catch((e) => { document.title = e.name + ': ' + e.message; paint('#404040'); });
"#;

const NO_FILES_SCRIPT: &str = r#"
document.addEventListener('DOMContentLoaded', () => {
  const handlers = window.webkit.messageHandlers || {};
  const none = navigator.cirrus && navigator.cirrus.files === undefined
    && navigator.cirrus.system === undefined && !handlers.cirrusFiles && !handlers.cirrusSystem;
  document.body.style.background = none ? '#c06020' : '#ff0000';
});
"#;

fn package(id: &str, permissions: &[&str], script: &str, key: &DeveloperKey) -> Vec<u8> {
    let manifest = serde_json::json!({
        "name": format!("Test {id}"), "start_url": "index.html",
        "cirrus": {"id": id, "version": "1.0.0", "kind": "web", "permissions": permissions}
    });
    let mut c = PackageContents::new();
    c.insert(
        "manifest.webmanifest",
        serde_json::to_vec(&manifest).unwrap(),
    )
    .unwrap();
    c.insert("index.html", PAGE.as_bytes().to_vec()).unwrap();
    c.insert("main.js", script.as_bytes().to_vec()).unwrap();
    c.sign(key).unwrap()
}

/// A system app project packed as the image builder packs it: manifest, icons/, www/ at the root.
fn pack_project(dir: &Path, key: &DeveloperKey) -> Vec<u8> {
    fn add(c: &mut PackageContents, root: &Path, dir: &Path) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let path = e.path();
            if path.is_dir() {
                add(c, root, &path);
            } else {
                let name = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_owned();
                c.insert(&name, std::fs::read(&path).unwrap()).unwrap();
            }
        }
    }
    let mut c = PackageContents::new();
    c.insert(
        "manifest.webmanifest",
        std::fs::read(dir.join("manifest.webmanifest")).unwrap(),
    )
    .unwrap();
    add(&mut c, dir, &dir.join("icons"));
    add(&mut c, &dir.join("www"), &dir.join("www"));
    c.sign(key).unwrap()
}

fn ratio(shot: &Screenshot, region: IRect, want: [u8; 3]) -> f64 {
    let (mut total, mut ok) = (0u64, 0u64);
    for y in (region.y.max(0) as u32..(region.bottom().max(0) as u32).min(shot.height)).step_by(3) {
        for x in (region.x.max(0) as u32..(region.right().max(0) as u32).min(shot.width)).step_by(3)
        {
            total += 1;
            if shot.pixel(x, y).is_some_and(|p| close(p, want, 6)) {
                ok += 1;
            }
        }
    }
    if total == 0 {
        0.0
    } else {
        ok as f64 / total as f64
    }
}

/// The centre (logical coordinates) of the pixels of `want` in `region` (None: fewer than 50).
fn find(shot: &Screenshot, region: IRect, want: [u8; 3]) -> Option<(f64, f64)> {
    let (mut n, mut sx, mut sy) = (0u64, 0u64, 0u64);
    for y in (region.y.max(0) as u32..(region.bottom().max(0) as u32).min(shot.height)).step_by(2) {
        for x in (region.x.max(0) as u32..(region.right().max(0) as u32).min(shot.width)).step_by(2)
        {
            if shot.pixel(x, y).is_some_and(|p| close(p, want, 3)) {
                n += 1;
                sx += u64::from(x);
                sy += u64::from(y);
            }
        }
    }
    (n > 50).then(|| (sx as f64 / n as f64 / SCALE, sy as f64 / n as f64 / SCALE))
}

/// org.cirrus.Sync1's `Status()` reply (cirrus-syncd's `SyncStatus`, first fields).
#[derive(serde::Serialize, zbus::zvariant::Type)]
struct FakeStatus {
    state: String,
    detail: String,
    last_sync_ms: i64,
    files_done: u64,
    files_total: u64,
    bytes_done: u64,
    bytes_total: u64,
    held_deletes: u32,
    errors: Vec<String>,
    paused: bool,
}

struct FakeSync1;

#[zbus::interface(name = "org.cirrus.Sync1")]
impl FakeSync1 {
    fn status(&self) -> FakeStatus {
        FakeStatus {
            state: "syncing".into(),
            detail: String::new(),
            last_sync_ms: 1_700_000_000_000,
            files_done: 3,
            files_total: 10,
            bytes_done: 300,
            bytes_total: 1000,
            held_deletes: 0,
            errors: vec![],
            paused: false,
        }
    }
}

/// Pixels of `want` (±3) in `region`.
fn count(shot: &Screenshot, region: IRect, want: [u8; 3]) -> u64 {
    let mut n = 0;
    for y in region.y.max(0) as u32..(region.bottom().max(0) as u32).min(shot.height) {
        for x in region.x.max(0) as u32..(region.right().max(0) as u32).min(shot.width) {
            if shot.pixel(x, y).is_some_and(|p| close(p, want, 3)) {
                n += 1;
            }
        }
    }
    n
}

/// Waits until `ok` holds for a screenshot; panics naming `what`, the screenshot and the logs.
fn wait_screen(
    session: &HeadlessSession,
    what: &str,
    logs: &[&Path],
    ok: impl Fn(&Screenshot) -> bool,
) -> Screenshot {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let shot = session
            .screenshot()
            .unwrap_or_else(|e| panic!("screenshot: {e:#}"));
        if ok(&shot) {
            keep(&shot, what);
            return shot;
        }
        if Instant::now() > deadline {
            let path = keep(&shot, what);
            let logs: Vec<String> = logs
                .iter()
                .map(|l| std::fs::read_to_string(l).unwrap_or_default())
                .collect();
            panic!(
                "{what}: not seen within 60 s, see {}\nlogs:\n{}",
                path.display(),
                logs.join("\n---\n")
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn wait_until(what: &str, ok: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ok() {
        assert!(Instant::now() < deadline, "{what}: not within 30 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn web_apps_use_the_users_files_and_notes_lists_opens_and_deletes_notes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let socket = dir.path().join("wayland-files");
    // SAFETY: set before this test starts any thread (it is the only test in this binary).
    unsafe { std::env::set_var("WAYLAND_DISPLAY", &socket) };
    let root = dir.path().join("data");
    let user_files = dir.path().join("user0");
    // As root the apps run under their own uids: the manager names them in its user database,
    // and the bus (which platform apps reach) resolves them through it.
    let as_root = nix::unistd::geteuid().is_root();
    let accounts = dir.path().join("extrausers");
    std::fs::create_dir_all(&accounts).unwrap();
    let bus = SharedBus::start(dir.path(), as_root.then_some(accounts.as_path()));
    let host =
        cirrus_testsupport::ExecutableCopy::new(env!("CARGO_BIN_EXE_cirrus-web-host")).unwrap();

    // The system image's apps, signed with a platform key.
    let platform = DeveloperKey::generate();
    let system_apps = dir.path().join("system-app");
    std::fs::create_dir_all(&system_apps).unwrap();
    std::fs::write(
        system_apps.join(format!("{FILES_APP}.cpkg")),
        package(FILES_APP, &["user-files"], FILES_SCRIPT, &platform),
    )
    .unwrap();
    let notes_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../system-apps/notes");
    std::fs::write(
        system_apps.join(format!("{NOTES_APP}.cpkg")),
        pack_project(&notes_dir, &platform),
    )
    .unwrap();
    let settings_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../system-apps/settings");
    std::fs::write(
        system_apps.join(format!("{SETTINGS_APP}.cpkg")),
        pack_project(&settings_dir, &platform),
    )
    .unwrap();
    let key_file = dir.path().join("platform-key.pub");
    std::fs::write(&key_file, platform.public().to_text()).unwrap();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // Cloud sync's status service, as cirrus-syncd serves it (the fields Settings reads).
    let _sync1 = rt
        .block_on(
            zbus::connection::Builder::address(bus.address())
                .name("org.cirrus.Sync1")
                .serve_at("/org/cirrus/Sync1", FakeSync1)
                .build(),
        )
        .unwrap();
    let opts = ServeOptions {
        bus_address: Some(bus.address().to_string()),
        data_root: root.clone(),
        wasm_host: dir.path().join("no-wasm-host"),
        memory_mb: 64,
        headless_apps: false,
        launch_command: vec!["/bin/true".into()],
    };
    let runtime = RuntimeOptions {
        web_host: host.path().to_path_buf(),
        accounts_dir: as_root.then(|| accounts.clone()),
        developer_mode: false,
    };
    let system = SystemOptions {
        user_files: Some(user_files.clone()),
        system_apps: Some(system_apps.clone()),
        platform_key: Some(key_file),
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = rt.spawn(serve_system(
        opts,
        DeviceConfig::default(),
        runtime,
        system,
        async move {
            let _ = stop_rx.await;
        },
    ));
    let conn = rt
        .block_on(zbus::connection::Builder::address(bus.address()).build())
        .unwrap();
    let p = rt
        .block_on(manager_when_ready(&conn, Duration::from_secs(5)))
        .unwrap_or_else(|e| panic!("the manager never answered on the bus: {e}"));
    // An ordinary app (another publisher), installed by the user.
    let user_pkg = dir.path().join("user-app.cpkg");
    std::fs::write(
        &user_pkg,
        package(
            NO_FILES_APP,
            &[],
            NO_FILES_SCRIPT,
            &DeveloperKey::generate(),
        ),
    )
    .unwrap();
    rt.block_on(p.install(user_pkg.to_str().unwrap())).unwrap();
    // Installed from the system-app directory before the manager answered.
    let listed: Vec<String> = rt
        .block_on(p.list())
        .unwrap()
        .into_iter()
        .map(|a| a.0)
        .collect();
    for id in [FILES_APP, NOTES_APP, SETTINGS_APP] {
        assert!(
            listed.iter().any(|l| l == id),
            "{id} not installed: {listed:?}"
        );
    }
    assert!(
        root.join(format!(
            "system/applications/cirrus-app-{NOTES_APP}.desktop"
        ))
        .is_file()
    );

    let session = spawn_headless(W, H, socket.clone(), vec![root.join("system")])
        .unwrap_or_else(|e| panic!("compositor: {e:#}"));
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o777)).unwrap();
    let area = ShellLayout::new(W, H).home;
    let log = |id: &str| PathBuf::from(rt.block_on(p.log_path(id)).unwrap());

    // The files API: every check passes, and the files are where they should be.
    let log_files = log(FILES_APP);
    assert_eq!(rt.block_on(p.launch(FILES_APP)).unwrap(), "foreground");
    wait_screen(&session, "files-checks", &[&log_files], |s| {
        ratio(s, area, PASS) > 0.8
    });
    let test_dir = user_files.join("Documents/Test");
    assert_eq!(
        std::fs::read_to_string(test_dir.join("hello.md")).unwrap(),
        "Hello, files \u{2713}"
    );
    assert_eq!(
        std::fs::read_to_string(test_dir.join("renamed.md")).unwrap(),
        "x"
    );
    assert!(!test_dir.join("other.md").exists());
    assert!(!test_dir.join("gone.md").exists());
    assert!(!test_dir.join("big.txt").exists());
    assert!(!dir.path().join("escape.md").exists() && !user_files.join(".hidden").exists());
    if nix::unistd::geteuid().is_root() {
        // The app's own uid wrote them, in the user-files group, through setgid directories.
        let uid = std::fs::metadata(root.join("app").join(FILES_APP))
            .unwrap()
            .uid();
        assert!(uid >= 10_000, "the app ran as uid {uid}");
        let meta = std::fs::metadata(test_dir.join("hello.md")).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (uid, 1015));
        assert_eq!(meta.mode() & 0o777, 0o660);
        let docs = std::fs::metadata(user_files.join("Documents")).unwrap();
        assert_eq!(docs.gid(), 1015);
        assert_eq!(docs.mode() & 0o7777, 0o2770);
        let top = std::fs::metadata(&user_files).unwrap();
        assert_eq!(
            (top.uid(), top.gid(), top.mode() & 0o7777),
            (0, 1015, 0o2770)
        );
    }
    rt.block_on(p.stop(FILES_APP)).unwrap();

    // Without the permission: no API, no handler.
    let log_none = log(NO_FILES_APP);
    rt.block_on(p.launch(NO_FILES_APP)).unwrap();
    wait_screen(&session, "no-files", &[&log_none], |s| {
        ratio(s, area, NO_FILES_PASS) > 0.8
    });
    rt.block_on(p.stop(NO_FILES_APP)).unwrap();

    // Notes: a note in Documents/Notes is listed; tapping opens it; Delete twice removes it.
    let notes = user_files.join("Documents/Notes");
    std::fs::create_dir_all(&notes).unwrap();
    let note = notes.join("Groceries.md");
    std::fs::write(&note, "Milk\nBread\n").unwrap();
    if nix::unistd::geteuid().is_root() {
        // As cloud sync or the user would leave it: the user-files group may write.
        for path in [user_files.join("Documents"), notes.clone()] {
            std::os::unix::fs::chown(&path, Some(0), Some(1015)).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o2770)).unwrap();
        }
        std::os::unix::fs::chown(&note, Some(0), Some(1015)).unwrap();
        std::fs::set_permissions(&note, std::fs::Permissions::from_mode(0o660)).unwrap();
    }
    let log_notes = log(NOTES_APP);
    rt.block_on(p.launch(NOTES_APP)).unwrap();
    let below_header = IRect::new(
        area.x,
        area.y + (area.height / 6) as i32,
        area.width,
        area.height * 5 / 6,
    );
    let shot = wait_screen(&session, "notes-list", &[&log_notes], |s| {
        ratio(s, area, NOTES_PAGE) > 0.4
            && find(s, area, NOTES_HEADER).is_some()
            && find(s, below_header, NOTES_CARD).is_some()
    });
    let card = find(&shot, below_header, NOTES_CARD).unwrap();
    session.tap(Pointing::Pointer, card.0, card.1).unwrap();
    let shot = wait_screen(&session, "notes-editor", &[&log_notes], |s| {
        find(s, area, NOTES_DELETE).is_some()
    });
    let delete = find(&shot, area, NOTES_DELETE).unwrap();
    session.tap(Pointing::Pointer, delete.0, delete.1).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert!(note.exists(), "one tap on Delete must not delete");
    session.tap(Pointing::Pointer, delete.0, delete.1).unwrap();
    wait_until("Groceries.md deleted by Notes", || !note.exists());
    wait_screen(&session, "notes-empty", &[&log_notes], |s| {
        find(s, below_header, NOTES_CARD).is_none() && ratio(s, area, NOTES_PAGE) > 0.6
    });
    rt.block_on(p.stop(NOTES_APP)).unwrap();

    // Settings: its script fills in its own version and id (values in the ink colour), and, as a
    // platform app with the system bus, cloud sync's state (the "syncing" dot).
    let log_settings = log(SETTINGS_APP);
    rt.block_on(p.launch(SETTINGS_APP)).unwrap();
    wait_screen(&session, "settings", &[&log_settings], |s| {
        ratio(s, area, SETTINGS_PAGE) > 0.05
            && count(s, area, SETTINGS_INK) > 200
            && count(s, area, SETTINGS_SYNCING) > 100
    });
    rt.block_on(p.stop(SETTINGS_APP)).unwrap();

    let _ = stop_tx.send(());
    rt.block_on(server).unwrap().unwrap();
    session.stop().unwrap_or_else(|e| panic!("{e:#}"));
}
