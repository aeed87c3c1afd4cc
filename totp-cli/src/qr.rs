//! The QR code of the `otpauth://` URI, drawn on the terminal.
//!
//! Two drawings, both with explicit colours so that dark modules come out
//! dark whether the terminal has a light or a dark background (an uncoloured
//! drawing on a dark terminal is a negative that many phone scanners do not
//! read), and both with a light quiet zone around the symbol (scanners look
//! for it to find the code's edges):
//! - UTF-8: one character cell holds two modules, upper and lower half
//!   block, black on light grey: compact, so a phone can frame it;
//! - ANSI: two spaces per module with a black or light grey background, for
//!   terminals whose fonts lack the block characters.
//!
//! Everything here encodes the secret, so the buffers are wiped on drop.

use crate::error::Error;
use qrcode::{Color, EcLevel, QrCode};
use zeroize::Zeroizing;

/// Light modules around the symbol, as ISO/IEC 18004 asks for.
pub const QUIET_ZONE: usize = 4;
/// The narrower quiet zone used when the full one would push the QR code
/// off an 80x24 terminal: phone scanners and zbar read a symbol with two
/// light modules around it (the drawing's own light grey, whatever the
/// terminal's background beyond).
pub const NARROW_QUIET_ZONE: usize = 2;

/// Black text on a light grey background; the reset first clears any
/// reverse-video or bold state the terminal was left in.
pub const UTF8_COLOURS: &str = "\x1b[0;30;47m";
pub const ANSI_DARK: &str = "\x1b[40m";
pub const ANSI_LIGHT: &str = "\x1b[0;47m";
pub const RESET: &str = "\x1b[0m";

pub const UPPER_HALF: char = '\u{2580}';
pub const LOWER_HALF: char = '\u{2584}';
pub const FULL_BLOCK: char = '\u{2588}';

/// How the QR code is drawn (`-Q`; the argument parser maps the names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QrMode {
    /// Unicode half blocks (two modules per character cell).
    Utf8,
    /// Coloured spaces (two character cells per module).
    Ansi,
    /// No QR code.
    None,
}

impl QrMode {
    /// Character cells the drawing of a `modules`-wide matrix (quiet zone
    /// included) takes: (columns, lines).
    pub fn cells(self, modules: usize) -> (usize, usize) {
        match self {
            QrMode::Utf8 => (modules, modules.div_ceil(2)),
            QrMode::Ansi => (2 * modules, modules),
            QrMode::None => (0, 0),
        }
    }
}

/// The modules of a QR symbol, quiet zone included: row-major, `true` is dark.
pub struct Matrix {
    size: usize,
    dark: Zeroizing<Vec<bool>>,
}

impl Matrix {
    /// Encodes `data` at error-correction level L (7 %), with `quiet_zone`
    /// light modules on every side. A screen is not a scratched label: the
    /// lowest level keeps the symbol small enough to fit a terminal (a key
    /// URI with a 32-byte label is version 5, 37 modules, at L and version
    /// 6 at M), and scanners read it off a screen without trouble.
    pub fn encode(data: &[u8], quiet_zone: usize) -> Result<Matrix, Error> {
        let code = QrCode::with_error_correction_level(data, EcLevel::L)
            .map_err(|error| Error::Qr(error.to_string()))?;
        let symbol = code.width();
        let mut colors = code.into_colors();
        let size = symbol + 2 * quiet_zone;
        let mut dark = Zeroizing::new(vec![false; size * size]);
        for y in 0..symbol {
            for x in 0..symbol {
                dark[(y + quiet_zone) * size + x + quiet_zone] =
                    colors[y * symbol + x] == Color::Dark;
            }
        }
        // qrcode's own buffer cannot be zeroized; overwrite what we can reach.
        colors.iter_mut().for_each(|c| *c = Color::Light);
        std::hint::black_box(&colors);
        Ok(Matrix { size, dark })
    }

    /// Modules per side, quiet zone included.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Whether the module at column `x`, row `y` is dark; outside the matrix
    /// everything is light.
    pub fn is_dark(&self, x: usize, y: usize) -> bool {
        x < self.size && y < self.size && self.dark[y * self.size + x]
    }

    /// Half blocks: each text line carries two module rows.
    pub fn to_utf8(&self) -> Zeroizing<String> {
        let mut out = Zeroizing::new(String::with_capacity(
            (self.size + 2) / 2 * (self.size * 3 + 16),
        ));
        for y in (0..self.size).step_by(2) {
            out.push_str(UTF8_COLOURS);
            for x in 0..self.size {
                // The foreground (black) draws the dark modules.
                out.push(match (self.is_dark(x, y), self.is_dark(x, y + 1)) {
                    (true, true) => FULL_BLOCK,
                    (true, false) => UPPER_HALF,
                    (false, true) => LOWER_HALF,
                    (false, false) => ' ',
                });
            }
            out.push_str(RESET);
            out.push('\n');
        }
        out
    }

