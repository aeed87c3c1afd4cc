//! Google's pam_google_authenticator.so through the harness, with secret
//! files written here in the documented format and codes from oathtool.
//!
//! This is the reference behaviour the differential suite compares pam_totp
//! with, and the proof that the harness sees real outcomes. Each scenario
//! takes the module as a parameter so it can be run against both.

use pam_totp_tests::{code, oath, Clock, Module, Outcome, PromptStyle, Scenario};

const SECRET: &str = "JBSWY3DPEHPK3PXP";
const SCRATCH: &str = "12345678";
/// 2026-01-01 00:00:00 UTC: a frozen clock makes the codes certain.
const T: u64 = 1_767_225_600;

fn totp_file() -> String {
    format!("{SECRET}\n\" TOTP_AUTH\n\" DISALLOW_REUSE\n\" WINDOW_SIZE 3\n{SCRATCH}\n")
}

/// The module with the usual file, at time T.
fn scenario(module: Module) -> Scenario {
    let scenario = Scenario::new(module).at(T);
    scenario.write_secret(&totp_file());
    scenario
}

fn assert_code(outcome: &Outcome, expected: i32, what: &str) {
    assert_eq!(outcome.code, expected, "{what}\n{outcome}");
}

fn right_code_is_accepted_after_one_hidden_prompt(module: Module) {
    let scenario = scenario(module);
    let outcome = scenario.authenticate(&oath::totp_at(SECRET, T));
    assert_code(&outcome, code::PAM_SUCCESS, "right code");
    assert_eq!(outcome.prompts.len(), 1, "{outcome}");
    assert_eq!(outcome.prompts[0].style, PromptStyle::EchoOff);
    assert_eq!(outcome.prompts[0].text, "Verification code: ");
}

fn wrong_code_is_refused(module: Module) {
    let scenario = scenario(module);
    let outcome = scenario.authenticate(&oath::wrong_totp(SECRET, T));
    assert_code(&outcome, code::PAM_AUTH_ERR, "wrong code");
    assert!(
        !scenario.read_secret().contains("\" DISALLOW_REUSE 5"),
        "a refused code is not recorded as used:\n{}",
        scenario.read_secret()
    );
}

fn reused_code_is_refused(module: Module) {
    let scenario = scenario(module);
    let code_now = oath::totp_at(SECRET, T);
    assert_code(
        &scenario.authenticate(&code_now),
        code::PAM_SUCCESS,
        "first use",
    );
    let step = T / 30;
    assert!(
        scenario
            .read_secret()
            .contains(&format!("\" DISALLOW_REUSE {step}")),
        "the used step is recorded:\n{}",
        scenario.read_secret()
    );
    assert_code(
        &scenario.authenticate(&code_now),
        code::PAM_AUTH_ERR,
        "second use of the same code",
    );
}

fn scratch_code_works_once_and_is_removed(module: Module) {
    let scenario = scenario(module);
    assert_code(
        &scenario.authenticate(SCRATCH),
        code::PAM_SUCCESS,
        "scratch code",
    );
    let file = scenario.read_secret();
    assert!(
        !file.lines().any(|line| line == SCRATCH),
        "used scratch code removed:\n{file}"
    );
    assert!(file.starts_with(SECRET), "the rest is kept:\n{file}");
    assert_code(
        &scenario.authenticate(SCRATCH),
        code::PAM_AUTH_ERR,
        "scratch code a second time",
    );
}

fn code_from_the_real_clock_is_accepted(module: Module) {
    let mut scenario = scenario(module);
    scenario.set_clock(Clock::Real);
    // Window 3 keeps this code valid into the next step, should one begin.
    let outcome = scenario.authenticate(&oath::totp_now(SECRET));
    assert_code(&outcome, code::PAM_SUCCESS, "code for the real time");
}

/// WINDOW_SIZE 3: the current step and one either side.
fn window_of_three_accepts_one_step_either_side(module: Module) {
    for (offset_steps, expected) in [
        (-2, code::PAM_AUTH_ERR),
        (-1, code::PAM_SUCCESS),
        (0, code::PAM_SUCCESS),
        (1, code::PAM_SUCCESS),
        (2, code::PAM_AUTH_ERR),
    ] {
        // A fresh file each time: skew detection learns from failures.
        let scenario = Scenario::new(module).at(T);
        scenario.write_secret(&format!("{SECRET}\n\" TOTP_AUTH\n\" WINDOW_SIZE 3\n"));
        let at = T.checked_add_signed(30 * offset_steps).unwrap();
        let outcome = scenario.authenticate(&oath::totp_at(SECRET, at));
        assert_code(
            &outcome,
            expected,
            &format!("code {offset_steps} steps off"),
        );
    }
}

fn hotp_code_is_accepted_and_the_counter_advances(module: Module) {
    let scenario = Scenario::new(module);
    scenario.write_secret(&format!("{SECRET}\n\" HOTP_COUNTER 1\n\" WINDOW_SIZE 3\n"));
    let outcome = scenario.authenticate(&oath::hotp(SECRET, 1));
    assert_code(&outcome, code::PAM_SUCCESS, "HOTP code for the counter");
    let file = scenario.read_secret();
    assert!(
        file.contains("\" HOTP_COUNTER 2\n"),
        "counter moved past the used code:\n{file}"
    );
    assert_code(
        &scenario.authenticate(&oath::hotp(SECRET, 1)),
        code::PAM_AUTH_ERR,
        "HOTP code replayed",
    );
}

#[test]
fn google_right_code_is_accepted_after_one_hidden_prompt() {
    right_code_is_accepted_after_one_hidden_prompt(Module::Google);
}

#[test]
fn google_wrong_code_is_refused() {
    wrong_code_is_refused(Module::Google);
}

#[test]
fn google_reused_code_is_refused() {
    reused_code_is_refused(Module::Google);
}

#[test]
fn google_scratch_code_works_once_and_is_removed() {
    scratch_code_works_once_and_is_removed(Module::Google);
}

#[test]
fn google_code_from_the_real_clock_is_accepted() {
    code_from_the_real_clock_is_accepted(Module::Google);
}

#[test]
fn google_window_of_three_accepts_one_step_either_side() {
    window_of_three_accepts_one_step_either_side(Module::Google);
}

#[test]
fn google_hotp_code_is_accepted_and_the_counter_advances() {
    hotp_code_is_accepted_and_the_counter_advances(Module::Google);
}

/// What Google's module logs (LOG_AUTHPRIV, through its own openlog) is
/// caught, with its priority.
#[test]
fn google_logs_acceptance_and_refusal() {
    let scenario = scenario(Module::Google);
    let accepted = scenario.authenticate(&oath::totp_at(SECRET, T));
    let user = scenario.user();
    let line = accepted
        .logs
        .iter()
        .find(|l| l.message == format!("Accepted google_authenticator for {user}"))
        .unwrap_or_else(|| panic!("acceptance logged\n{accepted}"));
    assert_eq!(line.priority, 6, "LOG_INFO");
    assert_eq!(line.facility, 10, "LOG_AUTHPRIV");
    assert_eq!(line.ident, "pam_totp_test(pam_google_authenticator)");

    let refused = scenario.authenticate(&oath::wrong_totp(SECRET, T));
    assert!(
        refused.logs.iter().any(
            |l| l.priority == 3 && l.message == format!("Invalid verification code for {user}")
        ),
        "refusal logged at LOG_ERR\n{refused}"
    );
}
