//! Fleet mode through real libpam against a real redis-server on 127.0.0.1:
//! several "hosts" (module instances with the same secret and separate
//! files, each with its own `shared_state=` configuration) share one store.
//!
//! Each test starts its own redis-server (`--save '' --appendonly no`, a
//! port from 24700-24799) and kills it by pid. Without redis-server (Debian
//! package redis-server) or without root (the configuration file must be
//! owned by root) the tests say they were skipped and why; with
//! `PAM_TOTP_REQUIRE_ALL=1` (CI) such a skip is a failure.

use pam_totp_tests::{code, oath, Module, Outcome, Race, Scenario};
use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

const SECRET: &str = "JBSWY3DPEHPK3PXP";
const ADMIN_PASSWORD: &str = "tf-admin-password";

/// Returns false (after saying why) when the tests cannot run here; panics
/// instead under PAM_TOTP_REQUIRE_ALL=1.
fn can_run() -> bool {
    // Root: the shared-state configuration must be owned by root.
    if !pam_totp_tests::require_root() {
        return false;
    }
    let mut missing = Vec::new();
    for (tool, package) in [
        ("redis-server", "redis-server"),
        ("redis-cli", "redis-server"),
    ] {
        if !Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
        {
            missing.push(format!(
                "{tool} is not installed (Debian package {package})"
            ));
        }
    }
    if missing.is_empty() {
        return true;
    }
    let why = missing.join("; ");
    if std::env::var_os("PAM_TOTP_REQUIRE_ALL").is_some_and(|v| v == "1") {
        panic!("fleet test cannot run and PAM_TOTP_REQUIRE_ALL=1: {why}");
    }
    skipped(&format!("fleet test: {why}"));
    false
}

/// Says so on the stderr descriptor itself: libtest keeps what `eprintln!`
/// prints in a passing test to itself, and a skip must be seen.
fn skipped(why: &str) {
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {why} (PAM_TOTP_REQUIRE_ALL=1 makes this a failure)"
    );
}

static NEXT_PORT: AtomicU16 = AtomicU16::new(24700);

