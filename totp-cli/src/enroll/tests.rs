use super::*;
use crate::args::{parse, Action, Parsed};
use crate::qr;
use crate::test_support::{FixedClock, TempDir};
use pam_totp::secret_file::Mode;
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

/// 2023-11-14T22:13:20Z, in the middle of a 30 s step.
const NOW: u64 = 1_700_000_015;
const SEED: u64 = 42;

fn options(flags: &[&str]) -> EnrollOptions {
    let argv = std::iter::once("totp-enroll").chain(flags.iter().copied());
    match parse(argv) {
        Parsed::Run(request) => match request.action {
            Action::Enroll(options) => options,
            other => panic!("{other:?}"),
        },
        other => panic!("{flags:?}: {other:?}"),
    }
}

/// The secret the flow will generate: the first draw from the same seed.
fn expected_secret() -> Secret {
    generate::secret(&mut StdRng::seed_from_u64(SEED)).unwrap()
}

fn totp_now(offset_steps: i64) -> String {
    let step = time_step(NOW, 30).checked_add_signed(offset_steps).unwrap();
    format!("{:06}", hotp(&expected_secret(), step))
}

struct Outcome {
    result: Result<(), Error>,
    output: String,
    path: PathBuf,
    _dir: TempDir,
}

impl Outcome {
    fn file(&self) -> SecretFile {
        SecretFile::parse(&fs::read(&self.path).unwrap()).unwrap()
    }

    fn written(&self) -> bool {
        self.path.exists()
    }
}

fn run_with(
    name: &str,
    flags: &[&str],
    input: &str,
    interactive: bool,
    existing: Option<&[u8]>,
) -> Outcome {
    let dir = TempDir::new(&format!("enroll-{name}"));
    let path = dir.path("google_authenticator");
    if let Some(bytes) = existing {
        fs::write(&path, bytes).unwrap();
    }
    let mut reader = input.as_bytes();
    let mut output = Vec::new();
    let mut console = Console {
        input: &mut reader,
        output: &mut output,
        interactive,
        output_is_terminal: false,
        terminal_size: None,
    };
    let target = Target::current("me", path.clone());
    let result = enroll(
        &options(flags),
        flags.contains(&"-q"),
        &target,
        "host",
        &mut console,
        &FixedClock(NOW),
        &mut StdRng::seed_from_u64(SEED),
    );
    Outcome {
        result,
        output: String::from_utf8(output).unwrap(),
        path,
        _dir: dir,
    }
}

fn run(name: &str, flags: &[&str], input: &str) -> Outcome {
    run_with(name, flags, input, true, None)
}

fn plan(flags: &[&str]) -> Plan {
    decide(&options(flags)).unwrap()
}

/// Lines of a file Google's tool wrote with the same flags (observed with
/// libpam-google-authenticator 20191231), secret and scratch codes ours.
#[test]
fn file_lines_are_in_googles_order() {
    let secret = || Secret::from_bytes(vec![0; 20]);
    let s = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let cases: &[(&[&str], String)] = &[
        (
            &["-t", "-d", "-r", "3", "-R", "30", "-w", "3"],
            format!("{s}\n\" RATE_LIMIT 3 30\n\" WINDOW_SIZE 3\n\" DISALLOW_REUSE\n\" TOTP_AUTH\n11111111\n22222222\n"),
        ),
        (
            &["-t", "-d", "-r", "3", "-R", "30", "-w", "3", "-S", "30"],
            format!("{s}\n\" RATE_LIMIT 3 30\n\" WINDOW_SIZE 3\n\" STEP_SIZE 30\n\" DISALLOW_REUSE\n\" TOTP_AUTH\n11111111\n22222222\n"),
        ),
        (
            &["-t", "-D", "-u", "-W", "-S", "20"],
            format!("{s}\n\" WINDOW_SIZE 3\n\" STEP_SIZE 20\n\" TOTP_AUTH\n11111111\n22222222\n"),
        ),
        (
            &["-c", "-r", "3", "-R", "30", "-W"],
            format!("{s}\n\" RATE_LIMIT 3 30\n\" WINDOW_SIZE 1\n\" HOTP_COUNTER 1\n11111111\n22222222\n"),
        ),
    ];
    for (flags, want) in cases {
        let file = build_file(
            &plan(flags),
            secret(),
            &[11111111, 22222222],
            FIRST_HOTP_COUNTER,
        );
        assert_eq!(
            String::from_utf8_lossy(&file.to_bytes()),
            *want,
            "{flags:?}"
        );
    }
    let none = build_file(&plan(&["-t", "-D", "-u"]), secret(), &[], 1);
    assert_eq!(&*none.to_bytes(), format!("{s}\n\" TOTP_AUTH\n").as_bytes());
}

