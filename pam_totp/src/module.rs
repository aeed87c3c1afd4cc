//! One authentication from start to end: what `pam_sm_authenticate` does.
//!
//! Written against the [`Pam`] trait, so the same code runs under libpam
//! (see [`crate::ffi`]) and in unit tests with a scripted conversation.
//!
//! Order of events (the same as the file format's reference module, where a
//! user or a later module can see it):
//! 1. parse the module options; a bad one fails the module (fail closed,
//!    no prompt);
//! 2. find the user, expand `secret=`, and read the file as its user, after
//!    the owner, mode, type and size checks (no lock: this is a look). A
//!    missing file with `nullok` ends here (PAM_IGNORE); no account, no file
//!    or an unusable file is refused after the prompt, so the prompt tells
//!    nobody who is enrolled;
//!    in store mode (`store=`) the file is `<store>/<account's own name>`,
//!    read as root after the checks of [`crate::root_store`];
//! 3. grace period: a host that logged in with a code recently gets in
//!    without one, still counted against the rate limit;
//! 4. rate limit: an attempt over the limit is counted and refused without
//!    a prompt;
//! 5. the code: from the password an earlier module collected
//!    (`try_first_pass`, `use_first_pass`), then, unless `use_first_pass`
//!    or a decisive refusal, from the prompt; each reading is judged under
//!    the file's lock ([`crate::locked_update`]): re-read, count the attempt
//!    (once per authentication), check the code, record what must be
//!    recorded, and replace the file durably. PAM_AUTHTOK changes only with
//!    `forward_pass`, and only on success;
//! 6. a login whose protective state (used codes, scratch codes, HOTP
//!    counter, rate-limit attempts) could not be saved fails. With
//!    `allow_readonly` a login whose only unsaved change is bookkeeping
//!    (clock-skew learning, grace-period hosts) succeeds with a warning;
//!    nothing else is relaxed.
//!
//! Fleet mode (`shared_state`, [`crate::fleet`]) adds two steps inside the
//! lock of step 5: the fleet-wide attempt limit before the code is checked,
//! and the shared marker of what the code consumed before the file is
//! saved ([`CommitCheck`]).
//!
//! Every failure is one log line naming the user and the reason, never the
//! code or the secret.

pub use crate::clock::{Clock, SystemClock};
use crate::equal_refusals;
use crate::fleet::{self, FailurePolicy, FleetCheck};
use crate::location::SecretLocation;
use crate::locked_update::{self, BeforeCommit, Decided, LocalOnly, Saved, UpdateError};
use crate::options::{ModuleOptions, OptionError, PassMode};
use crate::path::{self, PathError, DEFAULT_SECRET_PATH};
use crate::policy::{self, in_grace_period, Accepted, Decision, Pass, Rejected};
use crate::root_store::{self, NameProblem, RootStore};
use crate::secret_file::{ParseError, ParseErrorKind, SecretFile};
use crate::store::{self, AccessRules, Identity, StoreError};
use nix::unistd::{Uid, User};
use std::cell::RefCell;
use std::fmt;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

pub const DEFAULT_PROMPT: &str = "Verification code: ";
pub const DEFAULT_FORWARD_PASS_PROMPT: &str = "Password & verification code: ";

/// Syslog priorities the module uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    Error,
    Warning,
    Notice,
    Info,
    Debug,
}

/// What the module needs from libpam.
pub trait Pam {
    /// The user being authenticated; `None` if libpam has none to give.
    fn user(&mut self) -> Option<String>;
    /// PAM_RHOST, as raw bytes: it comes from the network side.
    fn remote_host(&self) -> Option<Vec<u8>>;
    /// PAM_AUTHTOK, the password an earlier module collected.
    fn authtok(&self) -> Option<Zeroizing<Vec<u8>>>;
    fn set_authtok(&mut self, value: &[u8]) -> bool;
    /// Asks the user; `None` if the conversation failed.
    fn ask(&mut self, prompt: &str, echo: bool) -> Option<Zeroizing<Vec<u8>>>;
    /// Shows the user an error message (PAM_ERROR_MSG); no answer.
    fn tell_error(&mut self, message: &str);
    fn log(&self, priority: Priority, message: &str);
}

/// The result of an authentication, as libpam will be told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Success,
    /// Only `nullok` with no secret file.
    Ignore,
    AuthErr,
    ServiceErr,
    ConvErr,
    /// Fleet mode with `failure_policy = closed`: the shared state could
    /// not be used (PAM_AUTHINFO_UNAVAIL).
    AuthInfoUnavail,
}

#[derive(Debug)]
enum Success {
    Accepted(Accepted),
    NoSecretFileNullok,
}

