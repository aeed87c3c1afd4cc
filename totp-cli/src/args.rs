//! Command-line flags: Google's `google-authenticator` short and long
//! names, plus our own, turned into a checked [`Request`].
//!
//! clap's derive handles Google's flags without contortions (`-r3`,
//! `-r 3`, `--rate-limit=3`, repeated flags refused like getopt's
//! "Duplicate -x option"), so it is used rather than hand-written parsing.

use crate::qr::QrMode;
use clap::Parser;
use std::ffi::OsString;
use std::path::PathBuf;

/// Scratch codes written unless `-e` says otherwise (Google's default).
pub const DEFAULT_SCRATCH_CODES: u32 = 5;

pub const EXIT_CODES_HELP: &str = "\
Questions are asked for every setting not given as a flag, in the order
google-authenticator asks them, on the terminal or from answers piped on
standard input (Enter takes the default shown in capitals). A time-based
code from the app is checked before anything is written (-1 skips the
check), and the file is written only after a last question (not with -f).
--unattended asks nothing: settings not given as flags take the defaults
(time-based, reuse disallowed, window 3, rate limit 3 per 30 s).

The file is written atomically with mode 0400, owned by the user. Root can
enroll another user with --user; the file then goes to that user's home.

Exit status:
  0  success
  1  error (file system, user database, random generator, output)
  2  usage: bad flags or values
  3  the secret file already exists and was not replaced
  5  cancelled at a question or by end of input; nothing was written
  6  no secret file (--status, --regenerate-scratch)";

/// The flags as parsed. Kept close to the command line; [`Cli::into_request`]
/// turns them into what the program acts on.
#[derive(Debug, Parser)]
#[command(
    name = "totp-enroll",
    version,
    about = "Set up a time-based one-time password (TOTP) as the second factor of logins\n\
             through pam_totp: writes ~/.google_authenticator, as google-authenticator does.",
    after_help = EXIT_CODES_HELP,
    max_term_width = 100,
    // getopt_long accepts any unambiguous prefix of a long option
    // (`--no-conf`), and scripts written for google-authenticator use them.
    infer_long_args = true
)]
pub struct Cli {
    /// Set up time-based (TOTP) verification [default]
    #[arg(short = 't', long, conflicts_with = "counter_based")]
    time_based: bool,

    /// Set up counter-based (HOTP) verification
    #[arg(short = 'c', long)]
    counter_based: bool,

    /// Disallow reuse of previously used TOTP tokens [default]
    #[arg(short = 'd', long, conflicts_with_all = ["allow_reuse", "counter_based"])]
    disallow_reuse: bool,

    /// Allow reuse of previously used TOTP tokens
    #[arg(short = 'D', long, conflicts_with = "counter_based")]
    allow_reuse: bool,

    /// Write the file without asking first, replacing an existing one
    #[arg(short = 'f', long)]
    force: bool,

    /// Ask nothing and check no code: unset settings take the defaults
    /// (an existing file is replaced only with -f)
    #[arg(long)]
    unattended: bool,

