//! The file parser on arbitrary bytes: never panics, and whatever it accepts
//! it writes back byte for byte.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pam_totp::secret_file::SecretFile;

fuzz_target!(|data: &[u8]| {
    if let Ok(file) = SecretFile::parse(data) {
        assert_eq!(&*file.to_bytes(), data, "round trip changed the file");
        let _ = file.settings();
        let _ = file.scratch_codes().count();
    }
});
