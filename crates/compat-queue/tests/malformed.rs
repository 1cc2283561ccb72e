//! Property test: random bytes, JSON with the right keys but wrong types,
//! oversized bodies and random query strings, sent to every route, are
//! answered 400 or 500 with a JSON `message`, and change nothing: no
//! record is written to any compat-queue topic, and the next ids are the
//! ones they were before.

mod common;

use citystream_client::Client;
use citystream_compat_queue::{
    BODY_BYTES_MAX, CLAIMS_TOPIC, CONSUMERS_TOPIC, PRODUCERS_TOPIC, TOPICS_TOPIC, queue_topic,
};
use citystream_protocol::OffsetSpec;
use common::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A request that must be refused.
#[derive(Debug, Clone)]
enum Bad {
    Post { path: &'static str, body: Vec<u8> },
    Get { path: &'static str, query: String },
}

const POST_PATHS: [&str; 4] = [
    "/topics",
    "/producer/register",
    "/consumer/register",
    "/producer/produce",
];

/// Any JSON value but a string (a topic of the wrong type).
fn not_a_string() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        (-1e9f64..1e9).prop_map(|f| json!(f)),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,3}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Anything that is not an id: fractions, booleans, non-numeric text...
fn not_an_id() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-1e6f64..1e6).prop_map(|f| json!(f + 0.5)),
        "[a-z ]{0,6}".prop_map(Value::String),
        prop::collection::vec(any::<u8>(), 0..3).prop_map(|v| json!(v)),
    ]
}

/// JSON bodies with each route's keys, at least one of them wrong.
fn wrong_types() -> impl Strategy<Value = Bad> {
    let post = |path: &'static str, body: Value| Bad::Post {
        path,
        body: body.to_string().into_bytes(),
    };
    prop_oneof![
        not_a_string().prop_map(move |t| post("/topics", json!({ "topic_name": t }))),
        not_a_string().prop_map(move |t| post("/producer/register", json!({ "topic": t }))),
        not_a_string().prop_map(move |t| post("/consumer/register", json!({ "topic": t }))),
        (not_a_string(), any::<u8>()).prop_map(move |(t, m)| post(
            "/producer/produce",
            json!({ "topic": t, "producer_id": 0, "message": m })
        )),
        not_an_id().prop_map(move |p| post(
            "/producer/produce",
            json!({ "topic": "t", "producer_id": p, "message": "m" })
        )),
        Just(post(
            "/producer/produce",
            json!({ "topic": "t", "producer_id": 0 })
        )),
    ]
}

fn random_bytes() -> impl Strategy<Value = Bad> {
    (
        prop::sample::select(&POST_PATHS[..]),
        prop::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(|(path, body)| Bad::Post { path, body })
}

/// A body just over the limit, whose start looks like a valid request.
fn oversized() -> impl Strategy<Value = Bad> {
    (prop::sample::select(&POST_PATHS[..]), 1..2_000usize).prop_map(|(path, extra)| {
        let filler = "x".repeat(BODY_BYTES_MAX + extra);
        let body = match path {
            "/topics" => json!({ "topic_name": filler }),
            "/producer/produce" => json!({ "topic": "t", "producer_id": 0, "message": filler }),
            _ => json!({ "topic": filler }),
        };
        Bad::Post {
            path,
            body: body.to_string().into_bytes(),
        }
    })
}

/// Queries of the consumer routes that lack or garble a parameter.
fn bad_queries() -> impl Strategy<Value = Bad> {
    let query = prop_oneof![
        "[a-z_=&%0-9]{0,30}",
        "[a-z]{0,5}".prop_map(|t| format!("topic={t}")),
        "[a-z.]{1,5}".prop_map(|c| format!("topic=t&consumer_id={c}")),
    ];
    (
        prop::sample::select(&["/consumer/consume", "/size"][..]),
        query,
    )
        .prop_map(|(path, query)| Bad::Get { path, query })
}

fn bad_request() -> impl Strategy<Value = Bad> {
    prop_oneof![
        4 => random_bytes(),
        4 => wrong_types(),
        1 => oversized(),
        2 => bad_queries(),
    ]
}

async fn send(node: &Node, bad: &Bad) -> Answer {
    match bad {
        Bad::Post { path, body } => node.post_bytes(path, body.clone()).await,
        Bad::Get { path, query } => node.get(&format!("{path}?{query}")).await,
    }
}

/// The end of every compat-queue partition there is.
async fn ends(client: &Client) -> Vec<(String, u32, u64)> {
    let admin = client.admin();
    let mut ends = Vec::new();
    let topics = [TOPICS_TOPIC, PRODUCERS_TOPIC, CONSUMERS_TOPIC, CLAIMS_TOPIC];
    let queue = queue_topic(0);
    for topic in topics.into_iter().chain([queue.as_str()]) {
        let partitions = client.partition_count(topic).await.unwrap().unwrap_or(0);
        for partition in 0..partitions {
            let end = admin
                .list_offsets(topic, partition, OffsetSpec::Latest)
                .await
                .unwrap();
            ends.push((topic.to_owned(), partition, end));
        }
    }
    ends
}

/// Bad requests of every kind are answered 400 or 500 with a JSON
/// message, and write nothing.
#[test]
fn bad_requests_are_refused_and_change_nothing() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (broker, node, client) = runtime.block_on(async {
        let broker = TestBroker::start().await;
        let node = Node::start(&broker.address).await;
        assert_eq!(node.register_producer("t").await, 0);
        assert_eq!(node.register_consumer("t").await, 0);
        // The claims topic exists once a consumer has asked for its size.
        assert_eq!(node.size("t", 0).await, 0);
        let client = broker.client().await;
        (broker, node, client)
    });
    let before = runtime.block_on(ends(&client));
    assert_eq!(
        before.len(),
        4 + citystream_compat_queue::CLAIM_PARTITIONS as usize
    );

    let mut runner = TestRunner::new(Config {
        cases: 300,
        failure_persistence: None,
        ..Config::default()
    });
    let outcome = runner.run(&bad_request(), |bad| {
        let answer = runtime.block_on(send(&node, &bad));
        let refused = [StatusCode::BAD_REQUEST, StatusCode::INTERNAL_SERVER_ERROR];
        prop_assert!(refused.contains(&answer.status), "{bad:?}: {}", answer.text);
        prop_assert!(
            answer.body["message"].is_string(),
            "{bad:?}: {}",
            answer.text
        );
        prop_assert_eq!(&answer.headers["content-type"], "application/json");
        Ok(())
    });
    outcome.unwrap();

    runtime.block_on(async {
        assert_eq!(ends(&client).await, before, "a bad request wrote something");
        let listed = node.get("/topics").await;
        assert_eq!(listed.body["message"], json!(["t"]));
        assert_eq!(node.size("t", 0).await, 0);
        assert_eq!(node.register_producer("t").await, 1);
        assert_eq!(node.register_consumer("t").await, 1);
    });
    drop((node, broker));
}
