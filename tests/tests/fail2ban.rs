//! The fail2ban filter and jail in packaging/fail2ban/, against lines the
//! real module wrote through real libpam (the harness's syslog capture), with
//! the real fail2ban tools: `fail2ban-regex` on those lines, `fail2ban-client
//! -t` on the jail, and a `fail2ban-server` of the test's own (private socket,
//! pid file and database, dummy action, `backend = polling` on a syslog-format
//! file) that must ban a host after the jail's `maxretry` failures and not
//! before.
//!
//! The harness catches what the module passes to syslog(3); the test puts
//! each message into the envelope a syslog daemon writes to auth.log
//! (`<date> <host> sshd[<pid>]: <message>`), which is all the daemon adds.

mod ops;

use ops::{have, run, skip_unless, stdout, syslog_now};
use pam_totp_tests::{code, oath, Module, Outcome, Scenario};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SECRET: &str = "JBSWY3DPEHPK3PXP";
const T: u64 = 1_767_225_600;
const SCRATCH: &str = "12345678";

fn filter_file() -> PathBuf {
    ops::repo().join("packaging/fail2ban/filter.d/pam-totp.conf")
}

fn jail_file() -> PathBuf {
    ops::repo().join("packaging/fail2ban/jail.d/pam-totp.conf")
}

fn fail2ban_missing() -> bool {
    ops::use_installed_module_name();
    skip_unless(
        have("fail2ban-regex") && have("fail2ban-server") && have("fail2ban-client"),
        "fail2ban is not installed (apt-get install fail2ban; see tests/DEPENDENCIES)",
    )
}

/// One line the module logged, and what the filter must make of it.
struct Logged {
    message: String,
    /// The host fail2ban must count a failure against, or None for a line
    /// that must not match.
    bans: Option<&'static str>,
}

/// The module's only log line of one login (without `debug` it writes one).
fn the_line(outcome: &Outcome) -> String {
    let ours: Vec<_> = outcome
        .logs
        .iter()
        .filter(|l| l.message.starts_with("pam_totp(sshd:auth): "))
        .collect();
    assert_eq!(ours.len(), 1, "one line per login: {outcome}");
    ours[0].message.clone()
}

