//! The phone shell's pieces: the layout of the screen, the wallpaper and the status bar.
//!
//! The compositor composes these with the app windows; the boot test renders
//! [`render_home_reference`] to know what the emulator's screen must show.

use tiny_skia::{
    Color, GradientStop, LinearGradient, Paint, Pixmap, Point, Rect, SpreadMode, Transform,
};

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
    /// The part of the status bar the system indicators (network, battery) are drawn in.
    pub indicators: IRect,
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
        let clock = IRect::new(
            padding as i32,
            0,
            dp(theme::CLOCK_WIDTH_DP).min(width.saturating_sub(padding)),
            bar_height,
        );
        let home = IRect::new(0, bar_height as i32, width, height - bar_height);
        let indicators_width =
            dp(theme::INDICATORS_WIDTH_DP).min(width.saturating_sub(padding * 2 + clock.width));
        let indicators = IRect::new(
            width.saturating_sub(padding + indicators_width) as i32,
            0,
            indicators_width,
            bar_height,
        );
        Self {
            width,
            height,
            scale,
            status_bar,
            clock,
            indicators,
            home,
        }
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
    /// The battery, if the device has one.
    pub battery: Option<Battery>,
    /// The network connection in use, if any.
    pub network: Option<Network>,
}

/// Battery state for the status bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Battery {
    /// Charge, 0–100.
    pub percent: u8,
    pub charging: bool,
}

/// Kind of network connection for the status bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    Wifi,
    Wired,
    Cellular,
}

fn fill_rect(pixmap: &mut Pixmap, x: f32, y: f32, w: f32, h: f32, rgb: [u8; 3]) {
    if let Some(rect) = Rect::from_xywh(x, y, w, h) {
        let mut paint = Paint::default();
        paint.set_color(theme::color(rgb));
        paint.anti_alias = true;
        pixmap.fill_rect(rect, &paint, Transform::identity(), None);
    }
}

/// Draws a battery glyph (outline, nub, fill to the charge; green while charging, red when low)
/// with the percentage to its left, right-aligned in `area`. Returns the x where it starts.
fn draw_battery(
    pixmap: &mut Pixmap,
    battery: Battery,
    area: IRect,
    scale: f32,
    text: &mut TextRenderer,
) -> i32 {
    let (w, h) = (22.0 * scale, 11.0 * scale);
    let x = area.right() as f32 - w - 2.0 * scale;
    let y = area.y as f32 + (area.height as f32 - h) / 2.0;
    let line = (1.2 * scale).max(1.0);
    let c = theme::STATUS_BAR_TEXT;
    fill_rect(pixmap, x, y, w, line, c);
    fill_rect(pixmap, x, y + h - line, w, line, c);
    fill_rect(pixmap, x, y, line, h, c);
    fill_rect(pixmap, x + w - line, y, line, h, c);
    fill_rect(pixmap, x + w, y + h * 0.3, 2.0 * scale, h * 0.4, c);
    let inner = w - 4.0 * line;
    let level = inner * battery.percent.min(100) as f32 / 100.0;
    let fill = if battery.charging {
        theme::BATTERY_CHARGING
    } else if battery.percent <= 15 {
        theme::BATTERY_LOW
    } else {
        c
    };
    fill_rect(
        pixmap,
        x + 2.0 * line,
        y + 2.0 * line,
        level,
        h - 4.0 * line,
        fill,
    );
    let label = format!("{}%", battery.percent.min(100));
    let style = TextStyle {
        size_px: theme::STATUS_BAR_TEXT_DP * 0.85 * scale,
        color: c,
        bold: false,
    };
    let (tw, _) = text.measure(&label, &style);
    let tx = x - tw - 4.0 * scale;
    text.draw_line(
        pixmap,
        &label,
        &style,
        IRect::new(tx.floor() as i32, area.y, tw.ceil() as u32 + 2, area.height),
        HAlign::Left,
    );
    tx.floor() as i32
}

/// Draws a network glyph ending at `right`: Wi-Fi as three bars of a fan, wired as a small
/// socket, cellular as rising bars.
fn draw_network(pixmap: &mut Pixmap, network: Network, area: IRect, right: i32, scale: f32) {
    let c = theme::STATUS_BAR_TEXT;
    let size = 12.0 * scale;
    let x = right as f32 - size - 6.0 * scale;
    let y = area.y as f32 + (area.height as f32 - size) / 2.0;
    match network {
        Network::Cellular | Network::Wifi => {
            let bars = 4;
            let bw = size / (bars as f32 * 1.6);
            for i in 0..bars {
                let bh = size * (i + 1) as f32 / bars as f32;
                fill_rect(pixmap, x + i as f32 * bw * 1.6, y + size - bh, bw, bh, c);
            }
            if network == Network::Wifi {
                // Wi-Fi: a dot above the bars tells it apart from cellular.
                fill_rect(pixmap, x, y, bw, bw, c);
            }
        }
        Network::Wired => {
            fill_rect(pixmap, x, y + size * 0.35, size, size * 0.65, c);
            fill_rect(pixmap, x + size * 0.3, y, size * 0.4, size * 0.4, c);
        }
    }
}

