//! Whose secret file, where, owned by whom, and with whose rights it is
//! written.
//!
//! The file is accessed with the user's file-system identity (so root's
//! rights never reach into a directory the user controls, where a swapped
//! symlink could redirect a write) unless root writes into a directory that
//! only root can change, such as `/etc/pam_totp/`.

use crate::error::Error;
use nix::unistd::{Uid, User};
use pam_totp::location::SecretLocation;
use pam_totp::root_store::{canonical_account, RootStore};
use pam_totp::store::{self, AccessRules, Identity, NewFile, StoreError};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The file Google's tool and module use, in the user's home.
pub const DEFAULT_FILE_NAME: &str = ".google_authenticator";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The user's login name (for the default label and messages).
    pub user: String,
    pub path: PathBuf,
    /// Who the file belongs to.
    pub owner: Identity,
    /// Whose file-system rights read and write it.
    pub access: Identity,
    /// Store mode: the root-only store the file is in (`path` is then
    /// `<store>/<user>`, and owner and access are root).
    pub store: Option<InStore>,
}

/// Where a store-mode file is, and whether it may replace one that exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InStore {
    pub dir: PathBuf,
    /// `false` for a self-enrolment that found no file: one that appears
    /// meanwhile is somebody else's, and is not replaced without its code.
    pub may_replace: bool,
}

impl Target {
    /// The invoking user's own file at `path`, as the process is: what tests
    /// and a user enrolling themselves get.
    pub fn current(user: &str, path: PathBuf) -> Target {
        Target {
            user: user.to_owned(),
            path,
            owner: Identity::current(),
            access: Identity::current(),
            store: None,
        }
    }

    pub fn resolve(user: Option<&str>, secret_path: Option<&Path>) -> Result<Target, Error> {
        let me = Identity::current();
        let account = match user {
            Some(name) => User::from_name(name)
                .map_err(|e| Error::User(format!("cannot look up user {name}: {e}")))?
                .ok_or_else(|| Error::UnknownUser(name.to_owned()))?,
            None => {
                // The real uid: who ran the program, as Google's tool does.
                let uid = nix::unistd::getuid();
                match (User::from_uid(uid), secret_path) {
                    (Ok(Some(user)), _) => user,
                    // A uid without a passwd entry (a container, say) can
                    // still write a file it names itself.
                    (Ok(None) | Err(_), Some(path)) => {
                        return Ok(Target {
                            user: uid.to_string(),
                            path: path.to_path_buf(),
                            owner: me,
                            access: me,
                            store: None,
                        })
                    }
                    (Ok(None), None) => {
                        return Err(Error::User(format!(
                            "uid {uid} is not in the user database; name the file with -s"
                        )))
                    }
                    (Err(e), None) => {
                        return Err(Error::User(format!("cannot look up uid {uid}: {e}")))
                    }
                }
            }
        };
        let path = match secret_path {
            Some(path) => path.to_path_buf(),
            None => {
                if !account.dir.is_absolute() {
                    return Err(Error::User(format!(
                        "the home directory of {} is not an absolute path",
                        account.name
                    )));
                }
                account.dir.join(DEFAULT_FILE_NAME)
            }
        };
        if account.uid == me.uid {
            // Yourself: keep the groups you run with, which need no privilege.
            return Ok(Target {
                user: account.name,
                path,
                owner: me,
                access: me,
                store: None,
            });
        }
        if !me.uid.is_root() {
            return Err(Error::NotPermitted(
                "only root can enroll another user (--user)",
            ));
        }
        let owner = Identity {
            uid: account.uid,
            gid: account.gid,
        };
        let access = if secret_path.is_some() && root_only_directory(&path) {
            me
        } else {
            owner
        };
        Ok(Target {
            user: account.name,
            path,
            owner,
            access,
            store: None,
        })
    }

    /// The file as the module reaches it: by path as `access`, or in the
    /// store (checked again now, as at every login).
    pub fn location(&self, rules: AccessRules) -> Result<SecretLocation, Error> {
        match &self.store {
            None => Ok(SecretLocation::Path {
                path: self.path.clone(),
                identity: self.access,
                rules,
            }),
            Some(InStore { dir, .. }) => {
                let account = canonical_account(&self.user)
                    .map_err(|problem| Error::User(format!("{}: {problem}", self.user)))?;
                let store = RootStore::open(dir).map_err(|e| Error::store(dir, e.into()))?;
                Ok(SecretLocation::Store { store, account })
            }
        }
    }

    /// Writes a new secret file durably with `mode` (see
    /// [`store::create`] and [`RootStore::create`]).
    pub fn create(&self, bytes: &[u8], mode: u32, overwrite: bool) -> Result<(), Error> {
        let result = match &self.store {
            None => store::create(
                &self.path,
                bytes,
                self.access,
                NewFile {
                    owner: self.owner,
                    mode,
                },
                overwrite,
            ),
            Some(InStore { dir, may_replace }) => {
                let account = canonical_account(&self.user)
                    .map_err(|problem| Error::User(format!("{}: {problem}", self.user)))?;
                let overwrite = overwrite && *may_replace;
                RootStore::open_or_create(dir)
                    .and_then(|store| store.create(&account, bytes, mode, overwrite))
                    .map_err(StoreError::from)
            }
        };
        result.map_err(|error| Error::store(&self.path, error))
    }
}

