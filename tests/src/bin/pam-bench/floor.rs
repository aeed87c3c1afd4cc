//! The I/O floor: the file-system calls each module makes for one login,
//! replayed without PAM, without the module, and with nothing computed, on
//! a fresh copy of the same file. Taken from `strace` of one login of each
//! (the sequences are in BENCHMARKS.md). A module's latency minus its floor
//! is what its own code costs; the floors' difference is what the two
//! update protocols cost.

use crate::setup::{self, TOTP_TEMPLATE};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Google's module: read the file (closed at once), write a temporary
    /// file, fsync it, rename it over the file. No lock, no directory sync:
    /// the rename reaches the disk with the file system's next commit.
    Google,
    /// pam_totp's without its last step, to price that step.
    OursWithoutDirSync,
    /// pam_totp's: read the file (a look), open and lock it, check the path
    /// still names it, re-read it, write a temporary file, fsync it, rename
    /// it over the file, fsync the directory, then close the locked file.
    Ours,
}

/// Installs a fresh copy at `path` (untimed, as before a login), then
/// replays `protocol` on it and returns how long that took, and how much of
/// that was spent on a CPU.
pub fn replay(path: &Path, protocol: Protocol) -> io::Result<(Duration, Duration)> {
    setup::install_fresh(path, TOTP_TEMPLATE.as_bytes())?;
    let dir = path.parent().expect("in a directory");
    let temp = path.with_extension("tmp");
    // What a login writes back: the file plus one recorded code or attempt.
    let new_contents = format!("{TOTP_TEMPLATE}\" DISALLOW_REUSE 58838513\n");
    crate::pam::strace_marker("pam-bench: begin");
    let start = Instant::now();
    let cpu_start = crate::pam::thread_cpu_time();
    match protocol {
        Protocol::Google => {
            read(&mut File::open(path)?)?;
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&temp)?;
            file.set_permissions(fs::Permissions::from_mode(0o400))?;
            fs::metadata(path)?;
            file.write_all(new_contents.as_bytes())?;
            file.sync_all()?;
            drop(file);
            fs::rename(&temp, path)?;
        }
        Protocol::Ours | Protocol::OursWithoutDirSync => {
            let open = || {
                OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
                    .open(path)
            };
            let mut look = open()?;
            look.metadata()?;
            read(&mut look)?;
            drop(look);
            let mut locked = open()?;
            locked.metadata()?;
            locked.lock()?;
            fs::symlink_metadata(path)?;
            read(&mut locked)?;
            let _ = fs::remove_file(&temp);
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&temp)?;
            file.write_all(new_contents.as_bytes())?;
            file.metadata()?;
            file.set_permissions(fs::Permissions::from_mode(0o400))?;
            file.sync_all()?;
            fs::rename(&temp, path)?;
            drop(file);
            if protocol == Protocol::Ours {
                File::open(dir)?.sync_all()?;
            }
            // Last close of the replaced inode: the file system frees it here.
            drop(locked);
        }
    }
    let cpu = crate::pam::thread_cpu_time().saturating_sub(cpu_start);
    let took = start.elapsed();
    crate::pam::strace_marker("pam-bench: end");
    Ok((took, cpu))
}

fn read(file: &mut File) -> io::Result<()> {
    let mut contents = Vec::with_capacity(4096);
    file.read_to_end(&mut contents).map(drop)
}

/// How a process waits for a file's lock held by another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockWait {
    /// flock(LOCK_EX): the kernel wakes the waiter when the lock is free.
    Blocking,
    /// What pam_totp does (store.rs, `lock`): flock(LOCK_EX|LOCK_NB), and
    /// sleep this long after each refusal.
    Poll(Duration),
    /// The same, sleeping 50 µs after the first refusal and twice as long
    /// after each next one, up to 2 ms.
    Backoff,
}

/// One update of the shared file with pam_totp's protocol (lock, check the
/// path still names the locked file, read, write a temporary file, fsync,
/// rename, fsync the directory), waiting for the lock as `wait` says.
/// `temp` is this process's own temporary name.
pub fn contended_update(path: &Path, temp: &Path, wait: LockWait) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    loop {
        let mut locked = File::open(path)?;
        match wait {
            LockWait::Blocking => locked.lock()?,
            LockWait::Poll(_) | LockWait::Backoff => {
                let mut interval = match wait {
                    LockWait::Poll(interval) => interval,
                    _ => Duration::from_micros(50),
                };
                loop {
                    match locked.try_lock() {
                        Ok(()) => break,
                        Err(fs::TryLockError::WouldBlock) => std::thread::sleep(interval),
                        Err(fs::TryLockError::Error(e)) => return Err(e),
                    }
                    if wait == LockWait::Backoff {
                        interval = (interval * 2).min(Duration::from_millis(2));
                    }
                }
            }
        }
        // Replaced while we waited: our lock is on the old file.
        if fs::symlink_metadata(path)?.ino() != locked.metadata()?.ino() {
            continue;
        }
        let mut contents = Vec::new();
        locked.read_to_end(&mut contents)?;
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o400)
            .open(temp)?;
        file.write_all(&contents)?;
        file.sync_all()?;
        fs::rename(temp, path)?;
        File::open(path.parent().expect("in a directory"))?.sync_all()?;
        return Ok(());
    }
}
