//! pam_totp: time-based one-time passwords as a second factor for PAM.
//!
//! The crate is both the PAM module (`pam_totp.so`) and a library that the
//! enrollment tool and the tests use:
//! - [`otp`]: HOTP/TOTP and base32 secrets;
//! - [`clock`]: the injected time;
//! - [`secret_file`]: the `~/.google_authenticator` format;
//! - [`policy`]: judging one attempt (window, reuse, rate limit, scratch
//!   codes, clock skew, grace period), with time as a parameter;
//! - [`options`] and [`path`]: the module arguments and `secret=` expansion;
//! - [`store`]: every read and write of a secret file;
//! - [`locked_update`]: the one locked read-decide-write path;
//! - [`module`]: one authentication from start to end;
//! - [`sys`]: libpam's C declarations and numbers that pam-sys lacks or gets
//!   wrong, shared with the test driver and harness;
//! - `ffi`: the libpam entry points, the only `unsafe` code.
//!
//! `unsafe` is denied for the crate (workspace lints) and forbidden, so no
//! inner `allow` can lift it, in every module but `ffi`. The entry points
//! stay in this crate because `pam_totp.so` must be built from it and must
//! export them; see `ffi` for why the FFI is not a crate of its own.

#[forbid(unsafe_code)]
pub mod clock;
mod ffi;
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
pub mod secret_file;
#[forbid(unsafe_code)]
pub mod store;
#[forbid(unsafe_code)]
pub mod sys;
