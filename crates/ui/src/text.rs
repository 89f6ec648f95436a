//! Text: shaping and drawing single lines into a pixmap.
//!
//! [`TextRenderer`] owns the font database and the glyph cache; create one per process (loading the
//! font database scans the font directories) and keep it.

use std::path::Path;

use cosmic_text::{Attrs, Buffer, Color, Family, FontSystem, Metrics, Shaping, SwashCache, Weight};
use tiny_skia::{Pixmap, PremultipliedColorU8};

use crate::IRect;
use crate::theme::SHELL_FONT_FAMILY;

/// Directories searched for fonts when none are given: Debian's and the user's.
pub const SYSTEM_FONT_DIRS: &[&str] = &["/usr/share/fonts", "/usr/local/share/fonts"];

/// Horizontal placement of a line inside its box.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HAlign {
    Left,
    Center,
    Right,
}

/// How a line of text looks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TextStyle {
    /// Font size in physical pixels.
    pub size_px: f32,
    pub color: [u8; 3],
    pub bold: bool,
}

/// Shapes and draws text with the fonts found on this system.
pub struct TextRenderer {
    fonts: FontSystem,
    glyphs: SwashCache,
}

impl std::fmt::Debug for TextRenderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextRenderer")
            .field("faces", &self.fonts.db().len())
            .finish()
    }
}

impl TextRenderer {
    /// Loads the fonts under [`SYSTEM_FONT_DIRS`].
    pub fn new() -> Self {
        Self::with_font_dirs(SYSTEM_FONT_DIRS.iter().map(Path::new))
    }

    /// Loads the fonts under the given directories (recursively). Missing directories are skipped.
    pub fn with_font_dirs<'a>(dirs: impl IntoIterator<Item = &'a Path>) -> Self {
        let mut db = cosmic_text::fontdb::Database::new();
        for dir in dirs {
            if dir.is_dir() {
                db.load_fonts_dir(dir);
            }
        }
        db.set_sans_serif_family(SHELL_FONT_FAMILY);
        let face_count = db.len();
        if face_count == 0 {
            tracing::warn!("no fonts found: text will not be drawn (install fonts-dejavu-core)");
        } else {
            tracing::debug!(faces = face_count, "font database loaded");
        }
        let fonts = FontSystem::new_with_locale_and_db("en-US".to_owned(), db);
        Self {
            fonts,
            glyphs: SwashCache::new(),
        }
    }

    /// Number of font faces loaded; zero means no text can be drawn.
    pub fn face_count(&self) -> usize {
        self.fonts.db().len()
    }

    fn layout(&mut self, text: &str, style: &TextStyle) -> Buffer {
        let line_height = (style.size_px * 1.25).ceil();
        let mut buffer = Buffer::new(&mut self.fonts, Metrics::new(style.size_px, line_height));
        buffer.set_size(None, None);
        let weight = if style.bold {
            Weight::BOLD
        } else {
            Weight::NORMAL
        };
        let has_shell_font = self
            .fonts
            .db()
            .faces()
            .any(|f| f.families.iter().any(|(n, _)| n == SHELL_FONT_FAMILY));
        let family = if has_shell_font {
            Family::Name(SHELL_FONT_FAMILY)
        } else {
            Family::SansSerif
        };
        buffer.set_text(
            text,
            &Attrs::new().family(family).weight(weight),
            Shaping::Advanced,
            None,
        );
        buffer.shape_until_scroll(&mut self.fonts, false);
        buffer
    }

    /// Width and height (line height) of `text` in pixels.
    pub fn measure(&mut self, text: &str, style: &TextStyle) -> (f32, f32) {
        let buffer = self.layout(text, style);
        let mut width: f32 = 0.0;
        let mut height: f32 = 0.0;
        for run in buffer.layout_runs() {
            width = width.max(run.line_w);
            height += run.line_height;
        }
        (width, height)
    }

    /// Draws one line of `text` inside `area`, vertically centred, placed horizontally by `align`.
    /// Text that does not fit is clipped to `area`. Returns the box the line occupies.
    pub fn draw_line(
        &mut self,
        pixmap: &mut Pixmap,
        text: &str,
        style: &TextStyle,
        area: IRect,
        align: HAlign,
    ) -> IRect {
        let mut buffer = self.layout(text, style);
        let (width, height) = {
            let mut w: f32 = 0.0;
            let mut h: f32 = 0.0;
            for run in buffer.layout_runs() {
                w = w.max(run.line_w);
                h += run.line_height;
            }
            (w, h)
        };
        let x0 = match align {
            HAlign::Left => area.x as f32,
            HAlign::Center => area.x as f32 + (area.width as f32 - width) / 2.0,
            HAlign::Right => area.right() as f32 - width,
        }
        .round() as i32;
        let y0 = (area.y as f32 + (area.height as f32 - height) / 2.0).round() as i32;
        let [r, g, b] = style.color;
        let pw = pixmap.width() as i32;
        let ph = pixmap.height() as i32;
        let pixels = pixmap.pixels_mut();
        buffer.draw(
            &mut self.fonts,
            &mut self.glyphs,
            Color::rgb(r, g, b),
            |gx, gy, gw, gh, color| {
                for dy in 0..gh as i32 {
                    for dx in 0..gw as i32 {
                        let x = x0 + gx + dx;
                        let y = y0 + gy + dy;
                        if x < 0 || y < 0 || x >= pw || y >= ph || !area.contains(x, y) {
                            continue;
                        }
                        let idx = (y * pw + x) as usize;
                        if let Some(dst) = pixels.get_mut(idx) {
                            *dst = blend(*dst, color);
                        }
                    }
                }
            },
        );
        IRect::new(x0, y0, width.ceil() as u32, height.ceil() as u32)
    }
}

