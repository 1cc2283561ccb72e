//! Webhooks against a real broker and a real receiver (axum on
//! 127.0.0.1:0): records POSTed in order with their topic, partition and
//! offset in headers; a receiver that is down or failing gets the same
//! records again, with backoff, until it takes them, and nothing is
//! skipped; key filters and raw-value bodies; deletion stops delivery;
//! every refusal (malformed URL, unknown topic, bad filter, wrong types)
//! is a 4xx that registers nothing.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use common::{Api, answer, assert_error, bounded};
use parking_lot::Mutex;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// One POST the receiver got.
#[derive(Debug, Clone)]
struct Delivery {
    topic: String,
    partition: u32,
    offset: u64,
    content_type: String,
    body: Bytes,
}

#[derive(Default)]
struct Inbox {
    got: Mutex<Vec<Delivery>>,
    /// Answer 503 to this many POSTs before taking any.
    fail_first: Mutex<u32>,
}

/// A webhook receiver on a port of its own; it can be stopped and started
/// again on the same port.
struct Receiver {
    port: u16,
    inbox: Arc<Inbox>,
    stop: CancellationToken,
}

impl Receiver {
    async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let inbox = Arc::new(Inbox::default());
        let stop = serve(listener, inbox.clone());
        Receiver { port, inbox, stop }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    fn down(&self) {
        self.stop.cancel();
    }

    async fn up(&mut self) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .unwrap();
        self.stop = serve(listener, self.inbox.clone());
    }

    fn got(&self) -> Vec<Delivery> {
        self.inbox.got.lock().clone()
    }

    /// Waits until `count` POSTs arrived.
    async fn wait_for(&self, count: usize) -> Vec<Delivery> {
        loop {
            let got = self.got();
            if got.len() >= count {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn serve(listener: tokio::net::TcpListener, inbox: Arc<Inbox>) -> CancellationToken {
    async fn take(State(inbox): State<Arc<Inbox>>, headers: HeaderMap, body: Bytes) -> AxumStatus {
        {
            let mut fail = inbox.fail_first.lock();
            if *fail > 0 {
                *fail -= 1;
                return AxumStatus::SERVICE_UNAVAILABLE;
            }
        }
        let header = |name: &str| {
            headers
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default()
        };
        inbox.got.lock().push(Delivery {
            topic: header("x-citystream-topic"),
            partition: header("x-citystream-partition").parse().unwrap(),
            offset: header("x-citystream-offset").parse().unwrap(),
            content_type: header("content-type"),
            body,
        });
        AxumStatus::NO_CONTENT
    }
    let stop = CancellationToken::new();
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(take))
        .with_state(inbox);
    let until = stop.clone();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(until.cancelled_owned())
            .await
    });
    stop
}

