//! Fleet mode: one code, one use and one rate limit across many hosts,
//! through an optional shared store speaking the Redis protocol (Redis,
//! Valkey). Off unless a PAM line names a configuration file
//! (`shared_state=`); the per-user file stays the source of truth for
//! everything else.
//!
//! What goes to the store, under the per-user lock (see [`crate::module`]):
//! - one attempt in a fleet-wide sliding window ([`Link::count_attempt`],
//!   one server-side script on the server's clock);
//! - after the local file accepted a code, a marker for what it consumed
//!   ([`claims`]): the TOTP time step under DISALLOW_REUSE, the HOTP counter
//!   value, the scratch code. `SET NX`: a marker that already exists means
//!   another host accepted the same code first.
//!
//! Key names come from [`keys`]; the configuration from [`config`]; the
//! wire protocol and the deadline from [`resp`].

mod check;
pub mod config;
pub mod keys;
mod net;
pub mod resp;
mod tls;

use crate::policy::{Accepted, SKEW_SEARCH_STEPS};
use crate::secret_file::{Mode, SecretFile, MAX_WINDOW};
pub use check::FleetCheck;
pub use config::{Config, ConfigError, FailurePolicy, FleetLimit};
use keys::UserKeys;
use resp::{remaining, ClientError, Connection, Reply, Stream};
use std::fmt;
use std::time::Instant;

/// The sliding-window attempt counter, run by the server as one step so
/// that concurrent logins on different hosts cannot interleave inside it.
/// Times come from the server's clock, never from a host's.
///
/// `KEYS[1]`: the user's attempts (a sorted set scored by time in ms);
/// `ARGV[1]`: attempts allowed; `ARGV[2]`: window in ms; `ARGV[3]`: a unique
/// member for this attempt. Returns how many attempts were already in the
/// window. The boundary is inclusive, like the local limit: an attempt
/// exactly one window old still counts. Every attempt is added, refused or
/// not, and only the newest ATTEMPTS are kept.
pub const RATE_LIMIT_SCRIPT: &str = "\
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. (now - window))
local recent = redis.call('ZCARD', KEYS[1])
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(tonumber(ARGV[1]) + 1))
redis.call('PEXPIRE', KEYS[1], window + 1000)
return recent
";

/// How late the server may answer WAIT after its timeout (one tick of its
/// event loop at the default `hz 10`, and a little more).
const WAIT_TICK_MS: u64 = 110;

/// Why the store gave no usable answer.
#[derive(Debug)]
pub enum FleetError {
    Config(ConfigError),
    Client(ClientError),
    /// The server answered with an error (wrong password, an ACL refusal...).
    Refused(String),
    /// Fewer replicas acknowledged the marker than `min_replicas`.
    UnderReplicated {
        acked: i64,
        wanted: u32,
    },
    Tls(String),
    Unexpected(&'static str),
    /// The key names could not be derived from the secret.
    KeyDerivation,
}

impl fmt::Display for FleetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FleetError::Config(e) => write!(f, "configuration: {e}"),
            FleetError::Client(e) => write!(f, "{e}"),
            FleetError::Refused(e) => {
                // The server's text, minus anything that could forge a log line.
                let text: String = e.chars().filter(|c| !c.is_control()).take(200).collect();
                write!(f, "the server refused: {text}")
            }
            FleetError::UnderReplicated { acked, wanted } => write!(
                f,
                "marker acknowledged by {acked} replicas, min_replicas is {wanted}"
            ),
            FleetError::Tls(e) => write!(f, "TLS: {e}"),
            FleetError::Unexpected(what) => write!(f, "unexpected reply to {what}"),
            FleetError::KeyDerivation => f.write_str("cannot derive the key names"),
        }
    }
}

impl From<ClientError> for FleetError {
    fn from(e: ClientError) -> Self {
        FleetError::Client(e)
    }
}

