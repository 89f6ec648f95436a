//! [`Compositor`]: builds the state and backend, runs the event loop.

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use cirrus_ui::text::TextRenderer;
use smithay::backend::drm::DrmEvent;
use smithay::backend::renderer::element::{
    RenderElementStates, default_primary_scanout_output_compare,
};
use smithay::desktop::utils::{
    OutputPresentationFeedback, surface_presentation_feedback_flags_from_states,
    surface_primary_scanout_output, update_surface_primary_scanout_output,
};
use smithay::desktop::{PopupManager, Space};
use smithay::input::SeatState;
use smithay::output::{Mode as OutputMode, Output, PhysicalProperties, Scale, Subpixel};
use smithay::reexports::calloop::channel::{Channel, Event as ChannelEvent, Sender, channel};
use smithay::reexports::calloop::generic::Generic;
use smithay::reexports::calloop::timer::{TimeoutAction, Timer};
use smithay::reexports::calloop::{EventLoop, Interest, LoopHandle, Mode, PostAction};
use smithay::reexports::wayland_protocols::wp::presentation_time::server::wp_presentation_feedback;
use smithay::reexports::wayland_server::Display;
use smithay::utils::Transform;
use smithay::utils::{Clock, Monotonic};
use smithay::wayland::compositor::CompositorState;
use smithay::wayland::output::OutputManagerState;
use smithay::wayland::presentation::Refresh;
use smithay::wayland::selection::data_device::DataDeviceState;
use smithay::wayland::shell::xdg::XdgShellState;
use smithay::wayland::shm::ShmState;
use smithay::wayland::socket::ListeningSocketSource;

pub use crate::backend::Screenshot;
use crate::backend::{Backend, drm, headless};
pub use crate::notifications::NotificationBus;
use crate::shell::{Shell, format_clock, until_next_minute};
use crate::state::{ClientState, State};

/// Which backend to drive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendKind {
    /// KMS on the given card (e.g. `/dev/dri/card0`).
    Drm { card: PathBuf },
    /// Offscreen, of the given size in physical pixels.
    Headless { width: u32, height: u32 },
}

/// Where clients connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SocketChoice {
    /// The first free `wayland-N` in `$XDG_RUNTIME_DIR`.
    Auto,
    /// This socket path (its directory must exist). The socket is made connectable by every local
    /// user (apps run under their own uids); the directory decides who reaches it.
    Path(PathBuf),
}

/// How to start the compositor.
#[derive(Debug, Clone)]
pub struct Config {
    pub backend: BackendKind,
    pub socket: SocketChoice,
    /// Scale (physical pixels per logical pixel) to advertise; `None` = from the screen width.
    pub scale: Option<i32>,
    /// Directories to load fonts from; empty = the system's.
    pub font_dirs: Vec<PathBuf>,
    /// Data directories whose `applications/*.desktop` fill the launcher (e.g. `/usr/share`).
    pub app_dirs: Vec<PathBuf>,
    /// Where sysfs is (`/sys`; tests pass a fake tree): battery and network indicators.
    pub sysfs: PathBuf,
    /// Where to serve `org.freedesktop.Notifications` (the system bus on the device).
    pub notification_bus: NotificationBus,
}

impl Config {
    /// Data directories searched for apps on a device.
    pub fn default_app_dirs() -> Vec<PathBuf> {
        // /data/system/applications: launcher entries the app manager writes for installed apps.
        vec![
            PathBuf::from("/data/system"),
            PathBuf::from("/usr/local/share"),
            PathBuf::from("/usr/share"),
        ]
    }
}

/// Requests other threads can send to a running compositor (see [`spawn_headless`]).
pub enum Command {
    /// Render now and send back the frame.
    Screenshot(std::sync::mpsc::Sender<anyhow::Result<Screenshot>>),
    /// Inject touch-like input (logical coordinates), as a touchscreen or a pointer would send it.
    Input(InjectedInput),
    /// Show the lock screen (what the power key does).
    Lock,
    /// Leave the event loop.
    Stop,
}

/// Input injected by tests and tools, in logical coordinates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum InjectedInput {
    Down {
        pointing: crate::input::Pointing,
        x: f64,
        y: f64,
    },
    Motion {
        pointing: crate::input::Pointing,
        x: f64,
        y: f64,
    },
    Up {
        pointing: crate::input::Pointing,
    },
}

