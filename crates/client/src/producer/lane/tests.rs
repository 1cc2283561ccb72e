//! Unit tests of a lane's rules: pipelining bounds, in-order re-sends,
//! re-numbering after a refused batch, and starting over with a new
//! producer id.

use std::sync::Arc;
use std::time::Duration;

use citystream_protocol::{ApiError, ErrorCode};
use citystream_record::{BatchBuilder, RecordBatch};
use tokio::time::Instant;

use super::*;
use crate::producer::delivery::BatchCompletion;

const IDEMPOTENT: LanePolicy = LanePolicy {
    idempotent: true,
    max_in_flight: 5,
    retry_backoff: Duration::from_millis(100),
    retry_backoff_max: Duration::from_millis(1_000),
};

const NOT_IDEMPOTENT: LanePolicy = LanePolicy {
    idempotent: false,
    ..IDEMPOTENT
};

/// A batch of `records` records with ordinal `ordinal`, stamped by `lane`
/// when the policy is idempotent.
fn new_batch(lane: &mut Lane, policy: &LanePolicy, ordinal: u64, records: u32) -> SendableBatch {
    let mut builder = BatchBuilder::new();
    for i in 0..records {
        builder.push(0, None, &i.to_le_bytes(), &[]).unwrap();
    }
    let (producer_id, base_sequence) = match policy.idempotent {
        true => {
            let (id, sequence) = lane.stamp_new(records);
            builder.set_producer(id, sequence);
            (Some(id), Some(sequence))
        }
        false => (None, None),
    };
    SendableBatch {
        topic: Arc::from("t"),
        partition: 0,
        bytes: builder.finish(),
        producer_id,
        base_sequence,
        completion: Arc::new(BatchCompletion::new(ordinal, Arc::from("t"), 0)),
        attempts: 0,
        record_count: records,
        ordinal,
        created_at: Instant::now(),
        last_error: None,
    }
}

/// Takes and sends `count` new batches of 2 records each.
fn send_new(lane: &mut Lane, policy: &LanePolicy, first: u64, count: u64) -> Vec<SendableBatch> {
    let destination: Arc<str> = Arc::from("leader");
    (first..first + count)
        .map(|ordinal| {
            lane.take_new(policy, Some(7)).expect("room in flight");
            let batch = new_batch(lane, policy, ordinal, 2);
            lane.sent(&batch, &destination);
            batch
        })
        .collect()
}

fn api(code: ErrorCode) -> ClientError {
    ClientError::Api(ApiError::new(code, "scripted"))
}

fn wire_header(batch: &SendableBatch) -> (u64, u32) {
    let header = *RecordBatch::from_bytes(batch.bytes.clone())
        .expect("a valid batch")
        .header();
    (header.producer_id, header.base_sequence)
}

fn ordinals(batches: &[SendableBatch]) -> Vec<u64> {
    batches.iter().map(|b| b.ordinal).collect()
}

/// Up to `max_in_flight` batches go at once, with contiguous sequences.
#[tokio::test(start_paused = true)]
async fn pipelines_up_to_max_in_flight_with_contiguous_sequences() {
    let mut lane = Lane::default();
    let sent = send_new(&mut lane, &IDEMPOTENT, 0, 5);
    let sequences: Vec<_> = sent.iter().map(|b| b.base_sequence.unwrap()).collect();
    assert_eq!(sequences, [0, 2, 4, 6, 8]);
    assert_eq!(lane.take_new(&IDEMPOTENT, Some(7)), Err(Blocked::Waiting));
    lane.written(&sent[0]);
    assert_eq!(lane.take_new(&IDEMPOTENT, Some(7)), Ok(()));
}

