//! Latency of one login, both modules in one process, interleaved.
//!
//! Each round runs every case once, in an order that rotates from one round
//! to the next, so that drift on a shared machine (other load, the disk's
//! write-back state) hits every case and both modules alike; the figures
//! are medians, and each case's ratio pam_totp / Google compares samples
//! taken side by side. The cases:
//! - `success`: a valid code, nothing to write (the file has no
//!   DISALLOW_REUSE or RATE_LIMIT);
//! - `rewrite`: a scratch code, which is consumed: the file is rewritten
//!   (temporary file, fsync, rename; pam_totp also fsyncs the directory);
//! - `wrong code`: a code wrong for the window and for the clock-skew
//!   search (skew learning on, as both modules default to);
//! - `unknown user`: a user name with no account;
//! - `dlopen+dlclose`: the module loaded and unloaded alone, as libpam does
//!   at pam_start and pam_end, without the rest of libpam;
//! - the baseline: the same transaction with pam_permit.so only.
//!
//! Before each login, outside the timing, the module's file is replaced by
//! a fresh, synced copy of the template, so every login starts from the
//! same committed state. After each login (and each dlclose), the module
//! must be gone from the process: `dlopen(RTLD_NOLOAD)` of its path must
//! find nothing, or the figures would not include loading it (an sshd
//! connection's process loads it afresh).

use crate::pam::{self, Timed, PAM_AUTH_ERR, PAM_SUCCESS};
use crate::setup::{self, Layout, Stack, TOTP_TEMPLATE};
use std::ffi::CString;
use std::path::Path;
use std::time::{Duration, Instant};

/// What a login case does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Success,
    Rewrite,
    Wrong,
    UnknownUser,
}

impl Kind {
    pub fn parse(name: &str) -> Result<Kind, String> {
        Ok(match name {
            "success" => Kind::Success,
            "rewrite" => Kind::Rewrite,
            "wrong" | "failure" => Kind::Wrong,
            "unknown-user" => Kind::UnknownUser,
            other => {
                return Err(format!(
                    "--case success, rewrite, wrong, unknown-user or load, not {other:?}"
                ))
            }
        })
    }

    pub fn label(self) -> &'static str {
        match self {
            Kind::Success => "success",
            Kind::Rewrite => "rewrite (scratch code)",
            Kind::Wrong => "wrong code",
            Kind::UnknownUser => "unknown user",
        }
    }
}

/// A scratch code of [`TOTP_TEMPLATE`], consumed by the `rewrite` case.
pub const SCRATCH_CODE: &str = "26447613";

/// A user name no system here has.
pub const UNKNOWN_USER: &str = "tp_bench_no_such_user";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    Login(Stack, Kind),
    Load(Stack),
}

const KINDS: [Kind; 4] = [Kind::Success, Kind::Rewrite, Kind::Wrong, Kind::UnknownUser];

fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for kind in KINDS {
        cases.push(Case::Login(Stack::Ours, kind));
        cases.push(Case::Login(Stack::Google, kind));
    }
    cases.push(Case::Load(Stack::Ours));
    cases.push(Case::Load(Stack::Google));
    cases.push(Case::Login(Stack::Baseline, Kind::Success));
    cases
}

/// Samples of one case.
#[derive(Default)]
struct Samples {
    /// pam_start .. pam_end, or dlopen .. dlclose.
    transaction: Vec<Duration>,
    /// pam_authenticate alone (logins).
    authenticate: Vec<Duration>,
    /// The return codes seen (logins), to print.
    codes: Vec<i32>,
}

/// The answers of every case, computed once.
pub struct Answers {
    pub valid: CString,
    pub wrong: CString,
    pub scratch: CString,
}

impl Answers {
    pub fn new() -> Answers {
        let secret = setup::secret();
        Answers {
            valid: CString::new(setup::code_now(&secret)).expect("digits"),
            wrong: CString::new(setup::wrong_code(&secret, setup::now())).expect("digits"),
            scratch: CString::new(SCRATCH_CODE).expect("digits"),
        }
    }

