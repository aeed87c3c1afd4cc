use super::*;
use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::sync::atomic::{AtomicUsize, Ordering};

/// These tests need root (store mode is root's); elsewhere they are skipped
/// loudly, and under `PAM_TOTP_REQUIRE_ALL=1` (CI) the skip is a failure.
fn need_root() -> bool {
    if Uid::effective().is_root() {
        return true;
    }
    assert!(
        std::env::var_os("PAM_TOTP_REQUIRE_ALL").is_none_or(|v| v != "1"),
        "PAM_TOTP_REQUIRE_ALL=1 but this store-mode test needs root"
    );
    eprintln!("SKIPPED: store-mode tests need root");
    false
}

static DIRS: AtomicUsize = AtomicUsize::new(0);

/// A root-only directory under /run (root's, not writable by others), so
/// the whole chain passes the checks; removed on drop.
struct Base(PathBuf);

impl Base {
    fn new() -> Base {
        let path = PathBuf::from(format!(
            "/run/pam_totp-root-store-{}-{}",
            std::process::id(),
            DIRS.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        Base(path)
    }

    /// A store directory `name` with mode 0700 under the base.
    fn store(&self, name: &str) -> PathBuf {
        let path = self.0.join(name);
        fs::create_dir(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o700)).unwrap();
        path
    }
}

impl Drop for Base {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn root_account() -> Account {
    canonical_account("root").unwrap()
}

fn write(path: &Path, bytes: &[u8], mode: u32) {
    fs::write(path, bytes).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

const FILE: &[u8] = b"JBSWY3DPEHPK3PXP\n\" TOTP_AUTH\n12345678\n";

#[test]
fn account_names_in_store_mode() {
    for good in ["alice", "a", "_svc", "first.last", "x-y_z9", "HOST$", "Bob"] {
        assert!(is_store_account_name(good), "{good}");
    }
    let long = "a".repeat(MAX_ACCOUNT_NAME + 1);
    for bad in [
        "",
        ".",
        "..",
        ".hidden",
        "-opt",
        "a/b",
        "a b",
        "a\nb",
        "a\0b",
        "é",
        "a$b",
        "$",
        &long,
        "alice.pam_totp-lock",
    ] {
        assert!(!is_store_account_name(bad), "{bad:?}");
    }
    assert!(is_store_account_name(&"a".repeat(MAX_ACCOUNT_NAME)));
}

#[test]
fn canonical_names() {
    assert_eq!(root_account().uid, Uid::from_raw(0));
    assert_eq!(canonical_account("../etc"), Err(NameProblem::Unusual));
    assert_eq!(
        canonical_account("no-such-user-pam-totp"),
        Err(NameProblem::Unknown)
    );
}

#[test]
fn store_paths_must_be_absolute_and_plain() {
    for bad in [
        "relative/store",
        "/var/lib/../lib/x",
        "/var/./lib",
        "",
        "/a/.",
    ] {
        assert!(
            matches!(components(Path::new(bad)), Err(RootStoreError::BadPath)),
            "{bad:?}"
        );
    }
    let parts = components(Path::new("//var//lib/pam_totp/")).unwrap();
    assert_eq!(parts, ["var", "lib", "pam_totp"]);
}

#[test]
#[ignore = "needs root: tests/run-all"]
fn a_good_store_opens_and_reads() {
    if !need_root() {
        return;
    }
    let base = Base::new();
    let dir = base.store("store");
    write(&dir.join("root"), FILE, 0o400);
    let store = RootStore::open(&dir).unwrap();
    assert_eq!(&*store.read(&root_account()).unwrap(), FILE);
    assert_eq!(store.inspect(&root_account()).unwrap(), (0, 0, 0o400));
}

fn refusal(path: &Path) -> String {
    RootStore::open(path).unwrap_err().to_string()
}

#[test]
#[ignore = "needs root: tests/run-all"]
fn unsafe_store_directories_are_refused() {
    if !need_root() {
        return;
    }
    let base = Base::new();
    let dir = base.store("store");
    let shown = |path: &Path| path.display().to_string();
    let on_the_way = |path: &Path, what: &str| {
        format!(
            "directory {} on the way to the secret file {what}",
            path.display()
        )
    };

    // Readable by others: who is enrolled is root's business.
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(
        refusal(&dir),
        format!(
            "store directory {} has mode 0755: the store must be root's alone (chmod 700); \
             refusing it",
            shown(&dir)
        )
    );
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o770)).unwrap();
    assert_eq!(
        refusal(&dir),
        on_the_way(&dir, "has mode 0770: writable by group or others")
    );
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();

