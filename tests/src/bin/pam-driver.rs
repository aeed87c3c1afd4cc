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
//! usage error, 1 when stdout could not be written, 3 when pam_wrapper's
//! copy of the service directory turned out to be shared with another
//! process (stderr says so; no module authenticated).
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
use pam_sys::raw;
use pam_totp::sys::{
    self, return_code_name as code_name, FailDelayFn, PamConv, PamHandle, PamMessage, PamResponse,
    PAM_AUTHTOK, PAM_CONV_ERR, PAM_ERROR_MSG, PAM_ESTABLISH_CRED, PAM_FAIL_DELAY,
    PAM_PROMPT_ECHO_OFF, PAM_PROMPT_ECHO_ON, PAM_RHOST, PAM_RUSER, PAM_SILENT, PAM_SUCCESS,
    PAM_TEXT_INFO, PAM_TTY,
};
use pam_totp_tests::conversation::{self, Message, Reply};
use pam_totp_tests::system::PAM_WRAPPER_SLOT_SHARED as SLOT_SHARED;
use std::ffi::{CStr, CString, OsStr, OsString};
use std::io::{self, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::process::ExitCode;
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};

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

extern "C" fn converse(
    num_msg: c_int,
    msg: *mut *const PamMessage,
    resp: *mut *mut PamResponse,
    appdata_ptr: *mut c_void,
) -> c_int {
    // SAFETY: libpam's arguments, and appdata_ptr is the `Conversation`
    // run() gave pam_start: it outlives the handle, and libpam calls back on
    // run()'s thread only, so no other reference to it is live.
    unsafe { conversation::converse(num_msg, msg, resp, appdata_ptr, reply) }
}

/// Records each message and answers the prompts from the script.
fn reply(conv: &mut Conversation, message: &Message) -> Reply {
    let style = match message.style {
        PAM_PROMPT_ECHO_OFF => "echo_off".to_owned(),
        PAM_PROMPT_ECHO_ON => "echo_on".to_owned(),
        PAM_ERROR_MSG => "error".to_owned(),
        PAM_TEXT_INFO => "info".to_owned(),
        other => format!("style_{other}"),
    };
    record(&["prompt", &style, &escape(&message.text)]);
    if message.style != PAM_PROMPT_ECHO_OFF && message.style != PAM_PROMPT_ECHO_ON {
        return Ok(None); // Messages take no answer: resp stays null.
    }
    conv.next_answer().map(Some).ok_or(PAM_CONV_ERR)
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
    let pam_conv = PamConv {
        conv: Some(converse),
        appdata_ptr: ptr::addr_of_mut!(conversation).cast::<c_void>(),
    };
    let mut handle: *mut PamHandle = ptr::null_mut();
    // SAFETY: valid C strings and conversation; libpam copies service and
    // user, and keeps pointers to `pam_conv` and `conversation`, which live
    // until the end of this function, after pam_end. `conversation` is not
    // touched here again, so the callback's `&mut` to it is the only one.
    let rc = unsafe { sys::pam_start(service.as_ptr(), user.as_ptr(), &pam_conv, &mut handle) };
    let slot = pam_wrapper_slot_is_ours();
    record_code("start", rc);
    if rc != PAM_SUCCESS || handle.is_null() {
        return exit_code();
    }
    let pamh = handle;
    if let Err(why) = slot {
        // Another process's service files may be the ones libpam read:
        // stop before any module authenticates, so that nothing ran.
        let _ = writeln!(io::stderr(), "{SLOT_SHARED}: {why}");
        // SAFETY: live handle, ended once; not used afterwards.
        unsafe { raw::pam_end(pamh, PAM_SUCCESS) };
        return ExitCode::from(3);
    }

    let delay: FailDelayFn = fail_delay;
    // SAFETY: live handle; PAM_FAIL_DELAY takes a function of the type
    // `delay` has (checked by the binding), valid for the whole process.
    let rc = unsafe { raw::pam_set_item(pamh, PAM_FAIL_DELAY, delay as *const c_void) };
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

/// Whether libpam read this process's own service files. pam_wrapper
/// (from its library constructor, before `main`) copies the service
/// directory to a per-process `/tmp/pam.X` (one character X,
/// machine-wide) that it picks by checking that the directory does not
/// exist and then creating it; when the creation fails it goes on in the
/// existing one. Two processes starting together (another test binary,
/// another checkout's tests) can so share one copy, each overwriting the
/// other's files, and libpam reads them in pam_start: a login would run
/// another process's module, options and secret file. Checked after
/// pam_start: every file of `PAM_WRAPPER_SERVICE_DIR` must be the same in
/// the copy (`PAM_WRAPPER_RUNTIME_DIR`). A process sharing the copy
/// writes its files there before libpam reads, so if libpam read another
/// process's files, they are still there (or the copy is gone). A copy
/// shared with a process whose files are the same (the drivers of one
/// race) changes nothing and passes.
fn pam_wrapper_slot_is_ours() -> Result<(), String> {
    let (Some(copy), Some(source)) = (
        std::env::var_os("PAM_WRAPPER_RUNTIME_DIR"),
        std::env::var_os("PAM_WRAPPER_SERVICE_DIR"),
    ) else {
        return Ok(());
    };
    let copy = std::path::PathBuf::from(copy);
    let entries = std::fs::read_dir(&source).map_err(|e| format!("cannot list {source:?}: {e}"))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot list {source:?}: {e}"))?;
        let ours = std::fs::read(entry.path());
        let copied = std::fs::read(copy.join(entry.file_name()));
        match (ours, copied) {
            (Ok(ours), Ok(copied)) if ours == copied => {}
            _ => {
                return Err(format!(
                    "{} differs from {}",
                    copy.join(entry.file_name()).display(),
                    entry.path().display()
                ))
            }
        }
    }
    Ok(())
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
