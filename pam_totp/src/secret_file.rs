//! The `~/.google_authenticator` file: parsing and writing it back.
//!
//! Layout (one item per line):
//! - line 1: the shared secret in base32;
//! - option lines, each `"` + space + KEYWORD [values]; when a keyword
//!   appears twice, the first line counts and the later ones are dropped on
//!   the next rewrite;
//! - emergency scratch codes: after line 1, every line that reads as a
//!   number from 10000000 to 99999999 (leading blanks, a `+` and leading
//!   zeros allowed), up to the first line that is neither a scratch code, an
//!   option line (any line starting with `"`) nor blank;
//! - anything else is kept, byte for byte, and otherwise ignored.
//!
//! Which codes work: a positive `HOTP_COUNTER` makes the file counter-based;
//! otherwise `TOTP_AUTH` makes it time-based; with neither, only scratch
//! codes work. These rules are those of the file format's reference module,
//! so that a file works the same with either.
//!
//! Lines that nobody changes are written back exactly as they were read, so a
//! file written by another tool survives a round trip unchanged. Every line is
//! held in wiping memory: scratch codes and the secret are in there.

use crate::otp::{Secret, SecretError};
use std::fmt;
use zeroize::Zeroizing;

/// Largest file the module reads; anything bigger is rejected as corrupt.
pub const MAX_FILE_SIZE: usize = 64 * 1024;
/// Scratch codes kept at most (the enrollment tool writes 5 and allows 10).
pub const MAX_SCRATCH_CODES: usize = 10;

pub const DEFAULT_STEP_SECONDS: u32 = 30;
pub const DEFAULT_WINDOW: u32 = 3;
pub const MAX_STEP_SECONDS: u32 = 60;
pub const MAX_WINDOW: u32 = 100;
pub const MAX_RATE_LIMIT_ATTEMPTS: u32 = 100;
pub const MAX_RATE_LIMIT_SECONDS: u32 = 3600;
/// Grace-period entries (`LAST0` … `LAST9`).
pub const GRACE_SLOTS: u8 = 10;

/// How codes are derived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// RFC 6238: the counter is the current time step.
    Time { step_seconds: u32 },
    /// RFC 4226: the counter is stored in the file and moves on with each use.
    Counter { next: u64 },
    /// Neither `TOTP_AUTH` nor a positive `HOTP_COUNTER`: only scratch codes
    /// log in.
    ScratchOnly,
}

/// `RATE_LIMIT attempts seconds [unix times of recent attempts]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimit {
    pub attempts: u32,
    pub seconds: u32,
    pub recent: Vec<u64>,
}

/// One remembered login for the grace period: host and unix time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraceLogin {
    pub slot: u8,
    pub host: String,
    pub time: u64,
}

/// A code seen far outside the window while the clock skew is re-learned:
/// the time step it was typed in and the skew (in steps) it implied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SkewObservation {
    pub step: u64,
    pub skew: i64,
}

/// The settings that drive verification, read off the option lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub mode: Mode,
    pub window: u32,
    pub disallow_reuse: bool,
    pub rate_limit: Option<(u32, u32)>,
    pub time_skew: i64,
}

impl fmt::Display for Settings {
    /// One line for `debug` logs, e.g. "time-based (30 s steps), window 3,
    /// reuse disallowed, rate limit 3 per 30 s, clock skew 0 steps".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.mode {
            Mode::Time { step_seconds } => write!(f, "time-based ({step_seconds} s steps)")?,
            Mode::Counter { .. } => f.write_str("counter-based")?,
            Mode::ScratchOnly => f.write_str("scratch codes only")?,
        }
        write!(f, ", window {}", self.window)?;
        f.write_str(if self.disallow_reuse {
            ", reuse disallowed"
        } else {
            ", reuse allowed"
        })?;
        match self.rate_limit {
            Some((attempts, seconds)) => write!(f, ", rate limit {attempts} per {seconds} s")?,
            None => f.write_str(", no rate limit")?,
        }
        write!(f, ", clock skew {} steps", self.time_skew)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    pub reason: ParseErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseErrorKind {
    Empty,
    TooLarge,
    Secret(SecretError),
    /// A known option with a value that is missing, not a number, or out of range.
    BadValue(&'static str),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.reason {
            ParseErrorKind::Empty => f.write_str("file is empty"),
            ParseErrorKind::TooLarge => {
                write!(f, "file is larger than {MAX_FILE_SIZE} bytes")
            }
            ParseErrorKind::Secret(err) => write!(f, "line {}: {err}", self.line),
            ParseErrorKind::BadValue(keyword) => {
                write!(f, "line {}: invalid value for {keyword}", self.line)
            }
        }
    }
}

impl std::error::Error for ParseError {}

