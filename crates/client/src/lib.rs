//! Async Rust client for citystream. [`Client`] owns connections (one per
//! broker, multiplexed with request ids) and a metadata cache; [`Producer`]
//! batches records per partition (size + linger), bounds in-flight requests,
//! retries and can be idempotent; [`Consumer`] reads with a consumer group or
//! a manual assignment and commits offsets; [`Admin`] manages topics and
//! inspects groups.

// API CONTRACT (implemented by the client work; signatures fixed, bodies not).

use std::time::Duration;

use bytes::Bytes;
pub use citystream_protocol::{Acks, ApiError, ErrorCode, TopicConfig};
use citystream_protocol::{
    DescribeGroupResponse, GroupSummary, MetadataResponse, OffsetSpec, Request, Response,
    TopicMetadata,
};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The broker answered with an error code.
    #[error("{0}")]
    Api(#[from] ApiError),
    #[error("connection to {address} failed: {source}")]
    Connect {
        address: String,
        source: std::io::Error,
    },
    #[error("I/O error talking to {address}: {source}")]
    Io {
        address: String,
        source: std::io::Error,
    },
    #[error("request timed out after {timeout_ms} ms")]
    Timeout { timeout_ms: u64 },
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("the client is closed")]
    Closed,
}

#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Addresses to bootstrap from (`host:port`); any broker will do.
    pub bootstrap: Vec<String>,
    pub client_id: String,
    pub connect_timeout_ms: u64,
    pub request_timeout_ms: u64,
}

impl ClientConfig {
    pub fn new(bootstrap: impl Into<String>) -> ClientConfig {
        ClientConfig {
            bootstrap: vec![bootstrap.into()],
            client_id: "citystream-client".to_string(),
            connect_timeout_ms: 5_000,
            request_timeout_ms: 30_000,
        }
    }
}

/// A handle to the cluster; cheap to clone.
#[derive(Clone)]
pub struct Client {
    _private: (),
}

impl Client {
    /// Connects to a bootstrap broker and performs the version handshake.
    pub async fn connect(config: ClientConfig) -> Result<Client, ClientError> {
        let _ = config;
        todo!()
    }

    /// Sends one request to the bootstrap/any broker and returns its response.
    pub async fn request(&self, request: Request) -> Result<Response, ClientError> {
        let _ = request;
        todo!()
    }

    pub async fn metadata(
        &self,
        topics: Option<Vec<String>>,
    ) -> Result<MetadataResponse, ClientError> {
        let _ = topics;
        todo!()
    }

    pub fn admin(&self) -> Admin {
        todo!()
    }

    pub fn producer(&self, config: ProducerConfig) -> Producer {
        let _ = config;
        todo!()
    }

    pub async fn consumer(&self, config: ConsumerConfig) -> Result<Consumer, ClientError> {
        let _ = config;
        todo!()
    }
}

// ---- admin ----

pub struct Admin {
    _private: (),
}

impl Admin {
    pub async fn create_topic(
        &self,
        name: &str,
        partitions: u32,
        config: TopicConfig,
    ) -> Result<TopicMetadata, ClientError> {
        let _ = (name, partitions, config);
        todo!()
    }

    pub async fn delete_topic(&self, name: &str) -> Result<(), ClientError> {
        let _ = name;
        todo!()
    }

    pub async fn list_topics(&self) -> Result<Vec<TopicMetadata>, ClientError> {
        todo!()
    }

    pub async fn describe_topic(&self, name: &str) -> Result<TopicMetadata, ClientError> {
        let _ = name;
        todo!()
    }

    pub async fn list_offsets(
        &self,
        topic: &str,
        partition: u32,
        spec: OffsetSpec,
    ) -> Result<u64, ClientError> {
        let _ = (topic, partition, spec);
        todo!()
    }

    pub async fn list_groups(&self) -> Result<Vec<GroupSummary>, ClientError> {
        todo!()
    }

    pub async fn describe_group(&self, group: &str) -> Result<DescribeGroupResponse, ClientError> {
        let _ = group;
        todo!()
    }
}

// ---- producer ----

#[derive(Debug, Clone)]
pub struct ProducerConfig {
    pub acks: Acks,
    /// Send a partition's batch once it holds this many bytes...
    pub batch_bytes: usize,
    /// ...or once its oldest record waited this long.
    pub linger_ms: u64,
    /// Produce requests awaiting a response, per broker connection.
    pub max_in_flight: usize,
    /// Bytes of records buffered and not yet acked; `send` waits beyond it.
    pub buffer_bytes_max: usize,
    pub retries: u32,
    pub retry_backoff_ms: u64,
    /// Producer id + per-partition sequence numbers: a retried batch is written once.
    pub idempotent: bool,
    pub request_timeout_ms: u64,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            acks: Acks::Leader,
            batch_bytes: 256 * 1024,
            linger_ms: 5,
            max_in_flight: 5,
            buffer_bytes_max: 64 * 1024 * 1024,
            retries: 10,
            retry_backoff_ms: 100,
            idempotent: false,
            request_timeout_ms: 30_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProducerRecord {
    pub topic: String,
    /// `None`: by key hash, or round-robin/sticky for keyless records.
    pub partition: Option<u32>,
    pub key: Option<Bytes>,
    pub value: Bytes,
    pub headers: Vec<(String, Bytes)>,
    /// `None`: now.
    pub timestamp_ms: Option<i64>,
}

impl ProducerRecord {
    pub fn new(topic: impl Into<String>, value: impl Into<Bytes>) -> ProducerRecord {
        ProducerRecord {
            topic: topic.into(),
            partition: None,
            key: None,
            value: value.into(),
            headers: Vec::new(),
            timestamp_ms: None,
        }
    }

    pub fn with_key(mut self, key: impl Into<Bytes>) -> ProducerRecord {
        self.key = Some(key.into());
        self
    }
}

/// Where a record was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMetadata {
    pub topic: String,
    pub partition: u32,
    pub offset: u64,
}

/// Resolves when the record is acknowledged (or failed for good).
pub struct DeliveryFuture {
    _private: (),
}

impl std::future::Future for DeliveryFuture {
    type Output = Result<RecordMetadata, ClientError>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let _ = cx;
        todo!()
    }
}

/// Batching producer; cheap to clone, all clones share the batches.
#[derive(Clone)]
pub struct Producer {
    _private: (),
}

impl Producer {
    /// Queues a record. Awaiting this applies backpressure (waits while the
    /// buffer is full); the returned future resolves on acknowledgement.
    pub async fn send(&self, record: ProducerRecord) -> Result<DeliveryFuture, ClientError> {
        let _ = record;
        todo!()
    }

    /// Sends every buffered record now and waits for all acknowledgements.
    pub async fn flush(&self) -> Result<(), ClientError> {
        todo!()
    }

    /// Flushes, then stops the producer's background tasks.
    pub async fn close(self) -> Result<(), ClientError> {
        todo!()
    }
}

// ---- consumer ----

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
    _private: (),
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
