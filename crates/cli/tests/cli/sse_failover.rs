//! Server-Sent Events across a leader failover, with real processes: three
//! nodes with `--http`, a replication-3 topic; a browser-like client reads
//! part of the stream from the partition's leader, goes away, the leader is
//! SIGKILLed, more records are produced, and the client reconnects to
//! another node with its `Last-Event-ID`: it gets exactly the rest, in
//! order, once.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::failover::create_replicated_topic;
use crate::test_cluster::TestCluster;
use crate::workload::partition_leader;

const TOPIC: &str = "sse-failover";
/// Bounds a wait for the stream's events.
const STREAM_TIMEOUT: Duration = Duration::from_secs(30);

/// The HTTP address a node's ready line names.
fn http_address(cluster: &TestCluster, node_id: u32) -> String {
    crate::harness::listener_address(&cluster.broker(node_id).ready_line, "http on ")
}

/// Reads `count` record events from the stream at `address` (HTTP/1.0, so
/// the body is not chunked), resuming after `last_event_id`; returns their
/// values and the last event's id.
fn read_events(address: &str, last_event_id: Option<&str>, count: usize) -> (Vec<String>, String) {
    let deadline = Instant::now() + STREAM_TIMEOUT;
    let mut stream = TcpStream::connect(address).expect("connect to the HTTP API");
    stream.set_read_timeout(Some(STREAM_TIMEOUT)).unwrap();
    let resume = last_event_id.map_or(String::new(), |id| format!("Last-Event-ID: {id}\r\n"));
    let request = format!(
        "GET /api/topics/{TOPIC}/stream?from=earliest HTTP/1.0\r\nHost: {address}\r\n{resume}\r\n"
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut lines = BufReader::new(stream).lines();
    let status = lines.next().expect("a status line").unwrap();
    assert!(status.contains(" 200 "), "{status}");
    let (mut values, mut id, mut last_id) = (Vec::new(), String::new(), String::new());
    while values.len() < count {
        assert!(
            Instant::now() < deadline,
            "only {} events within {STREAM_TIMEOUT:?}",
            values.len()
        );
        let line = lines.next().expect("the stream goes on").expect("a line");
        if let Some(value) = line.strip_prefix("id: ") {
            id = value.to_owned();
        } else if let Some(data) = line.strip_prefix("data: ") {
            let record: serde_json::Value = serde_json::from_str(data).expect("record JSON");
            values.push(record["value"].as_str().expect("a value").to_owned());
            last_id = id.clone();
        }
    }
    (values, last_id)
}

fn produce(cluster: &TestCluster, via: u32, range: std::ops::RangeInclusive<u32>) {
    let input: String = range.map(|i| format!("r-{i}\n")).collect();
    let out = cluster
        .broker(via)
        .run_with_stdin(&["produce", TOPIC], &input);
    assert!(out.contains("acknowledged"), "{out}");
}

/// Reconnecting to another node after the leader died continues the
/// stream exactly where it stopped.
#[test]
fn sse_resumes_on_another_node_after_the_leader_is_killed() {
    let mut cluster = TestCluster::start_with_flags(3, &["--http", "127.0.0.1:0"]);
    create_replicated_topic(&cluster, TOPIC, 1);
    let leader = {
        let status = cluster.wait_for(1, "a leader", |s| partition_leader(s, TOPIC, 0) != 0);
        partition_leader(&status, TOPIC, 0) as u32
    };
    // Gossip announces every node's HTTP address (the console finds them so).
    let status = cluster.wait_for(1, "every node's http listener", |s| {
        s["nodes"].as_array().is_some_and(|nodes| {
            nodes.len() == 3 && nodes.iter().all(|n| n["addresses"]["http"].is_string())
        })
    });
    for node in status["nodes"].as_array().expect("nodes") {
        let id = node["node_id"].as_u64().expect("node_id") as u32;
        assert_eq!(
            node["addresses"]["http"],
            http_address(&cluster, id).as_str()
        );
    }
    let other = leader % 3 + 1;
    produce(&cluster, other, 1..=50);
    let (mut values, last_id) = read_events(&http_address(&cluster, leader), None, 20);
    cluster.kill(leader);
    produce(&cluster, other, 51..=100);
    let (rest, _) = read_events(&http_address(&cluster, other), Some(&last_id), 80);
    values.extend(rest);
    let expected: Vec<String> = (1..=100).map(|i| format!("r-{i}")).collect();
    assert_eq!(
        values, expected,
        "no gap, no duplicate, in order (resumed after {last_id})"
    );
}
