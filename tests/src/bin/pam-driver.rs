//! pam-driver: runs one PAM authentication through the real libpam with a
//! scripted conversation, and reports what happened on stdout, one record a
//! line, for the test harness (`pam_totp_tests::Outcome::parse`) to read.
//!
//! ```text
//! pam-driver --service NAME --user USER [--rhost HOST] [--tty TTY] [--ruser USER]
//!            [--authtok TEXT] [--answer TEXT]... [--when-out-of-answers fail|empty]
//!            [--silent] [--setcred] [--print-authtok] [--hold DIR]
//! ```
//!
//! `--hold DIR`: at the first prompt that wants an answer, create
//! `DIR/prompted-PID` and wait until `DIR/go` exists before answering. The
//! harness uses it to start many logins and let them all answer at once (a
//! race), or to change the file while the module waits at its prompt.
//!
//! Records (tab-separated; text fields escaped by `escape`):
//!
//! ```text
//! start         RC NAME
//! set_item      ITEM RC NAME
//! prompt        STYLE TEXT          STYLE: echo_off, echo_on, error, info, style_N
//! answer        N                   the N-th (from 0) --answer was given
//! answer        empty               out of answers: answered ""
//! answer        refused             out of answers: failed the conversation
//! fail_delay    RC USEC             libpam's failure delay, never slept (0: none asked)
//! authenticate  RC NAME
//! setcred       RC NAME
//! authtok       item|env TEXT       PAM_AUTHTOK after authentication
//! authtok       unset
//! end           RC NAME
//! ```
//!
//! Exit status: 0 when the run was reported (whatever PAM answered), 2 on a
//! usage error, 1 when stdout could not be written.
//!
//! `--authtok` tries pam_set_item(PAM_AUTHTOK), which Linux-PAM refuses to
//! applications (the record shows PAM_BAD_ITEM), and also exports the value
//! as the environment variable PAM_AUTHTOK for pam_wrapper's
//! pam_set_items.so: stacked before the module, it sets the item from module
//! context. `--print-authtok` likewise falls back to the PAM environment,
//! where pam_get_items.so, stacked after the module, copies the item.
//!
//! It is meant to run under pam_wrapper (`LD_PRELOAD=libpam_wrapper.so
//! PAM_WRAPPER=1 PAM_WRAPPER_SERVICE_DIR=DIR`), but links the ordinary libpam.
#![allow(unsafe_code)] // FFI with libpam; every block says why it is sound.

use libc::{c_char, c_int, c_uint, c_void};
use pam_sys::{raw, PamConversation, PamHandle, PamMessage, PamResponse};
use std::ffi::{CStr, CString, OsStr, OsString};
use std::io::{self, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::process::ExitCode;
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};

// From <security/_pam_types.h>.
const PAM_SUCCESS: c_int = 0;
const PAM_BUF_ERR: c_int = 5;
const PAM_CONV_ERR: c_int = 19;
const PAM_SILENT: c_int = 0x8000;
const PAM_ESTABLISH_CRED: c_int = 0x0002;
const PAM_TTY: c_int = 3;
const PAM_RHOST: c_int = 4;
const PAM_AUTHTOK: c_int = 6;
const PAM_RUSER: c_int = 8;
const PAM_FAIL_DELAY: c_int = 10;
const PAM_PROMPT_ECHO_OFF: c_int = 1;
const PAM_PROMPT_ECHO_ON: c_int = 2;
const PAM_ERROR_MSG: c_int = 3;
const PAM_TEXT_INFO: c_int = 4;
// Linux-PAM refuses more than this many messages in one call.
const PAM_MAX_NUM_MSG: c_int = 32;

const USAGE: &str = "usage: pam-driver --service NAME --user USER [--rhost HOST] [--tty TTY] \
[--ruser USER] [--authtok TEXT] [--answer TEXT]... [--when-out-of-answers fail|empty] \
[--silent] [--setcred] [--print-authtok] [--hold DIR]";

/// What to do when a module asks for more input than was scripted.
#[derive(Clone, Copy, Debug, PartialEq)]
enum OutOfAnswers {
    /// Fail the conversation (PAM_CONV_ERR): an unexpected prompt is visible.
    Fail,
    /// Answer with an empty string, like a user pressing Enter.
    Empty,
}

