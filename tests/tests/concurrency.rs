//! Many logins at once, through real libpam: pam-driver processes under
//! pam_wrapper ([`Login::race`]), each loading the module from its own copy
//! of one service directory. All processes are started and left waiting at
//! the prompt, then all get their answer at once, so verification really
//! races.
//!
//! Every scenario runs against pam_totp (asserted) and against Google's
//! module (reported, for comparison: its flaws show up as more than one
//! success where one is allowed, and are timing-dependent).

use pam_totp_tests::{oath, Login, Module, Outcome, Scenario};
use std::collections::BTreeSet;

const SECRET: &str = "JBSWY3DPEHPK3PXP";

fn totp_now() -> String {
    oath::totp_now(SECRET)
}

/// A scenario for `module` whose secret file (mode 0400) holds `file`.
fn scenario_with(module: Module, file: &str, options: &[&str]) -> Scenario {
    let mut scenario = Scenario::new(module);
    for option in options {
        scenario = scenario.option(*option);
    }
    scenario.write_file_with_mode(&scenario.secret_path(), file.as_bytes(), 0o400);
    scenario
}

/// Races one login per answer; returns whether each succeeded, and all the
/// modules' log lines.
fn race(scenario: &Scenario, answers: &[String]) -> (Vec<bool>, Vec<String>) {
    let outcomes: Vec<Outcome> = Login::race(scenario.login(), answers);
    let logs = outcomes
        .iter()
        .flat_map(|o| o.logs.iter().map(|l| l.message.clone()))
        .collect();
    (outcomes.iter().map(Outcome::success).collect(), logs)
}

const PROCESSES: usize = 32;

fn count(results: &[bool]) -> usize {
    results.iter().filter(|&&ok| ok).count()
}

/// Runs `scenario` for both modules; returns (ours, google) success counts.
fn both<T>(scenario: impl Fn(Module) -> T) -> (T, T) {
    (scenario(Module::Ours), scenario(Module::Google))
}

fn report(what: &str, ours: usize, google: usize) {
    eprintln!("{what}: pam_totp {ours} of {PROCESSES}, Google's module {google} of {PROCESSES}");
}

#[test]
fn one_totp_code_is_accepted_once_among_32_logins() {
    let file = format!("{SECRET}\n\" TOTP_AUTH\n\" DISALLOW_REUSE\n");
    let (ours, google) = both(|module| {
        let rig = scenario_with(module, &file, &[]);
        // One code for all: the window of 3 keeps it valid across a step change.
        let code = totp_now();
        let (results, _) = race(&rig, &vec![code; PROCESSES]);
        count(&results)
    });
    report("same TOTP code, DISALLOW_REUSE", ours, google);
    assert_eq!(ours, 1, "exactly one login may use the code");
}

#[test]
fn one_scratch_code_is_accepted_once_among_32_logins() {
    let file = format!("{SECRET}\n\" TOTP_AUTH\n\" DISALLOW_REUSE\n12345678\n87654321\n");
    let (ours, google) = both(|module| {
        let rig = scenario_with(module, &file, &[]);
        let (results, _) = race(&rig, &vec!["12345678".to_owned(); PROCESSES]);
        let contents = rig.read_secret();
        if module == Module::Ours {
            assert!(!contents.contains("12345678"), "used scratch code removed");
            assert!(contents.contains("87654321"), "the other scratch code kept");
        }
        count(&results)
    });
    report("same scratch code", ours, google);
    assert_eq!(ours, 1, "exactly one login may use the scratch code");
}

#[test]
fn rate_limit_holds_under_32_parallel_logins() {
    // Valid codes and no reuse protection: only the rate limit stops them, so
    // the number of successes is the number of attempts let through.
    let file = format!("{SECRET}\n\" TOTP_AUTH\n\" RATE_LIMIT 3 30\n");
    let (ours, google) = both(|module| {
        let rig = scenario_with(module, &file, &[]);
        let (results, _) = race(&rig, &vec![totp_now(); PROCESSES]);
        count(&results)
    });
    report("valid codes under RATE_LIMIT 3 30", ours, google);
    assert_eq!(ours, 3, "RATE_LIMIT 3 30 lets exactly 3 attempts through");

    // Wrong codes: the log says which attempts were judged at all.
    let rig = scenario_with(Module::Ours, &file, &["noskewadj"]);
    let (results, logs) = race(&rig, &vec!["000000".to_owned(); PROCESSES]);
    assert_eq!(count(&results), 0);
    let judged = logs
        .iter()
        .filter(|l| l.contains("invalid verification code"))
        .count();
    let limited = logs
        .iter()
        .filter(|l| l.contains("too many attempts"))
        .count();
    assert_eq!((judged, limited), (3, PROCESSES - 3), "{logs:#?}");
}

