//! The data path: produce, fetch, high-watermark watches, offset lookups
//! and producer ids. Each request finds its partition, then the partition
//! does the work under its own lock.

use std::sync::Arc;

use bytes::Bytes;
use citystream_record::NO_PRODUCER;
use tokio::sync::watch;

use super::Broker;
use crate::names::validate_topic_name;
use crate::produce::{ProduceLimits, validate_batch};
use crate::topic::Topic;
use crate::{BrokerError, FetchOutcome, OffsetQuery, ProduceOutcome};

impl Broker {
    /// Validates and appends one encoded batch (auto-creating the topic if
    /// allowed); dedups idempotent producers' retries.
    pub fn produce(
        &self,
        topic: &str,
        partition: u32,
        batch: Bytes,
        now_ms: i64,
    ) -> Result<ProduceOutcome, BrokerError> {
        self.observe_time(now_ms);
        let topic = self.topic_for_produce(topic)?;
        let partition = topic.partition(partition)?;
        let limits = ProduceLimits {
            batch_bytes_max: self.config.batch_bytes_max,
            record_bytes_max: self.config.record_bytes_max,
        };
        let batch = validate_batch(batch, limits, topic.settings().cleanup)?;
        let producer_id = batch.header().producer_id;
        if producer_id != NO_PRODUCER && !self.producer_ids.is_plausible(producer_id) {
            return Err(BrokerError::UnknownProducer(producer_id));
        }
        partition.append(batch, now_ms)
    }

    /// Reads whole batches from `offset` up to `max_bytes` (at least one
    /// batch). `offset == high_watermark` returns empty records.
    pub fn fetch(
        &self,
        topic: &str,
        partition: u32,
        offset: u64,
        max_bytes: u32,
    ) -> Result<FetchOutcome, BrokerError> {
        self.readable_topic(topic)?
            .partition(partition)?
            .fetch(offset, max_bytes)
    }

    /// Watches a partition's high watermark, for long-poll fetches.
    pub fn watch_partition(
        &self,
        topic: &str,
        partition: u32,
    ) -> Result<watch::Receiver<u64>, BrokerError> {
        Ok(self.readable_topic(topic)?.partition(partition)?.watch())
    }

    pub fn list_offset(
        &self,
        topic: &str,
        partition: u32,
        query: OffsetQuery,
    ) -> Result<u64, BrokerError> {
        self.readable_topic(topic)?
            .partition(partition)?
            .list_offset(query)
    }

    /// A fresh producer id for an idempotent producer (never 0).
    pub fn init_producer(&self) -> Result<u64, BrokerError> {
        self.producer_ids.allocate()
    }

    /// A topic to read from: any valid name, internal topics included.
    fn readable_topic(&self, name: &str) -> Result<Arc<Topic>, BrokerError> {
        validate_topic_name(name)?;
        self.topic(name)
    }
}
