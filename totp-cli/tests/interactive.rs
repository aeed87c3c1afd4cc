//! The questions, answered through a real pseudo-terminal, as a person at a
//! terminal would.

mod support;

use pam_totp::secret_file::{Mode, SecretFile};
use rexpect::process::WaitStatus;
use rexpect::session::{spawn_command, PtySession};
use std::fs;
use std::process::Command;
use std::sync::Mutex;
use support::*;

/// Forking while other test threads run is fine for the child (it only
/// execs), but one spawn at a time keeps the fork window small.
static SPAWN: Mutex<()> = Mutex::new(());

fn spawn(args: &[&str]) -> PtySession {
    let _one_at_a_time = SPAWN.lock().unwrap_or_else(|e| e.into_inner());
    let mut command = Command::new(BIN);
    command.args(args);
    spawn_command(command, Some(10_000)).expect("spawn totp-enroll on a pty")
}

/// rexpect hands over each byte from the terminal as one `char`; put the
/// bytes back together to read the UTF-8 the program wrote.
fn utf8(screen: &str) -> String {
    let bytes: Vec<u8> = screen
        .chars()
        .map(|c| u8::try_from(u32::from(c)).expect("one byte per char"))
        .collect();
    String::from_utf8(bytes).expect("the program writes UTF-8")
}

/// The exit code, once the output has been read to its end.
fn waited(session: &PtySession) -> i32 {
    match session.process().wait().unwrap() {
        WaitStatus::Exited(_, code) => code,
        other => panic!("{other:?}"),
    }
}

fn exit_code(session: &mut PtySession) -> i32 {
    session.exp_eof().expect("program ends");
    waited(session)
}

const TIME_BASED: &str = "Do you want authentication tokens to be time-based? [Y/n] ";
const REUSE: &str = "Do you want to disallow reuse of the same code? [Y/n] ";
const WINDOW: &str = "Do you want to widen the window from 3 to 17 codes? [y/N] ";
const RATE: &str = "Do you want to enable rate limiting? [Y/n] ";
const CODE: &str = "Enter code from app (-1 to skip): ";
const WRITE: &str = "Do you want me to write the new secret to";

/// The key URI, asked for with `k` at the code prompt.
fn ask_uri(p: &mut PtySession) -> String {
    p.send_line("k").unwrap();
    let shown = utf8(&p.exp_string(CODE).unwrap());
    printed_uri(&shown)
}

#[test]
fn defaults_scan_confirm_and_write() {
    let dir = TempDir::new("pty-defaults");
    let path = dir.path("ga");
    let mut p = spawn(&["-s", path.to_str().unwrap()]);
    p.exp_string(TIME_BASED).unwrap();
    p.send_line("").unwrap(); // Enter: the default
    let screen = utf8(&p.exp_string(CODE).unwrap());
    // On a terminal the QR code is drawn by default; read it off the screen
    // as a phone would, and take the secret from it.
    let uri = decode_qr(&utf8_qr_rows(&screen));
    let secret = printed_secret(&screen);
    assert!(uri.contains(&format!("?secret={secret}")), "{uri}");
    assert_eq!(ask_uri(&mut p), uri);
    // A wrong code, then the right one typed with a space: explained, and
    // the setup goes on.
    p.send_line("000000").unwrap();
    p.exp_string("That code does not match").unwrap();
    p.exp_string(CODE).unwrap();
    let code = oathtool_totp(&secret, unix_now());
    p.send_line(&format!("{} {}", &code[..3], &code[3..]))
        .unwrap();
    p.exp_string("without spaces").unwrap();
    p.exp_string(CODE).unwrap();
    p.send_line(&oathtool_totp(&secret, unix_now())).unwrap();
    p.exp_string("Code confirmed").unwrap();
    p.exp_string(WRITE).unwrap();
    p.send_line("").unwrap();
    for question in [REUSE, WINDOW, RATE] {
        p.exp_string(question).unwrap();
        p.send_line("").unwrap();
    }
    let rest = p.exp_string("Your emergency scratch codes are:").unwrap();
    assert!(
        rest.contains(&format!("Saved {}.", path.display())),
        "{rest}"
    );
    assert_eq!(exit_code(&mut p), 0);

    let bytes = fs::read(&path).unwrap();
    let file = SecretFile::parse(&bytes).unwrap();
    assert_eq!(file.secret().to_base32().as_str(), secret);
    let settings = file.settings();
    assert_eq!(settings.mode, Mode::Time { step_seconds: 30 });
    assert!(settings.disallow_reuse);
    assert_eq!(settings.window, 3);
    assert_eq!(settings.rate_limit, Some((3, 30)));
    assert_eq!(file.scratch_codes().count(), 5);
    assert_eq!(
        String::from_utf8_lossy(&bytes)
            .lines()
            .skip(1)
            .take(3)
            .collect::<Vec<_>>(),
        ["\" RATE_LIMIT 3 30", "\" DISALLOW_REUSE", "\" TOTP_AUTH"]
    );
}

