//! The harness itself: that the driver reports what libpam and the module
//! really did (message styles, answers, items, clock, logs), and fails
//! loudly rather than quietly.

use pam_totp_tests::system::{driver, pam_wrapper_module, system_module};
use pam_totp_tests::{code, oath, Answer, Module, OutOfAnswers, PromptStyle, Scenario, SERVICE};
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::process::Command;

const SECRET: &str = "JBSWY3DPEHPK3PXP";
/// 2001-09-09 01:47:00 UTC: far from any real clock, so a frozen clock is
/// told apart from the real one.
const T: u64 = 1_000_000_020;

fn google_at_t() -> Scenario {
    let scenario = Scenario::new(Module::Google).at(T);
    scenario.write_secret(&format!("{SECRET}\n\" TOTP_AUTH\n\" WINDOW_SIZE 3\n"));
    scenario
}

#[test]
fn messages_of_every_style_are_reported_in_order() {
    let scenario = google_at_t();
    let chatty = pam_wrapper_module("pam_chatty.so");
    let outcome = scenario
        .login()
        .stack_before(format!(
            "auth required {} num_lines=1 info error",
            chatty.display()
        ))
        .answer(oath::totp_at(SECRET, T))
        .run();
    assert_eq!(outcome.code, code::PAM_SUCCESS, "{outcome}");
    let styles: Vec<PromptStyle> = outcome.prompts.iter().map(|p| p.style).collect();
    let first_error = styles.iter().position(|s| *s == PromptStyle::Error);
    let first_info = styles.iter().position(|s| *s == PromptStyle::Info);
    assert!(
        first_info.is_some() && first_error.is_some() && first_info < first_error,
        "pam_chatty's info then error messages: {outcome}"
    );
    assert_eq!(styles.last(), Some(&PromptStyle::EchoOff), "{outcome}");
    assert_eq!(outcome.questions().len(), 1, "{outcome}");
    assert_eq!(outcome.answers, vec![Answer::Scripted(0)]);
}

#[test]
fn running_out_of_answers_fails_the_conversation_by_default() {
    let outcome = google_at_t().login().run();
    // Google's module asks a second time when the conversation fails.
    assert!(!outcome.answers.is_empty(), "{outcome}");
    assert!(
        outcome.answers.iter().all(|a| *a == Answer::Refused),
        "{outcome}"
    );
    assert_ne!(outcome.code, code::PAM_SUCCESS, "{outcome}");
}

#[test]
fn running_out_of_answers_can_answer_empty() {
    let outcome = google_at_t()
        .login()
        .when_out_of_answers(OutOfAnswers::Empty)
        .run();
    assert_eq!(outcome.answers, vec![Answer::Empty], "{outcome}");
    assert_eq!(outcome.code, code::PAM_AUTH_ERR, "{outcome}");
}

#[test]
fn a_service_without_a_file_falls_through_to_other_which_denies() {
    let outcome = google_at_t()
        .login()
        .ask_for_service("no_such_service")
        .answer(oath::totp_at(SECRET, T))
        .run();
    assert_eq!(outcome.code, code::PAM_AUTH_ERR, "{outcome}");
    assert!(
        outcome.prompts.is_empty(),
        "pam_deny asks nothing: {outcome}"
    );
}

#[test]
fn the_frozen_clock_is_the_one_the_module_sees() {
    let scenario = google_at_t();
    assert_eq!(
        scenario.authenticate(&oath::totp_at(SECRET, T)).code,
        code::PAM_SUCCESS
    );
    let refused = scenario.authenticate(&oath::totp_now(SECRET));
    assert_eq!(
        refused.code,
        code::PAM_AUTH_ERR,
        "real time's code: {refused}"
    );
}

#[test]
fn authtok_is_set_before_the_module_and_read_after_it() {
    let scenario = google_at_t()
        .option("try_first_pass")
        .option("forward_pass");
    let outcome = scenario
        .login()
        .authtok(format!("password{}", oath::totp_at(SECRET, T)))
        .read_authtok()
        .run();
    assert_eq!(outcome.code, code::PAM_SUCCESS, "{outcome}");
    assert!(
        outcome.prompts.is_empty(),
        "code taken from PAM_AUTHTOK: {outcome}"
    );
    assert_eq!(
        outcome.authtok.as_deref(),
        Some("password"),
        "forward_pass leaves the password for the next module: {outcome}"
    );
}

#[test]
fn rhost_reaches_the_module() {
    let outcome = google_at_t()
        .option("debug")
        .login()
        .rhost("192.0.2.7")
        .answer(oath::totp_at(SECRET, T))
        .run();
    assert!(
        outcome
            .log_text()
            .contains("google_authenticator for host \"192.0.2.7\""),
        "{outcome}"
    );
}

#[test]
fn answers_need_not_be_utf8() {
    let scenario = google_at_t();
    let outcome = scenario
        .login()
        .answer(OsString::from_vec(vec![0xff, b'1', 0xfe, b'\t', b'\\']))
        .run();
    assert_eq!(outcome.code, code::PAM_AUTH_ERR, "{outcome}");
}

#[test]
fn pam_wrapper_debug_output_is_kept_in_stderr() {
    let outcome = google_at_t()
        .login()
        .env("PAM_WRAPPER_DEBUGLEVEL", "2")
        .answer(oath::totp_at(SECRET, T))
        .run();
    assert!(outcome.stderr.contains("PWRAP_DEBUG"), "{outcome}");
}

#[test]
fn driver_refuses_bad_usage_with_status_2() {
    for args in [
        &[][..],
        &["--service", SERVICE][..],
        &["--service", SERVICE, "--user", "root", "--bogus"][..],
        &["--service", SERVICE, "--user", "root", "--answer"][..],
        &[
            "--service",
            SERVICE,
            "--user",
            "root",
            "--when-out-of-answers",
            "x",
        ][..],
    ] {
        let output = Command::new(driver()).args(args).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("usage: pam-driver"), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn a_module_ignore_alone_comes_out_as_perm_denied() {
    // nullok and no secret file: Google's module returns PAM_IGNORE.
    let scenario = Scenario::new(Module::Google).option("nullok");
    let alone = scenario.login().answer("123456").run();
    assert_eq!(alone.code, code::PAM_PERM_DENIED, "{alone}");
    let permit = system_module("pam_permit.so");
    let with_permit = scenario
        .login()
        .stack_after(format!("auth required {}", permit.display()))
        .answer("123456")
        .run();
    assert_eq!(with_permit.code, code::PAM_SUCCESS, "{with_permit}");
}

/// Our module is found (or the test says how to build it), and what it logs
/// through pam_syslog is caught too: libpam prefixes `<module>(<service>:auth): `.
#[test]
fn our_module_runs_and_its_pam_syslog_is_captured() {
    let scenario = Scenario::new(Module::Ours).option("debug").at(T);
    scenario.write_secret(&format!("{SECRET}\n\" TOTP_AUTH\n\" WINDOW_SIZE 3\n"));
    let accepted = scenario.authenticate(&oath::totp_at(SECRET, T));
    assert_eq!(accepted.code, code::PAM_SUCCESS, "{accepted}");
    let refused = scenario.authenticate(&oath::wrong_totp(SECRET, T));
    assert_eq!(refused.code, code::PAM_AUTH_ERR, "{refused}");
    assert!(!refused.logs.is_empty(), "{refused}");
    for line in &refused.logs {
        assert_eq!(line.facility, 10, "LOG_AUTHPRIV: {line}");
        assert!(
            line.message.contains(&format!("({SERVICE}:auth): ")),
            "{line}"
        );
    }
}
