//! Enrollment, in google-authenticator's order so that the same answers,
//! typed or piped, mean the same: time-based?; the key (QR code) and a code
//! from the app; "write the file?" (not with `-f`); reuse, window, rate
//! limit; then the file is written and the scratch codes shown.
//!
//! Nothing is written before the last answer, and a wrong code never ends
//! the enrollment (see [`check`]). `--unattended` asks nothing: the file
//! is written first and the key shown only once it is saved. Either way
//! the scratch codes are printed only once the file holding them is saved.

mod check;
mod show;

use crate::args::{EnrollOptions, Kind, RateLimitChoice, Window};
use crate::error::Error;
use crate::prompt::Prompter;
use crate::qr::QrMode;
use crate::target::Target;
use crate::uri::{otpauth_uri, UriKind};
use crate::{generate, Clock, Console};
use check::CodeCheck;
use pam_totp::otp::{hotp, time_step, Secret};
use pam_totp::secret_file::{RateLimit, SecretFile, DEFAULT_STEP_SECONDS, DEFAULT_WINDOW};
use rand::TryCryptoRng;
use show::{Key, Screen};
use std::io::Write;
use zeroize::Zeroizing;

pub use check::CODE_PROMPT;

/// Mode of a new secret file, as Google's tool writes it.
pub const FILE_MODE: u32 = 0o400;
/// The counter a counter-based file starts at, as Google's tool writes it.
pub const FIRST_HOTP_COUNTER: u64 = 1;
/// The wider window offered for clocks that drift (Google's question).
pub const WIDE_WINDOW: u32 = 17;
/// The rate limit offered (Google's question): attempts, seconds.
pub const OFFERED_RATE_LIMIT: (u32, u32) = (3, 30);

/// The settings of the new file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub kind: Kind,
    /// Written as STEP_SIZE only when given, as Google's tool does.
    pub step_size: Option<u32>,
    pub disallow_reuse: bool,
    /// Written as WINDOW_SIZE when `Some`; the module's default is 3.
    pub window: Option<u32>,
    pub rate_limit: Option<(u32, u32)>,
    pub scratch_codes: u32,
}

impl Plan {
    pub fn step_seconds(&self) -> u32 {
        self.step_size.unwrap_or(DEFAULT_STEP_SECONDS)
    }

    pub fn window_codes(&self) -> u32 {
        self.window.unwrap_or(DEFAULT_WINDOW)
    }
}

/// Asks a yes/no question through `prompter`, or takes `default` when
/// there is none (`--unattended`).
fn ask(
    prompter: &mut Option<&mut Prompter<'_>>,
    question: &str,
    default: bool,
) -> Result<bool, Error> {
    match prompter.as_deref_mut() {
        Some(p) => p.yes_no(question, default),
        None => Ok(default),
    }
}

/// Time- or counter-based: the flag, else the first question, as
/// google-authenticator asks it first.
pub fn decide_kind(
    options: &EnrollOptions,
    mut prompter: Option<&mut Prompter<'_>>,
) -> Result<Kind, Error> {
    Ok(match options.kind {
        Some(kind) => kind,
        None => {
            if ask(
                &mut prompter,
                "Do you want authentication tokens to be time-based?",
                true,
            )? {
                Kind::Time
            } else {
                Kind::Counter
            }
        }
    })
}

/// The remaining settings, asked (when `prompter` is `Some`) after the
/// write question, in google-authenticator's order: reuse, window, rate
/// limit. Scripts that pipe answers to either program rely on the order.
pub fn decide_settings(
    options: &EnrollOptions,
    kind: Kind,
    mut prompter: Option<&mut Prompter<'_>>,
) -> Result<Plan, Error> {
    let step = options.step_size.unwrap_or(DEFAULT_STEP_SECONDS);
    let disallow_reuse = match (kind, options.disallow_reuse) {
        (Kind::Counter, _) => false,
        (Kind::Time, Some(choice)) => choice,
        (Kind::Time, None) => ask(
            &mut prompter,
            &format!(
                "Each code can log you in once (one login per {step} s), so a code that\n\
                 someone watched you type, or intercepted, cannot be replayed.\n\
                 Do you want to disallow reuse of the same code?"
            ),
            true,
        )?,
    };
    let window = match options.window {
        Some(Window::Size(size)) => Some(size),
        // Google writes the smallest window it considers usable.
        Some(Window::Minimal) => Some(match kind {
            Kind::Time => 3,
            Kind::Counter => 1,
        }),
        None => ask(&mut prompter, &window_question(kind, step), false)?.then_some(WIDE_WINDOW),
    };
    let rate_limit = match options.rate_limit {
        Some(RateLimitChoice::Limit { attempts, seconds }) => Some((attempts, seconds)),
        Some(RateLimitChoice::Off) => None,
        None => {
            let (attempts, seconds) = OFFERED_RATE_LIMIT;
            ask(
                &mut prompter,
                &format!(
                    "Rate limiting stops an attacker from trying many codes quickly: at\n\
                     most {attempts} login attempts every {seconds} s.\n\
                     Do you want to enable rate limiting?"
                ),
                true,
            )?
            .then_some(OFFERED_RATE_LIMIT)
        }
    };
    Ok(Plan {
        kind,
        // google-authenticator ignores -S counter-based.
        step_size: options.step_size.filter(|_| kind == Kind::Time),
        disallow_reuse,
        window,
        rate_limit,
        scratch_codes: options.scratch_codes,
    })
}

