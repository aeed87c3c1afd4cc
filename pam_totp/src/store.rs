//! The one place that reads and writes secret files.
//!
//! Rules, all enforced here:
//! - files are opened as their user (file-system uid/gid switched), so root's
//!   rights never reach a file the user could not touch;
//! - the directory is resolved once, component by component ([`dir`]): no
//!   symlink that a user other than root or the file's user could change is
//!   followed, and every later step (open, re-check, temporary file, rename,
//!   directory sync) is relative to that directory's descriptor;
//! - the final path component is never followed if it is a symlink, and only
//!   a regular file is accepted (a FIFO cannot even block the open);
//! - owner and mode are checked before a byte is read;
//! - an update takes an exclusive lock (on a lock file beside it, see
//!   [`lock`]), checks the directory entry still
//!   names the locked file, re-reads it, and replaces it with a new file that
//!   was written, synced and given the old owner and mode before the rename;
//!   the directory is synced after. A crash leaves either the old or the new
//!   file, never a mix, and concurrent logins see each other's changes.

use crate::secret_file::MAX_FILE_SIZE;
use nix::errno::Errno;
use nix::fcntl::{openat, renameat2, AtFlags, OFlag, RenameFlags};
use nix::sys::stat::{fstatat, Mode};
use nix::unistd::{fsync, linkat, setfsgid, setfsuid, unlinkat, Gid, Uid, UnlinkatFlags};
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::{fchown, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

pub mod dir;
mod lock;
pub use dir::{DirProblem, DirRules, SecureDir};
pub use lock::LOCK_SUFFIX;

/// Mode bits a secret file may have unless the admin allows more.
pub const DEFAULT_ALLOWED_MODE: u32 = 0o600;
/// How long a login waits for other logins' updates of the same file,
/// including starting over when the file was replaced while we waited.
const LOCK_WAIT: Duration = Duration::from_secs(10);

/// The file-system identity files are accessed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    pub uid: Uid,
    pub gid: Gid,
}

impl Identity {
    pub fn current() -> Identity {
        Identity {
            uid: Uid::effective(),
            gid: Gid::effective(),
        }
    }

    /// The file-system uid and gid in force on this thread.
    fn current_fs() -> Identity {
        // Setting an invalid id (-1) changes nothing and returns the current one.
        let invalid = u32::MAX;
        Identity {
            uid: setfsuid(Uid::from_raw(invalid)),
            gid: setfsgid(Gid::from_raw(invalid)),
        }
    }
}

/// What the secret file must look like before it is trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessRules {
    /// The file's required owner; `None` accepts any owner (`no_strict_owner`).
    pub owner: Option<Uid>,
    /// Permission bits the file may have (`allowed_perm`, default 0600).
    pub allowed_mode: u32,
}

