//! The QR code as a phone meets it: drawn in a real terminal (tmux, 80x24),
//! captured as the visible screen at the moment the code prompt appears
//! (not the scrollback), turned into a picture and decoded by zbarimg.

mod support;

use pam_totp::secret_file::SecretFile;
use std::fs;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use support::*;

const CODE: &str = "Enter code from app (-1 to skip):";

/// A missing tool skips the test, loudly; under CI
/// (`PAM_TOTP_REQUIRE_ALL=1`) it fails it.
fn have(tool: &str, package: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    pam_totp_tests::prerequisite(
        found,
        &format!("{tool} is not installed (apt-get install {package})"),
    )
}

fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// One program in its own tmux server and window of a fixed size.
struct Terminal {
    socket: std::path::PathBuf,
}

impl Terminal {
    fn start(columns: u16, lines: u16, args: &[&str]) -> Terminal {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let socket = std::env::temp_dir().join(format!(
            "te_screen_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let command = std::iter::once(BIN)
            .chain(args.iter().copied())
            .map(shell_quote)
            .collect::<Vec<_>>()
            .join(" ");
        let terminal = Terminal { socket };
        let status = terminal
            .tmux()
            .args(["new-session", "-d", "-s", "t", "-x"])
            .arg(columns.to_string())
            .arg("-y")
            .arg(lines.to_string())
            .arg(command)
            .args([";", "set-option", "-t", "t", "remain-on-exit", "on"])
            .status()
            .unwrap();
        assert!(status.success());
        terminal
    }

    fn tmux(&self) -> Command {
        let mut command = Command::new("tmux");
        command
            .args(["-u", "-f", "/dev/null", "-S"])
            .arg(&self.socket)
            .env("LANG", "C.UTF-8")
            .env_remove("TMUX");
        command
    }

    /// The visible screen; with `escapes`, with its colours.
    fn capture(&self, escapes: bool) -> String {
        let mut command = self.tmux();
        command.args(["capture-pane", "-p", "-t", "t"]);
        if escapes {
            // -N keeps the light spaces at the ends of the drawing's lines.
            command.args(["-e", "-N"]);
        }
        let out = command.output().unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    }

    /// Waits for `text` to be on screen (the program is working, not us).
    fn wait_for(&self, text: &str) -> String {
        let start = Instant::now();
        loop {
            let screen = self.capture(false);
            if screen.contains(text) {
                return screen;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "{text:?} never appeared:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn type_line(&self, text: &str) {
        assert!(self
            .tmux()
            .args(["send-keys", "-t", "t", "-l", text])
            .status()
            .unwrap()
            .success());
        assert!(self
            .tmux()
            .args(["send-keys", "-t", "t", "Enter"])
            .status()
            .unwrap()
            .success());
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.tmux().arg("kill-server").status();
        let _ = fs::remove_file(&self.socket);
    }
}

/// Draws a captured screen as a picture, the way a dark terminal shows it:
/// default background black, default text light, colours 0-7 as the usual
/// palette's brightness (black 0, grey/white light). Each cell is 4 pixels
/// wide and 8 high; the half blocks fill their half with the foreground.
/// Other characters (text) are drawn as their background: at the scale of
/// a QR module a phone sees them as noise beside the code, not in it.
fn picture(screen: &str, columns: usize, lines: usize) -> Vec<u8> {
    const W: usize = 4;
    const H: usize = 8;
    let (width, height) = (columns * W, lines * H);
    let mut pixels = vec![0u8; width * height];
    let brightness = |colour: Option<u8>, default: u8| match colour {
        None => default,
        Some(0) => 0,
        Some(7) => 230,
        Some(_) => 128,
    };
    let (mut fg, mut bg): (Option<u8>, Option<u8>) = (None, None);
    for (y, line) in screen.split('\n').take(lines).enumerate() {
        let mut x = 0;
        let mut chars = line.chars().peekable();
        while let Some(ch) = chars.next() {
            if ch == '\x1b' {
                assert_eq!(chars.next(), Some('['));
                let mut params = String::new();
                for c in chars.by_ref() {
                    if c == 'm' {
                        break;
                    }
                    params.push(c);
                }
                for p in params.split(';') {
                    match p.parse::<u8>().unwrap_or(0) {
                        0 => (fg, bg) = (None, None),
                        p @ 30..=37 => fg = Some(p - 30),
                        p @ 40..=47 => bg = Some(p - 40),
                        39 => fg = None,
                        49 => bg = None,
                        _ => {}
                    }
                }
                continue;
            }
            if x >= columns {
                break;
            }
            let (f, b) = (brightness(fg, 230), brightness(bg, 0));
            let (top, bottom) = match ch {
                '\u{2588}' => (f, f),
                '\u{2580}' => (f, b),
                '\u{2584}' => (b, f),
                _ => (b, b),
            };
            for dy in 0..H {
                let value = if dy < H / 2 { top } else { bottom };
                let row = (y * H + dy) * width + x * W;
                pixels[row..row + W].fill(value);
            }
            x += 1;
        }
    }
    let mut pgm = format!("P5\n{width} {height}\n255\n").into_bytes();
    pgm.extend_from_slice(&pixels);
    pgm
}

/// What zbarimg reads in the picture of the screen, if anything.
fn scan(screen: &str, columns: usize, lines: usize, dir: &TempDir) -> Option<String> {
    let image = dir.path("screen.pgm");
    fs::write(&image, picture(screen, columns, lines)).unwrap();
    let out = Command::new("zbarimg")
        .args(["--raw", "-q"])
        .arg(&image)
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8(out.stdout).unwrap().trim_end().to_owned())
}

#[test]
fn qr_code_scans_off_an_80x24_screen_at_the_code_prompt() {
    if !have("tmux", "tmux") || !have("zbarimg", "zbar-tools") {
        return;
    }
    let long_label = "averyverylongusername@host-01.ex";
    assert_eq!(long_label.len(), 32);
    for (i, (label, issuer)) in [
        (long_label, "ACME Corp Production"),
        ("an.operator.with.a.long.name.xyz", "db-replica-07.corp.x"),
        ("alice@db1", "db1"),
    ]
    .into_iter()
    .enumerate()
    {
        assert!(label.len() <= 32 && issuer.len() <= 20);
        let dir = TempDir::new(&format!("screen-{i}"));
        let path = dir.path("ga");
        let terminal = Terminal::start(
            80,
            24,
            &[
                "-t",
                "-d",
                "-u",
                "-W",
                "-l",
                label,
                "-i",
                issuer,
                "-s",
                path.to_str().unwrap(),
            ],
        );
        let plain = terminal.wait_for(CODE);
        let screen = terminal.capture(true);
        eprintln!("80x24 screen at the code prompt ({label:?}, {issuer:?}):\n{plain}");
        assert_eq!(plain.lines().count(), 24, "{plain}");
        assert!(
            plain.trim_end().ends_with(CODE),
            "the prompt is the last line:\n{plain}"
        );
        let uri = scan(&screen, 80, 24, &dir)
            .unwrap_or_else(|| panic!("no QR code read off the screen:\n{plain}"));
        assert_eq!(
            key_uri_reading(&uri),
            (issuer.to_owned(), label.to_owned()),
            "{uri}"
        );
        // The URI on request is the one in the QR code.
        terminal.type_line("k");
        let shown = terminal.wait_for("Key URI: ");
        let joined = shown.replace('\n', "");
        assert!(joined.contains(&uri), "{uri} not in:\n{shown}");
        let secret = uri
            .split_once("?secret=")
            .unwrap()
            .1
            .split('&')
            .next()
            .unwrap()
            .to_owned();
        terminal.type_line(&oathtool_totp(&secret, unix_now()));
        terminal.wait_for("Code confirmed");
        terminal.wait_for("Do you want me to write");
        terminal.type_line("y");
        terminal.wait_for("Your emergency scratch codes are:");
        let file = SecretFile::parse(&fs::read(&path).unwrap()).unwrap();
        assert_eq!(file.secret().to_base32().as_str(), secret);
    }
}

#[test]
fn too_small_a_terminal_gets_the_key_as_text() {
    if !have("tmux", "tmux") || !have("zbarimg", "zbar-tools") {
        return;
    }
    let dir = TempDir::new("screen-small");
    let path = dir.path("ga");
    let terminal = Terminal::start(80, 16, &["-t", "-s", path.to_str().unwrap()]);
    let plain = terminal.wait_for(CODE);
    let joined = plain.replace('\n', "");
    assert!(
        joined.contains("The QR code needs a terminal of") && joined.contains("this one is 80x16"),
        "{plain}"
    );
    assert!(plain.contains("Your new secret key is: "), "{plain}");
    assert!(plain.contains("Key URI: otpauth://totp/"), "{plain}");
    assert_eq!(scan(&terminal.capture(true), 80, 16, &dir), None);
}
