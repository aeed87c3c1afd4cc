//! The boundary with libpam: the exported `pam_sm_*` entry points and the
//! few libpam calls the module makes. All of the crate's `unsafe` is here.
//!
//! Every entry point runs inside a panic barrier: a panic must never unwind
//! into the C caller, and it fails the login (fail closed).
//!
//! Each `unsafe` block holds one operation and says why it is sound (the
//! workspace lints enforce both). The C declarations are in [`crate::sys`].
//!
//! Why this is a module and not a crate of its own: libpam loads
//! `pam_totp.so` and looks up `pam_sm_*` in it, so the entry points must be
//! in the crate built as that cdylib; a separate FFI crate would have to
//! become `pam_totp` and the logic crate be renamed, for every user of it
//! (totp-enroll, the tests, the fuzz targets, the benchmarks). The same
//! guarantee is had here at lower cost: `lib.rs` forbids `unsafe_code` in
//! every other module, so no `allow` there can lift it.
#![allow(unsafe_code)]

use crate::module::{self, Pam, Priority, Status, SystemClock};
use crate::sys::{
    self, PamConv, PamHandle, PamMessage, PamResponse, PAM_AUTHINFO_UNAVAIL, PAM_AUTHTOK,
    PAM_AUTH_ERR, PAM_CONV, PAM_CONV_ERR, PAM_ERROR_MSG, PAM_IGNORE, PAM_PROMPT_ECHO_OFF,
    PAM_PROMPT_ECHO_ON, PAM_RHOST, PAM_SERVICE_ERR, PAM_SUCCESS, PAM_SYSTEM_ERR,
};
use libc::{c_char, c_int, c_void};
use std::ffi::{CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use zeroize::{Zeroize, Zeroizing};

fn pam_code(status: Status) -> c_int {
    match status {
        Status::Success => PAM_SUCCESS,
        Status::Ignore => PAM_IGNORE,
        Status::AuthErr => PAM_AUTH_ERR,
        Status::ServiceErr => PAM_SERVICE_ERR,
        Status::ConvErr => PAM_CONV_ERR,
        Status::AuthInfoUnavail => PAM_AUTHINFO_UNAVAIL,
    }
}

/// A libpam handle for the duration of one `pam_sm_*` call.
struct Handle {
    raw: *mut PamHandle,
}

impl Handle {
    fn item(&self, kind: c_int) -> *const c_void {
        let mut item: *const c_void = ptr::null();
        // SAFETY: `raw` is the live handle libpam passed us; `item` is a valid
        // out-pointer. libpam keeps ownership of what it points to.
        let rc = unsafe { pam_sys::raw::pam_get_item(self.raw, kind, &mut item) };
        if rc == PAM_SUCCESS {
            item
        } else {
            ptr::null()
        }
    }

    fn string_item(&self, kind: c_int) -> Option<Zeroizing<Vec<u8>>> {
        let item = self.item(kind);
        if item.is_null() {
            return None;
        }
        // SAFETY: string items (PAM_RHOST, PAM_AUTHTOK) are NUL-terminated C
        // strings owned by libpam, valid until the item is changed; we copy
        // them out at once.
        let bytes = unsafe { CStr::from_ptr(item.cast::<c_char>()) }.to_bytes();
        Some(Zeroizing::new(bytes.to_vec()))
    }

    /// One message through the application's conversation; the answer, if
    /// the message asked for one.
    fn converse(&mut self, style: c_int, prompt: &str) -> Option<Zeroizing<Vec<u8>>> {
        let conv = self.item(PAM_CONV).cast::<PamConv>();
        if conv.is_null() {
            return None;
        }
        // SAFETY: a non-null PAM_CONV is the application's pam_conv, which
        // libpam keeps alive and unchanged for the life of the handle.
        let conv = unsafe { &*conv };
        let callback = conv.conv?;
        let prompt = CString::new(prompt).ok()?;
        let message = PamMessage {
            msg_style: style,
            msg: prompt.as_ptr(),
        };
        let mut messages: *const PamMessage = &message;
        let mut response: *mut PamResponse = ptr::null_mut();
        // SAFETY: the application's conversation function, called as
        // pam_conv(3) says: an array of one message that lives across the
        // call, a valid out-pointer for the responses, and the application's
        // own data pointer, handed back unchanged.
        let rc = unsafe { callback(1, &mut messages, &mut response, conv.appdata_ptr) };
        if response.is_null() {
            return None;
        }
        // SAFETY: a non-null response is one pam_response the application
        // malloc'd for our one message; it is ours from now on.
        let answer = unsafe { (*response).resp };
        // SAFETY: malloc'd by the application, freed once; its one field was
        // read above and the pointer is not used again.
        unsafe { libc::free(response.cast::<c_void>()) };
        // The answer is wiped and freed whatever `rc` says.
        let answer = take_answer(answer);
        if rc == PAM_SUCCESS {
            answer
        } else {
            None
        }
    }

    fn syslog(&self, priority: c_int, message: &str) {
        // An interior NUL cannot reach syslog; cut the line there.
        let message = message.split('\0').next().unwrap_or_default();
        let Ok(message) = CString::new(message) else {
            return;
        };
        // SAFETY: the format is a constant "%s" and the one argument a valid
        // C string: nothing from the message is read as a format.
        unsafe { sys::pam_syslog(self.raw, priority, c"%s".as_ptr(), message.as_ptr()) };
    }
}

impl Pam for Handle {
    fn user(&mut self) -> Option<String> {
        let mut user: *const c_char = ptr::null();
        // SAFETY: live handle, valid out-pointer; a null prompt lets libpam
        // use its default if it has to ask.
        let rc = unsafe { pam_sys::raw::pam_get_user(self.raw, &mut user, ptr::null()) };
        if rc != PAM_SUCCESS || user.is_null() {
            return None;
        }
        // SAFETY: on success libpam returns a NUL-terminated string it owns.
        let name = unsafe { CStr::from_ptr(user) };
        name.to_str().ok().map(str::to_owned)
    }

    fn remote_host(&self) -> Option<Vec<u8>> {
        self.string_item(PAM_RHOST).map(|host| host.to_vec())
    }

    fn authtok(&self) -> Option<Zeroizing<Vec<u8>>> {
        self.string_item(PAM_AUTHTOK)
    }

    fn set_authtok(&mut self, value: &[u8]) -> bool {
        let Ok(value) = CString::new(value) else {
            return false;
        };
        let value = Zeroizing::new(value.into_bytes_with_nul());
        // SAFETY: live handle; libpam copies the string, so our buffer may be
        // wiped and freed right after.
        let rc = unsafe {
            pam_sys::raw::pam_set_item(self.raw, PAM_AUTHTOK, value.as_ptr().cast::<c_void>())
        };
        rc == PAM_SUCCESS
    }

    fn ask(&mut self, prompt: &str, echo: bool) -> Option<Zeroizing<Vec<u8>>> {
        let style = if echo {
            PAM_PROMPT_ECHO_ON
        } else {
            PAM_PROMPT_ECHO_OFF
        };
        self.converse(style, prompt)
    }

    fn tell_error(&mut self, message: &str) {
        let _ = self.converse(PAM_ERROR_MSG, message);
    }

    fn log(&self, priority: Priority, message: &str) {
        let level = match priority {
            Priority::Error => libc::LOG_ERR,
            Priority::Warning => libc::LOG_WARNING,
            Priority::Notice => libc::LOG_NOTICE,
            Priority::Info => libc::LOG_INFO,
            Priority::Debug => libc::LOG_DEBUG,
        };
        // pam_syslog logs to LOG_AUTHPRIV unless a facility is given.
        self.syslog(level, message);
    }
}

/// Copies an answer the application malloc'd, then wipes and frees it.
/// `None` for a null answer.
fn take_answer(answer: *mut c_char) -> Option<Zeroizing<Vec<u8>>> {
    if answer.is_null() {
        return None;
    }
    // SAFETY: a non-null `resp` is a NUL-terminated string (pam_conv(3)).
    let len = unsafe { libc::strlen(answer) };
    // SAFETY: the `len` bytes before the NUL are the string's, malloc'd by
    // the application and handed to us; nothing else refers to them.
    let bytes = unsafe { std::slice::from_raw_parts_mut(answer.cast::<u8>(), len) };
    let copy = Zeroizing::new(bytes.to_vec());
    bytes.zeroize();
    // SAFETY: malloc'd by the application, ours to free, freed once; `bytes`
    // is not used after this.
    unsafe { libc::free(answer.cast::<c_void>()) };
    Some(copy)
}

/// Copies the module arguments out of libpam's argv.
///
/// # Safety
/// `argv` must point to `argc` NUL-terminated strings (libpam guarantees it).
unsafe fn arguments(argc: c_int, argv: *const *const c_char) -> Vec<Vec<u8>> {
    let count = usize::try_from(argc).unwrap_or(0);
    if argv.is_null() || count == 0 {
        return Vec::new();
    }
    // SAFETY: `argv` is non-null and points to `argc` pointers (this
    // function's contract), which libpam keeps for the call.
    let argv = unsafe { std::slice::from_raw_parts(argv, count) };
    argv.iter()
        .filter(|arg| !arg.is_null())
        // SAFETY: each non-null entry is a NUL-terminated string (contract).
        .map(|&arg| unsafe { CStr::from_ptr(arg) }.to_bytes().to_vec())
        .collect()
}

/// Runs `body`, turning a panic into a logged PAM_SYSTEM_ERR.
fn barrier(pamh: *mut PamHandle, body: impl FnOnce() -> c_int) -> c_int {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(code) => code,
        Err(_) => {
            if !pamh.is_null() {
                let handle = Handle { raw: pamh };
                let _ = catch_unwind(AssertUnwindSafe(|| {
                    handle.syslog(libc::LOG_CRIT, "internal error (panic); login refused")
                }));
            }
            PAM_SYSTEM_ERR
        }
    }
}

