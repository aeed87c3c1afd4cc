//! pam-bench: pam_totp.so against Google's pam_google_authenticator.so,
//! whole logins through the real libpam, in one process (no process start
//! in the figures). bench/run.sh runs it all; BENCHMARKS.md has the figures.
//!
//! ```text
//! pam-bench prepare    --dir DIR [--ours SO] [--google SO]
//! pam-bench latency    --dir DIR [--iterations N] [--warmup N]
//! pam-bench auth       --dir DIR --module ours|google|baseline [--case success|rewrite|wrong|unknown-user|load] [--iterations N]
//! pam-bench throughput --dir DIR --module ours|google --processes N [--workload success|rewrite] [--files distinct|shared] [--seconds S]
//! pam-bench floor      --dir DIR --protocol google|ours|ours-without-dir-fsync [--iterations N]
//! pam-bench contention --dir DIR --processes N --lock blocking|poll-2ms|poll-US|backoff [--outside-us N] [--seconds S]
//! pam-bench refusals   --dir DIR --unenrolled USER [--rate-limit] [--iterations N] [--warmup N]
//! pam-bench fleet-prepare --dir DIR --ours SO --without SO --shared-state CONF
//! pam-bench fleet      --dir DIR --ours SO --without SO --redis-port P [--redis-password PW] [--iterations N] [--only without|with|store|load-without|load-with|loads]
//! ```
//!
//! `prepare` writes DIR (service files, one directory per secret file) and
//! prints the environment every other command must run in, one `NAME=VALUE`
//! a line: pam_wrapper (libpam reads DIR/services instead of /etc/pam.d)
//! and the syslog capture shim of the tests, which sends both modules' log
//! lines to /dev/null alike. Without it Google's module, finding no
//! /dev/log on a machine without a syslog daemon, writes each line to
//! /dev/console (it opens the log with LOG_CONS), and pam_wrapper drops
//! pam_totp's: the two would not log at the same cost.
//!
//! `auth` is one login (or N, each on a fresh file) for instruction counts
//! (callgrind), system calls (strace: each login is bracketed by a failing
//! `write(-1, "pam-bench: begin"/"pam-bench: end")`) and peak memory: it
//! prints `maxrss_kib N` at the end.
//!
//! `DIR` must be on the file system being measured: not tmpfs, where fsync
//! costs nothing.
#![allow(unsafe_code)] // FFI with libpam (pam.rs); every block says why it is sound.

mod fleet;
mod floor;
mod latency;
mod pam;
mod refusals;
mod setup;
mod throughput;

use setup::{Layout, Stack};
use std::ffi::{CString, OsString};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "usage:
  pam-bench prepare    --dir DIR [--ours SO] [--google SO]
  pam-bench latency    --dir DIR [--iterations N] [--warmup N]
  pam-bench auth       --dir DIR --module ours|google|baseline [--case success|rewrite|wrong|unknown-user|load] [--iterations N]
  pam-bench throughput --dir DIR --module ours|google --processes N [--workload success|rewrite] [--files distinct|shared] [--seconds S]
  pam-bench floor      --dir DIR --protocol google|ours|ours-without-dir-fsync [--iterations N]
  pam-bench contention --dir DIR --processes N --lock blocking|poll-2ms|poll-US|backoff [--outside-us N] [--seconds S]
  pam-bench refusals   --dir DIR --unenrolled USER [--rate-limit] [--iterations N] [--warmup N]
  pam-bench fleet-prepare --dir DIR --ours SO --without SO --shared-state CONF
  pam-bench fleet      --dir DIR --ours SO --without SO --redis-port P [--redis-password PW] [--iterations N] [--only without|with|store|load-without|load-with|loads]";

/// Flags of every command; each command checks the ones it needs.
#[derive(Debug, Default)]
struct Args {
    command: String,
    dir: Option<PathBuf>,
    ours: Option<PathBuf>,
    google: Option<PathBuf>,
    module: Option<Stack>,
    case: Option<String>,
    workload: Option<String>,
    iterations: Option<usize>,
    warmup: Option<usize>,
    processes: Option<usize>,
    shared: Option<bool>,
    seconds: Option<f64>,
    slot: Option<usize>,
    protocol: Option<String>,
    lock: Option<String>,
    outside_us: Option<u64>,
    unenrolled: Option<String>,
    rate_limit: bool,
    // fleet.rs
    without: Option<PathBuf>,
    shared_state: Option<PathBuf>,
    redis_port: Option<u16>,
    redis_password: Option<String>,
    only: Option<fleet::Only>,
}

fn number<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("{flag}: not a number: {value:?}"))
}