    /// Two spaces per module, coloured by background.
    pub fn to_ansi(&self) -> Zeroizing<String> {
        let mut out = Zeroizing::new(String::with_capacity(self.size * (self.size * 4 + 16)));
        for y in 0..self.size {
            let mut current = None;
            for x in 0..self.size {
                let dark = self.is_dark(x, y);
                if current != Some(dark) {
                    out.push_str(if dark { ANSI_DARK } else { ANSI_LIGHT });
                    current = Some(dark);
                }
                out.push_str("  ");
            }
            out.push_str(RESET);
            out.push('\n');
        }
        out
    }

    /// The drawing for `mode`, or `None` for [`QrMode::None`].
    pub fn draw(&self, mode: QrMode) -> Option<Zeroizing<String>> {
        match mode {
            QrMode::None => None,
            QrMode::Utf8 => Some(self.to_utf8()),
            QrMode::Ansi => Some(self.to_ansi()),
        }
    }
}

/// A QR code drawn to fit: the full quiet zone if the drawing then fits in
/// `room` (columns, lines), else the narrow one. `None` for
/// [`QrMode::None`]; the caller compares [`Drawing::cells`] with the room
/// to learn whether even the narrow one fits.
pub fn render(
    data: &[u8],
    mode: QrMode,
    room: Option<(usize, usize)>,
) -> Result<Option<Drawing>, Error> {
    if mode == QrMode::None {
        return Ok(None);
    }
    let mut matrix = Matrix::encode(data, QUIET_ZONE)?;
    let fits = |m: &Matrix| {
        room.is_none_or(|(columns, lines)| {
            let (w, h) = mode.cells(m.size());
            w <= columns && h <= lines
        })
    };
    if !fits(&matrix) {
        matrix = Matrix::encode(data, NARROW_QUIET_ZONE)?;
    }
    let cells = mode.cells(matrix.size());
    Ok(matrix.draw(mode).map(|text| Drawing { text, cells }))
}

/// A QR code as text, and the character cells it covers (columns, lines).
pub struct Drawing {
    pub text: Zeroizing<String>,
    pub cells: (usize, usize),
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Decodes a module grid the way a phone would: drawn as a picture, dark
    /// as black, 3 pixels per module, searched for finder patterns.
    pub(crate) fn decode_modules(size: usize, dark: impl Fn(usize, usize) -> bool) -> String {
        const SCALE: usize = 3;
        let pixels = size * SCALE;
        let mut image = rqrr::PreparedImage::prepare_from_greyscale(pixels, pixels, |x, y| {
            if dark(x / SCALE, y / SCALE) {
                0
            } else {
                255
            }
        });
        let grids = image.detect_grids();
        assert_eq!(grids.len(), 1, "exactly one QR code in the picture");
        grids[0].decode().expect("QR code decodes").1
    }

    /// Reads the half-block drawing back into modules: strips the colour
    /// escapes (checking they are black on light), then two rows per line.
    pub(crate) fn parse_utf8(text: &str) -> Vec<Vec<bool>> {
        let mut rows = Vec::new();
        for line in text.lines() {
            let inner = line
                .strip_prefix(UTF8_COLOURS)
                .and_then(|l| l.strip_suffix(RESET))
                .unwrap_or_else(|| panic!("line not wrapped in black-on-light colours: {line:?}"));
            let mut top = Vec::new();
            let mut bottom = Vec::new();
            for ch in inner.chars() {
                let (t, b) = match ch {
                    FULL_BLOCK => (true, true),
                    UPPER_HALF => (true, false),
                    LOWER_HALF => (false, true),
                    ' ' => (false, false),
                    other => panic!("unexpected character {other:?}"),
                };
                top.push(t);
                bottom.push(b);
            }
            rows.push(top);
            rows.push(bottom);
        }
        rows
    }

    /// Reads the ANSI drawing back: the background colour in force for each
    /// two-space cell says whether the module is dark.
    pub(crate) fn parse_ansi(text: &str) -> Vec<Vec<bool>> {
        let mut rows = Vec::new();
        for line in text.lines() {
            let mut row = Vec::new();
            let mut rest = line;
            let mut dark = None;
            while !rest.is_empty() {
                if let Some(after) = rest.strip_prefix(ANSI_DARK) {
                    dark = Some(true);
                    rest = after;
                } else if let Some(after) = rest.strip_prefix(ANSI_LIGHT) {
                    dark = Some(false);
                    rest = after;
                } else if let Some(after) = rest.strip_prefix(RESET) {
                    dark = None;
                    rest = after;
                } else if let Some(after) = rest.strip_prefix("  ") {
                    row.push(dark.expect("a module drawn with an explicit background"));
                    rest = after;
                } else {
                    panic!("unexpected text {rest:?}");
                }
            }
            rows.push(row);
        }
        rows
    }