    std::os::unix::fs::chown(&dir, Some(1), Some(1)).unwrap();
    assert_eq!(
        refusal(&dir),
        on_the_way(&dir, "is owned by uid 1, which is not trusted")
    );
    std::os::unix::fs::chown(&dir, Some(0), Some(0)).unwrap();

    // A parent group-writable: someone else could swap the store.
    fs::set_permissions(&base.0, fs::Permissions::from_mode(0o775)).unwrap();
    assert_eq!(
        refusal(&dir),
        on_the_way(&base.0, "has mode 0775: writable by group or others")
    );
    fs::set_permissions(&base.0, fs::Permissions::from_mode(0o755)).unwrap();

    // The store reached through a symlink, at the end or on the way.
    let link = base.0.join("link");
    symlink(&dir, &link).unwrap();
    assert_eq!(
        refusal(&link),
        on_the_way(&link, "is a symbolic link; refusing to follow it")
    );
    let parent_link = base.0.join("parent-link");
    symlink(&base.0, &parent_link).unwrap();
    assert_eq!(
        refusal(&parent_link.join("store")),
        on_the_way(&parent_link, "is a symbolic link; refusing to follow it")
    );

    let missing = base.0.join("missing");
    assert_eq!(
        refusal(&missing),
        format!(
            "store directory {} does not exist; refusing it",
            shown(&missing)
        )
    );
    fs::write(base.0.join("file"), b"").unwrap();
    assert_eq!(
        refusal(&base.0.join("file")),
        on_the_way(&base.0.join("file"), "is not a directory")
    );

    // Still fine after all that.
    RootStore::open(&dir).unwrap();
}

#[test]
#[ignore = "needs root: tests/run-all"]
fn open_or_create_makes_a_root_only_store() {
    if !need_root() {
        return;
    }
    let base = Base::new();
    let dir = base.0.join("new-store");
    RootStore::open_or_create(&dir).unwrap();
    let meta = fs::metadata(&dir).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o7777), (0, 0o700));
    // Only the last component is made.
    assert!(RootStore::open_or_create(&base.0.join("a/b")).is_err());
}

#[test]
#[ignore = "needs root: tests/run-all"]
fn unsafe_files_are_refused() {
    if !need_root() {
        return;
    }
    let base = Base::new();
    let dir = base.store("store");
    let store = RootStore::open(&dir).unwrap();
    let root = root_account();
    let file = dir.join("root");
    let err = |store: &RootStore| store.read(&root).unwrap_err().to_string();

    assert_eq!(err(&store), "secret file does not exist");
    write(&file, FILE, 0o640);
    assert_eq!(
        err(&store),
        "secret file has mode 0640, allowed at most 0600"
    );
    fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::chown(&file, Some(1), None).unwrap();
    assert_eq!(err(&store), "secret file is owned by uid 1, expected uid 0");
    fs::remove_file(&file).unwrap();
    let elsewhere = base.0.join("elsewhere");
    write(&elsewhere, FILE, 0o600);
    symlink(&elsewhere, &file).unwrap();
    assert_eq!(
        err(&store),
        "secret file is a symbolic link; refusing to follow it"
    );
}

