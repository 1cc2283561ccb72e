//! Connection-level behaviour: handshake, bad input, pipelining, limits and
//! graceful shutdown.

mod common;

use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};
use citystream_protocol::{ApiKey, ErrorCode, PROTOCOL_VERSION, Request, Response};
use common::*;

/// Builds a raw request frame: prefix, header and `body` as given.
fn raw_frame(api_key: u16, api_version: u16, request_id: u32, body: &[u8]) -> BytesMut {
    let mut out = BytesMut::new();
    out.put_u32_le(8 + body.len() as u32);
    out.put_u16_le(api_key);
    out.put_u16_le(api_version);
    out.put_u32_le(request_id);
    out.put_slice(body);
    out
}

/// Proves a request before Hello gets HANDSHAKE_REQUIRED and the connection
/// stays open for the Hello that follows.
#[tokio::test]
async fn requests_before_hello_get_handshake_required() {
    bounded(async {
        let server = TestServer::start().await;
        let mut client = TestClient::connect(server.address).await;
        expect_error(
            client.call(metadata_request()).await,
            ErrorCode::HANDSHAKE_REQUIRED,
        );
        client.hello().await;
        assert!(matches!(
            client.call(metadata_request()).await,
            Ok(Response::Metadata(_))
        ));
        server.stop().await;
    })
    .await;
}

/// Proves Hello picks the newest common version and reports the node's limits.
#[tokio::test]
async fn hello_negotiates_the_newest_common_version() {
    bounded(async {
        let server = TestServer::start().await;
        let mut client = TestClient::connect(server.address).await;
        let answer = client.call(Request::Hello(hello_request(1, 9))).await;
        let Ok(Response::Hello(hello)) = answer else {
            panic!("unexpected hello answer {answer:?}");
        };
        assert_eq!(hello.version, PROTOCOL_VERSION);
        assert_eq!(hello.node_id, 7);
        assert_eq!(hello.cluster_id, "test-cluster");
        assert_eq!(hello.frame_bytes_max, server_config().frame_bytes_max);
        assert_eq!(hello.record_bytes_max, broker_config().record_bytes_max);
        server.stop().await;
    })
    .await;
}

/// Proves a Hello with no version in common gets UNSUPPORTED_VERSION, leaves
/// the connection un-handshaken, and a later compatible Hello still works.
#[tokio::test]
async fn hello_without_a_common_version_is_rejected() {
    bounded(async {
        let server = TestServer::start().await;
        let mut client = TestClient::connect(server.address).await;
        let newer = Request::Hello(hello_request(PROTOCOL_VERSION + 1, PROTOCOL_VERSION + 5));
        expect_error(client.call(newer).await, ErrorCode::UNSUPPORTED_VERSION);
        expect_error(
            client.call(metadata_request()).await,
            ErrorCode::HANDSHAKE_REQUIRED,
        );
        client.hello().await;
        assert!(client.call(metadata_request()).await.is_ok());
        server.stop().await;
    })
    .await;
}

/// Proves an undecodable body is answered with MALFORMED_FRAME under its
/// request id and the connection keeps serving.
#[tokio::test]
async fn malformed_frame_is_answered_and_the_connection_survives() {
    bounded(async {
        let server = TestServer::start().await;
        let mut client = server.client().await;
        let garbage = raw_frame(
            ApiKey::CreateTopic as u16,
            PROTOCOL_VERSION,
            4242,
            &[0xff; 3],
        );
        client.send_raw(&garbage).await;
        let frame = client.recv().await;
        assert_eq!(frame.request_id, 4242);
        let error = expect_error(frame.response, ErrorCode::MALFORMED_FRAME);
        assert!(!error.message.is_empty());
        assert!(client.call(metadata_request()).await.is_ok());
        server.stop().await;
    })
    .await;
}