/// Runs logins of every kind through real libpam and returns the module's
/// lines, each with the verdict the filter must reach.
fn real_module_lines() -> Vec<Logged> {
    let mut lines = Vec::new();
    let mut log = |outcome: &Outcome, bans: Option<&'static str>, contains: &str| {
        let message = the_line(outcome);
        assert!(message.contains(contains), "{message}");
        lines.push(Logged { message, bans });
    };

    let scenario = Scenario::new(Module::Ours).at(T);
    scenario.write_secret(&format!(
        "{SECRET}\n\" DISALLOW_REUSE\n\" TOTP_AUTH\n{SCRATCH}\n"
    ));
    let login = || scenario.login().service("sshd");
    let good = oath::totp_at(SECRET, T);

    let accepted = login().rhost("192.0.2.1").answer(&good).run();
    assert_eq!(accepted.code, code::PAM_SUCCESS, "{accepted}");
    log(&accepted, None, "accepted verification code");

    let reused = login().rhost("192.0.2.2").answer(&good).run();
    assert_eq!(reused.code, code::PAM_AUTH_ERR, "{reused}");
    log(&reused, Some("192.0.2.2"), "already used");

    let wrong = login()
        .rhost("192.0.2.3")
        .answer(oath::wrong_totp(SECRET, T))
        .run();
    assert_eq!(wrong.code, code::PAM_AUTH_ERR, "{wrong}");
    log(&wrong, Some("192.0.2.3"), "invalid verification code");

    let bad_scratch = login().rhost("192.0.2.4").answer("87654321").run();
    assert_eq!(bad_scratch.code, code::PAM_AUTH_ERR, "{bad_scratch}");
    log(&bad_scratch, Some("192.0.2.4"), "invalid scratch code");

    let not_a_code = login().rhost("2001:db8::5").answer("abc").run();
    assert_eq!(not_a_code.code, code::PAM_AUTH_ERR, "{not_a_code}");
    log(&not_a_code, Some("2001:db8::5"), "invalid input");

    let unknown = login()
        .user("to_no_such_user")
        .rhost("192.0.2.6")
        .answer("123456")
        .run();
    assert_eq!(unknown.code, code::PAM_AUTH_ERR, "{unknown}");
    log(&unknown, Some("192.0.2.6"), "no such user");

    // A user name made up to look like another host's failure must not get
    // that host banned (nor, with it, anyone).
    let forged = login()
        .user("to_x from 198.51.100.9: invalid verification code")
        .rhost("192.0.2.7")
        .answer("123456")
        .run();
    assert_eq!(forged.code, code::PAM_AUTH_ERR, "{forged}");
    log(&forged, None, "from 192.0.2.7: no such user");

    // No remote host (sudo, console): nobody to ban.
    let local = login().answer(oath::wrong_totp(SECRET, T)).run();
    assert_eq!(local.code, code::PAM_AUTH_ERR, "{local}");
    log(&local, None, "invalid verification code");

    let scratch = login().rhost("192.0.2.1").answer(SCRATCH).run();
    assert_eq!(scratch.code, code::PAM_SUCCESS, "{scratch}");
    log(&scratch, None, "accepted emergency scratch code");

    // The administrator's mistake, not an attack.
    let typo = login()
        .option("nulok")
        .rhost("192.0.2.8")
        .answer("123456")
        .run();
    assert_eq!(typo.code, code::PAM_SERVICE_ERR, "{typo}");
    log(&typo, None, "unknown module option");

    let limited = Scenario::new(Module::Ours).at(T);
    limited.write_secret(&format!("{SECRET}\n\" RATE_LIMIT 2 30\n\" TOTP_AUTH\n"));
    for attempt in 0..3 {
        let outcome = limited
            .login()
            .service("sshd")
            .rhost("192.0.2.20")
            .answer(oath::wrong_totp(SECRET, T))
            .run();
        assert_eq!(outcome.code, code::PAM_AUTH_ERR, "{outcome}");
        let expected = if attempt < 2 {
            "invalid verification code"
        } else {
            "too many attempts"
        };
        log(&outcome, Some("192.0.2.20"), expected);
    }
    lines
}

/// The messages in the envelope a syslog daemon writes to auth.log.
fn syslog_file(path: &Path, messages: &[String]) {
    let date = syslog_now();
    let text: String = messages
        .iter()
        .map(|m| format!("{date} testhost sshd[4242]: {m}\n"))
        .collect();
    fs::write(path, text).unwrap();
}

/// `Lines: N lines, I ignored, M matched, K missed` from fail2ban-regex.
fn regex_counts(report: &str) -> (usize, usize, usize, usize) {
    let line = report
        .lines()
        .find(|l| l.starts_with("Lines: "))
        .unwrap_or_else(|| panic!("no Lines: summary in\n{report}"));
    let numbers: Vec<usize> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(numbers.len(), 4, "{line}");
    (numbers[0], numbers[1], numbers[2], numbers[3])
}