/// The event loop's data: the compositor state and the backend drawing it.
pub struct Cirrus {
    pub state: State,
    pub backend: Backend,
    /// Presentation feedback of the frame on its way to the screen.
    pending_feedback: Option<OutputPresentationFeedback>,
    /// Frames presented so far (presentation-time's sequence number).
    frame_seq: u64,
    clock: Clock<Monotonic>,
}

/// How often battery and network are re-read.
const INDICATOR_POLL: Duration = Duration::from_secs(5);

/// Frame period of the headless backend.
const HEADLESS_FRAME: Duration = Duration::from_micros(16_667);

/// A compositor ready to run.
pub struct Compositor {
    event_loop: EventLoop<'static, Cirrus>,
    data: Cirrus,
    socket_path: PathBuf,
}

impl Compositor {
    pub fn new(config: Config) -> anyhow::Result<Self> {
        let event_loop: EventLoop<'static, Cirrus> =
            EventLoop::try_new().context("creating the event loop")?;
        let handle = event_loop.handle();
        let display: Display<State> = Display::new().context("creating the Wayland display")?;
        let dh = display.handle();

        // The screen: its size decides the layout and the output's mode.
        let (output, mode, backend_setup) = match &config.backend {
            BackendKind::Headless { width, height } => {
                let output = Output::new(
                    "HEADLESS-1".into(),
                    PhysicalProperties {
                        size: (0, 0).into(),
                        subpixel: Subpixel::Unknown,
                        make: "Cirrus".into(),
                        model: "Headless".into(),
                    },
                );
                let mode = OutputMode {
                    size: (*width as i32, *height as i32).into(),
                    refresh: 60_000,
                };
                (output, mode, None)
            }
            BackendKind::Drm { card } => {
                drm::wait_for_card(card, Duration::from_secs(10))?;
                let (device, notifier, fd, choice) = drm::open(card)?;
                let (output, mode) = drm::DrmBackend::describe_output(&choice);
                tracing::info!(card = %card.display(), connector = %choice.connector_name, width = mode.size.w, height = mode.size.h, refresh_mhz = mode.refresh, "display found");
                (
                    output,
                    mode,
                    Some((device, notifier, fd, choice, card.clone())),
                )
            }
        };
        let (width, height) = (mode.size.w.max(1) as u32, mode.size.h.max(1) as u32);
        let text = if config.font_dirs.is_empty() {
            TextRenderer::new()
        } else {
            TextRenderer::with_font_dirs(config.font_dirs.iter().map(|p| p.as_path()))
        };
        let scale = config
            .scale
            .unwrap_or_else(|| {
                cirrus_ui::shell::ShellLayout::new(width, height)
                    .scale
                    .round()
                    .max(1.0) as i32
            })
            .max(1);
        let shell = Shell::new(width, height, scale, text);
        output.change_current_state(
            Some(mode),
            Some(Transform::Normal),
            Some(Scale::Integer(scale)),
            Some((0, 0).into()),
        );
        output.set_preferred(mode);
        let _global = output.create_global::<State>(&dh);

        let backend = match backend_setup {
            None => Backend::Headless(headless::HeadlessBackend::new(&output, width, height)?),
            Some((device, notifier, fd, display, card)) => {
                let backend = drm::DrmBackend::new(device, fd, display, &output, card)?;
                handle
                    .insert_source(notifier, |event, _meta, data: &mut Cirrus| match event {
                        DrmEvent::VBlank(_crtc) => data.on_vblank(),
                        DrmEvent::Error(err) => tracing::error!(%err, "DRM device error"),
                    })
                    .map_err(|e| anyhow!("watching the DRM device: {e}"))?;
                // Without input the shell is still shown; say so loudly rather than fail.
                if let Err(err) = crate::backend::libinput::start(&handle, "seat0") {
                    tracing::error!("no input devices: {err:#}");
                }
                Backend::Drm(backend)
            }
        };

        let mut seat_state = SeatState::new();
        let mut seat = seat_state.new_wl_seat(&dh, "seat0");
        if let Err(err) = seat.add_keyboard(Default::default(), 400, 30) {
            tracing::warn!(%err, "no keyboard: the xkb keymap could not be compiled (is xkb-data installed?)");
        }
        seat.add_pointer();

        seat.add_touch();

        let mut space = Space::default();
        space.map_output(&output, (0, 0));

        let apps = crate::apps::discover(&config.app_dirs);
        tracing::info!(count = apps.len(), "apps on the launcher");
        let mut shell = shell;
        shell.set_launcher_items(crate::apps::launcher_items(&apps));
        let socket_path = Self::listen(&handle, &config.socket)?;
        // Apps installed or removed while we run appear on (leave) the launcher.
        match crate::app_watch::AppWatch::new(config.app_dirs.clone()) {
            Ok(watch) => watch.insert(&handle)?,
            Err(err) => tracing::warn!(%err, "the launcher will not follow app installs"),
        }

        let state = State {
            display_handle: dh.clone(),
            loop_signal: event_loop.get_signal(),
            started: Instant::now(),
            compositor_state: CompositorState::new::<State>(&dh),
            xdg_shell_state: XdgShellState::new::<State>(&dh),
            xdg_decoration_state: smithay::wayland::shell::xdg::decoration::XdgDecorationState::new::<
                State,
            >(&dh),
            protocols: crate::handlers::protocols::Protocols::new(&dh),
            text_input_protocols: crate::handlers::input_method::TextInputProtocols::new(&dh),
            shm_state: ShmState::new::<State>(&dh, vec![]),
            output_manager_state: OutputManagerState::new_with_xdg_output::<State>(&dh),
            seat_state,
            data_device_state: DataDeviceState::new::<State>(&dh),
            popups: PopupManager::default(),
            seat,
            space,
            shell,
            output,
            apps,
            launcher_page: 0,
            showing_home: true,
            overview: false,
            locked: false,
            contacts: Default::default(),
            pointer_location: (0.0, 0.0).into(),
            children: Vec::new(),
            socket_path: socket_path.clone(),
            needs_redraw: true,
            first_frame_done: false,
            osk: crate::osk::OnScreenKeyboard::new(&cirrus_ui::shell::ShellLayout::new(
                width, height,
            )),
            builtin_input_method: None,
            notifications: Default::default(),
            notification_signals: Self::serve_notifications(&handle, &config.notification_bus)?,
        };

        handle
            .insert_source(
                Generic::new(display, Interest::READ, Mode::Level),
                |_, display, data: &mut Cirrus| {
                    // SAFETY: the display is not dropped while the source exists.
                    let display = unsafe { display.get_mut() };
                    if let Err(err) = display.dispatch_clients(&mut data.state) {
                        tracing::error!(%err, "dispatching Wayland clients");
                    }
                    Ok(PostAction::Continue)
                },
            )
            .map_err(|e| anyhow!("watching the Wayland display: {e}"))?;

        let mut state = state;
        state.start_builtin_keyboard(&handle)?;
        state.redraw_keyboard();

        Self::start_clock(&handle)?;
        let sysfs = config.sysfs.clone();
        handle
            .insert_source(Timer::immediate(), move |_, _, data: &mut Cirrus| {
                let battery = crate::system_status::read_battery(&sysfs);
                let network = crate::system_status::read_network(&sysfs);
                if data.state.shell.set_indicators(battery, network) {
                    data.state.needs_redraw = true;
                }
                TimeoutAction::ToDuration(INDICATOR_POLL)
            })
            .map_err(|e| anyhow!("starting the status indicators: {e}"))?;
        handle
            .insert_source(
                Timer::from_duration(Duration::from_secs(1)),
                |_, _, data: &mut Cirrus| {
                    data.state.reap_children();
                    TimeoutAction::ToDuration(Duration::from_secs(1))
                },
            )
            .map_err(|e| anyhow!("starting the reaper: {e}"))?;
        if matches!(backend, Backend::Headless(_)) {
            Self::start_frame_timer(&handle)?;
        }

        let mut data = Cirrus {
            state,
            backend,
            pending_feedback: None,
            frame_seq: 0,
            clock: Clock::new(),
        };
        data.update_clock();
        tracing::info!(backend = data.backend.name(), socket = %socket_path.display(), width, height, scale, "compositor ready for clients");
        Ok(Self {
            event_loop,
            data,
            socket_path,
        })
    }

