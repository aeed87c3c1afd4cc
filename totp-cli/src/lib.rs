//! `totp-enroll`: sets a user up for pam_totp by writing the same
//! `~/.google_authenticator` file Google's `google-authenticator` writes.
//!
//! The binary is a thin `main`; everything is here so that tests can pass
//! their own clock, random number generator, input and output:
//! - [`args`]: the command line (Google's flags and ours);
//! - [`enroll`]: settings, secret, QR code, confirmation, writing the file;
//! - [`regenerate`]: new scratch codes for an existing file;
//! - [`status`]: what a file configures;
//! - [`target`]: whose file, where, and with whose rights;
//! - [`store_mode`], [`migrate`]: the root-only store (`--store`, `--self`)
//!   and moving files between it and the home;
//! - [`qr`], [`uri`], [`prompt`], [`generate`]: the pieces.
#![deny(unsafe_code)]

pub mod args;
pub mod enroll;
pub mod error;
pub mod generate;
pub mod migrate;
pub mod prompt;
pub mod qr;
pub mod regenerate;
pub mod status;
pub mod store_mode;
pub mod target;
#[cfg(test)]
mod test_support;
pub mod uri;

use args::{Action, Parsed, Request};
use error::{exit, Error};
use rand::TryCryptoRng;
use std::ffi::OsString;
use std::io::{BufRead, IsTerminal, Write};

/// The current time, passed in so tests can fix it.
pub use pam_totp::clock::{Clock, SystemClock};

/// Where questions are asked and answers read.
pub struct Console<'a> {
    pub input: &'a mut dyn BufRead,
    pub output: &'a mut dyn Write,
    /// Standard input is a terminal, so questions can be answered.
    pub interactive: bool,
    /// Standard output is a terminal, so a QR code is drawn by default.
    pub output_is_terminal: bool,
    /// The terminal's (columns, lines), when standard output is one.
    pub terminal_size: Option<(usize, usize)>,
}

/// The size of the terminal on `fd`, if it is one and says.
fn terminal_size(fd: impl std::os::fd::AsFd) -> Option<(usize, usize)> {
    let size = rustix::termios::tcgetwinsize(fd).ok()?;
    (size.ws_col > 0 && size.ws_row > 0)
        .then(|| (usize::from(size.ws_col), usize::from(size.ws_row)))
}

/// The host name for default labels; Google's tool falls back to "unix".
pub fn host_name() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|name| name.into_string().ok())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "unix".to_owned())
}

/// Carries out a parsed request.
pub fn execute<R: TryCryptoRng + ?Sized>(
    request: &Request,
    console: &mut Console<'_>,
    clock: &dyn Clock,
    rng: &mut R,
) -> Result<(), Error> {
    if let Some(dir) = &request.store.store {
        return store_mode::execute(request, dir, console, clock, rng);
    }
    let target = target::Target::resolve(request.user.as_deref(), request.secret_path.as_deref())?;
    if let Action::Enroll(_) = request.action {
        if let Some(warning) = target::foreign_home_warning(&target, request.user.is_some()) {
            eprintln!("totp-enroll: warning: {warning}");
        }
    }
    match &request.action {
        Action::Enroll(options) => enroll::enroll(
            options,
            request.quiet,
            &target,
            &host_name(),
            console,
            clock,
            rng,
        ),
        Action::RegenerateScratch { codes } => {
            regenerate::regenerate(&target, *codes, request.quiet, console.output, rng)
        }
        Action::Status { show_secret } => status::status(&target, *show_secret, console.output),
    }
}

/// The program: parses `args`, runs with the real terminal, clock and the
/// operating system's random number generator, and returns the exit code.
pub fn run(args: impl IntoIterator<Item = OsString>) -> u8 {
    let request = match args::parse(args) {
        Parsed::Run(request) => request,
        Parsed::Info(text) => {
            print!("{text}");
            return exit::OK;
        }
        Parsed::Usage(message) => {
            eprintln!("totp-enroll: {}", Error::Usage(message));
            return exit::USAGE;
        }
    };
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let interactive = stdin.is_terminal();
    if let Action::Enroll(options) = &request.action {
        if options.force && !options.unattended && !interactive {
            eprintln!("totp-enroll: {FORCE_HINT}");
        }
    }
    let mut console = Console {
        interactive,
        output_is_terminal: stdout.is_terminal(),
        terminal_size: terminal_size(&stdout),
        input: &mut stdin.lock(),
        output: &mut stdout.lock(),
    };
    let result = execute(&request, &mut console, &SystemClock, &mut rand::rngs::OsRng);
    // What was printed goes out before the error that follows it.
    let flushed = console.output.flush();
    let result = result.and_then(|()| flushed.map_err(Error::from));
    match result {
        Ok(()) => exit::OK,
        // A reader that stopped reading (`--status | head -1`) is no error
        // of ours, as for any filter; an enrollment says what went unseen.
        Err(Error::Terminal(error))
            if error.kind() == std::io::ErrorKind::BrokenPipe
                && !matches!(request.action, Action::Enroll(_)) =>
        {
            exit::OK
        }
        Err(error) => {
            eprintln!("totp-enroll: {error}");
            if matches!(error, Error::Cancelled) && !interactive {
                eprintln!(
                    "totp-enroll: the answers on standard input ended before the last \
                     question; --unattended enrolls without questions"
                );
            }
            error.exit_code()
        }
    }
}

/// Printed when `-f` is given without a terminal: scripts written for the
/// `-f` of pam_totp 0.1's totp-enroll ("ask nothing") now get questions.
pub const FORCE_HINT: &str = "note: -f now means what it means for google-authenticator: \
write the file without asking first (questions are still asked). To enroll without any \
question, as -f did in pam_totp 0.1, use --unattended (with -f to replace an existing file).";
