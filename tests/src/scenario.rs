//! A scenario: its own directory with a secret file, one module under test
//! with its options, and a clock; and logins run against it through real
//! libpam (pam-driver under pam_wrapper).

use crate::outcome::{parse_logs, Outcome};
use crate::system::{self, Module};
use std::ffi::OsString;
use std::fmt;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Condvar, Mutex, PoisonError};
use std::time::Duration;

/// The service name the driver asks libpam for.
pub const SERVICE: &str = "pam_totp_test";

/// The time the modules see.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clock {
    /// The machine's clock.
    Real,
    /// Frozen at this Unix time, through libfaketime.
    Frozen(u64),
}

/// What the driver does when a module asks more questions than were
/// scripted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutOfAnswers {
    /// Fail the conversation (PAM_CONV_ERR), so an extra prompt shows.
    Fail,
    /// Answer with an empty string, as a user pressing Enter.
    Empty,
}

/// Its own directory, a module and its options, a clock. Removed on drop
/// (kept, and its path printed, when `PAM_TOTP_KEEP_SCENARIOS` is set).
pub struct Scenario {
    module: Module,
    module_path: PathBuf,
    dir: PathBuf,
    uid: u32,
    user: String,
    options: Vec<String>,
    clock: Clock,
    runs: AtomicUsize,
}

impl Scenario {
    /// A new scenario for `module`, run by and for the current user, with
    /// the option `secret=<dir>/secret` and the real clock. Panics at once,
    /// with instructions, when the module is not available.
    pub fn new(module: Module) -> Scenario {
        system::remove_stale_pam_wrapper_dirs();
        let module_path = module.path();
        let (uid, user) = system::current_user();
        // libtest names each test's thread after the test: a readable dir.
        let test: String = std::thread::current()
            .name()
            .unwrap_or("test")
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        // The end of a long test path is the informative part.
        let test = &test[test.len().saturating_sub(60)..];
        // A unique name from tempfile; removed by our Drop, which first
        // makes read-only directories writable (and honours
        // PAM_TOTP_KEEP_SCENARIOS).
        let dir = tempfile::Builder::new()
            .prefix(&format!("pam_totp_tests-{}-{test}-", module.name()))
            // Readable by others so a test may hand files to another user.
            .permissions(fs::Permissions::from_mode(0o755))
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a scenario directory: {e}"))
            .keep();
        let secret = dir.join("secret");
        Scenario {
            module,
            module_path,
            dir,
            uid,
            user,
            options: vec![format!("secret={}", secret.display())],
            clock: Clock::Real,
            runs: AtomicUsize::new(0),
        }
    }

    /// Adds a module option for every login (e.g. `"debug"`, `"nullok"`).
    pub fn option(mut self, option: impl Into<String>) -> Scenario {
        self.options.push(option.into());
        self
    }

