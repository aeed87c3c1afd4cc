//! The shared state's step inside the one locked read-decide-write path
//! ([`crate::module::CommitCheck`]). Order, all under the user's lock:
//! local rate limit → fleet rate limit ([`CommitCheck::before_judging`]) →
//! the local verification → the local reuse check → the shared marker
//! ([`CommitCheck::before_commit`]) → the file is saved.
//!
//! Only a code the local file accepted ever creates a marker. A crash
//! between marker and save errs on the safe side: the code is marked used
//! fleet-wide, and the user waits for the next one.

use super::{claims, fleet_limit, Claim, Config, FailurePolicy, FleetError, Link};
use crate::fleet::keys::UserKeys;
use crate::module::{Attempt, CommitCheck};
use crate::policy::{self, Changes, Decision, Rejected};
use crate::secret_file::SecretFile;

pub struct FleetCheck {
    config: Config,
    /// This attempt's connection; a new one (and a new deadline) per attempt.
    link: Option<(Link, UserKeys)>,
    /// The file as it was before the local verification.
    before: Option<SecretFile>,
    /// The fleet-wide attempt was counted (once per pam_sm_authenticate).
    counted: bool,
    /// The first time the store gave no usable answer in this login.
    failure: Option<FleetError>,
}

fn refused(why: Rejected) -> Decision {
    Decision {
        verdict: Err(why),
        changes: Changes::default(),
    }
}

impl FleetCheck {
    pub fn new(config: Config) -> FleetCheck {
        FleetCheck {
            config,
            link: None,
            before: None,
            counted: false,
            failure: None,
        }
    }

    pub fn policy(&self) -> FailurePolicy {
        self.config.failure_policy
    }

    /// Why the store failed in this login, if it did.
    pub fn failure(&self) -> Option<&FleetError> {
        self.failure.as_ref()
    }

    /// Records a failure; the store is not used again in this attempt.
    fn fail(&mut self, error: FleetError) {
        self.link = None;
        self.before = None;
        if self.failure.is_none() {
            self.failure = Some(error);
        }
    }
}

impl FleetCheck {
    /// For a user with no account or no secret file: the same exchange as
    /// an enrolled user's wrong code (connect, authenticate, one attempt in
    /// a sliding window), on a key no one can link to anybody (derived from
    /// a fresh random secret), so that neither the time taken nor the
    /// store's traffic tells who is enrolled. Its outcome is ignored.
    pub fn decoy(&mut self) {
        let mut random = [0u8; 20];
        let filled = std::fs::File::open("/dev/urandom")
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut random));
        if filled.is_err() {
            return;
        }
        let Ok(keys) = UserKeys::new(
            &crate::otp::Secret::from_bytes(random.to_vec()),
            &self.config.namespace,
        ) else {
            return;
        };
        let (attempts, seconds) = match self.config.rate_limit {
            super::FleetLimit::None => {
                let _ = Link::open(&self.config);
                return;
            }
            super::FleetLimit::Fixed { attempts, seconds } => (attempts, seconds),
            // The limit most files carry (totp-enroll's default).
            super::FleetLimit::FromFile => (3, 30),
        };
        if let Ok(mut link) = Link::open(&self.config) {
            let _ = link.count_attempt(&keys, attempts, seconds);
        }
    }
}

impl CommitCheck for FleetCheck {
    fn before_judging(&mut self, file: &SecretFile, now: u64) -> Option<Decision> {
        self.link = None;
        self.before = None;
        // When the local limit refuses this attempt, it refuses (and counts)
        // it first: the fleet window is not charged for it.
        let locally_limited = policy::refuse_if_rate_limited(&mut file.clone(), now).is_some();
        let keys = match UserKeys::new(file.secret(), &self.config.namespace) {
            Ok(keys) => keys,
            Err(error) => {
                // Without the names the shared state cannot be checked: this
                // is no outage a failure policy could forgive, so refuse.
                self.fail(error);
                return Some(refused(Rejected::SharedStateUnavailable));
            }
        };
        let mut link = match Link::open(&self.config) {
            Ok(link) => link,
            Err(error) => {
                self.fail(error);
                return (self.policy() == FailurePolicy::Closed)
                    .then(|| refused(Rejected::SharedStateUnavailable));
            }
        };
        if !self.counted && !locally_limited {
            self.counted = true;
            if let Some((attempts, seconds)) = fleet_limit(&self.config, file) {
                match link.count_attempt(&keys, attempts, seconds) {
                    Ok(true) => {}
                    Ok(false) => {
                        return Some(refused(Rejected::FleetRateLimited { attempts, seconds }))
                    }
                    Err(error) => {
                        self.fail(error);
                        return (self.policy() == FailurePolicy::Closed)
                            .then(|| refused(Rejected::SharedStateUnavailable));
                    }
                }
            }
        }
        // Whatever the local file then accepts is claimed in before_commit.
        self.link = Some((link, keys));
        self.before = Some(file.clone());
        None
    }

    fn before_commit(&mut self, attempt: &mut Attempt, file: &mut SecretFile) {
        let (Some(before), Some((mut link, keys))) = (self.before.take(), self.link.take()) else {
            return;
        };
        let Ok(accepted) = attempt.decision.verdict else {
            return;
        };
        for claim in claims(&before, file, accepted) {
            match link.claim(&keys, claim) {
                Ok(true) => {}
                Ok(false) => {
                    // The file keeps what it recorded: the code is spent here too.
                    attempt.decision.verdict = Err(Rejected::UsedOnAnotherHost {
                        scratch: matches!(claim, Claim::Scratch { .. }),
                    });
                    return;
                }
                Err(error) => {
                    self.fail(error);
                    if self.policy() == FailurePolicy::Closed {
                        attempt.decision.verdict = Err(Rejected::SharedStateUnavailable);
                    }
                    return;
                }
            }
        }
    }
}
