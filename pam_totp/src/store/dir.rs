//! Opening the directory that holds a secret file, once, component by
//! component, and checking every step.
//!
//! Why: a path such as `/home/alice/.totp/secret` is only as trustworthy as
//! the people who can change its directories. With `user=root`, a user who
//! controls `/home/alice` could swap `.totp` for a symlink to `/etc`, and a
//! module that re-resolves the path would check and rewrite a root-owned
//! file of the same name there. So the directory is resolved once, with
//! `openat` from `/` down, and every later step (open, re-check, temporary
//! file, rename, directory sync) is done relative to the descriptor
//! [`SecureDir`] holds: what is checked is what is written.
//!
//! A symbolic link on the way is followed only when it and the directory
//! holding it can be changed by no one but the trusted users (root and the
//! identity the file is accessed as): such a link could only have been
//! made by someone who already has those rights. [`DirRules::strict`] is
//! for stores that root alone must control: every directory owned by a
//! trusted user, none writable by group or others, no symlinks at all.

use super::StoreError;
use nix::errno::Errno;
use nix::fcntl::{openat, readlinkat, OFlag};
use nix::sys::stat::{fstat, fstatat, FileStat, Mode};
use nix::unistd::Uid;
use std::collections::VecDeque;
use std::ffi::OsString;
use std::fmt;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

/// How many symlinks one walk may follow (the kernel's own limit is 40).
const MAX_SYMLINKS: usize = 40;

/// How the directories on the way to a file are judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirRules {
    /// Users who may control a directory or a symlink on the way. Root is
    /// always trusted.
    pub trusted: Vec<Uid>,
    /// Every directory on the way must be owned by a trusted user.
    pub owner_trusted: bool,
    /// No directory on the way may be writable by its group or others
    /// (a sticky one such as /tmp is allowed: there others may add entries
    /// but not replace ours, and the next one is checked in turn).
    pub no_shared_write: bool,
    /// Follow a symlink that only trusted users can change; `false`
    /// refuses every symlink on the way.
    pub follow_trusted_symlinks: bool,
}

impl DirRules {
    /// The rules for a secret file accessed as `identity`: directories may
    /// belong to anyone (a home belongs to its user), but a symlink on the
    /// way is followed only when neither it nor the directory holding it can
    /// be changed by anyone but root or `identity`.
    pub fn for_identity(identity: Uid) -> DirRules {
        DirRules {
            trusted: vec![identity],
            owner_trusted: false,
            no_shared_write: false,
            follow_trusted_symlinks: true,
        }
    }

    /// The rules for a store only `owners` (and root) may control: every
    /// directory owned by one of them, none writable by group or others,
    /// and no symlinks at all.
    pub fn strict(owners: &[Uid]) -> DirRules {
        DirRules {
            trusted: owners.to_vec(),
            owner_trusted: true,
            no_shared_write: true,
            follow_trusted_symlinks: false,
        }
    }

    fn trusts(&self, uid: u32) -> bool {
        uid == 0 || self.trusted.iter().any(|t| t.as_raw() == uid)
    }

    /// Whether an entry owned by a trusted user in this directory can be
    /// replaced by trusted users only: the directory is theirs and not
    /// writable by group or others, or sticky (like /tmp: others may add
    /// entries there but not replace ours).
    fn controlled_by_trusted(&self, dir: &FileStat) -> bool {
        self.trusts(dir.st_uid) && !shared_write(dir)
    }
}

/// Why a directory on the way was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirProblem {
    /// A symlink that someone other than the trusted users can change.
    UntrustedSymlink,
    /// A symlink where the rules allow none.
    Symlink,
    /// More symlinks than [`MAX_SYMLINKS`].
    TooManySymlinks,
    /// Owned by a user the rules do not trust.
    Owner(u32),
    /// Writable by group or others.
    SharedWrite(u32),
    /// Not a directory.
    NotADirectory,
}

impl fmt::Display for DirProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DirProblem::UntrustedSymlink => f.write_str(
                "is a symbolic link that a user other than root or the file's user can change; refusing to follow it",
            ),
            DirProblem::Symlink => f.write_str("is a symbolic link; refusing to follow it"),
            DirProblem::TooManySymlinks => f.write_str("has too many levels of symbolic links"),
            DirProblem::Owner(uid) => write!(f, "is owned by uid {uid}, which is not trusted"),
            DirProblem::SharedWrite(mode) => {
                write!(f, "has mode {mode:04o}: writable by group or others")
            }
            DirProblem::NotADirectory => f.write_str("is not a directory"),
        }
    }
}

/// A directory resolved once; every operation on its entries is relative
/// to the descriptor, so a later change of the path above it changes
/// nothing. The descriptor is an `O_PATH` one: it needs only search
/// permission, and [`SecureDir::open_for_sync`] gives a readable one.
#[derive(Debug)]
pub struct SecureDir {
    fd: OwnedFd,
    path: PathBuf,
}

