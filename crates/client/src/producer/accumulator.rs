//! The producer's record accumulator: one open [`BatchBuilder`] per
//! partition, sealed when it reaches `batch_bytes` or has lingered
//! `linger_ms`, then queued (FIFO) for the sender. It also owns per-topic
//! partition choice for records without an explicit partition (key hash, or
//! the sticky partition that moves on after each sealed batch), and each
//! partition's [`Lane`] (what is in flight, what waits for a re-send,
//! idempotent sequences: the rules that keep order, in `lane.rs`).
//!
//! It is synchronous and does no I/O; it reads tokio's clock (only when a
//! batch opens or lingers), so it is tested on a paused clock without
//! sockets. It does not send or count buffer bytes.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use citystream_record::{BATCH_HEADER_LEN, BatchBuilder, PushError, partition_for_key};
use parking_lot::Mutex;
use tokio::time::Instant;

pub(crate) use super::batch::SendableBatch;
use super::lane::{Blocked, Failure, Lane, LanePolicy};
use crate::ClientError;
use crate::producer::delivery::{BatchCompletion, DeliveryFuture};

/// Bytes a record adds to a batch besides key, value and headers.
const RECORD_OVERHEAD_BYTES: usize = 4 + 4 + 4 + 4 + 4 + 2;
/// Largest buffer a new batch allocates up front. Up to it, a batch gets
/// its whole `batch_bytes` at once: growing by doubling would copy every
/// batch about once more and touch fresh pages on each step.
const BATCH_PREALLOCATED_BYTES_MAX: usize = 1024 * 1024;

/// How the partition of a record is chosen.
#[derive(Debug, Clone, Copy)]
pub(crate) enum PartitionChoice<'a> {
    Explicit(u32),
    Key(&'a [u8]),
    Sticky,
}

/// One record to append, borrowed from the caller.
pub(crate) struct RecordRef<'a> {
    pub(crate) timestamp_ms: i64,
    pub(crate) key: Option<&'a [u8]>,
    /// `None`: a tombstone (a null value).
    pub(crate) value: Option<&'a [u8]>,
    pub(crate) headers: &'a [(&'a str, &'a [u8])],
    /// The sender wants its outcome: `append` makes a delivery future.
    pub(crate) tracked: bool,
}

impl RecordRef<'_> {
    /// Encoded size, used for batch sealing and buffer accounting.
    pub(crate) fn size_bytes(&self) -> usize {
        let headers: usize = self
            .headers
            .iter()
            .map(|(n, v)| 6 + n.len() + v.len())
            .sum();
        let value = self.value.map_or(0, <[u8]>::len);
        RECORD_OVERHEAD_BYTES + self.key.map_or(0, <[u8]>::len) + value + headers
    }
}

/// What `append` did.
pub(crate) enum Appended {
    /// The topic's partition count is not known yet: call
    /// [`Accumulator::add_topic`] and append again.
    UnknownTopic,
    Queued {
        /// `None` for a record that is not tracked.
        delivery: Option<DeliveryFuture>,
        /// A batch was opened (a new linger deadline) or sealed (ready to go).
        wake_sender: bool,
    },
}

/// What the sender gets from [`Accumulator::drain`].
#[derive(Debug, Default)]
pub(crate) struct Drained {
    /// Batches to send now, with their destination.
    pub(crate) batches: Vec<(Arc<str>, SendableBatch)>,
    /// A lane waits for a producer id other than the current one.
    pub(crate) needs_producer_id: bool,
}

struct OpenBatch {
    builder: BatchBuilder,
    completion: Arc<BatchCompletion>,
    created_at: Instant,
    base_timestamp_ms: i64,
}

impl OpenBatch {
    fn new(
        capacity: usize,
        completion: Arc<BatchCompletion>,
        first: &RecordRef<'_>,
        now: Instant,
    ) -> OpenBatch {
        OpenBatch {
            builder: BatchBuilder::with_capacity(capacity),
            completion,
            created_at: now,
            base_timestamp_ms: first.timestamp_ms,
        }
    }

    /// Whether `record` may join this batch: it stays under `batch_bytes`
    /// (a lone oversize record still gets a batch of its own) and its
    /// timestamp delta fits the record format's `i32`.
    fn fits(&self, record: &RecordRef<'_>, batch_bytes: usize) -> bool {
        let delta_ms = record.timestamp_ms.wrapping_sub(self.base_timestamp_ms);
        self.builder.size_bytes() + record.size_bytes() <= batch_bytes
            && i32::try_from(delta_ms).is_ok()
    }
}