fn window_question(kind: Kind, step: u32) -> String {
    match kind {
        Kind::Time => format!(
            "By default 3 codes are accepted: the current one and one either side,\n\
             which covers {step} s of difference between the phone's clock and\n\
             this server's. Widening the window to {WIDE_WINDOW} codes covers {} s,\n\
             for phones with a poor clock, but gives a guesser more codes to hit.\n\
             Do you want to widen the window from 3 to {WIDE_WINDOW} codes?",
            step * (WIDE_WINDOW - 1) / 2
        ),
        Kind::Counter => format!(
            "By default the next 3 codes are accepted, so codes the app made but\n\
             nobody used do not lock you out. Widening the window to {WIDE_WINDOW}\n\
             codes tolerates more of them, but gives a guesser more codes to hit.\n\
             Do you want to widen the window from 3 to {WIDE_WINDOW} codes?"
        ),
    }
}

/// Every setting without a question: flags, else the defaults.
pub fn decide(options: &EnrollOptions) -> Result<Plan, Error> {
    let kind = decide_kind(options, None)?;
    decide_settings(options, kind, None)
}

/// The file's contents, lines in the order Google's tool writes them:
/// secret, RATE_LIMIT, WINDOW_SIZE, STEP_SIZE, DISALLOW_REUSE,
/// TOTP_AUTH or HOTP_COUNTER, scratch codes.
pub fn build_file(plan: &Plan, secret: Secret, scratch: &[u32], hotp_counter: u64) -> SecretFile {
    let mut file = SecretFile::new(secret);
    // Each setter appends after the option lines already there.
    if let Some((attempts, seconds)) = plan.rate_limit {
        file.set_rate_limit(RateLimit {
            attempts,
            seconds,
            recent: Vec::new(),
        });
    }
    if let Some(window) = plan.window {
        file.set_window_size(window);
    }
    match plan.kind {
        Kind::Time => {
            if let Some(step) = plan.step_size {
                file.set_step_size(step);
            }
            if plan.disallow_reuse {
                file.set_used_steps(Vec::new());
            }
            file.set_time_based();
        }
        Kind::Counter => file.set_hotp_counter(hotp_counter),
    }
    file.set_scratch_codes(scratch);
    file
}

/// The secret as people type it: groups of four.
pub fn grouped(base32: &str) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(base32.len() * 5 / 4 + 1));
    for (i, ch) in base32.chars().enumerate() {
        if i > 0 && i % 4 == 0 {
            out.push(' ');
        }
        out.push(ch);
    }
    out
}

/// Default label and issuer, as Google's tool makes them.
pub fn label_and_issuer(options: &EnrollOptions, user: &str, host: &str) -> (String, String) {
    let label = options
        .label
        .clone()
        .unwrap_or_else(|| format!("{user}@{host}"));
    let issuer = options.issuer.clone().unwrap_or_else(|| host.to_owned());
    (label, issuer)
}

/// A new secret and its scratch codes, with the URI apps import.
struct NewKey {
    secret: Secret,
    base32: Zeroizing<String>,
    uri: Zeroizing<String>,
    scratch: Zeroizing<Vec<u32>>,
}

impl NewKey {
    fn generate<R: TryCryptoRng + ?Sized>(
        rng: &mut R,
        kind: Kind,
        step_seconds: u32,
        scratch_codes: u32,
        label: &str,
        issuer: &str,
    ) -> Result<NewKey, Error> {
        let secret = generate::secret(rng)?;
        let scratch = generate::scratch_codes(rng, scratch_codes)?;
        let base32 = secret.to_base32();
        let uri_kind = match kind {
            Kind::Time => UriKind::Time {
                period: step_seconds,
            },
            Kind::Counter => UriKind::Counter {
                initial: FIRST_HOTP_COUNTER,
            },
        };
        let uri = otpauth_uri(uri_kind, &base32, label, issuer);
        Ok(NewKey {
            secret,
            base32,
            uri,
            scratch,
        })
    }

