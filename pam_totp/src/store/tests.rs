use super::*;
use std::os::unix::fs::PermissionsExt;
use std::sync::{Arc, Barrier};

/// A fresh directory, removed with everything in it on drop.
struct TempDir(tempfile::TempDir);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = tempfile::Builder::new()
            .prefix(&format!("pam_totp-store-{name}-"))
            .tempdir()
            .unwrap();
        TempDir(dir)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }
    fn entries(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.0.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

fn me() -> Identity {
    Identity::current()
}

fn rules() -> AccessRules {
    AccessRules {
        owner: Some(Uid::effective()),
        allowed_mode: DEFAULT_ALLOWED_MODE,
    }
}

fn new_file() -> NewFile {
    NewFile {
        owner: me(),
        mode: 0o400,
    }
}

/// A new file of ours, mode 0600, that no earlier one may be in the way of.
fn create_mine(path: &Path, contents: &[u8]) {
    create(
        path,
        contents,
        me(),
        NewFile {
            owner: me(),
            mode: 0o600,
        },
        false,
    )
    .unwrap();
}

#[test]
fn create_writes_a_new_file_with_its_mode_and_leaves_nothing_else() {
    let dir = TempDir::new("create");
    let path = dir.path("secret");
    create(&path, b"one\n", me(), new_file(), false).unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"one\n");
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o7777,
        0o400
    );
    assert_eq!(dir.entries(), vec!["secret"]);
}

#[test]
fn create_never_clobbers_without_overwrite() {
    let dir = TempDir::new("noclobber");
    let path = dir.path("secret");
    create(&path, b"old\n", me(), new_file(), false).unwrap();
    let err = create(&path, b"new\n", me(), new_file(), false).unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists), "{err}");
    assert_eq!(fs::read(&path).unwrap(), b"old\n");
    assert_eq!(dir.entries(), vec!["secret"], "no temporary file left");
    create(&path, b"new\n", me(), new_file(), true).unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"new\n");
}

#[test]
fn failed_replacement_keeps_the_old_file() {
    let dir = TempDir::new("failwrite");
    let path = dir.path("secret");
    create(&path, b"old\n", me(), new_file(), false).unwrap();
    // A directory squatting on the temporary name makes the write fail, even
    // for root.
    fs::create_dir_all(dir.path("secret.pam_totp-tmp").join("x")).unwrap();
    let err = create(&path, b"new\n", me(), new_file(), true).unwrap_err();
    assert!(err.to_string().contains("temporary file"), "{err}");
    assert_eq!(fs::read(&path).unwrap(), b"old\n");
}

#[test]
fn update_keeps_mode_and_reports_save_errors_separately() {
    let dir = TempDir::new("update");
    let path = dir.path("secret");
    create_mine(&path, b"v1\n");
    let (seen, saved) = update(&path, me(), &rules(), |old| {
        (old.to_vec(), Some(Zeroizing::new(b"v2\n".to_vec())))
    })
    .unwrap();
    assert_eq!(seen, b"v1\n");
    saved.unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"v2\n");
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o7777,
        0o600
    );
    // No change requested: the file is not rewritten (same inode).
    let inode = fs::metadata(&path).unwrap().ino();
    update(&path, me(), &rules(), |_| ((), None))
        .unwrap()
        .1
        .unwrap();
    assert_eq!(fs::metadata(&path).unwrap().ino(), inode);
}

#[test]
fn checks_refuse_what_they_should() {
    let dir = TempDir::new("checks");
    let path = dir.path("secret");
    assert!(matches!(
        read(&path, me(), &rules()),
        Err(StoreError::NotFound)
    ));
    fs::write(&path, b"x").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
    assert!(matches!(
        read(&path, me(), &rules()),
        Err(StoreError::LoosePermissions {
            mode: 0o640,
            allowed: 0o600
        })
    ));
    let wider = AccessRules {
        allowed_mode: 0o640,
        ..rules()
    };
    assert_eq!(&*read(&path, me(), &wider).unwrap(), b"x");
    let someone_else = AccessRules {
        owner: Some(Uid::from_raw(Uid::effective().as_raw() + 12345)),
        ..wider
    };
    assert!(matches!(
        read(&path, me(), &someone_else),
        Err(StoreError::WrongOwner { .. })
    ));
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    let link = dir.path("link");
    std::os::unix::fs::symlink(&path, &link).unwrap();
    assert!(matches!(
        read(&link, me(), &rules()),
        Err(StoreError::Symlink)
    ));
    assert!(matches!(
        update(&link, me(), &rules(), |_| ((), None)),
        Err(StoreError::Symlink)
    ));
    fs::write(&path, vec![b'a'; MAX_FILE_SIZE + 1]).unwrap();
    assert!(matches!(
        read(&path, me(), &rules()),
        Err(StoreError::TooLarge)
    ));
    let sub = dir.path("dir");
    fs::create_dir(&sub).unwrap();
    assert!(matches!(
        read(&sub, me(), &rules()),
        Err(StoreError::NotRegularFile)
    ));
}