#[test]
#[ignore = "needs root: tests/run-all"]
fn updates_keep_root_ownership_and_mode() {
    if !need_root() {
        return;
    }
    let base = Base::new();
    let dir = base.store("store");
    let file = dir.join("root");
    write(&file, FILE, 0o400);
    let store = RootStore::open(&dir).unwrap();
    let (seen, saved) = store
        .update(&root_account(), |old| {
            (old.len(), Some(Zeroizing::new(b"NEW\n".to_vec())))
        })
        .unwrap();
    saved.unwrap();
    assert_eq!(seen, FILE.len());
    assert_eq!(fs::read(&file).unwrap(), b"NEW\n");
    let meta = fs::metadata(&file).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid(), meta.mode() & 0o7777),
        (0, 0, 0o400)
    );
    // Nothing left behind.
    let names: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    // Nothing left behind but the lock file beside the secret file.
    let mut names = names;
    names.sort();
    assert_eq!(names, ["root", "root.pam_totp-lock"]);
}

#[test]
#[ignore = "needs root: tests/run-all"]
fn create_does_not_replace_unless_told() {
    if !need_root() {
        return;
    }
    let base = Base::new();
    let dir = base.store("store");
    let store = RootStore::open(&dir).unwrap();
    let root = root_account();
    store.create(&root, FILE, 0o400, false).unwrap();
    let err = store.create(&root, b"OTHER\n", 0o400, false).unwrap_err();
    assert!(
        matches!(err, RootStoreError::File(StoreError::AlreadyExists)),
        "{err}"
    );
    assert_eq!(fs::read(dir.join("root")).unwrap(), FILE);
    store.create(&root, b"OTHER\n", 0o644, true).unwrap();
    let meta = fs::metadata(dir.join("root")).unwrap();
    // Replaced under the lock: owner and mode of the old file.
    assert_eq!((meta.uid(), meta.mode() & 0o7777), (0, 0o400));
    assert_eq!(fs::read(dir.join("root")).unwrap(), b"OTHER\n");
    // A file with a loose mode is repaired, and group and other bits never
    // make it into the store.
    fs::set_permissions(dir.join("root"), fs::Permissions::from_mode(0o644)).unwrap();
    store.create(&root, FILE, 0o644, true).unwrap();
    let meta = fs::metadata(dir.join("root")).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o7777), (0, 0o600));
}

#[test]
#[ignore = "needs root: tests/run-all"]
fn take_hands_over_then_removes() {
    if !need_root() {
        return;
    }
    let base = Base::new();
    let dir = base.store("store");
    write(&dir.join("root"), FILE, 0o400);
    let store = RootStore::open(&dir).unwrap();
    let failed: Result<(), RootStoreError> =
        store.take(&root_account(), |_| Err(RootStoreError::BadPath));
    assert!(failed.is_err());
    assert!(
        dir.join("root").exists(),
        "a failed hand-over keeps the file"
    );
    let got: Result<Vec<u8>, RootStoreError> = store.take(&root_account(), |b| Ok(b.to_vec()));
    assert_eq!(got.unwrap(), FILE);
    assert!(!dir.join("root").exists());
}

#[test]
#[ignore = "needs root: tests/run-all"]
fn a_store_swapped_before_the_write_is_refused() {
    if !need_root() {
        return;
    }
    let base = Base::new();
    let dir = base.store("store");
    write(&dir.join("root"), FILE, 0o400);
    let store = RootStore::open(&dir).unwrap();
    // The store is moved aside and another directory put in its place
    // after it was opened: the update must write to neither.
    fs::rename(&dir, base.0.join("moved")).unwrap();
    let swapped = base.store("store");
    write(&swapped.join("root"), b"DECOY\n", 0o400);
    let err = store
        .update(&root_account(), |_| {
            ((), Some(Zeroizing::new(b"NEW\n".to_vec())))
        })
        .unwrap_err();
    assert!(matches!(err, RootStoreError::Replaced), "{err}");
    assert_eq!(fs::read(base.0.join("moved/root")).unwrap(), FILE);
    assert_eq!(fs::read(swapped.join("root")).unwrap(), b"DECOY\n");
}
