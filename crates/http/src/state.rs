//! [`HttpState`]: what every handler shares: the node's own native client
//! (routing to partition leaders and the group coordinator, retries), one
//! idempotent producer per ack mode (created on first use), the limits, and
//! per-group locks that keep two group reads on this node from handing out
//! the same records.

use std::collections::HashMap;
use std::sync::Arc;

use citystream_client::{Acks, Client, Producer, ProducerConfig};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;

use crate::error::HttpError;
use crate::sse::{EventTails, event_tails};
use crate::webhooks::{WebhookConfig, Webhooks};
use crate::websocket::ByteService;

/// Limits and options of the HTTP listener.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// A larger request body is refused with 413 and nothing is written.
    pub body_bytes_max: usize,
    /// Records one produce request may carry (413 beyond).
    pub records_per_request_max: usize,
    /// Records one read may ask for (`limit`; 400 beyond).
    pub read_records_max: usize,
    /// Longest `wait_ms` of a read.
    pub read_wait_ms_max: u32,
    /// `Access-Control-Allow-Origin` (`*` or one origin); `None`: no CORS.
    pub cors_origin: Option<String>,
    /// How long the producers wait to fill a batch. 0: records of
    /// concurrent requests still share batches while a partition's batches
    /// are in flight (a lingered batch is sealed only when it can be sent).
    pub linger_ms: u64,
    /// Events queued for one Server-Sent-Events client before it lags.
    pub stream_queue_events: usize,
    /// Batches a partition's shared tail buffers for its streams.
    pub tail_buffer_batches: usize,
    /// How often consumer-group lag is sampled for `/metrics`.
    pub group_lag_sample_ms: u64,
    /// The control address of the `citystream demo` that started this
    /// broker (`http://host:port`): `/api/demo` forwards to it.
    pub demo_control: Option<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            body_bytes_max: 8 * 1024 * 1024,
            records_per_request_max: 10_000,
            read_records_max: 10_000,
            read_wait_ms_max: 30_000,
            cors_origin: None,
            linger_ms: 0,
            stream_queue_events: 256,
            tail_buffer_batches: 1_024,
            group_lag_sample_ms: 10_000,
            demo_control: None,
        }
    }
}

/// Shared by every handler; cheap to clone.
#[derive(Clone)]
pub struct HttpState {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    config: HttpConfig,
    quorum: OnceCell<Producer>,
    leader: OnceCell<Producer>,
    none: OnceCell<Producer>,
    groups: GroupLocks,
    /// The shared per-partition readers of Server-Sent-Events streams.
    tails: Arc<EventTails>,
    /// Cancelled when the listener shuts down: ends the long-lived streams.
    stop: CancellationToken,
    /// Renders the process's metrics for `GET /metrics` (none: 404).
    metrics: Option<PrometheusHandle>,
    /// The broker's record size limit, asked once.
    record_bytes_max: OnceCell<u32>,
    /// Registration and listing of webhooks (delivery runs where the
    /// caller spawned it).
    webhooks: Webhooks,
    /// The node's MQTT connections, served at `/mqtt` over WebSocket.
    mqtt_websocket: Option<ByteService>,
}

impl HttpState {
    /// `client` should be connected to this node (`broker` gives it the
    /// node's in-process door, decision 0021).
    pub fn new(client: Client, config: HttpConfig) -> HttpState {
        let tails = Arc::new(event_tails(config.tail_buffer_batches));
        let webhooks = Webhooks::new(client.clone(), WebhookConfig::default());
        HttpState {
            inner: Arc::new(Inner {
                client,
                config,
                quorum: OnceCell::new(),
                leader: OnceCell::new(),
                none: OnceCell::new(),
                groups: GroupLocks::default(),
                tails,
                stop: CancellationToken::new(),
                metrics: None,
                record_bytes_max: OnceCell::new(),
                webhooks,
                mqtt_websocket: None,
            }),
        }
    }

    /// The same state, serving the metrics `handle` renders at `/metrics`.
    /// Call before cloning the state.
    pub fn with_metrics(mut self, handle: PrometheusHandle) -> HttpState {
        Arc::get_mut(&mut self.inner)
            .expect("with_metrics is called before the state is shared")
            .metrics = Some(handle);
        self
    }

    /// The same state, sharing `webhooks` (whose deliverer the caller runs,
    /// so the API shows its live state). Call before cloning the state.
    pub fn with_webhooks(mut self, webhooks: Webhooks) -> HttpState {
        Arc::get_mut(&mut self.inner)
            .expect("with_webhooks is called before the state is shared")
            .webhooks = webhooks;
        self
    }

    /// The same state, serving MQTT over WebSocket at `/mqtt` through
    /// `service`. Call before cloning the state.
    pub fn with_mqtt_websocket(mut self, service: ByteService) -> HttpState {
        Arc::get_mut(&mut self.inner)
            .expect("with_mqtt_websocket is called before the state is shared")
            .mqtt_websocket = Some(service);
        self
    }

    pub fn mqtt_websocket(&self) -> Option<&ByteService> {
        self.inner.mqtt_websocket.as_ref()
    }

    pub fn webhooks(&self) -> &Webhooks {
        &self.inner.webhooks
    }

    pub fn metrics(&self) -> Option<&PrometheusHandle> {
        self.inner.metrics.as_ref()
    }

    pub fn client(&self) -> &Client {
        &self.inner.client
    }

    pub fn config(&self) -> &HttpConfig {
        &self.inner.config
    }

    /// The largest record the broker takes (from its handshake, asked once).
    pub async fn record_bytes_max(&self) -> Result<u32, HttpError> {
        let limit = self
            .inner
            .record_bytes_max
            .get_or_try_init(|| async {
                let (_, record_bytes_max) = self.inner.client.broker_limits().await?;
                Ok::<u32, HttpError>(record_bytes_max)
            })
            .await?;
        Ok(*limit)
    }

    /// The idempotent (ordered, exactly once) producer for `acks`.
    pub async fn producer(&self, acks: Acks) -> Result<&Producer, HttpError> {
        let cell = match acks {
            Acks::Quorum => &self.inner.quorum,
            Acks::Leader => &self.inner.leader,
            Acks::None => &self.inner.none,
        };
        cell.get_or_try_init(|| async {
            let config = ProducerConfig {
                acks,
                linger_ms: self.inner.config.linger_ms,
                ..ProducerConfig::default()
            };
            self.inner.client.producer(config).map_err(HttpError::from)
        })
        .await
    }

    pub fn tails(&self) -> &Arc<EventTails> {
        &self.inner.tails
    }

    /// Cancelled when the listener shuts down.
    pub fn stop_token(&self) -> CancellationToken {
        self.inner.stop.clone()
    }

    /// The lock serializing group reads of `group` on this node.
    pub fn group_lock(&self, group: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.inner.groups.get(group)
    }
}

/// One async lock per group name, dropped from the map once unused.
#[derive(Default)]
struct GroupLocks {
    locks: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl GroupLocks {
    fn get(&self, group: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self
            .locks
            .lock()
            .expect("the group lock map is never poisoned");
        // Forget locks nobody holds or waits for, so the map stays small.
        locks.retain(|_, lock| Arc::strong_count(lock) > 1);
        locks.entry(group.to_owned()).or_default().clone()
    }
}