/// A free port in 24700-24799.
fn free_port() -> u16 {
    loop {
        let port = NEXT_PORT.fetch_add(1, Ordering::Relaxed);
        assert!(port < 24800, "ports 24700-24799 used up");
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A redis-server of this test's own, killed on drop.
struct Redis {
    child: Option<Child>,
    port: u16,
    args: Vec<String>,
    /// redis-cli's TLS flags, for a TLS-only server.
    cli_tls: Vec<String>,
    dir: PathBuf,
}

impl Redis {
    fn start(name: &str, extra: &[String]) -> Redis {
        let port = free_port();
        Redis::start_with(name, port, &["--port".into(), port.to_string()], extra, &[])
    }

    fn start_with(
        name: &str,
        port: u16,
        listen: &[String],
        extra: &[String],
        cli_tls: &[String],
    ) -> Redis {
        let dir = std::env::temp_dir().join(format!("tf_redis-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let mut args: Vec<String> = listen.to_vec();
        args.extend(
            [
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--dir",
                dir.to_str().unwrap(),
                "--requirepass",
                ADMIN_PASSWORD,
            ]
            .iter()
            .map(|s| s.to_string()),
        );
        args.extend(extra.iter().cloned());
        let mut redis = Redis {
            child: None,
            port,
            args,
            cli_tls: cli_tls.to_vec(),
            dir,
        };
        redis.launch();
        redis
    }

    fn launch(&mut self) {
        let child = Command::new("redis-server")
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let until = Instant::now() + Duration::from_secs(10);
        while self.try_cli(&["PING"]).as_deref() != Some("PONG") {
            assert!(Instant::now() < until, "redis-server did not answer PING");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn pid(&self) -> nix::unistd::Pid {
        nix::unistd::Pid::from_raw(self.child.as_ref().unwrap().id() as i32)
    }

    fn signal(&self, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(self.pid(), signal).unwrap();
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    fn try_cli(&self, args: &[&str]) -> Option<String> {
        let out = Command::new("redis-cli")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "--no-auth-warning",
            ])
            .args(["-a", ADMIN_PASSWORD])
            .args(&self.cli_tls)
            .args(args)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    fn cli(&self, args: &[&str]) -> String {
        self.try_cli(args)
            .unwrap_or_else(|| panic!("redis-cli {args:?} failed"))
    }

    fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .cli(&["--scan"])
            .lines()
            .map(str::to_owned)
            .filter(|k| !k.is_empty())
            .collect();
        keys.sort();
        keys
    }

    /// A user for one host: its password, the key prefix and the commands
    /// the module needs, as the README tells operators.
    fn add_host_user(&self, user: &str, password: &str, commands: &str) {
        let mut args = vec!["ACL", "SETUSER", user, "reset", "on"];
        let pass = format!(">{password}");
        args.push(&pass);
        args.push("~pam_totp:*");
        args.extend(commands.split_whitespace());
        assert_eq!(self.cli(&args), "OK");
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if self.child.is_some() {
            let _ = nix::sys::signal::kill(self.pid(), nix::sys::signal::Signal::SIGCONT);
        }
        self.stop();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// The commands a host's ACL user needs (README, "Fleet mode").
const HOST_COMMANDS: &str =
    "+eval +set +wait +time +zremrangebyscore +zcard +zadd +zremrangebyrank +pexpire";

/// A host: a scenario (its own secret file) whose PAM line enables fleet
/// mode with its own root-only configuration file.
struct Host {
    scenario: Scenario,
    config: PathBuf,
}

impl Host {
    fn new(file: &str, config: &str) -> Host {
        let scenario = Scenario::new(Module::Ours);
        let config_path = scenario.dir().join("shared.conf");
        write_root_only(&config_path, config);
        let scenario = scenario.option(format!("shared_state={}", config_path.display()));
        scenario.write_secret(file);
        Host {
            scenario,
            config: config_path,
        }
    }

    fn login(&self, answer: &str) -> (Outcome, Duration) {
        let started = Instant::now();
        let outcome = self.scenario.authenticate(answer);
        (outcome, started.elapsed())
    }

    fn reconfigure(&self, config: &str) {
        write_root_only(&self.config, config);
    }
}

fn write_root_only(path: &Path, text: &str) {
    let _ = fs::remove_file(path);
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).unwrap();
}

fn hosts(n: usize, file: &str, config: &str) -> Vec<Host> {
    (0..n).map(|_| Host::new(file, config)).collect()
}

fn messages(outcome: &Outcome) -> Vec<&str> {
    outcome.logs.iter().map(|l| l.message.as_str()).collect()
}

fn logged(outcome: &Outcome, fragment: &str) -> bool {
    outcome.logs.iter().any(|l| l.message.contains(fragment))
}

/// Error-level lines (syslog priority 3) about the shared state.
fn shared_state_errors(outcome: &Outcome) -> usize {
    outcome
        .logs
        .iter()
        .filter(|l| l.priority == 3 && l.message.contains("shared state"))
        .count()
}

const REUSE_FILE: &str = "JBSWY3DPEHPK3PXP\n\" TOTP_AUTH\n\" DISALLOW_REUSE\n";

fn plain_config(redis: &Redis, extra: &str) -> String {
    format!(
        "url = {}\npassword = {ADMIN_PASSWORD}\ntimeout_ms = 300\n{extra}",
        redis.url()
    )
}

#[test]
#[ignore = "needs root: tests/run-all"]
fn a_code_used_on_one_host_is_refused_on_the_others_window_17() {
    if !can_run() {
        return;
    }
    let redis = Redis::start("reuse", &[]);
    let file = format!("{SECRET}\n\" TOTP_AUTH\n\" DISALLOW_REUSE\n\" WINDOW_SIZE 17\n");
    let hosts = hosts(3, &file, &plain_config(&redis, ""));
    // A code from 8 steps ago: still inside a window of 17 on every host.
    let old = oath::totp_at(SECRET, oath::now() - 8 * 30);
    let (a, _) = hosts[0].login(&old);
    assert_eq!(a.code, code::PAM_SUCCESS, "{a}");
    for host in &hosts[1..] {
        let (b, _) = host.login(&old);
        assert_eq!(b.code, code::PAM_AUTH_ERR, "{b}");
        assert!(
            logged(&b, "already used on another host"),
            "{:?}",
            messages(&b)
        );
    }
    // Host A's own file refuses it too (its local DISALLOW_REUSE).
    let (again, _) = hosts[0].login(&old);
    assert_eq!(again.code, code::PAM_AUTH_ERR, "{again}");

    // One marker, outliving the code: window 17 plus twice the largest
    // learnable skew, at 30 s steps.
    let keys = redis.keys();
    let markers: Vec<&String> = keys
        .iter()
        .filter(|k| k.starts_with("pam_totp:u:"))
        .collect();
    assert_eq!(markers.len(), 1, "{keys:?}");
    let ttl: u64 = redis.cli(&["PTTL", markers[0]]).parse().unwrap();
    let skew = pam_totp::policy::SKEW_SEARCH_STEPS as u64;
    assert!(ttl > (17 + 2 * skew) * 30 * 1000, "PTTL {ttl}");
    // Key names reveal neither the user nor the code.
    let user = pam_totp_tests::system::current_user().1;
    for key in &keys {
        assert!(!key.contains(&user) && !key.contains(&old), "{key}");
    }
}

#[test]
#[ignore = "needs root: tests/run-all"]
fn a_scratch_code_works_once_fleet_wide() {
    if !can_run() {
        return;
    }
    let redis = Redis::start("scratch", &[]);
    let file = format!("{REUSE_FILE}12345678\n87654321\n");
    let hosts = hosts(2, &file, &plain_config(&redis, ""));
    let (a, _) = hosts[0].login("12345678");
    assert_eq!(a.code, code::PAM_SUCCESS, "{a}");
    let (b, _) = hosts[1].login("12345678");
    assert_eq!(b.code, code::PAM_AUTH_ERR, "{b}");
    assert!(
        logged(&b, "scratch code was already used on another host"),
        "{:?}",
        messages(&b)
    );
    // The other scratch code still works, once.
    let (b2, _) = hosts[1].login("87654321");
    assert_eq!(b2.code, code::PAM_SUCCESS, "{b2}");
    let (a2, _) = hosts[0].login("87654321");
    assert_eq!(a2.code, code::PAM_AUTH_ERR, "{a2}");
    // Scratch markers never expire: another host's copy would accept the code.
    for key in redis.keys().iter().filter(|k| k.starts_with("pam_totp:x:")) {
        assert_eq!(redis.cli(&["PTTL", key]), "-1", "{key}");
    }
}

/// Logins spread over the hosts (answer `i` on host `i % hosts.len()`),
/// all started and left at the prompt, then all answered at once, through
/// the harness's [`Race`]. Per answer: success; and every log line. If
/// pam_wrapper could not start one of them, the race runs again from the
/// same state (the files are put back by the harness, the store here).
fn race(redis: &Redis, hosts: &[Host], answers: &[String]) -> (Vec<bool>, Vec<String>) {
    let race = answers
        .iter()
        .enumerate()
        .fold(Race::new(), |race, (i, answer)| {
            race.login(hosts[i % hosts.len()].scenario.login(), answer)
        })
        .before_retry(|| {
            redis.cli(&["FLUSHALL"]);
        });
    let outcomes = race.run();
    let results = outcomes
        .iter()
        .map(|o| o.code == code::PAM_SUCCESS)
        .collect();
    let logs = outcomes
        .iter()
        .flat_map(|o| o.logs.iter().map(|l| l.message.clone()))
        .collect();
    (results, logs)
}

#[test]
#[ignore = "needs root: tests/run-all"]
fn one_code_32_concurrent_logins_over_4_hosts_one_success() {
    if !can_run() {
        return;
    }
    let redis = Redis::start("race", &[]);
    let hosts = hosts(4, REUSE_FILE, &plain_config(&redis, ""));
    let code = oath::totp_now(SECRET);
    let (results, logs) = race(&redis, &hosts, &vec![code; 32]);
    let successes = results.iter().filter(|&&ok| ok).count();
    assert_eq!(successes, 1, "{logs:#?}");
    // Every host but the winner's refused through the shared marker at least
    // once: the store, not only the local files, did the refusing.
    let elsewhere = logs
        .iter()
        .filter(|l| l.contains("already used on another host"))
        .count();
    assert!(elsewhere >= 3, "{logs:#?}");
}

#[test]
#[ignore = "needs root: tests/run-all"]
fn fleet_limit_3_per_30_s_checks_at_most_3_attempts_over_all_hosts() {
    if !can_run() {
        return;
    }
    let redis = Redis::start("limit", &[]);
    // No RATE_LIMIT in the files: only the fleet limit of the config counts.
    let file = format!("{SECRET}\n\" TOTP_AUTH\n");
    let hosts = hosts(4, &file, &plain_config(&redis, "rate_limit = 3 30\n"));
    let mut checked = 0;
    let mut limited = 0;
    for i in 0..12 {
        let (outcome, _) = hosts[i % 4].login("000000");
        assert_eq!(outcome.code, code::PAM_AUTH_ERR, "{outcome}");
        checked += usize::from(logged(&outcome, "invalid verification code"));
        limited += usize::from(logged(&outcome, "too many attempts across the fleet"));
    }
    assert_eq!((checked, limited), (3, 9));
    // A valid code is refused as well while the window is full.
    let (valid, _) = hosts[1].login(&oath::totp_now(SECRET));
    assert_eq!(valid.code, code::PAM_AUTH_ERR, "{valid}");

    // The same with 32 valid codes at once over 4 hosts, no reuse
    // protection: only the fleet limit stops them.
    let redis = Redis::start("limit-race", &[]);
    let hosts = self::hosts(4, &file, &plain_config(&redis, "rate_limit = 3 30\n"));
    let (results, logs) = race(&redis, &hosts, &vec![oath::totp_now(SECRET); 32]);
    assert_eq!(results.iter().filter(|&&ok| ok).count(), 3, "{logs:#?}");
}

#[test]
#[ignore = "needs root: tests/run-all"]
fn the_file_rate_limit_is_the_fleet_limit_unless_the_config_says_otherwise() {
    if !can_run() {
        return;
    }
    let redis = Redis::start("file-limit", &[]);
    let file = format!("{SECRET}\n\" TOTP_AUTH\n\" RATE_LIMIT 2 30\n");
    let hosts = hosts(2, &file, &plain_config(&redis, ""));
    let first = hosts[0].login("000000").0;
    let second = hosts[1].login("000000").0;
    let third = hosts[0].login("000000").0;
    assert!(logged(&first, "invalid verification code"), "{first}");
    assert!(logged(&second, "invalid verification code"), "{second}");
    // Host A has seen one attempt: only the fleet knows of two.
    assert!(
        logged(&third, "too many attempts across the fleet"),
        "{third}"
    );
}

/// One fault, under both failure policies: `local` decides with the file
/// alone (a valid code in, a wrong one out) and logs one error line;
/// `closed` answers PAM_AUTHINFO_UNAVAIL. Never a login without a valid
/// code, and always within the budget plus slack.
fn check_fault(name: &str, redis: &Redis, config_extra: &str, budget_ms: u64, what: &str) {
    check_fault_at(name, &redis.url(), config_extra, budget_ms, what);
}

fn check_fault_at(name: &str, url: &str, config_extra: &str, budget_ms: u64, what: &str) {
    let make = |policy: &str| {
        format!("url = {url}\ntimeout_ms = {budget_ms}\nfailure_policy = {policy}\n{config_extra}")
    };
    // Slack: starting a process under pam_wrapper, loading libpam and the
    // module; generous (a login took up to 1.8 s in all on a 2-CPU machine
    // at load 8), so a loaded machine does not fail the test, yet far below
    // what a hang without a deadline takes (forever).
    let slack = Duration::from_millis(3000);
    let budget = Duration::from_millis(budget_ms);

    let host = Host::new(REUSE_FILE, &make("local"));
    let (ok, took) = host.login(&oath::totp_now(SECRET));
    eprintln!("{name}: local, valid code: {} in {took:?}", ok.code_name);
    for line in ok.logs.iter().filter(|l| l.priority == 3) {
        eprintln!("    log: {}", line.message);
    }
    assert_eq!(ok.code, code::PAM_SUCCESS, "{name}: {ok}");
    assert_eq!(shared_state_errors(&ok), 1, "{name}: {:?}", messages(&ok));
    assert!(logged(&ok, what), "{name}: {:?}", messages(&ok));
    assert!(logged(&ok, "decided with the local file alone"), "{name}");
    assert!(took < budget + slack, "{name}: took {took:?}");
    let (wrong, took) = host.login("000000");
    assert_eq!(wrong.code, code::PAM_AUTH_ERR, "{name}: {wrong}");
    assert!(took < budget + slack, "{name}: took {took:?}");

    host.reconfigure(&make("closed"));
    // The next step's code: the one above is spent in this host's file.
    let (closed, took) = host.login(&oath::totp_at(SECRET, oath::now() + 30));
    eprintln!(
        "{name}: closed, valid code: {} in {took:?}",
        closed.code_name
    );
    for line in closed.logs.iter().filter(|l| l.priority == 3) {
        eprintln!("    log: {}", line.message);
    }
    assert_eq!(closed.code, code::PAM_AUTHINFO_UNAVAIL, "{name}: {closed}");
    assert_eq!(
        shared_state_errors(&closed),
        1,
        "{name}: {:?}",
        messages(&closed)
    );
    assert!(logged(&closed, what), "{name}: {:?}", messages(&closed));
    assert!(took < budget + slack, "{name}: took {took:?}");
    let (wrong, _) = host.login("000000");
    assert_ne!(wrong.code, code::PAM_SUCCESS, "{name}: {wrong}");
}

#[test]
#[ignore = "needs root: tests/run-all"]
fn fault_server_down() {
    if !can_run() {
        return;
    }
    let mut redis = Redis::start("down", &[]);
    redis.stop();
    check_fault(
        "server down",
        &redis,
        &format!("password = {ADMIN_PASSWORD}\n"),
        300,
        "Connection refused",
    );
}

#[test]
#[ignore = "needs root: tests/run-all"]
fn fault_server_hung() {
    if !can_run() {
        return;
    }
    let redis = Redis::start("hung", &[]);
    redis.signal(nix::sys::signal::Signal::SIGSTOP);
    // The kernel still accepts connections for a stopped server: only the
    // deadline ends the wait.
    check_fault(
        "server hung",
        &redis,
        &format!("password = {ADMIN_PASSWORD}\n"),
        300,
        "no answer within the time budget",
    );
    // The deadline really was waited for (the budget was not skipped).
    let host = Host::new(
        REUSE_FILE,
        &plain_config(&redis, "timeout_ms = 400\n").replace("timeout_ms = 300\n", ""),
    );
    let (_, took) = host.login(&oath::totp_now(SECRET));
    assert!(took >= Duration::from_millis(400), "took {took:?}");
    redis.signal(nix::sys::signal::Signal::SIGCONT);
}

#[test]
#[ignore = "needs root: tests/run-all"]
fn fault_server_restarted() {
    if !can_run() {
        return;
    }
    let mut redis = Redis::start("restart", &[]);
    let hosts = hosts(
        2,
        REUSE_FILE,
        &plain_config(&redis, "failure_policy = closed\n"),
    );
    let code_now = oath::totp_now(SECRET);
    assert_eq!(hosts[0].login(&code_now).0.code, code::PAM_SUCCESS);
    redis.stop();
    // While it is away: the configured policy (closed).
    let (away, _) = hosts[1].login(&code_now);
    assert_eq!(away.code, code::PAM_AUTHINFO_UNAVAIL, "{away}");
    redis.restart();
    // Back, without persistence: the marker is gone (README: a store without
    // persistence forgets markers on restart), and each login connects anew.
    assert!(redis.keys().is_empty());
    let fresh = oath::totp_at(SECRET, oath::now() + 30);
    let (a, _) = hosts[0].login(&fresh);
    assert_eq!(a.code, code::PAM_SUCCESS, "{a}");
    let (b, _) = hosts[1].login(&fresh);
    assert_eq!(b.code, code::PAM_AUTH_ERR, "{b}");
    assert!(logged(&b, "already used on another host"));
}

#[test]
#[ignore = "needs root: tests/run-all"]
fn fault_wrong_password() {
    if !can_run() {
        return;
    }
    let redis = Redis::start("password", &[]);
    redis.add_host_user("tf_host1", "right-password", HOST_COMMANDS);
    check_fault(
        "wrong password",
        &redis,
        "user = tf_host1\npassword = wrong-password\n",
        300,
        "WRONGPASS",
    );
    // The right one works, with the documented ACL.
    let hosts = hosts(
        2,
        REUSE_FILE,
        &format!(
            "url = {}\nuser = tf_host1\npassword = right-password\nrate_limit = 5 30\nmin_replicas = 0\n",
            redis.url()
        ),
    );
    let code_now = oath::totp_now(SECRET);
    let (a, _) = hosts[0].login(&code_now);
    assert_eq!(a.code, code::PAM_SUCCESS, "{a}");
    assert_eq!(shared_state_errors(&a), 0, "{:?}", messages(&a));
    let (b, _) = hosts[1].login(&code_now);
    assert!(logged(&b, "already used on another host"), "{b}");
}

#[test]
#[ignore = "needs root: tests/run-all"]
fn fault_acl_user_missing_a_command() {
    if !can_run() {
        return;
    }
    let redis = Redis::start("acl", &[]);
    // Everything but SET: the rate limit works, the marker is refused.
    redis.add_host_user("tf_host2", "pw2", &HOST_COMMANDS.replace("+set ", ""));
    check_fault(
        "ACL without SET",
        &redis,
        "user = tf_host2\npassword = pw2\nrate_limit = 100 30\n",
        300,
        "NOPERM",
    );
    // Without TIME (called inside the script: ACLs apply there too).
    let redis = Redis::start("acl-time", &[]);
    redis.add_host_user("tf_host3", "pw3", &HOST_COMMANDS.replace(" +time", ""));
    check_fault(
        "ACL without TIME",
        &redis,
        "user = tf_host3\npassword = pw3\nrate_limit = 100 30\n",
        300,
        "can't run this command",
    );
}

#[test]
#[ignore = "needs root: tests/run-all"]
fn an_unusable_configuration_follows_shared_state_policy() {
    if !can_run() {
        return;
    }
    let redis = Redis::start("config", &[]);
    let host = Host::new(REUSE_FILE, &plain_config(&redis, ""));
    // Group-readable: refused, the login goes on with the local file alone.
    fs::set_permissions(&host.config, fs::Permissions::from_mode(0o640)).unwrap();
    let (outcome, _) = host.login(&oath::totp_now(SECRET));
    assert_eq!(outcome.code, code::PAM_SUCCESS, "{outcome}");
    assert!(
        logged(&outcome, "lets group or others in"),
        "{:?}",
        messages(&outcome)
    );
    assert!(redis.keys().is_empty());
    let closed = host
        .scenario
        .login()
        .option("shared_state_policy=closed")
        .answer(oath::totp_at(SECRET, oath::now() + 30))
        .run();
    assert_eq!(closed.code, code::PAM_AUTHINFO_UNAVAIL, "{closed}");
}

/// Certificates made with openssl for one test: a CA, the server's
/// certificate for IP 127.0.0.1, a client certificate, and another CA that
/// signed none of them.
struct Certificates {
    dir: PathBuf,
}

impl Certificates {
    fn make(dir: &Path) -> Certificates {
        fs::create_dir_all(dir).unwrap();
        let run = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(dir)
                .output()
                .expect("openssl is installed");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        for ca in ["ca", "other-ca"] {
            let (key, pem, subject) = (
                format!("{ca}.key"),
                format!("{ca}.pem"),
                format!("/CN=tf {ca}"),
            );
            let mut args = vec!["req", "-x509"];
            args.extend(ec);
            args.extend([
                "-keyout", &key, "-out", &pem, "-days", "2", "-subj", &subject,
            ]);
            run(&args);
        }
        fs::write(dir.join("server.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
        fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
        for (who, ext) in [("server", "server.ext"), ("client", "client.ext")] {
            let mut args = vec!["req"];
            args.extend(ec);
            let (key, csr, pem) = (
                format!("{who}.key"),
                format!("{who}.csr"),
                format!("{who}.pem"),
            );
            let subject = format!("/CN=tf {who}");
            args.extend(["-keyout", &key, "-out", &csr, "-subj", &subject]);
            run(&args);
            run(&[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &pem,
                "-days",
                "2",
                "-extfile",
                ext,
            ]);
        }
        Certificates {
            dir: dir.to_owned(),
        }
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}

fn openssl_installed() -> bool {
    Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
#[ignore = "needs root: tests/run-all"]
fn tls_with_the_right_ca_shares_state_and_a_wrong_ca_follows_the_policy() {
    if !can_run() {
        return;
    }
    if !openssl_installed() {
        assert!(
            std::env::var_os("PAM_TOTP_REQUIRE_ALL").is_none_or(|v| v != "1"),
            "openssl is missing and PAM_TOTP_REQUIRE_ALL=1"
        );
        skipped("TLS fleet test: openssl is not installed");
        return;
    }
    let certs_dir = std::env::temp_dir().join(format!("tf_certs-{}", std::process::id()));
    let certs = Certificates::make(&certs_dir);
    let port = free_port();
    let redis = Redis::start_with(
        "tls",
        port,
        &[
            "--port".into(),
            "0".into(),
            "--tls-port".into(),
            port.to_string(),
        ],
        &[
            "--tls-cert-file".into(),
            certs.path("server.pem"),
            "--tls-key-file".into(),
            certs.path("server.key"),
            "--tls-ca-cert-file".into(),
            certs.path("ca.pem"),
            "--tls-auth-clients".into(),
            "yes".into(),
        ],
        &[
            "--tls".into(),
            "--cacert".into(),
            certs.path("ca.pem"),
            "--cert".into(),
            certs.path("client.pem"),
            "--key".into(),
            certs.path("client.key"),
        ],
    );
    let config = |ca: &str, policy: &str| {
        format!(
            "url = rediss://127.0.0.1:{port}\npassword = {ADMIN_PASSWORD}\ntimeout_ms = 300\n\
             failure_policy = {policy}\nca_file = {}\nclient_cert = {}\nclient_key = {}\n",
            certs.path(ca),
            certs.path("client.pem"),
            certs.path("client.key")
        )
    };
    // The right CA: the state is shared, over TLS with a client certificate.
    let hosts = hosts(2, REUSE_FILE, &config("ca.pem", "local"));
    let code_now = oath::totp_now(SECRET);
    let (a, took) = hosts[0].login(&code_now);
    eprintln!("TLS login: {} in {took:?}", a.code_name);
    assert_eq!(a.code, code::PAM_SUCCESS, "{a}");
    assert_eq!(shared_state_errors(&a), 0, "{:?}", messages(&a));
    let (b, _) = hosts[1].login(&code_now);
    assert!(logged(&b, "already used on another host"), "{b}");
    assert_eq!(redis.keys().len(), 1);

    // The wrong CA: the server's certificate is not trusted.
    let wrong = config("other-ca.pem", "local");
    let wrong_extra = wrong
        .lines()
        .filter(|l| {
            !l.starts_with("url")
                && !l.starts_with("timeout_ms")
                && !l.starts_with("failure_policy")
        })
        .map(|l| format!("{l}\n"))
        .collect::<String>();
    let tls_redis = RedisAt {
        url: format!("rediss://127.0.0.1:{port}"),
    };
    check_fault_at(
        "TLS with a wrong CA",
        &tls_redis.url,
        &wrong_extra,
        300,
        "certificate verify failed",
    );
    let _ = fs::remove_dir_all(&certs_dir);
}

struct RedisAt {
    url: String,
}

#[test]
#[ignore = "needs root: tests/run-all"]
fn unknown_and_unenrolled_users_cause_the_same_kind_of_exchange() {
    if !can_run() {
        return;
    }
    let redis = Redis::start("decoy", &[]);
    let host = Host::new(REUSE_FILE, &plain_config(&redis, ""));
    // No account: prompted, refused, and the store sees one attempt counted
    // on a key that names nobody.
    let unknown = host
        .scenario
        .login()
        .user("tf_nosuchuser")
        .answer("123456")
        .run();
    assert_eq!(unknown.code, code::PAM_AUTH_ERR, "{unknown}");
    let keys = redis.keys();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(keys[0].starts_with("pam_totp:r:"), "{keys:?}");
    assert!(!keys[0].contains("tf_nosuchuser"));
    // No secret file: the same.
    fs::remove_file(host.scenario.secret_path()).unwrap();
    let unenrolled = host.scenario.authenticate("123456");
    assert_eq!(unenrolled.code, code::PAM_AUTH_ERR, "{unenrolled}");
    assert_eq!(redis.keys().len(), 2);
    // An enrolled user's wrong code: one attempt counted, as above.
    host.scenario
        .write_secret(&format!("{REUSE_FILE}\" RATE_LIMIT 3 30\n"));
    let wrong = host.scenario.authenticate("000000");
    assert_eq!(wrong.code, code::PAM_AUTH_ERR, "{wrong}");
    let keys = redis.keys();
    assert_eq!(keys.len(), 3, "{keys:?}");
    assert!(
        keys.iter().all(|k| k.starts_with("pam_totp:r:")),
        "{keys:?}"
    );
}

#[test]
#[ignore = "needs root: tests/run-all"]
fn min_replicas_waits_for_a_replica_within_the_budget() {
    if !can_run() {
        return;
    }
    let redis = Redis::start("primary", &[]);
    // No replica yet: WAIT times out with 0 acknowledgements.
    check_fault(
        "no replica for min_replicas = 1",
        &redis,
        &format!("password = {ADMIN_PASSWORD}\nmin_replicas = 1\n"),
        300,
        "acknowledged by 0 replicas",
    );
    // The markers above were set before WAIT failed (and stay: a code
    // spent is spent); start clean for the second half.
    redis.cli(&["FLUSHALL"]);
    // With a replica of the primary, the marker is acknowledged.
    let replica = Redis::start(
        "replica",
        &[
            "--replicaof".into(),
            "127.0.0.1".into(),
            redis.port.to_string(),
            "--masterauth".into(),
            ADMIN_PASSWORD.into(),
        ],
    );
    let until = Instant::now() + Duration::from_secs(10);
    while !replica
        .cli(&["INFO", "replication"])
        .contains("master_link_status:up")
    {
        assert!(Instant::now() < until, "the replica did not connect");
        std::thread::sleep(Duration::from_millis(50));
    }
    let hosts = hosts(
        2,
        REUSE_FILE,
        &plain_config(&redis, "min_replicas = 1\nfailure_policy = closed\n"),
    );
    let code_now = oath::totp_now(SECRET);
    let (a, _) = hosts[0].login(&code_now);
    assert_eq!(a.code, code::PAM_SUCCESS, "{a}");
    assert_eq!(shared_state_errors(&a), 0, "{:?}", messages(&a));
    // The replica has the marker.
    assert_eq!(
        replica
            .keys()
            .iter()
            .filter(|k| k.starts_with("pam_totp:u:"))
            .count(),
        1
    );
    let (b, _) = hosts[1].login(&code_now);
    assert!(logged(&b, "already used on another host"), "{b}");
}

#[test]
#[ignore = "needs root: tests/run-all"]
fn the_fleet_window_is_seconds_long_on_the_servers_clock() {
    if !can_run() {
        return;
    }
    let redis = Redis::start("window", &[]);
    // Two earlier attempts stamped with the server's own clock: one 31 s
    // old (outside a 30 s window), one 29 s old (inside it).
    let time = redis.cli(&["TIME"]);
    let mut parts = time.lines();
    let seconds: u64 = parts.next().unwrap().trim().parse().unwrap();
    let micros: u64 = parts.next().unwrap().trim().parse().unwrap();
    let now_ms = seconds * 1000 + micros / 1000;
    let key = "pam_totp:r:test";
    let old = (now_ms - 31_000).to_string();
    let recent = (now_ms - 29_000).to_string();
    redis.cli(&["ZADD", key, &old, "old", &recent, "recent"]);
    let script = pam_totp::fleet::RATE_LIMIT_SCRIPT;
    let count = |limit: &str| redis.cli(&["EVAL", script, "1", key, limit, "30000", "member"]);
    // The script answers how many attempts were already in the window: 1.
    assert_eq!(count("5"), "1");
    assert_eq!(
        redis.cli(&["ZCARD", key]),
        "2",
        "the old one removed, this one added"
    );
    // Only the newest ATTEMPTS are kept, and the key expires.
    assert_eq!(count("1"), "2");
    assert_eq!(redis.cli(&["ZCARD", key]), "1");
    let ttl: i64 = redis.cli(&["PTTL", key]).parse().unwrap();
    assert!(ttl > 30_000 && ttl <= 31_000, "PTTL {ttl}");
}

/// The README's example configuration is one the module accepts, and its
/// ACL line is the one the tests run with.
#[test]
fn the_readme_example_configuration_parses() {
    let readme = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
        .expect("README.md");
    let start = readme
        .find("/etc/security/pam_totp_shared.conf` (refused")
        .expect("the README shows a configuration");
    let example: String = readme[start..]
        .lines()
        .skip(1)
        .skip_while(|l| !l.starts_with("    "))
        .take_while(|l| l.starts_with("    "))
        .map(|l| format!("{}\n", &l[4..]))
        .collect();
    assert!(example.contains("url = "), "{example}");
    let config = pam_totp::fleet::Config::parse(example.as_bytes(), &|_| {
        Ok(pam_totp::fleet::config::Password::from(String::new()))
    })
    .unwrap_or_else(|e| panic!("{e}\n{example}"));
    assert!(config.tls.is_some() && config.user.is_some());
    // The ACL the README gives operators is the one the tests use.
    assert!(
        readme.contains(&format!("~pam_totp:* -@all {HOST_COMMANDS}")),
        "README's ACL line differs from HOST_COMMANDS"
    );
}
