//! Screenshots: PNG, JPEG and WebP, recognised by content (never by name or declared type),
//! walked structure by structure without decoding pixels, rewritten without metadata and
//! addressed by the SHA-256 of what is stored.
//!
//! * **Bounds.** At most [`MAX_SCREENSHOT_BYTES`] per file, [`MAX_SIDE`] pixels a side and
//!   [`MAX_PIXELS`] in all, read from the header: a decompression bomb (a small file declaring
//!   a huge canvas) is refused before anything would decode it. The hub itself never decodes.
//! * **Structure.** Every chunk or segment must fit in the file and the file must end where its
//!   format says it ends (PNG `IEND`, JPEG `EOI`, WebP's RIFF size): bytes appended after the
//!   image (a ZIP or an executable riding along, a polyglot) are refused, as is a PNG chunk
//!   whose CRC is wrong.
//! * **Metadata stripped.** PNG keeps only the chunks that affect the picture (`IHDR`, `PLTE`,
//!   `IDAT`, `IEND`, `tRNS`, `gAMA`, `cHRM`, `sRGB`, `sBIT`, `bKGD`, `pHYs`): text, `eXIf`,
//!   time and unknown chunks go. JPEG drops every `APPn` segment but `APP0` (JFIF) and `APP14`
//!   (Adobe colour transform), and comments: EXIF (GPS, camera) and XMP go. WebP drops `EXIF`,
//!   `XMP ` and `ICCP` chunks and clears their `VP8X` flags.

use sha2::{Digest, Sha256};

use super::Screenshot;

/// The largest screenshot accepted.
pub const MAX_SCREENSHOT_BYTES: usize = 5 * 1024 * 1024;
/// The longest side accepted, in pixels (a very tall phone capture fits).
pub const MAX_SIDE: u32 = 16_384;
/// The most pixels accepted (width × height): 40 megapixels, 160 MB if a browser decoded it.
pub const MAX_PIXELS: u64 = 40_000_000;
/// Screenshots per report.
pub const MAX_SCREENSHOTS: usize = 10;

/// Why a screenshot was refused (the message tells the official what to do).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ImageError {
    #[error("the screenshot is larger than {} MiB: send a smaller capture", MAX_SCREENSHOT_BYTES / 1024 / 1024)]
    TooLarge,
    #[error("the screenshot is not a PNG, JPEG or WebP image")]
    UnknownFormat,
    #[error("the screenshot is a damaged or unusual {0} file ({1}): capture it again as PNG or JPEG")]
    Malformed(&'static str, String),
    #[error("the screenshot declares {0}×{1} pixels, more than the hub accepts ({MAX_SIDE} a side, {MAX_PIXELS} in all)")]
    TooManyPixels(u32, u32),
}

fn malformed(format: &'static str, why: impl Into<String>) -> ImageError {
    ImageError::Malformed(format, why.into())
}

/// Checks a screenshot, strips its metadata and addresses it (see the module note).
pub fn accept(bytes: &[u8]) -> Result<Screenshot, ImageError> {
    if bytes.len() > MAX_SCREENSHOT_BYTES {
        return Err(ImageError::TooLarge);
    }
    let (media_type, width, height, clean) = if bytes.starts_with(PNG_MAGIC) {
        let (w, h, c) = png(bytes)?;
        ("image/png", w, h, c)
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        let (w, h, c) = jpeg(bytes)?;
        ("image/jpeg", w, h, c)
    } else if bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        let (w, h, c) = webp(bytes)?;
        ("image/webp", w, h, c)
    } else {
        return Err(ImageError::UnknownFormat);
    };
    if width == 0 || height == 0 {
        return Err(malformed(format_name(media_type), "zero width or height"));
    }
    if width > MAX_SIDE || height > MAX_SIDE || u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(ImageError::TooManyPixels(width, height));
    }
    let sha256 = hex::encode(Sha256::digest(&clean));
    Ok(Screenshot { sha256, media_type, width, height, bytes: clean })
}

fn format_name(media_type: &str) -> &'static str {
    match media_type {
        "image/png" => "PNG",
        "image/jpeg" => "JPEG",
        _ => "WebP",
    }
}