    fn listen(
        handle: &LoopHandle<'static, Cirrus>,
        socket: &SocketChoice,
    ) -> anyhow::Result<PathBuf> {
        let insert = |data: &mut Cirrus, stream: std::os::unix::net::UnixStream| {
            let client_state = Arc::new(ClientState::for_stream(&stream));
            if let Err(err) = data
                .state
                .display_handle
                .insert_client(stream, client_state)
            {
                tracing::warn!(%err, "could not accept a client");
            }
        };
        match socket {
            SocketChoice::Auto => {
                let source = ListeningSocketSource::new_auto()
                    .context("creating the Wayland socket in $XDG_RUNTIME_DIR")?;
                let name: OsString = source.socket_name().to_os_string();
                let dir = std::env::var_os("XDG_RUNTIME_DIR")
                    .map(PathBuf::from)
                    .unwrap_or_default();
                handle
                    .insert_source(source, move |stream, _, data: &mut Cirrus| {
                        insert(data, stream)
                    })
                    .map_err(|e| anyhow!("watching the Wayland socket: {e}"))?;
                Ok(dir.join(name))
            }
            SocketChoice::Path(path) => {
                let _ = std::fs::remove_file(path);
                let listener = UnixListener::bind(path)
                    .with_context(|| format!("binding {}", path.display()))?;
                // Apps run under their own uids and must reach the shell: the socket itself is
                // open to every local user (0666); who may connect is the directory's permissions.
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))
                    .with_context(|| format!("opening {} to apps", path.display()))?;
                listener
                    .set_nonblocking(true)
                    .context("making the socket non-blocking")?;
                handle
                    .insert_source(
                        Generic::new(listener, Interest::READ, Mode::Level),
                        move |_, listener, data: &mut Cirrus| {
                            loop {
                                match listener.accept() {
                                    Ok((stream, _)) => insert(data, stream),
                                    Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {
                                        break;
                                    }
                                    Err(err) => {
                                        tracing::warn!(%err, "accepting a client");
                                        break;
                                    }
                                }
                            }
                            Ok(PostAction::Continue)
                        },
                    )
                    .map_err(|e| anyhow!("watching the Wayland socket: {e}"))?;
                Ok(path.clone())
            }
        }
    }

    /// Starts the notification server on `bus`; its calls arrive on the loop through a channel.
    fn serve_notifications(
        handle: &LoopHandle<'static, Cirrus>,
        bus: &NotificationBus,
    ) -> anyhow::Result<Option<std::sync::mpsc::Sender<crate::notifications::Signal>>> {
        if *bus == NotificationBus::None {
            return Ok(None);
        }
        let (to_loop, from_bus) = channel::<crate::notifications::BusEvent>();
        let timers = handle.clone();
        // The expiry timer of each open notification, removed when it closes some other way so
        // a sender cannot pile up timers.
        let mut expiry: std::collections::HashMap<
            u32,
            smithay::reexports::calloop::RegistrationToken,
        > = Default::default();
        handle
            .insert_source(from_bus, move |event, _, data: &mut Cirrus| {
                let ChannelEvent::Msg(event) = event else {
                    return;
                };
                let due = data.state.on_bus_event(event);
                expiry.retain(|id, token| {
                    let keep = data.state.notifications.is_open(*id)
                        && due.is_none_or(|(due_id, _, _)| due_id != *id);
                    if !keep {
                        timers.remove(*token);
                    }
                    keep
                });
                if let Some((id, serial, timeout)) = due {
                    let timer = Timer::from_duration(timeout);
                    match timers.insert_source(timer, move |_, _, data: &mut Cirrus| {
                        data.state.expire_notification(id, serial);
                        TimeoutAction::Drop
                    }) {
                        Ok(token) => {
                            expiry.insert(id, token);
                        }
                        Err(err) => tracing::warn!(%err, id, "notification expiry timer"),
                    }
                }
            })
            .map_err(|e| anyhow!("watching the notification server: {e}"))?;
        Ok(crate::notifications::start(bus, to_loop))
    }

    fn start_clock(handle: &LoopHandle<'static, Cirrus>) -> anyhow::Result<()> {
        let first = until_next_minute(chrono::Local::now());
        handle
            .insert_source(Timer::from_duration(first), |_, _, data: &mut Cirrus| {
                data.update_clock();
                TimeoutAction::ToDuration(until_next_minute(chrono::Local::now()))
            })
            .map_err(|e| anyhow!("starting the clock: {e}"))?;
        Ok(())
    }

    fn start_frame_timer(handle: &LoopHandle<'static, Cirrus>) -> anyhow::Result<()> {
        const FRAME: Duration = HEADLESS_FRAME;
        handle
            .insert_source(
                Timer::from_duration(FRAME),
                |deadline, _, data: &mut Cirrus| {
                    data.render_if_needed();
                    // Ticks on a fixed grid, like a display's vblank: a late wake-up or a slow frame
                    // does not push every later frame back (a missed tick is skipped, not queued).
                    let now = Instant::now();
                    let mut next = deadline + FRAME;
                    while next <= now {
                        next += FRAME;
                    }
                    TimeoutAction::ToInstant(next)
                },
            )
            .map_err(|e| anyhow!("starting the frame timer: {e}"))?;
        Ok(())
    }

    /// The path of the Wayland socket clients connect to.
    pub fn socket_path(&self) -> &std::path::Path {
        &self.socket_path
    }

    pub fn data(&mut self) -> &mut Cirrus {
        &mut self.data
    }

    /// Accepts commands from other threads.
    pub fn command_channel(&mut self) -> anyhow::Result<Sender<Command>> {
        let (sender, receiver): (Sender<Command>, Channel<Command>) = channel();
        self.event_loop
            .handle()
            .insert_source(receiver, |event, _, data: &mut Cirrus| match event {
                ChannelEvent::Msg(Command::Screenshot(reply)) => {
                    let _ = reply.send(data.screenshot());
                }
                ChannelEvent::Msg(Command::Lock) => data.state.lock(),
                ChannelEvent::Msg(Command::Input(input)) => {
                    match input {
                        InjectedInput::Down { pointing, x, y } => {
                            data.state.contact_down(pointing, None, (x, y).into())
                        }
                        InjectedInput::Motion { pointing, x, y } => {
                            data.state.contact_motion(pointing, None, (x, y).into())
                        }
                        InjectedInput::Up { pointing } => data.state.contact_up(pointing, None),
                    }
                    data.state.needs_redraw = true;
                }
                ChannelEvent::Msg(Command::Stop) | ChannelEvent::Closed => {
                    data.state.loop_signal.stop()
                }
            })
            .map_err(|e| anyhow!("command channel: {e}"))?;
        Ok(sender)
    }

    /// Stops on SIGTERM/SIGINT.
    pub fn stop_on_signals(&mut self) -> anyhow::Result<()> {
        use smithay::reexports::calloop::signals::{Signal, Signals};
        let signals =
            Signals::new(&[Signal::SIGTERM, Signal::SIGINT]).context("watching signals")?;
        self.event_loop
            .handle()
            .insert_source(signals, |event, _, data: &mut Cirrus| {
                tracing::info!(signal = ?event.signal(), "stopping");
                data.state.loop_signal.stop();
            })
            .map_err(|e| anyhow!("watching signals: {e}"))?;
        Ok(())
    }

    /// Runs one iteration of the event loop.
    pub fn dispatch(&mut self, timeout: Option<Duration>) -> anyhow::Result<()> {
        self.event_loop
            .dispatch(timeout, &mut self.data)
            .context("event loop")?;
        self.data.after_dispatch();
        Ok(())
    }

    /// Runs until stopped (signal, [`Command::Stop`]).
    pub fn run(&mut self) -> anyhow::Result<()> {
        self.data.render_if_needed();
        let result = self
            .event_loop
            .run(None, &mut self.data, |data| data.after_dispatch())
            .context("event loop");
        self.data.state.terminate_children();
        result
    }
}

