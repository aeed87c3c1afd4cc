//! Where things are: the modules under test, the driver, and the system
//! libraries the harness preloads. A missing piece fails the test with a
//! message that says how to get it.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The module a scenario runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Module {
    /// pam_totp, as built from this workspace (or `$PAM_TOTP_MODULE`).
    Ours,
    /// Google's pam_google_authenticator.so from `libpam-google-authenticator`.
    Google,
}

impl Module {
    /// Both modules, for running one scenario against each.
    pub const BOTH: [Module; 2] = [Module::Ours, Module::Google];

    /// Absolute path of the module's `.so`. Panics with instructions when
    /// it is not there.
    pub fn path(self) -> PathBuf {
        match self {
            Module::Ours => our_module(),
            Module::Google => google_module(),
        }
    }

    /// A short name for messages.
    pub fn name(self) -> &'static str {
        match self {
            Module::Ours => "pam_totp",
            Module::Google => "pam_google_authenticator",
        }
    }
}

impl std::fmt::Display for Module {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// `target/<profile>`, the directory cargo builds into, found from the
/// running test executable (`target/<profile>/deps/<test>-<hash>`), so it
/// follows `CARGO_TARGET_DIR`, `--release` and `--target` without asking.
/// Falls back to `$CARGO_TARGET_DIR/debug` for executables run from
/// elsewhere.
pub fn profile_dir() -> PathBuf {
    let from_exe = std::env::current_exe().ok().and_then(|exe| {
        let deps = exe.parent()?;
        let profile = if deps.file_name()? == "deps" {
            deps.parent()?
        } else {
            deps
        };
        Some(profile.to_path_buf())
    });
    match from_exe {
        Some(dir) if dir.join("pam-driver").exists() => dir,
        other => std::env::var_os("CARGO_TARGET_DIR")
            .map(|target| PathBuf::from(target).join("debug"))
            .filter(|dir| dir.join("pam-driver").exists())
            .or(other)
            .unwrap_or_else(|| PathBuf::from("target/debug")),
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Our module. `$PAM_TOTP_MODULE` (an absolute path) selects another build,
/// e.g. the installed one. Otherwise the newest of
/// `target/<profile>/libpam_totp.so` (made by `cargo build`) and
/// `target/<profile>/deps/libpam_totp.so` (made by `cargo test`, which
/// builds pam_totp as a dev-dependency but does not copy it up): after an
/// edit, `cargo test` alone refreshes only the second, and testing the stale
/// first one would prove nothing.
pub fn our_module() -> PathBuf {
    if let Some(path) = std::env::var_os("PAM_TOTP_MODULE") {
        let path = PathBuf::from(path);
        assert!(
            path.is_absolute() && path.is_file(),
            "PAM_TOTP_MODULE={} is not an absolute path to a file",
            path.display()
        );
        return path;
    }
    let profile = profile_dir();
    let candidates = [
        profile.join("libpam_totp.so"),
        profile.join("deps").join("libpam_totp.so"),
    ];
    candidates
        .iter()
        .filter_map(|path| Some((modified(path)?, path)))
        .max_by_key(|(time, _)| *time)
        .map(|(_, path)| absolute(path))
        .unwrap_or_else(|| {
            panic!(
                "pam_totp's module is not built: {} not found. \
                 Run `cargo build --workspace` first (tests/run-all does).",
                candidates[0].display()
            )
        })
}

/// Google's module, from the Debian package `libpam-google-authenticator`.
pub fn google_module() -> PathBuf {
    find_in(&security_dirs(), "pam_google_authenticator.so").unwrap_or_else(|| {
        panic!(
            "pam_google_authenticator.so not found in {:?}: \
             apt-get install libpam-google-authenticator (see tests/DEPENDENCIES)",
            security_dirs()
        )
    })
}

/// A module shipped with Linux-PAM (`libpam-modules`), e.g. `pam_deny.so`.
pub fn system_module(name: &str) -> PathBuf {
    find_in(&security_dirs(), name)
        .unwrap_or_else(|| panic!("{name} not found in {:?}", security_dirs()))
}

/// One of pam_wrapper's test modules (`pam_set_items.so`,
/// `pam_get_items.so`, `pam_chatty.so`, `pam_matrix.so`).
pub fn pam_wrapper_module(name: &str) -> PathBuf {
    let dirs: Vec<PathBuf> = lib_dirs().iter().map(|d| d.join("pam_wrapper")).collect();
    find_in(&dirs, name).unwrap_or_else(|| {
        panic!(
            "{name} not found in {dirs:?}: apt-get install libpam-wrapper (see tests/DEPENDENCIES)"
        )
    })
}

/// pam_wrapper's preload library.
pub fn pam_wrapper_lib() -> PathBuf {
    find_in(&lib_dirs(), "libpam_wrapper.so").unwrap_or_else(|| {
        panic!(
            "libpam_wrapper.so not found in {:?}: apt-get install libpam-wrapper \
             (see tests/DEPENDENCIES)",
            lib_dirs()
        )
    })
}

/// libfaketime's preload library (Debian package `libfaketime`, pulled in by
/// `faketime`). The single-threaded variant: the driver calls PAM from one
/// thread.
pub fn faketime_lib() -> PathBuf {
    let dirs: Vec<PathBuf> = lib_dirs().iter().map(|d| d.join("faketime")).collect();
    find_in(&dirs, "libfaketime.so.1").unwrap_or_else(|| {
        panic!("libfaketime.so.1 not found in {dirs:?}: apt-get install faketime (see tests/DEPENDENCIES)")
    })
}

/// The syslog capture shim that build.rs compiled from
/// csrc/syslog_capture.c.
/// The test-only PAM module that sets PAM_AUTHTOK before the module under
/// test and records it after (csrc/authtok_probe.c).
pub fn authtok_probe() -> PathBuf {
    PathBuf::from(env!("PAM_TOTP_AUTHTOK_PROBE"))
}

pub fn syslog_shim() -> PathBuf {
    let path = PathBuf::from(env!("PAM_TOTP_SYSLOG_SHIM"));
    assert!(
        path.is_file(),
        "{} is missing: rebuild the tests (cargo test -p pam_totp_tests)",
        path.display()
    );
    path
}

/// The pam-driver binary of this package. `cargo test` builds it next to
/// the test executables' directory.
pub fn driver() -> PathBuf {
    let path = profile_dir().join("pam-driver");
    assert!(
        path.is_file(),
        "{} not found: run the tests with `cargo test -p pam_totp_tests` \
         (which builds the driver), or `cargo build --workspace --all-targets`",
        path.display()
    );
    path
}

/// The effective user the tests run as: the owner of the files they write,
/// and the default PAM user.
pub fn current_user() -> (u32, String) {
    let uid = nix::unistd::geteuid();
    let name = nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map(|user| user.name)
        .unwrap_or_else(|| panic!("uid {uid} has no passwd entry: the modules need one"));
    (uid.as_raw(), name)
}

fn multiarch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "x86_64-linux-gnu",
        "aarch64" => "aarch64-linux-gnu",
        "x86" => "i386-linux-gnu",
        "arm" => "arm-linux-gnueabihf",
        "riscv64" => "riscv64-linux-gnu",
        other => other,
    }
}

fn lib_dirs() -> Vec<PathBuf> {
    let triple = multiarch();
    vec![
        PathBuf::from(format!("/usr/lib/{triple}")),
        PathBuf::from(format!("/lib/{triple}")),
        PathBuf::from("/usr/lib64"),
        PathBuf::from("/usr/lib"),
    ]
}

fn security_dirs() -> Vec<PathBuf> {
    lib_dirs().iter().map(|d| d.join("security")).collect()
}

fn find_in(dirs: &[PathBuf], name: &str) -> Option<PathBuf> {
    dirs.iter().map(|d| d.join(name)).find(|p| p.is_file())
}

fn absolute(path: &Path) -> PathBuf {
    fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Removes pam_wrapper's per-process directories (`/tmp/pam.X`, 62 slots
/// machine-wide) left by processes that died without cleaning up, e.g. the
/// fault tests' SIGKILL. pam_wrapper refuses a slot that still exists, so a
/// leftover would fail a later, unrelated login at random. A directory is
/// removed only if its `pid` file names a process that no longer exists.
pub fn remove_stale_pam_wrapper_dirs() {
    let Ok(entries) = fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(slot) = name.to_str().and_then(|n| n.strip_prefix("pam.")) else {
            continue;
        };
        if slot.len() != 1 {
            continue;
        }
        let dir = entry.path();
        let Ok(pid) = fs::read_to_string(dir.join("pid")) else {
            continue;
        };
        let pid = pid.trim();
        if !pid.is_empty()
            && pid.bytes().all(|b| b.is_ascii_digit())
            && !Path::new("/proc").join(pid).exists()
            && fs::remove_dir_all(&dir).is_err()
            && dir.exists()
        {
            // Typically left by a root run (tests/run-all) and now in the
            // way of a normal user: pam_wrapper cannot reuse the slot and
            // may end a process that lands on it.
            eprintln!(
                "WARNING: stale pam_wrapper directory {} cannot be removed by this user; \
                 logins that land on it fail to start. Remove it as root.",
                dir.display()
            );
        }
    }
}

/// How many times a PAM application is started again when pam_wrapper could
/// not give it a slot.
pub const PAM_WRAPPER_START_ATTEMPTS: usize = 5;

/// What pam-driver writes on stderr when it finds, after pam_start, that
/// pam_wrapper's `/tmp/pam.X` copy was shared with another process whose
/// service files libpam may have read; it then stops before
/// pam_authenticate.
pub const PAM_WRAPPER_SLOT_SHARED: &str =
    "pam-driver: pam_wrapper slot shared with another process";

/// Whether a process's stderr says pam_wrapper failed to start it. Two live
/// processes racing for the same `/tmp/pam.X` slot end with one of them
/// failing to create it ("File exists") and going on in the other's copy:
/// then one may read the other's service files (pam-driver checks for that
/// after pam_start and stops, [`PAM_WRAPPER_SLOT_SHARED`]), fail with
/// "Failed to copy config files" (PAM then falls back to the system's
/// configuration), or find a copy libpam cannot read ("pam_start: failed to
/// initialize handlers"). Nothing of the module ran, so starting the
/// process again is safe and hides nothing.
///
/// `stdout` is the driver's report: when it is empty and pam_wrapper could
/// not create its directory, the process was ended before pam_start (a slot
/// that exists but cannot be reused, e.g. one a root run left behind and a
/// normal user cannot remove).
pub fn pam_wrapper_could_not_start(stderr: &str, stdout: &str) -> bool {
    let no_dir = stderr.contains("pwrap_init: Failed to create pam_wrapper config dir");
    stderr.contains(PAM_WRAPPER_SLOT_SHARED)
        || stderr.contains("pwrap_init: Failed to copy config files")
        || (no_dir && stderr.contains("pam_start: failed to initialize handlers"))
        || (no_dir && stdout.is_empty())
}
