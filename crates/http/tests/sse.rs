//! Server-Sent Events against a real broker, read with a real SSE parser
//! (eventsource-stream over reqwest): records arrive as events whose ids
//! resume every partition; a reconnect with `Last-Event-ID` continues with
//! no gap and no duplicate; key filters and per-key sampling; a client too
//! slow to read gets `lagged` and then every record once, in order; bad
//! parameters are refused.

mod common;

use std::time::Duration;

use citystream_http::HttpConfig;
use common::{Api, assert_error, bounded};
use eventsource_stream::{Event, Eventsource as _};
use futures::{Stream, StreamExt as _};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Waits at most this long for one event.
const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

type Events = std::pin::Pin<Box<dyn Stream<Item = Event> + Send>>;

/// Opens a stream; `last_event_id` resumes.
async fn open(api: &Api, path: &str, last_event_id: Option<&str>) -> Events {
    let mut request = api.http.get(api.url(path));
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let events = response
        .bytes_stream()
        .eventsource()
        .map(|event| event.expect("a well-formed event"));
    Box::pin(events)
}

async fn next_event(events: &mut Events) -> Event {
    tokio::time::timeout(EVENT_TIMEOUT, events.next())
        .await
        .expect("an event in time")
        .expect("the stream goes on")
}

/// The next `count` record events' values (skipping other events).
async fn record_values(events: &mut Events, count: usize) -> (Vec<String>, String) {
    let mut values = Vec::new();
    let mut last_id = String::new();
    while values.len() < count {
        let event = next_event(events).await;
        if event.event != "message" {
            continue;
        }
        let record: Value = serde_json::from_str(&event.data).unwrap();
        values.push(record["value"].as_str().unwrap().to_owned());
        last_id = event.id;
    }
    (values, last_id)
}

