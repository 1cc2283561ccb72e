//! [`Queue`]: one node's side of the queue: the node's own native client
//! and one idempotent producer, and this node's folds of the state that
//! lives in the broker (registries, claims, message indexes), each brought
//! up to date from its topic before it is trusted. Nothing a client can
//! observe lives only here: another node, or this one after a restart,
//! folds the same topics into the same answers.
//!
//! The operations are in one file per resource: `topics`, `producers`,
//! `consumers`. This file holds what they share: the topics' names and
//! settings, creating them on first use, writing a record, and looking a
//! registration up (catching its registry up only when it is not known).

mod consumers;
mod producers;
mod topics;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use citystream_client::{
    Client, ErrorCode, Producer, ProducerConfig, ProducerRecord, STARTING_WINDOW, TopicConfig,
    retrying, starting_or_retriable,
};
use tokio::sync::{Mutex, OnceCell};

use crate::claims::ClaimLog;
use crate::error::QueueError;
use crate::offset_runs::OffsetRuns;
use crate::registry::{ConsumerRegistration, ProducerRegistration, Registrations, TopicLog};
use citystream_client::tail::{Fold, Tail, high_watermark};

/// The queue topics in creation order.
pub const TOPICS_TOPIC: &str = "compat-queue.topics";
/// Producer registrations: a producer id is a record's place here.
pub const PRODUCERS_TOPIC: &str = "compat-queue.producers";
/// Consumer registrations: a consumer id is a record's place here.
pub const CONSUMERS_TOPIC: &str = "compat-queue.consumers";
/// Consumer positions, as conditional claims (`claims.rs`).
pub const CLAIMS_TOPIC: &str = "compat-queue.consumes";
/// Partitions of [`CLAIMS_TOPIC`] when this node creates it: consumer `C`
/// claims in partition `C mod partitions`, spreading consumes over leaders.
pub const CLAIM_PARTITIONS: u32 = 4;
/// Queue topic number `n` (its place in [`TOPICS_TOPIC`]) is the native
/// topic `compat-queue.topic.n`: queue topic names are any strings, which
/// native names cannot carry, and a name like `compat-queue.consumers` or
/// `__consumer_offsets` must not reach the broker's own topics.
const QUEUE_TOPIC_PREFIX: &str = "compat-queue.topic.";

/// Messages, registrations and claims all take this long at most to be
/// acknowledged before the request fails (bounding a graceful shutdown).
const DELIVERY_TIMEOUT_MS: u64 = 30_000;
/// No linger: these clients wait for each answer before their next
/// request, so lingering only adds latency (a sequential produce took
/// 2.4 ms with 1 ms of linger, 0.23 ms without); requests arriving while
/// a batch is in flight still share the next one.
const LINGER_MS: u64 = 0;

pub fn queue_topic(index: u64) -> String {
    format!("{QUEUE_TOPIC_PREFIX}{index}")
}

/// Every compat-queue topic keeps all its records: ids are places in the
/// registries and positions are counts of messages, so a purged record
/// would renumber them (a broker-wide `--retention-ms` must not apply).
fn keep_everything() -> TopicConfig {
    TopicConfig {
        replication: 0,
        retention_ms: Some(u64::MAX),
        retention_bytes: Some(u64::MAX),
        segment_bytes: None,
        ..TopicConfig::default()
    }
}

/// A one-partition registry topic, folded from its first record on the
/// first use on this node.
struct Registry<S> {
    topic: &'static str,
    tail: OnceCell<Mutex<Tail<S>>>,
}

impl<S> Registry<S> {
    fn new(topic: &'static str) -> Registry<S> {
        Registry {
            topic,
            tail: OnceCell::new(),
        }
    }
}

pub struct Queue {
    client: Client,
    producer: OnceCell<Producer>,
    topics: Registry<TopicLog>,
    producers: Registry<Registrations<ProducerRegistration>>,
    consumers: Registry<Registrations<ConsumerRegistration>>,
    claims: OnceCell<Vec<Mutex<Tail<ClaimLog>>>>,
    /// Message offsets per queue topic index, for topics with consumers here.
    indexes: std::sync::Mutex<HashMap<u64, Arc<Mutex<Tail<OffsetRuns>>>>>,
    /// Native topics known to exist.
    created: std::sync::Mutex<HashSet<String>>,
    /// Serializes the consumes of one consumer on this node.
    consumer_locks: std::sync::Mutex<HashMap<u64, Arc<Mutex<()>>>>,
}

