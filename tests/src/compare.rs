//! Side by side: the same login against pam_totp and Google's module, each
//! on its own copy of the same secret file, at the same frozen time, and
//! what a user or a later module can see of each: the return code, every
//! conversation message (style and text), PAM_AUTHTOK as the next module
//! sees it, and the secret file as Google's module would read it.
//!
//! ```no_run
//! use pam_totp_tests::compare::{Attempt, Pair};
//! let pair = Pair::new("JBSWY3DPEHPK3PXP\n\" TOTP_AUTH\n");
//! let seen = pair.login(&Attempt::at(1_767_225_600).answer("123456"));
//! assert!(seen.differences().is_empty(), "{seen}");
//! ```

use crate::outcome::{AuthtokSeen, Outcome, PromptStyle};
use crate::scenario::{Clock, OutOfAnswers, Scenario};
use crate::system::Module;
use std::fmt;
use std::fs;

/// One login: when, with which extra options, what an earlier module left
/// in PAM_AUTHTOK, and what the user types.
#[derive(Clone, Debug)]
pub struct Attempt {
    pub at: u64,
    pub options: Vec<String>,
    pub first_pass: Option<String>,
    pub answers: Vec<String>,
    /// After the scripted answers: fail the conversation (true) or answer
    /// an empty line (false).
    pub conversation_fails: bool,
    pub rhost: Option<String>,
    pub user: Option<String>,
}

impl Attempt {
    pub fn at(unix: u64) -> Attempt {
        Attempt {
            at: unix,
            options: Vec::new(),
            first_pass: None,
            answers: Vec::new(),
            conversation_fails: true,
            rhost: None,
            user: None,
        }
    }

    pub fn option(mut self, option: impl Into<String>) -> Attempt {
        self.options.push(option.into());
        self
    }

    pub fn options(mut self, options: &[&str]) -> Attempt {
        self.options.extend(options.iter().map(|o| (*o).to_owned()));
        self
    }

    pub fn first_pass(mut self, password: impl Into<String>) -> Attempt {
        self.first_pass = Some(password.into());
        self
    }

    pub fn answer(mut self, answer: impl Into<String>) -> Attempt {
        self.answers.push(answer.into());
        self
    }

    pub fn rhost(mut self, host: impl Into<String>) -> Attempt {
        self.rhost = Some(host.into());
        self
    }

    pub fn user(mut self, user: impl Into<String>) -> Attempt {
        self.user = Some(user.into());
        self
    }
}

/// What one module did in one login.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    pub code: i32,
    pub code_name: String,
    /// Every conversation message: style and text.
    pub messages: Vec<(PromptStyle, String)>,
    pub authtok_after: AuthtokSeen,
    /// The file afterwards as Google's module reads it (see [`as_read`]);
    /// None if there is none.
    pub file: Option<String>,
    /// The file's bytes afterwards.
    pub raw_file: Option<Vec<u8>>,
}

impl Seen {
    fn from(outcome: &Outcome, raw_file: Option<Vec<u8>>, at: u64) -> Seen {
        Seen {
            code: outcome.code,
            code_name: outcome.code_name.clone(),
            messages: outcome
                .prompts
                .iter()
                .map(|p| (p.style, p.text.clone()))
                .collect(),
            authtok_after: outcome.authtok_after.clone().unwrap_or(AuthtokSeen::Unset),
            file: raw_file.as_deref().map(|bytes| as_read(bytes, at)),
            raw_file,
        }
    }
}

/// A way the two modules' logins differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Aspect {
    ReturnCode,
    Messages,
    Authtok,
    File,
}

/// Both modules' view of one login.
#[derive(Clone, Debug)]
pub struct Both {
    pub ours: Seen,
    pub google: Seen,
    /// The full outcomes, for messages.
    pub ours_outcome: Outcome,
    pub google_outcome: Outcome,
}

impl Both {
    /// The aspects in which pam_totp and Google's module differ.
    pub fn differences(&self) -> Vec<Aspect> {
        let mut found = Vec::new();
        if self.ours.code != self.google.code {
            found.push(Aspect::ReturnCode);
        }
        if self.ours.messages != self.google.messages {
            found.push(Aspect::Messages);
        }
        if self.ours.authtok_after != self.google.authtok_after {
            found.push(Aspect::Authtok);
        }
        if self.ours.file != self.google.file {
            found.push(Aspect::File);
        }
        found
    }
}

impl fmt::Display for Both {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, seen, outcome) in [
            ("pam_totp", &self.ours, &self.ours_outcome),
            ("Google", &self.google, &self.google_outcome),
        ] {
            writeln!(
                f,
                "--- {name}: {} {}, PAM_AUTHTOK after: {}",
                seen.code, seen.code_name, seen.authtok_after
            )?;
            for (style, text) in &seen.messages {
                writeln!(f, "  {style:?} {text:?}")?;
            }
            match &seen.file {
                Some(file) => writeln!(f, "  file as read:\n{file}")?,
                None => writeln!(f, "  no file")?,
            }
            for log in &outcome.logs {
                writeln!(f, "  log: {log}")?;
            }
        }
        Ok(())
    }
}

/// pam_totp and Google's module, each with its own copy of one secret file.
pub struct Pair {
    pub ours: Scenario,
    pub google: Scenario,
}

impl Pair {
    /// Both modules, the secret file (mode 0600) holding `contents`.
    pub fn new(contents: &str) -> Pair {
        let pair = Pair {
            ours: Scenario::new(Module::Ours),
            google: Scenario::new(Module::Google),
        };
        pair.write(contents);
        pair
    }

