//! Failover of real processes (issue test 9b): three `citystream broker`
//! nodes, a topic of 3 partitions with 3 replicas, and an idempotent
//! `acks=quorum` producer running while a node is killed, frozen, or every
//! node restarted in turn. Afterwards every acknowledged record is read
//! exactly once, in order, through each node, and the replica logs on disk
//! are byte-identical. Nothing asserts on timing; every wait is bounded.

use std::time::{Duration, Instant};

use crate::netns::NetnsHosts;
use crate::test_cluster::{CONVERGE_TIMEOUT, TestCluster, nodes_in_state};
use crate::workload::{
    Load, PARTITIONS, by_position, check_read, check_replica_logs_identical,
    led_by_preferred_replicas, partition_leader, read_through, wait_for_replicas_in_sync,
};

const TOPIC: &str = "failover";
/// Records acknowledged before a disruption, and again after each step.
const PROGRESS_RECORDS: usize = 60;
/// With network namespaces: brokers are hosts 1 to 3, the client host 4.
pub const CLIENT_HOST: u32 = 4;
/// Every broker host has its own address, so all can use one port.
pub const NETNS_PORT: u16 = 9400;

/// Starts three nodes and creates [`TOPIC`] with a leader for each partition.
fn cluster_with_topic() -> TestCluster {
    with_topic(TestCluster::start(3))
}

/// Waits for `cluster` to form and creates [`TOPIC`] with a leader for
/// each partition.
fn with_topic(cluster: TestCluster) -> TestCluster {
    create_replicated_topic(&cluster, TOPIC, PARTITIONS);
    cluster
}

/// Waits for the three nodes of `cluster` to form, creates `topic` with
/// `partitions` partitions of 3 replicas, and waits for a leader of each.
pub fn create_replicated_topic(cluster: &TestCluster, topic: &str, partitions: u32) {
    for node_id in cluster.node_ids() {
        cluster.wait_for(node_id, "three alive nodes and a metadata leader", |s| {
            nodes_in_state(s, "alive") == [1, 2, 3] && s["metadata_leader"].is_u64()
        });
    }
    create_topic(cluster, topic, partitions);
    for node_id in cluster.node_ids() {
        cluster.wait_for(node_id, "a leader for every partition", |s| {
            (0..partitions).all(|p| partition_leader(s, topic, p) != 0)
        });
    }
}

