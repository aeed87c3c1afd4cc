//! One PAM transaction (pam_start, pam_authenticate, pam_end) through the
//! real libpam, timed, with a conversation that answers every prompt with
//! one code.
//!
//! pam-driver has a richer conversation, but it prints a record for every
//! prompt: output inside the timed region would be measured with the module.
//! This one does nothing but strdup the answer.

use libc::{c_int, c_uint, c_void};
use pam_sys::raw;
use pam_totp::sys::{
    self, FailDelayFn, PamConv, PamHandle, PamMessage, PamResponse, PAM_FAIL_DELAY,
    PAM_PROMPT_ECHO_OFF, PAM_PROMPT_ECHO_ON,
};
pub use pam_totp::sys::{PAM_AUTH_ERR, PAM_SUCCESS};
use pam_totp_tests::conversation::{self, Message, Reply};
use std::ffi::CStr;
use std::ptr;
use std::time::{Duration, Instant};

/// What one transaction returned and how long its parts took.
#[derive(Debug, Clone, Copy)]
pub struct Timed {
    /// pam_authenticate's return code.
    pub rc: c_int,
    /// How many prompts the module sent (each was answered).
    pub prompts: u32,
    /// pam_authenticate alone: the module's whole work for one login.
    pub authenticate: Duration,
    /// pam_start to the end of pam_end, as a login process pays it.
    pub transaction: Duration,
}

/// The state the conversation works on, reached through `appdata_ptr`.
struct Conversation<'a> {
    answer: &'a CStr,
    prompts: u32,
}

extern "C" fn converse(
    num_msg: c_int,
    msg: *mut *const PamMessage,
    resp: *mut *mut PamResponse,
    appdata_ptr: *mut c_void,
) -> c_int {
    // SAFETY: libpam's arguments, and appdata_ptr is the `Conversation`
    // that `transaction` gave pam_start: it outlives the handle, and libpam
    // calls back on this thread only, so no other reference to it is live.
    unsafe { conversation::converse(num_msg, msg, resp, appdata_ptr, reply) }
}

/// Answers every prompt with the one code; information and errors take no
/// answer.
fn reply(conv: &mut Conversation, message: &Message) -> Reply {
    if message.style != PAM_PROMPT_ECHO_OFF && message.style != PAM_PROMPT_ECHO_ON {
        return Ok(None);
    }
    conv.prompts += 1;
    Ok(Some(conv.answer.to_owned()))
}

/// Replaces libpam's failure delay: a benchmark must not sleep the delay a
/// module asks for after a failed login (neither module asks, but a future
/// version might, and the delay is policy, not cost).
extern "C" fn no_fail_delay(_retval: c_int, _usec: c_uint, _appdata_ptr: *mut c_void) {}

/// Runs one transaction for `user` on `service`, answering every prompt
/// with `answer`. `Err` when libpam could not even start (e.g. pam_wrapper
/// failed to set up its configuration copy).
pub fn transaction(service: &CStr, user: &CStr, answer: &CStr) -> Result<Timed, String> {
    let mut conversation = Conversation { answer, prompts: 0 };
    let pam_conv = PamConv {
        conv: Some(converse),
        appdata_ptr: ptr::addr_of_mut!(conversation).cast::<c_void>(),
    };
    let mut handle: *mut PamHandle = ptr::null_mut();
    let start = Instant::now();
    // SAFETY: valid C strings; libpam copies service and user and keeps
    // pointers to `pam_conv` and `conversation`, which outlive pam_end below.
    // `conversation` is not touched again until after pam_end, so the
    // callback's `&mut` is the only reference while libpam may call it.
    let rc = unsafe { sys::pam_start(service.as_ptr(), user.as_ptr(), &pam_conv, &mut handle) };
    if rc != PAM_SUCCESS || handle.is_null() {
        return Err(format!("pam_start({service:?}) returned {rc}"));
    }
    let pamh = handle;
    let delay: FailDelayFn = no_fail_delay;
    // SAFETY: live handle; PAM_FAIL_DELAY takes a function of the type
    // `delay` has (checked by the binding), valid for the whole process.
    unsafe { raw::pam_set_item(pamh, PAM_FAIL_DELAY, delay as *const c_void) };
    let before = Instant::now();
    // SAFETY: live handle; the conversation's data outlives the call.
    let rc = unsafe { raw::pam_authenticate(pamh, 0) };
    let after = Instant::now();
    // SAFETY: live handle, ended once and not used afterwards.
    unsafe { raw::pam_end(pamh, rc) };
    let end = Instant::now();
    Ok(Timed {
        rc,
        prompts: conversation.prompts,
        authenticate: after - before,
        transaction: end - start,
    })
}

/// CPU time of the calling thread so far (user and system).
pub fn thread_cpu_time() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec we pass; this clock id is
    // always available on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

/// A system call that does nothing and stands out in `strace` output:
/// `write(-1, "pam-bench: begin", 16) = -1 EBADF`. It brackets each
/// transaction, so a trace can be cut to exactly the login's system calls
/// (not the benchmark's own file preparation).
pub fn strace_marker(text: &str) {
    // SAFETY: writing from a valid buffer of the given length to fd -1,
    // which fails with EBADF without side effects.
    let _ = unsafe { libc::write(-1, text.as_ptr().cast::<c_void>(), text.len()) };
}

fn c_path(module: &std::path::Path) -> Result<std::ffi::CString, String> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(module.as_os_str().as_bytes())
        .map_err(|_| format!("{}: a NUL in the path", module.display()))
}

/// dlopen + dlclose of a module, as libpam does at pam_start and pam_end
/// (RTLD_NOW).
pub fn load_and_unload(module: &std::path::Path) -> Result<(), String> {
    let path = c_path(module)?;
    // SAFETY: a valid C string; the handle is closed once, below, and no
    // symbol from it is used.
    let handle = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOW) };
    if handle.is_null() {
        return Err(format!("dlopen({}) failed", module.display()));
    }
    // SAFETY: the handle dlopen just returned, closed once.
    unsafe { libc::dlclose(handle) };
    Ok(())
}

/// Whether `module` is mapped in this process now: dlopen with
/// RTLD_NOLOAD returns a handle only for an object already loaded (and then
/// counts a reference, which is given back at once).
pub fn is_loaded(module: &std::path::Path) -> bool {
    let Ok(path) = c_path(module) else {
        return false;
    };
    // SAFETY: a valid C string; RTLD_NOLOAD loads nothing.
    let handle = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOW | libc::RTLD_NOLOAD) };
    if handle.is_null() {
        return false;
    }
    // SAFETY: gives back the reference the successful dlopen took.
    unsafe { libc::dlclose(handle) };
    true
}
