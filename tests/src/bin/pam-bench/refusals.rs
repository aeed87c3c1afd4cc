//! Whether a refusal tells who is enrolled: three refusals of pam_totp on
//! one service (`secret=DIR/refusals/${USER}`, a file without RATE_LIMIT
//! and DISALLOW_REUSE), interleaved in a rotating order, each a whole
//! transaction through libpam:
//! - a wrong code for the enrolled user (the current user, who has a file);
//! - an unknown user (no account);
//! - an unenrolled user (an account without a file; no `nullok`).
//!
//! Prints the prompts each got and the median and quartiles of each, and
//! the ratio of the slowest median to the fastest.

use crate::pam::{self, PAM_AUTH_ERR};
use crate::setup::{self, Layout};
use std::ffi::CString;
use std::time::Duration;

/// A file like a fresh enrollment but without RATE_LIMIT and
/// DISALLOW_REUSE: a wrong code writes nothing.
pub const TEMPLATE: &str = "VHXKEKQ4ZJ6G3NWBPRO5LBWH2U\n\" TOTP_AUTH\n\" WINDOW_SIZE 3\n";
/// With `--rate-limit`: every attempt is counted and written durably. The
/// file is installed afresh (outside the timing) before each enrolled
/// attempt, so the limit is never reached.
pub const TEMPLATE_RATE_LIMIT: &str =
    "VHXKEKQ4ZJ6G3NWBPRO5LBWH2U\n\" TOTP_AUTH\n\" WINDOW_SIZE 3\n\" RATE_LIMIT 3 30\n";
const UNKNOWN_USER: &str = "tk_no_such_user";

pub fn run(
    layout: &Layout,
    enrolled: &str,
    unenrolled: &str,
    iterations: usize,
    warmup: usize,
    rate_limit: bool,
) -> Result<(), String> {
    let path = layout.refusals_secret(enrolled);
    let template = if rate_limit {
        TEMPLATE_RATE_LIMIT
    } else {
        TEMPLATE
    };
    let install = || {
        setup::install_fresh(&path, template.as_bytes())
            .map_err(|e| format!("cannot install {}: {e}", path.display()))
    };
    install()?;
    let wrong = setup::wrong_code(&setup::secret(), setup::now());
    let cases = [
        ("wrong code, enrolled user", enrolled),
        ("unknown user", UNKNOWN_USER),
        ("unenrolled user, no nullok", unenrolled),
    ];
    let service = CString::new(layout.refusals_service()).expect("no NUL");
    let answer = CString::new(wrong).expect("digits");
    let users: Vec<CString> = cases
        .iter()
        .map(|(_, user)| CString::new(*user).expect("no NUL"))
        .collect();
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); cases.len()];
    let mut prompts = vec![Vec::new(); cases.len()];
    for round in 0..warmup + iterations {
        for k in 0..cases.len() {
            let case = (round + k) % cases.len();
            if rate_limit && case == 0 {
                install()?;
            }
            let timed = pam::transaction(&service, &users[case], &answer)?;
            if timed.rc != PAM_AUTH_ERR {
                return Err(format!(
                    "{}: pam_authenticate returned {}, not PAM_AUTH_ERR",
                    cases[case].0, timed.rc
                ));
            }
            if round >= warmup {
                times[case].push(timed.transaction);
                prompts[case].push(timed.prompts);
            }
        }
    }
    println!(
        "refusals{}: {iterations} interleaved transactions each (after {warmup} warm-up)",
        if rate_limit { " with RATE_LIMIT" } else { "" }
    );
    let mut medians = Vec::new();
    for (case, (label, _)) in cases.iter().enumerate() {
        let sorted = {
            let mut t = times[case].clone();
            t.sort();
            t
        };
        let at = |q: usize| {
            sorted
                .get(sorted.len() * q / 4)
                .copied()
                .unwrap_or_default()
        };
        let mut asked: Vec<u32> = prompts[case].clone();
        asked.sort_unstable();
        asked.dedup();
        println!(
            "  {label:<28} median {:>8.3} ms  (quartiles {:.3}-{:.3} ms)  prompts {asked:?}",
            ms(at(2)),
            ms(at(1)),
            ms(at(3)),
        );
        medians.push(at(2));
    }
    let slowest = medians.iter().max().copied().unwrap_or_default();
    let fastest = medians.iter().min().copied().unwrap_or_default();
    println!(
        "  slowest/fastest median: {:.2}x",
        slowest.as_secs_f64() / fastest.as_secs_f64().max(1e-9)
    );
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
