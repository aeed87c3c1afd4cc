//! The files in packaging/examples/ do what their comments say, through real
//! libpam (the harness: pam-driver under pam_wrapper) and, for sshd, through
//! a real sshd on 127.0.0.1 with Debian's stock sshd_config and the drop-in.
//!
//! An example's PAM lines are used as they are, with three changes that a
//! test needs: `@include common-auth` becomes Debian's stock common-auth
//! (below), `pam_unix.so` (which checks the machine's /etc/shadow) becomes
//! pam_wrapper's `pam_matrix.so` with a password file of the test's own,
//! and pam_totp gets `secret=` pointing at the test's file.

mod ops;

use ops::{have, run, skip_unless, stdout};
use pam_totp_tests::system::{pam_wrapper_module, system_module};
use pam_totp_tests::{code, oath, Module, Outcome, Scenario};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SECRET: &str = "JBSWY3DPEHPK3PXP";
const T: u64 = 1_767_225_600;
const PASSWORD: &str = "correct horse";

/// Debian 12's /etc/pam.d/common-auth as pam-auth-update writes it with
/// only pam_unix enabled (its comments left out).
const DEBIAN_COMMON_AUTH: &str = "\
auth	[success=1 default=ignore]	pam_unix.so nullok
auth	requisite			pam_deny.so
auth	required			pam_permit.so
";

fn example(name: &str) -> String {
    let path = ops::repo().join("packaging/examples").join(name);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The auth lines of an example, with `@include common-auth` expanded and
/// comments and other types dropped.
fn auth_lines(text: &str) -> Vec<Vec<String>> {
    let mut lines = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap().trim();
        if line.is_empty() {
            continue;
        }
        if line == "@include common-auth" {
            lines.extend(auth_lines(DEBIAN_COMMON_AUTH));
            continue;
        }
        let fields = split_fields(line);
        if fields[0] == "auth" {
            lines.push(fields);
        }
    }
    lines
}

/// Splits on blanks, with a `[value=action ...]` control as one field.
fn split_fields(line: &str) -> Vec<String> {
    let mut fields: Vec<String> = Vec::new();
    let mut in_brackets = false;
    for word in line.split_whitespace() {
        if in_brackets {
            let last = fields.last_mut().unwrap();
            last.push(' ');
            last.push_str(word);
        } else {
            fields.push(word.to_owned());
            in_brackets = word.starts_with('[');
        }
        if word.ends_with(']') {
            in_brackets = false;
        }
    }
    fields
}

/// An example's auth stack turned into a harness login: the lines before
/// and after the (single) pam_totp line, modules by absolute path.
struct Stack {
    before: Vec<String>,
    totp_options: Vec<String>,
    after: Vec<String>,
}

fn stack_of(text: &str, passdb: &Path) -> Stack {
    let lines = auth_lines(text);
    let at = lines
        .iter()
        .position(|f| f[2] == "pam_totp.so")
        .expect("a pam_totp line");
    assert_eq!(
        lines[at][1], "required",
        "the harness writes `auth required`"
    );
    let absolute = |f: &Vec<String>| -> String {
        let module = match f[2].as_str() {
            "pam_unix.so" => format!(
                "{} passdb={}",
                pam_wrapper_module("pam_matrix.so").display(),
                passdb.display()
            ),
            other => system_module(other).display().to_string(),
        };
        // pam_unix's own options (nullok, use_first_pass) mean nothing to
        // pam_matrix; keep the line's control only.
        format!("auth {} {module}", f[1])
    };
    Stack {
        before: lines[..at].iter().map(absolute).collect(),
        totp_options: lines[at][3..].to_vec(),
        after: lines[at + 1..].iter().map(absolute).collect(),
    }
}

struct Rig {
    scenario: Scenario,
    stack: Stack,
}

impl Rig {
    fn new(example_name: &str, enrolled: bool) -> Rig {
        let scenario = Scenario::new(Module::Ours).at(T);
        let passdb = scenario.dir().join("passdb");
        fs::write(
            &passdb,
            format!(
                "{}:{PASSWORD}:{}\n",
                scenario.user(),
                pam_totp_tests::SERVICE
            ),
        )
        .unwrap();
        if enrolled {
            scenario.write_secret(&format!("{SECRET}\n\" TOTP_AUTH\n\" DISALLOW_REUSE\n"));
        }
        let stack = stack_of(&example(example_name), &passdb);
        let mut options = vec![format!("secret={}", scenario.secret_path().display())];
        options.extend(stack.totp_options.iter().cloned());
        Rig {
            scenario: scenario.options(options),
            stack,
        }
    }