#[test]
fn the_filter_matches_each_failure_the_module_logs_with_its_host() {
    if fail2ban_missing() {
        return;
    }
    let lines = real_module_lines();
    // In a configuration tree, beside the stock common.conf it includes.
    let dir = private_config("regex");
    let filter = dir.join("filter.d/pam-totp.conf");
    let log = dir.join("auth.log");
    let messages: Vec<String> = lines.iter().map(|l| l.message.clone()).collect();
    syslog_file(&log, &messages);

    let report = stdout(&run(Command::new("fail2ban-regex")
        .arg("--print-all-missed")
        .arg(&log)
        .arg(&filter)));
    eprintln!("{report}");
    let expected_matches = lines.iter().filter(|l| l.bans.is_some()).count();
    let (total, ignored, matched, missed) = regex_counts(&report);
    assert_eq!(total, lines.len(), "{report}");
    assert_eq!(ignored, 0, "{report}");
    assert_eq!(matched, expected_matches, "{report}");
    assert_eq!(missed, lines.len() - expected_matches, "{report}");

    // The host of each match, in order: the one the module saw.
    let hosts = stdout(&run(Command::new("fail2ban-regex")
        .args(["-o", "ip"])
        .arg(&log)
        .arg(&filter)));
    let hosts: Vec<&str> = hosts.lines().map(str::trim).collect();
    let expected: Vec<&str> = lines.iter().filter_map(|l| l.bans).collect();
    assert_eq!(hosts, expected, "hosts fail2ban would count against");
    assert!(!hosts.contains(&"198.51.100.9"), "a forged host counted");
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn the_jail_example_passes_fail2ban_client_t() {
    if fail2ban_missing() {
        return;
    }
    let conf = private_config("jail-t");
    fs::copy(jail_file(), conf.join("jail.d/pam-totp.conf")).unwrap();
    let out = run(Command::new("fail2ban-client")
        .arg("-c")
        .arg(&conf)
        .arg("-t"));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("OK")
            || stdout(&out).contains("OK: configuration test is successful"),
        "{out:?}"
    );
    let shipped = fs::read_to_string(jail_file()).unwrap();
    assert!(
        shipped
            .lines()
            .any(|l| l.replace(' ', "") == "enabled=false"),
        "the example jail is disabled by default"
    );
    assert!(
        shipped
            .lines()
            .any(|l| l.replace(' ', "") == "backend=systemd"),
        "Debian 12 without rsyslog has no auth.log: the journal"
    );
    // Enabled as shipped (systemd backend), the configuration still parses.
    fs::write(
        conf.join("jail.d/pam-totp.local"),
        "[pam-totp]\nenabled = true\n",
    )
    .unwrap();
    run(Command::new("fail2ban-client")
        .arg("-c")
        .arg(&conf)
        .arg("-t"));
    let _ = fs::remove_dir_all(&conf);
}

/// A fail2ban-server of the test's own, stopped on drop.
struct Server {
    child: Option<Child>,
    socket: PathBuf,
    conf: PathBuf,
}

impl Server {
    fn client(&self, args: &[&str]) -> std::process::Output {
        Command::new("fail2ban-client")
            .arg("-c")
            .arg(&self.conf)
            .arg("-s")
            .arg(&self.socket)
            .args(args)
            .output()
            .unwrap()
    }

