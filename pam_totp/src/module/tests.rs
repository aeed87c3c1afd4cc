//! The whole flow with a scripted conversation, a set clock and real files
//! in a temporary directory, accessed as the user running the tests.
use super::*;
use crate::otp::{hotp, time_step, Secret};
use std::collections::VecDeque;
use std::fs;
use std::os::unix::fs::PermissionsExt;

const SECRET: &str = "JBSWY3DPEHPK3PXP";
const NOW: u64 = 1_700_000_015;

struct FixedClock(u64);
impl Clock for FixedClock {
    fn now(&self) -> u64 {
        self.0
    }
}

#[derive(Default)]
struct FakePam {
    user: Option<String>,
    rhost: Option<Vec<u8>>,
    authtok: Option<Vec<u8>>,
    /// Scripted answers, used in order. A prompt with none left fails the
    /// test, unless `conversation_fails` says the script runs out on
    /// purpose; an answer left over fails it too (see `Drop`).
    answers: VecDeque<String>,
    conversation_fails: bool,
    prompts: Vec<(String, bool)>,
    /// PAM_ERROR_MSG texts shown.
    errors: Vec<String>,
    logs: std::cell::RefCell<Vec<(Priority, String)>>,
}

impl Pam for FakePam {
    fn user(&mut self) -> Option<String> {
        self.user.clone()
    }
    fn remote_host(&self) -> Option<Vec<u8>> {
        self.rhost.clone()
    }
    fn authtok(&self) -> Option<Zeroizing<Vec<u8>>> {
        self.authtok.clone().map(Zeroizing::new)
    }
    fn set_authtok(&mut self, value: &[u8]) -> bool {
        self.authtok = Some(value.to_vec());
        true
    }
    fn ask(&mut self, prompt: &str, echo: bool) -> Option<Zeroizing<Vec<u8>>> {
        self.prompts.push((prompt.to_owned(), echo));
        match self.answers.pop_front() {
            Some(answer) => Some(Zeroizing::new(answer.into_bytes())),
            None if self.conversation_fails => None,
            None => panic!("unexpected prompt {prompt:?}: no answer scripted"),
        }
    }
    fn tell_error(&mut self, message: &str) {
        self.errors.push(message.to_owned());
    }
    fn log(&self, priority: Priority, message: &str) {
        self.logs.borrow_mut().push((priority, message.to_owned()));
    }
}

fn current_user() -> String {
    User::from_uid(nix::unistd::Uid::effective())
        .unwrap()
        .expect("the test user has a passwd entry")
        .name
}

struct Scenario {
    dir: PathBuf,
    pam: FakePam,
}

impl Scenario {
    fn new(name: &str, contents: &str) -> Scenario {
        let dir =
            std::env::temp_dir().join(format!("pam_totp-module-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let scenario = Scenario {
            dir,
            pam: FakePam {
                user: Some(current_user()),
                ..FakePam::default()
            },
        };
        if !contents.is_empty() {
            scenario.write(contents);
        }
        scenario
    }

    fn file(&self) -> PathBuf {
        self.dir.join("secret")
    }

    fn write(&self, contents: &str) {
        fs::write(self.file(), contents).unwrap();
        fs::set_permissions(self.file(), fs::Permissions::from_mode(0o400)).unwrap();
    }

    fn contents(&self) -> String {
        fs::read_to_string(self.file()).unwrap()
    }

    fn run(&mut self, extra: &[&str], now: u64) -> Status {
        let secret = format!("secret={}", self.file().display());
        let mut args = vec![secret.as_str()];
        args.extend_from_slice(extra);
        authenticate(&mut self.pam, &args, &FixedClock(now))
    }

    fn answer(&mut self, answer: impl Into<String>) -> &mut Self {
        self.pam.answers.push_back(answer.into());
        self
    }

    /// The next prompt beyond the scripted answers fails the conversation
    /// instead of the test.
    fn conversation_fails(&mut self) -> &mut Self {
        self.pam.conversation_fails = true;
        self
    }

    fn logs(&self) -> Vec<String> {
        self.pam
            .logs
            .borrow()
            .iter()
            .map(|(_, m)| m.clone())
            .collect()
    }

    fn last_log(&self) -> String {
        self.logs().last().cloned().unwrap_or_default()
    }
}

impl Drop for Scenario {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
        if !std::thread::panicking() {
            assert!(
                self.pam.answers.is_empty(),
                "scripted answers never asked for: {:?}",
                self.pam.answers
            );
        }
    }
}

