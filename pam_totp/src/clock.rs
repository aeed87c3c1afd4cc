//! The time, injected so tests can set it: the module and the enrollment
//! tool take a `&dyn Clock` instead of reading the system clock.

pub trait Clock {
    /// Seconds since the Unix epoch.
    fn now(&self) -> u64;
}

/// The system's clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> u64 {
        // A clock before 1970 is broken beyond what codes can fix: 0 makes
        // every code fail rather than the program.
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }
}
