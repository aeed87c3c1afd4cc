//! libpam's walk through an `auth` stack, for results known in advance:
//! which line decides, and whether the whole stack succeeds. It follows
//! Linux-PAM's rules: a first failure sticks, `done`/`die` end the walk,
//! `N` skips lines, and a stack in which no module gave a verdict (all
//! PAM_IGNORE) fails with PAM_PERM_DENIED.

use crate::pam_conf::{Action, Entry, ModuleLine, Outcome};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Impression {
    Undecided,
    Good,
    Bad,
}

/// How a walk ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Walk {
    pub success: bool,
    /// Why it failed, in words (empty on success).
    pub why: String,
}

/// Walks `stack`; `result` says what each module line returns, with a
/// reason for messages.
pub fn walk(stack: &[Entry], result: &mut dyn FnMut(&ModuleLine) -> (Outcome, String)) -> Walk {
    let mut impression = Impression::Undecided;
    let mut success = false;
    let mut first_failure = String::new();
    // Failures that did not decide by themselves (e.g. pam_unix under
    // `[success=1 default=ignore]`) explain the one that did.
    let mut failures: Vec<String> = Vec::new();
    let mut skip = 0;
    for entry in stack {
        if skip > 0 {
            skip -= 1;
            continue;
        }
        let (outcome, reason, control) = match entry {
            Entry::Module(line) => {
                let (outcome, reason) = result(line);
                (
                    outcome,
                    format!("{}: {} ({reason})", line.origin, line.name()),
                    &line.control,
                )
            }
            Entry::Substack {
                origin,
                control,
                stack,
            } => {
                let inner = walk(stack, result);
                let outcome = if inner.success {
                    Outcome::Success
                } else {
                    Outcome::AuthErr
                };
                (
                    outcome,
                    format!("{origin}: substack: {}", inner.why),
                    control,
                )
            }
        };
        if outcome != Outcome::Success && outcome != Outcome::Ignore {
            failures.push(reason.clone());
        }
        match control.action(outcome) {
            Action::Ignore => {}
            Action::Reset => {
                impression = Impression::Undecided;
                success = false;
            }
            action @ (Action::Ok | Action::Done) => {
                let open = impression == Impression::Undecided
                    || (impression == Impression::Good && success);
                // PAM_IGNORE under "ok" changes nothing (Linux-PAM does the same).
                if open && outcome != Outcome::Ignore {
                    impression = Impression::Good;
                    success = outcome == Outcome::Success;
                    if !success {
                        first_failure = reason.clone();
                    }
                }
                if impression != Impression::Bad && action == Action::Done {
                    break;
                }
            }
            action @ (Action::Bad | Action::Die) => {
                if impression != Impression::Bad {
                    impression = Impression::Bad;
                    success = false;
                    first_failure = reason;
                }
                if action == Action::Die {
                    break;
                }
            }
            Action::Jump(n) => skip = n,
        }
    }
    let success = impression == Impression::Good && success;
    let why = match (success, impression) {
        (true, _) => String::new(),
        (false, Impression::Undecided) => {
            "no module gave a verdict (every one ignored the login): libpam refuses".into()
        }
        (false, _) => {
            let at = failures
                .iter()
                .position(|f| *f == first_failure)
                .unwrap_or(failures.len());
            let mut chain = failures[..at].to_vec();
            chain.push(first_failure);
            chain.join(", so ")
        }
    };
    Walk { success, why }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pam_conf::auth_stack;
    use std::fs;

    fn stack(text: &str) -> Vec<Entry> {
        let dir = std::env::temp_dir().join(format!(
            "pam_totp-check-stack-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        fs::create_dir_all(dir.join("etc/pam.d")).unwrap();
        fs::write(dir.join("etc/pam.d/svc"), text).unwrap();
        let mut problems = Vec::new();
        let stack = auth_stack(&dir.join("etc/pam.d"), "svc", &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        let _ = fs::remove_dir_all(&dir);
        stack
    }

    fn run(text: &str, unix: Outcome, totp: Outcome) -> bool {
        walk(&stack(text), &mut |line| {
            let outcome = match line.name() {
                "pam_unix.so" => unix,
                "pam_totp.so" => totp,
                "pam_deny.so" => Outcome::AuthErr,
                "pam_permit.so" => Outcome::Success,
                _ => Outcome::Ignore,
            };
            (outcome, String::new())
        })
        .success
    }

    const DEBIAN_COMMON_AUTH: &str = "auth [success=1 default=ignore] pam_unix.so nullok\n\
        auth requisite pam_deny.so\nauth required pam_permit.so\n";

    #[test]
    fn debian_common_auth_then_totp() {
        let text = format!("{DEBIAN_COMMON_AUTH}auth required pam_totp.so nullok\n");
        use Outcome::*;
        assert!(run(&text, Success, Success));
        assert!(run(&text, Success, Ignore), "nullok after a password");
        assert!(!run(&text, AuthErr, Success), "no password");
        assert!(!run(&text, Success, AuthErr));
    }

    #[test]
    fn totp_alone_with_nullok_refuses_the_unenrolled() {
        let text = "auth required pam_totp.so nullok\n";
        assert!(run(text, Outcome::Success, Outcome::Success));
        assert!(!run(text, Outcome::Success, Outcome::Ignore));
        let with_permit = "auth required pam_totp.so nullok\nauth required pam_permit.so\n";
        assert!(run(with_permit, Outcome::Success, Outcome::Ignore));
        assert!(!run(with_permit, Outcome::Success, Outcome::AuthErr));
    }

    #[test]
    fn sufficient_ends_the_walk_and_requisite_dies() {
        let text = "auth sufficient pam_totp.so\nauth requisite pam_deny.so\n";
        assert!(run(text, Outcome::Success, Outcome::Success));
        assert!(!run(text, Outcome::Success, Outcome::AuthErr));
    }
}
