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
//! - every directory from `/` down to the store is walked with `openat`,
//!   never following a symlink; each must be a directory owned by root and
//!   not writable by group or others; the store itself must have no group
//!   or other access at all (who is enrolled is nobody else's business);
//! - the account name is the account's own name in the user database: an
//!   alias (a second name for the same uid, or a differently spelled name a
//!   case-insensitive directory service answers for) and names outside a
//!   plain portable set are refused rather than mapped to a file;
//! - the file is opened relative to the store's directory descriptor, never
//!   following a symlink, and must be a regular file owned by root with no
//!   group or other access (mode 0600 or stricter);
//! - an update takes the file's lock, then walks the store path again and
//!   refuses to go on if it no longer names the directory it has open (the
//!   store was moved or swapped); the new file is written, given the old
//!   owner and mode, synced, renamed over the old one and the directory
//!   synced, all relative to the directory descriptor.

use crate::secret_file::MAX_FILE_SIZE;
use crate::store::StoreError;
use nix::errno::Errno;
use nix::fcntl::{openat, renameat, renameat2, OFlag, RenameFlags};
use nix::sys::stat::{fchmod, fstat, fstatat, mkdirat, FileStat, Mode, SFlag};
use nix::unistd::{fchown, unlinkat, Gid, Uid, UnlinkatFlags, User};
use std::ffi::OsStr;
use std::fmt;
use std::fs::{File, TryLockError};
use std::io::{self, Read, Seek, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
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
/// How long an update waits for other logins' updates of the same file.
const LOCK_WAIT: Duration = Duration::from_secs(10);
const LOCK_POLL: Duration = Duration::from_millis(2);

/// Why a directory on the way to the store is not trusted.
#[derive(Debug)]
pub enum UnsafeDirectory {
    Missing,
    Symlink,
    NotDirectory,
    NotRootOwned {
        uid: u32,
    },
    Writable {
        mode: u32,
    },
    /// The store itself lets group or others in.
    Open {
        mode: u32,
    },
    Io(Errno),
}

impl fmt::Display for UnsafeDirectory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnsafeDirectory::Missing => f.write_str("does not exist"),
            UnsafeDirectory::Symlink => f.write_str("is a symbolic link"),
            UnsafeDirectory::NotDirectory => f.write_str("is not a directory"),
            UnsafeDirectory::NotRootOwned { uid } => {
                write!(f, "is owned by uid {uid}, not root")
            }
            UnsafeDirectory::Writable { mode } => {
                write!(f, "has mode {mode:04o}: group or others can write it")
            }
            UnsafeDirectory::Open { mode } => write!(
                f,
                "has mode {mode:04o}: the store must be root's alone (chmod 700)"
            ),
            UnsafeDirectory::Io(errno) => write!(f, "cannot be opened: {}", errno.desc()),
        }
    }
}

/// Why an account name is not used in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameProblem {
    /// Outside the characters and length accepted in store mode.
    Unusual,
    /// No such account.
    Unknown,
    /// Another name of an account whose own name is this.
    Alias { canonical: String },
    /// The user database could not be asked.
    Lookup(Errno),
}

impl fmt::Display for NameProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameProblem::Unusual => f.write_str(
                "the user name has characters or a length store mode does not accept \
                 (letters, digits, '_', '.', '-', a final '$'; not starting with '.' or '-')",
            ),
            NameProblem::Unknown => f.write_str("no such user"),
            NameProblem::Alias { canonical } => write!(
                f,
                "the user name is an alias of the account \"{}\"; store mode accepts only \
                 the account's own name",
                canonical.escape_debug()
            ),
            NameProblem::Lookup(errno) => {
                write!(f, "cannot look the user up: {}", errno.desc())
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
/// for temporary files), pass for an option (`-`) or carry control
/// characters into a log line.
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
    bytes.len() <= MAX_ACCOUNT_NAME && (first.is_ascii_alphanumeric() || first == b'_') && body_ok
}

