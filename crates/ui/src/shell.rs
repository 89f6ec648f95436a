//! The phone shell's pieces: the layout of the screen, the wallpaper and the status bar.
//!
//! The compositor composes these with the app windows; the boot test renders
//! [`render_home_reference`] to know what the emulator's screen must show.

use tiny_skia::{Color, GradientStop, LinearGradient, Paint, Pixmap, Point, Rect, SpreadMode, Transform};

use crate::IRect;
use crate::text::{HAlign, TextRenderer, TextStyle};
use crate::theme;

/// Where the shell's pieces go on a screen of a given size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ShellLayout {
    pub width: u32,
    pub height: u32,
    /// Physical pixels per dp.
    pub scale: f32,
    /// The status bar across the top.
    pub status_bar: IRect,
    /// The part of the status bar the clock is drawn in.
    pub clock: IRect,
    /// Everything below the status bar: the home screen, or the focused app's window.
    pub home: IRect,
}

impl ShellLayout {
    pub fn new(width: u32, height: u32) -> Self {
        let scale = (width as f32 / theme::REFERENCE_WIDTH_DP).clamp(1.0, 4.0);
        let dp = |v: f32| (v * scale).round() as u32;
        let bar_height = dp(theme::STATUS_BAR_HEIGHT_DP).min(height);
        let status_bar = IRect::new(0, 0, width, bar_height);
        let padding = dp(theme::STATUS_BAR_PADDING_DP).min(width / 4);
        let clock = IRect::new(padding as i32, 0, dp(theme::CLOCK_WIDTH_DP).min(width.saturating_sub(padding)), bar_height);
        let home = IRect::new(0, bar_height as i32, width, height - bar_height);
        Self { width, height, scale, status_bar, clock, home }
    }

    /// Size of the status bar text in physical pixels.
    pub fn status_text_px(&self) -> f32 {
        theme::STATUS_BAR_TEXT_DP * self.scale
    }
}

/// What the status bar shows.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StatusBarState {
    /// The clock, already formatted (e.g. "09:41").
    pub clock: String,
}

/// Draws the wallpaper over the whole of `pixmap` (a vertical three-stop gradient).
pub fn draw_wallpaper(pixmap: &mut Pixmap) {
    let h = pixmap.height() as f32;
    let stops = vec![
        GradientStop::new(0.0, theme::color(theme::WALLPAPER_TOP)),
        GradientStop::new(0.55, theme::color(theme::WALLPAPER_MIDDLE)),
        GradientStop::new(1.0, theme::color(theme::WALLPAPER_BOTTOM)),
    ];
    match LinearGradient::new(Point::from_xy(0.0, 0.0), Point::from_xy(0.0, h), stops, SpreadMode::Pad, Transform::identity()) {
        Some(shader) => {
            let paint = Paint { shader, anti_alias: false, ..Paint::default() };
            if let Some(rect) = Rect::from_xywh(0.0, 0.0, pixmap.width() as f32, h) {
                pixmap.fill_rect(rect, &paint, Transform::identity(), None);
            }
        }
        // Only a zero-height pixmap has no gradient; fill with the middle colour anyway.
        None => pixmap.fill(theme::color(theme::WALLPAPER_MIDDLE)),
    }
}

/// Draws the status bar into `pixmap`, whose size is the status bar's (`layout.status_bar`).
pub fn draw_status_bar(pixmap: &mut Pixmap, layout: &ShellLayout, state: &StatusBarState, text: &mut TextRenderer) {
    pixmap.fill(theme::color(theme::STATUS_BAR_BG));
    if !state.clock.is_empty() {
        let style = TextStyle { size_px: layout.status_text_px(), color: theme::STATUS_BAR_TEXT, bold: true };
        text.draw_line(pixmap, &state.clock, &style, layout.clock, HAlign::Left);
    }
}

