//! Store mode (`store=DIR`, issue 18) through real libpam and real sudo:
//! the secret is out of the user's reach, so a program running as the user
//! cannot pass a second factor that guards sudo, while the same program
//! passes with the home-file layout.
//!
//! Everything here needs root: real accounts (`useradd`, names `ts_…`),
//! root-owned stores under /var/lib, a PAM service in /etc/pam.d and a
//! sudoers drop-in for those accounts only, all removed on drop. Without
//! root the tests are skipped with a message, unless `PAM_TOTP_REQUIRE_ALL=1`
//! (CI) makes a skip a failure.
//!
//! Run with `-- --nocapture` to see the contrast test's transcript.

use pam_totp_tests::{code, oath, system, Module, Outcome, Scenario};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const SECRET: &str = "JBSWY3DPEHPK3PXP";
/// 2001-09-09 01:47:00 UTC: the frozen time of the pam-driver logins.
const T: u64 = 1_000_000_020;

fn run(command: &mut Command) -> Output {
    command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

static UNIQUE: AtomicUsize = AtomicUsize::new(0);

/// A short tag unique to this process and call, for names and paths.
fn unique() -> String {
    format!(
        "{}{}",
        std::process::id() % 100_000,
        UNIQUE.fetch_add(1, Ordering::Relaxed)
    )
}

/// A real account `ts_<tag>` with a home directory; removed on drop.
struct TestUser {
    name: String,
    uid: u32,
    gid: u32,
    home: PathBuf,
    aliases: Vec<String>,
}

impl TestUser {
    fn new(tag: &str) -> TestUser {
        let name = format!("ts_{tag}{}", unique());
        let _ = run(Command::new("userdel").args(["-r", "-f", &name]));
        let out = run(Command::new("useradd").args(["-m", "-s", "/bin/sh", &name]));
        assert!(
            out.status.success(),
            "useradd {name}: {}",
            text(&out.stderr)
        );
        let entry = nix::unistd::User::from_name(&name).unwrap().unwrap();
        TestUser {
            name,
            uid: entry.uid.as_raw(),
            gid: entry.gid.as_raw(),
            home: entry.dir,
            aliases: Vec::new(),
        }
    }

    /// A second account name with the same uid (listed after the account,
    /// so the uid's own name stays the account's).
    fn add_alias(&mut self) -> String {
        let alias = format!("ts_alias{}", unique());
        let out = run(Command::new("useradd").args([
            "-o",
            "-u",
            &self.uid.to_string(),
            "-g",
            &self.gid.to_string(),
            "-M",
            "-d",
            self.home.to_str().unwrap(),
            &alias,
        ]));
        assert!(
            out.status.success(),
            "useradd {alias}: {}",
            text(&out.stderr)
        );
        self.aliases.push(alias.clone());
        alias
    }

    /// A command run as this user (uid, gid, no supplementary groups).
    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command
            .uid(self.uid)
            .gid(self.gid)
            .env_clear()
            .env("PATH", "/usr/bin:/bin:/usr/sbin:/sbin")
            .env("HOME", &self.home)
            .env("USER", &self.name)
            .current_dir(&self.home)
            .stdin(Stdio::null());
        command
    }

    fn home_file(&self) -> PathBuf {
        self.home.join(".google_authenticator")
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        for alias in &self.aliases {
            let _ = run(Command::new("userdel").args(["-f", alias]));
        }
        let _ = run(Command::new("userdel").args(["-r", "-f", &self.name]));
    }
}

/// A store `/var/lib/pam_totp-test-<tag>/store`: the base root's 0755, the
/// store root's 0700. Removed on drop.
struct Store {
    base: PathBuf,
    dir: PathBuf,
}

impl Store {
    fn new() -> Store {
        let base = PathBuf::from(format!("/var/lib/pam_totp-test-{}", unique()));
        let _ = fs::remove_dir_all(&base);
        fs::create_dir(&base).unwrap();
        fs::set_permissions(&base, fs::Permissions::from_mode(0o755)).unwrap();
        let dir = base.join("store");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        Store { base, dir }
    }

    fn file(&self, user: &str) -> PathBuf {
        self.dir.join(user)
    }

