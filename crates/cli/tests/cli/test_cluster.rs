//! Test harness for cluster mode: real `citystream broker` processes, one
//! per node, on free ports of 127.0.0.1 (or given addresses, each node
//! perhaps in a network namespace of its own) with `--peers` naming all of
//! them and a data dir each under one temp dir. A node can be killed, frozen,
//! resumed, stopped and restarted on its address with its data dir. Every
//! wait is bounded; the brokers are killed and reaped on drop.

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::harness::TestBroker;

pub const CLUSTER_ID: &str = "city-test";
/// How long gossip, elections or a restart may take to show in `cluster status`.
pub const CONVERGE_TIMEOUT: Duration = Duration::from_secs(20);
/// Attempts at starting the cluster when a picked port was taken meanwhile.
const START_ATTEMPTS_MAX: usize = 3;
/// Attempts at restarting a node on its old port (the port may still be held).
const RESTART_ATTEMPTS_MAX: usize = 5;
const RESTART_BACKOFF: Duration = Duration::from_millis(300);

/// A port free for both TCP and UDP on 127.0.0.1 a moment ago.
pub fn free_port() -> u16 {
    loop {
        let tcp = TcpListener::bind("127.0.0.1:0").expect("bind a TCP port");
        let port = tcp.local_addr().unwrap().port();
        if UdpSocket::bind(SocketAddr::from(([127, 0, 0, 1], port))).is_ok() {
            return port;
        }
    }
}

/// Nodes `1..=count`; `brokers[i]` is node `i + 1`, `None` while it is down.
pub struct TestCluster {
    brokers: Vec<Option<TestBroker>>,
    addresses: Vec<String>,
    /// Per node, what runs its binary (empty: run directly).
    launchers: Vec<Vec<String>>,
    /// Flags every node gets besides the cluster ones (e.g. `--http`).
    extra_flags: Vec<String>,
    peers: String,
    data: tempfile::TempDir,
}

impl TestCluster {
    /// Starts `count` nodes, retrying with new ports if one could not bind.
    pub fn start(count: u32) -> TestCluster {
        TestCluster::start_with_flags(count, &[])
    }

    /// As [`TestCluster::start`], every node also given `flags`.
    pub fn start_with_flags(count: u32, flags: &[&str]) -> TestCluster {
        let mut last_error = String::new();
        let flags: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
        for _ in 0..START_ATTEMPTS_MAX {
            let addresses = (0..count)
                .map(|_| format!("127.0.0.1:{}", free_port()))
                .collect();
            let launchers = vec![Vec::new(); count as usize];
            match TestCluster::try_start(addresses, launchers, flags.clone()) {
                Ok(cluster) => return cluster,
                Err(error) => last_error = error,
            }
        }
        panic!("could not start a cluster: {last_error}");
    }

    /// Starts node `i` at `addresses[i - 1]` run by `launchers[i - 1]`
    /// (e.g. in a network namespace of its own).
    pub fn start_via(addresses: Vec<String>, launchers: Vec<Vec<String>>) -> TestCluster {
        TestCluster::try_start(addresses, launchers, Vec::new())
            .unwrap_or_else(|error| panic!("could not start a cluster: {error}"))
    }

    fn try_start(
        addresses: Vec<String>,
        launchers: Vec<Vec<String>>,
        extra_flags: Vec<String>,
    ) -> Result<TestCluster, String> {
        assert_eq!(addresses.len(), launchers.len());
        let peers: Vec<String> = (1..)
            .zip(&addresses)
            .map(|(node_id, address)| format!("{node_id}={address}"))
            .collect();
        let mut cluster = TestCluster {
            brokers: Vec::new(),
            peers: peers.join(","),
            addresses,
            launchers,
            extra_flags,
            data: tempfile::tempdir().expect("temp dir for the cluster"),
        };
        for node_id in 1..=cluster.addresses.len() as u32 {
            let broker = cluster.try_start_node(node_id)?;
            cluster.brokers.push(Some(broker));
        }
        Ok(cluster)
    }