/// Threads stand in for concurrent logins: each opens the file itself, so
/// the locks conflict as they would between processes. No increment may be
/// lost, which also proves the re-check of the inode after each rename.
#[test]
fn concurrent_updates_lose_nothing() {
    let dir = TempDir::new("concurrent");
    let path = Arc::new(dir.path("counter"));
    create_mine(&path, b"0");
    let threads = 16;
    let per_thread = 10;
    let start = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (path, start) = (Arc::clone(&path), Arc::clone(&start));
            std::thread::spawn(move || {
                start.wait();
                for _ in 0..per_thread {
                    let ((), saved) = update(&path, me(), &rules(), |old| {
                        let n: u64 = std::str::from_utf8(old).unwrap().parse().unwrap();
                        ((), Some(Zeroizing::new((n + 1).to_string().into_bytes())))
                    })
                    .unwrap();
                    saved.unwrap();
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    assert_eq!(
        fs::read_to_string(&*path).unwrap(),
        (threads * per_thread).to_string()
    );
    // The lock file stays (its inode never changes); nothing else is left.
    assert_eq!(dir.entries(), vec!["counter", "counter.pam_totp-lock"]);
}

/// Root only: a file owned by someone else (no_strict_owner) keeps its owner,
/// group and mode when a login as another user rewrites it.
#[test]
#[ignore = "needs root: tests/run-all"]
fn rewrite_keeps_another_owner() {
    assert!(
        Uid::effective().is_root(),
        "this test needs root: tests/run-all runs it as root with --include-ignored"
    );
    let dir = TempDir::new("owner");
    let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
    let as_nobody = Identity {
        uid: nobody.uid,
        gid: nobody.gid,
    };
    // nobody must be able to create the temporary file in the directory.
    fs::set_permissions(dir.0.path(), fs::Permissions::from_mode(0o777)).unwrap();
    let path = dir.path("secret");
    fs::write(&path, b"root's\n").unwrap();
    fchown(
        File::open(&path).unwrap(),
        Some(0),
        Some(nobody.gid.as_raw()),
    )
    .unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o440)).unwrap();
    let loose = AccessRules {
        owner: None,
        allowed_mode: 0o440,
    };
    let ((), saved) = update(&path, as_nobody, &loose, |_| {
        ((), Some(Zeroizing::new(b"updated\n".to_vec())))
    })
    .unwrap();
    saved.unwrap();
    let meta = fs::metadata(&path).unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"updated\n");
    assert_eq!((meta.uid(), meta.gid()), (0, nobody.gid.as_raw()));
    assert_eq!(meta.mode() & 0o7777, 0o440);
}

fn am_root() -> bool {
    Uid::effective().is_root()
}

#[test]
fn the_directory_is_resolved_once_and_later_steps_stay_in_it() {
    let dir = TempDir::new("walk-once");
    let sub = dir.path("sub");
    fs::create_dir(&sub).unwrap();
    let path = sub.join("secret");
    create(&path, b"v1\n", me(), new_file(), false).unwrap();
    let opened = SecureDir::open(&sub, &DirRules::for_identity(Uid::effective())).unwrap();
    // The path now names another directory with a file of the same name.
    fs::rename(&sub, dir.path("moved")).unwrap();
    fs::create_dir(&sub).unwrap();
    fs::write(&path, b"decoy\n").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    let name = std::ffi::OsStr::new("secret");
    let (seen, saved) = update_in(&opened, name, me(), &rules(), |old| {
        (old.to_vec(), Some(Zeroizing::new(b"v2\n".to_vec())))
    })
    .unwrap();
    saved.unwrap();
    assert_eq!(seen, b"v1\n", "read from the directory that was opened");
    assert_eq!(fs::read(dir.path("moved").join("secret")).unwrap(), b"v2\n");
    assert_eq!(
        fs::read(&path).unwrap(),
        b"decoy\n",
        "the decoy is untouched"
    );
}