    /// Puts a secret file for `user` in the store as root would: root:root
    /// 0400.
    fn put(&self, user: &str, contents: &str) -> PathBuf {
        let path = self.file(user);
        let _ = fs::remove_file(&path);
        fs::write(&path, contents).unwrap();
        std::os::unix::fs::chown(&path, Some(0), Some(0)).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).unwrap();
        path
    }

    fn option(&self) -> String {
        format!("store={}", self.dir.display())
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.base);
    }
}

/// `totp-enroll` as built in this workspace.
fn totp_enroll() -> PathBuf {
    let path = system::profile_dir().join("totp-enroll");
    assert!(
        path.is_file(),
        "{} not found: run `cargo build --workspace` first",
        path.display()
    );
    fs::canonicalize(path).unwrap()
}

/// Owner, group and mode of `path`.
fn ownership(path: &Path) -> (u32, u32, u32) {
    let meta = fs::symlink_metadata(path).unwrap();
    (meta.uid(), meta.gid(), meta.mode() & 0o7777)
}

/// The base32 secret on the first line of a secret file.
fn first_line(path: &Path) -> String {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_owned()
}

/// A PAM service in /etc/pam.d and a sudoers drop-in naming it for one
/// user, so that user's `sudo` asks pam_totp (and nothing else) with the
/// given options. Removed on drop.
struct SudoRig {
    service: PathBuf,
    sudoers: PathBuf,
}

impl SudoRig {
    fn new(user: &TestUser, module_options: &str) -> SudoRig {
        let tag = unique();
        let service_name = format!("ts_sudo{tag}");
        let service = PathBuf::from("/etc/pam.d").join(&service_name);
        let permit = system::system_module("pam_permit.so");
        fs::write(
            &service,
            format!(
                "# pam_totp tests (root_store.rs); removed when the test ends\n\
                 auth required {} {module_options}\n\
                 account required {}\n\
                 session required {}\n",
                system::our_module().display(),
                permit.display(),
                permit.display()
            ),
        )
        .unwrap();
        // No dot in the name: sudo skips drop-ins whose names contain one.
        let sudoers = PathBuf::from(format!("/etc/sudoers.d/ts_rootstore{tag}"));
        let rule = format!(
            "Defaults:{user} pam_service={service_name}, timestamp_timeout=0, passwd_tries=1, \
             lecture=never\n\
             {user} ALL=(root) /usr/bin/id\n\
             {user} ALL=(root) NOPASSWD: {enroll}\n",
            user = user.name,
            enroll = totp_enroll().display()
        );
        let temp = sudoers.with_file_name(format!("ts_rootstore{tag}~"));
        fs::write(&temp, rule).unwrap();
        fs::set_permissions(&temp, fs::Permissions::from_mode(0o440)).unwrap();
        let check = run(Command::new("visudo").arg("-cf").arg(&temp));
        assert!(check.status.success(), "visudo: {}", text(&check.stderr));
        fs::rename(&temp, &sudoers).unwrap();
        SudoRig { service, sudoers }
    }
}

impl Drop for SudoRig {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.sudoers);
        let _ = fs::remove_file(&self.service);
    }
}

