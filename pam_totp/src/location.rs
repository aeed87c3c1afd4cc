//! Where one account's secret file lives and how it is reached: a path
//! accessed with a user's rights ([`crate::store`]), or a root-only store
//! ([`crate::root_store`]). The module, the locked update and totp-enroll
//! go through this one type, so both layouts get the same read and the same
//! locked read-modify-write.

use crate::root_store::{Account, RootStore, RootStoreError};
use crate::store::{self, AccessRules, Identity, StoreError};
use std::fmt;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

#[derive(Debug)]
pub enum SecretLocation {
    /// A file by path (the home file, or `secret=`), opened as `identity`
    /// and checked against `rules`.
    Path {
        path: PathBuf,
        identity: Identity,
        rules: AccessRules,
    },
    /// `<store>/<account>`, root's alone.
    Store { store: RootStore, account: Account },
}

impl From<RootStoreError> for StoreError {
    fn from(error: RootStoreError) -> Self {
        match error {
            RootStoreError::File(error) => error,
            other => StoreError::StoreMode(Box::new(other)),
        }
    }
}

impl SecretLocation {
    /// Reads the file after the checks, without a lock: a look.
    pub fn read(&self) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        match self {
            SecretLocation::Path {
                path,
                identity,
                rules,
            } => store::read(path, *identity, rules),
            SecretLocation::Store { store, account } => Ok(store.read(account)?),
        }
    }

    /// Read-modify-write under the file's lock; see [`store::update`].
    pub fn update<T>(
        &self,
        change: impl FnOnce(&[u8]) -> (T, Option<Zeroizing<Vec<u8>>>),
    ) -> Result<(T, Result<(), StoreError>), StoreError> {
        match self {
            SecretLocation::Path {
                path,
                identity,
                rules,
            } => store::update(path, *identity, rules, change),
            SecretLocation::Store { store, account } => {
                let (result, saved) = store.update(account, change)?;
                Ok((result, saved.map_err(StoreError::from)))
            }
        }
    }

    /// The file's path, for messages.
    pub fn path(&self) -> PathBuf {
        match self {
            SecretLocation::Path { path, .. } => path.clone(),
            SecretLocation::Store { store, account } => store.file_path(account),
        }
    }

    /// Whether this is a store file.
    pub fn is_store(&self) -> bool {
        matches!(self, SecretLocation::Store { .. })
    }

    pub fn store_dir(&self) -> Option<&Path> {
        match self {
            SecretLocation::Store { store, .. } => Some(store.path()),
            SecretLocation::Path { .. } => None,
        }
    }
}

impl fmt::Display for SecretLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretLocation::Path { path, identity, .. } => {
                write!(
                    f,
                    "secret file {} read as uid {}",
                    path.display(),
                    identity.uid
                )
            }
            SecretLocation::Store { store, account } => write!(
                f,
                "store file {} read as root",
                store.file_path(account).display()
            ),
        }
    }
}
