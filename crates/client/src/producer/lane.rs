//! [`Lane`]: the send state of one partition, which is where the producer
//! keeps per-partition order. The accumulator holds one per partition and
//! calls it under its lock; it does no I/O and reads no clock (the caller
//! passes `now`), so its rules are tested directly.
//!
//! The rules:
//!
//! * A lane sends its batches in the order they were sealed, all to one
//!   destination while any is in flight (requests queued on one connection
//!   reach the broker in that order), at most `max_in_flight` at once.
//! * A batch that failed retriably waits in the lane's retry set. From then
//!   on the lane takes no new batch; once every batch in flight has been
//!   answered, it re-sends the waiting ones in order, after a capped
//!   exponential backoff (skipped when the metadata names another leader
//!   than the one that failed), to the destination the metadata names. An
//!   idempotent lane re-sends them all at once (the leader refuses any batch
//!   that skips ahead with `OUT_OF_SEQUENCE`, so none can land before an
//!   earlier one); a non-idempotent lane re-sends them one at a time.
//! * Idempotent sequences: a new batch takes the lane's next sequence. When
//!   batches are re-sent, those newer than the newest batch known written
//!   are numbered again from its end (`written_end`): the same numbers,
//!   unless a batch before them was refused for good (then it was not
//!   written and neither was anything after it, so closing the hole is
//!   safe). One older than a batch known written was written too (the
//!   leader refuses gaps) and keeps its numbers: its re-send is answered as
//!   a duplicate.
//! * The lane starts over with a fresh producer id (and sequence 0) when its
//!   sequence state may differ from the leader's: a batch given up on with
//!   an unknown outcome (delivery timeout), a stale-sequence refusal, or an
//!   `OUT_OF_SEQUENCE` answer to its oldest outstanding batch at exactly
//!   `written_end` (the leader lost what it had acknowledged: an
//!   `acks=leader` write lost in a failover, or a producer state expired).
//!   It switches only with nothing in flight, and never back to the id it
//!   gave up; other lanes keep their ids.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use citystream_protocol::ErrorCode;
use tokio::time::Instant;

use super::accumulator::SendableBatch;
use crate::ClientError;

/// How lanes behave; the same for every lane of a producer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LanePolicy {
    pub(crate) idempotent: bool,
    pub(crate) max_in_flight: usize,
    pub(crate) retry_backoff: Duration,
    pub(crate) retry_backoff_max: Duration,
}

impl LanePolicy {
    /// The wait before re-sending after `failures` failures in a row.
    fn backoff(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(16);
        self.retry_backoff
            .saturating_mul(1 << doublings)
            .min(self.retry_backoff_max)
    }
}

/// Why a lane cannot send now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Blocked {
    /// Nothing to send, or it must wait (in-flight answers, backoff).
    Waiting,
    /// It needs a producer id other than the current one.
    NeedsProducerId,
}

#[derive(Debug, Default)]
pub(crate) struct Lane {
    /// The id this lane's sequences belong to (idempotent producers).
    producer_id: Option<u64>,
    /// An id the lane gave up; it never takes it again.
    retired_producer_id: Option<u64>,
    /// Start over with a fresh id once nothing is in flight.
    start_over: bool,
    /// Sequence of the next new batch.
    next_sequence: u32,
    /// End sequence of the newest batch known written under `producer_id`.
    written_end: u32,
    /// Ordinal of that batch.
    newest_written: Option<u64>,
    /// Ordinals of the batches sent and not answered yet.
    in_flight: BTreeSet<u64>,
    /// Sealed batches of this partition waiting to be sent.
    queued: usize,
    /// Where the batches in flight went.
    destination: Option<Arc<str>>,
    /// Batches to send again, by ordinal.
    retry: BTreeMap<u64, SendableBatch>,
    /// Not before this instant.
    retry_at: Option<Instant>,
    /// Failed rounds in a row (drives the backoff): the most attempts any
    /// waiting batch has had.
    failures: u32,
}

impl Lane {
    /// Whether a new batch may be sent now: no retry pending, room in
    /// flight, and (idempotent) a usable producer id, adopting `current`
    /// if the lane has none.
    pub(crate) fn take_new(
        &mut self,
        policy: &LanePolicy,
        current: Option<u64>,
    ) -> Result<(), Blocked> {
        if !self.retry.is_empty() || self.in_flight.len() >= policy.max_in_flight.max(1) {
            return Err(Blocked::Waiting);
        }
        if policy.idempotent {
            self.ensure_producer_id(current)?;
        }
        Ok(())
    }