/// `sudo -S /usr/bin/id -u` as `user`, typing `code` at pam_totp's prompt.
fn sudo_as(user: &TestUser, code: &str) -> Output {
    let mut child = user
        .command("sudo")
        .args(["-S", "/usr/bin/id", "-u"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sudo runs (apt-get install sudo, see tests/DEPENDENCIES)");
    let mut stdin = child.stdin.take().unwrap();
    let _ = stdin.write_all(format!("{code}\n").as_bytes());
    drop(stdin);
    child.wait_with_output().unwrap()
}

/// What a program running as `user` gets when it tries to read `path`.
fn read_as(user: &TestUser, path: &Path) -> Output {
    run(user.command("cat").arg(path))
}

/// A scenario for our module in store mode at the frozen time.
fn store_scenario(store: &Store) -> Scenario {
    Scenario::new(Module::Ours).options([store.option()]).at(T)
}

fn login(scenario: &Scenario, user: &str, code: &str) -> Outcome {
    scenario.login().user(user).answer(code).run()
}

/// The issue's contrast test. The same attack, by a program running as the
/// user (read the secret, make the current code, answer sudo), passes sudo's
/// second factor with the home-file layout and fails with the store; a PAM
/// stack of the attacker's own, run as the user, fails too; the real code
/// still passes sudo, so the failures are the store's doing.
#[test]
#[ignore = "needs root: tests/run-all"]
fn the_store_keeps_a_compromised_account_from_passing_sudo() {
    if !pam_totp_tests::require_root() {
        return;
    }
    let user = TestUser::new("ct");
    let store = Store::new();
    let mut transcript = Vec::new();
    let mut note = |line: String| {
        eprintln!("{line}");
        transcript.push(line);
    };

    // 1. Home layout: the user enrolls themselves, as today.
    let enrolled = run(user.command(totp_enroll().to_str().unwrap()).args([
        "--unattended",
        "-Q",
        "NONE",
        "-q",
    ]));
    assert!(enrolled.status.success(), "{}", text(&enrolled.stderr));
    let home_sudo = SudoRig::new(&user, "");
    let stolen = read_as(&user, &user.home_file());
    assert!(stolen.status.success(), "{}", text(&stolen.stderr));
    let stolen_secret = text(&stolen.stdout).lines().next().unwrap().to_owned();
    let minted = oath::totp_now(&stolen_secret);
    let passed = sudo_as(&user, &minted);
    note(format!(
        "home layout: as {}: cat ~/.google_authenticator -> exit {}, read {} bytes; \
         oathtool code; sudo -S id -u -> exit {}, stdout {:?}, stderr {:?}",
        user.name,
        stolen.status.code().unwrap_or(-1),
        stolen.stdout.len(),
        passed.status.code().unwrap_or(-1),
        text(&passed.stdout).trim(),
        text(&passed.stderr).trim()
    ));
    assert!(passed.status.success(), "{}", text(&passed.stderr));
    assert_eq!(text(&passed.stdout).trim(), "0");
    let scenario_home = Scenario::new(Module::Ours).options(Vec::<String>::new());
    // The next step's code (inside the window): the current one is used up.
    let own_stack = scenario_home
        .login()
        .user(&user.name)
        .answer(oath::totp_at(&stolen_secret, oath::now() + 30))
        .as_account(user.uid, user.gid)
        .run();
    note(format!(
        "home layout: PAM stack of its own, run as {} with the minted code -> {}",
        user.name, own_stack.code_name
    ));
    assert_eq!(own_stack.code, code::PAM_SUCCESS, "{own_stack}");
    drop(home_sudo);

    // 2. Store layout: root enrols the user into the store; the home file
    // is gone (the attacker kept its old secret).
    fs::remove_file(user.home_file()).unwrap();
    let enrolled = run(Command::new(totp_enroll())
        .args(["--store", store.dir.to_str().unwrap(), "--user", &user.name])
        .args(["--unattended", "-Q", "NONE", "-q"]));
    assert!(enrolled.status.success(), "{}", text(&enrolled.stderr));
    let file = store.file(&user.name);
    assert_eq!(ownership(&file), (0, 0, 0o400));
    let store_sudo = SudoRig::new(&user, &store.option());

    let read_file = read_as(&user, &file);
    let list_store = run(user.command("ls").arg(&store.dir));
    note(format!(
        "store layout: as {}: cat {} -> exit {}: {}",
        user.name,
        file.display(),
        read_file.status.code().unwrap_or(-1),
        text(&read_file.stderr).trim()
    ));
    note(format!(
        "store layout: as {}: ls {} -> exit {}: {}",
        user.name,
        store.dir.display(),
        list_store.status.code().unwrap_or(-1),
        text(&list_store.stderr).trim()
    ));
    assert!(!read_file.status.success());
    assert!(text(&read_file.stderr).contains("Permission denied"));
    assert!(!list_store.status.success());
    assert!(text(&list_store.stderr).contains("Permission denied"));

    // The attacker's best: a code from the secret it stole earlier.
    let failed = sudo_as(&user, &oath::totp_now(&stolen_secret));
    note(format!(
        "store layout: as {}: sudo -S id -u with the old stolen secret's code -> exit {}, \
         stdout {:?}, stderr {:?}",
        user.name,
        failed.status.code().unwrap_or(-1),
        text(&failed.stdout).trim(),
        text(&failed.stderr).trim()
    ));
    assert!(!failed.status.success());
    assert_eq!(text(&failed.stdout), "");
    let real_secret = first_line(&file);
    assert_ne!(real_secret, stolen_secret);
    let own_stack = Scenario::new(Module::Ours)
        .options([store.option()])
        .login()
        .user(&user.name)
        .answer(oath::totp_now(&real_secret))
        .as_account(user.uid, user.gid)
        .run();
    note(format!(
        "store layout: PAM stack of its own, run as {}, even with the real code -> {}: {}",
        user.name,
        own_stack.code_name,
        own_stack
            .logs
            .last()
            .map_or(String::new(), |l| l.message.clone())
    ));
    assert_eq!(own_stack.code, code::PAM_AUTH_ERR, "{own_stack}");
    assert!(own_stack.log_text().contains("store mode needs root"));

    // The real code (which only root can make) passes: the setup works.
    let passed = sudo_as(&user, &oath::totp_now(&real_secret));
    note(format!(
        "store layout: sudo -S id -u with the real code (made by root from the store) -> \
         exit {}, stdout {:?}",
        passed.status.code().unwrap_or(-1),
        text(&passed.stdout).trim()
    ));
    assert!(passed.status.success(), "{}", text(&passed.stderr));
    assert_eq!(
        ownership(&file),
        (0, 0, 0o400),
        "the rewrite kept root:root 0400"
    );
    drop(store_sudo);
    assert_eq!(transcript.len(), 7);
}

/// Logins through real libpam rewrite the store file (used codes, rate
/// limit) and keep it root:root with its mode; a replayed code is refused.
#[test]
#[ignore = "needs root: tests/run-all"]
fn rewrites_keep_root_ownership_and_mode() {
    if !pam_totp_tests::require_root() {
        return;
    }
    let user = TestUser::new("rw");
    let store = Store::new();
    let file = store.put(
        &user.name,
        &format!("{SECRET}\n\" RATE_LIMIT 3 30\n\" DISALLOW_REUSE\n\" TOTP_AUTH\n"),
    );
    fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
    let scenario = store_scenario(&store);
    let code = oath::totp_at(SECRET, T);
    let outcome = login(&scenario, &user.name, &code);
    assert_eq!(outcome.code, code::PAM_SUCCESS, "{outcome}");
    assert_eq!(ownership(&file), (0, 0, 0o600));
    let contents = fs::read_to_string(&file).unwrap();
    assert!(
        contents.contains(&format!("\" DISALLOW_REUSE {}", T / 30)),
        "{contents}"
    );
    assert!(
        contents.contains(&format!("\" RATE_LIMIT 3 30 {T}")),
        "{contents}"
    );
    let replay = login(&scenario, &user.name, &code);
    assert_eq!(replay.code, code::PAM_AUTH_ERR, "{replay}");
    assert!(replay.log_text().contains("already used"), "{replay}");
    assert_eq!(ownership(&file), (0, 0, 0o600));
    // Nothing but the account's file and its lock file in the store, and
    // the lock file root's too.
    let mut names: Vec<_> = fs::read_dir(&store.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let lock = format!("{}.pam_totp-lock", user.name);
    assert_eq!(names, [user.name.clone(), lock.clone()]);
    assert_eq!(ownership(&store.dir.join(&lock)), (0, 0, 0o600));
}

/// A store the user (or anyone but root) could change is refused at login,
/// with the right code, and with nullok too (a broken store is never "not
/// enrolled"). nullok only lets through an account that has no file in a
/// store that passed every check.
#[test]
#[ignore = "needs root: tests/run-all"]
fn unsafe_stores_are_refused_and_nullok_means_not_enrolled() {
    if !pam_totp_tests::require_root() {
        return;
    }
    let user = TestUser::new("us");
    let store = Store::new();
    let file = store.put(&user.name, &format!("{SECRET}\n\" TOTP_AUTH\n"));
    let code = oath::totp_at(SECRET, T);
    let refused = |scenario: &Scenario, why: &str| {
        let outcome = login(scenario, &user.name, &code);
        assert_eq!(outcome.code, code::PAM_AUTH_ERR, "{why}: {outcome}");
        assert!(outcome.log_text().contains(why), "{why}: {outcome}");
        assert!(
            outcome.prompts.is_empty(),
            "refused before asking: {outcome}"
        );
        let with_nullok = scenario
            .login()
            .user(&user.name)
            .answer(&code)
            .option("nullok")
            .run();
        assert_eq!(with_nullok.code, code::PAM_AUTH_ERR, "{why}: {with_nullok}");
    };
    let scenario = store_scenario(&store);

    std::os::unix::fs::chown(&store.dir, Some(user.uid), Some(user.gid)).unwrap();
    refused(&scenario, "is owned by uid");
    std::os::unix::fs::chown(&store.dir, Some(0), Some(0)).unwrap();

    fs::set_permissions(&store.dir, fs::Permissions::from_mode(0o770)).unwrap();
    refused(&scenario, "has mode 0770: writable by group or others");
    fs::set_permissions(&store.dir, fs::Permissions::from_mode(0o755)).unwrap();
    refused(&scenario, "the store must be root's alone");
    fs::set_permissions(&store.dir, fs::Permissions::from_mode(0o700)).unwrap();

    // The parent group-writable: its group could swap the store.
    fs::set_permissions(&store.base, fs::Permissions::from_mode(0o775)).unwrap();
    refused(&scenario, "has mode 0775: writable by group or others");
    fs::set_permissions(&store.base, fs::Permissions::from_mode(0o755)).unwrap();

    // store= naming a symlink to the real store.
    let link = store.base.join("link");
    symlink(&store.dir, &link).unwrap();
    let via_link = Scenario::new(Module::Ours)
        .options([format!("store={}", link.display())])
        .at(T);
    refused(&via_link, "is a symbolic link");

    // A missing store.
    let missing = Scenario::new(Module::Ours)
        .options([format!("store={}", store.base.join("missing").display())])
        .at(T);
    refused(&missing, "does not exist");

    // The file itself: another owner, a loose mode, a symlink.
    std::os::unix::fs::chown(&file, Some(user.uid), None).unwrap();
    let outcome = login(&scenario, &user.name, &code);
    assert_eq!(outcome.code, code::PAM_AUTH_ERR, "{outcome}");
    assert!(outcome.log_text().contains("expected uid 0"), "{outcome}");
    std::os::unix::fs::chown(&file, Some(0), None).unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o640)).unwrap();
    let outcome = login(&scenario, &user.name, &code);
    assert!(outcome.log_text().contains("mode 0640"), "{outcome}");
    fs::set_permissions(&file, fs::Permissions::from_mode(0o400)).unwrap();

    // All repaired: the same login passes.
    let outcome = login(&scenario, &user.name, &code);
    assert_eq!(outcome.code, code::PAM_SUCCESS, "{outcome}");

    // nullok: an account with no file in a good store is let through
    // (PAM_IGNORE; pam_permit after it decides), and nothing is asked.
    fs::remove_file(&file).unwrap();
    let outcome = scenario
        .login()
        .user(&user.name)
        .option("nullok")
        .stack_after(format!(
            "auth required {}",
            system::system_module("pam_permit.so").display()
        ))
        .run();
    assert_eq!(outcome.code, code::PAM_SUCCESS, "{outcome}");
    assert!(outcome.prompts.is_empty(), "{outcome}");
    assert!(outcome.log_text().contains("nullok"), "{outcome}");
    // Without nullok the same account is asked and refused.
    let outcome = login(&scenario, &user.name, &code);
    assert_eq!(outcome.code, code::PAM_AUTH_ERR, "{outcome}");
}

/// store= combined with options that would hand the secret back is a
/// configuration error (PAM_SERVICE_ERR), before anything is read.
#[test]
#[ignore = "needs root: tests/run-all"]
fn weakening_options_are_configuration_errors() {
    if !pam_totp_tests::require_root() {
        return;
    }
    let user = TestUser::new("op");
    let store = Store::new();
    store.put(&user.name, &format!("{SECRET}\n\" TOTP_AUTH\n"));
    for (extra, why) in [
        ("secret=/tmp/x", "cannot be combined with secret="),
        ("user=root", "cannot be combined with user="),
        ("no_strict_owner", "cannot be combined with no_strict_owner"),
        ("allowed_perm=0640", "cannot be combined with allowed_perm"),
    ] {
        let outcome = store_scenario(&store)
            .login()
            .user(&user.name)
            .option(extra)
            .answer(oath::totp_at(SECRET, T))
            .run();
        assert_eq!(outcome.code, code::PAM_SERVICE_ERR, "{extra}: {outcome}");
        assert!(outcome.log_text().contains(why), "{extra}: {outcome}");
    }
}

/// The pids of processes that have `path` open.
fn holders(path: &Path) -> Vec<String> {
    let mut pids = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name().into_string().unwrap_or_default();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(fds) = fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        if fds
            .flatten()
            .any(|fd| fs::read_link(fd.path()).is_ok_and(|target| target == path))
        {
            pids.push(name);
        }
    }
    pids
}

