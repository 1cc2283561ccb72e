//! A produce workload for failover tests and the checks made after it.
//! [`Load`] runs an idempotent `acks=quorum` producer of the client library
//! on its own runtime, recording every acknowledged record as (partition,
//! offset, value); values are `r` and a global send sequence, so order and
//! duplicates can be checked. The checks read the topic back through a
//! node with `citystream consume` and compare the replica logs on disk.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use citystream_client::{Acks, Client, ClientConfig, ProducerConfig, ProducerRecord};
use citystream_log::{LogConfig, Offset, PartitionLog};
use tokio_util::sync::CancellationToken;

use crate::test_cluster::{CONVERGE_TIMEOUT, TestCluster};

pub const PARTITIONS: u32 = 3;
/// Records sent before the producer waits for all their acknowledgements.
const WINDOW_RECORDS: u64 = 20;
/// Per attempt; low so a frozen broker costs one short wait, not 30 s.
const REQUEST_TIMEOUT_MS: u64 = 2_000;
/// The first pause before a retry (it doubles, up to 1 s); retries go on
/// for the default delivery timeout, well over an election's time.
const RETRY_BACKOFF_MS: u64 = 50;
/// Bounds a wait for the producer to make progress.
const PROGRESS_TIMEOUT: Duration = Duration::from_secs(25);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub partition: u32,
    pub offset: u64,
    pub value: String,
}

/// What the producer saw: the records acknowledged, and the failures.
pub struct Outcome {
    pub acked: Vec<Record>,
    pub failures: Vec<String>,
}

/// A running producer; stopped (and its runtime shut down) by [`Load::stop`].
pub struct Load {
    runtime: tokio::runtime::Runtime,
    stop: CancellationToken,
    acked_count: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<Outcome>,
}

impl Load {
    /// Starts producing to `topic`, bootstrapping from every node.
    pub fn start(cluster: &TestCluster, topic: &str) -> Load {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime for the producer");
        let mut config = ClientConfig::new(cluster.address(1));
        config.bootstrap = cluster.addresses().to_vec();
        config.connect_timeout_ms = 1_000;
        config.request_timeout_ms = REQUEST_TIMEOUT_MS;
        let client = runtime
            .block_on(Client::connect(config))
            .expect("connect the producer");
        let stop = CancellationToken::new();
        let acked_count = Arc::new(AtomicUsize::new(0));
        let task = runtime.spawn(produce(
            client,
            topic.to_string(),
            stop.clone(),
            acked_count.clone(),
        ));
        Load {
            runtime,
            stop,
            acked_count,
            task,
        }
    }

    pub fn acked(&self) -> usize {
        self.acked_count.load(Ordering::Acquire)
    }

