//! One partition: its log behind a read/write lock, its idempotent-producer
//! state (under the same lock, so the dedup check and the append are one
//! step), its high watermark and the watch channel that publishes it, and
//! a dirty flag so interval fsync skips partitions nobody wrote to.
//!
//! Every appended batch is stamped with hybrid logical clock values from
//! the broker's one clock ([`PartitionShared`]), taken under the partition
//! lock so HLCs grow with offsets along each partition and respect the
//! order of appends across all of the broker's partitions.
//!
//! The high watermark is kept apart from the log end: on a single broker
//! every append moves it to the log end, but a replicated partition will
//! set it below (only what a quorum holds). Reads never go past it.
//!
//! Not here: validation of produced batches (`produce`), which topic or
//! directory the partition belongs to (`topic`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bytes::{Bytes, BytesMut};
use citystream_log::{CompactionParams, CompactionSummary, LogError, Offset, PartitionLog, Term};
use citystream_record::{BatchHeader, HybridClock, NO_PRODUCER, RecordBatch, set_base_hlc};
use parking_lot::{Mutex, RwLock};
use tokio::sync::{Notify, watch};

use crate::BrokerError;
use crate::producer_state::{OutOfOrder, ProducerStates, SequenceCheck};

/// Log bytes scanned at open to rebuild producer state (the tail only).
pub const PRODUCER_SCAN_BYTES_MAX: u64 = 32 * 1024 * 1024;
/// Bytes per read while scanning a log.
pub const SCAN_CHUNK_BYTES: usize = 1024 * 1024;
/// Batch headers read per round when rebuilding producer state at open.
const HEADER_SCAN_BATCHES: usize = 1024;

/// Where a partition offset lookup points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetQuery {
    Earliest,
    Latest,
    Timestamp(i64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProduceOutcome {
    pub base_offset: u64,
    pub log_start_offset: u64,
    /// True when an idempotent producer's batch was a retry already written.
    pub duplicate: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchOutcome {
    /// Whole batches, the first containing the requested offset.
    pub records: Bytes,
    pub high_watermark: u64,
    pub log_start_offset: u64,
}

/// What all partitions of one broker share.
#[derive(Debug, Clone, Default)]
pub struct PartitionShared {
    /// Told when a partition goes from synced to dirty, so the interval
    /// fsync only wakes when there is something to sync.
    pub unsynced: Arc<Notify>,
    /// The broker's hybrid logical clock. Locked after a partition's lock,
    /// never the other way, and only to stamp or observe.
    pub clock: Arc<Mutex<HybridClock>>,
}

struct PartitionState {
    log: PartitionLog,
    producers: ProducerStates,
}

pub struct Partition {
    topic: String,
    index: u32,
    state: RwLock<PartitionState>,
    /// Offsets below this are readable (exclusive end).
    high_watermark: AtomicU64,
    watermark: watch::Sender<u64>,
    /// Written since the last sync.
    dirty: AtomicBool,
    shared: PartitionShared,
}

impl std::fmt::Debug for Partition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Partition")
            .field("topic", &self.topic)
            .field("index", &self.index)
            .field("high_watermark", &self.high_watermark())
            .finish_non_exhaustive()
    }
}

impl Partition {
    /// Wraps an opened log; rebuilds producer state from the log's tail
    /// and makes the shared clock stamp past the log's last HLC (the wall
    /// clock may have gone back across a restart).
    pub fn new(
        topic: &str,
        index: u32,
        log: PartitionLog,
        now_ms: i64,
        shared: PartitionShared,
    ) -> Result<Partition, BrokerError> {
        let producers = rebuild_producer_states(&log, now_ms)?;
        if let Some(last) = log.last_batch() {
            shared.clock.lock().observe(last.last_hlc());
        }
        let end = log.next_offset().0;
        // Bytes recovered at open may sit unsynced in the page cache (a
        // process crash keeps them there); the first sync must cover them.
        let recovered = end > log.start_offset().0;
        if recovered {
            shared.unsynced.notify_one();
        }
        Ok(Partition {
            topic: topic.to_owned(),
            index,
            state: RwLock::new(PartitionState { log, producers }),
            high_watermark: AtomicU64::new(end),
            watermark: watch::Sender::new(end),
            dirty: AtomicBool::new(recovered),
            shared,
        })
    }

    pub fn index(&self) -> u32 {
        self.index
    }