const PNG_MAGIC: &[u8] = &[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
const PNG_KEEP: &[&[u8; 4]] = &[b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"sBIT", b"bKGD", b"pHYs"];

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn png(bytes: &[u8]) -> Result<(u32, u32, Vec<u8>), ImageError> {
    let mut out = PNG_MAGIC.to_vec();
    let mut at = PNG_MAGIC.len();
    let mut dims = None;
    let mut first = true;
    loop {
        if bytes.len() - at < 12 {
            return Err(malformed("PNG", "it ends before its IEND chunk"));
        }
        let len = be32(&bytes[at..]) as usize;
        let kind: [u8; 4] = [bytes[at + 4], bytes[at + 5], bytes[at + 6], bytes[at + 7]];
        if len > bytes.len() - at - 12 {
            return Err(malformed("PNG", "a chunk runs past the end of the file"));
        }
        let chunk = &bytes[at..at + 12 + len];
        let mut crc = flate2::Crc::new();
        crc.update(&chunk[4..8 + len]);
        if crc.sum() != be32(&chunk[8 + len..]) {
            return Err(malformed("PNG", format!("chunk {} has a wrong checksum", String::from_utf8_lossy(&kind))));
        }
        if first {
            if &kind != b"IHDR" || len != 13 {
                return Err(malformed("PNG", "it does not start with its header"));
            }
            dims = Some((be32(&chunk[8..]), be32(&chunk[12..])));
            first = false;
        } else if &kind == b"IHDR" {
            return Err(malformed("PNG", "two headers"));
        }
        if PNG_KEEP.contains(&&kind) {
            out.extend_from_slice(chunk);
        }
        at += 12 + len;
        if &kind == b"IEND" {
            break;
        }
    }
    if at != bytes.len() {
        return Err(malformed("PNG", "data after the end of the image"));
    }
    let (w, h) = dims.ok_or_else(|| malformed("PNG", "no header"))?;
    Ok((w, h, out))
}

fn jpeg(bytes: &[u8]) -> Result<(u32, u32, Vec<u8>), ImageError> {
    let mut out = vec![0xFF, 0xD8];
    let mut at = 2;
    let mut dims = None;
    loop {
        // Fill bytes before a marker are allowed.
        while at < bytes.len() && bytes[at] == 0xFF && bytes.get(at + 1) == Some(&0xFF) {
            at += 1;
        }
        if bytes.len() - at < 2 || bytes[at] != 0xFF {
            return Err(malformed("JPEG", "a segment does not start where the previous one ends"));
        }
        let marker = bytes[at + 1];
        if marker == 0xD9 {
            out.extend_from_slice(&[0xFF, 0xD9]);
            at += 2;
            break;
        }
        if (0xD0..=0xD7).contains(&marker) || marker == 0x01 {
            out.extend_from_slice(&bytes[at..at + 2]);
            at += 2;
            continue;
        }
        if bytes.len() - at < 4 {
            return Err(malformed("JPEG", "a segment header is cut"));
        }
        let len = usize::from(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]));
        if len < 2 || len > bytes.len() - at - 2 {
            return Err(malformed("JPEG", "a segment runs past the end of the file"));
        }
        let segment = &bytes[at..at + 2 + len];
        let is_sof = matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
        if is_sof {
            if len < 7 {
                return Err(malformed("JPEG", "a frame header is cut"));
            }
            let h = u32::from(u16::from_be_bytes([segment[5], segment[6]]));
            let w = u32::from(u16::from_be_bytes([segment[7], segment[8]]));
            if dims.replace((w, h)).is_some() {
                return Err(malformed("JPEG", "two frame headers"));
            }
        }
        let metadata = (matches!(marker, 0xE1..=0xED) || marker == 0xEF) || marker == 0xFE;
        if !metadata {
            out.extend_from_slice(segment);
        }
        at += 2 + len;
        if marker == 0xDA {
            // Entropy-coded data: runs to the next marker that is not a stuffed byte or a restart.
            let start = at;
            loop {
                if at + 1 >= bytes.len() {
                    return Err(malformed("JPEG", "it ends inside its image data"));
                }
                if bytes[at] == 0xFF && !matches!(bytes[at + 1], 0x00 | 0xD0..=0xD7) {
                    break;
                }
                at += 1;
            }
            out.extend_from_slice(&bytes[start..at]);
        }
    }
    if at != bytes.len() {
        return Err(malformed("JPEG", "data after the end of the image"));
    }
    let (w, h) = dims.ok_or_else(|| malformed("JPEG", "no frame header"))?;
    Ok((w, h, out))
}

fn le24(b: &[u8]) -> u32 {
    u32::from(b[0]) | (u32::from(b[1]) << 8) | (u32::from(b[2]) << 16)
}

