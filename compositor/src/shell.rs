//! The shell the compositor draws itself: wallpaper and status bar (clock), from `cirrus-ui`.
//!
//! Each piece is rendered into a [`MemoryRenderBuffer`] only when it changes (the clock once a
//! minute), so a frame costs a copy of what is damaged, not a redraw of the shell.

use cirrus_ui::launcher::{LauncherItem, LauncherLayout, draw_launcher};
use cirrus_ui::shell::{ShellLayout, StatusBarState, draw_status_bar, draw_wallpaper};
use cirrus_ui::text::TextRenderer;
use cirrus_ui::tiny_skia::Pixmap;
use cirrus_ui::{IRect, pixmap_to_argb8888};
use smithay::backend::allocator::Fourcc;
use smithay::backend::renderer::element::memory::MemoryRenderBuffer;
use smithay::utils::{Rectangle, Transform};

/// The shell's drawn pieces for one screen.
pub struct Shell {
    layout: ShellLayout,
    /// Buffer scale of the pieces: the output's integer scale, so a piece drawn at N physical
    /// pixels covers exactly N pixels on screen.
    buffer_scale: i32,
    text: TextRenderer,
    status: StatusBarState,
    wallpaper: MemoryRenderBuffer,
    status_bar: MemoryRenderBuffer,
    launcher_layout: LauncherLayout,
    launcher_items: Vec<LauncherItem>,
    launcher_page: usize,
    launcher: MemoryRenderBuffer,
    lock_date: String,
    lock: MemoryRenderBuffer,
    /// The notification the banner shows, and the banner drawn for it.
    banner_notification: Option<crate::notifications::Notification>,
    banner: Option<MemoryRenderBuffer>,
    /// Whether notifications are unread (the status bar's dot), and the dot.
    unread: bool,
    unread_indicator: MemoryRenderBuffer,
}

impl std::fmt::Debug for Shell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shell")
            .field("layout", &self.layout)
            .field("status", &self.status)
            .finish()
    }
}

fn to_buffer(pixmap: &Pixmap, scale: i32, opaque: bool) -> MemoryRenderBuffer {
    let size = (pixmap.width() as i32, pixmap.height() as i32);
    let opaque = opaque.then(|| vec![Rectangle::from_size(size.into())]);
    MemoryRenderBuffer::from_slice(
        &pixmap_to_argb8888(pixmap),
        Fourcc::Argb8888,
        size,
        scale,
        Transform::Normal,
        opaque,
    )
}

fn render_piece(rect: IRect, scale: i32, draw: impl FnOnce(&mut Pixmap)) -> MemoryRenderBuffer {
    render_piece_with(rect, scale, true, draw)
}

fn render_piece_with(
    rect: IRect,
    scale: i32,
    opaque: bool,
    draw: impl FnOnce(&mut Pixmap),
) -> MemoryRenderBuffer {
    match Pixmap::new(rect.width.max(1), rect.height.max(1)) {
        Some(mut pixmap) => {
            draw(&mut pixmap);
            to_buffer(&pixmap, scale, opaque)
        }
        None => {
            tracing::error!(?rect, "shell piece too large to allocate");
            MemoryRenderBuffer::new(Fourcc::Argb8888, (1, 1), 1, Transform::Normal, None)
        }
    }
}

impl Shell {
    /// Lays out and draws the shell for a `width`×`height` screen (physical pixels) shown at
    /// the integer output scale `buffer_scale`.
    pub fn new(width: u32, height: u32, buffer_scale: i32, text: TextRenderer) -> Self {
        let layout = ShellLayout::new(width, height);
        let mut shell = Shell {
            layout,
            buffer_scale: buffer_scale.max(1),
            text,
            status: StatusBarState::default(),
            wallpaper: MemoryRenderBuffer::new(
                Fourcc::Argb8888,
                (1, 1),
                1,
                Transform::Normal,
                None,
            ),
            status_bar: MemoryRenderBuffer::new(
                Fourcc::Argb8888,
                (1, 1),
                1,
                Transform::Normal,
                None,
            ),
            launcher_layout: LauncherLayout::new(&layout),
            launcher_items: Vec::new(),
            launcher_page: 0,
            launcher: MemoryRenderBuffer::new(Fourcc::Argb8888, (1, 1), 1, Transform::Normal, None),
            lock_date: String::new(),
            lock: MemoryRenderBuffer::new(Fourcc::Argb8888, (1, 1), 1, Transform::Normal, None),
            banner_notification: None,
            banner: None,
            unread: false,
            unread_indicator: MemoryRenderBuffer::new(
                Fourcc::Argb8888,
                (1, 1),
                1,
                Transform::Normal,
                None,
            ),
        };
        shell.redraw_all();
        shell
    }