struct SealedBatch {
    topic: Arc<str>,
    partition: u32,
    builder: BatchBuilder,
    completion: Arc<BatchCompletion>,
    created_at: Instant,
}

#[derive(Default)]
struct PartitionState {
    open: Option<OpenBatch>,
    lane: Lane,
}

struct TopicState {
    name: Arc<str>,
    /// `None`: the topic did not exist when looked up (it may be
    /// auto-created); records go to partition 0 until it is known.
    partition_count: Option<u32>,
    sticky_partition: u32,
    partitions: HashMap<u32, PartitionState>,
}

impl TopicState {
    fn choose(&self, choice: PartitionChoice<'_>) -> Result<u32, ClientError> {
        let Some(count) = self.partition_count else {
            return Ok(match choice {
                PartitionChoice::Explicit(partition) => partition,
                _ => 0,
            });
        };
        match choice {
            PartitionChoice::Explicit(partition) if partition < count => Ok(partition),
            PartitionChoice::Explicit(partition) => Err(ClientError::InvalidArgument(format!(
                "topic {:?} has {count} partitions, there is no partition {partition}",
                self.name
            ))),
            PartitionChoice::Key(key) => Ok(partition_for_key(key, count)),
            PartitionChoice::Sticky => Ok(self.sticky_partition % count),
        }
    }

    /// Moves the sticky partition on once its batch is sealed.
    fn sealed(&mut self, partition: u32) {
        if let Some(count) = self.partition_count
            && partition == self.sticky_partition % count
        {
            self.sticky_partition = (partition + 1) % count;
        }
    }
}

struct State {
    topics: HashMap<String, TopicState>,
    ready: VecDeque<SealedBatch>,
    /// Partitions whose lane holds batches waiting for a re-send.
    retrying: HashSet<(Arc<str>, u32)>,
    /// The producer id lanes adopt (idempotent producers).
    producer_id: Option<u64>,
    /// Batches not yet completed, for `flush`.
    incomplete: BTreeMap<u64, Arc<BatchCompletion>>,
    next_batch_id: u64,
    /// Where new topics start their sticky partition (spreads producers).
    sticky_seed: u32,
}

/// Per-partition open batches and the queue of sealed ones; see the module doc.
pub(crate) struct Accumulator {
    batch_bytes: usize,
    policy: LanePolicy,
    state: Mutex<State>,
}

impl Accumulator {
    pub(crate) fn new(batch_bytes: usize, policy: LanePolicy, sticky_seed: u32) -> Accumulator {
        Accumulator {
            batch_bytes: batch_bytes.max(1),
            policy,
            state: Mutex::new(State {
                topics: HashMap::new(),
                ready: VecDeque::new(),
                retrying: HashSet::new(),
                producer_id: None,
                incomplete: BTreeMap::new(),
                next_batch_id: 0,
                sticky_seed,
            }),
        }
    }

    /// Records `topic`'s partition count (`None`: the topic does not exist yet).
    pub(crate) fn add_topic(&self, topic: &str, partition_count: Option<u32>) {
        let mut state = self.state.lock();
        let seed = state.sticky_seed;
        let entry = state
            .topics
            .entry(topic.to_string())
            .or_insert_with(|| TopicState {
                name: Arc::from(topic),
                partition_count: None,
                sticky_partition: seed,
                partitions: HashMap::new(),
            });
        entry.partition_count = partition_count.filter(|count| *count > 0);
    }

    /// Whether records for `topic` still go to partition 0 for want of metadata.
    pub(crate) fn topic_unresolved(&self, topic: &str) -> bool {
        let state = self.state.lock();
        state
            .topics
            .get(topic)
            .is_some_and(|t| t.partition_count.is_none())
    }

    /// Appends one record to its partition's open batch.
    pub(crate) fn append(
        &self,
        topic: &str,
        choice: PartitionChoice<'_>,
        record: &RecordRef<'_>,
    ) -> Result<Appended, ClientError> {
        self.append_locked(&mut self.state.lock(), topic, choice, record)
    }

    /// Appends records in order under one lock (a burst of one protocol
    /// connection's messages): `appended` gets each outcome and says
    /// whether to go on. The lock, which the sender and every other
    /// appender share, is taken once instead of once per record.
    pub(crate) fn append_each<'r>(
        &self,
        records: impl IntoIterator<Item = (&'r str, PartitionChoice<'r>, RecordRef<'r>)>,
        mut appended: impl FnMut(Result<Appended, ClientError>) -> bool,
    ) {
        let mut guard = self.state.lock();
        for (topic, choice, record) in records {
            if !appended(self.append_locked(&mut guard, topic, choice, &record)) {
                return;
            }
        }
    }

