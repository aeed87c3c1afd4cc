//! Shared by the operations tests (examples, fail2ban, pre-flight check,
//! package removal) and the sshd end-to-end test: skipping loudly, running
//! tools, logging in through ssh, the repository's files.
#![allow(dead_code)] // each test file uses a different part

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The repository's top directory.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the repository")
        .to_path_buf()
}

/// Skips the calling test loudly (returns true) when `missing` says what is
/// missing; under PAM_TOTP_REQUIRE_ALL=1 it fails instead
/// ([`pam_totp_tests::skip_or_fail`]).
pub fn skip_unless(available: bool, missing: &str) -> bool {
    !pam_totp_tests::prerequisite(available, missing)
}

/// Whether `program` is on PATH (or an absolute path that exists).
pub fn have(program: &str) -> bool {
    if program.starts_with('/') {
        return Path::new(program).exists();
    }
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// Runs `cmd`, panicking with its output unless it succeeds.
pub fn run(cmd: &mut Command) -> Output {
    let output = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        output.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Logs `user` in to the sshd on 127.0.0.1:`port` with the private key
/// `key`, answering each keyboard-interactive prompt with `answer`, and
/// runs `echo MARKER`. ssh asks an SSH_ASKPASS script (written in `dir`,
/// with the files it uses) for each prompt, with the prompt as its
/// argument. Returns whether the command ran, and the prompts seen.
pub fn ssh_login(
    dir: &Path,
    key: &Path,
    port: u16,
    user: &str,
    answer: &str,
    marker: &str,
) -> (bool, Vec<String>) {
    use std::os::unix::fs::PermissionsExt;
    let answer_file = dir.join("answer");
    let prompts_file = dir.join("prompts");
    std::fs::write(&answer_file, answer).unwrap();
    let _ = std::fs::remove_file(&prompts_file);
    let askpass = dir.join("askpass");
    std::fs::write(
        &askpass,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$1\" >> '{}'\ncat '{}'\n",
            prompts_file.display(),
            answer_file.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&askpass, std::fs::Permissions::from_mode(0o700)).unwrap();
    let output = Command::new("ssh")
        .args(["-F", "/dev/null", "-i"])
        .arg(key)
        .args(["-p", &port.to_string()])
        .args(["-o", "StrictHostKeyChecking=no"])
        .args(["-o", "UserKnownHostsFile=/dev/null"])
        .args([
            "-o",
            "PreferredAuthentications=publickey,keyboard-interactive",
        ])
        .args(["-o", "NumberOfPasswordPrompts=1"])
        .args(["-o", "ConnectTimeout=20"])
        .arg(format!("{user}@127.0.0.1"))
        .arg(format!("echo {marker}"))
        .env("SSH_ASKPASS", &askpass)
        .env("SSH_ASKPASS_REQUIRE", "force")
        .env("DISPLAY", ":0")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let ran = output.status.success() && stdout(&output).contains(marker);
    let prompts = std::fs::read_to_string(&prompts_file)
        .map(|t| t.lines().map(str::to_owned).collect())
        .unwrap_or_default();
    (ran, prompts)
}

/// Stops a server started for a test: SIGTERM lets it close its
/// connections; SIGKILL only if it has not ended within 10 s.
pub fn stop(mut server: std::process::Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while matches!(server.try_wait(), Ok(None)) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = server.kill();
    let _ = server.wait();
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The local time as syslog writes it (`Dec  2 11:30:00`), for log lines
/// that fail2ban must see as recent.
pub fn syslog_now() -> String {
    let out = run(Command::new("date").arg("+%b %e %H:%M:%S"));
    stdout(&out).trim_end().to_owned()
}

/// Makes the harness load our module under its installed file name,
/// `pam_totp.so`, so that libpam names it in log lines as on a real system
/// (`pam_totp(sshd:auth): ...`; the workspace's `libpam_totp.so` would be
/// logged as `libpam_totp(...)`). Copies the build under test once per
/// test process and points `PAM_TOTP_MODULE` at the copy.
pub fn use_installed_module_name() {
    static COPY: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    COPY.get_or_init(|| {
        let built = pam_totp_tests::system::our_module();
        if built.file_name().is_some_and(|n| n == "pam_totp.so") {
            return built;
        }
        let dir = std::env::temp_dir().join(format!("to_module-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let copy = dir.join("pam_totp.so");
        std::fs::copy(&built, &copy).unwrap();
        // Set once, before any scenario of this process is created, and
        // never changed again.
        std::env::set_var("PAM_TOTP_MODULE", &copy);
        copy
    });
}