#[derive(Debug)]
pub enum StoreError {
    NotFound,
    Symlink,
    NotRegularFile,
    WrongOwner {
        owner: u32,
        expected: u32,
    },
    LoosePermissions {
        mode: u32,
        allowed: u32,
    },
    TooLarge,
    AlreadyExists,
    /// The file-system identity could not be switched.
    SwitchIdentity,
    LockTimeout,
    /// The file system cannot lock (ENOLCK, EBADF, EOPNOTSUPP).
    LockUnsupported(io::Error),
    /// The path kept changing while we tried to lock it.
    Unstable,
    Io {
        action: &'static str,
        error: io::Error,
    },
    /// A directory on the way to the file was refused (see [`dir`]).
    UnsafeDirectory {
        path: PathBuf,
        problem: DirProblem,
    },
    /// A directory on the way to the file could not be opened.
    Directory {
        path: PathBuf,
        error: io::Error,
    },
    /// Store mode refused the store directory or the account name.
    StoreMode(Box<crate::root_store::RootStoreError>),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::NotFound => f.write_str("secret file does not exist"),
            StoreError::Symlink => {
                f.write_str("secret file is a symbolic link; refusing to follow it")
            }
            StoreError::NotRegularFile => f.write_str("secret file is not a regular file"),
            StoreError::WrongOwner { owner, expected } => write!(
                f,
                "secret file is owned by uid {owner}, expected uid {expected}"
            ),
            StoreError::LoosePermissions { mode, allowed } => write!(
                f,
                "secret file has mode {mode:04o}, allowed at most {allowed:04o}"
            ),
            StoreError::TooLarge => write!(f, "secret file is larger than {MAX_FILE_SIZE} bytes"),
            StoreError::AlreadyExists => f.write_str("secret file already exists"),
            StoreError::SwitchIdentity => f.write_str("cannot switch file access to the user"),
            StoreError::LockTimeout => {
                f.write_str("timed out waiting for the lock on the secret file")
            }
            StoreError::LockUnsupported(error) => write!(
                f,
                "cannot lock the secret file: {error}; the file system does not support \
                 locks (an NFS home needs NFSv4 or lockd, or the mount option \
                 local_lock=flock, which locks on each host only)"
            ),
            StoreError::Unstable => f.write_str("secret file kept changing while being locked"),
            StoreError::Io { action, error } => write!(f, "cannot {action}: {error}"),
            StoreError::UnsafeDirectory { path, problem } => write!(
                f,
                "directory {} on the way to the secret file {problem}",
                path.display()
            ),
            StoreError::Directory { path, error } => write!(
                f,
                "cannot open the directory {} on the way to the secret file: {error}",
                path.display()
            ),
            StoreError::StoreMode(error) => error.fmt(f),
        }
    }
}

impl std::error::Error for StoreError {}

fn io_error(action: &'static str) -> impl FnOnce(io::Error) -> StoreError {
    move |error| StoreError::Io { action, error }
}

/// While alive, file access uses another identity: its uid and gid (Linux
/// fsuid/fsgid, which affect only this thread and only file-system checks)
/// and exactly its supplementary groups (set on this thread only, see
/// [`crate::syscall::set_thread_groups`]), so that no group of the caller
/// (root's group 0, or the invoking user's under `su other`) opens a
/// directory or file the user could not. Everything is restored on drop,
/// whatever path is taken.
struct AsIdentity {
    previous: Identity,
    /// The thread's supplementary groups before the switch, if changed.
    previous_groups: Option<Vec<Gid>>,
}

impl AsIdentity {
    fn switch(to: Identity) -> Result<AsIdentity, StoreError> {
        AsIdentity::switch_with(to, &mut None)
    }

    /// [`AsIdentity::switch`], with `to`'s groups (from [`groups_of`]) if
    /// already looked up; looked up and kept there if needed now. They are
    /// needed only when the thread is not `to` already (not for a screen
    /// locker checking its own user, nor for root logging in as root): the
    /// user database lookup costs more than the rest of the switch.
    fn switch_with(to: Identity, groups: &mut Option<Vec<Gid>>) -> Result<AsIdentity, StoreError> {
        let mut guard = AsIdentity {
            previous: Identity::current_fs(),
            previous_groups: None,
        };
        if Identity::current() != to {
            // Looked up before anything changes (NSS reads files as the caller).
            let groups = groups.get_or_insert_with(|| groups_of(to));
            let before = nix::unistd::getgroups().map_err(|_| StoreError::SwitchIdentity)?;
            if sorted(&before) != *groups {
                // Without the privilege to set them the switch fails: the
                // caller's groups must never stand in for the user's.
                crate::syscall::set_thread_groups(groups)
                    .map_err(|_| StoreError::SwitchIdentity)?;
                guard.previous_groups = Some(before);
            }
        }
        // The group first: once the uid is dropped, the gid can no longer change.
        setfsgid(to.gid);
        setfsuid(to.uid);
        // setfsuid reports no error; asking again returns what is in force.
        if setfsgid(to.gid) != to.gid || setfsuid(to.uid) != to.uid {
            return Err(StoreError::SwitchIdentity);
        }
        Ok(guard)
    }

