//! pam_totp-check: run it before reloading sshd (or after editing any file
//! in /etc/pam.d). It reads every pam_totp line with the module's own option
//! parser, follows each service's `auth` stack as libpam would, reads sshd's
//! effective configuration (`sshd -T`), and says for each user who can log
//! in whether they would get in, and why not.
//!
//! Exit status: 2 when a pam_totp line does not parse, sshd's configuration
//! cannot be read, or root or the admin running the check would be locked
//! out; 1 when some users would be refused (listed); 0 otherwise.

mod accounts;
mod clock;
mod pam_conf;
mod sshd;
mod stack;

use accounts::Account;
use pam_conf::{ModuleLine, Outcome, Problem};
use pam_totp::options::ModuleOptions;
use pam_totp::secret_file::SecretFile;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const USAGE: &str = "\
usage: pam_totp-check [--root DIR] [--admin NAME] [--sshd PATH | --no-sshd] [--quiet]

Checks the PAM and sshd configuration before you reload sshd: every
pam_totp line in /etc/pam.d, the auth stacks of sshd, login and sudo,
`sshd -T`, the clock, and for each user who can log in whether they would
get in.

  --root DIR     check the configuration tree under DIR (DIR/etc/pam.d,
                 DIR/etc/passwd, DIR/etc/ssh/sshd_config, homes under DIR)
  --admin NAME   the administrator who must not be locked out
                 (default: $SUDO_USER, else the login user, else root)
  --sshd PATH    the sshd program to ask (default /usr/sbin/sshd)
  --no-sshd      do not ask sshd; check PAM only
  --quiet        print only problems and the summary

Exit status: 0 everyone gets in; 1 some users would be refused (listed);
2 a pam_totp line does not parse, sshd -T fails, or root or the admin
would be locked out.";

struct Args {
    root: PathBuf,
    admin: Option<String>,
    sshd: Option<PathBuf>,
    no_sshd: bool,
    quiet: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        root: PathBuf::from("/"),
        admin: None,
        sshd: None,
        no_sshd: false,
        quiet: false,
    };
    let mut it = std::env::args_os().skip(1);
    while let Some(arg) = it.next() {
        let arg = arg.to_string_lossy().into_owned();
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| it.next().map(|v| v.to_string_lossy().into_owned()))
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag.as_str() {
            "--root" => args.root = PathBuf::from(value("--root")?),
            "--admin" => args.admin = Some(value("--admin")?),
            "--sshd" => args.sshd = Some(PathBuf::from(value("--sshd")?)),
            "--no-sshd" => args.no_sshd = true,
            "-q" | "--quiet" => args.quiet = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            "--version" => {
                println!("pam_totp-check {}", env!("CARGO_PKG_VERSION"));
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if !args.root.is_absolute() {
        return Err("--root needs an absolute path".into());
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("pam_totp-check: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut report = Report {
        quiet: args.quiet,
        ..Report::default()
    };
    check(&args, &mut report);
    report.finish()
}

#[derive(Default)]
struct Report {
    quiet: bool,
    /// Reasons for exit status 2.
    fatal: Vec<String>,
    /// Users refused somewhere (exit status 1).
    refused: Vec<String>,
}

impl Report {
    fn section(&self, title: &str) {
        if !self.quiet {
            println!("\n== {title}");
        }
    }
    fn info(&self, text: &str) {
        if !self.quiet {
            println!("  {text}");
        }
    }
    fn warn(&self, text: &str) {
        println!("  WARNING {text}");
    }
    fn error(&mut self, text: String) {
        println!("  ERROR   {text}");
        self.fatal.push(text);
    }
    fn finish(self) -> ExitCode {
        println!();
        if !self.fatal.is_empty() {
            println!(
                "pam_totp-check: {} error(s): fix them before reloading sshd; keep a root shell open",
                self.fatal.len()
            );
            return ExitCode::from(2);
        }
        if !self.refused.is_empty() {
            println!(
                "pam_totp-check: {} user(s) would be refused: {}",
                self.refused.len(),
                self.refused.join(", ")
            );
            return ExitCode::from(1);
        }
        println!("pam_totp-check: ok: every user who can log in would get in");
        ExitCode::SUCCESS
    }
}

/// Everything the checks share.
struct World {
    root: PathBuf,
    pam_d: PathBuf,
    accounts: Vec<Account>,
}

impl World {
    fn account(&self, name: &str) -> Option<&Account> {
        self.accounts.iter().find(|a| a.name == name)
    }

    /// A path of the checked system, under the root.
    fn under_root(&self, path: &Path) -> PathBuf {
        match path.strip_prefix("/") {
            Ok(relative) => self.root.join(relative),
            Err(_) => self.root.join(path),
        }
    }

    fn module_installed(&self, module: &str) -> bool {
        if module.starts_with('/') {
            return self.under_root(Path::new(module)).is_file();
        }
        let triple = multiarch();
        [
            format!("lib/{triple}/security"),
            format!("usr/lib/{triple}/security"),
            "lib/security".to_owned(),
            "usr/lib/security".to_owned(),
            "lib64/security".to_owned(),
        ]
        .iter()
        .any(|dir| self.root.join(dir).join(module).is_file())
    }
}

fn multiarch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "x86_64-linux-gnu",
        "aarch64" => "aarch64-linux-gnu",
        "x86" => "i386-linux-gnu",
        "arm" => "arm-linux-gnueabihf",
        "riscv64" => "riscv64-linux-gnu",
        other => other,
    }
}

