//! What the queue promises beyond single answers, against an in-memory
//! broker: dense separate id counters, a new consumer starting at the end,
//! every consumer getting every message once and in the topic's order,
//! `/size` never promising a message that consume then lacks, concurrent
//! registrations, and state that lives in the broker: a second listener
//! over its own client (a second "node") answers the same, and two nodes
//! consuming for one consumer at once never hand a message out twice.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use common::*;
use serde_json::{Value, json};

/// Producer and consumer ids are two counters, each dense from 0,
/// whatever topics they are for.
#[tokio::test]
async fn ids_are_two_dense_counters() {
    bounded(async {
        let broker = TestBroker::start().await;
        let node = Node::start(&broker.address).await;
        assert_eq!(node.register_producer("a").await, 0);
        assert_eq!(node.register_producer("b").await, 1);
        assert_eq!(node.register_consumer("a").await, 0);
        assert_eq!(node.register_producer("a").await, 2);
        assert_eq!(node.register_consumer("b").await, 1);
        assert_eq!(node.register_consumer("a").await, 2);
        let refused = node
            .post("/consumer/register", json!({ "topic": "c" }))
            .await;
        refused.assert_refused("Topic:c does not exist");
        assert_eq!(
            node.register_consumer("b").await,
            3,
            "a refusal takes no id"
        );
    })
    .await;
}

/// A consumer gets only what is produced after it registered.
#[tokio::test]
async fn a_new_consumer_starts_at_the_end() {
    bounded(async {
        let broker = TestBroker::start().await;
        let node = Node::start(&broker.address).await;
        let producer = node.register_producer("t").await;
        for i in 0..3 {
            node.produce("t", producer, json!(i)).await;
        }
        let consumer = node.register_consumer("t").await;
        assert_eq!(node.size("t", consumer).await, 0);
        node.consume("t", consumer)
            .await
            .assert_refused(&format!("Empty logs for Comsumer:{consumer} for Topic:t"));
        node.produce("t", producer, json!("after")).await;
        assert_eq!(node.size("t", consumer).await, 1);
        assert_eq!(node.consume_one("t", consumer).await, json!("after"));
    })
    .await;
}

/// Two consumers of one topic each get every message of two producers
/// once, in the order they were produced.
#[tokio::test]
async fn two_consumers_get_every_message_once_in_order() {
    bounded(async {
        let broker = TestBroker::start().await;
        let node = Node::start(&broker.address).await;
        let producers = [
            node.register_producer("t").await,
            node.register_producer("t").await,
        ];
        let consumers = [
            node.register_consumer("t").await,
            node.register_consumer("t").await,
        ];
        let mut produced = Vec::new();
        for i in 0..40 {
            let message = json!({ "n": i });
            node.produce("t", producers[i % 2], message.clone()).await;
            produced.push(message);
        }
        for consumer in consumers {
            assert_eq!(node.size("t", consumer).await, 40);
            let mut got = Vec::new();
            for _ in 0..40 {
                got.push(node.consume_one("t", consumer).await);
            }
            assert_eq!(got, produced, "consumer {consumer}");
            assert_eq!(node.size("t", consumer).await, 0);
            let empty = node.consume("t", consumer).await;
            empty.assert_refused(&format!("Empty logs for Comsumer:{consumer} for Topic:t"));
        }
    })
    .await;
}

/// While a producer writes, a consumer that consumes exactly the backlog
/// `/size` reported never gets "Empty logs", and ends with everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn size_then_consume_never_finds_the_log_empty() {
    bounded(async {
        let broker = TestBroker::start().await;
        let node = Arc::new(Node::start(&broker.address).await);
        let producer = node.register_producer("t").await;
        let consumer = node.register_consumer("t").await;
        let total = 150;
        let writer = node.clone();
        let writing = tokio::spawn(async move {
            for i in 0..total {
                writer.produce("t", producer, json!(i)).await;
            }
        });
        let mut got = Vec::new();
        while got.len() < total {
            let backlog = node.size("t", consumer).await;
            for _ in 0..backlog {
                got.push(node.consume_one("t", consumer).await);
            }
        }
        writing.await.unwrap();
        let expected: Vec<Value> = (0..total).map(|i| json!(i)).collect();
        assert_eq!(got, expected);
        assert_eq!(node.size("t", consumer).await, 0);
    })
    .await;
}

/// 50 registrations at once, over two nodes, get distinct dense ids and
/// never a 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_registrations_get_distinct_dense_ids() {
    bounded(async {
        let broker = TestBroker::start().await;
        let nodes = Arc::new([
            Node::start(&broker.address).await,
            Node::start(&broker.address).await,
        ]);
        nodes[0].create_topic("t").await;
        let mut registering = Vec::new();
        for i in 0..50 {
            let nodes = nodes.clone();
            registering.push(tokio::spawn(async move {
                let node = &nodes[i % 2];
                let route = ["/producer/register", "/consumer/register"][(i / 2) % 2];
                let answer = node.post(route, json!({ "topic": "t" })).await;
                answer.assert_success();
                let id = answer.body["producer_id"]
                    .as_u64()
                    .or(answer.body["consumer_id"].as_u64());
                (route, id.expect("an integer id"))
            }));
        }
        let mut producers = BTreeSet::new();
        let mut consumers = BTreeSet::new();
        for task in registering {
            let (route, id) = task.await.unwrap();
            let ids = match route {
                "/producer/register" => &mut producers,
                _ => &mut consumers,
            };
            assert!(ids.insert(id), "{route} gave {id} twice");
        }
        assert_eq!(producers, (0..producers.len() as u64).collect());
        assert_eq!(consumers, (0..consumers.len() as u64).collect());
        assert_eq!(producers.len() + consumers.len(), 50);
    })
    .await;
}

