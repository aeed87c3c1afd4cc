//! Deciding one login attempt: rate limit, code window, reuse, scratch codes,
//! HOTP counter, clock-skew learning and the grace period.
//!
//! Pure: the current time is a parameter and the only effect is on the
//! in-memory [`SecretFile`]. The caller holds the file's lock around
//! [`check_attempt`] and saves the file afterwards, so each attempt sees
//! every earlier one.

use crate::otp::{codes_equal, time_step, Code, HotpKey, MalformedCode};
use crate::secret_file::{GraceLogin, Mode, RateLimit, SecretFile, SkewObservation, GRACE_SLOTS};
use std::fmt;

/// How far (in time steps, each way) a code is searched for when the window
/// misses, to learn a phone clock that is off: about 12.5 hours at 30 s
/// steps, the range the file format's reference module searches (a code
/// 1499 steps off is learned, one 1500 steps off is not).
pub const SKEW_SEARCH_STEPS: i64 = 25 * 60 - 1;
/// Codes in a row that must agree on a new clock skew before it is adopted.
pub const SKEW_OBSERVATIONS_NEEDED: usize = 3;
/// Largest gap, in time steps, between two codes of such a run.
pub const SKEW_OBSERVATION_MAX_GAP: u64 = 2;
/// Longest host name stored for the grace period.
pub const MAX_GRACE_HOST_LEN: usize = 255;

/// Module options that change how attempts are judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Learn the phone's clock skew from codes far outside the window
    /// (off with `noskewadj`).
    pub learn_skew: bool,
    /// Move the HOTP counter on after a failed attempt, so guesses cannot
    /// all be tried against one counter value (off with `no_increment_hotp`).
    pub advance_hotp_on_failure: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            learn_skew: true,
            advance_hotp_on_failure: true,
        }
    }
}

/// How the user got in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    Code,
    ScratchCode,
    /// A code far off the window that completed a clock-skew correction.
    CodeAfterSkewCorrection {
        skew_steps: i64,
    },
    /// No code asked: the host logged in recently (`grace_period`).
    GracePeriod,
}

/// Why an attempt failed. The display text goes to the log: it never holds
/// the code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    Malformed(MalformedCode),
    WrongCode,
    WrongScratchCode,
    /// A code that already logged someone in (DISALLOW_REUSE).
    Reused,
    /// A code far outside the window, remembered as one observation of the
    /// phone's clock skew (or the same far-off code typed again).
    SkewObserved,
    RateLimited {
        attempts: u32,
        seconds: u32,
    },
    /// Fleet mode: another host accepted this code first.
    UsedOnAnotherHost {
        scratch: bool,
    },
    /// Fleet mode: the fleet-wide attempt limit is used up.
    FleetRateLimited {
        attempts: u32,
        seconds: u32,
    },
    /// Fleet mode with `failure_policy = closed`: the shared state gave no
    /// answer in time.
    SharedStateUnavailable,
}

impl Rejected {
    /// Whether the input simply held no valid code, so that another reading
    /// of it (the 8-digit tail after the 6-digit one) or, with
    /// `try_first_pass`, the prompt may still be tried. A reused code, a
    /// clock-skew observation or the rate limit end the authentication.
    pub fn lets_another_reading_try(&self) -> bool {
        matches!(
            self,
            Rejected::Malformed(_) | Rejected::WrongCode | Rejected::WrongScratchCode
        )
    }
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejected::Malformed(why) => write!(f, "invalid input: {why}"),
            Rejected::WrongCode => f.write_str("invalid verification code"),
            Rejected::WrongScratchCode => f.write_str("invalid scratch code"),
            Rejected::Reused => f.write_str("verification code was already used (DISALLOW_REUSE)"),
            Rejected::SkewObserved => f.write_str(
                "invalid verification code (far outside the window: kept as a clock skew observation)",
            ),
            Rejected::RateLimited { attempts, seconds } => write!(
                f,
                "too many attempts: RATE_LIMIT allows {attempts} in {seconds} seconds"
            ),
            Rejected::UsedOnAnotherHost { scratch: false } => {
                f.write_str("verification code was already used on another host (shared state)")
            }
            Rejected::UsedOnAnotherHost { scratch: true } => {
                f.write_str("scratch code was already used on another host (shared state)")
            }
            Rejected::FleetRateLimited { attempts, seconds } => write!(
                f,
                "too many attempts across the fleet: at most {attempts} in {seconds} seconds (shared state)"
            ),
            Rejected::SharedStateUnavailable => f.write_str(
                "shared state unavailable and failure_policy is closed: login refused",
            ),
        }
    }
}