    /// Limit logins to N every S seconds (1-10; with -R)
    #[arg(short = 'r', long, value_name = "N", requires = "rate_time",
          value_parser = clap::value_parser!(u32).range(1..=10))]
    rate_limit: Option<u32>,

    /// Limit logins to N every S seconds (15-600; with -r)
    #[arg(short = 'R', long, value_name = "S", requires = "rate_limit",
          value_parser = clap::value_parser!(u32).range(15..=600))]
    rate_time: Option<u32>,

    /// Disable rate limiting
    #[arg(short = 'u', long, conflicts_with_all = ["rate_limit", "rate_time"])]
    no_rate_limit: bool,

    /// Accept N codes around the current one (1-21) [default: 3]
    #[arg(short = 'w', long, value_name = "N", conflicts_with = "minimal_window",
          value_parser = clap::value_parser!(u32).range(1..=21))]
    window_size: Option<u32>,

    /// Smallest useful window: 3 codes time-based, 1 counter-based
    #[arg(short = 'W', long)]
    minimal_window: bool,

    /// Write PATH instead of ~/.google_authenticator
    #[arg(short = 's', long = "secret", value_name = "PATH",
          value_parser = clap::builder::PathBufValueParser::new())]
    secret_path: Option<PathBuf>,

    /// Seconds per code, 1-60 (time-based; ignored with -c) [default: 30]
    #[arg(short = 'S', long, value_name = "S",
          value_parser = clap::value_parser!(u32).range(1..=60))]
    step_size: Option<u32>,

    /// Number of emergency scratch codes, 0-10 [default: 5]
    #[arg(short = 'e', long, value_name = "N",
          value_parser = clap::value_parser!(u32).range(0..=10))]
    emergency_codes: Option<u32>,

    /// Account name shown by the app [default: USER@HOSTNAME]
    #[arg(short = 'l', long, value_name = "LABEL", value_parser = parse_label)]
    label: Option<String>,

    /// Issuer shown by the app; empty for none [default: HOSTNAME]
    #[arg(short = 'i', long, value_name = "ISSUER", value_parser = parse_issuer)]
    issuer: Option<String>,

    /// Show neither key nor scratch codes and check no code; print only questions and errors
    /// (and the new codes of --regenerate-scratch)
    #[arg(short = 'q', long)]
    quiet: bool,

    /// QR code: UTF8 half blocks, ANSI colours, or NONE [default: UTF8 on a terminal]
    #[arg(short = 'Q', long, value_name = "MODE", value_parser = parse_qr_mode)]
    qr_mode: Option<QrMode>,

    /// Do not ask for a code from the app before writing
    #[arg(short = 'C', long)]
    no_confirm: bool,

    /// (root) Enroll user NAME: their home, their ownership
    #[arg(long, value_name = "NAME",
          value_parser = clap::builder::NonEmptyStringValueParser::new())]
    user: Option<String>,

    /// Replace the scratch codes (-e of them), keeping secret and settings
    #[arg(long, conflicts_with_all = ENROLL_ONLY)]
    regenerate_scratch: bool,

    /// Show what is configured, without the secret
    #[arg(long, conflicts_with_all = ENROLL_ONLY, conflicts_with_all = ["regenerate_scratch", "emergency_codes"])]
    status: bool,

    /// With --status, show the secret too
    #[arg(long, requires = "status", conflicts_with_all = ENROLL_ONLY)]
    show_secret: bool,

    #[command(flatten)]
    store: crate::store_mode::StoreFlags,
}

/// Flags that only make sense when writing a new secret file.
pub(crate) const ENROLL_ONLY: [&str; 16] = [
    "time_based",
    "counter_based",
    "disallow_reuse",
    "allow_reuse",
    "force",
    "unattended",
    "rate_limit",
    "rate_time",
    "no_rate_limit",
    "window_size",
    "minimal_window",
    "step_size",
    "label",
    "issuer",
    "qr_mode",
    "no_confirm",
];

/// Longest label or issuer, in bytes: percent-encoded (up to 3 characters a
/// byte) they must still fit a QR code a phone can read off a screen.
pub const MAX_NAME_BYTES: usize = 128;

/// Any label, the empty one included, as google-authenticator takes it;
/// only the length is bounded.
fn parse_label(value: &str) -> Result<String, String> {
    if value.len() > MAX_NAME_BYTES {
        return Err(format!("longer than {MAX_NAME_BYTES} bytes"));
    }
    Ok(value.to_owned())
}

/// Any issuer: one with a `:` goes in the URI's `issuer` parameter rather
/// than the label prefix (see [`crate::uri`]).
fn parse_issuer(value: &str) -> Result<String, String> {
    parse_label(value)
}

/// `-Q`: the drawing's name, in any case, as google-authenticator takes it.
fn parse_qr_mode(value: &str) -> Result<QrMode, String> {
    match value.to_ascii_uppercase().as_str() {
        "UTF8" => Ok(QrMode::Utf8),
        "ANSI" => Ok(QrMode::Ansi),
        "NONE" => Ok(QrMode::None),
        _ => Err("expected UTF8, ANSI or NONE".to_owned()),
    }
}

/// Time- or counter-based, if the flags say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Time,
    Counter,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    Size(u32),
    /// `-W`: 3 codes time-based, 1 counter-based, as Google writes it.
    Minimal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimitChoice {
    Limit { attempts: u32, seconds: u32 },
    Off,
}

