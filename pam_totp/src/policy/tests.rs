use super::*;
use crate::otp::{hotp, Secret};

const SECRET: &str = "JBSWY3DPEHPK3PXP";
/// A time in the middle of a 30 s step.
const NOW: u64 = 1_700_000_015;

fn file(options: &str) -> SecretFile {
    SecretFile::parse(format!("{SECRET}\n{options}").as_bytes()).unwrap()
}

fn code_at_step(step: i64) -> Vec<u8> {
    let secret = Secret::from_base32(SECRET.as_bytes()).unwrap();
    format!("{:06}", hotp(&secret, step as u64)).into_bytes()
}

fn step_of(now: u64) -> i64 {
    (now / 30) as i64
}

fn no_skew() -> Options {
    Options {
        learn_skew: false,
        ..Options::default()
    }
}

#[test]
fn window_offsets_match_the_file_format() {
    assert_eq!(window_offsets(1), 0..=0);
    assert_eq!(window_offsets(3), -1..=1);
    assert_eq!(window_offsets(4), -1..=2);
    assert_eq!(window_offsets(17), -8..=8);
    assert_eq!(window_offsets(21), -10..=10);
}

#[test]
fn window_edges_are_exact() {
    for (window, low, high) in [(1, 0, 0), (3, -1, 1), (4, -1, 2), (17, -8, 8)] {
        for offset in (low - 2)..=(high + 2) {
            let mut f = file(&format!("\" TOTP_AUTH\n\" WINDOW_SIZE {window}\n"));
            let code = code_at_step(step_of(NOW) + offset);
            let verdict = check_attempt(&mut f, &code, NOW, &no_skew()).verdict;
            let inside = (low..=high).contains(&offset);
            assert_eq!(
                verdict.is_ok(),
                inside,
                "window {window}, offset {offset}: {verdict:?}"
            );
        }
    }
}

#[test]
fn default_window_is_three_codes() {
    let mut f = file("\" TOTP_AUTH\n");
    let late = code_at_step(step_of(NOW) - 1);
    assert_eq!(
        check_attempt(&mut f, &late, NOW, &no_skew()).verdict,
        Ok(Accepted::Code)
    );
    let too_late = code_at_step(step_of(NOW) - 2);
    assert_eq!(
        check_attempt(&mut f, &too_late, NOW, &no_skew()).verdict,
        Err(Rejected::WrongCode)
    );
}

#[test]
fn step_size_changes_the_counter() {
    let mut f = file("\" TOTP_AUTH\n\" STEP_SIZE 60\n");
    let code = code_at_step((NOW / 60) as i64);
    assert!(check_attempt(&mut f, &code, NOW, &no_skew())
        .verdict
        .is_ok());
}

#[test]
fn without_disallow_reuse_a_code_works_twice_and_nothing_is_written() {
    let mut f = file("\" TOTP_AUTH\n");
    let code = code_at_step(step_of(NOW));
    let first = check_attempt(&mut f, &code, NOW, &no_skew());
    assert_eq!(first.verdict, Ok(Accepted::Code));
    assert!(!first.changes.any());
    assert_eq!(
        check_attempt(&mut f, &code, NOW, &no_skew()).verdict,
        Ok(Accepted::Code)
    );
}

#[test]
fn disallow_reuse_accepts_each_code_once() {
    let mut f = file("\" TOTP_AUTH\n\" DISALLOW_REUSE\n");
    let code = code_at_step(step_of(NOW));
    let first = check_attempt(&mut f, &code, NOW, &no_skew());
    assert_eq!(first.verdict, Ok(Accepted::Code));
    assert!(first.changes.protective);
    assert_eq!(f.used_steps(), &[step_of(NOW) as u64]);
    // Still inside the window one step later: refused as reused.
    assert_eq!(
        check_attempt(&mut f, &code, NOW + 30, &no_skew()).verdict,
        Err(Rejected::Reused)
    );
    // The next code is fine.
    let next = code_at_step(step_of(NOW) + 1);
    assert_eq!(
        check_attempt(&mut f, &next, NOW + 30, &no_skew()).verdict,
        Ok(Accepted::Code)
    );
}

