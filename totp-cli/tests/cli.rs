//! Runs the built `totp-enroll` without a terminal, as scripts and admins do.

mod support;

use pam_totp::secret_file::{Mode, SecretFile};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Command;
use support::*;

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

fn mode_of(path: &std::path::Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn noninteractive_enrollment_writes_the_file_and_a_code_oathtool_agrees_with() {
    let dir = TempDir::new("plain");
    let path = dir.path("ga");
    let before = unix_now();
    let out = run(&[
        "-t",
        "-d",
        "--unattended",
        "-r",
        "3",
        "-R",
        "30",
        "-w",
        "3",
        "-Q",
        "NONE",
        "-s",
        path.to_str().unwrap(),
        "-e",
        "5",
    ]);
    let after = unix_now();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stderr(&out), "");
    let text = stdout(&out);

    let bytes = fs::read(&path).unwrap();
    let file = SecretFile::parse(&bytes).unwrap();
    let settings = file.settings();
    assert_eq!(settings.mode, Mode::Time { step_seconds: 30 });
    assert!(settings.disallow_reuse);
    assert_eq!(settings.window, 3);
    assert_eq!(settings.rate_limit, Some((3, 30)));
    assert_eq!(mode_of(&path), 0o400);
    assert_eq!(
        fs::metadata(&path).unwrap().uid(),
        nix::unistd::geteuid().as_raw()
    );

    // The secret printed is the one written, 160 bits.
    let secret = printed_secret(&text);
    assert_eq!(secret.len(), 32);
    assert_eq!(
        String::from_utf8_lossy(&bytes).lines().next().unwrap(),
        secret
    );
    // The code printed is what oathtool computes for the time of the run.
    let code = line_value(&text, "Your current verification code is ");
    let expected: Vec<String> = [before, after]
        .iter()
        .map(|&t| oathtool_totp(&secret, t))
        .collect();
    assert!(
        expected.iter().any(|c| c == code),
        "printed {code}, oathtool {expected:?}"
    );
    // Scratch codes: printed = written, eight digits, no leading zero.
    let codes: Vec<u32> = file.scratch_codes().collect();
    assert_eq!(codes.len(), 5);
    for code in codes {
        assert!((10_000_000..=99_999_999).contains(&code));
        assert!(
            text.contains(&format!("\n  {code:08}\n")),
            "{code} not printed"
        );
    }
    let uri = printed_uri(&text);
    let host = String::from_utf8(Command::new("hostname").output().unwrap().stdout).unwrap();
    let host = host.trim();
    assert!(
        uri.starts_with(&format!("otpauth://totp/{host}:")),
        "default issuer is the host name: {uri}"
    );
    // Parameters equal to every app's defaults are left out.
    assert!(uri.ends_with(&format!("?secret={secret}")), "{uri}");
}