#[test]
fn defaults_without_questions_are_the_secure_ones() {
    assert_eq!(
        plan(&[]),
        Plan {
            kind: Kind::Time,
            step_size: None,
            disallow_reuse: true,
            window: None,
            rate_limit: Some((3, 30)),
            scratch_codes: 5,
        }
    );
    assert!(!plan(&["-c"]).disallow_reuse);
}

#[test]
fn interactive_defaults_confirm_and_write() {
    // google-authenticator's order: time-based; the code; write?; reuse,
    // window, rate limit (Enter takes each default).
    let input = format!("\n{}\n\n\n\n\n", totp_now(0));
    let out = run("defaults", &[], &input);
    out.result.as_ref().unwrap();
    let text = &out.output;
    let mut at = 0;
    for step in [
        "Do you want authentication tokens to be time-based? [Y/n] ",
        "No QR code: standard output is not a terminal",
        "Your new secret key is: ",
        CODE_PROMPT,
        "Code confirmed\n",
        "Do you want me to write the new secret to",
        "Do you want to disallow reuse of the same code? [Y/n] ",
        "Do you want to widen the window from 3 to 17 codes? [y/N] ",
        "Do you want to enable rate limiting? [Y/n] ",
        "Saved ",
        "Your emergency scratch codes are:",
    ] {
        let found = text[at..]
            .find(step)
            .unwrap_or_else(|| panic!("missing {step:?} after byte {at} in:\n{text}"));
        at += found + step.len();
    }
    let file = out.file();
    assert_eq!(file.secret().as_bytes(), expected_secret().as_bytes());
    let settings = file.settings();
    assert_eq!(settings.mode, Mode::Time { step_seconds: 30 });
    assert!(settings.disallow_reuse);
    assert_eq!(settings.window, 3);
    assert_eq!(settings.rate_limit, Some((3, 30)));
    let codes: Vec<u32> = file.scratch_codes().collect();
    assert_eq!(codes.len(), 5);
    for code in &codes {
        assert!(
            text.contains(&format!("\n  {code:08}\n")),
            "{code} not printed"
        );
    }
    // No WINDOW_SIZE line: the module's default applies, as with Google's "n".
    assert!(!String::from_utf8_lossy(&fs::read(&out.path).unwrap()).contains("WINDOW_SIZE"));
    assert_eq!(
        fs::metadata(&out.path).unwrap().permissions().mode() & 0o7777,
        0o400
    );
    let b32 = expected_secret().to_base32();
    assert!(text.contains(&format!("Your new secret key is: {}\n", *grouped(&b32))));
    assert!(text.contains(&format!(
        "Key URI: otpauth://totp/host:me%40host?secret={}\n",
        *b32
    )));
}

#[test]
fn googles_piped_answers_mean_the_same() {
    // printf 'y\n-1\ny\ny\nn\ny\n' | google-authenticator
    let out = run_with("piped", &[], "y\n-1\ny\ny\nn\ny\n", false, None);
    out.result.as_ref().unwrap();
    assert!(out.output.contains("Code confirmation skipped\n"));
    let settings = out.file().settings();
    assert!(settings.disallow_reuse);
    assert_eq!(settings.window, 3);
    assert_eq!(settings.rate_limit, Some((3, 30)));
    // No to reuse, yes to the wide window, no to rate limiting.
    let input = format!("y\n{}\ny\nn\ny\nn\n", totp_now(0));
    let out = run_with("piped-answers", &["-e", "2"], &input, false, None);
    out.result.as_ref().unwrap();
    let settings = out.file().settings();
    assert!(!settings.disallow_reuse);
    assert_eq!(settings.window, 17);
    assert_eq!(settings.rate_limit, None);
    assert_eq!(out.file().scratch_codes().count(), 2);
}