impl Cirrus {
    fn update_clock(&mut self) {
        let now = chrono::Local::now();
        self.state.shell.set_date(crate::shell::format_date(now));
        if self.state.shell.set_clock(format_clock(now)) {
            self.state.needs_redraw = true;
            self.render_if_needed();
        }
    }

    fn after_dispatch(&mut self) {
        self.state.space.refresh();
        self.state.popups.cleanup();
        if matches!(self.backend, Backend::Drm(_)) {
            self.render_if_needed();
        }
        if let Err(err) = self.state.display_handle.flush_clients() {
            tracing::warn!(%err, "flushing clients");
        }
    }

    /// Draws a frame if the screen changed and the backend can take one.
    pub fn render_if_needed(&mut self) {
        if !self.state.needs_redraw {
            return;
        }
        let result = match &mut self.backend {
            Backend::Headless(b) => b.render(&self.state).map(Some),
            Backend::Drm(b) => {
                if b.frame_pending() {
                    return;
                }
                b.render(&self.state)
            }
        };
        self.state.needs_redraw = false;
        if self.state.osk.sliding(Instant::now()) {
            // The keyboard slides in or out: keep drawing until it rests.
            self.state.needs_redraw = true;
        }
        match result {
            Ok(Some(states)) => {
                let feedback = self.take_presentation_feedback(&states);
                match self.backend {
                    Backend::Headless(_) => {
                        self.pending_feedback = Some(feedback);
                        self.frame_presented(
                            Refresh::Fixed(HEADLESS_FRAME),
                            wp_presentation_feedback::Kind::empty(),
                        );
                    }
                    Backend::Drm(_) => self.pending_feedback = Some(feedback),
                }
            }
            Ok(None) => {}
            Err(err) => tracing::error!("{err:#}"),
        }
    }

