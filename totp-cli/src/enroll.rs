//! Enrollment: settle the settings (flags, questions, defaults), make a
//! secret and scratch codes, show them, check one code from the app, and
//! write the file.
//!
//! Asked questions, nothing is written until the user has seen the secret
//! and (unless told not to) proved with a code that the app has it: a
//! mistyped or unscanned enrollment must never replace a working file and
//! lock the user out. Without questions (`-f`), the file is written first and
//! the key shown only once it is saved. Either way the scratch codes are
//! printed only once the file holding them is saved.

use crate::args::{EnrollOptions, Kind, RateLimitChoice, Window};
use crate::error::Error;
use crate::prompt::Prompter;
use crate::qr::{self, QrMode};
use crate::target::Target;
use crate::uri::{otpauth_uri, UriKind};
use crate::{generate, Clock, Console};
use pam_totp::otp::{codes_equal, hotp, time_step, Code, Secret};
use pam_totp::policy::window_offsets;
use pam_totp::secret_file::{RateLimit, SecretFile, DEFAULT_STEP_SECONDS, DEFAULT_WINDOW};
use rand::TryCryptoRng;
use std::io::Write;
use zeroize::Zeroizing;

/// Mode of a new secret file, as Google's tool writes it.
pub const FILE_MODE: u32 = 0o400;
/// The counter a counter-based file starts at, as Google's tool writes it.
pub const FIRST_HOTP_COUNTER: u64 = 1;
/// Wrong codes allowed when confirming before giving up.
pub const CONFIRM_TRIES: u32 = 3;
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