/// One thing a login consumed, to be claimed fleet-wide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// A TOTP time step (DISALLOW_REUSE); the marker expires after `ttl_ms`.
    Step { counter: u64, ttl_ms: u64 },
    /// An HOTP counter value: never acceptable again, no expiry.
    Counter { counter: u64 },
    /// A scratch code: no expiry, or another host's copy would accept it.
    Scratch { code: u32 },
}

impl Claim {
    pub fn what(self) -> &'static str {
        match self {
            Claim::Step { .. } | Claim::Counter { .. } => "verification code",
            Claim::Scratch { .. } => "scratch code",
        }
    }
}

/// How long a TOTP step marker must live: longer than the code can be
/// accepted on any host holding the same secret. A host accepts counter c
/// while its clock is within WINDOW/2 steps of c minus its learned skew;
/// skews differ between hosts (each learns its own, up to
/// [`SKEW_SEARCH_STEPS`], or carries the one in its file), so the bound
/// takes the largest window and twice the largest skew, plus one step:
/// (100 + 2 × 1499 + 1) steps, about 26 hours at 30 s steps. Markers are a
/// few bytes; outliving is cheap, dying early is a replay.
pub fn step_marker_ttl_ms(step_seconds: u32, file_skew: i64) -> u64 {
    let skew = file_skew
        .unsigned_abs()
        .max(SKEW_SEARCH_STEPS.unsigned_abs());
    (u64::from(MAX_WINDOW)
        .saturating_add(skew.saturating_mul(2))
        .saturating_add(1))
    .saturating_mul(u64::from(step_seconds))
    .saturating_mul(1000)
}

/// What an accepted login consumed, read off the file before and after the
/// local decision: the markers mirror the file's protective changes.
pub fn claims(before: &SecretFile, after: &SecretFile, accepted: Accepted) -> Vec<Claim> {
    match accepted {
        Accepted::GracePeriod => Vec::new(),
        Accepted::ScratchCode => {
            let mut left: Vec<u32> = after.scratch_codes().collect();
            let mut used = Vec::new();
            for code in before.scratch_codes() {
                match left.iter().position(|&c| c == code) {
                    Some(i) => {
                        left.swap_remove(i);
                    }
                    None => used.push(Claim::Scratch { code }),
                }
            }
            used
        }
        Accepted::Code | Accepted::CodeAfterSkewCorrection { .. } => {
            match (before.settings().mode, after.settings().mode) {
                (Mode::Counter { next: old }, Mode::Counter { next: new }) if new > old => {
                    // new > old, so new is at least 1 and this always yields one claim.
                    new.checked_sub(1)
                        .map(|counter| Claim::Counter { counter })
                        .into_iter()
                        .collect()
                }
                (Mode::Time { step_seconds }, _) => after
                    .used_steps()
                    .iter()
                    .filter(|step| !before.used_steps().contains(step))
                    .map(|&counter| Claim::Step {
                        counter,
                        ttl_ms: step_marker_ttl_ms(step_seconds, after.settings().time_skew),
                    })
                    .collect(),
                _ => Vec::new(),
            }
        }
    }
}

/// The fleet limit for a file: the config's, or the file's RATE_LIMIT.
pub fn fleet_limit(config: &Config, file: &SecretFile) -> Option<(u32, u32)> {
    match config.rate_limit {
        FleetLimit::None => None,
        FleetLimit::Fixed { attempts, seconds } => Some((attempts, seconds)),
        FleetLimit::FromFile => file.settings().rate_limit,
    }
}

/// An open, authenticated connection and its deadline.
pub struct Link {
    connection: Connection<Box<dyn Stream>>,
    min_replicas: u32,
}

fn expect_ok(reply: Reply, what: &'static str) -> Result<(), FleetError> {
    match reply {
        Reply::Simple(s) if s == "OK" => Ok(()),
        Reply::Error(e) => Err(FleetError::Refused(e)),
        _ => Err(FleetError::Unexpected(what)),
    }
}

