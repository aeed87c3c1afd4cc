//! The code check before writing: the user types the code the app shows
//! until it is right, skips the check (`-1`, as google-authenticator takes
//! it) or cancels (end of input). A wrong answer never ends the enrollment:
//! the user has scanned the QR code, and starting over would leave a dead
//! entry in the app. Each wrong answer is explained.

use crate::error::Error;
use crate::prompt::Prompter;
use pam_totp::otp::{time_step, Code, MalformedCode, Secret};
use pam_totp::policy::{matching_counter, window_offsets, SKEW_SEARCH_STEPS};
use std::io::Write;

/// google-authenticator's prompt, kept word for word for the scripts that
/// wait for it.
pub const CODE_PROMPT: &str = "Enter code from app (-1 to skip): ";
/// Typed at the prompt, shows the key and the key URI.
pub const SHOW_KEY_ANSWERS: [&str; 2] = ["k", "key"];

/// What the check is made against: the new secret and the time-based
/// settings the module will use (window as the flags set it, or the
/// module's default: choosing a wider one later only widens it).
pub struct CodeCheck<'a> {
    pub secret: &'a Secret,
    pub step_seconds: u32,
    pub window: u32,
}

/// One answer at the code prompt, judged.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    /// The code a login would accept now.
    Confirmed,
    /// `-1` (any negative number, as google-authenticator reads it).
    Skipped,
    /// `k`: show the key again.
    ShowKey,
    /// An empty line: ask again, say nothing.
    Nothing,
    /// Not right; the text says why and what to do.
    Wrong(String),
}

impl CodeCheck<'_> {
    /// Judges `answer` at unix time `now`. Accepts exactly what a login
    /// would: six digits, surrounding blanks ignored, in the window.
    pub fn judge(&self, answer: &str, now: u64) -> Reply {
        let answer = answer.trim();
        if answer.is_empty() {
            return Reply::Nothing;
        }
        if SHOW_KEY_ANSWERS.contains(&answer.to_ascii_lowercase().as_str()) {
            return Reply::ShowKey;
        }
        if let Some(digits) = answer.strip_prefix('-') {
            if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
                return Reply::Skipped;
            }
        }
        match Code::parse(answer.as_bytes()) {
            Ok(Code::Otp(code)) => self.judge_code(code, now),
            Ok(Code::Scratch(_)) => Reply::Wrong(
                "That is 8 digits; the app shows 6. (Scratch codes are for logins \
                 without the phone, and are shown once the file is written.)"
                    .to_owned(),
            ),
            Err(MalformedCode::WrongLength) => {
                Reply::Wrong(format!("That is {} digits; the app shows 6.", answer.len()))
            }
            Err(MalformedCode::NotDigits | MalformedCode::Empty) => {
                let digits: String = answer
                    .chars()
                    .filter(|c| !matches!(c, ' ' | '-' | '\t'))
                    .collect();
                if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
                    Reply::Wrong(
                        "Type the digits without spaces or dashes, as at a login.".to_owned(),
                    )
                } else {
                    Reply::Wrong(
                        "That is not a number: type the 6 digits the app shows \
                         (-1 skips the check, k shows the key)."
                            .to_owned(),
                    )
                }
            }
        }
    }

    fn judge_code(&self, code: u32, now: u64) -> Reply {
        let current = time_step(now, self.step_seconds);
        let steps = |offsets: std::ops::RangeInclusive<i64>| {
            offsets.map(move |o| (current as i64).saturating_add(o))
        };
        if matching_counter(self.secret, code, steps(window_offsets(self.window))).is_some() {
            return Reply::Confirmed;
        }
        // The right secret at another time: the clocks disagree.
        let wide = -SKEW_SEARCH_STEPS..=SKEW_SEARCH_STEPS;
        if let Some(step) = matching_counter(self.secret, code, steps(wide)) {
            let off = (step as i64 - current as i64) * i64::from(self.step_seconds);
            let size = duration(off.unsigned_abs());
            let (when, direction) = if off > 0 {
                (format!("will be right in {size}"), "ahead of")
            } else {
                (format!("was right {size} ago"), "behind")
            };
            return Reply::Wrong(format!(
                "That code {when}: the phone's clock is about {size} {direction} \
                 this computer's. Set both to the network time and type the code the app \
                 shows then."
            ));
        }
        Reply::Wrong(
            "That code does not match: check that the app entry is the one just scanned \
             (not an older one), and type the code it shows now."
                .to_owned(),
        )
    }

    /// Asks until the code is right, skipped or the input ends
    /// ([`Error::Cancelled`]). `show_key` prints the key on request.
    pub fn ask(
        &self,
        prompter: &mut Prompter<'_>,
        now: impl Fn() -> u64,
        show_key: impl Fn(&mut dyn Write) -> Result<(), Error>,
    ) -> Result<(), Error> {
        loop {
            let Some(answer) = prompter.line(CODE_PROMPT)? else {
                return Err(Error::Cancelled);
            };
            match self.judge(&answer, now()) {
                Reply::Confirmed => {
                    writeln!(prompter.output(), "Code confirmed")?;
                    return Ok(());
                }
                Reply::Skipped => {
                    writeln!(prompter.output(), "Code confirmation skipped")?;
                    return Ok(());
                }
                Reply::ShowKey => show_key(prompter.output())?,
                Reply::Nothing => {}
                Reply::Wrong(why) => writeln!(prompter.output(), "{why}")?,
            }
        }
    }
}

