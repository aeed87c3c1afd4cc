//! Faults while logging in, through real libpam: the disk full, the home
//! read-only, the process killed between writing the new file and renaming
//! it, the file swapped for a symlink or a FIFO after it was checked, the
//! file truncated. Each must refuse the login with a clear log line, keep
//! the old file, and leave nothing behind that blocks the next login.
//!
//! Needs root (mounts); tests/run-all runs the suite as root.

use pam_totp_tests::{oath, Module, Outcome, Scenario};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const SECRET: &str = "JBSWY3DPEHPK3PXP";

fn totp_now() -> String {
    oath::totp_now(SECRET)
}

/// A scenario for `module` whose secret file (mode 0400) holds `file()`.
fn rig(module: Module) -> Scenario {
    let scenario = Scenario::new(module);
    scenario.write_file_with_mode(&scenario.secret_path(), file().as_bytes(), 0o400);
    scenario
}

/// pam_totp with its secret file (mode 0400, holding `contents`) on a
/// small tmpfs of its own, and `options`. Bind as `let (scenario, fs)`:
/// the tmpfs is then unmounted before the scenario's directory is removed.
fn on_tmpfs(contents: &str, options: &[&str]) -> (Scenario, Tmpfs) {
    let scenario = Scenario::new(Module::Ours);
    let fs = Tmpfs::mount(scenario.dir().join("home"), "64k");
    let path = fs.0.join("secret");
    let mut all = vec![format!("secret={}", path.display())];
    all.extend(options.iter().map(|o| (*o).to_owned()));
    let scenario = scenario.options(all);
    scenario.write_file_with_mode(&path, contents.as_bytes(), 0o400);
    (scenario, fs)
}

fn contents(fs: &Tmpfs) -> String {
    fs::read_to_string(fs.0.join("secret")).unwrap()
}

fn logged(outcome: &Outcome, fragment: &str) -> bool {
    outcome.logs.iter().any(|l| l.message.contains(fragment))
}

const REUSE: &str = "\" TOTP_AUTH\n\" DISALLOW_REUSE\n12345678\n";

fn file() -> String {
    format!("{SECRET}\n{REUSE}")
}

fn require_root() {
    assert_eq!(
        pam_totp_tests::system::current_user().0,
        0,
        "the fault tests need root (mounts): run tests/run-all as root"
    );
}

