//! libpam's C interface where pam-sys lacks it or declares it wrongly, and
//! the numbers of `<security/_pam_types.h>`: one copy, used by the module
//! (`ffi`), the test driver, the benchmark and the test harness.
//!
//! pam-sys stays for what it declares correctly: the opaque handle,
//! `pam_message`, `pam_response`, and the item, user and transaction
//! functions. Its conversation type is wrong twice over, so it is declared
//! here instead:
//! - the callback is the application's code, reached through a pointer;
//!   pam-sys types it as a safe `extern "C" fn`, so calling it needs no
//!   `unsafe` and no SAFETY argument. Here it is an `unsafe extern "C" fn`.
//! - its message argument is `const struct pam_message **` in C; pam-sys
//!   has `*mut *mut PamMessage`, which forces a module to cast a `*const`
//!   message to `*mut`. Here it is `*mut *const PamMessage`.
//!
//! `pam_start` takes the conversation, so it is declared here with the
//! corrected type; `pam_syslog` (`<security/pam_ext.h>`) is not in pam-sys.
//!
//! Declarations only: nothing in this file runs, so it holds no `unsafe`.

use libc::{c_char, c_int, c_uint, c_void};
pub use pam_sys::{PamHandle, PamMessage, PamResponse};

/// `int (*conv)(int num_msg, const struct pam_message **msg,
/// struct pam_response **resp, void *appdata_ptr)`.
///
/// Linux-PAM passes `msg` as an array of `num_msg` pointers (not Solaris's
/// pointer to an array); the callee allocates `*resp` with `malloc` and the
/// caller frees it and each non-null `resp` in it.
pub type ConvFn = unsafe extern "C" fn(
    num_msg: c_int,
    msg: *mut *const PamMessage,
    resp: *mut *mut PamResponse,
    appdata_ptr: *mut c_void,
) -> c_int;

/// `struct pam_conv`.
#[repr(C)]
#[derive(Debug)]
pub struct PamConv {
    pub conv: Option<ConvFn>,
    pub appdata_ptr: *mut c_void,
}

/// The type of the `PAM_FAIL_DELAY` item:
/// `void (*delay_fn)(int retval, unsigned usec_delay, void *appdata_ptr)`.
pub type FailDelayFn =
    unsafe extern "C" fn(retval: c_int, usec_delay: c_uint, appdata_ptr: *mut c_void);

extern "C" {
    /// `<security/pam_appl.h>`; `pamh` is `pam_handle_t **`.
    pub fn pam_start(
        service_name: *const c_char,
        user: *const c_char,
        pam_conversation: *const PamConv,
        pamh: *mut *mut PamHandle,
    ) -> c_int;

    /// `<security/pam_ext.h>`: logs to LOG_AUTHPRIV unless `priority` names
    /// a facility, prefixed with the module and service names.
    pub fn pam_syslog(pamh: *const PamHandle, priority: c_int, fmt: *const c_char, ...);
}

// Return codes.
pub const PAM_SUCCESS: c_int = 0;
pub const PAM_OPEN_ERR: c_int = 1;
pub const PAM_SYMBOL_ERR: c_int = 2;
pub const PAM_SERVICE_ERR: c_int = 3;
pub const PAM_SYSTEM_ERR: c_int = 4;
pub const PAM_BUF_ERR: c_int = 5;
pub const PAM_PERM_DENIED: c_int = 6;
pub const PAM_AUTH_ERR: c_int = 7;
pub const PAM_CRED_INSUFFICIENT: c_int = 8;
pub const PAM_AUTHINFO_UNAVAIL: c_int = 9;
pub const PAM_USER_UNKNOWN: c_int = 10;
pub const PAM_MAXTRIES: c_int = 11;
pub const PAM_NEW_AUTHTOK_REQD: c_int = 12;
pub const PAM_ACCT_EXPIRED: c_int = 13;
pub const PAM_SESSION_ERR: c_int = 14;
pub const PAM_CRED_UNAVAIL: c_int = 15;
pub const PAM_CRED_EXPIRED: c_int = 16;
pub const PAM_CRED_ERR: c_int = 17;
pub const PAM_NO_MODULE_DATA: c_int = 18;
pub const PAM_CONV_ERR: c_int = 19;
pub const PAM_AUTHTOK_ERR: c_int = 20;
pub const PAM_AUTHTOK_RECOVERY_ERR: c_int = 21;
pub const PAM_AUTHTOK_LOCK_BUSY: c_int = 22;
pub const PAM_AUTHTOK_DISABLE_AGING: c_int = 23;
pub const PAM_TRY_AGAIN: c_int = 24;
pub const PAM_IGNORE: c_int = 25;
pub const PAM_ABORT: c_int = 26;
pub const PAM_AUTHTOK_EXPIRED: c_int = 27;
pub const PAM_MODULE_UNKNOWN: c_int = 28;
pub const PAM_BAD_ITEM: c_int = 29;
pub const PAM_CONV_AGAIN: c_int = 30;
pub const PAM_INCOMPLETE: c_int = 31;

