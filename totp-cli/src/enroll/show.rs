//! Showing the new key so that the app can take it: a QR code sized to the
//! terminal, or the key and key URI as text.
//!
//! What is on screen when the next prompt appears is what a phone can scan:
//! in an 80x24 terminal the whole QR code and the prompt under it must fit
//! in the visible lines (not the scrollback). So the key and a word on what
//! to do come above the drawing (on screen when there is room), the key URI
//! only on request (`k` at the code prompt), and a terminal too small for
//! the QR code gets the key and URI as text with a word on why.

use super::grouped;
use crate::error::Error;
use crate::qr::{self, QrMode};
use std::io::Write;

/// What the app needs, as text.
pub struct Key<'a> {
    pub uri: &'a str,
    pub base32: &'a str,
}

impl Key<'_> {
    /// The key in groups of four, and the URI (for apps that open it).
    pub fn write_text(&self, out: &mut dyn Write) -> Result<(), Error> {
        writeln!(out, "Your new secret key is: {}", *grouped(self.base32))?;
        writeln!(out, "Key URI: {}", self.uri)?;
        Ok(())
    }
}

/// Where the key is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Screen {
    /// The drawing asked for (`-Q`), or chosen: UTF-8 on a terminal, none
    /// otherwise.
    pub mode: QrMode,
    /// `-Q` was not given and standard output is not a terminal.
    pub no_terminal: bool,
    /// The terminal's (columns, lines), when known.
    pub size: Option<(usize, usize)>,
    /// Lines needed under the drawing by what comes next (the prompt).
    pub lines_after: usize,
    /// A prompt follows where `k` shows the key URI; else it is printed
    /// under the drawing.
    pub uri_on_request: bool,
}

/// The QR code drawn for `key` before anything is written, so that a key
/// too big for a QR code stops the enrollment first.
pub fn prepare(key: &Key<'_>, screen: &Screen) -> Result<Option<qr::Drawing>, Error> {
    let room = screen
        .size
        .map(|(columns, lines)| (columns, lines.saturating_sub(screen.lines_after)));
    qr::render(key.uri.as_bytes(), screen.mode, room)
}

/// Shows the key: the QR code if it fits the screen, else the text.
pub fn show(
    out: &mut dyn Write,
    key: &Key<'_>,
    screen: &Screen,
    drawing: Option<&qr::Drawing>,
) -> Result<(), Error> {
    writeln!(out)?;
    let Some(drawing) = drawing else {
        if screen.no_terminal {
            writeln!(
                out,
                "No QR code: standard output is not a terminal (-Q UTF8 draws one anyway)."
            )?;
        }
        return key.write_text(out);
    };
    let (width, height) = drawing.cells;
    if let Some((columns, lines)) = screen.size {
        if width > columns || height + screen.lines_after > lines {
            writeln!(
                out,
                "The QR code needs a terminal of {width}x{} and this one is {columns}x{lines}: \
                 enter the key by hand, or enlarge the terminal and run totp-enroll again.",
                height + screen.lines_after
            )?;
            return key.write_text(out);
        }
    }
    writeln!(out, "Your new secret key is: {}", *grouped(key.base32))?;
    if screen.uri_on_request {
        writeln!(
            out,
            "Scan this QR code with your authenticator app (k at the prompt shows the URI):"
        )?;
        out.write_all(drawing.text.as_bytes())?;
    } else {
        writeln!(out, "Scan this QR code with your authenticator app:")?;
        out.write_all(drawing.text.as_bytes())?;
        writeln!(out, "Key URI: {}", key.uri)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const URI: &str = "otpauth://totp/ACME%20Corp%20Production:averyverylongusername%40host-01.ex?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

    fn shown(screen: Screen) -> String {
        let key = Key {
            uri: URI,
            base32: "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ",
        };
        let drawing = prepare(&key, &screen).unwrap();
        let mut out = Vec::new();
        show(&mut out, &key, &screen, drawing.as_ref()).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn terminal(columns: usize, lines: usize) -> Screen {
        Screen {
            mode: QrMode::Utf8,
            no_terminal: false,
            size: Some((columns, lines)),
            lines_after: 1,
            uri_on_request: true,
        }
    }

    #[test]
    fn fits_80x24_with_the_prompt_under_it() {
        let text = shown(terminal(80, 24));
        let drawn = text
            .lines()
            .filter(|l| l.starts_with(qr::UTF8_COLOURS))
            .count();
        // The drawing and the prompt line under it fit the 24 lines.
        assert!(drawn < 24, "{drawn} lines:\n{text}");
        assert!(text.lines().all(|l| l.chars().count() <= 80 + 16));
        assert!(text.contains("Your new secret key is: GEZD GNBV"));
        assert!(!text.contains("Key URI"), "the URI waits for k:\n{text}");
    }

    #[test]
    fn too_small_a_terminal_gets_the_key_as_text() {
        let text = shown(terminal(80, 15));
        assert!(text.contains("and this one is 80x15"), "{text}");
        assert!(text.contains("Your new secret key is: GEZD GNBV GY3T QOJQ"));
        assert!(text.contains(&format!("Key URI: {URI}\n")));
        assert!(!text.contains(qr::UTF8_COLOURS));
        let narrow = shown(terminal(30, 50));
        assert!(narrow.contains("this one is 30x50"), "{narrow}");
    }

    #[test]
    fn no_terminal_says_why_there_is_no_qr_code() {
        let text = shown(Screen {
            mode: QrMode::None,
            no_terminal: true,
            size: None,
            lines_after: 2,
            uri_on_request: true,
        });
        assert!(text.contains("No QR code: standard output is not a terminal"));
        assert!(text.contains("Key URI: "));
        let chosen = shown(Screen {
            mode: QrMode::None,
            no_terminal: false,
            size: Some((80, 24)),
            lines_after: 2,
            uri_on_request: true,
        });
        assert!(!chosen.contains("No QR code"), "-Q NONE needs no reason");
    }
}
