//! `--store DIR`: secret files in a root-only store (the module's
//! `store=DIR`), out of reach of the user they protect.
//!
//! Two ways in:
//! - root names the account: `totp-enroll --store DIR --user NAME`, with
//!   `--status`, `--regenerate-scratch` and the migrations
//!   (`--migrate-to-store`, `--migrate-to-home`) beside enrolment;
//! - a user enrols themselves through one fixed sudoers rule:
//!   `sudo totp-enroll --store DIR --self`. The account is the one sudo
//!   names in `SUDO_UID` (sudo sets it; the user cannot choose it), the QR
//!   code and scratch codes appear once on the user's own terminal, and an
//!   existing secret is replaced only after a current code from it (or a
//!   scratch code) is accepted, under the file's lock and counted like a
//!   login attempt: malware that runs as the user cannot swap the second
//!   factor for one it knows.
//!
//! What no tool can defend: a program already running as the user at the
//! moment of enrolment can read that terminal, and with it the new secret.

use crate::args::{Action, Request, ENROLL_ONLY};
use crate::error::Error;
use crate::prompt::Prompter;
use crate::target::{InStore, Target};
use crate::{enroll, host_name, migrate, regenerate, status, Clock, Console};
use nix::unistd::{Gid, Uid, User};
use pam_totp::locked_update::{self, Decided, LocalOnly, UpdateError};
use pam_totp::policy::{self, Accepted};
use pam_totp::root_store::{canonical_account, Account, STORE_FILE_ALLOWED_MODE};
use pam_totp::store::{AccessRules, Identity, StoreError};
use rand::TryCryptoRng;
use std::path::{Path, PathBuf};

/// A migration moves a file as it is: nothing to enrol, ask or show. Besides
/// [`ENROLL_ONLY`], these actions and flags.
const NOT_WITH_MIGRATION: [&str; 4] = [
    "self_enroll",
    "status",
    "regenerate_scratch",
    "emergency_codes",
];

/// The store-mode flags, flattened into the command line.
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct StoreFlags {
    /// (root) Use the root-only store DIR: the file is DIR/<user>, owned by
    /// root, unreadable by the user (module option store=DIR)
    #[arg(long, value_name = "DIR", conflicts_with = "secret_path",
          value_parser = clap::builder::PathBufValueParser::new())]
    pub store: Option<PathBuf>,

    /// With --store, run through sudo: enroll the user sudo was called by
    /// (SUDO_UID); replacing an existing secret needs a current code
    #[arg(long = "self", requires = "store", conflicts_with_all = ["user", "show_secret"])]
    pub self_enroll: bool,

    /// (root) Move the user's home file into the store, state and all
    #[arg(long, requires = "store", conflicts_with_all = ENROLL_ONLY,
          conflicts_with_all = NOT_WITH_MIGRATION, conflicts_with = "migrate_to_home")]
    pub migrate_to_store: bool,

    /// (root) Move the user's store file back to their home, state and all
    #[arg(long, requires = "store", conflicts_with_all = ENROLL_ONLY,
          conflicts_with_all = NOT_WITH_MIGRATION)]
    pub migrate_to_home: bool,
}

/// The identity of root, who owns and reads every store file.
pub fn root_identity() -> Identity {
    Identity {
        uid: Uid::from_raw(0),
        gid: Gid::from_raw(0),
    }
}

/// Who `--self` enrols: the account sudo names in SUDO_UID.
fn sudo_account() -> Result<Account, Error> {
    let raw = std::env::var("SUDO_UID").map_err(|_| {
        Error::User(
            "--self is meant to be run through sudo, which names the user in SUDO_UID; \
             it is not set"
                .into(),
        )
    })?;
    let uid: u32 = raw
        .parse()
        .map_err(|_| Error::User(format!("SUDO_UID is not a uid: {}", raw.escape_debug())))?;
    let user = User::from_uid(Uid::from_raw(uid))
        .map_err(|e| Error::User(format!("cannot look up uid {uid}: {e}")))?
        .ok_or_else(|| Error::User(format!("uid {uid} (SUDO_UID) is not in the user database")))?;
    checked_account(&user.name)
}

/// The account's own name, as the module will look it up at login.
fn checked_account(name: &str) -> Result<Account, Error> {
    canonical_account(name).map_err(|problem| match problem {
        pam_totp::root_store::NameProblem::Unknown => Error::UnknownUser(name.to_owned()),
        problem => Error::User(format!("{}: {problem}", name.escape_debug())),
    })
}