/// A small tmpfs, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: PathBuf, size: &str) -> Tmpfs {
        fs::create_dir_all(&at).unwrap();
        let status = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(&at)
            .status()
            .unwrap();
        assert!(status.success(), "mount tmpfs");
        Tmpfs(at)
    }

    fn remount_read_only(&self) {
        let status = Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(status.success(), "remount read-only");
    }

    /// Fills the file system up with a file of zeros.
    fn fill(&self) -> PathBuf {
        let filler = self.0.join("filler");
        let _ = Command::new("dd")
            .args(["if=/dev/zero", "bs=4096"])
            .arg(format!("of={}", filler.display()))
            .output()
            .unwrap();
        filler
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn disk_full_refuses_the_login_and_keeps_the_file() {
    require_root();
    let (scenario, fs) = on_tmpfs(&file(), &[]);
    let filler = fs.fill();
    let before = contents(&fs);
    let code = totp_now();

    let login = scenario.authenticate(&code);
    assert!(
        !login.success(),
        "a code that cannot be recorded must not log in"
    );
    assert!(logged(&login, "could not be updated"), "{login}");
    assert!(logged(&login, "No space left on device"), "{login}");
    assert_eq!(contents(&fs), before, "old file intact");
    assert_eq!(
        entries(&fs.0),
        vec!["filler", "secret", "secret.pam_totp-lock"],
        "no temporary file left (the lock file stays)"
    );

    // Space again: the same code (never recorded) now works, once.
    std::fs::remove_file(filler).unwrap();
    assert!(scenario.authenticate(&code).success());
    assert!(!scenario.authenticate(&code).success());
}

#[test]
fn read_only_home_refuses_logins_that_must_record_something() {
    require_root();
    let (scenario, fs) = on_tmpfs(&file(), &["allow_readonly"]);
    fs.remount_read_only();
    let before = contents(&fs);
    let login = scenario.authenticate(&totp_now());
    assert!(
        !login.success(),
        "DISALLOW_REUSE cannot be recorded: refused even with allow_readonly"
    );
    assert!(logged(&login, "Read-only file system"), "{login}");
    let scratch = scenario.authenticate("12345678");
    assert!(
        !scratch.success(),
        "a scratch code that cannot be removed must not work"
    );
    assert_eq!(contents(&fs), before);
}

#[test]
fn read_only_home_with_allow_readonly_and_nothing_to_record() {
    require_root();
    // No reuse protection, no rate limit: a login has nothing protective to save.
    let (scenario, fs) = on_tmpfs(&format!("{SECRET}\n\" TOTP_AUTH\n"), &["allow_readonly"]);
    fs.remount_read_only();
    assert!(scenario.authenticate(&totp_now()).success());
}

/// An LD_PRELOAD shim that kills the process (SIGKILL) when it tries to
/// rename anything: the moment between writing the new file and putting it
/// in place.
fn kill_on_rename_shim(dir: &Path) -> PathBuf {
    let source = dir.join("kill_on_rename.c");
    let shim = dir.join("kill_on_rename.so");
    fs::write(
        &source,
        "#define _GNU_SOURCE\n#include <signal.h>\n#include <unistd.h>\n\
         static int die(void) { kill(getpid(), SIGKILL); return -1; }\n\
         int rename(const char *a, const char *b) { (void)a; (void)b; return die(); }\n\
         int renameat(int a, const char *b, int c, const char *d) { (void)a; (void)b; (void)c; (void)d; return die(); }\n\
         int renameat2(int a, const char *b, int c, const char *d, unsigned e) { (void)a; (void)b; (void)c; (void)d; (void)e; return die(); }\n",
    )
    .unwrap();
    let status = Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&shim)
        .arg(&source)
        .status()
        .expect("a C compiler (build-essential) is installed");
    assert!(status.success());
    shim
}

#[test]
fn killed_between_writing_and_renaming_leaves_the_old_file_and_blocks_nothing() {
    for module in [Module::Ours, Module::Google] {
        let rig = rig(module);
        let shim = kill_on_rename_shim(rig.dir());
        let before = rig.read_secret();
        let code = totp_now();
        let killed = rig.login().answer(code.as_str()).preload(shim).try_run();
        assert!(
            killed.as_ref().map_or(true, |o| !o.success()),
            "a killed login does not succeed"
        );
        // The killed process could not remove its pam_wrapper directory.
        pam_totp_tests::system::remove_stale_pam_wrapper_dirs();
        let leftovers: Vec<String> = entries(rig.dir())
            .into_iter()
            .filter(|n| n.starts_with("secret") && n != "secret" && !n.ends_with(".pam_totp-lock"))
            .collect();
        let after_kill = rig.read_secret();
        let next = rig.authenticate(&code);
        let file_after = rig.read_secret();
        match module {
            Module::Ours => {
                assert_eq!(after_kill, before, "old file intact");
                assert_eq!(leftovers, vec!["secret.pam_totp-tmp"], "killed after writing the temporary file");
                assert!(next.success(), "the next login is not blocked: {next}");
                assert!(!entries(rig.dir()).contains(&"secret.pam_totp-tmp".to_owned()), "stale file cleared");
                assert!(file_after.contains("DISALLOW_REUSE "), "the next login recorded its code");
            }
            Module::Google => eprintln!(
                "Google's module after a kill before rename: leftovers {leftovers:?}, next login {}",
                if next.success() { "succeeded" } else { "FAILED" }
            ),
        }
    }
}

