//! Pictures of the emulator's screen: QEMU's PPM screendumps in, PNG files out.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use anyhow::{Context, Result, bail, ensure};

/// An 8-bit RGB picture, row-major, 3 bytes per pixel, no padding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RgbImage {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

impl RgbImage {
    /// A picture of one colour.
    pub fn filled(width: u32, height: u32, rgb: [u8; 3]) -> RgbImage {
        let pixels = width as usize * height as usize;
        RgbImage {
            width,
            height,
            data: rgb.repeat(pixels),
        }
    }

    /// Drops the alpha channel of an opaque RGBA8 buffer (tiny-skia's `Pixmap::data()`).
    pub fn from_opaque_rgba(width: u32, height: u32, rgba: &[u8]) -> Result<RgbImage> {
        let pixels = width as usize * height as usize;
        ensure!(
            rgba.len() == pixels * 4,
            "RGBA buffer of {} bytes is not {width}x{height}",
            rgba.len()
        );
        let data = rgba
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect();
        Ok(RgbImage {
            width,
            height,
            data,
        })
    }

    pub fn get(&self, x: u32, y: u32) -> [u8; 3] {
        let i = (y as usize * self.width as usize + x as usize) * 3;
        [self.data[i], self.data[i + 1], self.data[i + 2]]
    }

    pub fn set(&mut self, x: u32, y: u32, rgb: [u8; 3]) {
        let i = (y as usize * self.width as usize + x as usize) * 3;
        self.data[i..i + 3].copy_from_slice(&rgb);
    }

    /// Parses a binary PPM (P6), as QEMU's `screendump` writes it.
    pub fn from_ppm(bytes: &[u8]) -> Result<RgbImage> {
        let mut pos = 0;
        let magic = ppm_token(bytes, &mut pos)?;
        if magic != b"P6" {
            bail!(
                "not a binary PPM (P6) file: starts with {:?}",
                String::from_utf8_lossy(magic)
            );
        }
        let width = ppm_number(bytes, &mut pos, "width")?;
        let height = ppm_number(bytes, &mut pos, "height")?;
        let maxval = ppm_number(bytes, &mut pos, "maxval")?;
        ensure!(width > 0 && height > 0, "PPM of size {width}x{height}");
        ensure!(
            (1..=65535).contains(&maxval),
            "PPM maxval {maxval} out of range"
        );
        // Exactly one whitespace byte separates the header from the pixels.
        ensure!(
            bytes.get(pos).is_some_and(u8::is_ascii_whitespace),
            "PPM header not followed by whitespace"
        );
        pos += 1;
        let samples = width as usize * height as usize * 3;
        let body = &bytes[pos..];
        let data: Vec<u8> = if maxval < 256 {
            ensure!(
                body.len() >= samples,
                "PPM is truncated: {} of {samples} bytes of pixels",
                body.len()
            );
            body[..samples]
                .iter()
                .map(|&v| scale(u32::from(v), maxval))
                .collect()
        } else {
            ensure!(
                body.len() >= samples * 2,
                "PPM is truncated: {} of {} bytes of pixels",
                body.len(),
                samples * 2
            );
            body[..samples * 2]
                .chunks_exact(2)
                .map(|v| scale(u32::from(u16::from_be_bytes([v[0], v[1]])), maxval))
                .collect()
        };
        Ok(RgbImage {
            width,
            height,
            data,
        })
    }

    pub fn load_ppm(path: &Path) -> Result<RgbImage> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        RgbImage::from_ppm(&bytes).with_context(|| format!("parsing {}", path.display()))
    }

    pub fn save_png(&self, path: &Path) -> Result<()> {
        let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
        let mut encoder = png::Encoder::new(BufWriter::new(file), self.width, self.height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder
            .write_header()
            .with_context(|| format!("writing {}", path.display()))?;
        writer
            .write_image_data(&self.data)
            .with_context(|| format!("writing {}", path.display()))?;
        writer
            .finish()
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }
}

fn scale(value: u32, maxval: u32) -> u8 {
    if maxval == 255 {
        return value.min(255) as u8;
    }
    ((value.min(maxval) * 255 + maxval / 2) / maxval) as u8
}

