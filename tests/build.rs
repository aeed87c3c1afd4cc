//! Builds csrc/authtok_probe.c (a test-only PAM module) and
//! csrc/syslog_capture.c into a shared object for LD_PRELOAD (see the
//! file for why), and tells the harness where it is through the compile-time
//! variable PAM_TOTP_SYSLOG_SHIM. Needs a C compiler: `$CC`, else `cc`.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    build_probe();
    let source = "csrc/syslog_capture.c";
    println!("cargo:rerun-if-changed={source}");
    println!("cargo:rerun-if-env-changed=CC");

    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let shim = out_dir.join("libsyslog_capture.so");
    let compiler = env::var("CC").unwrap_or_else(|_| "cc".to_owned());
    let status = Command::new(&compiler)
        .args(["-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-o"])
        .arg(&shim)
        .arg(source)
        .arg("-ldl")
        .status()
        .unwrap_or_else(|e| {
            panic!("cannot run the C compiler {compiler:?} for {source}: {e} (install gcc)")
        });
    assert!(status.success(), "{compiler} failed to build {source}");
    println!(
        "cargo:rustc-env=PAM_TOTP_SYSLOG_SHIM={}",
        shim.to_str().expect("OUT_DIR is UTF-8")
    );

    static_unwinder_for_pam_bench(&out_dir);
}

/// pam-bench must load modules into a process like sshd's or su's, C
/// programs that do not have libgcc_s.so.1 mapped: a Rust program has it
/// (rustc passes -lgcc_s), and a module that needs it would then be measured
/// without the cost of loading it. Same one-line linker script as
/// pam_totp/build.rs: `-lgcc_s` finds the static unwinder instead.
fn static_unwinder_for_pam_bench(out_dir: &std::path::Path) {
    let dir = out_dir.join("static-unwinder");
    std::fs::create_dir_all(&dir).expect("cannot create OUT_DIR/static-unwinder");
    std::fs::write(dir.join("libgcc_s.so"), "INPUT(-lgcc_eh)\n")
        .expect("cannot write the libgcc_s.so linker script");
    println!("cargo:rustc-link-arg-bin=pam-bench=-L{}", dir.display());
    println!("cargo:rustc-link-arg-bin=pam-bench=-static-libgcc");
}

/// csrc/authtok_probe.c: the test-only PAM module that sets PAM_AUTHTOK
/// before the module under test and records it after (PAM_TOTP_AUTHTOK_PROBE).
fn build_probe() {
    let source = "csrc/authtok_probe.c";
    println!("cargo:rerun-if-changed={source}");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let module = out_dir.join("authtok_probe.so");
    let compiler = env::var("CC").unwrap_or_else(|_| "cc".to_owned());
    let status = Command::new(&compiler)
        .args(["-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-o"])
        .arg(&module)
        .arg(source)
        .arg("-lpam")
        .status()
        .unwrap_or_else(|e| {
            panic!("cannot run the C compiler {compiler:?} for {source}: {e} (install gcc)")
        });
    assert!(status.success(), "{compiler} failed to build {source}");
    println!(
        "cargo:rustc-env=PAM_TOTP_AUTHTOK_PROBE={}",
        module.to_str().expect("OUT_DIR is UTF-8")
    );
}
