//! The benchmark's directory: service files for pam_wrapper, secret-file
//! templates, one directory per secret file; and the codes to answer with.

use pam_totp::otp::{hotp, time_step, Secret};
use pam_totp::secret_file::{Mode, SecretFile};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// 128 bits, the length Google's `google-authenticator` generates.
pub const SECRET: &str = "VHXKEKQ4ZJ6G3NWBPRO5LBWH2U";

/// A time-based file with five scratch codes and nothing that a valid
/// code changes (no DISALLOW_REUSE, no RATE_LIMIT): a login with a valid
/// code writes nothing, one with a scratch code rewrites the file (the
/// code is consumed), a wrong code is searched for in the clock-skew range
/// (skew learning is on by default in both modules).
pub const TOTP_TEMPLATE: &str = "VHXKEKQ4ZJ6G3NWBPRO5LBWH2U\n\
\" TOTP_AUTH\n\
26447613\n\
79028419\n\
41538752\n\
90136641\n\
53917826\n";

/// Counter-based, for the throughput runs: every attempt, right or wrong,
/// moves the counter on and rewrites the file, with no rate limit to stop a
/// sustained run and no used-code list to reset. Each attempt costs what a
/// TOTP login costs: lock, read, a few HMACs, durable replace.
pub const HOTP_TEMPLATE: &str = "VHXKEKQ4ZJ6G3NWBPRO5LBWH2U\n\
\" HOTP_COUNTER 1\n\
26447613\n\
79028419\n\
41538752\n\
90136641\n\
53917826\n";

/// Secret files for the throughput runs, per module: one per process.
pub const MAX_PROCESSES: usize = 8;

/// Which PAM stack a transaction runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stack {
    Ours,
    Google,
    /// `pam_permit.so` alone: what libpam and the benchmark cost without a
    /// second-factor module, to subtract from the other two.
    Baseline,
}

impl Stack {
    pub fn parse(name: &str) -> Result<Stack, String> {
        match name {
            "ours" => Ok(Stack::Ours),
            "google" => Ok(Stack::Google),
            "baseline" => Ok(Stack::Baseline),
            other => Err(format!(
                "unknown module {other:?}: ours, google or baseline"
            )),
        }
    }

    /// Its name in service names, directories and output.
    pub fn name(self) -> &'static str {
        match self {
            Stack::Ours => "ours",
            Stack::Google => "google",
            Stack::Baseline => "baseline",
        }
    }

    /// How the output calls it.
    pub fn label(self) -> &'static str {
        match self {
            Stack::Ours => "pam_totp",
            Stack::Google => "google",
            Stack::Baseline => "baseline (pam_permit)",
        }
    }
}

/// Paths inside the benchmark directory.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    pub fn new(root: &Path) -> Layout {
        Layout {
            root: std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf()),
        }
    }

    pub fn services(&self) -> PathBuf {
        self.root.join("services")
    }

    /// The TOTP file of the latency runs. Each module has its own
    /// directory, as each user has a home: the directory sync after a
    /// rename then covers only that module's file.
    pub fn totp_secret(&self, stack: Stack) -> PathBuf {
        self.root.join(stack.name()).join("secret")
    }

    /// The module a stack's service loads, as its service file names it
    /// (the path libpam dlopens).
    pub fn module_path(&self, stack: Stack) -> Result<PathBuf, String> {
        let service = self.services().join(self.totp_service(stack));
        let text = fs::read_to_string(&service)
            .map_err(|e| format!("cannot read {}: {e}", service.display()))?;
        text.split_whitespace()
            .nth(2)
            .map(PathBuf::from)
            .ok_or_else(|| format!("{}: no module path", service.display()))
    }

    /// The service of the latency runs.
    pub fn totp_service(&self, stack: Stack) -> String {
        stack.name().to_owned()
    }

    /// HOTP file number `slot` of the throughput runs, in its own directory
    /// (distinct users have distinct homes).
    pub fn hotp_secret(&self, stack: Stack, slot: usize) -> PathBuf {
        self.root
            .join(format!("hotp-{}-{slot}", stack.name()))
            .join("secret")
    }

    pub fn hotp_service(&self, stack: Stack, slot: usize) -> String {
        format!("{}-hotp-{slot}", stack.name())
    }

    /// The enrolled user's file of the `refusals` runs (`${USER}` in the
    /// service's `secret=`).
    pub fn refusals_secret(&self, user: &str) -> PathBuf {
        self.root.join("refusals").join(user)
    }

    pub fn refusals_service(&self) -> String {
        "refusals".to_owned()
    }

    /// Where the I/O floor writes its file.
    pub fn floor_file(&self) -> PathBuf {
        self.root.join("floor").join("secret")
    }

    /// Writes the services and directories. `ours` and `google` are the
    /// modules' absolute paths; `permit` is pam_permit.so's.
    pub fn write(&self, ours: &Path, google: &Path, permit: &Path) -> io::Result<()> {
        let services = self.services();
        fs::create_dir_all(&services)?;
        // A service name typed wrong must not fall back to anything that
        // could succeed.
        fs::write(services.join("other"), "auth required pam_deny.so\n")?;
        fs::write(
            services.join("baseline"),
            format!("auth required {}\n", permit.display()),
        )?;
        for (stack, module) in [(Stack::Ours, ours), (Stack::Google, google)] {
            let secret = self.totp_secret(stack);
            fs::create_dir_all(secret.parent().expect("has a directory"))?;
            fs::write(
                services.join(self.totp_service(stack)),
                format!(
                    "auth required {} secret={}\n",
                    module.display(),
                    secret.display()
                ),
            )?;
            for slot in 0..MAX_PROCESSES {
                let secret = self.hotp_secret(stack, slot);
                fs::create_dir_all(secret.parent().expect("has a directory"))?;
                fs::write(
                    services.join(self.hotp_service(stack, slot)),
                    format!(
                        "auth required {} secret={}\n",
                        module.display(),
                        secret.display()
                    ),
                )?;
            }
        }
        let refusals = self.root.join("refusals");
        fs::create_dir_all(&refusals)?;
        fs::write(
            services.join(self.refusals_service()),
            format!(
                "auth required {} secret={}/${{USER}}\n",
                ours.display(),
                refusals.display()
            ),
        )?;
        fs::create_dir_all(self.floor_file().parent().expect("has a directory"))?;
        Ok(())
    }
}

