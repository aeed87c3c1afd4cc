//! Every way `totp-enroll` can fail, the one-line message for each, and the
//! exit code it maps to. Messages name paths and settings, never a secret or
//! a code.

use pam_totp::secret_file::ParseError;
use pam_totp::store::StoreError;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Exit codes, documented in `--help` (keep [`crate::args::EXIT_CODES_HELP`]
/// in step).
pub mod exit {
    pub const OK: u8 = 0;
    pub const ERROR: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const EXISTS: u8 = 3;
    // 4 meant "the code did not match" before the check asked until right.
    pub const CANCELLED: u8 = 5;
    pub const NOT_ENROLLED: u8 = 6;
}

#[derive(Debug)]
pub enum Error {
    /// Bad flags or flag values, already phrased for the user.
    Usage(String),
    /// The secret file exists and may not be replaced.
    Exists(PathBuf),
    /// The user answered "no", or the input ended, before anything was written.
    Cancelled,
    /// `--status` or `--regenerate-scratch` found no secret file.
    NotEnrolled(PathBuf),
    UnknownUser(String),
    /// A user lookup or an identity check failed for a reason of its own.
    User(String),
    NotPermitted(&'static str),
    Store {
        path: PathBuf,
        error: StoreError,
    },
    Parse {
        path: PathBuf,
        error: ParseError,
    },
    /// `--status` could not read the file; the text says why in the
    /// module's terms (owner, mode, symlink).
    Unreadable(String),
    /// The operating system's random number generator failed.
    Random,
    Terminal(io::Error),
    Qr(String),
    /// Writing failed after the key was shown: the user must not keep it.
    NotSaved(Box<Error>),
    /// The file was saved, but showing what follows failed.
    SavedNotShown {
        path: PathBuf,
        /// What the user did not see, e.g. "the scratch codes".
        unseen: &'static str,
        error: Box<Error>,
    },
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) => exit::USAGE,
            Error::Exists(_) => exit::EXISTS,
            Error::Cancelled => exit::CANCELLED,
            Error::NotEnrolled(_) => exit::NOT_ENROLLED,
            Error::UnknownUser(_)
            | Error::User(_)
            | Error::NotPermitted(_)
            | Error::Store { .. }
            | Error::Parse { .. }
            | Error::Unreadable(_)
            | Error::Random
            | Error::Terminal(_)
            | Error::Qr(_)
            | Error::SavedNotShown { .. } => exit::ERROR,
            Error::NotSaved(inner) => inner.exit_code(),
        }
    }

    /// A store failure on `path`, with the two outcomes that have their own
    /// meaning for the user picked out.
    pub fn store(path: &std::path::Path, error: StoreError) -> Error {
        match error {
            StoreError::AlreadyExists => Error::Exists(path.to_path_buf()),
            StoreError::NotFound => Error::NotEnrolled(path.to_path_buf()),
            error => Error::Store {
                path: path.to_path_buf(),
                error,
            },
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(message) => write!(f, "{message} (see --help)"),
            Error::Exists(path) => write!(
                f,
                "{} already exists; nothing was written (-f replaces it)",
                path.display()
            ),
            Error::Cancelled => f.write_str("cancelled; nothing was written"),
            Error::NotEnrolled(path) => {
                write!(f, "{} does not exist: not enrolled", path.display())
            }
            Error::UnknownUser(name) => write!(f, "no such user: {name}"),
            Error::User(message) => f.write_str(message),
            Error::NotPermitted(message) => f.write_str(message),
            Error::Store { path, error } => write_store_error(f, path, error),
            Error::Parse { path, error } => write!(f, "{}: {error}", path.display()),
            Error::Unreadable(explanation) => f.write_str(explanation),
            Error::Random => {
                f.write_str("cannot read random bytes from the operating system's generator")
            }
            Error::Terminal(error) => write!(f, "cannot talk to the terminal: {error}"),
            Error::Qr(message) => write!(f, "cannot draw the QR code: {message}"),
            Error::NotSaved(inner) => write!(
                f,
                "{inner}; the key shown above was NOT saved: remove it from the app"
            ),
            Error::SavedNotShown {
                path,
                unseen,
                error,
            } => write!(
                f,
                "{} was saved, but {unseen} could not be shown ({error}): \
                 totp-enroll --status --show-secret shows the key, \
                 totp-enroll --regenerate-scratch makes new scratch codes",
                path.display()
            ),
        }
    }
}

/// A store failure on `path`. The new file is first written under a
/// temporary name beside it: a failure there is about the directory, which
/// is what the user can fix, so the message names it.
fn write_store_error(f: &mut fmt::Formatter<'_>, path: &Path, error: &StoreError) -> fmt::Result {
    match error {
        StoreError::Io { action, error } if action.contains("temporary file") => {
            let dir = match path.parent() {
                Some(dir) if !dir.as_os_str().is_empty() => dir,
                _ => Path::new("."),
            };
            write!(
                f,
                "cannot write a new file in the directory {} (to save {}): {error}",
                dir.display(),
                path.display()
            )
        }
        error => write!(f, "{}: {error}", path.display()),
    }
}

impl std::error::Error for Error {}

impl From<io::Error> for Error {
    fn from(error: io::Error) -> Self {
        Error::Terminal(error)
    }
}
