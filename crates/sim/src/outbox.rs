//! The one sender of a publisher run and its window of deliveries not yet
//! acknowledged. Sending never waits for a record's acknowledgement; only
//! when `pending_max` records are outstanding does it wait for the oldest
//! to settle, so the window bounds memory while the sender batches (or
//! pipelines) freely. Every outcome lands in `SimStats`. Also the topic
//! set-up both runs share.
//!
//! The sender is the native idempotent producer, or, with [`Via::Mqtt`],
//! an MQTT 5 client: each record becomes a PUBLISH to its key (the
//! reading's `city/<district>/<kind>/<station>`) with its value as the
//! payload and its headers as user properties, the device path of a real
//! city. Which stream topic it lands in is then the broker's MQTT mapping
//! (`citystream broker --mqtt-map`). The client keeps a persistent session
//! and reconnects, to the next of the MQTT addresses when a node dies,
//! sending every unacknowledged reading again (`citystream-mqtt-client`),
//! so a node's death loses no reading: each is acknowledged, late, or,
//! at QoS 1, written twice.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use citystream_client::{Client, ErrorCode, Producer, ProducerConfig, ProducerRecord, TopicConfig};
use citystream_mqtt_client::{ConnectOptions, MqttClient, QoS, ReconnectOptions, Version};
use citystream_mqtt_codec::{ByteStr, PublishProperties};
use futures::stream::FuturesUnordered;
use futures::{FutureExt as _, StreamExt as _};

use crate::error::SimError;
use crate::stats::SimStats;

/// How readings reach the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// The native protocol's idempotent producer.
    Native,
    /// MQTT 5 to the first listener of `addresses` that accepts (nodes of
    /// one cluster; the others are where it reconnects), at `qos` (1 or 2
    /// are acknowledged once a quorum has the record).
    Mqtt { addresses: Vec<String>, qos: QoS },
}

/// A delivery's outcome; the error as text (either sender's).
type Delivery = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

enum Sender {
    Native(Producer),
    Mqtt { client: MqttClient, qos: QoS },
}

/// Partitions of the topics a publisher creates (the data contract's 3).
pub const TOPIC_PARTITIONS: u32 = 3;
/// How long closing waits for the last acknowledgements; records still
/// outstanding then are counted as failed.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the broker keeps the MQTT session of a sim whose connection
/// was lost: longer than any reconnect takes, short enough that sessions
/// of sims that are gone do not pile up.
const MQTT_SESSION_EXPIRY_SECS: u32 = 600;

pub(crate) struct Outbox {
    sender: Sender,
    pending: FuturesUnordered<Delivery>,
    pending_max: usize,
    stats: Arc<SimStats>,
}

impl Outbox {
    /// Starts the producer with the client's defaults (idempotent).
    pub(crate) fn start(
        client: &Client,
        stats: Arc<SimStats>,
        pending_max: usize,
    ) -> Result<Outbox, SimError> {
        let producer = client
            .producer(ProducerConfig::default())
            .map_err(SimError::Producer)?;
        Ok(Outbox::with(Sender::Native(producer), stats, pending_max))
    }

    /// Starts the sender `via` says.
    pub(crate) async fn start_via(
        client: &Client,
        via: &Via,
        stats: Arc<SimStats>,
        pending_max: usize,
    ) -> Result<Outbox, SimError> {
        let Via::Mqtt { addresses, qos } = via else {
            return Outbox::start(client, stats, pending_max);
        };
        let (mqtt, _) = MqttClient::connect_any(addresses, mqtt_options())
            .await
            .map_err(|error| SimError::Mqtt {
                addresses: addresses.join(","),
                message: error.to_string(),
            })?;
        let sender = Sender::Mqtt {
            client: mqtt,
            qos: *qos,
        };
        Ok(Outbox::with(sender, stats, pending_max))
    }

    fn with(sender: Sender, stats: Arc<SimStats>, pending_max: usize) -> Outbox {
        assert!(pending_max > 0, "the window holds at least one record");
        Outbox {
            sender,
            pending: FuturesUnordered::new(),
            pending_max,
            stats,
        }
    }

    /// Hands `record` to the sender; waits only while the window is full.
    /// A refused record is counted as failed and its error returned.
    pub(crate) async fn send(&mut self, record: ProducerRecord, alarm: bool) -> Result<(), String> {
        while self.pending.len() >= self.pending_max {
            self.settle_next().await;
        }
        match self.sender.send(record).await {
            Ok(delivery) => {
                self.stats.count_sent(alarm);
                self.pending.push(delivery);
                self.settle_ready();
                Ok(())
            }
            Err(error) => {
                self.stats.count_failed(1, &error);
                Err(error)
            }
        }
    }