fn code(now: u64, offset: i64) -> String {
    let secret = Secret::from_base32(SECRET.as_bytes()).unwrap();
    let step = (time_step(now, 30) as i64 + offset) as u64;
    format!("{:06}", hotp(&secret, step))
}

const REUSE_FILE: &str = "JBSWY3DPEHPK3PXP\n\" DISALLOW_REUSE\n\" TOTP_AUTH\n12345678\n";

#[test]
fn valid_code_succeeds_and_is_recorded() {
    let mut s = Scenario::new("valid", REUSE_FILE);
    s.answer(code(NOW, 0));
    assert_eq!(s.run(&[], NOW), Status::Success);
    assert_eq!(s.pam.prompts, vec![(DEFAULT_PROMPT.to_owned(), false)]);
    let step = time_step(NOW, 30);
    assert!(s
        .contents()
        .contains(&format!("\" DISALLOW_REUSE {step}\n")));
    // Mode and owner kept.
    let meta = fs::metadata(s.file()).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o400);
    assert!(
        s.last_log().ends_with("accepted verification code"),
        "{}",
        s.last_log()
    );
}

#[test]
fn reused_code_fails() {
    let mut s = Scenario::new("reuse", REUSE_FILE);
    s.answer(code(NOW, 0)).answer(code(NOW, 0));
    assert_eq!(s.run(&[], NOW), Status::Success);
    assert_eq!(s.run(&[], NOW + 5), Status::AuthErr);
    assert!(s.last_log().contains("already used"), "{}", s.last_log());
}

#[test]
fn wrong_and_malformed_codes_fail() {
    let mut s = Scenario::new("wrong", REUSE_FILE);
    let before = s.contents();
    s.answer("000000");
    let wrong = code(NOW, 5);
    assert_eq!(s.run(&["noskewadj"], NOW), Status::AuthErr);
    assert!(s.last_log().contains("invalid verification code"));
    s.pam.answers.push_back(wrong);
    assert_eq!(s.run(&["noskewadj"], NOW), Status::AuthErr);
    s.answer("12a456");
    assert_eq!(s.run(&[], NOW), Status::AuthErr);
    assert!(s.last_log().contains("invalid input"), "{}", s.last_log());
    assert_eq!(
        s.contents(),
        before,
        "a rejected code without rate limit changes nothing"
    );
}

#[test]
fn scratch_code_works_once() {
    let mut s = Scenario::new("scratch", REUSE_FILE);
    s.answer("12345678").answer("12345678");
    assert_eq!(s.run(&[], NOW), Status::Success);
    assert!(!s.contents().contains("12345678"));
    assert_eq!(s.run(&[], NOW), Status::AuthErr);
    assert!(s.last_log().contains("invalid scratch code"));
}

#[test]
fn rate_limit_refuses_even_a_good_code() {
    let mut s = Scenario::new(
        "rate",
        "JBSWY3DPEHPK3PXP\n\" TOTP_AUTH\n\" RATE_LIMIT 2 30\n",
    );
    s.answer("000000").answer("111111");
    assert_eq!(s.run(&["noskewadj"], NOW), Status::AuthErr);
    assert_eq!(s.run(&["noskewadj"], NOW + 1), Status::AuthErr);
    // The limit is reached: refused without asking.
    assert_eq!(s.run(&["noskewadj"], NOW + 2), Status::AuthErr);
    assert_eq!(s.pam.prompts.len(), 2);
    assert_eq!(s.run(&[], NOW + 2), Status::AuthErr);
    assert!(
        s.last_log().contains("too many attempts"),
        "{}",
        s.last_log()
    );
}

#[test]
fn missing_file_prompts_then_fails_or_is_ignored_with_nullok() {
    let mut s = Scenario::new("missing", "");
    s.answer("123456");
    assert_eq!(s.run(&[], NOW), Status::AuthErr);
    assert_eq!(
        s.pam.prompts.len(),
        1,
        "the prompt does not reveal enrollment"
    );
    assert!(s.last_log().contains("no secret file"));
    assert_eq!(s.run(&["nullok"], NOW), Status::Ignore);
    assert_eq!(s.pam.prompts.len(), 1, "nullok does not prompt");
}

