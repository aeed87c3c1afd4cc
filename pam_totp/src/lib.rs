//! pam_totp: time-based one-time passwords as a second factor for PAM.
//!
//! The crate is both the PAM module (`pam_totp.so`, see [`pam`]) and a library
//! that the enrollment tool and the tests use. Everything except [`ffi`] is
//! safe Rust; the pure logic ([`otp`], [`secret_file`], [`policy`]) takes time
//! as a parameter and does no I/O.
#![deny(unsafe_code)]

pub mod otp;
pub mod secret_file;
