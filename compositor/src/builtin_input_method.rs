//! The built-in keyboard's input method: an in-process Wayland client of the compositor itself,
//! speaking input-method-v2 and virtual-keyboard-v1 exactly like an external keyboard (squeekboard,
//! wvkbd) would.
//!
//! Why a client and not direct calls: smithay routes text-input-v3 only to an input-method-v2
//! instance, and the key events and the text of one client connection stay in order (a word then
//! Enter arrive as typed). The connection is a socket pair inside the process: the server end is an
//! ordinary (trusted) client of the display, the client end is read by the event loop; nothing
//! here ever blocks on the server (no roundtrips), since both ends run on the same thread.
//!
//! Input-method state (activate/deactivate, surrounding text, content type) is double-buffered
//! until `done`; [`BuiltinInputMethod::take_update`] hands the applied state to the shell, which
//! shows the keyboard while a text field is active.

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::time::Instant;

use anyhow::{Context, anyhow};
use smithay::input::keyboard::xkb;
use wayland_client::protocol::{wl_registry, wl_seat};
use wayland_client::{Connection, Dispatch, EventQueue, QueueHandle, WEnum, delegate_noop};
use wayland_protocols_misc::zwp_input_method_v2::client::{
    zwp_input_method_manager_v2, zwp_input_method_v2,
};
use wayland_protocols_misc::zwp_virtual_keyboard_v1::client::{
    zwp_virtual_keyboard_manager_v1, zwp_virtual_keyboard_v1,
};

use crate::osk::Typed;

/// evdev key codes of the keys the keyboard sends as key events.
pub mod keys {
    pub const ENTER: u32 = 28;
    pub const BACKSPACE: u32 = 14;
    pub const LEFT: u32 = 105;
    pub const RIGHT: u32 = 106;
}

/// text-input-v3 `content_purpose.terminal`.
const PURPOSE_TERMINAL: u32 = 13;

/// What the text field in focus told the input method (applied on `done`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TextField {
    /// A text-input-v3 client has enabled text input: the keyboard should be up.
    pub active: bool,
    /// The text around the cursor and the cursor/anchor byte offsets, when the client sends them.
    pub surrounding: Option<(String, u32, u32)>,
    /// The content purpose (text-input-v3 `content_purpose`), e.g. digits or a phone number.
    pub purpose: u32,
}

/// The US keymap the virtual keyboard sends, and which key (and shift) types each character.
struct Keymap {
    text: String,
    shift_mask: u32,
    chars: std::collections::HashMap<char, (u32, bool)>,
}

impl Keymap {
    fn us() -> anyhow::Result<Self> {
        let context = xkb::Context::new(xkb::CONTEXT_NO_FLAGS);
        let keymap = xkb::Keymap::new_from_names(
            &context,
            "evdev",
            "pc105",
            "us",
            "",
            None,
            xkb::KEYMAP_COMPILE_NO_FLAGS,
        )
        .ok_or_else(|| anyhow!("compiling the US keymap (is xkb-data installed?)"))?;
        let mut chars = std::collections::HashMap::new();
        let (min, max) = (keymap.min_keycode().raw(), keymap.max_keycode().raw());
        for level in 0..2u32 {
            for code in min..=max {
                for sym in keymap.key_get_syms_by_level(xkb::Keycode::new(code), 0, level) {
                    if let Some(ch) = char::from_u32(xkb::keysym_to_utf32(*sym))
                        && !ch.is_control()
                        && code >= 8
                    {
                        chars.entry(ch).or_insert((code - 8, level == 1));
                    }
                }
            }
        }
        let shift = keymap.mod_get_index(xkb::MOD_NAME_SHIFT);
        Ok(Self {
            text: keymap.get_as_string(xkb::KEYMAP_FORMAT_TEXT_V1),
            shift_mask: 1u32.checked_shl(shift).unwrap_or(0),
            chars,
        })
    }
}

