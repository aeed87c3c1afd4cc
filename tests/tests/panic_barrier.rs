//! A panic inside pam_totp.so is caught at the FFI boundary and fails the
//! login, with the module linked as it ships: the unwinder (libgcc_eh)
//! linked in statically instead of libgcc_s.so.1 (pam_totp/build.rs).
//!
//! The shipped module has no way to panic on purpose, so this test builds
//! it once more with the test-only `panic-probe` feature (same sources, same
//! build.rs, release profile as packaged), in a target directory of its own,
//! and runs a login through real libpam with the module argument
//! `panic_probe`, which makes pam_sm_authenticate panic inside its barrier.
//! Were the panic not caught, it would unwind into libpam (undefined) or,
//! more likely, abort the whole login process: the driver would die of
//! SIGABRT instead of reporting PAM_SYSTEM_ERR.

use pam_totp_tests::system::profile_dir;
use pam_totp_tests::{code, Module, Scenario};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Builds the module with `panic-probe` and returns the .so.
fn probe_module() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace");
    let target = profile_dir()
        .parent()
        .expect("the profile directory is inside the target directory")
        .join("panic-probe");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(workspace)
        .args(["build", "--release", "-p", "pam_totp", "--features"])
        .args(["panic-probe", "--target-dir"])
        .arg(&target)
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "cargo build --features panic-probe failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let module = target.join("release").join("libpam_totp.so");
    assert!(module.is_file(), "{} not built", module.display());
    module
}

fn needed(module: &Path) -> Vec<String> {
    let out = Command::new("readelf")
        .args(["-d", "-W"])
        .arg(module)
        .output()
        .expect("readelf (binutils) is installed");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|line| line.contains("(NEEDED)"))
        .filter_map(|line| Some(line.split_once('[')?.1.trim_end_matches(']').to_owned()))
        .collect()
}

#[test]
fn a_panic_in_the_module_fails_the_login_and_does_not_kill_the_process() {
    let probe = probe_module();
    let libraries = needed(&probe);
    assert!(
        libraries.iter().any(|l| l == "libpam.so.0")
            && !libraries.iter().any(|l| l.starts_with("libgcc_s")),
        "the probe must be linked as the shipped module is: NEEDED {libraries:?}"
    );
    let scenario = Scenario::new(Module::Ours);
    scenario.write_secret("JBSWY3DPEHPK3PXP\n\" TOTP_AUTH\n");
    // `requisite`: the panicking module's verdict ends the stack; the
    // workspace's module after it never runs.
    let outcome = scenario
        .login()
        .stack_before(format!("auth requisite {} panic_probe", probe.display()))
        .answer("123456")
        .run();
    assert_eq!(
        outcome.code,
        code::PAM_SYSTEM_ERR,
        "the barrier turns a panic into PAM_SYSTEM_ERR: {outcome}"
    );
    assert!(
        outcome
            .logs
            .iter()
            .any(|l| l.message.contains("internal error (panic); login refused")),
        "the barrier logs the panic: {outcome}"
    );
    assert!(outcome.prompts.is_empty(), "nothing was asked: {outcome}");

    // The same probe without the argument works normally: the failure
    // above is the panic's, not a broken build.
    let control = scenario
        .login()
        .stack_before(format!(
            "auth requisite {} secret={}",
            probe.display(),
            scenario.secret_path().display()
        ))
        .answer("000000")
        .run();
    assert_eq!(control.code, code::PAM_AUTH_ERR, "{control}");
    assert_eq!(
        control.prompts.len(),
        1,
        "the probe asked for a code: {control}"
    );
}
