//! Shared by the race and fault tests: a private pam_wrapper service
//! directory with one module and a secret file, and `pamtester` (a real PAM
//! application from Debian, independent of our driver) to log in through it,
//! many processes at once if need be.
#![allow(dead_code)] // each test file uses a different part

use pam_totp_tests::{oath, system};
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};

pub use pam_totp_tests::Module;

pub const SECRET: &str = "JBSWY3DPEHPK3PXP";
const PROMPT: &[u8] = b"Verification code: ";

/// pam_wrapper gives each process one of 62 machine-wide slots: one race
/// of 32 at a time in this test binary.
static RACE: Mutex<()> = Mutex::new(());

fn one_race_at_a_time() -> MutexGuard<'static, ()> {
    RACE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub struct Rig {
    pub dir: PathBuf,
    module: Module,
}

/// The outcome of one login.
pub struct Login {
    pub success: bool,
    /// The module's pam_syslog lines (pam_wrapper prints them on stderr).
    pub logs: Vec<String>,
}

impl Login {
    pub fn logged(&self, fragment: &str) -> bool {
        self.logs.iter().any(|l| l.contains(fragment))
    }
}

fn syslog_lines(stderr: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(stderr)
        .lines()
        .filter(|l| l.contains("SYSLOG("))
        .map(str::to_owned)
        .collect()
}

impl Rig {
    pub fn new(name: &str, module: Module, file: &str, options: &str) -> Rig {
        system::remove_stale_pam_wrapper_dirs();
        let dir = std::env::temp_dir().join(format!(
            "pam_totp-rig-{}-{name}-{}",
            std::process::id(),
            module.name()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("services")).unwrap();
        let rig = Rig { dir, module };
        fs::write(
            rig.dir.join("services/other"),
            "auth required pam_deny.so\n",
        )
        .unwrap();
        fs::write(rig.dir.join("secret"), file).unwrap();
        fs::set_permissions(rig.dir.join("secret"), fs::Permissions::from_mode(0o400)).unwrap();
        rig.point_service_at(&rig.dir.join("secret"), options);
        rig
    }

    fn point_service_at(&self, secret: &Path, options: &str) {
        fs::write(
            self.dir.join("services/totp"),
            format!(
                "auth required {} secret={} {options}\n",
                self.module.path().display(),
                secret.display()
            ),
        )
        .unwrap();
        fs::write(
            self.dir.join("rig-secret-path"),
            secret.as_os_str().as_encoded_bytes(),
        )
        .unwrap();
    }

    pub fn secret(&self) -> PathBuf {
        PathBuf::from(fs::read_to_string(self.dir.join("rig-secret-path")).unwrap())
    }

    pub fn contents(&self) -> String {
        fs::read_to_string(self.secret()).unwrap()
    }

    /// Moves the secret file to `path` (e.g. onto a small or read-only file
    /// system) and points the service at it.
    pub fn move_secret(&self, path: &Path, options: &str) {
        fs::write(path, self.contents()).unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(0o400)).unwrap();
        self.point_service_at(path, options);
    }

