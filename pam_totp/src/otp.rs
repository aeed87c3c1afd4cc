//! One-time passwords: HOTP (RFC 4226) and TOTP (RFC 6238) with HMAC-SHA1 and
//! six digits, and the base32 text form of the shared secret.
//!
//! Pure functions: no clock, no I/O. The caller passes time in.

use hmac::{Hmac, Mac};
use sha1::Sha1;
use std::fmt;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Digits in a verification code.
pub const CODE_DIGITS: usize = 6;
/// Digits in an emergency scratch code.
pub const SCRATCH_CODE_DIGITS: usize = 8;
/// RFC 4226 asks for at least 128 bits and recommends 160; 80-bit secrets are
/// still common in files written by older enrollment tools, so 80 is the floor.
pub const MIN_SECRET_BYTES: usize = 10;
/// A generous cap that keeps a hostile first line from costing anything.
pub const MAX_SECRET_BYTES: usize = 128;

/// A shared secret. Its bytes are wiped when it is dropped and never printed.
#[derive(Clone)]
pub struct Secret(Zeroizing<Vec<u8>>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretError {
    /// A character that is not base32, even after the usual look-alike fixes.
    InvalidCharacter,
    TooShort {
        bits: usize,
    },
    TooLong {
        bits: usize,
    },
}

impl fmt::Display for SecretError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretError::InvalidCharacter => f.write_str("secret is not valid base32"),
            SecretError::TooShort { bits } => write!(
                f,
                "secret has {bits} bits, fewer than the minimum of {}",
                MIN_SECRET_BYTES * 8
            ),
            SecretError::TooLong { bits } => write!(
                f,
                "secret has {bits} bits, more than the maximum of {}",
                MAX_SECRET_BYTES * 8
            ),
        }
    }
}

impl std::error::Error for SecretError {}

impl Secret {
    /// Wraps raw key bytes. Length limits are the caller's business here; they
    /// apply to secrets read from text.
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Secret(Zeroizing::new(bytes))
    }

    /// Decodes a secret as people and phone apps write it: case-insensitive,
    /// spaces, tabs, line breaks and dashes ignored, trailing `=` padding
    /// allowed, and the look-alikes `0`, `1`, `8` read as `O`, `L`, `B`.
    /// Leftover bits that do not fill a byte are dropped (an 80-bit secret is
    /// 16 characters, a 128-bit one 26).
    pub fn from_base32(text: &[u8]) -> Result<Self, SecretError> {
        let mut normalized = Zeroizing::new(Vec::with_capacity(text.len()));
        let mut padding_seen = false;
        for &byte in text {
            let ch = match byte.to_ascii_uppercase() {
                b' ' | b'\t' | b'\r' | b'\n' | b'-' => continue,
                b'=' => {
                    padding_seen = true;
                    continue;
                }
                b'0' => b'O',
                b'1' => b'L',
                b'8' => b'B',
                ch @ (b'A'..=b'Z' | b'2'..=b'7') => ch,
                _ => return Err(SecretError::InvalidCharacter),
            };
            if padding_seen {
                // Padding only at the end.
                return Err(SecretError::InvalidCharacter);
            }
            normalized.push(ch);
        }
        // Every byte is now in the RFC 4648 alphabet, which the decoder accepts.
        let ascii = std::str::from_utf8(&normalized).map_err(|_| SecretError::InvalidCharacter)?;
        let bytes = base32::decode(base32::Alphabet::Rfc4648 { padding: false }, ascii)
            .ok_or(SecretError::InvalidCharacter)?;
        let bytes = Zeroizing::new(bytes);
        let bits = bytes.len().saturating_mul(8);
        if bytes.len() < MIN_SECRET_BYTES {
            return Err(SecretError::TooShort { bits });
        }
        if bytes.len() > MAX_SECRET_BYTES {
            return Err(SecretError::TooLong { bits });
        }
        Ok(Secret(bytes))
    }

    /// The canonical text form: upper-case RFC 4648 base32 without padding.
    pub fn to_base32(&self) -> Zeroizing<String> {
        Zeroizing::new(base32::encode(
            base32::Alphabet::Rfc4648 { padding: false },
            &self.0,
        ))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({} bytes)", self.0.len())
    }
}

/// A secret made ready for HMAC-SHA1: the key's inner and outer blocks are
/// hashed once, here. Each [`HotpKey::code`] then clones that state and
/// hashes only the counter: two SHA-1 blocks a code instead of four, which
/// halves the cost of checking many counters (the window, the clock-skew
/// search) with one secret.
#[derive(Clone)]
pub struct HotpKey(Option<Hmac<Sha1>>);

impl HotpKey {
    pub fn new(secret: &Secret) -> Self {
        // HMAC accepts keys of any length, so this cannot fail; if it did,
        // every code is one no six-digit code equals (fail closed, no panic).
        HotpKey(<Hmac<Sha1> as Mac>::new_from_slice(secret.as_bytes()).ok())
    }

