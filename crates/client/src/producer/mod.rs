//! [`Producer`]: `send` appends a record to its partition's batch in the
//! accumulator and returns a [`DeliveryFuture`]; a background sender task
//! (`sender.rs`) ships sealed batches, combining the batches led by one
//! broker into one `Produce` request, with up to `max_in_flight` batches
//! per partition in flight, retries until `delivery_timeout_ms`, and
//! idempotence (on by default).
//!
//! Backpressure: `send` waits while the bytes of records not yet
//! acknowledged exceed `buffer_bytes_max`.
//!
//! Guarantees per partition (the rules are in `lane.rs`):
//! * **idempotent** (default): every record is written exactly once and in
//!   the order `send` was called, across retries and leader changes. The
//!   leader accepts a batch only at the next sequence of its producer and
//!   answers a re-sent one with its original offset; the producer re-sends
//!   a partition's unacknowledged batches in order.
//! * **not idempotent** (`idempotent = false`): order is kept across leader
//!   changes too (while a re-send is pending a partition has one batch in
//!   flight), but a batch whose answer was lost and is re-sent may be
//!   written twice, and a re-sent batch can still land after one sent
//!   behind it on the same connection. It may reorder and duplicate on
//!   retry.
//! * With `acks = None` nothing is answered, so nothing is retried and
//!   idempotence is not used.

mod accumulator;
mod batch;
mod delivery;
mod lane;
mod sender;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use citystream_protocol::Acks;
use tokio::sync::Notify;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::{Client, ClientError};
use accumulator::{Accumulator, Appended, PartitionChoice, RecordRef};
pub use delivery::{DeliveryFuture, RecordMetadata, UNKNOWN_OFFSET};
use lane::LanePolicy;

/// Most batches of one partition an idempotent producer keeps in flight:
/// the leader remembers this many recent batches per producer to answer
/// re-sends with their original offsets (Kafka has the same bound).
pub const IDEMPOTENT_IN_FLIGHT_MAX: usize = 5;

#[derive(Debug, Clone)]
pub struct ProducerConfig {
    /// What a batch waits for before it is acknowledged (default `Quorum`).
    pub acks: Acks,
    /// Send a partition's batch once it holds this many bytes...
    pub batch_bytes: usize,
    /// ...or once its oldest record waited this long.
    pub linger_ms: u64,
    /// Batches of one partition sent and not yet answered (1 to 5 when
    /// idempotent).
    pub max_in_flight: usize,
    /// Bytes of records buffered and not yet acked; `send` waits beyond it.
    pub buffer_bytes_max: usize,
    /// A record fails once it has been retried for this long since `send`
    /// (Kafka's `delivery.timeout.ms`); until then retriable failures
    /// (connection refused or reset, no leader yet, timeouts) are retried,
    /// re-reading the metadata in between.
    pub delivery_timeout_ms: u64,
    /// The first wait before a re-send; it doubles with each failure in a
    /// row, up to `retry_backoff_max_ms`.
    pub retry_backoff_ms: u64,
    pub retry_backoff_max_ms: u64,
    /// Producer id + per-partition sequence numbers (default): every record
    /// is written once and in order. `false` may reorder and duplicate on
    /// retry. Not used with `acks = None`.
    pub idempotent: bool,
    /// How long one attempt waits for its answer.
    pub request_timeout_ms: u64,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            acks: Acks::Quorum,
            batch_bytes: 256 * 1024,
            linger_ms: 5,
            max_in_flight: 5,
            buffer_bytes_max: 64 * 1024 * 1024,
            delivery_timeout_ms: 120_000,
            retry_backoff_ms: 100,
            retry_backoff_max_ms: 1_000,
            idempotent: true,
            request_timeout_ms: 30_000,
        }
    }
}

