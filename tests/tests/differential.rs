//! The differential suite: the same scenarios against Google's
//! pam_google_authenticator.so and pam_totp.so, through real libpam, at a
//! frozen time, comparing return codes, prompts and the file each leaves.
//!
//! Where the two differ on purpose, the table says so, with the reason, so
//! that a change in either module fails the test. `cargo test --test
//! differential -- --nocapture` prints the comparison table.

use pam_totp_tests::code::{
    PAM_AUTH_ERR as AUTH_ERR, PAM_PERM_DENIED as PERM_DENIED, PAM_SERVICE_ERR as SERVICE_ERR,
    PAM_SUCCESS as SUCCESS,
};
use pam_totp_tests::{code, oath, Clock, Module, Outcome, PromptStyle, Scenario};
use std::fmt::Write as _;
use std::fs;

const SECRET: &str = "JBSWY3DPEHPK3PXP";
/// 2026-01-01 00:00:00 UTC.
const T: u64 = 1_767_225_600;
const REUSE_AND_RATE: &str = "\" RATE_LIMIT 3 30\n\" DISALLOW_REUSE\n\" TOTP_AUTH\n12345678\n";

fn code_at(steps: i64) -> String {
    oath::totp_at(SECRET, T.checked_add_signed(30 * steps).unwrap())
}

fn file(options: &str) -> String {
    format!("{SECRET}\n{options}")
}

/// One login of a scenario: what is typed, and when.
struct Step {
    answer: String,
    at: u64,
    rhost: Option<&'static str>,
}

fn step(answer: impl Into<String>, at: u64) -> Step {
    Step {
        answer: answer.into(),
        at,
        rhost: None,
    }
}

/// How the secret file is set up before the first login.
enum Setup {
    File(String),
    Missing,
    Mode(String, u32),
    Symlink(String),
}

struct Case {
    name: &'static str,
    setup: Setup,
    options: &'static [&'static str],
    steps: Vec<Step>,
    /// Return code of each step: pam_totp, Google.
    ours: &'static [i32],
    google: &'static [i32],
    /// Prompts in all steps together: pam_totp, Google.
    prompts: (usize, usize),
    /// Whether both modules must leave byte-identical files.
    same_file: bool,
    /// Why the modules differ, where they do.
    why: &'static str,
}

struct Run {
    codes: Vec<i32>,
    prompts: usize,
    file: Option<String>,
}

fn run(case: &Case, module: Module) -> Run {
    let mut scenario = Scenario::new(module);
    for option in case.options {
        scenario = scenario.option(*option);
    }
    prepare(&scenario, &case.setup);
    let mut codes = Vec::new();
    let mut prompts = 0;
    for step in &case.steps {
        scenario.set_clock(Clock::Frozen(step.at));
        let mut login = scenario.login().answer(step.answer.as_str());
        if let Some(host) = step.rhost {
            login = login.rhost(host);
        }
        let outcome = login.run();
        codes.push(outcome.code);
        prompts += outcome.prompts.len();
    }
    let file = fs::read_to_string(scenario.secret_path()).ok();
    Run {
        codes,
        prompts,
        file,
    }
}

