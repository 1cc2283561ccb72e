//! The city-compatibility listener with real processes: three nodes with
//! `--compat-city`; every node names the same leader (the metadata
//! leader, as a JSON integer), answers health and ping as the original
//! did, and serves the same `/logs` of objects published through another
//! node, also after the topic's leader is SIGKILLed.

use crate::failover::create_replicated_topic;
use crate::harness::{http_request, listener_address};
use crate::test_cluster::TestCluster;
use crate::workload::partition_leader;

fn city(cluster: &TestCluster, node_id: u32) -> String {
    listener_address(&cluster.broker(node_id).ready_line, "compat-city on ")
}

fn publish(address: &str, range: std::ops::RangeInclusive<u32>) {
    for i in range {
        let body =
            format!(r#"{{"topic":"air","data":{{"n":{i},"city":"Zürich"}},"priority":"high"}}"#);
        let (status, answer) = http_request(address, "POST", "/publish", &body);
        assert_eq!((status, answer.as_str()), (200, ""), "publish {i}");
    }
}

/// The `n` of each object `/logs/air` lists on the node at `address`.
fn logged(address: &str) -> Vec<u64> {
    let (status, body) = http_request(address, "GET", "/logs/air", "");
    assert_eq!(status, 200, "{body}");
    let logs: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(logs["topic"], "air");
    logs["logs"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|object| {
            assert_eq!(object["data"]["city"], "Zürich", "{object}");
            object["data"]["n"].as_u64().expect("n")
        })
        .collect()
}

#[test]
fn every_node_answers_the_same_before_and_after_a_node_is_killed() {
    let mut cluster = TestCluster::start_with_flags(3, &["--compat-city", "127.0.0.1:0"]);
    create_replicated_topic(&cluster, "warm-up", 1);
    let status = cluster.status(1);
    let metadata_leader = status["metadata_leader"]
        .as_u64()
        .expect("a metadata leader");
    for node in cluster.node_ids() {
        let address = city(&cluster, node);
        let (status, body) = http_request(&address, "GET", "/get_leader", "");
        assert_eq!(
            (status, body),
            (200, format!(r#"{{"leader_id":{metadata_leader}}}"#))
        );
        let (status, body) = http_request(&address, "GET", "/health", "");
        assert_eq!((status, body.as_str()), (200, "OK"));
        let (status, body) = http_request(&address, "GET", "/ping", "");
        assert_eq!((status, body.as_str()), (200, r#"{"status":"alive"}"#));
    }
    publish(&city(&cluster, 1), 1..=10);
    for node in cluster.node_ids() {
        assert_eq!(
            logged(&city(&cluster, node)),
            (1..=10).collect::<Vec<u64>>(),
            "node {node}"
        );
    }
    let leader = {
        let status = cluster.wait_for(1, "a leader of air", |s| partition_leader(s, "air", 0) != 0);
        partition_leader(&status, "air", 0) as u32
    };
    cluster.kill(leader);
    let survivor = leader % 3 + 1;
    publish(&city(&cluster, survivor), 11..=15);
    for node in cluster.node_ids().filter(|node| *node != leader) {
        assert_eq!(
            logged(&city(&cluster, node)),
            (1..=15).collect::<Vec<u64>>(),
            "node {node}"
        );
    }
}