#[test]
fn bad_option_fails_closed_without_prompting() {
    let mut s = Scenario::new("badopt", REUSE_FILE);
    assert_eq!(s.run(&["nulok"], NOW), Status::ServiceErr);
    assert!(s.pam.prompts.is_empty());
    assert!(s.last_log().contains("unknown module option \"nulok\""));
}

#[test]
fn unknown_user_is_prompted_then_refused() {
    let mut s = Scenario::new("nouser", REUSE_FILE);
    s.pam.user = Some("no-such-user-pam-totp".into());
    s.answer("123456");
    assert_eq!(s.run(&[], NOW), Status::AuthErr);
    assert_eq!(s.pam.prompts.len(), 1);
    s.pam.user = None;
    assert_eq!(s.run(&[], NOW), Status::AuthErr);
}

#[test]
fn loose_permissions_and_symlinks_are_refused() {
    let mut s = Scenario::new("perms", REUSE_FILE);
    fs::set_permissions(s.file(), fs::Permissions::from_mode(0o644)).unwrap();
    s.answer(code(NOW, 0));
    assert_eq!(s.run(&[], NOW), Status::AuthErr);
    assert!(s.last_log().contains("mode 0644"), "{}", s.last_log());
    // allowed_perm widens it.
    s.answer(code(NOW, 0));
    assert_eq!(s.run(&["allowed_perm=0644"], NOW), Status::Success);

    let link = s.dir.join("link");
    std::os::unix::fs::symlink(s.file(), &link).unwrap();
    let arg = format!("secret={}", link.display());
    s.answer(code(NOW, 1));
    assert_eq!(
        authenticate(&mut s.pam, &[arg.as_str()], &FixedClock(NOW)),
        Status::AuthErr
    );
    assert!(s.last_log().contains("symbolic link"), "{}", s.last_log());
}

#[test]
fn corrupt_file_names_the_line() {
    let mut s = Scenario::new(
        "corrupt",
        "JBSWY3DPEHPK3PXP\n\" TOTP_AUTH\n\" WINDOW_SIZE many\n",
    );
    s.answer(code(NOW, 0));
    assert_eq!(s.run(&[], NOW), Status::AuthErr);
    assert!(
        s.last_log()
            .contains("line 3: invalid value for WINDOW_SIZE"),
        "{}",
        s.last_log()
    );
    assert_eq!(
        s.pam.prompts.len(),
        1,
        "a broken file is refused after the prompt, like an unknown user"
    );
}

#[test]
fn prompt_options() {
    let mut s = Scenario::new("prompt", REUSE_FILE);
    s.answer(code(NOW, 0));
    assert_eq!(
        s.run(&["authtok_prompt=OTP: ", "echo_verification_code"], NOW),
        Status::Success
    );
    assert_eq!(s.pam.prompts, vec![("OTP: ".to_owned(), true)]);
}

#[test]
fn forward_pass_splits_password_and_code() {
    let mut s = Scenario::new("forward", REUSE_FILE);
    s.answer(format!("hunter2{}", code(NOW, 0)));
    assert_eq!(s.run(&["forward_pass"], NOW), Status::Success);
    assert_eq!(s.pam.prompts[0].0, DEFAULT_FORWARD_PASS_PROMPT);
    assert_eq!(s.pam.authtok.as_deref(), Some(&b"hunter2"[..]));
    // A scratch code at the end works too.
    s.answer("pw12345678");
    assert_eq!(s.run(&["forward_pass"], NOW), Status::Success);
    assert_eq!(s.pam.authtok.as_deref(), Some(&b"pw"[..]));
}

#[test]
fn use_first_pass_never_prompts() {
    let mut s = Scenario::new("usefirst", REUSE_FILE);
    assert_eq!(s.run(&["use_first_pass"], NOW), Status::AuthErr);
    assert!(s.last_log().contains("use_first_pass"));
    let password = format!("secretpw{}", code(NOW, 0)).into_bytes();
    s.pam.authtok = Some(password.clone());
    assert_eq!(s.run(&["use_first_pass"], NOW), Status::Success);
    assert!(s.pam.prompts.is_empty());
    // Without forward_pass, PAM_AUTHTOK is left as the earlier module set it.
    assert_eq!(s.pam.authtok.as_deref(), Some(&password[..]));
    s.pam.authtok = Some(format!("secretpw{}", code(NOW, 1)).into_bytes());
    assert_eq!(
        s.run(&["use_first_pass", "forward_pass"], NOW),
        Status::Success
    );
    assert_eq!(s.pam.authtok.as_deref(), Some(&b"secretpw"[..]));
    // A missing file: still no prompt.
    fs::remove_file(s.file()).unwrap();
    assert_eq!(s.run(&["use_first_pass"], NOW), Status::AuthErr);
    assert!(s.pam.prompts.is_empty());
}