/// The store file of `account` in `dir`.
pub fn store_target(dir: &Path, account: &Account) -> Target {
    Target {
        user: account.name.clone(),
        path: dir.join(&account.name),
        owner: root_identity(),
        access: root_identity(),
        store: Some(InStore {
            dir: dir.to_path_buf(),
            may_replace: true,
        }),
    }
}

/// The rules the module applies to a store file.
pub fn store_rules() -> AccessRules {
    AccessRules {
        owner: Some(Uid::from_raw(0)),
        allowed_mode: STORE_FILE_ALLOWED_MODE,
    }
}

/// Carries out a request that names `--store`.
pub fn execute<R: TryCryptoRng + ?Sized>(
    request: &Request,
    dir: &Path,
    console: &mut Console<'_>,
    clock: &dyn Clock,
    rng: &mut R,
) -> Result<(), Error> {
    let flags = &request.store;
    if !Uid::effective().is_root() {
        return Err(Error::NotPermitted(
            "--store needs root: only root may read or write the store \
             (users enrol through sudo with --self)",
        ));
    }
    let account = if flags.self_enroll {
        sudo_account()?
    } else {
        match &request.user {
            Some(name) => checked_account(name)?,
            None => {
                let me = User::from_uid(nix::unistd::getuid())
                    .map_err(|e| Error::User(format!("cannot look up who you are: {e}")))?
                    .ok_or_else(|| Error::User("you are not in the user database".into()))?;
                checked_account(&me.name)?
            }
        }
    };
    let mut target = store_target(dir, &account);
    if flags.migrate_to_store {
        return migrate::to_store(
            &account,
            dir,
            request.secret_path.as_deref(),
            console.output,
        );
    }
    if flags.migrate_to_home {
        return migrate::to_home(
            &account,
            dir,
            request.secret_path.as_deref(),
            console.output,
        );
    }
    match &request.action {
        Action::Enroll(options) => {
            // Self-enrolment over an existing secret: proven first. (Root
            // needs no proof: it could replace the file anyway.)
            if flags.self_enroll {
                let proven = require_current_code(&target, "replace it", console, clock)?;
                if let Some(store) = &mut target.store {
                    // Nothing to prove against: then nothing may be replaced
                    // either, even a file that appears in the meantime.
                    store.may_replace = proven;
                }
            }
            enroll::enroll(
                options,
                request.quiet,
                &target,
                &host_name(),
                console,
                clock,
                rng,
            )
        }
        Action::RegenerateScratch { codes } => {
            if flags.self_enroll
                && !require_current_code(&target, "make new scratch codes", console, clock)?
            {
                return Err(Error::NotEnrolled(target.path.clone()));
            }
            regenerate::regenerate(&target, *codes, request.quiet, console.output, rng)
        }
        Action::Status { show_secret } => status::status(&target, *show_secret, console.output),
    }
}