#[test]
fn a_file_swapped_for_a_symlink_or_fifo_after_the_check_is_refused() {
    for swap in ["symlink", "fifo"] {
        let rig = rig(Module::Ours);
        // The attacker's file: a valid secret file they control.
        let elsewhere = rig.dir().join("elsewhere");
        fs::write(&elsewhere, file()).unwrap();
        let code = totp_now();
        let secret = rig.secret_path();
        let login = rig.login().answer(code.as_str()).run_paused(|| {
            // The module has checked the file (the prompt is up); now swap it.
            fs::remove_file(&secret).unwrap();
            match swap {
                "symlink" => std::os::unix::fs::symlink(&elsewhere, &secret).unwrap(),
                _ => {
                    let status = Command::new("mkfifo").arg(&secret).status().unwrap();
                    assert!(status.success());
                }
            }
        });
        assert!(!login.success(), "{swap}: swapped file must not be used");
        let expected = if swap == "symlink" {
            "symbolic link"
        } else {
            "not a regular file"
        };
        assert!(logged(&login, expected), "{swap}: {login}");
        assert_eq!(
            fs::read_to_string(&elsewhere).unwrap(),
            file(),
            "target untouched"
        );
    }
}

#[test]
fn a_truncated_file_fails_closed_and_is_left_alone() {
    for module in [Module::Ours, Module::Google] {
        let rig = rig(module);
        rig.write_file_with_mode(&rig.secret_path(), b"", 0o400);
        let login = rig.authenticate(&totp_now());
        match module {
            Module::Ours => {
                assert!(!login.success());
                assert!(
                    logged(&login, "secret file is corrupt: file is empty"),
                    "{login}"
                );
                assert_eq!(rig.read_secret(), "");
            }
            Module::Google => eprintln!(
                "Google's module with an empty file: {}",
                if login.success() {
                    "succeeded"
                } else {
                    "refused"
                }
            ),
        }
    }
}

/// Issue 11, point 14: when the state cannot be written because the disk
/// is full, Google's module tells the user (PAM_ERROR_MSG) besides logging;
/// pam_totp shows the same message.
#[test]
fn point_14_a_full_disk_is_shown_to_the_user_like_googles_module() {
    require_root();
    let holder = Scenario::new(Module::Ours);
    let fs = Tmpfs::mount(holder.dir().join("home"), "64k");
    let on_tmpfs = |module: Module, name: &str| {
        let path = fs.0.join(name);
        let scenario = Scenario::new(module).options([format!("secret={}", path.display())]);
        scenario.write_file_with_mode(&path, file().as_bytes(), 0o600);
        scenario
    };
    let pair = pam_totp_tests::compare::Pair {
        ours: on_tmpfs(Module::Ours, "ours"),
        google: on_tmpfs(Module::Google, "google"),
    };
    fs.fill();
    let at = pam_totp_tests::oath::now();
    let both =
        pair.login(&pam_totp_tests::compare::Attempt::at(at).answer(oath::totp_at(SECRET, at)));
    assert!(!both.ours_outcome.success(), "{both}");
    assert_eq!(both.ours.messages, both.google.messages, "{both}");
    assert!(
        both.ours
            .messages
            .iter()
            .any(|(_, text)| text == "Error \"No space left on device\" while writing config"),
        "{both}"
    );
}

/// The lock protocol (a lock file beside the secret file) on tmpfs, as on
/// the ext4/overlay of the other race tests: 8 logins race with one code,
/// exactly one gets in.
#[test]
fn one_code_is_accepted_once_among_racing_logins_on_tmpfs() {
    require_root();
    let (scenario, fs) = on_tmpfs(&file(), &[]);
    let code = totp_now();
    let outcomes = scenario.login().race(&vec![code; 8]);
    let logs: Vec<String> = outcomes.iter().map(Outcome::log_text).collect();
    assert_eq!(
        outcomes.iter().filter(|o| o.success()).count(),
        1,
        "exactly one login: {logs:#?}"
    );
    assert_eq!(entries(&fs.0), vec!["secret", "secret.pam_totp-lock"]);
}