#[test]
fn a_failing_conversation_is_asked_twice_then_refused() {
    let mut s = Scenario::new("conv", REUSE_FILE);
    s.conversation_fails();
    assert_eq!(s.run(&[], NOW), Status::AuthErr);
    assert_eq!(s.pam.prompts.len(), 2);
    assert!(s.last_log().contains("could not ask"), "{}", s.last_log());
}

#[test]
fn try_first_pass_falls_back_to_prompting() {
    let mut s = Scenario::new("tryfirst", REUSE_FILE);
    s.pam.authtok = Some(b"just-a-password".to_vec());
    s.answer(code(NOW, 0));
    assert_eq!(s.run(&["try_first_pass"], NOW), Status::Success);
    assert_eq!(s.pam.prompts.len(), 1);
    // With the code in the password, no prompt.
    s.pam.authtok = Some(format!("pw{}", code(NOW, 1)).into_bytes());
    assert_eq!(s.run(&["try_first_pass"], NOW), Status::Success);
    assert_eq!(s.pam.prompts.len(), 1);
}

#[test]
fn grace_period_skips_the_prompt_for_a_recent_host_only() {
    let mut s = Scenario::new("grace", REUSE_FILE);
    s.pam.rhost = Some(b"192.0.2.7".to_vec());
    s.answer(code(NOW, 0));
    assert_eq!(s.run(&["grace_period=600"], NOW), Status::Success);
    assert!(
        s.contents().contains("\" LAST0 192.0.2.7 1700000015\n"),
        "{}",
        s.contents()
    );
    assert_eq!(s.run(&["grace_period=600"], NOW + 60), Status::Success);
    assert_eq!(s.pam.prompts.len(), 1, "second login used the grace period");
    assert!(s.last_log().contains("grace period"));
    // Another host is asked.
    s.pam.rhost = Some(b"192.0.2.8".to_vec());
    s.answer("000000");
    assert_eq!(
        s.run(&["grace_period=600", "noskewadj"], NOW + 60),
        Status::AuthErr
    );
    assert_eq!(s.pam.prompts.len(), 2);
    // After the period, the first host is asked again.
    s.pam.rhost = Some(b"192.0.2.7".to_vec());
    s.answer("000000");
    assert_eq!(
        s.run(&["grace_period=600", "noskewadj"], NOW + 600),
        Status::AuthErr
    );
    assert_eq!(s.pam.prompts.len(), 3);
}

#[test]
fn hostile_remote_host_is_never_stored_or_logged() {
    let mut s = Scenario::new("rhost", REUSE_FILE);
    s.pam.rhost = Some(b"evil\n11111111 %s%n".to_vec());
    s.answer(code(NOW, 0));
    assert_eq!(s.run(&["grace_period=600"], NOW), Status::Success);
    assert!(!s.contents().contains("evil"));
    assert!(!s.contents().contains("11111111"));
    assert!(s.logs().iter().all(|l| !l.contains("evil")));
}

#[test]
fn grace_period_does_not_bypass_the_rate_limit() {
    let mut s = Scenario::new(
        "gracerate",
        &format!("{SECRET}\n\" TOTP_AUTH\n\" RATE_LIMIT 1 30\n\" LAST0 192.0.2.7 {NOW}\n"),
    );
    s.pam.rhost = Some(b"192.0.2.7".to_vec());
    assert_eq!(s.run(&["grace_period=600"], NOW + 1), Status::Success);
    assert_eq!(s.run(&["grace_period=600"], NOW + 2), Status::AuthErr);
    assert!(s.last_log().contains("too many attempts"));
}

/// Makes saving fail even for root: a directory squats on the temporary name.
fn block_saving(s: &Scenario) {
    let temp = s.dir.join("secret.pam_totp-tmp");
    fs::create_dir_all(temp.join("full")).unwrap();
}

