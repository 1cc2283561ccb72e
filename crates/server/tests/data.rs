//! The data path and topic administration over the wire: produce, fetch,
//! offsets, metadata and the domain errors they can answer with.

mod common;

use citystream_broker::BrokerConfig;
use citystream_protocol::{
    Acks, CreateTopicRequest, ErrorCode, FetchPartition, FetchRequest, MetadataRequest, Request,
    Response, TopicConfig,
};
use common::*;

/// Proves produced records come back from fetch with their offsets and
/// values, and the watermarks move.
#[tokio::test]
async fn produce_then_fetch_round_trip() {
    bounded(async {
        let server = TestServer::start().await;
        let mut client = server.client().await;
        client.create_topic("orders", 1).await.unwrap();
        let first = client
            .produce("orders", 0, batch(&[b"a", b"b", b"c"]))
            .await;
        assert_eq!(first.partitions[0].status.error, ErrorCode::NONE);
        assert_eq!(first.partitions[0].base_offset, 0);
        let second = client.produce("orders", 0, batch(&[b"d"])).await;
        assert_eq!(second.partitions[0].base_offset, 3);
        let fetched = client.fetch(fetch_request("orders", 1, 0, 0)).await;
        let partition = &fetched.partitions[0];
        assert_eq!(partition.status.error, ErrorCode::NONE);
        assert_eq!(partition.high_watermark, 4);
        assert_eq!(partition.log_start_offset, 0);
        // The first batch starts before offset 1; the consumer skips offset 0.
        let values: Vec<(u64, Vec<u8>)> = records(&partition.records);
        assert_eq!(
            values,
            vec![
                (0, b"a".to_vec()),
                (1, b"b".to_vec()),
                (2, b"c".to_vec()),
                (3, b"d".to_vec())
            ]
        );
        assert_eq!(client.latest_offset("orders", 0).await, 4);
        server.stop().await;
    })
    .await;
}

/// Proves `acks = None` appends but sends no response: the request pipelined
/// behind it is the only answer.
#[tokio::test]
async fn produce_without_acks_sends_no_response() {
    bounded(async {
        let server = TestServer::start().await;
        let mut client = server.client().await;
        client.create_topic("fire", 1).await.unwrap();
        client
            .send(produce_request(Acks::None, "fire", 0, batch(&[b"x"])))
            .await;
        let metadata_id = client.send(metadata_request()).await;
        assert_eq!(client.recv().await.request_id, metadata_id);
        client.expect_quiet().await;
        assert_eq!(client.latest_offset("fire", 0).await, 1);
        server.stop().await;
    })
    .await;
}

/// Proves `acks = Quorum` is answered like `Leader` on a single node.
#[tokio::test]
async fn produce_with_quorum_acks_is_answered_after_the_append() {
    bounded(async {
        let server = TestServer::start().await;
        let mut client = server.client().await;
        client.create_topic("quorum", 1).await.unwrap();
        let answer = client
            .call(produce_request(Acks::Quorum, "quorum", 0, batch(&[b"q"])))
            .await;
        let Ok(Response::Produce(produced)) = answer else {
            panic!("unexpected produce answer {answer:?}");
        };
        assert_eq!(produced.partitions[0].status.error, ErrorCode::NONE);
        assert_eq!(client.latest_offset("quorum", 0).await, 1);
        server.stop().await;
    })
    .await;
}

/// Proves a record over the record limit is refused with RECORD_TOO_LARGE
/// and nothing is written.
#[tokio::test]
async fn record_over_the_limit_is_refused_and_not_written() {
    bounded(async {
        let broker = BrokerConfig {
            record_bytes_max: 1024,
            ..broker_config()
        };
        let server = TestServer::start_with(broker, server_config()).await;
        let mut client = server.client().await;
        client.create_topic("small", 1).await.unwrap();
        let produced = client.produce("small", 0, batch(&[&[0u8; 4096]])).await;
        assert_eq!(
            produced.partitions[0].status.error,
            ErrorCode::RECORD_TOO_LARGE
        );
        assert_eq!(client.latest_offset("small", 0).await, 0);
        let fetched = client.fetch(fetch_request("small", 0, 0, 0)).await;
        assert!(fetched.partitions[0].records.is_empty());
        server.stop().await;
    })
    .await;
}