#[test]
fn code_check_accepts_the_window_the_flags_set() {
    for (flags, offset, ok) in [
        (&["-t", "-d", "-u", "-w", "3"][..], -1, true),
        (&["-t", "-d", "-u", "-w", "3"], 1, true),
        (&["-t", "-d", "-u", "-w", "3"], 2, false),
        (&["-t", "-d", "-u", "-w", "17"], -8, true),
        (&["-t", "-d", "-u", "-w", "1"], 1, false),
    ] {
        // A wrong code is followed by end of input: cancelled, not written.
        let input = format!("{}\n\n", totp_now(offset));
        let out = run(&format!("window-{offset}-{}", flags[4]), flags, &input);
        assert_eq!(
            out.result.is_ok(),
            ok,
            "{flags:?} offset {offset}: {:?}",
            out.result
        );
        assert_eq!(out.written(), ok);
    }
}

#[test]
fn wrong_codes_never_end_the_setup() {
    let input = format!(
        "000000\n12345\n\n99999999\n{} {}\n{}\n\n",
        &totp_now(0)[..3],
        &totp_now(0)[3..],
        totp_now(0)
    );
    let out = run("wrong", &["-t", "-d", "-u", "-W"], &input);
    out.result.as_ref().unwrap();
    assert!(out.written());
    let text = &out.output;
    assert_eq!(text.matches(CODE_PROMPT).count(), 6, "{text}");
    assert!(text.contains("That code does not match"), "{text}");
    assert!(
        text.contains("That is 5 digits; the app shows 6."),
        "{text}"
    );
    assert!(text.contains("That is 8 digits"), "{text}");
    assert!(text.contains("without spaces"), "{text}");
    // Never the right code, unlike Google's tool.
    assert_eq!(text.matches(&totp_now(0)).count(), 0, "{text}");
}

#[test]
fn end_of_input_at_the_code_cancels() {
    let out = run("wrong-eof", &["-t", "-d", "-u", "-W"], "000000\n");
    assert!(
        matches!(out.result, Err(Error::Cancelled)),
        "{:?}",
        out.result
    );
    assert!(!out.written());
    assert!(!out.output.contains("scratch"));
}

#[test]
fn counter_based_asks_no_code_as_google_does() {
    let secret = expected_secret();
    // Counter-based; write; window; rate limit.
    let out = run("hotp", &[], "n\n\n\n\n");
    out.result.as_ref().unwrap();
    assert_eq!(out.file().settings().mode, Mode::Counter { next: 1 });
    assert!(!out.output.contains(CODE_PROMPT));
    assert!(out
        .output
        .contains("Key URI: otpauth://hotp/host:me%40host?secret="));
    assert!(out.output.contains("&counter=1\n"));
    assert!(out.output.contains(&format!(
        "Your verification code for counter 1 is {:06}\n",
        hotp(&secret, 1)
    )));
    assert!(
        !out.output.contains("reuse"),
        "no reuse question counter-based"
    );
}

#[test]
fn declining_to_write_writes_nothing() {
    let input = format!("{}\nn\n", totp_now(0));
    let out = run("decline", &["-t", "-d", "-u", "-W"], &input);
    assert!(matches!(out.result, Err(Error::Cancelled)));
    assert!(!out.written());
}

#[test]
fn end_of_input_at_a_question_cancels() {
    let out = run("eof", &[], "\n");
    assert!(matches!(out.result, Err(Error::Cancelled)));
    assert!(!out.written());
    let out = run_with("eof-pipe", &["-t", "-d", "-u", "-W", "-C"], "", false, None);
    assert!(matches!(out.result, Err(Error::Cancelled)));
    assert!(!out.written());
}

