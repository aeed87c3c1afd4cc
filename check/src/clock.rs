//! Whether the kernel thinks its clock is synchronised: adjtimex(2) reads
//! the NTP state without changing it (modes = 0), with or without systemd.
//! STA_UNSYNC is set until an NTP client (chrony, ntpd, systemd-timesyncd)
//! has disciplined the clock.
#![allow(unsafe_code)] // the one system call without a safe wrapper

pub enum ClockState {
    Synchronised,
    Unsynchronised,
    Unknown(String),
}

pub fn state() -> ClockState {
    // SAFETY: a zeroed `timex` is a valid value of this plain C struct.
    let mut tx: libc::timex = unsafe { std::mem::zeroed() };
    tx.modes = 0; // read only
                  // SAFETY: adjtimex writes into the struct we own; modes = 0 changes nothing.
    let state = unsafe { libc::adjtimex(&mut tx) };
    if state < 0 {
        return ClockState::Unknown(std::io::Error::last_os_error().to_string());
    }
    if tx.status & libc::STA_UNSYNC != 0 || state == libc::TIME_ERROR {
        ClockState::Unsynchronised
    } else {
        ClockState::Synchronised
    }
}
