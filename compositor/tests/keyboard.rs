//! The on-screen keyboard with real Debian clients under the headless compositor: foot (a terminal
//! using text-input-v3) and zenity (GTK 3, its wayland IM module) come up with the keyboard when
//! their text field is focused, and the words tapped on the keyboard reach them; the keyboard is
//! snapshotted; only trusted clients see the input-method and virtual-keyboard globals.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cirrus_compositor::input::Pointing;
use cirrus_compositor::osk::{Key, KeyboardLayout, Page};
use cirrus_compositor::{HeadlessSession, Screenshot, spawn_headless};
use cirrus_ui::shell::ShellLayout;
use cirrus_ui::theme;
use common::{keep, match_ratio};

const W: u32 = 720;
const H: u32 = 1440;

/// Kills the client when the test ends, however it ends.
struct Client(Child);

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn require(tool: &str) {
    if Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| !s.success())
        .unwrap_or(true)
    {
        panic!("{tool} is not installed: run `cargo xtask deps`");
    }
}

fn client(session: &HeadlessSession, dir: &Path, program: &str, args: &[&str]) -> Client {
    let child = Command::new(program)
        .args(args)
        .env("WAYLAND_DISPLAY", &session.socket_path)
        .env("XDG_RUNTIME_DIR", dir)
        .env_remove("DISPLAY")
        .env("GDK_BACKEND", "wayland")
        // GTK 3 types through text-input-v3 with its "wayland" IM module.
        .env("GTK_IM_MODULE", "wayland")
        .env("NO_AT_BRIDGE", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {program}: {e}"));
    Client(child)
}

/// The keyboard's panel is fully up when its background shows both in the strip above the first
/// row and in the strip under the last.
fn keyboard_up(shot: &Screenshot, layout: &KeyboardLayout) -> bool {
    let top = cirrus_ui::IRect::new(0, layout.panel.y + 1, layout.panel.width, 6);
    let bottom = cirrus_ui::IRect::new(0, layout.panel.bottom() - 20, layout.panel.width, 16);
    [top, bottom]
        .into_iter()
        .all(|strip| match_ratio(shot, strip, 3, |_, _| theme::KEYBOARD_BG) > 0.98)
}

/// The keyboard as it must look (letters page, nothing pressed), drawn by the same code.
fn reference_keyboard(layout: &KeyboardLayout) -> cirrus_ui::tiny_skia::Pixmap {
    let mut pixmap = cirrus_ui::tiny_skia::Pixmap::new(layout.panel.width, layout.panel.height)
        .unwrap_or_else(|| panic!("pixmap"));
    let mut text = cirrus_ui::text::TextRenderer::new();
    cirrus_compositor::osk::draw_keyboard(&mut pixmap, layout, &Default::default(), &mut text);
    pixmap
}

fn wait_for(
    session: &HeadlessSession,
    what: &str,
    name: &str,
    ok: impl Fn(&Screenshot) -> bool,
) -> Screenshot {
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

fn tap_key(session: &HeadlessSession, layout: &KeyboardLayout, page: Page, key: Key) {
    let placed = layout
        .find(page, key)
        .unwrap_or_else(|| panic!("{key:?} is not on the {page:?} page"));
    let scale = layout.scale as f64;
    let x = (placed.rect.x as f64 + placed.rect.width as f64 / 2.0) / scale;
    let y = (placed.rect.y as f64 + placed.rect.height as f64 / 2.0) / scale;
    session
        .tap(Pointing::Touch, x, y)
        .unwrap_or_else(|e| panic!("tap: {e:#}"));
    // Let the compositor handle the tap before the next (it redraws the pressed key).
    let _ = session.screenshot();
}

/// Types `word` (letters and digits) by tapping keys, switching pages as needed.
fn type_word(session: &HeadlessSession, layout: &KeyboardLayout, word: &str) {
    let mut page = Page::Letters;
    for ch in word.chars() {
        let (want, placed, shifted) = layout
            .find_char(ch)
            .unwrap_or_else(|| panic!("no key types {ch:?}"));
        if want != page {
            tap_key(session, layout, page, Key::ToPage(want));
            page = want;
        }
        if shifted {
            tap_key(session, layout, page, Key::Shift);
        }
        tap_key(session, layout, page, placed.key);
    }
}

fn wait_for_file(path: &Path, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = std::fs::read_to_string(path).unwrap_or_default();
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} holds {got:?}, expected {want:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn session(dir: &tempfile::TempDir) -> HeadlessSession {
    spawn_headless(W, H, dir.path().join("wayland-test"), vec![])
        .unwrap_or_else(|e| panic!("compositor: {e:#}"))
}

#[test]
fn words_typed_on_the_keyboard_reach_foot() {
    require("foot");
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let session = session(&dir);
    let layout = KeyboardLayout::new(&ShellLayout::new(W, H));
    let out: PathBuf = dir.path().join("typed");
    let script = format!("read line; printf %s \"$line\" > '{}'", out.display());
    let _foot = client(
        &session,
        dir.path(),
        "foot",
        &[
            "--override=colors.background=e02090",
            "-e",
            "sh",
            "-c",
            &script,
        ],
    );
    // foot enables text-input-v3 when it gets keyboard focus: the keyboard comes up by itself.
    let shot = wait_for(
        &session,
        "the keyboard over foot",
        "keyboard-foot",
        |shot| keyboard_up(shot, &layout),
    );
    // Snapshot: the panel on screen is the reference keyboard, pixel for pixel within a tolerance.
    let reference = reference_keyboard(&layout);
    let same = match_ratio(&shot, layout.panel, 8, |x, y| {
        reference
            .pixel(x, y - layout.panel.y as u32)
            .map(|c| {
                let c = c.demultiply();
                [c.red(), c.green(), c.blue()]
            })
            .unwrap_or([0, 0, 0])
    });
    assert!(
        same > 0.995,
        "the keyboard differs from its reference ({same:.4} match), see {}",
        keep(&shot, "keyboard-up").display()
    );
    keep(&shot, "keyboard-up");
    // foot's window ends where the keyboard begins.
    let magenta = [0xe0, 0x20, 0x90];
    let above = cirrus_ui::IRect::new(0, layout.panel.y - 40, W, 30);
    assert!(
        match_ratio(&shot, above, 10, |_, _| magenta) > 0.99,
        "foot's window does not reach the keyboard, see {}",
        keep(&shot, "keyboard-up").display()
    );
    type_word(&session, &layout, "Hi cirrus 42");
    tap_key(&session, &layout, Page::Symbols, Key::Enter);
    wait_for_file(&out, "Hi cirrus 42");
    session
        .stop()
        .unwrap_or_else(|e| panic!("compositor stopped with an error: {e:#}"));
}

#[test]
fn zenity_entry_takes_text_from_the_keyboard_and_the_window_fits_above_it() {
    require("zenity");
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let session = session(&dir);
    let shell = ShellLayout::new(W, H);
    let layout = KeyboardLayout::new(&shell);
    let mut zenity = client(
        &session,
        dir.path(),
        "zenity",
        &["--entry", "--text=Name", "--title=Cirrus"],
    );
    let shot = wait_for(
        &session,
        "the keyboard over zenity",
        "keyboard-zenity",
        |shot| keyboard_up(shot, &layout),
    );
    // The app window ends where the keyboard starts: the row above the panel is the app's, not
    // the wallpaper's or the keyboard's.
    let above = cirrus_ui::IRect::new(0, layout.panel.y - 4, W, 2);
    assert!(
        match_ratio(&shot, above, 3, |_, _| theme::KEYBOARD_BG) < 0.5,
        "the keyboard reaches above its panel, see {}",
        keep(&shot, "keyboard-zenity").display()
    );
    // Resized, not covered: zenity's buttons (at the bottom of its window) show just above the
    // keyboard, where an uncovered window would show only its plain background.
    let gtk_background = shot
        .pixel(W / 2, (shell.home.y + 400) as u32)
        .unwrap_or_else(|| panic!("pixel"));
    let buttons = cirrus_ui::IRect::new(W as i32 / 2, layout.panel.y - 90, W / 2, 80);
    let plain = match_ratio(&shot, buttons, 2, |_, _| gtk_background);
    assert!(
        plain < 0.9,
        "zenity's buttons are not above the keyboard ({plain:.3} of the area is plain), see {}",
        keep(&shot, "keyboard-zenity").display()
    );
    type_word(&session, &layout, "Cirrus");
    // A typo, then Backspace: text-input's delete_surrounding_text (GTK sends surrounding text).
    type_word(&session, &layout, "x");
    tap_key(&session, &layout, Page::Letters, Key::Backspace);
    tap_key(&session, &layout, Page::Letters, Key::Enter);

    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = zenity.0.try_wait().unwrap_or(None) {
            let mut stdout = String::new();
            if let Some(mut out) = zenity.0.stdout.take() {
                use std::io::Read;
                let _ = out.read_to_string(&mut stdout);
            }
            assert!(status.success(), "zenity failed: {status}");
            assert_eq!(stdout.trim_end(), "Cirrus");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "zenity did not finish after Enter, see {}",
            keep(
                &session.screenshot().unwrap_or_else(|e| panic!("{e:#}")),
                "zenity-after-enter"
            )
            .display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Its window closed: the keyboard goes with the focus.
    wait_for(&session, "the keyboard hidden", "keyboard-hidden", |shot| {
        !keyboard_up(shot, &layout)
    });
    session
        .stop()
        .unwrap_or_else(|e| panic!("compositor stopped with an error: {e:#}"));
}

/// The globals `weston-info` lists when run as `uid`.
fn globals_seen_as(session: &HeadlessSession, dir: &Path, uid: Option<u32>) -> String {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new("weston-info");
    cmd.env("WAYLAND_DISPLAY", &session.socket_path)
        .env("XDG_RUNTIME_DIR", dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if let Some(uid) = uid {
        cmd.uid(uid).gid(uid);
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running weston-info: {e}"));
    assert!(out.status.success(), "weston-info failed: {}", out.status);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn only_trusted_clients_see_the_input_method_and_virtual_keyboard() {
    require("weston-info");
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let session = session(&dir);
    let own = nix_uid();
    let trusted = globals_seen_as(&session, dir.path(), None);
    for global in [
        "zwp_text_input_manager_v3",
        "zwp_input_method_manager_v2",
        "zwp_virtual_keyboard_manager_v1",
    ] {
        assert!(
            trusted.contains(global),
            "uid {own} (the compositor's) does not see {global}:\n{trusted}"
        );
    }
    if own != 0 {
        // Running as another uid needs root; the policy itself is unit-tested.
        eprintln!("not root: the untrusted client's side is not checked");
        return;
    }
    // An app's uid: nobody. It must reach the socket to connect at all.
    let set = |path: &Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()))
    };
    set(dir.path(), 0o755);
    set(&session.socket_path, 0o777);
    let untrusted = globals_seen_as(&session, dir.path(), Some(65_534));
    assert!(
        untrusted.contains("zwp_text_input_manager_v3"),
        "apps must be able to use text input:\n{untrusted}"
    );
    for global in [
        "zwp_input_method_manager_v2",
        "zwp_virtual_keyboard_manager_v1",
    ] {
        assert!(
            !untrusted.contains(global),
            "an untrusted client sees {global}:\n{untrusted}"
        );
    }
    session
        .stop()
        .unwrap_or_else(|e| panic!("compositor stopped with an error: {e:#}"));
}

fn nix_uid() -> u32 {
    nix::unistd::geteuid().as_raw()
}