#[test]
fn used_steps_outside_the_window_are_pruned() {
    let old = step_of(NOW) as u64 - 10;
    let mut f = file(&format!("\" TOTP_AUTH\n\" DISALLOW_REUSE {old}\n"));
    let code = code_at_step(step_of(NOW));
    assert!(check_attempt(&mut f, &code, NOW, &no_skew())
        .verdict
        .is_ok());
    assert_eq!(f.used_steps(), &[step_of(NOW) as u64]);
}

#[test]
fn clock_rollback_does_not_make_a_used_code_valid_again() {
    // A code used at step S+5, then the server clock is set back to S.
    let s = step_of(NOW);
    let used_ahead = (s + 5) as u64;
    let mut f = file(&format!("\" TOTP_AUTH\n\" DISALLOW_REUSE {used_ahead}\n"));
    let other = code_at_step(s);
    assert!(check_attempt(&mut f, &other, NOW, &no_skew())
        .verdict
        .is_ok());
    assert!(
        f.used_steps().contains(&used_ahead),
        "future step must be kept"
    );
    // When the clock catches up, the code of S+5 is still refused.
    let replay = code_at_step(s + 5);
    assert_eq!(
        check_attempt(&mut f, &replay, NOW + 5 * 30, &no_skew()).verdict,
        Err(Rejected::Reused)
    );
}

#[test]
fn rate_limit_counts_every_attempt_and_expires() {
    let mut f = file("\" TOTP_AUTH\n\" RATE_LIMIT 3 30\n");
    let good = code_at_step(step_of(NOW));
    for i in 0..3 {
        let d = check_attempt(&mut f, b"000000", NOW + i, &no_skew());
        assert!(matches!(d.verdict, Err(Rejected::WrongCode)), "attempt {i}");
        assert!(d.changes.protective);
    }
    // The fourth attempt inside 30 s fails even with the right code.
    assert_eq!(
        check_attempt(&mut f, &good, NOW + 3, &no_skew()).verdict,
        Err(Rejected::RateLimited {
            attempts: 3,
            seconds: 30
        })
    );
    assert_eq!(
        f.rate_limit().unwrap().recent.len(),
        3,
        "only the last n are kept"
    );
    // 30 s after the attempts at NOW+1..NOW+3, one slot is free again.
    let later = NOW + 32;
    let good_later = code_at_step(step_of(later));
    assert_eq!(
        check_attempt(&mut f, &good_later, later, &no_skew()).verdict,
        Ok(Accepted::Code)
    );
}

#[test]
fn successful_attempts_count_toward_the_rate_limit() {
    let mut f = file("\" TOTP_AUTH\n\" RATE_LIMIT 2 30\n");
    let good = code_at_step(step_of(NOW));
    assert!(check_attempt(&mut f, &good, NOW, &no_skew())
        .verdict
        .is_ok());
    assert!(check_attempt(&mut f, &good, NOW, &no_skew())
        .verdict
        .is_ok());
    assert!(matches!(
        check_attempt(&mut f, &good, NOW, &no_skew()).verdict,
        Err(Rejected::RateLimited { .. })
    ));
}

#[test]
fn rate_limit_survives_a_clock_set_back() {
    let mut f = file(&format!(
        "\" TOTP_AUTH\n\" RATE_LIMIT 2 30 {} {}\n",
        NOW + 100,
        NOW + 101
    ));
    assert!(matches!(
        check_attempt(&mut f, b"123456", NOW, &no_skew()).verdict,
        Err(Rejected::RateLimited { .. })
    ));
}

#[test]
fn scratch_codes_work_once() {
    let mut f = file("\" TOTP_AUTH\n12345678\n87654321\n");
    let d = check_attempt(&mut f, b"12345678", NOW, &no_skew());
    assert_eq!(d.verdict, Ok(Accepted::ScratchCode));
    assert!(d.changes.protective);
    assert_eq!(f.scratch_codes().collect::<Vec<_>>(), vec![87654321]);
    assert_eq!(
        check_attempt(&mut f, b"12345678", NOW, &no_skew()).verdict,
        Err(Rejected::WrongScratchCode)
    );
    assert_eq!(
        check_attempt(&mut f, b"11111111", NOW, &no_skew()).verdict,
        Err(Rejected::WrongScratchCode)
    );
}

