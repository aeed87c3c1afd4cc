//! Logins per second with several processes at once, each a loop of whole
//! PAM transactions (pam_start .. pam_end, as one login process does), on
//! distinct files (one user each) or all on one file (one user logging in
//! from many places, or an attacker's parallel guesses).
//!
//! Two workloads. `success` (the figure compared with Google's module): a
//! valid code on a time-based file that a login does not change
//! (setup::TOTP_TEMPLATE), the common login. `rewrite`: counter-based
//! files, where every attempt rewrites the file; see below.
//!
//! In `rewrite`, the files are counter-based (HOTP): every attempt moves the counter on
//! and rewrites the file, so a run can last as long as wanted, with no rate
//! limit or used-code list to reset in between. Each process reads the
//! counter from the file and answers with its code; on one file another
//! process may have used that counter first, and the attempt then fails,
//! but still rewrites the file (the counter moves on after a failure too).
//!
//! So every attempt that was saved moves the counter by exactly one: the
//! counter's advance, read from the files after the run, counts the saved
//! updates, and can be compared with the attempts the processes counted.
//! pam_totp's lock makes the two equal; Google's module has none, and
//! concurrent attempts on one file overwrite each other or fail to save.

use crate::floor::{self, LockWait};
use crate::pam::{self, PAM_AUTH_ERR, PAM_SUCCESS};
use crate::setup::{self, Layout, Stack, HOTP_TEMPLATE, MAX_PROCESSES, TOTP_TEMPLATE};
use std::ffi::CString;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What each login of a run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// A valid code, nothing written.
    Success,
    /// Counter-based files: every attempt rewrites the file.
    Rewrite,
}

impl Workload {
    pub fn parse(name: &str) -> Result<Workload, String> {
        match name {
            "success" => Ok(Workload::Success),
            "rewrite" => Ok(Workload::Rewrite),
            other => Err(format!("--workload success or rewrite, not {other:?}")),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Workload::Success => "success",
            Workload::Rewrite => "rewrite",
        }
    }
}

/// What a worker counted.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    attempts: u64,
    successes: u64,
    failures: u64,
    /// Neither PAM_SUCCESS nor PAM_AUTH_ERR.
    errors: u64,
}