/// After a retriable failure the lane takes no new batch, waits for every
/// answer in flight and the backoff, then re-sends the failed batches in
/// sealing order with their original sequences.
#[tokio::test(start_paused = true)]
async fn resends_in_order_once_nothing_is_in_flight() {
    let mut lane = Lane::default();
    let mut sent = send_new(&mut lane, &IDEMPOTENT, 0, 3).into_iter();
    let (first, second, third) = (
        sent.next().unwrap(),
        sent.next().unwrap(),
        sent.next().unwrap(),
    );
    let now = Instant::now();
    lane.written(&first);
    lane.retry_later(third, &api(ErrorCode::OUT_OF_SEQUENCE), &IDEMPOTENT, now);
    assert_eq!(lane.take_new(&IDEMPOTENT, Some(7)), Err(Blocked::Waiting));
    let leader: Arc<str> = Arc::from("leader");
    let waiting = lane.take_retries(&IDEMPOTENT, Some(7), now + Duration::from_secs(5), &leader);
    assert_eq!(
        waiting.unwrap_err(),
        Blocked::Waiting,
        "the second is in flight"
    );
    lane.retry_later(second, &api(ErrorCode::NOT_LEADER), &IDEMPOTENT, now);
    let early = lane.take_retries(&IDEMPOTENT, Some(7), now, &leader);
    assert_eq!(early.unwrap_err(), Blocked::Waiting, "backoff");
    let resent = lane
        .take_retries(&IDEMPOTENT, Some(7), now + Duration::from_secs(5), &leader)
        .unwrap();
    assert_eq!(ordinals(&resent), [1, 2]);
    let headers: Vec<_> = resent.iter().map(wire_header).collect();
    assert_eq!(headers, [(7, 2), (7, 4)], "the same numbers as before");
    assert_eq!(lane.pinned_destination(), Some(&leader));
}

/// A batch whose answer was lost while the one behind it was written was
/// written too: its re-send keeps its numbers (answered as a duplicate).
#[tokio::test(start_paused = true)]
async fn a_batch_behind_a_written_one_keeps_its_numbers() {
    let mut lane = Lane::default();
    let mut sent = send_new(&mut lane, &IDEMPOTENT, 0, 3).into_iter();
    let (first, second, third) = (
        sent.next().unwrap(),
        sent.next().unwrap(),
        sent.next().unwrap(),
    );
    let now = Instant::now();
    lane.written(&first);
    let timeout = ClientError::Timeout { timeout_ms: 5 };
    lane.retry_later(second, &timeout, &IDEMPOTENT, now);
    lane.written(&third);
    let later = now + Duration::from_secs(5);
    let resent = lane
        .take_retries(&IDEMPOTENT, Some(7), later, &Arc::from("leader"))
        .unwrap();
    assert_eq!(wire_header(&resent[0]), (7, 2));
    lane.written(&resent[0]);
    lane.take_new(&IDEMPOTENT, Some(7)).unwrap();
    assert_eq!(lane.stamp_new(1), (7, 6), "after the third batch");
}

/// A batch refused for good was not written, so the ones behind it are
/// re-numbered to close the hole (and their CRC still checks).
#[tokio::test(start_paused = true)]
async fn a_refused_batch_makes_the_ones_behind_it_renumbered() {
    let mut lane = Lane::default();
    let sent = send_new(&mut lane, &IDEMPOTENT, 0, 3);
    let mut sent = sent.into_iter();
    let (first, second, third) = (
        sent.next().unwrap(),
        sent.next().unwrap(),
        sent.next().unwrap(),
    );
    let now = Instant::now();
    lane.written(&first);
    lane.failed(&second, Failure::NotWritten);
    lane.retry_later(third, &api(ErrorCode::OUT_OF_SEQUENCE), &IDEMPOTENT, now);
    let later = now + Duration::from_secs(5);
    let resent = lane
        .take_retries(&IDEMPOTENT, Some(7), later, &Arc::from("leader"))
        .unwrap();
    assert_eq!(
        wire_header(&resent[0]),
        (7, 2),
        "takes the refused batch's place"
    );
    lane.written(&resent[0]);
    lane.take_new(&IDEMPOTENT, Some(7)).unwrap();
    assert_eq!(lane.stamp_new(1), (7, 4));
}

