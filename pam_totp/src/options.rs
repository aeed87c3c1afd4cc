//! The module's arguments, as written after `pam_totp.so` in a PAM service
//! file. Unknown or malformed arguments are errors: a typo must not quietly
//! weaken a login.

use crate::fleet::FailurePolicy;
use crate::policy;
use crate::store::DEFAULT_ALLOWED_MODE;
use std::fmt;

/// How a module option is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionForm {
    /// The name alone, e.g. `nullok`.
    Flag,
    /// `name=value`; `example` is a value the parser accepts.
    Value { example: &'static str },
    /// Either the name alone (a default value) or `name=value`.
    FlagOrValue { example: &'static str },
}

/// One module option: its name, other spellings, and form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionSpec {
    pub name: &'static str,
    /// Other spellings Google's module also accepts.
    pub aliases: &'static [&'static str],
    pub form: OptionForm,
}

const fn flag(name: &'static str) -> OptionSpec {
    OptionSpec {
        name,
        aliases: &[],
        form: OptionForm::Flag,
    }
}

const fn value(name: &'static str, example: &'static str) -> OptionSpec {
    OptionSpec {
        name,
        aliases: &[],
        form: OptionForm::Value { example },
    }
}

/// Every module option, the one list: [`ModuleOptions::parse`] refuses
/// anything not here, and tests/tests/docs.rs checks that pam_totp(8) and
/// the README's options table document exactly these. A new option is
/// added here, to the parser, and to both documents.
pub const OPTIONS: &[OptionSpec] = &[
    value("secret", "/var/lib/pam_totp/${USER}"),
    value("user", "pam_totp"),
    flag("nullok"),
    flag("debug"),
    value("authtok_prompt", "Your code: "),
    OptionSpec {
        name: "echo_verification_code",
        aliases: &["echo-verification-code"],
        form: OptionForm::Flag,
    },
    flag("try_first_pass"),
    flag("use_first_pass"),
    flag("forward_pass"),
    flag("noskewadj"),
    flag("no_increment_hotp"),
    flag("no_strict_owner"),
    value("allowed_perm", "0640"),
    value("grace_period", "3600"),
    flag("allow_readonly"),
    value("store", "/var/lib/pam_totp"),
    OptionSpec {
        name: "shared_state",
        aliases: &[],
        form: OptionForm::FlagOrValue {
            example: "/etc/security/pam_totp_shared.conf",
        },
    },
    value("shared_state_policy", "closed"),
];

impl OptionSpec {
    /// The option spelled `name`, written with a value or not.
    pub fn find(name: &str, has_value: bool) -> Option<&'static OptionSpec> {
        OPTIONS.iter().find(|spec| {
            (spec.name == name || spec.aliases.contains(&name))
                && match spec.form {
                    OptionForm::Flag => !has_value,
                    OptionForm::Value { .. } => has_value,
                    OptionForm::FlagOrValue { .. } => true,
                }
        })
    }
}

/// Where the code comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassMode {
    /// Ask for the code (the default).
    Prompt,
    /// `try_first_pass`: use the code at the end of the password an earlier
    /// module collected; ask if that does not work.
    TryFirstPass,
    /// `use_first_pass`: use the code at the end of the earlier password, and
    /// never ask.
    UseFirstPass,
}

/// The longest `grace_period=` accepted: 90 days.
pub const MAX_GRACE_PERIOD: u64 = 90 * 24 * 3600;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleOptions {
    /// `secret=`: the file's path, before expansion.
    pub secret_path: Option<String>,
    /// `user=`: access the file as this user instead of the one logging in.
    pub file_user: Option<String>,
    /// `store=`: store mode, root-only secret files `<store>/<account>`
    /// (see [`crate::root_store`]).
    pub store: Option<String>,
    /// `nullok`: a user without a secret file is let through (PAM_IGNORE).
    pub nullok: bool,
    /// `debug`: log each step (never a code or a secret).
    pub debug: bool,
    /// `authtok_prompt=`: the prompt text.
    pub prompt: Option<String>,
    /// `echo_verification_code`: show the code as it is typed.
    pub echo_code: bool,
    pub pass_mode: PassMode,
    /// `forward_pass`: ask for password and code together, keep the code,
    /// and hand the password on to the next module as PAM_AUTHTOK.
    pub forward_pass: bool,
    pub policy: policy::Options,
    /// `no_strict_owner` turns this off: any owner is accepted.
    pub strict_owner: bool,
    /// `allowed_perm=`: permission bits the file may have.
    pub allowed_mode: u32,
    /// `grace_period=`: seconds after a login with a code during which the
    /// same remote host is not asked again.
    pub grace_period: Option<u64>,
    /// `allow_readonly`: see [`crate::module`] for exactly what it permits.
    pub allow_readonly: bool,
    /// `shared_state[=PATH]`: fleet mode, configured by PATH (default
    /// /etc/security/pam_totp_shared.conf).
    pub shared_state: Option<String>,
    /// `shared_state_policy=local|closed`: what to do when that file cannot
    /// be used (an unprivileged PAM stack cannot read it); the file's own
    /// `failure_policy` governs an unreachable store.
    pub shared_state_policy: FailurePolicy,
}