    /// Replaces all module options, including the default `secret=`.
    pub fn options<I, S>(mut self, options: I) -> Scenario
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.options = options.into_iter().map(Into::into).collect();
        self
    }

    /// Freezes the modules' clock at Unix time `unix` (libfaketime).
    pub fn at(mut self, unix: u64) -> Scenario {
        self.clock = Clock::Frozen(unix);
        self
    }

    /// Changes the clock between logins.
    pub fn set_clock(&mut self, clock: Clock) {
        self.clock = clock;
    }

    pub fn module(&self) -> Module {
        self.module
    }

    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// The time the module will see: the frozen time, or now.
    pub fn now(&self) -> u64 {
        match self.clock {
            Clock::Frozen(unix) => unix,
            Clock::Real => crate::oath::now(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The user running the tests: the PAM user and file owner by default.
    pub fn user(&self) -> &str {
        &self.user
    }

    pub fn uid(&self) -> u32 {
        self.uid
    }

    pub fn module_options(&self) -> &[String] {
        &self.options
    }

    /// Where the default `secret=` option points.
    pub fn secret_path(&self) -> PathBuf {
        self.dir.join("secret")
    }

    /// Writes the secret file with mode 0600, owned by the current user,
    /// replacing any earlier one (even a read-only one).
    pub fn write_secret(&self, contents: &str) -> PathBuf {
        self.write_file_with_mode(&self.secret_path(), contents.as_bytes(), 0o600)
    }

    /// Writes `path` afresh with `mode` (the umask does not apply).
    pub fn write_file_with_mode(&self, path: &Path, contents: &[u8], mode: u32) -> PathBuf {
        match fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => panic!("cannot replace {}: {e}", path.display()),
        }
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        file.write_all(contents)
            .and_then(|()| file.set_permissions(fs::Permissions::from_mode(mode)))
            .and_then(|()| file.sync_all())
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        path.to_path_buf()
    }

    /// The secret file's contents now.
    pub fn read_secret(&self) -> String {
        let path = self.secret_path();
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
    }

    /// The secret file's mode bits (e.g. 0o400), or None if it is gone.
    pub fn secret_mode(&self) -> Option<u32> {
        fs::metadata(self.secret_path())
            .ok()
            .map(|m| m.permissions().mode() & 0o7777)
    }

    /// A login to configure and run.
    pub fn login(&self) -> Login<'_> {
        Login {
            scenario: self,
            service: SERVICE.to_owned(),
            requested_service: None,
            pam_user: self.user.clone(),
            answers: Vec::new(),
            out_of_answers: OutOfAnswers::Fail,
            items: Vec::new(),
            authtok: None,
            read_authtok: false,
            extra_options: Vec::new(),
            before: Vec::new(),
            after: Vec::new(),
            silent: false,
            setcred: false,
            env: Vec::new(),
            preload: Vec::new(),
            first_pass: None,
            probe_authtok: false,
            clock: None,
            timeout: Duration::from_secs(60),
            as_account: None,
        }
    }

    /// Shorthand: one login that answers the first prompt with `answer`.
    pub fn authenticate(&self, answer: &str) -> Outcome {
        self.login().answer(answer).run()
    }
}

impl Drop for Scenario {
    fn drop(&mut self) {
        if std::env::var_os("PAM_TOTP_KEEP_SCENARIOS").is_some() {
            eprintln!("scenario kept: {}", self.dir.display());
        } else {
            let _ = make_writable(&self.dir);
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// A test may leave read-only directories (to make a module's write fail);
/// as a normal user they could not be emptied.
fn make_writable(dir: &Path) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if fs::symlink_metadata(&path)?.is_dir() {
            fs::set_permissions(&path, fs::Permissions::from_mode(0o700))?;
            make_writable(&path)?;
        }
    }
    Ok(())
}

/// One pam_authenticate call, configured by its builder methods.
#[must_use = "a login does nothing until run"]
pub struct Login<'a> {
    scenario: &'a Scenario,
    service: String,
    requested_service: Option<String>,
    pam_user: String,
    answers: Vec<OsString>,
    out_of_answers: OutOfAnswers,
    items: Vec<(&'static str, String)>,
    authtok: Option<String>,
    read_authtok: bool,
    extra_options: Vec<String>,
    before: Vec<String>,
    after: Vec<String>,
    silent: bool,
    setcred: bool,
    env: Vec<(OsString, OsString)>,
    preload: Vec<PathBuf>,
    first_pass: Option<OsString>,
    probe_authtok: bool,
    clock: Option<Clock>,
    timeout: Duration,
    as_account: Option<(u32, u32)>,
}

impl Login<'_> {
    /// The clock for this login only (default: the scenario's).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// PAM_AUTHTOK as an earlier module (pam_unix) would leave it, set by
    /// the test-only probe module (csrc/authtok_probe.c) stacked before the
    /// module under test. Implies [`Login::probe_authtok`].
    pub fn first_pass(mut self, password: impl Into<OsString>) -> Self {
        self.first_pass = Some(password.into());
        self.probe_authtok = true;
        self
    }

    /// Stacks the probe module before and after the module under test, so
    /// that [`Outcome::authtok_after`] says what later modules see.
    pub fn probe_authtok(mut self) -> Self {
        self.probe_authtok = true;
        self
    }

    /// The next scripted answer (any bytes but NUL).
    pub fn answer(mut self, answer: impl Into<OsString>) -> Self {
        self.answers.push(answer.into());
        self
    }

    /// What to do when the answers run out (default: fail the
    /// conversation).
    pub fn when_out_of_answers(mut self, policy: OutOfAnswers) -> Self {
        self.out_of_answers = policy;
        self
    }

