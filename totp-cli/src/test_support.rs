//! Helpers for the unit tests.

use crate::Clock;
use std::path::PathBuf;

/// A fresh directory, removed with everything in it on drop.
pub struct TempDir(tempfile::TempDir);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        TempDir(
            tempfile::Builder::new()
                .prefix(&format!("totp-cli-{name}-"))
                .tempdir()
                .unwrap(),
        )
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }
}

pub struct FixedClock(pub u64);

impl Clock for FixedClock {
    fn now(&self) -> u64 {
        self.0
    }
}
