//! What one authentication did, read back from pam-driver's report and the
//! syslog capture file.

use std::fmt;

/// Return codes of `<security/_pam_types.h>` the tests compare against.
pub mod code {
    pub const PAM_SUCCESS: i32 = 0;
    pub const PAM_SERVICE_ERR: i32 = 3;
    pub const PAM_SYSTEM_ERR: i32 = 4;
    pub const PAM_PERM_DENIED: i32 = 6;
    pub const PAM_AUTH_ERR: i32 = 7;
    pub const PAM_AUTHINFO_UNAVAIL: i32 = 9;
    pub const PAM_USER_UNKNOWN: i32 = 10;
    pub const PAM_MAXTRIES: i32 = 11;
    pub const PAM_CONV_ERR: i32 = 19;
    pub const PAM_IGNORE: i32 = 25;
    pub const PAM_ABORT: i32 = 26;
    pub const PAM_BAD_ITEM: i32 = 29;
}

/// How a conversation message was shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PromptStyle {
    /// PAM_PROMPT_ECHO_OFF: a hidden answer (codes, passwords).
    EchoOff,
    /// PAM_PROMPT_ECHO_ON: a visible answer.
    EchoOn,
    /// PAM_ERROR_MSG: shown, no answer.
    Error,
    /// PAM_TEXT_INFO: shown, no answer.
    Info,
    /// Any other style number (binary prompts, radio types).
    Other(i32),
}

impl PromptStyle {
    fn parse(field: &str) -> Option<PromptStyle> {
        Some(match field {
            "echo_off" => PromptStyle::EchoOff,
            "echo_on" => PromptStyle::EchoOn,
            "error" => PromptStyle::Error,
            "info" => PromptStyle::Info,
            other => PromptStyle::Other(other.strip_prefix("style_")?.parse().ok()?),
        })
    }

    /// Whether the user is asked to type something.
    pub fn expects_answer(self) -> bool {
        matches!(self, PromptStyle::EchoOff | PromptStyle::EchoOn)
    }
}

/// One message the module sent through the conversation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prompt {
    pub style: PromptStyle,
    /// The text, decoded lossily as UTF-8.
    pub text: String,
}

/// How the driver answered one prompt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// The scripted answer with this index (from 0).
    Scripted(usize),
    /// Out of answers: answered with "".
    Empty,
    /// Out of answers: failed the conversation.
    Refused,
}

/// One message a module logged, as caught by the syslog capture shim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    /// Syslog priority, 0 (LOG_EMERG) to 7 (LOG_DEBUG).
    pub priority: u8,
    /// Syslog facility number (LOG_AUTHPRIV is 10).
    pub facility: u32,
    /// The `openlog` ident: `<service>(pam_google_authenticator)` for
    /// Google's module, empty for pam_syslog (libpam puts
    /// `<module>(<service>:auth): ` at the start of the message instead).
    pub ident: String,
    pub message: String,
}

impl fmt::Display for LogLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{}> ", self.priority)?;
        if !self.ident.is_empty() {
            write!(f, "{}: ", self.ident)?;
        }
        f.write_str(&self.message)
    }
}

/// PAM_AUTHTOK as the next module in the stack sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthtokSeen {
    Unset,
    Set(Vec<u8>),
}

impl AuthtokSeen {
    /// Reads the probe module's record: `unset` or `set HEX`.
    pub fn parse(record: &str) -> Option<AuthtokSeen> {
        let record = record.trim_end_matches('\n');
        if record == "unset" {
            return Some(AuthtokSeen::Unset);
        }
        let hex = record.strip_prefix("set ")?;
        if hex.len() % 2 != 0 {
            return None;
        }
        (0..hex.len())
            .step_by(2)
            .map(|i| {
                hex.get(i..i + 2)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
            })
            .collect::<Option<Vec<u8>>>()
            .map(AuthtokSeen::Set)
    }
}

impl fmt::Display for AuthtokSeen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthtokSeen::Unset => f.write_str("unset"),
            AuthtokSeen::Set(value) => write!(f, "{:?}", String::from_utf8_lossy(value)),
        }
    }
}

