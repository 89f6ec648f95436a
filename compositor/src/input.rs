//! Input: touch and touch-like pointers (QEMU's virtio-tablet is an absolute pointer) go through the
//! shell's gestures first, then to the app under the finger; keys go to the focused app.
//!
//! Gestures (phone conventions): a swipe up from the bottom edge goes home; a swipe right from the
//! left edge is Back (delivered to the app as the Back key); on the home screen a tap opens an app
//! and a horizontal swipe turns the launcher's page.

use smithay::backend::input::{
    AbsolutePositionEvent, ButtonState, Event, InputBackend, InputEvent, KeyState,
    KeyboardKeyEvent, PointerButtonEvent, TouchEvent,
};
use smithay::input::keyboard::{FilterResult, Keycode};
use smithay::input::pointer::{ButtonEvent, MotionEvent};
use smithay::input::touch::{DownEvent, MotionEvent as TouchMotionEvent, UpEvent};
use smithay::utils::{Logical, Point, SERIAL_COUNTER};

use crate::state::State;

/// Left mouse button (evdev `BTN_LEFT`).
const BTN_LEFT: u32 = 0x110;
/// evdev `KEY_BACK`; xkb keycodes are evdev + 8.
const KEY_BACK: u32 = 158;

/// Height of the bottom edge zone, in logical pixels (= dp).
pub const BOTTOM_EDGE: f64 = 24.0;
/// Width of the left edge zone.
pub const LEFT_EDGE: f64 = 16.0;
/// How far a swipe must travel to count.
pub const SWIPE_DISTANCE: f64 = 60.0;
/// How far a swipe up on the lock screen must travel to unlock.
pub const UNLOCK_DISTANCE: f64 = 100.0;
/// evdev `KEY_POWER`.
const KEY_POWER: u32 = 116;

/// How far a finger may move and still be a tap.
pub const TAP_SLOP: f64 = 12.0;

/// A touch slot as the id we key contacts by (`None` for devices without slots).
fn slot_id(slot: smithay::backend::input::TouchSlot) -> Option<u32> {
    u32::try_from(i32::from(slot)).ok()
}

/// The wl_touch point id for a contact. A contact without a slot (a single-touch screen, input
/// injected by tests and tools) is point 0: smithay would send it as id -1, which GTK 3 turns into
/// the NULL event sequence (the pointer's); WebKitGTK keys its touches by that value, 0, and aborts.
fn touch_point(slot: Option<u32>) -> smithay::backend::input::TouchSlot {
    Some(slot.unwrap_or(0)).into()
}

/// Where touch-like input comes from, which decides how it is forwarded to apps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pointing {
    /// A pointer (mouse, QEMU tablet): forwarded as wl_pointer events.
    Pointer,
    /// A touchscreen: forwarded as wl_touch events.
    Touch,
}

/// What a finger (or held pointer button) is doing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Contact {
    /// Started in the bottom edge: may become "go home", or "overview" if held before release.
    HomeSwipe {
        start: Point<f64, Logical>,
        last: Point<f64, Logical>,
        still_since: std::time::Instant,
    },
    /// In the overview: a tap or a swipe on a card.
    Overview {
        start: Point<f64, Logical>,
        last: Point<f64, Logical>,
    },
    /// On the lock screen: a swipe up unlocks.
    Lock {
        start: Point<f64, Logical>,
        last: Point<f64, Logical>,
    },
    /// Started in the left edge over an app: may become "back".
    BackSwipe { start: Point<f64, Logical> },
    /// On the home screen: a tap on an app or a page swipe.
    Launcher {
        start: Point<f64, Logical>,
        last: Point<f64, Logical>,
    },
    /// On a notification banner: a tap dismisses it and opens it, a swipe dismisses it.
    Banner {
        start: Point<f64, Logical>,
        last: Point<f64, Logical>,
    },
    /// On the on-screen keyboard: the key under the finger (highlighted), typed on release.
    Keyboard { key: Option<usize> },
    /// Forwarded to the app under it.
    App,
}

/// What the shell decided a finished contact means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShellAction {
    GoHome,
    Overview,
    Back,
    Launch(usize),
    NextPage,
    PreviousPage,
    None,
}

/// How long a bottom-edge swipe must rest before release to open the overview.
pub const HOLD: std::time::Duration = std::time::Duration::from_millis(300);