    /// RFC 4226 HOTP value for `counter`, reduced to six digits.
    pub fn code(&self, counter: u64) -> u32 {
        #[cfg(test)]
        HOTP_CALLS.with(|calls| calls.set(calls.get() + 1));
        let Some(keyed) = &self.0 else {
            return NO_CODE;
        };
        let mut mac = keyed.clone();
        mac.update(&counter.to_be_bytes());
        let digest: Zeroizing<[u8; 20]> = Zeroizing::new(mac.finalize().into_bytes().into());
        // Dynamic truncation (RFC 4226 section 5.3): an offset from the last
        // byte's low nibble (0..=15), so four bytes from it are always there.
        let offset = digest.last().map_or(0, |last| usize::from(last & 0x0f));
        let Some(&[b0, b1, b2, b3]) = digest
            .get(offset..offset.saturating_add(4))
            .and_then(|four| <&[u8; 4]>::try_from(four).ok())
        else {
            return NO_CODE;
        };
        u32::from_be_bytes([b0 & 0x7f, b1, b2, b3]) % 1_000_000
    }
}

impl fmt::Debug for HotpKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HotpKey(..)")
    }
}

/// RFC 4226 HOTP value for `counter`, reduced to six digits. For more than
/// one counter with the same secret, key once with [`HotpKey`].
pub fn hotp(secret: &Secret, counter: u64) -> u32 {
    HotpKey::new(secret).code(counter)
}

#[cfg(test)]
thread_local! {
    /// How many HOTP values this thread computed: the work a login does,
    /// counted, for tests that compare it without timing anything.
    pub static HOTP_CALLS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// What [`hotp`] returns if it cannot compute a value: no code equals it.
const NO_CODE: u32 = u32::MAX;

/// The RFC 6238 time step that contains `unix_time`.
pub fn time_step(unix_time: u64, step_seconds: u32) -> u64 {
    unix_time
        .checked_div(u64::from(step_seconds))
        .unwrap_or(unix_time)
}

/// A code as the user typed it, classified by length.
#[derive(Clone, PartialEq, Eq)]
pub enum Code {
    /// Six digits: a TOTP or HOTP verification code.
    Otp(u32),
    /// Eight digits: an emergency scratch code.
    Scratch(u32),
}

impl fmt::Debug for Code {
    // Codes never reach a log, not even through a stray `{:?}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Code::Otp(_) => f.write_str("Code::Otp(..)"),
            Code::Scratch(_) => f.write_str("Code::Scratch(..)"),
        }
    }
}

/// Why typed input is not a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MalformedCode {
    Empty,
    NotDigits,
    WrongLength,
}

impl fmt::Display for MalformedCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MalformedCode::Empty => "no code was entered",
            MalformedCode::NotDigits => "the code contains characters other than digits",
            MalformedCode::WrongLength => "the code is neither 6 nor 8 digits long",
        })
    }
}

impl Code {
    /// Parses what the user typed. Surrounding white space is forgiven; anything
    /// else that is not exactly 6 or 8 ASCII digits is rejected.
    pub fn parse(input: &[u8]) -> Result<Code, MalformedCode> {
        let trimmed = input.trim_ascii();
        if trimmed.is_empty() {
            return Err(MalformedCode::Empty);
        }
        if !trimmed.iter().all(u8::is_ascii_digit) {
            return Err(MalformedCode::NotDigits);
        }
        let value = || {
            trimmed
                .iter()
                .try_fold(0u32, |acc, d| {
                    acc.checked_mul(10)?
                        .checked_add(u32::from(d.checked_sub(b'0')?))
                })
                // At most 8 digits: always fits.
                .unwrap_or(u32::MAX)
        };
        match trimmed.len() {
            CODE_DIGITS => Ok(Code::Otp(value())),
            SCRATCH_CODE_DIGITS => Ok(Code::Scratch(value())),
            _ => Err(MalformedCode::WrongLength),
        }
    }
}

