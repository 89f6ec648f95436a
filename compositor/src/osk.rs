//! The built-in on-screen keyboard: its phone layout (letters, and a page of numbers and symbols),
//! hit testing, shift and page state, the slide in/out, and its drawing with `cirrus-ui`.
//!
//! The keyboard types through the compositor's own input method ([`crate::builtin_input_method`]):
//! text goes to a text-input-v3 client as `commit_string`, keys that text-input cannot express
//! (Enter, Backspace without surrounding text, arrows) and everything typed into clients without
//! text-input go as key events of a virtual keyboard. Geometry is in physical pixels, sized in dp
//! from the shell's scale, like the rest of the shell.

use std::time::{Duration, Instant};

use cirrus_ui::IRect;
use cirrus_ui::shell::ShellLayout;
use cirrus_ui::text::{HAlign, TextRenderer, TextStyle};
use cirrus_ui::theme;
use cirrus_ui::tiny_skia::{FillRule, Paint, Pixmap, Rect, Transform};
use smithay::backend::allocator::Fourcc;
use smithay::backend::renderer::element::memory::MemoryRenderBuffer;
use smithay::utils::Transform as SmithayTransform;

/// A page of the layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Page {
    Letters,
    Symbols,
}

/// What a key does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Key {
    /// Types a character (letters follow shift).
    Char(char),
    Space,
    Shift,
    Backspace,
    Enter,
    Left,
    Right,
    /// Switches to another page.
    ToPage(Page),
}

/// What pressing a key produced, for the input method to deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Typed {
    Text(String),
    Backspace,
    Enter,
    Left,
    Right,
}

/// Shift: off, for the next letter only, or locked (caps lock).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Shift {
    #[default]
    Off,
    Once,
    Locked,
}

/// A key of a row and its width in key units (a row is 10 units wide).
#[derive(Debug, Clone, Copy, PartialEq)]
struct KeySpec {
    key: Key,
    units: f32,
}

const fn k(key: Key, units: f32) -> KeySpec {
    KeySpec { key, units }
}

const fn c(ch: char) -> KeySpec {
    k(Key::Char(ch), 1.0)
}

/// Units across a row.
const ROW_UNITS: f32 = 10.0;

const LETTERS: [&[KeySpec]; 4] = [
    &[
        c('q'),
        c('w'),
        c('e'),
        c('r'),
        c('t'),
        c('y'),
        c('u'),
        c('i'),
        c('o'),
        c('p'),
    ],
    &[
        c('a'),
        c('s'),
        c('d'),
        c('f'),
        c('g'),
        c('h'),
        c('j'),
        c('k'),
        c('l'),
    ],
    &[
        k(Key::Shift, 1.5),
        c('z'),
        c('x'),
        c('c'),
        c('v'),
        c('b'),
        c('n'),
        c('m'),
        k(Key::Backspace, 1.5),
    ],
    &[
        k(Key::ToPage(Page::Symbols), 1.5),
        c(','),
        k(Key::Space, 5.0),
        c('.'),
        k(Key::Enter, 1.5),
    ],
];

const SYMBOLS: [&[KeySpec]; 4] = [
    &[
        c('1'),
        c('2'),
        c('3'),
        c('4'),
        c('5'),
        c('6'),
        c('7'),
        c('8'),
        c('9'),
        c('0'),
    ],
    &[
        c('@'),
        c('#'),
        c('$'),
        c('%'),
        c('&'),
        c('-'),
        c('+'),
        c('('),
        c(')'),
        c('='),
    ],
    &[
        c('/'),
        c('*'),
        c('"'),
        c('\''),
        c(':'),
        c(';'),
        c('!'),
        c('?'),
        k(Key::Backspace, 2.0),
    ],
    &[
        k(Key::ToPage(Page::Letters), 1.5),
        k(Key::Left, 1.0),
        k(Key::Space, 4.0),
        k(Key::Right, 1.0),
        c('.'),
        k(Key::Enter, 1.5),
    ],
];

fn rows(page: Page) -> &'static [&'static [KeySpec]; 4] {
    match page {
        Page::Letters => &LETTERS,
        Page::Symbols => &SYMBOLS,
    }
}

