//! `/stream/<topic>`: the head the clients match, one ASCII line per new
//! message in publish order, each event sent at once as its own chunk,
//! streams of topics that do not exist yet, mapped names, streams sharing
//! a topic, and the end of every stream when the listener stops.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// New messages arrive in order, each one `data: ` line of compact ASCII
/// JSON equal to what was published (escapes for ü and the emoji as a
/// surrogate pair); a message published before the stream opened does not.
#[tokio::test]
async fn each_new_message_is_one_ascii_line() {
    bounded(async {
        let broker = TestBroker::start().await;
        let node = Node::start(&broker.address).await;
        node.publish(&json!({ "topic": "weather", "data": { "old": true } }))
            .await;
        let mut stream = node.open_stream("weather").await;
        let sent = [
            r#"{"topic": "weather", "data": {"city": "Zürich", "temp_c": 21.5}, "priority": "high"}"#,
            r#"{"topic": "weather", "data": {"icon": "🌧", "note": "line\nbreak"}}"#,
            r#"{"topic": "weather", "data": {"city": "Kraków"}, "priority": 1}"#,
        ];
        for body in sent {
            let answer = node.post_bytes("/publish", body).await;
            assert_eq!(answer.text, "");
        }
        let expected_lines = [
            r#"data: {"topic":"weather","data":{"city":"Z\u00fcrich","temp_c":21.5},"priority":"high"}"#,
            r#"data: {"topic":"weather","data":{"icon":"\ud83c\udf27","note":"line\nbreak"}}"#,
            r#"data: {"topic":"weather","data":{"city":"Krak\u00f3w"},"priority":1}"#,
        ];
        for (body, line) in sent.iter().zip(expected_lines) {
            let event = stream.next_event().await;
            assert_eq!(event, line);
            let json: Value = serde_json::from_str(event.strip_prefix("data: ").unwrap()).unwrap();
            assert_eq!(json, serde_json::from_str::<Value>(body).unwrap());
        }
    })
    .await;
}

/// One publish alone reaches an open stream promptly: the event is not
/// held back until a next one pushes it out.
#[tokio::test]
async fn a_single_event_arrives_without_a_second() {
    bounded(async {
        let broker = TestBroker::start().await;
        let node = Node::start(&broker.address).await;
        node.publish(&json!({ "topic": "alone", "data": {} })).await;
        let mut stream = node.open_stream("alone").await;
        let object = json!({ "topic": "alone", "data": { "n": 1 } });
        node.publish(&object).await;
        assert_eq!(stream.next_data().await, object);
    })
    .await;
}

