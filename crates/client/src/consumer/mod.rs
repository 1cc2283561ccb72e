//! Consumer (stub while the producer lands).

use std::time::Duration;

use bytes::Bytes;

use crate::{Client, ClientError};

/// Where a consumer starts on a partition with no committed offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartPosition {
    Earliest,
    Latest,
    Offset(u64),
    Timestamp(i64),
}

#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    pub topics: Vec<String>,
    /// `Some`: join this consumer group (partitions assigned by the broker).
    pub group: Option<String>,
    /// Manual assignment (`group` may still be set to commit offsets).
    pub partitions: Option<Vec<(String, u32)>>,
    pub start: StartPosition,
    pub auto_commit: bool,
    pub auto_commit_interval_ms: u64,
    pub session_timeout_ms: u32,
    pub rebalance_timeout_ms: u32,
    pub heartbeat_interval_ms: u64,
    pub fetch_max_bytes: u32,
    pub fetch_max_wait_ms: u32,
}

impl ConsumerConfig {
    pub fn new(topic: impl Into<String>) -> ConsumerConfig {
        ConsumerConfig {
            topics: vec![topic.into()],
            group: None,
            partitions: None,
            start: StartPosition::Latest,
            auto_commit: true,
            auto_commit_interval_ms: 1_000,
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 10_000,
            heartbeat_interval_ms: 1_000,
            fetch_max_bytes: 4 * 1024 * 1024,
            fetch_max_wait_ms: 500,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRecord {
    pub topic: String,
    pub partition: u32,
    pub offset: u64,
    pub timestamp_ms: i64,
    pub key: Option<Bytes>,
    pub value: Bytes,
    pub headers: Vec<(String, Bytes)>,
}

pub struct Consumer {
    _client: Client,
}

pub(crate) async fn start(client: Client, config: ConsumerConfig) -> Result<Consumer, ClientError> {
    let _ = config;
    Ok(Consumer { _client: client })
}

impl Consumer {
    /// Returns the next records (possibly none if `timeout` passes first).
    pub async fn poll(&mut self, timeout: Duration) -> Result<Vec<ConsumerRecord>, ClientError> {
        let _ = timeout;
        todo!()
    }

    /// Records as a stream (polls internally).
    pub fn stream(
        &mut self,
    ) -> impl futures::Stream<Item = Result<ConsumerRecord, ClientError>> + '_ {
        futures::stream::empty()
    }

    /// Commits the position after every record returned so far.
    pub async fn commit(&mut self) -> Result<(), ClientError> {
        todo!()
    }

    /// Partitions currently assigned.
    pub fn assignment(&self) -> Vec<(String, u32)> {
        todo!()
    }

    /// True when every assigned partition has been read up to its high
    /// watermark as of the last fetch (the CLI's "end of the log").
    pub fn at_end(&self) -> bool {
        todo!()
    }

    /// Moves the position of an assigned partition.
    pub fn seek(&mut self, topic: &str, partition: u32, offset: u64) -> Result<(), ClientError> {
        let _ = (topic, partition, offset);
        todo!()
    }

    /// Commits (if auto-commit) and leaves the group.
    pub async fn close(self) -> Result<(), ClientError> {
        todo!()
    }
}