    fn append_locked(
        &self,
        state: &mut State,
        topic: &str,
        choice: PartitionChoice<'_>,
        record: &RecordRef<'_>,
    ) -> Result<Appended, ClientError> {
        let Some(topic_state) = state.topics.get_mut(topic) else {
            return Ok(Appended::UnknownTopic);
        };
        let partition = topic_state.choose(choice)?;
        let partition_state = topic_state.partitions.entry(partition).or_default();
        let mut wake_sender = false;
        if let Some(open) = partition_state
            .open
            .take_if(|open| !open.fits(record, self.batch_bytes))
        {
            seal(&mut state.ready, topic_state, partition, open);
            wake_sender = true;
        }
        let partition_state = topic_state.partitions.entry(partition).or_default();
        if partition_state.open.is_none() {
            let id = state.next_batch_id;
            state.next_batch_id += 1;
            let completion = Arc::new(BatchCompletion::new(
                id,
                topic_state.name.clone(),
                partition,
            ));
            state.incomplete.insert(id, completion.clone());
            let capacity =
                (self.batch_bytes.max(record.size_bytes())).min(BATCH_PREALLOCATED_BYTES_MAX);
            let open = OpenBatch::new(capacity, completion, record, Instant::now());
            partition_state.open = Some(open);
            wake_sender = true;
        }
        let open = partition_state.open.as_mut().expect("opened above");
        let index = open.builder.record_count();
        if let Err(error) = push(&mut open.builder, record) {
            if open.builder.is_empty() {
                let open = partition_state.open.take().expect("open");
                state.incomplete.remove(&open.completion.id);
            }
            return Err(error);
        }
        // An untracked record (an MQTT QoS 0 message) does not touch the
        // completion, which the sender and other senders' records share.
        let delivery = record
            .tracked
            .then(|| DeliveryFuture::new(open.completion.clone(), index));
        if open.builder.size_bytes() >= self.batch_bytes {
            let open = partition_state.open.take().expect("just pushed");
            seal(&mut state.ready, topic_state, partition, open);
            wake_sender = true;
        }
        Ok(Appended::Queued {
            delivery,
            wake_sender,
        })
    }

    /// Seals every open batch, whatever its age (`flush`).
    pub(crate) fn seal_all(&self) {
        self.seal_lingered(Instant::now(), Duration::ZERO);
    }

    /// Seals open batches older than `linger`.
    fn seal_lingered(&self, now: Instant, linger: Duration) {
        let mut guard = self.state.lock();
        let state = &mut *guard;
        for topic_state in state.topics.values_mut() {
            let expired: Vec<u32> = topic_state
                .partitions
                .iter()
                .filter(|(_, p)| {
                    p.open
                        .as_ref()
                        .is_some_and(|o| o.created_at + linger <= now)
                        && p.lane.has_room(&self.policy)
                })
                .map(|(partition, _)| *partition)
                .collect();
            for partition in expired {
                let partition_state = topic_state.partitions.get_mut(&partition).expect("listed");
                let open = partition_state.open.take().expect("listed as open");
                seal(&mut state.ready, topic_state, partition, open);
            }
        }
    }

    /// Seals lingered batches and takes every batch that may be sent now:
    /// first the re-sends of lanes whose turn it is, then sealed batches in
    /// FIFO order as their lanes allow (see `lane.rs`). `route` names the
    /// destination of a partition whose lane has nothing in flight.
    pub(crate) fn drain(
        &self,
        now: Instant,
        linger: Duration,
        route: &dyn Fn(&str, u32) -> Arc<str>,
    ) -> Drained {
        self.seal_lingered(now, linger);
        let mut guard = self.state.lock();
        let state = &mut *guard;
        let mut drained = Drained::default();
        let retrying: Vec<(Arc<str>, u32)> = state.retrying.iter().cloned().collect();
        for (topic, partition) in retrying {
            let lane = lane_mut(&mut state.topics, &topic, partition);
            let destination = route(&topic, partition);
            match lane.take_retries(&self.policy, state.producer_id, now, &destination) {
                Ok(batches) => {
                    drained
                        .batches
                        .extend(batches.into_iter().map(|b| (destination.clone(), b)));
                }
                Err(Blocked::NeedsProducerId) => drained.needs_producer_id = true,
                Err(Blocked::Waiting) => {}
            }
            if !lane.has_retries() {
                state.retrying.remove(&(topic, partition));
            }
        }
        let mut kept = VecDeque::new();
        while let Some(sealed) = state.ready.pop_front() {
            let lane = lane_mut(&mut state.topics, &sealed.topic, sealed.partition);
            match lane.take_new(&self.policy, state.producer_id) {
                Ok(()) => {
                    let destination = lane
                        .pinned_destination()
                        .cloned()
                        .unwrap_or_else(|| route(&sealed.topic, sealed.partition));
                    let batch = take_for_sending(sealed, lane, self.policy.idempotent);
                    lane.sent(&batch, &destination);
                    drained.batches.push((destination, batch));
                }
                Err(blocked) => {
                    drained.needs_producer_id |= blocked == Blocked::NeedsProducerId;
                    kept.push_back(sealed);
                }
            }
        }
        state.ready = kept;
        drained
    }