    /// Runs `f` with the uid and gid we had before the switch (for what
    /// only they may do: give a file away, read a directory the user may
    /// not). The supplementary groups stay the user's.
    fn with_previous<T>(&self, f: impl FnOnce() -> T) -> T {
        let current = Identity {
            uid: setfsuid(self.previous.uid),
            gid: setfsgid(self.previous.gid),
        };
        let result = f();
        setfsgid(current.gid);
        setfsuid(current.uid);
        result
    }
}

impl Drop for AsIdentity {
    fn drop(&mut self) {
        setfsuid(self.previous.uid);
        setfsgid(self.previous.gid);
        if let Some(groups) = &self.previous_groups {
            // Cannot fail: we had the privilege to change them a moment ago.
            let _ = crate::syscall::set_thread_groups(groups);
        }
    }
}

/// The supplementary groups `identity` logs in with, sorted: from the user
/// database for its uid, or its gid alone for a uid without an account.
fn groups_of(identity: Identity) -> Vec<Gid> {
    let from_database = nix::unistd::User::from_uid(identity.uid)
        .ok()
        .flatten()
        .and_then(|user| std::ffi::CString::new(user.name).ok())
        .and_then(|name| nix::unistd::getgrouplist(&name, identity.gid).ok());
    sorted(&from_database.unwrap_or_else(|| vec![identity.gid]))
}

fn sorted(groups: &[Gid]) -> Vec<Gid> {
    let mut groups: Vec<Gid> = groups.to_vec();
    groups.sort_by_key(|g| g.as_raw());
    groups.dedup();
    groups
}

fn split(path: &Path) -> Result<(PathBuf, OsString), StoreError> {
    let name = path.file_name().ok_or(StoreError::NotRegularFile)?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok((dir, name.to_os_string()))
}

/// Opens the directory of `path` once (see [`dir`]) with the rules for a
/// file accessed as `identity`, and returns it with the file's name in it.
/// Must run as `identity`.
fn open_parent(path: &Path, identity: Identity) -> Result<(SecureDir, OsString), StoreError> {
    let (dir, name) = split(path)?;
    let dir = SecureDir::open(&dir, &DirRules::for_identity(identity.uid))?;
    Ok((dir, name))
}

fn with_suffix(name: &OsStr, suffix: &str) -> OsString {
    let mut temp = name.to_os_string();
    temp.push(suffix);
    temp
}

/// Removes `name` from `dir` if it is there (a file, never a directory).
fn remove_entry(dir: &SecureDir, name: &OsStr) {
    let _ = unlinkat(dir, name, UnlinkatFlags::NoRemoveDir);
}

/// Opens `name` in `dir` without following a symlink and without blocking
/// on a FIFO, then checks type, owner and mode on the open descriptor.
fn open_checked(
    dir: &SecureDir,
    name: &OsStr,
    rules: &AccessRules,
) -> Result<(File, fs::Metadata), StoreError> {
    let fd = openat(
        dir,
        name,
        OFlag::O_RDONLY
            | OFlag::O_NOFOLLOW
            | OFlag::O_NONBLOCK
            | OFlag::O_NOCTTY
            | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|errno| match errno {
        Errno::ENOENT => StoreError::NotFound,
        Errno::ELOOP => StoreError::Symlink,
        errno => StoreError::Io {
            action: "open the secret file",
            error: io::Error::from(errno),
        },
    })?;
    let file = File::from(fd);
    let meta = file
        .metadata()
        .map_err(io_error("inspect the secret file"))?;
    check_file(&meta, rules)?;
    Ok((file, meta))
}

/// Type, owner, mode and size: what a secret file must be before it is trusted.
fn check_file(meta: &fs::Metadata, rules: &AccessRules) -> Result<(), StoreError> {
    if !meta.file_type().is_file() {
        return Err(StoreError::NotRegularFile);
    }
    if let Some(expected) = rules.owner {
        if meta.uid() != expected.as_raw() {
            return Err(StoreError::WrongOwner {
                owner: meta.uid(),
                expected: expected.as_raw(),
            });
        }
    }
    let mode = meta.mode() & 0o7777;
    if mode & !rules.allowed_mode != 0 {
        return Err(StoreError::LoosePermissions {
            mode,
            allowed: rules.allowed_mode,
        });
    }
    if meta.len() > MAX_FILE_SIZE as u64 {
        return Err(StoreError::TooLarge);
    }
    Ok(())
}