/// A second node (its own listener and client over the same broker)
/// answers from the same state: topics, ids, backlogs and positions.
#[tokio::test]
async fn a_second_node_answers_the_same() {
    bounded(async {
        let broker = TestBroker::start().await;
        let first = Node::start(&broker.address).await;
        first.create_topic("b").await;
        let producer = first.register_producer("a").await;
        let consumer = first.register_consumer("a").await;
        for i in 0..4 {
            first.produce("a", producer, json!(i)).await;
        }
        assert_eq!(first.consume_one("a", consumer).await, json!(0));

        let second = Node::start(&broker.address).await;
        let listed = second.get("/topics").await;
        assert_eq!(listed.body["message"], json!(["b", "a"]));
        assert_eq!(second.size("a", consumer).await, 3);
        assert_eq!(second.consume_one("a", consumer).await, json!(1));
        assert_eq!(first.size("a", consumer).await, 2);
        assert_eq!(first.consume_one("a", consumer).await, json!(2));
        second.produce("a", producer, json!(4)).await;
        assert_eq!(second.register_producer("b").await, producer + 1);
        assert_eq!(first.register_consumer("b").await, consumer + 1);
        assert_eq!(second.consume_one("a", consumer).await, json!(3));
        assert_eq!(first.consume_one("a", consumer).await, json!(4));
        second
            .post("/topics", json!({ "topic_name": "a" }))
            .await
            .assert_refused("Topic:a already exist");
    })
    .await;
}

/// Two nodes consuming for the same consumer at the same time hand each
/// message out exactly once between them (positions are claimed through
/// the log, not overwritten).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_consuming_one_consumer_never_duplicate() {
    bounded(async {
        let broker = TestBroker::start().await;
        let nodes = Arc::new([
            Node::start(&broker.address).await,
            Node::start(&broker.address).await,
        ]);
        let producer = nodes[0].register_producer("t").await;
        let consumer = nodes[0].register_consumer("t").await;
        let total = 60;
        for i in 0..total {
            nodes[0].produce("t", producer, json!(i)).await;
        }
        let mut consuming = Vec::new();
        for side in 0..2 {
            let nodes = nodes.clone();
            consuming.push(tokio::spawn(async move {
                let mut got = Vec::new();
                loop {
                    let answer = nodes[side].consume("t", consumer).await;
                    if answer.status == reqwest::StatusCode::BAD_REQUEST {
                        answer.assert_refused("Empty logs for Comsumer:0 for Topic:t");
                        return got;
                    }
                    answer.assert_success();
                    got.push(answer.body["message"].as_u64().unwrap());
                }
            }));
        }
        let mut all = Vec::new();
        for task in consuming {
            let got = task.await.unwrap();
            assert!(got.windows(2).all(|w| w[0] < w[1]), "out of order: {got:?}");
            all.extend(got);
        }
        all.sort_unstable();
        assert_eq!(all, (0..total).collect::<Vec<u64>>());
    })
    .await;
}

/// A message comes back as it was sent: numbers as written (big integers,
/// `1.0`), key order, escapes, any JSON type, and large ones.
#[tokio::test]
async fn messages_come_back_unchanged() {
    bounded(async {
        let broker = TestBroker::start().await;
        let node = Node::start(&broker.address).await;
        let producer = node.register_producer("t").await;
        let consumer = node.register_consumer("t").await;
        let large = format!("\"{}\"", "L".repeat(900 * 1024));
        let messages = [
            r#"{"z": 1, "a": [1.0, 123456789012345678901234567890, -0.5e-7]}"#,
            r#""tab\t quote\" unicode \u00e9 é""#,
            "null",
            "true",
            "[]",
            "42",
            large.as_str(),
        ];
        for message in messages {
            let body = format!(r#"{{"topic":"t","producer_id":{producer},"message":{message}}}"#);
            let answer = node
                .post_bytes("/producer/produce", body.into_bytes())
                .await;
            answer.assert_success();
        }
        for message in messages {
            let answer = node.consume("t", consumer).await;
            answer.assert_success();
            let compact: String = match message {
                m if m.starts_with('{') => m.replace(": ", ":").replace(", ", ","),
                m => m.to_owned(),
            };
            let expected = format!(r#"{{"status":"success","message":{compact}}}"#);
            assert!(
                answer.text == expected,
                "{}",
                &answer.text[..200.min(answer.text.len())]
            );
        }
    })
    .await;
}
