//! Shared by the tests that run the built `totp-enroll`.
#![allow(dead_code)] // each test file uses its own part

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const BIN: &str = env!("CARGO_BIN_EXE_totp-enroll");

/// A fresh directory, removed with everything in it on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("totp-enroll-it-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    pub fn dir(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Runs the binary with `args`, standard input from /dev/null (not a terminal).
pub fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run totp-enroll")
}

/// Runs the binary with `args` and `input` piped on standard input.
pub fn run_piped(args: &[&str], input: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run totp-enroll");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// How an authenticator app reads a key URI (the Key Uri Format): the
/// label, percent-decoded, is `ISSUER:ACCOUNT` split at its first colon (or
/// just `ACCOUNT`); an `issuer` parameter names the issuer. Returns
/// (issuer, account).
pub fn key_uri_reading(uri: &str) -> (String, String) {
    let rest = uri
        .strip_prefix("otpauth://totp/")
        .or_else(|| uri.strip_prefix("otpauth://hotp/"))
        .expect("an otpauth URI");
    let (path, query) = rest.split_once('?').expect("parameters");
    let decode = |text: &str| -> String {
        let bytes = text.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    };
    let label = decode(path);
    let (prefix, account) = match label.split_once(':') {
        Some((issuer, account)) => (Some(issuer.to_owned()), account.to_owned()),
        None => (None, label),
    };
    let parameter = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("issuer="))
        .map(decode);
    if let (Some(p), Some(q)) = (&prefix, &parameter) {
        assert_eq!(p, q, "prefix and parameter disagree in {uri}");
    }
    (parameter.or(prefix).unwrap_or_default(), account)
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The value after `prefix` on the line that starts with it.
pub fn line_value<'a>(text: &'a str, prefix: &str) -> &'a str {
    text.lines()
        .find_map(|line| line.trim_end_matches('\r').strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no line starting {prefix:?} in:\n{text}"))
}

/// The secret as printed in groups of four, without the spaces.
pub fn printed_secret(text: &str) -> String {
    line_value(text, "Your new secret key is: ").replace(' ', "")
}

pub fn printed_uri(text: &str) -> String {
    line_value(text, "Key URI: ").to_owned()
}

/// Independent code generator: Debian's oathtool.
pub fn oathtool(args: &[&str]) -> String {
    let out = Command::new("oathtool")
        .args(args)
        .output()
        .expect("oathtool is installed (apt-get install oathtool)");
    assert!(out.status.success(), "oathtool {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

pub fn oathtool_totp(secret: &str, unix: u64) -> String {
    oathtool(&["--totp", "-b", secret, "--now", &format!("@{unix}")])
}

pub fn oathtool_hotp(secret: &str, counter: u64) -> String {
    oathtool(&["--hotp", "-b", secret, "-c", &counter.to_string()])
}

const COLOURS: &str = "\x1b[0;30;47m";
const RESET: &str = "\x1b[0m";

/// Reads the UTF-8 half-block QR code out of printed text: the lines drawn
/// black on light grey, two module rows per line.
pub fn utf8_qr_rows(text: &str) -> Vec<Vec<bool>> {
    let mut rows = Vec::new();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        let Some(inner) = line.strip_prefix(COLOURS) else {
            continue;
        };
        let inner = inner
            .strip_suffix(RESET)
            .expect("colours reset at the end of the line");
        let (mut top, mut bottom) = (Vec::new(), Vec::new());
        for ch in inner.chars() {
            let (t, b) = match ch {
                '\u{2588}' => (true, true),
                '\u{2580}' => (true, false),
                '\u{2584}' => (false, true),
                ' ' => (false, false),
                other => panic!("unexpected character {other:?} in the QR code"),
            };
            top.push(t);
            bottom.push(b);
        }
        rows.push(top);
        rows.push(bottom);
    }
    assert!(!rows.is_empty(), "no QR code in:\n{text}");
    rows
}

/// Reads the ANSI (coloured spaces) QR code out of printed text.
pub fn ansi_qr_rows(text: &str) -> Vec<Vec<bool>> {
    let mut rows = Vec::new();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if !line.starts_with("\x1b[0;47m") && !line.starts_with("\x1b[40m") {
            continue;
        }
        let mut row = Vec::new();
        let mut dark = false;
        let mut rest = line;
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix("\x1b[40m") {
                dark = true;
                rest = after;
            } else if let Some(after) = rest.strip_prefix("\x1b[0;47m") {
                dark = false;
                rest = after;
            } else if let Some(after) = rest.strip_prefix(RESET) {
                rest = after;
            } else if let Some(after) = rest.strip_prefix("  ") {
                row.push(dark);
                rest = after;
            } else {
                panic!("unexpected text in the QR code: {rest:?}");
            }
        }
        rows.push(row);
    }
    assert!(!rows.is_empty(), "no QR code in:\n{text}");
    rows
}

/// Decodes a module grid as a phone would see it (dark drawn black), after
/// checking it has a light quiet zone of at least 4 modules.
pub fn decode_qr(rows: &[Vec<bool>]) -> String {
    let size = rows[0].len();
    assert!(rows.iter().all(|r| r.len() == size), "ragged QR code");
    assert!(rows.len() >= size, "{} rows for {size} columns", rows.len());
    for (y, row) in rows.iter().enumerate() {
        for (x, &dark) in row.iter().enumerate() {
            if x < 4 || y < 4 || x >= size - 4 || y >= size - 4 {
                assert!(!dark, "quiet zone module ({x}, {y}) is dark");
            }
        }
    }
    const SCALE: usize = 4;
    let mut image =
        rqrr::PreparedImage::prepare_from_greyscale(size * SCALE, size * SCALE, |x, y| {
            if rows[y / SCALE][x / SCALE] {
                0
            } else {
                255
            }
        });
    let grids = image.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code");
    grids[0].decode().expect("the QR code decodes").1
}