#[test]
fn malformed_input_is_rejected_but_counted() {
    let mut f = file("\" TOTP_AUTH\n\" RATE_LIMIT 3 30\n");
    let d = check_attempt(&mut f, b"12ab56", NOW, &no_skew());
    assert_eq!(
        d.verdict,
        Err(Rejected::Malformed(MalformedCode::NotDigits))
    );
    assert_eq!(f.rate_limit().unwrap().recent, vec![NOW]);
}

#[test]
fn hotp_counter_window_and_advance() {
    let secret = Secret::from_base32(SECRET.as_bytes()).unwrap();
    let code = |c: u64| format!("{:06}", hotp(&secret, c)).into_bytes();
    let mut f = file("\" HOTP_COUNTER 10\n");
    // Window 3 looks at counters 10, 11, 12.
    assert_eq!(
        check_attempt(&mut f, &code(12), NOW, &no_skew()).verdict,
        Ok(Accepted::Code)
    );
    assert_eq!(f.settings().mode, Mode::Counter { next: 13 });
    // Used codes are behind the counter now.
    assert_eq!(
        check_attempt(&mut f, &code(12), NOW, &no_skew()).verdict,
        Err(Rejected::WrongCode)
    );
    // The failure moved the counter on (no_increment_hotp not set).
    assert_eq!(f.settings().mode, Mode::Counter { next: 14 });
    let keep = Options {
        advance_hotp_on_failure: false,
        ..no_skew()
    };
    let d = check_attempt(&mut f, b"000000", NOW, &keep);
    assert!(d.verdict.is_err());
    assert!(!d.changes.any());
    assert_eq!(f.settings().mode, Mode::Counter { next: 14 });
}

#[test]
fn skew_is_learned_from_three_codes_in_a_row() {
    let mut f = file("\" TOTP_AUTH\n\" DISALLOW_REUSE\n");
    let skew = 100; // the phone is 50 minutes ahead
    let at = |i: u64| NOW + 30 * i;
    let phone_code = |i: u64| code_at_step(step_of(at(i)) + skew);
    for i in 0..2 {
        let d = check_attempt(&mut f, &phone_code(i), at(i), &Options::default());
        assert_eq!(d.verdict, Err(Rejected::SkewObserved), "observation {i}");
        assert!(d.changes.bookkeeping);
    }
    assert_eq!(f.skew_observations().len(), 2);
    let d = check_attempt(&mut f, &phone_code(2), at(2), &Options::default());
    assert_eq!(
        d.verdict,
        Ok(Accepted::CodeAfterSkewCorrection { skew_steps: skew })
    );
    assert_eq!(f.settings().time_skew, skew);
    assert!(f.skew_observations().is_empty());
    // The code that completed the correction is used up: no replay a step later.
    assert_eq!(
        check_attempt(&mut f, &phone_code(2), at(3), &Options::default()).verdict,
        Err(Rejected::Reused)
    );
    // From now on the skewed phone's codes work directly.
    assert_eq!(
        check_attempt(&mut f, &phone_code(4), at(4), &Options::default()).verdict,
        Ok(Accepted::Code)
    );
}

