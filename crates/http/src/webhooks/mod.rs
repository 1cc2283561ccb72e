//! Webhook subscriptions: a URL registered for a topic (optionally a key
//! filter) gets each of the topic's records POSTed, in order per partition,
//! at least once, with retries and exponential backoff.
//!
//! - **Registrations** are records of the replicated topic
//!   [`WEBHOOKS_TOPIC`] (`registry`), written with quorum acks through the
//!   node's client and folded the same way by every node: they survive
//!   restarts and failover like any record, and every node lists the same.
//! - **Positions** are the committed offsets of one consumer group per
//!   webhook (`__webhook.<id>`), committed after each delivered batch:
//!   lag is the high watermark minus that, readable on every node.
//! - **One deliverer at a time**: the node that leads the registry
//!   topic's partition delivers every webhook (`deliver`); a node that
//!   stops leading it stops, and the new leader resumes from the committed
//!   positions. A deposed leader that has not noticed yet may deliver a
//!   record twice: at least once, never a gap.
//!
//! `api` serves them at `/api/webhooks`; the city-compatibility listener's
//! `mode: "webhook"` subscriptions are webhooks too.

pub(crate) mod api;
mod deliver;
pub mod registry;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use citystream_client::tail::{Tail, high_watermark};
use citystream_client::{
    Acks, Client, ErrorCode, Producer, ProducerConfig, ProducerRecord, RecordMetadata, TopicConfig,
    TopicPartition,
};
use citystream_protocol::OffsetSpec;
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, OnceCell};
use utoipa::ToSchema;

pub use registry::{BodyFormat, Registry, WEBHOOKS_TOPIC, Webhook, check_url, group_of};

use crate::error::HttpError;
use crate::sse::filter::check_key_filter;

/// Delivery settings.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// A POST with no answer within this long failed (and is retried).
    pub request_timeout: Duration,
    /// First pause after a failed POST; it doubles per failure...
    pub backoff_min: Duration,
    /// ...up to this.
    pub backoff_max: Duration,
    /// How often the deliverer checks whether it leads the registry and
    /// which webhooks exist.
    pub supervise_every: Duration,
    /// How long a delivery read waits for new records.
    pub read_wait_ms: u32,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            request_timeout: Duration::from_secs(10),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(30),
            supervise_every: Duration::from_millis(500),
            read_wait_ms: 1_000,
        }
    }
}

/// What a registration asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSpec {
    pub topic: String,
    pub url: String,
    pub key_filter: Option<String>,
    pub body: BodyFormat,
    /// Deliver the records already in the topic too (else only new ones).
    pub from_earliest: bool,
}

/// Where a webhook's delivery of one partition stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct PartitionPosition {
    pub partition: u32,
    /// The next offset to deliver (committed).
    pub position: u64,
    pub high_watermark: u64,
    /// Records not delivered yet (before the key filter).
    pub lag: u64,
}

/// What a webhook partition's delivery is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Caught up, or moving.
    Delivering,
    /// The last POST failed; the same record is tried again after a backoff.
    Retrying,
    /// The topic cannot be read or the position not committed (no leader
    /// yet, topic deleted); tried again shortly.
    Waiting,
}

/// The deliverer's live state of one webhook partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeliveryStatus {
    pub state: DeliveryState,
    /// Records POSTed with a 2xx answer since this node began delivering.
    pub delivered: u64,
    /// Failed attempts at the record being delivered now.
    pub attempts: u32,
    pub last_error: Option<String>,
    /// When the last 2xx answer came (ms since the Unix epoch).
    pub last_delivered_ms: Option<i64>,
}

/// The webhooks of a node: registration, listing, and (spawned once per
/// node, [`Webhooks::spawn_delivery`]) delivery. Cheap to clone.
#[derive(Clone)]
pub struct Webhooks {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    config: WebhookConfig,
    registry: Mutex<Tail<Registry>>,
    producer: OnceCell<Producer>,
    topic_ready: OnceCell<()>,
    http: reqwest::Client,
    /// Live delivery state per (webhook, partition), on the deliverer.
    status: parking_lot::Mutex<HashMap<(u64, u32), DeliveryStatus>>,
}

