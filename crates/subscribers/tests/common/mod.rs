//! Test harness: an in-memory broker on 127.0.0.1:0, hand-made readings
//! (JSON as `docs/city-data.md` shapes them) produced to the input topics,
//! roles running on their own tasks, and reads of what they wrote.

#![allow(dead_code, unused_imports)] // each test binary uses a different subset

use std::sync::Arc;
use std::time::Duration;

use citystream_client::tail::high_watermark;
use citystream_client::{Client, ProducerConfig, ProducerRecord, TopicPartition};
use citystream_subscribers::{Role, SubscriberConfig, SubscriberError, SubscriberStats};
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use citystream_testkit::{TEST_TIMEOUT, TestBroker, bounded, read_topic};

/// How long a role may take to process what was produced.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(20);

/// A reading as the publishers write it.
pub fn reading(station: &str, ts_ms: i64, values: Value, labels: Value) -> Value {
    let mut parts = station.split('-');
    let district = parts.next().unwrap();
    let kind = parts.next().unwrap();
    json!({
        "station": station, "district": district, "kind": kind, "ts_ms": ts_ms,
        "lamport": ts_ms, "values": values, "units": {}, "labels": labels,
    })
}

/// Produces `readings` to their kind's topic, keyed by the contract, and
/// waits for every acknowledgement; returns (topic, partition, offset) of each.
pub async fn publish(client: &Client, readings: &[Value]) -> Vec<(String, u32, u64)> {
    let producer = client.producer(ProducerConfig::default()).unwrap();
    let mut deliveries = Vec::new();
    for reading in readings {
        let kind = reading["kind"].as_str().unwrap();
        let key = format!(
            "city/{}/{kind}/{}",
            reading["district"].as_str().unwrap(),
            reading["station"].as_str().unwrap()
        );
        let topic = format!("city.{kind}");
        ensure_topic(client, &topic).await;
        let record = ProducerRecord {
            key: Some(key.into()),
            headers: vec![("priority".into(), "low".into())],
            ..ProducerRecord::new(topic, serde_json::to_vec(reading).unwrap())
        };
        deliveries.push(producer.send(record).await.unwrap());
    }
    let mut written = Vec::new();
    for delivery in deliveries {
        let metadata = delivery.await.unwrap();
        written.push((metadata.topic, metadata.partition, metadata.offset));
    }
    written
}

/// Creates `topic` with 3 partitions unless it exists.
pub async fn ensure_topic(client: &Client, topic: &str) {
    if client.partition_count(topic).await.unwrap().is_none() {
        let config = citystream_client::TopicConfig::default();
        let _ = client.admin().create_topic(topic, 3, config).await;
    }
}

/// A role running on its own task.
pub struct Running {
    pub role: Role,
    pub stats: Arc<SubscriberStats>,
    stop: CancellationToken,
    task: JoinHandle<Result<(), SubscriberError>>,
}

impl Running {
    pub async fn start(broker: &TestBroker, role: Role, config: SubscriberConfig) -> Running {
        let client = broker.client().await;
        let stats = Arc::new(SubscriberStats::default());
        let stop = CancellationToken::new();
        let run = citystream_subscribers::run(role, client, config, stats.clone(), stop.clone());
        Running {
            role,
            stats,
            stop,
            task: tokio::spawn(run),
        }
    }

    /// Stops the role (it leaves its group) and checks it ended well.
    pub async fn stop(self) -> Arc<SubscriberStats> {
        self.stop.cancel();
        self.task.await.unwrap().unwrap();
        self.stats
    }
}

/// The input partitions of `role` (3 per topic).
pub fn input_partitions(role: Role) -> Vec<TopicPartition> {
    let mut partitions = Vec::new();
    for topic in role.inputs() {
        for partition in 0..3 {
            partitions.push(TopicPartition {
                topic: topic.to_string(),
                partition,
            });
        }
    }
    partitions
}

/// Waits until `role`'s group has committed every input partition up to
/// its high watermark: all its outputs so far are written.
pub async fn wait_caught_up(client: &Client, role: Role) {
    let deadline = tokio::time::Instant::now() + CATCH_UP_TIMEOUT;
    loop {
        if caught_up(client, role).await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{role} did not catch up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn caught_up(client: &Client, role: Role) -> bool {
    let partitions = input_partitions(role);
    let committed = client
        .admin()
        .committed_offsets(role.group(), partitions.clone())
        .await
        .unwrap();
    for (tp, committed) in committed {
        let Ok(end) = high_watermark(client, &tp.topic, tp.partition).await else {
            return false;
        };
        if end > 0 && committed.is_none_or(|c| c < end) {
            return false;
        }
    }
    true
}

/// Commits `offset` for every input partition of `role` (as if it had
/// crashed after writing outputs and before committing them). The role
/// must be stopped (a group with members refuses manual commits).
pub async fn rewind(client: &Client, role: Role, offset: u64) {
    let offsets = input_partitions(role)
        .into_iter()
        .map(|tp| (tp, offset))
        .collect();
    client
        .admin()
        .commit_offsets(role.group(), offsets)
        .await
        .unwrap();
}

/// The values of `topic` as JSON.
pub async fn read_values(client: &Client, topic: &str) -> Vec<Value> {
    read_topic(client, topic)
        .await
        .iter()
        .map(|record| serde_json::from_slice(&record.value).unwrap())
        .collect()
}

/// A config for tests: archive in `dir`, short polls.
pub fn config(dir: &std::path::Path) -> SubscriberConfig {
    SubscriberConfig {
        poll_timeout_ms: 100,
        ..SubscriberConfig::new(dir)
    }
}