    /// The producer id and sequence for a new batch of `record_count`
    /// records (after [`Lane::take_new`] said yes).
    pub(crate) fn stamp_new(&mut self, record_count: u32) -> (u64, u32) {
        let producer_id = self.producer_id.expect("take_new adopted a producer id");
        let base_sequence = self.next_sequence;
        self.next_sequence = base_sequence.wrapping_add(record_count);
        (producer_id, base_sequence)
    }

    /// Notes that `batch` is being sent to `destination`.
    pub(crate) fn sent(&mut self, batch: &SendableBatch, destination: &Arc<str>) {
        self.in_flight.insert(batch.ordinal);
        self.destination = Some(destination.clone());
    }

    /// Where this lane's next batch must go, if it is pinned (batches in flight).
    pub(crate) fn pinned_destination(&self) -> Option<&Arc<str>> {
        self.destination
            .as_ref()
            .filter(|_| !self.in_flight.is_empty())
    }

    /// Whether a lingered batch should be sealed now: the lane could send
    /// it (no re-send pending, room in flight counting the sealed batches
    /// already waiting). Otherwise records keep filling the open batch, so a
    /// busy partition sends fewer, bigger batches (as Kafka's accumulator).
    pub(crate) fn has_room(&self, policy: &LanePolicy) -> bool {
        self.retry.is_empty() && self.in_flight.len() + self.queued < policy.max_in_flight.max(1)
    }

    /// A batch of this partition was sealed (it waits to be sent).
    pub(crate) fn sealed(&mut self) {
        self.queued += 1;
    }

    /// A sealed batch left the queue (taken for sending, expired or aborted).
    pub(crate) fn unqueued(&mut self) {
        self.queued = self.queued.saturating_sub(1);
    }

    /// Whether batches wait for a re-send.
    pub(crate) fn has_retries(&self) -> bool {
        !self.retry.is_empty()
    }

    /// Whether batches wait for their backoff to end at `now`.
    pub(crate) fn backing_off(&self, now: Instant) -> bool {
        self.in_flight.is_empty()
            && !self.retry.is_empty()
            && self.retry_at.is_some_and(|at| at > now)
    }

    /// When the waiting batches may go (if nothing is in flight).
    pub(crate) fn retry_deadline(&self) -> Option<Instant> {
        match self.in_flight.is_empty() && !self.retry.is_empty() {
            true => Some(self.retry_at.unwrap_or_else(Instant::now)),
            false => None,
        }
    }

    /// Takes the batches to send again, numbered as the rules say; sets
    /// the lane's destination to `destination`.
    pub(crate) fn take_retries(
        &mut self,
        policy: &LanePolicy,
        current: Option<u64>,
        now: Instant,
        destination: &Arc<str>,
    ) -> Result<Vec<SendableBatch>, Blocked> {
        if self.retry.is_empty() || !self.in_flight.is_empty() {
            return Err(Blocked::Waiting);
        }
        // A new leader named since the failure is worth trying at once
        // (Kafka's KIP-951); the old one is given its backoff.
        let moved = self
            .destination
            .as_ref()
            .is_some_and(|last| last != destination);
        if !moved && self.retry_at.is_some_and(|at| at > now) {
            return Err(Blocked::Waiting);
        }
        if !policy.idempotent {
            let (_, batch) = self.retry.pop_first().expect("not empty");
            self.sent(&batch, destination);
            return Ok(vec![batch]);
        }
        self.ensure_producer_id(current)?;
        let producer_id = self.producer_id.expect("ensured");
        assert!(
            self.retry.len() <= policy.max_in_flight.max(1),
            "a lane never has more batches outstanding than max_in_flight"
        );
        let mut cursor = self.written_end;
        let mut taken = Vec::with_capacity(self.retry.len());
        while let Some((_, mut batch)) = self.retry.pop_first() {
            let behind_a_written_one = self.newest_written.is_some_and(|n| batch.ordinal < n)
                && batch.producer_id == Some(producer_id);
            if !behind_a_written_one {
                // A batch older than one known written was written too (the
                // leader refuses gaps): its re-send keeps its numbers and is
                // answered as a duplicate. The others follow `written_end`.
                batch.renumber(producer_id, cursor);
                cursor = cursor.wrapping_add(batch.record_count);
            }
            self.sent(&batch, destination);
            taken.push(batch);
        }
        self.next_sequence = cursor;
        Ok(taken)
    }

