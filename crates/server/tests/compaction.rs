//! Compacted topics on a single broker at the wire (decision 0017 §4, §9):
//! protocol version 2 is negotiated and carries the cleanup settings; a
//! version-1 client creates only delete topics, sees compacted topics
//! without their policy, and may not produce to or fetch from them; a
//! tombstone is taken only where the topic's cleanup allows it.

mod common;

use citystream_protocol::{
    Acks, Cleanup, CreateTopicRequest, ErrorCode, FetchPartition, FetchRequest, Request, Response,
    TopicConfig,
};
use common::*;

fn create_compacted(name: &str) -> Request {
    Request::CreateTopic(CreateTopicRequest {
        name: name.to_owned(),
        partitions: 1,
        config: TopicConfig {
            cleanup: Cleanup::Compact,
            tombstone_retention_ms: Some(60_000),
            ..TopicConfig::default()
        },
    })
}

fn fetch(topic: &str) -> Request {
    Request::Fetch(FetchRequest {
        max_wait_ms: 0,
        min_bytes: 0,
        max_bytes: 1 << 20,
        partitions: vec![FetchPartition {
            topic: topic.to_owned(),
            partition: 0,
            offset: 0,
            max_bytes: 1 << 20,
        }],
    })
}

/// A client of version 1 only, handshaken.
async fn v1_client(server: &TestServer) -> TestClient {
    let mut client = TestClient::connect(server.address).await;
    let answer = client.call(Request::Hello(hello_request(1, 1))).await;
    let Ok(Response::Hello(hello)) = answer else {
        panic!("unexpected hello answer {answer:?}");
    };
    assert_eq!(hello.version, 1);
    client.speak(1);
    client
}

/// The cleanup of `topic` as a version-2 Metadata answer shows it.
async fn cleanup_of(client: &mut TestClient, topic: &str) -> TopicConfig {
    let Ok(Response::Metadata(metadata)) = client.call(metadata_request()).await else {
        panic!("no metadata");
    };
    let found = metadata.topics.iter().find(|t| t.name == topic);
    found.expect("topic listed").config.clone()
}

/// Proves a client speaking 1..=2 gets 2, and one speaking only 1 gets 1.
#[tokio::test]
async fn hello_negotiates_version_2_or_1() {
    bounded(async {
        let server = TestServer::start().await;
        let mut client = TestClient::connect(server.address).await;
        let answer = client.call(Request::Hello(hello_request(1, 2))).await;
        assert!(matches!(answer, Ok(Response::Hello(h)) if h.version == 2));
        v1_client(&server).await;
        server.stop().await;
    })
    .await;
}

/// Proves a compacted topic created at version 2 keeps its settings, and a
/// version-1 CreateTopic (whose config has no cleanup field) makes a
/// delete topic.
#[tokio::test]
async fn version_2_creates_compacted_topics_and_version_1_delete_topics() {
    bounded(async {
        let server = TestServer::start().await;
        let mut client = server.client().await;
        let created = client.call(create_compacted("retained")).await;
        let Ok(Response::CreateTopic(created)) = created else {
            panic!("unexpected create answer {created:?}");
        };
        assert_eq!(created.topic.config.cleanup, Cleanup::Compact);
        let config = cleanup_of(&mut client, "retained").await;
        assert_eq!(config.tombstone_retention_ms, Some(60_000));

        let mut old = v1_client(&server).await;
        assert!(old.call(create_compacted("old")).await.is_ok());
        assert_eq!(
            cleanup_of(&mut client, "old").await.cleanup,
            Cleanup::Delete
        );
        server.stop().await;
    })
    .await;
}

/// Proves a version-1 client is refused Produce and Fetch on a compacted
/// topic with UNSUPPORTED_VERSION and the reason, nothing is written, its
/// Metadata lists the topic without the policy, and delete topics still
/// work at version 1.
#[tokio::test]
async fn version_1_may_not_produce_to_or_fetch_from_a_compacted_topic() {
    bounded(async {
        let server = TestServer::start().await;
        let mut client = server.client().await;
        client.call(create_compacted("retained")).await.unwrap();
        client.create_topic("plain", 1).await.unwrap();

        let mut old = v1_client(&server).await;
        let produce = produce_request(Acks::Leader, "retained", 0, batch(&[b"on"]));
        for request in [produce, fetch("retained")] {
            let error = expect_error(old.call(request).await, ErrorCode::UNSUPPORTED_VERSION);
            assert_eq!(
                error.message,
                "topic retained is compacted; it needs protocol version 2"
            );
        }
        assert_eq!(client.latest_offset("retained", 0).await, 0);
        let listed = cleanup_of(&mut old, "retained").await;
        assert_eq!(listed.cleanup, Cleanup::Delete, "v1 cannot show the policy");

        let response = old.produce("plain", 0, batch(&[b"x"])).await;
        assert!(response.partitions[0].status.error.is_ok());
        assert!(old.call(fetch("plain")).await.is_ok());
        server.stop().await;
    })
    .await;
}

/// Proves a tombstone is refused on a delete topic and taken on a compacted
/// one, and a keyless record is refused on a compacted topic; a refused
/// batch writes nothing.
#[tokio::test]
async fn tombstones_and_keys_follow_the_topic_cleanup() {
    bounded(async {
        let server = TestServer::start().await;
        let mut client = server.client().await;
        client.call(create_compacted("retained")).await.unwrap();
        client.create_topic("plain", 1).await.unwrap();

        let refused = client.produce("plain", 0, tombstone_batch()).await;
        let status = &refused.partitions[0].status;
        assert_eq!(status.error, ErrorCode::INVALID_REQUEST, "{status:?}");
        assert!(
            status
                .message
                .contains("null values (tombstones) need a compacted topic"),
            "{status:?}"
        );
        assert_eq!(client.latest_offset("plain", 0).await, 0);

        let taken = client.produce("retained", 0, tombstone_batch()).await;
        assert!(taken.partitions[0].status.error.is_ok(), "{taken:?}");
        assert_eq!(client.latest_offset("retained", 0).await, 2);

        let mut keyless = citystream_record::BatchBuilder::new();
        keyless.push(1_000, None, b"no key", &[]).unwrap();
        let refused = client.produce("retained", 0, keyless.finish()).await;
        let status = &refused.partitions[0].status;
        assert_eq!(status.error, ErrorCode::INVALID_REQUEST, "{status:?}");
        assert!(status.message.contains("has no key"), "{status:?}");
        assert_eq!(client.latest_offset("retained", 0).await, 2);
        server.stop().await;
    })
    .await;
}