/// What saving the file protects, if it changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Changes {
    /// Something that guards against replay or guessing changed: used codes,
    /// a scratch code, the HOTP counter or the attempts counted for the rate
    /// limit. A login must not succeed unless this is saved.
    pub protective: bool,
    /// Only bookkeeping changed (clock skew, grace-period hosts): losing it
    /// costs convenience, never security.
    pub bookkeeping: bool,
    /// Clock-skew observations read from the file that no login of this
    /// module could have written (a step or skew out of range): dropped,
    /// and worth a log line.
    pub dropped_skew_observations: usize,
}

impl Changes {
    pub fn any(&self) -> bool {
        self.protective || self.bookkeeping
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub verdict: Result<Accepted, Rejected>,
    pub changes: Changes,
}

/// Records the attempt against RATE_LIMIT; `Err` when the limit was already
/// reached. Every attempt counts, successful or not, including ones that are
/// themselves refused, so a burst cannot slip guesses past the limit.
fn count_attempt(file: &mut SecretFile, now: u64, changes: &mut Changes) -> Result<(), Rejected> {
    let Some(limit) = file.rate_limit().cloned() else {
        return Ok(());
    };
    let mut recent = attempts_in_interval(&limit, now);
    let over = recent.len() >= limit.attempts as usize;
    recent.push(now);
    let keep_from = recent.len().saturating_sub(limit.attempts as usize);
    recent.drain(..keep_from);
    file.set_rate_limit(RateLimit { recent, ..limit });
    changes.protective = true;
    if over {
        Err(Rejected::RateLimited {
            attempts: limit.attempts,
            seconds: limit.seconds,
        })
    } else {
        Ok(())
    }
}

/// The recorded attempts that still count at `now`: those at most
/// `seconds` old (one exactly `seconds` old still counts, as in the file
/// format's reference module). One stamped in the future (the clock was set
/// back) still counts, or setting the clock back would reset the limit.
fn attempts_in_interval(limit: &RateLimit, now: u64) -> Vec<u64> {
    let seconds = u64::from(limit.seconds);
    limit
        .recent
        .iter()
        .copied()
        .filter(|&t| t.saturating_add(seconds) >= now)
        .collect()
}

/// Before asking for a code: when RATE_LIMIT is already used up, counts the
/// attempt and refuses it, so nobody is asked for a code that cannot be
/// accepted. `None` when the attempt may go on to the prompt.
pub fn refuse_if_rate_limited(file: &mut SecretFile, now: u64) -> Option<Decision> {
    let limit = file.rate_limit()?;
    if attempts_in_interval(limit, now).len() < limit.attempts as usize {
        return None;
    }
    let mut changes = Changes::default();
    let verdict = count_attempt(file, now, &mut changes).map(|()| Accepted::Code);
    Some(Decision { verdict, changes })
}

/// Offsets from the expected time step that a window of `window` codes
/// accepts: 3 → -1..=1, 17 → -8..=8, 4 → -1..=2.
pub fn window_offsets(window: u32) -> std::ops::RangeInclusive<i64> {
    let window = i64::from(window.max(1));
    let before = window.saturating_sub(1) / 2;
    0i64.saturating_sub(before)..=window / 2
}

/// The counter in `candidates` whose code equals `code`. Every candidate is
/// computed and compared, so the time taken does not say which one matched.
fn find_counter(
    file: &SecretFile,
    code: u32,
    candidates: impl Iterator<Item = i64>,
) -> Option<u64> {
    matching_counter(file.secret(), code, candidates)
}

/// The window search of a login, alone: the first counter (or time step) in
/// `candidates` whose code for `secret` equals `code`, negative candidates
/// skipped, every candidate compared. No state changes (no used codes, rate
/// limit or skew learning): for callers that only ask whether a code is
/// right, such as the enrollment CLI's check.
pub fn matching_counter(
    secret: &crate::otp::Secret,
    code: u32,
    candidates: impl Iterator<Item = i64>,
) -> Option<u64> {
    // Keyed once for all candidates: half the SHA-1 work of keying per code.
    let key = HotpKey::new(secret);
    let mut found = None;
    for counter in candidates {
        let Ok(counter) = u64::try_from(counter) else {
            continue;
        };
        if codes_equal(key.code(counter), code) && found.is_none() {
            found = Some(counter);
        }
    }
    found
}

fn check_scratch_code(
    file: &mut SecretFile,
    code: u32,
    changes: &mut Changes,
) -> Result<Accepted, Rejected> {
    if file.remove_scratch_code(code) {
        changes.protective = true;
        Ok(Accepted::ScratchCode)
    } else {
        Err(Rejected::WrongScratchCode)
    }
}

/// Checks a code against the HOTP window. A miss does not move the counter
/// here: [`check_candidates`] does it once for the whole authentication.
fn check_counter_code(
    file: &mut SecretFile,
    code: u32,
    next: u64,
    window: u32,
    changes: &mut Changes,
) -> Result<Accepted, Rejected> {
    let start = i64::try_from(next).unwrap_or(i64::MAX);
    let candidates = (0..i64::from(window.max(1))).map(|i| start.saturating_add(i));
    match find_counter(file, code, candidates) {
        Some(counter) => {
            file.set_hotp_counter(counter.saturating_add(1));
            changes.protective = true;
            Ok(Accepted::Code)
        }
        None => Err(Rejected::WrongCode),
    }
}

/// Marks `counter` as used. `Err(Reused)` if it already was. A step `window`
/// or more behind `counter` is forgotten, as the file format's reference
/// module does (it can only come back into the window if the clock is set
/// back by more than that); steps ahead (the clock was set back) are all
/// kept, or turning the clock back would make them usable again.
fn mark_used(
    file: &mut SecretFile,
    counter: u64,
    window: u32,
    changes: &mut Changes,
) -> Result<(), Rejected> {
    let used = file.used_steps();
    if used.contains(&counter) {
        return Err(Rejected::Reused);
    }
    let mut kept: Vec<u64> = used
        .iter()
        .copied()
        .filter(|&step| step.saturating_add(u64::from(window)) > counter)
        .collect();
    kept.push(counter);
    file.set_used_steps(kept);
    changes.protective = true;
    Ok(())
}

fn check_time_code(
    file: &mut SecretFile,
    code: u32,
    now: u64,
    step_seconds: u32,
    options: &Options,
    changes: &mut Changes,
) -> Result<Accepted, Rejected> {
    let settings = file.settings();
    let current = time_step(now, step_seconds) as i64;
    let expected = current.saturating_add(settings.time_skew);
    let offsets = window_offsets(settings.window);
    let in_window = offsets.map(|o| expected.saturating_add(o));
    if let Some(counter) = find_counter(file, code, in_window) {
        if settings.disallow_reuse {
            mark_used(file, counter, settings.window, changes)?;
        }
        // A half-learned skew correction is left as it is: a later code far
        // off may still complete it, as in the file format's reference module.
        return Ok(Accepted::Code);
    }
    if !options.learn_skew {
        return Err(Rejected::WrongCode);
    }
    learn_skew(
        file,
        code,
        current,
        settings.disallow_reuse,
        settings.window,
        changes,
    )
}

/// The phone's clock may be off by more than the window. A code that matches
/// far from now is remembered with the skew it implies; once
/// [`SKEW_OBSERVATIONS_NEEDED`] codes typed in increasing time steps, at most
/// [`SKEW_OBSERVATION_MAX_GAP`] apart, agree within one step, their average
/// skew is adopted and the last code logs in. That
/// code is marked used like any other (DISALLOW_REUSE), so it cannot be
/// replayed a step later.
fn learn_skew(
    file: &mut SecretFile,
    code: u32,
    current: i64,
    disallow_reuse: bool,
    window: u32,
    changes: &mut Changes,
) -> Result<Accepted, Rejected> {
    let search = (-SKEW_SEARCH_STEPS..=SKEW_SEARCH_STEPS).map(|o| current.saturating_add(o));
    let Some(counter) = find_counter(file, code, search) else {
        return Err(Rejected::WrongCode);
    };
    let (Ok(counter_signed), Ok(step)) = (i64::try_from(counter), u64::try_from(current)) else {
        return Err(Rejected::WrongCode);
    };
    let skew = counter_signed.saturating_sub(current);
    let observation = SkewObservation { step, skew };
    // An observation no login could have written (its time step beyond
    // what a counter can be, or a skew beyond the search) is dropped.
    let mut observations: Vec<SkewObservation> = file
        .skew_observations()
        .iter()
        .copied()
        .filter(|o| {
            i64::try_from(o.step).is_ok()
                && o.skew.unsigned_abs() <= SKEW_SEARCH_STEPS.unsigned_abs()
        })
        .collect();
    changes.dropped_skew_observations = file
        .skew_observations()
        .len()
        .saturating_sub(observations.len());
    // The same far-off code typed again says nothing new: nothing changes.
    if observations.last().is_some_and(|last| {
        i128::from(last.step).checked_add(i128::from(last.skew)) == Some(i128::from(counter))
    }) {
        return Err(Rejected::SkewObserved);
    }
    // The last few observations are kept, as the file format's reference
    // module keeps them; they agree when they were typed close together in
    // increasing time steps and imply nearly the same skew.
    observations.push(observation);
    let keep_from = observations.len().saturating_sub(SKEW_OBSERVATIONS_NEEDED);
    observations.drain(..keep_from);
    let in_a_row = observations.windows(2).all(|pair| match pair {
        [earlier, later] => {
            later.step > earlier.step
                && later.step.saturating_sub(earlier.step) <= SKEW_OBSERVATION_MAX_GAP
        }
        _ => false,
    });
    let agreed = observations.len() == SKEW_OBSERVATIONS_NEEDED
        && in_a_row
        && observations
            .iter()
            .all(|o| o.skew.checked_sub(skew).is_some_and(|d| d.abs() <= 1));
    changes.bookkeeping = true;
    if !agreed {
        file.set_skew_observations(observations);
        return Err(Rejected::SkewObserved);
    }
    // Truncated toward zero, as the file format's other writers do.
    // In i128, three i64 values cannot overflow; their mean fits an i64.
    let sum: i128 = observations.iter().map(|o| i128::from(o.skew)).sum();
    let count = i128::try_from(observations.len()).unwrap_or(1).max(1);
    let skew = i64::try_from(sum.checked_div(count).unwrap_or(0)).unwrap_or(0);
    if disallow_reuse {
        if let Err(reused) = mark_used(file, counter, window, changes) {
            file.set_skew_observations(observations);
            return Err(reused);
        }
    }
    file.set_skew_observations(Vec::new());
    file.set_time_skew(skew);
    Ok(Accepted::CodeAfterSkewCorrection { skew_steps: skew })
}

/// Judges one attempt at time `now` (unix seconds) and updates `file` to
/// match. `input` is what the user typed.
pub fn check_attempt(file: &mut SecretFile, input: &[u8], now: u64, options: &Options) -> Decision {
    check_candidates(file, &[input], now, options, Pass::ONLY).decision
}

/// How one call of [`check_candidates`] fits into the whole
/// authentication, which may read a code from an earlier module's password
/// first and then from the prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    /// Count this attempt against RATE_LIMIT: once per authentication.
    pub count_attempt: bool,
    /// An earlier reading in this authentication missed the HOTP window.
    pub hotp_missed_before: bool,
    /// Another reading (the prompt) may still follow: a HOTP miss does not
    /// move the counter yet.
    pub more_to_come: bool,
}