    /// The PAM user (default: the current user).
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.pam_user = user.into();
        self
    }

    pub fn rhost(mut self, host: impl Into<String>) -> Self {
        self.items.push(("--rhost", host.into()));
        self
    }

    pub fn tty(mut self, tty: impl Into<String>) -> Self {
        self.items.push(("--tty", tty.into()));
        self
    }

    pub fn ruser(mut self, user: impl Into<String>) -> Self {
        self.items.push(("--ruser", user.into()));
        self
    }

    /// PAM_AUTHTOK as an earlier module in the stack would leave it (for
    /// `try_first_pass` / `use_first_pass`). Linux-PAM refuses the item from
    /// an application, so pam_wrapper's pam_set_items.so is stacked before
    /// the module to set it from module context.
    pub fn authtok(mut self, authtok: impl Into<String>) -> Self {
        self.authtok = Some(authtok.into());
        self
    }

    /// Reports PAM_AUTHTOK after the module ran (for `forward_pass`), through
    /// pam_wrapper's pam_get_items.so stacked right after the module.
    pub fn read_authtok(mut self) -> Self {
        self.read_authtok = true;
        self
    }

    /// An extra module option for this login only.
    pub fn option(mut self, option: impl Into<String>) -> Self {
        self.extra_options.push(option.into());
        self
    }

    /// A raw service-file line before the module under test, e.g.
    /// `format!("auth required {}", system_module("pam_permit.so").display())`.
    pub fn stack_before(mut self, line: impl Into<String>) -> Self {
        self.before.push(line.into());
        self
    }

    /// A raw service-file line after the module under test. Note: a module's
    /// PAM_IGNORE, alone in the stack, comes out of pam_authenticate as
    /// PAM_PERM_DENIED (no module gave a verdict); a line such as
    /// `auth required pam_permit.so` here makes it PAM_SUCCESS instead.
    pub fn stack_after(mut self, line: impl Into<String>) -> Self {
        self.after.push(line.into());
        self
    }

    /// The service name, of the file written and the one asked for
    /// (default [`SERVICE`]).
    pub fn service(mut self, service: impl Into<String>) -> Self {
        self.service = service.into();
        self.requested_service = None;
        self
    }

    /// Asks libpam for a service other than the one written: with no file
    /// of that name it falls through to the `other` service, which denies.
    pub fn ask_for_service(mut self, service: impl Into<String>) -> Self {
        self.requested_service = Some(service.into());
        self
    }

    /// Passes PAM_SILENT.
    pub fn silent(mut self) -> Self {
        self.silent = true;
        self
    }

    /// Calls pam_setcred(PAM_ESTABLISH_CRED) after authentication.
    pub fn setcred(mut self) -> Self {
        self.setcred = true;
        self
    }

    /// An extra environment variable for the driver process.
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Runs the PAM application (the driver) as this uid and gid, with no
    /// supplementary groups, instead of as the test: what a program running
    /// as that user can do with its own PAM stack. Needs root.
    pub fn as_account(mut self, uid: u32, gid: u32) -> Self {
        self.as_account = Some((uid, gid));
        self
    }

    /// How long the driver may take before it is killed (default 60 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The service file this login uses.
    pub fn service_file(&self) -> String {
        let mut lines = vec![format!(
            "# pam_totp_tests: {} ({})",
            self.scenario.module,
            self.scenario.module_path.display()
        )];
        if self.authtok.is_some() {
            // "ignore" for every result: the helper must not sway the verdict.
            lines.push(format!(
                "auth [default=ignore] {}",
                system::pam_wrapper_module("pam_set_items.so").display()
            ));
        }
        if self.probe_authtok {
            lines.push(format!(
                "auth [default=ignore] {} set",
                system::authtok_probe().display()
            ));
        }
        lines.extend(self.before.iter().cloned());
        let mut module_line = format!("auth required {}", self.scenario.module_path.display());
        for option in self.scenario.options.iter().chain(&self.extra_options) {
            module_line.push(' ');
            module_line.push_str(&service_file_arg(option));
        }
        lines.push(module_line);
        if self.read_authtok {
            lines.push(format!(
                "auth [default=ignore] {}",
                system::pam_wrapper_module("pam_get_items.so").display()
            ));
        }
        if self.probe_authtok {
            lines.push(format!(
                "auth [default=ignore] {} {}",
                system::authtok_probe().display(),
                service_file_arg(&format!("record={}", self.probe_record().display()))
            ));
        }
        lines.extend(self.after.iter().cloned());
        lines.join("\n") + "\n"
    }

    /// An extra library in the driver's LD_PRELOAD (after pam_wrapper's),
    /// e.g. a shim that fails or kills at one system call.
    pub fn preload(mut self, library: impl Into<PathBuf>) -> Self {
        self.preload.push(library.into());
        self
    }

    /// Runs the login; panics, with everything known, if the driver itself
    /// failed (crashed, timed out, wrote no result).
    pub fn run(self) -> Outcome {
        self.try_run().unwrap_or_else(|failure| panic!("{failure}"))
    }

    /// Runs the login; a driver failure (e.g. the module crashed the
    /// process) is returned rather than panicking.
    pub fn try_run(self) -> Result<Outcome, Box<DriverFailure>> {
        self.run_held(None::<fn()>)
    }

    /// Runs the login and calls `at_prompt` while the module waits at its
    /// first prompt (it has looked at the file and not yet checked the
    /// code), e.g. to swap the file under it. If the module never asks,
    /// `at_prompt` runs once it has finished.
    pub fn run_paused(self, at_prompt: impl FnOnce()) -> Outcome {
        self.run_held(Some(at_prompt))
            .unwrap_or_else(|failure| panic!("{failure}"))
    }

    fn run_held(self, at_prompt: Option<impl FnOnce()>) -> Result<Outcome, Box<DriverFailure>> {
        let answers = self.answers.clone();
        let mut at_prompt = at_prompt;
        let _slot = DriverSlot::acquire();
        for attempt in 1..=system::PAM_WRAPPER_START_ATTEMPTS {
            let service_dir = self.write_services();
            let hold = at_prompt
                .is_some()
                .then(|| service_dir.with_file_name("hold"));
            let driver = self.spawn(&service_dir, &answers, hold.as_deref());
            if let Some(hold) = &hold {
                wait_until_prompted(hold, std::slice::from_ref(&driver));
                if let Some(act) = at_prompt.take() {
                    act();
                }
                release(hold);
            }
            let finished = driver.finish(self.timeout);
            if attempt < system::PAM_WRAPPER_START_ATTEMPTS && finished.could_not_start() {
                finished.report_restart();
                continue;
            }
            return self.outcome(finished);
        }
        unreachable!("the last attempt returns")
    }

    /// Runs one login per answer, all at once, from one service file: every
    /// driver is started and left at its prompt, then all answer together,
    /// so the modules really race. Returns the outcomes in the order of
    /// `answers`. If pam_wrapper could not start one of them, the secret
    /// file is put back as it was and the whole race runs again.
    pub fn race(self, answers: &[String]) -> Vec<Outcome> {
        let _slot = DriverSlot::acquire();
        let secret = self.scenario.secret_path();
        let before = fs::read(&secret).ok();
        let mode = self.scenario.secret_mode();
        for attempt in 1..=system::PAM_WRAPPER_START_ATTEMPTS {
            let service_dir = self.write_services();
            let hold = service_dir.with_file_name("hold");
            let drivers: Vec<Driver> = answers
                .iter()
                .map(|answer| self.spawn(&service_dir, &[answer.into()], Some(&hold)))
                .collect();
            wait_until_prompted(&hold, &drivers);
            release(&hold);
            let finished: Vec<Finished> = drivers
                .into_iter()
                .map(|driver| driver.finish(self.timeout))
                .collect();
            let retry = finished.iter().any(Finished::could_not_start);
            if retry && attempt < system::PAM_WRAPPER_START_ATTEMPTS {
                finished
                    .iter()
                    .filter(|f| f.could_not_start())
                    .for_each(Finished::report_restart);
                if let (Some(bytes), Some(mode)) = (&before, mode) {
                    self.scenario.write_file_with_mode(&secret, bytes, mode);
                }
                continue;
            }
            return finished
                .into_iter()
                .map(|f| {
                    self.outcome(f)
                        .unwrap_or_else(|failure| panic!("{failure}"))
                })
                .collect();
        }
        unreachable!("the last attempt returns")
    }

    /// Where the probe module records PAM_AUTHTOK after the module.
    fn probe_record(&self) -> PathBuf {
        self.scenario.dir.join("authtok-after")
    }

    /// A fresh run directory with the service files: pam_wrapper copies the
    /// directory when a driver starts, so it must be complete before.
    fn write_services(&self) -> PathBuf {
        let run = self.scenario.runs.fetch_add(1, Ordering::Relaxed);
        let run_dir = self.scenario.dir.join(format!("run-{run}"));
        let service_dir = run_dir.join("pam.d");
        fs::create_dir_all(&service_dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", service_dir.display()));
        write_other_service(&service_dir);
        fs::write(service_dir.join(&self.service), self.service_file())
            .unwrap_or_else(|e| panic!("cannot write the service file: {e}"));
        service_dir
    }

    /// Starts one driver for this login with `answers`, its own syslog
    /// capture file, and `--hold` if given.
    fn spawn(&self, service_dir: &Path, answers: &[OsString], hold: Option<&Path>) -> Driver {
        static DRIVERS: AtomicUsize = AtomicUsize::new(0);
        let syslog_file = service_dir.with_file_name(format!(
            "syslog-{}",
            DRIVERS.fetch_add(1, Ordering::Relaxed)
        ));
        let mut command = Command::new(system::driver());
        command
            .args([
                "--service",
                self.requested_service.as_ref().unwrap_or(&self.service),
            ])
            .args(["--user", &self.pam_user])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (flag, value) in &self.items {
            command.args([*flag, value.as_str()]);
        }
        if let Some(authtok) = &self.authtok {
            command.args(["--authtok", authtok]);
        }
        for answer in answers {
            command.arg("--answer").arg(answer);
        }
        command.args([
            "--when-out-of-answers",
            match self.out_of_answers {
                OutOfAnswers::Fail => "fail",
                OutOfAnswers::Empty => "empty",
            },
        ]);
        if self.silent {
            command.arg("--silent");
        }
        if self.setcred {
            command.arg("--setcred");
        }
        if self.read_authtok {
            command.arg("--print-authtok");
        }
        if let Some(hold) = hold {
            fs::create_dir_all(hold)
                .unwrap_or_else(|e| panic!("cannot create {}: {e}", hold.display()));
            command.arg("--hold").arg(hold);
        }

        let mut preload = vec![system::pam_wrapper_lib()];
        preload.extend(self.preload.iter().cloned());
        for var in ["FAKETIME", "FAKETIME_NO_CACHE", "PAM_AUTHTOK"] {
            command.env_remove(var);
        }
        if let Clock::Frozen(unix) = self.clock.unwrap_or(self.scenario.clock) {
            preload.push(system::faketime_lib());
            // libfaketime reads an absolute time in the local zone: pin it.
            command
                .env("FAKETIME", utc_datetime(unix))
                .env("FAKETIME_NO_CACHE", "1")
                .env("TZ", "UTC");
        }
        preload.push(system::syslog_shim());
        let preload: Vec<String> = preload.iter().map(|p| p.display().to_string()).collect();
        command
            .env("LD_PRELOAD", preload.join(" "))
            .env("PAM_WRAPPER", "1")
            .env("PAM_WRAPPER_SERVICE_DIR", service_dir)
            // Hand pam_syslog on to libpam, whose syslog() the shim catches.
            .env("PAM_WRAPPER_USE_SYSLOG", "1")
            .env("PAM_TOTP_TEST_SYSLOG", &syslog_file);
        command.env_remove("PAM_TOTP_PROBE_AUTHTOK");
        if let Some(password) = &self.first_pass {
            command.env("PAM_TOTP_PROBE_AUTHTOK", password);
        }
        if self.probe_authtok {
            let _ = fs::remove_file(self.probe_record());
        }
        for (key, value) in &self.env {
            command.env(key, value);
        }
        if let Some((uid, gid)) = self.as_account {
            // std clears the supplementary groups when root sets a uid.
            std::os::unix::process::CommandExt::uid(&mut command, uid);
            std::os::unix::process::CommandExt::gid(&mut command, gid);
            // The driver writes its log capture as that user.
            fs::write(&syslog_file, b"")
                .and_then(|()| std::os::unix::fs::chown(&syslog_file, Some(uid), Some(gid)))
                .unwrap_or_else(|e| panic!("cannot prepare {}: {e}", syslog_file.display()));
        }
        Driver::start(command, syslog_file)
    }

    /// Reads a finished driver's report.
    fn outcome(&self, finished: Finished) -> Result<Outcome, Box<DriverFailure>> {
        let logs_text = fs::read_to_string(&finished.syslog_file).unwrap_or_default();
        let Finished {
            status,
            stdout,
            stderr,
            ..
        } = finished;
        let failure = |reason: String| {
            Box::new(DriverFailure {
                reason,
                status,
                stdout: stdout.clone(),
                stderr: stderr.clone(),
                logs: logs_text.clone(),
                service_file: self.service_file(),
            })
        };
        let Some(exit) = status else {
            return Err(failure(format!(
                "pam-driver did not finish within {:?} and was killed",
                self.timeout
            )));
        };
        if !exit.success() {
            return Err(failure(format!("pam-driver failed: {exit}")));
        }
        let mut outcome = Outcome::parse(&stdout).map_err(failure)?;
        outcome.stderr = stderr.clone();
        outcome.logs = parse_logs(&logs_text).map_err(failure)?;
        if self.probe_authtok {
            let seen = fs::read_to_string(self.probe_record()).unwrap_or_default();
            outcome.authtok_after = Some(
                crate::outcome::AuthtokSeen::parse(&seen)
                    .ok_or_else(|| failure(format!("bad probe record {seen:?}")))?,
            );
        }
        Ok(outcome)
    }
}