/// Draws the wallpaper over the whole of `pixmap` (a vertical three-stop gradient).
pub fn draw_wallpaper(pixmap: &mut Pixmap) {
    let h = pixmap.height() as f32;
    let stops = vec![
        GradientStop::new(0.0, theme::color(theme::WALLPAPER_TOP)),
        GradientStop::new(0.55, theme::color(theme::WALLPAPER_MIDDLE)),
        GradientStop::new(1.0, theme::color(theme::WALLPAPER_BOTTOM)),
    ];
    match LinearGradient::new(
        Point::from_xy(0.0, 0.0),
        Point::from_xy(0.0, h),
        stops,
        SpreadMode::Pad,
        Transform::identity(),
    ) {
        Some(shader) => {
            let paint = Paint {
                shader,
                anti_alias: false,
                ..Paint::default()
            };
            if let Some(rect) = Rect::from_xywh(0.0, 0.0, pixmap.width() as f32, h) {
                pixmap.fill_rect(rect, &paint, Transform::identity(), None);
            }
        }
        // Only a zero-height pixmap has no gradient; fill with the middle colour anyway.
        None => pixmap.fill(theme::color(theme::WALLPAPER_MIDDLE)),
    }
}

/// Draws the status bar into `pixmap`, whose size is the status bar's (`layout.status_bar`).
pub fn draw_status_bar(
    pixmap: &mut Pixmap,
    layout: &ShellLayout,
    state: &StatusBarState,
    text: &mut TextRenderer,
) {
    pixmap.fill(theme::color(theme::STATUS_BAR_BG));
    if !state.clock.is_empty() {
        let style = TextStyle {
            size_px: layout.status_text_px(),
            color: theme::STATUS_BAR_TEXT,
            bold: true,
        };
        text.draw_line(pixmap, &state.clock, &style, layout.clock, HAlign::Left);
    }
    let mut right = layout.indicators.right();
    if let Some(battery) = state.battery {
        right = draw_battery(pixmap, battery, layout.indicators, layout.scale, text);
    }
    if let Some(network) = state.network {
        draw_network(pixmap, network, layout.indicators, right, layout.scale);
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
        screen.draw_pixmap(
            layout.home.x,
            layout.home.y,
            wallpaper.as_ref(),
            &Default::default(),
            Transform::identity(),
            None,
        );
    }
    if let Some(bar) = Rect::from_xywh(
        0.0,
        0.0,
        layout.status_bar.width as f32,
        layout.status_bar.height as f32,
    ) {
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
        let c = p
            .pixel(x, y)
            .unwrap_or_else(|| panic!("pixel {x},{y} out of range"))
            .demultiply();
        [c.red(), c.green(), c.blue()]
    }

    fn close(a: [u8; 3], b: [u8; 3], tol: i32) -> bool {
        a.iter()
            .zip(b)
            .all(|(x, y)| (*x as i32 - y as i32).abs() <= tol)
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
    fn indicators_are_drawn_right_of_the_clock_and_only_when_known() {
        let l = ShellLayout::new(720, 1440);
        assert!(l.indicators.x > l.clock.right() && l.indicators.right() <= 720);
        let mut text = TextRenderer::new();
        let lit_in = |state: &StatusBarState, text: &mut TextRenderer| {
            let mut bar = Pixmap::new(l.status_bar.width, l.status_bar.height)
                .unwrap_or_else(|| panic!("pixmap"));
            draw_status_bar(&mut bar, &l, state, text);
            let mut lit = 0;
            for y in 0..bar.height() {
                for x in l.indicators.x as u32..l.indicators.right() as u32 {
                    if !close(px(&bar, x, y), theme::STATUS_BAR_BG, 16) {
                        lit += 1;
                    }
                }
            }
            lit
        };
        assert_eq!(
            lit_in(&StatusBarState::default(), &mut text),
            0,
            "indicators drawn without a battery or network"
        );
        let battery = StatusBarState {
            battery: Some(Battery {
                percent: 80,
                charging: false,
            }),
            ..Default::default()
        };
        let both = StatusBarState {
            network: Some(Network::Wifi),
            ..battery.clone()
        };
        let b = lit_in(&battery, &mut text);
        assert!(b > 150, "battery not drawn ({b} pixels)");
        assert!(lit_in(&both, &mut text) > b + 20, "network glyph not drawn");
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
        let mut bar = Pixmap::new(l.status_bar.width, l.status_bar.height)
            .unwrap_or_else(|| panic!("pixmap"));
        let mut text = TextRenderer::new();
        draw_status_bar(
            &mut bar,
            &l,
            &StatusBarState {
                clock: "09:41".into(),
                ..Default::default()
            },
            &mut text,
        );
        let mut lit = 0;
        for y in 0..bar.height() {
            for x in 0..bar.width() {
                if close(px(&bar, x, y), theme::STATUS_BAR_TEXT, 24) {
                    assert!(
                        l.clock.contains(x as i32, y as i32),
                        "text outside the clock rect at {x},{y}"
                    );
                    lit += 1;
                }
            }
        }
        assert!(lit > 40, "clock not drawn ({lit} pixels)");
    }
}
