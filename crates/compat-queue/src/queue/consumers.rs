//! Consumers: register (at the topic's current end), consume one message,
//! and count the unread ones.
//!
//! A consumer's messages are its topic's messages at offsets at or after
//! its `start`; its position is the number of its valid claims
//! (`claims.rs`). So `/size` is "messages from `start` in the topic's
//! index minus claims", and consume takes the message at that position by
//! appending a claim of it, which wins unless another node's claim of the
//! same position came first (then it tries the next position). Both read
//! the claims and the topic up to their high watermarks first, so a
//! backlog `/size` reported is still there for the consume that follows.

use std::sync::Arc;

use citystream_client::Client;
use serde_json::value::RawValue;
use tokio::sync::Mutex;

use super::{CLAIM_PARTITIONS, CLAIMS_TOPIC, CONSUMERS_TOPIC, Queue, lost_record};
use crate::claims::{Claim, ClaimLog};
use crate::error::QueueError;
use crate::offset_runs::OffsetRuns;
use crate::params::RequestedId;
use crate::registry::{ConsumerRegistration, Registrations, TopicEntry, encode};
use citystream_client::tail::{Tail, high_watermark};

/// Claims one consume may lose to other nodes' claims of the same
/// consumer before it gives up (each loss means another node handed a
/// message of this consumer out at that moment).
const CLAIM_ATTEMPTS_MAX: usize = 8;
/// Bytes asked for when reading one message (at least its batch comes).
const MESSAGE_READ_BYTES: u32 = 64 * 1024;
/// Reads of a message that the partition leader does not serve yet (its
/// high watermark lags just after a failover), each waiting up to
/// [`MESSAGE_READ_WAIT_MS`].
const MESSAGE_READ_ATTEMPTS_MAX: usize = 25;
const MESSAGE_READ_WAIT_MS: u32 = 200;

/// A consumer as a request names it, checked against the registries.
struct Consumer {
    id: u64,
    shown: RequestedId,
    topic: String,
    native: String,
    start: u64,
    entry: TopicEntry,
}

impl Queue {
    /// Registers a consumer of `topic` starting at its current end; returns its id.
    #[tracing::instrument(skip(self))]
    pub async fn register_consumer(&self, topic: &str) -> Result<u64, QueueError> {
        let Some(entry) = self.find_topic(topic).await? else {
            return Err(QueueError::refused(format!("Topic:{topic} does not exist")));
        };
        let native = self.native_topic(entry).await?;
        let start = high_watermark(&self.client, &native, 0).await?;
        let registration = encode(&ConsumerRegistration {
            topic: topic.to_owned(),
            start,
        });
        let id = self
            .append(&self.consumers, registration, |consumers, offset| {
                consumers.id_at(offset).ok_or(offset)
            })
            .await?;
        id.map_err(|offset| lost_record(CONSUMERS_TOPIC, offset))
    }

    /// Messages of `topic` that `consumer` has not consumed.
    #[tracing::instrument(skip(self))]
    pub async fn size(&self, topic: &str, consumer: RequestedId) -> Result<u64, QueueError> {
        let consumer = self.consumer(topic, consumer).await?;
        let (claims, partition) = self.claims_of(consumer.id).await?;
        let (taken, available) = tokio::try_join!(
            self.taken(&consumer, claims, partition),
            self.available(&consumer)
        )?;
        Ok(available.saturating_sub(taken))
    }

    /// The next message of `topic` for `consumer` (JSON text); `consumer`
    /// moves past it.
    #[tracing::instrument(skip(self))]
    pub async fn consume(&self, topic: &str, consumer: RequestedId) -> Result<String, QueueError> {
        let consumer = self.consumer(topic, consumer).await?;
        let lock = self.consumer_lock(consumer.id);
        let _serialized = lock.lock().await;
        let (claims, partition) = self.claims_of(consumer.id).await?;
        for attempt in 1..=CLAIM_ATTEMPTS_MAX {
            let taken = self.take_next(&consumer, claims, partition).await;
            let winner = claims.lock().await.state_mut().end_wait(consumer.id);
            let (message, token) = taken?;
            if winner == Some(token) {
                return Ok(message);
            }
            tracing::debug!(
                consumer = consumer.id,
                attempt,
                "another node took the position"
            );
        }
        Err(QueueError::Unavailable(format!(
            "consumer {} lost {CLAIM_ATTEMPTS_MAX} claims in a row to other nodes",
            consumer.id
        )))
    }

    /// One attempt at the consumer's next message: finds it at the current
    /// position, reads it, appends a claim of the position and folds the
    /// claims past it. Returns the message and the claim's token; the
    /// caller's [`ClaimLog::end_wait`] tells whether the claim won.
    async fn take_next(
        &self,
        consumer: &Consumer,
        claims: &Mutex<Tail<ClaimLog>>,
        partition: u32,
    ) -> Result<(String, u64), QueueError> {
        let index = self.index(consumer).await?;
        let (claims_end, topic_end) = tokio::try_join!(
            high_watermark(&self.client, CLAIMS_TOPIC, partition),
            high_watermark(&self.client, &consumer.native, 0)
        )?;
        let position = {
            let mut claims = claims.lock().await;
            claims.catch_up(&self.client, claims_end).await?;
            claims.state_mut().begin_wait(consumer.id)
        };
        let offset = {
            let mut index = index.lock().await;
            index.catch_up(&self.client, topic_end).await?;
            index.state().nth_from(consumer.start, position)
        };
        let Some(offset) = offset else {
            return Err(QueueError::refused(format!(
                "Empty logs for Comsumer:{} for Topic:{}",
                consumer.shown, consumer.topic
            )));
        };
        let message = read_message(&self.client, &consumer.native, offset).await?;
        let claim = Claim {
            consumer: consumer.id,
            position,
            token: rand::random(),
        };
        let claim_offset = self.write(CLAIMS_TOPIC, partition, claim.encode()).await?;
        let mut claims = claims.lock().await;
        claims.catch_up(&self.client, claim_offset + 1).await?;
        Ok((message, claim.token))
    }

