//! Bodies that are not one JSON object of the right shape are 400
//! `{"error": ...}` saying why (a body over the limit 413), and nothing is
//! written: the logs and the subscriptions are as before.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::json;

/// Bodies no route can read, with the start of the reason each gets.
const UNREADABLE: [(&[u8], &str); 8] = [
    (b"not json", "Invalid JSON body: expected ident"),
    (b"hello", "Invalid JSON body: expected value"),
    (b"", "Invalid JSON body: the body is empty"),
    (
        br#"["m", {"x": 1}]"#,
        "Invalid JSON body: expected a JSON object",
    ),
    (b"42", "Invalid JSON body: expected a JSON object"),
    (
        br#"{"topic": "m", "data": {"#,
        "Invalid JSON body: EOF while parsing",
    ),
    (
        br#"{"topic": "m"} {"topic": "m"}"#,
        "Invalid JSON body: trailing characters",
    ),
    (
        b"{\"topic\": \"m\xff\"}",
        "Invalid JSON body: it is not UTF-8",
    ),
];

/// Publish: unreadable bodies and wrong types are refused, nothing stored.
#[tokio::test]
async fn malformed_publishes_write_nothing() {
    bounded(async {
        let broker = TestBroker::start().await;
        let node = Node::start(&broker.address).await;
        let first = json!({ "topic": "m", "data": { "ok": 1 } });
        node.publish(&first).await;

        for (body, reason) in UNREADABLE {
            let answer = node.post_bytes("/publish", body).await;
            answer.assert_json(StatusCode::BAD_REQUEST);
            let error = answer.body["error"].as_str().expect("an error message");
            assert!(error.starts_with(reason), "{body:?}: {error}");
        }
        let wrong_types = [
            json!({ "topic": 7, "data": {} }),
            json!({ "topic": ["m"], "data": {} }),
            json!({ "topic": { "name": "m" } }),
        ];
        for body in wrong_types {
            node.post("/publish", body)
                .await
                .assert_error("Invalid JSON body: 'topic' must be a string");
        }
        let duplicate = node
            .post_bytes("/publish", r#"{"topic":"m","topic":"n"}"#)
            .await;
        assert!(
            duplicate.body["error"]
                .as_str()
                .unwrap()
                .contains("duplicate field `topic`")
        );

        assert_eq!(node.logs("m").await, vec![first]);
        let client = broker.client().await;
        for topic in ["n", "7"] {
            assert_eq!(
                client.partition_count(topic).await.unwrap(),
                None,
                "{topic}"
            );
        }
    })
    .await;
}

/// A body over the limit is 413 JSON, and not stored.
#[tokio::test]
async fn oversized_bodies_are_refused() {
    bounded(async {
        let broker = TestBroker::start().await;
        let node = Node::start(&broker.address).await;
        let padding = "x".repeat(citystream_compat_city::BODY_BYTES_MAX);
        let body = json!({ "topic": "big", "data": { "padding": padding } });
        let answer = node.post("/publish", body).await;
        answer.assert_json(StatusCode::PAYLOAD_TOO_LARGE);
        assert!(answer.body["error"].is_string(), "{}", answer.text);
        assert!(node.logs("big").await.is_empty());
    })
    .await;
}

/// Subscribe and unsubscribe: unreadable bodies and wrong types are
/// refused, and no subscription is recorded or removed.
#[tokio::test]
async fn malformed_subscriptions_change_nothing() {
    bounded(async {
        let broker = TestBroker::start().await;
        let node = Node::start(&broker.address).await;
        let body = json!({ "topic": "s", "mode": "sse", "url": "http://d/1" });
        node.post("/subscribe", body.clone())
            .await
            .assert_message("Subscribed to topic 's' via SSE");

        for route in ["/subscribe", "/unsubscribe"] {
            for (body, reason) in UNREADABLE {
                let answer = node.post_bytes(route, body).await;
                answer.assert_json(StatusCode::BAD_REQUEST);
                let error = answer.body["error"].as_str().expect("an error message");
                assert!(error.starts_with(reason), "{route} {body:?}: {error}");
            }
            node.post(route, json!({ "topic": 1, "mode": "sse" }))
                .await
                .assert_error("Invalid JSON body: 'topic' must be a string");
            node.post(route, json!({ "topic": "s", "mode": "sse", "url": 5 }))
                .await
                .assert_error("Invalid JSON body: 'url' must be a string");
            node.post(route, json!({ "topic": "s", "mode": ["sse"] }))
                .await
                .assert_error(r#"Unsupported subscription mode: ["sse"]"#);
        }
        // Still subscribed: none of the above unsubscribed it.
        node.post("/unsubscribe", body)
            .await
            .assert_message("Unsubscribed from topic 's' (SSE)");
    })
    .await;
}
