//! New secrets and scratch codes from a cryptographic random number
//! generator, passed in so tests can use a seeded one.

use crate::error::Error;
use pam_totp::otp::Secret;
use rand::TryCryptoRng;
use zeroize::Zeroizing;

/// 160 bits: the HMAC-SHA1 output size, RFC 4226's recommendation.
pub const SECRET_BYTES: usize = 20;

const SCRATCH_LOW: u32 = 10_000_000;
const SCRATCH_SPAN: u32 = 90_000_000;
/// Draws at or above this are rejected so that every code in the span is
/// equally likely (2^32 is not a multiple of the span).
const SCRATCH_ACCEPT_BELOW: u32 = (u32::MAX / SCRATCH_SPAN) * SCRATCH_SPAN;

pub fn secret<R: TryCryptoRng + ?Sized>(rng: &mut R) -> Result<Secret, Error> {
    let mut bytes = Zeroizing::new(vec![0u8; SECRET_BYTES]);
    rng.try_fill_bytes(&mut bytes).map_err(|_| Error::Random)?;
    Ok(Secret::from_bytes(std::mem::take(&mut *bytes)))
}

/// One eight-digit code, uniform over 10000000..=99999999: never a leading
/// zero, which the module would not read back as eight digits.
fn scratch_code<R: TryCryptoRng + ?Sized>(rng: &mut R) -> Result<u32, Error> {
    loop {
        let draw = rng.try_next_u32().map_err(|_| Error::Random)?;
        if draw < SCRATCH_ACCEPT_BELOW {
            return Ok(SCRATCH_LOW + draw % SCRATCH_SPAN);
        }
    }
}

/// `count` distinct scratch codes (a repeat would just be one code less).
pub fn scratch_codes<R: TryCryptoRng + ?Sized>(
    rng: &mut R,
    count: u32,
) -> Result<Zeroizing<Vec<u32>>, Error> {
    let mut codes = Zeroizing::new(Vec::with_capacity(count as usize));
    while codes.len() < count as usize {
        let code = scratch_code(rng)?;
        if !codes.contains(&code) {
            codes.push(code);
        }
    }
    Ok(codes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{SeedableRng, TryRngCore};

    /// Returns the given words, then fails.
    struct Script(Vec<u32>);

    impl TryRngCore for Script {
        type Error = std::io::Error;
        fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
            if self.0.is_empty() {
                return Err(std::io::Error::other("exhausted"));
            }
            Ok(self.0.remove(0))
        }
        fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
            Ok(u64::from(self.try_next_u32()?))
        }
        fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
            for chunk in dst.chunks_mut(4) {
                let word = self.try_next_u32()?.to_le_bytes();
                chunk.copy_from_slice(&word[..chunk.len()]);
            }
            Ok(())
        }
    }
    impl rand::TryCryptoRng for Script {}

    #[test]
    fn secret_is_160_bits_from_the_generator() {
        let mut rng = StdRng::seed_from_u64(1);
        let a = secret(&mut rng).unwrap();
        let b = secret(&mut rng).unwrap();
        assert_eq!(a.as_bytes().len(), 20);
        assert_ne!(a.as_bytes(), b.as_bytes());
        assert_eq!(a.to_base32().len(), 32);
        let mut again = StdRng::seed_from_u64(1);
        assert_eq!(secret(&mut again).unwrap().as_bytes(), a.as_bytes());
    }

    #[test]
    fn scratch_codes_cover_the_range_ends_and_reject_the_biased_tail() {
        let mut rng = Script(vec![
            0,
            SCRATCH_SPAN - 1,
            SCRATCH_ACCEPT_BELOW,     // rejected: would favour low codes
            u32::MAX,                 // rejected
            SCRATCH_ACCEPT_BELOW - 1, // 99999999 again: a repeat, skipped
            SCRATCH_SPAN,             // 10000000 again: skipped
            12_345,
        ]);
        let codes = scratch_codes(&mut rng, 3).unwrap();
        assert_eq!(*codes, vec![10_000_000, 99_999_999, 10_012_345]);
        assert!(rng.0.is_empty(), "every draw was used");
    }

    #[test]
    fn generator_failure_is_reported() {
        assert!(matches!(
            scratch_codes(&mut Script(vec![]), 1),
            Err(Error::Random)
        ));
        assert!(matches!(
            secret(&mut Script(vec![1, 2])),
            Err(Error::Random)
        ));
        assert_eq!(scratch_codes(&mut Script(vec![]), 0).unwrap().len(), 0);
    }

    #[test]
    fn many_codes_stay_in_range() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut low = u32::MAX;
        let mut high = 0;
        for _ in 0..1000 {
            for code in scratch_codes(&mut rng, 10).unwrap().iter() {
                assert!((10_000_000..=99_999_999).contains(code), "{code}");
                low = low.min(*code);
                high = high.max(*code);
            }
        }
        // 10000 uniform draws spread over nearly the whole span.
        assert!(low < 10_100_000 && high > 99_900_000, "{low} {high}");
    }
}
