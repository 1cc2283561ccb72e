//! Async Rust client for citystream. [`Client`] owns connections (one per
//! broker, multiplexed with request ids) and a metadata cache; [`Producer`]
//! batches records per partition (size + linger), bounds in-flight requests,
//! retries and can be idempotent; [`Consumer`] reads with a consumer group or
//! a manual assignment and commits offsets; [`Admin`] manages topics,
//! inspects groups and moves replicas.
//!
//! Module map: `connection` (one multiplexed TCP connection, or a direct
//! one to a broker in this process: `local`), `metadata`
//! (the topic/leader cache), `cluster` ([`Client`]: pool + routing),
//! `admin`, `controller` (admin requests to the metadata leader, following
//! `NOT_LEADER`), `producer/` (accumulator, sender task, delivery futures),
//! `consumer/` (group membership, fetcher, positions), `read` (one-shot
//! partition reads for request/response transports), `tail` (state folded
//! from a partition's records, caught up on demand), `live` (shared
//! readers of new records that live streams of a process subscribe to).

mod admin;
mod cluster;
mod connection;
mod consumer;
mod controller;
mod error;
pub mod live;
pub mod local;
mod metadata;
mod producer;
mod read;
mod retry;
pub mod tail;

pub use admin::Admin;
pub use citystream_protocol::{Acks, ApiError, Cleanup, ErrorCode, TopicConfig, TopicPartition};
/// Kafka's key partitioner, shared with the broker (lives in the record crate).
pub use citystream_record::{murmur2, partition_for_key};
pub use cluster::{Client, ClientConfig};
pub use consumer::{Consumer, ConsumerConfig, ConsumerRecord, StartPosition};
pub use error::ClientError;
pub use producer::{
    DeliveryFuture, IDEMPOTENT_IN_FLIGHT_MAX, Producer, ProducerConfig, ProducerRecord,
    RecordMetadata, RecordParts, UNKNOWN_OFFSET,
};
pub use read::PartitionRead;
pub use retry::{STARTING_WINDOW, retrying, starting_or_retriable};
