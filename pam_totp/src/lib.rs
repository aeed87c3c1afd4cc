//! pam_totp: time-based one-time passwords as a second factor for PAM.
//!
//! The crate is both the PAM module (`pam_totp.so`) and a library that the
//! enrollment tool and the tests use:
//! - [`otp`]: HOTP/TOTP and base32 secrets;
//! - [`clock`]: the injected time;
//! - [`account`]: the account behind a user name, by its own name;
//! - [`secret_file`]: the `~/.google_authenticator` format;
//! - [`policy`]: judging one attempt (window, reuse, rate limit, scratch
//!   codes, clock skew, grace period), with time as a parameter;
//! - [`options`] and [`path`]: the module arguments and `secret=` expansion;
//! - [`store`]: every read and write of a secret file;
//! - [`root_store`]: store mode, root-only secret files (`store=`);
//! - [`location`]: a secret file by path or in the store, behind one type;
//! - [`locked_update`]: the one locked read-decide-write path;
//! - [`module`]: one authentication from start to end;
//! - [`fleet`]: the optional shared state of a fleet of hosts (Redis);
//! - [`sys`]: libpam's C declarations and numbers that pam-sys lacks or gets
//!   wrong, shared with the test driver and harness;
//! - `ffi`: the libpam entry points; `syscall`: a raw system call (the
//!   thread's own supplementary groups); fleet mode's two system boundaries
//!   (`fleet::net`, the socket; `fleet::tls`, libssl loaded on demand).
//!   These four hold all of the `unsafe` code.
//!
//! `unsafe` is denied for the crate (workspace lints) and forbidden, so no
//! inner `allow` can lift it, in every module but these. The entry points
//! stay in this crate because `pam_totp.so` must be built from it and must
//! export them; see `ffi` for why the FFI is not a crate of its own.

#![cfg_attr(
    not(test),
    deny(
        clippy::arithmetic_side_effects,
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used
    )
)]

#[forbid(unsafe_code)]
pub mod account;
#[forbid(unsafe_code)]
pub mod clock;
#[forbid(unsafe_code)]
mod equal_refusals;
mod ffi;
// Not forbidden: its `net` and `tls` hold unsafe code (see above).
pub mod fleet;
#[forbid(unsafe_code)]
pub mod location;
#[forbid(unsafe_code)]
pub mod locked_update;
#[forbid(unsafe_code)]
pub mod module;
#[forbid(unsafe_code)]
pub mod options;
#[forbid(unsafe_code)]
pub mod otp;
#[forbid(unsafe_code)]
pub mod path;
#[forbid(unsafe_code)]
pub mod policy;
#[forbid(unsafe_code)]
pub mod root_store;
#[forbid(unsafe_code)]
pub mod secret_file;
#[forbid(unsafe_code)]
pub mod store;
#[forbid(unsafe_code)]
pub mod sys;
mod syscall;