impl AsFd for SecureDir {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl SecureDir {
    /// The path the directory was opened by (for messages only).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The same directory opened for reading, as fsync needs. Needs read
    /// permission on it.
    pub fn open_for_sync(&self) -> Result<OwnedFd, Errno> {
        openat(
            &self.fd,
            ".",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
    }

    /// Opens `path` (absolute, or relative to the working directory) as a
    /// directory, one component at a time, under `rules`. Permissions are
    /// those of the caller's file-system identity.
    pub fn open(path: &Path, rules: &DirRules) -> Result<SecureDir, StoreError> {
        let mut pending: VecDeque<OsString> = VecDeque::new();
        let start = if path.has_root() { "/" } else { "." };
        let mut current = open_start(start, path)?;
        let mut current_stat = stat_dir(&current, path)?;
        check_dir(rules, &current_stat, Path::new(start))?;
        let mut shown = PathBuf::from(start);
        push_components(&mut pending, path);
        let mut symlinks = 0usize;
        while let Some(name) = pending.pop_front() {
            let step = shown.join(&name);
            match openat(
                &current,
                name.as_os_str(),
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            ) {
                Ok(next) => {
                    let next_stat = stat_dir(&next, &step)?;
                    check_dir(rules, &next_stat, &step)?;
                    current = next;
                    current_stat = next_stat;
                    shown = if name == ".." {
                        shown
                            .parent()
                            .map_or_else(|| shown.clone(), Path::to_path_buf)
                    } else {
                        step
                    };
                }
                // O_NOFOLLOW with O_DIRECTORY: a symlink gives ENOTDIR (or
                // ELOOP); look at what is there.
                Err(Errno::ENOTDIR | Errno::ELOOP) => {
                    let link = fstatat(
                        &current,
                        name.as_os_str(),
                        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
                    )
                    .map_err(|errno| io_error(&step, errno))?;
                    if link.st_mode & libc::S_IFMT != libc::S_IFLNK {
                        return Err(refused(&step, DirProblem::NotADirectory));
                    }
                    if !rules.follow_trusted_symlinks {
                        return Err(refused(&step, DirProblem::Symlink));
                    }
                    if !rules.trusts(link.st_uid) || !rules.controlled_by_trusted(&current_stat) {
                        return Err(refused(&step, DirProblem::UntrustedSymlink));
                    }
                    symlinks = symlinks.saturating_add(1);
                    if symlinks > MAX_SYMLINKS {
                        return Err(refused(&step, DirProblem::TooManySymlinks));
                    }
                    let target = PathBuf::from(
                        readlinkat(&current, name.as_os_str())
                            .map_err(|errno| io_error(&step, errno))?,
                    );
                    let mut rest: VecDeque<OsString> = VecDeque::new();
                    push_components(&mut rest, &target);
                    rest.extend(pending.drain(..));
                    pending = rest;
                    if target.has_root() {
                        current = open_start("/", &step)?;
                        current_stat = stat_dir(&current, &step)?;
                        check_dir(rules, &current_stat, Path::new("/"))?;
                        shown = PathBuf::from("/");
                    }
                }
                Err(Errno::ENOENT) => return Err(StoreError::NotFound),
                Err(errno) => return Err(io_error(&step, errno)),
            }
        }
        Ok(SecureDir {
            fd: current,
            path: path.to_path_buf(),
        })
    }
}

fn push_components(queue: &mut VecDeque<OsString>, path: &Path) {
    for component in path.components() {
        match component {
            Component::Normal(name) => queue.push_back(name.to_os_string()),
            Component::ParentDir => queue.push_back(OsString::from("..")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
}

fn open_start(start: &str, shown: &Path) -> Result<OwnedFd, StoreError> {
    openat(
        nix::fcntl::AT_FDCWD,
        start,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|errno| io_error(shown, errno))
}

fn stat_dir(fd: &OwnedFd, shown: &Path) -> Result<FileStat, StoreError> {
    fstat(fd).map_err(|errno| io_error(shown, errno))
}

/// Writable by group or others, and not sticky: anyone who may write can
/// replace any entry.
fn shared_write(dir: &FileStat) -> bool {
    dir.st_mode & 0o022 != 0 && dir.st_mode & libc::S_ISVTX == 0
}

fn check_dir(rules: &DirRules, stat: &FileStat, shown: &Path) -> Result<(), StoreError> {
    if rules.owner_trusted && !rules.trusts(stat.st_uid) {
        return Err(refused(shown, DirProblem::Owner(stat.st_uid)));
    }
    if rules.no_shared_write && shared_write(stat) {
        return Err(refused(
            shown,
            DirProblem::SharedWrite(stat.st_mode & 0o7777),
        ));
    }
    Ok(())
}

fn refused(shown: &Path, problem: DirProblem) -> StoreError {
    StoreError::UnsafeDirectory {
        path: shown.to_path_buf(),
        problem,
    }
}

fn io_error(shown: &Path, errno: Errno) -> StoreError {
    StoreError::Directory {
        path: shown.to_path_buf(),
        error: std::io::Error::from(errno),
    }
}