impl Queue {
    /// `client` should be connected to this node's own native listener.
    pub fn new(client: Client) -> Queue {
        Queue {
            client,
            producer: OnceCell::new(),
            topics: Registry::new(TOPICS_TOPIC),
            producers: Registry::new(PRODUCERS_TOPIC),
            consumers: Registry::new(CONSUMERS_TOPIC),
            claims: OnceCell::new(),
            indexes: std::sync::Mutex::default(),
            created: std::sync::Mutex::default(),
            consumer_locks: std::sync::Mutex::default(),
        }
    }

    /// Creates native topic `name` with `partitions` unless it exists, and
    /// waits until each of its partitions answers: in a cluster a topic
    /// just created (here or by another node) has no leader for a moment,
    /// and reads of it are refused with `UNKNOWN_TOPIC` or `NOT_LEADER`.
    async fn ensure_topic(&self, name: &str, partitions: u32) -> Result<(), QueueError> {
        if self.created.lock().expect("never poisoned").contains(name) {
            return Ok(());
        }
        if self.client.partition_count(name).await?.is_none() {
            let admin = self.client.admin();
            match admin
                .create_topic(name, partitions, keep_everything())
                .await
            {
                Err(error) if error.code() != Some(ErrorCode::TOPIC_ALREADY_EXISTS) => {
                    return Err(error.into());
                }
                _ => tracing::info!(topic = name, partitions, "created"),
            }
        }
        for partition in 0..partitions {
            retrying(STARTING_WINDOW, starting_or_retriable, || {
                high_watermark(&self.client, name, partition)
            })
            .await?;
        }
        let mut created = self.created.lock().expect("never poisoned");
        created.insert(name.to_owned());
        Ok(())
    }

    /// Writes one record with quorum acks; returns its offset.
    async fn write(&self, topic: &str, partition: u32, value: Vec<u8>) -> Result<u64, QueueError> {
        let producer = self
            .producer
            .get_or_try_init(|| async {
                let config = ProducerConfig {
                    linger_ms: LINGER_MS,
                    delivery_timeout_ms: DELIVERY_TIMEOUT_MS,
                    ..ProducerConfig::default()
                };
                self.client.producer(config)
            })
            .await?;
        let record = ProducerRecord {
            partition: Some(partition),
            ..ProducerRecord::new(topic, value)
        };
        let written = producer.send(record).await?.await?;
        Ok(written.offset)
    }

    /// The tail of `registry`, created (and its topic) on first use.
    async fn registry<'a, S: Fold + Default>(
        &self,
        registry: &'a Registry<S>,
    ) -> Result<&'a Mutex<Tail<S>>, QueueError> {
        registry
            .tail
            .get_or_try_init(|| async {
                self.ensure_topic(registry.topic, 1).await?;
                Ok(Mutex::new(Tail::new(registry.topic, 0, 0, S::default())))
            })
            .await
    }

    /// `find` over `registry`'s state; when it finds nothing, again after
    /// catching up to the registry's high watermark. A registration never
    /// changes once made, so a hit needs no round trip.
    async fn lookup<S, T>(
        &self,
        registry: &Registry<S>,
        find: impl Fn(&S) -> Option<T>,
    ) -> Result<Option<T>, QueueError>
    where
        S: Fold + Default,
    {
        let tail = self.registry(registry).await?;
        if let Some(found) = find(tail.lock().await.state()) {
            return Ok(Some(found));
        }
        let end = high_watermark(&self.client, registry.topic, 0).await?;
        let mut tail = tail.lock().await;
        tail.catch_up(&self.client, end).await?;
        Ok(find(tail.state()))
    }

    /// The whole state of `registry`, caught up to its high watermark.
    async fn current<S, T>(
        &self,
        registry: &Registry<S>,
        read: impl FnOnce(&S) -> T,
    ) -> Result<T, QueueError>
    where
        S: Fold + Default,
    {
        let tail = self.registry(registry).await?;
        let end = high_watermark(&self.client, registry.topic, 0).await?;
        let mut tail = tail.lock().await;
        tail.catch_up(&self.client, end).await?;
        Ok(read(tail.state()))
    }

    /// Appends `value` to `registry` and returns `read` of the state just
    /// past it, with the record's offset.
    async fn append<S, T>(
        &self,
        registry: &Registry<S>,
        value: Vec<u8>,
        read: impl FnOnce(&S, u64) -> T,
    ) -> Result<T, QueueError>
    where
        S: Fold + Default,
    {
        let tail = self.registry(registry).await?;
        let offset = self.write(registry.topic, 0, value).await?;
        let mut tail = tail.lock().await;
        tail.catch_up(&self.client, offset + 1).await?;
        Ok(read(tail.state(), offset))
    }
}

/// The error of a record this node wrote that its fold does not show.
fn lost_record(topic: &str, offset: u64) -> QueueError {
    QueueError::Unavailable(format!(
        "{topic} has no registration at offset {offset}, where this node wrote one (was the topic deleted?)"
    ))
}
