//! A three-node cluster in process (in-memory Raft replicas on 127.0.0.1),
//! each node with its own queue listener over a client of its own native
//! listener. State written through one node is answered the same by the
//! others, and after the node leading the queue topic is stopped, the
//! survivors still know every topic, id, message and position, and go on
//! (the new leader's blank entry takes an offset: counts stay in messages).

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use citystream_broker::{Broker, BrokerConfig};
use citystream_client::{Client, ClientConfig};
use citystream_server::{ClusterConfig, ServeOptions, ServerConfig, Timing, serve_with};
use common::Node;
use serde_json::json;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const CLUSTER_TEST_TIMEOUT: Duration = Duration::from_secs(120);
const SETTLE_PAUSE: Duration = Duration::from_millis(100);

/// One cluster member: its native server and its queue listener.
struct Member {
    address: String,
    queue: Node,
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
            cluster_id: "queue-test".to_owned(),
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
                cluster_id: "queue-test".to_owned(),
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
        members.insert(
            id,
            Member {
                address,
                queue: Node::start(&peers[&id]).await,
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

/// The queue survives the loss of the node leading its topic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survivors_answer_the_same_after_a_node_dies() {
    let test = async {
        let mut members = start_cluster(3).await;
        let client = await_registered(&members[&1].address, 3).await;
        let first = &members[&1].queue;
        first.create_topic("q").await;
        let producer = first.register_producer("q").await;
        let early = first.register_consumer("q").await;
        let late = members[&2].queue.register_consumer("q").await;
        for i in 0..10 {
            members[&(1 + i % 3)]
                .queue
                .produce("q", producer, json!(i))
                .await;
        }
        for i in 0..3 {
            assert_eq!(first.consume_one("q", early).await, json!(i));
        }

        let native = citystream_compat_queue::queue_topic(0);
        let leader = client
            .admin()
            .describe_topic(&native)
            .await
            .unwrap()
            .partitions[0]
            .leader;
        let dead = members.remove(&leader).expect("the leader is a member");
        dead.shutdown.cancel();
        drop(dead.queue);
        dead.serving.await.unwrap().unwrap();

        for member in members.values() {
            let node = &member.queue;
            let listed = node.get("/topics").await;
            assert_eq!(listed.body["message"], json!(["q"]), "{}", listed.text);
            assert_eq!(node.size("q", early).await, 7);
            assert_eq!(node.size("q", late).await, 10);
        }
        let survivors: Vec<&Node> = members.values().map(|m| &m.queue).collect();
        survivors[0].produce("q", producer, json!(10)).await;
        assert_eq!(survivors[1].register_producer("q").await, producer + 1);
        assert_eq!(survivors[0].register_consumer("q").await, late + 1);
        for i in 3..11 {
            let node = survivors[i % 2];
            assert_eq!(node.size("q", early).await, 11 - i as u64);
            assert_eq!(node.consume_one("q", early).await, json!(i));
        }
        for i in 0..11 {
            assert_eq!(survivors[i % 2].consume_one("q", late).await, json!(i));
        }
        let empty = survivors[1].consume("q", late).await;
        empty.assert_refused(&format!("Empty logs for Comsumer:{late} for Topic:q"));
        for member in members.into_values() {
            member.shutdown.cancel();
        }
    };
    tokio::time::timeout(CLUSTER_TEST_TIMEOUT, test)
        .await
        .expect("test timed out");
}