/// Classifies a contact from where it started.
pub fn classify(
    pos: Point<f64, Logical>,
    screen: Point<f64, Logical>,
    home_visible: bool,
) -> Contact {
    if pos.y >= screen.y - BOTTOM_EDGE {
        Contact::HomeSwipe {
            start: pos,
            last: pos,
            still_since: std::time::Instant::now(),
        }
    } else if !home_visible && pos.x <= LEFT_EDGE {
        Contact::BackSwipe { start: pos }
    } else if home_visible {
        Contact::Launcher {
            start: pos,
            last: pos,
        }
    } else {
        Contact::App
    }
}

/// Decides what a contact that ended at `end` means; `hit` finds the launcher slot at a point.
pub fn finish(
    contact: Contact,
    end: Point<f64, Logical>,
    hit: impl Fn(Point<f64, Logical>) -> Option<usize>,
) -> ShellAction {
    match contact {
        Contact::HomeSwipe {
            start, still_since, ..
        } if start.y - end.y >= SWIPE_DISTANCE => {
            if still_since.elapsed() >= HOLD {
                ShellAction::Overview
            } else {
                ShellAction::GoHome
            }
        }
        Contact::BackSwipe { start } if end.x - start.x >= SWIPE_DISTANCE => ShellAction::Back,
        Contact::Launcher { start, .. } => {
            let (dx, dy) = (end.x - start.x, end.y - start.y);
            if dx.abs() <= TAP_SLOP && dy.abs() <= TAP_SLOP {
                hit(start)
                    .map(ShellAction::Launch)
                    .unwrap_or(ShellAction::None)
            } else if dx.abs() >= SWIPE_DISTANCE && dx.abs() > dy.abs() {
                if dx < 0.0 {
                    ShellAction::NextPage
                } else {
                    ShellAction::PreviousPage
                }
            } else {
                ShellAction::None
            }
        }
        _ => ShellAction::None,
    }
}

impl State {
    fn screen_size_logical(&self) -> Point<f64, Logical> {
        let scale = self.output_scale();
        let l = self.shell.layout();
        Point::from((l.width as f64 / scale, l.height as f64 / scale))
    }

    fn now_ms(&self) -> u32 {
        self.started.elapsed().as_millis() as u32
    }

    /// A finger (or the pointer's button) went down at `pos` (logical coordinates).
    pub fn contact_down(
        &mut self,
        pointing: Pointing,
        slot: Option<u32>,
        pos: Point<f64, Logical>,
    ) {
        self.pointer_location = pos;
        let scale = self.output_scale();
        let contact = if self.banner_hit((pos.x * scale) as i32, (pos.y * scale) as i32) {
            Contact::Banner {
                start: pos,
                last: pos,
            }
        } else if self.locked {
            Contact::Lock {
                start: pos,
                last: pos,
            }
        } else if self.overview && pos.y < self.screen_size_logical().y - BOTTOM_EDGE {
            Contact::Overview {
                start: pos,
                last: pos,
            }
        } else if pos.y < self.screen_size_logical().y - BOTTOM_EDGE
            && let Some(key) = self.keyboard_touch(pos)
        {
            self.keyboard_press(key);
            Contact::Keyboard { key }
        } else {
            classify(pos, self.screen_size_logical(), self.home_visible())
        };
        self.contacts.insert(slot, contact);
        if contact == Contact::App {
            self.forward_down(pointing, slot, pos);
        }
    }

    /// The finger moved (or the pointer moved, held or not).
    pub fn contact_motion(
        &mut self,
        pointing: Pointing,
        slot: Option<u32>,
        pos: Point<f64, Logical>,
    ) {
        self.pointer_location = pos;
        if let Some(Contact::Keyboard { .. }) = self.contacts.get(&slot) {
            // Sliding the finger moves the highlight to the key under it.
            let key = self.keyboard_touch(pos).flatten();
            self.contacts.insert(slot, Contact::Keyboard { key });
            self.keyboard_press(key);
            return;
        }
        let home = self.home_visible();
        match self.contacts.get_mut(&slot) {
            Some(Contact::Launcher { last, .. })
            | Some(Contact::Overview { last, .. })
            | Some(Contact::Lock { last, .. })
            | Some(Contact::Banner { last, .. }) => *last = pos,
            Some(Contact::HomeSwipe {
                last, still_since, ..
            }) => {
                // Small jitter does not count as moving: the finger is resting.
                if (pos.x - last.x).abs() > 3.0 || (pos.y - last.y).abs() > 3.0 {
                    *still_since = std::time::Instant::now();
                }
                *last = pos;
            }
            Some(Contact::App) => self.forward_motion(pointing, slot, pos),
            Some(_) => {}
            // Pointer hovering with no button held: apps still want to know where it is.
            None if pointing == Pointing::Pointer && !home => {
                self.forward_motion(pointing, slot, pos)
            }
            None => {}
        }
    }

