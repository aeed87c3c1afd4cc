//! Latency of one login, both modules in one process, interleaved.
//!
//! Each iteration runs every case once, in an order that rotates from one
//! iteration to the next, so that drift on a shared machine (other load,
//! the disk's write-back state) hits every case alike:
//! - the success path of each module: a valid code, and the file rewritten
//!   (the code recorded under DISALLOW_REUSE, the attempt under RATE_LIMIT);
//! - the failure path of each module: a wrong code, the file rewritten (the
//!   attempt recorded under RATE_LIMIT);
//! - the I/O floors: each module's file-system calls alone, replayed
//!   without PAM and without the module (see floor.rs).
//!
//! Before each login, outside the timing, the module's file is replaced by
//! a fresh, synced copy of the template: every login then does the same
//! work (never rate-limited, the code never already used), and afterwards
//! the file's inode must have changed, proof that the login really replaced
//! the file.

use crate::floor::{self, Protocol};
use crate::pam::{self, Timed, PAM_AUTH_ERR, PAM_SUCCESS};
use crate::setup::{self, Layout, Stack, TOTP_TEMPLATE};
use std::ffi::CString;
use std::path::Path;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    Login { stack: Stack, success: bool },
    Floor(Protocol),
}

impl Case {
    fn label(self) -> String {
        match self {
            Case::Login { stack, success } => format!(
                "{:<9} {}",
                stack.label(),
                if success { "success" } else { "failure" }
            ),
            Case::Floor(protocol) => format!("floor: {}", protocol.label()),
        }
    }
}

const CASES: [Case; 7] = [
    Case::Login {
        stack: Stack::Ours,
        success: true,
    },
    Case::Login {
        stack: Stack::Google,
        success: true,
    },
    Case::Login {
        stack: Stack::Ours,
        success: false,
    },
    Case::Login {
        stack: Stack::Google,
        success: false,
    },
    Case::Floor(Protocol::Google),
    Case::Floor(Protocol::OursWithoutDirSync),
    Case::Floor(Protocol::Ours),
];

/// Samples of one case.
#[derive(Default)]
struct Samples {
    /// pam_authenticate, or the floor's replay.
    authenticate: Vec<Duration>,
    /// The same, on-CPU time only.
    cpu: Vec<Duration>,
    /// pam_start, pam_end, and pam_start .. pam_end (logins only).
    start: Vec<Duration>,
    end: Vec<Duration>,
    transaction: Vec<Duration>,
}

pub fn run(
    layout: &Layout,
    user: &CString,
    iterations: usize,
    warmup: usize,
) -> Result<(), String> {
    let secret = setup::secret();
    let wrong = CString::new(setup::wrong_code(&secret, setup::now())).expect("digits");
    let mut samples: Vec<Samples> = CASES.iter().map(|_| Samples::default()).collect();
    for iteration in 0..warmup + iterations {
        for k in 0..CASES.len() {
            let index = (iteration + k) % CASES.len();
            let (authenticate, cpu, timed) = match CASES[index] {
                Case::Login { stack, success } => {
                    let answer = if success {
                        CString::new(setup::code_now(&secret)).expect("digits")
                    } else {
                        wrong.clone()
                    };
                    let timed = login(layout, user, stack, success, &answer)?;
                    (timed.authenticate, timed.authenticate_cpu, Some(timed))
                }
                Case::Floor(protocol) => {
                    let (took, cpu) = floor::replay(&layout.floor_file(), protocol)
                        .map_err(|e| format!("floor: {e}"))?;
                    (took, cpu, None)
                }
            };
            if iteration >= warmup {
                let s = &mut samples[index];
                s.authenticate.push(authenticate);
                s.cpu.push(cpu);
                if let Some(timed) = timed {
                    s.start.push(timed.start);
                    s.end.push(timed.end);
                    s.transaction.push(timed.transaction);
                }
            }
        }
    }
    report(&mut samples, iterations);
    Ok(())
}

/// One timed login on a fresh file, checked.
fn login(
    layout: &Layout,
    user: &CString,
    stack: Stack,
    success: bool,
    answer: &CString,
) -> Result<Timed, String> {
    let path = layout.totp_secret(stack);
    let fresh = setup::install_fresh(&path, TOTP_TEMPLATE.as_bytes())
        .map_err(|e| format!("cannot install {}: {e}", path.display()))?;
    let service = CString::new(layout.totp_service(stack)).expect("no NUL");
    let timed = pam::transaction(&service, user, answer)?;
    check(stack, success, &timed, &path, fresh)?;
    Ok(timed)
}

