//! "Drop-in means drop-in": one differential test per difference once found
//! between pam_totp and Google's module (issue 11, points 1 to 16), through
//! real libpam, at a frozen time, compared on the return code, every
//! message, PAM_AUTHTOK as the next module sees it (the test-only probe
//! module, csrc/authtok_probe.c) and the file as Google's module reads it.
//! Where README "Moving from Google's module" documents a difference, the
//! test checks that exact difference, so that a change on either side shows.

use pam_totp_tests::code::{PAM_AUTH_ERR, PAM_SERVICE_ERR, PAM_SUCCESS};
use pam_totp_tests::compare::{Aspect, Attempt, Both, Pair};
use pam_totp_tests::{oath, AuthtokSeen, PromptStyle};

const SECRET: &str = "JBSWY3DPEHPK3PXP";
/// 2026-01-01 00:00:00 UTC.
const T: u64 = 1_767_225_600;

fn code_at(steps: i64) -> String {
    oath::totp_at(SECRET, T.checked_add_signed(30 * steps).unwrap())
}

fn totp(options: &str) -> String {
    format!("{SECRET}\n\" TOTP_AUTH\n{options}")
}

#[track_caller]
fn same(what: &str, both: &Both) {
    assert!(
        both.differences().is_empty(),
        "{what}: {:?}\n{both}",
        both.differences()
    );
}

/// The argument modes with a password from an earlier module.
const FIRST_PASS_MODES: [&[&str]; 4] = [
    &["try_first_pass"],
    &["try_first_pass", "forward_pass"],
    &["use_first_pass"],
    &["use_first_pass", "forward_pass"],
];

#[test]
fn point_1_first_pass_modes_leave_pam_authtok_alone_without_forward_pass() {
    for options in [&["try_first_pass"][..], &["use_first_pass"]] {
        for password in [
            format!("hunter2{}", code_at(0)),
            code_at(0),
            "hunter2".to_owned(),
        ] {
            let pair = Pair::new(&totp(""));
            let both = pair.login(
                &Attempt::at(T)
                    .options(options)
                    .first_pass(password.as_str())
                    .answer(code_at(0)),
            );
            same(&format!("{options:?} with {password:?}"), &both);
            assert_eq!(
                both.ours.authtok_after,
                AuthtokSeen::Set(password.clone().into_bytes()),
                "{options:?}: the next module sees the earlier password"
            );
        }
    }
}

#[test]
fn point_2_forward_pass_hands_nothing_on_after_a_wrong_code() {
    for options in [&["forward_pass"][..], &["try_first_pass", "forward_pass"]] {
        let pair = Pair::new(&totp(""));
        let both = pair.login(
            &Attempt::at(T)
                .options(options)
                .option("noskewadj")
                .answer("hunter2000000"),
        );
        same(&format!("{options:?}"), &both);
        assert_eq!(both.ours.code, PAM_AUTH_ERR);
        assert_eq!(both.ours.authtok_after, AuthtokSeen::Unset);
        let both = pair.login(
            &Attempt::at(T)
                .options(options)
                .answer(format!("hunter2{}", code_at(0))),
        );
        same(&format!("{options:?}, right code"), &both);
        assert_eq!(
            both.ours.authtok_after,
            AuthtokSeen::Set(b"hunter2".to_vec())
        );
    }
}

#[test]
fn point_3_try_first_pass_takes_only_the_bare_code_at_the_prompt() {
    for answer in [
        format!("xyz{}", code_at(0)),
        "0050548".to_owned(),
        "00050548".to_owned(),
        format!("0{}", code_at(0)),
        format!(" {}", code_at(0)),
        format!("{} ", code_at(0)),
        " 12345678".to_owned(),
    ] {
        let pair = Pair::new(&totp("12345678\n"));
        let both = pair.login(
            &Attempt::at(T)
                .option("try_first_pass")
                .first_pass("hunter2")
                .answer(answer.as_str()),
        );
        same(&answer, &both);
        assert_eq!(both.ours.code, PAM_AUTH_ERR, "{answer}");
    }
}

