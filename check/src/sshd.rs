//! What sshd will do, from `sshd -T` (its effective configuration, with
//! Match blocks applied for one user).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The settings that decide whether and how PAM asks for the code.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub use_pam: bool,
    pub kbd_interactive: bool,
    pub password: bool,
    pub pubkey: bool,
    /// Each alternative: the methods that must all succeed, in order.
    pub methods: Vec<Vec<String>>,
    pub permit_root_login: String,
    pub allow_users: Vec<String>,
    pub deny_users: Vec<String>,
    pub authorized_keys_files: Vec<String>,
    pub authorized_keys_command: bool,
}

pub struct Sshd {
    pub program: PathBuf,
    pub config: Option<PathBuf>,
}

/// An address from TEST-NET-1 (RFC 5737) and a name that resolves nowhere:
/// Match blocks on Address or Host see an outside client.
const OUTSIDE_ADDR: &str = "192.0.2.1";
const OUTSIDE_HOST: &str = "pam-totp-check.invalid";

impl Sshd {
    /// `sshd -T` for `user`; an error says what sshd printed.
    pub fn settings_for(&self, user: &str) -> Result<Settings, String> {
        let mut cmd = Command::new(&self.program);
        cmd.arg("-T");
        if let Some(config) = &self.config {
            cmd.arg("-f").arg(config);
        }
        cmd.arg("-C").arg(format!(
            "user={user},host={OUTSIDE_HOST},addr={OUTSIDE_ADDR}"
        ));
        let out = cmd
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.program.display()))?;
        if !out.status.success() {
            return Err(format!(
                "{} -T failed: {}",
                self.program.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(parse(&String::from_utf8_lossy(&out.stdout)))
    }
}

pub fn find_sshd(root: &Path, program: Option<PathBuf>) -> Option<Sshd> {
    let program = program.or_else(|| {
        ["/usr/sbin/sshd", "/usr/local/sbin/sshd"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
    })?;
    let config = (root != Path::new("/")).then(|| root.join("etc/ssh/sshd_config"));
    Some(Sshd { program, config })
}

fn parse(text: &str) -> Settings {
    let mut s = Settings {
        methods: vec![],
        ..Settings::default()
    };
    for line in text.lines() {
        let (key, value) = line.split_once(' ').unwrap_or((line, ""));
        let value = value.trim();
        let yes = value == "yes";
        match key {
            "usepam" => s.use_pam = yes,
            "kbdinteractiveauthentication" => s.kbd_interactive = yes,
            "passwordauthentication" => s.password = yes,
            "pubkeyauthentication" => s.pubkey = yes,
            "permitrootlogin" => s.permit_root_login = value.to_owned(),
            "authenticationmethods" if value != "any" => {
                s.methods = value
                    .split_whitespace()
                    .map(|alt| alt.split(',').map(str::to_owned).collect())
                    .collect();
            }
            "allowusers" => s
                .allow_users
                .extend(value.split_whitespace().map(str::to_owned)),
            "denyusers" => s
                .deny_users
                .extend(value.split_whitespace().map(str::to_owned)),
            "authorizedkeysfile" => {
                s.authorized_keys_files = value.split_whitespace().map(str::to_owned).collect()
            }
            "authorizedkeyscommand" => s.authorized_keys_command = value != "none",
            _ => {}
        }
    }
    if s.methods.is_empty() {
        // "any": each method alone is enough.
        s.methods = ["publickey", "password", "keyboard-interactive"]
            .iter()
            .map(|m| vec![(*m).to_owned()])
            .collect();
    }
    s
}

/// sshd's wildcard match: `*` and `?`.
pub fn wildcard(pattern: &str, text: &str) -> bool {
    fn go(p: &[u8], t: &[u8]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], t) || (!t.is_empty() && go(p, &t[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &t[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &t[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), text.as_bytes())
}

/// AllowUsers/DenyUsers for `user`: None if allowed, else why not. A
/// `user@host` pattern is judged on its user part (the host is not known
/// here), which can only make the answer more hopeful for that user.
pub fn users_rule(settings: &Settings, user: &str) -> Option<String> {
    let user_part = |p: &str| p.split('@').next().unwrap_or(p).to_owned();
    if let Some(p) = settings
        .deny_users
        .iter()
        .find(|p| !p.contains('@') && wildcard(&user_part(p), user))
    {
        return Some(format!("DenyUsers {p}"));
    }
    if !settings.allow_users.is_empty()
        && !settings
            .allow_users
            .iter()
            .any(|p| wildcard(&user_part(p), user))
    {
        return Some("not in AllowUsers".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_matters() {
        let s = parse(
            "usepam yes\nkbdinteractiveauthentication no\nauthenticationmethods publickey,keyboard-interactive publickey,password\nallowusers alice\nallowusers bob@10.*\npermitrootlogin without-password\n",
        );
        assert!(s.use_pam && !s.kbd_interactive);
        assert_eq!(s.methods.len(), 2);
        assert_eq!(s.methods[0], ["publickey", "keyboard-interactive"]);
        assert_eq!(s.allow_users, ["alice", "bob@10.*"]);
        assert_eq!(users_rule(&s, "alice"), None);
        assert_eq!(users_rule(&s, "bob"), None);
        assert!(users_rule(&s, "carol").is_some());
        let any = parse("authenticationmethods any\n");
        assert_eq!(any.methods.len(), 3);
    }

    #[test]
    fn wildcards() {
        assert!(wildcard("a*", "alice"));
        assert!(wildcard("?ob", "bob"));
        assert!(!wildcard("a?", "alice"));
    }
}