/// An account as the store knows it: its own name, uid and gid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub uid: Uid,
    pub gid: Gid,
    pub home: PathBuf,
}

/// Looks `name` up and accepts it only if it is the account's own name:
/// what the database calls the account found by that name, and what it
/// calls the account's uid.
pub fn canonical_account(name: &str) -> Result<Account, NameProblem> {
    if !is_store_account_name(name) {
        return Err(NameProblem::Unusual);
    }
    let user = User::from_name(name)
        .map_err(NameProblem::Lookup)?
        .ok_or(NameProblem::Unknown)?;
    if user.name != name {
        return Err(NameProblem::Alias {
            canonical: user.name,
        });
    }
    let by_uid = User::from_uid(user.uid)
        .map_err(NameProblem::Lookup)?
        .ok_or(NameProblem::Unknown)?;
    if by_uid.name != name {
        return Err(NameProblem::Alias {
            canonical: by_uid.name,
        });
    }
    Ok(Account {
        name: user.name,
        uid: user.uid,
        gid: user.gid,
        home: user.dir,
    })
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

fn check_directory(stat: &FileStat, is_store: bool) -> Result<(), UnsafeDirectory> {
    if SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits()) != SFlag::S_IFDIR {
        return Err(UnsafeDirectory::NotDirectory);
    }
    if stat.st_uid != 0 {
        return Err(UnsafeDirectory::NotRootOwned { uid: stat.st_uid });
    }
    let mode = stat.st_mode & 0o7777;
    if mode & 0o022 != 0 {
        return Err(UnsafeDirectory::Writable { mode });
    }
    if is_store && mode & 0o077 != 0 {
        return Err(UnsafeDirectory::Open { mode });
    }
    Ok(())
}

const DIR_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);

/// Walks from `/` to `path` one component at a time, checking each
/// directory, and returns the last one open. With `create`, a missing last
/// component is made (mode 0700), after its parent passed the checks.
fn walk(path: &Path, create: bool) -> Result<(OwnedFd, FileStat), RootStoreError> {
    let parts = components(path)?;
    let mut at = PathBuf::from("/");
    let unsafe_dir = |at: &Path, why| RootStoreError::Directory {
        path: at.to_path_buf(),
        why,
    };
    let mut dir = nix::fcntl::open("/", DIR_FLAGS, Mode::empty())
        .map_err(|e| unsafe_dir(&at, UnsafeDirectory::Io(e)))?;
    let mut stat = fstat(&dir).map_err(|e| unsafe_dir(&at, UnsafeDirectory::Io(e)))?;
    check_directory(&stat, parts.is_empty()).map_err(|why| unsafe_dir(&at, why))?;
    for (i, part) in parts.iter().enumerate() {
        at.push(part);
        let last = i + 1 == parts.len();
        let next = match openat(&dir, *part, DIR_FLAGS, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) if last && create => {
                mkdirat(&dir, *part, Mode::from_bits_truncate(STORE_DIR_MODE))
                    .map_err(|e| unsafe_dir(&at, UnsafeDirectory::Io(e)))?;
                openat(&dir, *part, DIR_FLAGS, Mode::empty())
                    .map_err(|e| unsafe_dir(&at, UnsafeDirectory::Io(e)))?
            }
            Err(Errno::ENOENT) => return Err(unsafe_dir(&at, UnsafeDirectory::Missing)),
            Err(errno @ (Errno::ELOOP | Errno::ENOTDIR)) => {
                // Tell a symlink from another non-directory, for the message.
                let why = match fstatat(&dir, *part, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
                    Ok(s) if s.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFLNK.bits() => {
                        UnsafeDirectory::Symlink
                    }
                    Ok(_) => UnsafeDirectory::NotDirectory,
                    Err(_) => UnsafeDirectory::Io(errno),
                };
                return Err(unsafe_dir(&at, why));
            }
            Err(errno) => return Err(unsafe_dir(&at, UnsafeDirectory::Io(errno))),
        };
        stat = fstat(&next).map_err(|e| unsafe_dir(&at, UnsafeDirectory::Io(e)))?;
        check_directory(&stat, last).map_err(|why| unsafe_dir(&at, why))?;
        dir = next;
    }
    Ok((dir, stat))
}