/// The name of a return code, e.g. `PAM_AUTH_ERR`, for reports.
pub fn return_code_name(rc: c_int) -> &'static str {
    const NAMES: [&str; 32] = [
        "PAM_SUCCESS",
        "PAM_OPEN_ERR",
        "PAM_SYMBOL_ERR",
        "PAM_SERVICE_ERR",
        "PAM_SYSTEM_ERR",
        "PAM_BUF_ERR",
        "PAM_PERM_DENIED",
        "PAM_AUTH_ERR",
        "PAM_CRED_INSUFFICIENT",
        "PAM_AUTHINFO_UNAVAIL",
        "PAM_USER_UNKNOWN",
        "PAM_MAXTRIES",
        "PAM_NEW_AUTHTOK_REQD",
        "PAM_ACCT_EXPIRED",
        "PAM_SESSION_ERR",
        "PAM_CRED_UNAVAIL",
        "PAM_CRED_EXPIRED",
        "PAM_CRED_ERR",
        "PAM_NO_MODULE_DATA",
        "PAM_CONV_ERR",
        "PAM_AUTHTOK_ERR",
        "PAM_AUTHTOK_RECOVERY_ERR",
        "PAM_AUTHTOK_LOCK_BUSY",
        "PAM_AUTHTOK_DISABLE_AGING",
        "PAM_TRY_AGAIN",
        "PAM_IGNORE",
        "PAM_ABORT",
        "PAM_AUTHTOK_EXPIRED",
        "PAM_MODULE_UNKNOWN",
        "PAM_BAD_ITEM",
        "PAM_CONV_AGAIN",
        "PAM_INCOMPLETE",
    ];
    usize::try_from(rc)
        .ok()
        .and_then(|i| NAMES.get(i))
        .copied()
        .unwrap_or("PAM_UNKNOWN_CODE")
}

// Items (pam_get_item / pam_set_item).
pub const PAM_SERVICE: c_int = 1;
pub const PAM_USER: c_int = 2;
pub const PAM_TTY: c_int = 3;
pub const PAM_RHOST: c_int = 4;
pub const PAM_CONV: c_int = 5;
pub const PAM_AUTHTOK: c_int = 6;
pub const PAM_OLDAUTHTOK: c_int = 7;
pub const PAM_RUSER: c_int = 8;
pub const PAM_USER_PROMPT: c_int = 9;
pub const PAM_FAIL_DELAY: c_int = 10;

// Message styles.
pub const PAM_PROMPT_ECHO_OFF: c_int = 1;
pub const PAM_PROMPT_ECHO_ON: c_int = 2;
pub const PAM_ERROR_MSG: c_int = 3;
pub const PAM_TEXT_INFO: c_int = 4;

/// Linux-PAM refuses more messages than this in one conversation call.
pub const PAM_MAX_NUM_MSG: c_int = 32;

// Flags.
pub const PAM_SILENT: c_int = 0x8000;
pub const PAM_ESTABLISH_CRED: c_int = 0x0002;

#[cfg(test)]
mod tests {
    use super::*;