/// Logins of one or more scenarios (e.g. several hosts sharing a store),
/// each with its answer, run all at once as [`Login::race`] runs one
/// scenario's: every driver is started and left at its prompt, then all
/// answer together.
///
/// pam_wrapper may hand two processes started together the same copy of a
/// service directory (see `MAX_CONCURRENT_DRIVERS` below), so all the drivers
/// of a race start from one directory holding every login's service file,
/// each under a name of its own: a shared copy then changes nothing.
#[must_use = "a race does nothing until run"]
pub struct Race<'a> {
    entries: Vec<(Login<'a>, OsString)>,
    before_retry: Option<Box<dyn FnMut() + 'a>>,
}

impl Default for Race<'_> {
    fn default() -> Self {
        Race::new()
    }
}

impl<'a> Race<'a> {
    pub fn new() -> Self {
        Race {
            entries: Vec::new(),
            before_retry: None,
        }
    }

    /// Adds a login (of any scenario) that will answer its first prompt
    /// with `answer`; its scripted answers, if any, are not used.
    pub fn login(mut self, login: Login<'a>, answer: impl Into<OsString>) -> Self {
        self.entries.push((login, answer.into()));
        self
    }

    /// Called before a race is run again because pam_wrapper could not
    /// start one of its drivers: to put back state outside the scenarios'
    /// secret files (those are put back by the race itself), e.g. a store
    /// the modules share.
    pub fn before_retry(mut self, reset: impl FnMut() + 'a) -> Self {
        self.before_retry = Some(Box::new(reset));
        self
    }