    /// `batch` was written (acknowledged, or found to be a duplicate).
    pub(crate) fn written(&mut self, batch: &SendableBatch) {
        self.in_flight.remove(&batch.ordinal);
        self.failures = 0;
        let newer = self.newest_written.is_none_or(|n| n < batch.ordinal);
        if newer && batch.producer_id.is_some() && batch.producer_id == self.producer_id {
            let base = batch
                .base_sequence
                .expect("idempotent batches have a sequence");
            self.written_end = base.wrapping_add(batch.record_count);
            self.newest_written = Some(batch.ordinal);
        }
    }

    /// `batch` failed for good: `written` says whether it may have been
    /// written (unknown) or surely was not (refused by the broker).
    pub(crate) fn failed(&mut self, batch: &SendableBatch, outcome: Failure) {
        self.in_flight.remove(&batch.ordinal);
        match outcome {
            Failure::NotWritten => {}
            Failure::Unknown | Failure::SequenceMismatch => self.start_over = true,
        }
        if self.in_flight.is_empty() && self.retry.is_empty() {
            // Nothing outstanding: the next batch follows the newest one
            // written (closing the hole of a refused batch).
            self.next_sequence = self.written_end;
        }
    }

    /// Queues `batch` for another attempt after it failed retriably with
    /// `error` at `now`.
    pub(crate) fn retry_later(
        &mut self,
        batch: SendableBatch,
        error: &ClientError,
        policy: &LanePolicy,
        now: Instant,
    ) {
        self.in_flight.remove(&batch.ordinal);
        if policy.idempotent
            && error.code() == Some(ErrorCode::OUT_OF_SEQUENCE)
            && self.is_oldest_outstanding(batch.ordinal)
            && batch.producer_id == self.producer_id
            && batch.base_sequence == Some(self.written_end)
        {
            // The leader does not hold what it acknowledged before this
            // batch: its state for this producer is gone.
            tracing::warn!(topic = %batch.topic, partition = batch.partition,
                "the leader lost this producer's sequence state; starting over with a new producer id");
            self.start_over = true;
        }
        // Failures in a row are rounds, not batches: the batches of one
        // failed round share its attempt count.
        self.failures = self.failures.max(batch.attempts);
        self.retry_at = Some(now + policy.backoff(self.failures));
        self.retry.insert(batch.ordinal, batch);
    }

    /// Removes and returns the waiting batches created before `deadline`
    /// (past their delivery timeout). Their outcome is unknown, so an
    /// idempotent lane starts over.
    pub(crate) fn expire(&mut self, created_before: Instant) -> Vec<SendableBatch> {
        let expired: Vec<u64> = self
            .retry
            .iter()
            .filter(|(_, batch)| batch.created_at < created_before)
            .map(|(ordinal, _)| *ordinal)
            .collect();
        let batches: Vec<SendableBatch> = expired
            .iter()
            .filter_map(|ordinal| self.retry.remove(ordinal))
            .collect();
        if !batches.is_empty() {
            self.start_over = true;
        }
        batches
    }

    /// Removes and returns every batch waiting for a re-send, and forgets
    /// the sealed ones queued (the producer is giving up on everything
    /// unsent; the caller has drained the queue).
    pub(crate) fn take_waiting(&mut self) -> Vec<SendableBatch> {
        self.queued = 0;
        std::mem::take(&mut self.retry).into_values().collect()
    }

    fn is_oldest_outstanding(&self, ordinal: u64) -> bool {
        let older_in_flight = self.in_flight.first().is_some_and(|o| *o < ordinal);
        let older_waiting = self
            .retry
            .first_key_value()
            .is_some_and(|(o, _)| *o < ordinal);
        !older_in_flight && !older_waiting
    }

    /// Makes sure the lane has a producer id it may use: once nothing is in
    /// flight, a lane starting over gives its id up, and a lane without one
    /// adopts `current` unless that is the id it gave up.
    fn ensure_producer_id(&mut self, current: Option<u64>) -> Result<(), Blocked> {
        if self.start_over {
            if !self.in_flight.is_empty() {
                return Err(Blocked::Waiting);
            }
            if let Some(old) = self.producer_id.take() {
                self.retired_producer_id = Some(old);
            }
            self.start_over = false;
        }
        if self.producer_id.is_some() {
            return Ok(());
        }
        match current {
            Some(id) if Some(id) != self.retired_producer_id => {
                self.producer_id = Some(id);
                self.next_sequence = 0;
                self.written_end = 0;
                self.newest_written = None;
                Ok(())
            }
            _ => Err(Blocked::NeedsProducerId),
        }
    }
}

/// How a batch failed for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The broker refused it: nothing was written.
    NotWritten,
    /// It may or may not have been written (given up after timeouts).
    Unknown,
    /// Refused because the leader's sequence state differs from the lane's.
    SequenceMismatch,
}

#[cfg(test)]
mod tests;
