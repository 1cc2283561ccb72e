//! The plain routes against an in-memory broker, byte for byte: publish's
//! empty 200 and its refusal, `/get_leader`, `/health`, `/ping`, 404 and
//! 405, content types and CORS.

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

/// A publish is 200 with an empty body; without a topic it is the
/// original's 400, and nothing is stored.
#[tokio::test]
async fn publish_answers_empty_200_or_no_topic() {
    bounded(async {
        let broker = TestBroker::start().await;
        let node = Node::start(&broker.address).await;
        let published = node
            .post(
                "/publish",
                json!({ "topic": "air", "data": { "pm25": 12 }, "priority": 0 }),
            )
            .await;
        assert_eq!(published.status, StatusCode::OK);
        assert_eq!(published.text, "");
        assert_eq!(published.headers["access-control-allow-origin"], "*");

        for body in [
            json!({ "data": { "pm25": 1 } }),
            json!({ "topic": "", "data": {} }),
        ] {
            let refused = node.post("/publish", body).await;
            refused.assert_error("No topic specified");
            assert_eq!(refused.text, r#"{"error":"No topic specified"}"#);
        }
        assert_eq!(
            node.logs("air").await,
            vec![json!({ "topic": "air", "data": { "pm25": 12 }, "priority": 0 })]
        );
    })
    .await;
}

/// Priority is the record header `priority`: 0 and "high" are high,
/// anything else (or nothing) low; the value is the object as posted.
#[tokio::test]
async fn priority_is_a_record_header() {
    bounded(async {
        let broker = TestBroker::start().await;
        let node = Node::start(&broker.address).await;
        let priorities = [
            json!(0),
            json!("high"),
            json!(1),
            json!(2),
            json!("low"),
            json!(null),
        ];
        for priority in &priorities {
            node.publish(&json!({ "topic": "prio", "data": {}, "priority": priority }))
                .await;
        }
        let spaced = "{ \"topic\": \"prio\",\n  \"data\": {\"city\": \"Zürich\", \"v\": 1.50} }";
        let published = node.post_bytes("/publish", spaced).await;
        assert_eq!(
            (published.status, published.text.as_str()),
            (StatusCode::OK, "")
        );

        let client = broker.client().await;
        let read = client
            .read_partition("prio", 0, 0, 1 << 20, 0)
            .await
            .unwrap();
        let headers: Vec<&[u8]> = read
            .records
            .iter()
            .map(|record| {
                assert_eq!(record.headers.len(), 1);
                assert_eq!(&*record.headers[0].0, "priority");
                &record.headers[0].1[..]
            })
            .collect();
        let expected: [&[u8]; 7] = [b"high", b"high", b"low", b"low", b"low", b"low", b"low"];
        assert_eq!(headers, expected);
        // The value is the object as posted, only compacted.
        assert_eq!(
            &read.records[6].value[..],
            br#"{"topic":"prio","data":{"city":"Z\u00fcrich","v":1.50}}"#
        );
    })
    .await;
}

/// The small routes answer exactly the original's bodies and types.
#[tokio::test]
async fn leader_health_and_ping() {
    bounded(async {
        let broker = TestBroker::start().await;
        let node = Node::start(&broker.address).await;

        let leader = node.get("/get_leader").await;
        leader.assert_json(StatusCode::OK);
        let status = broker
            .client()
            .await
            .admin()
            .cluster_status()
            .await
            .unwrap();
        let expected = status.metadata_leader.unwrap_or(status.node_id);
        assert_eq!(leader.text, format!(r#"{{"leader_id":{expected}}}"#));
        assert!(leader.body["leader_id"].is_u64());

        let health = node.get("/health").await;
        assert_eq!(health.status, StatusCode::OK);
        assert_eq!(health.text, "OK");
        assert_eq!(health.headers["content-type"], "text/plain");
        assert_eq!(health.headers["access-control-allow-origin"], "*");

        let ping = node.get("/ping").await;
        ping.assert_json(StatusCode::OK);
        assert_eq!(ping.text, r#"{"status":"alive"}"#);
    })
    .await;
}

/// Unknown paths are 404 and wrong methods 405, both JSON.
#[tokio::test]
async fn unknown_paths_and_methods() {
    bounded(async {
        let broker = TestBroker::start().await;
        let node = Node::start(&broker.address).await;
        for path in ["/nope", "/publish/x", "/logs", "/", "/api/topics"] {
            let answer = node.get(path).await;
            answer.assert_json(StatusCode::NOT_FOUND);
            assert_eq!(answer.text, r#"{"error":"Not found"}"#, "{path}");
        }
        let wrong = node.get("/publish").await;
        wrong.assert_json(StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(wrong.text, r#"{"error":"Method not allowed"}"#);
        node.post("/ping", json!({}))
            .await
            .assert_json(StatusCode::METHOD_NOT_ALLOWED);
    })
    .await;
}

/// A CORS preflight to any route is 200 with the methods and the asked
/// headers.
#[tokio::test]
async fn cors_preflight() {
    bounded(async {
        let broker = TestBroker::start().await;
        let node = Node::start(&broker.address).await;
        for path in ["/publish", "/subscribe", "/stream/air", "/logs/air"] {
            let preflight = node
                .http
                .request(Method::OPTIONS, node.url(path))
                .header("origin", "http://dashboard.example")
                .header("access-control-request-method", "POST")
                .header("access-control-request-headers", "content-type")
                .send()
                .await
                .unwrap();
            let answer = Answer::of(preflight).await;
            answer.assert_json(StatusCode::OK);
            assert_eq!(
                answer.headers["access-control-allow-headers"],
                "content-type"
            );
            assert!(
                answer.headers["access-control-allow-methods"]
                    .to_str()
                    .unwrap()
                    .contains("POST")
            );
        }
    })
    .await;
}