impl Pass {
    /// The only reading of an authentication.
    pub const ONLY: Pass = Pass {
        count_attempt: true,
        hotp_missed_before: false,
        more_to_come: false,
    };
}

/// What [`check_candidates`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checked {
    pub decision: Decision,
    /// The index of the accepted candidate, if one was.
    pub candidate: Option<usize>,
    /// Whether a HOTP code missed the window in this authentication so far
    /// (the counter moves on once, at the end).
    pub hotp_missed: bool,
}

/// Judges one attempt that may carry its code in more than one way (a
/// password with a 6- or 8-digit code at its end): the candidates are tried
/// in order until one is accepted or one is refused for a reason other than
/// holding no valid code (see [`Rejected::lets_another_reading_try`]).
///
/// A HOTP code that misses the window moves the counter on by one, once per
/// authentication and only at its end (`pass.more_to_come` unset), unless
/// a HOTP code is accepted: as in the file format's reference module, the
/// counter then ends one past the code accepted, or one past where it was.
pub fn check_candidates(
    file: &mut SecretFile,
    candidates: &[&[u8]],
    now: u64,
    options: &Options,
    pass: Pass,
) -> Checked {
    let mut changes = Changes::default();
    let counter_before = match file.settings().mode {
        Mode::Counter { next } => Some(next),
        Mode::Time { .. } | Mode::ScratchOnly => None,
    };
    if pass.count_attempt {
        if let Err(limited) = count_attempt(file, now, &mut changes) {
            return Checked {
                decision: Decision {
                    verdict: Err(limited),
                    changes,
                },
                candidate: None,
                hotp_missed: pass.hotp_missed_before,
            };
        }
    }
    let mut hotp_missed = pass.hotp_missed_before;
    let mut verdict = Err(Rejected::Malformed(MalformedCode::Empty));
    let mut candidate = None;
    for (index, input) in candidates.iter().enumerate() {
        let checked = check_code(file, input, now, options, &mut changes);
        match checked {
            CodeCheck::Hotp(Ok(_)) => hotp_missed = false,
            CodeCheck::Hotp(Err(_)) => hotp_missed = true,
            CodeCheck::Other(_) => {}
        }
        verdict = checked.verdict();
        if verdict.is_ok() {
            candidate = Some(index);
            break;
        }
        if !verdict.is_err_and(|why| why.lets_another_reading_try()) {
            break;
        }
    }
    if let (true, false, true, Some(next)) = (
        hotp_missed,
        pass.more_to_come,
        options.advance_hotp_on_failure,
        counter_before,
    ) {
        file.set_hotp_counter(next.saturating_add(1));
        changes.protective = true;
    }
    Checked {
        decision: Decision { verdict, changes },
        candidate,
        hotp_missed,
    }
}