#[test]
fn unsaved_protective_state_refuses_the_login_even_with_allow_readonly() {
    let mut s = Scenario::new("nosave", REUSE_FILE);
    block_saving(&s);
    let before = s.contents();
    s.answer(code(NOW, 0))
        .answer(code(NOW, 0))
        .answer("12345678");
    assert_eq!(s.run(&[], NOW), Status::AuthErr);
    assert!(
        s.last_log().contains("could not be updated"),
        "{}",
        s.last_log()
    );
    assert_eq!(s.run(&["allow_readonly"], NOW), Status::AuthErr);
    assert_eq!(
        s.run(&["allow_readonly"], NOW),
        Status::AuthErr,
        "scratch code"
    );
    assert_eq!(s.contents(), before, "the old file is intact");
}

#[test]
fn allow_readonly_only_forgives_bookkeeping() {
    // No reuse protection, no rate limit: a login only records the grace host.
    let mut s = Scenario::new("readonly", "JBSWY3DPEHPK3PXP\n\" TOTP_AUTH\n");
    s.pam.rhost = Some(b"192.0.2.7".to_vec());
    block_saving(&s);
    s.answer(code(NOW, 0)).answer(code(NOW, 0));
    assert_eq!(s.run(&["grace_period=60"], NOW), Status::AuthErr);
    assert_eq!(
        s.run(&["grace_period=60", "allow_readonly"], NOW),
        Status::Success
    );
    assert!(s
        .logs()
        .iter()
        .any(|l| l.contains("allow_readonly: bookkeeping not saved")));
}

#[test]
fn a_stale_temporary_file_does_not_block_logins() {
    let mut s = Scenario::new("stale", REUSE_FILE);
    fs::write(s.dir.join("secret.pam_totp-tmp"), "half-written").unwrap();
    s.answer(code(NOW, 0));
    assert_eq!(s.run(&[], NOW), Status::Success);
    assert!(!s.dir.join("secret.pam_totp-tmp").exists());
}

#[test]
fn hotp_counter_advances() {
    let mut s = Scenario::new("hotp", "JBSWY3DPEHPK3PXP\n\" HOTP_COUNTER 1\n");
    let secret = Secret::from_base32(SECRET.as_bytes()).unwrap();
    let c: &'static str = Box::leak(format!("{:06}", hotp(&secret, 2)).into_boxed_str());
    s.answer(c).answer(c);
    assert_eq!(s.run(&[], NOW), Status::Success);
    assert!(s.contents().contains("\" HOTP_COUNTER 3\n"));
    assert_eq!(s.run(&[], NOW), Status::AuthErr);
    assert!(s.contents().contains("\" HOTP_COUNTER 4\n"));
}

#[test]
fn debug_logs_never_hold_codes_or_secrets() {
    let mut s = Scenario::new("debuglog", REUSE_FILE);
    let good = code(NOW, 0);
    // A login, then three from other hosts (asked), then one within the
    // first host's grace period (not asked).
    for (host, answer) in [
        ("192.0.2.7", Some(good.as_str())),
        ("192.0.2.8", Some("12345678")),
        ("192.0.2.9", Some("87654321")),
        ("192.0.2.10", Some(good.as_str())),
        ("192.0.2.7", None),
    ] {
        s.pam.rhost = Some(host.as_bytes().to_vec());
        if let Some(answer) = answer {
            s.answer(answer);
        }
        s.run(&["debug", "grace_period=1"], NOW);
    }
    let logs = s.logs();
    assert!(logs.len() >= 8, "debug produced lines: {logs:?}");
    for line in logs {
        for secret in [good.as_str(), "12345678", "87654321", SECRET, "JBSWY3DP"] {
            assert!(!line.contains(secret), "log line leaks {secret}: {line}");
        }
    }
}

#[test]
fn no_strict_owner_and_user_option() {
    let mut s = Scenario::new("owner", REUSE_FILE);
    let me = current_user();
    s.answer(code(NOW, 0)).answer(code(NOW, 1));
    let user_arg = format!("user={me}");
    assert_eq!(s.run(&[&user_arg], NOW), Status::Success);
    assert_eq!(s.run(&["no_strict_owner"], NOW), Status::Success);
    assert_eq!(
        s.run(&["user=no-such-user-pam-totp"], NOW),
        Status::ServiceErr
    );
}

