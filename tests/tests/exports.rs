//! The built module, as libpam will load it: it links libpam dynamically,
//! needs nothing but libpam, the C library and the dynamic loader, and
//! exports the PAM entry points and nothing else.

use std::path::PathBuf;
use std::process::Command;

/// The module under test.
fn built_module() -> PathBuf {
    // The same build the libpam tests load: the newest of `cargo build`'s
    // and `cargo test`'s copies (a stale one would prove nothing).
    pam_totp_tests::system::our_module()
}

fn readelf(args: &[&str]) -> String {
    let out = Command::new("readelf")
        .args(args)
        .arg(built_module())
        .output()
        .expect("readelf (binutils) is installed");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn links_libpam_dynamically() {
    let dynamic = readelf(&["-d"]);
    assert!(
        dynamic.contains("Shared library: [libpam.so.0]"),
        "a static copy of libpam would be a private, unpatched libpam:\n{dynamic}"
    );
}

/// libpam loads the module at every pam_start and unloads it at pam_end:
/// every library it needs is mapped, relocated and initialised again at each
/// login (sshd: in every connection's process). Nothing beyond libpam, libc
/// and the loader; in particular no libgcc_s.so.1 (the unwinder is linked
/// in statically, see pam_totp/build.rs, and tests/tests/panic_barrier.rs
/// shows panics are still caught).
#[test]
fn needs_only_libpam_libc_and_the_loader() {
    let dynamic = readelf(&["-d", "-W"]);
    let needed: Vec<&str> = dynamic
        .lines()
        .filter(|line| line.contains("(NEEDED)"))
        .filter_map(|line| line.split_once("Shared library: [")?.1.strip_suffix(']'))
        .collect();
    assert!(
        needed.contains(&"libpam.so.0") && needed.contains(&"libc.so.6"),
        "readelf -d lists no libpam.so.0 or libc.so.6: {needed:?}\n{dynamic}"
    );
    let unexpected: Vec<&&str> = needed
        .iter()
        .filter(|name| !is_allowed_dependency(name))
        .collect();
    assert!(
        unexpected.is_empty(),
        "pam_totp.so needs {unexpected:?} besides libpam, libc and the loader \
         (each is loaded again at every login)"
    );
}

/// libpam.so.0, libc.so.6 and the dynamic loader (ld-linux-x86-64.so.2,
/// ld-linux-aarch64.so.1, ld-linux.so.2, ...).
fn is_allowed_dependency(name: &str) -> bool {
    name == "libpam.so.0" || name == "libc.so.6" || name.starts_with("ld-linux")
}

#[test]
fn the_dependency_check_refuses_libgcc_s() {
    // The check above can fail: the names it must refuse.
    assert!(!is_allowed_dependency("libgcc_s.so.1"));
    assert!(!is_allowed_dependency("libm.so.6"));
    assert!(is_allowed_dependency("ld-linux-x86-64.so.2"));
}

#[test]
fn exports_only_the_pam_entry_points() {
    let symbols = readelf(&["--dyn-syms", "-W"]);
    let mut exported: Vec<&str> = symbols
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // Num: Value Size Type Bind Vis Ndx Name; defined (Ndx not UND) and global.
            match fields.as_slice() {
                [_, _, _, kind, "GLOBAL" | "WEAK", _, ndx, name, ..]
                    if *ndx != "UND" && (*kind == "FUNC" || *kind == "OBJECT") =>
                {
                    Some(*name)
                }
                _ => None,
            }
        })
        .collect();
    exported.sort_unstable();
    assert_eq!(exported, vec!["pam_sm_authenticate", "pam_sm_setcred"]);
}

/// libpam unloads the module at pam_end (dlclose), as in every sshd
/// connection's process; nothing in it may pin it in memory (`-z nodelete`,
/// or a thread-local value with a destructor, which makes the C library hold
/// the module until the thread exits). `pam-bench auth` runs whole
/// transactions through real libpam and fails if, after pam_end,
/// `dlopen(RTLD_NOLOAD)` still finds the module.
#[test]
fn the_module_is_unloaded_at_every_pam_end() {
    let dir = std::env::temp_dir().join(format!("tp_exports_unload.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let bench = env!("CARGO_BIN_EXE_pam-bench");
    let prepared = Command::new(bench)
        .args(["prepare", "--ours"])
        .arg(built_module())
        .arg("--dir")
        .arg(&dir)
        .output()
        .expect("pam-bench runs");
    assert!(
        prepared.status.success(),
        "pam-bench prepare: {}",
        String::from_utf8_lossy(&prepared.stderr)
    );
    let env: Vec<(String, String)> = String::from_utf8_lossy(&prepared.stdout)
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    for case in ["success", "rewrite", "wrong", "unknown-user", "load"] {
        let out = Command::new(bench)
            .args([
                "auth",
                "--module",
                "ours",
                "--case",
                case,
                "--iterations",
                "2",
            ])
            .arg("--dir")
            .arg(&dir)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .output()
            .expect("pam-bench runs");
        assert!(
            out.status.success(),
            "case {case}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
