//! Store mode (`store=DIR`): secret files that belong to root, out of the
//! reach of the users they protect.
//!
//! With `~/.google_authenticator` the secret belongs to the user, so any
//! program running as that user can read it and make codes: a second factor
//! on `sudo` then falls with the account. In store mode the file is
//! `DIR/<account name>`, owned by root with no group or other access, and
//! only root (the module inside sudo, sshd, login; `totp-enroll`) opens it.
//!
//! What is checked, at every use:
//! - the store path is absolute and plain (no `.` or `..`); the process
//!   runs as root;
//! - the store is opened with the shared directory walk
//!   ([`crate::store::dir`], [`DirRules::strict`]): from `/` down with
//!   `openat`, no symlink followed, every directory owned by root and not
//!   writable by group or others (a sticky directory such as `/tmp` on the
//!   way is accepted: nobody but root can rename or remove root's entries
//!   there); the store itself must have no group or other access at all
//!   (who is enrolled is nobody else's business), and a missing store is an
//!   error, never "not enrolled";
//! - the account name is the account's own name in the user database: an
//!   alias (a second name for the same uid, or a differently spelled name a
//!   case-insensitive directory service answers for) and names outside a
//!   plain portable set are refused rather than mapped to a file;
//! - the file is read and updated by [`crate::store`] relative to the
//!   store's directory descriptor, as root: never through a symlink, only a
//!   regular file owned by root with no group or other access (0600 or
//!   stricter);
//! - an update, once it holds the file's lock, walks the store path again
//!   and writes nothing if it no longer names the directory it has open (the
//!   store was moved or swapped).

use crate::account;
pub use crate::account::{Account, NameProblem};
use crate::store::{self, AccessRules, DirRules, Identity, SecureDir, StoreError};
use nix::errno::Errno;
use nix::fcntl::{openat, renameat, renameat2, AtFlags, OFlag, RenameFlags};
use nix::sys::stat::{fchmod, fstat, fstatat, mkdirat, FileStat, Mode};
use nix::unistd::{fchown, unlinkat, Gid, Uid, UnlinkatFlags};
use std::ffi::OsStr;
use std::fmt;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// Where `totp-enroll` and the documentation put the store.
pub const DEFAULT_STORE: &str = "/var/lib/pam_totp";
/// Permission bits a store file may have: root's alone.
pub const STORE_FILE_ALLOWED_MODE: u32 = 0o600;
/// Mode `totp-enroll` gives a store directory it creates.
pub const STORE_DIR_MODE: u32 = 0o700;
/// Longest account name used as a file name: leaves room in NAME_MAX (255)
/// for the temporary names made from it.
pub const MAX_ACCOUNT_NAME: usize = 200;

/// Why the store directory itself is not trusted (the directories on the
/// way are judged by [`SecureDir`] under [`DirRules::strict`]).
#[derive(Debug)]
pub enum UnsafeDirectory {
    Missing,
    /// The store lets group or others in.
    Open {
        mode: u32,
    },
    NotRootOwned {
        uid: u32,
    },
}

impl fmt::Display for UnsafeDirectory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnsafeDirectory::Missing => f.write_str("does not exist"),
            UnsafeDirectory::Open { mode } => write!(
                f,
                "has mode {mode:04o}: the store must be root's alone (chmod 700)"
            ),
            UnsafeDirectory::NotRootOwned { uid } => {
                write!(f, "is owned by uid {uid}, not root")
            }
        }
    }
}

#[derive(Debug)]
pub enum RootStoreError {
    /// Store mode needs root's rights: nobody else may read the store.
    NotRoot,
    /// `store=` is not an absolute, plain path.
    BadPath,
    Directory {
        path: PathBuf,
        why: UnsafeDirectory,
    },
    /// The store path named another directory once the lock was held.
    Replaced,
    Name(NameProblem),
    /// The secret file itself (missing, symlink, owner, mode, size, lock, I/O).
    File(StoreError),
}

impl fmt::Display for RootStoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RootStoreError::NotRoot => {
                f.write_str("store mode needs root: this process cannot open the store")
            }
            RootStoreError::BadPath => {
                f.write_str("the store is not an absolute path without '.' or '..'")
            }
            RootStoreError::Directory { path, why } => {
                write!(f, "store directory {} {why}; refusing it", path.display())
            }
            RootStoreError::Replaced => f.write_str(
                "the store directory was moved or replaced during the update; nothing written",
            ),
            RootStoreError::Name(problem) => problem.fmt(f),
            RootStoreError::File(error) => error.fmt(f),
        }
    }
}