#[test]
fn files_are_checked_where_they_are() {
    // A FIFO is refused without blocking.
    let mut s = Scenario::new("fifo", "");
    nix::unistd::mkfifo(&s.file(), nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    s.answer(code(NOW, 0));
    assert_eq!(s.run(&[], NOW), Status::AuthErr);
    assert!(
        s.last_log().contains("not a regular file"),
        "{}",
        s.last_log()
    );
}

/// What users and attackers may type. None of it logs in, none of it changes
/// a file without a rate limit, and each gets a log line that says why.
#[test]
fn hostile_codes_table() {
    let ten_kb_digits = "1".repeat(10 * 1024);
    let ten_kb_letters = "a".repeat(10 * 1024);
    let good = code(NOW, 0);
    let with_nul = format!("{good}\0");
    let nul_inside = format!("{}\0{}", &good[..3], &good[3..]);
    let spaced = format!("{} {}", &good[..3], &good[3..]);
    let table: &[(&str, &str)] = &[
        ("", "no code was entered"),
        ("   ", "no code was entered"),
        ("12345", "neither 6 nor 8 digits"),
        ("1234567", "neither 6 nor 8 digits"),
        ("123456789", "neither 6 nor 8 digits"),
        (&ten_kb_digits, "neither 6 nor 8 digits"),
        (&ten_kb_letters, "other than digits"),
        ("abcdef", "other than digits"),
        ("12345a", "other than digits"),
        ("+12345", "other than digits"),
        ("-12345", "other than digits"),
        ("１２３４５６", "other than digits"),
        (&spaced, "other than digits"),
        (&with_nul, "other than digits"),
        (&nul_inside, "other than digits"),
        ("\0", "other than digits"),
        ("%s%n%x", "other than digits"),
        ("000000", "invalid verification code"),
        ("00000000", "invalid scratch code"),
    ];
    let mut s = Scenario::new("hostile-codes", REUSE_FILE);
    let before = s.contents();
    for (input, why) in table {
        s.answer(*input);
        assert_eq!(s.run(&["noskewadj"], NOW), Status::AuthErr, "{input:?}");
        assert!(s.last_log().contains(why), "{input:?}: {}", s.last_log());
        assert_eq!(s.contents(), before, "{input:?} changed the file");
    }
    // Non-UTF-8 bytes arrive through the same path.
    let mut pam = FakePam {
        user: Some(current_user()),
        ..FakePam::default()
    };
    struct Bytes<'a>(&'a mut FakePam);
    impl Pam for Bytes<'_> {
        fn user(&mut self) -> Option<String> {
            self.0.user()
        }
        fn remote_host(&self) -> Option<Vec<u8>> {
            None
        }
        fn authtok(&self) -> Option<Zeroizing<Vec<u8>>> {
            None
        }
        fn set_authtok(&mut self, _: &[u8]) -> bool {
            false
        }
        fn ask(&mut self, _: &str, _: bool) -> Option<Zeroizing<Vec<u8>>> {
            Some(Zeroizing::new(b"\xff\xfe\x80123".to_vec()))
        }
        fn tell_error(&mut self, message: &str) {
            self.0.tell_error(message)
        }
        fn log(&self, priority: Priority, message: &str) {
            self.0.log(priority, message)
        }
    }
    let arg = format!("secret={}", s.file().display());
    assert_eq!(
        authenticate(&mut Bytes(&mut pam), &[arg.as_str()], &FixedClock(NOW)),
        Status::AuthErr
    );
    assert!(pam
        .logs
        .borrow()
        .last()
        .unwrap()
        .1
        .contains("other than digits"));
}

