//! Hardening findings (issue 14), each through real libpam: parent
//! directories an attacker controls, locking on network file systems,
//! supplementary groups, canonical user names, timing and prompts that tell
//! who is enrolled, and file values out of range.
//!
//! Most need root (other owners, mounts, group changes). Without root they
//! are skipped with a message, unless `PAM_TOTP_REQUIRE_ALL=1` (set by CI)
//! makes a skip a failure.

use pam_totp_tests::{code, oath, Module, Scenario};
use std::fs;
use std::os::unix::fs::{lchown, symlink, PermissionsExt};
use std::path::Path;

const SECRET: &str = "JBSWY3DPEHPK3PXP";
/// 2001-09-09 01:47:00 UTC.
const T: u64 = 1_000_000_020;
/// A uid with no account: the owner of what "a user" controls. In this
/// test's range (tk_, 24300-24399).
const USER_UID: u32 = 24_301;

/// True when the test may run; false (after saying why) when it needs root
/// and does not have it. With `PAM_TOTP_REQUIRE_ALL=1` a skip is a failure.
fn have_root(test: &str) -> bool {
    if pam_totp_tests::system::current_user().0 == 0 {
        return true;
    }
    assert!(
        std::env::var_os("PAM_TOTP_REQUIRE_ALL").is_none_or(|v| v != "1"),
        "{test} needs root, and PAM_TOTP_REQUIRE_ALL=1 forbids skipping it"
    );
    eprintln!("SKIPPED {test}: needs root");
    false
}

fn secret_file_with_reuse() -> String {
    format!("{SECRET}\n\" TOTP_AUTH\n\" DISALLOW_REUSE\n")
}

fn write_mode(path: &Path, contents: &str, mode: u32) {
    fs::write(path, contents).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn mkdir_mode(path: &Path, mode: u32) {
    fs::create_dir_all(path).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// Finding 3. With `user=root` and a directory in `secret=` that a user
/// controls, the user swaps a directory on the way for a symlink to a
/// root-owned directory holding a file of the same name: the module must
/// not check, accept or rewrite that file. A symlink only root can change
/// is still followed.
#[test]
fn a_user_controlled_symlink_on_the_way_is_not_followed() {
    if !have_root("a_user_controlled_symlink_on_the_way_is_not_followed") {
        return;
    }
    let scenario = Scenario::new(Module::Ours)
        .options(Vec::<String>::new())
        .at(T);
    let dir = scenario.dir();
    // Root's own directory with a root-owned secret file.
    let root_dir = dir.join("root-owned");
    mkdir_mode(&root_dir, 0o755);
    let target = root_dir.join("secret");
    write_mode(&target, &secret_file_with_reuse(), 0o400);
    // The user's directory, in which the user made `sub` a symlink.
    let user_dir = dir.join("user-controlled");
    mkdir_mode(&user_dir, 0o755);
    lchown(&user_dir, Some(USER_UID), Some(USER_UID)).unwrap();
    symlink(&root_dir, user_dir.join("sub")).unwrap();
    lchown(user_dir.join("sub"), Some(USER_UID), Some(USER_UID)).unwrap();

    let attacked = format!("secret={}/sub/secret", user_dir.display());
    let outcome = scenario
        .login()
        .option(attacked.clone())
        .option("user=root")
        .answer(oath::totp_at(SECRET, T))
        .run();
    assert_eq!(outcome.code, code::PAM_AUTH_ERR, "{outcome}");
    assert!(
        outcome.log_text().contains("symbolic link"),
        "the log names the symlink: {outcome}"
    );
    assert_eq!(
        fs::read_to_string(&target).unwrap(),
        secret_file_with_reuse(),
        "the root-owned file was not rewritten"
    );

    // The same symlink made by root in a root-controlled directory is
    // trusted (e.g. /home -> /data/home).
    let root_link = dir.join("root-link");
    symlink(&root_dir, &root_link).unwrap();
    let outcome = scenario
        .login()
        .option(format!("secret={}/secret", root_link.display()))
        .option("user=root")
        .answer(oath::totp_at(SECRET, T))
        .run();
    assert_eq!(outcome.code, code::PAM_SUCCESS, "{outcome}");
}