    /// Runs the race; the outcomes come in the order the logins were added.
    pub fn run(mut self) -> Vec<Outcome> {
        let Some((first, _)) = self.entries.first() else {
            return Vec::new();
        };
        let home = first.scenario;
        // Each login asks for a service of its own, all in one directory.
        for (index, (login, _)) in self.entries.iter_mut().enumerate() {
            login.service = format!("{SERVICE}-race-{index}");
            login.requested_service = None;
        }
        // Every scenario's secret file as it was, to put back on a retry.
        let mut secrets: Vec<(PathBuf, Vec<u8>, u32)> = Vec::new();
        for (login, _) in &self.entries {
            let path = login.scenario.secret_path();
            if secrets.iter().any(|(known, _, _)| *known == path) {
                continue;
            }
            if let (Ok(bytes), Some(mode)) = (fs::read(&path), login.scenario.secret_mode()) {
                secrets.push((path, bytes, mode));
            }
        }
        let _slot = DriverSlot::acquire();
        for attempt in 1..=system::PAM_WRAPPER_START_ATTEMPTS {
            let run = home.runs.fetch_add(1, Ordering::Relaxed);
            let run_dir = home.dir.join(format!("race-{run}"));
            let service_dir = run_dir.join("pam.d");
            fs::create_dir_all(&service_dir)
                .unwrap_or_else(|e| panic!("cannot create {}: {e}", service_dir.display()));
            write_other_service(&service_dir);
            for (login, _) in &self.entries {
                fs::write(service_dir.join(&login.service), login.service_file())
                    .unwrap_or_else(|e| panic!("cannot write the service file: {e}"));
            }
            let hold = run_dir.join("hold");
            let drivers: Vec<Driver> = self
                .entries
                .iter()
                .map(|(login, answer)| {
                    login.spawn(&service_dir, std::slice::from_ref(answer), Some(&hold))
                })
                .collect();
            wait_until_prompted(&hold, &drivers);
            release(&hold);
            let finished: Vec<Finished> = self
                .entries
                .iter()
                .zip(drivers)
                .map(|((login, _), driver)| driver.finish(login.timeout))
                .collect();
            let retry = finished.iter().any(Finished::could_not_start);
            if retry && attempt < system::PAM_WRAPPER_START_ATTEMPTS {
                for (path, bytes, mode) in &secrets {
                    home.write_file_with_mode(path, bytes, *mode);
                }
                if let Some(reset) = self.before_retry.as_mut() {
                    reset();
                }
                continue;
            }
            return self
                .entries
                .iter()
                .zip(finished)
                .map(|((login, _), f)| {
                    login
                        .outcome(f)
                        .unwrap_or_else(|failure| panic!("{failure}"))
                })
                .collect();
        }
        unreachable!("the last attempt returns")
    }
}