/// The client side's state: its globals, objects and what the compositor told it.
pub struct ClientSide {
    seat: Option<wl_seat::WlSeat>,
    im_manager: Option<zwp_input_method_manager_v2::ZwpInputMethodManagerV2>,
    vk_manager: Option<zwp_virtual_keyboard_manager_v1::ZwpVirtualKeyboardManagerV1>,
    input_method: Option<zwp_input_method_v2::ZwpInputMethodV2>,
    virtual_keyboard: Option<zwp_virtual_keyboard_v1::ZwpVirtualKeyboardV1>,
    keymap: Keymap,
    /// State being collected until the next `done`.
    pending: TextField,
    current: TextField,
    /// `done` events received: the serial input-method `commit` must carry.
    done_count: u32,
    /// Another input method holds the seat's slot.
    unavailable: bool,
    /// `current` changed since the shell last looked.
    updated: bool,
    /// The keymap has been sent to the virtual keyboard.
    keymap_sent: bool,
}

/// The built-in keyboard's connection and its state.
pub struct BuiltinInputMethod {
    conn: Connection,
    queue: EventQueue<ClientSide>,
    side: ClientSide,
    started: Instant,
}

impl std::fmt::Debug for BuiltinInputMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuiltinInputMethod")
            .field("current", &self.side.current)
            .field("unavailable", &self.side.unavailable)
            .finish()
    }
}

impl BuiltinInputMethod {
    /// Connects over `client_end` (the other end of a socket pair the display serves) and asks for
    /// the globals; the input method comes into being as their events arrive.
    pub fn connect(client_end: UnixStream) -> anyhow::Result<Self> {
        client_end
            .set_nonblocking(true)
            .context("making the built-in keyboard's socket non-blocking")?;
        let conn = Connection::from_socket(client_end)
            .context("connecting the built-in keyboard's input method")?;
        let queue = conn.new_event_queue();
        conn.display().get_registry(&queue.handle(), ());
        let side = ClientSide {
            seat: None,
            im_manager: None,
            vk_manager: None,
            input_method: None,
            virtual_keyboard: None,
            keymap: Keymap::us()?,
            pending: TextField::default(),
            current: TextField::default(),
            done_count: 0,
            unavailable: false,
            updated: false,
            keymap_sent: false,
        };
        let mut this = Self {
            conn,
            queue,
            side,
            started: Instant::now(),
        };
        this.flush();
        Ok(this)
    }

    /// A copy of the connection's descriptor, for the event loop to watch.
    pub fn poll_fd(&self) -> anyhow::Result<OwnedFd> {
        self.conn
            .backend()
            .poll_fd()
            .try_clone_to_owned()
            .context("duplicating the built-in keyboard's socket")
    }

    /// Reads and handles what the compositor sent.
    pub fn dispatch(&mut self) {
        if let Some(guard) = self.queue.prepare_read()
            && let Err(err) = guard.read()
        {
            let would_block = matches!(&err, wayland_client::backend::WaylandError::Io(e) if e.kind() == std::io::ErrorKind::WouldBlock);
            if !would_block {
                tracing::error!(%err, "the built-in keyboard lost its connection");
            }
        }
        if let Err(err) = self.queue.dispatch_pending(&mut self.side) {
            tracing::error!(%err, "the built-in keyboard's input method failed");
        }
        self.side.setup(&self.queue.handle());
        self.flush();
    }

    fn flush(&mut self) {
        if let Err(err) = self.conn.flush() {
            tracing::warn!(%err, "flushing the built-in keyboard's requests");
        }
    }

    /// The text field state applied since the last call, if it changed.
    pub fn take_update(&mut self) -> Option<TextField> {
        std::mem::take(&mut self.side.updated).then(|| self.side.current.clone())
    }

    /// The text field in focus (as of the last `done`).
    pub fn text_field(&self) -> &TextField {
        &self.side.current
    }

    /// Whether another input method (an external keyboard) holds the seat.
    pub fn unavailable(&self) -> bool {
        self.side.unavailable
    }

    /// Gives up the input method so an external one can take the seat.
    pub fn release(&mut self) {
        if let Some(im) = self.side.input_method.take() {
            im.destroy();
        }
        // Never takes it again (the virtual keyboard stays, for keys without a text field).
        self.side.unavailable = true;
        self.side.current = TextField::default();
        self.side.updated = true;
        self.flush();
    }

