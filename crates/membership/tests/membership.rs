//! In-process clusters on 127.0.0.1 (port 0): convergence, propagation, failure
//! detection, restart with a new generation, and isolation from another cluster.
//! Every wait is bounded; elapsed times are printed (`--nocapture`) for the decision
//! record, never asserted beyond the generous bound.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use citystream_membership::{
    MemberState, MemberView, Membership, MembershipConfig, NodeId, NodeInfo,
};

/// Upper bound on every wait; the expected times are a few seconds.
const WAIT_MAX: Duration = Duration::from_secs(20);
const POLL_INTERVAL: Duration = Duration::from_millis(100);

fn listen_any() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn info(node: u32, cluster: &str) -> NodeInfo {
    NodeInfo::new(NodeId(node), cluster)
        .with_listener("native", format!("127.0.0.{node}:9400"))
        .with_listener("http", format!("127.0.0.{node}:6001"))
}

async fn start_at(
    node: u32,
    cluster: &str,
    listen: SocketAddr,
    seeds: &[SocketAddr],
) -> Membership {
    let mut config = MembershipConfig::new(NodeId(node), cluster, listen);
    config.seeds = seeds.to_vec();
    Membership::start(config, info(node, cluster))
        .await
        .unwrap()
}

async fn start(node: u32, cluster: &str, seeds: &[SocketAddr]) -> Membership {
    start_at(node, cluster, listen_any(), seeds).await
}

/// Polls `done` until it holds or `WAIT_MAX` passes; returns the time it took.
async fn wait_for(what: &str, mut done: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < WAIT_MAX,
            "timed out after {WAIT_MAX:?} waiting for {what}"
        );
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    let took = start.elapsed();
    eprintln!("{what}: {took:?}");
    took
}

fn state_of(members: &[MemberView], node: u32) -> Option<MemberState> {
    members
        .iter()
        .find(|member| member.info.node_id == NodeId(node))
        .map(|member| member.state)
}

fn all_alive(membership: &Membership, nodes: &[u32]) -> bool {
    let members = membership.members();
    members.len() == nodes.len()
        && nodes
            .iter()
            .all(|node| state_of(&members, *node) == Some(MemberState::Alive))
}

async fn three_node_cluster(cluster: &str) -> [Membership; 3] {
    let first = start(1, cluster, &[]).await;
    let seed = [first.local_gossip_addr()];
    let second = start(2, cluster, &seed).await;
    let third = start(3, cluster, &seed).await;
    let nodes = [first, second, third];
    wait_for("three nodes converge", || {
        nodes.iter().all(|node| all_alive(node, &[1, 2, 3]))
    })
    .await;
    nodes
}

async fn shutdown_all(nodes: impl IntoIterator<Item = Membership>) {
    for node in nodes {
        node.shutdown().await.unwrap();
    }
}

/// Three nodes with one seed converge: each lists all three Alive, with their listeners.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_converge_with_listeners() {
    let nodes = three_node_cluster("converge").await;
    for node in &nodes {
        let members = node.members();
        for member in &members {
            let id = member.info.node_id.0;
            assert_eq!(member.info, {
                let mut expected = info(id, "converge");
                expected.generation = member.info.generation;
                expected
            });
            assert_eq!(member.is_self, id == node.node_id().0);
            assert!(member.info.generation > 0);
        }
    }
    shutdown_all(nodes).await;
}

/// A change published with `update_local` reaches every other node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_local_propagates() {
    let nodes = three_node_cluster("update").await;
    nodes[1]
        .update_local(|info| {
            info.load.partitions_led = 7;
            info.load.bytes_in_per_s = 123_456;
            info.leaderships.insert("meta".into(), 4);
            info.leaderships.insert("t1/0".into(), 2);
            info.listeners
                .insert("mqtt".into(), "127.0.0.2:1883".into());
            info.listeners.remove("http");
        })
        .await
        .unwrap();
    let expected = nodes[1].local_info().await;
    wait_for("update reaches both peers", || {
        [&nodes[0], &nodes[2]]
            .iter()
            .all(|node| node.member(NodeId(2)).is_some_and(|m| m.info == expected))
    })
    .await;
    let refused = nodes[1].update_local(|info| info.node_id = NodeId(9)).await;
    assert!(refused.is_err());
    shutdown_all(nodes).await;
}

/// A node that stops is marked Dead by the others within the bounded wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_node_is_marked_dead() {
    let [first, second, third] = three_node_cluster("failure").await;
    third.shutdown().await.unwrap();
    let not_alive = wait_for("stopped node no longer Alive", || {
        [&first, &second]
            .iter()
            .all(|node| state_of(&node.members(), 3) != Some(MemberState::Alive))
    })
    .await;
    let dead = wait_for("stopped node Dead on both peers", || {
        [&first, &second]
            .iter()
            .all(|node| state_of(&node.members(), 3) == Some(MemberState::Dead))
    })
    .await;
    eprintln!(
        "failure detection: not Alive after {not_alive:?}, Dead after {:?}",
        not_alive + dead
    );
    shutdown_all([first, second]).await;
}

/// A node restarted with the same id and address is Alive again with a new generation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_node_rejoins_with_new_generation() {
    let [first, second, third] = three_node_cluster("restart").await;
    let old_generation = third.local_info().await.generation;
    let address = third.local_gossip_addr();
    third.shutdown().await.unwrap();
    // Generations are start times in milliseconds; make sure the clock has moved.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let restarted = start_at(3, "restart", address, &[first.local_gossip_addr()]).await;
    let new_generation = restarted.local_info().await.generation;
    assert!(new_generation > old_generation);
    wait_for("restarted node Alive with its new generation", || {
        [&first, &second].iter().all(|node| {
            node.member(NodeId(3)).is_some_and(|member| {
                member.state == MemberState::Alive && member.info.generation == new_generation
            })
        })
    })
    .await;
    wait_for("restarted node sees the cluster", || {
        all_alive(&restarted, &[1, 2, 3])
    })
    .await;
    shutdown_all([first, second, restarted]).await;
}

/// A node of another cluster that gossips with us is never listed, on either side.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_cluster_is_never_listed() {
    let first = start(1, "ours", &[]).await;
    let seed = [first.local_gossip_addr()];
    let foreign = start(9, "theirs", &seed).await;
    first.contact_peer(foreign.local_gossip_addr()).unwrap();
    // Positive control: a node of our cluster joins in the same window.
    let second = start(2, "ours", &seed).await;
    let listed_foreign = |node: &Membership, id| state_of(&node.members(), id).is_some();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(3) || !all_alive(&first, &[1, 2]) {
        assert!(
            start.elapsed() < WAIT_MAX,
            "our own cluster did not converge"
        );
        assert!(!listed_foreign(&first, 9) && !listed_foreign(&second, 9));
        assert!(!listed_foreign(&foreign, 1) && !listed_foreign(&foreign, 2));
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    assert_eq!(foreign.members().len(), 1);
    shutdown_all([first, second, foreign]).await;
}

/// The watch channel announces a join without polling.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_announces_a_join() {
    let first = start(1, "watch", &[]).await;
    let mut watch = first.watch();
    let second = start(2, "watch", &[first.local_gossip_addr()]).await;
    let started = Instant::now();
    tokio::time::timeout(
        WAIT_MAX,
        watch.wait_for(|members| state_of(members, 2) == Some(MemberState::Alive)),
    )
    .await
    .expect("join announced within the bound")
    .unwrap();
    eprintln!("join seen through watch: {:?}", started.elapsed());
    shutdown_all([first, second]).await;
}