/// A started pam-driver.
struct Driver {
    pid: nix::unistd::Pid,
    done: mpsc::Receiver<()>,
    waiter: std::thread::JoinHandle<std::io::Result<std::process::Output>>,
    syslog_file: PathBuf,
}

/// A driver that has ended (or was killed).
struct Finished {
    /// None if it was killed for taking too long.
    status: Option<ExitStatus>,
    stdout: String,
    stderr: String,
    syslog_file: PathBuf,
}

impl Finished {
    fn could_not_start(&self) -> bool {
        system::pam_wrapper_could_not_start(&self.stderr, &self.stdout)
            || self.ended_before_pam_start()
    }

    /// pam-driver writes its first record as soon as pam_start returns, and
    /// exits 1 only when stdout cannot be written. Exit 1 with no record at
    /// all is pam_wrapper ending the process inside pam_start, some of
    /// whose exits say nothing (e.g. it cannot write the `pid` file in a
    /// `/tmp/pam.X` that another user's process created at the same
    /// moment): no module ran.
    fn ended_before_pam_start(&self) -> bool {
        self.status.is_some_and(|s| s.code() == Some(1)) && self.stdout.is_empty()
    }

    /// Says (in the test's captured output) why the login starts again.
    fn report_restart(&self) {
        eprintln!(
            "pam_wrapper could not start the driver; starting it again:\n{}",
            self.stderr.trim_end()
        );
    }
}