/// One code checked, and whether it was checked against the HOTP counter.
enum CodeCheck {
    Hotp(Result<Accepted, Rejected>),
    Other(Result<Accepted, Rejected>),
}

impl CodeCheck {
    fn verdict(&self) -> Result<Accepted, Rejected> {
        match self {
            CodeCheck::Hotp(verdict) | CodeCheck::Other(verdict) => *verdict,
        }
    }
}

fn check_code(
    file: &mut SecretFile,
    input: &[u8],
    now: u64,
    options: &Options,
    changes: &mut Changes,
) -> CodeCheck {
    let code = match Code::parse(input) {
        Ok(code) => code,
        Err(why) => return CodeCheck::Other(Err(Rejected::Malformed(why))),
    };
    match code {
        Code::Scratch(code) => CodeCheck::Other(check_scratch_code(file, code, changes)),
        Code::Otp(code) => {
            let settings = file.settings();
            match settings.mode {
                Mode::Counter { next } => CodeCheck::Hotp(check_counter_code(
                    file,
                    code,
                    next,
                    settings.window,
                    changes,
                )),
                Mode::Time { step_seconds } => CodeCheck::Other(check_time_code(
                    file,
                    code,
                    now,
                    step_seconds,
                    options,
                    changes,
                )),
                // Neither TOTP_AUTH nor a HOTP counter: only scratch codes work.
                Mode::ScratchOnly => CodeCheck::Other(Err(Rejected::WrongCode)),
            }
        }
    }
}