impl ProducerConfig {
    /// Checks the settings; [`Client::producer`] refuses a config that fails.
    pub fn validate(&self) -> Result<(), ClientError> {
        let invalid = |message: String| Err(ClientError::InvalidArgument(message));
        if self.max_in_flight == 0 {
            return invalid("max_in_flight must be at least 1".to_owned());
        }
        if self.uses_idempotence() && self.max_in_flight > IDEMPOTENT_IN_FLIGHT_MAX {
            return invalid(format!(
                "an idempotent producer keeps at most {IDEMPOTENT_IN_FLIGHT_MAX} batches per partition in flight (max_in_flight is {}); lower it or turn idempotence off",
                self.max_in_flight
            ));
        }
        if self.delivery_timeout_ms == 0 || self.request_timeout_ms == 0 {
            return invalid(
                "delivery_timeout_ms and request_timeout_ms must be above 0".to_owned(),
            );
        }
        if self.retry_backoff_ms > self.retry_backoff_max_ms {
            return invalid(format!(
                "retry_backoff_ms ({}) is above retry_backoff_max_ms ({})",
                self.retry_backoff_ms, self.retry_backoff_max_ms
            ));
        }
        Ok(())
    }

    /// Idempotence is used only when batches are answered.
    fn uses_idempotence(&self) -> bool {
        self.idempotent && self.acks != Acks::None
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProducerRecord {
    pub topic: String,
    /// `None`: by key hash, or round-robin/sticky for keyless records.
    pub partition: Option<u32>,
    pub key: Option<Bytes>,
    /// Empty for a tombstone.
    pub value: Bytes,
    pub headers: Vec<(String, Bytes)>,
    /// `None`: now.
    pub timestamp_ms: Option<i64>,
    /// A null value: deletes `key` from a compacted topic (decision 0017
    /// §4). Only compacted topics take one, and it needs a key and an
    /// empty `value`.
    pub tombstone: bool,
}

impl ProducerRecord {
    pub fn new(topic: impl Into<String>, value: impl Into<Bytes>) -> ProducerRecord {
        ProducerRecord {
            topic: topic.into(),
            partition: None,
            key: None,
            value: value.into(),
            headers: Vec::new(),
            timestamp_ms: None,
            tombstone: false,
        }
    }

    /// A tombstone for `key`: once compaction has run and the tombstone's
    /// retention has passed, no record of `key` is left in the topic.
    pub fn tombstone(topic: impl Into<String>, key: impl Into<Bytes>) -> ProducerRecord {
        ProducerRecord {
            key: Some(key.into()),
            tombstone: true,
            ..ProducerRecord::new(topic, Bytes::new())
        }
    }

    pub fn with_key(mut self, key: impl Into<Bytes>) -> ProducerRecord {
        self.key = Some(key.into());
        self
    }

    /// The value as the batch stores it: `None` for a tombstone.
    fn stored_value(&self) -> Result<Option<&[u8]>, ClientError> {
        match (self.tombstone, self.key.is_some(), self.value.is_empty()) {
            (false, _, _) => Ok(Some(&self.value)),
            (true, true, true) => Ok(None),
            (true, false, _) => Err(ClientError::InvalidArgument(
                "a tombstone needs a key: it deletes that key".to_owned(),
            )),
            (true, true, false) => Err(ClientError::InvalidArgument(
                "a tombstone has no value; its `value` must be empty".to_owned(),
            )),
        }
    }
}

fn partition_choice(partition: Option<u32>, key: Option<&[u8]>) -> PartitionChoice<'_> {
    match (partition, key) {
        (Some(partition), _) => PartitionChoice::Explicit(partition),
        (None, Some(key)) => PartitionChoice::Key(key),
        (None, None) => PartitionChoice::Sticky,
    }
}

/// A record whose parts are borrowed, for [`Producer::send_parts`]. It
/// has a value: a tombstone goes through [`Producer::send`].
#[derive(Debug, Clone, Copy)]
pub struct RecordParts<'a> {
    pub topic: &'a str,
    /// `None`: by key hash, or sticky for keyless records.
    pub partition: Option<u32>,
    pub key: Option<&'a [u8]>,
    pub value: &'a [u8],
    /// In order; names may repeat.
    pub headers: &'a [(&'a str, &'a [u8])],
    /// `None`: now.
    pub timestamp_ms: Option<i64>,
}