#[test]
fn point_4_a_try_first_pass_login_counts_once_against_rate_limit() {
    let pair = Pair::new(&totp("\" RATE_LIMIT 3 30\n"));
    for i in 0..3 {
        let both = pair.login(
            &Attempt::at(T + i)
                .option("try_first_pass")
                .first_pass("hunter2")
                .answer(code_at(0)),
        );
        same(&format!("sudo number {i}"), &both);
        assert_eq!(both.ours.code, PAM_SUCCESS, "sudo number {i}");
    }
}

#[test]
fn point_5_hotp_password_ending_in_digits_does_not_use_up_a_counter_value() {
    let pair = Pair::new(&format!("{SECRET}\n\" HOTP_COUNTER 1\n"));
    let both = pair.login(
        &Attempt::at(T)
            .option("try_first_pass")
            .first_pass("pass123456")
            .answer(oath::hotp(SECRET, 1)),
    );
    same("right code after a digit password", &both);
    assert_eq!(both.ours.code, PAM_SUCCESS);
    let both = pair.login(
        &Attempt::at(T)
            .option("try_first_pass")
            .first_pass("pass123456")
            .answer("000000"),
    );
    same("wrong code after a digit password", &both);
}

#[test]
fn point_6_use_first_pass_never_prompts() {
    for options in [&["use_first_pass"][..], &["use_first_pass", "nullok"]] {
        let pair = Pair::without_file();
        same(
            &format!("{options:?}, no file"),
            &pair.login(&Attempt::at(T).options(options).first_pass(code_at(0))),
        );
        let both = pair.login(
            &Attempt::at(T)
                .options(options)
                .first_pass(code_at(0))
                .user("no-such-user-tc_"),
        );
        same(&format!("{options:?}, no such user"), &both);
        assert!(both.ours.messages.is_empty(), "{both}");
    }
}

#[test]
fn point_7_rate_limit_counts_an_attempt_exactly_m_seconds_old() {
    let pair = Pair::new(&totp("\" RATE_LIMIT 3 30\n"));
    for (at, answer) in [
        (T, code_at(0)),
        (T + 10, "000000".to_owned()),
        (T + 20, "000000".to_owned()),
        (T + 30, code_at(1)),
        (T + 31, code_at(1)),
    ] {
        let both = pair.login(&Attempt::at(at).option("noskewadj").answer(answer));
        same(&format!("at T+{}", at - T), &both);
    }
}

#[test]
fn point_8_a_duplicated_option_line_uses_the_first() {
    let pair = Pair::new(&totp(
        "\" WINDOW_SIZE 3\n\" WINDOW_SIZE 17\n\" DISALLOW_REUSE\n",
    ));
    for steps in [1, 5, 1] {
        same(
            &format!("code {steps} steps ahead"),
            &pair.login(&Attempt::at(T).option("noskewadj").answer(code_at(steps))),
        );
    }
}

#[test]
fn point_9_which_codes_a_file_takes() {
    let files = [
        (
            "no TOTP_AUTH, no HOTP_COUNTER",
            format!("{SECRET}\n12345678\n"),
        ),
        (
            "HOTP_COUNTER 0 with TOTP_AUTH",
            format!("{SECRET}\n\" HOTP_COUNTER 0\n\" TOTP_AUTH\n"),
        ),
        (
            "non-numeric HOTP_COUNTER",
            format!("{SECRET}\n\" HOTP_COUNTER x\n\" TOTP_AUTH\n"),
        ),
    ];
    for (what, file) in files {
        let pair = Pair::new(&file);
        same(
            &format!("{what}: TOTP code"),
            &pair.login(&Attempt::at(T).answer(code_at(0))),
        );
        same(
            &format!("{what}: HOTP code"),
            &pair.login(&Attempt::at(T).answer(oath::hotp(SECRET, 1))),
        );
        same(
            &format!("{what}: scratch code"),
            &pair.login(&Attempt::at(T).answer("12345678")),
        );
    }
}