/// The result of one run of pam-driver.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// pam_authenticate's return code (see [`code`]).
    pub code: i32,
    /// Its name, e.g. `PAM_AUTH_ERR`.
    pub code_name: String,
    /// Every conversation message, in order.
    pub prompts: Vec<Prompt>,
    /// How each prompt that wanted an answer was answered, in order.
    pub answers: Vec<Answer>,
    /// `(name, return code)` of each pam_set_item the driver made.
    pub set_items: Vec<(String, i32)>,
    /// The failure delay (µs) the modules asked for with pam_fail_delay, 0
    /// if none; the driver never sleeps it. None if libpam did not call the
    /// delay function.
    pub fail_delay_usec: Option<u64>,
    /// pam_setcred's return code, when it was asked for.
    pub setcred: Option<i32>,
    /// PAM_AUTHTOK after authentication, when asked for and set.
    pub authtok: Option<String>,
    /// What the probe module after the module under test saw as
    /// PAM_AUTHTOK (`Login::probe_authtok`); None without the probe.
    pub authtok_after: Option<AuthtokSeen>,
    /// What the modules logged (see [`LogLine`]).
    pub logs: Vec<LogLine>,
    /// The driver's raw report and its standard error (pam_wrapper's own
    /// messages appear there with `PAM_WRAPPER_DEBUGLEVEL`).
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    /// Whether pam_authenticate returned PAM_SUCCESS.
    pub fn success(&self) -> bool {
        self.code == code::PAM_SUCCESS
    }

    /// The prompts that asked for an answer.
    pub fn questions(&self) -> Vec<&Prompt> {
        self.prompts
            .iter()
            .filter(|p| p.style.expects_answer())
            .collect()
    }

    /// All log messages, one per line, for `contains` checks.
    pub fn log_text(&self) -> String {
        let lines: Vec<String> = self.logs.iter().map(ToString::to_string).collect();
        lines.join("\n")
    }

    /// Parses pam-driver's report (see the driver's documentation).
    pub fn parse(stdout: &str) -> Result<Outcome, String> {
        let mut outcome = Outcome {
            stdout: stdout.to_owned(),
            ..Outcome::default()
        };
        let mut authenticated = false;
        for line in stdout.lines() {
            let fields: Vec<&str> = line.split('\t').collect();
            let bad = || format!("unexpected driver record {line:?}");
            match fields.as_slice() {
                ["start", rc, name] => {
                    let rc = number(rc).ok_or_else(bad)?;
                    if rc != code::PAM_SUCCESS {
                        return Err(format!("pam_start failed: {rc} {name}"));
                    }
                }
                ["set_item", item, rc, _] => {
                    outcome
                        .set_items
                        .push(((*item).to_owned(), number(rc).ok_or_else(bad)?));
                }
                ["prompt", style, text] => outcome.prompts.push(Prompt {
                    style: PromptStyle::parse(style).ok_or_else(bad)?,
                    text: lossy(&unescape(text)),
                }),
                ["answer", "empty"] => outcome.answers.push(Answer::Empty),
                ["answer", "refused"] => outcome.answers.push(Answer::Refused),
                ["answer", index] => outcome
                    .answers
                    .push(Answer::Scripted(index.parse().map_err(|_| bad())?)),
                ["fail_delay", _, usec] => {
                    outcome.fail_delay_usec = Some(usec.parse().map_err(|_| bad())?);
                }
                ["authenticate", rc, name] => {
                    outcome.code = number(rc).ok_or_else(bad)?;
                    outcome.code_name = (*name).to_owned();
                    authenticated = true;
                }
                ["setcred", rc, _] => outcome.setcred = Some(number(rc).ok_or_else(bad)?),
                ["authtok", "unset"] => outcome.authtok = None,
                ["authtok", _source, text] => outcome.authtok = Some(lossy(&unescape(text))),
                ["end", _, _] => {}
                _ => return Err(bad()),
            }
        }
        if !authenticated {
            return Err("the driver did not report pam_authenticate's result".to_owned());
        }
        Ok(outcome)
    }
}

impl fmt::Display for Outcome {
    /// A readable account for assertion messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "pam_authenticate: {} {}", self.code, self.code_name)?;
        for (prompt, answer) in self.prompts.iter().zip(answer_slots(self)) {
            write!(f, "  {:?} {:?}", prompt.style, prompt.text)?;
            match answer {
                Some(answer) => writeln!(f, " -> {answer:?}")?,
                None => writeln!(f)?,
            }
        }
        if let Some(authtok) = &self.authtok {
            writeln!(f, "  PAM_AUTHTOK after: {authtok:?}")?;
        }
        if let Some(seen) = &self.authtok_after {
            writeln!(f, "  PAM_AUTHTOK seen by the next module: {seen}")?;
        }
        if !self.logs.is_empty() {
            writeln!(f, "logs:")?;
            for log in &self.logs {
                writeln!(f, "  {log}")?;
            }
        }
        if !self.stderr.trim().is_empty() {
            writeln!(f, "stderr:\n{}", self.stderr.trim_end())?;
        }
        Ok(())
    }
}

/// The answer given to each prompt (None for messages).
fn answer_slots(outcome: &Outcome) -> Vec<Option<Answer>> {
    let mut answers = outcome.answers.iter();
    outcome
        .prompts
        .iter()
        .map(|p| {
            if p.style.expects_answer() {
                answers.next().copied()
            } else {
                None
            }
        })
        .collect()
}