/// The store is swapped for another directory while a login waits for the
/// file's lock: once it holds the lock, the login sees that the store path
/// names another directory and writes to neither.
#[test]
#[ignore = "needs root: tests/run-all"]
fn a_store_swapped_mid_rewrite_is_refused() {
    if !pam_totp_tests::require_root() {
        return;
    }
    let user = TestUser::new("sw");
    let store = Store::new();
    let contents = format!("{SECRET}\n\" DISALLOW_REUSE\n\" TOTP_AUTH\n");
    store.put(&user.name, &contents);
    let scenario = store_scenario(&store);

    // Hold the lock the module takes (on the lock file beside the secret
    // file), so the login waits inside its update.
    let lock_path = store.dir.join(format!("{}.pam_totp-lock", user.name));
    let held = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .unwrap();
    fs::set_permissions(&lock_path, fs::Permissions::from_mode(0o600)).unwrap();
    held.lock().unwrap();
    let me = std::process::id().to_string();
    std::thread::scope(|scope| {
        let running = scope.spawn(|| login(&scenario, &user.name, &oath::totp_at(SECRET, T)));
        // Wait (polling, not sleeping a guessed time) until the driver has
        // the lock file open: it is then waiting for the lock.
        let deadline = Instant::now() + Duration::from_secs(30);
        while holders(&lock_path).iter().all(|pid| *pid == me) {
            assert!(Instant::now() < deadline, "the login never opened the file");
            std::thread::yield_now();
        }
        let moved = store.base.join("moved");
        fs::rename(&store.dir, &moved).unwrap();
        fs::create_dir(&store.dir).unwrap();
        fs::set_permissions(&store.dir, fs::Permissions::from_mode(0o700)).unwrap();
        store.put(&user.name, "DECOY\n");
        held.unlock().unwrap();
        let outcome = running.join().unwrap();
        assert_eq!(outcome.code, code::PAM_AUTH_ERR, "{outcome}");
        assert!(
            outcome.log_text().contains("moved or replaced"),
            "{outcome}"
        );
        assert_eq!(
            fs::read_to_string(moved.join(&user.name)).unwrap(),
            contents
        );
        assert_eq!(
            fs::read_to_string(store.file(&user.name)).unwrap(),
            "DECOY\n"
        );
    });
}

