//! The one producer of a publisher run and its window of deliveries not
//! yet acknowledged. Sending never waits for a record's acknowledgement;
//! only when `pending_max` records are outstanding does it wait for the
//! oldest to settle, so the window bounds memory while the producer
//! batches freely. Every outcome lands in `SimStats`. Also the topic set-up
//! both runs share.

use std::sync::Arc;
use std::time::Duration;

use citystream_client::{
    Client, ClientError, DeliveryFuture, ErrorCode, Producer, ProducerConfig, ProducerRecord,
    RecordMetadata, TopicConfig,
};
use futures::stream::FuturesUnordered;
use futures::{FutureExt as _, StreamExt as _};

use crate::error::SimError;
use crate::stats::SimStats;

/// Partitions of the topics a publisher creates (the data contract's 3).
pub const TOPIC_PARTITIONS: u32 = 3;
/// How long closing waits for the last acknowledgements; records still
/// outstanding then are counted as failed.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) struct Outbox {
    producer: Producer,
    pending: FuturesUnordered<DeliveryFuture>,
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
        assert!(pending_max > 0, "the window holds at least one record");
        let producer = client
            .producer(ProducerConfig::default())
            .map_err(SimError::Producer)?;
        Ok(Outbox {
            producer,
            pending: FuturesUnordered::new(),
            pending_max,
            stats,
        })
    }

    /// Hands `record` to the producer; waits only while the window is
    /// full. A refused record is counted as failed and its error returned.
    pub(crate) async fn send(
        &mut self,
        record: ProducerRecord,
        alarm: bool,
    ) -> Result<(), ClientError> {
        while self.pending.len() >= self.pending_max {
            self.settle_next().await;
        }
        match self.producer.send(record).await {
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

    fn settle(&self, outcome: Result<RecordMetadata, ClientError>) {
        match outcome {
            Ok(_) => self.stats.count_acknowledged(),
            Err(error) => self.stats.count_failed(1, &error),
        }
    }

    /// Sends what is buffered, waits (bounded) for every acknowledgement,
    /// and stops the producer.
    pub(crate) async fn close(mut self) {
        let drained = tokio::time::timeout(CLOSE_TIMEOUT, async {
            // Delivery errors also complete the futures below; count them there.
            let _ = self.producer.flush().await;
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
            return; // dropping the producer stops its sender
        }
        if let Err(error) = self.producer.close().await {
            tracing::debug!(%error, "closing the city producer");
        }
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
