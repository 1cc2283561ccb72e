//! [`ReconnectOptions`]: whether and how a client connects again after
//! losing its connection, and the pure parts of that decision: which
//! endings and which CONNACK refusals are worth another attempt, the order
//! of the broker addresses tried, and the capped exponential backoff with
//! jitter between attempts (the randomness is an input). Making the
//! attempts and re-sending what was not acknowledged is the connection
//! task's (`connection/resume.rs`).

use std::hash::{BuildHasher as _, RandomState};
use std::time::Duration;

use citystream_mqtt_codec::ReasonCode;

use crate::error::{CloseReason, MqttClientError};

/// How a client connects again after losing its connection (set
/// [`crate::ConnectOptions::reconnect`]). Attempts go to the broker
/// addresses given to [`crate::MqttClient::connect_any`] in turn, starting
/// with the one after the address that was lost, with a growing, jittered
/// delay before each; they end when one is accepted, when a CONNACK
/// refuses for good, after `attempts_max` failures, or when the client is
/// disconnected or dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconnectOptions {
    /// The delay before the first attempt; it doubles with each failed one.
    pub backoff_initial_ms: u64,
    /// The delay's cap.
    pub backoff_max_ms: u64,
    /// Consecutive failed attempts before giving up
    /// ([`CloseReason::ReconnectGaveUp`]); `None`: never give up.
    pub attempts_max: Option<u32>,
}

impl Default for ReconnectOptions {
    /// 100 ms doubling up to 5 s, without an attempt limit.
    fn default() -> ReconnectOptions {
        ReconnectOptions {
            backoff_initial_ms: 100,
            backoff_max_ms: 5_000,
            attempts_max: None,
        }
    }
}

impl ReconnectOptions {
    /// The delay before the attempt that follows `failed_attempts` failed
    /// ones: `initial × 2^failed` capped at the maximum, then a uniform
    /// pick in its upper half (`random` is any random number), so clients
    /// that lost the same node do not all come back at the same instant.
    pub(crate) fn delay(&self, failed_attempts: u32, random: u64) -> Duration {
        let doubled = self
            .backoff_initial_ms
            .saturating_mul(1u64 << failed_attempts.min(32));
        let capped_ms = doubled.min(self.backoff_max_ms);
        let half_ms = capped_ms / 2;
        Duration::from_millis(capped_ms - half_ms + random % (half_ms + 1))
    }
}

/// A random number for the jitter: std's per-instance random hash keys,
/// so no random-number crate is needed for this one use.
pub(crate) fn jitter_random() -> u64 {
    RandomState::new().hash_one(std::time::Instant::now())
}

/// Whether a connection that ended so is worth connecting again: lost
/// sockets, keep-alive expiry, and a broker that says it is going away or
/// busy. Not: our own close, a protocol violation either way, or a broker
/// that handed the session to another connection with our client id
/// (reconnecting would take it back and fight it).
pub(crate) fn worth_reconnecting(reason: &CloseReason) -> bool {
    match reason {
        CloseReason::ByBroker | CloseReason::Io { .. } | CloseReason::KeepAliveTimeout => true,
        CloseReason::Disconnected { reason } => [
            ReasonCode::UNSPECIFIED_ERROR,
            ReasonCode::SERVER_BUSY,
            ReasonCode::SERVER_SHUTTING_DOWN,
            ReasonCode::KEEP_ALIVE_TIMEOUT,
            ReasonCode::ADMINISTRATIVE_ACTION,
            ReasonCode::USE_ANOTHER_SERVER,
            ReasonCode::SERVER_MOVED,
            ReasonCode::CONNECTION_RATE_EXCEEDED,
            ReasonCode::MAXIMUM_CONNECT_TIME,
        ]
        .contains(reason),
        _ => false,
    }
}