/// Secret files as they may be found: each either works or fails closed
/// with a log line that names the problem, and is never changed by a
/// failed login.
#[test]
fn hostile_files_table() {
    let huge_line = format!("{SECRET}\n\" TOTP_AUTH\n\" X {}\n", "y".repeat(60 * 1024));
    let over_limit = format!("{SECRET}\n\" TOTP_AUTH\n{}\n", "z".repeat(64 * 1024));
    let table: Vec<(&str, String, Option<&str>)> = vec![
        // (name, contents, None = works / Some(log fragment) = refused)
        ("empty", String::new(), Some("file is empty")),
        (
            "bad secret",
            "!!!!notbase32!!!!\n\" TOTP_AUTH\n".into(),
            Some("line 1: secret is not valid base32"),
        ),
        (
            "short secret",
            "JBSWY3DP\n\" TOTP_AUTH\n".into(),
            Some("line 1: secret has 40 bits"),
        ),
        (
            "totp with value",
            format!("{SECRET}\n\" TOTP_AUTH yes\n"),
            Some("line 2: invalid value for TOTP_AUTH"),
        ),
        (
            "step zero",
            format!("{SECRET}\n\" STEP_SIZE 0\n"),
            Some("line 2: invalid value for STEP_SIZE"),
        ),
        (
            "step huge",
            format!("{SECRET}\n\" STEP_SIZE 99999999999\n"),
            Some("line 2: invalid value for STEP_SIZE"),
        ),
        (
            "window zero",
            format!("{SECRET}\n\" WINDOW_SIZE 0\n"),
            Some("line 2: invalid value for WINDOW_SIZE"),
        ),
        (
            "window absurd",
            format!("{SECRET}\n\" WINDOW_SIZE 4294967296\n"),
            Some("line 2: invalid value for WINDOW_SIZE"),
        ),
        (
            "rate zero",
            format!("{SECRET}\n\" RATE_LIMIT 0 0\n"),
            Some("line 2: invalid value for RATE_LIMIT"),
        ),
        (
            "rate absurd",
            format!("{SECRET}\n\" RATE_LIMIT 3 86400\n"),
            Some("line 2: invalid value for RATE_LIMIT"),
        ),
        (
            "rate garbage",
            format!("{SECRET}\n\" RATE_LIMIT 3 30 soon\n"),
            Some("line 2: invalid value for RATE_LIMIT"),
        ),
        (
            "hotp garbage",
            // Read as 0: no counter, and no TOTP_AUTH: scratch codes only.
            format!("{SECRET}\n\" HOTP_COUNTER -1\n"),
            Some("invalid verification code"),
        ),
        (
            "reuse garbage",
            format!("{SECRET}\n\" DISALLOW_REUSE 1 x\n"),
            Some("line 2: invalid value for DISALLOW_REUSE"),
        ),
        (
            "skew garbage",
            format!("{SECRET}\n\" TIME_SKEW 1.5\n"),
            Some("line 2: invalid value for TIME_SKEW"),
        ),
        (
            "resetting garbage",
            format!("{SECRET}\n\" RESETTING_TIME_SKEW 5\n"),
            Some("line 2: invalid value for RESETTING_TIME_SKEW"),
        ),
        (
            "grace garbage",
            format!("{SECRET}\n\" LAST3 host\n"),
            Some("line 2: invalid value for LAST"),
        ),
        (
            "duplicate",
            // The first one counts, as in the file format's reference module.
            format!("{SECRET}\n\" TOTP_AUTH\n\" WINDOW_SIZE 3\n\" WINDOW_SIZE 17\n"),
            None,
        ),
        ("64 KiB + 1", over_limit, Some("larger than 65536 bytes")),
        ("huge unknown line", huge_line, None),
        (
            "crlf",
            format!("{SECRET}\r\n\" TOTP_AUTH\r\n\" WINDOW_SIZE 3\r\n12345678\r\n"),
            None,
        ),
        ("no final newline", format!("{SECRET}\n\" TOTP_AUTH"), None),
        (
            "absurd skew",
            format!("{SECRET}\n\" TOTP_AUTH\n\" TIME_SKEW -9223372036854775807\n"),
            Some("invalid verification code"),
        ),
        (
            "absurd counter",
            format!("{SECRET}\n\" HOTP_COUNTER 18446744073709551615\n"),
            Some("invalid value for HOTP_COUNTER"),
        ),
    ];
    for (name, contents, refused) in table {
        let mut s = Scenario::new("hostile-files", "");
        if !contents.is_empty() {
            s.write(&contents);
        } else {
            fs::write(s.file(), "").unwrap();
            fs::set_permissions(s.file(), fs::Permissions::from_mode(0o400)).unwrap();
        }
        // A broken RATE_LIMIT line refuses before the prompt; every other
        // problem after it.
        if !refused.is_some_and(|why| why.contains("RATE_LIMIT")) {
            s.answer(code(NOW, 0));
        }
        let status = s.run(&["noskewadj"], NOW);
        match refused {
            None => assert_eq!(status, Status::Success, "{name}: {}", s.last_log()),
            Some(why) => {
                assert_eq!(status, Status::AuthErr, "{name}");
                assert!(s.last_log().contains(why), "{name}: {}", s.last_log());
                if !name.starts_with("absurd") {
                    assert_eq!(s.contents(), contents, "{name}: file changed");
                }
            }
        }
    }
}

