//! Many logins at once, through real libpam: `pamtester` processes under
//! pam_wrapper, each loading the module from its own copy of a private
//! service directory. All processes are started and left waiting at the
//! prompt, then all get their answer at once, so verification really races.
//!
//! Every scenario runs against pam_totp (asserted) and against Google's
//! module (reported, for comparison: its flaws show up as more than one
//! success where one is allowed, and are timing-dependent).

mod common;

use common::{totp_now, Module, Rig, SECRET};
use std::collections::BTreeSet;
use std::path::Path;

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
        let rig = Rig::new("totp", module, &file, "");
        // One code for all: the window of 3 keeps it valid across a step change.
        let code = totp_now();
        let (results, _) = rig.race(&vec![code; PROCESSES]);
        count(&results)
    });
    report("same TOTP code, DISALLOW_REUSE", ours, google);
    assert_eq!(ours, 1, "exactly one login may use the code");
}

#[test]
fn one_scratch_code_is_accepted_once_among_32_logins() {
    let file = format!("{SECRET}\n\" TOTP_AUTH\n\" DISALLOW_REUSE\n12345678\n87654321\n");
    let (ours, google) = both(|module| {
        let rig = Rig::new("scratch", module, &file, "");
        let (results, _) = rig.race(&vec!["12345678".to_owned(); PROCESSES]);
        let contents = rig.contents();
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
        let rig = Rig::new("rate", module, &file, "");
        let (results, _) = rig.race(&vec![totp_now(); PROCESSES]);
        count(&results)
    });
    report("valid codes under RATE_LIMIT 3 30", ours, google);
    assert_eq!(ours, 3, "RATE_LIMIT 3 30 lets exactly 3 attempts through");

    // Wrong codes: the log says which attempts were judged at all.
    let rig = Rig::new("rate-wrong", Module::Ours, &file, "noskewadj");
    let (results, logs) = rig.race(&vec!["000000".to_owned(); PROCESSES]);
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

#[test]
fn a_thousand_mixed_logins_lose_no_scratch_code() {
    let scratch: Vec<String> = (0..10)
        .map(|i| format!("{}", 20_000_000 + i * 1_111_111))
        .collect();
    let file = format!(
        "{SECRET}\n\" TOTP_AUTH\n\" DISALLOW_REUSE\n{}\n",
        scratch.join("\n")
    );
    let rig = Rig::new("mixed", Module::Ours, &file, "noskewadj");
    // Batches of 40 at once: a few uses of each scratch code, valid and
    // wrong TOTP codes and malformed input, in a fixed shuffled order.
    let mut used_ok = Vec::new();
    let mut attempts = 0;
    let mut successes_per_scratch = vec![0; scratch.len()];
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
        let (results, _) = rig.race(&answers);
        attempts += answers.len();
        for (answer, ok) in answers.iter().zip(&results) {
            if let Some(index) = scratch.iter().position(|s| s == answer) {
                if *ok {
                    successes_per_scratch[index] += 1;
                    used_ok.push(answer.clone());
                }
            }
        }
        // The file parses after every batch.
        pam_totp::secret_file::SecretFile::parse(rig.contents().as_bytes())
            .unwrap_or_else(|e| panic!("batch {batch}: file corrupt: {e}"));
    }
    assert_eq!(attempts, 1000);
    assert!(
        successes_per_scratch.iter().all(|&n| n <= 1),
        "a scratch code worked twice: {successes_per_scratch:?}"
    );
    let final_file = pam_totp::secret_file::SecretFile::parse(rig.contents().as_bytes()).unwrap();
    let left: BTreeSet<String> = final_file
        .scratch_codes()
        .map(|c| format!("{c:08}"))
        .collect();
    let expected: BTreeSet<String> = scratch
        .iter()
        .filter(|s| !used_ok.contains(s))
        .cloned()
        .collect();
    assert_eq!(left, expected, "every scratch code not used is still there");
    assert!(!used_ok.is_empty(), "the scenario used some scratch codes");
    assert!(Path::new(&rig.secret()).exists());
}