    /// Delivers what a key produced: text through the input method while a text field is
    /// active, otherwise (and for keys text-input cannot express) as key events.
    ///
    /// Terminals (content purpose `terminal`) get key events for everything they can: what runs
    /// in them (shells, editors) reads keys, and foot drops a text-input commit whose serial went
    /// stale while the user typed on (a race the protocol leaves open), which keys cannot hit.
    pub fn type_out(&mut self, typed: &Typed) {
        let terminal = self.side.current.purpose == PURPOSE_TERMINAL;
        let typeable =
            |text: &str, keymap: &Keymap| text.chars().all(|c| keymap.chars.contains_key(&c));
        let text_input = self.side.current.active
            && self.side.input_method.is_some()
            && !(terminal && matches!(typed, Typed::Text(t) if typeable(t, &self.side.keymap)));
        match typed {
            Typed::Text(text) if text_input => self.commit(|im| im.commit_string(text.clone())),
            Typed::Text(text) => {
                for ch in text.chars() {
                    match self.side.keymap.chars.get(&ch).copied() {
                        Some((code, shift)) => self.key(code, shift),
                        None => tracing::debug!(?ch, "no key types this character"),
                    }
                }
            }
            Typed::Backspace => match self.bytes_before_cursor() {
                Some(len) if text_input => {
                    self.commit(|im| im.delete_surrounding_text(len, 0));
                    // The client sends the new surrounding text with its next commit; until then
                    // another Backspace goes as a key.
                    self.side.current.surrounding = None;
                }
                _ => self.key(keys::BACKSPACE, false),
            },
            Typed::Enter => self.key(keys::ENTER, false),
            Typed::Left => self.key(keys::LEFT, false),
            Typed::Right => self.key(keys::RIGHT, false),
        }
        self.flush();
    }

    /// Byte length of the character before the cursor, when the client told us the text.
    fn bytes_before_cursor(&self) -> Option<u32> {
        let (text, cursor, anchor) = self.side.current.surrounding.as_ref()?;
        if cursor != anchor {
            return None; // a selection: the key event lets the client delete it
        }
        let before = text.get(..*cursor as usize)?;
        before.chars().next_back().map(|c| c.len_utf8() as u32)
    }

    fn commit(&mut self, request: impl FnOnce(&zwp_input_method_v2::ZwpInputMethodV2)) {
        if let Some(im) = &self.side.input_method {
            request(im);
            im.commit(self.side.done_count);
        }
    }

    /// Presses and releases evdev key `code` on the virtual keyboard (with shift if asked).
    fn key(&mut self, code: u32, shift: bool) {
        let Some(vk) = &self.side.virtual_keyboard else {
            tracing::warn!("the virtual keyboard is not ready: key dropped");
            return;
        };
        let time = self.started.elapsed().as_millis() as u32;
        let mask = self.side.keymap.shift_mask;
        if shift {
            vk.modifiers(mask, 0, 0, 0);
        }
        vk.key(time, code, 1);
        vk.key(time, code, 0);
        if shift {
            vk.modifiers(0, 0, 0, 0);
        }
    }
}

impl ClientSide {
    /// Creates the input method and the virtual keyboard once their globals and the seat are known.
    fn setup(&mut self, qh: &QueueHandle<ClientSide>) {
        let Some(seat) = self.seat.clone() else {
            return;
        };
        if self.input_method.is_none()
            && !self.unavailable
            && let Some(manager) = &self.im_manager
        {
            self.input_method = Some(manager.get_input_method(&seat, qh, ()));
        }
        if self.virtual_keyboard.is_none()
            && let Some(manager) = &self.vk_manager
        {
            self.virtual_keyboard = Some(manager.create_virtual_keyboard(&seat, qh, ()));
        }
        if !self.keymap_sent
            && let Some(vk) = &self.virtual_keyboard
        {
            match keymap_fd(&self.keymap.text) {
                Ok((fd, size)) => {
                    vk.keymap(wl_keyboard_keymap_xkb_v1(), fd.as_fd(), size);
                    self.keymap_sent = true;
                }
                Err(err) => tracing::error!("{err:#}"),
            }
        }
    }
}

/// `wl_keyboard.keymap_format.xkb_v1`.
fn wl_keyboard_keymap_xkb_v1() -> u32 {
    1
}