    fn command(&self) -> Command {
        let mut command = Command::new("pamtester");
        command
            .args(["totp", &system::current_user().1, "authenticate"])
            .env("LD_PRELOAD", "libpam_wrapper.so")
            .env("PAM_WRAPPER", "1")
            .env("PAM_WRAPPER_SERVICE_DIR", self.dir.join("services"))
            // Level 2 shows the module's pam_syslog lines on stderr.
            .env("PAM_WRAPPER_DEBUGLEVEL", "2")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    fn spawn(&self, env: &[(&str, String)]) -> Child {
        let mut command = self.command();
        for (key, value) in env {
            command.env(key, value);
        }
        command
            .spawn()
            .expect("pamtester (Debian package pamtester) is installed")
    }

    /// Runs one login per answer, all at once: every process is started and
    /// left at the prompt, then all get their answer. Returns, per answer,
    /// whether it succeeded, and all syslog lines.
    pub fn race(&self, answers: &[String]) -> (Vec<bool>, Vec<String>) {
        let _slot = one_race_at_a_time();
        let before = self.contents();
        for _ in 1..system::PAM_WRAPPER_START_ATTEMPTS {
            match self.race_once(answers) {
                Some(result) => return result,
                // pam_wrapper could not start one of them: the race is not
                // the one asked for. Run it again from the same file.
                None => fs::write(self.secret(), &before).unwrap(),
            }
        }
        self.race_once(answers)
            .expect("pam_wrapper could not start every process of the race")
    }

    fn race_once(&self, answers: &[String]) -> Option<(Vec<bool>, Vec<String>)> {
        let mut children: Vec<Child> = answers.iter().map(|_| self.spawn(&[])).collect();
        for (child, answer) in children.iter_mut().zip(answers) {
            let mut stdin = child.stdin.take().unwrap();
            // A process that already died must not stop the race.
            let _ = writeln!(stdin, "{answer}");
        }
        let mut results = Vec::new();
        let mut logs = Vec::new();
        let mut all_started = true;
        for child in children {
            let out = child.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            all_started &= !system::pam_wrapper_could_not_start(&stderr);
            let stdout = String::from_utf8_lossy(&out.stdout);
            results.push(out.status.success() && stdout.contains("successfully authenticated"));
            logs.extend(syslog_lines(&out.stderr));
        }
        all_started.then_some((results, logs))
    }

    /// One login with extra environment (e.g. another LD_PRELOAD).
    /// `before_answering` runs once the prompt is shown, that is after the
    /// module has looked at the file and before it checks the code.
    /// One login with extra environment (e.g. another LD_PRELOAD).
    /// `before_answering` runs once the prompt is shown, that is after the
    /// module has looked at the file and before it checks the code.
    pub fn login_with(
        &self,
        answer: &str,
        env: &[(&str, String)],
        before_answering: impl FnOnce(),
    ) -> Login {
        let _slot = one_race_at_a_time();
        let mut before_answering = Some(before_answering);
        for _ in 0..system::PAM_WRAPPER_START_ATTEMPTS {
            if let Some(login) = self.login_once(answer, env, &mut before_answering) {
                return login;
            }
        }
        panic!("pam_wrapper could not start pamtester");
    }

    fn login_once(
        &self,
        answer: &str,
        env: &[(&str, String)],
        before_answering: &mut Option<impl FnOnce()>,
    ) -> Option<Login> {
        let mut child = self.spawn(env);
        // pamtester shows the prompt on stderr; stop reading there (or at
        // the end, if the module never asks).
        let mut stderr = child.stderr.take().unwrap();
        let mut seen = Vec::new();
        let mut byte = [0u8; 1];
        while !seen.ends_with(PROMPT) {
            match stderr.read(&mut byte) {
                Ok(1) => seen.push(byte[0]),
                _ => break,
            }
        }
        if system::pam_wrapper_could_not_start(&String::from_utf8_lossy(&seen)) {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        if let Some(act) = before_answering.take() {
            act();
        }
        if let Some(mut stdin) = child.stdin.take() {
            let _ = writeln!(stdin, "{answer}");
        }
        let _ = stderr.read_to_end(&mut seen);
        let out = child.wait_with_output().unwrap();
        if system::pam_wrapper_could_not_start(&String::from_utf8_lossy(&seen)) {
            return None;
        }
        Some(Login {
            success: out.status.success()
                && String::from_utf8_lossy(&out.stdout).contains("successfully authenticated"),
            logs: syslog_lines(&seen),
        })
    }

    pub fn login(&self, answer: &str) -> Login {
        self.login_with(answer, &[], || {})
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

pub fn totp_now() -> String {
    oath::totp_now(SECRET)
}