/// The home screen as the compositor draws it before any dynamic content (no clock text): the
/// wallpaper under the home area and the empty status bar. Opaque.
pub fn render_home_reference(layout: &ShellLayout) -> Pixmap {
    let mut screen = match Pixmap::new(layout.width.max(1), layout.height.max(1)) {
        Some(p) => p,
        None => return unreachable_pixmap(),
    };
    if let Some(mut wallpaper) = Pixmap::new(layout.home.width.max(1), layout.home.height.max(1)) {
        draw_wallpaper(&mut wallpaper);
        screen.draw_pixmap(layout.home.x, layout.home.y, wallpaper.as_ref(), &Default::default(), Transform::identity(), None);
    }
    if let Some(bar) = Rect::from_xywh(0.0, 0.0, layout.status_bar.width as f32, layout.status_bar.height as f32) {
        let mut paint = Paint::default();
        paint.set_color(theme::color(theme::STATUS_BAR_BG));
        screen.fill_rect(bar, &paint, Transform::identity(), None);
    }
    screen
}

fn unreachable_pixmap() -> Pixmap {
    // A 1x1 pixmap always allocates; keep the signature total without panicking paths elsewhere.
    #[allow(clippy::expect_used)]
    Pixmap::new(1, 1).expect("1x1 pixmap")
}

/// Opaque black, for callers that clear before composing.
pub const BLACK: Color = Color::BLACK;

#[cfg(test)]
mod tests {
    use super::*;

    fn px(p: &Pixmap, x: u32, y: u32) -> [u8; 3] {
        let c = p.pixel(x, y).unwrap_or_else(|| panic!("pixel {x},{y} out of range")).demultiply();
        [c.red(), c.green(), c.blue()]
    }

    fn close(a: [u8; 3], b: [u8; 3], tol: i32) -> bool {
        a.iter().zip(b).all(|(x, y)| (*x as i32 - y as i32).abs() <= tol)
    }

    #[test]
    fn layout_of_a_720x1440_phone() {
        let l = ShellLayout::new(720, 1440);
        assert_eq!(l.scale, 2.0);
        assert_eq!(l.status_bar, IRect::new(0, 0, 720, 56));
        assert_eq!(l.home, IRect::new(0, 56, 720, 1384));
        assert_eq!(l.clock.x, 32);
        assert!(l.clock.right() < 720 / 2);
    }

    #[test]
    fn layout_never_exceeds_tiny_screens() {
        let l = ShellLayout::new(10, 5);
        assert!(l.status_bar.height <= 5);
        assert_eq!(l.home.bottom(), 5);
    }

    #[test]
    fn reference_has_bar_then_gradient() {
        let l = ShellLayout::new(360, 720);
        let p = render_home_reference(&l);
        assert!(close(px(&p, 200, 5), theme::STATUS_BAR_BG, 2));
        let top = px(&p, 100, l.home.y as u32 + 1);
        let bottom = px(&p, 100, 719);
        assert!(close(top, theme::WALLPAPER_TOP, 6), "{top:?}");
        assert!(close(bottom, theme::WALLPAPER_BOTTOM, 6), "{bottom:?}");
    }

    #[test]
    fn status_bar_draws_the_clock_in_its_rect() {
        let l = ShellLayout::new(720, 1440);
        let mut bar = Pixmap::new(l.status_bar.width, l.status_bar.height).unwrap_or_else(|| panic!("pixmap"));
        let mut text = TextRenderer::new();
        draw_status_bar(&mut bar, &l, &StatusBarState { clock: "09:41".into() }, &mut text);
        let mut lit = 0;
        for y in 0..bar.height() {
            for x in 0..bar.width() {
                if close(px(&bar, x, y), theme::STATUS_BAR_TEXT, 24) {
                    assert!(l.clock.contains(x as i32, y as i32), "text outside the clock rect at {x},{y}");
                    lit += 1;
                }
            }
        }
        assert!(lit > 40, "clock not drawn ({lit} pixels)");
    }
}