fn cases() -> Vec<Case> {
    let reuse = || file(REUSE_AND_RATE);
    let wrong = || oath::wrong_totp(SECRET, T);
    vec![
        Case {
            name: "valid code",
            setup: Setup::File(reuse()),
            options: &[],
            steps: vec![step(code_at(0), T)],
            ours: &[SUCCESS],
            google: &[SUCCESS],
            prompts: (1, 1),
            same_file: true,
            why: "",
        },
        Case {
            name: "code one step old / ahead",
            setup: Setup::File(file("\" TOTP_AUTH\n\" DISALLOW_REUSE\n")),
            options: &[],
            steps: vec![step(code_at(-1), T), step(code_at(1), T)],
            ours: &[SUCCESS, SUCCESS],
            google: &[SUCCESS, SUCCESS],
            prompts: (2, 2),
            same_file: true,
            why: "",
        },
        Case {
            name: "code two steps off (noskewadj)",
            setup: Setup::File(file("\" TOTP_AUTH\n")),
            options: &["noskewadj"],
            steps: vec![step(code_at(2), T), step(code_at(-2), T)],
            ours: &[AUTH_ERR, AUTH_ERR],
            google: &[AUTH_ERR, AUTH_ERR],
            prompts: (2, 2),
            same_file: true,
            why: "",
        },
        Case {
            name: "WINDOW_SIZE 17: ±8 in, ±9 out",
            setup: Setup::File(file("\" TOTP_AUTH\n\" WINDOW_SIZE 17\n")),
            options: &["noskewadj"],
            steps: vec![
                step(code_at(8), T),
                step(code_at(-8), T),
                step(code_at(9), T),
                step(code_at(-9), T),
            ],
            ours: &[SUCCESS, SUCCESS, AUTH_ERR, AUTH_ERR],
            google: &[SUCCESS, SUCCESS, AUTH_ERR, AUTH_ERR],
            prompts: (4, 4),
            same_file: true,
            why: "",
        },
        Case {
            name: "STEP_SIZE 60",
            setup: Setup::File(file("\" TOTP_AUTH\n\" STEP_SIZE 60\n")),
            options: &[],
            steps: vec![step(oath::totp_step_size_at(SECRET, 60, T), T)],
            ours: &[SUCCESS],
            google: &[SUCCESS],
            prompts: (1, 1),
            same_file: true,
            why: "",
        },
        Case {
            name: "wrong code",
            setup: Setup::File(reuse()),
            options: &["noskewadj"],
            steps: vec![step(wrong(), T)],
            ours: &[AUTH_ERR],
            google: &[AUTH_ERR],
            prompts: (1, 1),
            same_file: true,
            why: "",
        },
        Case {
            name: "reused code (DISALLOW_REUSE)",
            setup: Setup::File(reuse()),
            options: &[],
            steps: vec![step(code_at(0), T), step(code_at(0), T + 5)],
            ours: &[SUCCESS, AUTH_ERR],
            google: &[SUCCESS, AUTH_ERR],
            prompts: (2, 2),
            same_file: true,
            why: "",
        },
        Case {
            name: "scratch code twice",
            setup: Setup::File(reuse()),
            options: &[],
            steps: vec![step("12345678", T), step("12345678", T + 1)],
            ours: &[SUCCESS, AUTH_ERR],
            google: &[SUCCESS, AUTH_ERR],
            prompts: (2, 2),
            same_file: true,
            why: "",
        },
        Case {
            name: "RATE_LIMIT 3 30: fourth attempt",
            setup: Setup::File(reuse()),
            options: &["noskewadj"],
            steps: vec![
                step(wrong(), T),
                step(wrong(), T + 1),
                step(wrong(), T + 2),
                step(code_at(0), T + 3),
            ],
            ours: &[AUTH_ERR, AUTH_ERR, AUTH_ERR, AUTH_ERR],
            google: &[AUTH_ERR, AUTH_ERR, AUTH_ERR, AUTH_ERR],
            prompts: (3, 3),
            same_file: true,
            why: "",
        },
        Case {
            name: "HOTP: code, replay",
            setup: Setup::File(file("\" HOTP_COUNTER 1\n")),
            options: &[],
            steps: vec![step(oath::hotp(SECRET, 2), T), step(oath::hotp(SECRET, 2), T)],
            ours: &[SUCCESS, AUTH_ERR],
            google: &[SUCCESS, AUTH_ERR],
            prompts: (2, 2),
            same_file: true,
            why: "",
        },
        Case {
            name: "HOTP: wrong, no_increment_hotp",
            setup: Setup::File(file("\" HOTP_COUNTER 1\n")),
            options: &["no_increment_hotp"],
            steps: vec![step("000000", T)],
            ours: &[AUTH_ERR],
            google: &[AUTH_ERR],
            prompts: (1, 1),
            same_file: true,
            why: "",
        },
        Case {
            name: "TIME_SKEW 10 applied",
            setup: Setup::File(file("\" TOTP_AUTH\n\" TIME_SKEW 10\n")),
            options: &["noskewadj"],
            steps: vec![step(code_at(10), T), step(code_at(0), T)],
            ours: &[SUCCESS, AUTH_ERR],
            google: &[SUCCESS, AUTH_ERR],
            prompts: (2, 2),
            same_file: true,
            why: "",
        },
        Case {
            name: "skew learned, then the code replayed",
            setup: Setup::File(file("\" TOTP_AUTH\n\" DISALLOW_REUSE\n")),
            options: &[],
            steps: vec![
                step(code_at(10), T),
                step(code_at(11), T + 30),
                step(code_at(12), T + 60),
                step(code_at(12), T + 90),
            ],
            ours: &[AUTH_ERR, AUTH_ERR, SUCCESS, AUTH_ERR],
            google: &[AUTH_ERR, AUTH_ERR, SUCCESS, SUCCESS],
            prompts: (4, 4),
            same_file: false,
            why: "Google does not record the code that completes a skew reset: it can be replayed (SECURITY.md #2)",
        },
        Case {
            name: "no file, nullok",
            setup: Setup::Missing,
            options: &["nullok"],
            steps: vec![step(code_at(0), T)],
            // PAM_IGNORE from the only module: libpam answers PAM_PERM_DENIED.
            ours: &[PERM_DENIED],
            google: &[PERM_DENIED],
            prompts: (0, 0),
            same_file: true,
            why: "",
        },
        Case {
            name: "no file, no nullok",
            setup: Setup::Missing,
            options: &[],
            steps: vec![step(code_at(0), T)],
            ours: &[AUTH_ERR],
            google: &[AUTH_ERR],
            prompts: (1, 1),
            same_file: true,
            why: "",
        },
        Case {
            name: "file mode 0644",
            setup: Setup::Mode(reuse(), 0o644),
            options: &[],
            steps: vec![step(code_at(0), T)],
            ours: &[AUTH_ERR],
            google: &[AUTH_ERR],
            prompts: (1, 1),
            same_file: true,
            why: "",
        },
        Case {
            name: "file mode 0644, allowed_perm=0644",
            setup: Setup::Mode(reuse(), 0o644),
            options: &["allowed_perm=0644"],
            steps: vec![step(code_at(0), T)],
            ours: &[SUCCESS],
            google: &[SUCCESS],
            prompts: (1, 1),
            same_file: false,
            why: "pam_totp keeps the file's mode (0644); Google forces 0400 (SECURITY.md #7)",
        },
        Case {
            name: "secret file is a symlink",
            setup: Setup::Symlink(reuse()),
            options: &[],
            steps: vec![step(code_at(0), T)],
            ours: &[AUTH_ERR],
            google: &[SUCCESS],
            prompts: (1, 1),
            same_file: false,
            why: "Google follows the link and replaces it with a regular file (SECURITY.md #6)",
        },
        Case {
            name: "empty file",
            setup: Setup::File(String::new()),
            options: &[],
            steps: vec![step(code_at(0), T)],
            ours: &[AUTH_ERR],
            google: &[AUTH_ERR],
            prompts: (1, 1),
            same_file: true,
            why: "",
        },
        Case {
            name: "unknown option",
            setup: Setup::File(reuse()),
            options: &["nulok"],
            steps: vec![step(code_at(0), T)],
            ours: &[SERVICE_ERR],
            google: &[AUTH_ERR],
            prompts: (0, 0),
            same_file: true,
            why: "a configuration error is PAM_SERVICE_ERR in pam_totp, PAM_AUTH_ERR in Google's",
        },
        Case {
            name: "forward_pass",
            setup: Setup::File(reuse()),
            options: &["forward_pass"],
            steps: vec![step(format!("hunter2{}", code_at(0)), T)],
            ours: &[SUCCESS],
            google: &[SUCCESS],
            prompts: (1, 1),
            same_file: true,
            why: "",
        },
        Case {
            name: "grace period, same host",
            setup: Setup::File(reuse()),
            options: &["grace_period=600"],
            steps: vec![
                Step {
                    rhost: Some("192.0.2.7"),
                    ..step(code_at(0), T)
                },
                Step {
                    rhost: Some("192.0.2.7"),
                    ..step("", T + 60)
                },
            ],
            ours: &[SUCCESS, SUCCESS],
            google: &[SUCCESS, SUCCESS],
            prompts: (1, 1),
            same_file: false,
            why: "pam_totp counts the grace login against RATE_LIMIT and saves it; Google saves nothing (SECURITY.md #4)",
        },
    ]
}

