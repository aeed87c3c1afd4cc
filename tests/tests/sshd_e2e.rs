//! End to end: a real OpenSSH server on 127.0.0.1 asks for the second factor
//! through the installed pam_totp.so, and a real SSH client answers.
//!
//! Needs root and the package installed (tests/run-all builds and installs
//! the .deb first), so it is ignored by a plain `cargo test`.
//!
//! Nothing of the machine's own SSH set-up is touched: the server runs under
//! its own program name, so it reads its own PAM service file
//! (/etc/pam.d/<name>, created and removed here) and its own config, host key
//! and port. The test user is created and removed here too.

mod ops;

use ops::run;
use std::fs;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SECURITY_DIR: &str = "/usr/lib/x86_64-linux-gnu/security";

/// Everything the test set up, torn down on drop even when an assertion fails.
struct Rig {
    dir: PathBuf,
    /// Removes `dir` on drop.
    _temp: tempfile::TempDir,
    user: String,
    service: String,
    sshd: Option<Child>,
    port: u16,
}

impl Drop for Rig {
    fn drop(&mut self) {
        if let Some(sshd) = self.sshd.take() {
            ops::stop(sshd);
        }
        let _ = Command::new("userdel")
            .args(["-r", "-f", &self.user])
            .output();
        let _ = fs::remove_file(format!("/etc/pam.d/{}", self.service));
    }
}

impl Rig {
    fn new() -> Rig {
        assert!(
            Path::new(SECURITY_DIR).join("pam_totp.so").exists(),
            "pam_totp.so is not installed in {SECURITY_DIR}: tests/run-all installs the .deb first"
        );
        let tag = std::process::id() % 100_000;
        let temp = tempfile::Builder::new()
            .prefix("pam_totp-e2e-")
            .tempdir()
            .unwrap();
        let dir = temp.path().to_path_buf();
        // sshd's StrictModes-like checks want the config and key dirs private.
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        Rig {
            dir,
            _temp: temp,
            user: format!("totpe2e{tag}"),
            service: format!("sshd-totp-e2e-{tag}"),
            sshd: None,
            port: 0,
        }
    }

    fn home(&self) -> PathBuf {
        PathBuf::from(format!("/home/{}", self.user))
    }

