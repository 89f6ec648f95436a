//! The lock screen: the wallpaper dimmed, a large clock and the date, and the unlock hint.

use tiny_skia::{Paint, Pixmap, Rect, Transform};

use crate::IRect;
use crate::shell::{ShellLayout, draw_wallpaper};
use crate::text::{HAlign, TextRenderer, TextStyle};
use crate::theme;

/// Where the lock screen's pieces are (physical pixels, screen coordinates).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LockLayout {
    /// The area the lock screen covers (everything below the status bar).
    pub area: IRect,
    pub clock: IRect,
    pub date: IRect,
    pub hint: IRect,
}

impl LockLayout {
    pub fn new(shell: &ShellLayout) -> Self {
        let s = shell.scale;
        let dp = |v: f32| (v * s).round() as i32;
        let area = shell.home;
        let clock = IRect::new(area.x, area.y + dp(96.0), area.width, dp(96.0) as u32);
        let date = IRect::new(area.x, clock.bottom(), area.width, dp(32.0) as u32);
        let hint = IRect::new(
            area.x,
            area.bottom() - dp(72.0),
            area.width,
            dp(28.0) as u32,
        );
        Self {
            area,
            clock,
            date,
            hint,
        }
    }
}

/// Draws the lock screen into `pixmap`, which covers `layout.area`.
pub fn draw_lock_screen(
    pixmap: &mut Pixmap,
    layout: &LockLayout,
    scale: f32,
    clock: &str,
    date: &str,
    text: &mut TextRenderer,
) {
    draw_wallpaper(pixmap);
    if let Some(rect) = Rect::from_xywh(0.0, 0.0, pixmap.width() as f32, pixmap.height() as f32) {
        let mut paint = Paint::default();
        paint.set_color_rgba8(0, 0, 0, theme::LOCK_DIM_ALPHA);
        pixmap.fill_rect(rect, &paint, Transform::identity(), None);
    }
    let shift = |r: IRect| IRect::new(r.x - layout.area.x, r.y - layout.area.y, r.width, r.height);
    let big = TextStyle {
        size_px: theme::LOCK_CLOCK_DP * scale,
        color: theme::STATUS_BAR_TEXT,
        bold: false,
    };
    let small = TextStyle {
        size_px: theme::LOCK_DATE_DP * scale,
        color: theme::STATUS_BAR_TEXT,
        bold: false,
    };
    let hint = TextStyle {
        size_px: theme::LAUNCHER_LABEL_DP * scale,
        color: theme::LOCK_HINT,
        bold: false,
    };
    text.draw_line(pixmap, clock, &big, shift(layout.clock), HAlign::Center);
    text.draw_line(pixmap, date, &small, shift(layout.date), HAlign::Center);
    text.draw_line(
        pixmap,
        "Swipe up to unlock",
        &hint,
        shift(layout.hint),
        HAlign::Center,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_screen_draws_clock_date_and_hint_in_their_places() {
        let shell = ShellLayout::new(720, 1440);
        let layout = LockLayout::new(&shell);
        let mut pixmap =
            Pixmap::new(layout.area.width, layout.area.height).unwrap_or_else(|| panic!("pixmap"));
        let mut text = TextRenderer::new();
        draw_lock_screen(
            &mut pixmap,
            &layout,
            shell.scale,
            "09:41",
            "Saturday, 21 November",
            &mut text,
        );
        let bright = |r: IRect| {
            let mut n = 0;
            for y in (r.y - layout.area.y).max(0) as u32
                ..((r.bottom() - layout.area.y).max(0) as u32).min(pixmap.height())
            {
                for x in r.x.max(0) as u32..(r.right().max(0) as u32).min(pixmap.width()) {
                    if pixmap
                        .pixel(x, y)
                        .is_some_and(|p| p.red() > 200 && p.green() > 200)
                    {
                        n += 1;
                    }
                }
            }
            n
        };
        assert!(bright(layout.clock) > 2000, "big clock missing");
        assert!(bright(layout.date) > 200, "date missing");
        let between = IRect::new(
            layout.area.x,
            layout.date.bottom() + 40,
            layout.area.width,
            200,
        );
        assert_eq!(
            bright(between),
            0,
            "something drawn where nothing should be"
        );
    }
}
