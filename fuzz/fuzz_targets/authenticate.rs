//! The whole authentication (`module::authenticate_with_accounts`), as
//! libpam would run it, over a real secret file in a temporary directory:
//! module options, typed answers, PAM_AUTHTOK and PAM_RHOST come from the
//! fuzzer, and so do the faults: the conversation failing, PAM_AUTHTOK not
//! being settable, and the file being removed, replaced by a symlink or a
//! directory, truncated or made world-readable while the user is typing
//! (between the module's first look and its locked update). The user
//! database is a fixed table (`Accounts`), so no root and no real user is
//! needed.
//!
//! Invariants checked on every input:
//! - fail closed: a login succeeds only with evidence, checked here apart
//!   from the module's policy code (a code of the secret near the time, the
//!   skew or the HOTP counter; a scratch code of the file, used up; a grace
//!   period asked for by the options with a remote host), never after a
//!   failed conversation or a fault that breaks the file; PAM_IGNORE only
//!   with `nullok` and no file;
//! - the file parses afterwards whenever it parsed before and no fault
//!   broke it, and a file that did not parse is left byte for byte;
//! - scratch codes are never added back: each occurs at most as often as
//!   before, and a success through one removes exactly one;
//! - the secret never reaches a log line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pam_totp::clock::Clock;
use pam_totp::module::{authenticate_with_accounts, Account, Accounts, Pam, Priority, Status};
use pam_totp::otp::{hotp, time_step};
use pam_totp::secret_file::{Mode, SecretFile};
use std::cell::RefCell;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use zeroize::Zeroizing;

const USER: &str = "th_fuzz";

/// One directory for the whole run; each input rewrites the file in it.
fn directory() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        tempfile::Builder::new()
            .prefix("pam_totp-fuzz-")
            .tempdir()
            .expect("temporary directory")
    })
    .path()
}

struct FixedClock(u64);

impl Clock for FixedClock {
    fn now(&self) -> u64 {
        self.0
    }
}

/// `th_fuzz` is the current user with the temporary directory as home;
/// `th_other` exists with another uid (for `user=`); nobody else does.
struct FakeAccounts;

impl Accounts for FakeAccounts {
    fn lookup(&self, name: &str) -> Option<Account> {
        let me = Account {
            name: name.to_owned(),
            uid: nix::unistd::Uid::effective(),
            gid: nix::unistd::Gid::effective(),
            home: directory().to_path_buf(),
        };
        match name {
            USER => Some(me),
            "th_other" => Some(Account {
                uid: nix::unistd::Uid::from_raw(me.uid.as_raw().wrapping_add(1)),
                ..me
            }),
            _ => None,
        }
    }
}

/// A fault applied to the file at the first prompt.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Fault {
    None,
    Remove,
    Symlink,
    Truncate,
    WorldReadable,
    Directory,
}

impl Fault {
    fn from_bits(bits: u8) -> Fault {
        match bits % 8 {
            1 => Fault::Remove,
            2 => Fault::Symlink,
            3 => Fault::Truncate,
            4 => Fault::WorldReadable,
            5 => Fault::Directory,
            _ => Fault::None,
        }
    }

    fn apply(self, path: &Path) {
        match self {
            Fault::None => {}
            Fault::Remove => {
                let _ = fs::remove_file(path);
            }
            Fault::Symlink => {
                let copy = path.with_file_name("secret.copy");
                let _ = fs::copy(path, &copy);
                let _ = fs::remove_file(path);
                let _ = std::os::unix::fs::symlink(&copy, path);
            }
            Fault::Truncate => {
                let _ = fs::OpenOptions::new().write(true).truncate(true).open(path);
            }
            Fault::WorldReadable => {
                let _ = fs::set_permissions(path, fs::Permissions::from_mode(0o644));
            }
            Fault::Directory => {
                let _ = fs::remove_file(path);
                let _ = fs::create_dir(path);
            }
        }
    }
}

struct FakePam<'a> {
    user: &'a str,
    rhost: Option<Vec<u8>>,
    authtok: Option<Vec<u8>>,
    answer: Vec<u8>,
    conversation_fails: bool,
    set_authtok_fails: bool,
    fault: Fault,
    path: PathBuf,
    asked: bool,
    fault_applied: bool,
    logs: RefCell<Vec<String>>,
}

impl Pam for FakePam<'_> {
    fn user(&mut self) -> Option<String> {
        Some(self.user.to_owned())
    }
    fn remote_host(&self) -> Option<Vec<u8>> {
        self.rhost.clone()
    }
    fn authtok(&self) -> Option<Zeroizing<Vec<u8>>> {
        self.authtok.clone().map(Zeroizing::new)
    }
    fn set_authtok(&mut self, value: &[u8]) -> bool {
        if self.set_authtok_fails {
            return false;
        }
        self.authtok = Some(value.to_vec());
        true
    }
    fn ask(&mut self, _prompt: &str, _echo: bool) -> Option<Zeroizing<Vec<u8>>> {
        if self.asked {
            return None; // one answer scripted; a second prompt fails
        }
        self.asked = true;
        if self.fault != Fault::None {
            self.fault.apply(&self.path);
            self.fault_applied = true;
        }
        (!self.conversation_fails).then(|| Zeroizing::new(self.answer.clone()))
    }
    fn tell_error(&mut self, message: &str) {
        self.logs.borrow_mut().push(message.to_owned());
    }
    fn log(&self, _priority: Priority, message: &str) {
        self.logs.borrow_mut().push(message.to_owned());
    }
}