impl Default for ModuleOptions {
    fn default() -> Self {
        ModuleOptions {
            secret_path: None,
            file_user: None,
            store: None,
            nullok: false,
            debug: false,
            prompt: None,
            echo_code: false,
            pass_mode: PassMode::Prompt,
            forward_pass: false,
            policy: policy::Options::default(),
            strict_owner: true,
            allowed_mode: DEFAULT_ALLOWED_MODE,
            grace_period: None,
            allow_readonly: false,
            shared_state: None,
            shared_state_policy: FailurePolicy::Local,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OptionError {
    Unknown(String),
    BadValue {
        option: &'static str,
        reason: &'static str,
    },
    NotText,
    /// Two options that must not be combined.
    Conflict {
        option: &'static str,
        with: &'static str,
        reason: &'static str,
    },
}

impl fmt::Display for OptionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OptionError::Unknown(arg) => {
                write!(f, "unknown module option \"{}\"", arg.escape_debug())
            }
            OptionError::BadValue { option, reason } => write!(f, "option {option}: {reason}"),
            OptionError::NotText => f.write_str("a module option is not valid UTF-8"),
            OptionError::Conflict {
                option,
                with,
                reason,
            } => write!(
                f,
                "option {option} cannot be combined with {with}: {reason}"
            ),
        }
    }
}

impl std::error::Error for OptionError {}

fn parse_allowed_perm(value: &str) -> Result<u32, OptionError> {
    let bad = |reason| OptionError::BadValue {
        option: "allowed_perm",
        reason,
    };
    let mode = u32::from_str_radix(value, 8).map_err(|_| bad("not an octal number"))?;
    if mode > 0o777 {
        return Err(bad("more than permission bits (at most 0777)"));
    }
    if mode & 0o002 != 0 {
        // A file anyone can write is a secret anyone can replace.
        return Err(bad("must not let others write the file"));
    }
    Ok(mode)
}

fn parse_grace_period(value: &str) -> Result<u64, OptionError> {
    let bad = |reason| OptionError::BadValue {
        option: "grace_period",
        reason,
    };
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("not a number of seconds"));
    }
    let seconds: u64 = value.parse().map_err(|_| bad("too large"))?;
    if seconds > MAX_GRACE_PERIOD {
        return Err(bad("longer than 90 days"));
    }
    Ok(seconds)
}

fn non_empty(option: &'static str, value: &str) -> Result<String, OptionError> {
    if value.is_empty() {
        return Err(OptionError::BadValue {
            option,
            reason: "empty value",
        });
    }
    Ok(value.to_owned())
}

impl ModuleOptions {
    pub fn parse<A: AsRef<[u8]>>(args: &[A]) -> Result<ModuleOptions, OptionError> {
        let mut options = ModuleOptions::default();
        for arg in args {
            let arg = std::str::from_utf8(arg.as_ref()).map_err(|_| OptionError::NotText)?;
            let (name, value) = match arg.split_once('=') {
                Some((name, value)) => (name, Some(value)),
                None => (arg, None),
            };
            let Some(spec) = OptionSpec::find(name, value.is_some()) else {
                return Err(OptionError::Unknown(arg.to_owned()));
            };
            match (spec.name, value) {
                ("secret", Some(v)) => options.secret_path = Some(non_empty("secret", v)?),
                ("user", Some(v)) => options.file_user = Some(non_empty("user", v)?),
                ("store", Some(v)) => options.store = Some(parse_store(v)?),
                ("authtok_prompt", Some(v)) => options.prompt = Some(v.to_owned()),
                ("allowed_perm", Some(v)) => options.allowed_mode = parse_allowed_perm(v)?,
                ("grace_period", Some(v)) => options.grace_period = Some(parse_grace_period(v)?),
                ("nullok", None) => options.nullok = true,
                ("debug", None) => options.debug = true,
                ("echo_verification_code", None) => options.echo_code = true,
                ("try_first_pass", None) => options.pass_mode = PassMode::TryFirstPass,
                ("use_first_pass", None) => options.pass_mode = PassMode::UseFirstPass,
                ("forward_pass", None) => options.forward_pass = true,
                ("noskewadj", None) => options.policy.learn_skew = false,
                ("no_increment_hotp", None) => options.policy.advance_hotp_on_failure = false,
                ("no_strict_owner", None) => options.strict_owner = false,
                ("allow_readonly", None) => options.allow_readonly = true,
                ("shared_state", None) => {
                    options.shared_state = Some(crate::fleet::config::DEFAULT_PATH.to_owned())
                }
                ("shared_state", Some(v)) => {
                    options.shared_state = Some(non_empty("shared_state", v)?)
                }
                ("shared_state_policy", Some(v)) => {
                    options.shared_state_policy =
                        FailurePolicy::parse(v).ok_or(OptionError::BadValue {
                            option: "shared_state_policy",
                            reason: "local or closed",
                        })?
                }
                _ => return Err(OptionError::Unknown(arg.to_owned())),
            }
        }
        options.check_store_mode()?;
        Ok(options)
    }