/// Proves an invalid topic name is refused with INVALID_TOPIC_NAME.
#[tokio::test]
async fn invalid_topic_name_is_refused() {
    bounded(async {
        let server = TestServer::start().await;
        let mut client = server.client().await;
        expect_error(
            client.create_topic("no spaces/allowed", 1).await,
            ErrorCode::INVALID_TOPIC_NAME,
        );
        server.stop().await;
    })
    .await;
}

/// Proves that with auto-create off an unknown topic is UNKNOWN_TOPIC for
/// produce, fetch and metadata alike.
#[tokio::test]
async fn unknown_topic_without_auto_create() {
    bounded(async {
        let server = TestServer::start().await;
        let mut client = server.client().await;
        let produced = client.produce("ghost", 0, batch(&[b"boo"])).await;
        assert_eq!(
            produced.partitions[0].status.error,
            ErrorCode::UNKNOWN_TOPIC
        );
        let fetched = client.fetch(fetch_request("ghost", 0, 1_000, 1)).await;
        assert_eq!(fetched.partitions[0].status.error, ErrorCode::UNKNOWN_TOPIC);
        let request = Request::Metadata(MetadataRequest {
            topics: Some(vec!["ghost".to_string()]),
        });
        let Ok(Response::Metadata(metadata)) = client.call(request).await else {
            panic!("metadata failed");
        };
        assert_eq!(metadata.topics[0].name, "ghost");
        assert_eq!(metadata.topics[0].status.error, ErrorCode::UNKNOWN_TOPIC);
        server.stop().await;
    })
    .await;
}

/// Proves a fetch past the log end is answered with OFFSET_OUT_OF_RANGE.
#[tokio::test]
async fn fetch_past_the_end_is_out_of_range() {
    bounded(async {
        let server = TestServer::start().await;
        let mut client = server.client().await;
        client.create_topic("short", 1).await.unwrap();
        client.produce("short", 0, batch(&[b"only"])).await;
        let fetched = client.fetch(fetch_request("short", 100, 0, 0)).await;
        let status = &fetched.partitions[0].status;
        assert_eq!(status.error, ErrorCode::OFFSET_OUT_OF_RANGE);
        assert!(status.message.contains("100"), "{}", status.message);
        server.stop().await;
    })
    .await;
}

/// Proves creating a topic twice answers TOPIC_ALREADY_EXISTS.
#[tokio::test]
async fn creating_a_topic_twice_is_refused() {
    bounded(async {
        let server = TestServer::start().await;
        let mut client = server.client().await;
        client.create_topic("twice", 2).await.unwrap();
        expect_error(
            client.create_topic("twice", 2).await,
            ErrorCode::TOPIC_ALREADY_EXISTS,
        );
        server.stop().await;
    })
    .await;
}

/// Proves zero partitions and a replication factor above one broker are
/// refused with INVALID_REQUEST.
#[tokio::test]
async fn create_topic_validates_partitions_and_replication() {
    bounded(async {
        let server = TestServer::start().await;
        let mut client = server.client().await;
        expect_error(
            client.create_topic("empty", 0).await,
            ErrorCode::INVALID_REQUEST,
        );
        let replicated = Request::CreateTopic(CreateTopicRequest {
            name: "replicated".to_string(),
            partitions: 1,
            config: TopicConfig {
                replication: 3,
                ..TopicConfig::default()
            },
        });
        let error = expect_error(client.call(replicated).await, ErrorCode::INVALID_REQUEST);
        assert_eq!(
            error.message,
            "replication factor 3 exceeds the 1 available broker(s)"
        );
        server.stop().await;
    })
    .await;
}

/// Proves metadata names this node as the only broker, controller, leader
/// and replica, with the partitions' watermarks.
#[tokio::test]
async fn metadata_describes_the_single_node() {
    bounded(async {
        let server = TestServer::start().await;
        let mut client = server.client().await;
        client.create_topic("meta", 2).await.unwrap();
        client.produce("meta", 1, batch(&[b"1", b"2"])).await;
        let Ok(Response::Metadata(metadata)) = client.call(metadata_request()).await else {
            panic!("metadata failed");
        };
        assert_eq!(metadata.cluster_id, "test-cluster");
        assert_eq!(metadata.controller_id, 7);
        assert_eq!(metadata.brokers.len(), 1);
        assert_eq!(metadata.brokers[0].address, "127.0.0.1:19400");
        let topic = &metadata.topics[0];
        assert_eq!(topic.name, "meta");
        assert_eq!(topic.config.replication, 1);
        assert_eq!(topic.partitions.len(), 2);
        assert!(
            topic
                .partitions
                .iter()
                .all(|p| p.leader == 7 && p.replicas == [7])
        );
        assert_eq!(topic.partitions[1].high_watermark, 2);
        server.stop().await;
    })
    .await;
}

