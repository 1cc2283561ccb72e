//! A cluster of brokers in one process connected by the real peer
//! transport over loopback TCP: each broker has a `PeerServer` on
//! 127.0.0.1:0, a `PeerNetwork`, and one replica of every partition group
//! (in-memory logs, crates/raft's storage and state machine), plus one
//! heartbeat ticker for all the groups it leads (0005 §4). Every wait is
//! bounded by [`WAIT`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use citystream_log::{FsyncPolicy, MemoryStorage};
use citystream_peer::{GroupId, GroupRouter, LinkConfig, PeerNetwork, PeerServer, RaftHandle};
use citystream_raft::heartbeat_ticker;
pub use citystream_raft::testing::{batch, log_batches};
use citystream_raft::testing::{open_test_log, test_log_config};
use citystream_raft::{
    Appended, BatchData, PartitionRaft, PartitionStateMachine, PeerAddr, SharedLog, Timing,
    partition_config, seeded,
};
use openraft::Raft;
use openraft::async_runtime::WatchReceiver;
use parking_lot::RwLock;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Faster than production, same ratios (as crates/raft's cluster tests).
const TEST_TIMING: Timing = Timing {
    heartbeat_ms: 50,
    election_min_ms: 250,
    election_max_ms: 500,
};
/// Upper bound of every wait in these tests.
pub const WAIT: Duration = Duration::from_secs(10);
const WRITE_WAIT: Duration = Duration::from_secs(2);
const POLL: Duration = Duration::from_millis(10);
const RETRY_PAUSE: Duration = Duration::from_millis(50);

/// One broker's replica of one group.
pub struct Replica {
    pub raft: PartitionRaft,
    pub log: SharedLog,
    pub sm: PartitionStateMachine,
}

/// The groups a broker hosts, as the server looks them up.
#[derive(Default)]
struct Groups(RwLock<BTreeMap<GroupId, RaftHandle>>);

impl GroupRouter for Groups {
    fn raft(&self, group: GroupId) -> Option<RaftHandle> {
        self.0.read().get(&group).cloned()
    }
}

pub struct Broker {
    pub server: Arc<PeerServer>,
    pub network: PeerNetwork,
    pub replicas: BTreeMap<GroupId, Replica>,
    shutdown: CancellationToken,
    server_task: JoinHandle<()>,
    ticker: JoinHandle<()>,
}

impl Broker {
    async fn start(id: u64, listener: TcpListener, groups: &[GroupId], seed: u64) -> Broker {
        let network = PeerNetwork::new(id, LinkConfig::default());
        let router = Arc::new(Groups::default());
        let mut replicas = BTreeMap::new();
        for &group in groups {
            let replica = seeded(seed ^ id ^ group.0, replica(id, group, &network)).await;
            router.0.write().insert(group, replica.raft.clone().into());
            replicas.insert(group, replica);
        }
        let server = PeerServer::new(router);
        let shutdown = CancellationToken::new();
        let server_task = tokio::spawn(server.clone().serve(listener, shutdown.clone()));
        let rafts = replicas.values().map(|r| r.raft.clone()).collect();
        let ticker = tokio::spawn(heartbeat_ticker(
            rafts,
            Duration::from_millis(TEST_TIMING.heartbeat_ms),
        ));
        Broker {
            server,
            network,
            replicas,
            shutdown,
            server_task,
            ticker,
        }
    }

    /// Stops everything this broker runs, as a crash would, and waits for
    /// its tasks and sockets to close.
    pub async fn stop(self) {
        self.ticker.abort();
        self.shutdown.cancel();
        tokio::time::timeout(WAIT, self.server_task)
            .await
            .expect("server stops in time")
            .expect("server task");
        for replica in self.replicas.values() {
            let _ = replica.raft.shutdown().await;
        }
        tokio::time::timeout(WAIT, self.network.shutdown())
            .await
            .expect("network stops in time");
    }
}

async fn replica(id: u64, group: GroupId, network: &PeerNetwork) -> Replica {
    let storage = Arc::new(MemoryStorage::new());
    let (log, raft_storage) = open_test_log(storage.clone(), test_log_config());
    let sm = PartitionStateMachine::open(log.clone(), storage).expect("state machine");
    let config = partition_config(TEST_TIMING, FsyncPolicy::Always).expect("config");
    let raft = Raft::new(id, config, network.factory(group), raft_storage, sm.clone())
        .await
        .expect("raft starts");
    Replica { raft, log, sm }
}

pub struct Cluster {
    pub brokers: BTreeMap<u64, Broker>,
}

impl Cluster {
    /// Starts brokers `ids`, each hosting every group in `groups`, and
    /// initializes every group with all of them as voters.
    pub async fn start(ids: &[u64], groups: &[GroupId], seed: u64) -> Cluster {
        let mut listeners = BTreeMap::new();
        let mut members = BTreeMap::new();
        for &id in ids {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let peer = listener.local_addr().expect("address").to_string();
            members.insert(id, PeerAddr { peer });
            listeners.insert(id, listener);
        }
        let mut brokers = BTreeMap::new();
        for (id, listener) in listeners {
            brokers.insert(id, Broker::start(id, listener, groups, seed).await);
        }
        for broker in brokers.values() {
            for replica in broker.replicas.values() {
                citystream_raft::initialize_members(&replica.raft, members.clone())
                    .await
                    .expect("initialize");
            }
        }
        Cluster { brokers }
    }

    pub fn replicas(&self, group: GroupId) -> impl Iterator<Item = (u64, &Replica)> {
        self.brokers
            .iter()
            .map(move |(id, broker)| (*id, &broker.replicas[&group]))
    }

    /// Waits for a leader of `group` among the running brokers (the highest
    /// term wins while an old leader still believes).
    pub async fn leader(&self, group: GroupId) -> u64 {
        let found = tokio::time::timeout(WAIT, async {
            loop {
                let leader = self
                    .replicas(group)
                    .filter(|(_, replica)| replica.raft.is_leader())
                    .max_by_key(|(_, r)| r.raft.metrics().borrow_watched().current_term)
                    .map(|(id, _)| id);
                if let Some(id) = leader {
                    return id;
                }
                tokio::time::sleep(POLL).await;
            }
        });
        found.await.expect("a leader is elected in time")
    }

    /// Writes through whoever leads `group`, retrying (bounded) across
    /// elections. A retried batch may land twice; callers check acked ones.
    pub async fn write(&self, group: GroupId, batch: Bytes) -> Appended {
        for _ in 0..10 {
            let leader = self.leader(group).await;
            let raft = &self.brokers[&leader].replicas[&group].raft;
            let write = raft.client_write(BatchData::new(batch.clone()));
            match tokio::time::timeout(WRITE_WAIT, write).await {
                Ok(Ok(response)) => return response.data,
                Ok(Err(e)) => tracing::info!(leader, error = %e, "write failed; retrying"),
                Err(_) => tracing::info!(leader, "write timed out; retrying"),
            }
            // A leader just elected (by transfer, say) refuses writes until
            // a heartbeat round gives it a lease; give the ticker a turn.
            tokio::time::sleep(RETRY_PAUSE).await;
        }
        panic!("no write to {group} succeeded in 10 attempts");
    }

    /// Waits until every replica of `group` has applied its whole log and
    /// all logs end at the same offset; returns that offset.
    pub async fn settle(&self, group: GroupId) -> u64 {
        let settled = tokio::time::timeout(WAIT, async {
            loop {
                let ends: Vec<(u64, u64)> = self
                    .replicas(group)
                    .map(|(_, r)| (r.sm.high_watermark(), r.log.read().next_offset().0))
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

    /// Moves leadership of `group` to broker `to` with openraft's
    /// TransferLeader (which travels over the peer transport), retrying a
    /// bounded number of times.
    pub async fn transfer(&self, group: GroupId, to: u64) {
        for _ in 0..5 {
            let leader = self.leader(group).await;
            if leader == to {
                return;
            }
            let raft = &self.brokers[&leader].replicas[&group].raft;
            raft.trigger()
                .transfer_leader(to)
                .await
                .expect("leader runs");
            let target = &self.brokers[&to].replicas[&group].raft;
            let moved = tokio::time::timeout(WRITE_WAIT, async {
                while !target.is_leader() {
                    tokio::time::sleep(POLL).await;
                }
            });
            if moved.await.is_ok() {
                return;
            }
        }
        panic!("leadership of {group} did not move to broker {to}");
    }

    /// Crashes broker `id`: its server, Raft groups, ticker and links stop.
    pub async fn crash(&mut self, id: u64) {
        let broker = self.brokers.remove(&id).expect("a running broker");
        broker.stop().await;
    }

    pub async fn stop(self) {
        for (_, broker) in self.brokers {
            broker.stop().await;
        }
    }
}