    pub fn high_watermark(&self) -> u64 {
        self.high_watermark.load(Ordering::Acquire)
    }

    /// Appends a validated batch, unless it is an idempotent retry, with
    /// `record_count` HLCs from the broker's clock at `now_ms`.
    pub fn append(&self, batch: RecordBatch, now_ms: i64) -> Result<ProduceOutcome, BrokerError> {
        let header = *batch.header();
        // Reuse the buffer when we are its only owner; copy otherwise.
        let mut bytes = batch
            .into_bytes()
            .try_into_mut()
            .unwrap_or_else(|shared| BytesMut::from(&shared[..]));
        let mut state = self.state.write();
        let idempotent = header.producer_id != NO_PRODUCER;
        if idempotent {
            let check = state.producers.check(
                header.producer_id,
                header.base_sequence,
                header.record_count,
            );
            match check.map_err(|e| self.out_of_order(&header, e))? {
                SequenceCheck::Append => {}
                SequenceCheck::Duplicate { base_offset } => {
                    return Ok(ProduceOutcome {
                        base_offset,
                        log_start_offset: state.log.start_offset().0,
                        duplicate: true,
                    });
                }
            }
        }
        let base_hlc = self.shared.clock.lock().stamp(now_ms, header.record_count);
        set_base_hlc(&mut bytes, base_hlc);
        let info = state.log.append(&mut bytes, Term(0))?;
        if idempotent {
            state.producers.record(
                header.producer_id,
                header.base_sequence,
                header.record_count,
                info.base_offset.0,
                now_ms,
            );
        }
        if !self.dirty.swap(true, Ordering::AcqRel) {
            self.shared.unsynced.notify_one();
        }
        self.publish_high_watermark(state.log.next_offset().0);
        Ok(ProduceOutcome {
            base_offset: info.base_offset.0,
            log_start_offset: state.log.start_offset().0,
            duplicate: false,
        })
    }

    /// Whole batches from `offset`, never past the high watermark.
    pub fn fetch(&self, offset: u64, max_bytes: u32) -> Result<FetchOutcome, BrokerError> {
        let state = self.state.read();
        let high_watermark = self.high_watermark();
        if offset > high_watermark {
            return Err(BrokerError::OffsetOutOfRange {
                requested: offset,
                start: state.log.start_offset().0,
                end: high_watermark,
            });
        }
        read_committed(&state.log, offset, max_bytes, high_watermark)
    }

    pub fn list_offset(&self, query: OffsetQuery) -> Result<u64, BrokerError> {
        let state = self.state.read();
        let high_watermark = self.high_watermark();
        let start = state.log.start_offset().0;
        Ok(match query {
            OffsetQuery::Earliest => start,
            OffsetQuery::Latest => high_watermark,
            OffsetQuery::Timestamp(timestamp_ms) => state
                .log
                .offset_for_timestamp(timestamp_ms)?
                .map_or(high_watermark, |o| o.0.clamp(start, high_watermark)),
        })
    }

    /// `(log start offset, log size in bytes)`.
    pub fn log_extent(&self) -> (u64, u64) {
        let state = self.state.read();
        (state.log.start_offset().0, state.log.size_bytes())
    }

    pub fn watch(&self) -> watch::Receiver<u64> {
        self.watermark.subscribe()
    }

    /// fsyncs if anything was written since the last sync.
    pub fn sync_if_dirty(&self) -> Result<(), BrokerError> {
        if !self.dirty.swap(false, Ordering::AcqRel) {
            return Ok(());
        }
        // The fsync runs outside the lock so appends and fetches go on
        // while the disk syncs (group commit without a stall).
        let pending = self.state.write().log.begin_sync();
        match pending.and_then(|pending| pending.run()) {
            Ok(done) => {
                self.state.write().log.finish_sync(done);
                Ok(())
            }
            Err(error) => {
                self.dirty.store(true, Ordering::Release);
                self.shared.unsynced.notify_one();
                Err(error.into())
            }
        }
    }

    /// Applies age and size retention; returns segments deleted.
    pub fn apply_retention(&self, now_ms: i64) -> Result<usize, BrokerError> {
        Ok(self.state.write().log.apply_retention(now_ms)?)
    }