/// One key placed on the screen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlacedKey {
    pub key: Key,
    /// The key cap as drawn.
    pub rect: IRect,
    /// The area a touch selects it in: the cap and half the gaps around it, so there are no dead
    /// zones between keys.
    pub touch: IRect,
}

/// Where the keyboard and its keys are on a screen (physical pixels).
#[derive(Debug, Clone, PartialEq)]
pub struct KeyboardLayout {
    /// The whole keyboard panel at the bottom of the screen, gesture strip included.
    pub panel: IRect,
    /// Physical pixels per dp.
    pub scale: f32,
    letters: Vec<PlacedKey>,
    symbols: Vec<PlacedKey>,
}

impl KeyboardLayout {
    pub fn new(shell: &ShellLayout) -> Self {
        let scale = shell.scale;
        let dp = |v: f32| v * scale;
        let row_h = dp(theme::KEYBOARD_ROW_DP);
        let gap = dp(theme::KEYBOARD_GAP_DP);
        let top = dp(theme::KEYBOARD_TOP_DP);
        let bottom = dp(theme::KEYBOARD_BOTTOM_DP);
        let height = (top + 4.0 * row_h + bottom)
            .round()
            .min(shell.home.height as f32 / 2.0) as u32;
        let panel = IRect::new(
            0,
            shell.height.saturating_sub(height) as i32,
            shell.width,
            height,
        );
        let place = |page: Page| -> Vec<PlacedKey> {
            let unit = (shell.width as f32 - gap) / ROW_UNITS;
            let mut out = Vec::new();
            for (r, row) in rows(page).iter().enumerate() {
                let units: f32 = row.iter().map(|s| s.units).sum();
                // Short rows (the second row of letters) are centred.
                let mut x = gap / 2.0 + (ROW_UNITS - units) * unit / 2.0;
                let y = panel.y as f32 + top + r as f32 * row_h;
                for (i, spec) in row.iter().enumerate() {
                    let w = spec.units * unit;
                    let rect = IRect::new(
                        (x + gap / 2.0).round() as i32,
                        (y + gap / 2.0).round() as i32,
                        (w - gap).round().max(1.0) as u32,
                        (row_h - gap).round().max(1.0) as u32,
                    );
                    // Touch areas reach the panel's sides on the first and last key of a row.
                    let tx0 = if i == 0 { panel.x as f32 } else { x };
                    let tx1 = if i + 1 == row.len() {
                        shell.width as f32
                    } else {
                        x + w
                    };
                    let touch = IRect::new(
                        tx0.round() as i32,
                        y.round() as i32,
                        (tx1 - tx0).round().max(1.0) as u32,
                        row_h.round().max(1.0) as u32,
                    );
                    out.push(PlacedKey {
                        key: spec.key,
                        rect,
                        touch,
                    });
                    x += w;
                }
            }
            out
        };
        Self {
            panel,
            scale,
            letters: place(Page::Letters),
            symbols: place(Page::Symbols),
        }
    }

    /// The keys of `page`.
    pub fn keys(&self, page: Page) -> &[PlacedKey] {
        match page {
            Page::Letters => &self.letters,
            Page::Symbols => &self.symbols,
        }
    }

    /// The index (into [`Self::keys`]) of the key whose touch area holds the physical point.
    pub fn hit(&self, page: Page, x: i32, y: i32) -> Option<usize> {
        self.keys(page).iter().position(|k| k.touch.contains(x, y))
    }

    /// Where `key` is on `page`.
    pub fn find(&self, page: Page, key: Key) -> Option<PlacedKey> {
        self.keys(page).iter().find(|k| k.key == key).copied()
    }

    /// The page and key that type `ch`, for tools and tests that type text by tapping.
    pub fn find_char(&self, ch: char) -> Option<(Page, PlacedKey, bool)> {
        let lower = ch.to_lowercase().next().unwrap_or(ch);
        let shifted = lower != ch;
        for page in [Page::Letters, Page::Symbols] {
            let key = if ch == ' ' {
                self.find(page, Key::Space)
            } else {
                self.find(page, Key::Char(lower))
            };
            if let Some(key) = key {
                return Some((page, key, shifted));
            }
        }
        None
    }
}