/// An open, checked store directory. Every file operation goes through its
/// descriptor.
#[derive(Debug)]
pub struct RootStore {
    dir: OwnedFd,
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

const FILE_READ_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_NONBLOCK)
    .union(OFlag::O_NOCTTY)
    .union(OFlag::O_CLOEXEC);

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

    /// Opens `account`'s file and checks it (type, owner root, mode, size).
    fn open_checked(&self, account: &Account) -> Result<(File, FileStat), RootStoreError> {
        let fd = openat(
            &self.dir,
            account.name.as_str(),
            FILE_READ_FLAGS,
            Mode::empty(),
        )
        .map_err(|errno| match errno {
            Errno::ENOENT => RootStoreError::File(StoreError::NotFound),
            Errno::ELOOP => RootStoreError::File(StoreError::Symlink),
            errno => RootStoreError::File(StoreError::Io {
                action: "open the secret file",
                error: io::Error::from(errno),
            }),
        })?;
        let stat = fstat(&fd).map_err(io_error("inspect the secret file"))?;
        if stat.st_mode & SFlag::S_IFMT.bits() != SFlag::S_IFREG.bits() {
            return Err(StoreError::NotRegularFile.into());
        }
        if stat.st_uid != 0 {
            return Err(StoreError::WrongOwner {
                owner: stat.st_uid,
                expected: 0,
            }
            .into());
        }
        let mode = stat.st_mode & 0o7777;
        if mode & !STORE_FILE_ALLOWED_MODE != 0 {
            return Err(StoreError::LoosePermissions {
                mode,
                allowed: STORE_FILE_ALLOWED_MODE,
            }
            .into());
        }
        if stat.st_size < 0 || stat.st_size as u64 > MAX_FILE_SIZE as u64 {
            return Err(StoreError::TooLarge.into());
        }
        Ok((File::from(fd), stat))
    }

    /// Owner, group and mode of `account`'s file, after the checks.
    pub fn inspect(&self, account: &Account) -> Result<(u32, u32, u32), RootStoreError> {
        let (_, stat) = self.open_checked(account)?;
        Ok((stat.st_uid, stat.st_gid, stat.st_mode & 0o7777))
    }

    /// Reads `account`'s file, without a lock: a look, not a decision.
    pub fn read(&self, account: &Account) -> Result<Zeroizing<Vec<u8>>, RootStoreError> {
        let (file, _) = self.open_checked(account)?;
        read_all(&file)
    }

    /// Read-modify-write under the file's lock, as [`crate::store::update`]:
    /// the outer `Err` means nothing was read; the inner result says whether
    /// the change was saved.
    pub fn update<T>(
        &self,
        account: &Account,
        change: impl FnOnce(&[u8]) -> (T, Option<Zeroizing<Vec<u8>>>),
    ) -> Result<(T, Result<(), RootStoreError>), RootStoreError> {
        self.locked(account, |store, file, stat| {
            let contents = read_all(file)?;
            let (result, new_contents) = change(&contents);
            let saved = match new_contents {
                None => Ok(()),
                Some(bytes) => store.replace(account, &bytes, Ownership::of(stat)),
            };
            Ok((result, saved))
        })
    }

    /// Runs `f` with `account`'s file open, checked and locked, after making
    /// sure the store is still where it was and the name still names the
    /// locked file.
    fn locked<T>(
        &self,
        account: &Account,
        f: impl FnOnce(&RootStore, &File, &FileStat) -> Result<T, RootStoreError>,
    ) -> Result<T, RootStoreError> {
        let deadline = Instant::now() + LOCK_WAIT;
        while Instant::now() < deadline {
            let (file, stat) = self.open_checked(account)?;
            lock(&file, deadline)?;
            self.still_in_place()?;
            // Another writer may have replaced the file while we waited.
            match fstatat(
                &self.dir,
                account.name.as_str(),
                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
            ) {
                Ok(now) if now.st_dev == stat.st_dev && now.st_ino == stat.st_ino => {}
                Ok(_) | Err(Errno::ENOENT) => continue,
                Err(errno) => return Err(io_error("inspect the secret file")(errno)),
            }
            // Owner and mode may have changed while we waited: check again.
            let (_, stat) = self.open_checked_again(&file)?;
            return f(self, &file, &stat);
        }
        Err(StoreError::Unstable.into())
    }

    fn open_checked_again(&self, file: &File) -> Result<((), FileStat), RootStoreError> {
        let stat = fstat(file.as_fd()).map_err(io_error("inspect the secret file"))?;
        let mode = stat.st_mode & 0o7777;
        if stat.st_uid != 0 {
            return Err(StoreError::WrongOwner {
                owner: stat.st_uid,
                expected: 0,
            }
            .into());
        }
        if mode & !STORE_FILE_ALLOWED_MODE != 0 {
            return Err(StoreError::LoosePermissions {
                mode,
                allowed: STORE_FILE_ALLOWED_MODE,
            }
            .into());
        }
        Ok(((), stat))
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
        nix::unistd::fsync(&self.dir).map_err(io_error("sync the store directory"))
    }

    fn replace(
        &self,
        account: &Account,
        bytes: &[u8],
        target: Ownership,
    ) -> Result<(), RootStoreError> {
        self.write_file(account, bytes, target, false)
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
            match self.locked(account, |store, _, _| store.replace(account, bytes, target)) {
                Err(RootStoreError::File(StoreError::NotFound)) => {}
                // A file the checks refuse (wrong owner, loose mode) is
                // replaced too: that is how an admin repairs it.
                Err(RootStoreError::File(
                    StoreError::WrongOwner { .. } | StoreError::LoosePermissions { .. },
                )) => return self.write_file(account, bytes, target, false),
                other => return other,
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
        let mut outcome = None;
        let locked = self.locked(account, |store, file, _| {
            let contents = read_all(file)?;
            let result = f(&contents);
            if result.is_ok() {
                unlinkat(
                    &store.dir,
                    account.name.as_str(),
                    UnlinkatFlags::NoRemoveDir,
                )
                .map_err(io_error("remove the secret file"))?;
                nix::unistd::fsync(&store.dir).map_err(io_error("sync the store directory"))?;
            }
            outcome = Some(result);
            Ok(())
        });
        match (locked, outcome) {
            (_, Some(Err(e))) => Err(e),
            (Err(e), _) => Err(e.into()),
            (Ok(()), Some(Ok(value))) => Ok(value),
            (Ok(()), None) => unreachable!("the closure ran when locked() succeeded"),
        }
    }
}

