//! `/subscribe` and `/unsubscribe` in both modes: the original's exact
//! messages and refusals, idempotent subscribes, answers that agree across
//! nodes, and webhook subscribers that really get each published object,
//! in order, until they unsubscribe.

mod common;

use std::time::Duration;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// How long a receiver is watched for messages that must not come.
const GRACE: Duration = Duration::from_millis(1_500);

/// SSE subscriptions: subscribed (twice is fine), unsubscribed once, then
/// "Not subscribed" — also when asked at another node; mode defaults to sse.
#[tokio::test]
async fn sse_subscriptions_are_recorded() {
    bounded(async {
        let broker = TestBroker::start().await;
        let node = Node::start(&broker.address).await;
        let other = Node::start(&broker.address).await;
        let body = json!({ "topic": "air", "mode": "sse", "url": "http://dash/1" });
        for _ in 0..2 {
            let answer = node.post("/subscribe", body.clone()).await;
            answer.assert_message("Subscribed to topic 'air' via SSE");
            assert_eq!(
                answer.text,
                r#"{"message":"Subscribed to topic 'air' via SSE"}"#
            );
        }
        let unsubscribed = other.post("/unsubscribe", body.clone()).await;
        assert_eq!(
            unsubscribed.text,
            r#"{"message":"Unsubscribed from topic 'air' (SSE)"}"#
        );
        unsubscribed.assert_json(StatusCode::OK);
        let again = node.post("/unsubscribe", body).await;
        assert_eq!(
            again.text,
            r#"{"message":"Not subscribed to 'air' with URL 'http://dash/1'"}"#
        );

        let no_mode = json!({ "topic": "Zürich", "url": "u" });
        let subscribed = node.post("/subscribe", no_mode.clone()).await;
        assert_eq!(
            subscribed.text,
            r#"{"message":"Subscribed to topic 'Z\u00fcrich' via SSE"}"#
        );
        node.post("/unsubscribe", no_mode)
            .await
            .assert_message("Unsubscribed from topic 'Zürich' (SSE)");
        node.post("/unsubscribe", json!({ "topic": "air" }))
            .await
            .assert_message("Not subscribed to 'air' with URL 'None'");
    })
    .await;
}