    fn try_start_node(&self, node_id: u32) -> Result<TestBroker, String> {
        let dir = self.data_dir(node_id);
        let node = node_id.to_string();
        let mut flags = vec![
            "--data-dir",
            dir.to_str().expect("UTF-8 temp path"),
            "--node-id",
            &node,
            "--cluster-id",
            CLUSTER_ID,
            "--peers",
            &self.peers,
        ];
        flags.extend(self.extra_flags.iter().map(String::as_str));
        let launcher: Vec<&str> = self.launchers[index(node_id)]
            .iter()
            .map(String::as_str)
            .collect();
        TestBroker::try_start_via(&launcher, self.address(node_id), &flags, &[])
    }

    pub fn node_ids(&self) -> std::ops::RangeInclusive<u32> {
        1..=self.addresses.len() as u32
    }

    pub fn address(&self, node_id: u32) -> &str {
        &self.addresses[index(node_id)]
    }

    pub fn addresses(&self) -> &[String] {
        &self.addresses
    }

    /// The node's data dir (kept while the node is down).
    pub fn data_dir(&self, node_id: u32) -> PathBuf {
        self.data.path().join(format!("node-{node_id}"))
    }

    /// The running broker of `node_id`; panics if it is down.
    pub fn broker(&self, node_id: u32) -> &TestBroker {
        self.brokers[index(node_id)]
            .as_ref()
            .unwrap_or_else(|| panic!("node {node_id} is down"))
    }

    /// SIGKILL: no clean shutdown.
    pub fn kill(&mut self, node_id: u32) {
        let mut broker = self.brokers[index(node_id)].take().expect("node is up");
        broker.kill();
    }

    /// SIGTERM and a bounded wait for a clean exit.
    pub fn terminate(&mut self, node_id: u32) {
        let broker = self.brokers[index(node_id)].take().expect("node is up");
        broker.terminate();
    }

    /// Stops every running node cleanly.
    pub fn terminate_all(&mut self) {
        for node_id in self.node_ids() {
            if self.brokers[index(node_id)].is_some() {
                self.terminate(node_id);
            }
        }
    }

    /// Starts a down node again on its address with its data dir, retrying
    /// a few times while the old port is still held.
    pub fn restart(&mut self, node_id: u32) {
        assert!(self.brokers[index(node_id)].is_none(), "node is up");
        let mut last_error = String::new();
        for _ in 0..RESTART_ATTEMPTS_MAX {
            match self.try_start_node(node_id) {
                Ok(broker) => {
                    self.brokers[index(node_id)] = Some(broker);
                    return;
                }
                Err(error) => last_error = error,
            }
            std::thread::sleep(RESTART_BACKOFF);
        }
        panic!("node {node_id} did not restart: {last_error}");
    }

    /// `cluster status --json` as node `node_id` answers it.
    pub fn status(&self, node_id: u32) -> serde_json::Value {
        let json = self.broker(node_id).run(&["cluster", "status", "--json"]);
        serde_json::from_str(json.trim()).expect("one JSON object")
    }

    /// Polls node `node_id`'s status until `done` holds, for at most
    /// [`CONVERGE_TIMEOUT`]; returns the last status.
    pub fn wait_for(
        &self,
        node_id: u32,
        what: &str,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + CONVERGE_TIMEOUT;
        loop {
            let status = self.status(node_id);
            if done(&status) {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{what} not seen by node {node_id} within {CONVERGE_TIMEOUT:?}; \
                 last status {status}\nstderr:\n{}",
                self.broker(node_id).stderr()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

fn index(node_id: u32) -> usize {
    assert!(node_id >= 1, "node ids start at 1");
    node_id as usize - 1
}

/// Node ids `status` lists in `state`.
pub fn nodes_in_state(status: &serde_json::Value, state: &str) -> Vec<u64> {
    status["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .filter(|node| node["state"] == state)
        .map(|node| node["node_id"].as_u64().expect("node_id"))
        .collect()
}
