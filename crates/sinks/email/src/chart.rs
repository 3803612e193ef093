//! PNG charts for the digest (`png_charts = true`): messages per day, stacked by TLS version.
//!
//! Mail clients show inline `cid:` images where they strip SVG and `data:` URIs. The chart has
//! no text of its own (no fonts to ship): the HTML around it carries the legend and the figures,
//! and the image's `alt` says what it shows.

use mailflow_core::TlsVersion;
use mailflow_core::report::Daily;

/// The colours of TLS versions (the dashboard's palette, safe for colour-blind readers).
pub fn color(version: TlsVersion) -> ([u8; 3], &'static str) {
    match version {
        TlsVersion::None => ([0xd5, 0x5e, 0x00], "#d55e00"),
        TlsVersion::Ssl3 => ([0xcc, 0x79, 0xa7], "#cc79a7"),
        TlsVersion::Tls1_0 => ([0xe6, 0x9f, 0x00], "#e69f00"),
        TlsVersion::Tls1_1 => ([0xf0, 0xe4, 0x42], "#f0e442"),
        TlsVersion::Tls1_2 => ([0x56, 0xb4, 0xe9], "#56b4e9"),
        TlsVersion::Tls1_3 => ([0x00, 0x9e, 0x73], "#009e73"),
        TlsVersion::Unknown => ([0x8c, 0x8c, 0x8c], "#8c8c8c"),
    }
}

/// Shown at 560 × 140 CSS pixels; drawn at twice that for sharp high-density screens.
pub const WIDTH: u32 = 1120;
pub const HEIGHT: u32 = 280;
const BACKGROUND: [u8; 3] = [0xff, 0xff, 0xff];
const GRID: [u8; 3] = [0xdd, 0xe1, 0xe6];

/// Messages per day as stacked columns, one per day, scaled to the busiest day.
pub fn daily_png(days: &[Daily]) -> Vec<u8> {
    let mut pixels = vec![0u8; (WIDTH * HEIGHT * 3) as usize];
    for px in pixels.chunks_exact_mut(3) {
        px.copy_from_slice(&BACKGROUND);
    }
    let mut fill = |x0: u32, y0: u32, x1: u32, y1: u32, rgb: [u8; 3]| {
        for y in y0.min(HEIGHT)..y1.min(HEIGHT) {
            for x in x0.min(WIDTH)..x1.min(WIDTH) {
                let i = ((y * WIDTH + x) * 3) as usize;
                pixels[i..i + 3].copy_from_slice(&rgb);
            }
        }
    };
    let top = 8;
    let bottom = HEIGHT - 4;
    for quarter in 0..=4 {
        let y = top + (bottom - top) * quarter / 4;
        fill(0, y, WIDTH, y + 2, GRID);
    }
    let max = days.iter().map(|d| d.counters.messages).max().unwrap_or(0);
    if max > 0 && !days.is_empty() {
        let slot = WIDTH / days.len() as u32;
        let gap = (slot / 5).max(1);
        for (i, day) in days.iter().enumerate() {
            let x0 = i as u32 * slot + gap / 2;
            let x1 = x0 + slot.saturating_sub(gap).max(1);
            let mut y = bottom;
            let mut below = 0u64;
            for version in TlsVersion::ALL {
                let n = day.counters.tls.get(version);
                if n == 0 {
                    continue;
                }
                below += n;
                // Heights from cumulative counts, so rounding never adds up to a wrong total.
                let y_top = bottom - ((below as f64 / max as f64) * f64::from(bottom - top)).round() as u32;
                fill(x0, y_top, x1, y, color(version).0);
                y = y_top;
            }
        }
    }
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, WIDTH, HEIGHT);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::High);
    // Writing into a Vec cannot fail, and the size matches the buffer by construction.
    let mut writer = encoder.write_header().expect("PNG header into memory");
    writer.write_image_data(&pixels).expect("PNG data into memory");
    writer.finish().expect("PNG end into memory");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailflow_core::Counters;

    #[test]
    fn columns_are_scaled_to_the_busiest_day_and_stacked_by_version() {
        let day = |none: u64, tls1_3: u64| {
            let mut counters = Counters { messages: none + tls1_3, ..Default::default() };
            counters.tls.none = none;
            counters.tls.tls1_3 = tls1_3;
            Daily { date: "2026-12-01".parse().unwrap(), counters }
        };
        let png = daily_png(&[day(10, 30), day(0, 0), day(5, 5)]);
        let decoder = png::Decoder::new(std::io::Cursor::new(png));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        reader.next_frame(&mut buf).unwrap();
        let at = |x: u32, y: u32| {
            let i = ((y * WIDTH + x) * 3) as usize;
            [buf[i], buf[i + 1], buf[i + 2]]
        };
        let middle = |i: u32| i * (WIDTH / 3) + WIDTH / 6;
        assert_eq!(at(middle(0), HEIGHT - 10), color(TlsVersion::None).0, "plaintext at the bottom");
        assert_eq!(at(middle(0), 20), color(TlsVersion::Tls1_3).0, "the busiest day reaches the top");
        assert_eq!(at(middle(1), HEIGHT - 10), BACKGROUND, "an empty day has no column");
        assert_eq!(at(middle(2), 20), BACKGROUND, "a quarter of the busiest day stays low");
        assert_eq!(at(middle(2), HEIGHT - 10), color(TlsVersion::None).0);
    }
}
