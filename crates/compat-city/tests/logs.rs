//! `/logs/<topic>`: the published objects oldest first, only the last
//! 1,000, an empty list for a topic nobody published to, the same on every
//! node, and names that are not citystream topic names.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Objects come back in publish order, exactly as published, and every
/// node answers the same.
#[tokio::test]
async fn logs_are_oldest_first_on_every_node() {
    bounded(async {
        let broker = TestBroker::start().await;
        let node = Node::start(&broker.address).await;
        let other = Node::start(&broker.address).await;
        let objects: Vec<Value> = (0..5)
            .map(|i| json!({ "topic": "traffic", "data": { "car": i, "street": "Bahnhofstraße" } }))
            .collect();
        for object in &objects {
            node.publish(object).await;
        }
        let answer = other.get("/logs/traffic").await;
        answer.assert_json(StatusCode::OK);
        assert_eq!(answer.body, json!({ "topic": "traffic", "logs": objects }));
        assert!(
            answer.text.starts_with(r#"{"topic":"traffic","logs":[{"#),
            "{}",
            answer.text
        );
        assert!(
            answer.text.contains(r#""Bahnhofstra\u00dfe""#),
            "{}",
            answer.text
        );
        assert_eq!(node.logs("traffic").await, objects);
    })
    .await;
}

/// Past 1,000 messages, the answer holds the last 1,000, oldest first.
#[tokio::test]
async fn logs_keep_the_last_thousand() {
    bounded(async {
        let broker = TestBroker::start().await;
        let node = Node::start(&broker.address).await;
        let total = citystream_compat_city::LOGS_MAX + 37;
        for i in 0..total {
            node.publish(&json!({ "topic": "many", "data": { "i": i } }))
                .await;
        }
        let logs = node.logs("many").await;
        assert_eq!(logs.len(), citystream_compat_city::LOGS_MAX);
        let numbers: Vec<u64> = logs
            .iter()
            .map(|o| o["data"]["i"].as_u64().unwrap())
            .collect();
        let expected: Vec<u64> = (37..total as u64).collect();
        assert_eq!(numbers, expected);
    })
    .await;
}

/// A topic nobody published to is an empty list, and asking does not
/// create it.
#[tokio::test]
async fn unknown_topics_have_empty_logs() {
    bounded(async {
        let broker = TestBroker::start().await;
        let node = Node::start(&broker.address).await;
        let answer = node.get("/logs/nobody-here").await;
        answer.assert_json(StatusCode::OK);
        assert_eq!(answer.text, r#"{"topic":"nobody-here","logs":[]}"#);
        let long = "x ".repeat(200);
        let long_path = long.replace(' ', "%20");
        assert_eq!(node.logs(&long_path).await, Vec::<Value>::new());
        let client = broker.client().await;
        assert_eq!(client.partition_count("nobody-here").await.unwrap(), None);
    })
    .await;
}

/// A name that is not a citystream topic name is stored under
/// `city.<hex>`, and reads back under its own name (slashes, spaces and
/// non-ASCII in the path).
#[tokio::test]
async fn mapped_names_round_trip() {
    bounded(async {
        let broker = TestBroker::start().await;
        let node = Node::start(&broker.address).await;
        let name = "air quality/zone 1";
        let object = json!({ "topic": name, "data": { "aqi": 42 } });
        node.publish(&object).await;
        assert_eq!(
            node.logs("air%20quality/zone%201").await,
            vec![object.clone()]
        );
        assert_eq!(node.logs("air%20quality%2Fzone%201").await, vec![object]);

        let native = citystream_compat_city::native_topic(name).unwrap();
        assert_eq!(native, "city.616972207175616c6974792f7a6f6e652031");
        let client = broker.client().await;
        assert_eq!(client.partition_count(&native).await.unwrap(), Some(1));

        let answer = node.get("/logs/Z%C3%BCrich").await;
        assert_eq!(answer.text, r#"{"topic":"Z\u00fcrich","logs":[]}"#);
    })
    .await;
}

/// A name too long to be mapped is refused on publish, not stored.
#[tokio::test]
async fn names_too_long_are_refused() {
    bounded(async {
        let broker = TestBroker::start().await;
        let node = Node::start(&broker.address).await;
        let name = "é".repeat(citystream_compat_city::MAPPED_NAME_BYTES_MAX);
        let refused = node
            .post("/publish", json!({ "topic": name, "data": {} }))
            .await;
        refused.assert_json(StatusCode::BAD_REQUEST);
        let error = refused.body["error"].as_str().unwrap();
        assert!(error.starts_with("Topic name too long"), "{error}");
    })
    .await;
}
