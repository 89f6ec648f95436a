//! Checks a screenshot of the home screen against the shell's reference rendering.
//!
//! The reference (`cirrus_ui::shell::render_home_reference`) is the wallpaper and the status bar's
//! background without text or icons. A screenshot passes when:
//! * the status bar outside the clock matches the reference (≥ 90 % of its pixels);
//! * the home area matches the reference (≥ 90 % of a grid sample; the home screen has no other
//!   content yet);
//! * the clock is really drawn: enough pixels in the clock's rectangle have the status bar's text
//!   colour where the reference has something else.
//!
//! "Matches" means every channel within ±[`CHANNEL_TOLERANCE`]. Everything here is pure: the boot
//! test feeds it QEMU's screendump, the unit tests synthetic frames.

use crate::screenshot::RgbImage;

/// Per-channel difference still counted as the same colour (scaling, dithering, rounding).
pub const CHANNEL_TOLERANCE: u8 = 24;
/// Share of compared pixels of a region that must match.
pub const MIN_MATCH_RATIO: f64 = 0.90;
/// The home area is compared on a grid with this step in both directions.
pub const HOME_SAMPLE_STEP: u32 = 4;
/// Pixels of the text colour the clock's rectangle must contain (a few digits at phone size have
/// hundreds).
pub const MIN_CLOCK_TEXT_PIXELS: u64 = 40;

/// A rectangle in screen pixels (same shape as `cirrus_ui::IRect`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    pub x: i32,
    pub y: i32,
    pub width: u32,
    pub height: u32,
}

impl Rect {
    pub fn contains(&self, x: u32, y: u32) -> bool {
        let (x, y) = (i64::from(x), i64::from(y));
        let (left, top) = (i64::from(self.x), i64::from(self.y));
        x >= left
            && y >= top
            && x < left + i64::from(self.width)
            && y < top + i64::from(self.height)
    }

    /// The part inside a `width`×`height` frame, as `(x0, y0, x1, y1)` with exclusive ends.
    fn clip(&self, width: u32, height: u32) -> (u32, u32, u32, u32) {
        let clamp = |v: i64, max: u32| v.clamp(0, i64::from(max)) as u32;
        let (left, top) = (i64::from(self.x), i64::from(self.y));
        (
            clamp(left, width),
            clamp(top, height),
            clamp(left + i64::from(self.width), width),
            clamp(top + i64::from(self.height), height),
        )
    }
}

/// Where the shell draws what (from `cirrus_ui::shell::ShellLayout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShellRegions {
    pub status_bar: Rect,
    pub clock: Rect,
    pub home: Rect,
}

/// What a region must reach to pass.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Requirement {
    /// At least this share of the compared pixels match the reference.
    Ratio(f64),
    /// At least this many pixels were found.
    Count(u64),
}

/// The outcome for one region.
#[derive(Debug, Clone, PartialEq)]
pub struct RegionResult {
    pub name: &'static str,
    /// Pixels that matched (or, for a count, were found).
    pub matched: u64,
    /// Pixels compared.
    pub compared: u64,
    pub requirement: Requirement,
}

impl RegionResult {
    pub fn ratio(&self) -> f64 {
        if self.compared == 0 {
            0.0
        } else {
            self.matched as f64 / self.compared as f64
        }
    }

    pub fn passed(&self) -> bool {
        match self.requirement {
            Requirement::Ratio(min) => self.compared > 0 && self.ratio() >= min,
            Requirement::Count(min) => self.matched >= min,
        }
    }

    /// One line for people: `status bar: 97.1 % of 10080 pixels match (need 90 %)`.
    pub fn describe(&self) -> String {
        let verdict = if self.passed() { "ok" } else { "FAILED" };
        match self.requirement {
            Requirement::Ratio(min) => format!(
                "{}: {:.1} % of {} pixels match the reference (need {:.0} %) — {verdict}",
                self.name,
                self.ratio() * 100.0,
                self.compared,
                min * 100.0
            ),
            Requirement::Count(min) => format!(
                "{}: {} of {} pixels have the text colour (need {min}) — {verdict}",
                self.name, self.matched, self.compared
            ),
        }
    }
}