impl Driver {
    fn start(mut command: Command, syslog_file: PathBuf) -> Driver {
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        let pid =
            nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("a pid fits in pid_t"));
        let (sender, done) = mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let output = child.wait_with_output();
            let _ = sender.send(());
            output
        });
        Driver {
            pid,
            done,
            waiter,
            syslog_file,
        }
    }

    fn has_ended(&self) -> bool {
        self.waiter.is_finished()
    }

    /// Waits for the driver, killing it after `timeout`.
    fn finish(self, timeout: Duration) -> Finished {
        let timed_out = self.done.recv_timeout(timeout).is_err();
        if timed_out {
            // Not yet reaped (the waiter has not returned), so the pid is
            // still the driver's.
            let _ = nix::sys::signal::kill(self.pid, nix::sys::signal::Signal::SIGKILL);
        }
        let output = self
            .waiter
            .join()
            .expect("the waiter thread does not panic")
            .unwrap_or_else(|e| panic!("cannot wait for pam-driver: {e}"));
        Finished {
            status: (!timed_out).then_some(output.status),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            syslog_file: self.syslog_file,
        }
    }
}

/// Waits until every driver is at its prompt (`--hold`) or has ended.
fn wait_until_prompted(hold: &Path, drivers: &[Driver]) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let prompted = fs::read_dir(hold).map_or(0, |entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with("prompted-"))
                .count()
        });
        let ended = drivers.iter().filter(|d| d.has_ended()).count();
        if prompted + ended >= drivers.len() || std::time::Instant::now() > deadline {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Lets every held driver answer.
fn release(hold: &Path) {
    fs::write(hold.join("go"), b"")
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", hold.join("go").display()));
}

/// Everything known about a driver run that did not produce a result.
#[derive(Debug)]
pub struct DriverFailure {
    pub reason: String,
    /// None if the driver was killed for taking too long.
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
    pub logs: String,
    pub service_file: String,
}

impl fmt::Display for DriverFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}\n--- service file:\n{}--- driver stdout:\n{}--- driver stderr:\n{}--- syslog:\n{}",
            self.reason, self.service_file, self.stdout, self.stderr, self.logs
        )
    }
}

