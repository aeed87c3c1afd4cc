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
//! - `ffi`: the libpam entry points, and `sys`: raw system calls (the
//!   thread's own supplementary groups), the only `unsafe` code.
#![deny(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::arithmetic_side_effects,
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used
    )
)]

pub mod clock;
mod equal_refusals;
mod ffi;
pub mod locked_update;
pub mod module;
pub mod options;
pub mod otp;
pub mod path;
pub mod policy;
pub mod secret_file;
pub mod store;
mod sys;
