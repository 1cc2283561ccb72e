//! Unit tests of the accumulator: sealing by size and by linger (on tokio's
//! paused clock), partition choice, and idempotent sequence numbering.

use std::time::Duration;

use citystream_record::{BATCH_HEADER_LEN, RecordBatch};
use tokio::time::Instant;

use super::*;
use crate::producer::lane::{Failure, LanePolicy};

const LINGER: Duration = Duration::from_millis(5);
const VALUE: &[u8] = &[7u8; 100];

fn record(value: &[u8]) -> RecordRef<'_> {
    RecordRef {
        timestamp_ms: 1_000,
        key: None,
        value: Some(value),
        headers: &[],
        tracked: true,
    }
}

fn policy(idempotent: bool) -> LanePolicy {
    LanePolicy {
        idempotent,
        max_in_flight: 2,
        retry_backoff: Duration::from_millis(100),
        retry_backoff_max: Duration::from_millis(1_000),
    }
}

/// An accumulator whose batches hold exactly `records_per_batch` 100-byte records.
fn accumulator(records_per_batch: usize, partitions: u32, idempotent: bool) -> Accumulator {
    let batch_bytes = BATCH_HEADER_LEN + records_per_batch * record(VALUE).size_bytes();
    let accumulator = Accumulator::new(batch_bytes, policy(idempotent), 0);
    accumulator.add_topic("t", Some(partitions));
    accumulator
}

fn append(accumulator: &Accumulator, choice: PartitionChoice<'_>) -> DeliveryFuture {
    match accumulator.append("t", choice, &record(VALUE)) {
        Ok(Appended::Queued { delivery, .. }) => delivery.expect("tracked"),
        Ok(Appended::UnknownTopic) => panic!("topic t is known"),
        Err(error) => panic!("append failed: {error}"),
    }
}

fn drain_now(accumulator: &Accumulator, producer_id: Option<u64>) -> Vec<SendableBatch> {
    if let Some(producer_id) = producer_id {
        accumulator.set_producer_id(producer_id);
    }
    let route = |_: &str, _: u32| Arc::<str>::from("leader");
    let drained = accumulator.drain(Instant::now(), Duration::from_secs(3600), &route);
    drained
        .batches
        .into_iter()
        .map(|(_, batch)| batch)
        .collect()
}

fn record_count(batch: &SendableBatch) -> u32 {
    RecordBatch::from_bytes(batch.bytes.clone())
        .expect("a valid batch")
        .header()
        .record_count
}

/// A batch is sealed exactly when it reaches `batch_bytes`; the next record opens a new one.
#[tokio::test(start_paused = true)]
async fn seals_batches_by_size() {
    let accumulator = accumulator(3, 1, false);
    for _ in 0..4 {
        append(&accumulator, PartitionChoice::Explicit(0));
    }
    let batches = drain_now(&accumulator, None);
    assert_eq!(batches.len(), 1);
    assert_eq!(record_count(&batches[0]), 3);
    assert_eq!(
        batches[0].bytes.len(),
        BATCH_HEADER_LEN + 3 * record(VALUE).size_bytes()
    );
    assert!(
        drain_now(&accumulator, None).is_empty(),
        "the 4th record still lingers"
    );
}

/// A partly filled batch is sealed once its first record has waited `linger`.
#[tokio::test(start_paused = true)]
async fn seals_batches_by_linger() {
    let accumulator = accumulator(100, 1, false);
    let opened_at = Instant::now();
    append(&accumulator, PartitionChoice::Explicit(0));
    tokio::time::advance(Duration::from_millis(2)).await;
    append(&accumulator, PartitionChoice::Explicit(0));
    assert_eq!(accumulator.next_deadline(LINGER), Some(opened_at + LINGER));
    let route = |_: &str, _: u32| Arc::<str>::from("leader");
    let drained = accumulator.drain(Instant::now(), LINGER, &route);
    assert!(drained.batches.is_empty());
    tokio::time::advance(Duration::from_millis(3)).await;
    let drained = accumulator.drain(Instant::now(), LINGER, &route);
    assert_eq!(drained.batches.len(), 1);
    assert_eq!(record_count(&drained.batches[0].1), 2);
    assert_eq!(accumulator.next_deadline(LINGER), None);
}

/// Keyless records stick to one partition until its batch is sealed, then move on.
#[tokio::test(start_paused = true)]
async fn sticky_partition_moves_after_each_batch() {
    let accumulator = accumulator(2, 3, false);
    for _ in 0..8 {
        append(&accumulator, PartitionChoice::Sticky);
    }
    let partitions: Vec<u32> = drain_now(&accumulator, None)
        .iter()
        .map(|batch| batch.partition)
        .collect();
    assert_eq!(partitions, vec![0, 1, 2, 0]);
}

/// Keyed records go where the murmur2 partitioner says; bad explicit partitions are refused.
#[tokio::test(start_paused = true)]
async fn keyed_and_explicit_partitions() {
    let accumulator = accumulator(1, 12, false);
    append(&accumulator, PartitionChoice::Key(b"21"));
    let batches = drain_now(&accumulator, None);
    assert_eq!(batches[0].partition, partition_for_key(b"21", 12));
    let refused = accumulator.append("t", PartitionChoice::Explicit(12), &record(VALUE));
    assert!(matches!(refused, Err(ClientError::InvalidArgument(_))));
}