async fn produce(api: &Api, topic: &str, records: Value) {
    let (status, body) = api
        .post_json(&format!("/api/topics/{topic}/records"), records)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn register(api: &Api, body: Value) -> u64 {
    let (status, hook) = api.post_json("/api/webhooks", body).await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    hook["id"].as_u64().expect("an id")
}

/// Records are POSTed once each, in partition order, as the read API's
/// JSON, with their coordinates in headers; positions and lag show it.
#[tokio::test]
async fn records_are_posted_in_order_with_their_offsets() {
    bounded(async {
        let api = Api::start_delivering().await;
        let receiver = Receiver::start().await;
        api.create_topic("orders", 2).await;
        // Records from before the registration are not delivered (latest).
        produce(&api, "orders", json!([{"value": "old", "partition": 0}])).await;
        let id = register(&api, json!({"topic": "orders", "url": receiver.url()})).await;
        let records: Vec<Value> = (0..20)
            .map(|i| json!({"value": format!("v{i}"), "partition": i % 2}))
            .collect();
        produce(&api, "orders", Value::Array(records)).await;
        let got = receiver.wait_for(20).await;
        assert_eq!(got.len(), 20);
        for partition in 0..2u32 {
            let mine: Vec<&Delivery> = got.iter().filter(|d| d.partition == partition).collect();
            let offsets: Vec<u64> = mine.iter().map(|d| d.offset).collect();
            let first = u64::from(partition == 0);
            let expected: Vec<u64> = (first..first + 10).collect();
            assert_eq!(
                offsets, expected,
                "partition {partition}: in order, once each"
            );
            for (i, delivery) in mine.iter().enumerate() {
                assert_eq!(delivery.topic, "orders");
                assert_eq!(delivery.content_type, "application/json");
                let record: Value = serde_json::from_slice(&delivery.body).unwrap();
                assert_eq!(record["offset"], delivery.offset);
                assert_eq!(record["partition"], partition);
                assert_eq!(record["value"], format!("v{}", i as u32 * 2 + partition));
            }
        }
        // The committed positions catch up with the log: lag 0 everywhere.
        let described = loop {
            let (status, hook) = api.get(&format!("/api/webhooks/{id}")).await;
            assert_eq!(status, StatusCode::OK, "{hook}");
            if hook["lag"] == 0 && hook["partitions"][0]["position"] == 11 {
                break hook;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(described["partitions"][1]["position"], 10, "{described}");
        assert_eq!(
            described["partitions"][0]["delivery"]["state"],
            "delivering"
        );
        assert_eq!(described["partitions"][0]["delivery"]["delivered"], 10);
    })
    .await;
}

/// A receiver that is down, then answers 503, then takes records: the
/// deliverer shows `retrying` with the error, keeps the record it was on,
/// and once the receiver takes them every record arrives, in order, none
/// skipped.
#[tokio::test]
async fn a_down_or_failing_receiver_gets_every_record_once_it_recovers() {
    bounded(async {
        let api = Api::start_delivering().await;
        let mut receiver = Receiver::start().await;
        api.create_topic("alerts", 1).await;
        let id = register(&api, json!({"topic": "alerts", "url": receiver.url()})).await;
        receiver.down();
        let values: Vec<Value> = (0..10).map(|i| json!({"value": format!("a{i}")})).collect();
        produce(&api, "alerts", Value::Array(values)).await;
        let retrying = loop {
            let (_, hook) = api.get(&format!("/api/webhooks/{id}")).await;
            let delivery = &hook["partitions"][0]["delivery"];
            if delivery["state"] == "retrying" && delivery["attempts"].as_u64() >= Some(2) {
                break hook;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let partition = &retrying["partitions"][0];
        assert_eq!(partition["position"], 0, "nothing committed while down");
        assert_eq!(partition["lag"], 10);
        let error = partition["delivery"]["last_error"].as_str().unwrap();
        assert!(error.starts_with("offset 0:"), "{error}");
        *receiver.inbox.fail_first.lock() = 3;
        receiver.up().await;
        let got = receiver.wait_for(10).await;
        let offsets: Vec<u64> = got.iter().map(|d| d.offset).collect();
        assert_eq!(offsets, (0..10).collect::<Vec<u64>>());
        assert_eq!(
            *receiver.inbox.fail_first.lock(),
            0,
            "the 503s were retried"
        );
        let values: Vec<String> = got
            .iter()
            .map(|d| serde_json::from_slice::<Value>(&d.body).unwrap()["value"].to_string())
            .collect();
        let expected: Vec<String> = (0..10).map(|i| format!("\"a{i}\"")).collect();
        assert_eq!(values, expected);
    })
    .await;
}

/// `key` filters records by key (MQTT-style), `body: value` POSTs the
/// value bytes with the record's content type, `from: earliest` includes
/// records written before the registration.
#[tokio::test]
async fn key_filter_raw_bodies_and_earliest_start() {
    bounded(async {
        let api = Api::start_delivering().await;
        let receiver = Receiver::start().await;
        api.create_topic("city", 1).await;
        produce(
            &api,
            "city",
            json!([
                {"key": "city/north/air/s1", "value": {"pm25": 1}},
                {"key": "city/north/traffic/t1", "value": {"cars": 2}},
                {"key": "city/south/air/s2", "value": "plain", "headers": {"content-type": "text/plain"}},
            ]),
        )
        .await;
        register(
            &api,
            json!({"topic": "city", "url": receiver.url(), "key": "city/+/air/#",
                   "body": "value", "from": "earliest"}),
        )
        .await;
        produce(&api, "city", json!([{"key": "city/east/air/s3", "value": {"pm25": 3}}])).await;
        let got = receiver.wait_for(3).await;
        let seen: Vec<(u64, String, String)> = got
            .iter()
            .map(|d| {
                (
                    d.offset,
                    d.content_type.clone(),
                    String::from_utf8(d.body.to_vec()).unwrap(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            vec![
                (0, "application/json".to_owned(), r#"{"pm25":1}"#.to_owned()),
                (2, "text/plain".to_owned(), "plain".to_owned()),
                (3, "application/json".to_owned(), r#"{"pm25":3}"#.to_owned()),
            ]
        );
    })
    .await;
}

/// A deleted webhook gets nothing more; every node lists the same
/// webhooks (they are records of a topic, not one node's memory).
#[tokio::test]
async fn deleted_webhooks_stop_and_every_listener_lists_the_same() {
    bounded(async {
        let api = Api::start_delivering().await;
        let other = api.another_listener().await;
        let receiver = Receiver::start().await;
        api.create_topic("t", 1).await;
        let id = register(&api, json!({"topic": "t", "url": receiver.url()})).await;
        let listed = answer(
            api.http
                .get(format!("{other}/api/webhooks"))
                .send()
                .await
                .unwrap(),
        )
        .await
        .1;
        assert_eq!(listed["webhooks"][0]["id"], id, "{listed}");
        assert_eq!(listed["webhooks"][0]["url"], receiver.url());
        produce(&api, "t", json!([{"value": "one"}])).await;
        receiver.wait_for(1).await;
        let response = api
            .http
            .delete(format!("{other}/api/webhooks/{id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        let (status, body) = api.get(&format!("/api/webhooks/{id}")).await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "NOT_FOUND");
        // The deliverer notices within its supervision period (50 ms here).
        tokio::time::sleep(Duration::from_millis(300)).await;
        produce(&api, "t", json!([{"value": "two"}, {"value": "three"}])).await;
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert_eq!(receiver.got().len(), 1, "nothing after the deletion");
        let response = api
            .http
            .delete(api.url(&format!("/api/webhooks/{id}")))
            .send()
            .await
            .unwrap();
        let (status, body) = answer(response).await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "NOT_FOUND");
    })
    .await;
}

/// Every malformed registration is refused with a clear 4xx, and none of
/// them registers anything.
#[tokio::test]
async fn malformed_registrations_are_refused_and_register_nothing() {
    bounded(async {
        let api = Api::start().await;
        api.create_topic("t", 1).await;
        let bad_request = [
            json!({"topic": "t", "url": "ftp://example.com/x"}),
            json!({"topic": "t", "url": "example.com/hook"}),
            json!({"topic": "t", "url": "http://"}),
            json!({"topic": "t", "url": "javascript:alert(1)"}),
            json!({"topic": "t", "url": "http://user:pw@example.com/"}),
            json!({"topic": "t", "url": ""}),
            json!({"topic": "t", "url": 7}),
            json!({"topic": "t"}),
            json!({"url": "http://127.0.0.1:9/x"}),
            json!({"topic": "t", "url": "http://127.0.0.1:9/x", "key": "a/#/b"}),
            json!({"topic": "t", "url": "http://127.0.0.1:9/x", "body": "xml"}),
            json!({"topic": "t", "url": "http://127.0.0.1:9/x", "from": "yesterday"}),
            json!({"topic": "t", "url": "http://127.0.0.1:9/x", "extra": 1}),
            json!(["not", "an", "object"]),
        ];
        for body in bad_request {
            let (status, answer) = api.post_json("/api/webhooks", body.clone()).await;
            assert_error(status, &answer, StatusCode::BAD_REQUEST, "BAD_REQUEST");
            let message = answer["error"]["message"].as_str().unwrap();
            assert!(!message.is_empty(), "{body}: {answer}");
        }
        let (status, answer) = api
            .post_json(
                "/api/webhooks",
                json!({"topic": "nope", "url": "http://127.0.0.1:9/x"}),
            )
            .await;
        assert_error(status, &answer, StatusCode::NOT_FOUND, "UNKNOWN_TOPIC");
        let (status, answer) = api
            .post_raw("/api/webhooks", "application/json", "{not json")
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        let (status, answer) = api.get("/api/webhooks/abc").await;
        assert_error(status, &answer, StatusCode::BAD_REQUEST, "BAD_REQUEST");
        let (status, answer) = api.get("/api/webhooks/12").await;
        assert_error(status, &answer, StatusCode::NOT_FOUND, "NOT_FOUND");
        let (status, list) = api.get("/api/webhooks").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(list, json!({"webhooks": []}), "nothing registered");
    })
    .await;
}
