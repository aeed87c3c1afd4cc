//! Test harness: runs a PAM module through the real libpam, the way a login
//! service would, and reports what happened; the same scenario runs against
//! pam_totp and against Google's module ([`Module::BOTH`]).
//!
//! How a login runs: [`Scenario::login`] writes a service directory (the
//! module by absolute path with its options, and an `other` service that
//! denies), then starts `pam-driver` (src/bin/pam-driver.rs) with
//! `LD_PRELOAD` of
//! - `libpam_wrapper.so` (`PAM_WRAPPER=1`, `PAM_WRAPPER_SERVICE_DIR`): libpam
//!   reads that directory instead of /etc/pam.d, so no root and no system
//!   change is needed;
//! - `libfaketime.so.1`, only for a frozen clock ([`Scenario::at`]):
//!   `FAKETIME="YYYY-MM-DD hh:mm:ss"`, `TZ=UTC`, `FAKETIME_NO_CACHE=1`;
//! - the syslog capture shim (csrc/syslog_capture.c, built by build.rs),
//!   which writes every syslog call of the process to a file
//!   (`PAM_TOTP_TEST_SYSLOG`) that becomes [`Outcome::logs`].
//!
//! The driver answers prompts from a script and prints one record a line;
//! [`Outcome`] is that report parsed.
//!
//! Why a shim for logs: pam_wrapper does intercept `pam_syslog`, but only
//! prints it among its own debug lines on stderr (`PWRAP_DEBUG[...] -
//! SYSLOG(6): ...`, with `PAM_WRAPPER_DEBUGLEVEL=2`), and Google's module
//! does not use `pam_syslog` at all: it calls `openlog`/`vsyslog` itself. So
//! the harness sets `PAM_WRAPPER_USE_SYSLOG=1` (pam_wrapper passes
//! `pam_syslog` on to libpam, which calls `syslog`) and the shim catches
//! every `syslog` call, from either module, in one format.
//!
//! Knobs (environment of `cargo test`):
//! - `PAM_TOTP_MODULE=/abs/pam_totp.so`: test that build of our module (e.g.
//!   the installed one) instead of the workspace's.
//! - `PAM_TOTP_KEEP_SCENARIOS=1`: keep the scenario directories (secret
//!   file, service files and syslog capture of each run) for inspection.
//! - `PAM_WRAPPER_DEBUGLEVEL=0..3`: pam_wrapper's own trace, in
//!   [`Outcome::stderr`].
//!
//! Works as root (CI) and as a normal user: the PAM user is the current
//! user, who owns the files the test writes.
//!
//! ```no_run
//! use pam_totp_tests::{code, oath, Module, Scenario};
//!
//! let scenario = Scenario::new(Module::Google).at(1_767_225_600);
//! scenario.write_secret("JBSWY3DPEHPK3PXP\n\" TOTP_AUTH\n");
//! let outcome = scenario.authenticate(&oath::totp_at("JBSWY3DPEHPK3PXP", scenario.now()));
//! assert_eq!(outcome.code, code::PAM_SUCCESS, "{outcome}");
//! ```

pub mod compare;
pub mod oath;
pub mod outcome;
pub mod scenario;
pub mod system;

pub use outcome::{code, Answer, AuthtokSeen, LogLine, Outcome, Prompt, PromptStyle};
pub use scenario::{Clock, DriverFailure, Login, OutOfAnswers, Scenario, SERVICE};
pub use system::Module;