#[derive(Debug, Default)]
struct Args {
    service: Option<CString>,
    user: Option<CString>,
    items: Vec<(c_int, &'static str, CString)>,
    authtok: Option<CString>,
    answers: Vec<CString>,
    out_of_answers: Option<OutOfAnswers>,
    silent: bool,
    setcred: bool,
    print_authtok: bool,
    hold: Option<std::path::PathBuf>,
}

/// Values are bytes, not necessarily UTF-8: a module must cope with any
/// answer, so the tests must be able to send one.
fn c_string(flag: &str, value: OsString) -> Result<CString, String> {
    CString::new(value.into_vec()).map_err(|_| format!("{flag}: the value contains a NUL byte"))
}

fn parse_args(mut args: impl Iterator<Item = OsString>) -> Result<Args, String> {
    let mut parsed = Args::default();
    while let Some(flag) = args.next() {
        let flag = flag
            .into_string()
            .map_err(|f| format!("not UTF-8: {f:?}"))?;
        let mut value = || -> Result<OsString, String> {
            args.next().ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--service" => parsed.service = Some(c_string(&flag, value()?)?),
            "--user" => parsed.user = Some(c_string(&flag, value()?)?),
            "--rhost" => {
                let v = c_string(&flag, value()?)?;
                parsed.items.push((PAM_RHOST, "PAM_RHOST", v));
            }
            "--tty" => {
                let v = c_string(&flag, value()?)?;
                parsed.items.push((PAM_TTY, "PAM_TTY", v));
            }
            "--ruser" => {
                let v = c_string(&flag, value()?)?;
                parsed.items.push((PAM_RUSER, "PAM_RUSER", v));
            }
            "--authtok" => {
                let v = c_string(&flag, value()?)?;
                parsed.authtok = Some(v.clone());
                parsed.items.push((PAM_AUTHTOK, "PAM_AUTHTOK", v));
            }
            "--answer" => parsed.answers.push(c_string(&flag, value()?)?),
            "--when-out-of-answers" => {
                parsed.out_of_answers = Some(match value()?.to_str() {
                    Some("fail") => OutOfAnswers::Fail,
                    Some("empty") => OutOfAnswers::Empty,
                    _ => return Err(format!("{flag}: expected fail or empty")),
                });
            }
            "--silent" => parsed.silent = true,
            "--setcred" => parsed.setcred = true,
            "--print-authtok" => parsed.print_authtok = true,
            "--hold" => parsed.hold = Some(value()?.into()),
            "--help" | "-h" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if parsed.service.is_none() || parsed.user.is_none() {
        return Err("--service and --user are required".to_owned());
    }
    Ok(parsed)
}

/// Escapes a byte string so that it fits in one tab-separated field:
/// `\\`, `\t`, `\n`, `\r`, and `\xNN` for every other byte outside
/// printable ASCII. `pam_totp_tests::unescape` reverses it.
fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'\t' => out.push_str("\\t"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            0x20..=0x7e => out.push(char::from(b)),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out
}

fn code_name(rc: c_int) -> &'static str {
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

/// Set when stdout could not be written; checked at exit.
static OUTPUT_FAILED: AtomicBool = AtomicBool::new(false);

/// Writes one record at once (a crash later still leaves the transcript).
/// Errors are remembered, not raised: this also runs inside C callbacks.
fn record(fields: &[&str]) {
    let mut out = io::stdout().lock();
    if writeln!(out, "{}", fields.join("\t"))
        .and_then(|()| out.flush())
        .is_err()
    {
        OUTPUT_FAILED.store(true, Ordering::Relaxed);
    }
}

fn record_code(what: &str, rc: c_int) {
    record(&[what, &rc.to_string(), code_name(rc)]);
}

/// The state the conversation callback works on, reached through
/// `appdata_ptr`.
struct Conversation {
    answers: Vec<CString>,
    next: usize,
    out_of_answers: OutOfAnswers,
    /// `--hold`: taken at the first prompt.
    hold: Option<std::path::PathBuf>,
}

/// Longest wait for the harness's `go` (it never takes this long unless the
/// test process died).
const HOLD_LIMIT: std::time::Duration = std::time::Duration::from_secs(120);

/// Tells the harness this process is at its prompt and waits for `go`.
fn hold_at_prompt(dir: &std::path::Path) {
    let _ = std::fs::write(dir.join(format!("prompted-{}", std::process::id())), b"");
    let start = std::time::Instant::now();
    while !dir.join("go").exists() && start.elapsed() < HOLD_LIMIT {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

impl Conversation {
    /// The answer for the next prompt, or None to fail the conversation.
    fn next_answer(&mut self) -> Option<CString> {
        if let Some(dir) = self.hold.take() {
            hold_at_prompt(&dir);
        }
        if let Some(answer) = self.answers.get(self.next) {
            let answer = answer.clone();
            record(&["answer", &self.next.to_string()]);
            self.next += 1;
            return Some(answer);
        }
        match self.out_of_answers {
            OutOfAnswers::Empty => {
                record(&["answer", "empty"]);
                Some(CString::default())
            }
            OutOfAnswers::Fail => {
                record(&["answer", "refused"]);
                None
            }
        }
    }
}

/// Frees a response array built by `converse` (on its failure paths).
///
/// # Safety
/// `responses` must come from `calloc` of `count` `PamResponse`s whose `resp`
/// fields are null or from `strdup`.
unsafe fn free_responses(responses: *mut PamResponse, count: usize) {
    for i in 0..count {
        // SAFETY: i < count, inside the calloc'd array (caller's contract).
        let resp = unsafe { (*responses.add(i)).resp };
        if !resp.is_null() {
            // SAFETY: the caller promises non-null `resp` came from strdup.
            unsafe { libc::free(resp.cast::<c_void>()) };
        }
    }
    // SAFETY: from calloc (caller's contract), freed once.
    unsafe { libc::free(responses.cast::<c_void>()) };
}

extern "C" fn converse(
    num_msg: c_int,
    msg: *mut *mut PamMessage,
    resp: *mut *mut PamResponse,
    appdata_ptr: *mut c_void,
) -> c_int {
    // A panic must not unwind into libpam; it would abort the process anyway.
    catch_unwind(AssertUnwindSafe(|| {
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
    // SAFETY: appdata_ptr is the `Conversation` run() gave pam_start;
    // it outlives the handle and libpam calls us on run()'s thread only, so
    // no other reference to it is live.
    let conv = unsafe { &mut *appdata_ptr.cast::<Conversation>() };
    // SAFETY: calloc of `count` (1..=32) zeroed PamResponse structs; null
    // `resp` fields are valid. libpam frees it (and each `resp`) with free().
    let responses =
        unsafe { libc::calloc(count, std::mem::size_of::<PamResponse>()) }.cast::<PamResponse>();
    if responses.is_null() {
        return PAM_BUF_ERR;
    }
    for i in 0..count {
        // SAFETY: Linux-PAM passes `msg` as an array of `num_msg` pointers to
        // messages (the Linux layout, not Solaris's pointer to an array).
        let message = unsafe { *msg.add(i) };
        if message.is_null() {
            // SAFETY: array and strings from calloc/strdup above.
            unsafe { free_responses(responses, count) };
            return PAM_CONV_ERR;
        }
        // SAFETY: a non-null message from libpam, valid for this call.
        let PamMessage {
            msg_style,
            msg: text,
        } = unsafe { *message };
        let text = if text.is_null() {
            Vec::new()
        } else {
            // SAFETY: message text is a NUL-terminated string owned by the
            // module, valid for this call; copied at once.
            unsafe { CStr::from_ptr(text) }.to_bytes().to_vec()
        };
        let style = match msg_style {
            PAM_PROMPT_ECHO_OFF => "echo_off".to_owned(),
            PAM_PROMPT_ECHO_ON => "echo_on".to_owned(),
            PAM_ERROR_MSG => "error".to_owned(),
            PAM_TEXT_INFO => "info".to_owned(),
            other => format!("style_{other}"),
        };
        record(&["prompt", &style, &escape(&text)]);
        if msg_style != PAM_PROMPT_ECHO_OFF && msg_style != PAM_PROMPT_ECHO_ON {
            continue; // Messages take no answer: resp stays null.
        }
        let Some(answer) = conv.next_answer() else {
            // SAFETY: array and strings from calloc/strdup above.
            unsafe { free_responses(responses, count) };
            return PAM_CONV_ERR;
        };
        // SAFETY: `answer` is a valid C string; strdup copies it into malloc'd
        // memory that libpam will free().
        let copy = unsafe { libc::strdup(answer.as_ptr()) };
        if copy.is_null() {
            // SAFETY: array and strings from calloc/strdup above.
            unsafe { free_responses(responses, count) };
            return PAM_BUF_ERR;
        }
        // SAFETY: i < count, inside the array.
        unsafe { (*responses.add(i)).resp = copy };
    }
    // SAFETY: `resp` is libpam's valid out-pointer; it takes ownership.
    unsafe { *resp = responses };
    PAM_SUCCESS
}

/// Replaces libpam's failure delay, so tests never sleep. libpam calls it
/// after every pam_authenticate with the longest delay a module asked for
/// (pam_fail_delay), 0 if none; it is recorded for tests to check.
extern "C" fn fail_delay(retval: c_int, usec: c_uint, _appdata_ptr: *mut c_void) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        record(&["fail_delay", &retval.to_string(), &usec.to_string()]);
    }));
}

/// Reads PAM_AUTHTOK. Linux-PAM keeps it from applications (PAM_BAD_ITEM),
/// so it falls back to the copy that pam_wrapper's pam_get_items.so module,
/// when stacked after the module under test, exports to the PAM environment.
fn authtok(pamh: *mut PamHandle) -> Option<(&'static str, Vec<u8>)> {
    let mut item: *const c_void = ptr::null();
    // SAFETY: live handle from pam_start, valid out-pointer.
    let rc = unsafe { raw::pam_get_item(pamh, PAM_AUTHTOK, &mut item) };
    if rc == PAM_SUCCESS && !item.is_null() {
        // SAFETY: PAM_AUTHTOK is a NUL-terminated string owned by libpam.
        let text = unsafe { CStr::from_ptr(item.cast::<c_char>()) };
        return Some(("item", text.to_bytes().to_vec()));
    }
    // SAFETY: live handle; the name is a constant C string.
    let value = unsafe { raw::pam_getenv(pamh, c"PAM_AUTHTOK".as_ptr()) };
    if value.is_null() {
        return None;
    }
    // SAFETY: pam_getenv returns a NUL-terminated string owned by libpam.
    let text = unsafe { CStr::from_ptr(value) };
    Some(("env", text.to_bytes().to_vec()))
}

fn run(args: Args) -> ExitCode {
    let (Some(service), Some(user)) = (args.service, args.user) else {
        return ExitCode::from(2);
    };
    if let Some(authtok) = &args.authtok {
        // For pam_wrapper's pam_set_items.so, which sets PAM_AUTHTOK from
        // this variable in module context, where libpam allows it.
        std::env::set_var("PAM_AUTHTOK", OsStr::from_bytes(authtok.as_bytes()));
    }
    let mut conversation = Conversation {
        answers: args.answers,
        next: 0,
        out_of_answers: args.out_of_answers.unwrap_or(OutOfAnswers::Fail),
        hold: args.hold,
    };
    let pam_conv = PamConversation {
        conv: Some(converse),
        data_ptr: ptr::addr_of_mut!(conversation).cast::<c_void>(),
    };
    let mut handle: *const PamHandle = ptr::null();
    // SAFETY: valid C strings and conversation; libpam copies service and
    // user, and keeps pointers to `pam_conv` and `conversation`, which live
    // until the end of this function, after pam_end. `conversation` is not
    // touched here again, so the callback's `&mut` to it is the only one.
    let rc = unsafe { raw::pam_start(service.as_ptr(), user.as_ptr(), &pam_conv, &mut handle) };
    record_code("start", rc);
    if rc != PAM_SUCCESS || handle.is_null() {
        return exit_code();
    }
    let pamh = handle.cast_mut();

    // SAFETY: a function of the type libpam expects for PAM_FAIL_DELAY
    // (void (*)(int, unsigned, void *)); it stays valid for the process.
    let rc = unsafe { raw::pam_set_item(pamh, PAM_FAIL_DELAY, fail_delay as *const c_void) };
    record(&["set_item", "PAM_FAIL_DELAY", &rc.to_string(), code_name(rc)]);
    for (item, name, value) in &args.items {
        // SAFETY: live handle; libpam copies string items.
        let rc = unsafe { raw::pam_set_item(pamh, *item, value.as_ptr().cast::<c_void>()) };
        record(&["set_item", name, &rc.to_string(), code_name(rc)]);
    }

    let flags = if args.silent { PAM_SILENT } else { 0 };
    // SAFETY: live handle; the conversation's data outlives the call.
    let auth_rc = unsafe { raw::pam_authenticate(pamh, flags) };
    record_code("authenticate", auth_rc);
    if args.setcred {
        // SAFETY: live handle.
        let rc = unsafe { raw::pam_setcred(pamh, flags | PAM_ESTABLISH_CRED) };
        record_code("setcred", rc);
    }
    if args.print_authtok {
        match authtok(pamh) {
            Some((source, value)) => record(&["authtok", source, &escape(&value)]),
            None => record(&["authtok", "unset"]),
        }
    }
    // SAFETY: live handle, ended once; not used afterwards.
    let rc = unsafe { raw::pam_end(pamh, auth_rc) };
    record_code("end", rc);
    exit_code()
}

fn exit_code() -> ExitCode {
    if OUTPUT_FAILED.load(Ordering::Relaxed) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn main() -> ExitCode {
    match parse_args(std::env::args_os().skip(1)) {
        Ok(args) => run(args),
        Err(message) => {
            let mut err = io::stderr().lock();
            if !message.is_empty() {
                let _ = writeln!(err, "pam-driver: {message}");
            }
            let _ = writeln!(err, "{USAGE}");
            ExitCode::from(2)
        }
    }
}