fn parse_args(mut args: impl Iterator<Item = OsString>) -> Result<Args, String> {
    let command = args
        .next()
        .and_then(|c| c.into_string().ok())
        .ok_or("no command")?;
    let mut parsed = Args {
        command,
        ..Args::default()
    };
    while let Some(flag) = args.next() {
        let flag = flag
            .into_string()
            .map_err(|f| format!("not UTF-8: {f:?}"))?;
        // The one flag without a value.
        if flag == "--rate-limit" {
            parsed.rate_limit = true;
            continue;
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let text = value.to_str().unwrap_or("").to_owned();
        match flag.as_str() {
            "--dir" => parsed.dir = Some(PathBuf::from(value)),
            "--ours" => parsed.ours = Some(PathBuf::from(value)),
            "--google" => parsed.google = Some(PathBuf::from(value)),
            "--module" => parsed.module = Some(Stack::parse(&text)?),
            "--case" => parsed.case = Some(text),
            "--workload" => parsed.workload = Some(text),
            "--files" => {
                parsed.shared = Some(match text.as_str() {
                    "distinct" => false,
                    "shared" => true,
                    _ => return Err(format!("--files: distinct or shared, not {text:?}")),
                })
            }
            "--iterations" => parsed.iterations = Some(number(&flag, &text)?),
            "--warmup" => parsed.warmup = Some(number(&flag, &text)?),
            "--processes" => parsed.processes = Some(number(&flag, &text)?),
            "--seconds" => parsed.seconds = Some(number(&flag, &text)?),
            "--slot" => parsed.slot = Some(number(&flag, &text)?),
            "--protocol" => parsed.protocol = Some(text),
            "--lock" => parsed.lock = Some(text),
            "--outside-us" => parsed.outside_us = Some(number(&flag, &text)?),
            "--unenrolled" => parsed.unenrolled = Some(text.clone()),
            "--without" => parsed.without = Some(PathBuf::from(value)),
            "--shared-state" => parsed.shared_state = Some(PathBuf::from(value)),
            "--redis-port" => parsed.redis_port = Some(number(&flag, &text)?),
            "--redis-password" => parsed.redis_password = Some(text),
            "--only" => parsed.only = Some(fleet::Only::parse(&text)?),
            other => return Err(format!("unknown flag {other:?}")),
        }
    }
    Ok(parsed)
}

fn user() -> CString {
    CString::new(pam_totp_tests::system::current_user().1).expect("user names have no NUL")
}

fn prepare(layout: &Layout, args: &Args) -> Result<(), String> {
    // Default: the module built next to this binary (same profile), so a
    // release pam-bench measures the release module.
    let ours = match &args.ours {
        Some(path) => path.clone(),
        None => std::env::current_exe()
            .map_err(|e| e.to_string())?
            .with_file_name("libpam_totp.so"),
    };
    let google = args
        .google
        .clone()
        .unwrap_or_else(pam_totp_tests::system::google_module);
    for path in [&ours, &google] {
        if !path.is_file() {
            return Err(format!("{} not found", path.display()));
        }
    }
    let ours = std::fs::canonicalize(&ours).map_err(|e| e.to_string())?;
    let permit = pam_totp_tests::system::system_module("pam_permit.so");
    layout
        .write(&ours, &google, &permit)
        .map_err(|e| format!("cannot write the benchmark directory: {e}"))?;
    println!(
        "LD_PRELOAD={}:{}",
        pam_totp_tests::system::pam_wrapper_lib().display(),
        pam_totp_tests::system::syslog_shim().display()
    );
    println!("PAM_WRAPPER=1");
    println!("PAM_WRAPPER_SERVICE_DIR={}", layout.services().display());
    // pam_wrapper hands pam_syslog on to libpam (and so to the shim) instead
    // of dropping it: both modules' log lines cost the same.
    println!("PAM_WRAPPER_USE_SYSLOG=1");
    println!("PAM_TOTP_TEST_SYSLOG=/dev/null");
    Ok(())
}

/// N logins of one case (or N loads of the module alone), each bracketed
/// for strace; then the peak RSS. The file is installed afresh before each
/// login only when the case rewrites it, so that little but the logins
/// differs between 1 and 101 iterations (callgrind: (Ir of 101 - Ir of
/// 1) / 100 is the cost of one).
fn auth(layout: &Layout, stack: Stack, case: &str, iterations: usize) -> Result<(), String> {
    let user = user();
    if case == "load" {
        let module = layout.module_path(stack)?;
        for _ in 0..iterations {
            pam::strace_marker("pam-bench: begin");
            latency::load_and_unload(&module)?;
            pam::strace_marker("pam-bench: end");
        }
    } else {
        let kind = latency::Kind::parse(case)?;
        // The wrong code takes 6,401 HMACs to choose: computed once, like
        // the others.
        let answers = latency::Answers::new();
        for _ in 0..iterations {
            // Bracketed for strace inside (the transaction alone).
            latency::login(
                layout,
                &user,
                stack,
                kind,
                &answers,
                kind == latency::Kind::Rewrite,
            )?;
        }
    }
    // SAFETY: rusage is a plain C struct of integers: all zeroes is valid.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage fills the struct we pass; nothing else.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    println!("maxrss_kib {}", usage.ru_maxrss);
    println!("minor_faults {}", usage.ru_minflt);
    println!("major_faults {}", usage.ru_majflt);
    Ok(())
}

fn run(args: Args) -> Result<(), String> {
    let layout = Layout::new(args.dir.as_deref().ok_or("--dir is required")?);
    let module = || args.module.ok_or("--module is required");
    match args.command.as_str() {
        "prepare" => prepare(&layout, &args),
        "fleet-prepare" => fleet::prepare(
            args.dir.as_deref().ok_or("--dir is required")?,
            args.ours.as_deref().ok_or("--ours is required")?,
            args.without.as_deref().ok_or("--without is required")?,
            args.shared_state
                .as_deref()
                .ok_or("--shared-state is required")?,
        ),
        "fleet" => fleet::run(
            args.dir.as_deref().ok_or("--dir is required")?,
            &user(),
            args.ours.as_deref().ok_or("--ours is required")?,
            args.without.as_deref().ok_or("--without is required")?,
            args.redis_port.ok_or("--redis-port is required")?,
            args.redis_password.as_deref(),
            args.iterations.unwrap_or(300),
            args.only,
        ),
        "latency" => latency::run(
            &layout,
            &user(),
            args.iterations.unwrap_or(500),
            args.warmup.unwrap_or(20),
        ),
        "auth" => auth(
            &layout,
            module()?,
            args.case.as_deref().unwrap_or("success"),
            args.iterations.unwrap_or(1),
        ),
        "throughput" => {
            let stack = module()?;
            if stack == Stack::Baseline {
                return Err("throughput: --module ours or google".to_owned());
            }
            throughput::run(
                &layout,
                stack,
                args.processes.ok_or("--processes is required")?,
                args.shared.unwrap_or(false),
                args.seconds.unwrap_or(3.0),
                throughput::Workload::parse(args.workload.as_deref().unwrap_or("success"))?,
            )
        }
        "floor" => {
            let protocol = match args.protocol.as_deref() {
                Some("google") => floor::Protocol::Google,
                Some("ours") => floor::Protocol::Ours,
                Some("ours-without-dir-fsync") => floor::Protocol::OursWithoutDirSync,
                _ => return Err("--protocol google, ours or ours-without-dir-fsync".into()),
            };
            for _ in 0..args.iterations.unwrap_or(1) {
                floor::replay(&layout.floor_file(), protocol).map_err(|e| format!("floor: {e}"))?;
            }
            Ok(())
        }
        "refusals" => refusals::run(
            &layout,
            &user().to_string_lossy(),
            args.unenrolled
                .as_deref()
                .ok_or("--unenrolled USER is required")?,
            args.iterations.unwrap_or(1000),
            args.warmup.unwrap_or(20),
            args.rate_limit,
        ),
        "contention" => throughput::contention(
            &layout,
            args.processes.ok_or("--processes is required")?,
            args.lock
                .as_deref()
                .ok_or("--lock blocking, poll-2ms, poll-US or backoff")?,
            Duration::from_micros(args.outside_us.unwrap_or(0)),
            args.seconds.unwrap_or(3.0),
        ),
        // Started by `contention`, one per process.
        "contention-worker" => throughput::contention_worker(
            &layout,
            args.lock.as_deref().ok_or("--lock is required")?,
            Duration::from_micros(args.outside_us.unwrap_or(0)),
            args.seconds.ok_or("--seconds is required")?,
        ),
        // Started by `throughput`, one per process.
        "worker" => throughput::worker(
            &layout,
            &user(),
            module()?,
            args.slot.ok_or("--slot is required")?,
            args.seconds.ok_or("--seconds is required")?,
            throughput::Workload::parse(args.workload.as_deref().unwrap_or("success"))?,
        ),
        other => Err(format!("unknown command {other:?}")),
    }
}

fn main() -> ExitCode {
    // pam_wrapper's per-process directories left by processes that died or
    // exec'd (strace and valgrind wrappers) would make it refuse to start.
    pam_totp_tests::system::remove_stale_pam_wrapper_dirs();
    match parse_args(std::env::args_os().skip(1)).and_then(run) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("pam-bench: {message}\n{USAGE}");
            ExitCode::FAILURE
        }
    }
}