/// The outcome of [`check`].
#[derive(Debug, Clone, PartialEq)]
pub struct HomeScreenReport {
    /// Set when the screenshot does not have the reference's size (nothing else is compared then).
    pub size_mismatch: Option<String>,
    pub regions: Vec<RegionResult>,
}

impl HomeScreenReport {
    pub fn passed(&self) -> bool {
        self.size_mismatch.is_none() && self.regions.iter().all(RegionResult::passed)
    }

    /// A line per failed check, naming the region and its match ratio.
    pub fn failures(&self) -> Vec<String> {
        let mut failures: Vec<String> = self.size_mismatch.iter().cloned().collect();
        failures.extend(
            self.regions
                .iter()
                .filter(|r| !r.passed())
                .map(RegionResult::describe),
        );
        failures
    }
}

pub const STATUS_BAR: &str = "status bar (outside the clock)";
pub const HOME: &str = "home area";
pub const CLOCK: &str = "clock";

/// Compares `actual` (the screenshot) with `expected` (the reference rendering, no text).
pub fn check(
    actual: &RgbImage,
    expected: &RgbImage,
    regions: &ShellRegions,
    text_colour: [u8; 3],
) -> HomeScreenReport {
    if (actual.width, actual.height) != (expected.width, expected.height) {
        return HomeScreenReport {
            size_mismatch: Some(format!(
                "the screenshot is {}x{} but the display is {}x{}",
                actual.width, actual.height, expected.width, expected.height
            )),
            regions: Vec::new(),
        };
    }
    let (w, h) = (actual.width, actual.height);
    let same = |x, y| close(actual.get(x, y), expected.get(x, y));

    let mut status = RegionResult {
        name: STATUS_BAR,
        matched: 0,
        compared: 0,
        requirement: Requirement::Ratio(MIN_MATCH_RATIO),
    };
    let (x0, y0, x1, y1) = regions.status_bar.clip(w, h);
    for y in y0..y1 {
        for x in x0..x1 {
            if regions.clock.contains(x, y) {
                continue;
            }
            status.compared += 1;
            status.matched += u64::from(same(x, y));
        }
    }

    let mut home = RegionResult {
        name: HOME,
        matched: 0,
        compared: 0,
        requirement: Requirement::Ratio(MIN_MATCH_RATIO),
    };
    let (x0, y0, x1, y1) = regions.home.clip(w, h);
    for y in (y0..y1).step_by(HOME_SAMPLE_STEP as usize) {
        for x in (x0..x1).step_by(HOME_SAMPLE_STEP as usize) {
            home.compared += 1;
            home.matched += u64::from(same(x, y));
        }
    }

    let mut clock = RegionResult {
        name: CLOCK,
        matched: 0,
        compared: 0,
        requirement: Requirement::Count(MIN_CLOCK_TEXT_PIXELS),
    };
    let (x0, y0, x1, y1) = regions.clock.clip(w, h);
    for y in y0..y1 {
        for x in x0..x1 {
            clock.compared += 1;
            clock.matched += u64::from(is_text(actual.get(x, y), expected.get(x, y), text_colour));
        }
    }

    HomeScreenReport {
        size_mismatch: None,
        regions: vec![status, home, clock],
    }
}

/// A picture of where the screenshot differs: pixels of the compared regions that match are shown
/// dimmed, those that do not in red; the clock's rectangle is outlined in yellow and the text pixels
/// found in it are green. When the sizes differ, the overlap is shown.
pub fn diff_image(
    actual: &RgbImage,
    expected: &RgbImage,
    regions: &ShellRegions,
    text_colour: [u8; 3],
) -> RgbImage {
    let (w, h) = (expected.width, expected.height);
    let mut diff = RgbImage::filled(w, h, [0, 0, 0]);
    for y in 0..h.min(actual.height) {
        for x in 0..w.min(actual.width) {
            let (a, e) = (actual.get(x, y), expected.get(x, y));
            let dim = dimmed(a);
            let colour = if on_border(&regions.clock, x, y) {
                [255, 255, 0]
            } else if regions.clock.contains(x, y) {
                if is_text(a, e, text_colour) {
                    [0, 255, 0]
                } else {
                    dim
                }
            } else if regions.status_bar.contains(x, y) || regions.home.contains(x, y) {
                if close(a, e) { dim } else { [255, 0, 0] }
            } else {
                dim
            };
            diff.set(x, y, colour);
        }
    }
    diff
}