#[test]
fn answers_other_than_the_defaults() {
    let dir = TempDir::new("pty-answers");
    let path = dir.path("ga");
    let mut p = spawn(&["-s", path.to_str().unwrap(), "-Q", "NONE", "-e", "3"]);
    p.exp_string(TIME_BASED).unwrap();
    p.send_line("y").unwrap();
    let screen = p.exp_string(CODE).unwrap();
    let secret = printed_secret(&screen);
    p.send_line(&oathtool_totp(&secret, unix_now())).unwrap();
    p.exp_string("Code confirmed").unwrap();
    p.exp_string(WRITE).unwrap();
    p.send_line("y").unwrap();
    for (question, answer) in [(REUSE, "no"), (WINDOW, "Y"), (RATE, "maybe")] {
        p.exp_string(question).unwrap();
        p.send_line(answer).unwrap();
    }
    // "maybe" is not an answer: asked again.
    p.exp_string("Please answer y or n.").unwrap();
    p.exp_string(RATE).unwrap();
    p.send_line("n").unwrap();
    assert_eq!(exit_code(&mut p), 0);
    let file = SecretFile::parse(&fs::read(&path).unwrap()).unwrap();
    let settings = file.settings();
    assert!(!settings.disallow_reuse);
    assert_eq!(settings.window, 17);
    assert_eq!(settings.rate_limit, None);
    assert_eq!(file.scratch_codes().count(), 3);
}

#[test]
fn clock_off_is_explained_and_skip_writes() {
    let dir = TempDir::new("pty-wrong");
    let path = dir.path("ga");
    let mut p = spawn(&[
        "-t",
        "-d",
        "-u",
        "-W",
        "-Q",
        "NONE",
        "-s",
        path.to_str().unwrap(),
    ]);
    let screen = p.exp_string(CODE).unwrap();
    let secret = printed_secret(&screen);
    // Codes of an hour ago: right secret, far outside the window.
    for _ in 0..4 {
        p.send_line(&oathtool_totp(&secret, unix_now() - 3600))
            .unwrap();
        p.exp_string("That code was right 60 min ago: the phone's clock is about 60 min behind")
            .unwrap();
        p.exp_string(CODE).unwrap();
    }
    p.send_line("-1").unwrap();
    p.exp_string("Code confirmation skipped").unwrap();
    p.exp_string(WRITE).unwrap();
    p.send_line("y").unwrap();
    assert_eq!(exit_code(&mut p), 0);
    assert!(path.exists());
}