    fn login(&self, answers: &[&str]) -> Outcome {
        let mut login = self.scenario.login();
        for line in &self.stack.before {
            login = login.stack_before(line.clone());
        }
        for line in &self.stack.after {
            login = login.stack_after(line.clone());
        }
        for answer in answers {
            login = login.answer(*answer);
        }
        login.run()
    }
}

fn code_now() -> String {
    oath::totp_at(SECRET, T)
}

fn prompts(outcome: &Outcome) -> Vec<String> {
    outcome.prompts.iter().map(|p| p.text.clone()).collect()
}

#[test]
fn sshd_example_asks_the_code_and_refuses_the_unenrolled() {
    let rig = Rig::new("pam.d-sshd", true);
    let ok = rig.login(&[&code_now()]);
    assert_eq!(ok.code, code::PAM_SUCCESS, "{ok}");
    assert_eq!(prompts(&ok), ["Verification code: "], "only the code: {ok}");
    let wrong = rig.login(&[&oath::wrong_totp(SECRET, T)]);
    assert_eq!(wrong.code, code::PAM_AUTH_ERR, "{wrong}");

    let unenrolled = Rig::new("pam.d-sshd", false);
    let refused = unenrolled.login(&["123456"]);
    assert_eq!(refused.code, code::PAM_AUTH_ERR, "{refused}");
}

#[test]
fn sshd_rollout_example_lets_the_unenrolled_in_and_still_checks_codes() {
    let unenrolled = Rig::new("pam.d-sshd-rollout", false);
    let passed = unenrolled.login(&[]);
    assert_eq!(passed.code, code::PAM_SUCCESS, "{passed}");
    assert!(passed.prompts.is_empty(), "nothing asked: {passed}");

    let rig = Rig::new("pam.d-sshd-rollout", true);
    let wrong = rig.login(&[&oath::wrong_totp(SECRET, T)]);
    assert_eq!(wrong.code, code::PAM_AUTH_ERR, "{wrong}");
    let ok = rig.login(&[&code_now()]);
    assert_eq!(ok.code, code::PAM_SUCCESS, "{ok}");
    let replay = rig.login(&[&code_now()]);
    assert_eq!(replay.code, code::PAM_AUTH_ERR, "{replay}");
}

/// What the old example did (pam_totp with nullok alone in the stack):
/// libpam refuses a user without a file, which is why the rollout example
/// has its pam_permit line.
#[test]
fn nullok_alone_in_the_stack_refuses_the_unenrolled() {
    let mut rig = Rig::new("pam.d-sshd-rollout", false);
    assert_eq!(rig.stack.after.len(), 1, "the pam_permit line");
    rig.stack.after.clear();
    let refused = rig.login(&[]);
    assert_eq!(refused.code, code::PAM_PERM_DENIED, "{refused}");
}

#[test]
fn sudo_example_asks_password_then_code() {
    let rig = Rig::new("pam.d-sudo", true);
    let ok = rig.login(&[PASSWORD, &code_now()]);
    assert_eq!(ok.code, code::PAM_SUCCESS, "{ok}");
    assert_eq!(
        prompts(&ok),
        ["Password: ", "Verification code: "],
        "password, then code: {ok}"
    );
    let wrong_code = rig.login(&[PASSWORD, &oath::wrong_totp(SECRET, T)]);
    assert_eq!(wrong_code.code, code::PAM_AUTH_ERR, "{wrong_code}");
    let wrong_password = rig.login(&["wrong", &code_now()]);
    assert_ne!(wrong_password.code, code::PAM_SUCCESS, "{wrong_password}");

    let unenrolled = Rig::new("pam.d-sudo", false);
    let refused = unenrolled.login(&[PASSWORD, "123456"]);
    assert_eq!(refused.code, code::PAM_AUTH_ERR, "{refused}");
}

#[test]
fn console_login_example_password_then_code_and_nullok_for_the_unenrolled() {
    let rig = Rig::new("pam.d-login", true);
    let ok = rig.login(&[PASSWORD, &code_now()]);
    assert_eq!(ok.code, code::PAM_SUCCESS, "{ok}");
    assert_eq!(prompts(&ok), ["Password: ", "Verification code: "], "{ok}");
    let wrong_code = rig.login(&[PASSWORD, &oath::wrong_totp(SECRET, T)]);
    assert_eq!(wrong_code.code, code::PAM_AUTH_ERR, "{wrong_code}");

    let unenrolled = Rig::new("pam.d-login", false);
    let ok = unenrolled.login(&[PASSWORD]);
    assert_eq!(ok.code, code::PAM_SUCCESS, "{ok}");
    assert_eq!(prompts(&ok), ["Password: "], "no code asked: {ok}");
    let wrong_password = unenrolled.login(&["wrong"]);
    assert_ne!(wrong_password.code, code::PAM_SUCCESS, "{wrong_password}");
}

