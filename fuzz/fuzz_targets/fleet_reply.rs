//! The shared state's reply parser and configuration parser on arbitrary
//! input: never panic; a parsed reply never claims more bytes than it was
//! given, and parsing a prefix of a complete reply asks for more rather
//! than returning something else.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pam_totp::fleet::resp::parse;
use pam_totp::fleet::Config;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some((reply, used))) = parse(data) {
        assert!(used > 0 && used <= data.len());
        for cut in 0..used {
            match parse(&data[..cut]) {
                Ok(None) | Err(_) => {}
                Ok(Some((other, _))) => panic!("prefix {cut} gave {other:?}, whole {reply:?}"),
            }
        }
    }
    let _ = Config::parse(data, &|_| Ok(zeroize::Zeroizing::new(String::new())));
});
