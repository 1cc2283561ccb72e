//! Publishing MQTT messages into the log: one idempotent, order-keeping
//! producer per node with quorum acks (the path of every other producer,
//! issue 9), and the stream topics created on first use with the node's
//! default partitions and replication. A topic must exist before its
//! first record is sent: a producer that does not know a topic's partition
//! count sends keyed records to partition 0, and one device's messages
//! would then change partition (and lose their order) once it learns it.

use std::collections::HashSet;
use std::sync::Mutex;

use citystream_client::{
    Acks, Client, ClientError, DeliveryFuture, ErrorCode, Producer, ProducerConfig, ProducerRecord,
    RecordParts, TopicConfig,
};

/// The producer and the stream topics known to exist.
pub struct Ingest {
    client: Client,
    producer: Producer,
    known: Mutex<HashSet<String>>,
    partitions: u32,
}

impl Ingest {
    /// `partitions` is the partition count of stream topics this creates.
    pub fn new(client: &Client, partitions: u32) -> Result<Ingest, ClientError> {
        let config = ProducerConfig {
            acks: Acks::Quorum,
            linger_ms: 0,
            ..ProducerConfig::default()
        };
        Ok(Ingest {
            producer: client.producer(config)?,
            client: client.clone(),
            known: Mutex::new(HashSet::new()),
            partitions,
        })
    }

    /// Creates `topic` unless it exists.
    pub async fn ensure_topic(&self, topic: &str) -> Result<(), ClientError> {
        self.ensure_topic_with(topic, self.partitions).await
    }

    /// Creates `topic` with `partitions` unless it exists.
    pub async fn ensure_topic_with(&self, topic: &str, partitions: u32) -> Result<(), ClientError> {
        self.ensure_topic_config(topic, partitions, TopicConfig::default())
            .await
    }

    /// Creates `topic` with `partitions` and `config` unless it exists.
    pub async fn ensure_topic_config(
        &self,
        topic: &str,
        partitions: u32,
        config: TopicConfig,
    ) -> Result<(), ClientError> {
        if self.is_known(topic) {
            return Ok(());
        }
        if self.client.partition_count(topic).await?.is_none() {
            let created = self
                .client
                .admin()
                .create_topic(topic, partitions, config)
                .await;
            match created {
                Ok(_) => tracing::info!(topic, "created the stream topic of MQTT messages"),
                Err(error) if error.code() == Some(ErrorCode::TOPIC_ALREADY_EXISTS) => {}
                Err(error) => return Err(error),
            }
            // Learn its partition count before the first record is keyed.
            self.client.partition_count(topic).await?;
        }
        self.known
            .lock()
            .expect("never poisoned")
            .insert(topic.to_owned());
        Ok(())
    }

    /// Sends a record (its topic ensured); the future resolves once a
    /// quorum has it. Waits while the producer's buffer is full.
    pub async fn send(&self, record: ProducerRecord) -> Result<DeliveryFuture, ClientError> {
        if !self.is_known(&record.topic) {
            // Boxed: creating a topic is a large future, and rare.
            Box::pin(self.ensure_topic(&record.topic)).await?;
        }
        self.producer.send(record).await
    }

    /// [`Ingest::send`] for a record given as parts.
    pub async fn send_parts(&self, parts: RecordParts<'_>) -> Result<DeliveryFuture, ClientError> {
        if !self.is_known(parts.topic) {
            // Boxed: creating a topic is a large future, and rare.
            Box::pin(self.ensure_topic(parts.topic)).await?;
        }
        self.producer.send_parts(parts).await
    }

    /// Queues a record from its parts, to a stream topic the caller saw
    /// exist, if that needs no wait ([`Producer::try_send_parts`]).
    pub fn try_send_parts(
        &self,
        parts: RecordParts<'_>,
    ) -> Result<Option<DeliveryFuture>, ClientError> {
        self.producer.try_send_parts(parts)
    }

    /// Queues QoS 0 messages in a row, whose outcome nobody learns, under
    /// one lock ([`Producer::try_send_parts_untracked_all`]): how many
    /// were taken from the front.
    pub fn try_send_parts_untracked_all(
        &self,
        records: &[RecordParts<'_>],
        refused: impl FnMut(usize, ClientError),
    ) -> usize {
        self.producer.try_send_parts_untracked_all(records, refused)
    }

    fn is_known(&self, topic: &str) -> bool {
        self.known.lock().expect("never poisoned").contains(topic)
    }
}