impl std::error::Error for RootStoreError {}

impl From<StoreError> for RootStoreError {
    fn from(error: StoreError) -> Self {
        RootStoreError::File(error)
    }
}

fn io_error(action: &'static str) -> impl FnOnce(Errno) -> RootStoreError {
    move |errno| {
        RootStoreError::File(StoreError::Io {
            action,
            error: io::Error::from(errno),
        })
    }
}

/// Whether `name` may name a file in the store: a conservative portable set,
/// so no name can step out of the directory, hide (a leading dot is reserved
/// for temporary files), pass for an option (`-`), carry control characters
/// into a log line, or be taken for another account's lock file.
pub fn is_store_account_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    let Some((&first, rest)) = bytes.split_first() else {
        return false;
    };
    let plain = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-');
    let body_ok = match rest.split_last() {
        // A final '$' marks machine accounts in Samba domains.
        Some((&last, middle)) => middle.iter().all(|&b| plain(b)) && (plain(last) || last == b'$'),
        None => true,
    };
    // The store's lock files are `<name>.pam_totp-lock`: no account may be
    // called like one.
    let reserved = name.contains(".pam_totp-");
    bytes.len() <= MAX_ACCOUNT_NAME
        && (first.is_ascii_alphanumeric() || first == b'_')
        && body_ok
        && !reserved
}

/// Looks `name` up for the store: a name of the accepted shape that is the
/// account's own name (see [`crate::account::own_name`]).
pub fn canonical_account(name: &str) -> Result<Account, NameProblem> {
    if !is_store_account_name(name) {
        return Err(NameProblem::Unusual);
    }
    account::own_name(name)
}

/// The components of an absolute store path, refusing `.` and `..`
/// (`Path::components` would drop an inner `.` silently).
fn components(path: &Path) -> Result<Vec<&OsStr>, RootStoreError> {
    let bytes = path.as_os_str().as_encoded_bytes();
    if !bytes.starts_with(b"/") {
        return Err(RootStoreError::BadPath);
    }
    let mut parts = Vec::new();
    for part in path.as_os_str().as_bytes().split(|&b| b == b'/') {
        match part {
            b"" => {}
            b"." | b".." => return Err(RootStoreError::BadPath),
            part => parts.push(OsStr::from_bytes(part)),
        }
    }
    Ok(parts)
}

/// Root alone: every directory from `/` to the store owned by root, none
/// writable by group or others (a sticky one such as `/tmp` excepted: there
/// nobody but root may rename or remove root's entries), no symlinks.
fn dir_rules() -> DirRules {
    DirRules::strict(&[])
}

/// Opens the store at `path` with the shared directory walk and checks the
/// store itself. With `create`, a missing store (only the last component)
/// is made with mode 0700 in a parent that passed the same checks.
fn walk(path: &Path, create: bool) -> Result<(SecureDir, FileStat), RootStoreError> {
    let parts = components(path)?;
    let missing = || RootStoreError::Directory {
        path: path.to_path_buf(),
        why: UnsafeDirectory::Missing,
    };
    let dir = match SecureDir::open(path, &dir_rules()) {
        Ok(dir) => dir,
        // A store that is not there is a broken configuration, never "this
        // user is not enrolled": nullok must not turn it into a pass.
        Err(StoreError::NotFound) if create => {
            let Some((last, _)) = parts.split_last() else {
                return Err(missing());
            };
            let parent = path.parent().ok_or_else(missing)?;
            let parent = SecureDir::open(parent, &dir_rules()).map_err(|e| match e {
                StoreError::NotFound => missing(),
                other => other.into(),
            })?;
            match mkdirat(&parent, *last, Mode::from_bits_truncate(STORE_DIR_MODE)) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(errno) => return Err(io_error("create the store directory")(errno)),
            }
            SecureDir::open(path, &dir_rules())?
        }
        Err(StoreError::NotFound) => return Err(missing()),
        Err(other) => return Err(other.into()),
    };
    let stat = fstat(&dir).map_err(io_error("inspect the store directory"))?;
    let unsafe_store = |why| RootStoreError::Directory {
        path: path.to_path_buf(),
        why,
    };
    if stat.st_uid != 0 {
        return Err(unsafe_store(UnsafeDirectory::NotRootOwned {
            uid: stat.st_uid,
        }));
    }
    let mode = stat.st_mode & 0o7777;
    if mode & 0o077 != 0 {
        return Err(unsafe_store(UnsafeDirectory::Open { mode }));
    }
    Ok((dir, stat))
}