    /// Store mode keeps the secret out of the user's reach; options that
    /// would hand it back (another path, another file owner, any owner, a
    /// mode with group or other access) are configuration errors, not
    /// silently ignored.
    fn check_store_mode(&self) -> Result<(), OptionError> {
        if self.store.is_none() {
            return Ok(());
        }
        let conflict = |with, reason| {
            Err(OptionError::Conflict {
                option: "store",
                with,
                reason,
            })
        };
        if self.secret_path.is_some() {
            return conflict("secret=", "the store decides where the file is");
        }
        if self.file_user.is_some() {
            return conflict("user=", "store files are always accessed as root");
        }
        if !self.strict_owner {
            return conflict("no_strict_owner", "store files must belong to root");
        }
        if self.allowed_mode & 0o077 != 0 {
            return conflict(
                "allowed_perm",
                "store files must have no group or other access",
            );
        }
        Ok(())
    }
}

fn parse_store(value: &str) -> Result<String, OptionError> {
    let bad = |reason| OptionError::BadValue {
        option: "store",
        reason,
    };
    if !value.starts_with('/') {
        return Err(bad("not an absolute path"));
    }
    if value.split('/').any(|part| part == "." || part == "..") {
        return Err(bad("contains '.' or '..'"));
    }
    if value.contains("${") || value.starts_with('~') {
        return Err(bad(
            "is a directory, not a template: the file name is the account's",
        ));
    }
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each option of the registry, in its form, is accepted by the parser
    /// (the reverse, nothing outside it accepted, is by construction).
    #[test]
    fn every_registered_option_parses() {
        for spec in OPTIONS {
            for name in std::iter::once(&spec.name).chain(spec.aliases) {
                let (arg, wrong_form) = match spec.form {
                    OptionForm::Flag => (name.to_string(), format!("{name}=1")),
                    OptionForm::Value { example } => {
                        (format!("{name}={example}"), name.to_string())
                    }
                    OptionForm::FlagOrValue { example } => {
                        assert!(ModuleOptions::parse(&[name]).is_ok(), "{name}");
                        assert!(ModuleOptions::parse(&[&format!("{name}={example}")]).is_ok());
                        continue;
                    }
                };
                assert!(ModuleOptions::parse(&[&arg]).is_ok(), "{arg}");
                assert!(
                    matches!(
                        ModuleOptions::parse(&[&wrong_form]),
                        Err(OptionError::Unknown(_))
                    ),
                    "{wrong_form}"
                );
            }
        }
    }

    #[test]
    fn defaults() {
        let o = ModuleOptions::parse::<&str>(&[]).unwrap();
        assert_eq!(o, ModuleOptions::default());
        assert!(o.strict_owner);
        assert_eq!(o.allowed_mode, 0o600);
        assert!(o.policy.learn_skew && o.policy.advance_hotp_on_failure);
    }

    #[test]
    fn every_option() {
        let o = ModuleOptions::parse(&[
            "secret=/var/lib/totp/${USER}",
            "user=totp",
            "nullok",
            "debug",
            "authtok_prompt=Code please: ",
            "echo_verification_code",
            "use_first_pass",
            "forward_pass",
            "noskewadj",
            "no_increment_hotp",
            "no_strict_owner",
            "allowed_perm=0640",
            "grace_period=3600",
            "allow_readonly",
        ])
        .unwrap();
        assert_eq!(o.secret_path.as_deref(), Some("/var/lib/totp/${USER}"));
        assert_eq!(o.file_user.as_deref(), Some("totp"));
        assert!(o.nullok && o.debug && o.echo_code && o.forward_pass && o.allow_readonly);
        assert_eq!(o.prompt.as_deref(), Some("Code please: "));
        assert_eq!(o.pass_mode, PassMode::UseFirstPass);
        assert!(!o.policy.learn_skew && !o.policy.advance_hotp_on_failure);
        assert!(!o.strict_owner);
        assert_eq!(o.allowed_mode, 0o640);
        assert_eq!(o.grace_period, Some(3600));
        let o = ModuleOptions::parse(&["try_first_pass", "echo-verification-code"]).unwrap();
        assert_eq!(o.pass_mode, PassMode::TryFirstPass);
        assert!(o.echo_code);
    }

    #[test]
    fn bad_options_are_errors() {
        let unknown = |s: &str| OptionError::Unknown(s.to_owned());
        let cases: Vec<(&[u8], OptionError)> = vec![
            (b"nulok", unknown("nulok")),
            (b"debug=1", unknown("debug=1")),
            (b"secret", unknown("secret")),
            (
                b"secret=",
                OptionError::BadValue {
                    option: "secret",
                    reason: "empty value",
                },
            ),
            (
                b"allowed_perm=0999",
                OptionError::BadValue {
                    option: "allowed_perm",
                    reason: "not an octal number",
                },
            ),
            (
                b"allowed_perm=01600",
                OptionError::BadValue {
                    option: "allowed_perm",
                    reason: "more than permission bits (at most 0777)",
                },
            ),
            (
                b"allowed_perm=0666",
                OptionError::BadValue {
                    option: "allowed_perm",
                    reason: "must not let others write the file",
                },
            ),
            (
                b"grace_period=-5",
                OptionError::BadValue {
                    option: "grace_period",
                    reason: "not a number of seconds",
                },
            ),
            (
                b"grace_period=99999999999999999999999",
                OptionError::BadValue {
                    option: "grace_period",
                    reason: "too large",
                },
            ),
            (
                b"grace_period=9999999",
                OptionError::BadValue {
                    option: "grace_period",
                    reason: "longer than 90 days",
                },
            ),
            (b"user=\xff", OptionError::NotText),
        ];
        for (arg, want) in cases {
            assert_eq!(
                ModuleOptions::parse(&[arg]),
                Err(want),
                "{:?}",
                String::from_utf8_lossy(arg)
            );
        }
    }

    #[test]
    fn store_mode() {
        let o = ModuleOptions::parse(&["store=/var/lib/pam_totp", "nullok", "allowed_perm=0400"])
            .unwrap();
        assert_eq!(o.store.as_deref(), Some("/var/lib/pam_totp"));
        let conflict = |with| {
            Err(OptionError::Conflict {
                option: "store",
                with,
                reason: "",
            })
        };
        let cases: [(&[&str], Result<(), OptionError>); 4] = [
            (&["store=/s", "secret=/s/${USER}"], conflict("secret=")),
            (&["user=root", "store=/s"], conflict("user=")),
            (
                &["store=/s", "no_strict_owner"],
                conflict("no_strict_owner"),
            ),
            (&["store=/s", "allowed_perm=0640"], conflict("allowed_perm")),
        ];
        for (args, want) in cases {
            let got = ModuleOptions::parse(args).map(drop).map_err(|e| match e {
                OptionError::Conflict { option, with, .. } => OptionError::Conflict {
                    option,
                    with,
                    reason: "",
                },
                other => other,
            });
            assert_eq!(got, want, "{args:?}");
        }
        let err = ModuleOptions::parse(&["store=/s", "user=root"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "option store cannot be combined with user=: store files are always accessed as root"
        );
        for bad in [
            "store=",
            "store=relative",
            "store=/a/../b",
            "store=/s/${USER}",
            "store=~/x",
        ] {
            assert!(
                matches!(
                    ModuleOptions::parse(&[bad]),
                    Err(OptionError::BadValue {
                        option: "store",
                        ..
                    })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn error_text_escapes_the_argument() {
        let err = ModuleOptions::parse(&["bad\noption"]).unwrap_err();
        assert_eq!(err.to_string(), "unknown module option \"bad\\noption\"");
    }

    #[test]
    fn shared_state_options() {
        let o = ModuleOptions::parse(&["shared_state"]).unwrap();
        assert_eq!(
            o.shared_state.as_deref(),
            Some("/etc/security/pam_totp_shared.conf")
        );
        assert_eq!(o.shared_state_policy, FailurePolicy::Local);
        let o = ModuleOptions::parse(&["shared_state=/etc/x.conf", "shared_state_policy=closed"])
            .unwrap();
        assert_eq!(o.shared_state.as_deref(), Some("/etc/x.conf"));
        assert_eq!(o.shared_state_policy, FailurePolicy::Closed);
        assert_eq!(ModuleOptions::default().shared_state, None);
        for bad in [
            "shared_state=",
            "shared_state_policy=open",
            "shared_state_policy",
        ] {
            assert!(ModuleOptions::parse(&[bad]).is_err(), "{bad}");
        }
    }
}