#[test]
fn existing_file_is_kept_unless_replacing_is_confirmed() {
    let old: &[u8] = b"JBSWY3DPEHPK3PXP\n\" TOTP_AUTH\n12345678\n";
    let flags = &["-t", "-d", "-u", "-W"];
    // Said first; asked last, default no.
    let input = format!("{}\n\n", totp_now(0));
    let out = run_with("exists-no", flags, &input, true, Some(old));
    assert!(
        matches!(out.result, Err(Error::Cancelled)),
        "{:?}",
        out.result
    );
    assert!(out.output.starts_with(&format!(
        "Note: {} already exists: you will be asked before it is replaced.\n",
        out.path.display()
    )));
    assert!(out.output.contains("already exists. Replace it?"));
    assert_eq!(fs::read(&out.path).unwrap(), old);
    // Yes: replaced.
    let input = format!("{}\ny\n", totp_now(0));
    let out = run_with("exists-yes", flags, &input, true, Some(old));
    out.result.as_ref().unwrap();
    assert_eq!(out.file().secret().as_bytes(), expected_secret().as_bytes());
    // -f: replaced without the question (but the code is still checked).
    let input = format!("{}\n", totp_now(0));
    let out = run_with(
        "exists-f",
        &["-f", "-t", "-d", "-u", "-W"],
        &input,
        false,
        Some(old),
    );
    out.result.as_ref().unwrap();
    assert!(out.output.contains("will be replaced (-f)"));
    assert!(!out.output.contains("Replace it?"));
    assert_ne!(fs::read(&out.path).unwrap(), old);
    // --unattended: refused without -f, replaced with it.
    let out = run_with("exists-un", &["--unattended"], "", false, Some(old));
    assert!(matches!(out.result, Err(Error::Exists(_))));
    assert_eq!(fs::read(&out.path).unwrap(), old);
    let out = run_with("exists-un-f", &["--unattended", "-f"], "", false, Some(old));
    out.result.as_ref().unwrap();
    assert_ne!(fs::read(&out.path).unwrap(), old);
}

#[test]
fn unattended_asks_nothing_and_prints_the_current_code() {
    let out = run_with("unattended", &["--unattended"], "", false, None);
    out.result.as_ref().unwrap();
    assert!(
        !out.output.contains("[Y/n]") && !out.output.contains("[y/N]"),
        "no questions: {}",
        out.output
    );
    assert!(out.output.contains(&format!(
        "Your current verification code is {}\n",
        totp_now(0)
    )));
    let settings = out.file().settings();
    assert!(settings.disallow_reuse);
    assert_eq!(settings.rate_limit, Some((3, 30)));
}

#[test]
fn quiet_prints_nothing_but_questions() {
    let out = run_with("quiet", &["--unattended", "-q"], "", false, None);
    out.result.as_ref().unwrap();
    assert_eq!(out.output, "");
    assert_eq!(out.file().scratch_codes().count(), 5);
    // On a terminal, the write question says the key was not shown.
    let out = run("quiet-tty", &["-q", "-t", "-d", "-u", "-W"], "\n");
    out.result.as_ref().unwrap();
    assert!(
        out.output.contains("The new key was not shown (-q)"),
        "{}",
        out.output
    );
    assert!(out.output.contains("--status --show-secret"));
    assert!(!out.output.contains(CODE_PROMPT));
}

#[test]
fn no_confirm_still_asks_to_write() {
    let out = run("noconfirm", &["-t", "-d", "-u", "-W", "-C"], "\n");
    out.result.as_ref().unwrap();
    assert!(!out.output.contains(CODE_PROMPT));
    assert!(out
        .output
        .contains("Do you want me to write the new secret"));
}

#[test]
fn label_issuer_and_qr_flags_reach_the_output() {
    let out = run_with(
        "label",
        &[
            "--unattended",
            "-l",
            "ops team",
            "-i",
            "ACME & Co",
            "-S",
            "60",
            "-Q",
            "ANSI",
        ],
        "",
        false,
        None,
    );
    out.result.as_ref().unwrap();
    assert!(out.output.contains(qr::ANSI_DARK), "ANSI QR code drawn");
    assert_eq!(out.file().settings().mode, Mode::Time { step_seconds: 60 });
}

