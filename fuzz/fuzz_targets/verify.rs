//! The code verifier: an arbitrary file, an arbitrary typed code and an
//! arbitrary time. Never panics; the updated file always parses again; a
//! scratch code is never added; at most one is removed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pam_totp::policy::{check_attempt, Options};
use pam_totp::secret_file::SecretFile;

fuzz_target!(|data: &[u8]| {
    // Layout: 8 bytes of time, 1 byte of option flags, then the code and the
    // file separated by the first 0xff byte.
    if data.len() < 9 {
        return;
    }
    let now = u64::from_le_bytes(data[..8].try_into().unwrap());
    let flags = data[8];
    let rest = &data[9..];
    let split = rest.iter().position(|&b| b == 0xff).unwrap_or(rest.len());
    let (code, file_bytes) = (&rest[..split], rest.get(split + 1..).unwrap_or_default());
    let Ok(mut file) = SecretFile::parse(file_bytes) else {
        return;
    };
    let options = Options {
        learn_skew: flags & 1 != 0,
        advance_hotp_on_failure: flags & 2 != 0,
    };
    let scratch_before = file.scratch_codes().count();
    let decision = check_attempt(&mut file, code, now, &options);
    let reparsed = SecretFile::parse(&file.to_bytes()).expect("updated file must parse");
    let scratch_after = reparsed.scratch_codes().count();
    assert!(scratch_after <= scratch_before);
    assert!(scratch_before - scratch_after <= 1);
    if !decision.changes.any() {
        assert_eq!(&*file.to_bytes(), file_bytes, "no change reported, but the file changed");
    }
});