/// A commit check that refuses every accepted code, as a shared state
/// would refuse a code another host used first.
struct RefuseAccepted {
    seen: usize,
}

impl CommitCheck for RefuseAccepted {
    fn before_commit(&mut self, attempt: &mut Attempt, file: &mut SecretFile) {
        self.seen += 1;
        assert!(
            file.rate_limit().is_some(),
            "the check sees the locked file"
        );
        if attempt.decision.verdict.is_ok() {
            attempt.decision.verdict = Err(Rejected::Reused);
        }
    }
}

#[test]
fn commit_check_has_the_last_word_and_the_attempt_is_still_saved() {
    let mut s = Scenario::new(
        "commit-check",
        "JBSWY3DPEHPK3PXP\n\" RATE_LIMIT 3 30\n\" TOTP_AUTH\n",
    );
    s.answer(code(NOW, 0));
    let secret = format!("secret={}", s.file().display());
    let mut check = RefuseAccepted { seen: 0 };
    let status = authenticate_with(&mut s.pam, &[secret.as_str()], &FixedClock(NOW), &mut check);
    assert_eq!(status, Status::AuthErr);
    assert_eq!(check.seen, 1);
    assert!(s.last_log().contains("already used"), "{}", s.last_log());
    // The rate-limit count decided locally was saved with the refusal.
    assert!(
        s.contents()
            .contains(&format!("\" RATE_LIMIT 3 30 {NOW}\n")),
        "{}",
        s.contents()
    );
}

#[test]
fn system_write_errors_are_shown_to_the_user_in_the_reference_wording() {
    let io = |errno: i32| StoreError::Io {
        action: "write the temporary file",
        error: std::io::Error::from_raw_os_error(errno),
    };
    assert_eq!(
        write_error_for_user(&io(libc::ENOSPC)).as_deref(),
        Some("Error \"No space left on device\" while writing config")
    );
    assert_eq!(
        write_error_for_user(&io(libc::EROFS)).as_deref(),
        Some("Error \"Read-only file system\" while writing config")
    );
    // Not a system problem: only logged.
    assert_eq!(write_error_for_user(&io(libc::EISDIR)), None);
    assert_eq!(write_error_for_user(&StoreError::LockTimeout), None);
}

/// At the prompt without forward_pass only the bare code counts, as in the
/// reference module: a code with blanks around it, or with anything before
/// it, is refused (and never checked).
#[test]
fn only_a_bare_code_is_taken_at_the_prompt() {
    let mut s = Scenario::new("bare", REUSE_FILE);
    let good = code(NOW, 0);
    for typed in [
        format!(" {good}"),
        format!("{good} "),
        format!("x{good}"),
        " 12345678".to_owned(),
        "012345678".to_owned(),
    ] {
        s.answer(typed.as_str());
        assert_eq!(s.run(&[], NOW), Status::AuthErr, "{typed:?}");
    }
    assert!(s.contents().contains("12345678"), "scratch code kept");
    s.answer(good.as_str());
    assert_eq!(s.run(&[], NOW), Status::Success);
}

/// Issue 14, finding 7: the refusals of an unknown user and of an
/// unenrolled one (no nullok) do the same code-checking work as a wrong
/// code for an enrolled user (a file without RATE_LIMIT/DISALLOW_REUSE),
/// counted in HOTP computations rather than timed.
#[test]
fn refusals_do_the_same_work_whoever_is_refused() {
    let work = |s: &mut Scenario| {
        s.answer("000000");
        crate::otp::HOTP_CALLS.with(|c| c.set(0));
        assert_eq!(s.run(&[], NOW), Status::AuthErr, "{}", s.last_log());
        crate::otp::HOTP_CALLS.with(|c| c.get())
    };
    let file = format!("{SECRET}\n\" TOTP_AUTH\n\" WINDOW_SIZE 3\n");
    let mut enrolled = Scenario::new("work-wrong", &file);
    // A code that matches nowhere near: the window and the whole skew search.
    let wrong = work(&mut enrolled);
    assert!(wrong > 1_000, "the skew search ran: {wrong}");
    let mut unknown = Scenario::new("work-unknown", &file);
    unknown.pam.user = Some("no-such-user-pam-totp".into());
    let mut unenrolled = Scenario::new("work-unenrolled", "");
    assert_eq!(work(&mut unknown), wrong, "unknown user");
    assert_eq!(work(&mut unenrolled), wrong, "unenrolled user");
}
