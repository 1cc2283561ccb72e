//! Idempotent-producer dedup state of one partition: for each producer id,
//! the next expected sequence and the last [`RECENT_BATCHES_MAX`] batches'
//! `(base_sequence, record_count, base_offset)`, so any of the last five
//! in-flight retries (as Kafka allows) is answered with its original offset
//! instead of being written twice.
//!
//! Sequences are `u32` and wrap. A producer this partition has not seen must
//! start at sequence 0. The state is pure: the partition rebuilds it on open
//! by feeding it the batch headers at the log's tail ([`ProducerStates::record`]),
//! and it does not know about ids allocation or the log.

use std::collections::HashMap;

/// Batches per producer remembered for dedup (Kafka's max in-flight).
pub const RECENT_BATCHES_MAX: usize = 5;

/// Producers tracked per partition; past this the least recently seen is
/// forgotten (its next batch must then restart at sequence 0).
pub const PRODUCERS_PER_PARTITION_MAX: usize = 10_000;

/// The `base_offset` of a batch recorded before its offset is known (see
/// [`ProducerStates::set_base_offset`]); a retry of it finds it in flight.
pub const OFFSET_PENDING: u64 = u64::MAX;

/// What to do with an idempotent batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceCheck {
    /// The next expected batch: append it.
    Append,
    /// A retry of a batch already written at `base_offset`: write nothing.
    Duplicate { base_offset: u64 },
}

/// The batch is neither the next one nor a recent retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutOfOrder {
    /// It skipped ahead of `expected`: an earlier batch has not arrived
    /// (the producer re-sends from its first unacknowledged batch). An
    /// unknown producer whose batch does not start at 0 is a gap too: its
    /// first batches may be the ones missing.
    Gap { expected: u32 },
    /// It is behind `expected` and not one of the recent batches: the
    /// producer's state here does not match its own (it must start over).
    Stale { expected: u32 },
}

impl OutOfOrder {
    pub fn expected(self) -> u32 {
        match self {
            OutOfOrder::Gap { expected } | OutOfOrder::Stale { expected } => expected,
        }
    }