/// With nothing outstanding, a refused batch's sequences go to the next batch.
#[tokio::test(start_paused = true)]
async fn a_refused_last_batch_rewinds_the_sequence() {
    let mut lane = Lane::default();
    let sent = send_new(&mut lane, &IDEMPOTENT, 0, 2);
    lane.written(&sent[0]);
    lane.failed(&sent[1], Failure::NotWritten);
    lane.take_new(&IDEMPOTENT, Some(7)).unwrap();
    assert_eq!(lane.stamp_new(2), (7, 2));
}

/// `OUT_OF_SEQUENCE` for the oldest outstanding batch, at exactly the end
/// of what was acknowledged, means the leader lost this producer's state:
/// the lane starts over with a new id from sequence 0, never the old id.
#[tokio::test(start_paused = true)]
async fn lost_leader_state_starts_over_with_a_new_producer_id() {
    let mut lane = Lane::default();
    let sent = send_new(&mut lane, &IDEMPOTENT, 0, 2);
    let now = Instant::now();
    lane.written(&sent[0]);
    let mut sent = sent.into_iter().skip(1);
    let second = sent.next().unwrap();
    lane.retry_later(second, &api(ErrorCode::OUT_OF_SEQUENCE), &IDEMPOTENT, now);
    let later = now + Duration::from_secs(5);
    let leader: Arc<str> = Arc::from("leader");
    let blocked = lane.take_retries(&IDEMPOTENT, Some(7), later, &leader);
    assert_eq!(blocked.unwrap_err(), Blocked::NeedsProducerId);
    let resent = lane
        .take_retries(&IDEMPOTENT, Some(8), later, &leader)
        .unwrap();
    assert_eq!(wire_header(&resent[0]), (8, 0));
    lane.written(&resent[0]);
    lane.take_new(&IDEMPOTENT, Some(8)).unwrap();
    assert_eq!(lane.stamp_new(1), (8, 2));
}

/// `OUT_OF_SEQUENCE` for a batch behind one still outstanding is only a
/// gap: it waits for a re-send, keeping its id and sequence.
#[tokio::test(start_paused = true)]
async fn a_gap_behind_an_outstanding_batch_is_only_resent() {
    let mut lane = Lane::default();
    let mut sent = send_new(&mut lane, &IDEMPOTENT, 0, 2).into_iter();
    let (first, second) = (sent.next().unwrap(), sent.next().unwrap());
    let now = Instant::now();
    lane.retry_later(second, &api(ErrorCode::OUT_OF_SEQUENCE), &IDEMPOTENT, now);
    lane.retry_later(first, &api(ErrorCode::NOT_LEADER), &IDEMPOTENT, now);
    let later = now + Duration::from_secs(5);
    let resent = lane
        .take_retries(&IDEMPOTENT, Some(7), later, &Arc::from("l"))
        .unwrap();
    let headers: Vec<_> = resent.iter().map(wire_header).collect();
    assert_eq!(headers, [(7, 0), (7, 2)]);
}

/// A batch given up on with an unknown outcome makes the lane start over
/// once its batches in flight are answered.
#[tokio::test(start_paused = true)]
async fn an_unknown_outcome_starts_over_after_the_batches_in_flight() {
    let mut lane = Lane::default();
    let sent = send_new(&mut lane, &IDEMPOTENT, 0, 2);
    lane.failed(&sent[0], Failure::Unknown);
    assert_eq!(lane.take_new(&IDEMPOTENT, Some(7)), Err(Blocked::Waiting));
    lane.written(&sent[1]);
    assert_eq!(
        lane.take_new(&IDEMPOTENT, Some(7)),
        Err(Blocked::NeedsProducerId)
    );
    lane.take_new(&IDEMPOTENT, Some(9)).unwrap();
    assert_eq!(lane.stamp_new(1), (9, 0));
}

