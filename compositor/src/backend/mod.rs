//! Where frames go. Both backends render with pixman into CPU-visible memory.
//!
//! - [`headless`]: an offscreen image, for tests and screenshots; frames are paced by a 60 Hz timer.
//! - [`drm`]: a KMS display (the phone's panel, QEMU's virtio-gpu), dumb buffers, paced by vblank.

pub mod drm;
pub mod headless;
pub mod libinput;

use smithay::backend::renderer::pixman::PixmanRenderer;

/// The active backend.
pub enum Backend {
    Headless(headless::HeadlessBackend),
    Drm(drm::DrmBackend),
}

impl Backend {
    pub fn renderer(&mut self) -> &mut PixmanRenderer {
        match self {
            Backend::Headless(b) => b.renderer(),
            Backend::Drm(b) => b.renderer(),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Backend::Headless(_) => "headless",
            Backend::Drm(_) => "drm",
        }
    }
}

/// A captured frame: straight-alpha RGBA8, row-major, no padding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Screenshot {
    pub width: u32,
    pub height: u32,
    pub rgba: Vec<u8>,
}

impl Screenshot {
    /// The colour at (`x`, `y`), or `None` outside the picture.
    pub fn pixel(&self, x: u32, y: u32) -> Option<[u8; 3]> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let i = ((y * self.width + x) * 4) as usize;
        self.rgba.get(i..i + 3).map(|p| [p[0], p[1], p[2]])
    }

    /// Writes the picture as a PNG file.
    pub fn save_png(&self, path: &std::path::Path) -> anyhow::Result<()> {
        use anyhow::Context;
        let file =
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
        let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), self.width, self.height);
        encoder.set_color(png::ColorType::Rgba);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder
            .write_header()
            .with_context(|| format!("writing {}", path.display()))?;
        writer
            .write_image_data(&self.rgba)
            .with_context(|| format!("writing {}", path.display()))?;
        writer
            .finish()
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }
}