    /// One compaction pass of a compacted topic's partition on a single
    /// broker (decision 0017 §6): rolls a quiet active segment past the
    /// topic's `segment_roll_ms`, then compacts the closed segments older
    /// than the topic's lag (raised to `lag_floor_ms`), planning under the
    /// read lock, rewriting with no lock and swapping under the write
    /// lock, so produce and fetch go on meanwhile. `None` for other topics
    /// and when nothing is due.
    pub fn compact(
        &self,
        now_ms: i64,
        key_map_bytes_max: usize,
        dirty_ratio_min_percent: u8,
        lag_floor_ms: u64,
    ) -> Result<Option<CompactionSummary>, BrokerError> {
        let (params, cutoff_ms) = {
            let mut state = self.state.write();
            let config = state.log.config();
            if !config.compacted {
                return Ok(None);
            }
            let params = CompactionParams {
                tombstone_retention_ms: config.tombstone_retention_ms,
                key_map_bytes_max,
                dirty_ratio_min_percent,
            };
            let lag_ms = config.compaction_lag_ms.max(lag_floor_ms);
            let cutoff_ms = now_ms.saturating_sub(i64::try_from(lag_ms).unwrap_or(i64::MAX));
            state.log.roll_if_older(now_ms)?;
            (params, cutoff_ms)
        };
        let plan = {
            let state = self.state.read();
            let point = state
                .log
                .compaction_point(cutoff_ms, params.dirty_ratio_min_percent);
            let Some(point) = point else {
                return Ok(None);
            };
            let horizon = point.next_offset().min(self.high_watermark());
            state.log.plan_compaction(Offset(horizon), &params)
        };
        let Some(plan) = plan else {
            return Ok(None);
        };
        let cleaned = plan.run()?;
        Ok(Some(self.state.write().log.commit_compaction(cleaned)?))
    }

    /// Reads raw batches for internal replay (ignores the high watermark).
    pub(crate) fn read_log(&self, from: u64, max_bytes: usize) -> Result<Bytes, BrokerError> {
        let state = self.state.read();
        if from >= state.log.next_offset().0 {
            return Ok(Bytes::new());
        }
        Ok(state.log.read(Offset(from), max_bytes)?.bytes)
    }

    fn publish_high_watermark(&self, high_watermark: u64) {
        self.high_watermark.store(high_watermark, Ordering::Release);
        self.watermark.send_replace(high_watermark);
    }

    fn out_of_order(&self, header: &BatchHeader, refusal: OutOfOrder) -> BrokerError {
        BrokerError::sequence_refused(
            refusal,
            header.producer_id,
            &self.topic,
            self.index,
            header.base_sequence,
        )
    }
}

fn map_read_error(error: LogError, high_watermark: u64) -> BrokerError {
    match error {
        LogError::OffsetOutOfRange {
            requested, start, ..
        } => BrokerError::OffsetOutOfRange {
            requested,
            start,
            end: high_watermark,
        },
        other => BrokerError::Storage(other),
    }
}

/// Headers of the whole batches at the front of `bytes` (stops at the first
/// undecodable or incomplete one).
pub(crate) fn batch_headers(bytes: &[u8]) -> impl Iterator<Item = BatchHeader> + '_ {
    let mut rest = bytes;
    std::iter::from_fn(move || {
        let header = BatchHeader::decode(rest).ok()?;
        let len = header.batch_len as usize;
        if len > rest.len() {
            return None;
        }
        rest = &rest[len..];
        Some(header)
    })
}

/// Whole batches of `log` from `offset` (at most `max_bytes`, but always the
/// first), none at or past `high_watermark`. An `offset` between the high
/// watermark and the log end reads nothing (the caller may wait for the
/// watermark); one below the log start is out of range.
pub fn read_committed(
    log: &PartitionLog,
    offset: u64,
    max_bytes: u32,
    high_watermark: u64,
) -> Result<FetchOutcome, BrokerError> {
    let start = log.start_offset().0;
    let readable_end = high_watermark.max(start);
    if offset < start || offset > log.next_offset().0.max(readable_end) {
        return Err(BrokerError::OffsetOutOfRange {
            requested: offset,
            start,
            end: readable_end,
        });
    }
    let mut records = Bytes::new();
    if offset < high_watermark {
        let read = log
            .read(Offset(offset), max_bytes as usize)
            .map_err(|e| map_read_error(e, high_watermark))?;
        records = read.bytes;
        if read.next_offset.0 > high_watermark {
            records = cut_at(records, high_watermark);
        }
    }
    Ok(FetchOutcome {
        records,
        high_watermark: readable_end,
        log_start_offset: start,
    })
}