/// A lane counts its queued sealed batches toward its room.
#[test]
fn queued_batches_take_room() {
    let mut lane = Lane::default();
    let policy = LanePolicy {
        max_in_flight: 2,
        ..IDEMPOTENT
    };
    assert!(lane.has_room(&policy));
    lane.sealed();
    lane.sealed();
    assert!(!lane.has_room(&policy), "two batches already wait");
    lane.unqueued();
    assert!(lane.has_room(&policy));
}

/// Without idempotence, pending re-sends go one at a time.
#[tokio::test(start_paused = true)]
async fn non_idempotent_resends_one_at_a_time() {
    let mut lane = Lane::default();
    let sent = send_new(&mut lane, &NOT_IDEMPOTENT, 0, 3);
    let now = Instant::now();
    for batch in sent {
        lane.retry_later(batch, &api(ErrorCode::NOT_LEADER), &NOT_IDEMPOTENT, now);
    }
    let later = now + Duration::from_secs(5);
    let leader: Arc<str> = Arc::from("l");
    let first = lane
        .take_retries(&NOT_IDEMPOTENT, None, later, &leader)
        .unwrap();
    assert_eq!(ordinals(&first), [0]);
    let blocked = lane.take_retries(&NOT_IDEMPOTENT, None, later, &leader);
    assert_eq!(blocked.unwrap_err(), Blocked::Waiting);
    assert_eq!(lane.take_new(&NOT_IDEMPOTENT, None), Err(Blocked::Waiting));
    lane.written(&first[0]);
    let second = lane
        .take_retries(&NOT_IDEMPOTENT, None, later, &leader)
        .unwrap();
    assert_eq!(ordinals(&second), [1]);
}

/// A failed round backs off once, whatever the number of its batches; a
/// new leader named meanwhile is tried at once.
#[tokio::test(start_paused = true)]
async fn backoff_counts_rounds_and_a_new_leader_skips_it() {
    let mut lane = Lane::default();
    let now = Instant::now();
    for mut batch in send_new(&mut lane, &IDEMPOTENT, 0, 5) {
        batch.attempts = 1;
        lane.retry_later(batch, &api(ErrorCode::NOT_LEADER), &IDEMPOTENT, now);
    }
    let same: Arc<str> = Arc::from("leader");
    let early = lane.take_retries(&IDEMPOTENT, Some(7), now + Duration::from_millis(99), &same);
    assert_eq!(
        early.unwrap_err(),
        Blocked::Waiting,
        "one round: 100 ms, not 1 s"
    );
    let moved: Arc<str> = Arc::from("new-leader");
    let resent = lane.take_retries(&IDEMPOTENT, Some(7), now + Duration::from_millis(1), &moved);
    assert_eq!(resent.unwrap().len(), 5, "a new leader is tried at once");
}

/// The backoff doubles per failure in a row, up to its cap.
#[test]
fn backoff_doubles_up_to_the_cap() {
    let waits: Vec<u64> = (1..=6)
        .map(|failures| IDEMPOTENT.backoff(failures).as_millis() as u64)
        .collect();
    assert_eq!(waits, [100, 200, 400, 800, 1_000, 1_000]);
}

/// Expired waiting batches leave the lane, which then starts over.
#[tokio::test(start_paused = true)]
async fn expired_batches_leave_and_the_lane_starts_over() {
    let mut lane = Lane::default();
    let sent = send_new(&mut lane, &IDEMPOTENT, 0, 1);
    let now = Instant::now();
    for batch in sent {
        lane.retry_later(batch, &api(ErrorCode::NOT_LEADER), &IDEMPOTENT, now);
    }
    assert!(lane.expire(now).is_empty(), "created at `now`, not before");
    let expired = lane.expire(now + Duration::from_millis(1));
    assert_eq!(ordinals(&expired), [0]);
    assert!(!lane.has_retries());
    assert_eq!(
        lane.take_new(&IDEMPOTENT, Some(7)),
        Err(Blocked::NeedsProducerId)
    );
}
