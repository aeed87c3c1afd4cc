//! `--status`: what a secret file configures, and whether the module will
//! accept it. The secret is shown only on request.

use crate::enroll::grouped;
use crate::error::Error;
use crate::target::Target;
use pam_totp::policy::window_offsets;
use pam_totp::secret_file::{Mode, SecretFile};
use pam_totp::store::{self, AccessRules, DEFAULT_ALLOWED_MODE};
use std::io::Write;
use std::os::unix::fs::MetadataExt;

pub fn status(target: &Target, show_secret: bool, out: &mut dyn Write) -> Result<(), Error> {
    let path = &target.path;
    // Read whatever is there, loose modes included: reporting a file the
    // module would refuse is the point.
    let lenient = AccessRules {
        owner: None,
        allowed_mode: 0o7777,
    };
    let bytes =
        store::read(path, target.access, &lenient).map_err(|error| Error::store(path, error))?;
    let meta = std::fs::symlink_metadata(path).map_err(|error| Error::Store {
        path: path.clone(),
        error: store::StoreError::Io {
            action: "inspect the secret file",
            error,
        },
    })?;
    let file = SecretFile::parse(&bytes).map_err(|error| Error::Parse {
        path: path.clone(),
        error,
    })?;
    report(
        target,
        &file,
        meta.uid(),
        meta.gid(),
        meta.mode() & 0o7777,
        show_secret,
        out,
    )
}

fn user_name(uid: u32) -> String {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map_or_else(|| "?".to_owned(), |user| user.name)
}

/// The report itself, from what was read: separate so tests can feed it.
pub fn report(
    target: &Target,
    file: &SecretFile,
    uid: u32,
    gid: u32,
    mode: u32,
    show_secret: bool,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let settings = file.settings();
    writeln!(out, "Secret file:    {}", target.path.display())?;
    writeln!(
        out,
        "File owner:     {} (uid {uid}, gid {gid}), mode {mode:04o}",
        user_name(uid)
    )?;
    match settings.mode {
        Mode::Time { step_seconds } => {
            writeln!(
                out,
                "Tokens:         time-based, a new code every {step_seconds} s"
            )?;
            let offsets = window_offsets(settings.window);
            writeln!(
                out,
                "Window:         {} codes ({} before and {} after the current one)",
                settings.window,
                -offsets.start(),
                offsets.end()
            )?;
            writeln!(
                out,
                "Reuse:          {}",
                if settings.disallow_reuse {
                    format!(
                        "disallowed ({} recently used codes remembered)",
                        file.used_steps().len()
                    )
                } else {
                    "allowed".to_owned()
                }
            )?;
            writeln!(
                out,
                "Clock skew:     {} steps ({} s)",
                settings.time_skew,
                settings.time_skew * i64::from(step_seconds)
            )?;
        }
        Mode::Counter { next } => {
            writeln!(out, "Tokens:         counter-based, next counter {next}")?;
            writeln!(out, "Window:         the next {} codes", settings.window)?;
        }
        Mode::ScratchOnly => writeln!(
            out,
            "Tokens:         none: scratch codes only (no TOTP_AUTH, no HOTP_COUNTER)"
        )?,
    }
    match settings.rate_limit {
        Some((attempts, seconds)) => {
            writeln!(out, "Rate limit:     {attempts} logins every {seconds} s")?
        }
        None => writeln!(out, "Rate limit:     none")?,
    }
    let scratch_left = file.scratch_codes().count();
    writeln!(out, "Scratch codes:  {scratch_left} left")?;
    if let Some(ignored) = file.ignored_scratch_codes() {
        writeln!(
            out,
            "                {} scratch codes ignored after line {}",
            ignored.count, ignored.after_line
        )?;
    }
    if show_secret {
        writeln!(
            out,
            "Secret:         {}",
            *grouped(&file.secret().to_base32())
        )?;
    } else {
        writeln!(out, "Secret:         hidden (--show-secret shows it)")?;
    }

    // What would stop a login, in the module's terms.
    if uid != target.owner.uid.as_raw() {
        writeln!(
            out,
            "Warning: the file belongs to uid {uid}, not to {} (uid {}): pam_totp refuses it \
             unless configured with no_strict_owner.",
            target.user, target.owner.uid
        )?;
    }
    if mode & !DEFAULT_ALLOWED_MODE != 0 {
        writeln!(
            out,
            "Warning: mode {mode:04o} is wider than {DEFAULT_ALLOWED_MODE:04o}: pam_totp refuses \
             it unless configured with allowed_perm; run chmod 400 on it."
        )?;
    }
    if scratch_left == 0 {
        writeln!(
            out,
            "Warning: no scratch codes left: totp-enroll --regenerate-scratch makes new ones."
        )?;
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::TempDir;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    const SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

    fn run(bytes: &[u8], mode: u32, show_secret: bool) -> Result<String, Error> {
        let dir = TempDir::new(&format!("status-{mode:o}-{show_secret}-{}", bytes.len()));
        let path = dir.path("ga");
        fs::write(&path, bytes).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        let target = Target::current("me", path);
        let mut out = Vec::new();
        status(&target, show_secret, &mut out)?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn time_based_report_hides_the_secret() {
        let file = format!(
            "{SECRET}\n\" RATE_LIMIT 3 30 1700000000\n\" WINDOW_SIZE 17\n\" DISALLOW_REUSE 1 2\n\" TOTP_AUTH\n11111111\n22222222\n"
        );
        let text = run(file.as_bytes(), 0o400, false).unwrap();
        let body: Vec<&str> = text.lines().skip(2).collect();
        assert_eq!(
            body,
            [
                "Tokens:         time-based, a new code every 30 s",
                "Window:         17 codes (8 before and 8 after the current one)",
                "Reuse:          disallowed (2 recently used codes remembered)",
                "Clock skew:     0 steps (0 s)",
                "Rate limit:     3 logins every 30 s",
                "Scratch codes:  2 left",
                "Secret:         hidden (--show-secret shows it)",
            ]
        );
        assert!(
            text.lines().nth(1).unwrap().ends_with("mode 0400"),
            "{text}"
        );
        assert!(!text.contains("JBSW"), "the secret leaked: {text}");
    }

    #[test]
    fn show_secret_and_warnings() {
        let file = format!("{SECRET}\n\" HOTP_COUNTER 4\n");
        let text = run(file.as_bytes(), 0o644, true).unwrap();
        assert!(
            text.contains("Tokens:         counter-based, next counter 4\n"),
            "{text}"
        );
        assert!(
            text.contains("Window:         the next 3 codes\n"),
            "{text}"
        );
        assert!(text.contains("Rate limit:     none\n"), "{text}");
        assert!(
            text.contains("Secret:         JBSW Y3DP EHPK 3PXP JBSW Y3DP EHPK 3PXP\n"),
            "{text}"
        );
        assert!(
            text.contains("Warning: mode 0644 is wider than 0600"),
            "{text}"
        );
        assert!(text.contains("Warning: no scratch codes left"), "{text}");
        assert!(!text.contains("belongs to uid"), "{text}");
    }

    #[test]
    fn missing_and_corrupt_files() {
        let dir = TempDir::new("status-missing");
        let target = Target::current("me", dir.path("none"));
        let err = status(&target, false, &mut Vec::new()).unwrap_err();
        assert!(matches!(err, Error::NotEnrolled(_)), "{err}");
        let err = run(b"not base32!\n", 0o400, false).unwrap_err();
        assert!(matches!(err, Error::Parse { .. }), "{err}");
    }
}