/// Settles every setting: from the flags, else by asking (`prompter` is
/// `Some`), else the default.
pub fn decide(
    options: &EnrollOptions,
    mut prompter: Option<&mut Prompter<'_>>,
) -> Result<Plan, Error> {
    let mut ask = |question: &str, default: bool| -> Result<bool, Error> {
        match prompter.as_deref_mut() {
            Some(p) => p.yes_no(question, default),
            None => Ok(default),
        }
    };
    let kind = match options.kind {
        Some(kind) => kind,
        None => {
            if ask("Do you want authentication tokens to be time-based?", true)? {
                Kind::Time
            } else {
                Kind::Counter
            }
        }
    };
    let step = options.step_size.unwrap_or(DEFAULT_STEP_SECONDS);
    let disallow_reuse = match (kind, options.disallow_reuse) {
        (Kind::Counter, _) => false,
        (Kind::Time, Some(choice)) => choice,
        (Kind::Time, None) => ask(
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
        None => {
            let question = match kind {
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
            };
            ask(&question, false)?.then_some(WIDE_WINDOW)
        }
    };
    let rate_limit = match options.rate_limit {
        Some(RateLimitChoice::Limit { attempts, seconds }) => Some((attempts, seconds)),
        Some(RateLimitChoice::Off) => None,
        None => {
            let (attempts, seconds) = OFFERED_RATE_LIMIT;
            ask(
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
        step_size: options.step_size,
        disallow_reuse,
        window,
        rate_limit,
        scratch_codes: options.scratch_codes,
    })
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

/// Asks for a code from the app until one matches (or the tries run out)
/// and returns the HOTP counter to store: the one after the code typed, so
/// that code cannot be used again. Time-based codes are accepted over the
/// window the module will use, so the check fails exactly when logins would.
/// The confirmed time-based code is not recorded as used (nor is it by
/// Google's tool): testing a login right after enrolling should work.
fn confirm(
    prompter: &mut Prompter<'_>,
    plan: &Plan,
    secret: &Secret,
    clock: &dyn Clock,
) -> Result<u64, Error> {
    let mut tries_left = CONFIRM_TRIES;
    writeln!(prompter.output())?;
    loop {
        let Some(line) = prompter.line("Enter the 6-digit code the app shows now: ")? else {
            return Err(Error::Cancelled);
        };
        if line.trim().is_empty() {
            continue;
        }
        let matched = match Code::parse(line.as_bytes()) {
            Ok(Code::Otp(code)) => match plan.kind {
                Kind::Time => {
                    let step = time_step(clock.now(), plan.step_seconds());
                    let mut found = false;
                    for offset in window_offsets(plan.window_codes()) {
                        if let Some(counter) = step.checked_add_signed(offset) {
                            found |= codes_equal(hotp(secret, counter), code);
                        }
                    }
                    found.then_some(FIRST_HOTP_COUNTER)
                }
                Kind::Counter => {
                    let mut found = None;
                    for counter in
                        FIRST_HOTP_COUNTER..FIRST_HOTP_COUNTER + u64::from(plan.window_codes())
                    {
                        if codes_equal(hotp(secret, counter), code) && found.is_none() {
                            found = Some(counter + 1);
                        }
                    }
                    found
                }
            },
            _ => None,
        };
        if let Some(next_counter) = matched {
            writeln!(prompter.output(), "Code confirmed.")?;
            return Ok(next_counter);
        }
        tries_left -= 1;
        if tries_left == 0 {
            return Err(Error::NotConfirmed);
        }
        let hint = match plan.kind {
            Kind::Time => "wait for the next code, and check that the phone's clock is right",
            Kind::Counter => "make sure you scanned the code just shown",
        };
        writeln!(
            prompter.output(),
            "That code does not match ({tries_left} {} left): {hint}.",
            if tries_left == 1 { "try" } else { "tries" }
        )?;
    }
}

/// Everything the user needs to set up the app: the QR code, the URI and
/// the secret in groups of four.
fn show_key(
    out: &mut dyn Write,
    uri: &str,
    secret_base32: &str,
    qr_drawing: Option<&str>,
) -> Result<(), Error> {
    writeln!(out)?;
    if let Some(drawing) = qr_drawing {
        out.write_all(drawing.as_bytes())?;
        writeln!(
            out,
            "Scan the QR code with your authenticator app, or enter the key by hand."
        )?;
    }
    writeln!(out, "Key URI: {uri}")?;
    writeln!(out, "Your new secret key is: {}", *grouped(secret_base32))?;
    Ok(())
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

/// The whole enrollment. `host` is the host name used in the default label
/// and issuer.
#[allow(clippy::too_many_arguments)]
pub fn enroll<R: TryCryptoRng + ?Sized>(
    options: &EnrollOptions,
    quiet: bool,
    target: &Target,
    host: &str,
    console: &mut Console<'_>,
    clock: &dyn Clock,
    rng: &mut R,
) -> Result<(), Error> {
    let interactive = console.interactive && !options.force;
    let mut prompter = Prompter::new(&mut *console.input, &mut *console.output);

    // Looked at before any question, so nobody answers five of them to be
    // told at the end; the write itself re-checks atomically.
    let exists = std::fs::symlink_metadata(&target.path).is_ok();
    let mut overwrite = options.force;
    if exists && !options.force {
        if !interactive {
            return Err(Error::Exists(target.path.clone()));
        }
        let question = format!(
            "\"{}\" already exists. Replace it? The secret and scratch codes in it\n\
             will stop working.",
            target.path.display()
        );
        if !prompter.yes_no(&question, false)? {
            return Err(Error::Exists(target.path.clone()));
        }
        overwrite = true;
    }
    if !options.force && !console.interactive {
        return Err(Error::NotATerminal);
    }

    let plan = decide(options, interactive.then_some(&mut prompter))?;
    let secret = generate::secret(rng)?;
    let scratch = generate::scratch_codes(rng, plan.scratch_codes)?;
    let base32 = secret.to_base32();
    let (label, issuer) = label_and_issuer(options, &target.user, host);
    let uri_kind = match plan.kind {
        Kind::Time => UriKind::Time {
            period: plan.step_seconds(),
        },
        Kind::Counter => UriKind::Counter {
            initial: FIRST_HOTP_COUNTER,
        },
    };
    let uri = otpauth_uri(uri_kind, &base32, &label, &issuer);

    let qr_mode = options.qr_mode.unwrap_or(if console.output_is_terminal {
        QrMode::Utf8
    } else {
        QrMode::None
    });
    // Drawn now, so that a URI too big for a QR code stops us before the
    // file is written.
    let qr_drawing = if quiet {
        None
    } else {
        qr::render(uri.as_bytes(), qr_mode)?
    };
    let show = |out: &mut dyn Write, with_code: bool| -> Result<(), Error> {
        show_key(
            out,
            &uri,
            &base32,
            qr_drawing.as_deref().map(|d| d.as_str()),
        )?;
        if with_code {
            // Lets the user compare with the app before the first login.
            match plan.kind {
                Kind::Time => writeln!(
                    out,
                    "Your current verification code is {:06}",
                    hotp(&secret, time_step(clock.now(), plan.step_seconds()))
                )?,
                Kind::Counter => writeln!(
                    out,
                    "Your first verification code (counter {FIRST_HOTP_COUNTER}) is {:06}",
                    hotp(&secret, FIRST_HOTP_COUNTER)
                )?,
            }
        }
        Ok(())
    };

    let mut hotp_counter = FIRST_HOTP_COUNTER;
    if interactive {
        // The key is shown before the write here: the code check and the
        // final question need it on screen.
        let confirming = options.confirm && !quiet;
        if !quiet {
            show(prompter.output(), !confirming)?;
        }
        if confirming {
            hotp_counter = confirm(&mut prompter, &plan, &secret, clock)?;
        }
        let question = format!(
            "Do you want me to write the new secret to \"{}\"?",
            target.path.display()
        );
        if !prompter.yes_no(&question, true)? {
            return Err(Error::Cancelled);
        }
    }

    let file = build_file(&plan, secret.clone(), &scratch, hotp_counter);
    target
        .create(&file.to_bytes(), FILE_MODE, overwrite)
        .map_err(|error| {
            if interactive && !quiet {
                Error::NotSaved(Box::new(error))
            } else {
                error
            }
        })?;
    drop(file);

    if !interactive && !quiet {
        // Without questions the key is shown only once it is saved, so a
        // failed write never leaves a key in the app that no file matches.
        show(prompter.output(), true)?;
    }
    if !quiet {
        let out = prompter.output();
        writeln!(out, "Saved {}.", target.path.display())?;
        if !scratch.is_empty() {
            writeln!(out, "Your emergency scratch codes are:")?;
            for code in scratch.iter() {
                writeln!(out, "  {code:08}")?;
            }
            writeln!(
                out,
                "Each logs you in once without the app: keep them somewhere safe."
            )?;
        }
    }
    prompter.output().flush()?;
    Ok(())
}

#[cfg(test)]
mod tests;
