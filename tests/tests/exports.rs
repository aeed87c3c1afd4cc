//! The built module, as libpam will load it: it links libpam dynamically and
//! exports the PAM entry points and nothing else.

use std::path::PathBuf;
use std::process::Command;

/// target/<profile>/libpam_totp.so next to this test binary
/// (target/<profile>/deps/exports-*).
fn built_module() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let module = profile_dir.join("libpam_totp.so");
    assert!(
        module.exists(),
        "{} not found: run `cargo build --workspace` (tests/run-all does)",
        module.display()
    );
    module
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