    /// When the oldest open batch will have lingered long enough, or a
    /// lane may re-send, whichever comes first.
    pub(crate) fn next_deadline(&self, linger: Duration) -> Option<Instant> {
        let state = self.state.lock();
        let partitions = state.topics.values().flat_map(|t| t.partitions.values());
        // A partition without room is woken by its next answer instead.
        let lingered = partitions
            .filter(|p| p.lane.has_room(&self.policy))
            .filter_map(|p| p.open.as_ref().map(|open| open.created_at + linger))
            .min();
        let retries = state
            .retrying
            .iter()
            .filter_map(|(topic, partition)| {
                lane_of(&state.topics, topic, *partition).and_then(Lane::retry_deadline)
            })
            .min();
        lingered.into_iter().chain(retries).min()
    }

    /// Topics with a partition waiting out a retry backoff at `now`.
    pub(crate) fn topics_backing_off(&self, now: Instant) -> Vec<Arc<str>> {
        let state = self.state.lock();
        let mut topics: Vec<Arc<str>> = state
            .retrying
            .iter()
            .filter(|(topic, partition)| {
                lane_of(&state.topics, topic, *partition).is_some_and(|l| l.backing_off(now))
            })
            .map(|(topic, _)| topic.clone())
            .collect();
        topics.sort();
        topics.dedup();
        topics
    }

    /// Whether batches wait to be sent (sealed, or for a re-send).
    pub(crate) fn has_unsent(&self) -> bool {
        let state = self.state.lock();
        !state.ready.is_empty() || !state.retrying.is_empty()
    }

    /// Sets the producer id lanes adopt from now on.
    pub(crate) fn set_producer_id(&self, producer_id: u64) {
        self.state.lock().producer_id = Some(producer_id);
    }

    /// `batch` was written at its base offset: completes it.
    pub(crate) fn written(&self, batch: &SendableBatch) {
        let mut state = self.state.lock();
        state.incomplete.remove(&batch.completion.id);
        if let Some(lane) = lane_of_mut(&mut state.topics, &batch.topic, batch.partition) {
            lane.written(batch);
        }
    }

    /// `batch` failed for good (see [`Failure`]).
    pub(crate) fn failed(&self, batch: &SendableBatch, failure: Failure) {
        let mut state = self.state.lock();
        state.incomplete.remove(&batch.completion.id);
        if let Some(lane) = lane_of_mut(&mut state.topics, &batch.topic, batch.partition) {
            lane.failed(batch, failure);
        }
    }

    /// Queues `batch` for a re-send after a retriable `error`.
    pub(crate) fn retry_later(&self, batch: SendableBatch, error: &ClientError, now: Instant) {
        let mut guard = self.state.lock();
        let state = &mut *guard;
        let key = (batch.topic.clone(), batch.partition);
        let lane = lane_mut(&mut state.topics, &key.0, key.1);
        lane.retry_later(batch, error, &self.policy, now);
        state.retrying.insert(key);
    }

    /// Removes every batch created before `created_before` that is not in
    /// flight: sealed ones never sent, and ones waiting for a re-send. The
    /// caller fails them (delivery timeout).
    pub(crate) fn expire(&self, created_before: Instant) -> Vec<SendableBatch> {
        let mut guard = self.state.lock();
        let state = &mut *guard;
        let mut expired = Vec::new();
        let retrying: Vec<(Arc<str>, u32)> = state.retrying.iter().cloned().collect();
        for (topic, partition) in retrying {
            let lane = lane_mut(&mut state.topics, &topic, partition);
            let batches = lane.expire(created_before);
            if !lane.has_retries() {
                state.retrying.remove(&(topic, partition));
            }
            expired.extend(batches);
        }
        let mut kept = VecDeque::new();
        while let Some(sealed) = state.ready.pop_front() {
            if sealed.created_at >= created_before {
                kept.push_back(sealed);
                continue;
            }
            let lane = lane_mut(&mut state.topics, &sealed.topic, sealed.partition);
            expired.push(take_for_sending(sealed, lane, false));
        }
        state.ready = kept;
        for batch in &expired {
            state.incomplete.remove(&batch.completion.id);
        }
        expired
    }

