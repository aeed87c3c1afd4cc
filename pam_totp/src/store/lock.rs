//! The lock that serialises updates of one secret file.
//!
//! Why a separate lock file (`<name>.pam_totp-lock`, beside the secret file)
//! rather than a lock on the secret file itself:
//! - the secret file is usually mode 0400, so it can only be opened for
//!   reading, and on NFS an exclusive `flock` is emulated as a byte-range
//!   lock that needs a descriptor open for writing (EBADF otherwise);
//! - on CIFS (Linux 5.5 and later) a `flock` is mandatory: a lock on the
//!   secret file would make every other login's unlocked first read fail;
//! - the secret file is replaced by a rename at every update, so its inode
//!   changes; the lock file is never replaced or removed, so everyone
//!   always locks the same inode.
//!
//! The lock file is created empty, mode 0600, never written, and only
//! opened without following a symlink. When it cannot be created because
//! nothing can be written in the directory (read-only file system, or a
//! directory the user may not write), no update can be saved either, and
//! the login goes on without the lock: whatever it must record then fails
//! to save, and is refused as such.
//!
//! With an NFS mount option `local_lock=flock` (or `=all`) locks are taken
//! on each client only: logins on one host exclude each other, logins on
//! two hosts at once do not.

use super::{AsIdentity, SecureDir, StoreError};
use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::Mode;
use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::{fchown, MetadataExt};
use std::time::{Duration, Instant};

/// Appended to the secret file's name to name its lock file.
pub const LOCK_SUFFIX: &str = ".pam_totp-lock";
const LOCK_POLL: Duration = Duration::from_millis(2);

/// Held while alive; the lock is released when the file is closed.
#[derive(Debug)]
pub(super) struct Held {
    _file: Option<File>,
}

fn lock_name(name: &OsStr) -> OsString {
    let mut lock = name.to_os_string();
    lock.push(LOCK_SUFFIX);
    lock
}

/// Takes the exclusive lock for `name` in `dir`, waiting until `deadline`.
/// `owner` is who the secret file belongs to: a lock file that root
/// creates for another user's file is given to that user, so their own
/// logins can open it.
pub(super) fn take(
    as_user: &AsIdentity,
    dir: &SecureDir,
    name: &OsStr,
    owner: (u32, u32),
    deadline: Instant,
) -> Result<Held, StoreError> {
    let Some(file) = open_lock_file(as_user, dir, &lock_name(name), owner)? else {
        return Ok(Held { _file: None });
    };
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(Held { _file: Some(file) }),
            Err(fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(LOCK_POLL)
            }
            Err(fs::TryLockError::WouldBlock) => return Err(StoreError::LockTimeout),
            Err(fs::TryLockError::Error(error)) => return Err(lock_error(error)),
        }
    }
}

/// The errors that mean "this file system cannot lock", from a network
/// file system without a lock service (ENOLCK), one that refuses the lock
/// type (EOPNOTSUPP) or the descriptor (EBADF).
fn lock_error(error: io::Error) -> StoreError {
    match error.raw_os_error() {
        Some(libc::ENOLCK | libc::EBADF | libc::EOPNOTSUPP) => StoreError::LockUnsupported(error),
        _ => StoreError::Io {
            action: "lock the secret file",
            error,
        },
    }
}

fn open_lock_file(
    as_user: &AsIdentity,
    dir: &SecureDir,
    lock: &OsStr,
    owner: (u32, u32),
) -> Result<Option<File>, StoreError> {
    let flags = OFlag::O_RDWR | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
    let failed = |errno: Errno| StoreError::Io {
        action: "open the lock file",
        error: io::Error::from(errno),
    };
    let file = match openat(
        dir,
        lock,
        flags | OFlag::O_CREAT | OFlag::O_EXCL,
        Mode::from_bits_truncate(0o600),
    ) {
        Ok(fd) => {
            let file = File::from(fd);
            let meta = file.metadata().map_err(|error| StoreError::Io {
                action: "inspect the lock file",
                error,
            })?;
            // Only a file we have just created is ever given away.
            if (meta.uid(), meta.gid()) != owner && meta.uid() == 0 {
                as_user
                    .with_previous(|| fchown(&file, Some(owner.0), Some(owner.1)))
                    .map_err(|error| StoreError::Io {
                        action: "set the owner of the lock file",
                        error,
                    })?;
            }
            file
        }
        Err(Errno::EEXIST) => match openat(dir, lock, flags, Mode::empty()) {
            Ok(fd) => File::from(fd),
            // Left by someone else, not writable by us: lock it through a
            // read-only descriptor (enough on local file systems).
            Err(Errno::EACCES) => File::from(
                openat(
                    dir,
                    lock,
                    OFlag::O_RDONLY | flags.difference(OFlag::O_RDWR),
                    Mode::empty(),
                )
                .map_err(failed)?,
            ),
            Err(Errno::EROFS) => return Ok(None),
            Err(errno) => return Err(failed(errno)),
        },
        // Nothing can be written here: no update can be saved, so there is
        // nothing to serialise.
        Err(Errno::EROFS | Errno::EACCES) => return Ok(None),
        Err(errno) => return Err(failed(errno)),
    };
    let meta = file.metadata().map_err(|error| StoreError::Io {
        action: "inspect the lock file",
        error,
    })?;
    if !meta.file_type().is_file() {
        return Err(StoreError::Io {
            action: "use the lock file",
            error: io::Error::other("it is not a regular file"),
        });
    }
    Ok(Some(file))
}
