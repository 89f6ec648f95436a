//! The home-screen launcher: a paged grid of app icons with labels.
//!
//! [`LauncherLayout`] says where each cell is (screen coordinates, for hit-testing taps) and
//! [`draw_launcher`] draws one page into a transparent pixmap covering the home area.

use tiny_skia::{FillRule, Paint, PathBuilder, Pixmap, PixmapPaint, Rect, Transform};

use crate::IRect;
use crate::shape::rounded_rect;
use crate::shell::ShellLayout;
use crate::text::{HAlign, TextRenderer, TextStyle};
use crate::theme;

/// One app on the launcher.
#[derive(Debug, Clone)]
pub struct LauncherItem {
    pub label: String,
    /// The app's icon at any size (scaled to fit); `None` draws a lettered tile.
    pub icon: Option<Pixmap>,
}

/// Where the launcher's cells are on screen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LauncherLayout {
    /// The home area the launcher draws into.
    pub area: IRect,
    pub columns: u32,
    pub rows: u32,
    pub cell_width: u32,
    pub cell_height: u32,
    pub icon_size: u32,
    /// Top-left of the first cell.
    pub grid_x: i32,
    pub grid_y: i32,
    pub scale: f32,
}

impl LauncherLayout {
    pub fn new(shell: &ShellLayout) -> Self {
        let scale = shell.scale;
        let dp = |v: f32| (v * scale).round() as u32;
        let area = shell.home;
        let columns = theme::LAUNCHER_COLUMNS.max(1);
        let cell_width = (area.width / columns).max(1);
        let cell_height = dp(theme::LAUNCHER_CELL_HEIGHT_DP).max(1);
        let usable = area
            .height
            .saturating_sub(dp(theme::LAUNCHER_TOP_DP) + dp(theme::LAUNCHER_BOTTOM_DP));
        let rows = (usable / cell_height).max(1);
        let icon_size = dp(theme::LAUNCHER_ICON_DP)
            .min(cell_width.saturating_sub(dp(8.0)))
            .max(1);
        let grid_x = area.x + ((area.width - cell_width * columns) / 2) as i32;
        let grid_y = area.y + dp(theme::LAUNCHER_TOP_DP) as i32;
        Self {
            area,
            columns,
            rows,
            cell_width,
            cell_height,
            icon_size,
            grid_x,
            grid_y,
            scale,
        }
    }

    /// Apps on one page.
    pub fn per_page(&self) -> usize {
        (self.columns * self.rows) as usize
    }

    /// Pages needed for `count` apps (at least one).
    pub fn pages(&self, count: usize) -> usize {
        count.div_ceil(self.per_page().max(1)).max(1)
    }

    /// The cell of the `slot`-th app of a page.
    pub fn cell(&self, slot: usize) -> IRect {
        let col = (slot as u32) % self.columns;
        let row = (slot as u32) / self.columns;
        IRect::new(
            self.grid_x + (col * self.cell_width) as i32,
            self.grid_y + (row * self.cell_height) as i32,
            self.cell_width,
            self.cell_height,
        )
    }

    /// Where the icon of a cell is drawn.
    pub fn icon_rect(&self, slot: usize) -> IRect {
        let cell = self.cell(slot);
        let top = (4.0 * self.scale).round() as i32;
        IRect::new(
            cell.x + ((cell.width - self.icon_size) / 2) as i32,
            cell.y + top,
            self.icon_size,
            self.icon_size,
        )
    }

    /// Where the label of a cell is drawn.
    pub fn label_rect(&self, slot: usize) -> IRect {
        let cell = self.cell(slot);
        let icon = self.icon_rect(slot);
        let y = icon.bottom() + (6.0 * self.scale).round() as i32;
        IRect::new(
            cell.x + (2.0 * self.scale) as i32,
            y,
            cell.width.saturating_sub((4.0 * self.scale) as u32),
            (theme::LAUNCHER_LABEL_DP * 1.6 * self.scale).round() as u32,
        )
    }

    /// The slot on a page under the screen point (`x`, `y`), if it is an occupied cell's icon or label.
    pub fn hit(&self, x: i32, y: i32, apps_on_page: usize) -> Option<usize> {
        (0..apps_on_page.min(self.per_page())).find(|&slot| {
            let cell = self.cell(slot);
            cell.contains(x, y) && y < self.label_rect(slot).bottom()
        })
    }