    /// Whether `received` is ahead of or behind `expected`, with sequences
    /// compared on the wrapping `u32` circle (ahead = less than half a turn).
    fn classify(expected: u32, received: u32) -> OutOfOrder {
        if received.wrapping_sub(expected) < 1 << 31 {
            OutOfOrder::Gap { expected }
        } else {
            OutOfOrder::Stale { expected }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct BatchMeta {
    base_sequence: u32,
    record_count: u32,
    base_offset: u64,
}

#[derive(Debug, Clone)]
struct ProducerEntry {
    /// Ring of the most recent batches; `recent_len` of them are valid.
    recent: [BatchMeta; RECENT_BATCHES_MAX],
    recent_len: usize,
    /// Slot the next batch is written to.
    recent_head: usize,
    next_sequence: u32,
    last_seen_ms: i64,
}

impl ProducerEntry {
    fn new(now_ms: i64) -> ProducerEntry {
        ProducerEntry {
            recent: [BatchMeta::default(); RECENT_BATCHES_MAX],
            recent_len: 0,
            recent_head: 0,
            next_sequence: 0,
            last_seen_ms: now_ms,
        }
    }

    fn find(&self, base_sequence: u32, record_count: u32) -> Option<&BatchMeta> {
        self.recent[..self.recent_len]
            .iter()
            .find(|meta| meta.base_sequence == base_sequence && meta.record_count == record_count)
    }

    fn push(&mut self, meta: BatchMeta) {
        self.recent[self.recent_head] = meta;
        self.recent_head = (self.recent_head + 1) % RECENT_BATCHES_MAX;
        self.recent_len = (self.recent_len + 1).min(RECENT_BATCHES_MAX);
        self.next_sequence = meta.base_sequence.wrapping_add(meta.record_count);
    }
}

/// Dedup state of every idempotent producer that wrote to one partition.
#[derive(Debug, Default)]
pub struct ProducerStates {
    producers: HashMap<u64, ProducerEntry>,
}

impl ProducerStates {
    pub fn new() -> ProducerStates {
        ProducerStates::default()
    }

    /// Decides whether a batch of `producer_id` is next, a retry, or out of order.
    pub fn check(
        &self,
        producer_id: u64,
        base_sequence: u32,
        record_count: u32,
    ) -> Result<SequenceCheck, OutOfOrder> {
        let Some(entry) = self.producers.get(&producer_id) else {
            return match base_sequence {
                0 => Ok(SequenceCheck::Append),
                _ => Err(OutOfOrder::Gap { expected: 0 }),
            };
        };
        if let Some(meta) = entry.find(base_sequence, record_count) {
            return Ok(SequenceCheck::Duplicate {
                base_offset: meta.base_offset,
            });
        }
        if base_sequence == entry.next_sequence {
            Ok(SequenceCheck::Append)
        } else {
            Err(OutOfOrder::classify(entry.next_sequence, base_sequence))
        }
    }

    /// Remembers a batch that is now in the log (after an append, or when
    /// replaying the log's tail on open; no sequence check is made here).
    pub fn record(
        &mut self,
        producer_id: u64,
        base_sequence: u32,
        record_count: u32,
        base_offset: u64,
        now_ms: i64,
    ) {
        if !self.producers.contains_key(&producer_id)
            && self.producers.len() >= PRODUCERS_PER_PARTITION_MAX
        {
            self.evict_least_recently_seen();
        }
        let entry = self
            .producers
            .entry(producer_id)
            .or_insert_with(|| ProducerEntry::new(now_ms));
        entry.last_seen_ms = entry.last_seen_ms.max(now_ms);
        entry.push(BatchMeta {
            base_sequence,
            record_count,
            base_offset,
        });
    }

    /// Sets the offset of a recorded batch whose offset was not known when
    /// it was recorded ([`OFFSET_PENDING`]): a replicated leader records a
    /// batch when it proposes it and learns its offset when it is appended.
    pub fn set_base_offset(&mut self, producer_id: u64, base_sequence: u32, base_offset: u64) {
        if let Some(entry) = self.producers.get_mut(&producer_id) {
            let len = entry.recent_len;
            for meta in &mut entry.recent[..len] {
                if meta.base_sequence == base_sequence {
                    meta.base_offset = base_offset;
                }
            }
        }
    }

    /// Producers currently tracked.
    pub fn len(&self) -> usize {
        self.producers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    fn evict_least_recently_seen(&mut self) {
        let oldest = self
            .producers
            .iter()
            .min_by_key(|(_, entry)| entry.last_seen_ms)
            .map(|(id, _)| *id);
        if let Some(id) = oldest {
            self.producers.remove(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A new producer must start at 0, and then continue exactly where it left off.
    #[test]
    fn sequences_must_be_contiguous() {
        let mut states = ProducerStates::new();
        assert_eq!(states.check(7, 3, 1), Err(OutOfOrder::Gap { expected: 0 }));
        assert_eq!(states.check(7, 0, 10), Ok(SequenceCheck::Append));
        states.record(7, 0, 10, 100, 0);
        assert_eq!(states.check(7, 10, 5), Ok(SequenceCheck::Append));
        assert_eq!(
            states.check(7, 11, 5),
            Err(OutOfOrder::Gap { expected: 10 })
        );
        assert_eq!(
            states.check(7, 20, 5),
            Err(OutOfOrder::Gap { expected: 10 })
        );
        assert_eq!(
            states.check(7, 5, 5),
            Err(OutOfOrder::Stale { expected: 10 })
        );
    }

    /// Any of the last five batches is a duplicate; the sixth-last is not.
    #[test]
    fn last_five_batches_are_deduped() {
        let mut states = ProducerStates::new();
        for i in 0..6u32 {
            states.record(1, i * 2, 2, u64::from(i) * 100, 0);
        }
        for i in 1..6u32 {
            let expected = SequenceCheck::Duplicate {
                base_offset: u64::from(i) * 100,
            };
            assert_eq!(states.check(1, i * 2, 2), Ok(expected));
        }
        assert_eq!(
            states.check(1, 0, 2),
            Err(OutOfOrder::Stale { expected: 12 })
        );
        assert_eq!(states.check(1, 12, 2), Ok(SequenceCheck::Append));
    }

    /// A retry with the right sequence but a different record count is not a duplicate.
    #[test]
    fn duplicate_needs_same_record_count() {
        let mut states = ProducerStates::new();
        states.record(1, 0, 3, 0, 0);
        assert_eq!(
            states.check(1, 0, 4),
            Err(OutOfOrder::Stale { expected: 3 })
        );
    }

    /// Producers are independent of each other.
    #[test]
    fn producers_are_independent() {
        let mut states = ProducerStates::new();
        states.record(1, 0, 1, 0, 0);
        assert_eq!(states.check(2, 0, 1), Ok(SequenceCheck::Append));
        assert_eq!(states.check(1, 1, 1), Ok(SequenceCheck::Append));
    }

    /// Sequences wrap at `u32::MAX` instead of overflowing, and ahead and
    /// behind are judged across the wrap.
    #[test]
    fn sequence_wraps() {
        let mut states = ProducerStates::new();
        states.record(1, u32::MAX - 1, 3, 0, 0);
        assert_eq!(states.check(1, 1, 1), Ok(SequenceCheck::Append));
        assert_eq!(states.check(1, 5, 1), Err(OutOfOrder::Gap { expected: 1 }));
        let stale = u32::MAX - 10;
        assert_eq!(
            states.check(1, stale, 1),
            Err(OutOfOrder::Stale { expected: 1 })
        );
    }

    /// Past the producer limit the least recently seen producer is forgotten.
    #[test]
    fn evicts_least_recently_seen() {
        let mut states = ProducerStates::new();
        for id in 0..PRODUCERS_PER_PARTITION_MAX as u64 {
            states.record(id + 1, 0, 1, id, 1_000 + id as i64);
        }
        states.record(1, 1, 1, 0, 999_999);
        states.record(u64::MAX, 0, 1, 0, 999_999);
        assert_eq!(states.len(), PRODUCERS_PER_PARTITION_MAX);
        assert_eq!(states.check(2, 1, 1), Err(OutOfOrder::Gap { expected: 0 }));
        assert_eq!(states.check(1, 2, 1), Ok(SequenceCheck::Append));
    }
}