// --- real sshd ---------------------------------------------------------------

/// Ports of this test file: 24500-24519.
const SSHD_PORT: u16 = 24_500;

struct SshRig {
    dir: PathBuf,
    service: String,
    users: Vec<String>,
    sshd: Option<Child>,
    port: u16,
}

impl Drop for SshRig {
    fn drop(&mut self) {
        if let Some(sshd) = self.sshd.take() {
            ops::stop(sshd);
        }
        for user in &self.users {
            let _ = Command::new("userdel").args(["-r", "-f", user]).output();
        }
        let _ = fs::remove_file(format!("/etc/pam.d/{}", self.service));
        let _ = fs::remove_dir_all(&self.dir);
    }
}

impl SshRig {
    fn home(user: &str) -> PathBuf {
        PathBuf::from(format!("/home/{user}"))
    }

    fn add_user(&mut self, user: &str, enrolled: bool) {
        let _ = Command::new("userdel").args(["-r", "-f", user]).output();
        run(Command::new("useradd").args(["-m", "-s", "/bin/sh", user]));
        self.users.push(user.to_owned());
        // Keys and codes only, no password.
        run(Command::new("usermod").args(["-p", "*", user]));
        let key = self.dir.join(format!("{user}_key"));
        run(Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key));
        let ssh = Self::home(user).join(".ssh");
        fs::create_dir_all(&ssh).unwrap();
        fs::copy(key.with_extension("pub"), ssh.join("authorized_keys")).unwrap();
        fs::set_permissions(&ssh, fs::Permissions::from_mode(0o700)).unwrap();
        if enrolled {
            let file = Self::home(user).join(".google_authenticator");
            fs::write(
                &file,
                format!("{SECRET}\n\" TOTP_AUTH\n\" DISALLOW_REUSE\n"),
            )
            .unwrap();
            fs::set_permissions(&file, fs::Permissions::from_mode(0o400)).unwrap();
        }
        run(Command::new("chown")
            .args(["-R", &format!("{user}:{user}")])
            .arg(Self::home(user)));
    }

    /// The example as /etc/pam.d/<service>: its lines as they are, with
    /// pam_totp by absolute path (the build under test), then Debian's
    /// account and session essentials.
    fn use_pam_example(&self, name: &str) {
        let module = pam_totp_tests::system::our_module();
        let text = example(name).replace("pam_totp.so", &module.display().to_string());
        fs::write(
            format!("/etc/pam.d/{}", self.service),
            format!("{text}\naccount required pam_unix.so\nsession required pam_permit.so\n"),
        )
        .unwrap();
    }

    /// Debian's stock sshd_config with its Include pointed at a private
    /// sshd_config.d that holds the drop-in, after the lines that make this
    /// server private (loopback, own port, key, pid file, users).
    fn config(&self, drop_in_as_include: bool) -> PathBuf {
        let stock = fs::read_to_string("/usr/share/openssh/sshd_config")
            .expect("Debian's stock sshd_config (openssh-server)");
        let conf_d = self.dir.join("sshd_config.d");
        fs::create_dir_all(&conf_d).unwrap();
        let drop_in = example("sshd_config.d-pam-totp.conf");
        let body = if drop_in_as_include {
            fs::write(conf_d.join("pam-totp.conf"), &drop_in).unwrap();
            stock.replace(
                "Include /etc/ssh/sshd_config.d/*.conf",
                &format!("Include {}/*.conf", conf_d.display()),
            )
        } else {
            // What the README used to say: the lines appended at the end.
            let without_include = stock.replace("Include /etc/ssh/sshd_config.d/*.conf", "");
            format!("{without_include}\n{drop_in}")
        };
        let config = self.dir.join(if drop_in_as_include {
            "sshd_config"
        } else {
            "sshd_config.appended"
        });
        fs::write(
            &config,
            format!(
                "ListenAddress 127.0.0.1\nPort {}\nHostKey {}\nPidFile {}/sshd.pid\n\
                 PermitRootLogin no\nAllowUsers {}\nLogLevel VERBOSE\n{body}",
                self.port,
                self.dir.join("host_key").display(),
                self.dir.display(),
                self.users.join(" ")
            ),
        )
        .unwrap();
        config
    }

    fn effective(&self, config: &Path) -> std::process::Output {
        Command::new("/usr/sbin/sshd")
            .arg("-T")
            .arg("-f")
            .arg(config)
            .output()
            .unwrap()
    }

    fn start(&mut self, config: &Path) {
        let program = self.dir.join(&self.service);
        std::os::unix::fs::symlink("/usr/sbin/sshd", &program).unwrap();
        let log = fs::File::create(self.dir.join("sshd.log")).unwrap();
        self.sshd = Some(
            Command::new(&program)
                .args(["-D", "-e", "-f"])
                .arg(config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("start sshd"),
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "sshd did not start:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.join("sshd.log")).unwrap_or_default()
    }

    /// Logs `user` in with their key and `answer` to each keyboard-interactive
    /// prompt; returns whether the command ran, and the prompts seen.
    fn login(&self, user: &str, answer: &str) -> (bool, Vec<String>) {
        ops::ssh_login(
            &self.dir,
            &self.dir.join(format!("{user}_key")),
            self.port,
            user,
            answer,
            "pam_totp-example-ok",
        )
    }
}

#[test]
#[ignore = "needs root: tests/run-all"]
fn sshd_examples_through_a_real_sshd_with_the_drop_in() {
    // Root: users, /etc/pam.d/<test service>, sshd.
    if !pam_totp_tests::require_root()
        || skip_unless(
            have("/usr/sbin/sshd") && have("ssh") && have("oathtool"),
            "needs openssh-server, openssh-client and oathtool",
        )
    {
        return;
    }
    ops::use_installed_module_name();
    let tag = std::process::id() % 10_000;
    let dir = std::env::temp_dir().join(format!("to_examples-sshd-{tag}"));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
    fs::create_dir_all("/run/sshd").unwrap();
    let mut rig = SshRig {
        dir,
        service: format!("to_sshd_examples_{tag}"),
        users: Vec::new(),
        sshd: None,
        port: SSHD_PORT,
    };
    let enrolled = format!("to_ex_enr{tag}");
    let newcomer = format!("to_ex_new{tag}");
    rig.add_user(&enrolled, true);
    rig.add_user(&newcomer, false);
    run(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(rig.dir.join("host_key")));

    // Appended to the stock file, KbdInteractiveAuthentication loses to the
    // stock "no" above it, and sshd refuses the whole configuration.
    let appended = rig.effective(&rig.config(false));
    assert!(
        !appended.status.success()
            && String::from_utf8_lossy(&appended.stderr).contains("Disabled method"),
        "appending to the stock sshd_config must fail as the drop-in's header says: {appended:?}"
    );
    // As a drop-in, the settings take effect.
    let config = rig.config(true);
    let effective = stdout(&run(Command::new("/usr/sbin/sshd")
        .arg("-T")
        .arg("-f")
        .arg(&config)));
    assert!(
        effective.contains("\nkbdinteractiveauthentication yes\n")
            && effective.contains("\nauthenticationmethods publickey,keyboard-interactive\n")
            && effective.contains("\nusepam yes\n"),
        "{effective}"
    );

    rig.use_pam_example("pam.d-sshd");
    rig.start(&config);
    let (ran, prompts) = rig.login(&enrolled, &oath::totp_now(SECRET));
    assert!(ran, "key + code: {prompts:?}\n{}", rig.log());
    assert_eq!(prompts.len(), 1, "{prompts:?}");
    assert!(prompts[0].ends_with("Verification code: "), "{prompts:?}");
    let (ran, _) = rig.login(&enrolled, &oath::wrong_totp(SECRET, oath::now()));
    assert!(!ran, "a wrong code is refused");
    let (ran, _) = rig.login(&newcomer, "123456");
    assert!(
        !ran,
        "without nullok, a user who has not enrolled is refused"
    );

    // The rollout phase: sshd starts PAM afresh for each connection.
    rig.use_pam_example("pam.d-sshd-rollout");
    let (ran, prompts) = rig.login(&newcomer, "");
    assert!(ran, "key alone while enrolling: {prompts:?}\n{}", rig.log());
    assert!(prompts.is_empty(), "no code asked: {prompts:?}");
    let (ran, _) = rig.login(&enrolled, &oath::wrong_totp(SECRET, oath::now()));
    assert!(!ran, "an enrolled user's wrong code is still refused");
}