/// What 1,000 mixed logins (25 races of 40) did to the scratch codes.
struct Mixed {
    /// Successful uses of each scratch code.
    uses: Vec<usize>,
    /// Scratch codes left in the file, and those that should be (never used).
    left: BTreeSet<String>,
    expected: BTreeSet<String>,
    /// Batches after which the file did not parse, with the error.
    corrupt: Vec<String>,
}

fn thousand_mixed_logins(module: Module) -> Mixed {
    let scratch: Vec<String> = (0..10)
        .map(|i| format!("{}", 20_000_000 + i * 1_111_111))
        .collect();
    let file = format!(
        "{SECRET}\n\" TOTP_AUTH\n\" DISALLOW_REUSE\n{}\n",
        scratch.join("\n")
    );
    let rig = scenario_with(module, &file, &["noskewadj"]);
    let parse = |text: &str| pam_totp::secret_file::SecretFile::parse(text.as_bytes());
    let mut uses = vec![0; scratch.len()];
    let mut corrupt = Vec::new();
    let mut attempts = 0;
    // Batches of 40 at once: a few uses of each scratch code, valid and
    // wrong TOTP codes and malformed input, in a fixed shuffled order.
    for batch in 0..25 {
        let code = totp_now();
        let answers: Vec<String> = (0..40)
            .map(|i| match (batch * 40 + i) % 7 {
                0 | 1 => scratch[(batch * 3 + i) % 3 + (batch % 3) * 3].clone(),
                2 => code.clone(),
                3 => "000000".to_owned(),
                4 => "99999999".to_owned(),
                5 => "12ab56".to_owned(),
                _ => String::new(),
            })
            .collect();
        let (results, _) = race(&rig, &answers);
        attempts += answers.len();
        for (answer, ok) in answers.iter().zip(&results) {
            if let (Some(index), true) = (scratch.iter().position(|s| s == answer), *ok) {
                uses[index] += 1;
            }
        }
        if let Err(e) = parse(&rig.read_secret()) {
            corrupt.push(format!("batch {batch}: {e}"));
        }
    }
    assert_eq!(attempts, 1000);
    let left = parse(&rig.read_secret())
        .map(|f| f.scratch_codes().map(|c| format!("{c:08}")).collect())
        .unwrap_or_default();
    let expected = scratch
        .iter()
        .zip(&uses)
        .filter(|(_, &n)| n == 0)
        .map(|(s, _)| s.clone())
        .collect();
    Mixed {
        uses,
        left,
        expected,
        corrupt,
    }
}

#[test]
fn a_thousand_mixed_logins_lose_no_scratch_code() {
    let ours = thousand_mixed_logins(Module::Ours);
    assert!(ours.corrupt.is_empty(), "{:?}", ours.corrupt);
    assert!(
        ours.uses.iter().all(|&n| n <= 1),
        "a scratch code worked twice: {:?}",
        ours.uses
    );
    assert!(
        ours.uses.contains(&1),
        "the scenario used some scratch codes"
    );
    assert_eq!(
        ours.left, ours.expected,
        "every scratch code not used is still there"
    );

    let google = thousand_mixed_logins(Module::Google);
    eprintln!(
        "1,000 mixed logins: pam_totp: uses per scratch code {:?}, unused codes kept {}/{}; \
         Google's module: uses per scratch code {:?}, unused codes kept {}/{}, corrupt after {} batches",
        ours.uses,
        ours.left.intersection(&ours.expected).count(),
        ours.expected.len(),
        google.uses,
        google.left.intersection(&google.expected).count(),
        google.expected.len(),
        google.corrupt.len()
    );
}