    /// Every number here as the system's header defines it.
    #[test]
    fn constants_match_the_system_header() {
        let header = ["/usr/include/security/_pam_types.h"]
            .iter()
            .find_map(|path| std::fs::read_to_string(path).ok())
            .expect("<security/_pam_types.h> missing: apt-get install libpam0g-dev");
        let defined = |name: &str| -> Option<c_int> {
            header.lines().find_map(|line| {
                let mut words = line.split_whitespace();
                if words.next()? != "#define" || words.next()? != name {
                    return None;
                }
                // Flags are written as unsigned literals (`0x8000U`).
                let value = words.next()?.trim_end_matches('U');
                match value.strip_prefix("0x") {
                    Some(hex) => c_int::from_str_radix(hex, 16).ok(),
                    None => value.parse().ok(),
                }
            })
        };
        let ours = [
            ("PAM_SUCCESS", PAM_SUCCESS),
            ("PAM_OPEN_ERR", PAM_OPEN_ERR),
            ("PAM_SYMBOL_ERR", PAM_SYMBOL_ERR),
            ("PAM_SERVICE_ERR", PAM_SERVICE_ERR),
            ("PAM_SYSTEM_ERR", PAM_SYSTEM_ERR),
            ("PAM_BUF_ERR", PAM_BUF_ERR),
            ("PAM_PERM_DENIED", PAM_PERM_DENIED),
            ("PAM_AUTH_ERR", PAM_AUTH_ERR),
            ("PAM_CRED_INSUFFICIENT", PAM_CRED_INSUFFICIENT),
            ("PAM_AUTHINFO_UNAVAIL", PAM_AUTHINFO_UNAVAIL),
            ("PAM_USER_UNKNOWN", PAM_USER_UNKNOWN),
            ("PAM_MAXTRIES", PAM_MAXTRIES),
            ("PAM_NEW_AUTHTOK_REQD", PAM_NEW_AUTHTOK_REQD),
            ("PAM_ACCT_EXPIRED", PAM_ACCT_EXPIRED),
            ("PAM_SESSION_ERR", PAM_SESSION_ERR),
            ("PAM_CRED_UNAVAIL", PAM_CRED_UNAVAIL),
            ("PAM_CRED_EXPIRED", PAM_CRED_EXPIRED),
            ("PAM_CRED_ERR", PAM_CRED_ERR),
            ("PAM_NO_MODULE_DATA", PAM_NO_MODULE_DATA),
            ("PAM_CONV_ERR", PAM_CONV_ERR),
            ("PAM_AUTHTOK_ERR", PAM_AUTHTOK_ERR),
            ("PAM_AUTHTOK_RECOVERY_ERR", PAM_AUTHTOK_RECOVERY_ERR),
            ("PAM_AUTHTOK_LOCK_BUSY", PAM_AUTHTOK_LOCK_BUSY),
            ("PAM_AUTHTOK_DISABLE_AGING", PAM_AUTHTOK_DISABLE_AGING),
            ("PAM_TRY_AGAIN", PAM_TRY_AGAIN),
            ("PAM_IGNORE", PAM_IGNORE),
            ("PAM_ABORT", PAM_ABORT),
            ("PAM_AUTHTOK_EXPIRED", PAM_AUTHTOK_EXPIRED),
            ("PAM_MODULE_UNKNOWN", PAM_MODULE_UNKNOWN),
            ("PAM_BAD_ITEM", PAM_BAD_ITEM),
            ("PAM_CONV_AGAIN", PAM_CONV_AGAIN),
            ("PAM_INCOMPLETE", PAM_INCOMPLETE),
            ("PAM_SERVICE", PAM_SERVICE),
            ("PAM_USER", PAM_USER),
            ("PAM_TTY", PAM_TTY),
            ("PAM_RHOST", PAM_RHOST),
            ("PAM_CONV", PAM_CONV),
            ("PAM_AUTHTOK", PAM_AUTHTOK),
            ("PAM_OLDAUTHTOK", PAM_OLDAUTHTOK),
            ("PAM_RUSER", PAM_RUSER),
            ("PAM_USER_PROMPT", PAM_USER_PROMPT),
            ("PAM_FAIL_DELAY", PAM_FAIL_DELAY),
            ("PAM_PROMPT_ECHO_OFF", PAM_PROMPT_ECHO_OFF),
            ("PAM_PROMPT_ECHO_ON", PAM_PROMPT_ECHO_ON),
            ("PAM_ERROR_MSG", PAM_ERROR_MSG),
            ("PAM_TEXT_INFO", PAM_TEXT_INFO),
            ("PAM_MAX_NUM_MSG", PAM_MAX_NUM_MSG),
            ("PAM_SILENT", PAM_SILENT),
            ("PAM_ESTABLISH_CRED", PAM_ESTABLISH_CRED),
        ];
        for (name, value) in ours {
            assert_eq!(defined(name), Some(value), "{name}");
        }
    }

    #[test]
    fn return_code_names_follow_the_numbers() {
        for rc in PAM_SUCCESS..=PAM_INCOMPLETE {
            assert!(return_code_name(rc).starts_with("PAM_"));
        }
        assert_eq!(return_code_name(PAM_AUTH_ERR), "PAM_AUTH_ERR");
        assert_eq!(return_code_name(PAM_IGNORE), "PAM_IGNORE");
        assert_eq!(return_code_name(PAM_INCOMPLETE), "PAM_INCOMPLETE");
        assert_eq!(return_code_name(-1), "PAM_UNKNOWN_CODE");
        assert_eq!(return_code_name(PAM_INCOMPLETE + 1), "PAM_UNKNOWN_CODE");
    }
}