fn read_all(mut file: &File) -> Result<Zeroizing<Vec<u8>>, StoreError> {
    file.rewind().map_err(io_error("read the secret file"))?;
    let mut contents = Zeroizing::new(Vec::with_capacity(4096));
    // One byte past the cap tells a file that grew after fstat from a full one.
    file.take(u64::try_from(MAX_FILE_SIZE).map_or(u64::MAX, |max| max.saturating_add(1)))
        .read_to_end(&mut contents)
        .map_err(io_error("read the secret file"))?;
    if contents.len() > MAX_FILE_SIZE {
        return Err(StoreError::TooLarge);
    }
    Ok(contents)
}

/// Reads the secret file as `identity`, after the checks in `rules`.
/// No lock is taken: use it to look, and [`update`] to change.
pub fn read(
    path: &Path,
    identity: Identity,
    rules: &AccessRules,
) -> Result<Zeroizing<Vec<u8>>, StoreError> {
    let _as_user = AsIdentity::switch(identity)?;
    let (dir, name) = open_parent(path, identity)?;
    read_opened(&dir, &name, rules)
}

/// [`read`] for a file `name` in a directory already opened with
/// [`SecureDir::open`] (e.g. under [`DirRules::strict`]).
pub fn read_in(
    dir: &SecureDir,
    name: &OsStr,
    identity: Identity,
    rules: &AccessRules,
) -> Result<Zeroizing<Vec<u8>>, StoreError> {
    let _as_user = AsIdentity::switch(identity)?;
    read_opened(dir, name, rules)
}

fn read_opened(
    dir: &SecureDir,
    name: &OsStr,
    rules: &AccessRules,
) -> Result<Zeroizing<Vec<u8>>, StoreError> {
    let (file, _) = open_checked(dir, name, rules)?;
    read_all(&file)
}

/// What a look at the secret file opened, kept for the locked update that
/// may follow the conversation, so that the update neither walks the
/// directories again nor opens the file again, and the user's groups are
/// looked up once. Only descriptors are kept across the conversation: no
/// lock, no switched identity. The update still takes the lock, checks that
/// the name still names the file it holds (or opens it again by name),
/// judges owner and mode again, and reads the file again under the lock.
pub struct Look {
    dir: SecureDir,
    name: OsString,
    file: File,
    identity: Identity,
    groups: Option<Vec<Gid>>,
}

impl fmt::Debug for Look {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Look({})", self.dir.path().join(&self.name).display())
    }
}

/// [`read`], keeping what it opened for [`update_after_look`].
pub fn look(
    path: &Path,
    identity: Identity,
    rules: &AccessRules,
) -> Result<(Look, Zeroizing<Vec<u8>>), StoreError> {
    let mut groups = None;
    let _as_user = AsIdentity::switch_with(identity, &mut groups)?;
    let (dir, name) = open_parent(path, identity)?;
    let (file, _) = open_checked(&dir, &name, rules)?;
    let contents = read_all(&file)?;
    let look = Look {
        dir,
        name,
        file,
        identity,
        groups,
    };
    Ok((look, contents))
}

/// [`update`] of the file a [`look`] found, with what it opened.
pub fn update_after_look<T>(
    look: &Look,
    rules: &AccessRules,
    change: impl FnOnce(&[u8]) -> (T, Option<Zeroizing<Vec<u8>>>),
) -> Result<(T, Result<(), StoreError>), StoreError> {
    let as_user = AsIdentity::switch_with(look.identity, &mut look.groups.clone())?;
    update_locked(
        &as_user,
        &look.dir,
        &look.name,
        Some(&look.file),
        rules,
        change,
        Ownership::of,
    )
}

