//! Hardening findings (issue 14), each through real libpam: parent
//! directories an attacker controls, locking on network file systems,
//! supplementary groups, canonical user names, timing and prompts that tell
//! who is enrolled, and file values out of range.
//!
//! Most need root (other owners, mounts, group changes). Without root they
//! are skipped with a message, unless `PAM_TOTP_REQUIRE_ALL=1` (set by CI)
//! makes a skip a failure.

use pam_totp_tests::{code, oath, Module, Scenario};
use std::fs;
use std::os::unix::fs::{lchown, symlink, PermissionsExt};
use std::path::Path;

const SECRET: &str = "JBSWY3DPEHPK3PXP";
/// 2001-09-09 01:47:00 UTC.
const T: u64 = 1_000_000_020;
/// A uid with no account: the owner of what "a user" controls. In this
/// test's range (tk_, 24300-24399).
const USER_UID: u32 = 24_301;

fn secret_file_with_reuse() -> String {
    format!("{SECRET}\n\" TOTP_AUTH\n\" DISALLOW_REUSE\n")
}

fn write_mode(path: &Path, contents: &str, mode: u32) {
    fs::write(path, contents).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn mkdir_mode(path: &Path, mode: u32) {
    fs::create_dir_all(path).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// Finding 3. With `user=root` and a directory in `secret=` that a user
/// controls, the user swaps a directory on the way for a symlink to a
/// root-owned directory holding a file of the same name: the module must
/// not check, accept or rewrite that file. A symlink only root can change
/// is still followed.
#[test]
#[ignore = "needs root: tests/run-all"]
fn a_user_controlled_symlink_on_the_way_is_not_followed() {
    if !pam_totp_tests::require_root() {
        return;
    }
    let scenario = Scenario::new(Module::Ours)
        .options(Vec::<String>::new())
        .at(T);
    let dir = scenario.dir();
    // Root's own directory with a root-owned secret file.
    let root_dir = dir.join("root-owned");
    mkdir_mode(&root_dir, 0o755);
    let target = root_dir.join("secret");
    write_mode(&target, &secret_file_with_reuse(), 0o400);
    // The user's directory, in which the user made `sub` a symlink.
    let user_dir = dir.join("user-controlled");
    mkdir_mode(&user_dir, 0o755);
    lchown(&user_dir, Some(USER_UID), Some(USER_UID)).unwrap();
    symlink(&root_dir, user_dir.join("sub")).unwrap();
    lchown(user_dir.join("sub"), Some(USER_UID), Some(USER_UID)).unwrap();

    let attacked = format!("secret={}/sub/secret", user_dir.display());
    let outcome = scenario
        .login()
        .option(attacked.clone())
        .option("user=root")
        .answer(oath::totp_at(SECRET, T))
        .run();
    assert_eq!(outcome.code, code::PAM_AUTH_ERR, "{outcome}");
    assert!(
        outcome.log_text().contains("symbolic link"),
        "the log names the symlink: {outcome}"
    );
    assert_eq!(
        fs::read_to_string(&target).unwrap(),
        secret_file_with_reuse(),
        "the root-owned file was not rewritten"
    );

    // The same symlink made by root in a root-controlled directory is
    // trusted (e.g. /home -> /data/home).
    let root_link = dir.join("root-link");
    symlink(&root_dir, &root_link).unwrap();
    let outcome = scenario
        .login()
        .option(format!("secret={}/secret", root_link.display()))
        .option("user=root")
        .answer(oath::totp_at(SECRET, T))
        .run();
    assert_eq!(outcome.code, code::PAM_SUCCESS, "{outcome}");
}

/// Compiles a C LD_PRELOAD shim from `source` into `dir`.
fn build_shim(dir: &Path, name: &str, source: &str) -> std::path::PathBuf {
    let c = dir.join(format!("{name}.c"));
    let so = dir.join(format!("{name}.so"));
    fs::write(&c, source).unwrap();
    let status = std::process::Command::new("cc")
        .args(["-shared", "-fPIC", "-O1", "-o"])
        .arg(&so)
        .arg(&c)
        .arg("-ldl")
        .status()
        .expect("a C compiler (build-essential) is installed");
    assert!(status.success(), "building the {name} shim");
    so
}

/// LD_PRELOAD for a login of `scenario` with `shim` added after the
/// harness's own libraries.
fn preload_with(scenario: &Scenario, shim: &Path) -> String {
    let mut libs = vec![pam_totp_tests::system::pam_wrapper_lib()];
    if let pam_totp_tests::Clock::Frozen(_) = scenario.clock() {
        libs.push(pam_totp_tests::system::faketime_lib());
    }
    libs.push(pam_totp_tests::system::syslog_shim());
    libs.push(shim.to_path_buf());
    let libs: Vec<String> = libs.iter().map(|p| p.display().to_string()).collect();
    libs.join(" ")
}

/// A shim that stops the process at its first `flock` call, the moment
/// a login has checked the file and asks for the lock: it writes a byte to
/// the FIFO `$TK_PAUSE_READY` and waits for one on `$TK_PAUSE_GO`.
const PAUSE_AT_LOCK: &str = r#"
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>
static int paused;
int flock(int fd, int op) {
    static int (*real)(int, int);
    if (!real) real = (int (*)(int, int))dlsym(RTLD_NEXT, "flock");
    if (!paused) {
        paused = 1;
        const char *ready = getenv("TK_PAUSE_READY"), *go = getenv("TK_PAUSE_GO");
        char byte = 'p';
        int r = open(ready, O_WRONLY);
        if (r >= 0) { (void)!write(r, &byte, 1); close(r); }
        int g = open(go, O_RDONLY);
        if (g >= 0) { (void)!read(g, &byte, 1); close(g); }
    }
    return real(fd, op);
}
"#;

fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

/// Runs `login` with the pause shim; `meanwhile` runs while the login
/// waits at the lock. Panics if the login never got there.
fn while_waiting_for_the_lock(
    scenario: &Scenario,
    login: pam_totp_tests::Login<'_>,
    meanwhile: impl FnOnce(),
) -> pam_totp_tests::Outcome {
    let dir = scenario.dir();
    let shim = build_shim(dir, "pause_at_lock", PAUSE_AT_LOCK);
    let (ready, go) = (dir.join("pause-ready"), dir.join("pause-go"));
    mkfifo(&ready);
    mkfifo(&go);
    let login = login
        .env("LD_PRELOAD", preload_with(scenario, &shim))
        .env("TK_PAUSE_READY", &ready)
        .env("TK_PAUSE_GO", &go);
    std::thread::scope(|scope| {
        let running = scope.spawn(|| {
            // Unblocks the wait below if the login ends (or fails) without
            // pausing.
            let _unblock = WriteOnDrop(ready.clone());
            login.try_run()
        });
        let mut byte = [0u8; 1];
        {
            use std::io::Read;
            let mut r = fs::File::open(&ready).unwrap();
            r.read_exact(&mut byte).unwrap();
        }
        if &byte != b"p" {
            let outcome = running.join().unwrap();
            panic!("the login never asked for the lock: {outcome:?}");
        }
        meanwhile();
        {
            use std::io::Write;
            let mut g = fs::OpenOptions::new().write(true).open(&go).unwrap();
            g.write_all(b"g").unwrap();
        }
        running
            .join()
            .unwrap()
            .unwrap_or_else(|failure| panic!("{failure}"))
    })
}

/// Writes a byte to a FIFO when dropped.
struct WriteOnDrop(std::path::PathBuf);

impl Drop for WriteOnDrop {
    fn drop(&mut self) {
        use std::io::Write;
        // Read-write: never blocks, even with no reader left.
        if let Ok(mut fifo) = fs::OpenOptions::new().read(true).write(true).open(&self.0) {
            let _ = fifo.write_all(b"e");
        }
    }
}

/// Finding 6. A chmod or chown made while a login waited for the lock is
/// judged after the lock is held: neither undone by the rewrite nor
/// ignored.
#[test]
#[ignore = "needs root: tests/run-all"]
fn a_change_of_mode_or_owner_while_waiting_for_the_lock_is_judged() {
    if !pam_totp_tests::require_root() {
        return;
    }
    for change in ["chmod", "chown"] {
        let scenario = Scenario::new(Module::Ours).at(T);
        let secret = scenario.write_secret(&secret_file_with_reuse());
        let login = scenario.login().answer(oath::totp_at(SECRET, T));
        let outcome = while_waiting_for_the_lock(&scenario, login, || match change {
            "chmod" => fs::set_permissions(&secret, fs::Permissions::from_mode(0o644)).unwrap(),
            _ => std::os::unix::fs::chown(&secret, Some(USER_UID), None).unwrap(),
        });
        assert_eq!(outcome.code, code::PAM_AUTH_ERR, "{change}: {outcome}");
        let expected = if change == "chmod" {
            "mode 0644"
        } else {
            "owned by uid 24301"
        };
        assert!(outcome.log_text().contains(expected), "{change}: {outcome}");
        let meta = fs::metadata(&secret).unwrap();
        assert_eq!(
            fs::read_to_string(&secret).unwrap(),
            secret_file_with_reuse(),
            "{change}: not rewritten"
        );
        match change {
            "chmod" => assert_eq!(meta.permissions().mode() & 0o7777, 0o644, "not undone"),
            _ => assert_eq!(
                std::os::unix::fs::MetadataExt::uid(&meta),
                USER_UID,
                "not undone"
            ),
        }
    }
}

/// What an NFS home does to the calls the module makes (no NFS server can
/// run here): an exclusive `flock` is a byte-range lock that needs a
/// descriptor open for writing (EBADF otherwise), and `renameat2` refuses
/// any flag (EINVAL). `$TK_FLOCK_ERRNO` makes every `flock` fail with that
/// errno instead (ENOLCK: no lock service; EOPNOTSUPP).
const NFS_SEMANTICS: &str = r#"
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
int flock(int fd, int op) {
    static int (*real)(int, int);
    if (!real) real = (int (*)(int, int))dlsym(RTLD_NEXT, "flock");
    const char *fail = getenv("TK_FLOCK_ERRNO");
    if (fail) { errno = atoi(fail); return -1; }
    if ((op & LOCK_EX) && (fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDONLY) { errno = EBADF; return -1; }
    return real(fd, op);
}
int renameat2(int a, const char *b, int c, const char *d, unsigned flags) {
    static int (*real)(int, const char *, int, const char *, unsigned);
    if (!real) real = (int (*)(int, const char *, int, const char *, unsigned))dlsym(RTLD_NEXT, "renameat2");
    if (flags) { errno = EINVAL; return -1; }
    return real(a, b, c, d, flags);
}
"#;

fn nfs_scenario() -> (Scenario, std::path::PathBuf) {
    let scenario = Scenario::new(Module::Ours).at(T);
    let shim = build_shim(scenario.dir(), "nfs", NFS_SEMANTICS);
    // Mode 0400, as Google's and our enrollment write it.
    scenario.write_file_with_mode(
        &scenario.secret_path(),
        secret_file_with_reuse().as_bytes(),
        0o400,
    );
    (scenario, shim)
}

/// Finding 1. Logins on a home with NFS locking semantics work, and still
/// exclude each other: the code is recorded, so it works once.
#[test]
fn logins_work_with_nfs_lock_semantics() {
    let (scenario, shim) = nfs_scenario();
    let code = oath::totp_at(SECRET, T);
    let login = || {
        scenario
            .login()
            .env("LD_PRELOAD", preload_with(&scenario, &shim))
            .answer(code.clone())
            .run()
    };
    let first = login();
    assert_eq!(first.code, code::PAM_SUCCESS, "{first}");
    let again = login();
    assert_eq!(
        again.code,
        code::PAM_AUTH_ERR,
        "reuse was recorded: {again}"
    );
}

/// Finding 1. A file system that cannot lock at all gives one clear log
/// line that says what to do, and the login is refused.
#[test]
fn a_file_system_without_locks_is_one_clear_log_line() {
    for (errno, text) in [
        (libc::ENOLCK, "No locks available"),
        (libc::EOPNOTSUPP, "not supported"),
    ] {
        let (scenario, shim) = nfs_scenario();
        let outcome = scenario
            .login()
            .env("LD_PRELOAD", preload_with(&scenario, &shim))
            .env("TK_FLOCK_ERRNO", errno.to_string())
            .answer(oath::totp_at(SECRET, T))
            .run();
        assert_eq!(outcome.code, code::PAM_AUTH_ERR, "{outcome}");
        let lines: Vec<String> = outcome
            .logs
            .iter()
            .map(|l| l.message.clone())
            .filter(|m| m.contains("lock"))
            .collect();
        assert_eq!(lines.len(), 1, "one line: {outcome}");
        assert!(lines[0].contains(text), "{outcome}");
        assert!(
            lines[0].contains("local_lock=flock"),
            "says what to do: {outcome}"
        );
    }
}

/// Finding 1. A new secret file is created without replacing anything on a
/// file system that refuses `RENAME_NOREPLACE` (hard link, then unlink).
#[test]
fn a_new_file_is_created_on_a_file_system_without_rename_flags() {
    let (scenario, shim) = nfs_scenario();
    let path = scenario.dir().join("new-secret");
    let enroll = pam_totp_tests::system::profile_dir().join("totp-enroll");
    assert!(
        enroll.exists(),
        "{} is missing: cargo build --workspace",
        enroll.display()
    );
    let output = std::process::Command::new(&enroll)
        .args(["--unattended", "-f", "-q", "-Q", "NONE", "-s"])
        .arg(&path)
        .env("LD_PRELOAD", &shim)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(fs::read_to_string(&path).unwrap().contains("TOTP_AUTH"));
    let mut left: Vec<String> = fs::read_dir(scenario.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("new-secret"))
        .collect();
    left.sort();
    assert_eq!(left, vec!["new-secret"], "no temporary file left");
}

/// The test account (created once, kept: accounts are cheap and another
/// run reuses it). Returns its uid and primary gid.
fn test_account(name: &str, uid: u32) -> (u32, u32) {
    static CREATE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = CREATE.lock().unwrap_or_else(|p| p.into_inner());
    if nix::unistd::User::from_name(name).unwrap().is_none() {
        let status = std::process::Command::new("useradd")
            .args(["--no-create-home", "--shell", "/usr/sbin/nologin", "--uid"])
            .arg(uid.to_string())
            .arg("--user-group")
            .arg(name)
            .status()
            .expect("useradd (passwd) is installed");
        assert!(status.success(), "useradd {name}");
    }
    let user = nix::unistd::User::from_name(name).unwrap().unwrap();
    (user.uid.as_raw(), user.gid.as_raw())
}

/// A secret file owned by `owner` in its own directory `dir_name` with
/// `dir_mode`, owned by `owner` too; returns the file's path.
/// A scenario of ours at `T` with no default options, and its secret file
/// (in `dir_name`, mode `dir_mode`) owned by the account `tk_harden`.
fn tk_harden_scenario(dir_name: &str, dir_mode: u32) -> (Scenario, std::path::PathBuf) {
    let account = test_account("tk_harden", 24_310);
    let scenario = Scenario::new(Module::Ours)
        .options(Vec::<String>::new())
        .at(T);
    let secret = owned_secret(&scenario, account, dir_name, dir_mode);
    (scenario, secret)
}

fn owned_secret(
    scenario: &Scenario,
    owner: (u32, u32),
    dir_name: &str,
    dir_mode: u32,
) -> std::path::PathBuf {
    let dir = scenario.dir().join(dir_name);
    mkdir_mode(&dir, 0o700);
    let path = dir.join("secret");
    write_mode(&path, &secret_file_with_reuse(), 0o400);
    std::os::unix::fs::chown(&path, Some(owner.0), Some(owner.1)).unwrap();
    std::os::unix::fs::chown(&dir, Some(owner.0), Some(owner.1)).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(dir_mode)).unwrap();
    path
}

/// Finding 5. In a directory the user may write but not read, the update
/// is committed (the code recorded) and the login must then succeed.
#[test]
#[ignore = "needs root: tests/run-all"]
fn a_directory_the_user_cannot_read_does_not_turn_a_saved_login_into_a_refusal() {
    if !pam_totp_tests::require_root() {
        return;
    }
    let (scenario, secret) = tk_harden_scenario("write-only", 0o300);
    let login = || {
        scenario
            .login()
            .user("tk_harden")
            .option(format!("secret={}", secret.display()))
            .answer(oath::totp_at(SECRET, T))
            .run()
    };
    let outcome = login();
    assert_eq!(outcome.code, code::PAM_SUCCESS, "{outcome}");
    assert!(
        fs::read_to_string(&secret)
            .unwrap()
            .contains("\" DISALLOW_REUSE "),
        "the code was recorded"
    );
    assert_eq!(
        login().code,
        code::PAM_AUTH_ERR,
        "and is not accepted again"
    );
}

/// Fails `fsync` on directories with `$TK_DIR_FSYNC_ERRNO`.
const DIR_FSYNC_FAILS: &str = r#"
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
int fsync(int fd) {
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    struct stat st;
    const char *fail = getenv("TK_DIR_FSYNC_ERRNO");
    if (fail && fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) { errno = atoi(fail); return -1; }
    return real(fd);
}
"#;

/// Finding 5. A file system that cannot sync directories at all (EINVAL,
/// EROFS): the committed update counts, with one log line. Any other
/// error of the directory sync still refuses.
#[test]
fn a_file_system_that_cannot_sync_directories_accepts_the_committed_update() {
    for (errno, accepted) in [(libc::EINVAL, true), (libc::EIO, false)] {
        let scenario = Scenario::new(Module::Ours).at(T);
        scenario.write_secret(&secret_file_with_reuse());
        let shim = build_shim(scenario.dir(), "dir_fsync", DIR_FSYNC_FAILS);
        let outcome = scenario
            .login()
            .env("LD_PRELOAD", preload_with(&scenario, &shim))
            .env("TK_DIR_FSYNC_ERRNO", errno.to_string())
            .answer(oath::totp_at(SECRET, T))
            .run();
        if accepted {
            assert_eq!(outcome.code, code::PAM_SUCCESS, "{outcome}");
            let notes: Vec<&pam_totp_tests::LogLine> = outcome
                .logs
                .iter()
                .filter(|l| l.message.contains("cannot be synced"))
                .collect();
            assert_eq!(notes.len(), 1, "one line: {outcome}");
            assert!(notes[0].message.contains("Invalid argument"), "{outcome}");
        } else {
            assert_eq!(outcome.code, code::PAM_AUTH_ERR, "{outcome}");
            assert!(
                outcome.log_text().contains("sync the directory"),
                "{outcome}"
            );
        }
    }
}

/// The group `name` with `gid`, created once, with `member` in it.
fn test_group(name: &str, gid: u32, member: &str) {
    static CREATE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = CREATE.lock().unwrap_or_else(|p| p.into_inner());
    if nix::unistd::Group::from_name(name).unwrap().is_none() {
        let status = std::process::Command::new("groupadd")
            .args(["--gid", &gid.to_string(), name])
            .status()
            .unwrap();
        assert!(status.success(), "groupadd {name}");
    }
    let status = std::process::Command::new("usermod")
        .args(["--append", "--groups", name, member])
        .status()
        .unwrap();
    assert!(status.success(), "usermod -aG {name} {member}");
}

/// Sets this process's supplementary groups (every thread: the logins this
/// test starts inherit them) and puts the old ones back on drop.
struct CallerGroups(Vec<nix::unistd::Gid>);

impl CallerGroups {
    fn set(groups: &[u32]) -> CallerGroups {
        let before = nix::unistd::getgroups().unwrap();
        let groups: Vec<nix::unistd::Gid> = groups
            .iter()
            .map(|g| nix::unistd::Gid::from_raw(*g))
            .collect();
        nix::unistd::setgroups(&groups).unwrap();
        CallerGroups(before)
    }
}

impl Drop for CallerGroups {
    fn drop(&mut self) {
        let _ = nix::unistd::setgroups(&self.0);
    }
}

/// Finding 4. The caller's supplementary groups (root's group 0 here) do
/// not open a `root:root 0770` directory the user cannot enter; the user's
/// own groups do.
#[test]
#[ignore = "needs root: tests/run-all"]
fn the_callers_groups_do_not_reach_the_file_and_the_users_own_do() {
    if !pam_totp_tests::require_root() {
        return;
    }
    let (uid, gid) = test_account("tk_harden", 24_310);
    test_group("tk_hgroup", 24_320, "tk_harden");
    // Root here may have no supplementary groups: give the caller some, or
    // the test proves nothing.
    let _groups = CallerGroups::set(&[0, 4]);
    for (dir_group, expected) in [(0, code::PAM_AUTH_ERR), (24_320, code::PAM_SUCCESS)] {
        let scenario = Scenario::new(Module::Ours)
            .options(Vec::<String>::new())
            .at(T);
        let secret = owned_secret(&scenario, (uid, gid), "group-dir", 0o700);
        let dir = secret.parent().unwrap();
        std::os::unix::fs::chown(dir, Some(0), Some(dir_group)).unwrap();
        fs::set_permissions(dir, fs::Permissions::from_mode(0o770)).unwrap();
        let outcome = scenario
            .login()
            .user("tk_harden")
            .option(format!("secret={}", secret.display()))
            .answer(oath::totp_at(SECRET, T))
            .run();
        assert_eq!(
            outcome.code, expected,
            "directory group {dir_group}: {outcome}"
        );
        let recorded = fs::read_to_string(&secret)
            .unwrap()
            .contains("\" DISALLOW_REUSE ");
        assert_eq!(recorded, expected == code::PAM_SUCCESS, "{outcome}");
        if dir_group == 0 {
            assert!(
                outcome.log_text().contains("Permission denied"),
                "{outcome}"
            );
        }
    }
}

/// A directory service that matches user names case-insensitively (SSSD
/// `case_sensitive = false`, winbind): `getpwnam("TK_HARDEN")` answers
/// with the account `tk_harden`.
const CASE_INSENSITIVE_NSS: &str = r#"
#define _GNU_SOURCE
#include <ctype.h>
#include <dlfcn.h>
#include <pwd.h>
#include <string.h>
static void lower(const char *in, char *out, size_t size) {
    size_t i = 0;
    for (; in[i] && i + 1 < size; i++) out[i] = (char)tolower((unsigned char)in[i]);
    out[i] = 0;
}
int getpwnam_r(const char *name, struct passwd *pw, char *buf, size_t len, struct passwd **result) {
    static int (*real)(const char *, struct passwd *, char *, size_t, struct passwd **);
    if (!real) real = (int (*)(const char *, struct passwd *, char *, size_t, struct passwd **))dlsym(RTLD_NEXT, "getpwnam_r");
    char folded[256];
    lower(name, folded, sizeof folded);
    return real(folded, pw, buf, len, result);
}
struct passwd *getpwnam(const char *name) {
    static struct passwd *(*real)(const char *);
    if (!real) real = (struct passwd *(*)(const char *))dlsym(RTLD_NEXT, "getpwnam");
    char folded[256];
    lower(name, folded, sizeof folded);
    return real(folded);
}
"#;

/// Finding 2. With a case-insensitive directory service and `nullok`,
/// logging in as `TK_HARDEN` finds `tk_harden`'s file (`${USER}` is the
/// account's own name), so the second factor is asked for, not skipped;
/// the log names both.
#[test]
#[ignore = "needs root: tests/run-all"]
fn a_user_name_in_another_case_finds_the_accounts_file() {
    if !pam_totp_tests::require_root() {
        return;
    }
    let (scenario, secret) = tk_harden_scenario("by-name", 0o755);
    let dir = secret.parent().unwrap();
    let file = dir.join("tk_harden");
    fs::rename(&secret, &file).unwrap();
    let shim = build_shim(scenario.dir(), "nss_case", CASE_INSENSITIVE_NSS);
    let login = |answer: String| {
        scenario
            .login()
            .user("TK_HARDEN")
            .option(format!("secret={}/${{USER}}", dir.display()))
            .option("nullok")
            .env("LD_PRELOAD", preload_with(&scenario, &shim))
            .answer(answer)
            .run()
    };
    let wrong = login(oath::wrong_totp(SECRET, T));
    assert_eq!(
        wrong.code,
        code::PAM_AUTH_ERR,
        "not skipped by nullok: {wrong}"
    );
    assert_eq!(wrong.questions().len(), 1, "{wrong}");
    assert!(
        wrong.log_text().contains("TK_HARDEN") && wrong.log_text().contains("account tk_harden"),
        "both names logged: {wrong}"
    );
    let right = login(oath::totp_at(SECRET, T));
    assert_eq!(right.code, code::PAM_SUCCESS, "{right}");
}

/// Finding 8. Clock-skew observations in the file that no login could
/// have written (a skew of nearly -2^63 steps) neither panic nor wrap:
/// they are dropped with a log line, and the far-off code is remembered as
/// a new observation.
#[test]
fn out_of_range_skew_observations_are_dropped_with_a_log_line() {
    let scenario = Scenario::new(Module::Ours).at(T);
    let step = T / 30;
    scenario.write_secret(&format!(
        "{SECRET}\n\" TOTP_AUTH\n\" RESETTING_TIME_SKEW {}-9223372036854775807 {}-9223372036854775807\n",
        step - 2,
        step - 1
    ));
    // A code 100 steps ahead: far outside the window, inside the skew search.
    let outcome = scenario.authenticate(&oath::totp_at(SECRET, T + 100 * 30));
    assert!(!outcome.stderr.contains("panicked"), "{outcome}");
    assert_eq!(outcome.code, code::PAM_AUTH_ERR, "{outcome}");
    assert!(
        outcome
            .log_text()
            .contains("dropped 2 out-of-range clock-skew observation(s)"),
        "{outcome}"
    );
    let file = scenario.read_secret();
    assert!(!file.contains("9223372036854775807"), "{file}");
    assert!(file.contains(&format!("{step}+100")), "{file}");
}

/// Finding 8. An `HOTP_COUNTER` no counter can reach (2^63 and more) is a
/// broken file: the user is prompted, then refused, with the line named.
#[test]
fn an_out_of_range_hotp_counter_is_a_broken_file() {
    let scenario = Scenario::new(Module::Ours).at(T);
    scenario.write_secret(&format!("{SECRET}\n\" HOTP_COUNTER 9223372036854775808\n"));
    let outcome = scenario.authenticate(&oath::hotp(SECRET, 1));
    assert_eq!(outcome.code, code::PAM_AUTH_ERR, "{outcome}");
    assert_eq!(outcome.questions().len(), 1, "prompted first: {outcome}");
    assert!(
        outcome
            .log_text()
            .contains("invalid value for HOTP_COUNTER"),
        "{outcome}"
    );
}

/// Finding 7. On a file without RATE_LIMIT and DISALLOW_REUSE, a wrong code
/// for an enrolled user, an unknown user and an unenrolled user (no
/// `nullok`) see the same prompts and get the same answer. (Their times
/// are measured, not tested: `pam-bench refusals`, figures in SECURITY.md.)
/// With `nullok` an unenrolled user is not prompted: that is what `nullok`
/// means, and it is the one difference left.
#[test]
#[ignore = "needs root: tests/run-all"]
fn refusals_look_the_same_whoever_is_refused() {
    if !pam_totp_tests::require_root() {
        return;
    }
    test_account("tk_harden", 24_310);
    let scenario = Scenario::new(Module::Ours)
        .options(Vec::<String>::new())
        .at(T);
    let dir = scenario.dir().join("by-user");
    mkdir_mode(&dir, 0o755);
    let me = scenario.user().to_owned();
    write_mode(
        &dir.join(&me),
        &format!("{SECRET}\n\" TOTP_AUTH\n\" WINDOW_SIZE 3\n"),
        0o400,
    );
    let secret = format!("secret={}/${{USER}}", dir.display());
    let refusal = |user: &str, nullok: bool| {
        let mut login = scenario
            .login()
            .user(user)
            .option(secret.clone())
            .answer(oath::wrong_totp(SECRET, T));
        if nullok {
            login = login.option("nullok");
        }
        login.run()
    };
    let wrong = refusal(&me, false);
    let unknown = refusal("tk_no_such_user", false);
    let unenrolled = refusal("tk_harden", false);
    for (name, outcome) in [
        ("wrong code", &wrong),
        ("unknown", &unknown),
        ("unenrolled", &unenrolled),
    ] {
        assert_eq!(outcome.code, code::PAM_AUTH_ERR, "{name}: {outcome}");
        assert_eq!(
            outcome.prompts, wrong.prompts,
            "{name}: the same prompts: {outcome}"
        );
    }
    // nullok: the unenrolled user is let through without a prompt, the
    // unknown user is still prompted and refused.
    let unenrolled = refusal("tk_harden", true);
    assert!(unenrolled.questions().is_empty(), "{unenrolled}");
    let unknown = refusal("tk_no_such_user", true);
    assert_eq!(unknown.prompts, wrong.prompts, "{unknown}");
    assert_eq!(unknown.code, code::PAM_AUTH_ERR, "{unknown}");
}

/// Drops CAP_SETGID from the process as it starts (a service without the
/// privilege to change groups).
const WITHOUT_SETGID: &str = r#"
#include <linux/capability.h>
#include <sys/syscall.h>
#include <unistd.h>
__attribute__((constructor)) static void drop_setgid(void) {
    struct __user_cap_header_struct header = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[2];
    if (syscall(SYS_capget, &header, data) != 0) return;
    data[0].effective &= ~(1u << CAP_SETGID);
    data[0].permitted &= ~(1u << CAP_SETGID);
    syscall(SYS_capset, &header, data);
}
"#;

/// Finding 4. A module that cannot set the user's groups does not go on
/// with the caller's: the login is refused.
#[test]
#[ignore = "needs root: tests/run-all"]
fn without_the_privilege_to_switch_groups_the_login_is_refused() {
    if !pam_totp_tests::require_root() {
        return;
    }
    let (scenario, secret) = tk_harden_scenario("no-setgid", 0o755);
    let shim = build_shim(scenario.dir(), "without_setgid", WITHOUT_SETGID);
    let outcome = scenario
        .login()
        .user("tk_harden")
        .option(format!("secret={}", secret.display()))
        .preload(shim)
        .answer(oath::totp_at(SECRET, T))
        .run();
    assert_eq!(outcome.code, code::PAM_AUTH_ERR, "{outcome}");
    assert!(
        outcome
            .log_text()
            .contains("cannot switch file access to the user"),
        "{outcome}"
    );
}
