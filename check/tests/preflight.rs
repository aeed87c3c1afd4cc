//! pam_totp-check on configuration trees built here (`--root`), with the
//! real sshd reading each tree's sshd_config (`sshd -T -f`), and once on
//! this machine's own configuration.
//!
//! Each tree is a small Debian: passwd/shadow/group/shells, Debian's stock
//! common-auth, the project's example files for sshd, sudo and login, and
//! empty stand-ins for the PAM modules (the check only looks for the files).

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

const SECRET_FILE: &str = "JBSWY3DPEHPK3PXP\n\" TOTP_AUTH\n\" DISALLOW_REUSE\n12345678\n";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn example(name: &str) -> String {
    fs::read_to_string(repo().join("packaging/examples").join(name)).unwrap()
}

fn sshd_available() -> bool {
    let here = Path::new("/usr/sbin/sshd").is_file() && Path::new("/usr/bin/ssh-keygen").is_file();
    pam_totp_tests::prerequisite(
        here,
        "openssh-server is not installed (apt-get install openssh-server)",
    )
}

const DEBIAN_COMMON_AUTH: &str = "\
# here are the per-package modules (the \"Primary\" block)
auth	[success=1 default=ignore]	pam_unix.so nullok
# here's the fallback if no module succeeds
auth	requisite			pam_deny.so
auth	required			pam_permit.so
# and here are more per-package modules (the \"Additional\" block)
auth	optional			pam_cap.so
# end of pam-auth-update config
";

static TREES: AtomicUsize = AtomicUsize::new(0);

/// A configuration tree, removed on drop.
struct Tree {
    root: PathBuf,
    /// uid for each fixture user (root is 0).
    uids: Vec<(String, u32)>,
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}

impl Tree {
    /// alice (admin: in group sudo; key, password, enrolled), bob (key,
    /// enrolled), carol (no login shell), root (password, no key). sshd:
    /// the drop-in; /etc/pam.d/sshd, sudo and login: the examples.
    fn good() -> Tree {
        let root = std::env::temp_dir().join(format!(
            "to_preflight-{}-{}",
            std::process::id(),
            TREES.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(&root).unwrap();
        // As root, fixture users get uids of their own; otherwise every file
        // is the test runner's, so fixture users share that uid.
        let me = fs::metadata(&root).unwrap().uid();
        let uid = |n: u32| if me == 0 { 1000 + n } else { me };
        let tree = Tree {
            root,
            uids: vec![
                ("root".into(), 0),
                ("alice".into(), uid(0)),
                ("bob".into(), uid(1)),
                ("carol".into(), uid(2)),
            ],
        };
        let passwd: String = tree
            .uids
            .iter()
            .map(|(name, uid)| {
                let (home, shell) = match name.as_str() {
                    "root" => ("/root".to_owned(), "/bin/bash"),
                    "carol" => (format!("/home/{name}"), "/usr/sbin/nologin"),
                    _ => (format!("/home/{name}"), "/bin/bash"),
                };
                format!("{name}:x:{uid}:{uid}::{home}:{shell}\n")
            })
            .collect();
        tree.write("etc/passwd", &passwd);
        tree.write(
            "etc/shadow",
            "root:$y$j9T$fixture$hash:19000:0:99999:7:::\n\
             alice:$y$j9T$fixture$hash:19000:0:99999:7:::\n\
             bob:*:19000:0:99999:7:::\n\
             carol:*:19000:0:99999:7:::\n",
        );
        tree.write("etc/group", "root:x:0:\nsudo:x:27:alice\n");
        tree.write("etc/shells", "/bin/sh\n/bin/bash\n");
        tree.write("etc/pam.d/common-auth", DEBIAN_COMMON_AUTH);
        tree.write("etc/pam.d/sshd", &example("pam.d-sshd"));
        tree.write("etc/pam.d/sudo", &example("pam.d-sudo"));
        tree.write("etc/pam.d/login", &example("pam.d-login"));
        for module in [
            "pam_unix.so",
            "pam_deny.so",
            "pam_permit.so",
            "pam_cap.so",
            "pam_totp.so",
        ] {
            tree.write(&format!("usr/lib/{}/security/{module}", multiarch()), "");
        }
        for user in ["alice", "bob"] {
            tree.write_owned(
                &format!("home/{user}/.ssh/authorized_keys"),
                "ssh-ed25519 AAAA fixture\n",
                user,
                0o600,
            );
            tree.enroll(user);
        }
        let host_key = tree.root.join("etc/ssh/host_key");
        fs::create_dir_all(host_key.parent().unwrap()).unwrap();
        let keygen = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&host_key)
            .output();
        assert!(keygen.is_ok_and(|o| o.status.success()), "ssh-keygen");
        tree.sshd_config(&example("sshd_config.d-pam-totp.conf"));
        tree
    }

    /// Debian's defaults for what matters here, then `extra` first (as a
    /// drop-in read at the Include would be).
    fn sshd_config(&self, extra: &str) {
        self.write(
            "etc/ssh/sshd_config",
            &format!(
                "HostKey {}\n{extra}\nKbdInteractiveAuthentication no\nUsePAM yes\n",
                self.root.join("etc/ssh/host_key").display()
            ),
        );
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.root.join(relative)
    }

    fn write(&self, relative: &str, text: &str) {
        let path = self.path(relative);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, text).unwrap();
    }