/// When `target` exists, asks for a current code (or a scratch code) and
/// checks it under the file's lock as a login would: counted against the
/// rate limit, refused if already used, and used up when accepted. Returns
/// whether a file exists (and the code was accepted); `Ok(false)` when
/// there is nothing to protect yet.
pub fn require_current_code(
    target: &Target,
    purpose: &str,
    console: &mut Console<'_>,
    clock: &dyn Clock,
) -> Result<bool, Error> {
    let location = target.location(store_rules())?;
    match location.read() {
        Ok(_) => {}
        Err(StoreError::NotFound) => return Ok(false),
        Err(error) => return Err(Error::store(&target.path, error)),
    }
    let mut prompter = Prompter::new(&mut *console.input, &mut *console.output);
    writeln!(
        prompter.output(),
        "{} already has an authenticator. To {purpose}, give a code from it.",
        target.user
    )?;
    let Some(answer) = prompter.line("Current verification code (or a scratch code): ")? else {
        return Err(Error::Cancelled);
    };
    let now = clock.now();
    let code = answer.trim().as_bytes().to_vec();
    let committed = locked_update::read_decide_write_at(
        &location,
        |file| {
            // One attempt, as a login with one prompt would make it.
            let decision = policy::check_attempt(file, &code, now, &policy::Options::default());
            Decided {
                outcome: decision.verdict,
                changed: decision.changes.any(),
            }
        },
        &mut LocalOnly,
    )
    .map_err(|error| match error {
        UpdateError::Store(error) => Error::store(&target.path, error),
        UpdateError::Parse(error) => Error::Parse {
            path: target.path.clone(),
            error,
        },
    })?;
    let saved = committed.saved.error();
    match (committed.outcome, saved) {
        (Ok(Accepted::ScratchCode), None) => {
            writeln!(prompter.output(), "Scratch code accepted (and used up).")?;
            Ok(true)
        }
        (Ok(_), None) => Ok(true),
        (Ok(_), Some(error)) => Err(Error::store(&target.path, error)),
        (Err(why), _) => Err(Error::User(format!(
            "{why}: nothing was changed (ask an administrator if the app and the scratch \
             codes are lost)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use crate::args::{parse, Action, Parsed};
    use std::path::PathBuf;

    fn parsed(args: &[&str]) -> Parsed {
        let mut argv = vec!["totp-enroll"];
        argv.extend_from_slice(args);
        parse(argv)
    }

    fn refused(args: &[&str]) -> String {
        match parsed(args) {
            Parsed::Usage(message) => message,
            other => panic!("{args:?} should be refused: {other:?}"),
        }
    }

    #[test]
    fn store_flags_parse() {
        let Parsed::Run(request) = parsed(&["--store", "/var/lib/pam_totp", "--user", "alice"])
        else {
            panic!("not parsed")
        };
        assert_eq!(
            request.store.store,
            Some(PathBuf::from("/var/lib/pam_totp"))
        );
        assert!(matches!(request.action, Action::Enroll(_)));
        let Parsed::Run(request) = parsed(&["--store", "/s", "--self", "--status"]) else {
            panic!("not parsed")
        };
        assert!(request.store.self_enroll);
        assert!(matches!(
            request.action,
            Action::Status { show_secret: false }
        ));
        let Parsed::Run(request) = parsed(&["--store=/s", "--user=a", "--migrate-to-home"]) else {
            panic!("not parsed")
        };
        assert!(request.store.migrate_to_home && !request.store.migrate_to_store);
    }

    /// A self-enrolment that found no file never replaces one that appears
    /// before it writes (another enrolment's, made meanwhile).
    #[test]
    #[ignore = "needs root: tests/run-all"]
    fn a_file_that_appears_meanwhile_is_not_replaced() {
        if !pam_totp_tests::require_root() {
            return;
        }
        use std::os::unix::fs::PermissionsExt;
        let base = PathBuf::from(format!("/run/totp-cli-store-{}", std::process::id()));
        let dir = base.join("store");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        let account = super::checked_account("root").unwrap();
        let mut target = super::store_target(&dir, &account);
        std::fs::write(dir.join("root"), b"THEIRS\n").unwrap();
        std::fs::set_permissions(dir.join("root"), std::fs::Permissions::from_mode(0o400)).unwrap();
        if let Some(store) = &mut target.store {
            store.may_replace = false;
        }
        let err = target.create(b"MINE\n", 0o400, true).unwrap_err();
        assert!(matches!(err, crate::error::Error::Exists(_)), "{err}");
        assert_eq!(std::fs::read(dir.join("root")).unwrap(), b"THEIRS\n");
        if let Some(store) = &mut target.store {
            store.may_replace = true;
        }
        target.create(b"MINE\n", 0o400, true).unwrap();
        assert_eq!(std::fs::read(dir.join("root")).unwrap(), b"MINE\n");
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn contradictions_are_usage_errors() {
        for (args, says) in [
            (&["--self"][..], "--store"),
            (&["--migrate-to-store"][..], "--store"),
            (&["--store", "/s", "-s", "/x"][..], "--secret"),
            (&["--store", "/s", "--self", "--user", "a"][..], "--user"),
            (
                &["--store", "/s", "--self", "--status", "--show-secret"][..],
                "--show-secret",
            ),
            (
                &["--store", "/s", "--migrate-to-store", "--migrate-to-home"][..],
                "--migrate",
            ),
            (
                &["--store", "/s", "--migrate-to-store", "--self"][..],
                "--self",
            ),
            (
                &["--store", "/s", "--migrate-to-home", "-t"][..],
                "--time-based",
            ),
            (
                &["--store", "/s", "--migrate-to-store", "--status"][..],
                "--status",
            ),
        ] {
            let message = refused(args);
            assert!(message.contains(says), "{args:?}: {message}");
        }
    }
}