fn today() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400)
}

fn default_admin() -> String {
    if let Ok(user) = std::env::var("SUDO_USER") {
        if !user.is_empty() && user != "root" {
            return user;
        }
    }
    // The user who logged in, through su and sudo alike.
    let loginuid = fs::read_to_string("/proc/self/loginuid").unwrap_or_default();
    if let Ok(uid) = loginuid.trim().parse::<u32>() {
        if uid != u32::MAX {
            if let Some(name) = accounts::read_accounts(Path::new("/"))
                .into_iter()
                .find(|a| a.uid == uid)
                .map(|a| a.name)
            {
                return name;
            }
        }
    }
    "root".into()
}

fn check(args: &Args, report: &mut Report) {
    let world = World {
        root: args.root.clone(),
        pam_d: args.root.join("etc/pam.d"),
        accounts: accounts::read_accounts(&args.root),
    };
    if !args.quiet {
        println!("pam_totp-check: checking {}", world.root.display());
    }

    check_pam_lines(&world, report);

    let mut problems = Vec::new();
    let stacks: Vec<(&str, Vec<pam_conf::Entry>)> = ["sshd", "login", "sudo"]
        .into_iter()
        .filter(|s| world.pam_d.join(s).is_file())
        .map(|s| (s, pam_conf::auth_stack(&world.pam_d, s, &mut problems)))
        .collect();
    problems.dedup();
    for Problem { origin, message } in problems {
        report.warn(&format!("{origin}: {message}"));
    }

    report.section("Clock");
    match clock::state() {
        clock::ClockState::Synchronised => {
            report.info("synchronised (adjtimex: STA_UNSYNC is clear)")
        }
        clock::ClockState::Unsynchronised => report.warn(
            "the clock is not synchronised (adjtimex: STA_UNSYNC): codes may be refused; \
             run an NTP client (systemd-timesyncd, chrony)",
        ),
        clock::ClockState::Unknown(e) => report.warn(&format!("cannot read the clock state: {e}")),
    }

    let sshd = if args.no_sshd {
        None
    } else {
        let found = sshd::find_sshd(&world.root, args.sshd.clone());
        if found.is_none() {
            report.section("sshd");
            report.info("sshd is not installed: SSH logins not checked");
        }
        found
    };
    let admin = args.admin.clone().unwrap_or_else(default_admin);
    let sudoers: Vec<String> = ["sudo", "admin", "wheel"]
        .iter()
        .flat_map(|g| accounts::group_members(&world.root, g))
        .collect();

    if let (Some(sshd), true) = (&sshd, world.pam_d.join("sshd").is_file()) {
        match sshd.settings_for("root") {
            Ok(settings) => {
                let stack = &stacks
                    .iter()
                    .find(|(s, _)| *s == "sshd")
                    .expect("read above")
                    .1;
                show_sshd(&settings, stack, report);
            }
            Err(e) => {
                report.section("sshd -T");
                report.error(format!("sshd: {e}"));
                return;
            }
        }
    }

    report.section("Users");
    let shells = accounts::read_shells(&world.root);
    let today = today();
    for account in &world.accounts {
        let is_admin = account.name == admin;
        if let Some(why) = accounts::cannot_log_in(account, &shells, today) {
            if account.uid == 0 || is_admin {
                report.info(&format!("{}: cannot log in at all: {why}", account.name));
            }
            continue;
        }
        let stack_of = |name: &str| stacks.iter().find(|(s, _)| *s == name).map(|(_, st)| st);
        let mut ways_in = Vec::new();
        let mut refusals = Vec::new();

        if let (Some(sshd), Some(stack)) = (&sshd, stack_of("sshd")) {
            match sshd.settings_for(&account.name) {
                Ok(settings) => match ssh_verdict(&settings, stack, account, &world) {
                    Ok(how) => ways_in.push(format!("sshd: {how}")),
                    Err(SshRefusal::ByPam(why)) => refusals.push(format!("sshd: {why}")),
                    Err(SshRefusal::BeforePam(why)) => report.info(&format!(
                        "{}: no SSH access whatever PAM says: {why}",
                        account.name
                    )),
                },
                Err(e) => {
                    report.error(format!("sshd: {e}"));
                    return;
                }
            }
        }
        // Console logins matter for root (the way back in); sudo for admins.
        if account.uid == 0 {
            if let Some(stack) = stack_of("login") {
                match pam_verdict(stack, account, &world, false) {
                    Ok(how) => ways_in.push(format!("console login: {how}")),
                    Err(why) => refusals.push(format!("console login: {why}")),
                }
            }
        }
        if account.uid != 0 && (sudoers.contains(&account.name) || is_admin) {
            if let Some(stack) = stack_of("sudo") {
                match pam_verdict(stack, account, &world, false) {
                    Ok(how) => ways_in.push(format!("sudo: {how}")),
                    Err(why) => refusals.push(format!("sudo: {why}")),
                }
            }
        }

        let label = match (account.uid == 0, is_admin) {
            (true, _) => format!("{} (root)", account.name),
            (false, true) => format!("{} (admin running this check)", account.name),
            (false, false) => account.name.clone(),
        };
        for way in &ways_in {
            report.info(&format!("{label}: gets in: {way}"));
        }
        for why in &refusals {
            println!("  REFUSED {label}: {why}");
        }
        if refusals.is_empty() {
            continue;
        }
        report.refused.push(account.name.clone());
        if account.uid == 0 && ways_in.is_empty() {
            report.error(
                "root would be locked out of every checked way in (console login and sshd)".into(),
            );
        } else if is_admin && account.uid != 0 {
            report.error(format!(
                "{} (the admin running this check) would be refused: {}",
                account.name,
                refusals.join("; ")
            ));
        }
    }
}