fn number(field: &str) -> Option<i32> {
    field.parse().ok()
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Reverses the escaping of pam-driver and the syslog shim: `\\`, `\t`,
/// `\n`, `\r`, `\xNN`. A malformed escape is kept as it is.
pub fn unescape(field: &str) -> Vec<u8> {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b != b'\\' {
            out.push(b);
            i += 1;
            continue;
        }
        let (decoded, used) = match bytes.get(i + 1) {
            Some(b'\\') => (Some(b'\\'), 2),
            Some(b't') => (Some(b'\t'), 2),
            Some(b'n') => (Some(b'\n'), 2),
            Some(b'r') => (Some(b'\r'), 2),
            Some(b'x') => (
                bytes
                    .get(i + 2..i + 4)
                    .and_then(|hex| std::str::from_utf8(hex).ok())
                    .and_then(|hex| u8::from_str_radix(hex, 16).ok()),
                4,
            ),
            _ => (None, 1),
        };
        match decoded {
            Some(d) => {
                out.push(d);
                i += used;
            }
            None => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// Parses the syslog capture file: `priority TAB facility TAB ident TAB
/// message` per line (see csrc/syslog_capture.c).
pub fn parse_logs(text: &str) -> Result<Vec<LogLine>, String> {
    text.lines()
        .map(|line| {
            let bad = || format!("unexpected syslog capture line {line:?}");
            let mut fields = line.splitn(4, '\t');
            let priority = fields.next().and_then(|f| f.parse().ok()).ok_or_else(bad)?;
            let facility = fields.next().and_then(|f| f.parse().ok()).ok_or_else(bad)?;
            let ident = fields.next().ok_or_else(bad)?;
            let message = fields.next().ok_or_else(bad)?;
            Ok(LogLine {
                priority,
                facility,
                ident: lossy(&unescape(ident)),
                message: lossy(&unescape(message)),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescape_reverses_each_escape_and_keeps_malformed_ones() {
        assert_eq!(unescape(r"a\\b\tc\nd\re\x00\xff"), b"a\\b\tc\nd\re\x00\xff");
        assert_eq!(unescape(r"\x4"), b"\\x4");
        assert_eq!(unescape(r"\q\"), b"\\q\\");
        assert_eq!(unescape(r"\xzz"), b"\\xzz");
    }

    #[test]
    fn parses_a_full_report() {
        let report = "start\t0\tPAM_SUCCESS\n\
                      set_item\tPAM_FAIL_DELAY\t0\tPAM_SUCCESS\n\
                      set_item\tPAM_RHOST\t0\tPAM_SUCCESS\n\
                      prompt\tinfo\tHello\\tthere\n\
                      prompt\techo_off\tVerification code: \n\
                      answer\t0\n\
                      prompt\techo_on\tAgain: \n\
                      answer\trefused\n\
                      fail_delay\t7\t2000000\n\
                      authenticate\t19\tPAM_CONV_ERR\n\
                      setcred\t0\tPAM_SUCCESS\n\
                      authtok\tenv\tpw\\\\1\n\
                      end\t0\tPAM_SUCCESS\n";
        let outcome = Outcome::parse(report).unwrap();
        assert_eq!(outcome.code, code::PAM_CONV_ERR);
        assert_eq!(outcome.code_name, "PAM_CONV_ERR");
        assert_eq!(outcome.prompts.len(), 3);
        assert_eq!(outcome.prompts[0].style, PromptStyle::Info);
        assert_eq!(outcome.prompts[0].text, "Hello\tthere");
        assert_eq!(outcome.questions().len(), 2);
        assert_eq!(outcome.answers, vec![Answer::Scripted(0), Answer::Refused]);
        assert_eq!(outcome.fail_delay_usec, Some(2_000_000));
        assert_eq!(outcome.setcred, Some(0));
        assert_eq!(outcome.authtok.as_deref(), Some("pw\\1"));
        assert_eq!(outcome.set_items[1], ("PAM_RHOST".to_owned(), 0));
    }

    #[test]
    fn rejects_reports_without_a_result_or_with_unknown_records() {
        assert!(Outcome::parse("start\t0\tPAM_SUCCESS\n").is_err());
        assert!(Outcome::parse("authenticate\t0\tPAM_SUCCESS\nbogus\n").is_err());
        assert!(Outcome::parse("start\t4\tPAM_SYSTEM_ERR\n").is_err());
    }

    #[test]
    fn parses_log_lines() {
        let logs = parse_logs("6\t10\tsvc(pam_google_authenticator)\tAccepted\\x21\n").unwrap();
        assert_eq!(
            logs,
            vec![LogLine {
                priority: 6,
                facility: 10,
                ident: "svc(pam_google_authenticator)".to_owned(),
                message: "Accepted!".to_owned(),
            }]
        );
        assert!(parse_logs("6\t10\tno message\n").is_err());
    }
}
