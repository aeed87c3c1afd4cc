//! Codes from `oathtool` (Debian `oathtool`), an implementation independent
//! of both modules under test.

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

/// The current Unix time, for codes made "now".
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs()
}

/// Runs oathtool with `args` and returns its output lines.
pub fn oathtool(args: &[&str]) -> Vec<String> {
    let output = Command::new("oathtool")
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run oathtool: {e} (apt-get install oathtool, see tests/DEPENDENCIES)")
        });
    assert!(
        output.status.success(),
        "oathtool {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The 6-digit TOTP code (SHA1, 30 s steps) of base32 `secret` at Unix time
/// `at`.
pub fn totp_at(secret: &str, at: u64) -> String {
    totp_step_size_at(secret, 30, at)
}

/// The TOTP code with a step size other than 30 s (the file's `STEP_SIZE`).
pub fn totp_step_size_at(secret: &str, step_seconds: u64, at: u64) -> String {
    let now = format!("@{at}");
    let step = format!("{step_seconds}s");
    single(oathtool(&["--totp", "-b", "-s", &step, "-N", &now, secret]))
}

/// The TOTP code at the current time. With the default WINDOW_SIZE 3 it stays
/// valid for at least 30 s, across a step boundary.
pub fn totp_now(secret: &str) -> String {
    totp_at(secret, now())
}

/// The codes of the steps `at - steps_each_side` to `at + steps_each_side`,
/// oldest first.
pub fn totp_window(secret: &str, at: u64, steps_each_side: u64) -> Vec<String> {
    let start = format!("@{}", at.saturating_sub(30 * steps_each_side));
    let window = (2 * steps_each_side).to_string();
    oathtool(&["--totp", "-b", "-w", &window, "-N", &start, secret])
}

/// A 6-digit code that is not the TOTP code of any step within ±10 steps of
/// `at` (the widest window Google's CLI writes), so it is wrong for every
/// window and any skew, without a one-in-a-million chance of being right.
pub fn wrong_totp(secret: &str, at: u64) -> String {
    let valid = totp_window(secret, at, 10);
    (0..10u32)
        .map(|digit| digit.to_string().repeat(6))
        .find(|candidate| !valid.contains(candidate))
        .expect("21 codes cannot cover 10 candidates")
}

/// The 6-digit HOTP code of base32 `secret` for `counter`.
pub fn hotp(secret: &str, counter: u64) -> String {
    let counter = counter.to_string();
    single(oathtool(&["--hotp", "-b", "-c", &counter, secret]))
}

fn single(mut lines: Vec<String>) -> String {
    assert_eq!(lines.len(), 1, "oathtool printed {lines:?}");
    lines.remove(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 6238 appendix B's SHA1 key "12345678901234567890", in base32; its
    // 8-digit vectors end in these 6 digits.
    const RFC_SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

    #[test]
    fn totp_matches_rfc_6238_vectors() {
        assert_eq!(totp_at(RFC_SECRET, 59), "287082");
        assert_eq!(totp_at(RFC_SECRET, 1_111_111_109), "081804");
        assert_eq!(totp_at(RFC_SECRET, 2_000_000_000), "279037");
    }

    #[test]
    fn hotp_matches_rfc_4226_vectors() {
        assert_eq!(hotp(RFC_SECRET, 0), "755224");
        assert_eq!(hotp(RFC_SECRET, 9), "520489");
    }

    #[test]
    fn window_is_centred_and_wrong_code_is_outside_it() {
        let window = totp_window(RFC_SECRET, 1_111_111_109, 1);
        assert_eq!(window.len(), 3);
        assert_eq!(window[1], "081804");
        assert!(!totp_window(RFC_SECRET, 59, 10).contains(&wrong_totp(RFC_SECRET, 59)));
    }
}
