//! The tray icon's pixels: the bell, greyed out while not live, with the unread count
//! drawn on a red disc (1–9, then "9+") and an orange mark while an unread critical
//! deadline exists. Pure code (no display), so every look is unit-tested; the tray
//! only re-renders when the [`TrayLook`] changes.

/// The icon's side, in pixels (drawn at 64 px so it stays sharp on HiDPI panels).
pub const SIZE: usize = 64;

/// What the badge shows for the unread count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Badge {
    /// Nothing unread: no badge.
    None,
    /// 1 to 9.
    Count(u8),
    /// 10 or more: "9+".
    Many,
}

impl Badge {
    /// The badge for an unread count.
    pub fn from_count(count: u64) -> Badge {
        match count {
            0 => Badge::None,
            1..=9 => Badge::Count(count as u8),
            _ => Badge::Many,
        }
    }

    /// The text of the badge ("", "3", "9+"), also used as the tray's title/label.
    pub fn label(self) -> String {
        match self {
            Badge::None => String::new(),
            Badge::Count(n) => n.to_string(),
            Badge::Many => "9+".to_owned(),
        }
    }
}

/// Everything the icon shows; two equal looks are the same pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TrayLook {
    /// The unread badge.
    pub badge: Badge,
    /// Live (connected and caught up); otherwise the bell is greyed out.
    pub live: bool,
    /// An unread critical deadline exists.
    pub critical: bool,
}

