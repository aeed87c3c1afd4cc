use super::*;
use crate::args::{parse, Action, Parsed};
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
    decide(&options(flags), None).unwrap()
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
    // Enter for: time-based, reuse, window, rate limit; the code; Enter to write.
    let input = format!("\n\n\n\n{}\n\n", totp_now(0));
    let out = run("defaults", &[], &input);
    out.result.as_ref().unwrap();
    let text = &out.output;
    for question in [
        "Do you want authentication tokens to be time-based? [Y/n] ",
        "Do you want to disallow reuse of the same code? [Y/n] ",
        "Do you want to widen the window from 3 to 17 codes? [y/N] ",
        "Do you want to enable rate limiting? [Y/n] ",
        "Enter the 6-digit code the app shows now: ",
        "Code confirmed.",
        "Do you want me to write the new secret to",
        "Your emergency scratch codes are:",
    ] {
        assert!(text.contains(question), "missing {question:?} in:\n{text}");
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
    // The key, three ways.
    let b32 = expected_secret().to_base32();
    assert!(text.contains(&format!("Your new secret key is: {}\n", *grouped(&b32))));
    assert!(text.contains(&format!(
        "Key URI: otpauth://totp/host:me%40host?secret={}&issuer=host&algorithm=SHA1&digits=6&period=30\n",
        *b32
    )));
}

#[test]
fn answers_change_the_settings() {
    // No to reuse, yes to the wide window, no to rate limiting.
    let input = format!("y\nn\ny\nn\n{}\ny\n", totp_now(0));
    let out = run("answers", &["-e", "2"], &input);
    out.result.as_ref().unwrap();
    let settings = out.file().settings();
    assert!(!settings.disallow_reuse);
    assert_eq!(settings.window, 17);
    assert_eq!(settings.rate_limit, None);
    assert_eq!(out.file().scratch_codes().count(), 2);
}