/// The keyboard's state: page, shift and the key under the finger.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyboardState {
    pub page: PageState,
    pub shift: Shift,
    /// The key held down (index into the page's keys), drawn highlighted.
    pub pressed: Option<usize>,
}

/// The page, with a default for `KeyboardState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageState(pub Page);

impl Default for PageState {
    fn default() -> Self {
        PageState(Page::Letters)
    }
}

impl KeyboardState {
    pub fn page(&self) -> Page {
        self.page.0
    }

    /// Presses `key`: changes shift or page, or returns what it types.
    pub fn activate(&mut self, key: Key) -> Option<Typed> {
        match key {
            Key::Char(ch) => {
                let typed = if self.shift != Shift::Off && self.page() == Page::Letters {
                    ch.to_uppercase().collect()
                } else {
                    ch.to_string()
                };
                if self.shift == Shift::Once {
                    self.shift = Shift::Off;
                }
                Some(Typed::Text(typed))
            }
            Key::Space => Some(Typed::Text(" ".into())),
            Key::Shift => {
                self.shift = match self.shift {
                    Shift::Off => Shift::Once,
                    Shift::Once => Shift::Locked,
                    Shift::Locked => Shift::Off,
                };
                None
            }
            Key::ToPage(page) => {
                self.page = PageState(page);
                self.shift = Shift::Off;
                None
            }
            Key::Backspace => Some(Typed::Backspace),
            Key::Enter => Some(Typed::Enter),
            Key::Left => Some(Typed::Left),
            Key::Right => Some(Typed::Right),
        }
    }

    /// Back to the first page, unshifted (each time the keyboard comes up).
    pub fn reset(&mut self) {
        *self = KeyboardState::default();
    }
}

/// How long the keyboard takes to slide in or out.
pub const SLIDE: Duration = Duration::from_millis(180);

/// The keyboard as the compositor keeps it: layout, state, whether it is up, the slide.
#[derive(Debug)]
pub struct OnScreenKeyboard {
    layout: KeyboardLayout,
    pub state: KeyboardState,
    visible: bool,
    /// When the last slide started, and how far up the keyboard was then (0 = hidden, 1 = up).
    slide_from: (Instant, f32),
    /// The keyboard as last drawn (see [`Self::redraw`]).
    buffer: MemoryRenderBuffer,
}

impl OnScreenKeyboard {
    pub fn new(shell: &ShellLayout) -> Self {
        Self {
            layout: KeyboardLayout::new(shell),
            state: KeyboardState::default(),
            visible: false,
            slide_from: (Instant::now() - SLIDE, 0.0),
            buffer: MemoryRenderBuffer::new(
                Fourcc::Argb8888,
                (1, 1),
                1,
                SmithayTransform::Normal,
                None,
            ),
        }
    }

    /// Draws the keyboard into its buffer (at the output's integer `buffer_scale`).
    pub fn redraw(&mut self, text: &mut TextRenderer, buffer_scale: i32) {
        let panel = self.layout.panel;
        let Some(mut pixmap) = Pixmap::new(panel.width.max(1), panel.height.max(1)) else {
            tracing::error!(?panel, "keyboard too large to allocate");
            return;
        };
        self.draw(&mut pixmap, text);
        let size = (pixmap.width() as i32, pixmap.height() as i32);
        self.buffer = MemoryRenderBuffer::from_slice(
            &cirrus_ui::pixmap_to_argb8888(&pixmap),
            Fourcc::Argb8888,
            size,
            buffer_scale,
            SmithayTransform::Normal,
            Some(vec![smithay::utils::Rectangle::from_size(size.into())]),
        );
    }

    /// The keyboard as last drawn.
    pub fn buffer(&self) -> &MemoryRenderBuffer {
        &self.buffer
    }

    pub fn layout(&self) -> &KeyboardLayout {
        &self.layout
    }

    /// Re-lays out for a new screen size.
    pub fn resize(&mut self, shell: &ShellLayout) {
        self.layout = KeyboardLayout::new(shell);
        self.state.pressed = None;
    }

