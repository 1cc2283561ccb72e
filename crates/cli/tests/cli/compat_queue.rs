//! The queue-compatibility listener with real processes: three nodes with
//! `--compat-queue`; a producer and a consumer registered through node 1;
//! the leader of the queue topic SIGKILLed; the same ids keep working
//! through the survivors, and the consumer gets every message once, in
//! order, with `/size` agreeing.

use crate::failover::create_replicated_topic;
use crate::harness::{http_request, listener_address};
use crate::test_cluster::TestCluster;
use crate::workload::partition_leader;

fn queue(cluster: &TestCluster, node_id: u32) -> String {
    listener_address(&cluster.broker(node_id).ready_line, "compat-queue on ")
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{body:?}: {e}"))
}

fn produce(address: &str, producer: u64, range: std::ops::RangeInclusive<u32>) {
    for i in range {
        let body =
            format!(r#"{{"topic":"orders","producer_id":{producer},"message":{{"n":{i}}}}}"#);
        let (status, answer) = http_request(address, "POST", "/producer/produce", &body);
        assert_eq!(status, 200, "message {i}: {answer}");
    }
}

/// Ids, positions and messages survive the death of the queue topic's leader.
#[test]
fn queue_clients_carry_on_after_a_node_is_killed() {
    let mut cluster = TestCluster::start_with_flags(3, &["--compat-queue", "127.0.0.1:0"]);
    // A user topic first, so the cluster has formed and placed a topic.
    create_replicated_topic(&cluster, "warm-up", 1);
    let first = queue(&cluster, 1);
    let (status, answer) = http_request(
        &first,
        "POST",
        "/producer/register",
        r#"{"topic":"orders"}"#,
    );
    assert_eq!(status, 200, "{answer}");
    let producer = json(&answer)["producer_id"]
        .as_u64()
        .expect("a producer id");
    let (status, answer) = http_request(
        &first,
        "POST",
        "/consumer/register",
        r#"{"topic":"orders"}"#,
    );
    assert_eq!(status, 200, "{answer}");
    let consumer = json(&answer)["consumer_id"]
        .as_u64()
        .expect("a consumer id");
    produce(&first, producer, 1..=20);
    let status = cluster.wait_for(1, "a leader of the queue topic", |s| {
        partition_leader(s, "compat-queue.topic.0", 0) != 0
    });
    let leader = partition_leader(&status, "compat-queue.topic.0", 0) as u32;
    cluster.kill(leader);
    let survivor = queue(&cluster, leader % 3 + 1);
    produce(&survivor, producer, 21..=40);
    let size_path = format!("/size?topic=orders&consumer_id={consumer}");
    let (status, answer) = http_request(&survivor, "GET", &size_path, "");
    assert_eq!(
        (status, json(&answer)["size"].as_u64()),
        (200, Some(40)),
        "{answer}"
    );
    let other = queue(&cluster, (leader + 1) % 3 + 1);
    let consume_path = format!("/consumer/consume?topic=orders&consumer_id={consumer}");
    for i in 1..=40 {
        let via = if i % 2 == 0 { &survivor } else { &other };
        let (status, answer) = http_request(via, "GET", &consume_path, "");
        assert_eq!(status, 200, "message {i}: {answer}");
        assert_eq!(json(&answer)["message"]["n"], i, "{answer}");
    }
    let (status, answer) = http_request(&other, "GET", &consume_path, "");
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer.contains(&format!(
            "Empty logs for Comsumer:{consumer} for Topic:orders"
        )),
        "{answer}"
    );
}
