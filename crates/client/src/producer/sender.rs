//! The producer's sender task. It takes the batches the accumulator lets go
//! (sealed ones as their partition's lane allows, and re-sends; when woken,
//! when a batch has lingered, or when a re-send's backoff is over), packs
//! each destination's batches into `Produce` requests (one batch per
//! partition per request, bounded bytes) and hands them, in order, to that
//! destination's pipe.
//!
//! A pipe is a task per broker address that queues its requests on the
//! connection one after another, so they reach the broker in the order the
//! sender made them, and awaits each answer on a task of its own
//! ([`settle`]). Per batch, an answer means: written (complete it), a
//! retriable failure (back to its lane after the metadata was re-read, to
//! be re-sent in order; see `lane.rs`), or a failure for good. Retries go on
//! until the batch is `delivery_timeout_ms` old; then it fails with an
//! error naming the partition and how long it was tried.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use citystream_protocol::{
    Acks, ErrorCode, InitProducerRequest, ProducePartition, ProducePartitionResponse,
    ProduceRequest, Request, Response,
};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::Shared;
use super::accumulator::SendableBatch;
use super::delivery::UNKNOWN_OFFSET;
use super::lane::Failure;
use crate::ClientError;
use crate::connection::PendingResponse;
use crate::error::needs_metadata_refresh;

/// Upper bound on the bytes of batches packed into one `Produce` request.
const PRODUCE_REQUEST_BYTES_MAX: usize = 4 * 1024 * 1024;
/// Requests waiting in one destination's pipe before the sender waits.
const PIPE_REQUESTS_MAX: usize = 64;
/// Attempts at a topic or partition the broker does not know (one just
/// created may not have reached every node yet) before the batch fails.
const UNKNOWN_TOPIC_ATTEMPTS_MAX: u32 = 5;
/// How often unsent batches are checked against the delivery timeout.
const EXPIRY_CHECK_INTERVAL: Duration = Duration::from_millis(100);
/// While partitions wait out a retry backoff, their metadata is re-read
/// this often, so a new leader is tried as soon as it is known.
const BACKOFF_METADATA_POLL: Duration = Duration::from_millis(100);

/// The request queue of each destination.
type Pipes = HashMap<Arc<str>, mpsc::Sender<Vec<SendableBatch>>>;