/// A member no other attempt shares; random, so it tells the store nothing.
/// From /dev/urandom (open/read/close are imported anyway; the getrandom
/// function would be one more symbol for every load of the module).
fn unique_member() -> Result<String, FleetError> {
    let mut random = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut random))
        .map_err(|e| FleetError::Client(ClientError::Io(e)))?;
    Ok(random.iter().map(|b| format!("{b:02x}")).collect())
}

impl Link {
    /// Connects, authenticates and selects the database, all before
    /// `config.timeout` from now; the same deadline bounds every later
    /// command on this link.
    pub fn open(config: &Config) -> Result<Link, FleetError> {
        // The timeout is at most MAX_TIMEOUT, so this cannot overflow.
        let deadline = Instant::now()
            .checked_add(config.timeout)
            .ok_or(FleetError::Client(ClientError::Timeout))?;
        remaining(deadline)?;
        let tcp = net::Socket::connect(&config.address, deadline).map_err(|e| match e.kind() {
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
                FleetError::Client(ClientError::Timeout)
            }
            _ => FleetError::Client(ClientError::Io(e)),
        })?;
        let stream: Box<dyn Stream> = match &config.tls {
            None => Box::new(tcp),
            Some(tls) => tls::connect(tcp, tls, deadline)?,
        };
        let mut connection = Connection::new(stream, deadline);
        let mut handshake: Vec<Vec<&[u8]>> = Vec::new();
        if let Some(password) = &config.password {
            let mut auth: Vec<&[u8]> = vec![b"AUTH"];
            if let Some(user) = &config.user {
                auth.push(user.as_bytes());
            }
            auth.push(password.as_bytes());
            handshake.push(auth);
        }
        let database = config.database.to_string();
        if config.database != 0 {
            handshake.push(vec![b"SELECT", database.as_bytes()]);
        }
        if !handshake.is_empty() {
            let commands: Vec<&[&[u8]]> = handshake.iter().map(Vec::as_slice).collect();
            for reply in connection.pipeline(&commands)? {
                expect_ok(reply, "AUTH/SELECT")?;
            }
        }
        Ok(Link {
            connection,
            min_replicas: config.min_replicas,
        })
    }

    /// Counts one attempt in the fleet-wide window; `Ok(false)` when the
    /// window already held `attempts` attempts.
    pub fn count_attempt(
        &mut self,
        keys: &UserKeys,
        attempts: u32,
        seconds: u32,
    ) -> Result<bool, FleetError> {
        let key = keys.attempts();
        let (allowed, window_ms, member) = (
            attempts.to_string(),
            (u64::from(seconds) * 1000).to_string(),
            unique_member()?,
        );
        let reply = self.connection.command(&[
            b"EVAL",
            RATE_LIMIT_SCRIPT.as_bytes(),
            b"1",
            key.as_bytes(),
            allowed.as_bytes(),
            window_ms.as_bytes(),
            member.as_bytes(),
        ])?;
        match reply {
            Reply::Integer(recent) => Ok(recent < i64::from(attempts)),
            Reply::Error(e) => Err(FleetError::Refused(e)),
            _ => Err(FleetError::Unexpected("the rate-limit script")),
        }
    }

    /// Sets the marker for `claim`; `Ok(false)` when it already existed
    /// (another host accepted the same code first). With `min_replicas`,
    /// waits (within the deadline) for that many replicas to have it.
    pub fn claim(&mut self, keys: &UserKeys, claim: Claim) -> Result<bool, FleetError> {
        let (key, ttl) = match claim {
            Claim::Step { counter, ttl_ms } => (keys.step(counter), Some(ttl_ms.to_string())),
            Claim::Counter { counter } => (keys.step(counter), None),
            Claim::Scratch { code } => (keys.scratch(code), None),
        };
        let mut set: Vec<&[u8]> = vec![b"SET", key.as_bytes(), b"1", b"NX"];
        if let Some(ttl) = &ttl {
            set.extend_from_slice(&[b"PX", ttl.as_bytes()]);
        }
        let fresh = match self.connection.command(&set)? {
            Reply::Simple(s) if s == "OK" => true,
            Reply::Nil => false,
            Reply::Error(e) => return Err(FleetError::Refused(e)),
            _ => return Err(FleetError::Unexpected("SET NX")),
        };
        if fresh && self.min_replicas > 0 {
            // The server checks WAIT's timeout on its own clock tick (every
            // 100 ms at the default hz 10): ask for the budget left minus a
            // tick, so that its answer still arrives within the budget.
            let left = remaining(self.connection.deadline())?;
            let wait_ms = (left.as_millis() as u64)
                .saturating_sub(WAIT_TICK_MS)
                .max(1)
                .to_string();
            let wanted = self.min_replicas.to_string();
            match self
                .connection
                .command(&[b"WAIT", wanted.as_bytes(), wait_ms.as_bytes()])?
            {
                Reply::Integer(acked) if acked >= i64::from(self.min_replicas) => {}
                Reply::Integer(acked) => {
                    return Err(FleetError::UnderReplicated {
                        acked,
                        wanted: self.min_replicas,
                    })
                }
                Reply::Error(e) => return Err(FleetError::Refused(e)),
                _ => return Err(FleetError::Unexpected("WAIT")),
            }
        }
        Ok(fresh)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> SecretFile {
        SecretFile::parse(text.as_bytes()).unwrap()
    }

    #[test]
    fn claims_mirror_what_the_file_consumed() {
        let before = file("JBSWY3DPEHPK3PXP\n\" TOTP_AUTH\n\" DISALLOW_REUSE 10 11\n11111111\n22222222\n22222222\n");
        let mut after = before.clone();
        after.set_used_steps(vec![11, 12]);
        assert_eq!(
            claims(&before, &after, Accepted::Code),
            vec![Claim::Step {
                counter: 12,
                ttl_ms: step_marker_ttl_ms(30, 0)
            }]
        );
        let mut after = before.clone();
        assert!(after.remove_scratch_code(22_222_222));
        assert_eq!(
            claims(&before, &after, Accepted::ScratchCode),
            vec![Claim::Scratch { code: 22_222_222 }]
        );
        let hotp = file("JBSWY3DPEHPK3PXP\n\" HOTP_COUNTER 5\n");
        let mut after = hotp.clone();
        after.set_hotp_counter(8);
        assert_eq!(
            claims(&hotp, &after, Accepted::Code),
            vec![Claim::Counter { counter: 7 }]
        );
        // Reuse allowed: nothing to claim.
        let reuse = file("JBSWY3DPEHPK3PXP\n\" TOTP_AUTH\n");
        assert!(claims(&reuse, &reuse.clone(), Accepted::Code).is_empty());
    }

    #[test]
    fn step_markers_outlive_the_widest_acceptance() {
        // WINDOW_SIZE 17 with a learned skew of the largest size, 30 s steps:
        // the code stays acceptable (17 + 2 * skew + 1) steps at most.
        let longest = (17 + 2 * SKEW_SEARCH_STEPS as u64 + 1) * 30 * 1000;
        assert!(step_marker_ttl_ms(30, 0) >= longest);
        assert!(step_marker_ttl_ms(60, 0) >= (u64::from(MAX_WINDOW) + 1) * 60 * 1000);
        // A skew in the file beyond what is learned (set by hand) widens it.
        assert!(step_marker_ttl_ms(30, -5000) >= (17 + 2 * 5000 + 1) * 30 * 1000);
        assert_eq!(step_marker_ttl_ms(60, i64::MIN), u64::MAX);
    }

    #[test]
    fn members_are_unique() {
        assert_ne!(unique_member().unwrap(), unique_member().unwrap());
    }
}