impl Webhooks {
    /// `client` should be connected to this node's own native listener.
    pub fn new(client: Client, config: WebhookConfig) -> Webhooks {
        install_tls_provider();
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .user_agent(concat!("citystream-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the webhook HTTP client builds with ring's TLS provider installed");
        Webhooks {
            inner: Arc::new(Inner {
                client,
                config,
                registry: Mutex::new(Tail::new(WEBHOOKS_TOPIC, 0, 0, Registry::default())),
                producer: OnceCell::new(),
                topic_ready: OnceCell::new(),
                http,
                status: parking_lot::Mutex::new(HashMap::new()),
            }),
        }
    }

    pub fn client(&self) -> &Client {
        &self.inner.client
    }

    /// The HTTP client webhooks are POSTed with.
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    /// Registers a webhook: checks the URL, the key filter and the topic,
    /// then writes the registration (quorum-acknowledged). Nothing is
    /// written when a check fails.
    pub async fn create(&self, spec: WebhookSpec) -> Result<Webhook, HttpError> {
        check_url(&spec.url).map_err(HttpError::bad_request)?;
        if let Some(filter) = &spec.key_filter {
            check_key_filter(filter).map_err(HttpError::bad_request)?;
        }
        let client = &self.inner.client;
        let partitions = client.partition_count(&spec.topic).await?.ok_or_else(|| {
            HttpError::not_found(
                "UNKNOWN_TOPIC",
                format!("topic {:?} does not exist", spec.topic),
            )
        })?;
        let which = match spec.from_earliest {
            true => OffsetSpec::Earliest,
            false => OffsetSpec::Latest,
        };
        let admin = client.admin();
        let mut start = Vec::with_capacity(partitions as usize);
        for partition in 0..partitions {
            start.push(admin.list_offsets(&spec.topic, partition, which).await?);
        }
        let record = registry::RegistryRecord::Create {
            topic: spec.topic.clone(),
            url: spec.url.clone(),
            key: spec.key_filter.clone(),
            body: spec.body,
            start: start.clone(),
        };
        let created_ms = now_ms();
        let written = self.append(&record, created_ms).await?;
        Ok(Webhook {
            id: written.offset,
            topic: spec.topic,
            url: spec.url,
            key_filter: spec.key_filter,
            body: spec.body,
            start,
            created_ms,
        })
    }

    /// Removes webhook `id`; `false` if there is none.
    pub async fn delete(&self, id: u64) -> Result<bool, HttpError> {
        if self.get(id).await?.is_none() {
            return Ok(false);
        }
        self.append(&registry::RegistryRecord::Delete { id }, now_ms())
            .await?;
        Ok(true)
    }

    /// Every webhook, as of now (the registry is caught up first, so a
    /// registration acknowledged anywhere before this call is listed).
    pub async fn list(&self) -> Result<Vec<Webhook>, HttpError> {
        Ok(self.current().await?.all().cloned().collect())
    }

    pub async fn get(&self, id: u64) -> Result<Option<Webhook>, HttpError> {
        Ok(self.current().await?.get(id).cloned())
    }

    /// The committed position, high watermark and lag of each partition.
    pub async fn positions(&self, hook: &Webhook) -> Result<Vec<PartitionPosition>, HttpError> {
        let client = &self.inner.client;
        let Some(partitions) = client.partition_count(&hook.topic).await? else {
            return Ok(Vec::new());
        };
        let committed = self.committed(hook, partitions).await?;
        let mut positions = Vec::with_capacity(committed.len());
        for (partition, position) in committed.into_iter().enumerate() {
            let partition = partition as u32;
            let high_watermark = high_watermark(client, &hook.topic, partition).await?;
            positions.push(PartitionPosition {
                partition,
                position,
                high_watermark,
                lag: high_watermark.saturating_sub(position),
            });
        }
        Ok(positions)
    }

    /// This node's live delivery state of `id`'s partitions (empty on a
    /// node that does not deliver it).
    pub fn status(&self, id: u64) -> Vec<(u32, DeliveryStatus)> {
        let status = self.inner.status.lock();
        let mut found: Vec<(u32, DeliveryStatus)> = status
            .iter()
            .filter(|((hook, _), _)| *hook == id)
            .map(|((_, partition), state)| (*partition, state.clone()))
            .collect();
        found.sort_by_key(|(partition, _)| *partition);
        found
    }

    /// Per partition, where delivery continues: the committed offset, or
    /// the registration's start when nothing was committed yet.
    async fn committed(&self, hook: &Webhook, partitions: u32) -> Result<Vec<u64>, HttpError> {
        let wanted = (0..partitions)
            .map(|partition| TopicPartition {
                topic: hook.topic.clone(),
                partition,
            })
            .collect();
        let committed = self
            .inner
            .client
            .admin()
            .committed_offsets(&hook.group(), wanted)
            .await?;
        Ok(committed
            .into_iter()
            .map(|(tp, offset)| offset.unwrap_or_else(|| hook.start_of(tp.partition)))
            .collect())
    }

    /// The registry, caught up to its high watermark.
    async fn current(&self) -> Result<Registry, HttpError> {
        let client = &self.inner.client;
        if client.partition_count(WEBHOOKS_TOPIC).await?.is_none() {
            return Ok(Registry::default());
        }
        let end = high_watermark(client, WEBHOOKS_TOPIC, 0).await?;
        let mut tail = self.inner.registry.lock().await;
        tail.catch_up(client, end).await?;
        Ok(tail.state().clone())
    }

    /// Writes one registry record (creating the topic on first use) and
    /// returns where it landed.
    async fn append(
        &self,
        record: &registry::RegistryRecord,
        timestamp_ms: i64,
    ) -> Result<RecordMetadata, HttpError> {
        self.ensure_topic().await?;
        let producer = self
            .inner
            .producer
            .get_or_try_init(|| async {
                let config = ProducerConfig {
                    acks: Acks::Quorum,
                    linger_ms: 0,
                    ..ProducerConfig::default()
                };
                self.inner.client.producer(config)
            })
            .await?;
        let record = ProducerRecord {
            partition: Some(0),
            timestamp_ms: Some(timestamp_ms),
            ..ProducerRecord::new(WEBHOOKS_TOPIC, record.encode())
        };
        let delivery = producer.send(record).await?;
        Ok(delivery.await?)
    }

    async fn ensure_topic(&self) -> Result<(), HttpError> {
        self.inner
            .topic_ready
            .get_or_try_init(|| async {
                let client = &self.inner.client;
                if client.partition_count(WEBHOOKS_TOPIC).await?.is_some() {
                    return Ok(());
                }
                let config = TopicConfig {
                    // The broker's default: min(3, brokers).
                    replication: 0,
                    retention_ms: Some(u64::MAX),
                    retention_bytes: Some(u64::MAX),
                    segment_bytes: None,
                    ..TopicConfig::default()
                };
                match client.admin().create_topic(WEBHOOKS_TOPIC, 1, config).await {
                    Err(error) if error.code() != Some(ErrorCode::TOPIC_ALREADY_EXISTS) => {
                        Err(HttpError::from(error))
                    }
                    _ => Ok(()),
                }
            })
            .await
            .map(|_| ())
    }
}

/// Makes ring this process's TLS provider, if none is yet. reqwest is
/// built without a provider of its own (no aws-lc, which needs cmake), so
/// every `reqwest::Client` of the process (ours, and tests' and tools')
/// needs this first. rustls marks ring's provider deprecated for lacking
/// post-quantum key exchange; TLS to webhook receivers does not need that
/// yet (decision 0012).
pub fn install_tls_provider() {
    #[allow(deprecated)]
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as i64)
}