#[derive(Debug)]
enum Failure {
    Options(OptionError),
    NoUser,
    UnknownAccount,
    UnknownFileUser(String),
    Path(PathError),
    /// Store mode refuses this user name (an alias, an unusual name).
    StoreAccount(NameProblem),
    NoSecretFile,
    File(StoreError),
    Parse(ParseError),
    Conversation,
    NoFirstPass,
    /// `user=` with `~` or `${HOME}` in `secret=`.
    HomeWithFileUser,
    /// `forward_pass`: the password could not be handed on.
    AuthtokNotSet,
    Rejected {
        why: Rejected,
        unsaved: Option<StoreError>,
    },
    NotSaved(StoreError),
    /// `shared_state=` names a configuration that cannot be used, and the
    /// PAM line's `shared_state_policy` is closed.
    SharedConfig(fleet::ConfigError),
}

impl Failure {
    /// The one place failures become PAM return codes.
    fn status(&self) -> Status {
        match self {
            Failure::Options(_) | Failure::UnknownFileUser(_) => Status::ServiceErr,
            Failure::SharedConfig(_)
            | Failure::Rejected {
                why: Rejected::SharedStateUnavailable,
                ..
            } => Status::AuthInfoUnavail,
            // An unknown user fails like a wrong code: a stack with custom
            // control values must not treat the two differently.
            Failure::NoUser
            | Failure::UnknownAccount
            | Failure::Path(_)
            | Failure::StoreAccount(_)
            | Failure::NoSecretFile
            | Failure::File(_)
            | Failure::Parse(_)
            | Failure::NoFirstPass
            | Failure::Conversation
            | Failure::HomeWithFileUser
            | Failure::AuthtokNotSet
            | Failure::Rejected { .. }
            | Failure::NotSaved(_) => Status::AuthErr,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Options(e) => write!(f, "bad module configuration: {e}"),
            Failure::NoUser => f.write_str("no user name from PAM"),
            Failure::UnknownAccount => f.write_str("no such user"),
            Failure::UnknownFileUser(name) => {
                write!(f, "bad module configuration: user={} does not exist", name.escape_debug())
            }
            Failure::Path(e) => write!(f, "cannot locate the secret file: {e}"),
            Failure::StoreAccount(e) => write!(f, "store mode: {e}"),
            Failure::NoSecretFile => f.write_str("no secret file (user not enrolled; see nullok)"),
            Failure::File(e) => write!(f, "{e}"),
            Failure::Parse(e) => write!(f, "secret file is corrupt: {e}"),
            Failure::Conversation => f.write_str("could not ask for the verification code"),
            Failure::NoFirstPass => {
                f.write_str("use_first_pass is set but no earlier module collected a password")
            }
            Failure::HomeWithFileUser => f.write_str(
                "bad module configuration: secret= cannot use ~ or ${HOME} together with user=",
            ),
            Failure::AuthtokNotSet => {
                f.write_str("forward_pass: could not hand the password on as PAM_AUTHTOK")
            }
            Failure::Rejected { why, unsaved: None } => write!(f, "{why}"),
            Failure::Rejected {
                why,
                unsaved: Some(e),
            } => write!(f, "{why} (and the attempt could not be recorded: {e})"),
            Failure::NotSaved(e) => write!(
                f,
                "code was valid but the secret file could not be updated, so the login is refused: {e}"
            ),
            Failure::SharedConfig(e) => write!(
                f,
                "shared state configuration unusable ({e}); shared_state_policy=closed refuses the login"
            ),
        }
    }
}

/// Everything resolved about where the secret file is and how to open it.
struct Target {
    location: SecretLocation,
    /// What the look before the prompt opened (home-file layout), for the
    /// locked update after it: no second directory walk, no second open.
    look: Option<store::Look>,
}

/// Runs one authentication and logs its outcome.
pub fn authenticate<A: AsRef<[u8]>>(pam: &mut dyn Pam, args: &[A], clock: &dyn Clock) -> Status {
    authenticate_with(pam, args, clock, &mut LocalOnly)
}

/// [`authenticate`] with a check between each local decision and its save
/// (see [`CommitCheck`]).
pub fn authenticate_with<A: AsRef<[u8]>>(
    pam: &mut dyn Pam,
    args: &[A],
    clock: &dyn Clock,
    commit_check: &mut dyn CommitCheck,
) -> Status {
    authenticate_with_accounts(pam, args, clock, &SystemAccounts, commit_check)
}

/// A user's account, as the module needs it; `name` is the account's own
/// name (`pw_name`), which may differ from the name it was looked up by.
pub use crate::account::Account;

/// Where user names are looked up: the system's user database
/// ([`SystemAccounts`]) in the module; a fixed table in tests and the fuzz
/// target, so they need neither root nor real users.
pub trait Accounts {
    /// `None` when there is no such user (or the lookup failed).
    fn lookup(&self, name: &str) -> Option<Account>;
    /// The account with this uid, for a numeric `user=`; none by default.
    fn lookup_uid(&self, _uid: u32) -> Option<Account> {
        None
    }
}