/// Every line in pam.d that names pam_totp.so, through the module's parser.
fn check_pam_lines(world: &World, report: &mut Report) {
    report.section(&format!("pam_totp lines in {}", world.pam_d.display()));
    let lines = pam_conf::lines_naming(&world.pam_d, "pam_totp.so");
    if lines.is_empty() {
        report.info("none: pam_totp is not turned on anywhere");
    }
    for (origin, args) in lines {
        match ModuleOptions::parse(&args) {
            Ok(_) => report.info(&format!("ok    {origin}: {}", module_text(&args))),
            Err(e) => report.error(format!(
                "{origin}: {}: {e} (the module fails every login through this line)",
                module_text(&args)
            )),
        }
    }
}

fn module_text(args: &[String]) -> String {
    std::iter::once("pam_totp.so".to_owned())
        .chain(args.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ")
}

fn show_sshd(settings: &sshd::Settings, stack: &[pam_conf::Entry], report: &mut Report) {
    report.section("sshd -T");
    let methods: Vec<String> = settings.methods.iter().map(|m| m.join(",")).collect();
    report.info(&format!(
        "UsePAM {}, KbdInteractiveAuthentication {}, PasswordAuthentication {}, AuthenticationMethods {}",
        yes(settings.use_pam),
        yes(settings.kbd_interactive),
        yes(settings.password),
        methods.join(" ")
    ));
    if !settings.allow_users.is_empty() {
        report.info(&format!("AllowUsers {}", settings.allow_users.join(" ")));
    }
    if !settings.deny_users.is_empty() {
        report.info(&format!("DenyUsers {}", settings.deny_users.join(" ")));
    }
    let totp_in_stack = stack_names(stack).iter().any(|n| n == "pam_totp.so");
    if totp_in_stack {
        if !settings.use_pam {
            report.warn("UsePAM no: sshd never runs /etc/pam.d/sshd, so no code is asked on SSH");
        } else if !settings.kbd_interactive {
            report.warn(
                "KbdInteractiveAuthentication no: sshd cannot ask for the code \
                 (an earlier line in sshd_config wins: put the setting in a file in \
                 /etc/ssh/sshd_config.d/)",
            );
        }
        if settings
            .methods
            .iter()
            .any(|m| m == &["publickey".to_owned()])
        {
            report.warn("a key alone logs in (AuthenticationMethods allows publickey by itself): no code is asked then");
        }
    }
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

fn stack_names(stack: &[pam_conf::Entry]) -> Vec<String> {
    let mut names = Vec::new();
    for entry in stack {
        match entry {
            pam_conf::Entry::Module(line) => names.push(line.name().to_owned()),
            pam_conf::Entry::Substack { stack, .. } => names.extend(stack_names(stack)),
        }
    }
    names
}

/// Whether `account` gets through `stack`; `password_method` is sshd's
/// "password" method, where sshd answers every PAM prompt with the password.
fn pam_verdict(
    stack: &[pam_conf::Entry],
    account: &Account,
    world: &World,
    password_method: bool,
) -> Result<String, String> {
    let mut steps = Vec::new();
    let walk = stack::walk(stack, &mut |line| {
        let (outcome, reason) = module_result(line, account, world, password_method);
        let counts = match outcome {
            Outcome::Success => line.name() != "pam_permit.so",
            Outcome::Ignore => line.name() == "pam_totp.so",
            _ => false,
        };
        if counts {
            steps.push(reason.clone());
        }
        (outcome, reason)
    });
    if walk.success {
        steps.dedup();
        Ok(if steps.is_empty() {
            "no question asked".into()
        } else {
            steps.join(", then ")
        })
    } else {
        Err(walk.why)
    }
}

/// What one module line returns for `account`, and why.
fn module_result(
    line: &ModuleLine,
    account: &Account,
    world: &World,
    password_method: bool,
) -> (Outcome, String) {
    if !world.module_installed(&line.module) {
        return if line.optional_load {
            (Outcome::Ignore, "not installed; skipped (-auth)".into())
        } else {
            (
                Outcome::ModuleUnknown,
                "module not installed: libpam says \"Module is unknown\"".into(),
            )
        };
    }
    match line.name() {
        "pam_totp.so" => {
            let (outcome, why) = totp_result(line, account, world);
            if password_method && outcome != Outcome::Ignore {
                return (
                    Outcome::AuthErr,
                    "sshd's password method answers the code prompt with the password".into(),
                );
            }
            (outcome, why)
        }
        "pam_unix.so" => {
            if account.has_password() {
                (Outcome::Success, "password".into())
            } else if account.password_is_empty() && line.args.iter().any(|a| a == "nullok") {
                (Outcome::Success, "empty password allowed (nullok)".into())
            } else {
                (
                    Outcome::AuthErr,
                    "pam_unix needs a password and the account has none".into(),
                )
            }
        }
        "pam_permit.so" => (Outcome::Success, "pam_permit".into()),
        "pam_deny.so" => (Outcome::AuthErr, "pam_deny".into()),
        "pam_env.so" | "pam_faildelay.so" | "pam_nologin.so" | "pam_cap.so" | "pam_group.so"
        | "pam_securetty.so" | "pam_rootok.so" | "pam_keyinit.so" | "pam_loginuid.so"
        | "pam_mail.so" | "pam_motd.so" | "pam_limits.so" | "pam_lastlog.so" => {
            (Outcome::Ignore, "no verdict".into())
        }
        other => (
            Outcome::Success,
            format!("{other} (not checked; assumed to let the user in)"),
        ),
    }
}

/// pam_totp's verdict for `account`, judged from its file as the module
/// would judge it (assuming the user types a valid code when enrolled).
fn totp_result(line: &ModuleLine, account: &Account, world: &World) -> (Outcome, String) {
    let options = match ModuleOptions::parse(&line.args) {
        Ok(options) => options,
        Err(e) => return (Outcome::ServiceErr, format!("pam_totp: {e}")),
    };
    let file_account = match &options.file_user {
        None => account,
        Some(name) => match world.account(name) {
            Some(a) => a,
            None => {
                return (
                    Outcome::ServiceErr,
                    format!("pam_totp: user={name} does not exist"),
                )
            }
        },
    };
    let template = options
        .secret_path
        .as_deref()
        .unwrap_or(pam_totp::path::DEFAULT_SECRET_PATH);
    let path = match pam_totp::path::expand(template, &account.name, &account.home) {
        Ok(path) => path,
        Err(e) => return (Outcome::AuthErr, format!("pam_totp: {e}")),
    };
    let on_disk = world.under_root(&path);
    let meta = match fs::symlink_metadata(&on_disk) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return if options.nullok {
                (
                    Outcome::Ignore,
                    format!(
                        "not enrolled ({} missing); nullok lets it pass",
                        path.display()
                    ),
                )
            } else {
                (
                    Outcome::AuthErr,
                    format!(
                        "not enrolled: {} does not exist and pam_totp has no nullok",
                        path.display()
                    ),
                )
            };
        }
        Err(e) => return (Outcome::AuthErr, format!("{}: {e}", path.display())),
    };
    let bad = |why: String| (Outcome::AuthErr, format!("{}: {why}", path.display()));
    if meta.file_type().is_symlink() {
        return bad("is a symbolic link (the module refuses it)".into());
    }
    if !meta.is_file() {
        return bad("is not a regular file".into());
    }
    if options.strict_owner && meta.uid() != file_account.uid {
        return bad(format!(
            "owned by uid {}, must be {} (uid {})",
            meta.uid(),
            file_account.name,
            file_account.uid
        ));
    }
    let mode = meta.mode() & 0o7777;
    if mode & !options.allowed_mode != 0 {
        return bad(format!(
            "mode {mode:04o}, allowed at most {:04o}",
            options.allowed_mode
        ));
    }
    if meta.uid() == file_account.uid && mode & 0o400 == 0 {
        return bad(format!("mode {mode:04o}: its owner cannot read it"));
    }
    match fs::read(&on_disk).map(|bytes| SecretFile::parse(&bytes).map(|_| ())) {
        Ok(Ok(())) => (Outcome::Success, "verification code (enrolled)".into()),
        Ok(Err(e)) => bad(format!("corrupt: {e}")),
        Err(e) => bad(format!("cannot read: {e}")),
    }
}