/// Whether a failed reconnect attempt is worth another: anything but a
/// CONNACK refusal, and of those only Server unavailable and Server busy
/// (3.1.1 return code 3 is mapped to the first), plus the 5.0 codes that
/// point at another server or at a rate. Bad credentials, a client id or
/// protocol version refused, a ban: trying again would be refused again.
pub(crate) fn worth_another_attempt(error: &MqttClientError) -> bool {
    match error {
        MqttClientError::Refused { reason } => [
            ReasonCode::SERVER_UNAVAILABLE,
            ReasonCode::SERVER_BUSY,
            ReasonCode::USE_ANOTHER_SERVER,
            ReasonCode::SERVER_MOVED,
            ReasonCode::CONNECTION_RATE_EXCEEDED,
        ]
        .contains(reason),
        _ => true,
    }
}

/// The broker addresses and the one to try next.
#[derive(Debug, Clone)]
pub(crate) struct Addresses {
    list: Vec<String>,
    /// The index of the address last connected to or tried.
    current: usize,
}

impl Addresses {
    /// `list` with `current` the one connected to now.
    pub(crate) fn new(list: Vec<String>, current: usize) -> Addresses {
        assert!(
            current < list.len(),
            "the address in use is one of the list"
        );
        Addresses { list, current }
    }

    /// The address after the last one tried, wrapping: a node that was
    /// just lost is tried again last (it is the only one with one address).
    pub(crate) fn next(&mut self) -> &str {
        self.current = (self.current + 1) % self.list.len();
        &self.list[self.current]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The delay doubles per failure up to the cap and stays in the upper
    /// half of it whatever the randomness.
    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter_in_the_upper_half() {
        let options = ReconnectOptions::default();
        for random in [0, 1, 77, u64::MAX] {
            let delays: Vec<u64> = (0..10)
                .map(|failed| options.delay(failed, random).as_millis() as u64)
                .collect();
            let caps = [100, 200, 400, 800, 1_600, 3_200, 5_000, 5_000, 5_000, 5_000];
            for (delay, cap) in delays.iter().zip(caps) {
                assert!(
                    (cap / 2..=cap).contains(delay),
                    "{delay} ms for a cap of {cap}"
                );
            }
        }
        assert_eq!(options.delay(u32::MAX, 0), Duration::from_millis(2_500));
        assert_eq!(options.delay(0, 50), Duration::from_millis(100));
    }

    /// Lost connections and busy brokers are retried; our own close, a
    /// takeover and protocol violations are not.
    #[test]
    fn only_transient_endings_are_retried() {
        assert!(worth_reconnecting(&CloseReason::ByBroker));
        assert!(worth_reconnecting(&CloseReason::KeepAliveTimeout));
        assert!(worth_reconnecting(&CloseReason::Disconnected {
            reason: ReasonCode::SERVER_SHUTTING_DOWN
        }));
        assert!(!worth_reconnecting(&CloseReason::ByClient));
        assert!(!worth_reconnecting(&CloseReason::Disconnected {
            reason: ReasonCode::SESSION_TAKEN_OVER
        }));
        assert!(!worth_reconnecting(&CloseReason::ProtocolViolation {
            what: "test"
        }));
    }

    /// Bad credentials are permanent; Server unavailable is not.
    #[test]
    fn credentials_refused_are_permanent() {
        let refused = |reason| MqttClientError::Refused { reason };
        assert!(!worth_another_attempt(&refused(
            ReasonCode::BAD_USER_NAME_OR_PASSWORD
        )));
        assert!(!worth_another_attempt(&refused(ReasonCode::NOT_AUTHORIZED)));
        assert!(worth_another_attempt(&refused(
            ReasonCode::SERVER_UNAVAILABLE
        )));
        assert!(worth_another_attempt(&MqttClientError::ConnectTimeout {
            address: "a:1".to_owned(),
            timeout_ms: 1
        }));
    }

    /// Addresses are tried from the one after the lost one, wrapping.
    #[test]
    fn addresses_rotate_from_the_one_after_the_lost_one() {
        let list = vec!["a:1".to_owned(), "b:2".to_owned(), "c:3".to_owned()];
        let mut addresses = Addresses::new(list, 1);
        let tried: Vec<String> = (0..4).map(|_| addresses.next().to_owned()).collect();
        assert_eq!(tried, ["c:3", "a:1", "b:2", "c:3"]);
    }
}