/// On the wire: `Content-Type: text/event-stream` with no charset, chunked,
/// and a published event as exactly one chunk holding exactly the event.
#[tokio::test]
async fn each_event_is_its_own_chunk_on_the_wire() {
    bounded(async {
        let broker = TestBroker::start().await;
        let node = Node::start(&broker.address).await;
        node.publish(&json!({ "topic": "wire", "data": {} })).await;
        let mut socket = tokio::net::TcpStream::connect(node.address).await.unwrap();
        let request =
            "GET /stream/wire HTTP/1.1\r\nHost: city\r\nAccept: text/event-stream\r\n\r\n";
        socket.write_all(request.as_bytes()).await.unwrap();
        let mut received = Vec::new();
        let head_end = read_until(&mut socket, &mut received, b"\r\n\r\n").await;
        let head = String::from_utf8(received[..head_end].to_vec())
            .unwrap()
            .to_lowercase();
        assert!(head.starts_with("http/1.1 200 ok\r\n"), "{head}");
        assert!(
            head.contains("\r\ncontent-type: text/event-stream\r\n"),
            "{head}"
        );
        assert!(
            head.contains("\r\ntransfer-encoding: chunked\r\n"),
            "{head}"
        );
        received.drain(..head_end + 4);

        node.post_bytes("/publish", r#"{"topic":"wire","data":{"v":"é"}}"#)
            .await;
        let event = "data: {\"topic\":\"wire\",\"data\":{\"v\":\"\\u00e9\"}}\n\n";
        let size_end = read_until(&mut socket, &mut received, b"\r\n").await;
        let size = std::str::from_utf8(&received[..size_end]).unwrap();
        assert_eq!(usize::from_str_radix(size, 16), Ok(event.len()), "{size:?}");
        received.drain(..size_end + 2);
        // The chunk's data and its CRLF, and nothing after: no other chunk.
        let chunk_end = read_until(&mut socket, &mut received, b"\n\r\n").await;
        assert_eq!(String::from_utf8_lossy(&received[..chunk_end + 1]), event);
        assert_eq!(received.len(), chunk_end + 3);
    })
    .await;
}

/// Reads `socket` into `received` until `marker`; returns where it starts.
async fn read_until(
    socket: &mut tokio::net::TcpStream,
    received: &mut Vec<u8>,
    marker: &[u8],
) -> usize {
    loop {
        if let Some(at) = received.windows(marker.len()).position(|w| w == marker) {
            return at;
        }
        let mut buffer = [0u8; 4096];
        let read = tokio::time::timeout(PROMPTLY, socket.read(&mut buffer))
            .await
            .expect("an answer within 5 s")
            .unwrap();
        assert!(read > 0, "the connection closed");
        received.extend_from_slice(&buffer[..read]);
    }
}

/// A stream of a topic nobody has published to yet gets its first
/// messages (the original streams any topic).
#[tokio::test]
async fn streams_before_the_topic_exists() {
    bounded(async {
        let broker = TestBroker::start().await;
        let node = Node::start(&broker.address).await;
        let mut stream = node.open_stream("not-yet").await;
        let objects: Vec<Value> = (0..3)
            .map(|i| json!({ "topic": "not-yet", "data": { "i": i } }))
            .collect();
        for object in &objects {
            node.publish(object).await;
        }
        for object in &objects {
            assert_eq!(&stream.next_data().await, object);
        }
    })
    .await;
}

/// A name that is not a citystream topic name streams under its own name.
#[tokio::test]
async fn mapped_names_stream() {
    bounded(async {
        let broker = TestBroker::start().await;
        let node = Node::start(&broker.address).await;
        let mut stream = node.open_stream("air%20quality/zone%201").await;
        let object =
            json!({ "topic": "air quality/zone 1", "data": { "aqi": 17, "station": "Genève" } });
        node.publish(&object).await;
        assert_eq!(stream.next_data().await, object);
        node.publish(&json!({ "topic": "air quality zone 1", "data": {} }))
            .await;
        let other = json!({ "topic": "air quality/zone 1", "data": { "aqi": 18 } });
        node.publish(&other).await;
        assert_eq!(
            stream.next_data().await,
            other,
            "another topic's message leaked in"
        );
    })
    .await;
}

/// Streams of one topic share its tail: each gets every message from its
/// own start, a later one none from before it, also on another node.
#[tokio::test]
async fn streams_of_one_topic_each_start_at_their_end() {
    bounded(async {
        let broker = TestBroker::start().await;
        let node = Node::start(&broker.address).await;
        let other = Node::start(&broker.address).await;
        let message = |i: u32| json!({ "topic": "shared", "data": { "i": i } });
        let mut first = node.open_stream("shared").await;
        node.publish(&message(1)).await;
        let mut second = node.open_stream("shared").await;
        let mut elsewhere = other.open_stream("shared").await;
        node.publish(&message(2)).await;
        other.publish(&message(3)).await;
        for i in 1..=3 {
            assert_eq!(first.next_data().await, message(i));
        }
        for i in 2..=3 {
            assert_eq!(second.next_data().await, message(i));
            assert_eq!(elsewhere.next_data().await, message(i));
        }
    })
    .await;
}

/// Stopping the listener ends its open streams, and `serve` returns.
#[tokio::test]
async fn streams_end_when_the_listener_stops() {
    bounded(async {
        let broker = TestBroker::start().await;
        let mut node = Node::start(&broker.address).await;
        let mut stream = node.open_stream("ending").await;
        node.shutdown.cancel();
        assert!(stream.ends_within(PROMPTLY).await, "the stream went on");
        let served = tokio::time::timeout(Duration::from_secs(5), &mut node.served)
            .await
            .expect("serve returned");
        served.unwrap().unwrap();
    })
    .await;
}

/// A client that stops reading while far more is published than the
/// shared tail keeps for it (1,024 batches, megabytes past the socket
/// buffers) still gets every message, in order, once it reads again: the
/// stream reads what it fell behind on from the log.
#[tokio::test]
async fn a_stalled_stream_catches_up_without_gaps() {
    bounded(async {
        let broker = TestBroker::start().await;
        let node = Node::start(&broker.address).await;
        node.publish(&json!({ "topic": "flood", "data": {} })).await;
        let mut stream = node.open_stream("flood").await;
        let padding = "p".repeat(16 * 1024);
        let total = 1_500;
        for i in 0..total {
            node.publish(&json!({ "topic": "flood", "data": { "i": i, "padding": padding } }))
                .await;
        }
        for i in 0..total {
            let data = stream.next_data().await;
            assert_eq!(data["data"]["i"], json!(i));
        }
        assert_eq!(
            stream.next_event_within(Duration::from_millis(200)).await,
            None
        );
    })
    .await;
}
