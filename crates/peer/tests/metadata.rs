//! The metadata Raft group (group 0, `MetadataStateMachine`) over the real
//! peer transport on loopback TCP: three brokers elect a leader and commit
//! a command on every replica, and a broker that joins after the leader
//! purged its log gets a `MetadataState` snapshot sent over the wire and
//! keeps taking entries after it. Every wait is bounded by [`WAIT`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use citystream_cluster::{
    BrokerAddresses, MetadataCommand, MetadataOutcome, MetadataRaft, MetadataState,
    MetadataStateMachine, metadata_config, propose,
};
use citystream_log::{FsyncPolicy, MemoryStorage};
use citystream_peer::{GroupId, GroupRouter, LinkConfig, PeerNetwork, PeerServer, RaftHandle};
use citystream_raft::testing::{open_test_log, test_log_config};
use citystream_raft::{PeerAddr, Timing, heartbeat_ticker, seeded};
use openraft::Raft;
use openraft::async_runtime::WatchReceiver;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Faster than production, same ratios (as the partition loopback tests).
const TEST_TIMING: Timing = Timing {
    heartbeat_ms: 50,
    election_min_ms: 250,
    election_max_ms: 500,
};
/// Upper bound of every wait here.
const WAIT: Duration = Duration::from_secs(10);
const WRITE_WAIT: Duration = Duration::from_secs(2);
const POLL: Duration = Duration::from_millis(10);
const PROPOSE_ATTEMPTS_MAX: usize = 10;

/// A broker that hosts only the metadata group.
struct MetadataOnly(MetadataRaft);

impl GroupRouter for MetadataOnly {
    fn raft(&self, group: GroupId) -> Option<RaftHandle> {
        (group == GroupId::METADATA).then(|| self.0.clone().into())
    }
}

struct Node {
    raft: MetadataRaft,
    sm: MetadataStateMachine,
    network: PeerNetwork,
    shutdown: CancellationToken,
    server: JoinHandle<()>,
    ticker: JoinHandle<()>,
}

impl Node {
    async fn start(id: u64, listener: TcpListener) -> Node {
        let storage = Arc::new(MemoryStorage::new());
        let (log, raft_storage) = open_test_log(storage.clone(), test_log_config());
        let sm = MetadataStateMachine::open(storage, log).expect("state machine opens");
        let config = metadata_config(TEST_TIMING, FsyncPolicy::Always).expect("config");
        let network = PeerNetwork::new(id, LinkConfig::default());
        let raft = Raft::new(
            id,
            config,
            network.metadata_factory(),
            raft_storage,
            sm.clone(),
        )
        .await
        .expect("raft starts");
        let server = PeerServer::new(Arc::new(MetadataOnly(raft.clone())));
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(server.serve(listener, shutdown.clone()));
        let interval = Duration::from_millis(TEST_TIMING.heartbeat_ms);
        let ticker = tokio::spawn(heartbeat_ticker(vec![raft.clone()], interval));
        Node {
            raft,
            sm,
            network,
            shutdown,
            server,
            ticker,
        }
    }

    async fn stop(self) {
        self.ticker.abort();
        self.shutdown.cancel();
        let server = tokio::time::timeout(WAIT, self.server).await;
        server.expect("server stops in time").expect("server task");
        let raft = tokio::time::timeout(WAIT, self.raft.shutdown()).await;
        let _ = raft.expect("raft stops in time");
        let network = tokio::time::timeout(WAIT, self.network.shutdown()).await;
        network.expect("network stops in time");
    }
}

struct Brokers {
    nodes: BTreeMap<u64, Node>,
    addrs: BTreeMap<u64, PeerAddr>,
}

impl Brokers {
    /// Starts brokers `ids` (none initialized yet).
    async fn start(ids: &[u64], seed: u64) -> Brokers {
        let mut nodes = BTreeMap::new();
        let mut addrs = BTreeMap::new();
        for &id in ids {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let peer = listener.local_addr().expect("address").to_string();
            addrs.insert(id, PeerAddr { peer });
            nodes.insert(id, seeded(seed ^ id, Node::start(id, listener)).await);
        }
        Brokers { nodes, addrs }
    }

    /// Initializes brokers `voters` with themselves as the membership.
    async fn initialize(&self, voters: &[u64]) {
        let members: BTreeMap<u64, PeerAddr> = voters
            .iter()
            .map(|id| (*id, self.addrs[id].clone()))
            .collect();
        for id in voters {
            citystream_raft::initialize_members(&self.nodes[id].raft, members.clone())
                .await
                .expect("initialize");
        }
    }

