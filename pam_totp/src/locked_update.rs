//! The one place where a secret file is read, decided on and written back
//! under its per-user lock.
//!
//! Every change to a secret file (a login attempt, a grace-period login, a
//! rate-limit refusal, `totp-enroll --regenerate-scratch`) goes through
//! [`read_decide_write`]: lock, re-read and parse, let the caller decide on
//! the parsed file, give a [`BeforeCommit`] check the last word, and
//! serialise and replace the file only if something changed. A shared-state
//! backend (one used-code marker for a fleet of hosts) plugs in as a
//! [`BeforeCommit`] check: it sees the local decision while the lock is
//! still held, and may change it before anything is saved.

use crate::location::SecretLocation;
use crate::secret_file::{ParseError, SecretFile};
use crate::store::{self, AccessRules, Identity, Look, StoreError};
use std::fmt;
use std::path::Path;

/// What a decide step concluded about the parsed file.
#[derive(Debug)]
pub struct Decided<T> {
    /// The caller's own result (a verdict, new scratch codes …).
    pub outcome: T,
    /// Whether the decide step changed the file so that it must be saved.
    pub changed: bool,
}

/// The last step before the file is written, still under the lock.
pub trait BeforeCommit<T> {
    /// May inspect and change the decision and the file (for example refuse
    /// a code that another host recorded first). The file is saved after
    /// this returns if `decided.changed` is then set.
    fn before_commit(&mut self, decided: &mut Decided<T>, file: &mut SecretFile);
}

/// No further check: the local decision stands.
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalOnly;

impl<T> BeforeCommit<T> for LocalOnly {
    fn before_commit(&mut self, _: &mut Decided<T>, _: &mut SecretFile) {}
}

/// Whether the decided change reached the disk.
#[derive(Debug)]
pub enum Saved {
    /// Nothing changed, nothing was written.
    Unchanged,
    /// The new contents replaced the file durably.
    Written,
    /// The change could not be saved; the file is as it was.
    Failed(StoreError),
}

impl Saved {
    /// The error of a failed save, if any.
    pub fn error(self) -> Option<StoreError> {
        match self {
            Saved::Failed(error) => Some(error),
            Saved::Unchanged | Saved::Written => None,
        }
    }
}

/// A decision taken under the lock, and what became of its change.
#[derive(Debug)]
pub struct Committed<T> {
    pub outcome: T,
    pub saved: Saved,
}

/// Why no decision could be taken.
#[derive(Debug)]
pub enum UpdateError {
    /// The file could not be opened, checked, locked or read.
    Store(StoreError),
    /// The file read under the lock is not a valid secret file.
    Parse(ParseError),
}

impl fmt::Display for UpdateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpdateError::Store(error) => write!(f, "{error}"),
            UpdateError::Parse(error) => write!(f, "secret file is corrupt: {error}"),
        }
    }
}

impl std::error::Error for UpdateError {}

/// Locks the file at `path` (accessed as `identity`, checked against
/// `rules`), parses what it holds now, lets `decide` judge and change it,
/// gives `check` the last word, and writes the file back if the decision
/// says it changed. A corrupt file is never passed to `decide`: it is
/// reported as [`UpdateError::Parse`] and left untouched.
pub fn read_decide_write<T>(
    path: &Path,
    identity: Identity,
    rules: &AccessRules,
    decide: impl FnOnce(&mut SecretFile) -> Decided<T>,
    check: &mut dyn BeforeCommit<T>,
) -> Result<Committed<T>, UpdateError> {
    let location = SecretLocation::Path {
        path: path.to_path_buf(),
        identity,
        rules: *rules,
    };
    read_decide_write_at(&location, decide, check)
}

/// [`read_decide_write`] for a file in either layout (home file or store).
pub fn read_decide_write_at<T>(
    location: &SecretLocation,
    decide: impl FnOnce(&mut SecretFile) -> Decided<T>,
    check: &mut dyn BeforeCommit<T>,
) -> Result<Committed<T>, UpdateError> {
    read_decide_write_from(Source::Location(location), decide, check)
}

/// [`read_decide_write`] of the file a [`store::look`] found, with the
/// directory and the file it opened: no second walk, no second open.
pub fn read_decide_write_after_look<T>(
    look: &Look,
    rules: &AccessRules,
    decide: impl FnOnce(&mut SecretFile) -> Decided<T>,
    check: &mut dyn BeforeCommit<T>,
) -> Result<Committed<T>, UpdateError> {
    read_decide_write_from(Source::Look(look, rules), decide, check)
}

enum Source<'a> {
    Location(&'a SecretLocation),
    Look(&'a Look, &'a AccessRules),
}

fn read_decide_write_from<T>(
    source: Source<'_>,
    decide: impl FnOnce(&mut SecretFile) -> Decided<T>,
    check: &mut dyn BeforeCommit<T>,
) -> Result<Committed<T>, UpdateError> {
    let mut wrote = false;
    let change = |bytes: &[u8]| {
        let mut file = match SecretFile::parse(bytes) {
            Ok(file) => file,
            Err(error) => return (Err(error), None),
        };
        let mut decided = decide(&mut file);
        check.before_commit(&mut decided, &mut file);
        wrote = decided.changed;
        let new = decided.changed.then(|| file.to_bytes());
        (Ok(decided.outcome), new)
    };
    let (outcome, saved) = match source {
        Source::Location(location) => location.update(change),
        Source::Look(look, rules) => store::update_after_look(look, rules, change),
    }
    .map_err(UpdateError::Store)?;
    let outcome = outcome.map_err(UpdateError::Parse)?;
    let saved = match saved {
        Err(error) => Saved::Failed(error),
        Ok(()) if wrote => Saved::Written,
        Ok(()) => Saved::Unchanged,
    };
    Ok(Committed { outcome, saved })
}