    /// Centre of the page dots row.
    fn dots_y(&self) -> f32 {
        self.area.bottom() as f32 - theme::LAUNCHER_BOTTOM_DP * self.scale * 0.5
    }
}

/// A tile for apps without an icon: a rounded square in a colour derived from the label, with the
/// label's first letter.
pub fn lettered_tile(label: &str, size: u32, text: &mut TextRenderer) -> Option<Pixmap> {
    let mut pixmap = Pixmap::new(size.max(1), size.max(1))?;
    let hash = label.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ b as u32).wrapping_mul(0x0100_0193)
    });
    let hue = (hash % 360) as f32;
    let [r, g, b] = hsl_to_rgb(hue, 0.55, 0.45);
    let mut paint = Paint::default();
    paint.set_color_rgba8(r, g, b, 0xff);
    paint.anti_alias = true;
    let path = rounded_rect(
        Rect::from_xywh(0.0, 0.0, size as f32, size as f32)?,
        size as f32 * 0.22,
    )?;
    pixmap.fill_path(
        &path,
        &paint,
        FillRule::Winding,
        Transform::identity(),
        None,
    );
    let letter: String = label
        .chars()
        .find(|c| c.is_alphanumeric())
        .map(|c| c.to_uppercase().collect())
        .unwrap_or_else(|| "?".into());
    let style = TextStyle {
        size_px: size as f32 * 0.5,
        color: [0xff, 0xff, 0xff],
        bold: true,
    };
    text.draw_line(
        &mut pixmap,
        &letter,
        &style,
        IRect::new(0, 0, size, size),
        HAlign::Center,
    );
    Some(pixmap)
}

fn hsl_to_rgb(h: f32, s: f32, l: f32) -> [u8; 3] {
    let c = (1.0 - (2.0 * l - 1.0).abs()) * s;
    let hp = h / 60.0;
    let x = c * (1.0 - (hp % 2.0 - 1.0).abs());
    let (r, g, b) = match hp as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = l - c / 2.0;
    [
        ((r + m) * 255.0).round() as u8,
        ((g + m) * 255.0).round() as u8,
        ((b + m) * 255.0).round() as u8,
    ]
}