/// Splits at 0xff bytes into at most `n` fields (missing ones empty).
fn fields(data: &[u8], n: usize) -> Vec<&[u8]> {
    let mut out: Vec<&[u8]> = data.splitn(n, |&b| b == 0xff).collect();
    out.resize(n, &[]);
    out
}

fn scratch_counts(file: &SecretFile) -> std::collections::BTreeMap<u32, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for code in file.scratch_codes() {
        *counts.entry(code).or_insert(0) += 1;
    }
    counts
}

/// The number in the last `digits` bytes of `input`, if they are digits.
fn digit_tail(input: &[u8], digits: usize) -> Option<u32> {
    let tail = input.get(input.len().checked_sub(digits)?..)?;
    if !tail.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(tail).ok()?.parse().ok()
}

/// Whether `input` ends in a 6-digit code of the file's secret that some
/// policy may accept: within the file's window (one step of slack) around
/// the time step, the time step shifted by the file's skew, or the HOTP
/// counter; anywhere within three days when the file holds clock-skew
/// observations the module may learn from (`learn_skew`).
fn holds_a_code_of(file: &SecretFile, input: &[u8], now: u64, learn_skew: bool) -> bool {
    let Some(typed) = digit_tail(input, 6) else {
        return false;
    };
    let settings = file.settings();
    let half = i64::from(settings.window / 2 + 1);
    let (bases, low, high): (Vec<i64>, i64, i64) = match settings.mode {
        Mode::Time { step_seconds } => {
            let step = time_step(now, step_seconds.max(1)) as i64;
            let span = if learn_skew && !file.skew_observations().is_empty() {
                3 * 24 * 120
            } else {
                half
            };
            (
                vec![step, step.saturating_add(settings.time_skew)],
                span,
                span,
            )
        }
        Mode::Counter { next } => (vec![next as i64], 0, i64::from(settings.window)),
        // Only scratch codes open such a file.
        Mode::ScratchOnly => return false,
    };
    bases.iter().any(|&base| {
        (base.saturating_sub(low)..=base.saturating_add(high))
            .filter(|&c| c >= 0)
            .any(|c| hotp(file.secret(), c as u64) == typed)
    })
}

/// Scratch codes (8-digit tails of `inputs`) that were in `before` and
/// occur exactly once less in `after`.
fn used_a_scratch_code(before: &SecretFile, after: Option<&SecretFile>, inputs: &[&[u8]]) -> bool {
    let Some(after) = after else { return false };
    let (before, after) = (scratch_counts(before), scratch_counts(after));
    inputs.iter().any(|input| {
        let Some(code) = digit_tail(input, 8) else {
            return false;
        };
        let was = before.get(&code).copied().unwrap_or(0);
        let is = after.get(&code).copied().unwrap_or(0);
        was > 0 && is + 1 == was
    })
}

