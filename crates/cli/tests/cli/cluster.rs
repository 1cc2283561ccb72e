//! Cluster mode of real `citystream broker` processes: three nodes started
//! with `--peers` see each other through gossip, a SIGKILLed node stops
//! being alive for the others, and a data dir refuses to start as another
//! node; a standalone broker refuses replica placement changes clearly.
//! Every wait is bounded; brokers are killed and reaped on drop.

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::harness::{COMMAND_TIMEOUT, TestBroker, binary};

const CLUSTER_ID: &str = "city-test";
/// How long gossip may take to converge, or to declare a node not alive.
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(20);
/// Attempts at starting the cluster when a picked port was taken meanwhile.
const START_ATTEMPTS_MAX: usize = 3;

/// A port free for both TCP and UDP on 127.0.0.1 a moment ago.
fn free_port() -> u16 {
    loop {
        let tcp = TcpListener::bind("127.0.0.1:0").expect("bind a TCP port");
        let port = tcp.local_addr().unwrap().port();
        if UdpSocket::bind(SocketAddr::from(([127, 0, 0, 1], port))).is_ok() {
            return port;
        }
    }
}

/// Starts `count` brokers on distinct free ports with `--peers` naming all
/// of them, retrying with new ports if one could not bind.
fn start_cluster(data: &Path, count: u32) -> Vec<TestBroker> {
    let mut last_error = String::new();
    for _ in 0..START_ATTEMPTS_MAX {
        let addresses: Vec<String> = (0..count)
            .map(|_| format!("127.0.0.1:{}", free_port()))
            .collect();
        match try_start_cluster(data, &addresses) {
            Ok(brokers) => return brokers,
            Err(error) => last_error = error,
        }
    }
    panic!("could not start a cluster: {last_error}");
}

fn try_start_cluster(data: &Path, addresses: &[String]) -> Result<Vec<TestBroker>, String> {
    let peers: Vec<String> = (1..)
        .zip(addresses)
        .map(|(node_id, address)| format!("{node_id}={address}"))
        .collect();
    let peers = peers.join(",");
    let mut brokers = Vec::new();
    for (node_id, address) in (1..).zip(addresses) {
        let dir = data.join(format!("node-{node_id}"));
        let node_id = node_id.to_string();
        let flags = [
            "--data-dir",
            dir.to_str().expect("UTF-8 temp path"),
            "--node-id",
            &node_id,
            "--cluster-id",
            CLUSTER_ID,
            "--peers",
            &peers,
        ];
        brokers.push(TestBroker::try_start(address, &flags, &[])?);
    }
    Ok(brokers)
}

fn status(broker: &TestBroker) -> serde_json::Value {
    let json = broker.run(&["cluster", "status", "--json"]);
    serde_json::from_str(json.trim()).expect("one JSON object")
}