    /// The finger lifted (or the button was released).
    pub fn contact_up(&mut self, pointing: Pointing, slot: Option<u32>) {
        let pos = self.pointer_location;
        let Some(contact) = self.contacts.remove(&slot) else {
            return;
        };
        let end = match contact {
            Contact::Launcher { last, .. }
            | Contact::Overview { last, .. }
            | Contact::HomeSwipe { last, .. } => last,
            _ => pos,
        };
        if contact == Contact::App {
            self.forward_up(pointing, slot);
            return;
        }
        if let Contact::Keyboard { key } = contact {
            self.keyboard_release(key);
            return;
        }
        if let Contact::Banner { start, last } = contact {
            let (dx, dy) = (last.x - start.x, last.y - start.y);
            if dx.abs() <= TAP_SLOP && dy.abs() <= TAP_SLOP {
                self.dismiss_banner(true);
            } else if dx.abs() >= SWIPE_DISTANCE || -dy >= SWIPE_DISTANCE / 2.0 {
                // Swiped aside or up: dismissed without opening.
                self.dismiss_banner(false);
            }
            return;
        }
        if let Contact::Lock { start, last } = contact {
            if start.y - last.y >= UNLOCK_DISTANCE {
                self.unlock();
            }
            return;
        }
        if let Contact::Overview { start, last } = contact {
            let scale = self.output_scale();
            let card = self.overview_layout().hit(
                (start.x * scale) as i32,
                (start.y * scale) as i32,
                self.space.elements().count(),
            );
            let action = crate::overview::finish(card, last.x - start.x, last.y - start.y);
            self.perform_overview(action);
            return;
        }
        let action = {
            let shell = &self.shell;
            let scale = self.output_scale();
            let page = self.launcher_page;
            let count = self.apps.len();
            finish(contact, end, |p| {
                shell
                    .launcher_hit((p.x * scale) as i32, (p.y * scale) as i32, page, count)
                    .map(|slot| page * shell.launcher_per_page() + slot)
            })
        };
        self.perform(action);
    }

    fn perform(&mut self, action: ShellAction) {
        match action {
            ShellAction::GoHome => self.go_home(),
            ShellAction::Overview => self.open_overview(),
            ShellAction::Back => self.send_back(),
            ShellAction::Launch(index) => self.launch_app(index),
            ShellAction::NextPage => self.turn_page(1),
            ShellAction::PreviousPage => self.turn_page(-1),
            ShellAction::None => {}
        }
    }

    fn turn_page(&mut self, delta: i64) {
        let pages = self.shell.launcher_pages(self.apps.len()) as i64;
        let page = (self.launcher_page as i64 + delta).clamp(0, pages - 1) as usize;
        if page != self.launcher_page {
            self.launcher_page = page;
            self.shell.set_launcher_page(page);
            self.needs_redraw = true;
        }
    }

    fn send_back(&mut self) {
        let Some(keyboard) = self.seat.get_keyboard() else {
            return;
        };
        let time = self.now_ms();
        for state in [KeyState::Pressed, KeyState::Released] {
            keyboard.input::<(), _>(
                self,
                Keycode::new(KEY_BACK + 8),
                state,
                SERIAL_COUNTER.next_serial(),
                time,
                |_, _, _| FilterResult::Forward,
            );
        }
        tracing::debug!("back gesture sent to the app");
    }

    /// Moves the seat's pointer to `pos`, focusing the surface under it.
    fn move_pointer(&mut self, pos: Point<f64, Logical>, time: u32) {
        let focus = self.surface_under(pos);
        let Some(pointer) = self.seat.get_pointer() else {
            return;
        };
        let event = MotionEvent {
            location: pos,
            serial: SERIAL_COUNTER.next_serial(),
            time,
        };
        pointer.motion(self, focus, &event);
    }