/// The system's user database (getpwnam_r, through NSS).
pub struct SystemAccounts;

impl SystemAccounts {
    fn account(user: User) -> Account {
        Account {
            name: user.name,
            uid: user.uid,
            gid: user.gid,
            home: user.dir,
        }
    }
}

impl Accounts for SystemAccounts {
    fn lookup(&self, name: &str) -> Option<Account> {
        User::from_name(name).ok().flatten().map(Self::account)
    }

    fn lookup_uid(&self, uid: u32) -> Option<Account> {
        User::from_uid(Uid::from_raw(uid))
            .ok()
            .flatten()
            .map(Self::account)
    }
}

/// [`authenticate_with`] with the user database given.
pub fn authenticate_with_accounts<A: AsRef<[u8]>>(
    pam: &mut dyn Pam,
    args: &[A],
    clock: &dyn Clock,
    accounts: &dyn Accounts,
    commit_check: &mut dyn CommitCheck,
) -> Status {
    let mut session = Session {
        pam,
        clock,
        accounts,
        commit_check,
        fleet: None,
        options: ModuleOptions::default(),
        user: None,
        host: None,
    };
    let _ = store::take_notes();
    let result = session.run(args);
    for note in store::take_notes() {
        session.pam.log(Priority::Warning, &session.line(&note));
    }
    session.report(&result);
    match result {
        Ok(Success::Accepted(_)) => Status::Success,
        Ok(Success::NoSecretFileNullok) => Status::Ignore,
        Err(failure) => failure.status(),
    }
}

struct Session<'a> {
    pam: &'a mut dyn Pam,
    clock: &'a dyn Clock,
    accounts: &'a dyn Accounts,
    commit_check: &'a mut dyn CommitCheck,
    /// Fleet mode (`shared_state=`): the shared-state step, used instead of
    /// `commit_check`.
    fleet: Option<FleetCheck>,
    options: ModuleOptions,
    user: Option<String>,
    /// PAM_RHOST if it is a plain host name or address (see
    /// [`policy::grace_host`]); otherwise it is never stored or logged.
    host: Option<String>,
}