#[test]
fn same_scenarios_both_modules() {
    let mut table = String::from("\nscenario | Google | pam_totp | same file\n---|---|---|---\n");
    let mut failures = Vec::new();
    for case in cases() {
        let ours = run(&case, Module::Ours);
        let google = run(&case, Module::Google);
        let same = ours.file == google.file;
        let _ = writeln!(
            table,
            "{} | {:?} ({} prompts) | {:?} ({} prompts) | {}",
            case.name,
            google.codes,
            google.prompts,
            ours.codes,
            ours.prompts,
            if same { "yes" } else { "no" }
        );
        let mut check = |what: &str, ok: bool| {
            if !ok {
                failures.push(format!("{}: {what}", case.name));
            }
        };
        check("pam_totp return codes", ours.codes == case.ours);
        check("Google return codes", google.codes == case.google);
        check("prompts", (ours.prompts, google.prompts) == case.prompts);
        if case.same_file {
            check(
                &format!("files differ:\n{:?}\n{:?}", ours.file, google.file),
                same,
            );
        }
        if case.ours != case.google || !case.same_file || case.prompts.0 != case.prompts.1 {
            assert!(
                !case.why.is_empty(),
                "{}: a difference needs its reason",
                case.name
            );
        }
    }
    eprintln!("{table}");
    assert!(failures.is_empty(), "{failures:#?}\n{table}");
}