    fn uid(&self, user: &str) -> u32 {
        self.uids.iter().find(|(n, _)| n == user).unwrap().1
    }

    fn write_owned(&self, relative: &str, text: &str, user: &str, mode: u32) {
        self.write(relative, text);
        let path = self.path(relative);
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        std::os::unix::fs::chown(&path, Some(self.uid(user)), Some(self.uid(user))).unwrap();
    }

    fn enroll(&self, user: &str) {
        let home = if user == "root" {
            "root".to_owned()
        } else {
            format!("home/{user}")
        };
        self.write_owned(
            &format!("{home}/.google_authenticator"),
            SECRET_FILE,
            user,
            0o400,
        );
    }

    fn unenroll(&self, user: &str) {
        fs::remove_file(self.path(&format!("home/{user}/.google_authenticator"))).unwrap();
    }

    fn check(&self, extra: &[&str]) -> (i32, String) {
        let out: Output = Command::new(env!("CARGO_BIN_EXE_pam_totp-check"))
            .arg("--root")
            .arg(&self.root)
            .args(["--admin", "alice"])
            .args(extra)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        eprintln!("{text}");
        (out.status.code().expect("an exit status"), text)
    }
}

/// The number of the first line of `text` that starts with `start`.
fn line_of(text: &str, start: &str) -> usize {
    text.lines()
        .position(|l| l.starts_with(start))
        .expect("the line")
        + 1
}

fn multiarch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "x86_64-linux-gnu",
        "aarch64" => "aarch64-linux-gnu",
        other => other,
    }
}

fn prepare() -> bool {
    let ok = sshd_available();
    // sshd -T wants its privilege separation directory.
    if ok && fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0) {
        let _ = fs::create_dir_all("/run/sshd");
    }
    ok
}

#[test]
fn a_good_configuration_passes() {
    if !prepare() {
        return;
    }
    let tree = Tree::good();
    let (status, out) = tree.check(&[]);
    assert_eq!(status, 0, "{out}");
    for (file, example_name) in [
        ("sshd", "pam.d-sshd"),
        ("sudo", "pam.d-sudo"),
        ("login", "pam.d-login"),
    ] {
        let line = line_of(&example(example_name), "auth required pam_totp.so");
        let path = tree.path(&format!("etc/pam.d/{file}"));
        assert!(
            out.contains(&format!("ok    {}:{line}: pam_totp.so", path.display())),
            "{file}:{line}: {out}"
        );
    }
    assert!(
        out.contains(
            "alice (admin running this check): gets in: sshd: key, then verification code"
        ),
        "{out}"
    );
    assert!(
        out.contains("alice (admin running this check): gets in: sudo: password, then"),
        "{out}"
    );
    assert!(
        out.contains("bob: gets in: sshd: key, then verification code"),
        "{out}"
    );
    assert!(
        out.contains("root (root): gets in: console login: password"),
        "{out}"
    );
    assert!(!out.contains("carol:"), "no login shell, not listed: {out}");
    assert!(
        out.contains("UsePAM yes, KbdInteractiveAuthentication yes"),
        "{out}"
    );
}

