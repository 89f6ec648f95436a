//! DRM/KMS backend: the first connected connector of a DRM device, dumb buffers rendered by pixman,
//! frames paced by the display's vblank.
//!
//! Runs as root on a phone or in QEMU (virtio-gpu) without a seat daemon: a phone has no VTs to
//! switch, so the compositor opens the card directly and keeps DRM master.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use smithay::backend::allocator::Fourcc;
use smithay::backend::allocator::dumb::DumbAllocator;
use smithay::backend::drm::compositor::{DrmCompositor, FrameFlags};
use smithay::backend::drm::{DrmDevice, DrmDeviceFd, DrmDeviceNotifier};
use smithay::backend::renderer::Bind;
use smithay::backend::renderer::pixman::PixmanRenderer;
use smithay::output::{Mode as OutputMode, Output, PhysicalProperties, Subpixel};
use smithay::reexports::drm::control::{Device as ControlDevice, ModeTypeFlags, connector, crtc};
use smithay::reexports::gbm::Device as GbmDevice;
use smithay::utils::DeviceFd;

use crate::render::output_elements;
use crate::state::State;

/// The KMS compositor type used: dumb buffers, exported by the DRM device itself, no GBM.
pub type KmsCompositor = DrmCompositor<DumbAllocator, DrmDeviceFd, (), DrmDeviceFd>;

/// What the DRM device offers: the connector, its mode and a CRTC to drive it.
#[derive(Debug, Clone)]
pub struct DisplayChoice {
    pub connector: connector::Handle,
    pub connector_name: String,
    pub crtc: crtc::Handle,
    pub mode: smithay::reexports::drm::control::Mode,
    pub size_mm: (u32, u32),
}

pub struct DrmBackend {
    renderer: PixmanRenderer,
    compositor: KmsCompositor,
    // Kept alive: dropping the device releases the display.
    _device: DrmDevice,
    frame_pending: bool,
    pub display: DisplayChoice,
    pub path: PathBuf,
}