#[test]
fn skew_reset_code_is_not_replayable() {
    let case = cases()
        .into_iter()
        .find(|c| c.name == "skew learned, then the code replayed")
        .unwrap();
    let ours = run(&case, Module::Ours);
    assert_eq!(
        ours.codes,
        [AUTH_ERR, AUTH_ERR, SUCCESS, AUTH_ERR],
        "the third code logs in once only"
    );
    let file = ours.file.unwrap();
    // Each code was typed 10 steps ahead of its time step.
    assert!(
        file.contains("\" TIME_SKEW 10\n"),
        "the learned skew:\n{file}"
    );
}

#[test]
fn hostile_rhost() {
    for host in ["evil\n12345678", "%n%n%s%s%s", "a b"] {
        let scenario = Scenario::new(Module::Ours).at(T).option("grace_period=60");
        scenario.write_secret(&file(REUSE_AND_RATE));
        let outcome = scenario.login().answer(code_at(0)).rhost(host).run();
        assert_eq!(outcome.code, code::PAM_SUCCESS, "{outcome}");
        let contents = scenario.read_secret();
        assert!(
            !contents.contains("evil") && !contents.contains("LAST"),
            "{contents}"
        );
        assert_eq!(
            contents.matches("12345678").count(),
            1,
            "no scratch code added"
        );
        assert!(outcome.logs.iter().all(|l| !l.message.contains("evil")));

        let google = Scenario::new(Module::Google)
            .at(T)
            .option("grace_period=60");
        google.write_secret(&file(REUSE_AND_RATE));
        match google.login().answer(code_at(0)).rhost(host).try_run() {
            Ok(outcome) => eprintln!(
                "Google with PAM_RHOST {host:?}: {} ; file now:\n{}",
                outcome.code_name,
                google.read_secret()
            ),
            Err(failure) => {
                eprintln!("Google with PAM_RHOST {host:?}: the driver died: {failure:?}")
            }
        }
    }
}

#[test]
fn debug_logs_hold_no_secrets() {
    let scenario = Scenario::new(Module::Ours)
        .at(T)
        .option("debug")
        .option("grace_period=5");
    scenario.write_secret(&file(REUSE_AND_RATE));
    let good = code_at(0);
    let mut lines = Vec::new();
    for answer in [good.as_str(), "12345678", "87654321", "000000"] {
        let outcome = scenario.login().answer(answer).rhost("192.0.2.7").run();
        lines.extend(outcome.logs.into_iter().map(|l| l.message));
    }
    assert!(lines.len() >= 8, "debug logged: {lines:#?}");
    for line in &lines {
        for secret in [good.as_str(), "12345678", "87654321", SECRET, &SECRET[..8]] {
            assert!(!line.contains(secret), "log line holds {secret}: {line}");
        }
    }
}

#[test]
fn echo_and_prompt_options_match() {
    for module in Module::BOTH {
        let scenario = Scenario::new(module)
            .at(T)
            .option("echo_verification_code")
            .option("authtok_prompt=OTP:");
        scenario.write_secret(&file(REUSE_AND_RATE));
        let outcome: Outcome = scenario.authenticate(&code_at(0));
        assert_eq!(outcome.code, code::PAM_SUCCESS, "{module}: {outcome}");
        assert_eq!(outcome.prompts.len(), 1, "{module}");
        assert_eq!(outcome.prompts[0].style, PromptStyle::EchoOn, "{module}");
        assert_eq!(outcome.prompts[0].text, "OTP:", "{module}");
    }
}