fn on_border(r: &Rect, x: u32, y: u32) -> bool {
    if !r.contains(x, y) {
        return false;
    }
    let (x, y) = (i64::from(x), i64::from(y));
    let (left, top) = (i64::from(r.x), i64::from(r.y));
    let (right, bottom) = (left + i64::from(r.width) - 1, top + i64::from(r.height) - 1);
    x == left || x == right || y == top || y == bottom
}

fn close(a: [u8; 3], b: [u8; 3]) -> bool {
    a.iter()
        .zip(b)
        .all(|(&a, b)| a.abs_diff(b) <= CHANNEL_TOLERANCE)
}

/// A pixel of the text colour where the reference (the background) is not that colour.
fn is_text(actual: [u8; 3], expected: [u8; 3], text_colour: [u8; 3]) -> bool {
    close(actual, text_colour) && !close(expected, text_colour)
}

fn dimmed(rgb: [u8; 3]) -> [u8; 3] {
    let grey = (u32::from(rgb[0]) * 30 + u32::from(rgb[1]) * 59 + u32::from(rgb[2]) * 11) / 100;
    let v = (grey / 3) as u8;
    [v, v, v]
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: u32 = 180;
    const H: u32 = 360;
    const BAR: [u8; 3] = [20, 24, 32];
    const TEXT: [u8; 3] = [240, 240, 240];
    const BLOCK: u32 = 16;

    fn regions() -> ShellRegions {
        ShellRegions {
            status_bar: Rect {
                x: 0,
                y: 0,
                width: W,
                height: 24,
            },
            clock: Rect {
                x: 70,
                y: 4,
                width: 40,
                height: 16,
            },
            home: Rect {
                x: 0,
                y: 24,
                width: W,
                height: H - 24,
            },
        }
    }

    /// Wallpaper with structure (a checkerboard of two blues) below a plain status bar.
    fn reference() -> RgbImage {
        let mut img = RgbImage::filled(W, H, BAR);
        for y in 24..H {
            for x in 0..W {
                let dark = ((x / BLOCK) + (y / BLOCK)).is_multiple_of(2);
                img.set(x, y, if dark { [30, 60, 140] } else { [90, 140, 220] });
            }
        }
        img
    }

    /// What the device shows: the reference with a small deterministic noise and the clock's digits.
    fn screenshot() -> RgbImage {
        let mut img = reference();
        let mut seed = 12345u32;
        for v in &mut img.data {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let noise = ((seed >> 16) % 21) as i32 - 10;
            *v = (i32::from(*v) + noise).clamp(0, 255) as u8;
        }
        draw_clock(&mut img);
        img
    }

    /// Four "digits": vertical strokes 3 px wide, 12 px high, in the clock's rectangle.
    fn draw_clock(img: &mut RgbImage) {
        for digit in 0..4 {
            for y in 6..18 {
                for x in 0..3 {
                    img.set(74 + digit * 9 + x, y, TEXT);
                }
            }
        }
    }

    fn failed_names(report: &HomeScreenReport) -> Vec<&'static str> {
        report
            .regions
            .iter()
            .filter(|r| !r.passed())
            .map(|r| r.name)
            .collect()
    }

    #[test]
    fn matching_frame_passes() {
        let report = check(&screenshot(), &reference(), &regions(), TEXT);
        assert!(report.passed(), "{:?}", report.failures());
        assert!(report.failures().is_empty());
        let status = &report.regions[0];
        assert_eq!(status.compared, u64::from(W * 24 - 40 * 16));
        assert_eq!(status.matched, status.compared);
        assert_eq!(report.regions[2].matched, 4 * 3 * 12);
    }

    #[test]
    fn black_status_bar_fails() {
        let mut img = screenshot();
        for y in 0..24 {
            for x in 0..W {
                img.set(x, y, [0, 0, 0]);
            }
        }
        draw_clock(&mut img);
        let report = check(&img, &reference(), &regions(), TEXT);
        assert!(!report.passed());
        assert_eq!(failed_names(&report), [STATUS_BAR]);
        assert!(
            report.failures()[0].contains("status bar") && report.failures()[0].contains("0.0 %"),
            "{:?}",
            report.failures()
        );
    }

    #[test]
    fn missing_clock_fails() {
        let report = check(&reference(), &reference(), &regions(), TEXT);
        assert_eq!(failed_names(&report), [CLOCK]);
        assert!(
            report.failures()[0].contains("0 of 640"),
            "{:?}",
            report.failures()
        );
    }

    #[test]
    fn clock_in_the_background_colour_does_not_count() {
        // If the text colour were the bar's colour, an empty clock must still not pass.
        let report = check(&reference(), &reference(), &regions(), BAR);
        assert_eq!(failed_names(&report), [CLOCK]);
    }

    #[test]
    fn shifted_home_background_fails() {
        let mut img = screenshot();
        let original = img.clone();
        for y in 24..H {
            for x in 0..W {
                img.set(x, y, original.get((x + BLOCK / 2) % W, y));
            }
        }
        let report = check(&img, &reference(), &regions(), TEXT);
        assert_eq!(failed_names(&report), [HOME]);
        let home = &report.regions[1];
        assert!(home.ratio() < 0.6, "{}", home.describe());
    }

    #[test]
    fn a_small_blemish_is_tolerated() {
        // A cursor or a few stray pixels in the home area stay under the 10 % allowed.
        let mut img = screenshot();
        for y in 100..120 {
            for x in 50..70 {
                img.set(x, y, [255, 255, 0]);
            }
        }
        assert!(check(&img, &reference(), &regions(), TEXT).passed());
    }

    #[test]
    fn wrong_size_fails() {
        let img = RgbImage::filled(W, H / 2, BAR);
        let report = check(&img, &reference(), &regions(), TEXT);
        assert!(!report.passed());
        assert!(
            report.failures()[0].contains("180x180"),
            "{:?}",
            report.failures()
        );
        // The diff is still made, at the reference's size.
        let diff = diff_image(&img, &reference(), &regions(), TEXT);
        assert_eq!((diff.width, diff.height), (W, H));
    }

    #[test]
    fn diff_marks_mismatches_and_text() {
        let mut img = screenshot();
        img.set(5, 200, [255, 255, 0]);
        let diff = diff_image(&img, &reference(), &regions(), TEXT);
        assert_eq!(diff.get(5, 200), [255, 0, 0]);
        assert_eq!(diff.get(74, 10), [0, 255, 0]);
        assert_eq!(diff.get(70, 10), [255, 255, 0], "clock outline");
        assert_eq!(diff.get(109, 19), [255, 255, 0], "clock outline");
        let plain = diff.get(6, 200);
        assert_eq!(plain[0], plain[1]);
        assert!(plain[0] < 90);
    }

    #[test]
    fn rect_clipping_and_containment() {
        let r = Rect {
            x: -10,
            y: 5,
            width: 30,
            height: 1000,
        };
        assert_eq!(r.clip(100, 50), (0, 5, 20, 50));
        assert!(r.contains(0, 5) && r.contains(19, 999));
        assert!(!r.contains(20, 5) && !r.contains(0, 4));
        let outside = Rect {
            x: 200,
            y: 0,
            width: 10,
            height: 10,
        };
        assert_eq!(outside.clip(100, 50), (100, 0, 100, 10));
    }

    #[test]
    fn empty_region_fails() {
        let mut regions = regions();
        regions.home = Rect {
            x: 0,
            y: H as i32,
            width: W,
            height: 10,
        };
        let report = check(&screenshot(), &reference(), &regions, TEXT);
        assert_eq!(failed_names(&report), [HOME]);
    }
}
