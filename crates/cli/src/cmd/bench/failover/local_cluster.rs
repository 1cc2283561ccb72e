//! A 3-node cluster of `citystream broker` child processes of this very
//! binary on free 127.0.0.1 ports, for `bench failover`: start, SIGKILL one
//! node, restart it on its data dir, and ask any node for the cluster status.
//! Every child is killed and reaped when its [`NodeProcess`] is dropped, so
//! an error, a panic or an interrupted run leaves nothing running. It knows
//! nothing of topics or produce; `trial.rs` does.

use std::fs::{File, OpenOptions};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail};
use citystream_client::{Client, ClientConfig};
use citystream_protocol::{ClusterStatusResponse, NodeState};
use tokio::time::Instant;

/// Nodes in the cluster (node ids 1..=NODE_COUNT).
pub const NODE_COUNT: u32 = 3;
/// How long a started cluster may take until every node sees the others.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Pause between two polls of a condition.
pub const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// Attempts at finding a port free for both TCP (native) and UDP (gossip).
const PORT_ATTEMPTS_MAX: u32 = 100;
/// Timeouts of the bench's own status requests: a dead node must not stall a poll.
const STATUS_TIMEOUT_MS: u64 = 1_000;

/// Broker flags the bench passes through.
#[derive(Debug, Clone)]
pub struct BrokerSettings {
    pub heartbeat_ms: u64,
    pub election_timeout_ms: u64,
    pub fsync: String,
}

/// One broker child; SIGKILLed and reaped on drop.
struct NodeProcess {
    child: Child,
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        // Child::kill is SIGKILL; the node may already have exited.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct LocalCluster {
    binary: PathBuf,
    data_dir: PathBuf,
    settings: BrokerSettings,
    /// `127.0.0.1:port` of node `index + 1`.
    addresses: Vec<String>,
    /// `None` while a node is killed.
    processes: Vec<Option<NodeProcess>>,
}

impl LocalCluster {
    /// Starts the nodes under `data_dir/node{1,2,3}` and waits until each
    /// sees all of them alive and a metadata leader.
    pub async fn start(data_dir: &Path, settings: BrokerSettings) -> anyhow::Result<LocalCluster> {
        let binary = std::env::current_exe().context("finding the citystream binary")?;
        let addresses = (0..NODE_COUNT)
            .map(|_| free_port().map(|port| format!("127.0.0.1:{port}")))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let mut cluster = LocalCluster {
            binary,
            data_dir: data_dir.to_path_buf(),
            settings,
            addresses,
            processes: (0..NODE_COUNT).map(|_| None).collect(),
        };
        for node_id in 1..=NODE_COUNT {
            cluster.spawn(node_id)?;
        }
        cluster.wait_until_formed().await?;
        Ok(cluster)
    }

    pub fn address(&self, node_id: u32) -> &str {
        &self.addresses[index(node_id)]
    }

    pub fn bootstrap(&self) -> Vec<String> {
        self.addresses.clone()
    }

    /// SIGKILLs a node and reaps it (its data dir stays); returns when the
    /// signal was sent.
    pub fn kill(&mut self, node_id: u32) -> Instant {
        let mut process = self.processes[index(node_id)]
            .take()
            .unwrap_or_else(|| panic!("kill of a stopped node {node_id}"));
        let _ = process.child.kill();
        let killed_at = Instant::now();
        drop(process); // reaps it
        killed_at
    }

    /// Starts a node again on its data dir and address.
    pub fn restart(&mut self, node_id: u32) -> anyhow::Result<()> {
        assert!(
            self.processes[index(node_id)].is_none(),
            "restart of a running node {node_id}"
        );
        self.spawn(node_id)
    }

