//! A cluster of partition-group replicas in one process, for tests: each
//! node has its own in-memory partition log, Raft storage, state machine,
//! `Raft` and heartbeat ticker, connected through [`Router`]. Helpers find
//! the leader, write batches, wait for high watermarks and dump logs. Every
//! wait is bounded by [`WAIT`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use citystream_log::{FsyncPolicy, LogConfig, MemoryStorage, PartitionLog};
use citystream_raft::heartbeat_ticker;
use citystream_raft::testing::open_test_log;
pub use citystream_raft::testing::{batch, log_batches, test_log_config};
use citystream_raft::{
    Appended, BatchData, LeaderAcks, PartitionRaft, PartitionStateMachine, PeerAddr, SharedLog,
    Timing, partition_config, seeded,
};
use openraft::Raft;
use openraft::async_runtime::WatchReceiver;
use tokio::task::JoinHandle;

use super::network::Router;

/// Faster than production (0005 §7: 100/300–600 ms) to keep tests short,
/// with the same ratios.
pub const TEST_TIMING: Timing = Timing {
    heartbeat_ms: 50,
    election_min_ms: 250,
    election_max_ms: 500,
};
/// Upper bound of every wait in these tests.
pub const WAIT: Duration = Duration::from_secs(20);
/// How long a single write may take before it counts as not acknowledged.
pub const WRITE_WAIT: Duration = Duration::from_secs(2);
const POLL: Duration = Duration::from_millis(10);
const WRITE_RETRY_BACKOFF: Duration = Duration::from_millis(50);

pub struct Node {
    pub raft: PartitionRaft,
    pub leader_acks: LeaderAcks,
    pub log: SharedLog,
    pub sm: PartitionStateMachine,
    /// Survives [`Cluster::restart`] (a clean stop: nothing unsynced).
    storage: Arc<MemoryStorage>,
    ticker: JoinHandle<()>,
}

impl Node {
    async fn start(
        id: u64,
        router: &Router,
        storage: Arc<MemoryStorage>,
        log_config: LogConfig,
    ) -> Node {
        let (log, raft_storage) = open_test_log(storage.clone(), log_config);
        let leader_acks = raft_storage.leader_acks().clone();
        let sm = PartitionStateMachine::open(log.clone(), storage.clone()).expect("state machine");
        let config = partition_config(TEST_TIMING, FsyncPolicy::Always).expect("config");
        let raft = Raft::new(id, config, router.factory(id), raft_storage, sm.clone())
            .await
            .expect("raft starts");
        router.add(id, raft.clone());
        let ticker = tokio::spawn(seeded(
            id,
            heartbeat_ticker(
                vec![raft.clone()],
                Duration::from_millis(TEST_TIMING.heartbeat_ms),
            ),
        ));
        Node {
            raft,
            leader_acks,
            log,
            sm,
            storage,
            ticker,
        }
    }
}

pub struct Cluster {
    pub router: Router,
    pub nodes: BTreeMap<u64, Node>,
    log_config: LogConfig,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in self.nodes.values() {
            node.ticker.abort();
        }
    }
}

impl Cluster {
    /// Starts `ids` and initializes every one with the same membership, as
    /// the reconciler will (0005 §3).
    pub async fn start(ids: &[u64], seed: u64) -> Cluster {
        Cluster::start_with(ids, seed, test_log_config()).await
    }

    /// [`Cluster::start`] with other log settings (retention).
    pub async fn start_with(ids: &[u64], seed: u64, log_config: LogConfig) -> Cluster {
        let router = Router::default();
        let mut nodes = BTreeMap::new();
        for &id in ids {
            let storage = Arc::new(MemoryStorage::new());
            let node = Node::start(id, &router, storage, log_config.clone());
            nodes.insert(id, seeded(seed ^ id, node).await);
        }
        let members: BTreeMap<u64, PeerAddr> = ids
            .iter()
            .map(|&id| {
                (
                    id,
                    PeerAddr {
                        peer: format!("node-{id}:9093"),
                    },
                )
            })
            .collect();
        // The first initialized node elects itself at once and may reach
        // the others before their own `initialize`, which then finds a log
        // and answers NotAllowed: harmless, the membership is the same.
        for node in nodes.values() {
            citystream_raft::initialize_members(&node.raft, members.clone())
                .await
                .expect("initialize");
        }
        Cluster {
            router,
            nodes,
            log_config,
        }
    }