impl Session<'_> {
    fn debug(&self, message: impl FnOnce() -> String) {
        if self.options.debug {
            self.pam.log(Priority::Debug, &self.line(&message()));
        }
    }

    /// Prefixes a log line with who and from where.
    fn line(&self, message: &str) -> String {
        let user = self
            .user
            .as_deref()
            .map_or_else(|| "(unknown)".into(), |u| u.escape_debug().to_string());
        match &self.host {
            Some(host) => format!("user {user} from {host}: {message}"),
            None => format!("user {user}: {message}"),
        }
    }

    fn report(&self, result: &Result<Success, Failure>) {
        let (priority, message) = match result {
            Ok(Success::Accepted(how)) => (
                Priority::Info,
                match how {
                    Accepted::Code => "accepted verification code".to_owned(),
                    Accepted::ScratchCode => "accepted emergency scratch code".to_owned(),
                    Accepted::CodeAfterSkewCorrection { skew_steps } => format!(
                        "accepted verification code; clock skew of {skew_steps} time steps adopted"
                    ),
                    Accepted::GracePeriod => "accepted without a code: grace period".to_owned(),
                },
            ),
            Ok(Success::NoSecretFileNullok) => (
                Priority::Info,
                "no secret file; nullok lets the login continue without a code".to_owned(),
            ),
            Err(failure @ (Failure::Options(_) | Failure::UnknownFileUser(_))) => {
                (Priority::Error, failure.to_string())
            }
            Err(failure @ (Failure::File(_) | Failure::Parse(_) | Failure::NotSaved(_))) => {
                (Priority::Error, failure.to_string())
            }
            Err(failure @ Failure::SharedConfig(_)) => (Priority::Error, failure.to_string()),
            Err(Failure::Rejected {
                why: Rejected::SharedStateUnavailable,
                unsaved,
            }) => {
                let reason = self
                    .fleet
                    .as_ref()
                    .and_then(FleetCheck::failure)
                    .map_or_else(|| "no answer".to_owned(), ToString::to_string);
                let mut message = format!(
                    "shared state unavailable ({reason}); failure_policy closed refuses the login"
                );
                if let Some(e) = unsaved {
                    message.push_str(&format!(" (and the attempt could not be recorded: {e})"));
                }
                (Priority::Error, message)
            }
            Err(failure) => (Priority::Notice, failure.to_string()),
        };
        if let Some(fleet) = &self.fleet {
            if let (FailurePolicy::Local, Some(e)) = (fleet.policy(), fleet.failure()) {
                self.pam.log(
                    Priority::Error,
                    &self.line(&format!(
                        "shared state unavailable ({e}); decided with the local file alone (failure_policy local)"
                    )),
                );
            }
        }
        self.pam.log(priority, &self.line(&message));
    }

    /// Fleet mode, a user with no account or no file: the store sees (and
    /// the clock measures) what an enrolled user's wrong code costs.
    fn fleet_decoy(&mut self) {
        if let Some(fleet) = &mut self.fleet {
            fleet.decoy();
        }
    }

    /// Fleet mode: loads the shared-state configuration named on the PAM
    /// line. One that cannot be used (unreadable by an unprivileged PAM
    /// stack, insecure, invalid) is logged; `shared_state_policy` says
    /// whether the login then goes on with the local file alone.
    fn load_shared_state(&mut self) -> Result<(), Failure> {
        let Some(path) = self.options.shared_state.clone() else {
            return Ok(());
        };
        match fleet::Config::load(Path::new(&path)) {
            Ok(config) => {
                self.fleet = Some(FleetCheck::new(config));
                Ok(())
            }
            Err(e) if self.options.shared_state_policy == FailurePolicy::Closed => {
                Err(Failure::SharedConfig(e))
            }
            Err(e) => {
                self.pam.log(
                    Priority::Error,
                    &self.line(&format!(
                        "shared state configuration unusable ({e}); deciding with the local file alone (shared_state_policy local)"
                    )),
                );
                Ok(())
            }
        }
    }

    fn run<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<Success, Failure> {
        self.options = ModuleOptions::parse(args).map_err(Failure::Options)?;
        let user = self.pam.user().ok_or(Failure::NoUser)?;
        self.user = Some(user.clone());
        self.host = self
            .pam
            .remote_host()
            .and_then(|h| policy::grace_host(&h).map(str::to_owned));
        self.load_shared_state()?;

        let (target, file) = match self.load(&user)? {
            Loaded::File(target, file) => (target, file),
            Loaded::MissingNullok => return Ok(Success::NoSecretFileNullok),
            Loaded::Unusable(failure) => {
                // Ask all the same, as the reference module does: the prompt
                // must not tell who is enrolled or whose file is broken. It
                // does not ask when the earlier password already ends in
                // something code-shaped (try_first_pass), nor ever with
                // use_first_pass.
                let code_in_first_pass = match self.options.pass_mode {
                    PassMode::Prompt => false,
                    PassMode::TryFirstPass | PassMode::UseFirstPass => self
                        .pam
                        .authtok()
                        .is_some_and(|password| !code_candidates(&password, false).is_empty()),
                };
                if self.options.pass_mode != PassMode::UseFirstPass && !code_in_first_pass {
                    let answer = self.ask_code();
                    // As long as a wrong code takes (see equal_refusals).
                    if let (Ok(answer), Failure::UnknownAccount | Failure::NoSecretFile) =
                        (&answer, &failure)
                    {
                        let now = self.clock.now();
                        equal_refusals::judge_and_discard(answer, now, &self.options.policy);
                    }
                }
                self.fleet_decoy();
                return Err(failure);
            }
        };
        self.debug(|| format!("settings: {}", file.settings()));

        if let Some(accepted) = self.try_grace_period(&file, &target)? {
            return Ok(Success::Accepted(accepted));
        }
        self.refuse_if_rate_limited(&file, &target)?;
        self.check_codes(&target)
    }

    /// Finds and reads the secret file. Errors returned here end the login
    /// without a prompt (configuration errors, a broken RATE_LIMIT line);
    /// every other problem is [`Loaded::Unusable`].
    fn load(&self, user: &str) -> Result<Loaded, Failure> {
        let mut target = match self.locate(user)? {
            Ok(target) => target,
            Err(unusable) => return Ok(Loaded::Unusable(unusable)),
        };
        self.debug(|| target.location.to_string());
        // In store mode NotFound means only "no file for this account in a
        // store that passed every check", so nullok keeps its meaning: an
        // account root has not enrolled. A store that is missing or unsafe
        // is an error, never "not enrolled".
        let read = match &target.location {
            SecretLocation::Path {
                path,
                identity,
                rules,
            } => store::look(path, *identity, rules).map(|(look, bytes)| {
                target.look = Some(look);
                bytes
            }),
            SecretLocation::Store { .. } => target.location.read(),
        };
        let bytes = match read {
            Ok(bytes) => bytes,
            Err(StoreError::NotFound) if self.options.nullok => return Ok(Loaded::MissingNullok),
            Err(StoreError::NotFound) => return Ok(Loaded::Unusable(Failure::NoSecretFile)),
            Err(e) => return Ok(Loaded::Unusable(Failure::File(e))),
        };
        match SecretFile::parse(&bytes) {
            Ok(file) => Ok(Loaded::File(target, file)),
            // The rate limit is checked before the prompt: a broken limit
            // refuses at once.
            Err(e) if e.reason == ParseErrorKind::BadValue("RATE_LIMIT") => Err(Failure::Parse(e)),
            Err(e) => Ok(Loaded::Unusable(Failure::Parse(e))),
        }
    }

    /// Reads the code from the earlier module's password (`try_first_pass`,
    /// `use_first_pass`) and, unless `use_first_pass`, from the prompt, and
    /// checks it. As in the reference module: the attempt counts once
    /// against RATE_LIMIT; with `try_first_pass` the prompt follows only
    /// when the password held no valid code; PAM_AUTHTOK is changed only
    /// with `forward_pass` and only on success.
    fn check_codes(&mut self, target: &Target) -> Result<Success, Failure> {
        let mut hotp_missed = false;
        let mut counted = false;
        let mode = self.options.pass_mode;
        if mode != PassMode::Prompt {
            let password = self.pam.authtok();
            let pass = Pass {
                count_attempt: true,
                hotp_missed_before: false,
                more_to_come: mode == PassMode::TryFirstPass,
            };
            let input = password.as_deref().map_or(&b""[..], |p| p.as_slice());
            let tried = self.verify(target, input, Source::FirstPass, pass)?;
            counted = true;
            hotp_missed = tried.hotp_missed;
            match tried.result {
                Tried::Accepted(accepted) => return Ok(Success::Accepted(accepted)),
                Tried::Refused(failure) => return Err(failure),
                Tried::NoCode(_) if password.is_none() && mode == PassMode::UseFirstPass => {
                    return Err(Failure::NoFirstPass)
                }
                Tried::NoCode(failure) if mode == PassMode::UseFirstPass => return Err(failure),
                Tried::NoCode(_) => {
                    self.debug(|| "no valid code in the earlier password; asking".into());
                }
            }
        }
        let answer = self.ask_code();
        let input = answer.as_ref().map_or(&b""[..], |a| a.as_slice());
        let pass = Pass {
            count_attempt: !counted,
            hotp_missed_before: hotp_missed,
            more_to_come: false,
        };
        let tried = self.verify(target, input, Source::Prompt, pass)?;
        match (tried.result, answer) {
            (Tried::Accepted(accepted), _) => Ok(Success::Accepted(accepted)),
            (Tried::Refused(failure) | Tried::NoCode(failure), Ok(_)) => Err(failure),
            (Tried::Refused(failure) | Tried::NoCode(failure), Err(conversation)) => {
                Err(match failure {
                    Failure::Rejected {
                        why: Rejected::Malformed(_),
                        unsaved: None,
                    } => conversation,
                    other => other,
                })
            }
        }
    }

    /// Resolves the file's path and the identity it is accessed with. The
    /// inner `Err` is a problem that refuses the login after the prompt (no
    /// such user, a path that cannot be built).
    fn locate(&self, user: &str) -> Result<Result<Target, Failure>, Failure> {
        if let Some(store) = &self.options.store {
            return self.locate_in_store(user, Path::new(store));
        }
        let template = self
            .options
            .secret_path
            .as_deref()
            .unwrap_or(DEFAULT_SECRET_PATH);
        // The login user's own account, when it was looked up here (no
        // `user=`): its name is the canonical one, no second lookup.
        let mut own_name = None;
        let (file_account, home) = match &self.options.file_user {
            None => {
                let Some(account) = self.accounts.lookup(user) else {
                    return Ok(Err(Failure::UnknownAccount));
                };
                let home = account.home.clone();
                own_name = Some(account.name.clone());
                (account, home)
            }
            Some(name) => {
                let account = file_user(self.accounts, name)
                    .ok_or_else(|| Failure::UnknownFileUser(name.clone()))?;
                // With user=, the login user's home is not looked up (the
                // account may not exist on this host): `~` and ${HOME}
                // cannot be used, as in the reference module.
                if template.starts_with('~') || template.contains("${HOME}") {
                    return Ok(Err(Failure::HomeWithFileUser));
                }
                (account, PathBuf::from("/"))
            }
        };
        // ${USER} is the account's own name: with a directory service that
        // matches names case-insensitively or by alias, `ALICE` must find
        // alice's file, not a missing one that nullok would let through.
        let canonical = own_name.unwrap_or_else(|| {
            self.accounts
                .lookup(user)
                .map_or_else(|| user.to_owned(), |account| account.name)
        });
        if canonical != user {
            self.pam.log(
                Priority::Info,
                &self.line(&format!(
                    "PAM user name {} is the account {}; secret= uses {}",
                    user.escape_debug(),
                    canonical.escape_debug(),
                    canonical.escape_debug()
                )),
            );
        }
        let path = match path::expand(template, &canonical, &home) {
            Ok(path) => path,
            Err(e) => return Ok(Err(Failure::Path(e))),
        };
        Ok(Ok(Target {
            location: SecretLocation::Path {
                path,
                identity: Identity {
                    uid: file_account.uid,
                    gid: file_account.gid,
                },
                rules: AccessRules {
                    owner: self.options.strict_owner.then_some(file_account.uid),
                    allowed_mode: self.options.allowed_mode,
                },
            },
            look: None,
        }))
    }

    /// Store mode: the account's own name, and the store opened after its
    /// checks (see [`crate::root_store`]). An unknown or refused name is
    /// asked like anyone else, then refused; a store that fails its checks
    /// refuses everyone at once (it says nothing about the user).
    fn locate_in_store(
        &self,
        user: &str,
        store: &Path,
    ) -> Result<Result<Target, Failure>, Failure> {
        let account = match root_store::canonical_account(user) {
            Ok(account) => account,
            Err(NameProblem::Unknown) => return Ok(Err(Failure::UnknownAccount)),
            Err(problem) => return Ok(Err(Failure::StoreAccount(problem))),
        };
        let store = RootStore::open(store).map_err(|e| Failure::File(e.into()))?;
        Ok(Ok(Target {
            location: SecretLocation::Store { store, account },
            look: None,
        }))
    }

    fn prompt_text(&self) -> &str {
        match (&self.options.prompt, self.options.forward_pass) {
            (Some(prompt), _) => prompt,
            (None, true) => DEFAULT_FORWARD_PASS_PROMPT,
            (None, false) => DEFAULT_PROMPT,
        }
    }

    /// Asks for the code. If the conversation fails it asks once more, as
    /// the reference module does (it tries the prompt for a 6-digit and then
    /// for an 8-digit code); a second failure is [`Failure::Conversation`].
    fn ask_code(&mut self) -> Result<Zeroizing<Vec<u8>>, Failure> {
        let prompt = self.prompt_text().to_owned();
        let echo = self.options.echo_code;
        match self.pam.ask(&prompt, echo) {
            Some(answer) => Ok(answer),
            None => self.pam.ask(&prompt, echo).ok_or(Failure::Conversation),
        }
    }

    fn try_grace_period(
        &mut self,
        file: &SecretFile,
        target: &Target,
    ) -> Result<Option<Accepted>, Failure> {
        let (Some(grace), Some(host)) = (self.options.grace_period, self.host.clone()) else {
            return Ok(None);
        };
        let now = self.clock.now();
        if !in_grace_period(file, &host, now, grace) {
            return Ok(None);
        }
        // Re-check under the lock, and count the login against the rate limit.
        let settled = self.decide_locked(target, None, |file| {
            in_grace_period(file, &host, now, grace)
                .then(|| Attempt::alone(policy::check_codeless_attempt(file, now)))
        })?;
        match settled {
            Some(settled) => self.settle(settled).map(Some),
            None => Ok(None),
        }
    }

    /// Refuses, without asking for a code, an attempt over the rate limit.
    /// The look at the unlocked copy is only a shortcut: the decision and
    /// the count are taken under the lock.
    fn refuse_if_rate_limited(
        &mut self,
        file: &SecretFile,
        target: &Target,
    ) -> Result<(), Failure> {
        let now = self.clock.now();
        if policy::refuse_if_rate_limited(&mut file.clone(), now).is_none() {
            return Ok(());
        }
        let settled = self.decide_locked(target, None, |file| {
            policy::refuse_if_rate_limited(file, now).map(Attempt::alone)
        })?;
        match settled {
            Some(settled) => self.settle(settled).map(drop),
            None => Ok(()),
        }
    }

    /// Checks `input`, read from `source`, against the file under its lock.
    fn verify(
        &mut self,
        target: &Target,
        input: &[u8],
        source: Source,
        pass: Pass,
    ) -> Result<Verified, Failure> {
        // Without forward_pass, the prompt takes the bare code only.
        let bare_only = source == Source::Prompt && !self.options.forward_pass;
        let candidates = code_candidates(input, bare_only);
        let codes: Vec<&[u8]> = candidates.iter().map(|c| c.code).collect();
        // With nothing code-shaped, nothing is checked; the log says why.
        let no_candidate = match crate::otp::Code::parse(input) {
            _ if !codes.is_empty() => None,
            Ok(crate::otp::Code::Otp(_)) => Some(Rejected::WrongCode),
            Ok(crate::otp::Code::Scratch(_)) => Some(Rejected::WrongScratchCode),
            Err(why) => Some(Rejected::Malformed(why)),
        };
        let now = self.clock.now();
        let (policy_options, grace, host) = (
            self.options.policy,
            self.options.grace_period,
            self.host.clone(),
        );
        let mut hotp_missed = pass.hotp_missed_before;
        let settled = self.decide_locked(target, Some(now), |file| {
            let checked = policy::check_candidates(file, &codes, now, &policy_options, pass);
            hotp_missed = checked.hotp_missed;
            let mut decision = checked.decision;
            if let (Some(why), Err(Rejected::Malformed(crate::otp::MalformedCode::Empty))) =
                (no_candidate, decision.verdict)
            {
                decision.verdict = Err(why);
            }
            if let (Ok(_), Some(_), Some(host)) = (decision.verdict, grace, &host) {
                let bookkeeping = policy::record_grace_login(file, host, now);
                decision.changes.bookkeeping |= bookkeeping.bookkeeping;
            }
            Some(Attempt {
                decision,
                candidate: checked.candidate,
            })
        })?;
        // The decide step above always decides; fail closed all the same.
        let Some(settled) = settled else {
            return Err(Failure::Rejected {
                why: Rejected::WrongCode,
                unsaved: None,
            });
        };
        let winner = settled.candidate.and_then(|i| candidates.get(i));
        let result = match self.settle(settled) {
            Ok(accepted) => {
                if self.options.forward_pass {
                    // The password typed before the code goes on to the next
                    // module; if it cannot, the login fails.
                    let password = winner.map_or(&b""[..], |c| c.password);
                    if !self.pam.set_authtok(password) {
                        return Err(Failure::AuthtokNotSet);
                    }
                }
                Tried::Accepted(accepted)
            }
            Err(failure @ Failure::Rejected { why, unsaved: None })
                if why.lets_another_reading_try() =>
            {
                Tried::NoCode(failure)
            }
            Err(failure) => Tried::Refused(failure),
        };
        Ok(Verified {
            result,
            hotp_missed,
        })
    }

    /// The one locked read-decide-write of a login: `decide` judges the file
    /// as it is under the lock (`None`: nothing to decide any more), the
    /// commit check (shared state) has the last word, and the file is saved
    /// if the decision changed it. A file that is corrupt under the lock is
    /// refused.
    fn decide_locked(
        &mut self,
        target: &Target,
        judging_code_at: Option<u64>,
        decide: impl FnOnce(&mut SecretFile) -> Option<Attempt>,
    ) -> Result<Option<Settled>, Failure> {
        let check: &mut dyn CommitCheck = match &mut self.fleet {
            Some(fleet) => fleet,
            None => &mut *self.commit_check,
        };
        // Both steps below reach the same check, one after the other.
        let check = RefCell::new(check);
        let decide = |file: &mut SecretFile| {
            let first = judging_code_at
                .and_then(|now| check.borrow_mut().before_judging(file, now))
                .map(Attempt::alone);
            let outcome = first.or_else(|| decide(file));
            let changed = outcome.as_ref().is_some_and(|a| a.decision.changes.any());
            Decided { outcome, changed }
        };
        let mut check = CheckAdapter(&check);
        let committed = match (&target.look, &target.location) {
            (Some(look), SecretLocation::Path { rules, .. }) => {
                locked_update::read_decide_write_after_look(look, rules, decide, &mut check)
            }
            _ => locked_update::read_decide_write_at(&target.location, decide, &mut check),
        }
        .map_err(|error| match error {
            UpdateError::Store(e) => Failure::File(e),
            UpdateError::Parse(e) => Failure::Parse(e),
        })?;
        if let Saved::Failed(error) = &committed.saved {
            if let Some(text) = write_error_for_user(error) {
                self.pam.tell_error(&text);
            }
        }
        Ok(committed.outcome.map(|attempt| Settled {
            decision: attempt.decision,
            candidate: attempt.candidate,
            saved: committed.saved,
        }))
    }

    /// Combines the verdict with whether its changes were saved.
    fn settle(&self, settled: Settled) -> Result<Accepted, Failure> {
        let Settled {
            decision, saved, ..
        } = settled;
        if decision.changes.dropped_skew_observations > 0 {
            self.pam.log(
                Priority::Warning,
                &self.line(&format!(
                    "dropped {} out-of-range clock-skew observation(s) from RESETTING_TIME_SKEW",
                    decision.changes.dropped_skew_observations
                )),
            );
        }
        match (decision.verdict, saved.error()) {
            (Ok(accepted), None) => Ok(accepted),
            (Ok(accepted), Some(e))
                if !decision.changes.protective && self.options.allow_readonly =>
            {
                self.pam.log(
                    Priority::Warning,
                    &self.line(&format!("allow_readonly: bookkeeping not saved: {e}")),
                );
                Ok(accepted)
            }
            (Ok(_), Some(e)) => Err(Failure::NotSaved(e)),
            (Err(why), unsaved) => Err(Failure::Rejected { why, unsaved }),
        }
    }
}