    /// The consumer's position: claims folded to the high watermark.
    async fn taken(
        &self,
        consumer: &Consumer,
        claims: &Mutex<Tail<ClaimLog>>,
        partition: u32,
    ) -> Result<u64, QueueError> {
        let end = high_watermark(&self.client, CLAIMS_TOPIC, partition).await?;
        let mut claims = claims.lock().await;
        claims.catch_up(&self.client, end).await?;
        Ok(claims.state().taken(consumer.id))
    }

    /// Messages of the consumer's topic from its start, indexed to the
    /// high watermark.
    async fn available(&self, consumer: &Consumer) -> Result<u64, QueueError> {
        let index = self.index(consumer).await?;
        let end = high_watermark(&self.client, &consumer.native, 0).await?;
        let mut index = index.lock().await;
        index.catch_up(&self.client, end).await?;
        Ok(index.state().count_from(consumer.start))
    }

    /// Checks, in the original's order, that the consumer exists, the
    /// topic exists, and the consumer reads that topic.
    async fn consumer(&self, topic: &str, shown: RequestedId) -> Result<Consumer, QueueError> {
        let registered = match shown.known() {
            Some(id) => {
                let found =
                    |consumers: &Registrations<ConsumerRegistration>| consumers.get(id).cloned();
                self.lookup(&self.consumers, found).await?.map(|c| (id, c))
            }
            None => None,
        };
        let Some((id, registration)) = registered else {
            return Err(QueueError::refused(format!(
                "Consumer:{shown} does not exist"
            )));
        };
        let Some(entry) = self.find_topic(topic).await? else {
            return Err(QueueError::refused(format!("Topic:{topic} does not exist")));
        };
        if registration.topic != topic {
            return Err(QueueError::refused(format!(
                "Consumer:{shown} is not registered with Topic:{topic}"
            )));
        }
        Ok(Consumer {
            id,
            shown,
            topic: registration.topic,
            native: self.native_topic(entry).await?,
            start: registration.start,
            entry,
        })
    }

    /// The claims partition of `consumer` and this node's fold of it.
    async fn claims_of(&self, consumer: u64) -> Result<(&Mutex<Tail<ClaimLog>>, u32), QueueError> {
        let tails = self
            .claims
            .get_or_try_init(|| async {
                self.ensure_topic(CLAIMS_TOPIC, CLAIM_PARTITIONS).await?;
                let partitions = self.client.partition_count(CLAIMS_TOPIC).await?;
                let partitions = partitions.filter(|p| *p > 0).ok_or_else(|| {
                    QueueError::Unavailable(format!("{CLAIMS_TOPIC} has no partitions"))
                })?;
                Ok::<_, QueueError>(
                    (0..partitions)
                        .map(|p| Mutex::new(Tail::new(CLAIMS_TOPIC, p, 0, ClaimLog::default())))
                        .collect::<Vec<_>>(),
                )
            })
            .await?;
        let partition = consumer % tails.len() as u64;
        Ok((&tails[partition as usize], partition as u32))
    }

    /// The message index of the consumer's topic, covering its start.
    async fn index(&self, consumer: &Consumer) -> Result<Arc<Mutex<Tail<OffsetRuns>>>, QueueError> {
        let fresh = || {
            Tail::new(
                &consumer.native,
                0,
                consumer.start,
                OffsetRuns::new(consumer.start),
            )
        };
        let index = {
            let mut indexes = self.indexes.lock().expect("never poisoned");
            let index = indexes.entry(consumer.entry.index);
            index
                .or_insert_with(|| Arc::new(Mutex::new(fresh())))
                .clone()
        };
        {
            // A consumer that registered while an earlier read of the
            // topic's end was in flight can start before the index does.
            let mut tail = index.lock().await;
            if tail.state().begin() > consumer.start {
                *tail = fresh();
            }
        }
        Ok(index)
    }

    fn consumer_lock(&self, consumer: u64) -> Arc<Mutex<()>> {
        let mut locks = self.consumer_locks.lock().expect("never poisoned");
        // Forget locks nobody holds or waits for, so the map stays small.
        locks.retain(|_, lock| Arc::strong_count(lock) > 1);
        locks.entry(consumer).or_default().clone()
    }
}

/// The message at `offset` of `native` as JSON text: the stored text when
/// it is JSON (always, for messages written through this API), else the
/// stored bytes as a JSON string.
async fn read_message(client: &Client, native: &str, offset: u64) -> Result<String, QueueError> {
    for _ in 0..MESSAGE_READ_ATTEMPTS_MAX {
        let read = client
            .read_partition(native, 0, offset, MESSAGE_READ_BYTES, MESSAGE_READ_WAIT_MS)
            .await?;
        if let Some(record) = read.records.into_iter().find(|r| r.offset == offset) {
            let value = record.value;
            if serde_json::from_slice::<&RawValue>(&value).is_ok() {
                return Ok(String::from_utf8(value.to_vec()).expect("JSON is UTF-8"));
            }
            let text = String::from_utf8_lossy(&value);
            return Ok(serde_json::to_string(&text).expect("strings serialize"));
        }
    }
    Err(QueueError::Unavailable(format!(
        "{native} does not serve the message at offset {offset}"
    )))
}
