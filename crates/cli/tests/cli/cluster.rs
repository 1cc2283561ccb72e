//! Cluster mode of real `citystream broker` processes: three nodes started
//! with `--peers` see each other through gossip, a SIGKILLed node stops
//! being alive for the others, and a data dir refuses to start as another
//! node; a standalone broker refuses replica placement changes clearly.
//! Every wait is bounded; brokers are killed and reaped on drop.

use crate::harness::{COMMAND_TIMEOUT, TestBroker, binary};
use crate::test_cluster::{CLUSTER_ID, TestCluster, nodes_in_state};

fn status(broker: &TestBroker) -> serde_json::Value {
    let json = broker.run(&["cluster", "status", "--json"]);
    serde_json::from_str(json.trim()).expect("one JSON object")
}

/// Three brokers with `--peers` each list all three alive with their native
/// addresses and agree on a metadata leader; after one is SIGKILLed, the
/// other two stop listing it alive.
#[test]
fn three_nodes_find_each_other_and_notice_a_killed_one() {
    let mut cluster = TestCluster::start(3);
    for node_id in cluster.node_ids() {
        let status = cluster.wait_for(node_id, "three alive nodes", |status| {
            nodes_in_state(status, "alive") == [1, 2, 3]
        });
        assert_eq!(status["cluster_id"], CLUSTER_ID);
        for (node, address) in status["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .zip(cluster.addresses())
        {
            assert_eq!(node["addresses"]["native"], address.as_str());
        }
    }
    let status = cluster.wait_for(1, "a metadata leader", |status| {
        status["metadata_leader"].is_u64()
    });
    let leader = status["metadata_leader"].as_u64().unwrap();
    let text = cluster.broker(1).run(&["cluster", "status"]);
    assert!(
        text.contains(&format!("metadata leader: node {leader}")),
        "{text}"
    );

    cluster.kill(3);
    for node_id in [1, 2] {
        cluster.wait_for(node_id, "node 3 not alive", |status| {
            nodes_in_state(status, "alive") == [1, 2]
        });
    }
}

/// A standalone broker answers `cluster status` with itself alone, alive.
#[test]
fn standalone_broker_reports_itself() {
    let broker = TestBroker::start_with(
        &["--in-memory", "--node-id", "4", "--worker-threads", "2"],
        &[],
    );
    let status = status(&broker);
    assert_eq!(status["node_id"], 4);
    assert_eq!(nodes_in_state(&status, "alive"), [4]);
    assert_eq!(status["cluster_id"], "citystream");
    assert!(
        broker.ready_line.ends_with("(in memory; 2 worker threads)"),
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
