//! The app switcher ("overview"): every running app as a card, most recent first, two per row.
//! Tap a card to switch to that app, swipe a card up to close the app, tap outside the cards to
//! go home. Opened by swiping up from the bottom edge and holding before letting go.

use cirrus_ui::IRect;

/// Cards per row.
pub const COLUMNS: u32 = 2;
/// How far a card must be swiped up to close its app (dp).
pub const CLOSE_DISTANCE: f64 = 80.0;

/// Where the cards go on a screen (physical pixels).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OverviewLayout {
    /// The area below the status bar.
    pub area: IRect,
    pub card_width: u32,
    pub card_height: u32,
    pub gap: u32,
    /// Card size relative to the app area.
    pub card_scale: f64,
}

impl OverviewLayout {
    pub fn new(area: IRect, scale: f32) -> Self {
        let gap = (16.0 * scale).round() as u32;
        let card_width = (area.width.saturating_sub(gap * (COLUMNS + 1)) / COLUMNS).max(1);
        let card_scale = card_width as f64 / area.width.max(1) as f64;
        let card_height = ((area.height as f64) * card_scale).round().max(1.0) as u32;
        Self {
            area,
            card_width,
            card_height,
            gap,
            card_scale,
        }
    }

    /// The card of the `index`-th app (0 = most recent).
    pub fn card(&self, index: usize) -> IRect {
        let col = index as u32 % COLUMNS;
        let row = index as u32 / COLUMNS;
        IRect::new(
            self.area.x + (self.gap + col * (self.card_width + self.gap)) as i32,
            self.area.y + (self.gap + row * (self.card_height + self.gap)) as i32,
            self.card_width,
            self.card_height,
        )
    }

    /// The card under a physical point, among `count` cards.
    pub fn hit(&self, x: i32, y: i32, count: usize) -> Option<usize> {
        (0..count).find(|&i| self.card(i).contains(x, y))
    }
}

/// What a finished contact in the overview means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverviewAction {
    Switch(usize),
    Close(usize),
    Home,
    None,
}

/// Decides a contact from its start and end (logical points) and the card under its start.
pub fn finish(card: Option<usize>, dx: f64, dy: f64) -> OverviewAction {
    match card {
        Some(i) if -dy >= CLOSE_DISTANCE && dy.abs() > dx.abs() => OverviewAction::Close(i),
        Some(i) if dx.abs() <= crate::input::TAP_SLOP && dy.abs() <= crate::input::TAP_SLOP => {
            OverviewAction::Switch(i)
        }
        None if dx.abs() <= crate::input::TAP_SLOP && dy.abs() <= crate::input::TAP_SLOP => {
            OverviewAction::Home
        }
        _ => OverviewAction::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_cards_per_row_inside_the_area() {
        let area = IRect::new(0, 56, 720, 1384);
        let l = OverviewLayout::new(area, 2.0);
        let (a, b, c) = (l.card(0), l.card(1), l.card(2));
        assert_eq!(a.y, b.y);
        assert!(a.right() < b.x && b.right() <= 720);
        assert!(c.y > a.bottom() && c.x == a.x);
        assert!(
            (l.card_height as f64 / l.card_width as f64 - 1384.0 / 720.0).abs() < 0.02,
            "cards keep the app's aspect"
        );
        assert_eq!(l.hit(a.x + 5, a.y + 5, 2), Some(0));
        assert_eq!(l.hit(c.x + 5, c.y + 5, 2), None);
    }

    #[test]
    fn taps_and_swipes() {
        assert_eq!(finish(Some(1), 2.0, -3.0), OverviewAction::Switch(1));
        assert_eq!(finish(Some(1), 10.0, -200.0), OverviewAction::Close(1));
        assert_eq!(finish(Some(1), 150.0, -90.0), OverviewAction::None);
        assert_eq!(finish(None, 1.0, 1.0), OverviewAction::Home);
    }
}
