//! The launcher icon of an installed APK, rendered to the PNG the compositor's launcher reads.
//!
//! A bitmap icon (the density `cirrus-apk` chose for the device) is decoded and re-encoded, which
//! also drops anything but pixels from a file the app's author controls. An adaptive icon (API 26+)
//! is composed the way Android's launcher does it: background layer (colour or bitmap) under the
//! foreground bitmap, both stretched to the 108 dp layer size, the central 72 dp kept and cut to a
//! rounded square. An adaptive icon whose foreground is not a bitmap (a vector drawable) falls back
//! to the bitmap icon the APK ships for older platforms. WebP and JPEG layers are not decoded yet:
//! such icons fall back the same way, or the launcher shows its lettered tile.

use cirrus_apk::package::{IconImage, ImageFormat};
use cirrus_apk::{Icon, IconLayer};
use cirrus_ui::shape::rounded_rect;
use tiny_skia::{Color, FillRule, FilterQuality, Mask, Pixmap, PixmapPaint, Rect, Transform};

/// Largest side of a source bitmap decoded (real launcher icons are at most 432 px).
const MAX_SOURCE_SIDE: u32 = 2048;
/// Largest side of the PNG written (the compositor accepts up to 1024).
const MAX_ICON_SIDE: u32 = 512;
/// The visible part of an adaptive icon layer: 72 of 108 dp.
const ADAPTIVE_VISIBLE: f32 = 72.0 / 108.0;
/// Corner radius of the rounded-square mask, as a fraction of the side.
const CORNER: f32 = 0.22;

/// Why no icon could be rendered.
#[derive(Debug, thiserror::Error)]
pub enum IconError {
    #[error("`{0}`: {1:?} images are not decoded yet")]
    UnsupportedFormat(String, ImageFormat),
    #[error("`{0}` is not a readable PNG: {1}")]
    BadPng(String, String),
    #[error("`{path}` is {width}x{height}, larger than {MAX_SOURCE_SIDE}x{MAX_SOURCE_SIDE}")]
    TooLarge {
        path: String,
        width: u32,
        height: u32,
    },
    #[error("the adaptive icon has no bitmap foreground and the APK no bitmap fallback")]
    NoBitmap,
    #[error("encoding the icon: {0}")]
    Encode(String),
}

