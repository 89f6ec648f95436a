//! Headless backend: renders into an offscreen pixman image of a fixed size.

use anyhow::{Context, anyhow};
use smithay::backend::allocator::Fourcc;
use smithay::backend::renderer::damage::OutputDamageTracker;
use smithay::backend::renderer::pixman::PixmanRenderer;
use smithay::backend::renderer::{Bind, ExportMem, Offscreen};
use smithay::output::Output;
use smithay::reexports::pixman::Image;
use smithay::utils::{Buffer, Rectangle, Size};

use super::Screenshot;
use crate::render::output_elements;
use crate::state::State;

pub struct HeadlessBackend {
    renderer: PixmanRenderer,
    target: Image<'static, 'static>,
    damage: OutputDamageTracker,
    size: Size<i32, Buffer>,
}

impl HeadlessBackend {
    pub fn new(output: &Output, width: u32, height: u32) -> anyhow::Result<Self> {
        let mut renderer = PixmanRenderer::new().map_err(|e| anyhow!("pixman renderer: {e}"))?;
        let size = Size::<i32, Buffer>::from((width as i32, height as i32));
        let target = renderer
            .create_buffer(Fourcc::Xrgb8888, size)
            .map_err(|e| anyhow!("offscreen buffer {width}x{height}: {e}"))?;
        Ok(Self {
            renderer,
            target,
            damage: OutputDamageTracker::from_output(output),
            size,
        })
    }

    pub fn renderer(&mut self) -> &mut PixmanRenderer {
        &mut self.renderer
    }

    /// Renders what changed since the last frame. Returns the elements' render states (for
    /// presentation feedback).
    pub fn render(
        &mut self,
        state: &State,
    ) -> anyhow::Result<smithay::backend::renderer::element::RenderElementStates> {
        let elements = output_elements(state, &mut self.renderer);
        let mut framebuffer = self
            .renderer
            .bind(&mut self.target)
            .context("binding the offscreen image")?;
        let result = self
            .damage
            .render_output(
                &mut self.renderer,
                &mut framebuffer,
                1,
                &elements,
                [0.0, 0.0, 0.0, 1.0],
            )
            .map_err(|e| anyhow!("rendering: {e:?}"))?;
        Ok(result.states)
    }

    /// Reads back the last rendered frame.
    pub fn screenshot(&mut self) -> anyhow::Result<Screenshot> {
        let region = Rectangle::from_size(self.size);
        let framebuffer = self
            .renderer
            .bind(&mut self.target)
            .context("binding the offscreen image")?;
        let mapping = self
            .renderer
            .copy_framebuffer(&framebuffer, region, Fourcc::Abgr8888)
            .map_err(|e| anyhow!("reading the frame: {e}"))?;
        let bytes = self
            .renderer
            .map_texture(&mapping)
            .map_err(|e| anyhow!("mapping the frame: {e}"))?;
        let (width, height) = (self.size.w as u32, self.size.h as u32);
        let expected = (width * height * 4) as usize;
        if bytes.len() < expected {
            return Err(anyhow!(
                "frame read back {} bytes, expected {expected}",
                bytes.len()
            ));
        }
        // Abgr8888 is R, G, B, A in memory; the frame is opaque (alpha forced for Xrgb targets).
        let mut rgba = bytes[..expected].to_vec();
        for px in rgba.chunks_exact_mut(4) {
            px[3] = 0xff;
        }
        Ok(Screenshot {
            width,
            height,
            rgba,
        })
    }
}