    pub fn layout(&self) -> &ShellLayout {
        &self.layout
    }

    /// The text renderer the shell draws with (shared with the on-screen keyboard).
    pub fn text_renderer(&mut self) -> &mut TextRenderer {
        &mut self.text
    }

    /// Changes the screen size; returns whether anything changed.
    pub fn resize(&mut self, width: u32, height: u32, buffer_scale: i32) -> bool {
        if (width, height, buffer_scale.max(1))
            == (self.layout.width, self.layout.height, self.buffer_scale)
        {
            return false;
        }
        self.layout = ShellLayout::new(width, height);
        self.launcher_layout = LauncherLayout::new(&self.layout);
        self.buffer_scale = buffer_scale.max(1);
        self.redraw_all();
        true
    }

    /// Sets the clock text; redraws the status bar only if it changed. Returns whether it did.
    pub fn set_clock(&mut self, clock: String) -> bool {
        if self.status.clock == clock {
            return false;
        }
        self.status.clock = clock;
        self.redraw_status_bar();
        self.redraw_lock();
        true
    }

    /// Sets the date shown on the lock screen.
    pub fn set_date(&mut self, date: String) {
        if self.lock_date != date {
            self.lock_date = date;
            self.redraw_lock();
        }
    }

    pub fn lock_screen(&self) -> &MemoryRenderBuffer {
        &self.lock
    }

    /// Replaces the launcher's apps.
    pub fn set_launcher_items(&mut self, items: Vec<LauncherItem>) {
        self.launcher_items = items;
        self.launcher_page = self
            .launcher_page
            .min(self.launcher_layout.pages(self.launcher_items.len()) - 1);
        self.redraw_launcher();
    }

    /// Shows launcher page `page`.
    pub fn set_launcher_page(&mut self, page: usize) {
        let page = page.min(self.launcher_layout.pages(self.launcher_items.len()) - 1);
        if page != self.launcher_page {
            self.launcher_page = page;
            self.redraw_launcher();
        }
    }

    /// The slot (on page `page`) under the physical screen point, if an app is there.
    pub fn launcher_hit(&self, x: i32, y: i32, page: usize, count: usize) -> Option<usize> {
        let per_page = self.launcher_layout.per_page();
        let on_page = count.saturating_sub(page * per_page).min(per_page);
        self.launcher_layout.hit(x, y, on_page)
    }

    pub fn launcher_per_page(&self) -> usize {
        self.launcher_layout.per_page()
    }

    pub fn launcher_pages(&self, count: usize) -> usize {
        self.launcher_layout.pages(count)
    }

    pub fn launcher_layout(&self) -> &LauncherLayout {
        &self.launcher_layout
    }

    pub fn launcher(&self) -> &MemoryRenderBuffer {
        &self.launcher
    }

    /// Sets the battery and network indicators; redraws the status bar only if they changed.
    pub fn set_indicators(
        &mut self,
        battery: Option<cirrus_ui::shell::Battery>,
        network: Option<cirrus_ui::shell::Network>,
    ) -> bool {
        if (self.status.battery, self.status.network) == (battery, network) {
            return false;
        }
        self.status.battery = battery;
        self.status.network = network;
        self.redraw_status_bar();
        true
    }

    pub fn status(&self) -> &StatusBarState {
        &self.status
    }

    pub fn wallpaper(&self) -> &MemoryRenderBuffer {
        &self.wallpaper
    }

    pub fn status_bar(&self) -> &MemoryRenderBuffer {
        &self.status_bar
    }

    /// Shows `notification` in the banner (`None` hides it); redraws only if it changed.
    /// Returns whether anything changed.
    pub fn set_banner(
        &mut self,
        notification: Option<&crate::notifications::Notification>,
    ) -> bool {
        if self.banner_notification.as_ref() == notification {
            return false;
        }
        self.banner_notification = notification.cloned();
        self.redraw_banner();
        true
    }

    /// The banner and where it goes (physical pixels), while one is shown.
    pub fn banner(&self) -> Option<(&MemoryRenderBuffer, IRect)> {
        self.banner
            .as_ref()
            .map(|b| (b, crate::notifications::banner_rect(&self.layout)))
    }

