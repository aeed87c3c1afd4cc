//! Refusals that look alike from outside.
//!
//! A wrong code for an enrolled user is judged: the window, then (unless
//! `noskewadj`) a search of about 3,000 time steps for a phone whose clock
//! is off. An unknown user, or one without a secret file (without
//! `nullok`), is refused without any of that, so without this module the
//! time a refusal takes would tell who is enrolled, although the prompt is
//! the same. Such a refusal therefore judges the typed answer against a
//! decoy file of the same shape as a fresh enrollment, and throws the
//! verdict away: the same work, no effect.
//!
//! Covered: a file without `RATE_LIMIT` and `DISALLOW_REUSE`, where a wrong
//! code writes nothing. With `RATE_LIMIT` every attempt is written durably
//! (a rename and two fsyncs), which no computation can imitate without
//! writing; and `nullok` necessarily tells an unenrolled user (no prompt)
//! from an enrolled or unknown one. SECURITY.md gives the figures.

use crate::policy;
use crate::secret_file::SecretFile;

/// The decoy: time-based, window 3, nothing that would be written. Its
/// secret is fixed and public, which is harmless: nothing judged against
/// it can ever let anyone in, the verdict is discarded.
const DECOY_FILE: &[u8] = b"GEZDGNBVGY3TQOJQGEZDGNBVGY\n\" TOTP_AUTH\n\" WINDOW_SIZE 3\n";

/// Does the work of judging `answer` at `now` against an enrolled user's
/// file, for a refusal that is already decided; the result is discarded.
pub fn judge_and_discard(answer: &[u8], now: u64, options: &policy::Options) {
    if let Ok(mut decoy) = SecretFile::parse(DECOY_FILE) {
        let decision = policy::check_attempt(&mut decoy, answer, now, options);
        // Keeps the work from being optimised away.
        std::hint::black_box(decision);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_decoy_is_a_valid_file_without_rate_limit_or_reuse() {
        let decoy = SecretFile::parse(DECOY_FILE).unwrap();
        let settings = decoy.settings();
        assert!(!settings.disallow_reuse);
        assert!(settings.rate_limit.is_none());
        assert_eq!(settings.window, 3);
    }
}