/// What to enroll. `None` means "ask, or take the default when unattended".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrollOptions {
    pub kind: Option<Kind>,
    pub disallow_reuse: Option<bool>,
    pub window: Option<Window>,
    pub rate_limit: Option<RateLimitChoice>,
    /// Only time-based; `Some` writes a STEP_SIZE line, as Google's `-S` does.
    pub step_size: Option<u32>,
    pub scratch_codes: u32,
    pub label: Option<String>,
    pub issuer: Option<String>,
    pub qr_mode: Option<QrMode>,
    /// Check a code from the app before writing (not `-C`).
    pub confirm: bool,
    /// `-f`: write without the last question, replacing an existing file.
    pub force: bool,
    /// `--unattended`: no questions at all.
    pub unattended: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Enroll(EnrollOptions),
    RegenerateScratch { codes: u32 },
    Status { show_secret: bool },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub action: Action,
    pub user: Option<String>,
    pub secret_path: Option<PathBuf>,
    pub quiet: bool,
    /// `--store` and its companions (see [`crate::store_mode`]).
    pub store: crate::store_mode::StoreFlags,
}

/// What parsing the command line came to.
#[derive(Debug)]
pub enum Parsed {
    Run(Request),
    /// `--help` or `--version`: print this on standard output and exit 0.
    Info(String),
    /// A usage error, as one line.
    Usage(String),
}

pub fn parse<I, T>(args: I) -> Parsed
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    match Cli::try_parse_from(args) {
        Ok(cli) => Parsed::Run(cli.into_request()),
        Err(error) => match error.kind() {
            clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                Parsed::Info(error.render().to_string())
            }
            _ => Parsed::Usage(first_line(&error.render().to_string())),
        },
    }
}

/// clap's errors come with a usage block and tips; the first paragraph,
/// joined into one line, is enough (the caller adds a pointer to --help).
fn first_line(rendered: &str) -> String {
    let paragraph: Vec<&str> = rendered
        .lines()
        .take_while(|line| !line.trim().is_empty())
        .map(str::trim)
        .collect();
    let line = paragraph.join(" ");
    match line.strip_prefix("error: ") {
        Some(rest) => rest.to_owned(),
        None if line.is_empty() => "invalid command line".to_owned(),
        None => line,
    }
}