    fn text(&self) -> Key<'_> {
        Key {
            uri: &self.uri,
            base32: &self.base32,
        }
    }
}

/// What the enrollment steps share (the console's streams go separately).
struct Session<'s> {
    options: &'s EnrollOptions,
    quiet: bool,
    target: &'s Target,
    clock: &'s dyn Clock,
    /// Standard input is a terminal.
    interactive: bool,
    output_is_terminal: bool,
    terminal_size: Option<(usize, usize)>,
}

impl Session<'_> {
    /// The screen the key is shown on. With a code check the prompt alone
    /// follows the drawing; otherwise the key URI, the code and the next
    /// question (allowing two lines for a long URI).
    fn screen(&self, code_check: bool) -> Screen {
        let chosen = if self.output_is_terminal {
            QrMode::Utf8
        } else {
            QrMode::None
        };
        Screen {
            mode: self.options.qr_mode.unwrap_or(chosen),
            no_terminal: self.options.qr_mode.is_none() && !self.output_is_terminal,
            size: self.terminal_size,
            lines_after: if code_check { 1 } else { 6 },
            uri_on_request: code_check,
        }
    }

    fn step_seconds(&self) -> u32 {
        self.options.step_size.unwrap_or(DEFAULT_STEP_SECONDS)
    }

    /// The code to compare with the app when none is checked: the current
    /// one, or counter 1's.
    fn show_code(&self, out: &mut dyn Write, kind: Kind, secret: &Secret) -> Result<(), Error> {
        match kind {
            Kind::Time => writeln!(
                out,
                "Your current verification code is {:06}",
                hotp(secret, time_step(self.clock.now(), self.step_seconds()))
            )?,
            Kind::Counter => writeln!(
                out,
                "Your verification code for counter {FIRST_HOTP_COUNTER} is {:06}",
                hotp(secret, FIRST_HOTP_COUNTER)
            )?,
        }
        Ok(())
    }

    /// The file exists: said before any question, so nobody scans a QR code
    /// only to decline replacing the file that needs it.
    fn note_existing(&self, out: &mut dyn Write) -> Result<(), Error> {
        let path = self.target.path.display();
        let note = if self.options.force {
            format!("Note: {path} already exists and will be replaced (-f).")
        } else {
            format!("Note: {path} already exists: you will be asked before it is replaced.")
        };
        writeln!(out, "{note}")?;
        Ok(())
    }

    /// Shows the key and checks a code from the app (time-based, unless
    /// `-C`), or shows the code to compare with.
    fn show_and_check(
        &self,
        prompter: &mut Prompter<'_>,
        kind: Kind,
        key: &NewKey,
    ) -> Result<(), Error> {
        let checking = self.options.confirm && kind == Kind::Time;
        let screen = self.screen(checking);
        let drawing = show::prepare(&key.text(), &screen)?;
        show::show(prompter.output(), &key.text(), &screen, drawing.as_ref())?;
        if !checking {
            return self.show_code(prompter.output(), kind, &key.secret);
        }
        let check = CodeCheck {
            secret: &key.secret,
            step_seconds: self.step_seconds(),
            window: check_window(self.options.window),
        };
        check.ask(
            prompter,
            || self.clock.now(),
            |out| key.text().write_text(out),
        )
    }

    /// The last question before writing (not with `-f`). Declining cancels.
    fn ask_to_write(&self, prompter: &mut Prompter<'_>, exists: bool) -> Result<(), Error> {
        let path = self.target.path.display();
        let mut question = if exists {
            format!(
                "\"{path}\" already exists. Replace it? The secret and scratch codes in it\n\
                 will stop working."
            )
        } else {
            format!("Do you want me to write the new secret to \"{path}\"?")
        };
        if self.quiet && self.interactive {
            question = format!(
                "The new key was not shown (-q): once written, totp-enroll --status \
                 --show-secret shows it.\n{question}"
            );
        }
        if prompter.yes_no(&question, !exists)? {
            Ok(())
        } else {
            Err(Error::Cancelled)
        }
    }

    fn write(&self, plan: &Plan, key: &NewKey, overwrite: bool) -> Result<(), Error> {
        let file = build_file(plan, key.secret.clone(), &key.scratch, FIRST_HOTP_COUNTER);
        // The home layout or the root-only store: the target knows.
        self.target.create(&file.to_bytes(), FILE_MODE, overwrite)
    }

    /// After the file is saved: where, and the scratch codes. Output that
    /// fails now (a closed pipe, a full disk) must not read as "nothing
    /// written": the error says the file is there and what was not shown.
    fn report_saved(
        &self,
        out: &mut dyn Write,
        key: &NewKey,
        before: impl FnOnce(&mut dyn Write) -> Result<(), Error>,
        unseen: &'static str,
    ) -> Result<(), Error> {
        let result = (|| -> Result<(), Error> {
            before(out)?;
            if self.quiet {
                return Ok(());
            }
            writeln!(out, "Saved {}.", self.target.path.display())?;
            if !key.scratch.is_empty() {
                writeln!(out, "Your emergency scratch codes are:")?;
                for code in key.scratch.iter() {
                    writeln!(out, "  {code:08}")?;
                }
                writeln!(
                    out,
                    "Each logs you in once without the app: keep them somewhere safe."
                )?;
            }
            out.flush()?;
            Ok(())
        })();
        result.map_err(|error| Error::SavedNotShown {
            path: self.target.path.clone(),
            unseen,
            error: Box::new(error),
        })
    }
}