/// Counts a login attempt that needs no code (a grace-period login) against
/// the rate limit: the grace period never lets more attempts through than
/// RATE_LIMIT allows.
pub fn check_codeless_attempt(file: &mut SecretFile, now: u64) -> Decision {
    let mut changes = Changes::default();
    let verdict = count_attempt(file, now, &mut changes).map(|()| Accepted::GracePeriod);
    Decision { verdict, changes }
}

/// The remote host as it may be stored for the grace period: a host name or
/// an IPv4/IPv6 address. Anything else (white space, line breaks, `%` … any
/// byte outside that set) is refused: the host comes from the network side
/// and must never shape a line of the file.
pub fn grace_host(remote_host: &[u8]) -> Option<&str> {
    let allowed = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'_');
    if remote_host.is_empty()
        || remote_host.len() > MAX_GRACE_HOST_LEN
        || !remote_host.iter().all(allowed)
    {
        return None;
    }
    std::str::from_utf8(remote_host).ok()
}

/// Whether `host` logged in successfully less than `grace_seconds` ago.
pub fn in_grace_period(file: &SecretFile, host: &str, now: u64, grace_seconds: u64) -> bool {
    file.grace_logins().iter().any(|g| {
        g.host == host
            && now
                .checked_sub(g.time)
                .is_some_and(|ago| ago < grace_seconds)
    })
}

/// Remembers a successful login from `host` for the grace period, in the
/// host's slot or else the oldest one.
pub fn record_grace_login(file: &mut SecretFile, host: &str, now: u64) -> Changes {
    let logins = file.grace_logins();
    let slot = logins
        .iter()
        .find(|g| g.host == host)
        .map(|g| g.slot)
        .or_else(|| (0..GRACE_SLOTS).find(|s| !logins.iter().any(|g| g.slot == *s)))
        .or_else(|| logins.iter().min_by_key(|g| g.time).map(|g| g.slot))
        .unwrap_or(0);
    file.set_grace_login(GraceLogin {
        slot,
        host: host.to_owned(),
        time: now,
    });
    Changes {
        protective: false,
        bookkeeping: true,
        ..Changes::default()
    }
}

#[cfg(test)]
mod tests;