impl std::error::Error for DriverFailure {}

/// Linux-PAM's syntax for a module argument: one with spaces goes in
/// brackets, with `]` escaped.
fn service_file_arg(option: &str) -> String {
    assert!(
        !option.contains('\n'),
        "a module option cannot contain a newline: {option:?}"
    );
    if option.contains(char::is_whitespace) || option.starts_with('[') {
        format!("[{}]", option.replace(']', "\\]"))
    } else {
        option.to_owned()
    }
}

/// The fallback service: a service name without a file fails loudly.
fn write_other_service(service_dir: &Path) {
    let deny = system::system_module("pam_deny.so");
    let text: String = ["auth", "account", "password", "session"]
        .iter()
        .map(|kind| format!("{kind} required {}\n", deny.display()))
        .collect();
    fs::write(service_dir.join("other"), text)
        .unwrap_or_else(|e| panic!("cannot write the `other` service: {e}"));
}

/// pam_wrapper copies the service directory into a /tmp/pam.X directory
/// per process (one character X, machine-wide). Two processes started at
/// the same moment can end up with the same copy, that is with each other's
/// service files: a scenario would then run another scenario's options or
/// secret file (seen: a `nullok` outcome in a test without `nullok`). So
/// the scenarios of a test binary run their drivers one at a time. (Across
/// test binaries and checkouts, pam-driver checks after pam_start that
/// libpam read its own files, and stops before authenticating if not; see
/// `pam_wrapper_slot_is_ours` in src/bin/pam-driver.rs.) (Races
/// on purpose, in tests/tests/concurrency.rs, start identical processes
/// from one service directory, where a shared copy changes nothing.)
const MAX_CONCURRENT_DRIVERS: usize = 1;
static RUNNING: (Mutex<usize>, Condvar) = (Mutex::new(0), Condvar::new());

struct DriverSlot;

impl DriverSlot {
    fn acquire() -> DriverSlot {
        let (count, freed) = &RUNNING;
        let mut running = count.lock().unwrap_or_else(PoisonError::into_inner);
        while *running >= MAX_CONCURRENT_DRIVERS {
            running = freed.wait(running).unwrap_or_else(PoisonError::into_inner);
        }
        *running += 1;
        DriverSlot
    }
}

impl Drop for DriverSlot {
    fn drop(&mut self) {
        let (count, freed) = &RUNNING;
        *count.lock().unwrap_or_else(PoisonError::into_inner) -= 1;
        freed.notify_one();
    }
}

/// `YYYY-MM-DD hh:mm:ss` in UTC, the absolute form FAKETIME takes.
pub fn utc_datetime(unix: u64) -> String {
    let days = i64::try_from(unix / 86_400).expect("a date before year 25 million");
    let seconds = unix % 86_400;
    // Civil date from days since 1970-01-01 (proleptic Gregorian), counting
    // in 400-year eras that start on March 1st so leap days fall last.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        seconds / 3_600,
        seconds % 3_600 / 60,
        seconds % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_datetime_matches_known_dates() {
        assert_eq!(utc_datetime(0), "1970-01-01 00:00:00");
        assert_eq!(utc_datetime(951_782_400), "2000-02-29 00:00:00");
        assert_eq!(utc_datetime(1_767_225_600), "2026-01-01 00:00:00");
        assert_eq!(utc_datetime(4_102_444_799), "2099-12-31 23:59:59");
    }

    #[test]
    fn module_arguments_with_spaces_are_bracketed() {
        assert_eq!(service_file_arg("debug"), "debug");
        assert_eq!(
            service_file_arg("authtok_prompt=Your code: "),
            "[authtok_prompt=Your code: ]"
        );
        assert_eq!(service_file_arg("a b]c"), "[a b\\]c]");
    }
}