/// # Safety
/// Called by libpam with a live handle and its argument vector.
#[no_mangle]
pub unsafe extern "C" fn pam_sm_authenticate(
    pamh: *mut PamHandle,
    _flags: c_int,
    argc: c_int,
    argv: *const *const c_char,
) -> c_int {
    barrier(pamh, || {
        if pamh.is_null() {
            return PAM_SYSTEM_ERR;
        }
        // SAFETY: libpam passes argc/argv as described in pam_sm_authenticate(3).
        let args = unsafe { arguments(argc, argv) };
        // Test builds only (tests/tests/panic_barrier.rs): panic inside the
        // barrier, through real libpam.
        #[cfg(feature = "panic-probe")]
        assert!(!args.iter().any(|a| a == b"panic_probe"), "panic probe");
        let mut handle = Handle { raw: pamh };
        pam_code(module::authenticate(&mut handle, &args, &SystemClock))
    })
}

/// The module sets no credentials; saying so keeps `auth` stacks that call
/// setcred working.
///
/// # Safety
/// Called by libpam; the arguments are not used.
#[no_mangle]
pub unsafe extern "C" fn pam_sm_setcred(
    pamh: *mut PamHandle,
    _flags: c_int,
    _argc: c_int,
    _argv: *const *const c_char,
) -> c_int {
    barrier(pamh, || PAM_SUCCESS)
}