    /// The id of the notification the banner shows.
    pub fn banner_id(&self) -> Option<u32> {
        self.banner_notification.as_ref().map(|n| n.id)
    }

    /// Shows or hides the unread indicator; returns whether that changed.
    pub fn set_unread(&mut self, unread: bool) -> bool {
        std::mem::replace(&mut self.unread, unread) != unread
    }

    /// The unread indicator and where it goes, while notifications are unread.
    pub fn unread_indicator(&self) -> Option<(&MemoryRenderBuffer, IRect)> {
        self.unread.then(|| {
            (
                &self.unread_indicator,
                crate::notifications::indicator_rect(&self.layout),
            )
        })
    }

    fn redraw_banner(&mut self) {
        let rect = crate::notifications::banner_rect(&self.layout);
        let scale = self.layout.scale;
        let text = &mut self.text;
        self.banner = self.banner_notification.as_ref().map(|n| {
            render_piece_with(rect, self.buffer_scale, false, |pixmap| {
                crate::notifications::draw_banner(pixmap, n, scale, text)
            })
        });
    }

    fn redraw_all(&mut self) {
        self.unread_indicator = render_piece_with(
            crate::notifications::indicator_rect(&self.layout),
            self.buffer_scale,
            false,
            crate::notifications::draw_indicator,
        );
        self.redraw_banner();
        self.wallpaper = render_piece(self.layout.home, self.buffer_scale, draw_wallpaper);
        self.redraw_status_bar();
        self.redraw_launcher();
        self.redraw_lock();
    }

    fn redraw_lock(&mut self) {
        let layout = cirrus_ui::lock::LockLayout::new(&self.layout);
        let scale = self.layout.scale;
        let (clock, date, text) = (
            self.status.clock.clone(),
            self.lock_date.clone(),
            &mut self.text,
        );
        self.lock = render_piece(self.layout.home, self.buffer_scale, |pixmap| {
            cirrus_ui::lock::draw_lock_screen(pixmap, &layout, scale, &clock, &date, text)
        });
    }

    fn redraw_launcher(&mut self) {
        let layout = self.launcher_layout;
        let (items, page, text) = (&self.launcher_items, self.launcher_page, &mut self.text);
        self.launcher = render_piece_with(self.layout.home, self.buffer_scale, false, |pixmap| {
            draw_launcher(pixmap, &layout, items, page, text)
        });
    }

    fn redraw_status_bar(&mut self) {
        let layout = self.layout;
        let status = self.status.clone();
        let text = &mut self.text;
        self.status_bar = render_piece(layout.status_bar, self.buffer_scale, |pixmap| {
            draw_status_bar(pixmap, &layout, &status, text)
        });
    }
}

/// The clock text for the status bar at local time `now` (24-hour "HH:MM").
pub fn format_clock(now: chrono::DateTime<chrono::Local>) -> String {
    now.format("%H:%M").to_string()
}

/// The date for the lock screen at local time `now` (e.g. "Saturday, 21 November").
pub fn format_date(now: chrono::DateTime<chrono::Local>) -> String {
    now.format("%A, %-d %B").to_string()
}

/// Time until the next minute starts, when the clock must change.
pub fn until_next_minute(now: chrono::DateTime<chrono::Local>) -> std::time::Duration {
    use chrono::Timelike;
    let into_minute =
        std::time::Duration::new(now.second() as u64, now.nanosecond().min(999_999_999));
    std::time::Duration::from_secs(60)
        .saturating_sub(into_minute)
        .max(std::time::Duration::from_millis(10))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn clock_format_and_next_minute() {
        let Some(t) = chrono::Local
            .with_ymd_and_hms(2026, 11, 21, 9, 41, 15)
            .single()
        else {
            return; // a local-time gap (DST) at that instant: nothing to check
        };
        assert_eq!(format_clock(t), "09:41");
        assert_eq!(until_next_minute(t), std::time::Duration::from_secs(45));
    }

    #[test]
    fn clock_change_redraws_once() {
        let mut shell = Shell::new(360, 720, 1, TextRenderer::new());
        assert!(shell.set_clock("10:00".into()));
        assert!(!shell.set_clock("10:00".into()));
        assert!(shell.set_clock("10:01".into()));
        assert!(!shell.resize(360, 720, 1));
        assert!(shell.resize(720, 1440, 2));
        assert_eq!(shell.layout().status_bar.height, 56);
    }
}
