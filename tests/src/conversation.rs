//! The application side of a PAM conversation, for pam-driver and
//! pam-bench: reading the messages libpam hands a conversation function,
//! and building the response array it takes back. The one place in the
//! test crate's library that touches raw PAM memory.
#![allow(unsafe_code)] // FFI with libpam; every block says why it is sound.

use libc::{c_char, c_int, c_void};
use pam_totp::sys::{PamMessage, PamResponse, PAM_MAX_NUM_MSG};
use std::ffi::CStr;

/// One message a module sent, copied out of libpam's memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// `PAM_PROMPT_ECHO_OFF`, `PAM_PROMPT_ECHO_ON`, `PAM_ERROR_MSG`, ...
    pub style: c_int,
    /// The text; empty for a null one.
    pub text: Vec<u8>,
}

/// Copies the messages of one conversation call; `None` for a call libpam
/// would not make (no messages, more than `PAM_MAX_NUM_MSG`, a null
/// pointer).
///
/// # Safety
/// `msg` is what libpam passed the conversation function with `num_msg`:
/// null, or an array of `num_msg` pointers to messages (the Linux layout,
/// not Solaris's pointer to an array) valid for the call.
pub unsafe fn read_messages(num_msg: c_int, msg: *mut *const PamMessage) -> Option<Vec<Message>> {
    if msg.is_null() || !(1..=PAM_MAX_NUM_MSG).contains(&num_msg) {
        return None;
    }
    let count = usize::try_from(num_msg).ok()?;
    // SAFETY: a non-null array of `num_msg` pointers (this function's
    // contract), only read, and copied before the call returns.
    let pointers = unsafe { std::slice::from_raw_parts(msg, count) };
    pointers
        .iter()
        .map(|&message| {
            if message.is_null() {
                return None;
            }
            // SAFETY: a non-null message, valid for the call (contract).
            let PamMessage { msg_style, msg } = unsafe { *message };
            Some(Message {
                style: msg_style,
                text: copy_c_string(msg),
            })
        })
        .collect()
}

/// Copies a message text: a NUL-terminated string valid for the call, or
/// null.
fn copy_c_string(text: *const c_char) -> Vec<u8> {
    if text.is_null() {
        return Vec::new();
    }
    // SAFETY: a non-null message text is a NUL-terminated string that the
    // module keeps for the call (read_messages' contract); copied at once.
    unsafe { CStr::from_ptr(text) }.to_bytes().to_vec()
}

/// A response array as libpam takes it: `count` `pam_response`s from
/// calloc, each `resp` null or a strdup'd answer. Freed with everything in
/// it when dropped, unless [`Responses::hand_over`] gave it to libpam.
pub struct Responses {
    array: *mut PamResponse,
    count: usize,
}

impl Responses {
    /// `None` when out of memory (answer PAM_BUF_ERR).
    pub fn new(count: usize) -> Option<Responses> {
        // SAFETY: calloc has no preconditions; a zeroed pam_response (null
        // `resp`, zero code) is a valid value.
        let array = unsafe { libc::calloc(count, std::mem::size_of::<PamResponse>()) };
        let array = array.cast::<PamResponse>();
        (!array.is_null()).then_some(Responses { array, count })
    }

    fn slots(&mut self) -> &mut [PamResponse] {
        // SAFETY: `count` initialised (zeroed) responses from calloc, owned
        // by `self` until handed over, so no one else refers to them.
        unsafe { std::slice::from_raw_parts_mut(self.array, self.count) }
    }

    /// Answers message `index` with a malloc'd copy of `answer`; `false`
    /// when out of memory. Panics if `index` is out of range.
    pub fn answer(&mut self, index: usize, answer: &CStr) -> bool {
        // SAFETY: `answer` is a valid C string; strdup copies it into
        // malloc'd memory that libpam (or our Drop) frees.
        let copy = unsafe { libc::strdup(answer.as_ptr()) };
        if copy.is_null() {
            return false;
        }
        let slot = &mut self.slots()[index];
        // SAFETY: the slot's earlier answer (null, or ours from strdup) is
        // replaced right away.
        unsafe { free_answer(slot.resp) };
        slot.resp = copy;
        true
    }

    /// Gives the array and its answers to libpam, which frees them.
    ///
    /// # Safety
    /// `resp` is the valid out-pointer libpam passed the conversation
    /// function.
    pub unsafe fn hand_over(self, resp: *mut *mut PamResponse) {
        let array = self.array;
        std::mem::forget(self);
        // SAFETY: a valid out-pointer (this function's contract); libpam
        // owns the array from now on and we no longer refer to it.
        unsafe { resp.write(array) };
    }
}

/// Frees one answer of a [`Responses`].
///
/// # Safety
/// `answer` is null or a strdup'd answer whose slot is cleared or dropped
/// right after, so it is freed once.
unsafe fn free_answer(answer: *mut c_char) {
    // SAFETY: null or from strdup, freed once (this function's contract).
    unsafe { libc::free(answer.cast::<c_void>()) };
}

impl Drop for Responses {
    fn drop(&mut self) {
        for slot in self.slots() {
            // SAFETY: each answer is null or ours from strdup, and the array
            // is freed right after.
            unsafe { free_answer(slot.resp) };
        }
        // SAFETY: from calloc in `new`, still ours (not handed over), freed
        // once.
        unsafe { libc::free(self.array.cast::<c_void>()) };
    }
}

/// How a conversation answers one message: `Ok(Some(answer))`,
/// `Ok(None)` for no answer (messages that take none), `Err(code)` to fail
/// the whole call with that PAM code.
pub type Reply = Result<Option<std::ffi::CString>, c_int>;

/// The body of a conversation function: reads the messages, asks `reply`
/// for each (with the application's state `S`, the `appdata_ptr` it gave
/// pam_start), and hands the answers to libpam. A panic becomes
/// PAM_CONV_ERR instead of unwinding into libpam.
///
/// # Safety
/// The arguments are those libpam passed the conversation function, and
/// `appdata_ptr` points to an `S` that outlives the PAM handle and that
/// nothing else refers to while libpam calls back (the same thread).
pub unsafe fn converse<S>(
    num_msg: c_int,
    msg: *mut *const PamMessage,
    resp: *mut *mut PamResponse,
    appdata_ptr: *mut c_void,
    reply: fn(&mut S, &Message) -> Reply,
) -> c_int {
    use pam_totp::sys::{PAM_BUF_ERR, PAM_CONV_ERR, PAM_SUCCESS};
    let body = || {
        if resp.is_null() || appdata_ptr.is_null() {
            return PAM_CONV_ERR;
        }
        // SAFETY: `msg` and `num_msg` as libpam passed them (contract).
        let Some(messages) = (unsafe { read_messages(num_msg, msg) }) else {
            return PAM_CONV_ERR;
        };
        // SAFETY: a valid, unshared `S` for the call (contract).
        let state = unsafe { &mut *appdata_ptr.cast::<S>() };
        let Some(mut responses) = Responses::new(messages.len()) else {
            return PAM_BUF_ERR;
        };
        for (i, message) in messages.iter().enumerate() {
            match reply(state, message) {
                Ok(None) => {}
                Ok(Some(answer)) => {
                    if !responses.answer(i, &answer) {
                        return PAM_BUF_ERR;
                    }
                }
                Err(code) => return code,
            }
        }
        // SAFETY: `resp` is libpam's out-pointer for this call (contract).
        unsafe { responses.hand_over(resp) };
        PAM_SUCCESS
    };
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)).unwrap_or(PAM_CONV_ERR)
}