    /// Both modules, no secret file.
    pub fn without_file() -> Pair {
        Pair {
            ours: Scenario::new(Module::Ours),
            google: Scenario::new(Module::Google),
        }
    }

    /// Replaces both files.
    pub fn write(&self, contents: &str) {
        for scenario in [&self.ours, &self.google] {
            scenario.write_secret(contents);
        }
    }

    /// Writes both files with `mode`.
    pub fn write_with_mode(&self, contents: &[u8], mode: u32) {
        for scenario in [&self.ours, &self.google] {
            scenario.write_file_with_mode(&scenario.secret_path(), contents, mode);
        }
    }

    /// Changes both files the same way (e.g. appends a line), keeping each
    /// module's own rewrite of the rest.
    pub fn edit(&self, change: impl Fn(&str) -> String) {
        for scenario in [&self.ours, &self.google] {
            let now = fs::read_to_string(scenario.secret_path()).unwrap_or_default();
            scenario.write_secret(&change(&now));
        }
    }

    /// Runs `attempt` against both modules.
    pub fn login(&self, attempt: &Attempt) -> Both {
        let (ours_outcome, ours) = run(&self.ours, attempt);
        let (google_outcome, google) = run(&self.google, attempt);
        Both {
            ours,
            google,
            ours_outcome,
            google_outcome,
        }
    }
}

fn run(scenario: &Scenario, attempt: &Attempt) -> (Outcome, Seen) {
    let mut login = scenario.login().probe_authtok();
    login = login.clock(Clock::Frozen(attempt.at));
    for option in &attempt.options {
        login = login.option(option.as_str());
    }
    if let Some(password) = &attempt.first_pass {
        login = login.first_pass(password.as_str());
    }
    for answer in &attempt.answers {
        login = login.answer(answer.as_str());
    }
    login = login.when_out_of_answers(if attempt.conversation_fails {
        OutOfAnswers::Fail
    } else {
        OutOfAnswers::Empty
    });
    if let Some(host) = &attempt.rhost {
        login = login.rhost(host.as_str());
    }
    if let Some(user) = &attempt.user {
        login = login.user(user.as_str());
    }
    let outcome = login.run();
    let raw = fs::read(scenario.secret_path()).ok();
    let seen = Seen::from(&outcome, raw, attempt.at);
    (outcome, seen)
}

/// The secret file as Google's module reads it at `now`: the secret line,
/// the first value of each option it knows (an empty RESETTING_TIME_SKEW
/// is the same as none; DISALLOW_REUSE reduced to the steps that can still
/// matter), whether TOTP_AUTH appears, and the scratch codes it takes (the
/// leading run of scratch-code lines). Layout (order of lines, blank lines)
/// is left out: it changes nothing either module reads.
pub fn as_read(bytes: &[u8], now: u64) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut lines = text.split('\n');
    let secret = lines.next().unwrap_or("").trim_end_matches('\r').to_owned();
    let rest: Vec<&str> = lines.map(|l| l.trim_end_matches('\r')).collect();
    let value = |key: &str| -> Option<String> {
        rest.iter().find_map(|line| {
            let body = line.strip_prefix("\" ")?.strip_prefix(key)?;
            if body.is_empty() || body.starts_with([' ', '\t']) {
                Some(body.trim().to_owned())
            } else {
                None
            }
        })
    };
    let number = |key: &str, default: i64| -> i64 {
        value(key)
            .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
            .unwrap_or(default)
    };
    let mut out = format!("secret {secret}\n");
    out.push_str(&format!("TOTP_AUTH {}\n", text.contains("\" TOTP_AUTH")));
    for key in [
        "HOTP_COUNTER",
        "STEP_SIZE",
        "WINDOW_SIZE",
        "RATE_LIMIT",
        "TIME_SKEW",
    ] {
        if let Some(v) = value(key) {
            out.push_str(&format!("{key} {v}\n"));
        }
    }
    if let Some(v) = value("RESETTING_TIME_SKEW").filter(|v| !v.is_empty()) {
        out.push_str(&format!("RESETTING_TIME_SKEW {v}\n"));
    }
    if let Some(v) = value("DISALLOW_REUSE") {
        let step = i64::try_from(now).unwrap_or(i64::MAX) / number("STEP_SIZE", 30).max(1)
            + number("TIME_SKEW", 0);
        let window = number("WINDOW_SIZE", 3);
        let mut kept: Vec<i64> = v
            .split_whitespace()
            .filter_map(|s| s.parse().ok())
            .filter(|s: &i64| (s - step).abs() < window)
            .collect();
        kept.sort_unstable();
        out.push_str(&format!("DISALLOW_REUSE {kept:?}\n"));
    }
    for slot in 0..10 {
        if let Some(v) = value(&format!("LAST{slot}")) {
            out.push_str(&format!("LAST{slot} {v}\n"));
        }
    }
    let mut scratch = Vec::new();
    for line in &rest {
        if line.is_empty() || line.starts_with('"') {
            continue;
        }
        let trimmed = line.trim_start_matches([' ', '\t']);
        let digits = trimmed.strip_prefix('+').unwrap_or(trimmed);
        match digits.parse::<u64>() {
            Ok(code)
                if digits.bytes().all(|b| b.is_ascii_digit())
                    && (10_000_000..100_000_000).contains(&code) =>
            {
                scratch.push(code)
            }
            _ => break,
        }
    }
    out.push_str(&format!("scratch codes {scratch:?}\n"));
    out
}