#[test]
fn a_symlink_on_the_way_is_followed_only_when_trusted() {
    let dir = TempDir::new("walk-links");
    let real = dir.path("real");
    fs::create_dir(&real).unwrap();
    fs::set_permissions(&dir.0, fs::Permissions::from_mode(0o755)).unwrap();
    let link = dir.path("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let lenient = DirRules::for_identity(Uid::effective());
    // Made by us, in a directory only we can change: followed.
    SecureDir::open(&link.join("."), &lenient).unwrap();
    // Strict rules follow no symlink at all.
    let err = SecureDir::open(&link, &DirRules::strict(&[Uid::effective()])).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::UnsafeDirectory {
                problem: DirProblem::Symlink,
                ..
            }
        ),
        "{err}"
    );
    // A directory others may write: its symlinks are not trusted.
    fs::set_permissions(&dir.0, fs::Permissions::from_mode(0o777)).unwrap();
    let err = SecureDir::open(&link, &lenient).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::UnsafeDirectory {
                problem: DirProblem::UntrustedSymlink,
                ..
            }
        ),
        "{err}"
    );
    fs::set_permissions(&dir.0, fs::Permissions::from_mode(0o755)).unwrap();
    if am_root() {
        // A symlink owned by another user is not trusted either.
        std::os::unix::fs::lchown(&link, Some(24_302), Some(24_302)).unwrap();
        let err = SecureDir::open(&link, &lenient).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        // ...unless that user is the one the file is accessed as.
        SecureDir::open(&link, &DirRules::for_identity(Uid::from_raw(24_302))).unwrap();
    }
}

#[test]
fn strict_rules_refuse_shared_or_foreign_directories() {
    let dir = TempDir::new("walk-strict");
    let shared = dir.path("shared");
    fs::create_dir(&shared).unwrap();
    fs::set_permissions(&dir.0, fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o775)).unwrap();
    // The temporary directory itself (/tmp, 1777) is shared: start below it.
    let strict = DirRules::strict(&[Uid::effective()]);
    let err = SecureDir::open(&shared, &strict).unwrap_err();
    assert!(matches!(err, StoreError::UnsafeDirectory { .. }), "{err}");
    assert!(
        err.to_string().contains("writable by group or others"),
        "{err}"
    );
    if am_root() {
        let foreign = dir.path("foreign");
        fs::create_dir(&foreign).unwrap();
        std::os::unix::fs::chown(&foreign, Some(24_303), None).unwrap();
        let err = SecureDir::open(&foreign, &DirRules::strict(&[])).unwrap_err();
        assert!(err.to_string().contains("owned by uid 24303"), "{err}");
    }
    // A missing directory is a missing file (nullok applies).
    let err = SecureDir::open(
        &dir.path("absent"),
        &DirRules::for_identity(Uid::effective()),
    )
    .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err}");
}