    /// Whether the keyboard is (or is sliding) up.
    pub fn visible(&self) -> bool {
        self.visible
    }

    /// Shows or hides the keyboard, starting a slide; returns whether that changed anything.
    pub fn set_visible(&mut self, visible: bool) -> bool {
        if self.visible == visible {
            return false;
        }
        let now = Instant::now();
        let shown = self.shown_fraction(now);
        self.visible = visible;
        self.slide_from = (now, shown);
        if visible {
            self.state.reset();
        }
        self.state.pressed = None;
        true
    }

    /// How far up the keyboard is at `now`: 0 hidden, 1 fully up (eased).
    pub fn shown_fraction(&self, now: Instant) -> f32 {
        let (start, from) = self.slide_from;
        let t = (now.saturating_duration_since(start).as_secs_f32() / SLIDE.as_secs_f32())
            .clamp(0.0, 1.0);
        let eased = 1.0 - (1.0 - t) * (1.0 - t);
        let to = if self.visible { 1.0 } else { 0.0 };
        from + (to - from) * eased
    }

    /// Whether a slide is still running (the screen must keep being redrawn).
    pub fn sliding(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.slide_from.0) < SLIDE
    }

    /// Where the panel is drawn at `now` (it slides up from below the screen).
    pub fn panel_at(&self, now: Instant) -> IRect {
        let panel = self.layout.panel;
        let hidden = (1.0 - self.shown_fraction(now)) * panel.height as f32;
        IRect {
            y: panel.y + hidden.round() as i32,
            ..panel
        }
    }

    /// Whether the keyboard is fully up and takes touches.
    pub fn accepts_touch(&self, now: Instant) -> bool {
        self.visible && !self.sliding(now)
    }

    /// The key under a physical point, when the keyboard takes touches.
    pub fn hit(&self, now: Instant, x: i32, y: i32) -> Option<usize> {
        if !self.accepts_touch(now) {
            return None;
        }
        self.layout.hit(self.state.page(), x, y)
    }

    /// Highlights the key at `index` (or none); returns whether that changed.
    pub fn set_pressed(&mut self, index: Option<usize>) -> bool {
        std::mem::replace(&mut self.state.pressed, index) != index
    }

    /// Releases the key at `index`: what it types, if anything.
    pub fn release(&mut self, index: usize) -> Option<Typed> {
        self.state.pressed = None;
        let key = self.layout.keys(self.state.page()).get(index)?.key;
        self.state.activate(key)
    }

    /// Draws the keyboard panel (the size of [`KeyboardLayout::panel`]).
    pub fn draw(&self, pixmap: &mut Pixmap, text: &mut TextRenderer) {
        draw_keyboard(pixmap, &self.layout, &self.state, text)
    }
}

fn label(key: Key, shift: Shift, page: Page) -> String {
    match key {
        Key::Char(ch) if shift != Shift::Off && page == Page::Letters => {
            ch.to_uppercase().collect()
        }
        Key::Char(ch) => ch.to_string(),
        Key::Space => String::new(),
        Key::Shift => "⇧".into(),
        Key::Backspace => "⌫".into(),
        Key::Enter => "↵".into(),
        Key::Left => "←".into(),
        Key::Right => "→".into(),
        Key::ToPage(Page::Symbols) => "?123".into(),
        Key::ToPage(Page::Letters) => "ABC".into(),
    }
}

fn fill_key(pixmap: &mut Pixmap, rect: IRect, radius: f32, colour: [u8; 3], origin: (i32, i32)) {
    let Some(r) = Rect::from_xywh(
        (rect.x - origin.0) as f32,
        (rect.y - origin.1) as f32,
        rect.width as f32,
        rect.height as f32,
    ) else {
        return;
    };
    let Some(path) = cirrus_ui::shape::rounded_rect(r, radius) else {
        return;
    };
    let mut paint = Paint::default();
    paint.set_color(theme::color(colour));
    paint.anti_alias = true;
    pixmap.fill_path(
        &path,
        &paint,
        FillRule::Winding,
        Transform::identity(),
        None,
    );
}