#[test]
fn skew_learning_needs_agreeing_codes_in_increasing_steps() {
    let mut f = file("\" TOTP_AUTH\n");
    let opts = Options::default();
    // Same step twice: the run restarts.
    let c = code_at_step(step_of(NOW) + 50);
    assert!(check_attempt(&mut f, &c, NOW, &opts).verdict.is_err());
    assert!(check_attempt(&mut f, &c, NOW, &opts).verdict.is_err());
    assert_eq!(f.skew_observations().len(), 1);
    // Disagreeing skews do not complete a correction.
    let mut f = file("\" TOTP_AUTH\n");
    let c1 = code_at_step(step_of(NOW + 30) + 200);
    assert!(check_attempt(&mut f, &c1, NOW + 30, &opts).verdict.is_err());
    let c2 = code_at_step(step_of(NOW + 60) + 50);
    assert!(check_attempt(&mut f, &c2, NOW + 60, &opts).verdict.is_err());
    assert_eq!(f.settings().time_skew, 0);
    // With noskewadj nothing is recorded.
    let mut g = file("\" TOTP_AUTH\n");
    let d = check_attempt(&mut g, &c, NOW, &no_skew());
    assert!(!d.changes.any());
}

#[test]
fn a_code_in_the_window_leaves_a_half_learned_skew() {
    // As in the file format's reference module: a later far-off code may
    // still complete the correction.
    let mut f = file(&format!(
        "\" TOTP_AUTH\n\" RESETTING_TIME_SKEW {}+40\n",
        step_of(NOW) - 1
    ));
    let d = check_attempt(
        &mut f,
        &code_at_step(step_of(NOW)),
        NOW,
        &Options::default(),
    );
    assert_eq!(d.verdict, Ok(Accepted::Code));
    assert_eq!(f.skew_observations().len(), 1);
    assert!(!d.changes.any());
}

#[test]
fn skew_search_reaches_1499_steps_and_not_1500() {
    for (offset, learned) in [(1499, true), (-1499, true), (1500, false), (-1500, false)] {
        let mut f = file("\" TOTP_AUTH\n");
        let code = code_at_step(step_of(NOW) + offset);
        let d = check_attempt(&mut f, &code, NOW, &Options::default());
        assert_eq!(
            f.skew_observations().len(),
            usize::from(learned),
            "{offset}"
        );
        assert_eq!(d.changes.any(), learned, "{offset}");
    }
}

#[test]
fn the_same_far_off_code_twice_changes_nothing() {
    let mut f = file("\" TOTP_AUTH\n");
    let code = code_at_step(step_of(NOW) + 200);
    let first = check_attempt(&mut f, &code, NOW, &Options::default());
    assert_eq!(first.verdict, Err(Rejected::SkewObserved));
    let again = check_attempt(&mut f, &code, NOW + 30, &Options::default());
    assert_eq!(again.verdict, Err(Rejected::SkewObserved));
    assert!(!again.changes.any());
}

#[test]
fn rate_limit_counts_an_attempt_exactly_its_interval_old() {
    let mut f = file(&format!("\" TOTP_AUTH\n\" RATE_LIMIT 1 30 {NOW}\n"));
    let good = code_at_step(step_of(NOW + 30));
    assert!(matches!(
        check_attempt(&mut f, &good, NOW + 30, &no_skew()).verdict,
        Err(Rejected::RateLimited { .. })
    ));
    let later = code_at_step(step_of(NOW + 61));
    assert_eq!(
        check_attempt(&mut f, &later, NOW + 61, &no_skew()).verdict,
        Ok(Accepted::Code)
    );
}

#[test]
fn grace_host_accepts_names_and_addresses_only() {
    for good in ["host.example.com", "192.0.2.1", "2001:db8::1", "my_host-1"] {
        assert_eq!(grace_host(good.as_bytes()), Some(good));
    }
    for bad in [
        &b""[..],
        b"evil\n12345678",
        b"a b",
        b"%s%n",
        b"host\0",
        b"\xff",
        &[b'a'; 256],
    ] {
        assert_eq!(grace_host(bad), None, "{:?}", String::from_utf8_lossy(bad));
    }
}

