//! The producer's sender task: it takes sealed batches from the accumulator
//! (when woken, or when the oldest open batch has lingered), groups them by
//! the leader of their partition, packs each broker's batches into
//! `Produce` requests (one batch per partition per request, bounded bytes),
//! and sends each request on a task of its own once that broker has a free
//! in-flight slot. The request task handles the answer per partition:
//! success completes the batch; a retriable error (or I/O) re-sends it after
//! `retry_backoff_ms`, to the leader metadata now names (re-read after a
//! stale-leader code or a failed connection), up to `retries`;
//! anything else fails it with the broker's code and message.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use citystream_protocol::{
    Acks, ErrorCode, InitProducerRequest, ProducePartition, ProducePartitionResponse,
    ProduceRequest, Request, Response,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::Shared;
use super::accumulator::SendableBatch;
use super::delivery::UNKNOWN_OFFSET;
use crate::ClientError;
use crate::error::needs_metadata_refresh;

/// Upper bound on the bytes of batches packed into one `Produce` request.
const PRODUCE_REQUEST_BYTES_MAX: usize = 4 * 1024 * 1024;

/// Per-broker in-flight request slots of one producer.
type InFlightSlots = HashMap<String, Arc<Semaphore>>;

/// Runs until shutdown; then fails whatever was never sent.
pub(super) async fn run(shared: Arc<Shared>) {
    let linger = Duration::from_millis(shared.config.linger_ms);
    let mut slots = InFlightSlots::new();
    let mut producer_id = None;
    while !shared.shutdown.is_cancelled() {
        if shared.producer_id_stale.swap(false, Ordering::AcqRel) {
            producer_id = None;
        }
        if shared.config.idempotent && producer_id.is_none() {
            producer_id = init_producer(&shared).await;
            continue;
        }
        let batches = shared
            .accumulator
            .drain(Instant::now(), linger, producer_id);
        if !batches.is_empty() {
            dispatch(&shared, &mut slots, batches).await;
            continue;
        }
        let deadline = shared.accumulator.next_linger_deadline(linger);
        tokio::select! {
            _ = shared.wake_sender.notified() => {}
            _ = sleep_until(deadline) => {}
            _ = shared.shutdown.cancelled() => {}
        }
    }
    let aborted_bytes = shared.accumulator.abort_unsent(&ClientError::Closed);
    shared.buffer.release(aborted_bytes);
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Asks for a producer id; on failure waits a backoff and fails the batches
/// that are ready, so their senders learn why nothing is being written.
async fn init_producer(shared: &Shared) -> Option<u64> {
    let error = match shared
        .client
        .request(Request::InitProducer(InitProducerRequest {}))
        .await
    {
        Ok(Response::InitProducer(response)) => {
            shared.accumulator.reset_sequences();
            return Some(response.producer_id);
        }
        Ok(other) => ClientError::unexpected_response("InitProducer", &other),
        Err(error) => error,
    };
    tracing::warn!(%error, "InitProducer failed");
    if !error.is_retriable() {
        let aborted_bytes = shared.accumulator.abort_unsent(&error);
        shared.buffer.release(aborted_bytes);
    }
    tokio::select! {
        _ = tokio::time::sleep(Duration::from_millis(shared.config.retry_backoff_ms)) => {}
        _ = shared.shutdown.cancelled() => {}
    }
    None
}

/// Packs batches into requests per broker and starts each one once its
/// broker has a free in-flight slot.
async fn dispatch(shared: &Arc<Shared>, slots: &mut InFlightSlots, batches: Vec<SendableBatch>) {
    let max_in_flight = shared.config.max_in_flight.max(1);
    for (address, batches) in group_by_leader(shared, batches) {
        let semaphore = slots
            .entry(address.clone())
            .or_insert_with(|| Arc::new(Semaphore::new(max_in_flight)))
            .clone();
        for request in pack_requests(batches) {
            let permit = semaphore
                .clone()
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            tokio::spawn(send_with_retries(
                shared.clone(),
                address.clone(),
                request,
                permit,
            ));
        }
    }
}

/// Batches by the address of their partition's leader (any broker when
/// unknown, e.g. a topic about to be auto-created).
fn group_by_leader(
    shared: &Shared,
    batches: Vec<SendableBatch>,
) -> HashMap<String, Vec<SendableBatch>> {
    let mut groups: HashMap<String, Vec<SendableBatch>> = HashMap::new();
    for batch in batches {
        let address = shared
            .client
            .leader_address(&batch.topic, batch.partition)
            .unwrap_or_else(|| shared.client.preferred_address());
        groups.entry(address).or_default().push(batch);
    }
    groups
}

/// Splits batches into requests holding at most one batch per partition
/// and about `PRODUCE_REQUEST_BYTES_MAX` bytes (a bigger batch goes alone).
pub(super) fn pack_requests(batches: Vec<SendableBatch>) -> Vec<Vec<SendableBatch>> {
    let mut requests: Vec<(usize, Vec<SendableBatch>)> = Vec::new();
    for batch in batches {
        let size = batch.bytes.len();
        let fits = |(bytes, members): &(usize, Vec<SendableBatch>)| {
            (members.is_empty() || bytes + size <= PRODUCE_REQUEST_BYTES_MAX)
                && !members
                    .iter()
                    .any(|m| m.partition == batch.partition && m.topic == batch.topic)
        };
        match requests.iter_mut().find(|request| fits(request)) {
            Some((bytes, members)) => {
                *bytes += size;
                members.push(batch);
            }
            None => requests.push((size, vec![batch])),
        }
    }
    requests.into_iter().map(|(_, members)| members).collect()
}

/// Sends one request's batches and retries the ones that may succeed later;
/// the in-flight slot is held until every batch is complete.
async fn send_with_retries(
    shared: Arc<Shared>,
    address: String,
    batches: Vec<SendableBatch>,
    _permit: OwnedSemaphorePermit,
) {
    let mut retry = produce_once(&shared, &address, batches).await;
    while !retry.is_empty() {
        tokio::time::sleep(Duration::from_millis(shared.config.retry_backoff_ms)).await;
        let mut next = Vec::new();
        for (address, batches) in group_by_leader(&shared, retry) {
            for request in pack_requests(batches) {
                next.extend(produce_once(&shared, &address, request).await);
            }
        }
        retry = next;
    }
}

/// One `Produce` round trip; returns the batches to retry.
async fn produce_once(
    shared: &Shared,
    address: &str,
    batches: Vec<SendableBatch>,
) -> Vec<SendableBatch> {
    let request = Request::Produce(ProduceRequest {
        acks: shared.config.acks,
        timeout_ms: u32::try_from(shared.config.request_timeout_ms).unwrap_or(u32::MAX),
        partitions: batches
            .iter()
            .map(|batch| ProducePartition {
                topic: batch.topic.to_string(),
                partition: batch.partition,
                batch: batch.bytes.clone(),
            })
            .collect(),
    });
    let mut retry = Vec::new();
    let timeout = Duration::from_millis(shared.config.request_timeout_ms);
    match shared
        .client
        .request_to_within(address, request, timeout)
        .await
    {
        Ok(Response::Produce(_)) if shared.config.acks == Acks::None => {
            for batch in batches {
                finish(shared, batch, Ok(UNKNOWN_OFFSET));
            }
        }
        Ok(Response::Produce(response)) => {
            let refresh = handle_partitions(shared, batches, response.partitions, &mut retry);
            refresh_topics(shared, refresh).await;
        }
        Ok(other) => {
            let error = ClientError::unexpected_response("Produce", &other);
            for batch in batches {
                finish(shared, batch, Err(error.duplicate()));
            }
        }
        Err(error) => {
            tracing::debug!(address, %error, "produce request failed");
            // The broker may be gone (killed, partitioned): its partitions'
            // leaders may have moved, so re-read them before the retry.
            let topics = batches.iter().map(|batch| batch.topic.clone()).collect();
            for batch in batches {
                retry_or_fail(shared, batch, &error, &mut retry);
            }
            if !retry.is_empty() {
                refresh_topics(shared, topics).await;
            }
        }
    }
    retry
}

/// Matches each batch with its partition's answer. Returns the topics whose
/// metadata should be re-read (stale leaders, or a topic just auto-created).
fn handle_partitions(
    shared: &Shared,
    batches: Vec<SendableBatch>,
    answers: Vec<ProducePartitionResponse>,
    retry: &mut Vec<SendableBatch>,
) -> Vec<Arc<str>> {
    let mut answers: HashMap<(String, u32), ProducePartitionResponse> = answers
        .into_iter()
        .map(|answer| ((answer.topic.clone(), answer.partition), answer))
        .collect();
    let mut refresh = Vec::new();
    for batch in batches {
        let Some(answer) = answers.remove(&(batch.topic.to_string(), batch.partition)) else {
            let error = ClientError::Protocol(format!(
                "the Produce response has no answer for {}/{}",
                batch.topic, batch.partition
            ));
            finish(shared, batch, Err(error));
            continue;
        };
        let status = answer.status;
        if status.error.is_ok() {
            if shared.accumulator.topic_unresolved(&batch.topic) {
                refresh.push(batch.topic.clone());
            }
            finish(shared, batch, Ok(answer.base_offset));
            continue;
        }
        if needs_metadata_refresh(status.error) {
            if let Some(leader) = &status.leader_hint {
                shared
                    .client
                    .apply_leader_hint(&batch.topic, batch.partition, leader);
            }
            refresh.push(batch.topic.clone());
        }
        let error = ClientError::Api(citystream_protocol::ApiError::new(
            status.error,
            status.message,
        ));
        retry_or_fail(shared, batch, &error, retry);
    }
    refresh
}

/// Re-reads metadata of `topics` and hands new partition counts to the
/// accumulator.
async fn refresh_topics(shared: &Shared, mut topics: Vec<Arc<str>>) {
    if topics.is_empty() {
        return;
    }
    topics.sort();
    topics.dedup();
    let names: Vec<&str> = topics.iter().map(|topic| &**topic).collect();
    if let Err(error) = shared.client.refresh_metadata(&names).await {
        tracing::debug!(%error, "metadata refresh failed");
        return;
    }
    for topic in names {
        let count = shared.client.cached_partition_count(topic);
        if count.is_some() {
            shared.accumulator.add_topic(topic, count);
        }
    }
}

/// Queues `batch` for another attempt if `error` allows it, else fails it.
fn retry_or_fail(
    shared: &Shared,
    mut batch: SendableBatch,
    error: &ClientError,
    retry: &mut Vec<SendableBatch>,
) {
    let retriable = error.is_retriable()
        || error
            .code()
            .is_some_and(|code| code == ErrorCode::UNKNOWN_TOPIC || needs_metadata_refresh(code));
    if retriable && batch.attempts < shared.config.retries && !shared.shutdown.is_cancelled() {
        batch.attempts += 1;
        retry.push(batch);
        return;
    }
    finish(shared, batch, Err(error.duplicate()));
}

/// Completes a batch: frees its partition and buffer bytes and resolves its
/// records' futures.
fn finish(shared: &Shared, batch: SendableBatch, outcome: Result<u64, ClientError>) {
    if let Err(error) = &outcome
        && let Some(code @ (ErrorCode::OUT_OF_ORDER_SEQUENCE | ErrorCode::UNKNOWN_PRODUCER)) =
            error.code()
    {
        tracing::warn!(topic = %batch.topic, partition = batch.partition, %code,
            "the broker refused this producer's sequence; asking for a new producer id");
        shared.producer_id_stale.store(true, Ordering::Release);
    }
    // The broker did not write a batch it answered with an error code, so
    // the next batch may reuse its sequence numbers; after I/O errors or
    // timeouts it may have, so the sequence stays consumed.
    let rewind_sequence = matches!(outcome, Err(ClientError::Api(_)));
    shared.accumulator.batch_done(&batch, rewind_sequence);
    shared.buffer.release(batch_buffer_bytes(&batch));
    batch.completion.complete(outcome);
    shared.wake_sender.notify_one();
}

/// The bytes `send` accounted for this batch's records.
fn batch_buffer_bytes(batch: &SendableBatch) -> usize {
    batch.bytes.len() - citystream_record::BATCH_HEADER_LEN
}