/// Seconds as people say them: "40 s", "3 min", "2 h 5 min".
fn duration(seconds: u64) -> String {
    match seconds {
        0..=119 => format!("{seconds} s"),
        120..=7199 => format!("{} min", (seconds + 30) / 60),
        _ => format!("{} h {} min", seconds / 3600, (seconds % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pam_totp::otp::hotp;

    const NOW: u64 = 1_700_000_015;

    fn secret() -> Secret {
        Secret::from_bytes(b"12345678901234567890".to_vec())
    }

    fn code_at(offset_steps: i64) -> String {
        let step = (NOW / 30) as i64 + offset_steps;
        format!("{:06}", hotp(&secret(), step as u64))
    }

    fn judge(answer: &str, window: u32) -> Reply {
        let secret = secret();
        CodeCheck {
            secret: &secret,
            step_seconds: 30,
            window,
        }
        .judge(answer, NOW)
    }

    fn wrong(answer: &str) -> String {
        match judge(answer, 3) {
            Reply::Wrong(why) => why,
            other => panic!("{answer:?}: {other:?}"),
        }
    }

    #[test]
    fn accepts_what_a_login_accepts() {
        assert_eq!(judge(&code_at(0), 3), Reply::Confirmed);
        assert_eq!(judge(&format!(" {}\t", code_at(-1)), 3), Reply::Confirmed);
        assert_eq!(judge(&code_at(1), 3), Reply::Confirmed);
        assert_ne!(judge(&code_at(2), 3), Reply::Confirmed);
        assert_eq!(judge(&code_at(-8), 17), Reply::Confirmed);
        assert_ne!(judge(&code_at(1), 1), Reply::Confirmed);
    }

    #[test]
    fn skip_key_and_empty() {
        assert_eq!(judge("-1", 3), Reply::Skipped);
        assert_eq!(judge(" -1 ", 3), Reply::Skipped);
        assert_eq!(judge("-20", 3), Reply::Skipped);
        assert_eq!(judge("k", 3), Reply::ShowKey);
        assert_eq!(judge("KEY", 3), Reply::ShowKey);
        assert_eq!(judge("", 3), Reply::Nothing);
        assert_eq!(judge("  ", 3), Reply::Nothing);
    }

    #[test]
    fn explains_what_was_wrong() {
        let right = code_at(0);
        let spaced = format!("{} {}", &right[..3], &right[3..]);
        assert!(
            wrong(&spaced).contains("without spaces"),
            "{}",
            wrong(&spaced)
        );
        let dashed = format!("{}-{}", &right[..3], &right[3..]);
        assert!(wrong(&dashed).contains("without spaces or dashes"));
        assert!(wrong("abc").contains("not a number"));
        assert!(wrong("-").contains("not a number"));
        assert!(wrong("12345").contains("5 digits; the app shows 6"));
        assert!(wrong("12345678").contains("8 digits"));
        assert!(wrong("1234567").contains("7 digits"));
        // Ten minutes off: a clock problem, with its size and direction.
        let ahead = wrong(&code_at(20));
        assert!(ahead.contains("10 min ahead of"), "{ahead}");
        let behind = wrong(&code_at(-3));
        assert!(behind.contains("90 s behind"), "{behind}");
        let hours = wrong(&code_at(-2 * 120 - 4));
        assert!(hours.contains("2 h 2 min behind"), "{hours}");
    }

    #[test]
    fn a_code_of_another_secret_is_no_clock_problem() {
        let other = Secret::from_bytes(vec![7; 20]);
        let code = format!("{:06}", hotp(&other, NOW / 30));
        // (A chance match within 25 h is possible for some secrets; not this one.)
        assert!(wrong(&code).contains("does not match"), "{}", wrong(&code));
    }

    #[test]
    fn asks_until_right_skipped_or_cancelled() {
        let secret = secret();
        let check = CodeCheck {
            secret: &secret,
            step_seconds: 30,
            window: 3,
        };
        let run = |input: &str| {
            let mut reader = input.as_bytes();
            let mut output = Vec::new();
            let result = check.ask(
                &mut Prompter::new(&mut reader, &mut output),
                || NOW,
                |out| Ok(writeln!(out, "KEY SHOWN")?),
            );
            (result, String::from_utf8(output).unwrap())
        };
        // Many wrong answers never end it.
        let input = format!("{}{}\n", "000000\n".repeat(10), code_at(0));
        let (result, text) = run(&input);
        result.unwrap();
        assert_eq!(text.matches(CODE_PROMPT).count(), 11);
        assert!(text.ends_with("Code confirmed\n"), "{text}");
        let (result, text) = run("k\n-1\n");
        result.unwrap();
        assert!(text.contains("KEY SHOWN\n") && text.ends_with("Code confirmation skipped\n"));
        let (result, _) = run("000000\n");
        assert!(matches!(result, Err(Error::Cancelled)));
    }
}