/// Store mode looks a file up only under the account's own name: an alias
/// of the same uid and unusual names are refused, even when a file of that
/// name exists in the store.
#[test]
#[ignore = "needs root: tests/run-all"]
fn aliases_and_odd_names_are_refused() {
    if !pam_totp_tests::require_root() {
        return;
    }
    let mut user = TestUser::new("al");
    let alias = user.add_alias();
    let store = Store::new();
    let file = format!("{SECRET}\n\" TOTP_AUTH\n");
    store.put(&user.name, &file);
    store.put(&alias, &file);
    let scenario = store_scenario(&store);
    let code = oath::totp_at(SECRET, T);

    let outcome = login(&scenario, &alias, &code);
    assert_eq!(outcome.code, code::PAM_AUTH_ERR, "{outcome}");
    assert!(
        outcome
            .log_text()
            .contains(&format!("alias of the account \"{}\"", user.name)),
        "{outcome}"
    );
    // Asked like anyone else, so the prompt tells nothing.
    assert_eq!(outcome.prompts.len(), 1, "{outcome}");

    for odd in [
        "../etc/shadow",
        ".hidden",
        "-x",
        "a b",
        "ts_x/..",
        "Ts\u{e9}",
    ] {
        let outcome = login(&scenario, odd, &code);
        assert_eq!(outcome.code, code::PAM_AUTH_ERR, "{odd:?}: {outcome}");
        assert!(
            outcome
                .log_text()
                .contains("characters or a length store mode does not accept"),
            "{odd:?}: {outcome}"
        );
    }
    // A differently cased name is another (unknown) account here.
    let outcome = login(&scenario, &user.name.to_uppercase(), &code);
    assert_eq!(outcome.code, code::PAM_AUTH_ERR, "{outcome}");
    // The account's own name works.
    let outcome = login(&scenario, &user.name, &code);
    assert_eq!(outcome.code, code::PAM_SUCCESS, "{outcome}");
}

