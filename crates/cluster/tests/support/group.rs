//! A metadata group of in-process replicas for tests: each node has its
//! own in-memory storage (kept across a restart), metadata log, Raft
//! storage, state machine, `Raft` and heartbeat ticker, connected through
//! [`Router`]. Every wait is bounded by [`WAIT`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use citystream_cluster::{
    ApplyResult, MetadataCommand, MetadataRaft, MetadataState, MetadataStateMachine,
    metadata_config, propose,
};
use citystream_log::{FsyncPolicy, MemoryStorage};
use citystream_raft::testing::{open_test_log, test_log_config};
use citystream_raft::{PeerAddr, Timing, heartbeat_ticker, seeded};
use openraft::Raft;
use openraft::async_runtime::WatchReceiver;
use tokio::task::JoinHandle;

use super::network::Router;

/// Faster than production with the same ratios, as citystream-raft's tests.
pub const TEST_TIMING: Timing = Timing {
    heartbeat_ms: 50,
    election_min_ms: 250,
    election_max_ms: 500,
};
/// Upper bound of every wait in these tests.
pub const WAIT: Duration = Duration::from_secs(15);
/// How long one proposal may take before it is retried.
const WRITE_WAIT: Duration = Duration::from_secs(2);
const POLL: Duration = Duration::from_millis(10);
const RETRY_BACKOFF: Duration = Duration::from_millis(50);

pub struct Node {
    pub raft: MetadataRaft,
    pub sm: MetadataStateMachine,
    storage: Arc<MemoryStorage>,
    ticker: JoinHandle<()>,
}

impl Node {
    /// Opens the log and state machine on `storage` (fresh or kept from a
    /// previous run of this node) and starts Raft.
    async fn start(id: u64, router: &Router, storage: Arc<MemoryStorage>) -> Node {
        let (log, raft_storage) = open_test_log(storage.clone(), test_log_config());
        let sm = MetadataStateMachine::open(storage.clone(), log).expect("state machine opens");
        let config = metadata_config(TEST_TIMING, FsyncPolicy::Always).expect("config");
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
            sm,
            storage,
            ticker,
        }
    }
}

pub struct Group {
    pub router: Router,
    pub nodes: BTreeMap<u64, Node>,
    /// Storage of stopped nodes, for restarts.
    stopped: BTreeMap<u64, Arc<MemoryStorage>>,
    seed: u64,
}

impl Drop for Group {
    fn drop(&mut self) {
        for node in self.nodes.values() {
            node.ticker.abort();
        }
    }
}

impl Group {
    /// Starts `ids` and initializes each with the same membership.
    pub async fn start(ids: &[u64], seed: u64) -> Group {
        let router = Router::default();
        let mut nodes = BTreeMap::new();
        for &id in ids {
            let storage = Arc::new(MemoryStorage::new());
            nodes.insert(
                id,
                seeded(seed ^ id, Node::start(id, &router, storage)).await,
            );
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
        // A node may already have the membership from the first one's
        // election: NotAllowed then, and harmless (same membership).
        for node in nodes.values() {
            citystream_raft::initialize_members(&node.raft, members.clone())
                .await
                .expect("initialize");
        }
        Group {
            router,
            nodes,
            stopped: BTreeMap::new(),
            seed,
        }
    }

    /// Stops `id`, keeping its storage.
    pub async fn kill(&mut self, id: u64) {
        self.router.cut(id);
        let node = self.nodes.remove(&id).expect("a running node");
        node.ticker.abort();
        node.raft.shutdown().await.expect("shutdown");
        self.stopped.insert(id, node.storage);
    }

    /// Starts `id` again from the storage it had; returns the state it
    /// published before it could hear from anyone (it is cut off until
    /// then), which is what it rebuilt locally.
    pub async fn restart(&mut self, id: u64) -> Arc<MetadataState> {
        let storage = self.stopped.remove(&id).expect("a stopped node");
        let node = seeded(
            self.seed ^ id ^ 0x5eed,
            Node::start(id, &self.router, storage),
        )
        .await;
        let local = node.sm.state();
        self.router.heal(id);
        self.nodes.insert(id, node);
        local
    }

    /// Waits for a leader among reachable nodes (highest term wins).
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

    /// Proposes through whoever leads, retrying across elections until
    /// [`WAIT`] runs out. Callers only propose commands whose effect does
    /// not depend on being applied once (a retry may apply twice).
    pub async fn propose(&self, command: &MetadataCommand) -> ApplyResult {
        let deadline = tokio::time::Instant::now() + WAIT;
        // Ends: the deadline.
        while tokio::time::Instant::now() < deadline {
            let leader = self.leader().await;
            let node = &self.nodes[&leader];
            match tokio::time::timeout(WRITE_WAIT, propose(&node.raft, &node.sm, command)).await {
                Ok(Ok(result)) => return result,
                Ok(Err(e)) => tracing::info!(leader, error = %e, "proposal failed; retrying"),
                Err(_) => tracing::info!(leader, "proposal timed out; retrying"),
            }
            tokio::time::sleep(RETRY_BACKOFF).await;
        }
        panic!("no proposal of {command:?} succeeded within {WAIT:?}");
    }

    /// Waits until every running node applied the same entries and
    /// publishes the same state; returns it.
    pub async fn converged(&self) -> MetadataState {
        let settled = tokio::time::timeout(WAIT, async {
            loop {
                let leader = self.leader().await;
                let last = self.nodes[&leader]
                    .raft
                    .metrics()
                    .borrow_watched()
                    .last_log_index;
                let states: Vec<_> = self
                    .nodes
                    .values()
                    .map(|n| (n.sm.applied().map(|id| id.index), n.sm.state()))
                    .collect();
                let (index, state) = &states[0];
                if *index == last && states.iter().all(|(i, s)| i == index && s == state) {
                    return (**state).clone();
                }
                tokio::time::sleep(POLL).await;
            }
        });
        settled.await.expect("replicas converge in time")
    }
}