/// Owner, group and permission bits a written file gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ownership {
    uid: u32,
    gid: u32,
    mode: u32,
}

impl Ownership {
    fn of(meta: &fs::Metadata) -> Ownership {
        Ownership {
            uid: meta.uid(),
            gid: meta.gid(),
            mode: meta.mode() & 0o7777,
        }
    }
}

/// Read-modify-write under the file's lock. `change` sees the current
/// contents and returns its result and, if the file must change, the new
/// contents. The new file keeps the old one's owner and mode.
///
/// The outer `Err` means nothing was read. Otherwise the second slot tells
/// whether saving the change failed: the caller decides whether an unsaved
/// change may still count.
pub fn update<T>(
    path: &Path,
    identity: Identity,
    rules: &AccessRules,
    change: impl FnOnce(&[u8]) -> (T, Option<Zeroizing<Vec<u8>>>),
) -> Result<(T, Result<(), StoreError>), StoreError> {
    update_owned(path, identity, rules, change, Ownership::of)
}

/// [`update`] for a file `name` in a directory already opened with
/// [`SecureDir::open`] (e.g. under [`DirRules::strict`]).
pub fn update_in<T>(
    dir: &SecureDir,
    name: &OsStr,
    identity: Identity,
    rules: &AccessRules,
    change: impl FnOnce(&[u8]) -> (T, Option<Zeroizing<Vec<u8>>>),
) -> Result<(T, Result<(), StoreError>), StoreError> {
    let as_user = AsIdentity::switch(identity)?;
    update_locked(&as_user, dir, name, None, rules, change, Ownership::of)
}

fn update_owned<T>(
    path: &Path,
    identity: Identity,
    rules: &AccessRules,
    change: impl FnOnce(&[u8]) -> (T, Option<Zeroizing<Vec<u8>>>),
    ownership: impl Fn(&fs::Metadata) -> Ownership,
) -> Result<(T, Result<(), StoreError>), StoreError> {
    let as_user = AsIdentity::switch(identity)?;
    let (dir, name) = open_parent(path, identity)?;
    update_locked(&as_user, &dir, &name, None, rules, change, ownership)
}

/// The locked read-modify-write of `name` in `dir`, as the identity
/// `as_user` switched to.
///
/// `held`: the file as a [`look`] opened it, tried first (it is checked as
/// one opened now would be).
fn update_locked<T>(
    as_user: &AsIdentity,
    dir: &SecureDir,
    name: &OsStr,
    mut held: Option<&File>,
    rules: &AccessRules,
    change: impl FnOnce(&[u8]) -> (T, Option<Zeroizing<Vec<u8>>>),
    ownership: impl Fn(&fs::Metadata) -> Ownership,
) -> Result<(T, Result<(), StoreError>), StoreError> {
    let now = Instant::now();
    let deadline = now.checked_add(LOCK_WAIT).unwrap_or(now);
    while Instant::now() < deadline {
        let opened;
        let (file, meta) = match held.take() {
            Some(file) => {
                let meta = file
                    .metadata()
                    .map_err(io_error("inspect the secret file"))?;
                check_file(&meta, rules)?;
                (file, meta)
            }
            None => {
                opened = open_checked(dir, name, rules)?;
                (&opened.0, opened.1)
            }
        };
        let _lock = lock::take(as_user, dir, name, (meta.uid(), meta.gid()), deadline)?;
        // Another login may have replaced the file while we waited: the lock
        // we hold is then on the old inode, and we must start again.
        match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(now) if now.st_dev == meta.dev() && now.st_ino == meta.ino() => {}
            Ok(_) | Err(Errno::ENOENT) => continue,
            Err(errno) => {
                return Err(StoreError::Io {
                    action: "inspect the secret file",
                    error: io::Error::from(errno),
                })
            }
        }
        // Owner, mode and type may have changed while we waited for the
        // lock: judge the file as it is now, and keep what it is now.
        let meta = file
            .metadata()
            .map_err(io_error("inspect the secret file"))?;
        check_file(&meta, rules)?;
        let contents = read_all(file)?;
        let (result, new_contents) = change(&contents);
        let saved = match new_contents {
            None => Ok(()),
            Some(bytes) => {
                let temp = with_suffix(name, ".pam_totp-tmp");
                // We hold the lock, so a file at the temporary name is left
                // over from a crash: clear it rather than fail.
                remove_entry(dir, &temp);
                let target = ownership(&meta);
                replace(
                    as_user,
                    dir,
                    &temp,
                    name,
                    &bytes,
                    target,
                    RenameFlags::empty(),
                )
            }
        };
        return Ok((result, saved));
    }
    Err(StoreError::Unstable)
}