fn webp(bytes: &[u8]) -> Result<(u32, u32, Vec<u8>), ImageError> {
    let riff = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) as usize;
    if riff.checked_add(8) != Some(bytes.len()) {
        return Err(malformed("WebP", "its RIFF size is not the file's size (data appended, or cut)"));
    }
    let mut at = 12;
    let mut chunks: Vec<(&[u8], &[u8])> = Vec::new();
    while at < bytes.len() {
        if bytes.len() - at < 8 {
            return Err(malformed("WebP", "a chunk header is cut"));
        }
        let kind = &bytes[at..at + 4];
        let len = u32::from_le_bytes([bytes[at + 4], bytes[at + 5], bytes[at + 6], bytes[at + 7]]) as usize;
        let padded = len + (len & 1);
        if padded > bytes.len() - at - 8 {
            return Err(malformed("WebP", "a chunk runs past the end of the file"));
        }
        chunks.push((kind, &bytes[at + 8..at + 8 + len]));
        at += 8 + padded;
    }
    let mut dims = None;
    for (kind, data) in &chunks {
        let d = match *kind {
            b"VP8X" if data.len() >= 10 => Some((le24(&data[4..]) + 1, le24(&data[7..]) + 1)),
            b"VP8 " if data.len() >= 10 => {
                if data[3..6] != [0x9D, 0x01, 0x2A] {
                    return Err(malformed("WebP", "a lossy frame without its start code"));
                }
                Some((u32::from(u16::from_le_bytes([data[6], data[7]]) & 0x3FFF), u32::from(u16::from_le_bytes([data[8], data[9]]) & 0x3FFF)))
            }
            b"VP8L" if data.len() >= 5 => {
                if data[0] != 0x2F {
                    return Err(malformed("WebP", "a lossless frame without its signature"));
                }
                let bits = u32::from_le_bytes([data[1], data[2], data[3], data[4]]);
                Some(((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1))
            }
            b"VP8X" | b"VP8 " | b"VP8L" => return Err(malformed("WebP", "a frame header is cut")),
            _ => None,
        };
        if dims.is_none() {
            dims = d;
        }
    }
    let (w, h) = dims.ok_or_else(|| malformed("WebP", "no frame"))?;
    let mut body = Vec::with_capacity(bytes.len());
    for (kind, data) in chunks {
        if matches!(kind, b"EXIF" | b"XMP " | b"ICCP") {
            continue;
        }
        body.extend_from_slice(kind);
        body.extend_from_slice(&(data.len() as u32).to_le_bytes());
        if kind == b"VP8X" {
            // Clear the ICC (0x20), EXIF (0x08) and XMP (0x04) flags of the chunks dropped.
            body.push(data[0] & !(0x20 | 0x08 | 0x04));
            body.extend_from_slice(&data[1..]);
        } else {
            body.extend_from_slice(data);
        }
        if data.len() & 1 == 1 {
            body.push(0);
        }
    }
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&((body.len() + 4) as u32).to_le_bytes());
    out.extend_from_slice(b"WEBP");
    out.extend_from_slice(&body);
    Ok((w, h, out))
}

