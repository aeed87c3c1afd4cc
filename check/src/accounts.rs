//! Who can log in: /etc/passwd, /etc/shadow, /etc/shells and /etc/group
//! under the checked root.

use std::fs;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    pub home: PathBuf,
    pub shell: String,
    /// The password hash from /etc/shadow (or /etc/passwd), if readable.
    pub hash: Option<String>,
    /// Day number (since 1970) after which the account is expired.
    pub expires: Option<u64>,
}

impl Account {
    /// Whether pam_unix could accept a password for this account (the user
    /// still has to know it).
    pub fn has_password(&self) -> bool {
        self.hash.as_deref().is_some_and(|h| {
            !h.is_empty() && !h.starts_with('!') && !h.starts_with('*') && h != "x"
        })
    }

    pub fn password_is_empty(&self) -> bool {
        self.hash.as_deref() == Some("")
    }
}

/// Why an account cannot log in at all, or None if it can.
pub fn cannot_log_in(
    account: &Account,
    shells: &Option<Vec<String>>,
    today: u64,
) -> Option<String> {
    let shell = account.shell.as_str();
    let blocked_shell = shell.is_empty()
        || shell.ends_with("/nologin")
        || shell.ends_with("/false")
        || shells
            .as_ref()
            .is_some_and(|list| !list.iter().any(|s| s == shell));
    if blocked_shell {
        return Some(format!("shell {shell:?} is not a login shell"));
    }
    if account.hash.as_deref().is_some_and(|h| h.starts_with('!')) {
        return Some("locked (usermod -L)".into());
    }
    if account.expires.is_some_and(|day| day <= today) {
        return Some("account expired".into());
    }
    None
}

pub fn read_accounts(root: &Path) -> Vec<Account> {
    let shadow = fs::read_to_string(root.join("etc/shadow")).unwrap_or_default();
    let shadow: Vec<Vec<&str>> = shadow.lines().map(|l| l.split(':').collect()).collect();
    let passwd = fs::read_to_string(root.join("etc/passwd")).unwrap_or_default();
    passwd
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() < 7 || f[0].starts_with(['+', '-', '#']) {
                return None;
            }
            let entry = shadow.iter().find(|s| s.first() == Some(&f[0]));
            let hash = match entry {
                Some(s) => s.get(1).map(|h| (*h).to_owned()),
                None if f[1] != "x" => Some(f[1].to_owned()),
                None => None,
            };
            let expires = entry.and_then(|s| s.get(7)).and_then(|d| d.parse().ok());
            Some(Account {
                name: f[0].to_owned(),
                uid: f[2].parse().ok()?,
                home: PathBuf::from(f[5]),
                shell: f[6].to_owned(),
                hash,
                expires,
            })
        })
        .collect()
}

/// /etc/shells, or None if it does not exist (every shell then counts).
pub fn read_shells(root: &Path) -> Option<Vec<String>> {
    let text = fs::read_to_string(root.join("etc/shells")).ok()?;
    Some(
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_owned)
            .collect(),
    )
}

/// Members of `group` in /etc/group (its supplementary members; users
/// whose primary group it is are not listed there).
pub fn group_members(root: &Path, group: &str) -> Vec<String> {
    let text = fs::read_to_string(root.join("etc/group")).unwrap_or_default();
    text.lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() >= 4 && f[0] == group)
        .map(|f| {
            f[3].split(',')
                .filter(|m| !m.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}