#[test]
fn an_option_typo_is_an_error_with_file_and_line() {
    if !prepare() {
        return;
    }
    let tree = Tree::good();
    tree.write(
        "etc/pam.d/sudo",
        "# sudo\n@include common-auth\nauth required pam_totp.so nulok\n",
    );
    let (status, out) = tree.check(&[]);
    assert_eq!(status, 2, "{out}");
    let file = tree.path("etc/pam.d/sudo");
    assert!(
        out.contains(&format!(
            "ERROR   {}:3: pam_totp.so nulok: unknown module option \"nulok\"",
            file.display()
        )),
        "{out}"
    );
}

#[test]
fn a_typo_in_pam_auth_updates_common_auth_is_found_through_include() {
    if !prepare() {
        return;
    }
    let tree = Tree::good();
    // As pam-auth-update writes the profile's line into the Additional block.
    let common = DEBIAN_COMMON_AUTH.replace(
        "auth\toptional\t\t\tpam_cap.so\n",
        "auth\toptional\t\t\tpam_cap.so\nauth\trequired\t\t\tpam_totp.so nullok secret=~/.totp allowed_perm=0666\n",
    );
    tree.write("etc/pam.d/common-auth", &common);
    let (status, out) = tree.check(&[]);
    assert_eq!(status, 2, "{out}");
    let line = line_of(&common, "auth\trequired\t\t\tpam_totp.so");
    assert!(
        out.contains(&format!(
            "{}:{line}: pam_totp.so",
            tree.path("etc/pam.d/common-auth").display()
        )) && out.contains("option allowed_perm: must not let others write the file"),
        "{out}"
    );
    // sudo includes common-auth: the bad line fails sudo for the admin.
    assert!(
        out.contains("REFUSED alice (admin running this check): sudo:"),
        "{out}"
    );
}

#[test]
fn users_who_have_not_enrolled_are_listed_with_status_1() {
    if !prepare() {
        return;
    }
    let tree = Tree::good();
    tree.unenroll("bob");
    let (status, out) = tree.check(&[]);
    assert_eq!(status, 1, "{out}");
    assert!(
        out.contains("REFUSED bob: sshd: publickey,keyboard-interactive: PAM (/etc/pam.d/sshd): "),
        "{out}"
    );
    assert!(out.contains("not enrolled: /home/bob/.google_authenticator does not exist and pam_totp has no nullok"), "{out}");
    assert!(out.contains("1 user(s) would be refused: bob"), "{out}");

    // The rollout example lets bob in with his key.
    tree.write("etc/pam.d/sshd", &example("pam.d-sshd-rollout"));
    let (status, out) = tree.check(&[]);
    assert_eq!(status, 0, "{out}");
    assert!(
        out.contains(
            "bob: gets in: sshd: key, then not enrolled \
             (/home/bob/.google_authenticator missing); nullok lets it pass"
        ),
        "{out}"
    );

    // nullok with nothing else in the stack: libpam refuses him.
    tree.write(
        "etc/pam.d/sshd",
        "#@include common-auth\nauth required pam_totp.so nullok\n",
    );
    let (status, out) = tree.check(&[]);
    assert_eq!(status, 1, "{out}");
    assert!(out.contains("no module gave a verdict"), "{out}");
}

#[test]
fn the_admin_locked_out_is_status_2() {
    if !prepare() {
        return;
    }
    let tree = Tree::good();
    tree.unenroll("alice");
    let (status, out) = tree.check(&[]);
    assert_eq!(status, 2, "{out}");
    assert!(
        out.contains("ERROR   alice (the admin running this check) would be refused"),
        "{out}"
    );
}