/// Test images built by hand (the tests of this module and of the hub use them).
pub mod samples {
    /// A PNG of `width`×`height` (one IDAT of a stored deflate stream: valid structure, not
    /// necessarily decodable pixels), with a `tEXt` metadata chunk before the data.
    pub fn png(width: u32, height: u32, text: &str) -> Vec<u8> {
        let mut out = super::PNG_MAGIC.to_vec();
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(&width.to_be_bytes());
        ihdr.extend_from_slice(&height.to_be_bytes());
        ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
        chunk(&mut out, b"IHDR", &ihdr);
        chunk(&mut out, b"tEXt", format!("Comment\0{text}").as_bytes());
        chunk(&mut out, b"IDAT", &[0x78, 0x01, 0x01, 0x00, 0x00, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x01]);
        chunk(&mut out, b"IEND", &[]);
        out
    }

    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let mut crc = flate2::Crc::new();
        crc.update(kind);
        crc.update(data);
        out.extend_from_slice(&crc.sum().to_be_bytes());
    }

    /// A JPEG of `width`×`height` with an EXIF segment carrying `exif` (structure only).
    pub fn jpeg(width: u16, height: u16, exif: &str) -> Vec<u8> {
        let mut out = vec![0xFF, 0xD8];
        let mut seg = |marker: u8, data: &[u8]| {
            out.extend_from_slice(&[0xFF, marker]);
            out.extend_from_slice(&((data.len() + 2) as u16).to_be_bytes());
            out.extend_from_slice(data);
        };
        seg(0xE0, b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0");
        let mut e = b"Exif\0\0".to_vec();
        e.extend_from_slice(exif.as_bytes());
        seg(0xE1, &e);
        let mut sof = vec![8];
        sof.extend_from_slice(&height.to_be_bytes());
        sof.extend_from_slice(&width.to_be_bytes());
        sof.extend_from_slice(&[1, 1, 0x11, 0]);
        seg(0xC0, &sof);
        seg(0xDA, &[1, 1, 0, 0, 63, 0]);
        out.extend_from_slice(&[0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD0, 0x56]);
        out.extend_from_slice(&[0xFF, 0xD9]);
        out
    }

    /// A lossless WebP of `width`×`height` with an `EXIF` chunk carrying `exif`.
    pub fn webp(width: u32, height: u32, exif: &str) -> Vec<u8> {
        let mut body = Vec::new();
        let mut vp8x = vec![0x08, 0, 0, 0];
        vp8x.extend_from_slice(&(width - 1).to_le_bytes()[..3]);
        vp8x.extend_from_slice(&(height - 1).to_le_bytes()[..3]);
        for (kind, data) in [(b"VP8X", vp8x), (b"VP8L", {
            let bits = (width - 1) | ((height - 1) << 14);
            let mut d = vec![0x2F];
            d.extend_from_slice(&bits.to_le_bytes());
            d.push(0);
            d
        }), (b"EXIF", exif.as_bytes().to_vec())] {
            body.extend_from_slice(kind);
            body.extend_from_slice(&(data.len() as u32).to_le_bytes());
            body.extend_from_slice(&data);
            if data.len() & 1 == 1 {
                body.push(0);
            }
        }
        let mut out = b"RIFF".to_vec();
        out.extend_from_slice(&((body.len() + 4) as u32).to_le_bytes());
        out.extend_from_slice(b"WEBP");
        out.extend_from_slice(&body);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_format_is_accepted_with_its_metadata_gone() {
        let png = accept(&samples::png(640, 480, "GPS 33.4,-112.0")).unwrap();
        assert_eq!((png.media_type, png.width, png.height), ("image/png", 640, 480));
        assert!(!png.bytes.windows(3).any(|w| w == b"GPS"));
        let jpg = accept(&samples::jpeg(800, 600, "GPS 33.4,-112.0")).unwrap();
        assert_eq!((jpg.media_type, jpg.width, jpg.height), ("image/jpeg", 800, 600));
        assert!(!jpg.bytes.windows(3).any(|w| w == b"GPS"));
        assert!(jpg.bytes.ends_with(&[0xFF, 0xD9]));
        let webp = accept(&samples::webp(320, 200, "GPS 33.4,-112.0")).unwrap();
        assert_eq!((webp.media_type, webp.width, webp.height), ("image/webp", 320, 200));
        assert!(!webp.bytes.windows(3).any(|w| w == b"GPS"));
        // Stripping is stable: the stripped file is accepted as it is.
        assert_eq!(accept(&png.bytes).unwrap().sha256, png.sha256);
        assert_eq!(accept(&jpg.bytes).unwrap().bytes, jpg.bytes);
        assert_eq!(accept(&webp.bytes).unwrap().bytes, webp.bytes);
    }

    #[test]
    fn fakes_bombs_and_polyglots_are_refused() {
        let mut elf = PNG_MAGIC.to_vec();
        elf.extend_from_slice(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0");
        assert!(matches!(accept(&elf), Err(ImageError::Malformed("PNG", _))));
        let mut polyglot = samples::png(10, 10, "x");
        polyglot.extend_from_slice(b"PK\x03\x04 zip archive here");
        assert!(matches!(accept(&polyglot), Err(ImageError::Malformed("PNG", _))));
        assert_eq!(accept(&samples::png(100_000, 100_000, "")), Err(ImageError::TooManyPixels(100_000, 100_000)));
        assert_eq!(accept(&samples::jpeg(65_535, 65_535, "")), Err(ImageError::TooManyPixels(65_535, 65_535)));
        assert_eq!(accept(b"GIF89a...."), Err(ImageError::UnknownFormat));
        assert_eq!(accept(&vec![0u8; MAX_SCREENSHOT_BYTES + 1]), Err(ImageError::TooLarge));
        let mut jpg = samples::jpeg(10, 10, "");
        jpg.extend_from_slice(b"#!/bin/sh\n");
        assert!(accept(&jpg).is_err());
        let mut webp = samples::webp(10, 10, "");
        webp.push(0);
        assert!(accept(&webp).is_err());
        // Every cut of a valid file is refused, never a panic.
        for sample in [samples::png(10, 10, "t"), samples::jpeg(10, 10, "t"), samples::webp(10, 10, "t")] {
            for n in 0..sample.len() {
                assert!(accept(&sample[..n]).is_err(), "cut at {n}");
            }
        }
    }
}