impl<'a> RecordParts<'a> {
    fn record_ref(&self, tracked: bool) -> RecordRef<'a> {
        RecordRef {
            timestamp_ms: self.timestamp_ms.unwrap_or_else(now_ms),
            key: self.key,
            value: Some(self.value),
            headers: self.headers,
            tracked,
        }
    }
}

/// Bytes of records accepted by `send` and not yet completed.
struct BufferLimit {
    used_bytes: AtomicUsize,
    max_bytes: usize,
    released: Notify,
}

impl BufferLimit {
    /// Waits until the buffer is under its limit, then takes `bytes` (one
    /// record may overshoot it, so a record larger than the limit still goes).
    async fn acquire(&self, bytes: usize) {
        while self.used_bytes.load(Ordering::Acquire) >= self.max_bytes {
            let released = self.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            if self.used_bytes.load(Ordering::Acquire) < self.max_bytes {
                break;
            }
            released.await;
        }
        self.used_bytes.fetch_add(bytes, Ordering::AcqRel);
    }

    /// Takes `bytes` if the buffer is not full now.
    fn try_acquire(&self, bytes: usize) -> bool {
        if self.used_bytes.load(Ordering::Acquire) >= self.max_bytes {
            return false;
        }
        self.used_bytes.fetch_add(bytes, Ordering::AcqRel);
        true
    }

    fn release(&self, bytes: usize) {
        self.used_bytes.fetch_sub(bytes, Ordering::AcqRel);
        self.released.notify_waiters();
    }
}

/// State shared by the producer handles and its sender task.
struct Shared {
    client: Client,
    config: ProducerConfig,
    accumulator: Accumulator,
    buffer: BufferLimit,
    /// Wakes the sender: a batch was opened or sealed, or a partition freed.
    wake_sender: Notify,
    /// Cancelled by `close` or when the last handle is dropped.
    shutdown: CancellationToken,
    /// Set by `close`; checked by `send` (cheaper than the token, which locks).
    closed: AtomicBool,
}

/// Batching producer; cheap to clone, all clones share the batches.
#[derive(Clone)]
pub struct Producer {
    shared: Arc<Shared>,
    sender_task: Arc<parking_lot::Mutex<Option<tokio::task::JoinHandle<()>>>>,
    /// Stops the sender when the last handle goes away without `close`.
    _stop_on_drop: Arc<DropGuard>,
}

/// Starts a producer and its sender task (called by [`Client::producer`]).
pub(crate) fn start(client: Client, mut config: ProducerConfig) -> Result<Producer, ClientError> {
    config.validate()?;
    config.idempotent = config.uses_idempotence();
    let policy = LanePolicy {
        idempotent: config.idempotent,
        max_in_flight: config.max_in_flight,
        retry_backoff: Duration::from_millis(config.retry_backoff_ms),
        retry_backoff_max: Duration::from_millis(config.retry_backoff_max_ms),
    };
    let shutdown = CancellationToken::new();
    let shared = Arc::new(Shared {
        accumulator: Accumulator::new(config.batch_bytes, policy, sticky_seed()),
        buffer: BufferLimit {
            used_bytes: AtomicUsize::new(0),
            max_bytes: config.buffer_bytes_max.max(1),
            released: Notify::new(),
        },
        client,
        config,
        wake_sender: Notify::new(),
        shutdown: shutdown.clone(),
        closed: AtomicBool::new(false),
    });
    let task = tokio::spawn(sender::run(shared.clone()));
    Ok(Producer {
        shared,
        sender_task: Arc::new(parking_lot::Mutex::new(Some(task))),
        _stop_on_drop: Arc::new(shutdown.drop_guard()),
    })
}