/// The parent: starts `processes` workers, lets them run for `seconds`,
/// and prints the rates.
pub fn run(
    layout: &Layout,
    stack: Stack,
    processes: usize,
    shared: bool,
    seconds: f64,
    workload: Workload,
) -> Result<(), String> {
    if !(1..=MAX_PROCESSES).contains(&processes) {
        return Err(format!("--processes must be 1 to {MAX_PROCESSES}"));
    }
    let files = if shared { 1 } else { processes };
    let template = match workload {
        Workload::Success => TOTP_TEMPLATE,
        Workload::Rewrite => HOTP_TEMPLATE,
    };
    for slot in 0..files {
        let path = layout.hotp_secret(stack, slot);
        setup::install_fresh(&path, template.as_bytes())
            .map_err(|e| format!("cannot install {}: {e}", path.display()))?;
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot find myself: {e}"))?;
    let dir = layout_dir(layout);
    // One at a time, each after the previous one is ready: pam_wrapper
    // gives every process a slot in /tmp, and processes starting at the same
    // moment can race for one (see pam_totp_tests::system). Each worker's
    // first login, before it says ready, proves that its PAM works.
    let mut workers: Vec<(Child, BufReader<std::process::ChildStdout>)> = Vec::new();
    for n in 0..processes {
        let slot = if shared { 0 } else { n };
        let mut child = Command::new(&exe)
            .args(["worker", "--dir"])
            .arg(&dir)
            .args(["--module", stack.name(), "--slot", &slot.to_string()])
            .args(["--seconds", &seconds.to_string()])
            .args(["--workload", workload.name()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start a worker: {e}"))?;
        let mut out = BufReader::new(child.stdout.take().expect("piped"));
        let mut line = String::new();
        out.read_line(&mut line)
            .map_err(|e| format!("worker {n}: {e}"))?;
        if line.trim() != "ready" {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("worker {n} did not start: {:?}", line.trim()));
        }
        workers.push((child, out));
    }
    let counted = workload == Workload::Rewrite;
    let before = if counted {
        counters(layout, stack, files)?
    } else {
        Vec::new()
    };
    for (child, _) in &mut workers {
        let stdin = child.stdin.as_mut().expect("piped");
        stdin
            .write_all(b"go\n")
            .and_then(|()| stdin.flush())
            .map_err(|e| format!("cannot start a worker's run: {e}"))?;
    }
    let mut total = Counts::default();
    let mut longest = Duration::ZERO;
    for (n, (mut child, mut out)) in workers.into_iter().enumerate() {
        let mut line = String::new();
        out.read_line(&mut line)
            .map_err(|e| format!("worker {n}: {e}"))?;
        let status = child.wait().map_err(|e| format!("worker {n}: {e}"))?;
        let fields: Vec<u64> = line
            .split_whitespace()
            .filter_map(|f| f.parse().ok())
            .collect();
        let [attempts, successes, failures, errors, nanos] = fields[..] else {
            return Err(format!("worker {n} ({status}) reported {:?}", line.trim()));
        };
        total.attempts += attempts;
        total.successes += successes;
        total.failures += failures;
        total.errors += errors;
        longest = longest.max(Duration::from_nanos(nanos));
    }
    let secs = longest.as_secs_f64();
    if !counted {
        if total.errors + total.failures > 0 {
            return Err(format!(
                "{}: {} of {} logins failed",
                stack.label(),
                total.errors + total.failures,
                total.attempts
            ));
        }
        println!(
            "throughput {:<9} success, {processes} processes, distinct files: {:>7.0} logins/s \
             ({} logins in {secs:.2} s)",
            stack.label(),
            total.attempts as f64 / secs,
            total.attempts,
        );
        return Ok(());
    }
    let after = counters(layout, stack, files)?;
    let saved: u64 = after.iter().zip(&before).map(|(a, b)| a - b).sum();
    println!(
        "{:<9} {processes} processes, {:<14}: {:>6.0} attempts/s, {:>6.0} successful logins/s, \
         {:>6.0} saved updates/s ({} attempts, {} saved, {} errors)",
        stack.label(),
        if shared { "one file" } else { "distinct files" },
        total.attempts as f64 / secs,
        total.successes as f64 / secs,
        saved as f64 / secs,
        total.attempts,
        saved,
        total.errors,
    );
    Ok(())
}

fn layout_dir(layout: &Layout) -> std::path::PathBuf {
    layout
        .services()
        .parent()
        .expect("services is inside the directory")
        .to_path_buf()
}

fn counters(layout: &Layout, stack: Stack, files: usize) -> Result<Vec<u64>, String> {
    (0..files)
        .map(|slot| setup::hotp_code_from(&layout.hotp_secret(stack, slot)).map(|(_, c)| c))
        .collect()
}

/// A worker: one login to check that PAM works, "ready", then wait for
/// "go" and log in as fast as it can for `seconds`; then print
/// `attempts successes failures errors nanoseconds`.
pub fn worker(
    layout: &Layout,
    user: &CString,
    stack: Stack,
    slot: usize,
    seconds: f64,
    workload: Workload,
) -> Result<(), String> {
    let path = layout.hotp_secret(stack, slot);
    let service = CString::new(layout.hotp_service(stack, slot)).expect("no NUL");
    let secret = setup::secret();
    let mut valid = (String::new(), Instant::now() - Duration::from_secs(60));
    let mut attempt = |counts: &mut Counts| -> Result<(), String> {
        let code = match workload {
            Workload::Rewrite => setup::hotp_code_from(&path)?.0,
            Workload::Success => {
                // The code for now, computed again every 5 s (not per login).
                if valid.1.elapsed() > Duration::from_secs(5) {
                    valid = (setup::code_now(&secret), Instant::now());
                }
                valid.0.clone()
            }
        };
        let code = CString::new(code).expect("digits");
        let timed = pam::transaction(&service, user, &code)?;
        counts.attempts += 1;
        match timed.rc {
            PAM_SUCCESS => counts.successes += 1,
            PAM_AUTH_ERR => counts.failures += 1,
            _ => counts.errors += 1,
        }
        Ok(())
    };
    let mut probe = Counts::default();
    attempt(&mut probe)?;
    if probe.successes != 1 {
        return Err(format!(
            "the first login on {} failed: PAM is not set up",
            path.display()
        ));
    }
    let stdout = std::io::stdout();
    writeln!(stdout.lock(), "ready").map_err(|e| e.to_string())?;
    let mut go = String::new();
    std::io::stdin()
        .read_line(&mut go)
        .map_err(|e| e.to_string())?;
    let mut counts = Counts::default();
    let start = Instant::now();
    let run_for = Duration::from_secs_f64(seconds);
    while start.elapsed() < run_for {
        attempt(&mut counts)?;
    }
    let elapsed = start.elapsed();
    writeln!(
        stdout.lock(),
        "{} {} {} {} {}",
        counts.attempts,
        counts.successes,
        counts.failures,
        counts.errors,
        elapsed.as_nanos()
    )
    .map_err(|e| e.to_string())
}

/// The floor of the one-file case: `processes` processes replacing one file
/// with pam_totp's protocol, for `seconds`, waiting for the lock as `wait`
/// says, each also busy on a CPU for `outside` between two updates, as a
/// login is outside the lock (pam_start, the unlocked look, the prompt,
/// pam_end). Prints updates per second.
pub fn contention(
    layout: &Layout,
    processes: usize,
    wait: &str,
    outside: Duration,
    seconds: f64,
) -> Result<(), String> {
    let path = layout.floor_file();
    setup::install_fresh(&path, setup::TOTP_TEMPLATE.as_bytes())
        .map_err(|e| format!("cannot install {}: {e}", path.display()))?;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find myself: {e}"))?;
    let mut children = Vec::new();
    for _ in 0..processes {
        let child = Command::new(&exe)
            .args(["contention-worker", "--dir"])
            .arg(layout_dir(layout))
            .args(["--lock", wait, "--seconds", &seconds.to_string()])
            .args(["--outside-us", &outside.as_micros().to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start a worker: {e}"))?;
        children.push(child);
    }
    // All started before any begins, as with the logins.
    for child in &mut children {
        let stdin = child.stdin.as_mut().expect("piped");
        stdin
            .write_all(b"go\n")
            .and_then(|()| stdin.flush())
            .map_err(|e| format!("cannot start a worker's run: {e}"))?;
    }
    let mut updates = 0u64;
    for child in children {
        let output = child
            .wait_with_output()
            .map_err(|e| format!("worker: {e}"))?;
        let text = String::from_utf8_lossy(&output.stdout);
        updates += text
            .trim()
            .parse::<u64>()
            .map_err(|_| format!("worker ({}) reported {:?}", output.status, text.trim()))?;
    }
    println!(
        "floor     {processes} processes, one file, lock wait {wait:<9}, {} µs outside the lock: \
         {:>6.0} updates/s",
        outside.as_micros(),
        updates as f64 / seconds
    );
    Ok(())
}

/// One process of `contention`: waits for "go", then updates the file as
/// fast as it can for `seconds` and prints how many times it did.
pub fn contention_worker(
    layout: &Layout,
    wait: &str,
    outside: Duration,
    seconds: f64,
) -> Result<(), String> {
    // "poll-US": pam_totp's try-and-sleep with another interval, to find
    // one that costs less.
    let poll = |us: &str| us.parse().ok().map(Duration::from_micros);
    let wait = match wait {
        "blocking" => LockWait::Blocking,
        "poll-2ms" => LockWait::Poll(Duration::from_millis(2)),
        "backoff" => LockWait::Backoff,
        other => match other.strip_prefix("poll-").and_then(poll) {
            Some(interval) => LockWait::Poll(interval),
            None => {
                return Err(format!(
                    "--lock blocking, poll-2ms, poll-MICROSECONDS or backoff, not {other:?}"
                ))
            }
        },
    };
    let path = layout.floor_file();
    let temp = path.with_extension(format!("tmp.{}", std::process::id()));
    let mut go = String::new();
    std::io::stdin()
        .read_line(&mut go)
        .map_err(|e| e.to_string())?;
    let start = Instant::now();
    let mut updates = 0u64;
    while start.elapsed() < Duration::from_secs_f64(seconds) {
        floor::contended_update(&path, &temp, wait).map_err(|e| format!("update: {e}"))?;
        updates += 1;
        // Busy, not asleep: a login's work outside the lock is CPU work, and
        // with more processes than CPUs it competes for them.
        let busy = Instant::now();
        while busy.elapsed() < outside {
            std::hint::spin_loop();
        }
    }
    println!("{updates}");
    Ok(())
}