/// An open, checked store directory. Every file operation goes through its
/// descriptor.
#[derive(Debug)]
pub struct RootStore {
    dir: SecureDir,
    path: PathBuf,
    dev: u64,
    ino: u64,
}

/// Owner and mode a written file gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ownership {
    uid: u32,
    gid: u32,
    mode: u32,
}

impl RootStore {
    /// Opens the store at `path` after checking it and every directory
    /// above it.
    pub fn open(path: &Path) -> Result<RootStore, RootStoreError> {
        Self::open_with(path, false)
    }

    /// Like [`RootStore::open`], creating the store directory (mode 0700)
    /// if it does not exist yet; its parents must already pass the checks.
    pub fn open_or_create(path: &Path) -> Result<RootStore, RootStoreError> {
        Self::open_with(path, true)
    }

    fn open_with(path: &Path, create: bool) -> Result<RootStore, RootStoreError> {
        if !Uid::effective().is_root() {
            return Err(RootStoreError::NotRoot);
        }
        let (dir, stat) = walk(path, create)?;
        Ok(RootStore {
            dir,
            path: path.to_path_buf(),
            dev: stat.st_dev,
            ino: stat.st_ino,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where `account`'s file is, for messages.
    pub fn file_path(&self, account: &Account) -> PathBuf {
        self.path.join(&account.name)
    }

    /// Whether the store path still names the directory we hold.
    fn still_in_place(&self) -> Result<(), RootStoreError> {
        let (_, now) = walk(&self.path, false)?;
        if now.st_dev == self.dev && now.st_ino == self.ino {
            Ok(())
        } else {
            Err(RootStoreError::Replaced)
        }
    }

    /// Owner, group and mode of `account`'s file, after the checks.
    pub fn inspect(&self, account: &Account) -> Result<(u32, u32, u32), RootStoreError> {
        self.read(account)?;
        let stat = fstatat(
            &self.dir,
            account.name.as_str(),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(io_error("inspect the secret file"))?;
        Ok((stat.st_uid, stat.st_gid, stat.st_mode & 0o7777))
    }

    /// Reads `account`'s file, without a lock: a look, not a decision.
    pub fn read(&self, account: &Account) -> Result<Zeroizing<Vec<u8>>, RootStoreError> {
        Ok(store::read_in(
            &self.dir,
            OsStr::new(&account.name),
            root(),
            &file_rules(),
        )?)
    }

    /// Read-modify-write under the file's lock, as [`store::update`]: the
    /// outer `Err` means nothing was read (or the store moved, and nothing
    /// was written); the inner result says whether the change was saved.
    pub fn update<T>(
        &self,
        account: &Account,
        change: impl FnOnce(&[u8]) -> (T, Option<Zeroizing<Vec<u8>>>),
    ) -> Result<(T, Result<(), RootStoreError>), RootStoreError> {
        let (result, saved) = store::update_in(
            &self.dir,
            OsStr::new(&account.name),
            root(),
            &file_rules(),
            |bytes| {
                // The lock is held: if the store path now names another
                // directory, someone with root's rights is moving things;
                // write nothing rather than guess which one is meant.
                if let Err(error) = self.still_in_place() {
                    return (Err(error), None);
                }
                let (result, new) = change(bytes);
                (Ok(result), new)
            },
        )?;
        Ok((result?, saved.map_err(RootStoreError::from)))
    }

    /// Writes `bytes` under a temporary name, gives it `target`'s owner and
    /// mode, syncs it and renames it over `account`'s file (or, with
    /// `no_replace`, into a free name), then syncs the directory. On failure
    /// the temporary file is removed and the old file is untouched.
    fn write_file(
        &self,
        account: &Account,
        bytes: &[u8],
        target: Ownership,
        no_replace: bool,
    ) -> Result<(), RootStoreError> {
        // A leading dot: never an account name, so never another's file.
        let temp = format!(".{}.tmp-{}", account.name, std::process::id());
        let _ = unlinkat(&self.dir, temp.as_str(), UnlinkatFlags::NoRemoveDir);
        let result = (|| {
            let fd = openat(
                &self.dir,
                temp.as_str(),
                OFlag::O_WRONLY
                    | OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o600),
            )
            .map_err(io_error("create the temporary file"))?;
            fchown(
                &fd,
                Some(Uid::from_raw(target.uid)),
                Some(Gid::from_raw(target.gid)),
            )
            .map_err(io_error("set the owner of the new secret file"))?;
            fchmod(&fd, Mode::from_bits_truncate(target.mode))
                .map_err(io_error("set the mode of the new secret file"))?;
            let mut file = File::from(fd);
            file.write_all(bytes).map_err(|error| {
                RootStoreError::File(StoreError::Io {
                    action: "write the temporary file",
                    error,
                })
            })?;
            file.sync_all().map_err(|error| {
                RootStoreError::File(StoreError::Io {
                    action: "sync the temporary file",
                    error,
                })
            })?;
            let renamed = if no_replace {
                renameat2(
                    &self.dir,
                    temp.as_str(),
                    &self.dir,
                    account.name.as_str(),
                    RenameFlags::RENAME_NOREPLACE,
                )
            } else {
                renameat(&self.dir, temp.as_str(), &self.dir, account.name.as_str())
            };
            renamed.map_err(|errno| match errno {
                Errno::EEXIST => RootStoreError::File(StoreError::AlreadyExists),
                errno => io_error("rename the temporary file")(errno),
            })
        })();
        if result.is_err() {
            let _ = unlinkat(&self.dir, temp.as_str(), UnlinkatFlags::NoRemoveDir);
            return result;
        }
        self.sync()
    }

    /// Writes a new file for `account`, owned by root with `mode` (group and
    /// other bits are dropped). Without `overwrite` an existing file is an
    /// error (`AlreadyExists`, decided atomically by the rename); with it an
    /// existing file is replaced under its lock.
    pub fn create(
        &self,
        account: &Account,
        bytes: &[u8],
        mode: u32,
        overwrite: bool,
    ) -> Result<(), RootStoreError> {
        let target = Ownership {
            uid: 0,
            gid: 0,
            mode: mode & STORE_FILE_ALLOWED_MODE,
        };
        if overwrite {
            // Under the lock, so a login in progress is not lost.
            let replaced = self.update(account, |_| ((), Some(Zeroizing::new(bytes.to_vec()))));
            match replaced {
                Ok(((), saved)) => return saved,
                Err(RootStoreError::File(StoreError::NotFound)) => {}
                // A file the checks refuse (wrong owner, loose mode) is
                // replaced too: that is how an admin repairs it.
                Err(RootStoreError::File(
                    StoreError::WrongOwner { .. } | StoreError::LoosePermissions { .. },
                )) => return self.write_file(account, bytes, target, false),
                Err(other) => return Err(other),
            }
        }
        self.write_file(account, bytes, target, true)
    }

    /// Under `account`'s lock, hands the file's contents to `f` and removes
    /// the file if `f` succeeds (moving it elsewhere without a window in
    /// which a login could change the old copy unseen).
    pub fn take<T, E: From<RootStoreError>>(
        &self,
        account: &Account,
        f: impl FnOnce(&[u8]) -> Result<T, E>,
    ) -> Result<T, E> {
        let (result, _) = self.update(account, |bytes| {
            let result = f(bytes).and_then(|value| {
                unlinkat(&self.dir, account.name.as_str(), UnlinkatFlags::NoRemoveDir)
                    .map_err(|errno| E::from(io_error("remove the secret file")(errno)))?;
                self.sync()?;
                Ok(value)
            });
            (result, None)
        })?;
        result
    }

    fn sync(&self) -> Result<(), RootStoreError> {
        self.dir
            .open_for_sync()
            .and_then(nix::unistd::fsync)
            .map_err(io_error("sync the store directory"))
    }
}

fn root() -> Identity {
    Identity {
        uid: Uid::from_raw(0),
        gid: Gid::from_raw(0),
    }
}

/// What a store file must be: root's, with no group or other access.
fn file_rules() -> AccessRules {
    AccessRules {
        owner: Some(Uid::from_raw(0)),
        allowed_mode: STORE_FILE_ALLOWED_MODE,
    }
}

#[cfg(test)]
mod tests;