#[derive(Clone)]
enum Kind {
    Totp,
    HotpCounter(u64),
    StepSize(u32),
    WindowSize(u32),
    DisallowReuse(Vec<u64>),
    RateLimit(RateLimit),
    TimeSkew(i64),
    ResettingTimeSkew(Vec<SkewObservation>),
    Grace(GraceLogin),
    Scratch(u32),
    /// A later line with a keyword seen before: ignored, and dropped when
    /// that keyword is next written. The keyword, and the slot for `LAST`.
    Shadowed(&'static str, Option<u8>),
    /// Unknown option, blank line, anything else: carried through untouched.
    Other,
}

impl Kind {
    /// The keyword for option lines, used to find duplicates and to update
    /// lines in place.
    fn keyword(&self) -> Option<&'static str> {
        Some(match self {
            Kind::Totp => "TOTP_AUTH",
            Kind::HotpCounter(_) => "HOTP_COUNTER",
            Kind::StepSize(_) => "STEP_SIZE",
            Kind::WindowSize(_) => "WINDOW_SIZE",
            Kind::DisallowReuse(_) => "DISALLOW_REUSE",
            Kind::RateLimit(_) => "RATE_LIMIT",
            Kind::TimeSkew(_) => "TIME_SKEW",
            Kind::ResettingTimeSkew(_) => "RESETTING_TIME_SKEW",
            Kind::Grace(_) => "LAST",
            Kind::Scratch(_) | Kind::Shadowed(..) | Kind::Other => return None,
        })
    }

    /// The keyword and `LAST` slot that identify an option line.
    fn identity(&self) -> Option<(&'static str, Option<u8>)> {
        match self {
            Kind::Grace(g) => Some(("LAST", Some(g.slot))),
            other => other.keyword().map(|k| (k, None)),
        }
    }

    /// The line as the module writes it (without line ending).
    fn render(&self) -> String {
        fn join<T: ToString>(head: &str, values: &[T]) -> String {
            let mut line = String::from(head);
            for value in values {
                line.push(' ');
                line.push_str(&value.to_string());
            }
            line
        }
        match self {
            Kind::Totp => "\" TOTP_AUTH".into(),
            Kind::HotpCounter(n) => format!("\" HOTP_COUNTER {n}"),
            Kind::StepSize(n) => format!("\" STEP_SIZE {n}"),
            Kind::WindowSize(n) => format!("\" WINDOW_SIZE {n}"),
            Kind::DisallowReuse(steps) => join("\" DISALLOW_REUSE", steps),
            Kind::RateLimit(r) => join(
                &format!("\" RATE_LIMIT {} {}", r.attempts, r.seconds),
                &r.recent,
            ),
            Kind::TimeSkew(n) => format!("\" TIME_SKEW {n}"),
            Kind::ResettingTimeSkew(obs) if obs.is_empty() => "\" RESETTING_TIME_SKEW ".into(),
            Kind::ResettingTimeSkew(obs) => {
                let items: Vec<String> = obs
                    .iter()
                    .map(|o| format!("{}{:+}", o.step, o.skew))
                    .collect();
                join("\" RESETTING_TIME_SKEW", &items)
            }
            Kind::Grace(g) => format!("\" LAST{} {} {}", g.slot, g.host, g.time),
            Kind::Scratch(code) => format!("{code:08}"),
            Kind::Shadowed(..) | Kind::Other => String::new(),
        }
    }
}

#[derive(Clone)]
struct Line {
    /// The bytes of the line without its `\n`.
    raw: Zeroizing<Vec<u8>>,
    kind: Kind,
}

impl Line {
    /// Empty, or only a `\r`.
    fn is_blank(&self) -> bool {
        self.raw.is_empty() || *self.raw == *b"\r"
    }
}

/// A parsed secret file. Cloning copies the wiping buffers.
#[derive(Clone)]
pub struct SecretFile {
    secret: Secret,
    secret_line: Zeroizing<Vec<u8>>,
    lines: Vec<Line>,
    ends_with_newline: bool,
    /// The line (1-based) that stopped the reading of scratch codes.
    scratch_stop: Option<usize>,
    /// A file being assembled ([`SecretFile::new`]) gets new option lines
    /// in the order they are set; a file read from disk gets them after
    /// line 1, where the reference module puts them.
    assembling: bool,
}

impl fmt::Debug for SecretFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretFile")
            .field("lines", &self.lines.len())
            .finish_non_exhaustive()
    }
}

fn parse_u64(text: &str) -> Option<u64> {
    // Digits only: no sign, no white space, no `+`.
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn parse_i64(text: &str) -> Option<i64> {
    match text.strip_prefix('-') {
        Some(rest) => parse_u64(rest)
            .and_then(|n| i64::try_from(n).ok())
            .and_then(i64::checked_neg),
        None => {
            parse_u64(text.strip_prefix('+').unwrap_or(text)).and_then(|n| i64::try_from(n).ok())
        }
    }
}

/// The value of `HOTP_COUNTER` as C's `strtol` reads it: an optional sign,
/// then digits up to the first other byte; no digits, or a value below 1,
/// give 0 (no counter). A value beyond `i64::MAX` (which no counter can
/// reach, and C's `strtol` would clamp) is `None`: a broken file.
fn leading_counter(text: &str) -> Option<u64> {
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let max = u64::try_from(i64::MAX).unwrap_or(u64::MAX);
    let mut value: u64 = 0;
    for digit in digits.bytes().take_while(u8::is_ascii_digit) {
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(digit.saturating_sub(b'0'))))?;
        if value > max {
            return None;
        }
    }
    Some(if negative { 0 } else { value })
}

