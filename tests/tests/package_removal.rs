//! Removing the package while a PAM file still names the module warns, on
//! the terminal and in the system log, on `apt remove` and on `apt purge`,
//! and never stops apt. Real apt, real dpkg, the built .deb.
//!
//! This installs and removes the package system-wide, so it runs only from
//! tests/run-all (which has built and installed the .deb, and runs it after
//! the tests that use the installed package). It leaves the package as it
//! found it.

mod ops;

use ops::repo;
use std::fs;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

const PAM_FILE: &str = "/etc/pam.d/to_removal_test";

fn apt(args: &[&str]) -> Output {
    let output = Command::new("apt-get")
        .args(["-y", "-o", "Dpkg::Use-Pty=0"])
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output()
        .unwrap_or_else(|e| panic!("apt-get: {e}"));
    assert!(
        output.status.success(),
        "apt-get {args:?} must never be stopped by the package: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr)
}

fn installed() -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", "pam-totp"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout) == "install ok installed")
}

fn newest_deb() -> PathBuf {
    let dir = repo().join("target/debian");
    let mut debs: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}: run packaging/build-deb.sh", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "deb"))
        .collect();
    debs.sort_by_key(|p| fs::metadata(p).and_then(|m| m.modified()).ok());
    debs.pop().expect("a built .deb in target/debian")
}

/// Catches what `logger` sends while the test runs: a /dev/log of its own
/// when the machine has none (no syslog daemon on these machines).
struct SyslogCatcher {
    socket: Option<UnixDatagram>,
}

impl SyslogCatcher {
    fn new() -> SyslogCatcher {
        let path = Path::new("/dev/log");
        if path.exists() {
            eprintln!("/dev/log exists: the system log is not checked here");
            return SyslogCatcher { socket: None };
        }
        let socket = UnixDatagram::bind(path).expect("bind /dev/log");
        socket
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        SyslogCatcher {
            socket: Some(socket),
        }
    }

    /// Messages received so far.
    fn drain(&self) -> Vec<String> {
        let mut messages = Vec::new();
        if let Some(socket) = &self.socket {
            let mut buf = vec![0u8; 8192];
            while let Ok(n) = socket.recv(&mut buf) {
                messages.push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
        }
        messages
    }
}

impl Drop for SyslogCatcher {
    fn drop(&mut self) {
        if self.socket.take().is_some() {
            let _ = fs::remove_file("/dev/log");
        }
    }
}

/// Puts things back: the test PAM file removed, the package installed again
/// if it was.
struct Restore {
    deb: PathBuf,
    was_installed: bool,
}

impl Drop for Restore {
    fn drop(&mut self) {
        let _ = fs::remove_file(PAM_FILE);
        if self.was_installed {
            let _ = Command::new("apt-get")
                .args(["-y", "-qq", "install"])
                .arg(&self.deb)
                .env("DEBIAN_FRONTEND", "noninteractive")
                .output();
        } else {
            let _ = Command::new("apt-get")
                .args(["-y", "-qq", "purge", "pam-totp"])
                .output();
        }
    }
}

fn assert_warns(output: &str, what: &str) {
    assert!(
        output.contains("pam-totp: WARNING: pam_totp.so is removed")
            && output.contains(&format!("{PAM_FILE}:2:auth required pam_totp.so"))
            && output.contains("Module is unknown")
            && output.contains("reinstall pam-totp"),
        "{what} must warn, naming the file, the line and the fix:\n{output}"
    );
}

#[test]
#[ignore = "needs root: tests/run-all"]
fn removal_and_purge_warn_while_a_pam_file_still_names_the_module() {
    if !pam_totp_tests::require_root() {
        return;
    }
    let deb = newest_deb();
    let _restore = Restore {
        deb: deb.clone(),
        was_installed: installed(),
    };
    let deb_arg = deb.display().to_string();
    apt(&["install", &deb_arg]);
    fs::write(
        PAM_FILE,
        "# pam_totp removal test; removed by the test\nauth required pam_totp.so\n",
    )
    .unwrap();
    let catcher = SyslogCatcher::new();

    let removed = text(&apt(&["remove", "pam-totp"]));
    assert_warns(&removed, "apt remove");
    if catcher.socket.is_some() {
        let logged = catcher.drain();
        assert!(
            logged
                .iter()
                .any(|m| m.contains("pam-totp") && m.contains(PAM_FILE)),
            "logged through syslog: {logged:?}"
        );
    }

    let purged = text(&apt(&["purge", "pam-totp"]));
    assert_warns(&purged, "apt purge");

    // Nothing names the module: nothing to warn about.
    fs::remove_file(PAM_FILE).unwrap();
    apt(&["install", &deb_arg]);
    let quiet = text(&apt(&["purge", "pam-totp"]));
    assert!(!quiet.contains("WARNING"), "{quiet}");
}