/// A 5×7 bitmap font for what badges need: each row's low 5 bits, top row first.
fn glyph(c: char) -> [u8; 7] {
    match c {
        '0' => [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
        '1' => [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        '2' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
        '3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        '4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
        '5' => [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        '6' => [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
        '7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
        '9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        '+' => [0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00],
        '!' => [0x04, 0x04, 0x04, 0x04, 0x04, 0x00, 0x04],
        _ => [0; 7],
    }
}

/// An RGBA canvas of [`SIZE`]².
struct Canvas {
    /// Row-major RGBA bytes.
    pixels: Vec<u8>,
}

impl Canvas {
    fn put(&mut self, x: i32, y: i32, rgba: [u8; 4]) {
        if (0..SIZE as i32).contains(&x) && (0..SIZE as i32).contains(&y) {
            let at = (y as usize * SIZE + x as usize) * 4;
            self.pixels[at..at + 4].copy_from_slice(&rgba);
        }
    }

    /// A filled disc with a 2 px white ring, so it stands out on dark and light panels.
    fn disc(&mut self, cx: i32, cy: i32, radius: i32, fill: [u8; 4]) {
        for y in cy - radius - 2..=cy + radius + 2 {
            for x in cx - radius - 2..=cx + radius + 2 {
                let d2 = (x - cx).pow(2) + (y - cy).pow(2);
                if d2 <= radius * radius {
                    self.put(x, y, fill);
                } else if d2 <= (radius + 2).pow(2) {
                    self.put(x, y, WHITE);
                }
            }
        }
    }

    /// Text centred on (cx, cy), each font pixel drawn as `scale`² pixels.
    fn text(&mut self, text: &str, cx: i32, cy: i32, scale: i32, colour: [u8; 4]) {
        let count = text.chars().count() as i32;
        let width = count * 5 * scale + (count - 1).max(0) * scale;
        let mut x0 = cx - width / 2;
        let y0 = cy - 7 * scale / 2;
        for c in text.chars() {
            for (row, bits) in glyph(c).iter().enumerate() {
                for col in 0..5 {
                    if bits & (0x10 >> col) != 0 {
                        for dy in 0..scale {
                            for dx in 0..scale {
                                self.put(
                                    x0 + col * scale + dx,
                                    y0 + row as i32 * scale + dy,
                                    colour,
                                );
                            }
                        }
                    }
                }
            }
            x0 += 6 * scale;
        }
    }
}

const WHITE: [u8; 4] = [255, 255, 255, 255];
/// The unread disc: a red with enough contrast for white digits (WCAG AA).
const RED: [u8; 4] = [200, 30, 30, 255];
/// The critical mark.
const ORANGE: [u8; 4] = [230, 110, 0, 255];

/// Draws `look` over `base` (the bell, [`SIZE`]² RGBA). Returns RGBA bytes.
pub fn render(base: &[u8], look: TrayLook) -> Vec<u8> {
    let mut canvas = Canvas {
        pixels: base.to_vec(),
    };
    canvas.pixels.resize(SIZE * SIZE * 4, 0);
    if !look.live {
        // Grey and fade the bell: "not live" at a glance, without colour alone (the
        // status line and the panel say it in words).
        for px in canvas.pixels.chunks_exact_mut(4) {
            let luma =
                (u32::from(px[0]) * 30 + u32::from(px[1]) * 59 + u32::from(px[2]) * 11) / 100;
            let grey = (luma / 2 + 64) as u8;
            px[0] = grey;
            px[1] = grey;
            px[2] = grey;
            px[3] = (u32::from(px[3]) * 3 / 5) as u8;
        }
    }
    if look.critical {
        canvas.disc(12, 12, 10, ORANGE);
        canvas.text("!", 12, 12, 2, WHITE);
    }
    match look.badge {
        Badge::None => {}
        Badge::Count(n) => {
            canvas.disc(SIZE as i32 - 17, SIZE as i32 - 17, 15, RED);
            canvas.text(&n.to_string(), SIZE as i32 - 17, SIZE as i32 - 17, 3, WHITE);
        }
        Badge::Many => {
            canvas.disc(SIZE as i32 - 17, SIZE as i32 - 17, 15, RED);
            canvas.text("9+", SIZE as i32 - 17, SIZE as i32 - 17, 2, WHITE);
        }
    }
    canvas.pixels
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Vec<u8> {
        // A plain blue square stands in for the bell.
        [31, 58, 95, 255].repeat(SIZE * SIZE)
    }

    fn pixel(img: &[u8], x: usize, y: usize) -> [u8; 4] {
        let at = (y * SIZE + x) * 4;
        [img[at], img[at + 1], img[at + 2], img[at + 3]]
    }

    fn look(badge: Badge, live: bool, critical: bool) -> TrayLook {
        TrayLook {
            badge,
            live,
            critical,
        }
    }

    #[test]
    fn counts_map_to_badges_and_labels() {
        assert_eq!(Badge::from_count(0), Badge::None);
        assert_eq!(Badge::from_count(1), Badge::Count(1));
        assert_eq!(Badge::from_count(9), Badge::Count(9));
        assert_eq!(Badge::from_count(10), Badge::Many);
        assert_eq!(Badge::from_count(12_345), Badge::Many);
        assert_eq!(Badge::None.label(), "");
        assert_eq!(Badge::Count(7).label(), "7");
        assert_eq!(Badge::Many.label(), "9+");
    }

    #[test]
    fn no_badge_live_and_calm_is_the_bell_itself() {
        assert_eq!(render(&base(), look(Badge::None, true, false)), base());
    }

    #[test]
    fn every_count_draws_a_different_badge() {
        let mut seen = std::collections::HashSet::new();
        for badge in (1..=9).map(Badge::Count).chain([Badge::None, Badge::Many]) {
            assert!(
                seen.insert(render(&base(), look(badge, true, false))),
                "{badge:?}"
            );
        }
    }

    #[test]
    fn the_badge_is_a_red_disc_with_white_digits_bottom_right() {
        let img = render(&base(), look(Badge::Count(1), true, false));
        // The disc's edge is red; the digit "1"'s stem at the centre is white.
        assert_eq!(pixel(&img, SIZE - 17 - 12, SIZE - 17), RED);
        assert_eq!(pixel(&img, SIZE - 17, SIZE - 17), WHITE);
        // The top-left is untouched.
        assert_eq!(pixel(&img, 2, 2), [31, 58, 95, 255]);
    }

    #[test]
    fn offline_greys_the_bell_but_keeps_the_red_count() {
        let live = render(&base(), look(Badge::Count(3), true, false));
        let offline = render(&base(), look(Badge::Count(3), false, false));
        assert_ne!(live, offline);
        let [r, g, b, a] = pixel(&offline, 2, 2);
        assert!(r == g && g == b, "grey, not blue");
        assert!(a < 255, "faded");
        assert_eq!(pixel(&offline, SIZE - 17 - 12, SIZE - 17), RED);
    }

    #[test]
    fn a_critical_deadline_adds_an_orange_mark_top_left() {
        let img = render(&base(), look(Badge::None, true, true));
        assert_eq!(pixel(&img, 12 - 8, 12), ORANGE);
        assert_eq!(pixel(&img, 12, 12 - 6), WHITE, "the ! stroke");
    }
}