/// A topic not looked up yet is reported; one that does not exist yet goes to partition 0.
#[tokio::test(start_paused = true)]
async fn unknown_topics_wait_for_metadata_then_use_partition_zero() {
    let accumulator = Accumulator::new(1, policy(false), 5);
    let first = accumulator.append("new", PartitionChoice::Sticky, &record(VALUE));
    assert!(matches!(first, Ok(Appended::UnknownTopic)));
    accumulator.add_topic("new", None);
    assert!(accumulator.topic_unresolved("new"));
    let second = accumulator.append("new", PartitionChoice::Key(b"k"), &record(VALUE));
    assert!(matches!(second, Ok(Appended::Queued { .. })));
    assert_eq!(drain_now(&accumulator, None)[0].partition, 0);
}

/// Idempotent batches get contiguous sequences, at most `max_in_flight`
/// (here 2) per partition in flight; the producer id comes from the lane.
#[tokio::test(start_paused = true)]
async fn idempotent_sequences_are_contiguous_and_bounded_in_flight() {
    let accumulator = accumulator(3, 1, true);
    for _ in 0..9 {
        append(&accumulator, PartitionChoice::Explicit(0));
    }
    let first = drain_now(&accumulator, Some(42));
    assert_eq!(first.len(), 2, "the third batch waits");
    let header = *RecordBatch::from_bytes(first[1].bytes.clone())
        .unwrap()
        .header();
    assert_eq!((header.producer_id, header.base_sequence), (42, 3));
    assert!(drain_now(&accumulator, Some(42)).is_empty());
    accumulator.written(&first[0]);
    let third = drain_now(&accumulator, Some(42));
    assert_eq!(third[0].base_sequence, Some(6));
}

/// Without a producer id an idempotent producer sends nothing and says so.
#[tokio::test(start_paused = true)]
async fn idempotent_batches_wait_for_a_producer_id() {
    let accumulator = accumulator(1, 1, true);
    append(&accumulator, PartitionChoice::Explicit(0));
    let route = |_: &str, _: u32| Arc::<str>::from("leader");
    let drained = accumulator.drain(Instant::now(), LINGER, &route);
    assert!(drained.batches.is_empty() && drained.needs_producer_id);
}

/// After a definite failure the next batch reuses the failed batch's sequence.
#[tokio::test(start_paused = true)]
async fn failed_idempotent_batch_rewinds_the_sequence() {
    let accumulator = accumulator(2, 1, true);
    for _ in 0..2 {
        append(&accumulator, PartitionChoice::Explicit(0));
    }
    let first = drain_now(&accumulator, Some(1));
    accumulator.failed(&first[0], Failure::NotWritten);
    for _ in 0..2 {
        append(&accumulator, PartitionChoice::Explicit(0));
    }
    let second = drain_now(&accumulator, Some(1));
    assert_eq!(second[0].base_sequence, Some(0));
}

/// Batches past the delivery timeout leave the queue; newer ones stay.
#[tokio::test(start_paused = true)]
async fn unsent_batches_expire() {
    let accumulator = accumulator(1, 1, true);
    append(&accumulator, PartitionChoice::Explicit(0));
    tokio::time::advance(Duration::from_millis(10)).await;
    append(&accumulator, PartitionChoice::Explicit(0));
    let expired = accumulator.expire(Instant::now() - Duration::from_millis(5));
    assert_eq!(expired.len(), 1);
    assert_eq!(accumulator.incomplete().len(), 1);
    assert!(accumulator.has_unsent());
}

/// Every record's future resolves from its batch's completion, and flush sees all batches.
#[tokio::test(start_paused = true)]
async fn incomplete_batches_are_tracked_until_done() {
    let accumulator = accumulator(2, 1, false);
    let deliveries: Vec<_> = (0..3)
        .map(|_| append(&accumulator, PartitionChoice::Explicit(0)))
        .collect();
    assert_eq!(accumulator.incomplete().len(), 2);
    accumulator.seal_all();
    let batches = drain_now(&accumulator, None);
    for (batch, base_offset) in batches.iter().zip([10, 12]) {
        accumulator.written(batch);
        batch.completion.complete(Ok(base_offset));
    }
    assert!(accumulator.incomplete().is_empty());
    let mut offsets = Vec::new();
    for delivery in deliveries {
        offsets.push(delivery.await.unwrap().offset);
    }
    assert_eq!(offsets, vec![10, 11, 12]);
}

/// While a partition has no room in flight, a lingered batch stays open and
/// keeps filling (one bigger batch later instead of many small ones); it is
/// sealed once an answer frees room.
#[tokio::test(start_paused = true)]
async fn a_full_lane_keeps_its_batch_open() {
    let accumulator = accumulator(100, 1, false);
    let route = |_: &str, _: u32| Arc::<str>::from("leader");
    let mut sent = Vec::new();
    for _ in 0..2 {
        append(&accumulator, PartitionChoice::Explicit(0));
        let drained = accumulator.drain(Instant::now() + LINGER, LINGER, &route);
        sent.extend(drained.batches);
    }
    assert_eq!(sent.len(), 2, "max_in_flight is 2");
    for _ in 0..3 {
        append(&accumulator, PartitionChoice::Explicit(0));
    }
    let later = Instant::now() + LINGER * 10;
    assert!(accumulator.drain(later, LINGER, &route).batches.is_empty());
    assert_eq!(
        accumulator.next_deadline(LINGER),
        None,
        "no busy loop while full"
    );
    accumulator.written(&sent[0].1);
    let drained = accumulator.drain(later, LINGER, &route);
    assert_eq!(drained.batches.len(), 1);
    assert_eq!(
        record_count(&drained.batches[0].1),
        3,
        "one batch of the three"
    );
}