    /// The valid code for now: call at each login (a run crosses 30-s steps).
    pub fn refresh(&mut self) {
        self.valid = CString::new(setup::code_now(&setup::secret())).expect("digits");
    }

    fn for_kind(&self, kind: Kind) -> &CString {
        match kind {
            Kind::Success | Kind::UnknownUser => &self.valid,
            Kind::Rewrite => &self.scratch,
            Kind::Wrong => &self.wrong,
        }
    }
}

pub fn run(
    layout: &Layout,
    user: &CString,
    iterations: usize,
    warmup: usize,
) -> Result<(), String> {
    // A login process (sshd, su) is a C program: libgcc_s.so.1 is not
    // mapped in it, and a module that needs it pays for loading it.
    if pam::is_loaded(Path::new("libgcc_s.so.1")) {
        return Err(
            "libgcc_s.so.1 is loaded in pam-bench itself: a module that needs it \
                    would be measured without loading it (see tests/build.rs)"
                .to_owned(),
        );
    }
    let mut answers = Answers::new();
    let cases = cases();
    let mut samples: Vec<Samples> = cases.iter().map(|_| Samples::default()).collect();
    let mut last_refresh = Instant::now();
    for round in 0..warmup + iterations {
        if last_refresh.elapsed() > Duration::from_secs(5) {
            answers.refresh();
            last_refresh = Instant::now();
        }
        for k in 0..cases.len() {
            let index = (round + k) % cases.len();
            let s = &mut samples[index];
            let keep = round >= warmup;
            match cases[index] {
                Case::Login(stack, kind) => {
                    let timed = login(layout, user, stack, kind, &answers, true)?;
                    if keep {
                        s.transaction.push(timed.transaction);
                        s.authenticate.push(timed.authenticate);
                        s.codes.push(timed.rc);
                    }
                }
                Case::Load(stack) => {
                    let took = load_and_unload(&layout.module_path(stack)?)?;
                    if keep {
                        s.transaction.push(took);
                    }
                }
            }
        }
    }
    report(&cases, &mut samples, iterations);
    Ok(())
}

/// One timed login, checked: the expected return code, one prompt, the
/// file rewritten or not as the case says, the module unloaded.
pub fn login(
    layout: &Layout,
    user: &CString,
    stack: Stack,
    kind: Kind,
    answers: &Answers,
    reinstall: bool,
) -> Result<Timed, String> {
    let service = CString::new(layout.totp_service(stack)).expect("no NUL");
    let what = format!("{} {}", stack.label(), kind.label());
    if stack == Stack::Baseline {
        let timed = pam::transaction(&service, user, &answers.valid)?;
        if timed.rc != PAM_SUCCESS {
            return Err(format!("{what}: pam_authenticate returned {}", timed.rc));
        }
        return Ok(timed);
    }
    let path = layout.totp_secret(stack);
    let fresh = if reinstall || !path.exists() {
        setup::install_fresh(&path, TOTP_TEMPLATE.as_bytes())
            .map_err(|e| format!("cannot install {}: {e}", path.display()))?
    } else {
        setup::inode(&path).map_err(|e| format!("{}: {e}", path.display()))?
    };
    let unknown = CString::new(UNKNOWN_USER).expect("no NUL");
    let pam_user = if kind == Kind::UnknownUser {
        &unknown
    } else {
        user
    };
    pam::strace_marker("pam-bench: begin");
    let timed = pam::transaction(&service, pam_user, answers.for_kind(kind));
    pam::strace_marker("pam-bench: end");
    let timed = timed?;
    assert_unloaded(&layout.module_path(stack)?, &what)?;
    let expected = match kind {
        Kind::Success | Kind::Rewrite => PAM_SUCCESS,
        Kind::Wrong => PAM_AUTH_ERR,
        // Whatever each module answers (printed), as long as it refuses.
        Kind::UnknownUser => timed.rc.max(1),
    };
    if timed.rc != expected {
        return Err(format!(
            "{what}: pam_authenticate returned {}, expected {expected} \
             (set PAM_TOTP_TEST_SYSLOG to a file to see why)",
            timed.rc
        ));
    }
    if kind != Kind::UnknownUser && timed.prompts != 1 {
        return Err(format!("{what}: {} prompts, expected 1", timed.prompts));
    }
    let now = setup::inode(&path).map_err(|e| format!("{what}: {}: {e}", path.display()))?;
    match kind {
        Kind::Rewrite if now == fresh => {
            return Err(format!("{what}: the secret file was not rewritten"))
        }
        Kind::Success | Kind::UnknownUser if now != fresh => {
            return Err(format!("{what}: the secret file was rewritten"))
        }
        _ => {}
    }
    Ok(timed)
}