/// Each refusal is the original's 400 text, and writes nothing.
#[tokio::test]
async fn subscription_refusals() {
    bounded(async {
        let broker = TestBroker::start().await;
        let node = Node::start(&broker.address).await;
        for route in ["/subscribe", "/unsubscribe"] {
            let refused = node.post(route, json!({ "mode": "sse", "url": "u" })).await;
            refused.assert_error("Missing topic");
            assert_eq!(refused.text, r#"{"error":"Missing topic"}"#);
            node.post(route, json!({ "topic": "t", "mode": "webhook" }))
                .await
                .assert_error("Missing URL for webhook subscription");
            let bad_mode = node
                .post(route, json!({ "topic": "t", "mode": "mqtt" }))
                .await;
            assert_eq!(
                bad_mode.text,
                r#"{"error":"Unsupported subscription mode: mqtt"}"#
            );
            bad_mode.assert_json(StatusCode::BAD_REQUEST);
        }
        let client = broker.client().await;
        for topic in ["t", citystream_compat_city::SUBSCRIPTIONS_TOPIC] {
            assert_eq!(
                client.partition_count(topic).await.unwrap(),
                None,
                "{topic}"
            );
        }
        assert!(node.webhooks.list().await.unwrap().is_empty());
    })
    .await;
}

/// A URL the webhook registry would refuse is 400 with its message, and
/// nothing is registered or created.
#[tokio::test]
async fn malformed_webhook_urls_are_refused() {
    bounded(async {
        let broker = TestBroker::start().await;
        let node = Node::start(&broker.address).await;
        for url in [
            "not a url",
            "ftp://files.example/x",
            "http://user:pw@example.com/",
        ] {
            let body = json!({ "topic": "noise", "mode": "webhook", "url": url });
            let refused = node.post("/subscribe", body).await;
            let expected = citystream_http::webhooks::check_url(url).unwrap_err();
            refused.assert_error(&expected);
        }
        assert!(node.webhooks.list().await.unwrap().is_empty());
        let client = broker.client().await;
        assert_eq!(client.partition_count("noise").await.unwrap(), None);
    })
    .await;
}

/// Subscribing one (topic, URL) twice makes one webhook; unsubscribing
/// removes it; a second unsubscribe is "Not subscribed".
#[tokio::test]
async fn webhook_subscriptions_are_idempotent() {
    bounded(async {
        let broker = TestBroker::start().await;
        let node = Node::start(&broker.address).await;
        let url = "http://127.0.0.1:9/hook";
        let body = json!({ "topic": "air quality", "mode": "webhook", "url": url });
        for _ in 0..2 {
            let answer = node.post("/subscribe", body.clone()).await;
            assert_eq!(
                answer.text,
                r#"{"message":"Subscribed to topic 'air quality' (webhook)"}"#
            );
            answer.assert_json(StatusCode::OK);
        }
        let hooks = node.webhooks.list().await.unwrap();
        assert_eq!(hooks.len(), 1, "{hooks:?}");
        let native = citystream_compat_city::native_topic("air quality").unwrap();
        assert_eq!(
            (hooks[0].topic.as_str(), hooks[0].url.as_str()),
            (native.as_str(), url)
        );

        let unsubscribed = node.post("/unsubscribe", body.clone()).await;
        assert_eq!(
            unsubscribed.text,
            r#"{"message":"Unsubscribed from topic 'air quality' (webhook)"}"#
        );
        assert!(node.webhooks.list().await.unwrap().is_empty());
        node.post("/unsubscribe", body)
            .await
            .assert_message(&format!("Not subscribed to 'air quality' with URL '{url}'"));
    })
    .await;
}

/// Two nodes subscribing one URL at the same moment end with one webhook.
#[tokio::test]
async fn racing_webhook_subscriptions_keep_one() {
    bounded(async {
        let broker = TestBroker::start().await;
        let nodes = [
            Node::start(&broker.address).await,
            Node::start(&broker.address).await,
        ];
        let body = json!({ "topic": "race", "mode": "webhook", "url": "http://127.0.0.1:9/r" });
        let (a, b) = tokio::join!(
            nodes[0].post("/subscribe", body.clone()),
            nodes[1].post("/subscribe", body.clone())
        );
        a.assert_message("Subscribed to topic 'race' (webhook)");
        b.assert_message("Subscribed to topic 'race' (webhook)");
        assert_eq!(nodes[1].webhooks.list().await.unwrap().len(), 1);
    })
    .await;
}

/// End to end: a webhook subscriber gets exactly the published objects,
/// in order, as JSON; after it unsubscribes (and delivery has stopped) it
/// gets nothing more.
#[tokio::test]
async fn webhook_subscribers_receive_each_object() {
    bounded(async {
        let broker = TestBroker::start().await;
        let node = Node::start(&broker.address).await;
        node.spawn_delivery();
        let mut receiver = Receiver::start().await;
        let body = json!({ "topic": "alerts", "mode": "webhook", "url": receiver.url });
        node.post("/subscribe", body.clone())
            .await
            .assert_message("Subscribed to topic 'alerts' (webhook)");

        let objects: Vec<Value> = (0..5)
            .map(|i| json!({ "topic": "alerts", "data": { "i": i, "city": "Zürich 🚨" }, "priority": "high" }))
            .collect();
        for object in &objects {
            node.publish(object).await;
        }
        for object in &objects {
            let got = receiver.next_within(Duration::from_secs(20)).await;
            assert_eq!(got.as_ref(), Some(object));
        }

        let hook = node.webhooks.list().await.unwrap()[0].id;
        node.post("/unsubscribe", body)
            .await
            .assert_message("Unsubscribed from topic 'alerts' (webhook)");
        wait_until_delivery_stops(&node, hook).await;
        node.publish(&json!({ "topic": "alerts", "data": { "late": true } }))
            .await;
        assert_eq!(receiver.next_within(GRACE).await, None, "delivered after unsubscribe");
    })
    .await;
}

/// Waits (bounded) until this node's deliverer has dropped webhook `id`:
/// it notices a deletion on its next supervision round.
async fn wait_until_delivery_stops(node: &Node, id: u64) {
    let stopped = async {
        while !node.webhooks.status(id).is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(PROMPTLY, stopped)
        .await
        .expect("delivery stopped within 5 s");
}