/// A scratch-code line as the reference module reads one: optional leading
/// blanks, an optional `+`, digits (leading zeros allowed) and nothing
/// after them, with a value from 10000000 to 99999999.
fn google_scratch_code(content: &[u8]) -> Option<u32> {
    let start = content
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t' | b'\x0b' | b'\x0c'))?;
    let rest = content.get(start..)?;
    let digits = rest.strip_prefix(b"+").unwrap_or(rest);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut value: u64 = 0;
    for digit in digits {
        value = value
            .checked_mul(10)?
            .checked_add(u64::from(digit.saturating_sub(b'0')))?;
    }
    u32::try_from(value)
        .ok()
        .filter(|v| (10_000_000..=99_999_999).contains(v))
}

/// Which line stopped the reading of scratch codes, and how many lines
/// after it would have been scratch codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IgnoredScratchCodes {
    /// 1-based number of the line that stopped the reading.
    pub after_line: usize,
    /// Lines after it that hold a scratch code and therefore do not count.
    pub count: usize,
}

fn parse_in_range(text: &str, low: u32, high: u32) -> Option<u32> {
    parse_u64(text)
        .and_then(|n| u32::try_from(n).ok())
        .filter(|n| (low..=high).contains(n))
}

fn parse_skew_observation(text: &str) -> Option<SkewObservation> {
    let sign_at = text.find(['+', '-'])?;
    let step = parse_u64(&text[..sign_at])?;
    let skew = parse_i64(&text[sign_at..])?;
    Some(SkewObservation { step, skew })
}

/// Parses one option line's keyword and values. `None` for an unknown keyword
/// (the line is kept as is); `Err` names the keyword whose value is bad.
fn parse_option(body: &str) -> Option<Result<Kind, &'static str>> {
    let mut words = body.split_ascii_whitespace();
    let keyword = words.next()?;
    let values: Vec<&str> = words.collect();
    let single = |name: &'static str| match values.as_slice() {
        [value] => Ok(*value),
        _ => Err(name),
    };
    let kind = match keyword {
        "TOTP_AUTH" => {
            if values.is_empty() {
                Ok(Kind::Totp)
            } else {
                Err("TOTP_AUTH")
            }
        }
        // Read as the reference module reads it: a leading number, anything
        // else (or nothing) counting as 0, which is not a counter.
        "HOTP_COUNTER" => leading_counter(values.first().copied().unwrap_or(""))
            .map(Kind::HotpCounter)
            .ok_or("HOTP_COUNTER"),
        "STEP_SIZE" => single("STEP_SIZE")
            .and_then(|v| parse_in_range(v, 1, MAX_STEP_SECONDS).ok_or("STEP_SIZE"))
            .map(Kind::StepSize),
        "WINDOW_SIZE" => single("WINDOW_SIZE")
            .and_then(|v| parse_in_range(v, 1, MAX_WINDOW).ok_or("WINDOW_SIZE"))
            .map(Kind::WindowSize),
        "DISALLOW_REUSE" => values
            .iter()
            .map(|v| parse_u64(v))
            .collect::<Option<Vec<_>>>()
            .map(Kind::DisallowReuse)
            .ok_or("DISALLOW_REUSE"),
        "RATE_LIMIT" => (|| {
            let (attempts, seconds, recent) = match values.as_slice() {
                [a, s, rest @ ..] => (*a, *s, rest),
                _ => return None,
            };
            Some(Kind::RateLimit(RateLimit {
                attempts: parse_in_range(attempts, 1, MAX_RATE_LIMIT_ATTEMPTS)?,
                seconds: parse_in_range(seconds, 1, MAX_RATE_LIMIT_SECONDS)?,
                recent: recent.iter().map(|t| parse_u64(t)).collect::<Option<_>>()?,
            }))
        })()
        .ok_or("RATE_LIMIT"),
        "TIME_SKEW" => single("TIME_SKEW")
            .and_then(|v| parse_i64(v).ok_or("TIME_SKEW"))
            .map(Kind::TimeSkew),
        "RESETTING_TIME_SKEW" => values
            .iter()
            .map(|v| parse_skew_observation(v))
            .collect::<Option<Vec<_>>>()
            .map(Kind::ResettingTimeSkew)
            .ok_or("RESETTING_TIME_SKEW"),
        other => {
            let slot = other.strip_prefix("LAST")?;
            let slot = match slot.as_bytes() {
                [d @ b'0'..=b'9'] => d.saturating_sub(b'0'),
                _ => return None,
            };
            match values.as_slice() {
                [host, time] => parse_u64(time)
                    .map(|time| {
                        Kind::Grace(GraceLogin {
                            slot,
                            host: (*host).to_owned(),
                            time,
                        })
                    })
                    .ok_or("LAST"),
                _ => Err("LAST"),
            }
        }
    };
    Some(kind)
}