fn decode(img: &IconImage) -> Result<Pixmap, IconError> {
    if img.format != ImageFormat::Png {
        return Err(IconError::UnsupportedFormat(img.path.clone(), img.format));
    }
    // Check the header's size before allocating for it.
    let be = |at: usize| {
        img.bytes
            .get(at..at + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    if img.bytes.get(12..16) != Some(b"IHDR") {
        return Err(IconError::BadPng(img.path.clone(), "no IHDR header".into()));
    }
    let (width, height) = (be(16).unwrap_or(0), be(20).unwrap_or(0));
    if width > MAX_SOURCE_SIDE || height > MAX_SOURCE_SIDE {
        return Err(IconError::TooLarge {
            path: img.path.clone(),
            width,
            height,
        });
    }
    Pixmap::decode_png(&img.bytes).map_err(|e| IconError::BadPng(img.path.clone(), e.to_string()))
}

fn argb(c: u32) -> Color {
    let [a, r, g, b] = c.to_be_bytes();
    Color::from_rgba8(r, g, b, a)
}

/// Draws `src` stretched over `dst`'s whole area.
fn draw_stretched(dst: &mut Pixmap, src: &Pixmap) {
    let sx = dst.width() as f32 / src.width() as f32;
    let sy = dst.height() as f32 / src.height() as f32;
    let paint = PixmapPaint {
        quality: FilterQuality::Bicubic,
        ..PixmapPaint::default()
    };
    dst.draw_pixmap(
        0,
        0,
        src.as_ref(),
        &paint,
        Transform::from_scale(sx, sy),
        None,
    );
}

/// `src` scaled to fit in `side`×`side` (never enlarged).
fn fit(src: Pixmap, side: u32) -> Result<Pixmap, IconError> {
    if src.width() <= side && src.height() <= side {
        return Ok(src);
    }
    let scale = side as f32 / src.width().max(src.height()) as f32;
    let w = ((src.width() as f32 * scale).round() as u32).max(1);
    let h = ((src.height() as f32 * scale).round() as u32).max(1);
    let mut out = Pixmap::new(w, h).ok_or(IconError::NoBitmap)?;
    draw_stretched(&mut out, &src);
    Ok(out)
}

fn layer(l: &IconLayer) -> Result<Layer, IconError> {
    Ok(match l {
        IconLayer::Color(c) => Layer::Color(argb(*c)),
        IconLayer::Image(img) => Layer::Bitmap(decode(img)?),
    })
}

enum Layer {
    Color(Color),
    Bitmap(Pixmap),
}

/// Composes an adaptive icon's layers: `layer_side` px per 108 dp layer.
fn compose(
    background: Option<&Layer>,
    foreground: &Pixmap,
    layer_side: u32,
) -> Result<Pixmap, IconError> {
    let mut full = Pixmap::new(layer_side, layer_side).ok_or(IconError::NoBitmap)?;
    match background {
        Some(Layer::Color(c)) => full.fill(*c),
        Some(Layer::Bitmap(b)) => draw_stretched(&mut full, b),
        None => {}
    }
    draw_stretched(&mut full, foreground);
    let side = ((layer_side as f32 * ADAPTIVE_VISIBLE).round() as u32).max(1);
    let offset = (layer_side - side) as f32 / 2.0;
    let mut mask = Mask::new(side, side).ok_or(IconError::NoBitmap)?;
    let rect = Rect::from_xywh(0.0, 0.0, side as f32, side as f32).ok_or(IconError::NoBitmap)?;
    let path = rounded_rect(rect, side as f32 * CORNER).ok_or(IconError::NoBitmap)?;
    mask.fill_path(&path, FillRule::Winding, true, Transform::identity());
    let mut out = Pixmap::new(side, side).ok_or(IconError::NoBitmap)?;
    out.draw_pixmap(
        0,
        0,
        full.as_ref(),
        &PixmapPaint::default(),
        Transform::from_translate(-offset, -offset),
        Some(&mask),
    );
    Ok(out)
}

/// The launcher PNG for an APK's icon at `density` dpi.
pub fn launcher_png(icon: &Icon, density: u16) -> Result<Vec<u8>, IconError> {
    let pixmap = match icon {
        Icon::Bitmap(img) => decode(img)?,
        Icon::Adaptive {
            foreground,
            background,
            fallback,
        } => {
            let composed = match foreground {
                Some(fg) => match layer(fg) {
                    Ok(Layer::Bitmap(fg)) => {
                        let bg = background.as_ref().map(layer).transpose();
                        match bg {
                            Ok(bg) => {
                                // Layers are 108 dp; a bitmap layer says how many px that is.
                                let dp108 = (u32::from(density.max(1)) * 108).div_ceil(160);
                                let side = fg.width().max(fg.height()).max(dp108.min(432));
                                Some(compose(bg.as_ref(), &fg, side))
                            }
                            Err(e) => Some(Err(e)),
                        }
                    }
                    // A colour foreground is not an icon worth showing.
                    Ok(Layer::Color(_)) => None,
                    Err(e) => Some(Err(e)),
                },
                None => None,
            };
            match (composed, fallback) {
                (Some(Ok(p)), _) => p,
                (_, Some(img)) => decode(img)?,
                (Some(Err(e)), None) => return Err(e),
                (None, None) => return Err(IconError::NoBitmap),
            }
        }
    };
    let pixmap = fit(pixmap, MAX_ICON_SIDE)?;
    pixmap
        .encode_png()
        .map_err(|e| IconError::Encode(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(side: u32, rgba: [u8; 4]) -> Vec<u8> {
        let mut p = Pixmap::new(side, side).unwrap_or_else(|| panic!("pixmap"));
        p.fill(Color::from_rgba8(rgba[0], rgba[1], rgba[2], rgba[3]));
        p.encode_png().unwrap_or_else(|e| panic!("{e}"))
    }

    fn image(side: u32, rgba: [u8; 4]) -> IconImage {
        IconImage {
            path: "res/x.png".into(),
            format: ImageFormat::Png,
            density: 320,
            bytes: png(side, rgba),
        }
    }

    fn pixel(png: &[u8], x: u32, y: u32) -> [u8; 4] {
        let p = Pixmap::decode_png(png).unwrap_or_else(|e| panic!("{e}"));
        let c = p
            .pixel(x, y)
            .unwrap_or_else(|| panic!("no pixel"))
            .demultiply();
        [c.red(), c.green(), c.blue(), c.alpha()]
    }

    #[test]
    fn a_bitmap_icon_is_reencoded() {
        let out = launcher_png(&Icon::Bitmap(image(96, [0, 0, 255, 255])), 320)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(pixel(&out, 0, 0), [0, 0, 255, 255]);
    }

    #[test]
    fn an_adaptive_icon_is_cropped_and_masked() {
        // Transparent foreground: only the background colour shows.
        let icon = Icon::Adaptive {
            foreground: Some(IconLayer::Image(image(216, [0, 0, 0, 0]))),
            background: Some(IconLayer::Color(0xff33_66cc)),
            fallback: None,
        };
        let out = launcher_png(&icon, 320).unwrap_or_else(|e| panic!("{e}"));
        let p = Pixmap::decode_png(&out).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((p.width(), p.height()), (144, 144));
        assert_eq!(pixel(&out, 72, 72), [0x33, 0x66, 0xcc, 255]);
        assert_eq!(pixel(&out, 0, 0)[3], 0, "corners are cut");
    }

    #[test]
    fn webp_layers_fall_back_to_the_bitmap() {
        let mut webp = image(216, [1, 2, 3, 255]);
        webp.format = ImageFormat::Webp;
        let icon = Icon::Adaptive {
            foreground: Some(IconLayer::Image(webp.clone())),
            background: None,
            fallback: Some(image(48, [9, 8, 7, 255])),
        };
        let out = launcher_png(&icon, 320).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(pixel(&out, 1, 1), [9, 8, 7, 255]);
        assert!(matches!(
            launcher_png(&Icon::Bitmap(webp), 320),
            Err(IconError::UnsupportedFormat(..))
        ));
    }

    #[test]
    fn huge_declared_sizes_are_refused_before_decoding() {
        let mut img = image(8, [0, 0, 0, 255]);
        img.bytes[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        assert!(matches!(
            launcher_png(&Icon::Bitmap(img), 320),
            Err(IconError::TooLarge { .. })
        ));
    }
}