    /// Waits (bounded) until `more` records beyond those acked now are acked.
    pub fn wait_for_progress(&self, more: usize, what: &str) {
        let target = self.acked() + more;
        let deadline = Instant::now() + PROGRESS_TIMEOUT;
        while self.acked() < target {
            assert!(!self.task.is_finished(), "the producer stopped ({what})");
            assert!(
                Instant::now() < deadline,
                "{what}: {} of {target} records acked within {PROGRESS_TIMEOUT:?}",
                self.acked()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn stop(self) -> Outcome {
        self.stop.cancel();
        let outcome = self
            .runtime
            .block_on(self.task)
            .expect("the producer task did not panic");
        self.runtime.shutdown_timeout(Duration::from_secs(5));
        outcome
    }
}

async fn produce(
    client: Client,
    topic: String,
    stop: CancellationToken,
    acked_count: Arc<AtomicUsize>,
) -> Outcome {
    let producer = client
        .producer(ProducerConfig {
            acks: Acks::Quorum,
            idempotent: true,
            linger_ms: 2,
            retry_backoff_ms: RETRY_BACKOFF_MS,
            request_timeout_ms: REQUEST_TIMEOUT_MS,
            ..ProducerConfig::default()
        })
        .expect("a valid producer config");
    let mut outcome = Outcome {
        acked: Vec::new(),
        failures: Vec::new(),
    };
    let mut sequence = 0u64;
    while !stop.is_cancelled() {
        let mut window = Vec::new();
        for _ in 0..WINDOW_RECORDS {
            let value = format!("r{sequence:08}");
            let record = ProducerRecord {
                partition: Some((sequence % u64::from(PARTITIONS)) as u32),
                ..ProducerRecord::new(&topic, value.clone())
            };
            sequence += 1;
            match producer.send(record).await {
                Ok(delivery) => window.push((value, delivery)),
                Err(error) => outcome.failures.push(format!("send {value}: {error}")),
            }
        }
        for (value, delivery) in window {
            match delivery.await {
                Ok(written) => outcome.acked.push(Record {
                    partition: written.partition,
                    offset: written.offset,
                    value,
                }),
                Err(error) => outcome.failures.push(format!("deliver {value}: {error}")),
            }
        }
        acked_count.store(outcome.acked.len(), Ordering::Release);
    }
    if let Err(error) = producer.close().await {
        outcome.failures.push(format!("close: {error}"));
    }
    outcome
}

/// Every record of `topic` read through node `node_id` from the beginning
/// (`consume` stops at the end of the log), in the order printed.
pub fn read_through(cluster: &TestCluster, node_id: u32, topic: &str) -> Vec<Record> {
    let stdout =
        cluster
            .broker(node_id)
            .run(&["consume", topic, "--from-beginning", "--format", "json"]);
    stdout
        .lines()
        .map(|line| {
            let json: serde_json::Value = serde_json::from_str(line).expect("a JSON record");
            Record {
                partition: json["partition"].as_u64().expect("partition") as u32,
                offset: json["offset"].as_u64().expect("offset"),
                value: json["value"].as_str().expect("UTF-8 value").to_string(),
            }
        })
        .collect()
}

/// `records` by partition and offset (the order across partitions in which
/// a consumer prints them depends on fetch timing).
pub fn by_position(mut records: Vec<Record>) -> Vec<Record> {
    records.sort_by_key(|record| (record.partition, record.offset));
    records
}

/// What was read holds every acknowledged record at its offset, no value
/// twice, and per partition offsets and send sequences in increasing order.
pub fn check_read(acked: &[Record], read: &[Record], via: u32) {
    let mut by_partition: BTreeMap<u32, Vec<&Record>> = BTreeMap::new();
    for record in read {
        by_partition
            .entry(record.partition)
            .or_default()
            .push(record);
    }
    for (partition, records) in &by_partition {
        for pair in records.windows(2) {
            assert!(
                pair[0].offset < pair[1].offset && pair[0].value < pair[1].value,
                "via node {via}, partition {partition}: {:?} then {:?}",
                pair[0],
                pair[1]
            );
        }
    }
    let mut values = HashSet::new();
    for record in read {
        assert!(
            values.insert(&record.value),
            "via node {via}: {:?} read twice",
            record.value
        );
    }
    let at: BTreeMap<(u32, u64), &str> = read
        .iter()
        .map(|r| ((r.partition, r.offset), r.value.as_str()))
        .collect();
    for record in acked {
        assert_eq!(
            at.get(&(record.partition, record.offset)).copied(),
            Some(record.value.as_str()),
            "via node {via}: acknowledged {record:?} not read at its offset"
        );
    }
}

/// Waits (bounded) until every node reports, for every partition of
/// `topic`, the same leader and the same committed end equal to its log end.
pub fn wait_for_replicas_in_sync(cluster: &TestCluster, topic: &str) {
    let deadline = Instant::now() + CONVERGE_TIMEOUT;
    loop {
        let views: Vec<Vec<(u64, u64, u64)>> = cluster
            .node_ids()
            .map(|node_id| partition_view(&cluster.status(node_id), topic))
            .collect();
        let settled = views[0].len() == PARTITIONS as usize
            && views.iter().all(|view| view == &views[0])
            && views[0]
                .iter()
                .all(|&(leader, commit, end)| leader != 0 && commit == end);
        if settled {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "replicas not in sync within {CONVERGE_TIMEOUT:?}: (leader, commit, end) per node {views:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn partition_view(status: &serde_json::Value, topic: &str) -> Vec<(u64, u64, u64)> {
    let partitions = status["partitions"].as_array().expect("partitions");
    partitions
        .iter()
        .filter(|p| p["topic"] == topic)
        .map(|p| {
            let field = |name: &str| p[name].as_u64().expect("a number");
            (field("leader"), field("commit_index"), field("log_end"))
        })
        .collect()
}

/// The leader of `partition` of `topic` as node `node_id` knows it (0: none).
pub fn partition_leader(status: &serde_json::Value, topic: &str, partition: u32) -> u64 {
    partition_view(status, topic)
        .get(partition as usize)
        .map_or(0, |&(leader, _, _)| leader)
}

/// Whether every partition of `topic` is led by its preferred replica
/// (the first one listed), as node `node_id`'s status tells.
pub fn led_by_preferred_replicas(status: &serde_json::Value, topic: &str) -> bool {
    let partitions = status["partitions"].as_array().expect("partitions");
    let mut of_topic = partitions.iter().filter(|p| p["topic"] == topic).peekable();
    of_topic.peek().is_some()
        && of_topic.all(|p| {
            p["leader"]
                .as_u64()
                .is_some_and(|l| l != 0 && p["replicas"][0] == l)
        })
}

/// With every node stopped: each node's replica directories of the topic
/// (`raft/<topic_id>-<partition>`), read batch by batch, are byte-identical.
pub fn check_replica_logs_identical(cluster: &TestCluster) {
    let first = replica_logs(&cluster.data_dir(1));
    assert_eq!(first.len(), PARTITIONS as usize, "{:?}", first.keys());
    for node_id in cluster.node_ids().skip(1) {
        let logs = replica_logs(&cluster.data_dir(node_id));
        assert_eq!(
            logs.keys().collect::<Vec<_>>(),
            first.keys().collect::<Vec<_>>(),
            "replica directories of node {node_id} and node 1"
        );
        for (name, bytes) in &logs {
            assert!(
                *bytes == first[name],
                "replica {name} of node {node_id} ({} bytes) differs from node 1's ({} bytes)",
                bytes.len(),
                first[name].len()
            );
        }
    }
}

/// Directory name → all batches' bytes, for every partition replica.
fn replica_logs(data_dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let raft = data_dir.join("raft");
    let entries = std::fs::read_dir(&raft).unwrap_or_else(|e| panic!("{}: {e}", raft.display()));
    entries
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.file_name().is_some_and(|name| name != "meta"))
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, log_bytes(path))
        })
        .collect()
}

/// The bytes of every batch from the log's start to its end.
fn log_bytes(dir: PathBuf) -> Vec<u8> {
    let log = PartitionLog::open(&dir, LogConfig::default())
        .unwrap_or_else(|e| panic!("open {}: {e}", dir.display()));
    let mut bytes = Vec::new();
    let mut from = log.start_offset();
    while from < log.next_offset() {
        let headers = log.read_batch_headers(from, 1_000).expect("batch headers");
        let last = headers.last().expect("a batch before the log end");
        for header in &headers {
            // At least one whole batch is returned; the first is this one.
            let read = log.read(Offset(header.base_offset), 1).expect("a batch");
            bytes.extend_from_slice(&read.bytes[..header.batch_len as usize]);
        }
        from = Offset(last.next_offset());
    }
    bytes
}