    /// Waits for a leader (the highest term wins while an old one believes).
    async fn leader(&self) -> u64 {
        let found = tokio::time::timeout(WAIT, async {
            loop {
                let leader = self
                    .nodes
                    .iter()
                    .filter(|(_, node)| node.raft.is_leader())
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

    /// Proposes through whoever leads, retrying (bounded) across elections.
    async fn propose(&self, command: &MetadataCommand) -> MetadataOutcome {
        for _ in 0..PROPOSE_ATTEMPTS_MAX {
            let leader = &self.nodes[&self.leader().await];
            let proposal = propose(&leader.raft, &leader.sm, command);
            match tokio::time::timeout(WRITE_WAIT, proposal).await {
                Ok(Ok(result)) => return result.expect("the state accepts the command"),
                Ok(Err(e)) => tracing::info!(error = %e, "proposal failed; retrying"),
                Err(_) => tracing::info!("proposal timed out; retrying"),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no proposal of {command:?} succeeded");
    }

    /// Waits until broker `id` has applied a state with `cluster_id`.
    async fn wait_cluster_id(&self, id: u64, cluster_id: &str) {
        self.wait_state(id, |state| state.cluster_id.as_deref() == Some(cluster_id))
            .await;
    }

    /// Waits until broker `id` has applied a state that `done` accepts.
    async fn wait_state(&self, id: u64, done: impl Fn(&MetadataState) -> bool) {
        let mut states = self.nodes[&id].sm.subscribe();
        let applied = states.wait_for(|state| done(state));
        let applied = tokio::time::timeout(WAIT, applied).await;
        applied
            .expect("applied in time")
            .expect("state machine runs");
    }

    async fn stop(self) {
        for (_, node) in self.nodes {
            node.stop().await;
        }
    }
}

fn init_cluster() -> MetadataCommand {
    MetadataCommand::InitCluster {
        cluster_id: "city-a".into(),
    }
}

/// Three brokers elect a metadata leader over TCP and a command committed
/// through it is applied on every replica.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_group_commits_over_tcp() {
    let brokers = Brokers::start(&[1, 2, 3], 0x3e7a).await;
    brokers.initialize(&[1, 2, 3]).await;
    let outcome = brokers.propose(&init_cluster()).await;
    assert_eq!(outcome, MetadataOutcome::ClusterInitialized);
    for id in [1, 2, 3] {
        brokers.wait_cluster_id(id, "city-a").await;
    }
    let leader = brokers.leader().await;
    let links = brokers.nodes[&leader].network.link_stats();
    assert_eq!(links.len(), 2, "the leader talks to both peers: {links:?}");
    brokers.stop().await;
}

/// A broker added after the leader snapshotted and purged its log can only
/// catch up from the snapshot: it receives the `MetadataState` over the
/// wire, installs it, and then applies later entries like the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_broker_installs_a_metadata_snapshot_over_tcp() {
    let brokers = Brokers::start(&[1, 2, 3], 0x51a9).await;
    brokers.initialize(&[1, 2]).await;
    brokers.propose(&init_cluster()).await;
    let leader_id = brokers.leader().await;
    let leader = &brokers.nodes[&leader_id].raft;
    leader.trigger().snapshot().await.expect("leader runs");
    let wait = leader.wait(Some(WAIT));
    let snapshotted = wait.metrics(
        |metrics| metrics.snapshot.is_some() && metrics.snapshot == metrics.last_applied,
        "snapshot of everything applied",
    );
    let snapshot = snapshotted.await.expect("snapshot in time").snapshot;
    let index = snapshot.expect("a snapshot").index;
    leader
        .trigger()
        .purge_log(index)
        .await
        .expect("leader runs");
    let purged = wait.metrics(
        |metrics| metrics.purged.is_some_and(|purged| purged.index >= index),
        "log purged up to the snapshot",
    );
    purged.await.expect("purged in time");

    let join = leader.add_learner(3, brokers.addrs[&3].clone(), true);
    tokio::time::timeout(WAIT, join)
        .await
        .expect("learner joins in time")
        .expect("learner added");
    brokers.wait_cluster_id(3, "city-a").await;
    let learner = brokers.nodes[&3].raft.wait(Some(WAIT));
    let installed = learner.metrics(
        |metrics| metrics.snapshot.is_some_and(|s| s.index >= index),
        "the learner holds the leader's snapshot",
    );
    installed.await.expect("snapshot installed in time");
    // Equal once the learner also applied the entries after the snapshot
    // (the learner's membership): the state includes the log's next offset.
    let leader_state = brokers.nodes[&leader_id].sm.state();
    brokers.wait_state(3, |state| *state == *leader_state).await;

    // The learner's log continues right after the snapshot (it carries
    // the metadata log's next offset), so later entries append and apply.
    let register = MetadataCommand::RegisterBroker {
        node_id: 3,
        addresses: BrokerAddresses {
            native: "b3:9092".into(),
            gossip: "b3:7946".into(),
            peer: brokers.addrs[&3].peer.clone(),
        },
        rack: None,
    };
    let outcome = brokers.propose(&register).await;
    assert_eq!(outcome, MetadataOutcome::BrokerRegistered { node_id: 3 });
    brokers
        .wait_state(3, |state| state.brokers.contains_key(&3))
        .await;
    let leader_id = brokers.leader().await;
    assert_eq!(
        brokers.nodes[&3].sm.state(),
        brokers.nodes[&leader_id].sm.state()
    );
    let learner_applied = brokers.nodes[&3].sm.applied().expect("applied");
    assert!(learner_applied.index > index, "applied after the snapshot");
    brokers.stop().await;
}