/// One attempt judged under the lock: the decision and, for a password
/// with a code at its end, which reading of it was accepted.
#[derive(Debug)]
pub struct Attempt {
    pub decision: Decision,
    pub candidate: Option<usize>,
}

impl Attempt {
    fn alone(decision: Decision) -> Attempt {
        Attempt {
            decision,
            candidate: None,
        }
    }
}

/// An attempt after the commit: the decision and whether it was saved.
struct Settled {
    decision: Decision,
    candidate: Option<usize>,
    saved: Saved,
}

/// A check consulted under the file's lock after the local decision and
/// before it is saved: the seam for a fleet-wide shared state (for example
/// refusing a code another host has already used). It may change the
/// decision; the file is saved if the decision's changes then say so.
pub trait CommitCheck {
    /// Under the lock, before a typed code is judged (not for codeless
    /// steps): may decide the attempt itself, e.g. refuse it over a
    /// fleet-wide limit, so that the code is not even checked.
    fn before_judging(&mut self, _file: &SecretFile, _now: u64) -> Option<Decision> {
        None
    }
    fn before_commit(&mut self, attempt: &mut Attempt, file: &mut SecretFile);
}

impl CommitCheck for LocalOnly {
    fn before_commit(&mut self, _: &mut Attempt, _: &mut SecretFile) {}
}

