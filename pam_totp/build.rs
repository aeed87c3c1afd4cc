//! Link configuration of pam_totp.so: the unwinder (libgcc_eh) is linked
//! into the module instead of being loaded from libgcc_s.so.1.
//!
//! Why: libpam dlopens the module at every pam_start and dlcloses it at
//! pam_end (sshd does this in every connection's process). A NEEDED
//! libgcc_s.so.1 is one more library to map, relocate and initialise at each
//! load, and its constructor executes CPUID, which traps to the hypervisor
//! on a VM. BENCHMARKS.md gives what this costs.
//!
//! How: rustc passes `-lgcc_s` by name (the unwinder `std` needs for
//! `panic = "unwind"`), so `-static-libgcc` alone changes nothing. For the
//! cdylib only, a directory searched before the compiler's own holds a
//! `libgcc_s.so` that is a one-line linker script naming the static
//! unwinder, `libgcc_eh.a`, instead. The unwinder is then private to the
//! module (the version script exports only `pam_sm_*`); it finds the
//! module's unwind tables through `dl_iterate_phdr`, so a panic is still
//! caught at the FFI boundary (tests/tests/panic_barrier.rs proves it with
//! the `panic-probe` feature, and tests/tests/exports.rs checks the NEEDED
//! list).
//!
//! The rlib (totp-enroll, the tests) is not affected: the arguments below
//! apply to the cdylib's link only.
use std::env;
use std::fs;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let abi = env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os != "linux" || abi != "gnu" {
        return; // Other C libraries ship their unwinder differently.
    }
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let dir = out.join("static-unwinder");
    fs::create_dir_all(&dir).expect("cannot create OUT_DIR/static-unwinder");
    // GNU ld reads a linker script wherever it expects a library; `-l` in
    // INPUT searches the usual directories, where the compiler keeps
    // libgcc_eh.a (Debian: /usr/lib/gcc/x86_64-linux-gnu/12).
    fs::write(dir.join("libgcc_s.so"), "INPUT(-lgcc_eh)\n")
        .expect("cannot write the libgcc_s.so linker script");
    // -L applies to every -l on the command line, whatever the order, and
    // user directories are searched before the compiler's.
    println!("cargo:rustc-cdylib-link-arg=-L{}", dir.display());
    // The compiler driver's own -lgcc_s for -shared: ask for the static
    // libgcc as well.
    println!("cargo:rustc-cdylib-link-arg=-static-libgcc");
}