/// Node ids this broker lists in `state`.
fn nodes_in_state(status: &serde_json::Value, state: &str) -> Vec<u64> {
    status["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .filter(|node| node["state"] == state)
        .map(|node| node["node_id"].as_u64().expect("node_id"))
        .collect()
}

/// Polls `cluster status` on `broker` until `done` holds, for at most
/// [`CONVERGE_TIMEOUT`]; returns the last status.
fn wait_for(
    broker: &TestBroker,
    what: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + CONVERGE_TIMEOUT;
    loop {
        let status = status(broker);
        if done(&status) {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "{what} not seen by {} within {CONVERGE_TIMEOUT:?}; last status {status}\nstderr:\n{}",
            broker.address,
            broker.stderr()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Three brokers with `--peers` each list all three alive with their native
/// addresses and agree on a metadata leader; after one is SIGKILLed, the
/// other two stop listing it alive.
#[test]
fn three_nodes_find_each_other_and_notice_a_killed_one() {
    let data = tempfile::tempdir().unwrap();
    let mut brokers = start_cluster(data.path(), 3);
    for broker in &brokers {
        let status = wait_for(broker, "three alive nodes", |status| {
            nodes_in_state(status, "alive") == [1, 2, 3]
        });
        assert_eq!(status["cluster_id"], CLUSTER_ID);
        for (node, peer) in status["nodes"].as_array().unwrap().iter().zip(&brokers) {
            assert_eq!(node["addresses"]["native"], peer.address.as_str());
        }
    }
    let status = wait_for(&brokers[0], "a metadata leader", |status| {
        status["metadata_leader"].is_u64()
    });
    let leader = status["metadata_leader"].as_u64().unwrap();
    let text = brokers[0].run(&["cluster", "status"]);
    assert!(text.contains(&format!("metadata leader: node {leader}")), "{text}");

    brokers[2].kill();
    for broker in &brokers[..2] {
        wait_for(broker, "node 3 not alive", |status| {
            nodes_in_state(status, "alive") == [1, 2]
        });
    }
}

/// A standalone broker answers `cluster status` with itself alone, alive.
#[test]
fn standalone_broker_reports_itself() {
    let broker = TestBroker::start_with(&["--in-memory", "--node-id", "4"], &[]);
    let status = status(&broker);
    assert_eq!(status["node_id"], 4);
    assert_eq!(nodes_in_state(&status, "alive"), [4]);
    assert_eq!(status["cluster_id"], "citystream");
    assert!(
        broker.ready_line.ends_with("(in memory)"),
        "{}",
        broker.ready_line
    );
}

/// A data dir stamped as node 3 of one cluster refuses to start as node 2
/// of another, with exit code 2 and both identities in the message.
#[test]
fn data_dir_of_another_node_is_refused() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_str().unwrap();
    let first = TestBroker::start_with(
        &[
            "--data-dir",
            dir,
            "--node-id",
            "3",
            "--cluster-id",
            "city-a",
        ],
        &[],
    );
    first.terminate();

    let output = assert_cmd::Command::new(binary())
        .args(["broker", "--data-dir", dir, "--listen", "127.0.0.1:0"])
        .args(["--node-id", "2", "--cluster-id", "city-b"])
        .timeout(COMMAND_TIMEOUT)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    let expected = format!(
        "data dir {dir} belongs to node 3 of cluster 'city-a'; \
         refusing to start as node 2 of cluster 'city-b'"
    );
    assert!(stderr.contains(&expected), "{stderr}");

    let again = TestBroker::start_with(
        &[
            "--data-dir",
            dir,
            "--node-id",
            "3",
            "--cluster-id",
            "city-a",
        ],
        &[],
    );
    again.terminate();
}

/// A standalone broker refuses `cluster rebalance` and `cluster remove-node`
/// with exit code 1 and the broker's reason, in text and `--json` modes.
#[test]
fn standalone_broker_refuses_placement_changes() {
    let broker = TestBroker::start_with(&["--in-memory"], &[]);
    let commands: [&[&str]; 3] = [
        &["cluster", "rebalance"],
        &["cluster", "rebalance", "--dry-run", "--json"],
        &["cluster", "remove-node", "2"],
    ];
    for args in commands {
        let (code, stderr) = broker.run_failing(args, "");
        assert_eq!(code, 1, "{args:?}: {stderr}");
        assert!(
            stderr.contains("INVALID_REQUEST (18)"),
            "{args:?}: {stderr}"
        );
        assert!(stderr.contains("needs cluster mode"), "{args:?}: {stderr}");
    }
}

/// A node id that is not a number is a usage error (exit code 2) naming
/// the argument, before any broker is contacted.
#[test]
fn remove_node_needs_a_numeric_node_id() {
    let output = assert_cmd::Command::new(binary())
        .args(["cluster", "remove-node", "three", "--broker", "127.0.0.1:1"])
        .timeout(COMMAND_TIMEOUT)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("invalid value 'three' for '<NODE_ID>'"),
        "{stderr}"
    );
}
