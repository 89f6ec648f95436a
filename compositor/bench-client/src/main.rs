//! `cirrus-frame-bench`: a Wayland client that measures how fast a compositor shows frames.
//!
//! It opens one xdg toplevel (xdg_wm_base bound at version ≤ 3, so weston 10 accepts it), draws it
//! through plain wl_shm from a pool of several buffers, and behaves like a real animating app: on
//! every frame callback it repaints the whole window with new content, damages it, asks for the
//! next frame callback and for presentation feedback, and commits. After a warm-up it counts frame
//! callbacks over a fixed time and records commit→present latency from `wp_presentation`.
//!
//! Used by `cargo xtask bench compositor` against Cirrus and weston; it prints line-oriented
//! `key=value` records on stdout:
//! - `configured buffer=WxH scale=S` once the first frame is committed,
//! - `measuring` when the measured window starts,
//! - `result frames=… seconds=… fps=… presented=… discarded=… p50_us=… p95_us=… buffer=WxH`,
//!
//! then, with `--hold`, keeps its window until stdin is closed (so the caller can sample the
//! compositor's memory while the window is still shown).

use std::fs::File;
use std::io::{BufRead, Write};
use std::os::fd::{AsFd, FromRawFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use memmap2::MmapMut;
use wayland_client::protocol::{
    wl_buffer, wl_callback, wl_compositor, wl_output, wl_registry, wl_shm, wl_shm_pool, wl_surface,
};
use wayland_client::{Connection, Dispatch, QueueHandle, delegate_noop};
use wayland_protocols::wp::presentation_time::client::{wp_presentation, wp_presentation_feedback};
use wayland_protocols::xdg::shell::client::{xdg_surface, xdg_toplevel, xdg_wm_base};

/// Command line.
struct Args {
    socket: Option<PathBuf>,
    warmup: Duration,
    seconds: Duration,
    /// Buffer size (pixels) when the compositor leaves the size to the client (configure 0×0).
    size: (i32, i32),
    buffers: usize,
    hold: bool,
}

const USAGE: &str = "usage: cirrus-frame-bench [--socket PATH] [--warmup SECS] [--seconds SECS] \
[--size WxH] [--buffers N] [--hold]";

fn parse_args() -> Result<Args> {
    let mut args = Args {
        socket: None,
        warmup: Duration::from_secs(1),
        seconds: Duration::from_secs(5),
        size: (720, 1440),
        buffers: 3,
        hold: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().with_context(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--socket" => args.socket = Some(PathBuf::from(value("--socket")?)),
            "--warmup" => {
                args.warmup = Duration::from_secs_f64(value("--warmup")?.parse()?);
            }
            "--seconds" => {
                args.seconds = Duration::from_secs_f64(value("--seconds")?.parse()?);
            }
            "--size" => {
                let v = value("--size")?;
                let (w, h) = v
                    .split_once('x')
                    .with_context(|| format!("--size {v}: expected WxH"))?;
                args.size = (w.parse()?, h.parse()?);
                if !(1..=8192).contains(&args.size.0) || !(1..=8192).contains(&args.size.1) {
                    bail!("--size {v}: each side must be 1..=8192");
                }
            }
            "--buffers" => {
                args.buffers = value("--buffers")?.parse()?;
                if !(3..=8).contains(&args.buffers) {
                    bail!("--buffers must be 3..=8");
                }
            }
            "--hold" => args.hold = true,
            "-h" | "--help" => {
                let _ = writeln!(std::io::stdout(), "{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument `{other}`\n{USAGE}"),
        }
    }
    Ok(args)
}

/// The shm buffers the window is drawn from, all in one pool.
struct Buffers {
    map: MmapMut,
    buffers: Vec<wl_buffer::WlBuffer>,
    busy: Vec<bool>,
    width: i32,
    height: i32,
    pool: wl_shm_pool::WlShmPool,
}

impl Buffers {
    fn new(
        shm: &wl_shm::WlShm,
        qh: &QueueHandle<Bench>,
        width: i32,
        height: i32,
        count: usize,
    ) -> Result<Self> {
        let stride = width * 4;
        let one = stride as usize * height as usize;
        let total = one * count;
        let pool_size = i32::try_from(total).context("buffer pool larger than 2 GiB")?;
        // SAFETY: memfd_create with a valid NUL-terminated name; the result is checked below.
        let fd = unsafe { libc::memfd_create(c"cirrus-frame-bench".as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error()).context("memfd_create");
        }
        // SAFETY: `fd` is a fresh descriptor we own.
        let file = unsafe { File::from_raw_fd(fd) };
        file.set_len(total as u64).context("sizing the shm pool")?;
        // SAFETY: the memfd is private to this process and the compositor, which only reads it.
        let map = unsafe { MmapMut::map_mut(&file) }.context("mapping the shm pool")?;
        let pool = shm.create_pool(file.as_fd(), pool_size, qh, ());
        let buffers = (0..count)
            .map(|i| {
                pool.create_buffer(
                    (i * one) as i32,
                    width,
                    height,
                    stride,
                    wl_shm::Format::Xrgb8888,
                    qh,
                    i,
                )
            })
            .collect();
        Ok(Self {
            map,
            buffers,
            busy: vec![false; count],
            width,
            height,
            pool,
        })
    }

    /// Paints buffer `index` for frame `n`: horizontal bands that move every frame, so every
    /// pixel changes like in a scrolling or animating app.
    fn paint(&mut self, index: usize, n: u32) {
        let (w, h) = (self.width as usize, self.height as usize);
        let one = w * h * 4;
        let bytes = &mut self.map[index * one..(index + 1) * one];
        for (y, row) in bytes.chunks_exact_mut(w * 4).enumerate() {
            let v = (y as u32).wrapping_add(n.wrapping_mul(7));
            let px =
                0xff00_0000 | ((v & 0xff) << 16) | (((v >> 1) & 0xff) << 8) | ((v >> 2) & 0xff);
            let px = px.to_ne_bytes();
            for p in row.chunks_exact_mut(4) {
                p.copy_from_slice(&px);
            }
        }
    }

    fn destroy(self) {
        for b in &self.buffers {
            b.destroy();
        }
        self.pool.destroy();
    }
}

/// Everything the client knows.
#[derive(Default)]
struct Bench {
    compositor: Option<wl_compositor::WlCompositor>,
    shm: Option<wl_shm::WlShm>,
    wm_base: Option<xdg_wm_base::XdgWmBase>,
    presentation: Option<wp_presentation::WpPresentation>,
    output_scale: i32,
    /// The presentation clock (CLOCK_MONOTONIC unless the compositor says otherwise).
    clock: libc::clockid_t,
    /// Last configure: serial and logical size (0 = ours to choose).
    configure: Option<(u32, i32, i32)>,
    /// Size from the last xdg_toplevel.configure, applied by the xdg_surface.configure after it.
    pending_size: (i32, i32),
    acked: Option<u32>,
    closed: bool,
    /// Frame callbacks received (total).
    frames: u64,
    /// A frame callback arrived and the next frame is due.
    frame_due: bool,
    /// Commit→present latencies (µs) of frames presented while measuring.
    latencies: Vec<u64>,
    presented: u64,
    discarded: u64,
    measuring: bool,
    buffers: Option<Buffers>,
}

/// Now on `clock`, in nanoseconds.
fn now_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn connect(args: &Args) -> Result<Connection> {
    match &args.socket {
        Some(path) => {
            let stream = std::os::unix::net::UnixStream::connect(path)
                .with_context(|| format!("connecting to {}", path.display()))?;
            Connection::from_socket(stream).context("wayland handshake")
        }
        None => Connection::connect_to_env().context("connecting to $WAYLAND_DISPLAY"),
    }
}

fn main() -> Result<()> {
    let args = parse_args()?;
    let conn = connect(&args)?;
    let mut queue = conn.new_event_queue();
    let qh = queue.handle();
    conn.display().get_registry(&qh, ());
    let mut bench = Bench {
        output_scale: 1,
        clock: libc::CLOCK_MONOTONIC,
        ..Default::default()
    };
    queue.roundtrip(&mut bench).context("registry roundtrip")?;
    queue.roundtrip(&mut bench).context("globals roundtrip")?;
    let (Some(compositor), Some(wm_base), Some(shm)) = (
        bench.compositor.clone(),
        bench.wm_base.clone(),
        bench.shm.clone(),
    ) else {
        bail!("the compositor lacks wl_compositor, xdg_wm_base or wl_shm");
    };
    let presentation = bench
        .presentation
        .clone()
        .context("the compositor lacks wp_presentation")?;

    let surface = compositor.create_surface(&qh, ());
    let xdg = wm_base.get_xdg_surface(&surface, &qh, ());
    let toplevel = xdg.get_toplevel(&qh, ());
    toplevel.set_title("cirrus-frame-bench".into());
    toplevel.set_app_id("org.cirrus.FrameBench".into());
    surface.commit();
    while bench.configure.is_none() {
        queue
            .blocking_dispatch(&mut bench)
            .context("waiting for configure")?;
    }

    let stdout = std::io::stdout();
    let mut n: u32 = 0;
    let mut start = Instant::now();
    let mut measure_start: Option<(Instant, u64)> = None;
    bench.frame_due = true;
    let (frames, elapsed) = loop {
        if bench.closed {
            bail!("the compositor closed the window");
        }
        if bench.frame_due {
            let (serial, lw, lh) = bench.configure.context("not configured")?;
            let scale = bench.output_scale.max(1);
            let (bw, bh) = if lw > 0 && lh > 0 {
                (lw * scale, lh * scale)
            } else {
                (args.size.0, args.size.1)
            };
            if bench
                .buffers
                .as_ref()
                .is_none_or(|b| b.width != bw || b.height != bh)
            {
                if let Some(old) = bench.buffers.take() {
                    old.destroy();
                }
                bench.buffers = Some(Buffers::new(&shm, &qh, bw, bh, args.buffers)?);
                if n == 0 {
                    writeln!(
                        stdout.lock(),
                        "configured buffer={bw}x{bh} scale={}",
                        if lw > 0 { scale } else { 1 }
                    )?;
                }
            }
            let Some(buffers) = bench.buffers.as_mut() else {
                bail!("no buffers");
            };
            if let Some(free) = buffers.busy.iter().position(|b| !b) {
                buffers.paint(free, n);
                buffers.busy[free] = true;
                if bench.acked != Some(serial) {
                    xdg.ack_configure(serial);
                    bench.acked = Some(serial);
                }
                if lw > 0 {
                    surface.set_buffer_scale(scale);
                }
                surface.attach(Some(&buffers.buffers[free]), 0, 0);
                surface.damage_buffer(0, 0, bw, bh);
                surface.frame(&qh, ());
                let commit_ns = now_ns(bench.clock);
                presentation.feedback(&surface, &qh, commit_ns);
                surface.commit();
                n = n.wrapping_add(1);
                bench.frame_due = false;
            }
            // else: every buffer is still held by the compositor; draw on the next release.
        }
        conn.flush().context("flushing requests")?;
        queue
            .blocking_dispatch(&mut bench)
            .context("dispatching events")?;

        let now = Instant::now();
        match measure_start {
            None if now.duration_since(start) >= args.warmup => {
                measure_start = Some((now, bench.frames));
                bench.measuring = true;
                writeln!(stdout.lock(), "measuring")?;
                stdout.lock().flush()?;
            }
            Some((t0, f0)) if now.duration_since(t0) >= args.seconds => {
                bench.measuring = false;
                break (bench.frames - f0, now.duration_since(t0));
            }
            _ => {}
        }
        if n == 0 {
            start = Instant::now();
        }
    };
    // Presentation feedback of the last frames arrives a little later: give it one frame time.
    let settle = Instant::now() + Duration::from_millis(100);
    while Instant::now() < settle {
        queue.roundtrip(&mut bench).context("settling")?;
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut lat = std::mem::take(&mut bench.latencies);
    lat.sort_unstable();
    let (bw, bh) = bench
        .buffers
        .as_ref()
        .map(|b| (b.width, b.height))
        .unwrap_or_default();
    writeln!(
        stdout.lock(),
        "result frames={frames} seconds={:.3} fps={:.2} presented={} discarded={} p50_us={} p95_us={} buffer={bw}x{bh}",
        elapsed.as_secs_f64(),
        frames as f64 / elapsed.as_secs_f64(),
        bench.presented,
        bench.discarded,
        percentile(&lat, 0.50),
        percentile(&lat, 0.95),
    )?;
    stdout.lock().flush()?;
    if args.hold {
        // The window stays up (no new frames) until the caller closes our stdin.
        let mut line = String::new();
        let _ = std::io::stdin().lock().read_line(&mut line);
    }
    toplevel.destroy();
    xdg.destroy();
    surface.destroy();
    let _ = conn.flush();
    Ok(())
}

impl Dispatch<wl_registry::WlRegistry, ()> for Bench {
    fn event(
        state: &mut Self,
        registry: &wl_registry::WlRegistry,
        event: wl_registry::Event,
        _: &(),
        _: &Connection,
        qh: &QueueHandle<Self>,
    ) {
        if let wl_registry::Event::Global {
            name,
            interface,
            version,
        } = event
        {
            match interface.as_str() {
                "wl_compositor" => {
                    state.compositor = Some(registry.bind(name, version.min(4), qh, ()))
                }
                "wl_shm" => state.shm = Some(registry.bind(name, 1, qh, ())),
                // v1–3 only: weston 10's headless accepts it, and newer events are not needed.
                "xdg_wm_base" => state.wm_base = Some(registry.bind(name, version.min(3), qh, ())),
                "wp_presentation" => state.presentation = Some(registry.bind(name, 1, qh, ())),
                "wl_output" if version >= 2 => {
                    let _: wl_output::WlOutput = registry.bind(name, 2, qh, ());
                }
                _ => {}
            }
        }
    }
}

impl Dispatch<wl_output::WlOutput, ()> for Bench {
    fn event(
        state: &mut Self,
        _: &wl_output::WlOutput,
        event: wl_output::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let wl_output::Event::Scale { factor } = event {
            state.output_scale = state.output_scale.max(factor);
        }
    }
}

impl Dispatch<wp_presentation::WpPresentation, ()> for Bench {
    fn event(
        state: &mut Self,
        _: &wp_presentation::WpPresentation,
        event: wp_presentation::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let wp_presentation::Event::ClockId { clk_id } = event {
            state.clock = clk_id as libc::clockid_t;
        }
    }
}

impl Dispatch<wp_presentation_feedback::WpPresentationFeedback, u64> for Bench {
    fn event(
        state: &mut Self,
        _: &wp_presentation_feedback::WpPresentationFeedback,
        event: wp_presentation_feedback::Event,
        commit_ns: &u64,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if !state.measuring {
            return;
        }
        match event {
            wp_presentation_feedback::Event::Presented {
                tv_sec_hi,
                tv_sec_lo,
                tv_nsec,
                ..
            } => {
                let secs = ((tv_sec_hi as u64) << 32) | tv_sec_lo as u64;
                let shown = secs * 1_000_000_000 + tv_nsec as u64;
                state.presented += 1;
                state
                    .latencies
                    .push(shown.saturating_sub(*commit_ns) / 1000);
            }
            wp_presentation_feedback::Event::Discarded => state.discarded += 1,
            _ => {}
        }
    }
}

impl Dispatch<wl_callback::WlCallback, ()> for Bench {
    fn event(
        state: &mut Self,
        _: &wl_callback::WlCallback,
        event: wl_callback::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let wl_callback::Event::Done { .. } = event {
            state.frames += 1;
            state.frame_due = true;
        }
    }
}

impl Dispatch<wl_buffer::WlBuffer, usize> for Bench {
    fn event(
        state: &mut Self,
        _: &wl_buffer::WlBuffer,
        event: wl_buffer::Event,
        index: &usize,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let wl_buffer::Event::Release = event
            && let Some(b) = state.buffers.as_mut()
            && let Some(busy) = b.busy.get_mut(*index)
        {
            *busy = false;
        }
    }
}

impl Dispatch<xdg_wm_base::XdgWmBase, ()> for Bench {
    fn event(
        _: &mut Self,
        wm: &xdg_wm_base::XdgWmBase,
        event: xdg_wm_base::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let xdg_wm_base::Event::Ping { serial } = event {
            wm.pong(serial);
        }
    }
}

impl Dispatch<xdg_surface::XdgSurface, ()> for Bench {
    fn event(
        state: &mut Self,
        _: &xdg_surface::XdgSurface,
        event: xdg_surface::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let xdg_surface::Event::Configure { serial } = event {
            let (w, h) = state.pending_size;
            state.configure = Some((serial, w, h));
        }
    }
}

impl Dispatch<xdg_toplevel::XdgToplevel, ()> for Bench {
    fn event(
        state: &mut Self,
        _: &xdg_toplevel::XdgToplevel,
        event: xdg_toplevel::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        match event {
            xdg_toplevel::Event::Configure { width, height, .. } => {
                state.pending_size = (width, height);
            }
            xdg_toplevel::Event::Close => state.closed = true,
            _ => {}
        }
    }
}

delegate_noop!(Bench: ignore wl_compositor::WlCompositor);
delegate_noop!(Bench: ignore wl_surface::WlSurface);
delegate_noop!(Bench: ignore wl_shm::WlShm);
delegate_noop!(Bench: ignore wl_shm_pool::WlShmPool);