    /// Waits for the next acknowledgement (forever if none is outstanding,
    /// for use in `select!`).
    pub(crate) async fn settle_next(&mut self) {
        match self.pending.next().await {
            Some(outcome) => self.settle(outcome),
            None => std::future::pending().await,
        }
    }

    /// Counts the deliveries already completed, without waiting.
    fn settle_ready(&mut self) {
        while let Some(Some(outcome)) = self.pending.next().now_or_never() {
            self.settle(outcome);
        }
    }

    fn settle(&self, outcome: Result<(), String>) {
        match outcome {
            Ok(()) => self.stats.count_acknowledged(),
            Err(error) => self.stats.count_failed(1, &error),
        }
    }

    /// Sends what is buffered, waits (bounded) for every acknowledgement,
    /// and stops the producer.
    pub(crate) async fn close(mut self) {
        let drained = tokio::time::timeout(CLOSE_TIMEOUT, async {
            // Delivery errors also complete the futures below; count them there.
            if let Sender::Native(producer) = &self.sender {
                let _ = producer.flush().await;
            }
            while let Some(outcome) = self.pending.next().await {
                self.settle(outcome);
            }
        })
        .await;
        if drained.is_err() {
            let outstanding = self.pending.len() as u64;
            let reason = format!(
                "not acknowledged within {} s of stopping",
                CLOSE_TIMEOUT.as_secs()
            );
            self.stats.count_failed(outstanding, &reason);
            return; // dropping the sender stops it
        }
        let closed = match self.sender {
            Sender::Native(producer) => producer.close().await.map_err(|e| e.to_string()),
            Sender::Mqtt { client, .. } => client.disconnect().await.map_err(|e| e.to_string()),
        };
        if let Err(error) = closed {
            tracing::debug!(%error, "closing the city's sender");
        }
    }
}

impl Sender {
    /// Queues `record`; the future settles on its acknowledgement.
    async fn send(&self, record: ProducerRecord) -> Result<Delivery, String> {
        match self {
            Sender::Native(producer) => {
                let delivery = producer.send(record).await.map_err(|e| e.to_string())?;
                Ok(Box::pin(delivery.map(|outcome| {
                    outcome.map(|_| ()).map_err(|e| e.to_string())
                })))
            }
            Sender::Mqtt { client, qos } => {
                let key = record.key.as_deref().unwrap_or_default();
                let topic = std::str::from_utf8(key)
                    .map_err(|_| "a key that is no MQTT topic name".to_owned())?;
                let properties = user_properties(&record.headers);
                let delivery = client
                    .publish_with(topic, record.value, *qos, properties)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(Box::pin(delivery.map(|outcome| {
                    outcome.map(|_| ()).map_err(|e| e.to_string())
                })))
            }
        }
    }
}

/// A new persistent session (Clean Start 1, then resumed by every
/// reconnect) that reconnects until the run stops. The client id is
/// unique per run: two sims sharing one would take each other's session.
fn mqtt_options() -> ConnectOptions {
    let client_id = format!(
        "citystream-sim-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    );
    let mut options = ConnectOptions::new(Version::V5, client_id);
    options.session_expiry_secs = Some(MQTT_SESSION_EXPIRY_SECS);
    options.reconnect = Some(ReconnectOptions::default());
    options
}

/// Record headers as MQTT 5 user properties (those that are UTF-8).
fn user_properties(headers: &[(String, bytes::Bytes)]) -> PublishProperties {
    let user_properties = headers
        .iter()
        .filter_map(|(name, value)| {
            let value = std::str::from_utf8(value).ok()?;
            Some((ByteStr::from(name.clone()), ByteStr::from(value.to_owned())))
        })
        .collect();
    PublishProperties {
        user_properties,
        ..PublishProperties::default()
    }
}

/// Creates each of `topics` that does not exist yet (3 partitions, the
/// broker's default replication); one created meanwhile by someone else is
/// fine.
pub(crate) async fn ensure_topics(client: &Client, topics: &[&str]) -> Result<(), SimError> {
    let create_error = |topic: &str| {
        let topic = topic.to_owned();
        move |source| SimError::CreateTopic { topic, source }
    };
    for topic in topics {
        if client
            .partition_count(topic)
            .await
            .map_err(create_error(topic))?
            .is_some()
        {
            continue;
        }
        let config = TopicConfig {
            replication: 0,
            ..TopicConfig::default()
        };
        match client
            .admin()
            .create_topic(topic, TOPIC_PARTITIONS, config)
            .await
        {
            Ok(_) => tracing::info!(topic, partitions = TOPIC_PARTITIONS, "created"),
            Err(error) if error.code() == Some(ErrorCode::TOPIC_ALREADY_EXISTS) => {}
            Err(error) => return Err(create_error(topic)(error)),
        }
    }
    Ok(())
}