/// The next whitespace-separated header token, skipping `#` comments.
fn ppm_token<'a>(bytes: &'a [u8], pos: &mut usize) -> Result<&'a [u8]> {
    loop {
        while bytes.get(*pos).is_some_and(u8::is_ascii_whitespace) {
            *pos += 1;
        }
        if bytes.get(*pos) == Some(&b'#') {
            while bytes.get(*pos).is_some_and(|&b| b != b'\n') {
                *pos += 1;
            }
            continue;
        }
        break;
    }
    let start = *pos;
    while bytes
        .get(*pos)
        .is_some_and(|b| !b.is_ascii_whitespace() && *b != b'#')
    {
        *pos += 1;
    }
    ensure!(*pos > start, "PPM header ends early");
    Ok(&bytes[start..*pos])
}

fn ppm_number(bytes: &[u8], pos: &mut usize, what: &str) -> Result<u32> {
    let token = ppm_token(bytes, pos).with_context(|| format!("PPM header has no {what}"))?;
    std::str::from_utf8(token)
        .ok()
        .and_then(|t| t.parse().ok())
        .with_context(|| {
            format!(
                "PPM {what} is not a number: {:?}",
                String::from_utf8_lossy(token)
            )
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_qemu_ppm() {
        // QEMU writes "P6\n<w> <h>\n255\n" then the pixels.
        let mut ppm = b"P6\n2 2\n255\n".to_vec();
        ppm.extend([255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30]);
        let img = RgbImage::from_ppm(&ppm).unwrap();
        assert_eq!((img.width, img.height), (2, 2));
        assert_eq!(img.get(0, 0), [255, 0, 0]);
        assert_eq!(img.get(1, 0), [0, 255, 0]);
        assert_eq!(img.get(0, 1), [0, 0, 255]);
        assert_eq!(img.get(1, 1), [10, 20, 30]);
    }

    #[test]
    fn parses_comments_other_maxvals_and_binary_bytes_that_look_like_whitespace() {
        // The first pixel byte is '\n' (10) and must not be eaten as header whitespace.
        let mut ppm = b"P6 # made by hand\n# another comment\n1\t1 15\n".to_vec();
        ppm.extend([10, 15, 0]);
        let img = RgbImage::from_ppm(&ppm).unwrap();
        assert_eq!(img.get(0, 0), [170, 255, 0]);

        let mut ppm16 = b"P6\n1 1\n65535\n".to_vec();
        ppm16.extend([0xff, 0xff, 0x80, 0x00, 0x00, 0x00]);
        assert_eq!(RgbImage::from_ppm(&ppm16).unwrap().get(0, 0), [255, 128, 0]);
    }

    #[test]
    fn rejects_bad_ppm() {
        assert!(RgbImage::from_ppm(b"P3\n1 1\n255\n0 0 0").is_err());
        assert!(
            RgbImage::from_ppm(b"P6\n2 2\n255\n\x00\x00\x00").is_err(),
            "truncated"
        );
        assert!(RgbImage::from_ppm(b"P6\n2 x\n255\n").is_err());
        assert!(RgbImage::from_ppm(b"P6\n0 2\n255\n").is_err());
        assert!(RgbImage::from_ppm(b"").is_err());
    }

    #[test]
    fn png_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.png");
        let mut img = RgbImage::filled(3, 2, [1, 2, 3]);
        img.set(2, 1, [200, 100, 50]);
        img.save_png(&path).unwrap();

        let decoder = png::Decoder::new(std::io::BufReader::new(File::open(&path).unwrap()));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!(
            (info.width, info.height, info.color_type),
            (3, 2, png::ColorType::Rgb)
        );
        assert_eq!(&buf[..info.buffer_size()], &img.data[..]);
    }

    #[test]
    fn drops_alpha() {
        let img = RgbImage::from_opaque_rgba(2, 1, &[1, 2, 3, 255, 4, 5, 6, 255]).unwrap();
        assert_eq!(img.data, [1, 2, 3, 4, 5, 6]);
        assert!(RgbImage::from_opaque_rgba(2, 2, &[0; 8]).is_err());
    }
}