    /// Presses or releases the left button of the seat's pointer (what a tap is to a pointer app).
    fn left_button(&mut self, state: ButtonState, time: u32) {
        let Some(pointer) = self.seat.get_pointer() else {
            return;
        };
        let event = ButtonEvent {
            button: BTN_LEFT,
            state,
            serial: SERIAL_COUNTER.next_serial(),
            time,
        };
        pointer.button(self, &event);
        pointer.frame(self);
    }

    fn forward_down(&mut self, pointing: Pointing, slot: Option<u32>, pos: Point<f64, Logical>) {
        let focus = self.surface_under(pos);
        let serial = SERIAL_COUNTER.next_serial();
        let time = self.now_ms();
        match pointing {
            Pointing::Pointer => {
                self.move_pointer(pos, time);
                self.left_button(ButtonState::Pressed, time);
            }
            Pointing::Touch => {
                let Some(touch) = self.seat.get_touch() else {
                    return;
                };
                touch.down(
                    self,
                    focus,
                    &DownEvent {
                        slot: touch_point(slot),
                        location: pos,
                        serial,
                        time,
                    },
                );
                touch.frame(self);
            }
        }
    }

    fn forward_motion(&mut self, pointing: Pointing, slot: Option<u32>, pos: Point<f64, Logical>) {
        let time = self.now_ms();
        match pointing {
            Pointing::Pointer => {
                self.move_pointer(pos, time);
                if let Some(pointer) = self.seat.get_pointer() {
                    pointer.frame(self);
                }
            }
            Pointing::Touch => {
                let focus = self.surface_under(pos);
                let Some(touch) = self.seat.get_touch() else {
                    return;
                };
                touch.motion(
                    self,
                    focus,
                    &TouchMotionEvent {
                        slot: touch_point(slot),
                        location: pos,
                        time,
                    },
                );
                touch.frame(self);
            }
        }
    }

    fn forward_up(&mut self, pointing: Pointing, slot: Option<u32>) {
        let time = self.now_ms();
        match pointing {
            Pointing::Pointer => {
                self.left_button(ButtonState::Released, time);
            }
            Pointing::Touch => {
                let Some(touch) = self.seat.get_touch() else {
                    return;
                };
                touch.up(
                    self,
                    &UpEvent {
                        slot: touch_point(slot),
                        serial: SERIAL_COUNTER.next_serial(),
                        time,
                    },
                );
                touch.frame(self);
            }
        }
    }