#[test]
fn point_10_scratch_code_lines() {
    let head = totp("");
    let files = [
        ("leading blanks", format!("{head}  12345678\n")),
        ("plus sign", format!("{head}+12345678\n")),
        ("leading zero", format!("{head}012345678\n")),
        ("seven digits with a zero", format!("{head}01234567\n")),
        ("after a garbage line", format!("{head}garbage\n12345678\n")),
        (
            "blank line between",
            format!("{head}11111111\n\n12345678\n"),
        ),
        ("CRLF", format!("{head}11111111\r\n12345678\r\n")),
    ];
    for (what, file) in files {
        let pair = Pair::new(&file);
        for answer in ["12345678", "01234567", "1234567"] {
            same(
                &format!("{what}: {answer}"),
                &pair.login(&Attempt::at(T).answer(answer)),
            );
        }
    }
}

#[test]
fn point_11_user_option() {
    let uid = nix::unistd::Uid::effective().as_raw().to_string();
    let pair = Pair::new(&totp(""));
    same(
        "user=<numeric uid>",
        &pair.login(
            &Attempt::at(T)
                .option(format!("user={uid}"))
                .answer(code_at(0)),
        ),
    );
}

/// Google's module switches to the `user=` account before it finds that
/// `~` cannot go with it: only root can, so only root sees the same.
#[test]
#[ignore = "needs root: tests/run-all"]
fn point_11_user_option_with_a_home_secret() {
    if !pam_totp_tests::require_root() {
        return;
    }
    let uid = nix::unistd::Uid::effective().as_raw().to_string();
    let pair = Pair::new(&totp(""));
    let both = pair.login(
        &Attempt::at(T)
            .option(format!("user={uid}"))
            .option("secret=~/.google_authenticator")
            .answer(code_at(0)),
    );
    same("user= with secret=~/", &both);
    assert_eq!(both.ours.code, PAM_AUTH_ERR);
}