#[test]
fn counter_based_shows_the_first_code() {
    let dir = TempDir::new("pty-hotp");
    let path = dir.path("ga");
    let mut p = spawn(&["-Q", "UTF8", "-s", path.to_str().unwrap()]);
    p.exp_string(TIME_BASED).unwrap();
    p.send_line("n").unwrap();
    let screen = utf8(&p.exp_string(WRITE).unwrap());
    let uri = printed_uri(&screen);
    assert!(
        uri.starts_with("otpauth://hotp/") && uri.ends_with("&counter=1"),
        "{uri}"
    );
    assert_eq!(decode_qr(&utf8_qr_rows(&screen)), uri);
    let secret = printed_secret(&screen);
    assert_eq!(
        line_value(&screen, "Your verification code for counter 1 is "),
        oathtool_hotp(&secret, 1)
    );
    p.send_line("").unwrap();
    let asked = p.exp_string(WINDOW).unwrap();
    assert!(
        !asked.contains("reuse"),
        "no reuse question counter-based: {asked}"
    );
    p.send_line("").unwrap();
    p.exp_string(RATE).unwrap();
    p.send_line("").unwrap();
    assert_eq!(exit_code(&mut p), 0);
    let file = SecretFile::parse(&fs::read(&path).unwrap()).unwrap();
    assert_eq!(file.settings().mode, Mode::Counter { next: 1 });
}

#[test]
fn existing_file_kept_when_not_replacing() {
    let dir = TempDir::new("pty-exists");
    let path = dir.path("ga");
    let old = b"JBSWY3DPEHPK3PXP\n\" TOTP_AUTH\n12345678\n";
    fs::write(&path, old).unwrap();
    let mut p = spawn(&["-t", "-C", "-Q", "NONE", "-s", path.to_str().unwrap()]);
    p.exp_string("already exists: you will be asked before it is replaced")
        .unwrap();
    p.exp_string("already exists. Replace it?").unwrap();
    p.exp_string("[y/N] ").unwrap();
    p.send_line("").unwrap();
    assert_eq!(exit_code(&mut p), 5);
    assert_eq!(fs::read(&path).unwrap(), old);
}

#[test]
fn end_of_input_cancels() {
    let dir = TempDir::new("pty-eof");
    let path = dir.path("ga");
    let mut p = spawn(&["-s", path.to_str().unwrap()]);
    p.exp_string(TIME_BASED).unwrap();
    p.send_control('d').unwrap();
    let rest = p.exp_eof().unwrap();
    assert!(rest.contains("cancelled; nothing was written"), "{rest}");
    assert_eq!(waited(&p), 5);
    assert!(!path.exists());
}

#[test]
fn declining_to_write_writes_nothing() {
    let dir = TempDir::new("pty-decline");
    let path = dir.path("ga");
    let mut p = spawn(&[
        "-t",
        "-D",
        "-u",
        "-W",
        "-C",
        "-Q",
        "NONE",
        "-s",
        path.to_str().unwrap(),
    ]);
    let screen = p.exp_string(WRITE).unwrap();
    // -C: no code asked, the current one shown instead.
    let secret = printed_secret(&screen);
    let shown = line_value(&screen, "Your current verification code is ");
    let now = unix_now();
    assert!(
        [now - 30, now]
            .iter()
            .any(|&t| oathtool_totp(&secret, t) == shown),
        "{shown}"
    );
    p.exp_string("[Y/n] ").unwrap();
    p.send_line("n").unwrap();
    assert_eq!(exit_code(&mut p), 5);
    assert!(!path.exists());
}

#[test]
fn quiet_on_a_terminal_says_how_to_see_the_key() {
    let dir = TempDir::new("pty-quiet");
    let path = dir.path("ga");
    let mut p = spawn(&["-q", "-t", "-d", "-u", "-W", "-s", path.to_str().unwrap()]);
    let asked = p.exp_string(WRITE).unwrap();
    assert!(asked.contains("The new key was not shown (-q)"), "{asked}");
    assert!(
        asked.contains("totp-enroll --status --show-secret"),
        "{asked}"
    );
    p.exp_string("[Y/n] ").unwrap();
    p.send_line("").unwrap();
    assert_eq!(exit_code(&mut p), 0);
    assert!(path.exists());
}