/// Runs until shutdown; then fails whatever was never sent.
pub(super) async fn run(shared: Arc<Shared>) {
    let linger = Duration::from_millis(shared.config.linger_ms);
    let mut pipes = Pipes::new();
    let mut needs_producer_id = shared.config.idempotent;
    let mut next_expiry_check = Instant::now();
    let mut next_metadata_poll = Instant::now();
    while !shared.shutdown.is_cancelled() {
        let now = Instant::now();
        if now >= next_expiry_check {
            expire(&shared, now);
            next_expiry_check = now + EXPIRY_CHECK_INTERVAL;
        }
        let backing_off = shared.accumulator.topics_backing_off(now);
        if !backing_off.is_empty() && now >= next_metadata_poll {
            refresh_topics(&shared, backing_off.clone()).await;
            next_metadata_poll = Instant::now() + BACKOFF_METADATA_POLL;
        }
        let now = Instant::now();
        if needs_producer_id {
            needs_producer_id = !init_producer(&shared).await;
            continue;
        }
        let route = |topic: &str, partition: u32| route(&shared, topic, partition);
        let drained = shared.accumulator.drain(now, linger, &route);
        needs_producer_id = drained.needs_producer_id;
        if !drained.batches.is_empty() {
            dispatch(&shared, &mut pipes, drained.batches).await;
            continue;
        }
        if needs_producer_id {
            continue;
        }
        let mut deadline = shared.accumulator.next_deadline(linger);
        let mut earliest = |at: Instant| deadline = Some(deadline.map_or(at, |d| d.min(at)));
        if shared.accumulator.has_unsent() {
            earliest(next_expiry_check);
        }
        if !backing_off.is_empty() {
            earliest(next_metadata_poll);
        }
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

/// The address of a partition's leader (any broker when unknown, e.g. a
/// topic about to be auto-created, or no leader elected yet).
fn route(shared: &Shared, topic: &str, partition: u32) -> Arc<str> {
    let address = shared
        .client
        .leader_address(topic, partition)
        .unwrap_or_else(|| shared.client.preferred_address());
    Arc::from(address)
}

/// Fails the batches that are past the delivery timeout and not in flight.
fn expire(shared: &Shared, now: Instant) {
    let timeout = Duration::from_millis(shared.config.delivery_timeout_ms);
    let Some(created_before) = now.checked_sub(timeout) else {
        return;
    };
    // Their lanes have already noted how they ended (`Accumulator::expire`).
    for batch in shared.accumulator.expire(created_before) {
        let error = delivery_timeout(shared, &batch, now, None);
        finish(shared, batch, Err(error));
    }
}

/// Asks for a producer id and gives it to the lanes. On failure waits a
/// backoff; a failure that will not go away fails the unsent batches, so
/// their senders learn why nothing is being written.
async fn init_producer(shared: &Shared) -> bool {
    let error = match shared
        .client
        .request(Request::InitProducer(InitProducerRequest {}))
        .await
    {
        Ok(Response::InitProducer(response)) => {
            shared.accumulator.set_producer_id(response.producer_id);
            return true;
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
    false
}

/// Packs each destination's batches into requests and queues them on its
/// pipe, in order.
async fn dispatch(
    shared: &Arc<Shared>,
    pipes: &mut Pipes,
    batches: Vec<(Arc<str>, SendableBatch)>,
) {
    let mut by_destination: Vec<(Arc<str>, Vec<SendableBatch>)> = Vec::new();
    for (destination, batch) in batches {
        match by_destination.iter_mut().find(|(d, _)| *d == destination) {
            Some((_, list)) => list.push(batch),
            None => by_destination.push((destination, vec![batch])),
        }
    }
    for (destination, batches) in by_destination {
        let pipe = pipes
            .entry(destination.clone())
            .or_insert_with(|| start_pipe(shared.clone(), destination.clone()));
        for request in pack_requests(batches) {
            if let Err(mpsc::error::SendError(request)) = pipe.send(request).await {
                // The pipe only stops at shutdown.
                for batch in request {
                    finish(shared, batch, Err(ClientError::Closed));
                }
            }
        }
    }
}

/// Splits one destination's batches into requests holding at most one
/// batch per partition and about `PRODUCE_REQUEST_BYTES_MAX` bytes (a
/// bigger batch goes alone). A partition's batches land in requests in
/// their order: each goes to a request after the one holding the previous.
pub(super) fn pack_requests(batches: Vec<SendableBatch>) -> Vec<Vec<SendableBatch>> {
    let mut requests: Vec<(usize, Vec<SendableBatch>)> = Vec::new();
    let mut last_request: HashMap<(Arc<str>, u32), usize> = HashMap::new();
    for batch in batches {
        let size = batch.bytes.len();
        let key = (batch.topic.clone(), batch.partition);
        let first_allowed = last_request.get(&key).map_or(0, |index| index + 1);
        let fits = |(bytes, members): &(usize, Vec<SendableBatch>)| {
            members.is_empty() || bytes + size <= PRODUCE_REQUEST_BYTES_MAX
        };
        let index = match (first_allowed..requests.len()).find(|&i| fits(&requests[i])) {
            Some(index) => index,
            None => {
                requests.push((0, Vec::new()));
                requests.len() - 1
            }
        };
        requests[index].0 += size;
        requests[index].1.push(batch);
        last_request.insert(key, index);
    }
    requests.into_iter().map(|(_, members)| members).collect()
}

fn start_pipe(shared: Arc<Shared>, address: Arc<str>) -> mpsc::Sender<Vec<SendableBatch>> {
    let (sender, receiver) = mpsc::channel(PIPE_REQUESTS_MAX);
    tokio::spawn(run_pipe(shared, address, receiver));
    sender
}

/// Queues each request on the destination's connection in order; the
/// answers are awaited on tasks of their own. If the connection cannot be
/// had, the request and every one queued behind it fail alike, so none of
/// them overtakes another on a later connection.
async fn run_pipe(
    shared: Arc<Shared>,
    address: Arc<str>,
    mut requests: mpsc::Receiver<Vec<SendableBatch>>,
) {
    while let Some(batches) = requests.recv().await {
        match queue_request(&shared, &address, &batches).await {
            Ok(pending) => {
                let shared = shared.clone();
                let address = address.clone();
                tokio::spawn(async move {
                    let answer = pending.await;
                    settle(&shared, &address, batches, answer).await;
                });
            }
            Err(error) => {
                let mut failed = batches;
                while let Ok(more) = requests.try_recv() {
                    failed.extend(more);
                }
                settle(&shared, &address, failed, Err(error)).await;
            }
        }
    }
}

async fn queue_request(
    shared: &Shared,
    address: &str,
    batches: &[SendableBatch],
) -> Result<PendingResponse, ClientError> {
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
    let timeout = Duration::from_millis(shared.config.request_timeout_ms);
    let connection = shared.client.connection(address).await?;
    connection.queue(request, timeout).await
}

/// What one batch's answer means.
enum Verdict {
    Written(u64),
    Retry(ClientError),
    Fail(ClientError, Failure),
}

/// Handles the answer to one request (or why there was none), batch by batch.
async fn settle(
    shared: &Shared,
    address: &str,
    batches: Vec<SendableBatch>,
    answer: Result<Response, ClientError>,
) {
    let outcomes = match answer {
        Ok(Response::Produce(_)) if shared.config.acks == Acks::None => batches
            .into_iter()
            .map(|batch| (batch, Ok(UNKNOWN_OFFSET)))
            .collect(),
        Ok(Response::Produce(response)) => match_answers(shared, batches, response.partitions),
        Ok(other) => {
            let error = ClientError::unexpected_response("Produce", &other);
            batches
                .into_iter()
                .map(|batch| (batch, Err(error.duplicate())))
                .collect()
        }
        Err(error) => {
            tracing::debug!(address, %error, "produce request failed");
            batches
                .into_iter()
                .map(|batch| (batch, Err(error.duplicate())))
                .collect()
        }
    };
    let now = Instant::now();
    let mut retries = Vec::new();
    let mut refresh = Vec::new();
    for (batch, outcome) in outcomes {
        match judge(shared, &batch, outcome, now) {
            Verdict::Written(base_offset) => {
                if shared.accumulator.topic_unresolved(&batch.topic) {
                    // It went to partition 0 of a topic that did not exist yet.
                    refresh.push(batch.topic.clone());
                }
                shared.accumulator.written(&batch);
                finish(shared, batch, Ok(base_offset));
            }
            Verdict::Fail(error, failure) => {
                shared.accumulator.failed(&batch, failure);
                finish(shared, batch, Err(error));
            }
            Verdict::Retry(error) => {
                if error.is_transport() || error.code().is_some_and(needs_metadata_refresh) {
                    refresh.push(batch.topic.clone());
                }
                retries.push((batch, error));
            }
        }
    }
    // The leaders may have moved: re-read them before the re-send.
    refresh_topics(shared, refresh).await;
    for (mut batch, error) in retries {
        batch.attempts += 1;
        batch.last_error = Some(error.to_string());
        shared.accumulator.retry_later(batch, &error, now);
    }
    shared.wake_sender.notify_one();
}

/// Pairs each batch with its partition's answer; follows leader hints.
fn match_answers(
    shared: &Shared,
    batches: Vec<SendableBatch>,
    answers: Vec<ProducePartitionResponse>,
) -> Vec<(SendableBatch, Result<u64, ClientError>)> {
    let mut answers: HashMap<(String, u32), ProducePartitionResponse> = answers
        .into_iter()
        .map(|answer| ((answer.topic.clone(), answer.partition), answer))
        .collect();
    let mut outcomes = Vec::with_capacity(batches.len());
    for batch in batches {
        let outcome = match answers.remove(&(batch.topic.to_string(), batch.partition)) {
            None => Err(ClientError::Protocol(format!(
                "the Produce response has no answer for {}/{}",
                batch.topic, batch.partition
            ))),
            Some(answer) if answer.status.error.is_ok() => Ok(answer.base_offset),
            Some(answer) => {
                let status = answer.status;
                if let Some(leader) = &status.leader_hint {
                    shared
                        .client
                        .apply_leader_hint(&batch.topic, batch.partition, leader);
                }
                Err(ClientError::Api(citystream_protocol::ApiError::new(
                    status.error,
                    status.message,
                )))
            }
        };
        outcomes.push((batch, outcome));
    }
    outcomes
}

/// Decides what a batch's outcome means (see [`Verdict`]).
fn judge(
    shared: &Shared,
    batch: &SendableBatch,
    outcome: Result<u64, ClientError>,
    now: Instant,
) -> Verdict {
    let error = match outcome {
        Ok(base_offset) => return Verdict::Written(base_offset),
        Err(error) => error,
    };
    let code = error.code();
    if let Some(ErrorCode::OUT_OF_ORDER_SEQUENCE | ErrorCode::UNKNOWN_PRODUCER) = code {
        return Verdict::Fail(error, Failure::SequenceMismatch);
    }
    let unknown_topic = matches!(
        code,
        Some(ErrorCode::UNKNOWN_TOPIC | ErrorCode::UNKNOWN_PARTITION)
    );
    let retriable = match unknown_topic {
        true => batch.attempts + 1 < UNKNOWN_TOPIC_ATTEMPTS_MAX,
        false => error.is_retriable(),
    };
    if !retriable || shared.shutdown.is_cancelled() {
        let failure = match error {
            // An answered refusal wrote nothing; a lost answer may have.
            ClientError::Api(_) if !error.is_retriable() => Failure::NotWritten,
            _ => Failure::Unknown,
        };
        return Verdict::Fail(error, failure);
    }
    let timeout = Duration::from_millis(shared.config.delivery_timeout_ms);
    if now.duration_since(batch.created_at) >= timeout {
        let error = delivery_timeout(shared, batch, now, Some(&error));
        return Verdict::Fail(error, Failure::Unknown);
    }
    Verdict::Retry(error)
}

/// The error of a batch given up on at `now`.
fn delivery_timeout(
    shared: &Shared,
    batch: &SendableBatch,
    now: Instant,
    last_error: Option<&ClientError>,
) -> ClientError {
    ClientError::DeliveryTimeout {
        topic: batch.topic.to_string(),
        partition: batch.partition,
        waited_ms: now.duration_since(batch.created_at).as_millis() as u64,
        attempts: batch.attempts + u32::from(last_error.is_some()),
        delivery_timeout_ms: shared.config.delivery_timeout_ms,
        last_error: match last_error {
            Some(error) => error.to_string(),
            None => batch
                .last_error
                .clone()
                .unwrap_or_else(|| "it was never sent".to_owned()),
        },
    }
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

/// Completes a batch whose lane has been told: frees its buffer bytes and
/// resolves its records' futures.
fn finish(shared: &Shared, batch: SendableBatch, outcome: Result<u64, ClientError>) {
    shared.buffer.release(batch_buffer_bytes(&batch));
    batch.completion.complete(outcome);
    shared.wake_sender.notify_one();
}

/// The bytes `send` accounted for this batch's records.
fn batch_buffer_bytes(batch: &SendableBatch) -> usize {
    batch.bytes.len() - citystream_record::BATCH_HEADER_LEN
}