    /// Collects the presentation-time feedback requests of what was just rendered.
    fn take_presentation_feedback(
        &mut self,
        states: &RenderElementStates,
    ) -> OutputPresentationFeedback {
        let output = self.state.output.clone();
        let mut feedback = OutputPresentationFeedback::new(&output);
        if let Some(window) = self.state.shown_window() {
            window.with_surfaces(|surface, data| {
                update_surface_primary_scanout_output(
                    surface,
                    &output,
                    data,
                    states,
                    default_primary_scanout_output_compare,
                );
            });
            window.take_presentation_feedback(
                &mut feedback,
                surface_primary_scanout_output,
                |surface, _| surface_presentation_feedback_flags_from_states(surface, states),
            );
        }
        feedback
    }

    fn on_vblank(&mut self) {
        let refresh = match &mut self.backend {
            Backend::Drm(b) => {
                if let Err(err) = b.on_vblank() {
                    tracing::error!("{err:#}");
                }
                Refresh::Fixed(b.refresh())
            }
            Backend::Headless(_) => Refresh::Fixed(HEADLESS_FRAME),
        };
        self.frame_presented(
            refresh,
            wp_presentation_feedback::Kind::Vsync | wp_presentation_feedback::Kind::HwCompletion,
        );
        self.render_if_needed();
    }