/// dlopen + dlclose of the module alone (as libpam: RTLD_NOW), timed; then
/// checks it is gone.
pub fn load_and_unload(module: &Path) -> Result<Duration, String> {
    let start = Instant::now();
    pam::load_and_unload(module)?;
    let took = start.elapsed();
    assert_unloaded(module, "dlopen+dlclose")?;
    Ok(took)
}

/// Fails if `module` is still mapped in this process.
pub fn assert_unloaded(module: &Path, what: &str) -> Result<(), String> {
    if pam::is_loaded(module) {
        return Err(format!(
            "{what}: {} is still loaded after pam_end/dlclose: something pins it \
             (-z nodelete, a thread-local destructor, ...), so the figures would \
             leave out loading it",
            module.display()
        ));
    }
    Ok(())
}

fn median(samples: &mut [Duration]) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    samples.sort_unstable();
    samples[(samples.len() - 1) / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn report(cases: &[Case], samples: &mut [Samples], iterations: usize) {
    println!(
        "latency, {iterations} interleaved rounds, medians in ms; \
         whole transaction = pam_start .. pam_end"
    );
    println!(
        "{:<24} {:>10} {:>10} {:>7}   {:>10} {:>10} {:>7}   codes (ours / google)",
        "case", "pam_totp", "google", "ratio", "auth ours", "auth goog", "ratio"
    );
    let mut medians = Vec::new();
    for (case, s) in cases.iter().zip(samples.iter_mut()) {
        let mut codes = s.codes.clone();
        codes.sort_unstable();
        codes.dedup();
        medians.push((
            *case,
            median(&mut s.transaction),
            median(&mut s.authenticate),
            codes,
        ));
    }
    let find = |case: Case| {
        medians
            .iter()
            .find(|m| m.0 == case)
            .cloned()
            .expect("every case is measured")
    };
    for kind in KINDS {
        let ours = find(Case::Login(Stack::Ours, kind));
        let google = find(Case::Login(Stack::Google, kind));
        println!(
            "{:<24} {:>10.3} {:>10.3} {:>7.2}   {:>10.3} {:>10.3} {:>7.2}   {:?} / {:?}",
            kind.label(),
            ms(ours.1),
            ms(google.1),
            ratio(ours.1, google.1),
            ms(ours.2),
            ms(google.2),
            ratio(ours.2, google.2),
            ours.3,
            google.3,
        );
    }
    let ours = find(Case::Load(Stack::Ours));
    let google = find(Case::Load(Stack::Google));
    println!(
        "{:<24} {:>10.3} {:>10.3} {:>7.2}",
        "dlopen+dlclose",
        ms(ours.1),
        ms(google.1),
        ratio(ours.1, google.1),
    );
    let baseline = find(Case::Login(Stack::Baseline, Kind::Success));
    println!(
        "{:<24} {:>10.3}   (pam_permit.so alone, the same transaction)",
        "baseline",
        ms(baseline.1)
    );
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64()
}