/// Draws the keyboard for `state` into `pixmap`, which covers `layout.panel`.
pub fn draw_keyboard(
    pixmap: &mut Pixmap,
    layout: &KeyboardLayout,
    state: &KeyboardState,
    text: &mut TextRenderer,
) {
    pixmap.fill(theme::color(theme::KEYBOARD_BG));
    let origin = (layout.panel.x, layout.panel.y);
    let page = state.page();
    let radius = theme::KEYBOARD_KEY_RADIUS_DP * layout.scale;
    for (i, placed) in layout.keys(page).iter().enumerate() {
        let function = !matches!(placed.key, Key::Char(_) | Key::Space);
        let colour = if state.pressed == Some(i) {
            theme::KEYBOARD_KEY_PRESSED
        } else if placed.key == Key::Shift && state.shift != Shift::Off {
            theme::KEYBOARD_SHIFT_ON
        } else if function {
            theme::KEYBOARD_FUNCTION_KEY
        } else {
            theme::KEYBOARD_KEY
        };
        fill_key(pixmap, placed.rect, radius, colour, origin);
        let caption = label(placed.key, state.shift, page);
        if caption.is_empty() {
            continue;
        }
        let size = if caption.chars().count() > 1 {
            theme::KEYBOARD_SMALL_LABEL_DP
        } else {
            theme::KEYBOARD_LABEL_DP
        };
        let label_colour = if placed.key == Key::Shift && state.shift != Shift::Off {
            theme::KEYBOARD_BG
        } else {
            theme::KEYBOARD_LABEL
        };
        let style = TextStyle {
            size_px: size * layout.scale,
            color: label_colour,
            bold: false,
        };
        let area = IRect::new(
            placed.rect.x - origin.0,
            placed.rect.y - origin.1,
            placed.rect.width,
            placed.rect.height,
        );
        text.draw_line(pixmap, &caption, &style, area, HAlign::Center);
    }
    if state.shift == Shift::Locked
        && let Some(shift) = layout.find(page, Key::Shift)
    {
        // Caps lock: a bar under the shift arrow.
        let w = (shift.rect.width / 3).max(1);
        let bar = IRect::new(
            shift.rect.x + (shift.rect.width - w) as i32 / 2,
            shift.rect.bottom() - (6.0 * layout.scale) as i32,
            w,
            (2.0 * layout.scale).max(1.0) as u32,
        );
        fill_key(pixmap, bar, 0.0, theme::KEYBOARD_BG, origin);
    }
}

/// text-input-v3 content purposes that start the keyboard on the numbers page.
const NUMERIC_PURPOSES: [u32; 4] = [2, 3, 4, 9]; // digits, number, phone, pin

impl crate::state::State {
    /// Starts the built-in keyboard's input method: an in-process client of our own display,
    /// watched by the event loop.
    pub fn start_builtin_keyboard(
        &mut self,
        handle: &smithay::reexports::calloop::LoopHandle<'static, crate::compositor::Cirrus>,
    ) -> anyhow::Result<()> {
        use anyhow::Context;
        use smithay::reexports::calloop::generic::Generic;
        use smithay::reexports::calloop::{Interest, Mode, PostAction};
        let (server_end, client_end) = std::os::unix::net::UnixStream::pair()
            .context("creating the built-in keyboard's socket pair")?;
        server_end
            .set_nonblocking(true)
            .context("making the built-in keyboard's socket non-blocking")?;
        self.display_handle
            .insert_client(
                server_end,
                std::sync::Arc::new(crate::state::ClientState::builtin()),
            )
            .context("connecting the built-in keyboard")?;
        let input_method = crate::builtin_input_method::BuiltinInputMethod::connect(client_end)?;
        let fd = input_method.poll_fd()?;
        handle
            .insert_source(
                Generic::new(fd, Interest::READ, Mode::Level),
                |_, _, data: &mut crate::compositor::Cirrus| {
                    data.state.dispatch_builtin_keyboard();
                    Ok(PostAction::Continue)
                },
            )
            .map_err(|e| anyhow::anyhow!("watching the built-in keyboard: {e}"))?;
        self.builtin_input_method = Some(input_method);
        Ok(())
    }