    /// A frame reached the screen: tell clients when (presentation-time) and to draw their next one.
    fn frame_presented(&mut self, refresh: Refresh, flags: wp_presentation_feedback::Kind) {
        self.frame_seq += 1;
        if let Some(mut feedback) = self.pending_feedback.take() {
            feedback.presented::<_, Monotonic>(self.clock.now(), refresh, self.frame_seq, flags);
        }
        if !self.state.first_frame_done {
            self.state.first_frame_done = true;
            tracing::info!(
                backend = self.backend.name(),
                since_start_ms = self.state.started.elapsed().as_millis() as u64,
                "first frame presented"
            );
            crate::notify::notify("READY=1\nSTATUS=showing the home screen");
        }
        let output = self.state.output.clone();
        let now = self.state.started.elapsed();
        if self.state.overview {
            for window in self.state.windows_recent_first() {
                window.send_frame(&output, now, Some(Duration::ZERO), |_, _| {
                    Some(output.clone())
                });
            }
        } else if let Some(window) = self.state.shown_window() {
            window.send_frame(&output, now, Some(Duration::ZERO), |_, _| {
                Some(output.clone())
            });
        }
    }

    /// Renders now (headless) and returns the frame. DRM frames are read back by the emulator
    /// (QMP screendump) instead.
    pub fn screenshot(&mut self) -> anyhow::Result<Screenshot> {
        match &mut self.backend {
            Backend::Headless(b) => {
                self.state.space.refresh();
                b.render(&self.state)?;
                b.screenshot()
            }
            Backend::Drm(_) => Err(anyhow!(
                "screenshots are only taken by the headless backend"
            )),
        }
    }
}

/// A headless compositor running on its own thread, for tests and tools.
pub struct HeadlessSession {
    pub socket_path: PathBuf,
    commands: Sender<Command>,
    thread: Option<std::thread::JoinHandle<anyhow::Result<()>>>,
}

impl HeadlessSession {
    /// Renders the current screen and returns it.
    pub fn screenshot(&self) -> anyhow::Result<Screenshot> {
        let (reply, answer) = std::sync::mpsc::channel();
        self.commands
            .send(Command::Screenshot(reply))
            .map_err(|_| anyhow!("the compositor thread has stopped"))?;
        answer
            .recv_timeout(Duration::from_secs(30))
            .map_err(|_| anyhow!("no screenshot from the compositor"))?
    }

