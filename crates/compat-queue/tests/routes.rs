//! Every route of the queue API against an in-memory broker: the success
//! bodies and statuses, every refusal with the original's exact text, the
//! 500 "check params" answers, and CORS.

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

/// Topics: created with the original's message, refused when they exist,
/// listed in creation order, and "No Topic found" before any exists.
#[tokio::test]
async fn topics_are_created_once_and_listed_in_creation_order() {
    bounded(async {
        let broker = TestBroker::start().await;
        let node = Node::start(&broker.address).await;
        node.get("/topics").await.assert_refused("No Topic found");

        for name in ["zeta", "alpha", "with space/and \u{e9}"] {
            let created = node.post("/topics", json!({ "topic_name": name })).await;
            created.assert_success();
            assert_eq!(
                created.text,
                format!(r#"{{"status":"success","message":"Topic:{name} created successfully"}}"#)
            );
        }
        let again = node.post("/topics", json!({ "topic_name": "alpha" })).await;
        again.assert_refused("Topic:alpha already exist");

        let listed = node.get("/topics").await;
        listed.assert_success();
        assert_eq!(
            listed.body,
            json!({ "status": "success", "message": ["zeta", "alpha", "with space/and \u{e9}"] })
        );
    })
    .await;
}

/// Producer and consumer registration answer integer ids; a producer
/// creates its topic, a consumer needs it to exist.
#[tokio::test]
async fn registration_answers_integer_ids() {
    bounded(async {
        let broker = TestBroker::start().await;
        let node = Node::start(&broker.address).await;
        let producer = node
            .post("/producer/register", json!({ "topic": "made" }))
            .await;
        assert_eq!(producer.status, StatusCode::OK);
        assert_eq!(producer.text, r#"{"status":"success","producer_id":0}"#);
        node.get("/topics").await.body["message"]
            .as_array()
            .filter(|topics| *topics == &[json!("made")])
            .expect("the producer created its topic");

        let consumer = node
            .post("/consumer/register", json!({ "topic": "made" }))
            .await;
        assert_eq!(consumer.text, r#"{"status":"success","consumer_id":0}"#);
        node.post("/consumer/register", json!({ "topic": "nope" }))
            .await
            .assert_refused("Topic:nope does not exist");
    })
    .await;
}

/// Produce answers `{"status":"success"}`; its refusals come in the
/// original's order: producer, topic, binding.
#[tokio::test]
async fn produce_refusals_in_order() {
    bounded(async {
        let broker = TestBroker::start().await;
        let node = Node::start(&broker.address).await;
        let producer = node.register_producer("t1").await;
        node.create_topic("t2").await;
        let produce = |topic: &str, producer: serde_json::Value| {
            let body = json!({ "topic": topic, "producer_id": producer, "message": "m" });
            node.post("/producer/produce", body)
        };

        let ok = produce("t1", json!(producer)).await;
        assert_eq!(ok.text, r#"{"status":"success"}"#);
        produce("t1", json!(producer.to_string()))
            .await
            .assert_success();

        produce("nope", json!(5))
            .await
            .assert_refused("Producer:5 does not exist");
        produce("nope", json!("-3"))
            .await
            .assert_refused("Producer:-3 does not exist");
        produce("nope", json!(producer))
            .await
            .assert_refused("Topic:nope does not exist");
        produce("t2", json!(producer))
            .await
            .assert_refused("Producer:0 is not registered with Topic:t2");
    })
    .await;
}

/// Consume and size answer the message and the backlog; their refusals
/// come in the original's order, with "Comsumer" spelled as it does.
#[tokio::test]
async fn consume_and_size_refusals_in_order() {
    bounded(async {
        let broker = TestBroker::start().await;
        let node = Node::start(&broker.address).await;
        let producer = node.register_producer("t1").await;
        node.create_topic("t2").await;
        let consumer = node.register_consumer("t1").await;
        for route in ["/consumer/consume", "/size"] {
            let node = &node;
            let ask = |topic: &str, consumer: &str| {
                let path = format!("{route}?topic={topic}&consumer_id={consumer}");
                async move { node.get(&path).await }
            };
            ask("nope", "9")
                .await
                .assert_refused("Consumer:9 does not exist");
            ask("nope", "0")
                .await
                .assert_refused("Topic:nope does not exist");
            ask("t2", "0")
                .await
                .assert_refused("Consumer:0 is not registered with Topic:t2");
        }
        node.consume("t1", consumer)
            .await
            .assert_refused("Empty logs for Comsumer:0 for Topic:t1");
        let size = node.get("/size?topic=t1&consumer_id=0").await;
        assert_eq!(size.text, r#"{"status":"success","size":0}"#);

        node.produce("t1", producer, json!({"k": [1, 2]})).await;
        assert_eq!(node.size("t1", consumer).await, 1);
        let consumed = node.consume("t1", consumer).await;
        assert_eq!(
            consumed.text,
            r#"{"status":"success","message":{"k":[1,2]}}"#
        );
        assert_eq!(node.size("t1", consumer).await, 0);
    })
    .await;
}

/// Malformed bodies, wrong JSON types, missing fields or query
/// parameters, unknown paths and wrong methods are all 500 "check params"
/// (never axum's 404, 405, 415 or 422).
#[tokio::test]
async fn malformed_requests_are_500_check_params() {
    bounded(async {
        let broker = TestBroker::start().await;
        let node = Node::start(&broker.address).await;
        node.register_producer("t").await;
        node.register_consumer("t").await;
        let bodies: &[(&str, &[u8])] = &[
            ("/topics", b"{not json"),
            ("/topics", b""),
            ("/topics", br#"{"topic_name": 5}"#),
            ("/topics", br#"{"name": "t"}"#),
            ("/topics", br#"["t"]"#),
            ("/producer/register", br#"{"topic": null}"#),
            ("/producer/register", br#"{"topic": ["t"]}"#),
            ("/consumer/register", br#"{"topic": {"t": 1}}"#),
            ("/consumer/register", b"\xff\xfe"),
            ("/producer/produce", br#"{"topic":"t","producer_id":0}"#),
            ("/producer/produce", br#"{"topic":"t","message":1}"#),
            (
                "/producer/produce",
                br#"{"topic":"t","producer_id":"x","message":1}"#,
            ),
            (
                "/producer/produce",
                br#"{"topic":"t","producer_id":0.5,"message":1}"#,
            ),
            (
                "/producer/produce",
                br#"{"topic":"t","producer_id":true,"message":1}"#,
            ),
            (
                "/producer/produce",
                br#"{"topic":1,"producer_id":0,"message":1}"#,
            ),
            (
                "/producer/produce",
                br#"{"topic":"t","producer_id":0,"message":}"#,
            ),
        ];
        for (path, body) in bodies {
            let answer = node.post_bytes(path, body.to_vec()).await;
            assert!(
                answer.status == StatusCode::INTERNAL_SERVER_ERROR,
                "{path} {:?}: {}",
                String::from_utf8_lossy(body),
                answer.text
            );
            answer.assert_malformed();
        }
        // A JSON body sent without a JSON content type is still read.
        let plain = node
            .http
            .post(node.url("/topics"))
            .body(r#"{"topic_name":"plain"}"#)
            .send()
            .await
            .unwrap();
        Answer::of(plain).await.assert_success();

        for path in [
            "/consumer/consume",
            "/consumer/consume?topic=t",
            "/consumer/consume?consumer_id=0",
            "/consumer/consume?topic=t&consumer_id=zero",
            "/size?topic=t",
            "/size?consumer_id=0",
            "/size?topic=t&consumer_id=1.5",
            "/nope",
            "/topics/",
            "/",
        ] {
            node.get(path).await.assert_malformed();
        }
        let wrong_methods = [
            (Method::GET, "/producer/produce"),
            (Method::GET, "/producer/register"),
            (Method::GET, "/consumer/register"),
            (Method::POST, "/consumer/consume"),
            (Method::POST, "/size"),
            (Method::DELETE, "/topics"),
            (Method::PUT, "/topics"),
            (Method::PATCH, "/nope"),
        ];
        for (method, path) in wrong_methods {
            let response = node.http.request(method, node.url(path)).send().await;
            Answer::of(response.unwrap()).await.assert_malformed();
        }
    })
    .await;
}

/// A body over the limit is 500 "check params", and so is a message too
/// large for one record of the broker; neither writes anything.
#[tokio::test]
async fn oversized_bodies_and_messages_are_refused() {
    bounded(async {
        let record_bytes_max = 64 * 1024;
        let config = citystream_broker::BrokerConfig {
            record_bytes_max,
            ..citystream_broker::BrokerConfig::default()
        };
        let broker = TestBroker::start_with(config).await;
        let node = Node::start(&broker.address).await;
        let producer = node.register_producer("t").await;
        let consumer = node.register_consumer("t").await;
        let huge = "x".repeat(citystream_compat_queue::BODY_BYTES_MAX);
        let body = json!({ "topic": "t", "producer_id": producer, "message": huge });
        node.post("/producer/produce", body)
            .await
            .assert_malformed();
        let topic = json!({ "topic_name": huge });
        node.post("/topics", topic).await.assert_malformed();
        // Under the body limit but over the broker's record limit.
        let record_sized = "y".repeat(record_bytes_max as usize);
        let body = json!({ "topic": "t", "producer_id": producer, "message": record_sized });
        node.post("/producer/produce", body)
            .await
            .assert_malformed();
        assert_eq!(node.size("t", consumer).await, 0);
        let listed = node.get("/topics").await;
        assert_eq!(listed.body["message"], json!(["t"]));
        // A message just under the record limit is taken.
        let fits = "z".repeat(record_bytes_max as usize - 100);
        node.produce("t", producer, json!(fits)).await;
        assert_eq!(node.consume_one("t", consumer).await, json!(fits));
    })
    .await;
}

/// Every answer allows any origin, and an OPTIONS preflight to a route is
/// answered 200 with the methods and the headers asked for.
#[tokio::test]
async fn cors_allows_any_origin_and_answers_preflights() {
    bounded(async {
        let broker = TestBroker::start().await;
        let node = Node::start(&broker.address).await;
        let preflight = node
            .http
            .request(Method::OPTIONS, node.url("/producer/produce"))
            .header("origin", "http://example.test")
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
            .await
            .unwrap();
        let answer = Answer::of(preflight).await;
        assert_eq!(answer.status, StatusCode::OK);
        answer.assert_json_with_cors();
        let methods = answer.headers["access-control-allow-methods"]
            .to_str()
            .unwrap();
        assert!(methods.contains("POST"), "{methods}");
        assert_eq!(
            answer.headers["access-control-allow-headers"],
            "content-type"
        );
        let refused = node.get("/topics").await;
        refused.assert_refused("No Topic found");
    })
    .await;
}