    fn create_user(&self) {
        run(Command::new("useradd").args(["-m", "-s", "/bin/sh", &self.user]));
        // A usable but passwordless account: keys and codes only.
        run(Command::new("usermod").args(["-p", "*", &self.user]));
        let key = self.dir.join("id_ed25519");
        run(Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key));
        let ssh_dir = self.home().join(".ssh");
        fs::create_dir_all(&ssh_dir).unwrap();
        fs::copy(key.with_extension("pub"), ssh_dir.join("authorized_keys")).unwrap();
        run(Command::new("chown")
            .args(["-R", &format!("{0}:{0}", self.user)])
            .arg(&ssh_dir));
        fs::set_permissions(&ssh_dir, fs::Permissions::from_mode(0o700)).unwrap();
    }

    /// Enrolls the user with the installed totp-enroll, as an admin would,
    /// and returns the secret read back from the file.
    fn enroll(&self) -> String {
        run(Command::new("totp-enroll").args([
            "--user",
            &self.user,
            "-t",
            "-d",
            "--unattended",
            "-r",
            "10",
            "-R",
            "30",
            "-w",
            "3",
            "-e",
            "5",
            "-Q",
            "NONE",
            "-q",
        ]));
        let file = self.home().join(".google_authenticator");
        let meta = fs::metadata(&file).unwrap();
        assert_eq!(
            meta.permissions().mode() & 0o777,
            0o400,
            "enrolled file mode"
        );
        let text = fs::read_to_string(&file).unwrap();
        text.lines().next().unwrap().to_owned()
    }

    fn start_sshd(&mut self) {
        fs::write(
            format!("/etc/pam.d/{}", self.service),
            "# pam_totp end-to-end test; removed by the test\n\
             auth required pam_totp.so\n\
             account required pam_unix.so\n\
             session required pam_permit.so\n",
        )
        .unwrap();
        let host_key = self.dir.join("host_key");
        run(Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&host_key));
        fs::create_dir_all("/run/sshd").unwrap();
        // A free port: bind, note it, release it for sshd.
        self.port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = self.dir.join("sshd_config");
        fs::write(
            &config,
            format!(
                "ListenAddress 127.0.0.1\n\
                 Port {port}\n\
                 HostKey {key}\n\
                 PidFile {dir}/sshd.pid\n\
                 UsePAM yes\n\
                 KbdInteractiveAuthentication yes\n\
                 PasswordAuthentication no\n\
                 PubkeyAuthentication yes\n\
                 AuthenticationMethods publickey,keyboard-interactive\n\
                 PermitRootLogin no\n\
                 AllowUsers {user}\n\
                 MaxAuthTries 6\n\
                 LogLevel VERBOSE\n",
                port = self.port,
                key = host_key.display(),
                dir = self.dir.display(),
                user = self.user
            ),
        )
        .unwrap();
        // The program name is the PAM service name.
        let program = self.dir.join(&self.service);
        std::os::unix::fs::symlink("/usr/sbin/sshd", &program).unwrap();
        let log = fs::File::create(self.dir.join("sshd.log")).unwrap();
        let child = Command::new(&program)
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start sshd");
        self.sshd = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "sshd did not start:\n{}",
                self.sshd_log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn sshd_log(&self) -> String {
        fs::read_to_string(self.dir.join("sshd.log")).unwrap_or_default()
    }

    /// Logs in with the key and `answer` to the keyboard-interactive prompt;
    /// returns whether the remote command ran, and the prompts seen.
    fn login(&self, answer: &str) -> (bool, Vec<String>) {
        ops::ssh_login(
            &self.dir,
            &self.dir.join("id_ed25519"),
            self.port,
            &self.user,
            answer,
            "pam_totp-e2e-ok",
        )
    }
}

fn totp(secret: &str) -> String {
    let out = run(Command::new("oathtool").args(["--totp", "-b", secret]));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
#[ignore = "needs root: tests/run-all (and the installed .deb)"]
fn ssh_login_asks_for_a_code_and_accepts_each_code_once() {
    if !pam_totp_tests::require_root() {
        return; // creates a user, starts sshd, writes /etc/pam.d
    }
    let mut rig = Rig::new();
    rig.create_user();
    let secret = rig.enroll();
    rig.start_sshd();

    let code = totp(&secret);
    let (ran, prompts) = rig.login(&code);
    assert!(ran, "right code must log in\n{}", rig.sshd_log());
    // The client puts "(user@host) " before the server's prompt.
    assert_eq!(prompts.len(), 1, "one prompt: {prompts:?}");
    assert!(prompts[0].ends_with(") Verification code: "), "{prompts:?}");

    let wrong = format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000);
    let (ran, _) = rig.login(&wrong);
    assert!(!ran, "wrong code must be denied");

    let (ran, _) = rig.login(&code);
    assert!(!ran, "replayed code must be denied (DISALLOW_REUSE)");

    let file = fs::read_to_string(rig.home().join(".google_authenticator")).unwrap();
    let scratch = file
        .lines()
        .find(|l| l.len() == 8 && l.bytes().all(|b| b.is_ascii_digit()))
        .expect("a scratch code")
        .to_owned();
    let (ran, _) = rig.login(&scratch);
    assert!(ran, "scratch code must log in once\n{}", rig.sshd_log());
    let (ran, _) = rig.login(&scratch);
    assert!(!ran, "scratch code must not work twice");
    let file = fs::read_to_string(rig.home().join(".google_authenticator")).unwrap();
    assert!(
        !file.lines().any(|l| l == scratch),
        "used scratch code removed"
    );
}