impl Producer {
    /// Queues a record. Awaiting this applies backpressure (waits while the
    /// buffer is full); the returned future resolves on acknowledgement.
    pub async fn send(&self, record: ProducerRecord) -> Result<DeliveryFuture, ClientError> {
        if self.shared.closed.load(Ordering::Relaxed) {
            return Err(ClientError::Closed);
        }
        let headers: Vec<(&str, &[u8])> = record
            .headers
            .iter()
            .map(|(name, value)| (name.as_str(), &value[..]))
            .collect();
        let record_ref = RecordRef {
            timestamp_ms: record.timestamp_ms.unwrap_or_else(now_ms),
            key: record.key.as_deref(),
            value: record.stored_value()?,
            headers: &headers,
            tracked: true,
        };
        self.send_ref(&record.topic, record.partition, &record_ref)
            .await
    }

    /// [`Producer::send`] for a record whose parts the caller holds
    /// elsewhere (a protocol gateway's packet, static header names): it is
    /// encoded straight from them, with no owned copy made first.
    pub async fn send_parts(&self, parts: RecordParts<'_>) -> Result<DeliveryFuture, ClientError> {
        self.send_ref(parts.topic, parts.partition, &parts.record_ref(true))
            .await
    }

    /// [`Producer::send_parts`] if it can be done without waiting: `None`
    /// when it would wait, for room in the buffer or for the topic's
    /// partition count (then call `send_parts`). Nothing is queued then.
    pub fn try_send_parts(
        &self,
        parts: RecordParts<'_>,
    ) -> Result<Option<DeliveryFuture>, ClientError> {
        let shared = &*self.shared;
        if shared.closed.load(Ordering::Relaxed) {
            return Err(ClientError::Closed);
        }
        let record_ref = parts.record_ref(true);
        let record_bytes = record_ref.size_bytes();
        if !shared.buffer.try_acquire(record_bytes) {
            return Ok(None);
        }
        let choice = partition_choice(parts.partition, parts.key);
        match shared.accumulator.append(parts.topic, choice, &record_ref) {
            Ok(Appended::Queued {
                delivery,
                wake_sender,
            }) => {
                if wake_sender {
                    shared.wake_sender.notify_one();
                }
                Ok(delivery)
            }
            Ok(Appended::UnknownTopic) => {
                shared.buffer.release(record_bytes);
                Ok(None)
            }
            Err(error) => {
                shared.buffer.release(record_bytes);
                Err(error)
            }
        }
    }

    /// [`Producer::try_send_parts`] for a record whose outcome nobody will
    /// ask (an MQTT QoS 0 message): no delivery future is made. True if it
    /// was queued; false if it would wait, and nothing was queued.
    pub fn try_send_parts_untracked(&self, parts: RecordParts<'_>) -> Result<bool, ClientError> {
        let mut refused = None;
        let taken = self.try_send_parts_untracked_all(&[parts], |_, error| refused = Some(error));
        match refused {
            Some(error) => Err(error),
            None => Ok(taken == 1),
        }
    }