struct CheckAdapter<'a, 'b>(&'a RefCell<&'b mut dyn CommitCheck>);

impl BeforeCommit<Option<Attempt>> for CheckAdapter<'_, '_> {
    fn before_commit(&mut self, decided: &mut Decided<Option<Attempt>>, file: &mut SecretFile) {
        if let Some(attempt) = decided.outcome.as_mut() {
            self.0.borrow_mut().before_commit(attempt, file);
            decided.changed = attempt.decision.changes.any();
        }
    }
}

/// The message the user sees when the file could not be written for a
/// reason of the system rather than of the login (a full or read-only disk,
/// an I/O error), worded as the reference module words it.
fn write_error_for_user(error: &StoreError) -> Option<String> {
    let StoreError::Io { error, .. } = error else {
        return None;
    };
    let errno = nix::errno::Errno::from_raw(error.raw_os_error()?);
    use nix::errno::Errno::{EDQUOT, EIO, ENOSPC, EPERM, EROFS};
    matches!(errno, EPERM | ENOSPC | EROFS | EIO | EDQUOT)
        .then(|| format!("Error \"{}\" while writing config", errno.desc()))
}

/// What the first look at the secret file found.
// One value a login, moved once: boxing the large variant would cost an
// allocation for nothing.
#[allow(clippy::large_enum_variant)]
enum Loaded {
    File(Target, SecretFile),
    /// No file, and `nullok`: the module stays out of the decision.
    MissingNullok,
    /// Nothing usable (no such user, no file, a broken file): the login is
    /// refused after the prompt.
    Unusable(Failure),
}