    /// Gives the input method slot up for an external keyboard (squeekboard, wvkbd).
    pub fn release_builtin_keyboard(&mut self) {
        if let Some(input_method) = self.builtin_input_method.as_mut() {
            input_method.release();
            tracing::info!("built-in keyboard off: an external input method may take the seat");
        }
        self.set_keyboard_visible(false, 0);
    }

    /// Handles what the compositor told the built-in input method: the keyboard comes up while
    /// the focused app has a text field enabled, and goes when it is disabled or focus leaves.
    pub fn dispatch_builtin_keyboard(&mut self) {
        let Some(input_method) = self.builtin_input_method.as_mut() else {
            return;
        };
        input_method.dispatch();
        if let Some(field) = input_method.take_update() {
            tracing::debug!(active = field.active, purpose = field.purpose, "text field");
            self.set_keyboard_visible(field.active, field.purpose);
        }
    }

    /// Shows or hides the keyboard; the app window is resized so the keyboard does not cover it.
    pub fn set_keyboard_visible(&mut self, visible: bool, purpose: u32) {
        if self.osk.set_visible(visible) {
            tracing::info!(visible, "on-screen keyboard");
            if visible && NUMERIC_PURPOSES.contains(&purpose) {
                self.osk.state.activate(Key::ToPage(Page::Symbols));
            }
            self.redraw_keyboard();
            self.relayout();
        }
    }

    /// Whether the keyboard is on screen (it only shows over an app).
    pub fn keyboard_shown(&self) -> bool {
        self.shown_window().is_some() && self.osk.shown_fraction(Instant::now()) > 0.0
    }

    /// For a contact starting or moving at logical `pos`: `Some(key)` when it is on the
    /// keyboard (`Some(None)`: on the panel but between keys, or while it slides).
    pub fn keyboard_touch(
        &self,
        pos: smithay::utils::Point<f64, smithay::utils::Logical>,
    ) -> Option<Option<usize>> {
        if !self.keyboard_shown() || !self.osk.visible() {
            return None;
        }
        let scale = self.output_scale();
        let (x, y) = ((pos.x * scale) as i32, (pos.y * scale) as i32);
        let now = Instant::now();
        if !self.osk.panel_at(now).contains(x, y) {
            return None;
        }
        Some(self.osk.hit(now, x, y))
    }

    /// A finger is on key `key` (or on none): highlights it.
    pub fn keyboard_press(&mut self, key: Option<usize>) {
        if self.osk.set_pressed(key) {
            self.redraw_keyboard();
        }
    }

    /// The finger lifted from `key`: it types (or changes shift or page).
    pub fn keyboard_release(&mut self, key: Option<usize>) {
        let Some(index) = key else {
            self.keyboard_press(None);
            return;
        };
        let typed = self.osk.release(index);
        self.redraw_keyboard();
        if let Some(typed) = typed {
            // Bring the input method up to date first (its commit must carry the serial of the
            // last `done` the compositor sent): send what is queued for it, then read it.
            if let Err(err) = self.display_handle.flush_clients() {
                tracing::warn!(%err, "flushing clients");
            }
            self.dispatch_builtin_keyboard();
            match self.builtin_input_method.as_mut() {
                Some(input_method) => input_method.type_out(&typed),
                None => tracing::warn!("the built-in keyboard has no input method"),
            }
        }
    }