/// Keeps only the batches that start below `end`.
fn cut_at(records: Bytes, end: u64) -> Bytes {
    let kept: usize = batch_headers(&records)
        .take_while(|h| h.base_offset < end)
        .map(|h| h.batch_len as usize)
        .sum();
    records.slice(..kept)
}

/// Replays the batch headers of the log's last [`PRODUCER_SCAN_BYTES_MAX`]
/// bytes into fresh producer state: what a partition does at open, and what
/// a replicated partition's new leader does. Where the tail starts is
/// estimated from the average batch density (the log has no byte-position
/// lookup); a producer idle for longer than that window must restart at
/// sequence 0.
pub fn rebuild_producer_states(
    log: &PartitionLog,
    now_ms: i64,
) -> Result<ProducerStates, LogError> {
    let mut states = ProducerStates::new();
    let (start, end) = (log.start_offset().0, log.next_offset().0);
    let size = log.size_bytes();
    let mut at = start;
    if size > PRODUCER_SCAN_BYTES_MAX {
        let tail = (u128::from(end - start) * u128::from(PRODUCER_SCAN_BYTES_MAX)
            / u128::from(size)) as u64;
        at = end - tail.max(1);
    }
    // Headers only: the records are not read. Each round advances `at` by
    // at least one batch, so this ends at `end`.
    while at < end {
        let headers = log.read_batch_headers(Offset(at), HEADER_SCAN_BATCHES)?;
        let mut next = at;
        for header in headers {
            if header.producer_id != NO_PRODUCER && !header.is_control() {
                // A compacted batch keeps its producer fields and its
                // original span, which is what its sequences covered
                // (decision 0017 §8); a gap batch has no producer.
                let (id, seq, count) = (
                    header.producer_id,
                    header.base_sequence,
                    header.offset_count(),
                );
                states.record(id, seq, count, header.base_offset, now_ms);
            }
            next = header.next_offset();
        }
        if next <= at {
            break;
        }
        at = next;
    }
    Ok(states)
}

#[cfg(test)]
mod tests {
    use citystream_log::{CompactionParams, LogConfig};
    use citystream_record::BatchBuilder;

    use super::*;

    const PRODUCER: u64 = 41;

    /// One idempotent batch of `keys`, sequences from `base_sequence`.
    fn produced(keys: &[&str], base_sequence: u32) -> Vec<u8> {
        let mut builder = BatchBuilder::new();
        builder.set_producer(PRODUCER, base_sequence);
        for key in keys {
            builder
                .push(1_700_000_000_000, Some(key.as_bytes()), b"v", &[])
                .unwrap();
        }
        builder.finish_vec()
    }

    /// After compaction removed records of a producer's batch, its state
    /// is rebuilt from the batch's original span: the next sequence goes
    /// on after every record it sent, and a retry of the batch is still a
    /// duplicate at its offset (decision 0017 §8).
    #[test]
    fn producer_state_is_rebuilt_from_a_compacted_batchs_span() {
        let config = LogConfig {
            segment_bytes_max: 1024,
            compacted: true,
            ..LogConfig::default()
        };
        let mut log = PartitionLog::in_memory(config);
        log.append(&mut produced(&["a", "b", "a"], 0), Term(1))
            .unwrap();
        // Fill and roll segments so the first batch is in a closed one.
        for n in 0..20 {
            log.append(&mut produced(&["b"], 3 + n), Term(1)).unwrap();
        }
        let params = CompactionParams {
            tombstone_retention_ms: 1,
            key_map_bytes_max: 1024 * 1024,
            dirty_ratio_min_percent: 0,
        };
        let summary = log.compact(log.next_offset(), &params).unwrap();
        assert!(summary.segments_rewritten > 0, "{summary:?}");
        let first = log.read_batch_headers(Offset(0), 1).unwrap()[0];
        assert!(first.is_compacted(), "the first batch lost a record");
        assert_eq!(first.record_count, 1);

        let states = rebuild_producer_states(&log, 0).unwrap();
        assert_eq!(
            states.check(PRODUCER, 0, 3),
            Ok(SequenceCheck::Duplicate { base_offset: 0 }),
            "a retry of the compacted batch is a duplicate"
        );
        assert_eq!(states.check(PRODUCER, 23, 1), Ok(SequenceCheck::Append));
    }
}