/// Proves the request's `max_bytes` spans partitions: the first batch is
/// returned even when larger, and later partitions get only watermarks.
#[tokio::test]
async fn fetch_max_bytes_is_shared_across_partitions() {
    bounded(async {
        let server = TestServer::start().await;
        let mut client = server.client().await;
        client.create_topic("budget", 2).await.unwrap();
        client.produce("budget", 0, batch(&[&[1u8; 200]])).await;
        client.produce("budget", 1, batch(&[&[2u8; 200]])).await;
        let partition = |partition| FetchPartition {
            topic: "budget".to_string(),
            partition,
            offset: 0,
            max_bytes: 1024,
        };
        let fetched = client
            .fetch(FetchRequest {
                max_wait_ms: 0,
                min_bytes: 0,
                max_bytes: 10,
                partitions: vec![partition(0), partition(1)],
            })
            .await;
        assert_eq!(records(&fetched.partitions[0].records).len(), 1);
        assert!(fetched.partitions[1].records.is_empty());
        assert_eq!(fetched.partitions[1].high_watermark, 1);
        assert_eq!(fetched.partitions[1].status.error, ErrorCode::NONE);
        server.stop().await;
    })
    .await;
}

/// Proves topics can be deleted and are unknown afterwards.
#[tokio::test]
async fn deleted_topic_is_unknown() {
    bounded(async {
        let server = TestServer::start().await;
        let mut client = server.client().await;
        client.create_topic("doomed", 1).await.unwrap();
        let delete = |name: &str| {
            Request::DeleteTopic(citystream_protocol::DeleteTopicRequest {
                name: name.to_string(),
            })
        };
        assert!(client.call(delete("doomed")).await.is_ok());
        expect_error(
            client.call(delete("doomed")).await,
            ErrorCode::UNKNOWN_TOPIC,
        );
        server.stop().await;
    })
    .await;
}

/// Proves a graceful shutdown leaves the data on disk: a new server over the
/// same data directory serves what the old one acknowledged.
#[tokio::test]
async fn acknowledged_data_survives_a_graceful_restart() {
    bounded(async {
        let data_dir = tempfile::tempdir().unwrap();
        let on_disk = || BrokerConfig {
            data_dir: Some(data_dir.path().to_path_buf()),
            ..broker_config()
        };
        let server = TestServer::start_with(on_disk(), server_config()).await;
        let mut client = server.client().await;
        client.create_topic("durable", 1).await.unwrap();
        client
            .produce("durable", 0, batch(&[b"kept", b"too"]))
            .await;
        drop(client);
        server.stop().await;

        let server = TestServer::start_with(on_disk(), server_config()).await;
        let mut client = server.client().await;
        let fetched = client.fetch(fetch_request("durable", 0, 0, 0)).await;
        let values: Vec<Vec<u8>> = records(&fetched.partitions[0].records)
            .into_iter()
            .map(|(_, value)| value)
            .collect();
        assert_eq!(values, vec![b"kept".to_vec(), b"too".to_vec()]);
        server.stop().await;
    })
    .await;
}

/// Proves produces pipelined on one connection are appended in the order
/// they were sent: per-partition order holds with many requests in flight.
/// (A multi-threaded runtime, so concurrently served requests could race.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pipelined_produces_keep_their_order() {
    bounded(async {
        let server = TestServer::start().await;
        let mut client = server.client().await;
        client.create_topic("ordered", 1).await.unwrap();
        let count = 300u32;
        for i in 0..count {
            let value = i.to_string();
            let request = produce_request(Acks::Leader, "ordered", 0, batch(&[value.as_bytes()]));
            client.send(request).await;
        }
        for _ in 0..count {
            client.recv().await;
        }
        let mut fetch = fetch_request("ordered", 0, 0, 0);
        fetch.max_bytes = 16 * 1024 * 1024;
        fetch.partitions[0].max_bytes = 16 * 1024 * 1024;
        let fetched = client.fetch(fetch).await;
        let values: Vec<String> = records(&fetched.partitions[0].records)
            .into_iter()
            .map(|(_, value)| String::from_utf8(value).unwrap())
            .collect();
        let expected: Vec<String> = (0..count).map(|i| i.to_string()).collect();
        assert_eq!(values, expected);
        server.stop().await;
    })
    .await;
}
