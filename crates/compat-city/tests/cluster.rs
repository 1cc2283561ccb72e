//! A three-node cluster in process (in-memory Raft replicas on 127.0.0.1),
//! each node with its own city listener over a client of its own native
//! listener. Every node names the same leader and answers the same logs
//! and subscriptions; after the node leading a city topic is stopped, the
//! survivors still have every message and subscription, take new
//! publishes, and a stream open on a survivor goes on.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use citystream_broker::{Broker, BrokerConfig};
use citystream_client::{Client, ClientConfig};
use citystream_server::{ClusterConfig, ServeOptions, ServerConfig, Timing, serve_with};
use common::Node;
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const CLUSTER_TEST_TIMEOUT: Duration = Duration::from_secs(120);
const SETTLE_PAUSE: Duration = Duration::from_millis(100);
const CLUSTER_ID: &str = "city-test";

/// One cluster member: its native server and its city listener.
struct Member {
    address: String,
    city: Node,
    shutdown: CancellationToken,
    serving: JoinHandle<Result<(), citystream_server::ServerError>>,
}

async fn start_cluster(nodes: u32) -> BTreeMap<u32, Member> {
    let mut listeners = BTreeMap::new();
    for id in 1..=nodes {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        listeners.insert(id, listener);
    }
    let peers: BTreeMap<u32, String> = listeners
        .iter()
        .map(|(id, l)| (*id, l.local_addr().unwrap().to_string()))
        .collect();
    let mut members = BTreeMap::new();
    for (id, listener) in listeners {
        let address = peers[&id].clone();
        let broker = BrokerConfig {
            node_id: id,
            ..BrokerConfig::default()
        };
        let config = ServerConfig {
            cluster_id: CLUSTER_ID.to_owned(),
            advertised_address: address.clone(),
            tick_interval_ms: 10,
            ..ServerConfig::default()
        };
        let options = ServeOptions {
            cluster: Some(ClusterConfig {
                node_id: id,
                peers: peers.clone(),
                join: None,
                advertised_address: address.clone(),
                gossip_address: address.clone(),
                cluster_id: CLUSTER_ID.to_owned(),
                timing: Timing::DEFAULT,
                snapshot_transfer_bytes_per_sec: None,
            }),
            ..ServeOptions::default()
        };
        let broker = Arc::new(Broker::open(broker, 0).unwrap());
        let shutdown = CancellationToken::new();
        let serving = tokio::spawn(serve_with(
            listener,
            broker,
            config,
            options,
            shutdown.clone(),
        ));
        let city = Node::start(&peers[&id]).await;
        members.insert(
            id,
            Member {
                address,
                city,
                shutdown,
                serving,
            },
        );
    }
    members
}

/// Waits until node `address` lists `brokers` brokers in its metadata.
async fn await_registered(address: &str, brokers: usize) -> Client {
    let client = Client::connect(ClientConfig::new(address)).await.unwrap();
    while client.metadata(None).await.ok().map(|m| m.brokers.len()) != Some(brokers) {
        tokio::time::sleep(SETTLE_PAUSE).await;
    }
    client
}

/// The `leader_id` every member names, once they all name the same one.
async fn agreed_leader<'a>(members: impl Iterator<Item = &'a Member> + Clone) -> u64 {
    loop {
        let mut named = Vec::new();
        for member in members.clone() {
            let answer = member.city.get("/get_leader").await;
            named.push(answer.body["leader_id"].as_u64());
        }
        if let Some(Some(first)) = named.first().copied()
            && named.iter().all(|id| *id == Some(first))
        {
            return first;
        }
        tokio::time::sleep(SETTLE_PAUSE).await;
    }
}

/// The city broker survives the loss of the node leading a city topic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survivors_answer_the_same_after_a_node_dies() {
    let test = async {
        let mut members = start_cluster(3).await;
        let client = await_registered(&members[&1].address, 3).await;
        let leader = agreed_leader(members.values()).await;
        assert!((1..=3).contains(&leader), "{leader}");

        let message = |i: u32| json!({ "topic": "air", "data": { "i": i } });
        let subscription = json!({ "topic": "air", "mode": "sse", "url": "http://dash/1" });
        members[&1].city.publish(&message(0)).await;
        members[&2]
            .city
            .post("/subscribe", subscription.clone())
            .await
            .assert_message("Subscribed to topic 'air' via SSE");
        for i in 1..6 {
            members[&(1 + i % 3)].city.publish(&message(i)).await;
        }
        let expected: Vec<Value> = (0..6).map(message).collect();
        for member in members.values() {
            assert_eq!(member.city.logs("air").await, expected);
        }

        let topic_leader = client
            .admin()
            .describe_topic("air")
            .await
            .unwrap()
            .partitions[0]
            .leader;
        let watcher = *members.keys().find(|id| **id != topic_leader).unwrap();
        let mut stream = members[&watcher].city.open_stream("air").await;
        let dead = members
            .remove(&topic_leader)
            .expect("the leader is a member");
        dead.shutdown.cancel();
        drop(dead.city);
        dead.serving.await.unwrap().unwrap();

        agreed_leader(members.values()).await;
        let survivors: Vec<&Node> = members.values().map(|m| &m.city).collect();
        for (n, node) in survivors.iter().enumerate() {
            node.publish(&message(6 + n as u32)).await;
        }
        let expected: Vec<Value> = (0..8).map(message).collect();
        for node in &survivors {
            assert_eq!(node.logs("air").await, expected);
        }
        for i in 6..8 {
            // The stream's reader finds the new leader first.
            let event = stream.next_event_within(Duration::from_secs(30)).await;
            let data = event.as_deref().and_then(|e| e.strip_prefix("data: "));
            let data: Value = serde_json::from_str(data.expect("a data event")).unwrap();
            assert_eq!(data, message(i));
        }
        survivors[1]
            .post("/unsubscribe", subscription.clone())
            .await
            .assert_message("Unsubscribed from topic 'air' (SSE)");
        survivors[0]
            .post("/unsubscribe", subscription)
            .await
            .assert_message("Not subscribed to 'air' with URL 'http://dash/1'");
        for member in members.into_values() {
            member.shutdown.cancel();
        }
    };
    tokio::time::timeout(CLUSTER_TEST_TIMEOUT, test)
        .await
        .expect("test timed out");
}