/// Files that cannot be used: each is refused after the prompt, in every
/// argument mode, as Google's module does.
#[test]
fn point_12_a_broken_file_is_refused_after_the_prompt() {
    let broken: [(&str, Vec<u8>, u32); 8] = [
        ("mode 0644", totp("").into_bytes(), 0o644),
        ("empty", Vec::new(), 0o600),
        ("over 64 KiB", totp(&"x".repeat(70_000)).into_bytes(), 0o600),
        ("bad secret", b"!!!!\n\" TOTP_AUTH\n".to_vec(), 0o600),
        ("STEP_SIZE 0", totp("\" STEP_SIZE 0\n").into_bytes(), 0o600),
        (
            "STEP_SIZE 61",
            totp("\" STEP_SIZE 61\n").into_bytes(),
            0o600,
        ),
        (
            "WINDOW_SIZE 0",
            totp("\" WINDOW_SIZE 0\n").into_bytes(),
            0o600,
        ),
        (
            "bad DISALLOW_REUSE token",
            totp("\" DISALLOW_REUSE x\n").into_bytes(),
            0o600,
        ),
    ];
    let mut failures = Vec::new();
    for (what, bytes, mode) in &broken {
        for options in [&[][..], &["forward_pass"]]
            .into_iter()
            .chain(FIRST_PASS_MODES)
        {
            let pair = Pair::without_file();
            pair.write_with_mode(bytes, *mode);
            let both = pair.login(
                &Attempt::at(T)
                    .options(options)
                    .first_pass(code_at(0))
                    .answer(code_at(0)),
            );
            if !both.differences().is_empty() {
                failures.push(format!("{what} {options:?}: {both}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn point_12_no_file_in_every_mode() {
    no_file_in_every_mode(None);
}

/// Google's module switches to `nobody` for an unknown account before it
/// refuses: only root can, so only root sees the same.
#[test]
#[ignore = "needs root: tests/run-all"]
fn point_12_no_account_in_every_mode() {
    if !pam_totp_tests::require_root() {
        return;
    }
    no_file_in_every_mode(Some("no-such-user-tc_"));
}

/// No secret file (and, with `user`, no such account) is refused the same
/// way in every argument mode and with every earlier password.
fn no_file_in_every_mode(user: Option<&str>) {
    let mut failures = Vec::new();
    for options in [&[][..], &["forward_pass"]]
        .into_iter()
        .chain(FIRST_PASS_MODES)
    {
        for first_pass in [None, Some(code_at(0)), Some("hunter2".to_owned())] {
            let pair = Pair::without_file();
            let mut attempt = Attempt::at(T).options(options).answer(code_at(0));
            if let Some(password) = &first_pass {
                attempt = attempt.first_pass(password.as_str());
            }
            if let Some(user) = user {
                attempt = attempt.user(user);
            }
            let both = pair.login(&attempt);
            if !both.differences().is_empty() {
                failures.push(format!(
                    "{options:?} first pass {first_pass:?} user {user:?}: {both}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn point_13_a_failing_conversation() {
    let pair = Pair::new(&totp(""));
    let both = pair.login(&Attempt::at(T));
    same("conversation fails", &both);
    assert_eq!(
        both.ours
            .messages
            .iter()
            .filter(|(style, _)| *style == PromptStyle::EchoOff)
            .count(),
        2
    );
    // try_first_pass: a first-pass code far off only records a skew
    // observation, and the login ends there.
    let both = pair.login(
        &Attempt::at(T)
            .option("try_first_pass")
            .first_pass(code_at(100))
            .answer(code_at(0)),
    );
    same("try_first_pass with a far-off code", &both);
}

#[test]
fn point_15_skew_search_range_and_the_same_far_code_twice() {
    for (steps, learned) in [(1499, true), (1500, false), (-1499, true), (-1500, false)] {
        let pair = Pair::new(&totp(""));
        let both = pair.login(&Attempt::at(T).answer(code_at(steps)));
        same(&format!("{steps} steps off"), &both);
        assert_eq!(
            both.ours
                .file
                .as_deref()
                .unwrap_or("")
                .contains("RESETTING_TIME_SKEW"),
            learned,
            "{steps}: {both}"
        );
    }
    let pair = Pair::new(&totp(""));
    pair.login(&Attempt::at(T).answer(code_at(200)));
    let before = pair.ours.read_secret();
    let both = pair.login(&Attempt::at(T + 30).answer(code_at(200)));
    same("the same far-off code again", &both);
    assert_eq!(pair.ours.read_secret(), before, "nothing rewritten");
}

#[test]
fn point_16_rewritten_files_read_the_same() {
    let pair = Pair::new(&format!(
        "{SECRET}\n\n\" TOTP_AUTH\n\n\" DISALLOW_REUSE\n\n12345678\n\n87654321\n"
    ));
    for (at, answer) in [
        (T, code_at(0)),
        (T + 30, "12345678".to_owned()),
        (T + 60, code_at(300)),
    ] {
        same(
            &answer,
            &pair.login(&Attempt::at(at).answer(answer.as_str())),
        );
    }
}

/// Documented: a configuration error is PAM_SERVICE_ERR in pam_totp, where
/// Debian's Google module refuses with PAM_AUTH_ERR; neither prompts.
#[test]
fn documented_unknown_option_is_a_service_error() {
    let pair = Pair::new(&totp(""));
    let both = pair.login(&Attempt::at(T).option("nulok").answer(code_at(0)));
    assert_eq!(both.differences(), vec![Aspect::ReturnCode], "{both}");
    assert_eq!(
        (both.ours.code, both.google.code),
        (PAM_SERVICE_ERR, PAM_AUTH_ERR)
    );
    assert!(both.ours.messages.is_empty() && both.google.messages.is_empty());
}