/// Creates `topic`, retrying (bounded) while the metadata has not yet
/// registered all three brokers (gossip sees them first).
fn create_topic(cluster: &TestCluster, topic: &str, partitions: u32) {
    let partitions = partitions.to_string();
    let args = [
        "topic",
        "create",
        topic,
        "--partitions",
        &partitions,
        "--replication",
        "3",
    ];
    let deadline = Instant::now() + CONVERGE_TIMEOUT;
    loop {
        let output = cluster
            .broker(1)
            .command(&args)
            .output()
            .expect("run citystream");
        if output.status.success() {
            return;
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("exceeds the") && Instant::now() < deadline,
            "topic create failed: {stderr}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The leader of partition 0 as node `via` sees it.
fn leader_of_partition_0(cluster: &TestCluster, via: u32) -> u32 {
    let status = cluster.wait_for(via, "a leader of partition 0", |s| {
        partition_leader(s, TOPIC, 0) != 0
    });
    partition_leader(&status, TOPIC, 0) as u32
}

/// Another node than `node_id`.
fn other_than(node_id: u32) -> u32 {
    node_id % 3 + 1
}

/// Waits until node `via` names a leader of partition 0 other than `old`.
fn wait_for_new_leader(cluster: &TestCluster, via: u32, old: u32) {
    cluster.wait_for(via, "a new leader of partition 0", |s| {
        let leader = partition_leader(s, TOPIC, 0);
        leader != 0 && leader != u64::from(old)
    });
}

/// Waits until node `node_id` is alive for every node again and knows a
/// leader for every partition.
fn wait_until_back(cluster: &TestCluster, node_id: u32) {
    for via in cluster.node_ids() {
        cluster.wait_for(via, &format!("node {node_id} back"), |s| {
            nodes_in_state(s, "alive") == [1, 2, 3]
                && (0..PARTITIONS).all(|p| partition_leader(s, TOPIC, p) != 0)
        });
    }
}

/// Stops the load and checks what it left: every record acknowledged,
/// each read back through every node, then the replica logs compared with
/// every node stopped.
fn stop_and_check(mut cluster: TestCluster, load: Load) {
    let outcome = load.stop();
    // With idempotence and retries spanning an election, no record should
    // be given up on.
    assert!(
        outcome.failures.is_empty(),
        "{} records not acknowledged, e.g. {:?}",
        outcome.failures.len(),
        &outcome.failures[..outcome.failures.len().min(5)]
    );
    assert!(!outcome.acked.is_empty(), "nothing was acknowledged");
    wait_for_replicas_in_sync(&cluster, TOPIC);
    let first = read_through(&cluster, 1, TOPIC);
    check_read(&outcome.acked, &first, 1);
    let first = by_position(first);
    for node_id in [2, 3] {
        let read = read_through(&cluster, node_id, TOPIC);
        check_read(&outcome.acked, &read, node_id);
        let read = by_position(read);
        let first_difference = read.iter().zip(&first).find(|(a, b)| a != b);
        assert!(
            read == first,
            "node {node_id} reads {} records, node 1 {}; first difference {first_difference:?}",
            read.len(),
            first.len()
        );
    }
    cluster.terminate_all();
    check_replica_logs_identical(&cluster);
}

/// SIGKILL of partition 0's leader while producing, then its restart:
/// another node takes over and no acknowledged record is lost or doubled;
/// once back and caught up, the node leads its preferred partitions again.
#[test]
fn leader_killed_and_restarted() {
    let mut cluster = cluster_with_topic();
    let load = Load::start(&cluster, TOPIC);
    load.wait_for_progress(PROGRESS_RECORDS, "before the kill");
    let leader = leader_of_partition_0(&cluster, 1);
    cluster.kill(leader);
    // Read at once, while the survivors may still name the dead leader:
    // the reader retries until a new one leads partition 0.
    let read = read_through(&cluster, other_than(leader), TOPIC);
    assert!(read.iter().any(|record| record.partition == 0), "{read:?}");
    wait_for_new_leader(&cluster, other_than(leader), leader);
    load.wait_for_progress(PROGRESS_RECORDS, "with the old leader dead");
    cluster.restart(leader);
    wait_until_back(&cluster, leader);
    load.wait_for_progress(PROGRESS_RECORDS, "after the restart");
    // Once caught up, the restarted node gets back the partitions it is
    // the preferred leader of; the producer follows.
    cluster.wait_for(
        leader,
        "every partition led by its preferred replica",
        |s| led_by_preferred_replicas(s, TOPIC),
    );
    load.wait_for_progress(PROGRESS_RECORDS, "after leadership moved back");
    stop_and_check(cluster, load);
}

/// SIGSTOP of partition 0's leader while producing until another node
/// leads it, then SIGCONT: the old leader steps down and catches up.
#[test]
fn leader_frozen_and_resumed() {
    let cluster = cluster_with_topic();
    let load = Load::start(&cluster, TOPIC);
    load.wait_for_progress(PROGRESS_RECORDS, "before the freeze");
    let leader = leader_of_partition_0(&cluster, 1);
    cluster.broker(leader).freeze();
    wait_for_new_leader(&cluster, other_than(leader), leader);
    load.wait_for_progress(PROGRESS_RECORDS, "with the old leader frozen");
    cluster.broker(leader).resume();
    wait_until_back(&cluster, leader);
    load.wait_for_progress(PROGRESS_RECORDS, "after the resume");
    stop_and_check(cluster, load);
}

/// SIGSTOP of a follower of partition 0 while producing, then SIGCONT:
/// the quorum goes on without it and it catches up.
#[test]
fn follower_frozen_and_resumed() {
    let cluster = cluster_with_topic();
    let load = Load::start(&cluster, TOPIC);
    load.wait_for_progress(PROGRESS_RECORDS, "before the freeze");
    let follower = other_than(leader_of_partition_0(&cluster, 1));
    cluster.broker(follower).freeze();
    load.wait_for_progress(PROGRESS_RECORDS, "with a follower frozen");
    cluster.broker(follower).resume();
    wait_until_back(&cluster, follower);
    load.wait_for_progress(PROGRESS_RECORDS, "after the resume");
    stop_and_check(cluster, load);
}

/// Every node in turn stopped with SIGTERM and restarted on its data dir
/// while producing, each back in `cluster status` before the next.
#[test]
fn rolling_restart() {
    let mut cluster = cluster_with_topic();
    let load = Load::start(&cluster, TOPIC);
    load.wait_for_progress(PROGRESS_RECORDS, "before the restarts");
    for node_id in cluster.node_ids() {
        cluster.terminate(node_id);
        load.wait_for_progress(PROGRESS_RECORDS, &format!("with node {node_id} down"));
        cluster.restart(node_id);
        wait_until_back(&cluster, node_id);
    }
    load.wait_for_progress(PROGRESS_RECORDS, "after the restarts");
    stop_and_check(cluster, load);
}

/// Partition 0's leader cut off from the other two brokers (its packets to
/// and from them silently dropped; the client still reaches every node)
/// while producing, until another node leads partition 0, then healed:
/// the old leader's uncommitted tail is replaced, and the producer's
/// retries land once. Each broker runs in a network namespace of its own, the client side
/// (producer, CLI) in a fourth. Skipped, saying why, where namespaces
/// cannot be made (not root, no `netns-hosts`).
#[test]
fn leader_cut_off_and_healed() {
    let hosts = match NetnsHosts::up(CLIENT_HOST) {
        Ok(hosts) => hosts,
        Err(reason) => {
            eprintln!("skipping leader_cut_off_and_healed: {reason}");
            return;
        }
    };
    // A thread of its own moves into the client host, so no other test
    // (nor the harness thread) shares its namespace; a panic in it fails
    // the test when the scope ends, before the hosts are deleted.
    std::thread::scope(|scope| {
        scope.spawn(|| {
            hosts.enter(CLIENT_HOST);
            cut_off_and_heal(&hosts);
        });
    });
}

fn cut_off_and_heal(hosts: &NetnsHosts) {
    let addresses = (1..CLIENT_HOST)
        .map(|host| format!("{}:{NETNS_PORT}", hosts.address(host)))
        .collect();
    let launchers = (1..CLIENT_HOST).map(|host| hosts.launcher(host)).collect();
    let cluster = with_topic(TestCluster::start_via(addresses, launchers));
    let load = Load::start(&cluster, TOPIC);
    load.wait_for_progress(PROGRESS_RECORDS, "before the cut");
    let leader = leader_of_partition_0(&cluster, 1);
    let others: Vec<u32> = cluster.node_ids().filter(|&n| n != leader).collect();
    for &other in &others {
        hosts.cut(leader, other);
    }
    wait_for_new_leader(&cluster, others[0], leader);
    // The cut-off leader stops claiming the partition once its quorum
    // lease runs out, and the producer usually finds the new leader during
    // the cut; under heavy CPU contention it was seen to stall until the
    // heal, so progress is required only after it.
    for &other in &others {
        hosts.heal(leader, other);
    }
    wait_until_back(&cluster, leader);
    load.wait_for_progress(PROGRESS_RECORDS, "after the heal");
    stop_and_check(cluster, load);
}