/// Compares two code values without a data-dependent branch.
pub fn codes_equal(expected: u32, presented: u32) -> bool {
    bool::from(expected.ct_eq(&presented))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rfc_secret() -> Secret {
        Secret::from_bytes(b"12345678901234567890".to_vec())
    }

    #[test]
    fn rfc4226_appendix_d_vectors() {
        let expected = [
            755224, 287082, 359152, 969429, 338314, 254676, 287922, 162583, 399871, 520489,
        ];
        for (counter, want) in expected.iter().enumerate() {
            assert_eq!(
                hotp(&rfc_secret(), counter as u64),
                *want,
                "counter {counter}"
            );
        }
    }

    #[test]
    fn rfc6238_appendix_b_sha1_vectors_last_six_digits() {
        // The RFC prints eight digits; the last six are the six-digit code.
        let vectors = [
            (59u64, 94287082u32),
            (1111111109, 7081804),
            (1111111111, 14050471),
            (1234567890, 89005924),
            (2000000000, 69279037),
            (20000000000, 65353130),
        ];
        for (time, eight_digits) in vectors {
            let step = time_step(time, 30);
            assert_eq!(
                hotp(&rfc_secret(), step),
                eight_digits % 1_000_000,
                "t={time}"
            );
        }
    }

    #[test]
    fn keyed_once_gives_the_same_codes() {
        let key = HotpKey::new(&rfc_secret());
        for counter in (0..50).chain([u64::MAX - 1, u64::MAX, 56_666_667]) {
            assert_eq!(
                key.code(counter),
                hotp(&rfc_secret(), counter),
                "counter {counter}"
            );
        }
        assert_eq!(key.code(0), 755224, "RFC 4226 appendix D, counter 0");
        assert_eq!(format!("{key:?}"), "HotpKey(..)");
    }

    #[test]
    fn base32_round_trip_and_leniency() {
        let secret = Secret::from_base32(b"JBSWY3DPEHPK3PXP").unwrap();
        assert_eq!(secret.as_bytes(), b"Hello!\xde\xad\xbe\xef");
        assert_eq!(&*secret.to_base32(), "JBSWY3DPEHPK3PXP");
        let messy = Secret::from_base32(b"jbsw y3dp-ehpk\t3pxp\r\n").unwrap();
        assert_eq!(messy.as_bytes(), secret.as_bytes());
        // Look-alikes: 0 -> O, 1 -> L, 8 -> B.
        let a = Secret::from_base32(b"0123456789ABCDEF").map(|s| s.as_bytes().to_vec());
        assert_eq!(a, Err(SecretError::InvalidCharacter), "9 is not base32");
        let b = Secret::from_base32(b"01234567ABCDEFGH").unwrap();
        let c = Secret::from_base32(b"OL234567ABCDEFGH").unwrap();
        assert_eq!(b.as_bytes(), c.as_bytes());
        let with_8 = Secret::from_base32(b"8BSWY3DPEHPK3PXP").unwrap();
        let with_b = Secret::from_base32(b"BBSWY3DPEHPK3PXP").unwrap();
        assert_eq!(with_8.as_bytes(), with_b.as_bytes());
        assert!(Secret::from_base32(b"JBSWY3DPEHPK3PXP====").is_ok());
        assert_eq!(
            Secret::from_base32(b"JBSWY3DP=EHPK3PXP").map(|_| ()),
            Err(SecretError::InvalidCharacter)
        );
    }

    #[test]
    fn secret_lengths() {
        // 26 characters carry 130 bits: 128 of them form the key.
        let s = Secret::from_base32(&[b'A'; 26]).unwrap();
        assert_eq!(s.as_bytes().len(), 16);
        assert_eq!(
            Secret::from_base32(&[b'A'; 32]).unwrap().as_bytes().len(),
            20
        );
        assert_eq!(
            Secret::from_base32(&[b'A'; 15]).map(|_| ()),
            Err(SecretError::TooShort { bits: 72 })
        );
        assert!(matches!(
            Secret::from_base32(&[b'A'; 300]),
            Err(SecretError::TooLong { .. })
        ));
        assert_eq!(
            Secret::from_base32(b"").map(|_| ()),
            Err(SecretError::TooShort { bits: 0 })
        );
    }

    #[test]
    fn secret_debug_hides_bytes() {
        let text = format!("{:?}", rfc_secret());
        assert_eq!(text, "Secret(20 bytes)");
    }

    #[test]
    fn code_parsing() {
        assert_eq!(Code::parse(b"012345"), Ok(Code::Otp(12345)));
        assert_eq!(Code::parse(b" 123456\n"), Ok(Code::Otp(123456)));
        assert_eq!(Code::parse(b"12345678"), Ok(Code::Scratch(12345678)));
        assert_eq!(Code::parse(b""), Err(MalformedCode::Empty));
        assert_eq!(Code::parse(b"   "), Err(MalformedCode::Empty));
        assert_eq!(Code::parse(b"12345"), Err(MalformedCode::WrongLength));
        assert_eq!(Code::parse(b"1234567"), Err(MalformedCode::WrongLength));
        assert_eq!(Code::parse(b"123456789"), Err(MalformedCode::WrongLength));
        assert_eq!(Code::parse(b"123 456"), Err(MalformedCode::NotDigits));
        assert_eq!(Code::parse(b"12345a"), Err(MalformedCode::NotDigits));
        assert_eq!(Code::parse(b"123\x0056"), Err(MalformedCode::NotDigits));
        assert_eq!(
            Code::parse("１２３４５６".as_bytes()),
            Err(MalformedCode::NotDigits)
        );
        assert_eq!(format!("{:?}", Code::Otp(123456)), "Code::Otp(..)");
    }

    #[test]
    fn constant_time_equality() {
        assert!(codes_equal(123456, 123456));
        assert!(!codes_equal(123456, 123457));
    }
}
