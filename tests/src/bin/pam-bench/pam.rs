//! One PAM transaction (pam_start, pam_authenticate, pam_end) through the
//! real libpam, timed, with a conversation that answers every prompt with
//! one code.
//!
//! pam-driver has a richer conversation, but it prints a record for every
//! prompt: output inside the timed region would be measured with the module.
//! This one does nothing but strdup the answer.

use libc::{c_int, c_uint, c_void};
use pam_sys::{raw, PamConversation, PamHandle, PamMessage, PamResponse};
use std::ffi::CStr;
use std::ptr;
use std::time::{Duration, Instant};

// From <security/_pam_types.h>.
pub const PAM_SUCCESS: c_int = 0;
pub const PAM_AUTH_ERR: c_int = 7;
const PAM_BUF_ERR: c_int = 5;
const PAM_CONV_ERR: c_int = 19;
const PAM_FAIL_DELAY: c_int = 10;
const PAM_PROMPT_ECHO_OFF: c_int = 1;
const PAM_PROMPT_ECHO_ON: c_int = 2;
// Linux-PAM refuses more than this many messages in one call.
const PAM_MAX_NUM_MSG: c_int = 32;

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
    msg: *mut *mut PamMessage,
    resp: *mut *mut PamResponse,
    appdata_ptr: *mut c_void,
) -> c_int {
    // A panic must not unwind into libpam.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        converse_inner(num_msg, msg, resp, appdata_ptr)
    }))
    .unwrap_or(PAM_CONV_ERR)
}

fn converse_inner(
    num_msg: c_int,
    msg: *mut *mut PamMessage,
    resp: *mut *mut PamResponse,
    appdata_ptr: *mut c_void,
) -> c_int {
    if msg.is_null() || resp.is_null() || appdata_ptr.is_null() {
        return PAM_CONV_ERR;
    }
    if !(1..=PAM_MAX_NUM_MSG).contains(&num_msg) {
        return PAM_CONV_ERR;
    }
    let count = usize::try_from(num_msg).unwrap_or(0);
    // SAFETY: appdata_ptr is the `Conversation` that `transaction` gave
    // pam_start; it outlives the handle, and libpam calls back on this thread
    // only, so this is the only reference to it while the call lasts.
    let conv = unsafe { &mut *appdata_ptr.cast::<Conversation>() };
    // SAFETY: calloc of 1..=32 zeroed PamResponse structs (null `resp` is
    // valid); libpam frees the array and each `resp` with free().
    let responses =
        unsafe { libc::calloc(count, std::mem::size_of::<PamResponse>()) }.cast::<PamResponse>();
    if responses.is_null() {
        return PAM_BUF_ERR;
    }
    for i in 0..count {
        // SAFETY: Linux-PAM passes an array of `num_msg` message pointers.
        let message = unsafe { *msg.add(i) };
        if message.is_null() {
            continue;
        }
        // SAFETY: a non-null message from libpam, valid for this call.
        let style = unsafe { (*message).msg_style };
        if style != PAM_PROMPT_ECHO_OFF && style != PAM_PROMPT_ECHO_ON {
            continue; // Information and errors take no answer.
        }
        conv.prompts += 1;
        // SAFETY: `answer` is a valid C string; strdup copies it into
        // malloc'd memory that libpam will free().
        let copy = unsafe { libc::strdup(conv.answer.as_ptr()) };
        if copy.is_null() {
            for j in 0..i {
                // SAFETY: j < i < count; each `resp` is null or from strdup.
                unsafe { libc::free((*responses.add(j)).resp.cast::<c_void>()) };
            }
            // SAFETY: from calloc above, freed once.
            unsafe { libc::free(responses.cast::<c_void>()) };
            return PAM_BUF_ERR;
        }
        // SAFETY: i < count, inside the array.
        unsafe { (*responses.add(i)).resp = copy };
    }
    // SAFETY: `resp` is libpam's valid out-pointer; it takes ownership.
    unsafe { *resp = responses };
    PAM_SUCCESS
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
    let pam_conv = PamConversation {
        conv: Some(converse),
        data_ptr: ptr::addr_of_mut!(conversation).cast::<c_void>(),
    };
    let mut handle: *const PamHandle = ptr::null();
    let start = Instant::now();
    // SAFETY: valid C strings; libpam copies service and user and keeps
    // pointers to `pam_conv` and `conversation`, which outlive pam_end below.
    // `conversation` is not touched again until after pam_end, so the
    // callback's `&mut` is the only reference while libpam may call it.
    let rc = unsafe { raw::pam_start(service.as_ptr(), user.as_ptr(), &pam_conv, &mut handle) };
    if rc != PAM_SUCCESS || handle.is_null() {
        return Err(format!("pam_start({service:?}) returned {rc}"));
    }
    let pamh = handle.cast_mut();
    // SAFETY: a function of the type libpam expects for PAM_FAIL_DELAY
    // (void (*)(int, unsigned, void *)), valid for the whole process.
    unsafe { raw::pam_set_item(pamh, PAM_FAIL_DELAY, no_fail_delay as *const c_void) };
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
