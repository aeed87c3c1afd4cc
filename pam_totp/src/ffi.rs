//! The boundary with libpam: the exported `pam_sm_*` entry points and the
//! few libpam calls the module makes. All of the crate's `unsafe` is here.
//!
//! Every entry point runs inside a panic barrier: a panic must never unwind
//! into the C caller, and it fails the login (fail closed).
#![allow(unsafe_code)]

use crate::module::{self, Pam, Priority, Status, SystemClock};
use libc::{c_char, c_int, c_void};
use pam_sys::{PamConversation, PamHandle, PamMessage, PamResponse};
use std::ffi::{CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use zeroize::{Zeroize, Zeroizing};

// From <security/_pam_types.h>.
const PAM_SUCCESS: c_int = 0;
const PAM_SERVICE_ERR: c_int = 3;
const PAM_SYSTEM_ERR: c_int = 4;
const PAM_AUTH_ERR: c_int = 7;
const PAM_CONV_ERR: c_int = 19;
const PAM_IGNORE: c_int = 25;

const PAM_CONV: c_int = 5;
const PAM_RHOST: c_int = 4;
const PAM_AUTHTOK: c_int = 6;

const PAM_PROMPT_ECHO_OFF: c_int = 1;
const PAM_PROMPT_ECHO_ON: c_int = 2;
const PAM_ERROR_MSG: c_int = 3;

extern "C" {
    // <security/pam_ext.h>; not in pam-sys.
    fn pam_syslog(pamh: *const PamHandle, priority: c_int, fmt: *const c_char, ...);
}

fn pam_code(status: Status) -> c_int {
    match status {
        Status::Success => PAM_SUCCESS,
        Status::Ignore => PAM_IGNORE,
        Status::AuthErr => PAM_AUTH_ERR,
        Status::ServiceErr => PAM_SERVICE_ERR,
        Status::ConvErr => PAM_CONV_ERR,
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
        let conv = self.item(PAM_CONV).cast::<PamConversation>();
        if conv.is_null() {
            return None;
        }
        // SAFETY: PAM_CONV points to the application's pam_conv, owned by
        // libpam for the life of the handle.
        let conv = unsafe { &*conv };
        let callback = conv.conv?;
        let prompt = CString::new(prompt).ok()?;
        let message = PamMessage {
            msg_style: style,
            msg: prompt.as_ptr(),
        };
        let mut message_ptr = &message as *const PamMessage as *mut PamMessage;
        let mut response: *mut PamResponse = ptr::null_mut();
        let rc = callback(1, &mut message_ptr, &mut response, conv.data_ptr);
        if response.is_null() {
            return None;
        }
        // SAFETY: on return the application handed us one malloc'd
        // pam_response whose `resp` is NULL or a malloc'd C string; both are
        // ours to wipe and free, whatever `rc` says.
        unsafe {
            let answer = (*response).resp;
            let text = if answer.is_null() {
                None
            } else {
                let bytes = CStr::from_ptr(answer).to_bytes();
                let copy = Zeroizing::new(bytes.to_vec());
                std::slice::from_raw_parts_mut(answer.cast::<u8>(), bytes.len()).zeroize();
                libc::free(answer.cast::<c_void>());
                Some(copy)
            };
            libc::free(response.cast::<c_void>());
            if rc == PAM_SUCCESS {
                text
            } else {
                None
            }
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
        unsafe { pam_syslog(self.raw, priority, c"%s".as_ptr(), message.as_ptr()) };
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

/// Copies the module arguments out of libpam's argv.
///
/// # Safety
/// `argv` must point to `argc` NUL-terminated strings (libpam guarantees it).
unsafe fn arguments(argc: c_int, argv: *const *const c_char) -> Vec<Vec<u8>> {
    let count = usize::try_from(argc).unwrap_or(0);
    if argv.is_null() {
        return Vec::new();
    }
    (0..count)
        .filter_map(|i| {
            // SAFETY: i < argc, per this function's contract.
            let arg = unsafe { *argv.add(i) };
            // SAFETY: each non-null entry is a NUL-terminated string.
            (!arg.is_null()).then(|| unsafe { CStr::from_ptr(arg) }.to_bytes().to_vec())
        })
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