/// Proves an api key the broker does not know gets UNKNOWN_REQUEST, echoing
/// the raw key and request id (read from the raw header, since a typed
/// decoder cannot name an unknown api either).
#[tokio::test]
async fn unknown_api_key_gets_unknown_request() {
    bounded(async {
        let server = TestServer::start().await;
        let mut client = server.client().await;
        client
            .send_raw(&raw_frame(999, PROTOCOL_VERSION, 31, &[]))
            .await;
        let body = client.recv_body().await.expect("an answer");
        // response header: u32 request_id | u16 api_key | u16 error_code
        assert_eq!(u32::from_le_bytes(body[0..4].try_into().unwrap()), 31);
        assert_eq!(u16::from_le_bytes(body[4..6].try_into().unwrap()), 999);
        let code = ErrorCode(u16::from_le_bytes(body[6..8].try_into().unwrap()));
        assert_eq!(code, ErrorCode::UNKNOWN_REQUEST);
        assert!(client.call(metadata_request()).await.is_ok());
        server.stop().await;
    })
    .await;
}

/// Proves a frame over the limit gets FRAME_TOO_LARGE with the sizes in the
/// message, its bytes are skipped, and the connection keeps serving.
#[tokio::test]
async fn oversize_frame_is_answered_and_the_connection_survives() {
    bounded(async {
        let config = citystream_server::ServerConfig {
            frame_bytes_max: 1024,
            ..server_config()
        };
        let server = TestServer::start_with(broker_config(), config).await;
        let mut client = server.client().await;
        let huge = raw_frame(ApiKey::Metadata as u16, PROTOCOL_VERSION, 55, &[7; 4088]);
        client.send_raw(&huge).await;
        let frame = client.recv().await;
        assert_eq!(frame.request_id, 55);
        let error = expect_error(frame.response, ErrorCode::FRAME_TOO_LARGE);
        assert_eq!(
            error.message,
            "frame of 4096 bytes exceeds the limit of 1024 bytes"
        );
        assert!(client.call(metadata_request()).await.is_ok());
        server.stop().await;
    })
    .await;
}

/// Proves a frame too short to carry a request id closes the connection.
#[tokio::test]
async fn frame_without_a_header_closes_the_connection() {
    bounded(async {
        let server = TestServer::start().await;
        let mut client = server.client().await;
        client.send_raw(&[3, 0, 0, 0, 1, 2, 3]).await;
        assert!(client.try_recv().await.is_none(), "connection should close");
        server.stop().await;
    })
    .await;
}

/// Proves a long-poll fetch does not hold up a request pipelined behind it,
/// and is itself answered once data arrives.
#[tokio::test]
async fn pipelined_request_overtakes_a_long_poll_fetch() {
    bounded(async {
        let server = TestServer::start().await;
        let mut client = server.client().await;
        client.create_topic("events", 1).await.unwrap();
        let fetch_id = client
            .send(Request::Fetch(fetch_request("events", 0, 10_000, 1)))
            .await;
        let metadata_id = client.send(metadata_request()).await;
        assert_eq!(client.recv().await.request_id, metadata_id);
        let mut producer = server.client().await;
        producer.produce("events", 0, batch(&[b"late"])).await;
        let frame = client.recv().await;
        assert_eq!(frame.request_id, fetch_id);
        let Ok(Response::Fetch(fetched)) = frame.response else {
            panic!("unexpected fetch answer {:?}", frame.response);
        };
        assert_eq!(
            records(&fetched.partitions[0].records),
            vec![(0, b"late".to_vec())]
        );
        server.stop().await;
    })
    .await;
}

/// Proves a long-poll fetch wakes up as soon as another connection produces,
/// well before its wait expires.
#[tokio::test]
async fn long_poll_fetch_wakes_on_produce_from_another_connection() {
    bounded(async {
        let server = TestServer::start().await;
        let mut consumer = server.client().await;
        consumer.create_topic("wake", 1).await.unwrap();
        let started = Instant::now();
        let fetch_id = consumer
            .send(Request::Fetch(fetch_request("wake", 0, 15_000, 1)))
            .await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut producer = server.client().await;
        producer.produce("wake", 0, batch(&[b"ping"])).await;
        let frame = consumer.recv().await;
        assert_eq!(frame.request_id, fetch_id);
        assert!(started.elapsed() < Duration::from_secs(5), "woke late");
        let Ok(Response::Fetch(fetched)) = frame.response else {
            panic!("unexpected fetch answer {:?}", frame.response);
        };
        assert_eq!(records(&fetched.partitions[0].records).len(), 1);
        server.stop().await;
    })
    .await;
}

