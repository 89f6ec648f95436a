//! cirrus-ui: 2D drawing and text for Cirrus.
//!
//! The compositor's phone shell draws with it today; the wasm surface and the Android view shim will
//! later. Drawing is CPU-only (tiny-skia) so the same pixels come out on a phone, in QEMU's
//! virtio-gpu and in headless tests; text is shaped and rasterised by cosmic-text (HarfBuzz-style
//! shaping through rustybuzz, glyphs through swash) from the fonts installed under `/usr/share/fonts`.
//!
//! - [`theme`]: colours and sizes of the shell, in density-independent pixels (dp).
//! - [`text`]: [`text::TextRenderer`], shaping and drawing a line of text into a pixmap.
//! - [`shape`]: shared path shapes (rounded rectangles).
//! - [`shell`]: the phone shell's pieces (status bar, wallpaper) and their layout.

pub mod launcher;
pub mod lock;
pub mod shape;
pub mod shell;
pub mod text;
pub mod theme;

pub use tiny_skia;

/// An integer rectangle in physical pixels, `x`/`y` being the top-left corner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct IRect {
    pub x: i32,
    pub y: i32,
    pub width: u32,
    pub height: u32,
}

impl IRect {
    pub const fn new(x: i32, y: i32, width: u32, height: u32) -> Self {
        Self {
            x,
            y,
            width,
            height,
        }
    }

    /// Whether the pixel at (`px`, `py`) lies inside.
    pub fn contains(&self, px: i32, py: i32) -> bool {
        px >= self.x
            && py >= self.y
            && (px as i64) < self.x as i64 + self.width as i64
            && (py as i64) < self.y as i64 + self.height as i64
    }

    /// The x coordinate one past the right edge.
    pub fn right(&self) -> i32 {
        self.x.saturating_add(self.width as i32)
    }

    /// The y coordinate one past the bottom edge.
    pub fn bottom(&self) -> i32 {
        self.y.saturating_add(self.height as i32)
    }

    pub fn is_empty(&self) -> bool {
        self.width == 0 || self.height == 0
    }
}

/// Converts a pixmap (premultiplied RGBA) into straight-alpha RGBA bytes, e.g. for PNG encoding.
pub fn pixmap_to_rgba(pixmap: &tiny_skia::Pixmap) -> Vec<u8> {
    let mut out = Vec::with_capacity(pixmap.data().len());
    for px in pixmap.pixels() {
        let c = px.demultiply();
        out.extend_from_slice(&[c.red(), c.green(), c.blue(), c.alpha()]);
    }
    out
}

/// Converts a pixmap into little-endian ARGB8888 words (bytes B, G, R, A): the layout of
/// `WL_SHM_FORMAT_ARGB8888` / `DRM_FORMAT_ARGB8888` buffers. Alpha stays premultiplied, as Wayland
/// and KMS expect.
pub fn pixmap_to_argb8888(pixmap: &tiny_skia::Pixmap) -> Vec<u8> {
    let mut out = Vec::with_capacity(pixmap.data().len());
    for px in pixmap.pixels() {
        out.extend_from_slice(&[px.blue(), px.green(), px.red(), px.alpha()]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rect_contains_edges() {
        let r = IRect::new(10, 20, 5, 5);
        assert!(r.contains(10, 20));
        assert!(r.contains(14, 24));
        assert!(!r.contains(15, 24));
        assert!(!r.contains(14, 25));
        assert!(!r.contains(9, 20));
        assert_eq!((r.right(), r.bottom()), (15, 25));
    }

    #[test]
    fn argb_conversion_orders_bytes_for_wayland() {
        let mut pixmap = tiny_skia::Pixmap::new(1, 1).unwrap_or_else(|| panic!("1x1 pixmap"));
        pixmap.fill(tiny_skia::Color::from_rgba8(0x11, 0x22, 0x33, 0xff));
        assert_eq!(pixmap_to_argb8888(&pixmap), vec![0x33, 0x22, 0x11, 0xff]);
        assert_eq!(pixmap_to_rgba(&pixmap), vec![0x11, 0x22, 0x33, 0xff]);
    }
}