async fn produce(api: &Api, topic: &str, records: Vec<Value>) {
    let path = format!("/api/topics/{topic}/records");
    let (status, body) = api.post_json(&path, Value::Array(records)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

fn numbered(range: std::ops::Range<u32>, partitions: u32) -> Vec<Value> {
    range
        .map(|i| json!({"value": format!("v{i}"), "partition": i % partitions}))
        .collect()
}

/// From `earliest` every record arrives, then new ones; an event's id
/// lists every partition's next offset.
#[tokio::test]
async fn records_arrive_as_events_with_resumable_ids() {
    bounded(async {
        let api = Api::start().await;
        api.create_topic("live", 2).await;
        produce(&api, "live", numbered(0..4, 2)).await;
        let mut events = open(&api, "/api/topics/live/stream?from=earliest", None).await;
        let (mut values, _) = record_values(&mut events, 4).await;
        produce(&api, "live", numbered(4..6, 2)).await;
        let (more, last_id) = record_values(&mut events, 2).await;
        values.extend(more);
        values.sort();
        assert_eq!(values, ["v0", "v1", "v2", "v3", "v4", "v5"]);
        assert_eq!(last_id, "0:3,1:3", "both partitions fully read");
        // Default `latest`: only what comes after the connect.
        let mut latest = open(&api, "/api/topics/live/stream", None).await;
        produce(&api, "live", vec![json!({"value": "new", "partition": 0})]).await;
        assert_eq!(record_values(&mut latest, 1).await.0, ["new"]);
    })
    .await;
}

/// A client that reconnects with the last id it got continues exactly
/// after it: no record twice, none missing, each partition in order.
#[tokio::test]
async fn reconnect_with_last_event_id_has_no_gap_and_no_duplicate() {
    bounded(async {
        let api = Api::start().await;
        api.create_topic("resume", 3).await;
        produce(&api, "resume", numbered(0..30, 3)).await;
        let mut first = open(&api, "/api/topics/resume/stream?from=earliest", None).await;
        let (mut seen, last_id) = record_values(&mut first, 10).await;
        drop(first);
        produce(&api, "resume", numbered(30..45, 3)).await;
        let path = "/api/topics/resume/stream?from=latest";
        let mut second = open(&api, path, Some(&last_id)).await;
        let (rest, _) = record_values(&mut second, 35).await;
        seen.extend(rest);
        let mut sorted = seen.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 45, "every record exactly once: {seen:?}");
        for partition in 0..3u32 {
            let of_partition: Vec<u32> = seen
                .iter()
                .map(|v| v[1..].parse::<u32>().unwrap())
                .filter(|n| n % 3 == partition)
                .collect();
            assert!(
                of_partition.windows(2).all(|w| w[0] < w[1]),
                "{of_partition:?}"
            );
        }
        // `?from=` with the same list resumes the same way.
        let from = format!("/api/topics/resume/stream?from={last_id}");
        let mut third = open(&api, &from, None).await;
        assert_eq!(record_values(&mut third, 35).await.0.len(), 35);
    })
    .await;
}

/// An MQTT-style key filter and a prefix filter let only matching keys
/// through; sampling keeps one record per key per interval.
#[tokio::test]
async fn key_filters_and_sampling() {
    bounded(async {
        let api = Api::start().await;
        api.create_topic("keys", 1).await;
        let records = vec![
            json!({"key": "city/north/air/s1", "value": "a1"}),
            json!({"key": "city/north/traffic/t1", "value": "t1"}),
            json!({"key": "city/south/air/s2", "value": "a2"}),
            json!({"key": "city/south/air/s2", "value": "a3"}),
        ];
        produce(&api, "keys", records).await;
        let filtered = "/api/topics/keys/stream?from=earliest&key=city/%2B/air/%23";
        let mut air = open(&api, filtered, None).await;
        assert_eq!(record_values(&mut air, 3).await.0, ["a1", "a2", "a3"]);
        let mut prefix = open(
            &api,
            "/api/topics/keys/stream?from=earliest&key=city/north/",
            None,
        )
        .await;
        assert_eq!(record_values(&mut prefix, 2).await.0, ["a1", "t1"]);
        let sampled = "/api/topics/keys/stream?from=earliest&max_per_key_per_s=1";
        let mut one_per_key = open(&api, sampled, None).await;
        let marker = json!({"key": "z", "value": "end"});
        produce(&api, "keys", vec![marker]).await;
        let (values, _) = record_values(&mut one_per_key, 4).await;
        assert_eq!(
            values,
            ["a1", "t1", "a2", "end"],
            "a3 comes within a second of a2"
        );
    })
    .await;
}

/// A client that does not read while much is produced lags: it gets a
/// `lagged` event, then every record once, in order, from the log.
#[tokio::test]
async fn a_slow_client_lags_then_resumes_from_the_log() {
    bounded(async {
        let config = HttpConfig {
            stream_queue_events: 2,
            tail_buffer_batches: 2,
            ..HttpConfig::default()
        };
        let api = Api::start_with(config).await;
        api.create_topic("slow", 1).await;
        let mut events = open(&api, "/api/topics/slow/stream", None).await;
        // 64 KiB values, one request each: batches the tail reads apart,
        // far more bytes than the socket buffers hold while nobody reads.
        let big = "x".repeat(64 * 1024);
        for i in 0..120 {
            let value = format!("{i:03}{big}");
            produce(&api, "slow", vec![json!({"value": value})]).await;
        }
        let mut values = Vec::new();
        let mut lagged = 0;
        while values.len() < 120 {
            let event = next_event(&mut events).await;
            match event.event.as_str() {
                "lagged" => lagged += 1,
                "message" => {
                    let record: Value = serde_json::from_str(&event.data).unwrap();
                    values.push(record["value"].as_str().unwrap()[..3].to_owned());
                }
                other => panic!("unexpected event {other}"),
            }
        }
        assert!(lagged >= 1, "the slow client was told it lagged");
        let expected: Vec<String> = (0..120).map(|i| format!("{i:03}")).collect();
        assert_eq!(values, expected, "every record once, in order");
    })
    .await;
}

/// Bad stream parameters are refused before the stream starts.
#[tokio::test]
async fn bad_stream_requests_are_refused() {
    bounded(async {
        let api = Api::start().await;
        api.create_topic("s", 2).await;
        let cases = [
            (
                "/api/topics/none/stream",
                StatusCode::NOT_FOUND,
                "UNKNOWN_TOPIC",
            ),
            (
                "/api/topics/s/stream?from=yesterday",
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
            ),
            (
                "/api/topics/s/stream?from=5:0",
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
            ),
            (
                "/api/topics/s/stream?key=a/%23/b",
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
            ),
            (
                "/api/topics/s/stream?max_per_key_per_s=0",
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
            ),
        ];
        for (path, expected, code) in cases {
            let (status, body) = api.get(path).await;
            assert_error(status, &body, expected, code);
        }
    })
    .await;
}
