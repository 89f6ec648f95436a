//! Path shapes shared by everything that draws with tiny-skia: the shell's cards and tiles, the
//! notification banner, and the app manager's launcher icons.

use tiny_skia::{Path, PathBuilder, Rect};

/// Control-point distance for approximating a quarter circle of radius 1 with one cubic Bézier.
const QUARTER_CIRCLE_K: f32 = 0.552_284_8;

/// A rectangle with circular corners of `radius` (clamped to half the shorter side). `None` only
/// when the rectangle is degenerate.
pub fn rounded_rect(rect: Rect, radius: f32) -> Option<Path> {
    let (x, y, w, h) = (rect.x(), rect.y(), rect.width(), rect.height());
    let r = radius.max(0.0).min(w / 2.0).min(h / 2.0);
    let k = QUARTER_CIRCLE_K * r;
    let mut pb = PathBuilder::new();
    pb.move_to(x + r, y);
    pb.line_to(x + w - r, y);
    pb.cubic_to(x + w - r + k, y, x + w, y + r - k, x + w, y + r);
    pb.line_to(x + w, y + h - r);
    pb.cubic_to(x + w, y + h - r + k, x + w - r + k, y + h, x + w - r, y + h);
    pb.line_to(x + r, y + h);
    pb.cubic_to(x + r - k, y + h, x, y + h - r + k, x, y + h - r);
    pb.line_to(x, y + r);
    pb.cubic_to(x, y + r - k, x + r - k, y, x + r, y);
    pb.close();
    pb.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tiny_skia::{FillRule, Mask, Transform};

    fn coverage(rect: Rect, radius: f32, px: u32, py: u32) -> u8 {
        let mut mask = Mask::new(100, 100).unwrap();
        let path = rounded_rect(rect, radius).unwrap();
        mask.fill_path(&path, FillRule::Winding, true, Transform::identity());
        mask.data()[(py * 100 + px) as usize]
    }

    #[test]
    fn corners_are_cut_and_the_middle_is_filled() {
        let rect = Rect::from_xywh(10.0, 10.0, 80.0, 80.0).unwrap();
        assert_eq!(coverage(rect, 20.0, 50, 50), 255);
        assert_eq!(
            coverage(rect, 20.0, 11, 11),
            0,
            "top-left corner must be rounded off"
        );
        assert_eq!(
            coverage(rect, 20.0, 88, 88),
            0,
            "bottom-right corner must be rounded off"
        );
        assert_eq!(
            coverage(rect, 20.0, 50, 11),
            255,
            "edge midpoints stay filled"
        );
        assert_eq!(
            coverage(rect, 0.0, 11, 11),
            255,
            "radius 0 is a plain rectangle"
        );
    }

    #[test]
    fn radius_is_clamped_to_half_the_short_side() {
        let rect = Rect::from_xywh(0.0, 40.0, 100.0, 20.0).unwrap();
        // A radius far too large becomes a pill: the ends are round, the middle full height.
        assert_eq!(coverage(rect, 500.0, 50, 41), 255);
        assert_eq!(coverage(rect, 500.0, 1, 41), 0);
    }
}