#[test]
fn the_secret_file_itself_is_never_locked_and_the_lock_file_stays() {
    let dir = TempDir::new("lockfile");
    let path = dir.path("secret");
    create(&path, b"v1\n", me(), new_file(), false).unwrap();
    let probe = File::open(&path).unwrap();
    update(
        &path,
        me(),
        &AccessRules {
            owner: Some(Uid::effective()),
            allowed_mode: 0o400,
        },
        |_| {
            // While the update holds its lock, the secret file is free (CIFS
            // makes a flock mandatory: a lock here would fail other readers).
            assert!(probe.try_lock().is_ok(), "the secret file is not locked");
            probe.unlock().unwrap();
            ((), Some(Zeroizing::new(b"v2\n".to_vec())))
        },
    )
    .unwrap()
    .1
    .unwrap();
    let lock = dir.path("secret.pam_totp-lock");
    let inode = fs::metadata(&lock).unwrap().ino();
    assert_eq!(
        fs::metadata(&lock).unwrap().permissions().mode() & 0o7777,
        0o600
    );
    update(
        &path,
        me(),
        &AccessRules {
            owner: Some(Uid::effective()),
            allowed_mode: 0o400,
        },
        |_| ((), Some(Zeroizing::new(b"v3\n".to_vec()))),
    )
    .unwrap()
    .1
    .unwrap();
    assert_eq!(
        fs::metadata(&lock).unwrap().ino(),
        inode,
        "the lock file is never replaced"
    );
    // A symlink at the lock file's name is not followed.
    fs::remove_file(&lock).unwrap();
    std::os::unix::fs::symlink(dir.path("elsewhere"), &lock).unwrap();
    let err = update(
        &path,
        me(),
        &AccessRules {
            owner: Some(Uid::effective()),
            allowed_mode: 0o400,
        },
        |_| ((), None),
    )
    .unwrap_err();
    assert!(err.to_string().contains("lock file"), "{err}");
    assert!(!dir.path("elsewhere").exists());
}

fn thread_groups(tid: i32) -> String {
    let status = fs::read_to_string(format!("/proc/self/task/{tid}/status")).unwrap();
    status
        .lines()
        .find(|l| l.starts_with("Groups:"))
        .unwrap()
        .to_owned()
}

fn gettid() -> i32 {
    // "/proc/thread-self" links to "<pid>/task/<tid>".
    let link = fs::read_link("/proc/thread-self").unwrap();
    link.file_name().unwrap().to_str().unwrap().parse().unwrap()
}

/// Root only: while the store acts as a user, this thread has exactly the
/// user's groups, no other thread of the process changes, and the groups
/// come back afterwards, on success and on failure.
#[test]
#[ignore = "needs root: tests/run-all"]
fn groups_are_switched_on_this_thread_only_and_restored() {
    if !am_root() {
        assert!(
            std::env::var_os("PAM_TOTP_REQUIRE_ALL").is_none_or(|v| v != "1"),
            "PAM_TOTP_REQUIRE_ALL=1 but this test needs root"
        );
        eprintln!("SKIPPED groups_are_switched_on_this_thread_only_and_restored: needs root");
        return;
    }
    std::thread::spawn(|| {
        // A thread of our own, with groups of its own (raw call: only it).
        crate::syscall::set_thread_groups(&[Gid::from_raw(0), Gid::from_raw(24_399)]).unwrap();
        let (other_tid, stop) = {
            let (tx, rx) = std::sync::mpsc::channel();
            let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
            std::thread::spawn(move || {
                tx.send(gettid()).unwrap();
                let _ = stop_rx.recv();
            });
            (rx.recv().unwrap(), stop_tx)
        };
        let other_before = thread_groups(other_tid);
        let mine_before = thread_groups(gettid());
        assert!(mine_before.contains("24399"), "{mine_before}");
        let dir = TempDir::new("groups");
        fs::set_permissions(&dir.0, fs::Permissions::from_mode(0o777)).unwrap();
        let path = dir.path("secret");
        let user = Identity {
            uid: Uid::from_raw(24_311),
            gid: Gid::from_raw(24_311),
        };
        let new = NewFile {
            owner: user,
            mode: 0o600,
        };
        create(&path, b"v1\n", user, new, false).unwrap();
        let rules = AccessRules {
            owner: Some(user.uid),
            allowed_mode: 0o600,
        };
        update(&path, user, &rules, |_| {
            let during = thread_groups(gettid());
            assert_eq!(
                during.split_whitespace().collect::<Vec<_>>(),
                ["Groups:", "24311"]
            );
            assert_eq!(
                thread_groups(other_tid),
                other_before,
                "other threads keep theirs"
            );
            ((), None)
        })
        .unwrap()
        .1
        .unwrap();
        assert_eq!(
            thread_groups(gettid()),
            mine_before,
            "restored after success"
        );
        let missing = dir.path("missing");
        assert!(read(&missing, user, &rules).is_err());
        assert_eq!(
            thread_groups(gettid()),
            mine_before,
            "restored after failure"
        );
        drop(stop);
    })
    .join()
    .unwrap();
}