    /// Handles one event from an input backend (libinput on a device).
    pub fn process_input_event<B: InputBackend>(&mut self, event: InputEvent<B>) {
        let screen = self.screen_size_logical();
        let size = (screen.x.max(1.0) as i32, screen.y.max(1.0) as i32);
        match event {
            InputEvent::Keyboard { event } => {
                // The power key locks the phone; it never reaches apps.
                if event.key_code() == Keycode::new(KEY_POWER + 8) {
                    if event.state() == KeyState::Pressed {
                        self.lock();
                    }
                    return;
                }
                if self.locked {
                    return;
                }
                let Some(keyboard) = self.seat.get_keyboard() else {
                    return;
                };
                let time = Event::time_msec(&event);
                keyboard.input::<(), _>(
                    self,
                    event.key_code(),
                    event.state(),
                    SERIAL_COUNTER.next_serial(),
                    time,
                    |_, _, _| FilterResult::Forward,
                );
            }
            InputEvent::PointerMotionAbsolute { event } => {
                let pos = event.position_transformed(size.into());
                self.contact_motion(Pointing::Pointer, None, pos);
            }
            InputEvent::PointerMotion { event } => {
                use smithay::backend::input::PointerMotionEvent;
                let mut pos =
                    self.pointer_location + Point::from((event.delta_x(), event.delta_y()));
                pos.x = pos.x.clamp(0.0, screen.x - 1.0);
                pos.y = pos.y.clamp(0.0, screen.y - 1.0);
                self.contact_motion(Pointing::Pointer, None, pos);
            }
            InputEvent::PointerButton { event } => {
                if event.button_code() != BTN_LEFT {
                    return;
                }
                match event.state() {
                    ButtonState::Pressed => {
                        self.contact_down(Pointing::Pointer, None, self.pointer_location)
                    }
                    ButtonState::Released => self.contact_up(Pointing::Pointer, None),
                }
            }
            InputEvent::TouchDown { event } => {
                let pos = event.position_transformed(size.into());
                self.contact_down(Pointing::Touch, slot_id(event.slot()), pos);
            }
            InputEvent::TouchMotion { event } => {
                let pos = event.position_transformed(size.into());
                self.contact_motion(Pointing::Touch, slot_id(event.slot()), pos);
            }
            InputEvent::TouchUp { event } => {
                self.contact_up(Pointing::Touch, slot_id(event.slot()))
            }
            InputEvent::TouchCancel { event } => {
                let slot: Option<u32> = slot_id(event.slot());
                if self.contacts.remove(&slot) == Some(Contact::App)
                    && let Some(touch) = self.seat.get_touch()
                {
                    touch.cancel(self);
                }
            }
            InputEvent::DeviceAdded { device } => {
                use smithay::backend::input::Device;
                tracing::info!(name = %device.name(), "input device added");
            }
            InputEvent::DeviceRemoved { device } => {
                use smithay::backend::input::Device;
                tracing::info!(name = %device.name(), "input device removed");
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(x: f64, y: f64) -> Point<f64, Logical> {
        Point::from((x, y))
    }

    const SCREEN: (f64, f64) = (360.0, 720.0);

    #[test]
    fn contacts_are_classified_by_where_they_start() {
        let screen = p(SCREEN.0, SCREEN.1);
        assert!(matches!(
            classify(p(180.0, 710.0), screen, false),
            Contact::HomeSwipe { .. }
        ));
        assert!(matches!(
            classify(p(180.0, 710.0), screen, true),
            Contact::HomeSwipe { .. }
        ));
        assert!(matches!(
            classify(p(5.0, 300.0), screen, false),
            Contact::BackSwipe { .. }
        ));
        assert!(matches!(
            classify(p(5.0, 300.0), screen, true),
            Contact::Launcher { .. }
        ));
        assert_eq!(classify(p(180.0, 300.0), screen, false), Contact::App);
    }

    #[test]
    fn contacts_without_a_slot_are_touch_point_zero() {
        // wl_touch ids must be >= 0: GTK 3 maps id -1 to the pointer's NULL sequence and
        // WebKitGTK aborts on it.
        assert_eq!(i32::from(touch_point(None)), 0);
        assert_eq!(i32::from(touch_point(Some(3))), 3);
    }

    #[test]
    fn swipes_and_taps() {
        let none = |_: Point<f64, Logical>| None;
        let now = std::time::Instant::now();
        let swipe = |start| Contact::HomeSwipe {
            start,
            last: start,
            still_since: now,
        };
        assert_eq!(
            finish(swipe(p(180.0, 715.0)), p(182.0, 500.0), none),
            ShellAction::GoHome
        );
        assert_eq!(
            finish(swipe(p(180.0, 715.0)), p(180.0, 700.0), none),
            ShellAction::None
        );
        let held = Contact::HomeSwipe {
            start: p(180.0, 715.0),
            last: p(180.0, 500.0),
            still_since: now - HOLD,
        };
        assert_eq!(finish(held, p(180.0, 500.0), none), ShellAction::Overview);
        assert_eq!(
            finish(
                Contact::BackSwipe {
                    start: p(4.0, 300.0)
                },
                p(120.0, 310.0),
                none
            ),
            ShellAction::Back
        );
        let launcher = Contact::Launcher {
            start: p(50.0, 100.0),
            last: p(50.0, 100.0),
        };
        assert_eq!(
            finish(launcher, p(55.0, 104.0), |_| Some(3)),
            ShellAction::Launch(3)
        );
        assert_eq!(finish(launcher, p(55.0, 104.0), none), ShellAction::None);
        assert_eq!(
            finish(launcher, p(-60.0, 110.0), |_| Some(3)),
            ShellAction::NextPage
        );
        assert_eq!(
            finish(launcher, p(200.0, 110.0), |_| Some(3)),
            ShellAction::PreviousPage
        );
        assert_eq!(
            finish(launcher, p(50.0, 300.0), |_| Some(3)),
            ShellAction::None
        );
    }
}
