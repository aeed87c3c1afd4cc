//! Key names in the store. They must reveal neither codes nor user names,
//! and only a host holding the user's TOTP secret may address that user's
//! state: every name is an HMAC under a per-user key that is itself an HMAC
//! of the secret. A new secret (re-enrolment) gives new names, so it starts
//! clean.

use super::FleetError;
use crate::otp::Secret;
use hmac::digest::Key;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use std::fmt::Write;
use zeroize::{Zeroize, Zeroizing};

type HmacSha1 = Hmac<Sha1>;

/// Domain separation for the per-user key; changing it renames everything.
const USER_KEY_LABEL: &[u8] = b"pam_totp shared state v1: user key";

/// The names of one user's keys, under a namespace.
pub struct UserKeys {
    key: Zeroizing<[u8; 20]>,
    namespace: String,
}

fn finish(mut mac: HmacSha1, parts: &[&[u8]]) -> [u8; 20] {
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

impl UserKeys {
    /// The secret's length varies, so its HMAC key goes through
    /// `new_from_slice`. HMAC takes keys of any length, so it cannot fail
    /// today; if a future version of the crate ever refused one, the
    /// caller refuses the login rather than guess at the names.
    pub fn new(secret: &Secret, namespace: &str) -> Result<UserKeys, FleetError> {
        let mac =
            HmacSha1::new_from_slice(secret.as_bytes()).map_err(|_| FleetError::KeyDerivation)?;
        Ok(UserKeys {
            key: Zeroizing::new(finish(mac, &[USER_KEY_LABEL])),
            namespace: namespace.to_owned(),
        })
    }

    fn name(&self, tag: char, kind: &str, data: &[u8]) -> String {
        // The per-user key has a fixed 20 bytes: padded with zeros to the
        // block, it is exactly the key HMAC would build from the 20 bytes,
        // and `Mac::new` takes it with no error path.
        let mut block = Key::<HmacSha1>::default();
        for (to, from) in block.iter_mut().zip(self.key.iter()) {
            *to = *from;
        }
        let mac = <HmacSha1 as Mac>::new(&block);
        block.as_mut_slice().zeroize();
        let digest = finish(mac, &[kind.as_bytes(), b"\0", data]);
        let mut name = String::with_capacity(self.namespace.len().saturating_add(43));
        name.push_str(&self.namespace);
        name.push(':');
        name.push(tag);
        name.push(':');
        for byte in digest {
            let _ = write!(name, "{byte:02x}");
        }
        name
    }

    /// The marker of a used TOTP time step (or HOTP counter value).
    pub fn step(&self, counter: u64) -> String {
        self.name('u', "step", &counter.to_be_bytes())
    }

    /// The marker of a consumed scratch code.
    pub fn scratch(&self, code: u32) -> String {
        self.name('x', "scratch", &code.to_be_bytes())
    }

    /// The sorted set of recent attempts, for the fleet-wide rate limit.
    pub fn attempts(&self) -> String {
        self.name('r', "rate", &[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(secret: &[u8]) -> UserKeys {
        UserKeys::new(&Secret::from_bytes(secret.to_vec()), "ns").unwrap()
    }

    #[test]
    fn padded_block_key_gives_the_same_names_as_the_short_key() {
        let a = keys(b"12345678901234567890");
        let mut mac = HmacSha1::new_from_slice(&*a.key).unwrap();
        mac.update(b"step\0");
        mac.update(&7u64.to_be_bytes());
        let digest: [u8; 20] = mac.finalize().into_bytes().into();
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(a.step(7), format!("ns:u:{hex}"));
    }

    #[test]
    fn names_hide_codes_and_differ_per_secret_and_purpose() {
        let a = keys(b"12345678901234567890");
        let b = keys(b"12345678901234567891");
        let step = a.step(57_000_000);
        assert!(step.starts_with("ns:u:") && step.len() == 5 + 40, "{step}");
        assert!(!step.contains("57000000"));
        assert_ne!(step, b.step(57_000_000));
        assert_ne!(step, a.step(57_000_001));
        assert_eq!(step, keys(b"12345678901234567890").step(57_000_000));
        let scratch = a.scratch(12_345_678);
        assert!(scratch.starts_with("ns:x:") && !scratch.contains("12345678"));
        assert_ne!(scratch, a.step(12_345_678));
        assert!(a.attempts().starts_with("ns:r:"));
        assert_ne!(a.attempts(), b.attempts());
    }
}