    const URI: &str = "otpauth://totp/host:me%40host?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=host&algorithm=SHA1&digits=6&period=30";

    #[test]
    fn matrix_decodes_to_the_data_and_has_a_quiet_zone() {
        let matrix = Matrix::encode(URI.as_bytes(), QUIET_ZONE).unwrap();
        assert_eq!(
            decode_modules(matrix.size(), |x, y| matrix.is_dark(x, y)),
            URI
        );
        let size = matrix.size();
        for i in 0..size {
            for q in 0..QUIET_ZONE {
                for (x, y) in [(i, q), (q, i), (i, size - 1 - q), (size - 1 - q, i)] {
                    assert!(
                        !matrix.is_dark(x, y),
                        "quiet zone module ({x}, {y}) is dark"
                    );
                }
            }
        }
        // The top-left finder pattern starts right inside the quiet zone.
        assert!(matrix.is_dark(QUIET_ZONE, QUIET_ZONE));
    }

    #[test]
    fn utf8_drawing_round_trips_and_decodes() {
        let matrix = Matrix::encode(URI.as_bytes(), QUIET_ZONE).unwrap();
        let text = matrix.to_utf8();
        let rows = parse_utf8(&text);
        assert_eq!(text.lines().count(), matrix.size().div_ceil(2));
        for (y, row) in rows.iter().take(matrix.size()).enumerate() {
            assert_eq!(row.len(), matrix.size());
            for (x, &dark) in row.iter().enumerate() {
                assert_eq!(dark, matrix.is_dark(x, y), "module ({x}, {y})");
            }
        }
        // The padding row under an odd-sized matrix is light.
        assert!(rows[matrix.size()].iter().all(|&d| !d));
        assert_eq!(decode_modules(matrix.size(), |x, y| rows[y][x]), URI);
    }

    #[test]
    fn ansi_drawing_round_trips_and_decodes() {
        let matrix = Matrix::encode(URI.as_bytes(), QUIET_ZONE).unwrap();
        let rows = parse_ansi(&matrix.to_ansi());
        assert_eq!(rows.len(), matrix.size());
        assert_eq!(decode_modules(matrix.size(), |x, y| rows[y][x]), URI);
    }

    /// SGR parameters of an escape sequence like "\x1b[0;30;47m".
    fn sgr(sequence: &str) -> Vec<u32> {
        let body = sequence
            .strip_prefix("\x1b[")
            .unwrap()
            .strip_suffix('m')
            .unwrap();
        body.split(';').map(|p| p.parse().unwrap()).collect()
    }

    #[test]
    fn colours_put_dark_modules_in_black_on_light() {
        // The half blocks are foreground: it must be black (30), the
        // background light grey (47), whatever the terminal's own scheme.
        let utf8 = sgr(UTF8_COLOURS);
        assert_eq!(utf8.first(), Some(&0), "starts from a reset");
        assert!(utf8.contains(&30) && utf8.contains(&47), "{utf8:?}");
        assert_eq!(sgr(ANSI_DARK), vec![40]);
        assert_eq!(sgr(ANSI_LIGHT), vec![0, 47]);
    }

    #[test]
    fn none_draws_nothing() {
        assert!(render(URI.as_bytes(), QrMode::None, None)
            .unwrap()
            .is_none());
        assert!(render(URI.as_bytes(), QrMode::Utf8, None)
            .unwrap()
            .is_some());
    }

    #[test]
    fn quiet_zone_narrows_only_when_the_room_asks_for_it() {
        let full = render(URI.as_bytes(), QrMode::Utf8, None).unwrap().unwrap();
        let symbol = full.cells.0 - 2 * QUIET_ZONE;
        assert_eq!(full.cells, (symbol + 8, (symbol + 8).div_ceil(2)));
        let room = (80, (symbol + 8).div_ceil(2) - 1);
        let narrow = render(URI.as_bytes(), QrMode::Utf8, Some(room))
            .unwrap()
            .unwrap();
        assert_eq!(narrow.cells, (symbol + 4, (symbol + 4).div_ceil(2)));
        let rows = parse_utf8(&narrow.text);
        assert_eq!(decode_modules(symbol + 4, |x, y| rows[y][x]), URI);
        let ansi = render(URI.as_bytes(), QrMode::Ansi, Some((80, 24)))
            .unwrap()
            .unwrap();
        assert_eq!(ansi.cells, (2 * (symbol + 4), symbol + 4));
    }
}