    /// [`Producer::try_send_parts_untracked`] for records in a row (a
    /// gateway connection's burst of QoS 0 messages), queued under one
    /// lock of the batches instead of one each. Records are taken from
    /// the front while that needs no wait; returns how many were taken
    /// (send the others with [`Producer::send_parts`], in order). A record
    /// that cannot be queued at all is given to `refused` with its index;
    /// it counts as taken, and is not written.
    pub fn try_send_parts_untracked_all(
        &self,
        records: &[RecordParts<'_>],
        mut refused: impl FnMut(usize, ClientError),
    ) -> usize {
        let shared = &*self.shared;
        if shared.closed.load(Ordering::Relaxed) {
            (0..records.len()).for_each(|index| refused(index, ClientError::Closed));
            return records.len();
        }
        // The size of the record being appended, to give back if it is not.
        let record_bytes = std::cell::Cell::new(0);
        let acquired = records.iter().map_while(|parts| {
            let record_ref = parts.record_ref(false);
            record_bytes.set(record_ref.size_bytes());
            shared.buffer.try_acquire(record_bytes.get()).then(|| {
                let choice = partition_choice(parts.partition, parts.key);
                (parts.topic, choice, record_ref)
            })
        });
        let (mut taken, mut wake_sender, mut errors) = (0, false, Vec::new());
        shared
            .accumulator
            .append_each(acquired, |appended| match appended {
                Ok(Appended::Queued {
                    wake_sender: wake, ..
                }) => {
                    (taken, wake_sender) = (taken + 1, wake_sender || wake);
                    true
                }
                Ok(Appended::UnknownTopic) => {
                    shared.buffer.release(record_bytes.get());
                    false
                }
                Err(error) => {
                    shared.buffer.release(record_bytes.get());
                    errors.push((taken, error));
                    taken += 1;
                    true
                }
            });
        if wake_sender {
            shared.wake_sender.notify_one();
        }
        for (index, error) in errors {
            refused(index, error);
        }
        taken
    }

    async fn send_ref(
        &self,
        topic: &str,
        partition: Option<u32>,
        record_ref: &RecordRef<'_>,
    ) -> Result<DeliveryFuture, ClientError> {
        let shared = &*self.shared;
        if shared.closed.load(Ordering::Relaxed) {
            return Err(ClientError::Closed);
        }
        let choice = partition_choice(partition, record_ref.key);
        let record_bytes = record_ref.size_bytes();
        shared.buffer.acquire(record_bytes).await;
        let appended = self.append(topic, choice, record_ref).await;
        match appended {
            Ok((delivery, wake_sender)) => {
                if wake_sender {
                    shared.wake_sender.notify_one();
                }
                Ok(delivery)
            }
            Err(error) => {
                shared.buffer.release(record_bytes);
                Err(error)
            }
        }
    }

    /// Appends, looking the topic's partition count up on first use.
    async fn append(
        &self,
        topic: &str,
        choice: PartitionChoice<'_>,
        record: &RecordRef<'_>,
    ) -> Result<(DeliveryFuture, bool), ClientError> {
        let accumulator = &self.shared.accumulator;
        if let Appended::Queued {
            delivery,
            wake_sender,
        } = accumulator.append(topic, choice, record)?
        {
            return Ok((delivery.expect("tracked"), wake_sender));
        }
        // Boxed: a metadata request is a large future, needed once per
        // topic, and `send`'s future (kept by every caller, e.g. each MQTT
        // connection's task) would otherwise be as large.
        let partition_count = Box::pin(self.shared.client.partition_count(topic)).await?;
        accumulator.add_topic(topic, partition_count);
        match accumulator.append(topic, choice, record)? {
            Appended::Queued {
                delivery,
                wake_sender,
            } => Ok((delivery.expect("tracked"), wake_sender)),
            Appended::UnknownTopic => unreachable!("the topic was just added"),
        }
    }

    /// Sends every buffered record now and waits for all acknowledgements.
    /// Returns the first delivery error among them, if any.
    pub async fn flush(&self) -> Result<(), ClientError> {
        let shared = &self.shared;
        shared.accumulator.seal_all();
        shared.wake_sender.notify_one();
        let mut first_error = None;
        for batch in shared.accumulator.incomplete() {
            if let Err(error) = delivery::BatchWait::new(batch).await {
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Flushes, then stops the producer's background tasks.
    pub async fn close(self) -> Result<(), ClientError> {
        self.shared.closed.store(true, Ordering::Relaxed);
        let flushed = self.flush().await;
        self.shared.shutdown.cancel();
        let task = self.sender_task.lock().take();
        if let Some(task) = task {
            let _ = task.await;
        }
        flushed
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis() as i64
}

/// A per-producer starting point for sticky partitions, so producers
/// started together do not all begin on partition 0.
fn sticky_seed() -> u32 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(now_ms()) as u32
}