/// Where the code being checked came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// PAM_AUTHTOK, from an earlier module.
    FirstPass,
    Prompt,
}

/// The outcome of checking one input.
enum Tried {
    Accepted(Accepted),
    /// The input held no valid code: with `try_first_pass`, the prompt
    /// comes next.
    NoCode(Failure),
    /// Refused for good (a reused code, a skew observation, the rate limit,
    /// state that could not be saved).
    Refused(Failure),
}

struct Verified {
    result: Tried,
    /// A HOTP code missed the window (see [`Pass`]).
    hotp_missed: bool,
}

/// The account `user=` names: a user name, or a numeric uid as the
/// reference module also accepts.
fn file_user(accounts: &dyn Accounts, name: &str) -> Option<Account> {
    if let Some(account) = accounts.lookup(name) {
        return Some(account);
    }
    if !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit()) {
        return accounts.lookup_uid(name.parse::<u32>().ok()?);
    }
    None
}

/// One way to read a password-and-code string.
struct Candidate<'a> {
    code: &'a [u8],
    password: &'a [u8],
}

/// The ways `input` may hold a code, in the reference module's order: a
/// 6-digit code at its end, then an 8-digit scratch code (first digit not
/// 0) at its end, each after whatever password comes first. `bare_only`:
/// only a code with nothing before it.
fn code_candidates(input: &[u8], bare_only: bool) -> Vec<Candidate<'_>> {
    let mut candidates = Vec::new();
    for digits in [crate::otp::CODE_DIGITS, crate::otp::SCRATCH_CODE_DIGITS] {
        let Some(split) = input.len().checked_sub(digits) else {
            continue;
        };
        let (password, code) = input.split_at(split);
        let shaped = code.iter().all(u8::is_ascii_digit)
            && (digits == crate::otp::CODE_DIGITS || code.first() != Some(&b'0'));
        if shaped && (password.is_empty() || !bare_only) {
            candidates.push(Candidate { code, password });
        }
    }
    candidates
}

#[cfg(test)]
mod tests;