/// Waits up to `timeout` for the DRM card node to appear (the kernel driver may still be probing).
pub fn wait_for_card(path: &Path, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    while !path.exists() {
        if Instant::now() >= deadline {
            bail!(
                "{} did not appear within {:?}: is the GPU's kernel module loaded (virtio-gpu in QEMU)?",
                path.display(),
                timeout
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// Opens `path` and picks the first connected connector, its preferred mode and a free CRTC.
pub fn open(
    path: &Path,
) -> anyhow::Result<(DrmDevice, DrmDeviceNotifier, DrmDeviceFd, DisplayChoice)> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    let fd = DrmDeviceFd::new(DeviceFd::from(OwnedFd::from(file)));
    let (device, notifier) = DrmDevice::new(fd.clone(), true)
        .with_context(|| format!("initialising DRM device {}", path.display()))?;
    let resources = device.resource_handles().context("reading DRM resources")?;
    for &handle in resources.connectors() {
        let Ok(info) = device.get_connector(handle, true) else {
            continue;
        };
        if info.state() != connector::State::Connected || info.modes().is_empty() {
            continue;
        }
        let mode = info
            .modes()
            .iter()
            .find(|m| m.mode_type().contains(ModeTypeFlags::PREFERRED))
            .or_else(|| info.modes().first())
            .copied()
            .ok_or_else(|| anyhow!("connector has no modes"))?;
        let crtc = info
            .encoders()
            .iter()
            .filter_map(|&e| device.get_encoder(e).ok())
            .flat_map(|enc| resources.filter_crtcs(enc.possible_crtcs()))
            .next();
        let Some(crtc) = crtc else { continue };
        let (w_mm, h_mm) = info.size().unwrap_or((0, 0));
        let name = format!("{}-{}", info.interface().as_str(), info.interface_id());
        return Ok((
            device,
            notifier,
            fd,
            DisplayChoice {
                connector: handle,
                connector_name: name,
                crtc,
                mode,
                size_mm: (w_mm, h_mm),
            },
        ));
    }
    bail!("no connected display on {}", path.display())
}

impl DrmBackend {
    /// Sets up KMS output on `device` for `output` (already configured with the mode).
    pub fn new(
        mut device: DrmDevice,
        fd: DrmDeviceFd,
        display: DisplayChoice,
        output: &Output,
        path: PathBuf,
    ) -> anyhow::Result<Self> {
        let renderer = PixmanRenderer::new().map_err(|e| anyhow!("pixman renderer: {e}"))?;
        let surface = device
            .create_surface(display.crtc, display.mode, &[display.connector])
            .with_context(|| format!("creating a KMS surface on {}", display.connector_name))?;
        let render_formats =
            Bind::<smithay::backend::allocator::dmabuf::Dmabuf>::supported_formats(&renderer)
                .unwrap_or_default();
        let compositor = DrmCompositor::new(
            output,
            surface,
            None,
            DumbAllocator::new(fd.clone()),
            fd.clone(),
            [Fourcc::Xrgb8888, Fourcc::Argb8888],
            render_formats,
            device.cursor_size(),
            None::<GbmDevice<DrmDeviceFd>>,
        )
        .map_err(|e| {
            anyhow!(
                "setting up KMS composition on {}: {e:?}",
                display.connector_name
            )
        })?;
        Ok(Self {
            renderer,
            compositor,
            _device: device,
            frame_pending: false,
            display,
            path,
        })
    }

    /// The output a DRM display is described as to clients.
    pub fn describe_output(display: &DisplayChoice) -> (Output, OutputMode) {
        let output = Output::new(
            display.connector_name.clone(),
            PhysicalProperties {
                size: (display.size_mm.0 as i32, display.size_mm.1 as i32).into(),
                subpixel: Subpixel::Unknown,
                make: "Cirrus".into(),
                model: "KMS".into(),
            },
        );
        let (w, h) = display.mode.size();
        let mode = OutputMode {
            size: (w as i32, h as i32).into(),
            refresh: (display.mode.vrefresh() as i32) * 1000,
        };
        (output, mode)
    }

    pub fn renderer(&mut self) -> &mut PixmanRenderer {
        &mut self.renderer
    }

    /// The display's refresh period.
    pub fn refresh(&self) -> std::time::Duration {
        let hz = self.display.mode.vrefresh().max(1);
        std::time::Duration::from_nanos(1_000_000_000 / hz as u64)
    }

    /// Whether a frame is queued and its vblank not yet seen.
    pub fn frame_pending(&self) -> bool {
        self.frame_pending
    }

    /// Renders and queues a frame if something changed. Returns the elements' render states if a
    /// frame was queued.
    pub fn render(
        &mut self,
        state: &State,
    ) -> anyhow::Result<Option<smithay::backend::renderer::element::RenderElementStates>> {
        if self.frame_pending {
            return Ok(None);
        }
        let elements = output_elements(state, &mut self.renderer);
        let result = self
            .compositor
            .render_frame(
                &mut self.renderer,
                &elements,
                [0.0, 0.0, 0.0, 1.0],
                FrameFlags::DEFAULT,
            )
            .map_err(|e| anyhow!("rendering the frame: {e:?}"))?;
        if result.is_empty {
            return Ok(None);
        }
        let states = result.states;
        self.compositor
            .queue_frame(())
            .map_err(|e| anyhow!("queueing the frame: {e:?}"))?;
        self.frame_pending = true;
        Ok(Some(states))
    }

    /// Handles the vblank of the queued frame: it is now on screen.
    pub fn on_vblank(&mut self) -> anyhow::Result<()> {
        self.frame_pending = false;
        self.compositor
            .frame_submitted()
            .map_err(|e| anyhow!("frame submission: {e:?}"))?;
        Ok(())
    }
}