/// Installs `contents` at `path` as a new file (mode 0400, owned by us) and
/// makes that durable before returning, so that the timed login that
/// follows starts from a clean, committed state and pays for no one else's
/// pending writes. Returns the new file's inode number: a login that
/// rewrote the file leaves another one.
pub fn install_fresh(path: &Path, contents: &[u8]) -> io::Result<u64> {
    let dir = path.parent().expect("secret files are in a directory");
    let temp = path.with_extension("fresh");
    match fs::remove_file(&temp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o400)
        .open(&temp)?;
    file.write_all(contents)?;
    file.sync_all()?;
    let inode = file.metadata()?.ino();
    drop(file);
    fs::rename(&temp, path)?;
    File::open(dir)?.sync_all()?;
    Ok(inode)
}

/// The inode now at `path`.
pub fn inode(path: &Path) -> io::Result<u64> {
    Ok(fs::symlink_metadata(path)?.ino())
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs()
}

pub fn secret() -> Secret {
    Secret::from_base32(SECRET.as_bytes()).expect("SECRET is valid base32")
}

/// The TOTP code for now (30-s steps). Both modules accept it for at least
/// 30 s (window 3), longer than any one login takes.
pub fn code_now(secret: &Secret) -> String {
    format!("{:06}", hotp(secret, time_step(now(), 30)))
}

/// A 6-digit code that is no TOTP code within ±3,200 steps (±26.7 h) of
/// `at`: wrong for the window and for both modules' clock-skew searches
/// (pam_totp ±25 h, Google ±12.5 h) for as long as a run lasts, so the
/// failure path is the plain one and never a skew observation.
pub fn wrong_code(secret: &Secret, at: u64) -> String {
    let step = time_step(at, 30);
    let nearby: std::collections::HashSet<u32> = (step.saturating_sub(3200)..=step + 3200)
        .map(|s| hotp(secret, s))
        .collect();
    (0..1_000_000u32)
        .step_by(111_111)
        .find(|c| !nearby.contains(c))
        .map(|c| format!("{c:06}"))
        .expect("6,401 codes cannot cover 10 candidates")
}

/// The code for an HOTP file's current counter, read from the file as it
/// is now, and that counter.
pub fn hotp_code_from(path: &Path) -> Result<(String, u64), String> {
    let bytes = fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let file =
        SecretFile::parse(&bytes).map_err(|e| format!("{} is corrupt: {e}", path.display()))?;
    match file.settings().mode {
        Mode::Counter { next } => Ok((format!("{:06}", hotp(file.secret(), next)), next)),
        Mode::Time { .. } | Mode::ScratchOnly => {
            Err(format!("{} is not counter-based", path.display()))
        }
    }
}