    /// `fail2ban-client status pam-totp`, waiting up to 60 s until `ready`
    /// says yes (fail2ban polls the file about once a second).
    fn status_until(&self, ready: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let out = self.client(&["status", "pam-totp"]);
            let text = stdout(&out);
            if out.status.success() && ready(&text) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "fail2ban never reached the expected state:\n{text}\n{}\n{}",
                String::from_utf8_lossy(&out.stderr),
                fs::read_to_string(self.conf.join("fail2ban.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.client(&["stop"]);
        if let Some(mut child) = self.child.take() {
            let deadline = Instant::now() + Duration::from_secs(20);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = fs::remove_dir_all(&self.conf);
    }
}

/// `Total failed:` and `Banned IP list:` of a jail status.
fn field<'a>(status: &'a str, name: &str) -> &'a str {
    status
        .lines()
        .find_map(|l| l.split_once(name).map(|(_, v)| v.trim()))
        .unwrap_or("")
}

#[test]
fn a_real_fail2ban_server_bans_after_maxretry_failures() {
    if fail2ban_missing() {
        return;
    }
    let shipped = fs::read_to_string(jail_file()).unwrap();
    let maxretry: usize = shipped
        .lines()
        .find_map(|l| l.split_once('=').filter(|(k, _)| k.trim() == "maxretry"))
        .map(|(_, v)| v.trim().parse().unwrap())
        .expect("maxretry in the jail");
    assert!(maxretry >= 2);

    // The module's real lines: maxretry wrong codes from one host.
    let host = "192.0.2.30";
    let scenario = Scenario::new(Module::Ours).at(T);
    scenario.write_secret(&format!("{SECRET}\n\" TOTP_AUTH\n"));
    let failures: Vec<String> = (0..maxretry)
        .map(|_| {
            let outcome = scenario
                .login()
                .service("sshd")
                .rhost(host)
                .answer(oath::wrong_totp(SECRET, T))
                .run();
            assert_eq!(outcome.code, code::PAM_AUTH_ERR, "{outcome}");
            the_line(&outcome)
        })
        .collect();

    let conf = private_config("server");
    let log = conf.join("auth.log");
    fs::write(&log, "").unwrap();
    let dummy = conf.join("dummy-actions");
    fs::copy(jail_file(), conf.join("jail.d/pam-totp.conf")).unwrap();
    // The shipped jail, enabled, reading a file instead of the journal and
    // with an action that only writes down what it would ban.
    fs::write(
        conf.join("jail.d/pam-totp.local"),
        format!(
            "[pam-totp]\nenabled = true\nbackend = polling\nlogpath = {}\n\
             action = dummy[target={}]\n",
            log.display(),
            dummy.display()
        ),
    )
    .unwrap();
    let socket = conf.join("fail2ban.sock");
    let pidfile = conf.join("fail2ban.pid");
    fs::write(
        conf.join("fail2ban.local"),
        format!(
            "[DEFAULT]\nlogtarget = {}\nsocket = {}\npidfile = {}\ndbfile = :memory:\n",
            conf.join("fail2ban.log").display(),
            socket.display(),
            pidfile.display()
        ),
    )
    .unwrap();
    let child = Command::new("fail2ban-server")
        .arg("-f")
        .arg("-x")
        .arg("-c")
        .arg(&conf)
        .arg("-s")
        .arg(&socket)
        .arg("-p")
        .arg(&pidfile)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start fail2ban-server");
    let server = Server {
        child: Some(child),
        socket,
        conf: conf.clone(),
    };
    server.status_until(|s| s.contains("Total failed:"));

    let append = |message: &str| {
        let mut file = fs::OpenOptions::new().append(true).open(&log).unwrap();
        writeln!(file, "{} testhost sshd[4242]: {message}", syslog_now()).unwrap();
    };
    for message in &failures[..maxretry - 1] {
        append(message);
    }
    let before = server.status_until(|s| field(s, "Total failed:") == (maxretry - 1).to_string());
    assert_eq!(field(&before, "Currently banned:"), "0", "{before}");

    append(&failures[maxretry - 1]);
    let after = server.status_until(|s| field(s, "Currently banned:") == "1");
    assert_eq!(field(&after, "Banned IP list:"), host, "{after}");
    let actions = fs::read_to_string(&dummy).unwrap_or_default();
    assert!(
        actions.lines().any(|l| l == format!("+{host}")),
        "the dummy action was told to ban {host}:\n{actions}"
    );
    drop(server);
}

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("to_fail2ban-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// A copy of the system's fail2ban configuration (stock filters, actions
/// and paths) without its jails, plus the project's filter.
fn private_config(name: &str) -> PathBuf {
    let dir = tempdir(name);
    run(Command::new("cp").args(["-r", "/etc/fail2ban/."]).arg(&dir));
    for jail in fs::read_dir(dir.join("jail.d")).unwrap() {
        fs::remove_file(jail.unwrap().path()).unwrap();
    }
    fs::copy(filter_file(), dir.join("filter.d/pam-totp.conf")).unwrap();
    dir
}