/// Draws page `page` of the launcher into `pixmap`, which covers `layout.area` (so screen point
/// (x, y) is pixmap point (x - area.x, y - area.y)). The pixmap should start transparent.
pub fn draw_launcher(
    pixmap: &mut Pixmap,
    layout: &LauncherLayout,
    items: &[LauncherItem],
    page: usize,
    text: &mut TextRenderer,
) {
    let per_page = layout.per_page();
    let pages = layout.pages(items.len());
    let page = page.min(pages - 1);
    let dx = -layout.area.x;
    let dy = -layout.area.y;
    let label_style = TextStyle {
        size_px: theme::LAUNCHER_LABEL_DP * layout.scale,
        color: theme::LAUNCHER_LABEL,
        bold: false,
    };
    let shadow_style = TextStyle {
        color: [0x05, 0x0a, 0x14],
        ..label_style
    };
    let shift =
        |r: IRect, ox: i32, oy: i32| IRect::new(r.x + dx + ox, r.y + dy + oy, r.width, r.height);
    for (slot, item) in items
        .iter()
        .skip(page * per_page)
        .take(per_page)
        .enumerate()
    {
        let icon_rect = layout.icon_rect(slot);
        let icon = match &item.icon {
            Some(icon) => Some(icon.clone()),
            None => lettered_tile(&item.label, layout.icon_size, text),
        };
        if let Some(icon) = icon {
            let sx = icon_rect.width as f32 / icon.width().max(1) as f32;
            let sy = icon_rect.height as f32 / icon.height().max(1) as f32;
            let s = sx.min(sy);
            let ox = (icon_rect.x + dx) as f32
                + (icon_rect.width as f32 - icon.width() as f32 * s) / 2.0;
            let oy = (icon_rect.y + dy) as f32
                + (icon_rect.height as f32 - icon.height() as f32 * s) / 2.0;
            let paint = PixmapPaint {
                quality: tiny_skia::FilterQuality::Bicubic,
                ..PixmapPaint::default()
            };
            pixmap.draw_pixmap(
                0,
                0,
                icon.as_ref(),
                &paint,
                Transform::from_row(s, 0.0, 0.0, s, ox, oy),
                None,
            );
        }
        let label_rect = layout.label_rect(slot);
        let shadow = (layout.scale).round().max(1.0) as i32;
        text.draw_line(
            pixmap,
            &item.label,
            &shadow_style,
            shift(label_rect, shadow, shadow),
            HAlign::Center,
        );
        text.draw_line(
            pixmap,
            &item.label,
            &label_style,
            shift(label_rect, 0, 0),
            HAlign::Center,
        );
    }
    if pages > 1 {
        let radius = 3.5 * layout.scale;
        let gap = 14.0 * layout.scale;
        let total = gap * (pages as f32 - 1.0);
        let cx0 = (layout.area.x + dx) as f32 + layout.area.width as f32 / 2.0 - total / 2.0;
        let cy = layout.dots_y() + dy as f32;
        for i in 0..pages {
            let mut paint = Paint::default();
            paint.anti_alias = true;
            let [r, g, b] = if i == page {
                theme::PAGE_DOT_CURRENT
            } else {
                theme::PAGE_DOT_OTHER
            };
            paint.set_color_rgba8(r, g, b, 0xff);
            if let Some(circle) = PathBuilder::from_circle(cx0 + gap * i as f32, cy, radius) {
                pixmap.fill_path(
                    &circle,
                    &paint,
                    FillRule::Winding,
                    Transform::identity(),
                    None,
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> LauncherLayout {
        LauncherLayout::new(&ShellLayout::new(720, 1440))
    }

    #[test]
    fn grid_fits_the_home_area() {
        let l = layout();
        assert_eq!(l.columns, 4);
        assert!(l.rows >= 5, "only {} rows on a 720x1440 phone", l.rows);
        let last = l.cell(l.per_page() - 1);
        assert!(last.bottom() <= l.area.bottom());
        assert!(last.right() <= l.area.right());
        assert!(l.cell(0).y > l.area.y);
    }

    #[test]
    fn hit_testing_finds_the_cell_and_ignores_empty_ones() {
        let l = layout();
        let icon = l.icon_rect(5);
        let (x, y) = (
            icon.x + icon.width as i32 / 2,
            icon.y + icon.height as i32 / 2,
        );
        assert_eq!(l.hit(x, y, 8), Some(5));
        assert_eq!(l.hit(x, y, 5), None, "an empty cell was hit");
        assert_eq!(l.hit(l.area.x + 1, l.area.bottom() - 1, 40), None);
    }

    #[test]
    fn pages_round_up() {
        let l = layout();
        assert_eq!(l.pages(0), 1);
        assert_eq!(l.pages(l.per_page()), 1);
        assert_eq!(l.pages(l.per_page() + 1), 2);
    }

    #[test]
    fn draws_icons_and_labels_where_the_layout_says() {
        let l = layout();
        let mut text = TextRenderer::new();
        let mut pixmap =
            Pixmap::new(l.area.width, l.area.height).unwrap_or_else(|| panic!("pixmap"));
        let items = vec![
            LauncherItem {
                label: "Terminal".into(),
                icon: None,
            },
            LauncherItem {
                label: "Notes".into(),
                icon: None,
            },
        ];
        draw_launcher(&mut pixmap, &l, &items, 0, &mut text);
        let alpha_at = |x: i32, y: i32| {
            pixmap
                .pixel((x - l.area.x) as u32, (y - l.area.y) as u32)
                .map(|p| p.alpha())
                .unwrap_or(0)
        };
        for slot in 0..2 {
            let icon = l.icon_rect(slot);
            assert_eq!(
                alpha_at(
                    icon.x + icon.width as i32 / 2,
                    icon.y + icon.height as i32 / 2
                ),
                255,
                "icon {slot} not drawn"
            );
        }
        let third = l.icon_rect(2);
        assert_eq!(
            alpha_at(
                third.x + third.width as i32 / 2,
                third.y + third.height as i32 / 2
            ),
            0,
            "an empty cell was drawn"
        );
        let label = l.label_rect(0);
        let mut lit = 0;
        for y in label.y..label.bottom() {
            for x in label.x..label.right() {
                if alpha_at(x, y) > 200 {
                    lit += 1;
                }
            }
        }
        assert!(lit > 30, "label not drawn ({lit} pixels)");
    }
}