#[test]
fn secret_grouping() {
    assert_eq!(&*grouped("ABCDEFGHIJ"), "ABCD EFGH IJ");
    assert_eq!(&*grouped("ABCD"), "ABCD");
    assert_eq!(&*grouped(""), "");
}

fn console<'a>(input: &'a mut &[u8], output: &'a mut Vec<u8>, interactive: bool) -> Console<'a> {
    Console {
        input,
        output,
        interactive,
        output_is_terminal: false,
        terminal_size: None,
    }
}

#[test]
fn failed_write_without_questions_shows_no_key() {
    let dir = TempDir::new("enroll-unwritable");
    let target = Target::current("me", dir.path("missing-dir/ga"));
    let mut output = Vec::new();
    let result = enroll(
        &options(&["--unattended"]),
        false,
        &target,
        "host",
        &mut console(&mut &b""[..], &mut output, false),
        &FixedClock(NOW),
        &mut StdRng::seed_from_u64(SEED),
    );
    let err = result.unwrap_err();
    assert!(matches!(err, Error::Store { .. }), "{err}");
    assert_eq!(err.exit_code(), 1);
    // The directory is named, not "the temporary file".
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "cannot write a new file in the directory {}",
            dir.path("missing-dir").display()
        )),
        "{text}"
    );
    assert!(!text.contains("temporary"), "{text}");
    assert!(output.is_empty(), "{}", String::from_utf8_lossy(&output));
}

#[test]
fn failed_write_after_showing_the_key_says_so() {
    let dir = TempDir::new("enroll-unwritable-tty");
    let target = Target::current("me", dir.path("missing-dir/ga"));
    let input = format!("{}\n\n", totp_now(0));
    let mut output = Vec::new();
    let err = enroll(
        &options(&["-t", "-d", "-u", "-W"]),
        false,
        &target,
        "host",
        &mut console(&mut input.as_bytes(), &mut output, true),
        &FixedClock(NOW),
        &mut StdRng::seed_from_u64(SEED),
    )
    .unwrap_err();
    assert!(matches!(err, Error::NotSaved(_)), "{err}");
    assert_eq!(err.exit_code(), 1);
    assert!(err
        .to_string()
        .ends_with("the key shown above was NOT saved: remove it from the app"));
    assert!(!err.to_string().contains(&*expected_secret().to_base32()));
}

/// Output that fails only after the file is saved (a full disk).
struct FailsAfter(usize, Vec<u8>);

impl Write for FailsAfter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.1.len() + buf.len() > self.0 {
            return Err(std::io::Error::from_raw_os_error(28)); // ENOSPC
        }
        self.1.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn output_failing_after_the_save_says_the_file_was_saved() {
    let dir = TempDir::new("enroll-full");
    let path = dir.path("ga");
    let target = Target::current("me", path.clone());
    let mut output = FailsAfter(0, Vec::new());
    let mut console = Console {
        input: &mut &b""[..],
        output: &mut output,
        interactive: false,
        output_is_terminal: false,
        terminal_size: None,
    };
    let err = enroll(
        &options(&["--unattended"]),
        false,
        &target,
        "host",
        &mut console,
        &FixedClock(NOW),
        &mut StdRng::seed_from_u64(SEED),
    )
    .unwrap_err();
    assert!(path.exists());
    assert_eq!(err.exit_code(), 1);
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "{} was saved, but the key and the scratch codes could not be shown",
            path.display()
        )),
        "{text}"
    );
    assert!(text.contains("--status --show-secret"), "{text}");
}

#[test]
fn longest_names_still_fit_a_qr_code() {
    let name = "é".repeat(crate::args::MAX_NAME_BYTES / 2);
    let out = run_with(
        "long-names",
        &["--unattended", "-l", &name, "-i", &name, "-Q", "UTF8"],
        "",
        false,
        None,
    );
    out.result.as_ref().unwrap();
    assert!(out.output.contains(qr::UTF8_COLOURS));
}
