//! The producer's record accumulator: one open [`BatchBuilder`] per
//! partition, sealed when it reaches `batch_bytes` or has lingered
//! `linger_ms`, then queued (FIFO) for the sender. It also owns per-topic
//! partition choice for records without an explicit partition (key hash, or
//! the sticky partition that moves on after each sealed batch), and, for an
//! idempotent producer, per-partition sequence numbers and the rule that
//! keeps order: at most one batch per partition in flight.
//!
//! It is synchronous and does no I/O; it reads tokio's clock (only when a
//! batch opens or lingers), so it is tested on a paused clock without sockets. It does not send, retry or count buffer bytes.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use citystream_record::{BATCH_HEADER_LEN, BatchBuilder, PushError, partition_for_key};
use parking_lot::Mutex;
use tokio::time::Instant;

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
    pub(crate) value: &'a [u8],
    pub(crate) headers: &'a [(&'a str, &'a [u8])],
}

impl RecordRef<'_> {
    /// Encoded size, used for batch sealing and buffer accounting.
    pub(crate) fn size_bytes(&self) -> usize {
        let headers: usize = self
            .headers
            .iter()
            .map(|(n, v)| 6 + n.len() + v.len())
            .sum();
        RECORD_OVERHEAD_BYTES + self.key.map_or(0, <[u8]>::len) + self.value.len() + headers
    }
}

/// What `append` did.
pub(crate) enum Appended {
    /// The topic's partition count is not known yet: call
    /// [`Accumulator::add_topic`] and append again.
    UnknownTopic,
    Queued {
        delivery: DeliveryFuture,
        /// A batch was opened (a new linger deadline) or sealed (ready to go).
        wake_sender: bool,
    },
}

/// A batch taken for sending: encoded, with its sequence fixed for retries.
#[derive(Debug)]
pub(crate) struct SendableBatch {
    pub(crate) topic: Arc<str>,
    pub(crate) partition: u32,
    pub(crate) bytes: Bytes,
    /// Sequence of the first record, for an idempotent producer.
    pub(crate) base_sequence: Option<u32>,
    pub(crate) completion: Arc<BatchCompletion>,
    /// Sends that failed retriably so far.
    pub(crate) attempts: u32,
    pub(crate) record_count: u32,
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
}

#[derive(Default)]
struct PartitionState {
    open: Option<OpenBatch>,
    /// Sequence the next batch gets (idempotent producers only).
    next_sequence: u32,
    /// A batch of this partition is being sent (idempotent producers only).
    in_flight: bool,
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
    /// Batches not yet completed, for `flush`.
    incomplete: BTreeMap<u64, Arc<BatchCompletion>>,
    next_batch_id: u64,
    /// Where new topics start their sticky partition (spreads producers).
    sticky_seed: u32,
}

/// Per-partition open batches and the queue of sealed ones; see the module doc.
pub(crate) struct Accumulator {
    batch_bytes: usize,
    idempotent: bool,
    state: Mutex<State>,
}