impl Default for TextRenderer {
    fn default() -> Self {
        Self::new()
    }
}

/// Source-over blend of a straight-alpha colour onto a premultiplied pixel.
fn blend(dst: PremultipliedColorU8, src: Color) -> PremultipliedColorU8 {
    let a = src.a() as u32;
    if a == 0 {
        return dst;
    }
    let inv = 255 - a;
    let mix = |s: u8, d: u8| -> u8 { ((s as u32 * a + d as u32 * inv + 127) / 255) as u8 };
    let out_a = (a + (dst.alpha() as u32 * inv + 127) / 255).min(255) as u8;
    let r = mix(src.r(), dst.red()).min(out_a);
    let g = mix(src.g(), dst.green()).min(out_a);
    let b = mix(src.b(), dst.blue()).min(out_a);
    PremultipliedColorU8::from_rgba(r, g, b, out_a).unwrap_or(dst)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn style() -> TextStyle {
        TextStyle {
            size_px: 30.0,
            color: [255, 255, 255],
            bold: false,
        }
    }

    #[test]
    fn draws_text_pixels_inside_the_area_only() {
        let mut text = TextRenderer::new();
        assert!(
            text.face_count() > 0,
            "no fonts on this machine: run `cargo xtask deps` (fonts-dejavu-core)"
        );
        let mut pixmap = Pixmap::new(200, 60).unwrap_or_else(|| panic!("pixmap"));
        pixmap.fill(tiny_skia::Color::BLACK);
        let area = IRect::new(10, 10, 120, 40);
        let used = text.draw_line(&mut pixmap, "12:34", &style(), area, HAlign::Left);
        assert!(
            used.width > 30 && used.width < 120,
            "unexpected text width {used:?}"
        );
        let mut lit_inside = 0;
        for (i, px) in pixmap.pixels().iter().enumerate() {
            let (x, y) = ((i % 200) as i32, (i / 200) as i32);
            if px.red() > 128 {
                assert!(
                    area.contains(x, y),
                    "text pixel at {x},{y} outside {area:?}"
                );
                lit_inside += 1;
            }
        }
        assert!(lit_inside > 100, "only {lit_inside} text pixels drawn");
    }

    #[test]
    fn measure_grows_with_text() {
        let mut text = TextRenderer::new();
        let (short, h) = text.measure("1", &style());
        let (long, _) = text.measure("11111", &style());
        assert!(h >= 30.0);
        assert!(long > short * 3.0, "{long} vs {short}");
    }

    #[test]
    fn blend_is_source_over() {
        let dst = PremultipliedColorU8::from_rgba(0, 0, 0, 255).unwrap_or_else(|| panic!("colour"));
        let out = blend(dst, Color::rgba(255, 255, 255, 128));
        assert!((127..=129).contains(&out.red()), "{out:?}");
        assert_eq!(out.alpha(), 255);
        let opaque = blend(dst, Color::rgba(10, 20, 30, 255));
        assert_eq!((opaque.red(), opaque.green(), opaque.blue()), (10, 20, 30));
    }
}