    /// Shows the lock screen, as the power key does.
    pub fn lock(&self) -> anyhow::Result<()> {
        self.commands
            .send(Command::Lock)
            .map_err(|_| anyhow!("the compositor thread has stopped"))
    }

    /// Sends touch-like input.
    pub fn input(&self, input: InjectedInput) -> anyhow::Result<()> {
        self.commands
            .send(Command::Input(input))
            .map_err(|_| anyhow!("the compositor thread has stopped"))
    }

    /// A tap at logical (`x`, `y`).
    pub fn tap(&self, pointing: crate::input::Pointing, x: f64, y: f64) -> anyhow::Result<()> {
        self.input(InjectedInput::Down { pointing, x, y })?;
        self.input(InjectedInput::Up { pointing })
    }

    /// A swipe from `from` to `to` (logical) in `steps` moves.
    pub fn swipe(
        &self,
        pointing: crate::input::Pointing,
        from: (f64, f64),
        to: (f64, f64),
        steps: u32,
    ) -> anyhow::Result<()> {
        self.input(InjectedInput::Down {
            pointing,
            x: from.0,
            y: from.1,
        })?;
        let steps = steps.max(1);
        for i in 1..=steps {
            let t = i as f64 / steps as f64;
            self.input(InjectedInput::Motion {
                pointing,
                x: from.0 + (to.0 - from.0) * t,
                y: from.1 + (to.1 - from.1) * t,
            })?;
        }
        self.input(InjectedInput::Up { pointing })
    }

    /// Stops the compositor and returns how its thread ended.
    pub fn stop(mut self) -> anyhow::Result<()> {
        let _ = self.commands.send(Command::Stop);
        match self.thread.take() {
            Some(t) => t
                .join()
                .map_err(|_| anyhow!("the compositor thread panicked"))?,
            None => Ok(()),
        }
    }

    /// Whether the compositor thread is still running.
    pub fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }
}

impl Drop for HeadlessSession {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts a headless compositor of `width`×`height` listening on `socket_path`, its launcher filled
/// from `app_dirs` (data directories holding `applications/*.desktop`). It shows no battery or
/// network indicator (the host's are not the phone's); see [`spawn_headless_with_sysfs`].
pub fn spawn_headless(
    width: u32,
    height: u32,
    socket_path: PathBuf,
    app_dirs: Vec<PathBuf>,
) -> anyhow::Result<HeadlessSession> {
    spawn_headless_with_sysfs(
        width,
        height,
        socket_path,
        app_dirs,
        PathBuf::from("/nonexistent-sysfs"),
    )
}

/// [`spawn_headless`] reading battery and network from the sysfs tree at `sysfs`.
pub fn spawn_headless_with_sysfs(
    width: u32,
    height: u32,
    socket_path: PathBuf,
    app_dirs: Vec<PathBuf>,
    sysfs: PathBuf,
) -> anyhow::Result<HeadlessSession> {
    spawn_headless_config(Config {
        backend: BackendKind::Headless { width, height },
        socket: SocketChoice::Path(socket_path),
        scale: None,
        font_dirs: vec![],
        app_dirs,
        sysfs,
        notification_bus: NotificationBus::None,
    })
}

/// Runs a compositor with `config` (its backend must be headless and its socket a path) on a
/// thread of its own, e.g. to serve notifications on a test's private bus.
pub fn spawn_headless_config(config: Config) -> anyhow::Result<HeadlessSession> {
    let SocketChoice::Path(socket_path) = config.socket.clone() else {
        return Err(anyhow!("a headless session needs a socket path"));
    };
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("cirrus-compositor".into())
        .spawn(move || -> anyhow::Result<()> {
            let mut compositor = match Compositor::new(config)
                .and_then(|mut c| c.command_channel().map(|s| (c, s)))
            {
                Ok((c, sender)) => {
                    let _ = ready_tx.send(Ok(sender));
                    c
                }
                Err(err) => {
                    let _ = ready_tx.send(Err(err));
                    return Ok(());
                }
            };
            compositor.run()
        })
        .context("starting the compositor thread")?;
    let commands = ready_rx
        .recv()
        .map_err(|_| anyhow!("the compositor thread died while starting"))??;
    Ok(HeadlessSession {
        socket_path,
        commands,
        thread: Some(thread),
    })
}
