//! [`City`]: one node's side of the city broker: the node's own native
//! client, one idempotent producer, the webhooks, the shared stream tails,
//! and this node's fold of the SSE subscriptions, brought up to date from
//! its topic before it is trusted. Nothing a client can observe lives only
//! here: another node, or this one after a restart, reads the same topics.
//!
//! The operations are in one file per resource: `messages` (publish and
//! the logs), `subscriptions` (both modes). This file holds what they
//! share: creating topics on first use (remembering which exist, so a
//! publish makes no metadata round trip) and writing a record.

mod messages;
mod subscriptions;

use std::collections::HashSet;
use std::sync::{Arc, RwLock};

use citystream_client::tail::Tail;
use citystream_client::{
    Acks, Client, ErrorCode, Producer, ProducerConfig, ProducerRecord, RecordMetadata, TopicConfig,
};
use citystream_http::webhooks::Webhooks;
use tokio::sync::{Mutex, OnceCell};
use tokio_util::sync::CancellationToken;

use crate::error::CityError;
use crate::registry::{SUBSCRIPTIONS_TOPIC, Subscriptions};
use crate::stream::Tails;

pub use messages::LOGS_MAX;

/// A publish takes this long at most to be acknowledged before it fails
/// (bounding a graceful shutdown).
const DELIVERY_TIMEOUT_MS: u64 = 30_000;
/// No linger: each client waits for its answer before the next publish,
/// so lingering only adds latency; publishes arriving while a batch is in
/// flight still share the next one.
const LINGER_MS: u64 = 0;

pub struct City {
    client: Client,
    webhooks: Webhooks,
    tails: Arc<Tails>,
    stop: CancellationToken,
    producer: OnceCell<Producer>,
    /// Native topics known to exist.
    existing: RwLock<HashSet<String>>,
    subscriptions: OnceCell<Mutex<Tail<Subscriptions>>>,
    /// Serializes this node's webhook subscription changes (so two
    /// subscribes of one URL here make one webhook).
    webhook_changes: Mutex<()>,
}

impl City {
    /// `client` should be connected to this node's own native listener;
    /// streams end when `stop` is cancelled.
    pub fn new(client: Client, webhooks: Webhooks, stop: CancellationToken) -> City {
        City {
            client,
            webhooks,
            tails: Arc::new(Tails::default()),
            stop,
            producer: OnceCell::new(),
            existing: RwLock::default(),
            subscriptions: OnceCell::new(),
            webhook_changes: Mutex::new(()),
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn tails(&self) -> &Arc<Tails> {
        &self.tails
    }

    pub fn stop(&self) -> &CancellationToken {
        &self.stop
    }

    /// The id of the metadata leader; a standalone broker (no metadata
    /// group) names itself.
    pub async fn leader_id(&self) -> Result<u32, CityError> {
        let status = self.client.admin().cluster_status().await?;
        Ok(status.metadata_leader.unwrap_or(status.node_id))
    }

    /// Creates native topic `name` (one partition: one total order, as the
    /// original's list) unless it is known to exist.
    async fn ensure_topic(&self, name: &str, config: TopicConfig) -> Result<(), CityError> {
        if self.existing.read().expect("never poisoned").contains(name) {
            return Ok(());
        }
        if self.client.partition_count(name).await?.is_none() {
            match self.client.admin().create_topic(name, 1, config).await {
                Err(error) if error.code() != Some(ErrorCode::TOPIC_ALREADY_EXISTS) => {
                    return Err(error.into());
                }
                _ => tracing::info!(topic = name, "created"),
            }
        }
        let mut existing = self.existing.write().expect("never poisoned");
        existing.insert(name.to_owned());
        Ok(())
    }

    /// Forgets that `name` exists (it was deleted natively): the next
    /// publish creates it again.
    fn forget_topic(&self, name: &str) {
        self.existing.write().expect("never poisoned").remove(name);
    }

    /// Writes `record` with quorum acks and waits until it is committed.
    async fn write(&self, record: ProducerRecord) -> Result<RecordMetadata, CityError> {
        let producer = self
            .producer
            .get_or_try_init(|| async {
                let config = ProducerConfig {
                    acks: Acks::Quorum,
                    idempotent: true,
                    linger_ms: LINGER_MS,
                    delivery_timeout_ms: DELIVERY_TIMEOUT_MS,
                    ..ProducerConfig::default()
                };
                self.client.producer(config)
            })
            .await?;
        Ok(producer.send(record).await?.await?)
    }

    /// The fold of the SSE subscriptions, its topic created on first use.
    async fn subscriptions(&self) -> Result<&Mutex<Tail<Subscriptions>>, CityError> {
        self.subscriptions
            .get_or_try_init(|| async {
                self.ensure_topic(SUBSCRIPTIONS_TOPIC, keep_everything())
                    .await?;
                let fold = Tail::new(SUBSCRIPTIONS_TOPIC, 0, 0, Subscriptions::default());
                Ok(Mutex::new(fold))
            })
            .await
    }
}

/// The subscriptions are kept forever: a purged subscribe would make an
/// unsubscribe answer "Not subscribed" (a broker-wide `--retention-ms`
/// must not apply).
fn keep_everything() -> TopicConfig {
    TopicConfig {
        replication: 0,
        retention_ms: Some(u64::MAX),
        retention_bytes: Some(u64::MAX),
        segment_bytes: None,
        ..TopicConfig::default()
    }
}

/// A city topic's settings: the broker's defaults (replication and
/// retention), like any topic.
fn city_topic_config() -> TopicConfig {
    TopicConfig {
        replication: 0,
        retention_ms: None,
        retention_bytes: None,
        segment_bytes: None,
        ..TopicConfig::default()
    }
}
