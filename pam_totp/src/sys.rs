//! Raw system calls the C library would make differently. The only
//! `unsafe` outside the libpam boundary ([`crate::ffi`]).
#![allow(unsafe_code)]

use nix::errno::Errno;
use nix::unistd::Gid;

/// Sets the supplementary groups of the calling thread only.
///
/// glibc's `setgroups()` changes every thread of the process (it signals
/// each one to make the same call), and a PAM module runs inside someone
/// else's process (sshd, sudo, a display manager) whose other threads must
/// keep their groups. The system call itself changes the calling thread's
/// credentials alone. Needs CAP_SETGID.
pub fn set_thread_groups(groups: &[Gid]) -> Result<(), Errno> {
    let raw: Vec<libc::gid_t> = groups.iter().map(|g| g.as_raw()).collect();
    // SAFETY: setgroups(2) reads `raw.len()` gid_t values from a pointer
    // into `raw`, which is alive and that long for the whole call.
    let rc = unsafe { libc::syscall(libc::SYS_setgroups, raw.len(), raw.as_ptr()) };
    Errno::result(rc).map(drop)
}