/// `sudo totp-enroll --store DIR --self` as the user (a NOPASSWD rule for
/// exactly that command): a first enrolment needs no code; replacing the
/// secret without a current code is refused and changes nothing; with a
/// current code the secret is replaced, still root's, and the new key and
/// scratch codes go to the user's own output.
#[test]
#[ignore = "needs root: tests/run-all"]
fn self_enrolment_over_a_secret_needs_its_current_code() {
    if !pam_totp_tests::require_root() {
        return;
    }
    let user = TestUser::new("se");
    let store = Store::new();
    let _sudo = SudoRig::new(&user, &store.option());
    let self_enrol = |answers: &str| {
        let mut child = user
            .command("sudo")
            .arg("-n")
            .arg(totp_enroll())
            .args(["--store", store.dir.to_str().unwrap(), "--self"])
            .args(["--unattended", "-f", "-Q", "NONE"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let _ = stdin.write_all(answers.as_bytes());
        drop(stdin);
        child.wait_with_output().unwrap()
    };
    let file = store.file(&user.name);

    let first = self_enrol("");
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert_eq!(ownership(&file), (0, 0, 0o400));
    let secret = first_line(&file);
    let shown = text(&first.stdout);
    assert!(shown.contains("Your new secret key is"), "{shown}");
    assert!(shown.contains("emergency scratch codes"), "{shown}");
    assert!(!read_as(&user, &file).status.success());

    // No answer, a wrong code, a wrong scratch code. (Each answer counts
    // against RATE_LIMIT 3 per 30 s like a login; a fourth wrong one would
    // lock the right one out too.)
    for (wrong, why) in [
        ("", "cancelled"),
        ("000000\n", "invalid verification code: nothing was changed"),
        ("12345678\n", "invalid scratch code: nothing was changed"),
    ] {
        let refused = self_enrol(wrong);
        assert!(!refused.status.success(), "{wrong:?}");
        assert!(
            text(&refused.stderr).contains(why),
            "{wrong:?}: {}",
            text(&refused.stderr)
        );
        assert_eq!(
            first_line(&file),
            secret,
            "{wrong:?}: the secret was replaced"
        );
        assert_eq!(ownership(&file), (0, 0, 0o400));
        assert!(!text(&refused.stdout).contains("Your new secret key is"));
    }

    let replaced = self_enrol(&format!("{}\n", oath::totp_now(&secret)));
    assert!(replaced.status.success(), "{}", text(&replaced.stderr));
    assert_ne!(first_line(&file), secret);
    assert_eq!(ownership(&file), (0, 0, 0o400));
    assert!(text(&replaced.stdout).contains("Your new secret key is"));

    // New scratch codes through the same rule: also only with a code.
    let regenerate = |answers: &str| {
        let mut child = user
            .command("sudo")
            .arg("-n")
            .arg(totp_enroll())
            .args(["--store", store.dir.to_str().unwrap(), "--self"])
            .arg("--regenerate-scratch")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let _ = stdin.write_all(answers.as_bytes());
        drop(stdin);
        child.wait_with_output().unwrap()
    };
    let before = fs::read_to_string(&file).unwrap();
    let refused = regenerate("000000\n");
    assert!(!refused.status.success());
    let after = fs::read_to_string(&file).unwrap();
    let scratch = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.len() == 8 && l.bytes().all(|b| b.is_ascii_digit()))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(scratch(&after), scratch(&before));
    let new_secret = first_line(&file);
    let regenerated = regenerate(&format!("{}\n", oath::totp_now(&new_secret)));
    assert!(
        regenerated.status.success(),
        "{}",
        text(&regenerated.stderr)
    );
    let codes = scratch(&fs::read_to_string(&file).unwrap());
    assert_ne!(codes, scratch(&before));
    for code in &codes {
        assert!(text(&regenerated.stdout).contains(code.as_str()));
    }
    assert_eq!(ownership(&file), (0, 0, 0o400));

    // Without sudo (no SUDO_UID) --self refuses.
    let direct = run(Command::new(totp_enroll()).env_remove("SUDO_UID").args([
        "--store",
        store.dir.to_str().unwrap(),
        "--self",
        "--unattended",
    ]));
    assert!(!direct.status.success());
    assert!(
        text(&direct.stderr).contains("SUDO_UID"),
        "{}",
        text(&direct.stderr)
    );
}

/// Home file → store → home file, byte for byte: used codes, rate-limit
/// attempts, clock skew and scratch codes move with it, and a code used
/// before the move is still refused after it.
#[test]
#[ignore = "needs root: tests/run-all"]
fn migration_both_ways_keeps_the_state() {
    if !pam_totp_tests::require_root() {
        return;
    }
    let user = TestUser::new("mg");
    let store = Store::new();
    let used_step = T / 30;
    let state = format!(
        "{SECRET}\n\" RATE_LIMIT 5 30 {} {}\n\" DISALLOW_REUSE {used_step}\n\" TIME_SKEW 0\n\
         \" TOTP_AUTH\n12345678\n87654321\n",
        T - 10,
        T - 5
    );
    let home = user.home_file();
    fs::write(&home, &state).unwrap();
    std::os::unix::fs::chown(&home, Some(user.uid), Some(user.gid)).unwrap();
    fs::set_permissions(&home, fs::Permissions::from_mode(0o400)).unwrap();
    let enroll = |flag: &str| {
        run(Command::new(totp_enroll()).args([
            "--store",
            store.dir.to_str().unwrap(),
            "--user",
            &user.name,
            flag,
        ]))
    };

    let moved = enroll("--migrate-to-store");
    assert!(moved.status.success(), "{}", text(&moved.stderr));
    let file = store.file(&user.name);
    assert!(!home.exists());
    assert_eq!(fs::read_to_string(&file).unwrap(), state);
    assert_eq!(ownership(&file), (0, 0, 0o400));
    // The code used before the move is refused in the store.
    let scenario = store_scenario(&store);
    let replay = login(&scenario, &user.name, &oath::totp_at(SECRET, T));
    assert_eq!(replay.code, code::PAM_AUTH_ERR, "{replay}");
    assert!(replay.log_text().contains("already used"), "{replay}");
    let after_login = fs::read_to_string(&file).unwrap();
    // Refusing a second migration into an occupied store.
    fs::write(&home, &state).unwrap();
    std::os::unix::fs::chown(&home, Some(user.uid), Some(user.gid)).unwrap();
    fs::set_permissions(&home, fs::Permissions::from_mode(0o400)).unwrap();
    let again = enroll("--migrate-to-store");
    assert!(!again.status.success());
    assert!(
        text(&again.stderr).contains("already exists"),
        "{}",
        text(&again.stderr)
    );
    assert_eq!(fs::read_to_string(&file).unwrap(), after_login);
    fs::remove_file(&home).unwrap();

    let back = enroll("--migrate-to-home");
    assert!(back.status.success(), "{}", text(&back.stderr));
    assert!(!file.exists());
    assert_eq!(fs::read_to_string(&home).unwrap(), after_login);
    assert_eq!(ownership(&home), (user.uid, user.gid, 0o400));
    // And the home layout still refuses the used code.
    let home_scenario = Scenario::new(Module::Ours)
        .options(Vec::<String>::new())
        .at(T);
    let replay = login(&home_scenario, &user.name, &oath::totp_at(SECRET, T));
    assert_eq!(replay.code, code::PAM_AUTH_ERR, "{replay}");
    assert!(replay.log_text().contains("already used"), "{replay}");
    let next = login(&home_scenario, &user.name, &oath::totp_at(SECRET, T + 30));
    assert_eq!(next.code, code::PAM_SUCCESS, "{next}");
}
