//! `--migrate-to-store` and `--migrate-to-home`: move one account's secret
//! file between the home layout and the root-only store, byte for byte, so
//! its state (used codes, rate-limit attempts, clock skew, HOTP counter,
//! scratch codes) moves with it.
//!
//! The old copy is removed only once the new one is durably written, and
//! while the old one's lock is held, after checking that no login changed it
//! since it was copied (if one did, the new copy is brought up to date and
//! the check repeats). A crash in between leaves two identical files, never
//! none.

use crate::enroll::FILE_MODE;
use crate::error::Error;
use crate::target::Target;
use pam_totp::root_store::{Account, RootStore, RootStoreError, STORE_FILE_ALLOWED_MODE};
use pam_totp::secret_file::SecretFile;
use pam_totp::store::{self, AccessRules, NewFile, StoreError, DEFAULT_ALLOWED_MODE};
use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use zeroize::Zeroizing;

/// Times the new copy is brought up to date with logins that changed the
/// old one during the move, before giving up.
const CATCH_UP_ROUNDS: usize = 5;

impl From<RootStoreError> for Error {
    fn from(error: RootStoreError) -> Self {
        Error::User(error.to_string())
    }
}

/// The home file as the module would read it: the user's, 0600 or stricter.
fn home_target(
    account: &Account,
    secret_path: Option<&Path>,
) -> Result<(Target, AccessRules), Error> {
    let home = Target::resolve(Some(&account.name), secret_path)?;
    let rules = AccessRules {
        owner: Some(home.owner.uid),
        allowed_mode: DEFAULT_ALLOWED_MODE,
    };
    Ok((home, rules))
}

fn check_parses(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    SecretFile::parse(bytes)
        .map(drop)
        .map_err(|error| Error::Parse {
            path: path.to_path_buf(),
            error,
        })
}

enum Handover {
    Removed,
    Changed(Zeroizing<Vec<u8>>),
}

/// Home file → `<store>/<account>`, root:root, keeping its mode (0400 or
/// 0600). Refuses to replace a store file that exists.
pub fn to_store(
    account: &Account,
    dir: &Path,
    secret_path: Option<&Path>,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let (home, rules) = home_target(account, secret_path)?;
    let read = |error| Error::store(&home.path, error);
    let mut copied = store::read(&home.path, home.access, &rules).map_err(read)?;
    check_parses(&home.path, &copied)?;
    let mode = fs::symlink_metadata(&home.path)
        .map(|m| m.mode() & STORE_FILE_ALLOWED_MODE)
        .unwrap_or(FILE_MODE);
    let store = RootStore::open_or_create(dir)?;
    let store_path = store.file_path(account);
    store
        .create(account, &copied, mode, false)
        .map_err(|e| Error::store(&store_path, e.into()))?;
    for _ in 0..CATCH_UP_ROUNDS {
        let (handover, _) = store::update(&home.path, home.access, &rules, |now| {
            if now != copied.as_slice() {
                return (Ok(Handover::Changed(Zeroizing::new(now.to_vec()))), None);
            }
            // Still under the lock, as the user: nothing can change it now.
            (
                fs::remove_file(&home.path).map(|()| Handover::Removed),
                None,
            )
        })
        .map_err(read)?;
        match handover {
            Ok(Handover::Removed) => {
                report(out, &home.path, &store_path)?;
                writeln!(
                    out,
                    "The secret was readable by {} until now: if that account may already be \
                     compromised, enrol afresh instead (totp-enroll --store {} --user {} -f).",
                    account.name,
                    dir.display(),
                    account.name
                )?;
                return Ok(());
            }
            Ok(Handover::Changed(now)) => {
                check_parses(&home.path, &now)?;
                store
                    .create(account, &now, mode, true)
                    .map_err(|e| Error::store(&store_path, e.into()))?;
                copied = now;
            }
            Err(error) => {
                return Err(Error::store(
                    &home.path,
                    StoreError::Io {
                        action: "remove the old secret file",
                        error,
                    },
                ))
            }
        }
    }
    Err(Error::User(format!(
        "{} kept changing during the move; both copies are kept: run the migration again",
        home.path.display()
    )))
}

/// `<store>/<account>` → home file, owned by the user, mode 0400. Refuses to
/// replace a home file that exists.
pub fn to_home(
    account: &Account,
    dir: &Path,
    secret_path: Option<&Path>,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let (home, _) = home_target(account, secret_path)?;
    let store = RootStore::open(dir)?;
    let store_path = store.file_path(account);
    store
        .take(account, |bytes| -> Result<(), Error> {
            check_parses(&store_path, bytes)?;
            store::create(
                &home.path,
                bytes,
                home.access,
                NewFile {
                    owner: home.owner,
                    mode: FILE_MODE,
                },
                false,
            )
            .map_err(|error| Error::store(&home.path, error))
        })
        .map_err(|error| match error {
            Error::User(_) if !store_path.exists() => Error::NotEnrolled(store_path.clone()),
            other => other,
        })?;
    report(out, &store_path, &home.path)?;
    writeln!(
        out,
        "{} can read the secret again: the store's protection no longer applies.",
        account.name
    )?;
    Ok(())
}

fn report(out: &mut dyn Write, from: &Path, to: &Path) -> Result<(), Error> {
    writeln!(
        out,
        "Moved {} to {}, state included (used codes, rate-limit attempts, clock skew, \
         scratch codes).",
        from.display(),
        to.display()
    )?;
    out.flush()?;
    Ok(())
}
