//! Module arguments and `secret=` expansion on arbitrary input: never panic;
//! an expanded path never holds a user name that could leave its directory.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pam_totp::options::ModuleOptions;
use pam_totp::path::{expand, is_safe_user_name};
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let args: Vec<&[u8]> = data.split(|&b| b == 0).collect();
    let _ = ModuleOptions::parse(&args);
    if let [template, user, ..] = args.as_slice() {
        let (Ok(template), Ok(user)) = (std::str::from_utf8(template), std::str::from_utf8(user))
        else {
            return;
        };
        if let Ok(path) = expand(template, user, Path::new("/home/someone")) {
            assert!(path.is_absolute());
            if template.contains("${USER}") {
                assert!(is_safe_user_name(user));
            }
        }
    }
});