/// A figure is only worth something if the case did what it says.
pub fn check(
    stack: Stack,
    success: bool,
    timed: &Timed,
    path: &Path,
    fresh_inode: u64,
) -> Result<(), String> {
    let expected = if success { PAM_SUCCESS } else { PAM_AUTH_ERR };
    let what = format!(
        "{} {}",
        stack.label(),
        if success { "success" } else { "failure" }
    );
    if timed.rc != expected {
        return Err(format!(
            "{what}: pam_authenticate returned {}, expected {expected} \
             (set PAM_TOTP_TEST_SYSLOG to a file to see why)",
            timed.rc
        ));
    }
    if timed.prompts != 1 {
        return Err(format!("{what}: {} prompts, expected 1", timed.prompts));
    }
    let now = setup::inode(path).map_err(|e| format!("{what}: {}: {e}", path.display()))?;
    if now == fresh_inode {
        return Err(format!("{what}: the secret file was not rewritten"));
    }
    Ok(())
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Median and p99 of a case's samples.
#[derive(Debug, Clone, Copy, Default)]
struct Summary {
    median: Duration,
    p99: Duration,
}

fn summary(samples: &mut [Duration]) -> Summary {
    if samples.is_empty() {
        return Summary::default();
    }
    samples.sort_unstable();
    Summary {
        median: percentile(samples, 0.5),
        p99: percentile(samples, 0.99),
    }
}

fn report(samples: &mut [Samples], iterations: usize) {
    println!("latency, {iterations} interleaved iterations per case, in ms");
    println!(
        "{:<40} {:>17}  {:>6}  {:>6} {:>6}  {:>17}",
        "", "pam_authenticate", "on-CPU", "start", "end", "pam_start..end"
    );
    println!(
        "{:<40} {:>8} {:>8}  {:>6}  {:>6} {:>6}  {:>8} {:>8}",
        "case", "median", "p99", "median", "median", "median", "median", "p99"
    );
    let mut rows = Vec::new();
    for (case, s) in CASES.iter().zip(samples.iter_mut()) {
        let auth = summary(&mut s.authenticate);
        let cpu = summary(&mut s.cpu);
        let txn = summary(&mut s.transaction);
        rows.push((*case, auth, txn));
        let transaction = if matches!(case, Case::Floor(_)) {
            String::new()
        } else {
            format!(
                "{:>6.3} {:>6.3}  {:>8.3} {:>8.3}",
                ms(summary(&mut s.start).median),
                ms(summary(&mut s.end).median),
                ms(txn.median),
                ms(txn.p99)
            )
        };
        println!(
            "{:<40} {:>8.3} {:>8.3}  {:>6.3}  {transaction}",
            case.label(),
            ms(auth.median),
            ms(auth.p99),
            ms(cpu.median),
        );
    }
    let row = |case: Case| {
        rows.iter()
            .find(|r| r.0 == case)
            .copied()
            .expect("every case is measured")
    };
    let login = |stack, success| row(Case::Login { stack, success });
    for success in [true, false] {
        let (_, ours_auth, ours_txn) = login(Stack::Ours, success);
        let (_, google_auth, google_txn) = login(Stack::Google, success);
        println!(
            "ratio pam_totp/google, {}: pam_authenticate median {:.2}, p99 {:.2}; \
             pam_start..end median {:.2}, p99 {:.2}",
            if success { "success" } else { "failure" },
            ratio(ours_auth.median, google_auth.median),
            ratio(ours_auth.p99, google_auth.p99),
            ratio(ours_txn.median, google_txn.median),
            ratio(ours_txn.p99, google_txn.p99),
        );
    }
    // What each module costs beyond the file-system calls it makes.
    for (stack, protocol) in [
        (Stack::Ours, Protocol::Ours),
        (Stack::Google, Protocol::Google),
    ] {
        let module = login(stack, true).1.median;
        let floor = row(Case::Floor(protocol)).1.median;
        println!(
            "{:<9} success median minus its I/O floor: {:.3} ms",
            stack.label(),
            ms(module.saturating_sub(floor))
        );
    }
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64()
}
