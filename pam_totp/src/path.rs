//! Expanding `secret=` into the path of one user's secret file.
//!
//! `~` (at the start) and `${HOME}` become the user's home directory,
//! `${USER}` the user name. The user name comes from the login and is hostile
//! data: one that could step out of a directory (`/`, `.`, `..`, a NUL) is
//! refused rather than pasted into a path.

use std::fmt;
use std::path::{Path, PathBuf};

/// Where the file is when `secret=` is not given.
pub const DEFAULT_SECRET_PATH: &str = "~/.google_authenticator";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathError {
    /// The user name cannot safely become part of a path.
    UnsafeUserName,
    /// The expanded path is not absolute.
    NotAbsolute,
    /// `${...}` other than `${USER}` and `${HOME}`.
    UnknownVariable,
    /// The home directory is empty or relative.
    BadHome,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PathError::UnsafeUserName => {
                "user name contains '/', NUL or is '.' or '..'; refusing to use it in a path"
            }
            PathError::NotAbsolute => "secret= does not expand to an absolute path",
            PathError::UnknownVariable => "secret= uses a variable other than ${USER} and ${HOME}",
            PathError::BadHome => "the user's home directory is not an absolute path",
        })
    }
}

impl std::error::Error for PathError {}

/// Whether `name` can be pasted into a path as one plain component.
pub fn is_safe_user_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\0'])
}

/// Expands `template` for `user` whose home directory is `home`.
pub fn expand(template: &str, user: &str, home: &Path) -> Result<PathBuf, PathError> {
    let home = home
        .to_str()
        .filter(|h| h.starts_with('/'))
        .ok_or(PathError::BadHome);
    let mut out = String::with_capacity(template.len().saturating_add(32));
    let mut rest = template;
    if let Some(after) = rest.strip_prefix('~') {
        if after.is_empty() || after.starts_with('/') {
            out.push_str(home.clone()?);
            rest = after;
        }
    }
    while let Some(start) = rest.find("${") {
        let (before, from) = rest.split_at(start);
        out.push_str(before);
        let after = from.strip_prefix("${").ok_or(PathError::UnknownVariable)?;
        let end = after.find('}').ok_or(PathError::UnknownVariable)?;
        match &after[..end] {
            "USER" => {
                if !is_safe_user_name(user) {
                    return Err(PathError::UnsafeUserName);
                }
                out.push_str(user);
            }
            "HOME" => out.push_str(home.clone()?),
            _ => return Err(PathError::UnknownVariable),
        }
        rest = after
            .get(end..)
            .and_then(|r| r.strip_prefix('}'))
            .ok_or(PathError::UnknownVariable)?;
    }
    out.push_str(rest);
    if !out.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    Ok(PathBuf::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn home() -> &'static Path {
        Path::new("/home/alice")
    }

    #[test]
    fn expansions() {
        let cases = [
            (DEFAULT_SECRET_PATH, "/home/alice/.google_authenticator"),
            ("~", "/home/alice"),
            ("${HOME}/.totp", "/home/alice/.totp"),
            ("/var/lib/totp/${USER}", "/var/lib/totp/alice"),
            ("/s/${USER}/${USER}.key", "/s/alice/alice.key"),
            ("/etc/totp/shared", "/etc/totp/shared"),
        ];
        for (template, want) in cases {
            assert_eq!(
                expand(template, "alice", home()),
                Ok(PathBuf::from(want)),
                "{template}"
            );
        }
    }

    #[test]
    fn hostile_user_names_are_refused() {
        for user in ["../x", "..", ".", "a/b", "", "x\0y", "/root"] {
            assert_eq!(
                expand("/var/lib/totp/${USER}", user, home()),
                Err(PathError::UnsafeUserName),
                "{user:?}"
            );
        }
        // Dots inside a name are fine.
        assert!(expand("/var/lib/totp/${USER}", "first.last", home()).is_ok());
        // A name that is not used in the path does not matter.
        assert!(expand("~/.google_authenticator", "../x", home()).is_ok());
    }

    #[test]
    fn bad_templates() {
        assert_eq!(
            expand("relative/${USER}", "alice", home()),
            Err(PathError::NotAbsolute)
        );
        assert_eq!(
            expand("~alice/x", "alice", home()),
            Err(PathError::NotAbsolute)
        );
        assert_eq!(
            expand("/x/${SHELL}", "alice", home()),
            Err(PathError::UnknownVariable)
        );
        assert_eq!(
            expand("/x/${USER", "alice", home()),
            Err(PathError::UnknownVariable)
        );
        assert_eq!(
            expand("~/x", "alice", Path::new("")),
            Err(PathError::BadHome)
        );
        assert_eq!(
            expand("~/x", "alice", Path::new("rel")),
            Err(PathError::BadHome)
        );
    }
}