    /// Redraws the keyboard's buffer after its state changed.
    pub fn redraw_keyboard(&mut self) {
        let scale = self.output.current_scale().integer_scale().max(1);
        let osk = &mut self.osk;
        osk.redraw(self.shell.text_renderer(), scale);
        self.needs_redraw = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> KeyboardLayout {
        KeyboardLayout::new(&ShellLayout::new(720, 1440))
    }

    fn centre(k: &PlacedKey) -> (i32, i32) {
        (
            k.rect.x + k.rect.width as i32 / 2,
            k.rect.y + k.rect.height as i32 / 2,
        )
    }

    #[test]
    fn panel_sits_at_the_bottom_and_is_scaled() {
        let l = layout();
        // 720 px wide = scale 2: (6 + 4 × 50 + 24) dp = 230 dp = 460 px.
        assert_eq!(l.panel, IRect::new(0, 1440 - 460, 720, 460));
        let small = KeyboardLayout::new(&ShellLayout::new(360, 720));
        assert_eq!(small.panel.height, 230);
    }

    #[test]
    fn every_key_is_found_at_its_centre_and_rows_fit_the_screen() {
        let l = layout();
        for page in [Page::Letters, Page::Symbols] {
            for (i, key) in l.keys(page).iter().enumerate() {
                let (x, y) = centre(key);
                assert_eq!(l.hit(page, x, y), Some(i), "{:?} on {page:?}", key.key);
                assert!(key.rect.right() <= 720 && key.rect.x >= 0, "{key:?}");
                assert!(l.panel.contains(key.rect.x, key.rect.y));
            }
        }
        assert_eq!(l.keys(Page::Letters).len(), 10 + 9 + 9 + 5);
    }

    #[test]
    fn gaps_between_keys_still_hit_a_key_and_the_gesture_strip_does_not() {
        let l = layout();
        let q = l
            .find(Page::Letters, Key::Char('q'))
            .unwrap_or_else(|| panic!("q"));
        let w = l
            .find(Page::Letters, Key::Char('w'))
            .unwrap_or_else(|| panic!("w"));
        let between = (q.rect.right() + w.rect.x) / 2;
        let hit = l.hit(Page::Letters, between, centre(&q).1);
        assert!(
            hit.is_some(),
            "a touch between q and w must select one of them"
        );
        // The screen's left edge next to 'a' (a short, centred row) still selects 'a'.
        let a = l
            .find(Page::Letters, Key::Char('a'))
            .unwrap_or_else(|| panic!("a"));
        let index_a = l.keys(Page::Letters).iter().position(|k| k.key == a.key);
        assert_eq!(l.hit(Page::Letters, 1, centre(&a).1), index_a);
        // Below the last row: the home gesture's strip, no key.
        assert_eq!(l.hit(Page::Letters, 360, 1440 - 10), None);
        // Above the panel: the app.
        assert_eq!(l.hit(Page::Letters, 360, l.panel.y - 1), None);
    }

    #[test]
    fn keys_on_the_right_are_right_of_keys_on_the_left() {
        let l = layout();
        let q = l
            .find(Page::Letters, Key::Char('q'))
            .unwrap_or_else(|| panic!("q"));
        let p = l
            .find(Page::Letters, Key::Char('p'))
            .unwrap_or_else(|| panic!("p"));
        let m = l
            .find(Page::Letters, Key::Char('m'))
            .unwrap_or_else(|| panic!("m"));
        let space = l
            .find(Page::Letters, Key::Space)
            .unwrap_or_else(|| panic!("space"));
        assert!(q.rect.x < p.rect.x && q.rect.y == p.rect.y);
        assert!(m.rect.y > q.rect.y && space.rect.y > m.rect.y);
        assert!(space.rect.width > 4 * q.rect.width, "space is the wide key");
    }

    #[test]
    fn shift_is_one_shot_then_locks_then_turns_off() {
        let mut s = KeyboardState::default();
        assert_eq!(s.activate(Key::Char('a')), Some(Typed::Text("a".into())));
        assert_eq!(s.activate(Key::Shift), None);
        assert_eq!(s.shift, Shift::Once);
        assert_eq!(s.activate(Key::Char('h')), Some(Typed::Text("H".into())));
        assert_eq!(s.shift, Shift::Off, "one-shot shift ends after a letter");
        assert_eq!(s.activate(Key::Char('i')), Some(Typed::Text("i".into())));
        s.activate(Key::Shift);
        s.activate(Key::Shift);
        assert_eq!(s.shift, Shift::Locked);
        assert_eq!(s.activate(Key::Char('o')), Some(Typed::Text("O".into())));
        assert_eq!(s.activate(Key::Char('k')), Some(Typed::Text("K".into())));
        s.activate(Key::Shift);
        assert_eq!(s.shift, Shift::Off);
        assert_eq!(s.activate(Key::Char('k')), Some(Typed::Text("k".into())));
    }

    #[test]
    fn pages_switch_and_reset_shift() {
        let mut s = KeyboardState::default();
        s.activate(Key::Shift);
        assert_eq!(s.activate(Key::ToPage(Page::Symbols)), None);
        assert_eq!(s.page(), Page::Symbols);
        assert_eq!(s.shift, Shift::Off);
        assert_eq!(s.activate(Key::Char('7')), Some(Typed::Text("7".into())));
        assert_eq!(s.activate(Key::Space), Some(Typed::Text(" ".into())));
        assert_eq!(s.activate(Key::Enter), Some(Typed::Enter));
        assert_eq!(s.activate(Key::Backspace), Some(Typed::Backspace));
        s.activate(Key::ToPage(Page::Letters));
        assert_eq!(s.page(), Page::Letters);
    }

    #[test]
    fn hits_follow_the_page_shown() {
        let l = layout();
        let q = l
            .find(Page::Letters, Key::Char('q'))
            .unwrap_or_else(|| panic!("q"));
        let (x, y) = centre(&q);
        let on_symbols = l
            .hit(Page::Symbols, x, y)
            .map(|i| l.keys(Page::Symbols)[i].key);
        assert_eq!(on_symbols, Some(Key::Char('1')));
        assert_eq!(
            l.find_char('H').map(|(p, k, shift)| (p, k.key, shift)),
            Some((Page::Letters, Key::Char('h'), true))
        );
        assert_eq!(
            l.find_char('5').map(|(p, k, _)| (p, k.key)),
            Some((Page::Symbols, Key::Char('5')))
        );
        assert!(l.find_char('€').is_none());
    }

    #[test]
    fn keyboard_slides_and_only_takes_touches_when_up() {
        let mut osk = OnScreenKeyboard::new(&ShellLayout::new(720, 1440));
        let now = Instant::now();
        assert!(!osk.accepts_touch(now));
        assert!(osk.set_visible(true));
        assert!(!osk.set_visible(true));
        let start = Instant::now();
        assert!(osk.shown_fraction(start) < 0.5);
        assert!(osk.panel_at(start).y > osk.layout().panel.y);
        let later = start + SLIDE * 2;
        assert_eq!(osk.shown_fraction(later), 1.0);
        assert_eq!(osk.panel_at(later), osk.layout().panel);
        let q = osk
            .layout()
            .find(Page::Letters, Key::Char('q'))
            .unwrap_or_else(|| panic!("q"));
        let (x, y) = centre(&q);
        let index = osk
            .hit(later, x, y)
            .unwrap_or_else(|| panic!("no key at q"));
        assert!(osk.set_pressed(Some(index)));
        assert_eq!(osk.release(index), Some(Typed::Text("q".into())));
        assert_eq!(osk.state.pressed, None);
        assert!(osk.set_visible(false));
        assert_eq!(osk.shown_fraction(Instant::now() + SLIDE * 2), 0.0);
    }

    #[test]
    fn drawing_marks_the_pressed_key() {
        let l = layout();
        let mut text = TextRenderer::new();
        let draw = |state: &KeyboardState, text: &mut TextRenderer| {
            let mut pixmap =
                Pixmap::new(l.panel.width, l.panel.height).unwrap_or_else(|| panic!("pixmap"));
            draw_keyboard(&mut pixmap, &l, state, text);
            pixmap
        };
        let q_index = 0;
        let q = l.keys(Page::Letters)[q_index];
        let probe = (
            q.rect.x + 3 - l.panel.x,
            q.rect.y + q.rect.height as i32 / 2 - l.panel.y,
        );
        let colour = |p: &Pixmap| {
            let c = p
                .pixel(probe.0 as u32, probe.1 as u32)
                .unwrap_or_else(|| panic!("pixel"))
                .demultiply();
            [c.red(), c.green(), c.blue()]
        };
        let idle = draw(&KeyboardState::default(), &mut text);
        assert_eq!(colour(&idle), theme::KEYBOARD_KEY);
        let pressed = KeyboardState {
            pressed: Some(q_index),
            ..Default::default()
        };
        assert_eq!(
            colour(&draw(&pressed, &mut text)),
            theme::KEYBOARD_KEY_PRESSED
        );
    }
}