#[test]
fn a_bad_file_mode_and_a_missing_module_are_found() {
    if !prepare() {
        return;
    }
    let tree = Tree::good();
    fs::set_permissions(
        tree.path("home/bob/.google_authenticator"),
        fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let (status, out) = tree.check(&[]);
    assert_eq!(status, 1, "{out}");
    assert!(out.contains("mode 0644, allowed at most 0600"), "{out}");

    // The package removed while PAM files still name the module: the
    // console and sshd are closed to root and the admin alike.
    fs::remove_file(tree.path(&format!("usr/lib/{}/security/pam_totp.so", multiarch()))).unwrap();
    let (status, out) = tree.check(&[]);
    assert_eq!(status, 2, "{out}");
    assert!(out.contains("Module is unknown"), "{out}");
    assert!(out.contains("root would be locked out"), "{out}");
}

#[test]
fn substack_and_bracketed_controls_are_followed() {
    if !prepare() {
        return;
    }
    let tree = Tree::good();
    tree.write(
        "etc/pam.d/totp-step",
        "auth [success=done ignore=ignore default=die] pam_totp.so\n",
    );
    tree.write(
        "etc/pam.d/sshd",
        "auth substack totp-step\nauth required pam_permit.so\n",
    );
    let (status, out) = tree.check(&[]);
    assert_eq!(status, 0, "{out}");
    tree.write(
        "etc/pam.d/totp-step",
        "auth [success=done default=die] pam_totp.so nulok\n",
    );
    let (status, out) = tree.check(&[]);
    assert_eq!(status, 2, "{out}");
    assert!(out.contains("totp-step:1: pam_totp.so nulok"), "{out}");
}

#[test]
fn sshd_settings_that_skip_or_block_the_code() {
    if !prepare() {
        return;
    }
    let tree = Tree::good();
    // The README's lines appended after Debian's: the earlier "no" wins.
    tree.write(
        "etc/ssh/sshd_config",
        &format!(
            "HostKey {}\nKbdInteractiveAuthentication no\nUsePAM yes\nAllowUsers alice\n",
            tree.path("etc/ssh/host_key").display()
        ),
    );
    let (status, out) = tree.check(&[]);
    assert!(
        out.contains("KbdInteractiveAuthentication no: sshd cannot ask for the code"),
        "{out}"
    );
    assert!(out.contains("WARNING a key alone logs in"), "{out}");
    assert!(
        out.contains("alice (admin running this check): gets in: sshd: key\n"),
        "{out}"
    );
    // Not allowed by sshd: not a user pam_totp could refuse.
    assert!(
        out.contains("bob: no SSH access whatever PAM says: not in AllowUsers"),
        "{out}"
    );
    assert_eq!(status, 0, "{out}");

    // A Match block for one user, as sshd -T -C applies it.
    tree.write(
        "etc/ssh/sshd_config",
        &format!(
            "HostKey {}\n{}\nMatch User bob\n  AuthenticationMethods password\n",
            tree.path("etc/ssh/host_key").display(),
            example("sshd_config.d-pam-totp.conf")
        ),
    );
    let (status, out) = tree.check(&[]);
    assert!(out.contains("REFUSED bob: sshd: password: "), "{out}");
    assert_eq!(status, 1, "{out}");

    // A configuration sshd itself rejects: nobody can be judged.
    tree.write(
        "etc/ssh/sshd_config",
        "HostKey /nonexistent\nBogusOption yes\n",
    );
    let (status, out) = tree.check(&[]);
    assert_eq!(status, 2, "{out}");
    assert!(out.contains("-T failed"), "{out}");
}

#[test]
#[ignore = "needs root: tests/run-all"]
fn this_machines_own_configuration() {
    // Root: the machine's sshd -T (host keys) and /etc/shadow are root's.
    if !pam_totp_tests::require_root() || !prepare() {
        return;
    }
    let out = Command::new(env!("CARGO_BIN_EXE_pam_totp-check"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!("{text}");
    assert!(matches!(out.status.code(), Some(0..=2)), "{out:?}");
    assert!(text.contains("== pam_totp lines in /etc/pam.d"), "{text}");
    assert!(text.contains("== Clock"), "{text}");
    assert!(
        text.contains("root (root):"),
        "root is always judged: {text}"
    );
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("panicked"),
        "{out:?}"
    );
}
