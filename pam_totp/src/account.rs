//! The account behind a user name, by its own name in the user database.
//!
//! PAM hands the module the name as typed. Directory services may answer
//! for other spellings (SSSD with `case_sensitive = false`, winbind), and
//! /etc/passwd may give one uid several names; a file looked up by the
//! typed name would then not be the account's file. This module finds the
//! account's own name and says when the typed one is something else.

use nix::errno::Errno;
use nix::unistd::{Gid, Uid, User};
use std::fmt;
use std::path::PathBuf;

/// Why an account name is not used in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameProblem {
    /// Outside the characters and length accepted in store mode.
    Unusual,
    /// No such account.
    Unknown,
    /// Another name of an account whose own name is this.
    Alias { canonical: String },
    /// The user database could not be asked.
    Lookup(Errno),
}

impl fmt::Display for NameProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameProblem::Unusual => f.write_str(
                "the user name has characters or a length store mode does not accept \
                 (letters, digits, '_', '.', '-', a final '$'; not starting with '.' or '-')",
            ),
            NameProblem::Unknown => f.write_str("no such user"),
            NameProblem::Alias { canonical } => write!(
                f,
                "the user name is an alias of the account \"{}\"; only the account's own \
                 name is accepted",
                canonical.escape_debug()
            ),
            NameProblem::Lookup(errno) => {
                write!(f, "cannot look the user up: {}", errno.desc())
            }
        }
    }
}

/// An account by its own name: name, uid, gid and home directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub uid: Uid,
    pub gid: Gid,
    pub home: PathBuf,
}

/// Looks `name` up and accepts it only if it is the account's own name:
/// what the database calls the account found by that name (a
/// case-insensitive directory service answers `ALICE` with `alice`), and
/// what it calls the account's uid (a second passwd line with the same uid
/// is an alias). Any caller that turns a user name into a file name should
/// go through here, so that one account never has two files.
pub fn own_name(name: &str) -> Result<Account, NameProblem> {
    let user = User::from_name(name)
        .map_err(NameProblem::Lookup)?
        .ok_or(NameProblem::Unknown)?;
    if user.name != name {
        return Err(NameProblem::Alias {
            canonical: user.name,
        });
    }
    let by_uid = User::from_uid(user.uid)
        .map_err(NameProblem::Lookup)?
        .ok_or(NameProblem::Unknown)?;
    if by_uid.name != name {
        return Err(NameProblem::Alias {
            canonical: by_uid.name,
        });
    }
    Ok(Account {
        name: user.name,
        uid: user.uid,
        gid: user.gid,
        home: user.dir,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_names_and_unknown_ones() {
        let root = own_name("root").unwrap();
        assert_eq!((root.name.as_str(), root.uid.as_raw()), ("root", 0));
        assert_eq!(own_name("no-such-user-pam-totp"), Err(NameProblem::Unknown));
        // Whether "ROOT" is unknown or an alias depends on the directory
        // service; it is never accepted as root's own name.
        assert!(own_name("ROOT").is_err());
    }
}