/// The whole enrollment. `host` is the host name used in the default label
/// and issuer.
pub fn enroll<R: TryCryptoRng + ?Sized>(
    options: &EnrollOptions,
    quiet: bool,
    target: &Target,
    host: &str,
    console: &mut Console<'_>,
    clock: &dyn Clock,
    rng: &mut R,
) -> Result<(), Error> {
    let session = Session {
        options,
        quiet,
        target,
        clock,
        interactive: console.interactive,
        output_is_terminal: console.output_is_terminal,
        terminal_size: console.terminal_size,
    };
    // The order of the steps below is google-authenticator's (see the top).
    let (label, issuer) = label_and_issuer(options, &target.user, host);
    let exists = std::fs::symlink_metadata(&target.path).is_ok();
    if options.unattended {
        return unattended(&session, console.output, exists, &label, &issuer, rng);
    }
    if exists && !quiet {
        session.note_existing(console.output)?;
    }
    let mut prompter = Prompter::new(&mut *console.input, &mut *console.output);
    let kind = decide_kind(options, Some(&mut prompter))?;
    let key = NewKey::generate(
        rng,
        kind,
        session.step_seconds(),
        options.scratch_codes,
        &label,
        &issuer,
    )?;
    if !quiet {
        session.show_and_check(&mut prompter, kind, &key)?;
    }
    if !options.force {
        session.ask_to_write(&mut prompter, exists)?;
    }
    let plan = decide_settings(options, kind, Some(&mut prompter))?;
    session.write(&plan, &key, exists).map_err(|error| {
        if quiet {
            error
        } else {
            Error::NotSaved(Box::new(error))
        }
    })?;
    session.report_saved(prompter.output(), &key, |_| Ok(()), "the scratch codes")
}

/// `--unattended`: no questions, no code check. The file is written first
/// and the key shown only once it is saved, so a failed write never leaves
/// a key in an app that no file matches.
fn unattended<R: TryCryptoRng + ?Sized>(
    session: &Session<'_>,
    output: &mut dyn Write,
    exists: bool,
    label: &str,
    issuer: &str,
    rng: &mut R,
) -> Result<(), Error> {
    if exists && !session.options.force {
        return Err(Error::Exists(session.target.path.clone()));
    }
    let plan = decide(session.options)?;
    let key = NewKey::generate(
        rng,
        plan.kind,
        plan.step_seconds(),
        plan.scratch_codes,
        label,
        issuer,
    )?;
    let screen = session.screen(false);
    // Drawn first: a key too big for a QR code stops us before the write.
    let drawing = show::prepare(&key.text(), &screen)?;
    session.write(&plan, &key, session.options.force)?;
    let quiet = session.quiet;
    let kind = plan.kind;
    let code = {
        let mut text = Vec::new();
        session.show_code(&mut text, kind, &key.secret)?;
        text
    };
    session.report_saved(
        output,
        &key,
        |out| {
            if !quiet {
                show::show(out, &key.text(), &screen, drawing.as_ref())?;
                out.write_all(&code)?;
            }
            Ok(())
        },
        "the key and the scratch codes",
    )
}

/// The window the code check uses: the one the flags set, else the
/// module's default (a wider one chosen afterwards only widens it).
fn check_window(window: Option<Window>) -> u32 {
    match window {
        Some(Window::Size(size)) => size,
        Some(Window::Minimal) | None => DEFAULT_WINDOW,
    }
}

#[cfg(test)]
mod tests;