fn classify(raw: &[u8]) -> Result<Kind, &'static str> {
    // A Windows editor may leave `\r` before the `\n`; it is not part of a value.
    let content = raw.strip_suffix(b"\r").unwrap_or(raw);
    if let Some(body) = content.strip_prefix(b"\" ") {
        // Option values are ASCII; a line that is not is nobody's option.
        return match std::str::from_utf8(body).ok().and_then(parse_option) {
            Some(result) => result,
            None => Ok(Kind::Other),
        };
    }
    // Scratch codes depend on the lines before them: see `SecretFile::parse`.
    Ok(Kind::Other)
}

impl SecretFile {
    pub fn parse(bytes: &[u8]) -> Result<SecretFile, ParseError> {
        let error = |line, reason| ParseError { line, reason };
        if bytes.is_empty() {
            return Err(error(1, ParseErrorKind::Empty));
        }
        if bytes.len() > MAX_FILE_SIZE {
            return Err(error(1, ParseErrorKind::TooLarge));
        }
        let ends_with_newline = bytes.ends_with(b"\n");
        let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
        let mut raw_lines = body.split(|&b| b == b'\n');
        let secret_line = Zeroizing::new(raw_lines.next().unwrap_or_default().to_vec());
        let secret =
            Secret::from_base32(&secret_line).map_err(|e| error(1, ParseErrorKind::Secret(e)))?;

        let mut lines: Vec<Line> = Vec::new();
        let mut seen: Vec<(&'static str, Option<u8>)> = Vec::new();
        let mut reading_scratch_codes = true;
        let mut scratch_stop = None;
        for (index, raw) in raw_lines.enumerate() {
            let number = index.saturating_add(2);
            let content = raw.strip_suffix(b"\r").unwrap_or(raw);
            let mut kind = if content.is_empty() || content.starts_with(b"\"") {
                classify(raw).map_err(|k| error(number, ParseErrorKind::BadValue(k)))?
            } else if let Some(code) =
                google_scratch_code(content).filter(|_| reading_scratch_codes)
            {
                Kind::Scratch(code)
            } else {
                if reading_scratch_codes {
                    reading_scratch_codes = false;
                    scratch_stop = Some(number);
                }
                Kind::Other
            };
            if let Some(identity) = kind.identity() {
                if seen.contains(&identity) {
                    // The first line with a keyword is the one that counts.
                    kind = Kind::Shadowed(identity.0, identity.1);
                } else {
                    seen.push(identity);
                }
            }
            lines.push(Line {
                raw: Zeroizing::new(raw.to_vec()),
                kind,
            });
        }
        Ok(SecretFile {
            secret,
            secret_line,
            lines,
            ends_with_newline,
            scratch_stop,
            assembling: false,
        })
    }

    /// The file's bytes: unchanged lines as they were read, changed ones in
    /// the canonical form.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(
            self.lines
                .iter()
                .fold(self.secret_line.len(), |n, l| {
                    n.saturating_add(l.raw.len()).saturating_add(1)
                })
                .saturating_add(1),
        ));
        out.extend_from_slice(&self.secret_line);
        for line in &self.lines {
            out.push(b'\n');
            out.extend_from_slice(&line.raw);
        }
        if self.ends_with_newline {
            out.push(b'\n');
        }
        out
    }

    /// Builds a new file, as the enrollment tool writes it.
    pub fn new(secret: Secret) -> SecretFile {
        SecretFile {
            secret_line: Zeroizing::new(secret.to_base32().as_bytes().to_vec()),
            secret,
            lines: Vec::new(),
            ends_with_newline: true,
            scratch_stop: None,
            assembling: true,
        }
    }

    pub fn secret(&self) -> &Secret {
        &self.secret
    }

    fn find(&self, matches: impl Fn(&Kind) -> bool) -> Option<&Kind> {
        self.lines.iter().map(|l| &l.kind).find(|k| matches(k))
    }

    pub fn settings(&self) -> Settings {
        let hotp = self.find(|k| matches!(k, Kind::HotpCounter(_)));
        let step = match self.find(|k| matches!(k, Kind::StepSize(_))) {
            Some(Kind::StepSize(n)) => *n,
            _ => DEFAULT_STEP_SECONDS,
        };
        // A positive HOTP_COUNTER wins over TOTP_AUTH; with neither, only
        // scratch codes work.
        let totp = self.find(|k| matches!(k, Kind::Totp)).is_some();
        let mode = match hotp {
            Some(Kind::HotpCounter(next)) if *next > 0 => Mode::Counter { next: *next },
            _ if totp => Mode::Time { step_seconds: step },
            _ => Mode::ScratchOnly,
        };
        let window = match self.find(|k| matches!(k, Kind::WindowSize(_))) {
            Some(Kind::WindowSize(n)) => *n,
            _ => DEFAULT_WINDOW,
        };
        let rate_limit = match self.find(|k| matches!(k, Kind::RateLimit(_))) {
            Some(Kind::RateLimit(r)) => Some((r.attempts, r.seconds)),
            _ => None,
        };
        let time_skew = match self.find(|k| matches!(k, Kind::TimeSkew(_))) {
            Some(Kind::TimeSkew(n)) => *n,
            _ => 0,
        };
        Settings {
            mode,
            window,
            disallow_reuse: self.find(|k| matches!(k, Kind::DisallowReuse(_))).is_some(),
            rate_limit,
            time_skew,
        }
    }

    pub fn is_time_based(&self) -> bool {
        matches!(self.settings().mode, Mode::Time { .. })
    }

    /// Time steps already used, from `DISALLOW_REUSE`.
    pub fn used_steps(&self) -> &[u64] {
        match self.find(|k| matches!(k, Kind::DisallowReuse(_))) {
            Some(Kind::DisallowReuse(steps)) => steps,
            _ => &[],
        }
    }

    pub fn rate_limit(&self) -> Option<&RateLimit> {
        match self.find(|k| matches!(k, Kind::RateLimit(_))) {
            Some(Kind::RateLimit(r)) => Some(r),
            _ => None,
        }
    }

    pub fn skew_observations(&self) -> &[SkewObservation] {
        match self.find(|k| matches!(k, Kind::ResettingTimeSkew(_))) {
            Some(Kind::ResettingTimeSkew(obs)) => obs,
            _ => &[],
        }
    }

    pub fn grace_logins(&self) -> Vec<GraceLogin> {
        self.lines
            .iter()
            .filter_map(|l| match &l.kind {
                Kind::Grace(g) => Some(g.clone()),
                _ => None,
            })
            .collect()
    }

    pub fn scratch_codes(&self) -> impl Iterator<Item = u32> + '_ {
        self.lines.iter().filter_map(|l| match l.kind {
            Kind::Scratch(code) => Some(code),
            _ => None,
        })
    }

    /// Replaces the option line that `same` picks out with `kind`, in place,
    /// with the blank lines right after it (as the reference module does),
    /// and drops later lines with the same keyword. With no such line, adds
    /// it after line 1 and the blank lines that follow it.
    fn put(&mut self, kind: Kind, same: impl Fn(&Kind) -> bool) {
        let identity = kind.identity();
        let line = Line {
            raw: Zeroizing::new(kind.render().into_bytes()),
            kind,
        };
        self.lines.retain(|l| match (&l.kind, identity) {
            (Kind::Shadowed(key, slot), Some(id)) => (*key, *slot) != id,
            _ => true,
        });
        if let Some(at) = self.lines.iter().position(|l| same(&l.kind)) {
            let unchanged = self.lines.get(at).is_some_and(|l| *l.raw == *line.raw);
            if unchanged {
                return;
            }
            if let Some(existing) = self.lines.get_mut(at) {
                *existing = line;
            }
            let next = at.saturating_add(1);
            while self.lines.get(next).is_some_and(Line::is_blank) {
                self.lines.remove(next);
            }
            return;
        }
        let at = if self.assembling {
            self.lines
                .iter()
                .rposition(|l| l.kind.identity().is_some())
                .map_or(0, |i| i.saturating_add(1))
        } else {
            self.lines
                .iter()
                .position(|l| !l.is_blank())
                .unwrap_or(self.lines.len())
        };
        self.lines.insert(at, line);
    }

    fn remove(&mut self, same: impl Fn(&Kind) -> bool) {
        self.lines.retain(|l| !same(&l.kind));
    }

    pub fn set_time_based(&mut self) {
        self.put(Kind::Totp, |k| matches!(k, Kind::Totp));
    }

    pub fn set_hotp_counter(&mut self, next: u64) {
        self.put(Kind::HotpCounter(next), |k| {
            matches!(k, Kind::HotpCounter(_))
        });
    }

    pub fn set_step_size(&mut self, seconds: u32) {
        self.put(Kind::StepSize(seconds), |k| matches!(k, Kind::StepSize(_)));
    }

    pub fn set_window_size(&mut self, codes: u32) {
        self.put(Kind::WindowSize(codes), |k| {
            matches!(k, Kind::WindowSize(_))
        });
    }

    /// Turns reuse protection on (if it was not) and records `steps` as used.
    pub fn set_used_steps(&mut self, steps: Vec<u64>) {
        self.put(Kind::DisallowReuse(steps), |k| {
            matches!(k, Kind::DisallowReuse(_))
        });
    }

    pub fn set_rate_limit(&mut self, limit: RateLimit) {
        self.put(Kind::RateLimit(limit), |k| matches!(k, Kind::RateLimit(_)));
    }

    pub fn set_time_skew(&mut self, skew: i64) {
        self.put(Kind::TimeSkew(skew), |k| matches!(k, Kind::TimeSkew(_)));
    }

    /// Records the observations of a skew correction in progress. With none
    /// left, an existing line is emptied (`" RESETTING_TIME_SKEW `, as the
    /// reference module leaves it) and none is added.
    pub fn set_skew_observations(&mut self, observations: Vec<SkewObservation>) {
        let exists = self
            .find(|k| matches!(k, Kind::ResettingTimeSkew(_)))
            .is_some();
        if observations.is_empty() && !exists {
            return;
        }
        self.put(Kind::ResettingTimeSkew(observations), |k| {
            matches!(k, Kind::ResettingTimeSkew(_))
        });
    }

    /// Records a grace-period login. `host` must already be known safe to
    /// store (see [`crate::policy::grace_host`]).
    pub fn set_grace_login(&mut self, login: GraceLogin) {
        let slot = login.slot;
        self.put(
            Kind::Grace(login),
            |k| matches!(k, Kind::Grace(g) if g.slot == slot),
        );
    }

    /// Removes one line holding scratch code `code` (a file may list a code
    /// twice; each line is one use). Returns whether there was one. Every
    /// line is compared, so the time taken does not say which one matched.
    pub fn remove_scratch_code(&mut self, code: u32) -> bool {
        let mut found = None;
        for (index, line) in self.lines.iter().enumerate() {
            if let Kind::Scratch(c) = line.kind {
                if crate::otp::codes_equal(c, code) && found.is_none() {
                    found = Some(index);
                }
            }
        }
        let Some(index) = found else {
            return false;
        };
        self.lines.remove(index);
        // The reference module takes the blank lines after it too.
        while self.lines.get(index).is_some_and(Line::is_blank) {
            self.lines.remove(index);
        }
        true
    }

    /// Scratch codes written after the line that stops their reading (see
    /// the module documentation), which therefore do not work. `None` when
    /// every scratch-code line counts.
    pub fn ignored_scratch_codes(&self) -> Option<IgnoredScratchCodes> {
        let after_line = self.scratch_stop?;
        let count = self
            .lines
            .iter()
            .filter(|l| {
                let content = l.raw.strip_suffix(b"\r").unwrap_or(&l.raw);
                matches!(l.kind, Kind::Other) && google_scratch_code(content).is_some()
            })
            .count();
        (count > 0).then_some(IgnoredScratchCodes { after_line, count })
    }

    /// Replaces all scratch codes (enrollment and re-generation).
    pub fn set_scratch_codes(&mut self, codes: &[u32]) {
        self.remove(|k| matches!(k, Kind::Scratch(_)));
        for &code in codes {
            let kind = Kind::Scratch(code);
            self.lines.push(Line {
                raw: Zeroizing::new(kind.render().into_bytes()),
                kind,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &[u8] = b"JBSWY3DPEHPK3PXP\n\" RATE_LIMIT 3 30 1700000000\n\" WINDOW_SIZE 17\n\" DISALLOW_REUSE 56666666\n\" TOTP_AUTH\n12345678\n87654321\n";

    #[test]
    fn parses_a_typical_file() {
        let file = SecretFile::parse(SAMPLE).unwrap();
        assert_eq!(
            file.settings(),
            Settings {
                mode: Mode::Time { step_seconds: 30 },
                window: 17,
                disallow_reuse: true,
                rate_limit: Some((3, 30)),
                time_skew: 0,
            }
        );
        assert_eq!(file.used_steps(), &[56666666]);
        assert_eq!(file.rate_limit().unwrap().recent, vec![1700000000]);
        assert_eq!(
            file.scratch_codes().collect::<Vec<_>>(),
            vec![12345678, 87654321]
        );
    }

    #[test]
    fn round_trip_is_byte_exact() {
        let odd: &[u8] = b"jbsw y3dp ehpk 3pxp\r\n\" FUTURE_OPTION x y\n\n\xff\xfe garbage\n\" TOTP_AUTH\r\n00000001\n\" LAST0 host 5\n1234";
        for input in [SAMPLE, odd] {
            let file = SecretFile::parse(input).unwrap();
            assert_eq!(&*file.to_bytes(), input);
        }
    }

    #[test]
    fn updates_change_only_their_line() {
        let mut file = SecretFile::parse(SAMPLE).unwrap();
        file.set_used_steps(vec![56666666, 56666667]);
        assert!(file.remove_scratch_code(12345678));
        assert!(!file.remove_scratch_code(11111111));
        file.set_time_skew(-2);
        assert_eq!(
            &*file.to_bytes(),
            b"JBSWY3DPEHPK3PXP\n\" TIME_SKEW -2\n\" RATE_LIMIT 3 30 1700000000\n\" WINDOW_SIZE 17\n\" DISALLOW_REUSE 56666666 56666667\n\" TOTP_AUTH\n87654321\n"
        );
    }

    #[test]
    fn settings_describe_themselves() {
        let file = SecretFile::parse(SAMPLE).unwrap();
        assert_eq!(
            file.settings().to_string(),
            "time-based (30 s steps), window 17, reuse disallowed, rate limit 3 per 30 s, clock skew 0 steps"
        );
    }

    #[test]
    fn a_scratch_code_listed_twice_is_two_uses() {
        let mut file = SecretFile::parse(b"JBSWY3DPEHPK3PXP\n12345678\n12345678\n").unwrap();
        assert!(file.remove_scratch_code(12345678));
        assert_eq!(file.scratch_codes().collect::<Vec<_>>(), vec![12345678]);
        assert!(file.remove_scratch_code(12345678));
        assert!(!file.remove_scratch_code(12345678));
    }

    #[test]
    fn hotp_counter_takes_precedence() {
        let file =
            SecretFile::parse(b"JBSWY3DPEHPK3PXP\n\" TOTP_AUTH\n\" HOTP_COUNTER 7\n").unwrap();
        assert_eq!(file.settings().mode, Mode::Counter { next: 7 });
    }

    #[test]
    fn skew_observations_round_trip() {
        let mut file =
            SecretFile::parse(b"JBSWY3DPEHPK3PXP\n\" RESETTING_TIME_SKEW 100+5 101-3\n").unwrap();
        assert_eq!(
            file.skew_observations(),
            &[
                SkewObservation { step: 100, skew: 5 },
                SkewObservation {
                    step: 101,
                    skew: -3
                }
            ]
        );
        file.set_skew_observations(vec![SkewObservation { step: 7, skew: 0 }]);
        assert_eq!(
            &*file.to_bytes(),
            b"JBSWY3DPEHPK3PXP\n\" RESETTING_TIME_SKEW 7+0\n"
        );
        // Emptied, not removed, as the reference module leaves it.
        file.set_skew_observations(vec![]);
        assert_eq!(
            &*file.to_bytes(),
            b"JBSWY3DPEHPK3PXP\n\" RESETTING_TIME_SKEW \n"
        );
    }

    #[test]
    fn rejects_bad_values_with_line_numbers() {
        let cases: &[(&[u8], usize, ParseErrorKind)] = &[
            (b"", 1, ParseErrorKind::Empty),
            (
                b"!!!!\n",
                1,
                ParseErrorKind::Secret(SecretError::InvalidCharacter),
            ),
            (
                b"JBSWY3DPEHPK3PXP\n\" STEP_SIZE 0\n",
                2,
                ParseErrorKind::BadValue("STEP_SIZE"),
            ),
            (
                b"JBSWY3DPEHPK3PXP\n\" STEP_SIZE 61\n",
                2,
                ParseErrorKind::BadValue("STEP_SIZE"),
            ),
            (
                b"JBSWY3DPEHPK3PXP\n\" WINDOW_SIZE 101\n",
                2,
                ParseErrorKind::BadValue("WINDOW_SIZE"),
            ),
            (
                b"JBSWY3DPEHPK3PXP\n\" WINDOW_SIZE -3\n",
                2,
                ParseErrorKind::BadValue("WINDOW_SIZE"),
            ),
            (
                b"JBSWY3DPEHPK3PXP\n\n\" RATE_LIMIT 3\n",
                3,
                ParseErrorKind::BadValue("RATE_LIMIT"),
            ),
            (
                b"JBSWY3DPEHPK3PXP\n\" RATE_LIMIT 0 30\n",
                2,
                ParseErrorKind::BadValue("RATE_LIMIT"),
            ),
            (
                b"JBSWY3DPEHPK3PXP\n\" RATE_LIMIT 3 30 x\n",
                2,
                ParseErrorKind::BadValue("RATE_LIMIT"),
            ),
            (
                b"JBSWY3DPEHPK3PXP\n\" DISALLOW_REUSE 1 two\n",
                2,
                ParseErrorKind::BadValue("DISALLOW_REUSE"),
            ),
        ];
        for (input, line, reason) in cases {
            let err = SecretFile::parse(input).unwrap_err();
            assert_eq!(
                (err.line, &err.reason),
                (*line, reason),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
        let big = vec![b'A'; MAX_FILE_SIZE + 1];
        assert_eq!(
            SecretFile::parse(&big).unwrap_err().reason,
            ParseErrorKind::TooLarge
        );
    }

    #[test]
    fn new_file_has_canonical_secret() {
        let secret = Secret::from_bytes(vec![0u8; 20]);
        let mut file = SecretFile::new(secret);
        file.set_time_based();
        file.set_scratch_codes(&[10000000, 99999999]);
        assert_eq!(
            &*file.to_bytes(),
            b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n\" TOTP_AUTH\n10000000\n99999999\n"
        );
    }

    #[test]
    fn a_repeated_keyword_counts_once_and_goes_on_the_next_write() {
        let mut file = SecretFile::parse(
            b"JBSWY3DPEHPK3PXP\n\" TOTP_AUTH\n\" WINDOW_SIZE 5\n\" WINDOW_SIZE 17\n\" LAST1 a 1\n\" LAST1 b 2\n",
        )
        .unwrap();
        assert_eq!(file.settings().window, 5);
        assert_eq!(file.grace_logins().len(), 1);
        file.set_window_size(7);
        assert_eq!(
            &*file.to_bytes(),
            b"JBSWY3DPEHPK3PXP\n\" TOTP_AUTH\n\" WINDOW_SIZE 7\n\" LAST1 a 1\n\" LAST1 b 2\n"
        );
    }

    #[test]
    fn which_codes_a_file_takes() {
        let mode = |text: &str| SecretFile::parse(text.as_bytes()).unwrap().settings().mode;
        let time = Mode::Time { step_seconds: 30 };
        assert_eq!(mode("JBSWY3DPEHPK3PXP\n12345678\n"), Mode::ScratchOnly);
        assert_eq!(mode("JBSWY3DPEHPK3PXP\n\" TOTP_AUTH\n"), time);
        assert_eq!(
            mode("JBSWY3DPEHPK3PXP\n\" TOTP_AUTH\n\" HOTP_COUNTER 0\n"),
            time
        );
        assert_eq!(
            mode("JBSWY3DPEHPK3PXP\n\" HOTP_COUNTER 0\n"),
            Mode::ScratchOnly
        );
        assert_eq!(
            mode("JBSWY3DPEHPK3PXP\n\" HOTP_COUNTER 5x\n"),
            Mode::Counter { next: 5 }
        );
        assert_eq!(
            mode("JBSWY3DPEHPK3PXP\n\" TOTP_AUTH\n\" HOTP_COUNTER abc\n"),
            time
        );
        // Beyond what a counter can reach: a broken file (issue 14).
        assert!(
            SecretFile::parse(b"JBSWY3DPEHPK3PXP\n\" HOTP_COUNTER 99999999999999999999999\n")
                .is_err()
        );
        assert!(
            SecretFile::parse(b"JBSWY3DPEHPK3PXP\n\" HOTP_COUNTER 9223372036854775808\n").is_err()
        );
        assert_eq!(
            mode("JBSWY3DPEHPK3PXP\n\" HOTP_COUNTER 9223372036854775807\n"),
            Mode::Counter {
                next: u64::try_from(i64::MAX).unwrap()
            }
        );
    }

    #[test]
    fn scratch_code_lines_as_the_reference_module_reads_them() {
        let codes = |text: &str| {
            SecretFile::parse(text.as_bytes())
                .unwrap()
                .scratch_codes()
                .collect::<Vec<_>>()
        };
        let head = "JBSWY3DPEHPK3PXP\n\" TOTP_AUTH\n";
        assert_eq!(codes(&format!("{head}  12345678\n")), [12345678]);
        assert_eq!(codes(&format!("{head}+12345678\n")), [12345678]);
        assert_eq!(codes(&format!("{head}012345678\n")), [12345678]);
        assert_eq!(codes(&format!("{head}01234567\n")), [0u32; 0]);
        assert_eq!(codes(&format!("{head}-12345678\n")), [0u32; 0]);
        assert_eq!(codes(&format!("{head}12345678 \n")), [0u32; 0]);
        assert_eq!(
            codes(&format!("{head}11111111\n\n22222222\r\n\" X\n33333333")),
            [11111111, 22222222, 33333333]
        );
        let stopped = format!("{head}11111111\ngarbage\n22222222\n33333333\n");
        assert_eq!(codes(&stopped), [11111111]);
        let file = SecretFile::parse(stopped.as_bytes()).unwrap();
        assert_eq!(
            file.ignored_scratch_codes(),
            Some(IgnoredScratchCodes {
                after_line: 4,
                count: 2
            })
        );
        let fine = SecretFile::parse(format!("{head}11111111\n").as_bytes()).unwrap();
        assert_eq!(fine.ignored_scratch_codes(), None);
    }

    #[test]
    fn a_used_scratch_code_takes_the_blank_lines_after_it() {
        let mut file =
            SecretFile::parse(b"JBSWY3DPEHPK3PXP\n\" TOTP_AUTH\n11111111\n\n\n22222222\n").unwrap();
        assert!(file.remove_scratch_code(11111111));
        assert_eq!(
            &*file.to_bytes(),
            b"JBSWY3DPEHPK3PXP\n\" TOTP_AUTH\n22222222\n"
        );
    }

    #[test]
    fn new_options_go_after_line_one() {
        let mut file = SecretFile::parse(b"JBSWY3DPEHPK3PXP\n\" TOTP_AUTH\n").unwrap();
        file.set_time_skew(3);
        assert_eq!(
            &*file.to_bytes(),
            b"JBSWY3DPEHPK3PXP\n\" TIME_SKEW 3\n\" TOTP_AUTH\n"
        );
    }
}