    /// Stops `id` for good: cut off, then shut down.
    pub async fn kill(&mut self, id: u64) {
        self.router.cut(id);
        let node = self.nodes.remove(&id).expect("a running node");
        node.ticker.abort();
        node.raft.shutdown().await.expect("shutdown");
    }

    /// Stops `id` cleanly and starts it again on the same storage.
    pub async fn restart(&mut self, id: u64) {
        let node = self.nodes.remove(&id).expect("a running node");
        node.ticker.abort();
        node.raft.shutdown().await.expect("shutdown");
        let config = self.log_config.clone();
        let restarted = Node::start(id, &self.router, node.storage, config);
        self.nodes.insert(id, seeded(id, restarted).await);
    }

    /// Waits for a leader among the nodes that are not cut off, and returns
    /// it (the highest term wins if a cut-off old leader still believes).
    pub async fn leader(&self) -> u64 {
        let found = tokio::time::timeout(WAIT, async {
            loop {
                let leader = self
                    .nodes
                    .iter()
                    .filter(|(id, node)| !self.router.is_cut(**id) && node.raft.is_leader())
                    .max_by_key(|(_, node)| node.raft.metrics().borrow_watched().current_term)
                    .map(|(id, _)| *id);
                if let Some(id) = leader {
                    return id;
                }
                tokio::time::sleep(POLL).await;
            }
        });
        found.await.expect("a leader is elected in time")
    }

    /// One `client_write` to `node`, bounded by [`WRITE_WAIT`].
    pub async fn write_to(&self, node: u64, batch: Bytes) -> Result<Appended, String> {
        let raft = &self.nodes[&node].raft;
        match tokio::time::timeout(WRITE_WAIT, raft.client_write(BatchData::new(batch))).await {
            Ok(Ok(response)) => Ok(response.data),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("timed out".into()),
        }
    }

    /// Writes through whoever leads, retrying across elections with a short
    /// backoff until [`WAIT`] runs out (a loaded CI machine can take several
    /// elections to settle). A retried batch may land twice; callers check
    /// acked batches only.
    pub async fn write(&self, batch: Bytes) -> Appended {
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut attempts = 0u32;
        while tokio::time::Instant::now() < deadline {
            attempts += 1;
            let leader = self.leader().await;
            match self.write_to(leader, batch.clone()).await {
                Ok(appended) => return appended,
                Err(e) => tracing::info!(leader, error = %e, "write failed; retrying"),
            }
            tokio::time::sleep(WRITE_RETRY_BACKOFF).await;
        }
        panic!("no write succeeded in {attempts} attempts within {WAIT:?}");
    }

    /// Waits until every node's HWM equals its log end and all logs end at
    /// the same offset; returns that offset.
    pub async fn settle(&self) -> u64 {
        let settled = tokio::time::timeout(WAIT, async {
            loop {
                let ends: Vec<(u64, u64)> = self
                    .nodes
                    .values()
                    .map(|n| (n.sm.high_watermark(), n.log.read().next_offset().0))
                    .collect();
                let end = ends[0].1;
                if ends.iter().all(|&(hwm, next)| hwm == next && next == end) {
                    return end;
                }
                tokio::time::sleep(POLL).await;
            }
        });
        settled.await.expect("replicas settle in time")
    }
}

/// Whether any batch of `log` contains `needle` (a record value).
pub fn log_contains(log: &PartitionLog, needle: &[u8]) -> bool {
    log_batches(log)
        .iter()
        .any(|(_, bytes)| bytes.windows(needle.len()).any(|w| w == needle))
}
