//! The shell's look: colours (sRGB, 8-bit) and sizes in dp (density-independent pixels; one dp is
//! one pixel on a 360-pixel-wide screen, the scale of the smallest phones we support).

/// Width of the reference screen in dp; the shell's scale is `screen_width / REFERENCE_WIDTH_DP`.
pub const REFERENCE_WIDTH_DP: f32 = 360.0;

/// Height of the status bar.
pub const STATUS_BAR_HEIGHT_DP: f32 = 28.0;
/// Space between the screen's left/right edge and the status bar's content.
pub const STATUS_BAR_PADDING_DP: f32 = 16.0;
/// Size of the status bar's clock text.
pub const STATUS_BAR_TEXT_DP: f32 = 15.0;
/// Width reserved for the clock (fits "00:00" in the shell font with room to spare).
pub const CLOCK_WIDTH_DP: f32 = 64.0;

/// Width of the status bar's indicator area (network, battery and its percentage).
pub const INDICATORS_WIDTH_DP: f32 = 96.0;
/// Battery fill while charging, and when low (≤ 15 %).
pub const BATTERY_CHARGING: [u8; 3] = [0x4c, 0xd9, 0x64];
pub const BATTERY_LOW: [u8; 3] = [0xff, 0x5a, 0x4f];

/// Status bar background.
pub const STATUS_BAR_BG: [u8; 3] = [0x0b, 0x10, 0x1c];
/// Colour of the status bar's text (clock) and icons.
pub const STATUS_BAR_TEXT: [u8; 3] = [0xf2, 0xf5, 0xfa];

/// The wallpaper's vertical gradient, top to bottom ("sky over the sea").
pub const WALLPAPER_TOP: [u8; 3] = [0x1d, 0x3b, 0x6e];
pub const WALLPAPER_MIDDLE: [u8; 3] = [0x2b, 0x6c, 0x9a];
pub const WALLPAPER_BOTTOM: [u8; 3] = [0x7f, 0xc4, 0xc9];

/// The shell's font family. It ships in every Cirrus image (Debian's fonts-dejavu-core) and
/// `cargo xtask deps` installs it on build machines, so tests draw the same glyphs as the device.
/// Without it, text falls back to any sans-serif font found.
pub const SHELL_FONT_FAMILY: &str = "DejaVu Sans";

/// Converts a theme colour into a tiny-skia colour.
pub fn color([r, g, b]: [u8; 3]) -> tiny_skia::Color {
    tiny_skia::Color::from_rgba8(r, g, b, 0xff)
}

/// Launcher grid: columns on a phone in portrait.
pub const LAUNCHER_COLUMNS: u32 = 4;
/// Launcher icon size.
pub const LAUNCHER_ICON_DP: f32 = 52.0;
/// Launcher label text size.
pub const LAUNCHER_LABEL_DP: f32 = 12.0;
/// Height of one launcher cell (icon, gap, label, gap).
pub const LAUNCHER_CELL_HEIGHT_DP: f32 = 96.0;
/// Space between the status bar and the first row.
pub const LAUNCHER_TOP_DP: f32 = 24.0;
/// Space kept at the bottom for the page dots and the home gesture area.
pub const LAUNCHER_BOTTOM_DP: f32 = 48.0;
/// Colour of launcher labels (drawn over the wallpaper, with a shadow).
pub const LAUNCHER_LABEL: [u8; 3] = [0xff, 0xff, 0xff];
/// Page dots: the current page and the others.
pub const PAGE_DOT_CURRENT: [u8; 3] = [0xff, 0xff, 0xff];
pub const PAGE_DOT_OTHER: [u8; 3] = [0x9a, 0xb4, 0xcc];

/// Lock screen: dimming of the wallpaper (alpha of black over it), clock and date sizes, hint colour.
pub const LOCK_DIM_ALPHA: u8 = 0x70;
pub const LOCK_CLOCK_DP: f32 = 64.0;
pub const LOCK_DATE_DP: f32 = 16.0;
pub const LOCK_HINT: [u8; 3] = [0xc8, 0xd2, 0xe0];

/// On-screen keyboard: height of one row of keys, the gap between keys, the space above the first
/// row, the strip under the last row (kept for the home gesture) and the key corner radius.
pub const KEYBOARD_ROW_DP: f32 = 50.0;
pub const KEYBOARD_GAP_DP: f32 = 6.0;
pub const KEYBOARD_TOP_DP: f32 = 6.0;
pub const KEYBOARD_BOTTOM_DP: f32 = 24.0;
pub const KEYBOARD_KEY_RADIUS_DP: f32 = 6.0;
/// Size of the labels on character keys and on the other keys.
pub const KEYBOARD_LABEL_DP: f32 = 20.0;
pub const KEYBOARD_SMALL_LABEL_DP: f32 = 15.0;
/// On-screen keyboard colours: the panel, character keys, function keys (shift, backspace, …),
/// a key under the finger, a latched shift, and the labels.
pub const KEYBOARD_BG: [u8; 3] = [0x15, 0x1a, 0x26];
pub const KEYBOARD_KEY: [u8; 3] = [0x3b, 0x44, 0x58];
pub const KEYBOARD_FUNCTION_KEY: [u8; 3] = [0x27, 0x2e, 0x3d];
pub const KEYBOARD_KEY_PRESSED: [u8; 3] = [0x5b, 0x8d, 0xef];
pub const KEYBOARD_SHIFT_ON: [u8; 3] = [0xd8, 0xe2, 0xf5];
pub const KEYBOARD_LABEL: [u8; 3] = [0xf2, 0xf5, 0xfa];