/// The keymap in a sealed-size memory file, as the protocol passes keymaps.
fn keymap_fd(text: &str) -> anyhow::Result<(OwnedFd, u32)> {
    let fd = nix::sys::memfd::memfd_create(
        c"cirrus-keyboard-keymap",
        nix::sys::memfd::MFdFlags::MFD_CLOEXEC,
    )
    .context("creating the keymap's memory file")?;
    let mut file = std::fs::File::from(fd);
    let mut bytes = text.as_bytes().to_vec();
    bytes.push(0);
    file.write_all(&bytes)
        .context("writing the keymap's memory file")?;
    Ok((OwnedFd::from(file), bytes.len() as u32))
}

impl Dispatch<wl_registry::WlRegistry, ()> for ClientSide {
    fn event(
        state: &mut Self,
        registry: &wl_registry::WlRegistry,
        event: wl_registry::Event,
        _: &(),
        _: &Connection,
        qh: &QueueHandle<Self>,
    ) {
        if let wl_registry::Event::Global {
            name, interface, ..
        } = event
        {
            match interface.as_str() {
                "wl_seat" if state.seat.is_none() => {
                    state.seat = Some(registry.bind(name, 1, qh, ()));
                }
                "zwp_input_method_manager_v2" => {
                    state.im_manager = Some(registry.bind(name, 1, qh, ()));
                }
                "zwp_virtual_keyboard_manager_v1" => {
                    state.vk_manager = Some(registry.bind(name, 1, qh, ()));
                }
                _ => {}
            }
        }
    }
}

impl Dispatch<zwp_input_method_v2::ZwpInputMethodV2, ()> for ClientSide {
    fn event(
        state: &mut Self,
        _: &zwp_input_method_v2::ZwpInputMethodV2,
        event: zwp_input_method_v2::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        use zwp_input_method_v2::Event;
        match event {
            Event::Activate => {
                // A fresh activation resets what the previous field said.
                state.pending = TextField {
                    active: true,
                    ..Default::default()
                };
            }
            Event::Deactivate => state.pending.active = false,
            Event::SurroundingText {
                text,
                cursor,
                anchor,
            } => state.pending.surrounding = Some((text, cursor, anchor)),
            Event::ContentType { purpose, .. } => {
                state.pending.purpose = match purpose {
                    WEnum::Value(p) => p as u32,
                    WEnum::Unknown(p) => p,
                }
            }
            Event::Done => {
                state.done_count = state.done_count.wrapping_add(1);
                if state.current != state.pending {
                    state.current = state.pending.clone();
                    state.updated = true;
                }
            }
            Event::Unavailable => {
                tracing::warn!(
                    "another input method holds the seat: the built-in keyboard stays hidden"
                );
                state.unavailable = true;
                state.current = TextField::default();
                state.updated = true;
            }
            _ => {}
        }
    }
}

delegate_noop!(ClientSide: ignore wl_seat::WlSeat);
delegate_noop!(ClientSide: ignore zwp_input_method_manager_v2::ZwpInputMethodManagerV2);
delegate_noop!(ClientSide: ignore zwp_virtual_keyboard_manager_v1::ZwpVirtualKeyboardManagerV1);
delegate_noop!(ClientSide: ignore zwp_virtual_keyboard_v1::ZwpVirtualKeyboardV1);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn us_keymap_types_letters_digits_and_shifted_symbols() {
        let keymap = Keymap::us().unwrap_or_else(|e| panic!("{e:#}"));
        // evdev: KEY_Q = 16, KEY_1 = 2, KEY_SPACE = 57.
        assert_eq!(keymap.chars.get(&'q'), Some(&(16, false)));
        assert_eq!(keymap.chars.get(&'Q'), Some(&(16, true)));
        assert_eq!(keymap.chars.get(&'1'), Some(&(2, false)));
        assert_eq!(keymap.chars.get(&'!'), Some(&(2, true)));
        assert_eq!(keymap.chars.get(&' '), Some(&(57, false)));
        assert_eq!(keymap.shift_mask, 1);
        assert!(keymap.text.contains("xkb_keymap"));
    }
}