impl Ownership {
    fn of(stat: &FileStat) -> Ownership {
        Ownership {
            uid: stat.st_uid,
            gid: stat.st_gid,
            mode: stat.st_mode & 0o7777,
        }
    }
}

fn read_all(mut file: &File) -> Result<Zeroizing<Vec<u8>>, RootStoreError> {
    let failed = |error| {
        RootStoreError::File(StoreError::Io {
            action: "read the secret file",
            error,
        })
    };
    file.rewind().map_err(failed)?;
    let mut contents = Zeroizing::new(Vec::with_capacity(4096));
    file.take(MAX_FILE_SIZE as u64 + 1)
        .read_to_end(&mut contents)
        .map_err(failed)?;
    if contents.len() > MAX_FILE_SIZE {
        return Err(StoreError::TooLarge.into());
    }
    Ok(contents)
}

fn lock(file: &File, deadline: Instant) -> Result<(), RootStoreError> {
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(()),
            Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(LOCK_POLL)
            }
            Err(TryLockError::WouldBlock) => return Err(StoreError::LockTimeout.into()),
            Err(TryLockError::Error(error)) => {
                return Err(StoreError::Io {
                    action: "lock the secret file",
                    error,
                }
                .into())
            }
        }
    }
}

#[cfg(test)]
mod tests;
