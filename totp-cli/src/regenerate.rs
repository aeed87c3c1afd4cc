//! `--regenerate-scratch`: new scratch codes, same secret, same settings.
//!
//! Done as one locked read-modify-write, so a login using a scratch code at
//! the same moment is neither lost nor able to bring an old code back.

use crate::error::Error;
use crate::generate;
use crate::target::Target;
use pam_totp::locked_update::{self, Decided, LocalOnly, UpdateError};
use pam_totp::store::{AccessRules, DEFAULT_ALLOWED_MODE};
use rand::TryCryptoRng;
use std::io::Write;

pub fn regenerate<R: TryCryptoRng + ?Sized>(
    target: &Target,
    count: u32,
    quiet: bool,
    out: &mut dyn Write,
    rng: &mut R,
) -> Result<(), Error> {
    // The rules the module applies: a file it would refuse is not one to
    // hand out new codes for.
    let rules = AccessRules {
        owner: Some(target.owner.uid),
        allowed_mode: DEFAULT_ALLOWED_MODE,
    };
    let path = &target.path;
    let committed = locked_update::read_decide_write(
        path,
        target.access,
        &rules,
        |file| match generate::scratch_codes(rng, count) {
            Ok(codes) => {
                file.set_scratch_codes(&codes);
                Decided {
                    outcome: Ok(codes),
                    changed: true,
                }
            }
            Err(error) => Decided {
                outcome: Err(error),
                changed: false,
            },
        },
        &mut LocalOnly,
    )
    .map_err(|error| match error {
        UpdateError::Store(error) => Error::store(path, error),
        UpdateError::Parse(error) => Error::Parse {
            path: path.clone(),
            error,
        },
    })?;
    let codes = committed.outcome?;
    if let Some(error) = committed.saved.error() {
        return Err(Error::store(path, error));
    }
    if !quiet {
        writeln!(
            out,
            "New emergency scratch codes in {} (the old ones no longer work):",
            path.display()
        )?;
    }
    for code in codes.iter() {
        // Quiet still prints the codes, bare: they exist nowhere else the
        // user can read them.
        writeln!(out, "{}{code:08}", if quiet { "" } else { "  " })?;
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::TempDir;
    use pam_totp::secret_file::SecretFile;
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    const FILE: &[u8] = b"JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP\n\" RATE_LIMIT 3 30 1700000000\n\" WINDOW_SIZE 17\n\" DISALLOW_REUSE 56666666\n\" TOTP_AUTH\n\" FUTURE_OPTION kept\n11111111\n22222222\n";

    fn write(path: &std::path::Path, bytes: &[u8], mode: u32) {
        fs::write(path, bytes).unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn replaces_only_the_scratch_codes() {
        let dir = TempDir::new("regen");
        let path = dir.path("ga");
        write(&path, FILE, 0o400);
        let mut out = Vec::new();
        let target = Target::current("me", path.clone());
        regenerate(&target, 3, false, &mut out, &mut StdRng::seed_from_u64(3)).unwrap();
        let text = String::from_utf8(out).unwrap();
        let bytes = fs::read(&path).unwrap();
        let file = SecretFile::parse(&bytes).unwrap();
        let codes: Vec<u32> = file.scratch_codes().collect();
        assert_eq!(codes.len(), 3);
        assert!(!codes.contains(&11111111) && !codes.contains(&22222222));
        for code in &codes {
            assert!(text.contains(&format!("  {code:08}\n")), "{text}");
        }
        // Everything else byte for byte.
        let before = String::from_utf8_lossy(FILE);
        let after = String::from_utf8_lossy(&bytes);
        let keep = |s: &str| {
            s.lines()
                .filter(|l| l.len() != 8)
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        assert_eq!(keep(&before), keep(&after));
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o7777,
            0o400
        );
    }

    #[test]
    fn quiet_prints_bare_codes_and_zero_removes_them() {
        let dir = TempDir::new("regen-quiet");
        let path = dir.path("ga");
        write(&path, FILE, 0o600);
        let target = Target::current("me", path.clone());
        let mut out = Vec::new();
        regenerate(&target, 2, true, &mut out, &mut StdRng::seed_from_u64(4)).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 2);
        assert!(text
            .lines()
            .all(|l| l.len() == 8 && l.bytes().all(|b| b.is_ascii_digit())));
        regenerate(
            &target,
            0,
            true,
            &mut Vec::new(),
            &mut StdRng::seed_from_u64(5),
        )
        .unwrap();
        let file = SecretFile::parse(&fs::read(&path).unwrap()).unwrap();
        assert_eq!(file.scratch_codes().count(), 0);
    }

    #[test]
    fn refuses_missing_loose_and_corrupt_files_untouched() {
        let dir = TempDir::new("regen-bad");
        let path = dir.path("ga");
        let target = Target::current("me", path.clone());
        let run = || {
            regenerate(
                &target,
                5,
                false,
                &mut Vec::new(),
                &mut StdRng::seed_from_u64(6),
            )
        };
        assert!(matches!(run(), Err(Error::NotEnrolled(_))));
        write(&path, FILE, 0o644);
        let err = run().unwrap_err();
        assert!(matches!(err, Error::Store { .. }), "{err}");
        assert_eq!(fs::read(&path).unwrap(), FILE);
        let corrupt = b"JBSWY3DPEHPK3PXP\n\" WINDOW_SIZE 0\n12345678\n";
        write(&path, corrupt, 0o600);
        let err = run().unwrap_err();
        assert!(matches!(err, Error::Parse { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            format!("{}: line 2: invalid value for WINDOW_SIZE", path.display())
        );
        assert_eq!(fs::read(&path).unwrap(), corrupt);
    }
}