fuzz_target!(|data: &[u8]| {
    // Layout: flags, fault, 8 bytes of time, how to build the answer, then
    // 0xff-separated: module options (NUL-separated), answer, PAM_AUTHTOK,
    // PAM_RHOST, the file.
    if data.len() < 12 {
        return;
    }
    let flags = data[0];
    let fault = Fault::from_bits(data[1]);
    let now = u64::from_le_bytes(data[2..10].try_into().unwrap()) % (1 << 34);
    let (answer_kind, answer_arg) = (data[10], data[11]);
    let [options, answer, authtok, rhost, file_bytes] = fields(&data[12..], 5)[..] else {
        unreachable!()
    };

    let dir = directory();
    let path = dir.join("secret");
    let _ = fs::remove_dir_all(&path);
    let _ = fs::remove_file(&path);
    let _ = fs::remove_file(dir.join("secret.copy"));
    let has_file = flags & 0x20 == 0;
    if has_file {
        fs::write(&path, file_bytes).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    }
    let before = has_file
        .then(|| SecretFile::parse(file_bytes).ok())
        .flatten();

    // The fuzzer rarely guesses a code: let it ask for a right one.
    let mut answer = answer.to_vec();
    let mut authtok = (flags & 0x02 != 0).then(|| authtok.to_vec());
    if let Some(file) = &before {
        let code = match answer_kind % 4 {
            1 => {
                let step = match file.settings().mode {
                    Mode::Time { step_seconds } => time_step(now, step_seconds.max(1)),
                    Mode::Counter { next } => next,
                    Mode::ScratchOnly => time_step(now, 30),
                };
                let counter = step.wrapping_add_signed(i64::from(answer_arg as i8));
                Some(format!("{:06}", hotp(file.secret(), counter)))
            }
            2 => {
                let codes: Vec<u32> = file.scratch_codes().collect();
                (!codes.is_empty())
                    .then(|| format!("{:08}", codes[usize::from(answer_arg) % codes.len()]))
            }
            _ => None,
        };
        if let Some(code) = code {
            match (&mut authtok, answer_arg & 0x80 != 0) {
                (Some(authtok), true) => authtok.extend_from_slice(code.as_bytes()),
                _ => answer.extend_from_slice(code.as_bytes()),
            }
        }
    }

    let mut args = vec![format!("secret={}", path.display()).into_bytes()];
    // Another `secret=` could name a file outside the test's control.
    args.extend(
        options
            .split(|&b| b == 0)
            .filter(|arg| !arg.is_empty() && !arg.starts_with(b"secret="))
            .map(<[u8]>::to_vec),
    );
    let mut pam = FakePam {
        user: if flags & 0x40 == 0 { USER } else { "th_nobody" },
        rhost: (flags & 0x04 != 0).then(|| rhost.to_vec()),
        authtok: authtok.clone(),
        answer: answer.clone(),
        conversation_fails: flags & 0x01 != 0,
        set_authtok_fails: flags & 0x08 != 0,
        fault,
        path: path.clone(),
        asked: false,
        fault_applied: false,
        logs: RefCell::new(Vec::new()),
    };
    let status = authenticate_with_accounts(
        &mut pam,
        &args,
        &FixedClock(now),
        &FakeAccounts,
        &mut pam_totp::locked_update::LocalOnly,
    );

    let after_bytes = fs::symlink_metadata(&path)
        .ok()
        .filter(|m| m.file_type().is_file())
        .and_then(|_| fs::read(&path).ok());
    let after = after_bytes
        .as_deref()
        .and_then(|bytes| SecretFile::parse(bytes).ok());
    let text_args: Vec<String> = args
        .iter()
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let has_option = |name: &str| {
        text_args
            .iter()
            .any(|a| a == name || a.starts_with(&format!("{name}=")))
    };
    let broken = pam.fault_applied
        && match fault {
            Fault::None => false,
            Fault::WorldReadable => !has_option("allowed_perm"),
            Fault::Remove | Fault::Symlink | Fault::Truncate | Fault::Directory => true,
        };

    // Fail closed.
    match status {
        Status::Ignore => assert!(
            !has_file && has_option("nullok"),
            "PAM_IGNORE without nullok and a missing file"
        ),
        Status::Success => {
            let before = before.as_ref().expect("success without a valid file");
            assert!(!broken, "success although the file was broken: {fault:?}");
            assert!(
                !(pam.asked && pam.conversation_fails),
                "success after a failed conversation"
            );
            let inputs: Vec<&[u8]> = std::iter::once(answer.as_slice())
                .chain(authtok.as_deref())
                .collect();
            let evidence = inputs
                .iter()
                .any(|input| holds_a_code_of(before, input, now, !has_option("noskewadj")))
                || used_a_scratch_code(before, after.as_ref(), &inputs)
                || (has_option("grace_period") && pam.rhost.is_some());
            assert!(
                evidence,
                "success without a code, scratch code or grace period"
            );
        }
        Status::AuthErr | Status::ServiceErr | Status::ConvErr | Status::AuthInfoUnavail => {}
    }

    // The file afterwards.
    if !pam.fault_applied {
        match (&before, &after_bytes) {
            (Some(_), Some(_)) => assert!(
                after.is_some(),
                "the module left a file that does not parse"
            ),
            (Some(_), None) => panic!("the module removed or replaced the file"),
            (None, _) if has_file => assert_eq!(
                after_bytes.as_deref(),
                Some(file_bytes),
                "a file that did not parse was changed"
            ),
            (None, _) => assert!(after_bytes.is_none(), "a file was created"),
        }
    }
    if let (Some(before), Some(after)) = (&before, &after) {
        let (was, is) = (scratch_counts(before), scratch_counts(after));
        for (code, count) in &is {
            assert!(
                *count <= was.get(code).copied().unwrap_or(0),
                "a scratch code was added back"
            );
        }
    }

    // Nothing secret in the logs (unless the input also gave it elsewhere,
    // e.g. as an unknown option, which is logged).
    let given_elsewhere = |secret: &[u8]| {
        [
            options,
            &answer,
            authtok.as_deref().unwrap_or_default(),
            rhost,
        ]
        .iter()
        .any(|field| field.windows(secret.len()).any(|w| w == secret))
    };
    if let Some(secret) = file_bytes.split(|&b| b == b'\n').next() {
        if before.is_some() && secret.len() >= 16 && !given_elsewhere(secret) {
            let secret = String::from_utf8_lossy(secret);
            for line in pam.logs.borrow().iter() {
                assert!(!line.contains(&*secret), "the secret was logged: {line}");
            }
        }
    }
});