/// A file written by Google's CLI works with pam_totp, one written by
/// totp-enroll works with Google's module, and after either module has
/// updated a file the other still reads it.
#[test]
fn files_written_by_either_cli_work_with_both_modules() {
    let flags = [
        "-t", "-d", "-f", "-r", "3", "-R", "30", "-w", "3", "-Q", "NONE", "-e", "5",
    ];
    for (writer, reader) in [
        ("google-authenticator", Module::Ours),
        ("totp-enroll", Module::Google),
    ] {
        let scenario = Scenario::new(reader).at(T);
        let path = scenario.secret_path();
        let program = match writer {
            "totp-enroll" => pam_totp_tests::system::profile_dir().join("totp-enroll"),
            other => other.into(),
        };
        let mut command = std::process::Command::new(&program);
        command
            .args(flags)
            .arg("-s")
            .arg(&path)
            .stdin(std::process::Stdio::null());
        // Non-interactive: Google's tool asks for a code unless -C.
        command.arg(if writer == "totp-enroll" { "-q" } else { "-C" });
        let out = command.output().unwrap_or_else(|e| panic!("{writer}: {e}"));
        assert!(
            out.status.success(),
            "{writer}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let contents = fs::read_to_string(&path).unwrap();
        let secret = contents.lines().next().unwrap().to_owned();
        let scratch = contents
            .lines()
            .find(|l| l.len() == 8 && l.bytes().all(|b| b.is_ascii_digit()))
            .unwrap()
            .to_owned();
        let first = scenario.authenticate(&oath::totp_at(&secret, T));
        assert_eq!(
            first.code,
            code::PAM_SUCCESS,
            "{reader} reads {writer}'s file\n{first}"
        );
        let with_scratch = scenario.authenticate(&scratch);
        assert_eq!(
            with_scratch.code,
            code::PAM_SUCCESS,
            "{reader}: scratch code\n{with_scratch}"
        );

        // Now the other module reads what `reader` wrote back.
        let other = if reader == Module::Ours {
            Module::Google
        } else {
            Module::Ours
        };
        let mut next = Scenario::new(other).at(T + 30);
        next.set_clock(Clock::Frozen(T + 30));
        next.write_secret(&scenario.read_secret());
        let outcome = next.authenticate(&oath::totp_at(&secret, T + 30));
        assert_eq!(
            outcome.code,
            code::PAM_SUCCESS,
            "{other} reads the file {reader} rewrote\n{outcome}"
        );
        let replay = next.authenticate(&oath::totp_at(&secret, T + 30));
        assert_eq!(
            replay.code,
            code::PAM_AUTH_ERR,
            "{other} keeps DISALLOW_REUSE\n{replay}"
        );
    }
}

/// Every row of the RETURN VALUES table in pam_totp(8), against pam_totp.
#[test]
fn return_code_table() {
    struct Row {
        what: &'static str,
        setup: Setup,
        options: &'static [&'static str],
        answer: Option<String>,
        user: Option<&'static str>,
        expected: i32,
        prompted: bool,
    }
    let reuse = || file(REUSE_AND_RATE);
    let row = |what, setup, options, answer: Option<String>, expected, prompted| Row {
        what,
        setup,
        options,
        answer,
        user: None,
        expected,
        prompted,
    };
    let rows = vec![
        row(
            "valid code",
            Setup::File(reuse()),
            &[],
            Some(code_at(0)),
            SUCCESS,
            true,
        ),
        row(
            "valid scratch code",
            Setup::File(reuse()),
            &[],
            Some("12345678".into()),
            SUCCESS,
            true,
        ),
        row(
            "wrong code",
            Setup::File(reuse()),
            &["noskewadj"],
            Some("000000".into()),
            AUTH_ERR,
            true,
        ),
        row(
            "malformed code",
            Setup::File(reuse()),
            &[],
            Some("12ab56".into()),
            AUTH_ERR,
            true,
        ),
        row(
            "rate limited",
            Setup::File(file(&format!("\" TOTP_AUTH\n\" RATE_LIMIT 1 30 {T}\n"))),
            &[],
            Some(code_at(0)),
            AUTH_ERR,
            false,
        ),
        // PAM_IGNORE from the only module: libpam answers PAM_PERM_DENIED.
        row(
            "no file, nullok",
            Setup::Missing,
            &["nullok"],
            Some(code_at(0)),
            PERM_DENIED,
            false,
        ),
        row("no file", Setup::Missing, &[], Some(code_at(0)), 7, true),
        row(
            "mode 0644",
            Setup::Mode(reuse(), 0o644),
            &[],
            Some(code_at(0)),
            AUTH_ERR,
            true,
        ),
        row(
            "symlink",
            Setup::Symlink(reuse()),
            &[],
            Some(code_at(0)),
            AUTH_ERR,
            true,
        ),
        row(
            "corrupt file",
            Setup::File(file("\" WINDOW_SIZE x\n")),
            &[],
            Some(code_at(0)),
            AUTH_ERR,
            true,
        ),
        row(
            "unknown option",
            Setup::File(reuse()),
            &["nulok"],
            Some(code_at(0)),
            SERVICE_ERR,
            false,
        ),
        row(
            "bad allowed_perm",
            Setup::File(reuse()),
            &["allowed_perm=0666"],
            Some(code_at(0)),
            SERVICE_ERR,
            false,
        ),
        row(
            "user= unknown",
            Setup::File(reuse()),
            &["user=no-such-user-pam-totp"],
            Some(code_at(0)),
            SERVICE_ERR,
            false,
        ),
        row(
            "use_first_pass, no password",
            Setup::File(reuse()),
            &["use_first_pass"],
            None,
            AUTH_ERR,
            false,
        ),
        row(
            "conversation fails",
            Setup::File(reuse()),
            &[],
            None,
            AUTH_ERR,
            true,
        ),
        Row {
            user: Some("no-such-user-pam-totp"),
            ..row(
                "unknown user",
                Setup::File(reuse()),
                &[],
                Some(code_at(0)),
                AUTH_ERR,
                true,
            )
        },
    ];
    let mut failures = Vec::new();
    for row in rows {
        let case = Case {
            name: row.what,
            setup: row.setup,
            options: row.options,
            steps: vec![],
            ours: &[],
            google: &[],
            prompts: (0, 0),
            same_file: true,
            why: "",
        };
        let mut scenario = Scenario::new(Module::Ours).at(T);
        for option in case.options {
            scenario = scenario.option(*option);
        }
        prepare(&scenario, &case.setup);
        let mut login = scenario.login();
        if let Some(answer) = &row.answer {
            login = login.answer(answer.as_str());
        }
        if let Some(user) = row.user {
            login = login.user(user);
        }
        let outcome = login.run();
        if outcome.code != row.expected || outcome.prompts.is_empty() == row.prompted {
            failures.push(format!(
                "{}: got {}, {} prompts",
                row.what,
                outcome.code_name,
                outcome.prompts.len()
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");

    // The state cannot be saved: a directory squats on the temporary name.
    let scenario = Scenario::new(Module::Ours).at(T);
    scenario.write_secret(&file(REUSE_AND_RATE));
    fs::create_dir_all(scenario.dir().join("secret.pam_totp-tmp/x")).unwrap();
    assert_eq!(
        scenario.authenticate(&code_at(0)).code,
        code::PAM_AUTH_ERR,
        "unsaved state"
    );

    // Grace period: no prompt, PAM_SUCCESS.
    let scenario = Scenario::new(Module::Ours).at(T).option("grace_period=600");
    scenario.write_secret(&file(&format!(
        "\" TOTP_AUTH\n\" LAST0 192.0.2.7 {}\n",
        T - 10
    )));
    let outcome = scenario.login().rhost("192.0.2.7").run();
    assert_eq!(
        (outcome.code, outcome.prompts.len()),
        (SUCCESS, 0),
        "grace period\n{outcome}"
    );
}

fn prepare(scenario: &Scenario, setup: &Setup) {
    match setup {
        Setup::File(contents) => {
            scenario.write_secret(contents);
        }
        Setup::Missing => {}
        Setup::Mode(contents, mode) => {
            scenario.write_file_with_mode(&scenario.secret_path(), contents.as_bytes(), *mode);
        }
        Setup::Symlink(contents) => {
            let target = scenario.dir().join("elsewhere");
            scenario.write_file_with_mode(&target, contents.as_bytes(), 0o600);
            std::os::unix::fs::symlink(&target, scenario.secret_path()).unwrap();
        }
    }
}