    /// Errs if a node that should run has exited (its log says why).
    pub fn check_running(&mut self) -> anyhow::Result<()> {
        for node_id in 1..=NODE_COUNT {
            let log = self.log_path(node_id);
            if let Some(process) = self.processes[index(node_id)].as_mut()
                && let Some(status) = process.child.try_wait().context("polling a node")?
            {
                bail!("node {node_id} exited ({status}); see {}", log.display());
            }
        }
        Ok(())
    }

    /// The cluster status as `node_id` sees it; `None` if it does not answer.
    pub async fn status(&self, node_id: u32) -> Option<ClusterStatusResponse> {
        let mut config = ClientConfig::new(self.address(node_id));
        config.client_id = "citystream-bench-failover".to_string();
        config.connect_timeout_ms = STATUS_TIMEOUT_MS;
        config.request_timeout_ms = STATUS_TIMEOUT_MS;
        let client = Client::connect(config).await.ok()?;
        client.admin().cluster_status().await.ok()
    }

    fn log_path(&self, node_id: u32) -> PathBuf {
        self.data_dir.join(format!("node{node_id}.log"))
    }

    fn spawn(&mut self, node_id: u32) -> anyhow::Result<()> {
        let node_dir = self.data_dir.join(format!("node{node_id}"));
        std::fs::create_dir_all(&node_dir)
            .with_context(|| format!("creating {}", node_dir.display()))?;
        let log = self.open_log(node_id)?;
        let peers: Vec<String> = (1..=NODE_COUNT)
            .map(|id| format!("{id}={}", self.address(id)))
            .collect();
        let settings = &self.settings;
        let child = Command::new(&self.binary)
            .arg("broker")
            .arg("--data-dir")
            .arg(&node_dir)
            .args(["--node-id", &node_id.to_string(), "--cluster-id", "bench"])
            .args([
                "--listen",
                self.address(node_id),
                "--peers",
                &peers.join(","),
            ])
            .args(["--heartbeat-ms", &settings.heartbeat_ms.to_string()])
            .args([
                "--election-timeout-ms",
                &settings.election_timeout_ms.to_string(),
            ])
            .args(["--fsync", &settings.fsync])
            .stdin(Stdio::null())
            .stdout(log.try_clone().context("duplicating the log file")?)
            .stderr(log)
            .spawn()
            .context("starting a broker")?;
        self.processes[index(node_id)] = Some(NodeProcess { child });
        Ok(())
    }

    fn open_log(&self, node_id: u32) -> anyhow::Result<File> {
        let path = self.log_path(node_id);
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))
    }

    async fn wait_until_formed(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        for node_id in 1..=NODE_COUNT {
            loop {
                self.check_running()?;
                if let Some(status) = self.status(node_id).await
                    && status.metadata_leader.is_some()
                    && alive_nodes(&status) == NODE_COUNT as usize
                {
                    break;
                }
                if Instant::now() > deadline {
                    bail!("the cluster did not form within {READY_TIMEOUT:?}");
                }
                tokio::time::sleep(POLL_INTERVAL).await;
            }
        }
        Ok(())
    }
}

pub fn alive_nodes(status: &ClusterStatusResponse) -> usize {
    status
        .nodes
        .iter()
        .filter(|node| node.state == NodeState::Alive)
        .count()
}

fn index(node_id: u32) -> usize {
    assert!(
        (1..=NODE_COUNT).contains(&node_id),
        "node id {node_id} out of range"
    );
    (node_id - 1) as usize
}

/// A port free for both TCP and UDP on 127.0.0.1 a moment ago (a broker
/// binds both: native listener and gossip).
fn free_port() -> anyhow::Result<u16> {
    for _ in 0..PORT_ATTEMPTS_MAX {
        let tcp = TcpListener::bind("127.0.0.1:0").context("binding a TCP port")?;
        let port = tcp.local_addr().context("a bound address")?.port();
        if UdpSocket::bind(SocketAddr::from(([127, 0, 0, 1], port))).is_ok() {
            return Ok(port);
        }
    }
    bail!("no port free for TCP and UDP after {PORT_ATTEMPTS_MAX} attempts")
}