    /// Every batch not yet completed (open, sealed or in flight).
    pub(crate) fn incomplete(&self) -> Vec<Arc<BatchCompletion>> {
        self.state.lock().incomplete.values().cloned().collect()
    }

    /// Fails every batch not yet taken for sending; returns the record
    /// bytes they held (for the caller's buffer accounting).
    pub(crate) fn abort_unsent(&self, error: &ClientError) -> usize {
        let mut guard = self.state.lock();
        let state = &mut *guard;
        let mut aborted: Vec<(usize, Arc<BatchCompletion>)> = Vec::new();
        let unsent = |builder: BatchBuilder| builder.size_bytes() - BATCH_HEADER_LEN;
        aborted.extend(
            state
                .ready
                .drain(..)
                .map(|s| (unsent(s.builder), s.completion)),
        );
        for topic_state in state.topics.values_mut() {
            for partition_state in topic_state.partitions.values_mut() {
                if let Some(open) = partition_state.open.take() {
                    aborted.push((unsent(open.builder), open.completion));
                }
                let waiting = partition_state.lane.take_waiting();
                aborted.extend(
                    waiting
                        .into_iter()
                        .map(|b| (b.bytes.len() - BATCH_HEADER_LEN, b.completion)),
                );
            }
        }
        state.retrying.clear();
        let mut record_bytes = 0;
        for (bytes, completion) in aborted {
            record_bytes += bytes;
            state.incomplete.remove(&completion.id);
            completion.complete(Err(error.duplicate()));
        }
        record_bytes
    }
}

/// Moves an open batch to the ready queue; the sticky partition moves on.
fn seal(
    ready: &mut VecDeque<SealedBatch>,
    topic: &mut TopicState,
    partition: u32,
    open: OpenBatch,
) {
    topic.sealed(partition);
    if let Some(partition_state) = topic.partitions.get_mut(&partition) {
        partition_state.lane.sealed();
    }
    ready.push_back(SealedBatch {
        topic: topic.name.clone(),
        partition,
        builder: open.builder,
        completion: open.completion,
        created_at: open.created_at,
    });
}

fn lane_of<'a>(
    topics: &'a HashMap<String, TopicState>,
    topic: &str,
    partition: u32,
) -> Option<&'a Lane> {
    topics
        .get(topic)
        .and_then(|t| t.partitions.get(&partition))
        .map(|p| &p.lane)
}

fn lane_of_mut<'a>(
    topics: &'a mut HashMap<String, TopicState>,
    topic: &str,
    partition: u32,
) -> Option<&'a mut Lane> {
    topics
        .get_mut(topic)
        .and_then(|t| t.partitions.get_mut(&partition))
        .map(|p| &mut p.lane)
}

/// The lane of a partition that has batches (its state exists).
fn lane_mut<'a>(
    topics: &'a mut HashMap<String, TopicState>,
    topic: &str,
    partition: u32,
) -> &'a mut Lane {
    lane_of_mut(topics, topic, partition).expect("a partition with batches has a lane")
}

/// Encodes a sealed batch; an idempotent one gets its lane's next sequence
/// (the lane said it may go: [`Lane::take_new`]).
fn take_for_sending(sealed: SealedBatch, lane: &mut Lane, idempotent: bool) -> SendableBatch {
    lane.unqueued();
    let mut builder = sealed.builder;
    let record_count = builder.record_count();
    let (producer_id, base_sequence) = match idempotent {
        true => {
            let (producer_id, base_sequence) = lane.stamp_new(record_count);
            builder.set_producer(producer_id, base_sequence);
            (Some(producer_id), Some(base_sequence))
        }
        false => (None, None),
    };
    SendableBatch {
        topic: sealed.topic,
        partition: sealed.partition,
        bytes: builder.finish(),
        producer_id,
        base_sequence,
        ordinal: sealed.completion.id,
        completion: sealed.completion,
        attempts: 0,
        record_count,
        created_at: sealed.created_at,
        last_error: None,
    }
}

fn push(builder: &mut BatchBuilder, record: &RecordRef<'_>) -> Result<(), ClientError> {
    let (timestamp_ms, key, headers) = (record.timestamp_ms, record.key, record.headers);
    match record.value {
        Some(value) => builder.push(timestamp_ms, key, value, headers),
        None => builder.push_tombstone(timestamp_ms, key, headers),
    }
    .map_err(|error: PushError| ClientError::InvalidArgument(error.to_string()))
}

#[cfg(test)]
mod tests;