#[test]
fn grace_period_remembers_hosts_in_ten_slots() {
    let mut f = file("\" TOTP_AUTH\n");
    assert!(!in_grace_period(&f, "a", NOW, 3600));
    record_grace_login(&mut f, "a", NOW);
    assert!(in_grace_period(&f, "a", NOW + 3599, 3600));
    assert!(!in_grace_period(&f, "a", NOW + 3600, 3600));
    assert!(!in_grace_period(&f, "b", NOW, 3600));
    // Ten hosts fill the slots; the eleventh replaces the oldest ("a").
    for i in 1..10u64 {
        record_grace_login(&mut f, &format!("h{i}"), NOW + i);
    }
    record_grace_login(&mut f, "new", NOW + 20);
    assert_eq!(f.grace_logins().len(), 10);
    assert!(!in_grace_period(&f, "a", NOW + 21, 3600));
    assert!(in_grace_period(&f, "new", NOW + 21, 3600));
    // A host seen again keeps its slot.
    record_grace_login(&mut f, "h5", NOW + 30);
    assert_eq!(f.grace_logins().len(), 10);
}

#[test]
fn grace_logins_are_rate_limited() {
    let mut f = file("\" TOTP_AUTH\n\" RATE_LIMIT 1 30\n");
    assert_eq!(
        check_codeless_attempt(&mut f, NOW).verdict,
        Ok(Accepted::GracePeriod)
    );
    assert!(matches!(
        check_codeless_attempt(&mut f, NOW + 1).verdict,
        Err(Rejected::RateLimited { .. })
    ));
}

#[test]
fn candidates_count_as_one_attempt_and_report_the_winner() {
    let mut f = file("\" TOTP_AUTH\n\" RATE_LIMIT 3 30\n12345678\n");
    let good = code_at_step(step_of(NOW));
    let c = check_candidates(&mut f, &[b"000000", &good], NOW, &no_skew(), Pass::ONLY);
    assert_eq!(
        (c.decision.verdict, c.candidate),
        (Ok(Accepted::Code), Some(1))
    );
    assert_eq!(f.rate_limit().unwrap().recent, vec![NOW]);
    let c = check_candidates(
        &mut f,
        &[b"111111", b"22222222"],
        NOW,
        &no_skew(),
        Pass::ONLY,
    );
    assert_eq!(
        (c.decision.verdict, c.candidate),
        (Err(Rejected::WrongScratchCode), None)
    );
}

#[test]
fn rate_limit_is_checked_before_asking() {
    let mut f = file("\" TOTP_AUTH\n\" RATE_LIMIT 2 30\n");
    assert_eq!(refuse_if_rate_limited(&mut f, NOW), None);
    assert!(
        f.rate_limit().unwrap().recent.is_empty(),
        "a look records nothing"
    );
    check_attempt(&mut f, b"000000", NOW, &no_skew());
    check_attempt(&mut f, b"000000", NOW + 1, &no_skew());
    let d = refuse_if_rate_limited(&mut f, NOW + 2).unwrap();
    assert!(matches!(d.verdict, Err(Rejected::RateLimited { .. })));
    assert!(d.changes.protective, "the refused attempt is counted");
    assert_eq!(f.rate_limit().unwrap().recent, vec![NOW + 1, NOW + 2]);
    // Once the interval has passed, the prompt is allowed again.
    assert_eq!(refuse_if_rate_limited(&mut f, NOW + 40), None);
}

#[test]
fn skew_learning_needs_codes_close_together_and_adopts_their_average() {
    let opts = Options::default();
    // A gap of three steps breaks the run.
    let mut f = file("\" TOTP_AUTH\n");
    for (i, at) in [NOW, NOW + 30, NOW + 4 * 30].into_iter().enumerate() {
        let c = code_at_step(step_of(at) + 40);
        assert!(
            check_attempt(&mut f, &c, at, &opts).verdict.is_err(),
            "attempt {i}"
        );
    }
    assert_eq!(f.settings().time_skew, 0, "no skew adopted across the gap");
    assert_eq!(f.skew_observations().len(), 3, "the last three are kept");
    // Skews 40, 41, 41 within two steps of each other: adopted as 40.
    let mut f = file("\" TOTP_AUTH\n");
    let run = [(NOW, 40), (NOW + 60, 41), (NOW + 90, 41)];
    for (at, skew) in run {
        let c = code_at_step(step_of(at) + skew);
        let _ = check_attempt(&mut f, &c, at, &opts);
    }
    assert_eq!(f.settings().time_skew, 40);
}