/// Whether the directory that holds `path` and every directory above it
/// belong to root and are writable by nobody else, with no symlink on the
/// way: then nobody but root can change where a write there lands.
pub fn root_only_directory(path: &Path) -> bool {
    let parent = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let Ok(canonical) = fs::canonicalize(&parent) else {
        return false;
    };
    if parent.is_absolute() && canonical != parent {
        return false;
    }
    canonical
        .ancestors()
        .all(|dir| match fs::symlink_metadata(dir) {
            Ok(meta) => {
                meta.is_dir() && Uid::from_raw(meta.uid()).is_root() && meta.mode() & 0o022 == 0
            }
            Err(_) => false,
        })
}

/// Root writing with `-s` into a directory some other user owns, without
/// `--user`: the file would belong to root, and the module refuses a secret
/// file that the user logging in does not own. Said before any question.
pub fn foreign_home_warning(target: &Target, user_given: bool) -> Option<String> {
    if user_given || !target.owner.uid.is_root() {
        return None;
    }
    let dir = match target.path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let owner = fs::metadata(dir).ok()?.uid();
    if owner == 0 {
        return None;
    }
    let name = User::from_uid(Uid::from_raw(owner))
        .ok()
        .flatten()
        .map_or_else(|| owner.to_string(), |user| user.name);
    Some(format!(
        "{} belongs to {name} (uid {owner}), but without --user the new file will belong \
         to root, and pam_totp refuses a secret file its user does not own: \
         use --user {name} to enroll {name}",
        dir.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_user_defaults_to_the_home_file() {
        let me = User::from_uid(nix::unistd::getuid()).unwrap().unwrap();
        let target = Target::resolve(None, None).unwrap();
        assert_eq!(target.user, me.name);
        assert_eq!(target.path, me.dir.join(".google_authenticator"));
        assert_eq!(target.owner, Identity::current());
        assert_eq!(target.access, Identity::current());
        let named = Target::resolve(Some(&me.name), Some(Path::new("/tmp/x"))).unwrap();
        assert_eq!(named.path, PathBuf::from("/tmp/x"));
    }

    #[test]
    fn unknown_user() {
        let err = Target::resolve(Some("no-such-user-pam-totp"), None).unwrap_err();
        assert!(matches!(err, Error::UnknownUser(_)), "{err}");
    }

    #[test]
    fn another_user_is_written_as_that_user_unless_root_owns_the_directory() {
        if !Uid::effective().is_root() {
            let err = Target::resolve(Some("root"), None).unwrap_err();
            assert!(matches!(err, Error::NotPermitted(_)), "{err}");
            return;
        }
        let Some(nobody) = User::from_name("nobody").unwrap() else {
            return;
        };
        let theirs = Identity {
            uid: nobody.uid,
            gid: nobody.gid,
        };
        let home = Target::resolve(Some("nobody"), None).unwrap();
        assert_eq!(home.path, nobody.dir.join(".google_authenticator"));
        assert_eq!((home.owner, home.access), (theirs, theirs));
        // /tmp is writable by everybody: written as the user.
        let tmp = Target::resolve(Some("nobody"), Some(Path::new("/tmp/f"))).unwrap();
        assert_eq!((tmp.owner, tmp.access), (theirs, theirs));
        // /etc is root's alone: written as root, owned by the user.
        let etc = Target::resolve(Some("nobody"), Some(Path::new("/etc/f"))).unwrap();
        assert_eq!((etc.owner, etc.access), (theirs, Identity::current()));
    }

    #[test]
    fn root_is_warned_before_writing_into_another_users_directory() {
        let me = Identity::current();
        let dir = std::env::temp_dir().join(format!("totp-cli-foreign-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let target = Target::current("root", dir.join("ga"));
        if !me.uid.is_root() {
            assert_eq!(foreign_home_warning(&target, false), None);
            let _ = fs::remove_dir(&dir);
            return;
        }
        // Root's own directory: nothing to say.
        assert_eq!(foreign_home_warning(&target, false), None);
        nix::unistd::chown(&dir, Some(Uid::from_raw(65534)), None).unwrap();
        let warning = foreign_home_warning(&target, false).unwrap();
        assert!(warning.contains("(uid 65534)"), "{warning}");
        assert!(warning.contains("use --user"), "{warning}");
        assert_eq!(foreign_home_warning(&target, true), None);
        fs::remove_dir(&dir).unwrap();
    }

    #[test]
    fn root_only_directories() {
        assert!(!root_only_directory(Path::new("/tmp/x")));
        assert!(!root_only_directory(Path::new("/nonexistent-dir/x")));
        if Uid::effective().is_root() {
            assert!(root_only_directory(Path::new("/etc/x")));
        }
    }
}