impl Cli {
    pub fn into_request(self) -> Request {
        let scratch_codes = self.emergency_codes.unwrap_or(DEFAULT_SCRATCH_CODES);
        let action = if self.status {
            Action::Status {
                show_secret: self.show_secret,
            }
        } else if self.regenerate_scratch {
            Action::RegenerateScratch {
                codes: scratch_codes,
            }
        } else {
            // -d, -D and -S only mean something time-based, so they settle the
            // question (Google instead insists on -t next to -d/-D).
            let time_implied = self.disallow_reuse || self.allow_reuse || self.step_size.is_some();
            let kind = if self.counter_based {
                Some(Kind::Counter)
            } else if self.time_based || time_implied {
                Some(Kind::Time)
            } else {
                None
            };
            let disallow_reuse = if self.disallow_reuse {
                Some(true)
            } else if self.allow_reuse {
                Some(false)
            } else {
                None
            };
            let window = match (self.window_size, self.minimal_window) {
                (Some(size), _) => Some(Window::Size(size)),
                (None, true) => Some(Window::Minimal),
                (None, false) => None,
            };
            let rate_limit = match (self.rate_limit, self.rate_time, self.no_rate_limit) {
                (Some(attempts), Some(seconds), _) => {
                    Some(RateLimitChoice::Limit { attempts, seconds })
                }
                (_, _, true) => Some(RateLimitChoice::Off),
                // clap's `requires` makes -r and -R come together.
                _ => None,
            };
            Action::Enroll(EnrollOptions {
                kind,
                disallow_reuse,
                window,
                rate_limit,
                step_size: self.step_size,
                scratch_codes,
                label: self.label,
                issuer: self.issuer,
                qr_mode: self.qr_mode,
                confirm: !self.no_confirm,
                force: self.force,
                unattended: self.unattended,
            })
        };
        Request {
            action,
            user: self.user,
            secret_path: self.secret_path,
            quiet: self.quiet,
            store: self.store,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn run(args: &[&str]) -> Request {
        let mut argv = vec!["totp-enroll"];
        argv.extend_from_slice(args);
        match parse(argv) {
            Parsed::Run(request) => request,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    fn enroll(args: &[&str]) -> EnrollOptions {
        match run(args).action {
            Action::Enroll(options) => options,
            other => panic!("{other:?}"),
        }
    }

    fn usage_error(args: &[&str]) -> String {
        let mut argv = vec!["totp-enroll"];
        argv.extend_from_slice(args);
        match parse(argv) {
            Parsed::Usage(message) => message,
            other => panic!("{args:?} should be refused: {other:?}"),
        }
    }

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn no_flags_leaves_every_question_open() {
        assert_eq!(
            enroll(&[]),
            EnrollOptions {
                kind: None,
                disallow_reuse: None,
                window: None,
                rate_limit: None,
                step_size: None,
                scratch_codes: 5,
                label: None,
                issuer: None,
                qr_mode: None,
                confirm: true,
                force: false,
                unattended: false,
            }
        );
    }

    #[test]
    fn google_short_flags() {
        let request = run(&[
            "-t", "-d", "-f", "-r", "3", "-R", "30", "-w", "17", "-Q", "none", "-s", "/tmp/x",
            "-S", "20", "-e", "0", "-l", "me@host", "-i", "Corp", "-q", "-C",
        ]);
        assert!(request.quiet);
        assert_eq!(request.secret_path, Some(PathBuf::from("/tmp/x")));
        assert_eq!(
            request.action,
            Action::Enroll(EnrollOptions {
                kind: Some(Kind::Time),
                disallow_reuse: Some(true),
                window: Some(Window::Size(17)),
                rate_limit: Some(RateLimitChoice::Limit {
                    attempts: 3,
                    seconds: 30
                }),
                step_size: Some(20),
                scratch_codes: 0,
                label: Some("me@host".into()),
                issuer: Some("Corp".into()),
                qr_mode: Some(QrMode::None),
                confirm: false,
                force: true,
                unattended: false,
            })
        );
        // Attached values, as getopt allows.
        let options = enroll(&["-r3", "-R30", "-e2", "-QANSI"]);
        assert_eq!(options.scratch_codes, 2);
        assert_eq!(options.qr_mode, Some(QrMode::Ansi));
        assert_eq!(
            options.rate_limit,
            Some(RateLimitChoice::Limit {
                attempts: 3,
                seconds: 30
            })
        );
    }

    #[test]
    fn long_flags() {
        let request = run(&[
            "--counter-based",
            "--force",
            "--no-rate-limit",
            "--minimal-window",
            "--secret=/tmp/y",
            "--emergency-codes=10",
            "--label=a b",
            "--issuer=",
            "--quiet",
            "--qr-mode=utf8",
            "--no-confirm",
            "--user=alice",
        ]);
        assert_eq!(request.user.as_deref(), Some("alice"));
        let Action::Enroll(options) = request.action else {
            panic!()
        };
        assert_eq!(options.kind, Some(Kind::Counter));
        assert_eq!(options.rate_limit, Some(RateLimitChoice::Off));
        assert_eq!(options.window, Some(Window::Minimal));
        assert_eq!(options.scratch_codes, 10);
        assert_eq!(options.issuer.as_deref(), Some(""));
        assert_eq!(options.qr_mode, Some(QrMode::Utf8));
        let options = enroll(&[
            "--time-based",
            "--allow-reuse",
            "--rate-limit",
            "10",
            "--rate-time",
            "600",
            "--window-size",
            "21",
            "--step-size",
            "60",
        ]);
        assert_eq!(options.disallow_reuse, Some(false));
        assert_eq!(options.window, Some(Window::Size(21)));
        assert_eq!(options.step_size, Some(60));
        assert!(enroll(&["--disallow-reuse"]).disallow_reuse == Some(true));
    }

    #[test]
    fn time_only_flags_imply_time_based() {
        assert_eq!(enroll(&["-d"]).kind, Some(Kind::Time));
        assert_eq!(enroll(&["-D"]).kind, Some(Kind::Time));
        assert_eq!(enroll(&["-S", "30"]).kind, Some(Kind::Time));
        assert_eq!(enroll(&["-w", "5"]).kind, None);
    }

    #[test]
    fn what_google_authenticator_accepts() {
        // -S is ignored counter-based, as google-authenticator ignores it.
        let options = enroll(&["-c", "-S", "60"]);
        assert_eq!(options.kind, Some(Kind::Counter));
        assert_eq!(enroll(&["-l", ""]).label.as_deref(), Some(""));
        assert_eq!(enroll(&["-i", "a:b"]).issuer.as_deref(), Some("a:b"));
        assert!(enroll(&["--unattended"]).unattended);
        let force = enroll(&["-f"]);
        assert!(force.force && !force.unattended);
    }

    #[test]
    fn long_options_may_be_abbreviated_as_getopt_allows() {
        let options = enroll(&[
            "--no-conf",
            "--time",
            "--disallow",
            "--rate-l=3",
            "--rate-t",
            "30",
        ]);
        assert!(!options.confirm);
        assert_eq!(options.kind, Some(Kind::Time));
        assert_eq!(options.disallow_reuse, Some(true));
        assert_eq!(
            options.rate_limit,
            Some(RateLimitChoice::Limit {
                attempts: 3,
                seconds: 30
            })
        );
        assert_eq!(enroll(&["--emerg=2"]).scratch_codes, 2);
        assert_eq!(enroll(&["--qr=ansi"]).qr_mode, Some(QrMode::Ansi));
        // Ambiguous prefixes are refused, as getopt refuses them.
        assert!(
            usage_error(&["--no"]).contains("--no"),
            "{}",
            usage_error(&["--no"])
        );
    }

    #[test]
    fn status_and_regenerate() {
        assert_eq!(
            run(&["--status", "--user", "bob", "-s", "/x"]).action,
            Action::Status { show_secret: false }
        );
        assert_eq!(
            run(&["--status", "--show-secret"]).action,
            Action::Status { show_secret: true }
        );
        assert_eq!(
            run(&["--regenerate-scratch", "-e", "7", "-q"]).action,
            Action::RegenerateScratch { codes: 7 }
        );
        assert_eq!(
            run(&["--regenerate-scratch"]).action,
            Action::RegenerateScratch { codes: 5 }
        );
    }

    #[test]
    fn bad_values_are_usage_errors_in_one_line() {
        for args in [
            &["-e", "11"][..],
            &["-e", "-1"],
            &["-w", "0"],
            &["-w", "22"],
            &["-Q", "FOO"],
            &["-S", "0"],
            &["-S", "61"],
            &["-r", "0", "-R", "30"],
            &["-r", "11", "-R", "30"],
            &["-r", "3", "-R", "14"],
            &["-r", "3", "-R", "601"],
            &["-r", "3"],
            &["-R", "30"],
            &["-u", "-r", "3", "-R", "30"],
            &["-t", "-c"],
            &["-d", "-D"],
            &["-c", "-d"],
            &["-w", "3", "-W"],
            &["-f", "-f"],
            &["-e", "3", "-e", "4"],
            &["-e", "x"],
            &["-s", ""],
            &["-l", &"x".repeat(129)],
            &["-i", &"é".repeat(65)],
            &["--user", ""],
            &["--status", "-t"],
            &["--status", "--regenerate-scratch"],
            &["--regenerate-scratch", "-f"],
            &["--regenerate-scratch", "--unattended"],
            &["--no", "-t"],
            &["--s", "/x"],
            &["--show-secret"],
            &["extra"],
            &["-x"],
            &["--bogus"],
        ] {
            let message = usage_error(args);
            assert!(
                !message.is_empty() && !message.contains('\n'),
                "{args:?}: {message:?}"
            );
        }
        assert_eq!(
            usage_error(&["-e", "11"]),
            "invalid value '11' for '--emergency-codes <N>': 11 is not in 0..=10"
        );
        assert_eq!(
            usage_error(&["-r", "3"]),
            "the following required arguments were not provided: --rate-time <S>"
        );
    }

    #[test]
    fn help_and_version() {
        let Parsed::Info(help) = parse(["totp-enroll", "-h"]) else {
            panic!()
        };
        assert!(help.contains("--rate-limit <N>"), "{help}");
        assert!(help.contains("Exit status:"), "{help}");
        let Parsed::Info(version) = parse(["totp-enroll", "--version"]) else {
            panic!()
        };
        assert_eq!(
            version.trim(),
            format!("totp-enroll {}", env!("CARGO_PKG_VERSION"))
        );
    }
}