/// Proves a long poll with nothing to return answers empty at its deadline.
#[tokio::test]
async fn long_poll_fetch_answers_empty_at_its_deadline() {
    bounded(async {
        let server = TestServer::start().await;
        let mut client = server.client().await;
        client.create_topic("idle", 1).await.unwrap();
        let started = Instant::now();
        let fetched = client.fetch(fetch_request("idle", 0, 200, 1)).await;
        assert!(started.elapsed() >= Duration::from_millis(200));
        assert!(fetched.partitions[0].records.is_empty());
        assert_eq!(fetched.partitions[0].status.error, ErrorCode::NONE);
        server.stop().await;
    })
    .await;
}

/// Proves that at `connections_max` the server stops accepting until a
/// connection closes, then serves the waiting peer.
#[tokio::test]
async fn connection_limit_defers_new_connections() {
    bounded(async {
        let config = citystream_server::ServerConfig {
            connections_max: 1,
            ..server_config()
        };
        let server = TestServer::start_with(broker_config(), config).await;
        let first = server.client().await;
        let mut second = TestClient::connect(server.address).await;
        second
            .send(Request::Hello(hello_request(1, PROTOCOL_VERSION)))
            .await;
        second.expect_quiet().await;
        drop(first);
        assert!(second.recv().await.response.is_ok());
        server.stop().await;
    })
    .await;
}

/// Proves shutdown answers an in-flight long poll, closes the connection,
/// stops accepting and makes `serve` return Ok.
#[tokio::test]
async fn graceful_shutdown_flushes_in_flight_requests_and_returns() {
    bounded(async {
        let server = TestServer::start().await;
        let mut client = server.client().await;
        client.create_topic("quiet", 1).await.unwrap();
        let fetch_id = client
            .send(Request::Fetch(fetch_request("quiet", 0, 15_000, 1)))
            .await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let address = server.address;
        let started = Instant::now();
        server.stop().await;
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "shutdown took too long"
        );
        let frame = client.recv().await;
        assert_eq!(frame.request_id, fetch_id);
        assert!(frame.response.is_ok());
        assert!(
            client.try_recv().await.is_none(),
            "connection should be closed"
        );
        assert!(tokio::net::TcpStream::connect(address).await.is_err());
    })
    .await;
}

/// Proves a configuration that could only hang (no connection slots) is
/// refused up front instead of serving nothing.
#[tokio::test]
async fn serve_refuses_an_unusable_configuration() {
    bounded(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let broker = citystream_broker::Broker::open(broker_config(), 0).unwrap();
        let config = citystream_server::ServerConfig {
            connections_max: 0,
            ..server_config()
        };
        let shutdown = tokio_util::sync::CancellationToken::new();
        let served = citystream_server::serve(listener, broker.into(), config, shutdown).await;
        assert!(matches!(served, Err(citystream_server::ServerError::Io(_))));
    })
    .await;
}

/// Proves random bodies under every api key (a seeded sweep) are answered
/// without breaking the connection or the server.
#[tokio::test]
async fn random_bodies_never_break_the_connection() {
    bounded(async {
        let server = TestServer::start().await;
        let mut client = server.client().await;
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            // xorshift64: deterministic, dependency-free.
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..400u32 {
            let api_key = (next() % 18) as u16;
            let body: Vec<u8> = (0..next() % 64).map(|_| next() as u8).collect();
            let frame = raw_frame(api_key, PROTOCOL_VERSION, 10_000 + round, &body);
            client.send_raw(&frame).await;
        }
        let probe = client.send(metadata_request()).await;
        // Every garbage frame is answered (or silently accepted); the probe's
        // answer, matched on the raw request id, proves the stream is intact.
        loop {
            let body = client.recv_body().await.expect("connection alive");
            if body[0..4] == probe.to_le_bytes() {
                break;
            }
        }
        server.stop().await;
    })
    .await;
}