impl Accumulator {
    pub(crate) fn new(batch_bytes: usize, idempotent: bool, sticky_seed: u32) -> Accumulator {
        Accumulator {
            batch_bytes: batch_bytes.max(1),
            idempotent,
            state: Mutex::new(State {
                topics: HashMap::new(),
                ready: VecDeque::new(),
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
        let mut guard = self.state.lock();
        let state = &mut *guard;
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
        let delivery = DeliveryFuture::new(open.completion.clone(), index);
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

    /// Seals lingered batches and takes every sealed batch that may be sent
    /// now, encoded. An idempotent producer (`producer_id` set) takes at
    /// most one batch per partition and only while none is in flight, and
    /// fixes each taken batch's sequence numbers.
    pub(crate) fn drain(
        &self,
        now: Instant,
        linger: Duration,
        producer_id: Option<u64>,
    ) -> Vec<SendableBatch> {
        self.seal_lingered(now, linger);
        let mut guard = self.state.lock();
        let state = &mut *guard;
        let mut taken = Vec::new();
        let mut kept = VecDeque::new();
        while let Some(sealed) = state.ready.pop_front() {
            let partition_state = state
                .topics
                .get_mut(&*sealed.topic)
                .and_then(|t| t.partitions.get_mut(&sealed.partition))
                .expect("a sealed batch's partition state exists");
            if self.idempotent && partition_state.in_flight {
                kept.push_back(sealed);
                continue;
            }
            taken.push(take_for_sending(
                sealed,
                partition_state,
                producer_id,
                self.idempotent,
            ));
        }
        state.ready = kept;
        taken
    }

    /// When the oldest open batch will have lingered long enough.
    pub(crate) fn next_linger_deadline(&self, linger: Duration) -> Option<Instant> {
        let state = self.state.lock();
        state
            .topics
            .values()
            .flat_map(|t| t.partitions.values())
            .filter_map(|p| p.open.as_ref().map(|open| open.created_at + linger))
            .min()
    }

    /// Forgets a completed batch and unblocks its partition. After a
    /// definite failure of an idempotent batch, its sequence numbers are
    /// handed to the next batch (`rewind_sequence`), as the broker never
    /// wrote them.
    pub(crate) fn batch_done(&self, batch: &SendableBatch, rewind_sequence: bool) {
        let mut state = self.state.lock();
        state.incomplete.remove(&batch.completion.id);
        let Some(partition_state) = state
            .topics
            .get_mut(&*batch.topic)
            .and_then(|t| t.partitions.get_mut(&batch.partition))
        else {
            return;
        };
        partition_state.in_flight = false;
        // Only while no later batch took sequences (and no new producer id
        // restarted them): otherwise rewinding would reuse live numbers.
        if let (true, Some(base_sequence)) = (rewind_sequence, batch.base_sequence)
            && partition_state.next_sequence == base_sequence.wrapping_add(batch.record_count)
        {
            partition_state.next_sequence = base_sequence;
        }
    }

    /// Restarts every partition's sequence at 0 (for a fresh producer id).
    pub(crate) fn reset_sequences(&self) {
        let mut state = self.state.lock();
        for topic_state in state.topics.values_mut() {
            for partition_state in topic_state.partitions.values_mut() {
                partition_state.next_sequence = 0;
            }
        }
    }

    /// Every batch not yet completed (open, sealed or in flight).
    pub(crate) fn incomplete(&self) -> Vec<Arc<BatchCompletion>> {
        self.state.lock().incomplete.values().cloned().collect()
    }

    /// Fails every batch not yet taken for sending; returns the record
    /// bytes they held (for the caller's buffer accounting).
    pub(crate) fn abort_unsent(&self, error: &ClientError) -> usize {
        let mut state = self.state.lock();
        let mut aborted: Vec<(BatchBuilder, Arc<BatchCompletion>)> = Vec::new();
        aborted.extend(state.ready.drain(..).map(|s| (s.builder, s.completion)));
        for topic_state in state.topics.values_mut() {
            for partition_state in topic_state.partitions.values_mut() {
                aborted.extend(
                    partition_state
                        .open
                        .take()
                        .map(|o| (o.builder, o.completion)),
                );
            }
        }
        let mut record_bytes = 0;
        for (builder, completion) in aborted {
            record_bytes += builder.size_bytes() - BATCH_HEADER_LEN;
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
    ready.push_back(SealedBatch {
        topic: topic.name.clone(),
        partition,
        builder: open.builder,
        completion: open.completion,
    });
}

fn take_for_sending(
    sealed: SealedBatch,
    partition_state: &mut PartitionState,
    producer_id: Option<u64>,
    idempotent: bool,
) -> SendableBatch {
    let mut builder = sealed.builder;
    let record_count = builder.record_count();
    let base_sequence = match (idempotent, producer_id) {
        (true, Some(producer_id)) => {
            let base_sequence = partition_state.next_sequence;
            partition_state.next_sequence = base_sequence.wrapping_add(record_count);
            partition_state.in_flight = true;
            builder.set_producer(producer_id, base_sequence);
            Some(base_sequence)
        }
        _ => None,
    };
    SendableBatch {
        topic: sealed.topic,
        partition: sealed.partition,
        bytes: builder.finish(),
        base_sequence,

        completion: sealed.completion,
        attempts: 0,
        record_count,
    }
}

fn push(builder: &mut BatchBuilder, record: &RecordRef<'_>) -> Result<(), ClientError> {
    builder
        .push(
            record.timestamp_ms,
            record.key,
            record.value,
            record.headers,
        )
        .map_err(|error: PushError| ClientError::InvalidArgument(error.to_string()))
}

#[cfg(test)]
mod tests;