/// Why sshd would not let a user in.
enum SshRefusal {
    /// sshd stops the user before PAM is asked (AllowUsers, no key,
    /// PermitRootLogin): not something pam_totp changes.
    BeforePam(String),
    /// Some way in reaches PAM, and PAM refuses.
    ByPam(String),
}

/// Whether sshd lets `account` in, by some AuthenticationMethods list.
fn ssh_verdict(
    settings: &sshd::Settings,
    stack: &[pam_conf::Entry],
    account: &Account,
    world: &World,
) -> Result<String, SshRefusal> {
    if let Some(why) = sshd::users_rule(settings, &account.name) {
        return Err(SshRefusal::BeforePam(why));
    }
    let root_rule = if account.uid == 0 {
        settings.permit_root_login.as_str()
    } else {
        "yes"
    };
    if root_rule == "no" {
        return Err(SshRefusal::BeforePam("PermitRootLogin no".into()));
    }
    let root_key_only = matches!(
        root_rule,
        "prohibit-password" | "without-password" | "forced-commands-only"
    );
    let mut why_not = Vec::new();
    let mut reached_pam = false;
    'alternatives: for alternative in &settings.methods {
        let mut how = Vec::new();
        for method in alternative {
            let method_name = method.split(':').next().unwrap_or(method);
            let step = match method_name {
                "publickey" => {
                    if !settings.pubkey {
                        Err("PubkeyAuthentication no".to_owned())
                    } else if has_key(settings, account, world) {
                        Ok("key".to_owned())
                    } else {
                        Err("no authorized_keys file".to_owned())
                    }
                }
                "keyboard-interactive" if root_key_only => Err(format!(
                    "PermitRootLogin {root_rule} forbids keyboard-interactive"
                )),
                "keyboard-interactive" if !settings.kbd_interactive => {
                    Err("KbdInteractiveAuthentication no".to_owned())
                }
                "keyboard-interactive" if !settings.use_pam => {
                    Err("UsePAM no: keyboard-interactive has nothing to ask".to_owned())
                }
                "keyboard-interactive" => {
                    reached_pam = true;
                    pam_verdict(stack, account, world, false)
                        .map_err(|why| format!("PAM (/etc/pam.d/sshd): {why}"))
                }
                "password" if root_key_only => {
                    Err(format!("PermitRootLogin {root_rule} forbids passwords"))
                }
                "password" if !settings.password => Err("PasswordAuthentication no".to_owned()),
                "password" if settings.use_pam => {
                    reached_pam = true;
                    pam_verdict(stack, account, world, true)
                        .map_err(|why| format!("password through PAM: {why}"))
                }
                "password" if account.has_password() => Ok("password".to_owned()),
                "password" => Err("no password".to_owned()),
                other => Ok(format!("{other} (not checked)")),
            };
            match step {
                Ok(step) => how.push(step),
                Err(why) => {
                    why_not.push(format!("{}: {why}", alternative.join(",")));
                    continue 'alternatives;
                }
            }
        }
        return Ok(how.join(", then "));
    }
    let why = why_not.join("; ");
    Err(if reached_pam {
        SshRefusal::ByPam(why)
    } else {
        SshRefusal::BeforePam(why)
    })
}

fn has_key(settings: &sshd::Settings, account: &Account, world: &World) -> bool {
    if settings.authorized_keys_command {
        return true;
    }
    settings.authorized_keys_files.iter().any(|template| {
        let expanded = template
            .replace("%%", "\u{0}")
            .replace("%h", &account.home.to_string_lossy())
            .replace("%u", &account.name)
            .replace("%U", &account.uid.to_string())
            .replace('\u{0}', "%");
        let path = if expanded.starts_with('/') {
            PathBuf::from(expanded)
        } else {
            account.home.join(expanded)
        };
        world.under_root(&path).is_file()
    })
}