/// Writes `bytes` to `temp`, gives it `target`'s owner and mode, syncs it,
/// renames it onto `path` and syncs the directory. On failure the temporary
/// file is removed and `path` is untouched.
fn replace(
    as_user: &AsIdentity,
    dir: &SecureDir,
    temp: &OsStr,
    name: &OsStr,
    bytes: &[u8],
    target: Ownership,
    flags: RenameFlags,
) -> Result<(), StoreError> {
    // Opened before anything changes, so that a directory the user may
    // write but not read cannot turn a committed update into a refusal.
    let dir_for_sync = open_for_sync(as_user, dir)?;
    let result = (|| {
        let fd = openat(
            dir,
            temp,
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(|errno| StoreError::Io {
            action: "create the temporary file",
            error: io::Error::from(errno),
        })?;
        let mut file = File::from(fd);
        file.write_all(bytes)
            .map_err(io_error("write the temporary file"))?;
        let written = file
            .metadata()
            .map_err(io_error("inspect the temporary file"))?;
        // The mode first: once the file is given away we may not change it.
        file.set_permissions(fs::Permissions::from_mode(target.mode))
            .map_err(io_error("set the mode of the new secret file"))?;
        if written.uid() != target.uid || written.gid() != target.gid {
            // Another owner than the user we act as (a root-owned file with
            // no_strict_owner, or an admin enrolling a user) takes the rights
            // we had before switching.
            as_user
                .with_previous(|| fchown(&file, Some(target.uid), Some(target.gid)))
                .map_err(io_error("set the owner of the new secret file"))?;
        }
        file.sync_all()
            .map_err(io_error("sync the temporary file"))?;
        rename(dir, temp, name, flags)
    })();
    if result.is_err() {
        remove_entry(dir, temp);
        return result;
    }
    // The rename is done; syncing the directory makes it survive a crash.
    match fsync(&dir_for_sync) {
        Ok(()) => Ok(()),
        // The file system cannot sync directories at all: the update is as
        // durable as it can be made there. Refusing now would refuse a
        // login whose state (a used code, a scratch code gone) is already
        // committed.
        Err(errno @ (Errno::EINVAL | Errno::EROFS)) => {
            note(format!(
                "the directory {} cannot be synced ({}); the update is saved but may not survive a crash",
                dir.path().display(),
                io::Error::from(errno)
            ));
            Ok(())
        }
        Err(errno) => Err(StoreError::Io {
            action: "sync the directory",
            error: io::Error::from(errno),
        }),
    }
}

/// The directory opened for reading, for its fsync: as the user, or, if the
/// user may not read it, with the rights the caller had before switching
/// (the descriptor names the same directory the walk resolved).
fn open_for_sync(as_user: &AsIdentity, dir: &SecureDir) -> Result<File, StoreError> {
    dir.open_for_sync()
        .or_else(|errno| match errno {
            Errno::EACCES => as_user.with_previous(|| dir.open_for_sync()),
            errno => Err(errno),
        })
        .map(File::from)
        .map_err(|errno| StoreError::Io {
            action: "open the directory to sync it",
            error: io::Error::from(errno),
        })
}

/// Notes of every thread, each with the thread's id. Not a `thread_local!`:
/// a thread-local value that needs dropping registers a destructor with the
/// C library, which then keeps the module loaded until the thread exits,
/// and libpam's dlclose at pam_end would no longer unload it (see
/// tests/tests/exports.rs). A static is never dropped, so it pins nothing.
static NOTES: std::sync::Mutex<Vec<(i32, String)>> = std::sync::Mutex::new(Vec::new());

fn this_thread() -> i32 {
    nix::unistd::gettid().as_raw()
}

/// Records something the caller should log although the operation
/// succeeded.
fn note(message: String) {
    let mut notes = NOTES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    notes.push((this_thread(), message));
}

/// Takes what the store noted on this thread since the last call (things
/// worth one log line although nothing failed, e.g. a directory that
/// cannot be synced).
pub fn take_notes() -> Vec<String> {
    let thread = this_thread();
    let mut notes = NOTES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let (mine, others): (Vec<_>, Vec<_>) = std::mem::take(&mut *notes)
        .into_iter()
        .partition(|(id, _)| *id == thread);
    *notes = others;
    mine.into_iter().map(|(_, message)| message).collect()
}

/// Renames `temp` onto `name`. Without replacing (`RENAME_NOREPLACE`) on a
/// file system that refuses rename flags (NFS, CIFS: EINVAL), a hard link
/// to the new name, which fails if the name exists, then removing `temp`
/// does the same atomically.
fn rename(
    dir: &SecureDir,
    temp: &OsStr,
    name: &OsStr,
    flags: RenameFlags,
) -> Result<(), StoreError> {
    let renamed = match renameat2(dir, temp, dir, name, flags) {
        Err(Errno::EINVAL) if flags.contains(RenameFlags::RENAME_NOREPLACE) => {
            linkat(dir, temp, dir, name, AtFlags::empty()).map(|()| remove_entry(dir, temp))
        }
        other => other,
    };
    renamed.map_err(|errno| match errno {
        Errno::EEXIST => StoreError::AlreadyExists,
        errno => StoreError::Io {
            action: "rename the temporary file",
            error: io::Error::from(errno),
        },
    })
}

/// Owner and mode for a new file.
#[derive(Debug, Clone, Copy)]
pub struct NewFile {
    /// Who the file belongs to.
    pub owner: Identity,
    pub mode: u32,
}

/// Creates a secret file durably: written in full and synced under a
/// temporary name, then renamed into place. Access is done as `as_identity`
/// (the user, or root when an admin writes a file elsewhere).
///
/// Without `overwrite` an existing file is an error (`AlreadyExists`, checked
/// atomically by the rename). With it, an existing regular file is replaced
/// under its lock, so a login in progress is not lost. Either way an
/// existing file is untouched until the new one is complete and synced.
pub fn create(
    path: &Path,
    bytes: &[u8],
    as_identity: Identity,
    new: NewFile,
    overwrite: bool,
) -> Result<(), StoreError> {
    let target = Ownership {
        uid: new.owner.uid.as_raw(),
        gid: new.owner.gid.as_raw(),
        mode: new.mode & 0o7777,
    };
    if overwrite {
        let any = AccessRules {
            owner: None,
            allowed_mode: 0o7777,
        };
        let write_all = |_: &[u8]| ((), Some(Zeroizing::new(bytes.to_vec())));
        match update_owned(path, as_identity, &any, write_all, |_| target) {
            Ok(((), saved)) => return saved,
            Err(StoreError::NotFound) => {} // nothing to replace
            Err(other) => return Err(other),
        }
    }
    let as_user = AsIdentity::switch(as_identity)?;
    let (dir, name) = open_parent(path, as_identity).map_err(|error| match error {
        // A missing directory is no missing file here: nothing can be created.
        StoreError::NotFound => StoreError::Io {
            action: "create the temporary file",
            error: io::Error::from(Errno::ENOENT),
        },
        other => other,
    })?;
    let temp = with_suffix(&name, &format!(".pam_totp-new.{}", std::process::id()));
    remove_entry(&dir, &temp);
    replace(
        &as_user,
        &dir,
        &temp,
        &name,
        bytes,
        target,
        RenameFlags::RENAME_NOREPLACE,
    )
}

#[cfg(test)]
mod tests;