#[test]
fn counter_based_prints_the_first_code() {
    let dir = TempDir::new("hotp");
    let path = dir.path("ga");
    let out = run(&[
        "-c",
        "--unattended",
        "-u",
        "-Q",
        "NONE",
        "-s",
        path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    let secret = printed_secret(&text);
    assert_eq!(
        line_value(&text, "Your verification code for counter 1 is "),
        oathtool_hotp(&secret, 1)
    );
    let file = SecretFile::parse(&fs::read(&path).unwrap()).unwrap();
    assert_eq!(file.settings().mode, Mode::Counter { next: 1 });
    let uri = printed_uri(&text);
    assert!(
        uri.starts_with("otpauth://hotp/") && uri.ends_with("&counter=1"),
        "{uri}"
    );
}

#[test]
fn printed_utf8_qr_code_decodes_to_the_printed_uri() {
    let dir = TempDir::new("qr-utf8");
    let path = dir.path("ga");
    let out = run(&[
        "--unattended",
        "-Q",
        "UTF8",
        "-l",
        "alice@example.org",
        "-i",
        "Example Co",
        "-s",
        path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    let uri = printed_uri(&text);
    assert_eq!(decode_qr(&utf8_qr_rows(&text)), uri);
    let secret = printed_secret(&text);
    assert_eq!(
        uri,
        format!("otpauth://totp/Example%20Co:alice%40example.org?secret={secret}")
    );
    assert_eq!(
        key_uri_reading(&uri),
        ("Example Co".to_owned(), "alice@example.org".to_owned())
    );
}

#[test]
fn printed_ansi_qr_code_decodes_to_the_printed_uri() {
    let dir = TempDir::new("qr-ansi");
    let path = dir.path("ga");
    let out = run(&[
        "--unattended",
        "-c",
        "-Q",
        "ansi",
        "-s",
        path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    assert_eq!(decode_qr(&ansi_qr_rows(&text)), printed_uri(&text));
}

#[test]
fn no_qr_code_when_output_is_not_a_terminal_or_none() {
    let dir = TempDir::new("qr-none");
    for (i, args) in [&["--unattended"][..], &["--unattended", "-Q", "NONE"]]
        .iter()
        .enumerate()
    {
        let path = dir.path(&format!("ga{i}"));
        let mut args = args.to_vec();
        args.extend(["-s", path.to_str().unwrap()]);
        let text = stdout(&run(&args));
        assert!(
            !text.contains('\x1b') && !text.contains('\u{2580}'),
            "{text}"
        );
        assert!(text.contains("Key URI: otpauth://"), "{text}");
        // Said why, unless -Q NONE asked for none.
        assert_eq!(
            text.contains("No QR code: standard output is not a terminal"),
            i == 0,
            "{text}"
        );
    }
}

/// What google-authenticator accepts and apps must still read as meant:
/// a `:` in the issuer, an empty label. Read off the QR code.
#[test]
fn odd_names_are_read_by_apps_as_intended() {
    let dir = TempDir::new("odd-names");
    for (i, (label, issuer)) in [
        ("alice@db1", "a:b"),
        ("", "db1"),
        ("ops:team", "ACME"),
        ("me", ""),
        ("Zoë #1/2+3?", "Bank & Co"),
    ]
    .iter()
    .enumerate()
    {
        let path = dir.path(&format!("ga{i}"));
        let out = run(&[
            "--unattended",
            "-Q",
            "UTF8",
            "-l",
            label,
            "-i",
            issuer,
            "-s",
            path.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{out:?}");
        let text = stdout(&out);
        let uri = decode_qr(&utf8_qr_rows(&text));
        assert_eq!(uri, printed_uri(&text));
        assert_eq!(
            key_uri_reading(&uri),
            (issuer.to_string(), label.to_string()),
            "{uri}"
        );
    }
}

#[test]
fn existing_file_is_untouched_without_force() {
    let dir = TempDir::new("exists");
    let path = dir.path("ga");
    let old = b"JBSWY3DPEHPK3PXP\n\" TOTP_AUTH\n12345678\n";
    fs::write(&path, old).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).unwrap();
    let p = path.to_str().unwrap();
    for args in [
        &["--unattended", "-s", p][..],
        &["--unattended", "-q", "-s", p],
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {out:?}");
        let err = stderr(&out);
        assert_eq!(
            err,
            format!("totp-enroll: {p} already exists; nothing was written (-f replaces it)\n")
        );
        assert_eq!(stdout(&out), "", "nothing printed, no secret shown");
        assert_eq!(fs::read(&path).unwrap(), old);
        assert_eq!(mode_of(&path), 0o400);
    }
    assert_eq!(
        fs::read_dir(dir.dir()).unwrap().count(),
        1,
        "no temporary file left"
    );
    // -f replaces it.
    let out = run(&["--unattended", "-f", "-q", "-s", p]);
    assert!(out.status.success(), "{out:?}");
    assert_ne!(fs::read(&path).unwrap(), old);
    assert_eq!(mode_of(&path), 0o400);
}

#[test]
fn bad_values_are_usage_errors() {
    let dir = TempDir::new("usage");
    let path = dir.path("ga");
    let p = path.to_str().unwrap();
    for args in [
        &["-e", "11"][..],
        &["-w", "0"],
        &["-w", "22"],
        &["-Q", "FOO"],
        &["-S", "0"],
        &["-S", "61"],
        &["-r", "0", "-R", "30"],
        &["-r", "3", "-R", "5"],
        &["-r", "3"],
        &["-t", "-c"],
        &["-c", "-d"],
        &["-u", "-r", "3", "-R", "30"],
        &["--frobnicate"],
        &["positional"],
        &["--status", "-t"],
    ] {
        let mut all = vec!["--unattended"];
        all.extend_from_slice(args);
        all.extend(["-s", p]);
        let out = run(&all);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        let err = stderr(&out);
        assert!(
            err.starts_with("totp-enroll: ") && err.ends_with(" (see --help)\n"),
            "{err:?}"
        );
        assert_eq!(err.lines().count(), 1, "{err:?}");
        assert_eq!(stdout(&out), "");
        assert!(!path.exists(), "{args:?} wrote a file");
    }
}

#[test]
fn piped_answers_without_enough_of_them_cancel() {
    let dir = TempDir::new("notty");
    let path = dir.path("ga");
    // Standard input is /dev/null: the first question meets its end.
    let out = run(&["-t", "-d", "-u", "-W", "-C", "-s", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(5), "{out:?}");
    let err = stderr(&out);
    assert!(
        err.contains("cancelled; nothing was written") && err.contains("--unattended"),
        "{err}"
    );
    assert!(!path.exists());
    // -f without a terminal: a hint about its new meaning.
    let out = run(&[
        "-f",
        "-t",
        "-d",
        "-u",
        "-W",
        "-C",
        "-s",
        path.to_str().unwrap(),
    ]);
    assert!(stderr(&out).contains("-f now means what it means for google-authenticator"));
    assert!(stderr(&out).contains("--unattended"));
    // Piped answers, as scripts give google-authenticator.
    let out = run_piped(&["-s", path.to_str().unwrap()], "y\n-1\ny\ny\nn\ny\n");
    assert!(out.status.success(), "{out:?}");
    assert!(path.exists());
}

#[test]
fn unwritable_location_is_an_error_and_shows_no_key() {
    let dir = TempDir::new("unwritable");
    let path = dir.path("no-such-dir/ga");
    let out = run(&["--unattended", "-s", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = stderr(&out);
    // The directory is named, not a temporary file.
    assert!(
        err.contains(&format!(
            "cannot write a new file in the directory {} (to save {})",
            dir.path("no-such-dir").display(),
            path.display()
        )),
        "{err}"
    );
    assert_eq!(
        stdout(&out),
        "",
        "the key of a file never written is not shown"
    );
}

#[test]
fn root_enrolls_another_user_with_their_ownership() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIPPED: needs root");
        return;
    }
    let Some(nobody) = nix::unistd::User::from_name("nobody").unwrap() else {
        eprintln!("SKIPPED: no user nobody");
        return;
    };
    let dir = TempDir::new("other-user");
    let home = dir.path("home");
    fs::create_dir(&home).unwrap();
    nix::unistd::chown(&home, Some(nobody.uid), Some(nobody.gid)).unwrap();
    let path = home.join("ga");
    let p = path.to_str().unwrap();
    // Without --user, root is warned that the file would be root's.
    let out = run(&["--unattended", "-q", "-s", p]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        stderr(&out).contains("warning: ") && stderr(&out).contains("use --user nobody"),
        "{}",
        stderr(&out)
    );
    fs::remove_file(&path).unwrap();
    let out = run(&["--user", "nobody", "--unattended", "-Q", "NONE", "-s", p]);
    assert!(out.status.success(), "{out:?}");
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
    let meta = fs::metadata(&path).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid()),
        (nobody.uid.as_raw(), nobody.gid.as_raw())
    );
    assert_eq!(meta.mode() & 0o7777, 0o400);
    let uri = printed_uri(&stdout(&out));
    assert!(
        uri.contains(":nobody%40"),
        "label names the enrolled user: {uri}"
    );
    // Status and regeneration work on it as that user.
    let out = run(&["--status", "--user", "nobody", "-s", p]);
    assert!(out.status.success(), "{out:?}");
    assert!(!stdout(&out).contains("Warning"), "{}", stdout(&out));
    let out = run(&["--regenerate-scratch", "--user", "nobody", "-s", p, "-q"]);
    assert!(out.status.success(), "{out:?}");
    let meta = fs::metadata(&path).unwrap();
    assert_eq!(
        (meta.uid(), meta.mode() & 0o7777),
        (nobody.uid.as_raw(), 0o400)
    );

    // nobody's real home (/nonexistent) cannot be written.
    if !nobody.dir.exists() {
        let out = run(&["--user", "nobody", "--unattended", "-q"]);
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        assert!(
            stderr(&out).contains(&format!("in the directory {} ", nobody.dir.display())),
            "{}",
            stderr(&out)
        );
    }
    let out = run(&["--user", "no-such-user-here", "--unattended"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "totp-enroll: no such user: no-such-user-here\n"
    );
}

#[test]
fn status_hides_the_secret_unless_asked() {
    let dir = TempDir::new("status");
    let path = dir.path("ga");
    let p = path.to_str().unwrap();
    assert!(run(&["--unattended", "-q", "-w", "17", "-s", p])
        .status
        .success());
    let secret = String::from_utf8(fs::read(&path).unwrap())
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_owned();
    let out = run(&["--status", "-s", p]);
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    assert!(
        text.contains("Tokens:         time-based, a new code every 30 s\n"),
        "{text}"
    );
    assert!(text.contains("Window:         17 codes"), "{text}");
    assert!(text.contains("Scratch codes:  5 left\n"), "{text}");
    assert!(text.contains("mode 0400\n"), "{text}");
    assert!(!text.contains(&secret[..8]), "secret shown: {text}");
    let out = run(&["--status", "--show-secret", "-s", p]);
    let shown = line_value(&stdout(&out), "Secret:         ").replace(' ', "");
    assert_eq!(shown, secret);
}

#[test]
fn regenerate_scratch_keeps_secret_and_settings() {
    let dir = TempDir::new("regen");
    let path = dir.path("ga");
    let p = path.to_str().unwrap();
    assert!(run(&["--unattended", "-q", "-r", "5", "-R", "60", "-s", p])
        .status
        .success());
    let before = SecretFile::parse(&fs::read(&path).unwrap()).unwrap();
    let out = run(&["--regenerate-scratch", "-e", "8", "-s", p]);
    assert!(out.status.success(), "{out:?}");
    let after = SecretFile::parse(&fs::read(&path).unwrap()).unwrap();
    assert_eq!(after.secret().as_bytes(), before.secret().as_bytes());
    assert_eq!(after.settings(), before.settings());
    let codes: Vec<u32> = after.scratch_codes().collect();
    assert_eq!(codes.len(), 8);
    let old: Vec<u32> = before.scratch_codes().collect();
    assert!(codes.iter().all(|c| !old.contains(c)));
    let text = stdout(&out);
    for code in &codes {
        assert!(text.contains(&format!("  {code:08}\n")), "{text}");
    }
    assert_eq!(mode_of(&path), 0o400);
}

#[test]
fn status_and_regenerate_without_a_file() {
    let dir = TempDir::new("missing");
    let p = dir.path("ga");
    for args in [&["--status"][..], &["--regenerate-scratch"]] {
        let mut all = args.to_vec();
        all.extend(["-s", p.to_str().unwrap()]);
        let out = run(&all);
        assert_eq!(out.status.code(), Some(6), "{out:?}");
        assert!(stderr(&out).contains("does not exist: not enrolled"));
        assert!(!p.exists());
    }
}

#[test]
fn help_and_version() {
    for flag in ["-h", "--help"] {
        let out = run(&[flag]);
        assert!(out.status.success());
        let text = stdout(&out);
        for needle in [
            "-t, --time-based",
            "-Q, --qr-mode <MODE>",
            "Exit status:",
            "2  usage",
        ] {
            assert!(text.contains(needle), "{flag}: {needle} missing");
        }
    }
    let out = run(&["--version"]);
    assert_eq!(
        stdout(&out),
        format!("totp-enroll {}\n", env!("CARGO_PKG_VERSION"))
    );
}

/// Runs the binary with its standard output on `stdout`.
fn run_to(args: &[&str], stdout: impl Into<std::process::Stdio>) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(stdout)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap()
}

/// A pipe whose reader is already gone: every write gets EPIPE, as when
/// `head -1` has read its line and left.
fn closed_pipe() -> std::os::fd::OwnedFd {
    let (reader, writer) = nix::unistd::pipe().unwrap();
    drop(reader);
    writer
}

#[test]
fn status_into_a_closed_pipe_is_no_error() {
    let dir = TempDir::new("sigpipe");
    let path = dir.path("ga");
    let p = path.to_str().unwrap();
    assert!(run(&["--unattended", "-q", "-s", p]).status.success());
    let out = run_to(&["--status", "-s", p], closed_pipe());
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(stderr(&out), "");
}

#[test]
fn output_failing_after_the_save_says_the_file_was_saved() {
    let dir = TempDir::new("devfull");
    for (i, stdout) in [
        fs::File::create("/dev/full").unwrap().into(),
        std::process::Stdio::from(closed_pipe()),
    ]
    .into_iter()
    .enumerate()
    {
        let path = dir.path(&format!("ga{i}"));
        let p = path.to_str().unwrap();
        let out = run_to(&["--unattended", "-s", p], stdout);
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        assert!(path.exists(), "the file is saved");
        let err = stderr(&out);
        assert!(
            err.starts_with(&format!(
                "totp-enroll: {p} was saved, but the key and the scratch codes could not be shown"
            )),
            "{err}"
        );
        assert!(err.contains("--status --show-secret"), "{err}");
    }
    // --status on a full disk is an error, said once.
    let p = dir.path("ga0");
    let out = run_to(
        &["--status", "-s", p.to_str().unwrap()],
        fs::File::create("/dev/full").unwrap(),
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        stderr(&out).contains("No space left on device"),
        "{}",
        stderr(&out)
    );
}