#[test]
fn confirmation_accepts_the_window_the_module_will_use() {
    for (flags, offset, ok) in [
        (&["-t", "-d", "-u", "-w", "3"][..], -1, true),
        (&["-t", "-d", "-u", "-w", "3"], 1, true),
        (&["-t", "-d", "-u", "-w", "3"], 2, false),
        (&["-t", "-d", "-u", "-w", "17"], -8, true),
        (&["-t", "-d", "-u", "-w", "1"], 1, false),
    ] {
        let input = format!("{}\n\n", totp_now(offset));
        // One wrong try is followed by end of input: cancelled, not written.
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
fn wrong_codes_write_nothing() {
    let input = "000000\n12345\n\n99999999\n";
    let out = run("wrong", &["-t", "-d", "-u", "-W"], input);
    assert!(
        matches!(out.result, Err(Error::NotConfirmed)),
        "{:?}",
        out.result
    );
    assert!(!out.written());
    assert!(out.output.contains("(2 tries left)"), "{}", out.output);
    assert!(out.output.contains("(1 try left)"), "{}", out.output);
    // Never the right code, unlike Google's tool.
    assert!(!out.output.contains(&totp_now(0)));
    assert!(!out.output.contains("Your emergency scratch codes"));
}

#[test]
fn a_wrong_code_then_the_right_one() {
    let input = format!("111111\n{}\n\n", totp_now(0));
    let out = run("retry", &["-t", "-d", "-u", "-W"], &input);
    out.result.as_ref().unwrap();
    assert!(out
        .output
        .contains("That code does not match (2 tries left)"));
}

#[test]
fn counter_based_confirmation_moves_the_counter_past_the_code() {
    let secret = expected_secret();
    // Google Authenticator steps the counter before its first code.
    let input = format!("n\n\n\n{:06}\n\n", hotp(&secret, 2));
    let out = run("hotp", &[], &input);
    out.result.as_ref().unwrap();
    assert_eq!(out.file().settings().mode, Mode::Counter { next: 3 });
    assert!(out
        .output
        .contains("Key URI: otpauth://hotp/host:me%40host?secret="));
    assert!(out.output.contains("&counter=1\n"));
    assert!(
        !out.output.contains("reuse"),
        "no reuse question counter-based"
    );
    // Without confirmation the file starts at 1, as Google's does.
    let out = run("hotp-f", &["-c", "-f"], "");
    out.result.as_ref().unwrap();
    assert_eq!(out.file().settings().mode, Mode::Counter { next: 1 });
    assert!(out.output.contains(&format!(
        "Your first verification code (counter 1) is {:06}\n",
        hotp(&secret, 1)
    )));
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
}

#[test]
fn existing_file_is_kept_unless_replacing_is_confirmed() {
    let old: &[u8] = b"JBSWY3DPEHPK3PXP\n\" TOTP_AUTH\n12345678\n";
    // Interactive, default answer: no.
    let out = run_with(
        "exists-no",
        &["-t", "-d", "-u", "-W"],
        "\n",
        true,
        Some(old),
    );
    assert!(matches!(out.result, Err(Error::Exists(_))));
    assert!(out.output.contains("already exists. Replace it?"));
    assert_eq!(fs::read(&out.path).unwrap(), old);
    // Non-interactive without -f: refused before anything else.
    let out = run_with(
        "exists-tty",
        &["-t", "-d", "-u", "-W", "-C"],
        "",
        false,
        Some(old),
    );
    assert!(matches!(out.result, Err(Error::Exists(_))));
    assert_eq!(fs::read(&out.path).unwrap(), old);
    // Yes: replaced.
    let input = format!("y\n{}\n\n", totp_now(0));
    let out = run_with(
        "exists-yes",
        &["-t", "-d", "-u", "-W"],
        &input,
        true,
        Some(old),
    );
    out.result.as_ref().unwrap();
    assert_eq!(out.file().secret().as_bytes(), expected_secret().as_bytes());
    // -f: replaced without a question.
    let out = run_with("exists-f", &["-f"], "", false, Some(old));
    out.result.as_ref().unwrap();
    assert_ne!(fs::read(&out.path).unwrap(), old);
}

#[test]
fn no_terminal_needs_force() {
    let out = run_with("notty", &["-t", "-d", "-u", "-W", "-C"], "", false, None);
    assert!(matches!(out.result, Err(Error::NotATerminal)));
    assert!(!out.written());
    assert_eq!(out.output, "");
}

#[test]
fn force_asks_nothing_and_prints_the_current_code() {
    let out = run_with("force", &["-f"], "", false, None);
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
fn quiet_prints_nothing() {
    let out = run_with("quiet", &["-f", "-q"], "", false, None);
    out.result.as_ref().unwrap();
    assert_eq!(out.output, "");
    assert_eq!(out.file().scratch_codes().count(), 5);
}

#[test]
fn no_confirm_on_a_terminal_still_asks_to_write() {
    let out = run("noconfirm", &["-t", "-d", "-u", "-W", "-C"], "\n");
    out.result.as_ref().unwrap();
    assert!(!out.output.contains("Enter the 6-digit code"));
    assert!(out
        .output
        .contains("Do you want me to write the new secret"));
}

#[test]
fn label_issuer_and_qr_flags_reach_the_output() {
    let out = run_with(
        "label",
        &[
            "-f",
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
    assert!(out
        .output
        .contains("otpauth://totp/ACME%20%26%20Co:ops%20team?secret="));
    assert!(out
        .output
        .contains("&issuer=ACME%20%26%20Co&algorithm=SHA1&digits=6&period=60\n"));
    assert!(out.output.contains(qr::ANSI_DARK), "ANSI QR code drawn");
    assert_eq!(out.file().settings().mode, Mode::Time { step_seconds: 60 });
}

#[test]
fn secret_grouping() {
    assert_eq!(&*grouped("ABCDEFGHIJ"), "ABCD EFGH IJ");
    assert_eq!(&*grouped("ABCD"), "ABCD");
    assert_eq!(&*grouped(""), "");
}

#[test]
fn failed_write_without_questions_shows_no_key() {
    let dir = TempDir::new("enroll-unwritable");
    let target = Target::current("me", dir.path("missing-dir/ga"));
    let mut output = Vec::new();
    let mut console = Console {
        input: &mut &b""[..],
        output: &mut output,
        interactive: false,
        output_is_terminal: true,
    };
    let result = enroll(
        &options(&["-f"]),
        false,
        &target,
        "host",
        &mut console,
        &FixedClock(NOW),
        &mut StdRng::seed_from_u64(SEED),
    );
    let err = result.unwrap_err();
    assert!(matches!(err, Error::Store { .. }), "{err}");
    assert_eq!(err.exit_code(), 1);
    assert!(
        err.to_string()
            .contains("missing-dir/ga: cannot create the temporary file"),
        "{err}"
    );
    assert!(output.is_empty(), "{}", String::from_utf8_lossy(&output));
}

#[test]
fn failed_write_after_showing_the_key_says_so() {
    let dir = TempDir::new("enroll-unwritable-tty");
    let target = Target::current("me", dir.path("missing-dir/ga"));
    let input = format!("{}\n\n", totp_now(0));
    let mut reader = input.as_bytes();
    let mut output = Vec::new();
    let mut console = Console {
        input: &mut reader,
        output: &mut output,
        interactive: true,
        output_is_terminal: false,
    };
    let err = enroll(
        &options(&["-t", "-d", "-u", "-W"]),
        false,
        &target,
        "host",
        &mut console,
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

#[test]
fn longest_names_still_fit_a_qr_code() {
    let name = "é".repeat(crate::args::MAX_NAME_BYTES / 2);
    let out = run_with(
        "long-names",
        &["-f", "-l", &name, "-i", &name, "-Q", "UTF8"],
        "",
        false,
        None,
    );
    out.result.as_ref().unwrap();
    assert!(out.output.contains(qr::UTF8_COLOURS));
}
