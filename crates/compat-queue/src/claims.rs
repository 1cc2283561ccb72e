//! Consumer positions as a log of conditional claims (pure). To take its
//! `k`-th message a consumer appends `{"consumer":C,"position":k,"token":X}`
//! to `compat-queue.consumes` (partition `C mod partitions`). Folding that
//! log in order, a claim is **valid** when `k` equals the number of valid
//! claims of `C` before it: a compare-and-set decided by the log's order,
//! so every node folds the same positions, and two nodes that hand out
//! position `k` of one consumer at the same time cannot both succeed (the
//! second claim of `k` is invalid and its node tries `k + 1`).
//!
//! A node learns whether its own claim won by registering a [`Waiter`]
//! for `(C, k)` before appending it: the fold records the token of the one
//! valid claim of `(C, k)`, which is the node's own only if it won.

use std::collections::HashMap;

use citystream_client::ConsumerRecord;
use serde::{Deserialize, Serialize};

use citystream_client::tail::Fold;

/// One claim record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    pub consumer: u64,
    pub position: u64,
    /// Random per request: tells the claimer's node which claim won.
    pub token: u64,
}

impl Claim {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("claims always serialize")
    }
}

/// A node waiting to learn which claim of `position` won.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Waiter {
    position: u64,
    winner: Option<u64>,
}

/// The positions of the consumers of one partition of the claims log.
#[derive(Debug, Default)]
pub struct ClaimLog {
    /// Valid claims per consumer: the consumer's position in its messages.
    taken: HashMap<u64, u64>,
    /// At most one per consumer: this node serializes a consumer's consumes.
    waiters: HashMap<u64, Waiter>,
}

impl ClaimLog {
    /// Messages `consumer` has taken.
    pub fn taken(&self, consumer: u64) -> u64 {
        self.taken.get(&consumer).copied().unwrap_or(0)
    }

    /// Starts waiting for the outcome of `consumer`'s claim of its current
    /// position, and returns that position. Call it with the log caught up
    /// to where the position was read, under the same lock, so that no
    /// valid claim of it can be folded before the wait begins.
    pub fn begin_wait(&mut self, consumer: u64) -> u64 {
        let position = self.taken(consumer);
        let waiter = Waiter {
            position,
            winner: None,
        };
        self.waiters.insert(consumer, waiter);
        position
    }

    /// Ends the wait of `consumer`: the token of the valid claim of its
    /// position, if the fold has seen it.
    pub fn end_wait(&mut self, consumer: u64) -> Option<u64> {
        self.waiters.remove(&consumer).and_then(|w| w.winner)
    }

    fn fold(&mut self, claim: Claim) {
        let taken = self.taken.entry(claim.consumer).or_default();
        if claim.position != *taken {
            return; // lost a race: another claim took this position
        }
        *taken += 1;
        if let Some(waiter) = self.waiters.get_mut(&claim.consumer)
            && waiter.position == claim.position
        {
            waiter.winner = Some(claim.token);
        }
    }
}

impl Fold for ClaimLog {
    fn apply(&mut self, record: &ConsumerRecord) {
        match serde_json::from_slice::<Claim>(&record.value) {
            Ok(claim) => self.fold(claim),
            Err(error) => {
                tracing::warn!(offset = record.offset, %error, "skipping a record that is not a claim");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::tests::record;

    fn claim(consumer: u64, position: u64, token: u64) -> Claim {
        Claim {
            consumer,
            position,
            token,
        }
    }

    fn apply(log: &mut ClaimLog, offset: u64, claim: Claim) {
        log.apply(&record(offset, &claim.encode()));
    }

    /// Only the first claim of a position counts; consumers are independent.
    #[test]
    fn a_position_is_taken_once() {
        let mut log = ClaimLog::default();
        apply(&mut log, 0, claim(1, 0, 10));
        apply(&mut log, 1, claim(1, 0, 11)); // lost the race
        apply(&mut log, 2, claim(1, 1, 11));
        apply(&mut log, 3, claim(1, 5, 12)); // ahead of the position
        apply(&mut log, 4, claim(2, 0, 13));
        log.apply(&record(5, b"{}"));
        assert_eq!((log.taken(1), log.taken(2), log.taken(3)), (2, 1, 0));
    }

    /// A waiter learns the winner's token: its own when it won, another's
    /// when another node claimed the position first.
    #[test]
    fn waiters_learn_who_won() {
        let mut log = ClaimLog::default();
        assert_eq!(log.begin_wait(7), 0);
        apply(&mut log, 0, claim(7, 0, 99)); // another node's
        apply(&mut log, 1, claim(7, 0, 42)); // ours, too late
        assert_eq!(log.end_wait(7), Some(99));

        assert_eq!(log.begin_wait(7), 1);
        apply(&mut log, 2, claim(7, 1, 43));
        apply(&mut log, 3, claim(7, 2, 44)); // a later claim does not overwrite
        assert_eq!(log.end_wait(7), Some(43));
        assert_eq!(log.end_wait(7), None);
    }

    /// The claim record is the documented JSON.
    #[test]
    fn claim_record_is_json() {
        assert_eq!(
            claim(3, 4, 5).encode(),
            br#"{"consumer":3,"position":4,"token":5}"#
        );
    }
}
