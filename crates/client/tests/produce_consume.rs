//! End-to-end tests of the producer, the manual-assignment consumer and
//! admin against an in-process server.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use citystream_client::{
    Acks, ClientError, ConsumerConfig, ErrorCode, ProducerConfig, ProducerRecord, RecordParts,
    StartPosition, TopicConfig, UNKNOWN_OFFSET,
};
use citystream_protocol::{
    InitProducerRequest, OffsetSpec, ProducePartition, ProduceRequest, Request, Response,
};
use citystream_record::BatchBuilder;
use common::{TestServer, bounded, consume_to_end, produce, producer, value_text};

fn earliest(topic: &str) -> ConsumerConfig {
    ConsumerConfig {
        start: StartPosition::Earliest,
        ..ConsumerConfig::new(topic)
    }
}

/// Every produced record comes back once with its value, and per key in
/// order, with an HLC from the broker's clock: unique across partitions,
/// growing with the offset, its milliseconds near the wall clock.
#[tokio::test]
async fn produced_records_round_trip() {
    bounded(async {
        let wall_ms = || {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
            now.unwrap().as_millis() as i64
        };
        let started_ms = wall_ms();
        let server = TestServer::start().await;
        let client = server.client_with_topic("rt", 3).await;
        let producer = producer(&client);
        produce(&producer, "rt", 0..1_000).await;
        let mut consumer = client.consumer(earliest("rt")).await.unwrap();
        assert_eq!(consumer.assignment().len(), 3);
        let records = consume_to_end(&mut consumer).await;
        assert_eq!(records.len(), 1_000);
        let mut seen = HashMap::new();
        for record in &records {
            let key = String::from_utf8(record.key.clone().unwrap().to_vec()).unwrap();
            assert_eq!(value_text(record), key.replace("key", "value"));
            let expected = citystream_client::partition_for_key(key.as_bytes(), 3);
            assert_eq!(record.partition, expected, "keyed records follow murmur2");
            assert!(
                seen.insert(key, record.offset).is_none(),
                "each record once"
            );
            assert!((started_ms..=wall_ms() + 1).contains(&record.hlc_ms()));
        }
        let mut by_partition: Vec<(u32, u64, u64)> = records
            .iter()
            .map(|r| (r.partition, r.offset, r.hlc))
            .collect();
        by_partition.sort();
        for pair in by_partition.windows(2) {
            if pair[0].0 == pair[1].0 {
                assert!(pair[0].2 < pair[1].2, "HLCs grow with offsets: {pair:?}");
            }
        }
        let mut hlcs: Vec<u64> = records.iter().map(|r| r.hlc).collect();
        hlcs.sort();
        hlcs.dedup();
        assert_eq!(hlcs.len(), records.len(), "one clock: no HLC twice");
        producer.close().await.unwrap();
    })
    .await;
}

/// Delivery futures report consecutive offsets in send order on one partition.
#[tokio::test]
async fn delivery_futures_report_offsets() {
    bounded(async {
        let server = TestServer::start().await;
        let client = server.client_with_topic("offsets", 1).await;
        let producer = producer(&client);
        let mut deliveries = Vec::new();
        for i in 0..50u32 {
            let record = ProducerRecord::new("offsets", i.to_string());
            deliveries.push(producer.send(record).await.unwrap());
        }
        for (i, delivery) in deliveries.into_iter().enumerate() {
            let metadata = delivery.await.unwrap();
            assert_eq!(
                (metadata.topic.as_str(), metadata.partition),
                ("offsets", 0)
            );
            assert_eq!(metadata.offset, i as u64);
        }
    })
    .await;
}

/// A record sent from borrowed parts is stored as the same record sent
/// owned: key (and so partition), value, headers in order with a repeated
/// name, timestamp; the two interleave in one batch in send order.
#[tokio::test]
async fn a_record_sent_from_parts_is_the_record_sent_owned() {
    bounded(async {
        let server = TestServer::start().await;
        let client = server.client_with_topic("parts", 3).await;
        let producer = producer(&client);
        let headers: [(&str, &[u8]); 3] = [("a", b"1"), ("b", b""), ("a", b"3")];
        let mut owned = ProducerRecord::new("parts", "value").with_key("device-7");
        owned.headers = headers
            .iter()
            .map(|(name, value)| (name.to_string(), Bytes::copy_from_slice(value)))
            .collect();
        owned.timestamp_ms = Some(1_700_000_000_000);
        let parts = RecordParts {
            topic: "parts",
            partition: None,
            key: Some(b"device-7"),
            value: b"value",
            headers: &headers,
            timestamp_ms: Some(1_700_000_000_000),
        };
        let first = producer.send(owned.clone()).await.unwrap();
        let second = producer.send_parts(parts).await.unwrap();
        let third = producer.send(owned).await.unwrap();
        let (first, second, third) = (
            first.await.unwrap(),
            second.await.unwrap(),
            third.await.unwrap(),
        );
        assert_eq!(first.partition, second.partition);
        assert_eq!(
            (first.offset + 1, second.offset + 1),
            (second.offset, third.offset)
        );
        let mut consumer = client.consumer(earliest("parts")).await.unwrap();
        let records = consume_to_end(&mut consumer).await;
        assert_eq!(records.len(), 3);
        let stored = |r: &citystream_client::ConsumerRecord| {
            (
                r.partition,
                r.key.clone(),
                r.value.clone(),
                r.headers.clone(),
                r.timestamp_ms,
            )
        };
        assert_eq!(stored(&records[0]), stored(&records[1]));
        assert_eq!(stored(&records[1]), stored(&records[2]));
        assert_eq!(records[1].headers[2], ("a".into(), Bytes::from("3")));
    })
    .await;
}

/// A send that may not wait queues nothing while the topic's partition
/// count is unknown (it would have to ask), and queues once it is known:
/// tracked with a delivery future, or untracked with none, both written
/// in send order.
#[tokio::test]
async fn a_send_that_may_not_wait_queues_only_when_it_need_not() {
    bounded(async {
        let server = TestServer::start().await;
        let client = server.client_with_topic("now", 1).await;
        let producer = producer(&client);
        let parts = |value: &'static [u8]| RecordParts {
            topic: "now",
            partition: None,
            key: Some(b"k"),
            value,
            headers: &[],
            timestamp_ms: None,
        };
        assert!(producer.try_send_parts(parts(b"0")).unwrap().is_none());
        assert!(!producer.try_send_parts_untracked(parts(b"0")).unwrap());
        producer
            .send_parts(parts(b"1"))
            .await
            .unwrap()
            .await
            .unwrap();
        assert!(producer.try_send_parts_untracked(parts(b"2")).unwrap());
        let tracked = producer.try_send_parts(parts(b"3")).unwrap();
        let metadata = tracked.expect("the topic is known").await.unwrap();
        assert_eq!(metadata.offset, 2);
        let mut consumer = client.consumer(earliest("now")).await.unwrap();
        let values: Vec<String> = consume_to_end(&mut consumer)
            .await
            .iter()
            .map(value_text)
            .collect();
        assert_eq!(values, ["1", "2", "3"]);
    })
    .await;
}

/// Records queued in a row under one lock: nothing while the partition
/// count is unknown; then taken from the front while the buffer has room,
/// a refused record counted as taken (and reported with its index), and
/// the others written in order, before a later send.
#[tokio::test]
async fn records_queued_in_a_row_are_taken_from_the_front() {
    bounded(async {
        let server = TestServer::start().await;
        let client = server.client_with_topic("row", 1).await;
        let parts = |partition: Option<u32>, value: &'static [u8]| RecordParts {
            topic: "row",
            partition,
            key: Some(b"k"),
            value,
            headers: &[("h", b"v")],
            timestamp_ms: None,
        };
        let mut refused = Vec::new();
        let mut note = |index: usize, error: ClientError| refused.push((index, error.to_string()));
        let producer = producer(&client);
        assert_eq!(
            producer.try_send_parts_untracked_all(&[parts(None, b"0")], &mut note),
            0
        );
        producer
            .send_parts(parts(None, b"1"))
            .await
            .unwrap()
            .await
            .unwrap();
        let row = [
            parts(None, b"2"),
            parts(Some(5), b"x"),
            parts(Some(0), b"3"),
        ];
        assert_eq!(producer.try_send_parts_untracked_all(&row, &mut note), 3);
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert_eq!(refused[0].0, 1);
        assert!(refused[0].1.contains("no partition 5"), "{refused:?}");
        let last = producer
            .send_parts(parts(None, b"4"))
            .await
            .unwrap()
            .await
            .unwrap();
        assert_eq!(last.offset, 3, "2 and 3 came before it");

        // A buffer of one byte takes the first record (one may overshoot
        // it) and no more until that one is written.
        let tight = client
            .producer(ProducerConfig {
                buffer_bytes_max: 1,
                ..ProducerConfig::default()
            })
            .unwrap();
        tight
            .send_parts(parts(None, b"5"))
            .await
            .unwrap()
            .await
            .unwrap();
        let row = [parts(None, b"6"), parts(None, b"7")];
        assert_eq!(tight.try_send_parts_untracked_all(&row, |_, _| {}), 1);
        tight.send_parts(row[1]).await.unwrap().await.unwrap();

        let mut consumer = client.consumer(earliest("row")).await.unwrap();
        let consumed = consume_to_end(&mut consumer).await;
        let values: Vec<String> = consumed.iter().map(value_text).collect();
        assert_eq!(values, ["1", "2", "3", "4", "5", "6", "7"]);
        assert!(
            consumed
                .iter()
                .all(|record| record.headers == [("h".into(), Bytes::from_static(b"v"))])
        );
    })
    .await;
}

/// The same idempotent batch sent twice is written once.
#[tokio::test]
async fn idempotent_batch_retry_is_written_once() {
    bounded(async {
        let server = TestServer::start().await;
        let client = server.client_with_topic("idem", 1).await;
        let Response::InitProducer(init) = client
            .request(Request::InitProducer(InitProducerRequest {}))
            .await
            .unwrap()
        else {
            panic!("expected an InitProducer response");
        };
        let mut builder = BatchBuilder::new();
        builder.set_producer(init.producer_id, 0);
        for value in [b"a", b"b", b"c"] {
            builder.push(1, None, value, &[]).unwrap();
        }
        let batch = builder.finish();
        let produce = Request::Produce(ProduceRequest {
            acks: Acks::Leader,
            timeout_ms: 5_000,
            partitions: vec![ProducePartition {
                topic: "idem".to_string(),
                partition: 0,
                batch,
            }],
        });
        let mut base_offsets = Vec::new();
        for _ in 0..2 {
            let Response::Produce(response) = client.request(produce.clone()).await.unwrap() else {
                panic!("expected a Produce response");
            };
            assert!(response.partitions[0].status.error.is_ok());
            base_offsets.push(response.partitions[0].base_offset);
        }
        assert_eq!(
            base_offsets,
            vec![0, 0],
            "the retry is acknowledged, not rewritten"
        );
        let end = client
            .admin()
            .list_offsets("idem", 0, OffsetSpec::Latest)
            .await
            .unwrap();
        assert_eq!(end, 3);
    })
    .await;
}

/// An idempotent producer writes every record once and in order.
#[tokio::test]
async fn idempotent_producer_keeps_order() {
    bounded(async {
        let server = TestServer::start().await;
        let client = server.client_with_topic("idem-order", 2).await;
        let producer = client
            .producer(ProducerConfig {
                idempotent: true,
                linger_ms: 1,
                batch_bytes: 1_024,
                ..ProducerConfig::default()
            })
            .unwrap();
        let mut deliveries = Vec::new();
        for i in 0..2_000u32 {
            let mut record = ProducerRecord::new("idem-order", i.to_string());
            record.partition = Some(i % 2);
            deliveries.push(producer.send(record).await.unwrap());
        }
        producer.flush().await.unwrap();
        for (i, delivery) in deliveries.into_iter().enumerate() {
            assert_eq!(delivery.await.unwrap().offset, (i / 2) as u64);
        }
        let mut consumer = client.consumer(earliest("idem-order")).await.unwrap();
        let records = consume_to_end(&mut consumer).await;
        assert_eq!(records.len(), 2_000);
        for record in records {
            let value: u64 = value_text(&record).parse().unwrap();
            assert_eq!(value % 2, u64::from(record.partition));
            assert_eq!(value / 2, record.offset);
        }
    })
    .await;
}

/// With `Acks::None` records are written though the broker never answers.
#[tokio::test]
async fn acks_none_writes_without_answers() {
    bounded(async {
        let server = TestServer::start().await;
        let client = server.client_with_topic("fire", 1).await;
        let producer = client
            .producer(ProducerConfig {
                acks: Acks::None,
                linger_ms: 1,
                ..ProducerConfig::default()
            })
            .unwrap();
        let mut deliveries = Vec::new();
        for i in 0..100u32 {
            deliveries.push(
                producer
                    .send(ProducerRecord::new("fire", i.to_string()))
                    .await
                    .unwrap(),
            );
        }
        producer.close().await.unwrap();
        for delivery in deliveries {
            assert_eq!(delivery.await.unwrap().offset, UNKNOWN_OFFSET);
        }
        let admin = client.admin();
        while admin
            .list_offsets("fire", 0, OffsetSpec::Latest)
            .await
            .unwrap()
            < 100
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

/// Producing to a missing topic auto-creates it when the broker allows it.
#[tokio::test]
async fn producing_auto_creates_a_topic() {
    bounded(async {
        let server = TestServer::start_with(true).await;
        let client = server.client().await;
        let producer = producer(&client);
        let delivery = producer
            .send(ProducerRecord::new("born", Bytes::from_static(b"hello")).with_key("k"))
            .await
            .unwrap();
        assert_eq!(delivery.await.unwrap().offset, 0);
        let topic = client.admin().describe_topic("born").await.unwrap();
        assert!(!topic.partitions.is_empty());
    })
    .await;
}

/// A missing topic without auto-create fails the delivery with
/// UNKNOWN_TOPIC after a few attempts (not the whole delivery timeout).
#[tokio::test]
async fn producing_to_a_missing_topic_fails() {
    bounded(async {
        let server = TestServer::start().await;
        let client = server.client().await;
        let producer = client
            .producer(ProducerConfig {
                retry_backoff_ms: 10,
                linger_ms: 1,
                ..ProducerConfig::default()
            })
            .unwrap();
        let delivery = producer
            .send(ProducerRecord::new("nope", "x"))
            .await
            .unwrap();
        let error = delivery.await.unwrap_err();
        assert_eq!(error.code(), Some(ErrorCode::UNKNOWN_TOPIC));
    })
    .await;
}

/// Admin creates, lists, describes and deletes topics and reports duplicates.
#[tokio::test]
async fn admin_manages_topics() {
    bounded(async {
        let server = TestServer::start().await;
        let client = server.client().await;
        let admin = client.admin();
        let created = admin
            .create_topic("adm", 2, TopicConfig::default())
            .await
            .unwrap();
        assert_eq!(created.partitions.len(), 2);
        let again = admin.create_topic("adm", 2, TopicConfig::default()).await;
        assert_eq!(
            again.unwrap_err().code(),
            Some(ErrorCode::TOPIC_ALREADY_EXISTS)
        );
        let names: Vec<String> = admin
            .list_topics()
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.name)
            .collect();
        assert!(names.contains(&"adm".to_string()));
        assert_eq!(
            admin.describe_topic("adm").await.unwrap().partitions.len(),
            2
        );
        admin.delete_topic("adm").await.unwrap();
        let gone = admin.describe_topic("adm").await.unwrap_err();
        assert_eq!(gone.code(), Some(ErrorCode::UNKNOWN_TOPIC));
        assert_eq!(
            admin
                .list_offsets("adm", 0, OffsetSpec::Earliest)
                .await
                .unwrap_err()
                .code(),
            Some(ErrorCode::UNKNOWN_TOPIC)
        );
    })
    .await;
}

/// `seek` moves a partition's position; the next poll starts there.
#[tokio::test]
async fn seek_moves_the_position() {
    bounded(async {
        let server = TestServer::start().await;
        let client = server.client_with_topic("seek", 1).await;
        produce(&producer(&client), "seek", 0..10).await;
        let mut consumer = client.consumer(earliest("seek")).await.unwrap();
        assert_eq!(consume_to_end(&mut consumer).await.len(), 10);
        consumer.seek("seek", 0, 7).unwrap();
        assert!(!consumer.at_end(), "records 7..10 are unread again");
        let offsets: Vec<u64> = consume_to_end(&mut consumer)
            .await
            .iter()
            .map(|r| r.offset)
            .collect();
        assert_eq!(offsets, vec![7, 8, 9]);
        assert!(
            consumer.seek("seek", 5, 0).is_err(),
            "partition 5 is not assigned"
        );
    })
    .await;
}

/// With `fetch_min_bytes`, the broker answers a fetch only once that many
/// bytes are ready: 1 KiB records acknowledged one at a time while the
/// consumer waits come back together in its first poll, not one by one.
#[tokio::test]
async fn a_fetch_waits_for_its_min_bytes() {
    bounded(async {
        let server = TestServer::start().await;
        let client = server.client_with_topic("min-bytes", 1).await;
        let config = ConsumerConfig {
            fetch_min_bytes: 8 * 1024,
            fetch_max_wait_ms: 20_000,
            ..earliest("min-bytes")
        };
        let mut consumer = client.consumer(config).await.unwrap();
        let producer = producer(&client);
        let sending = tokio::spawn(async move {
            for _ in 0..12 {
                let record = ProducerRecord::new("min-bytes", vec![b'x'; 1024]);
                producer.send(record).await.unwrap().await.unwrap();
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        let first = consumer.poll(Duration::from_secs(25)).await.unwrap();
        // Eight one-record batches of 1 KiB and more are the first to reach 8 KiB.
        assert!(
            first.len() >= 8,
            "the first poll returned {} records",
            first.len()
        );
        sending.await.unwrap();
    })
    .await;
}

/// A start offset beyond the log is reset to the earliest offset.
#[tokio::test]
async fn out_of_range_start_is_reset() {
    bounded(async {
        let server = TestServer::start().await;
        let client = server.client_with_topic("range", 1).await;
        produce(&producer(&client), "range", 0..5).await;
        let config = ConsumerConfig {
            start: StartPosition::Offset(1_000),
            ..ConsumerConfig::new("range")
        };
        let mut consumer = client.consumer(config).await.unwrap();
        let records = common::consume(&mut consumer, 5).await;
        assert_eq!(records.first().map(|r| r.offset), Some(0));
    })
    .await;
}

/// Manual assignment with a group commits offsets a later group member resumes from.
#[tokio::test]
async fn manual_assignment_commits_for_its_group() {
    bounded(async {
        let server = TestServer::start().await;
        let client = server.client_with_topic("manual", 2).await;
        let producer = producer(&client);
        produce(&producer, "manual", 0..20).await;
        let config = ConsumerConfig {
            group: Some("g-manual".to_string()),
            partitions: Some(vec![("manual".to_string(), 0), ("manual".to_string(), 1)]),
            ..earliest("manual")
        };
        let mut manual = client.consumer(config.clone()).await.unwrap();
        assert_eq!(consume_to_end(&mut manual).await.len(), 20);
        manual.commit().await.unwrap();
        manual.close().await.unwrap();
        produce(&producer, "manual", 20..23).await;
        let mut again = client.consumer(config).await.unwrap();
        assert_eq!(consume_to_end(&mut again).await.len(), 3);
    })
    .await;
}

/// `Admin::cluster_status` returns the answering node's view: on a
/// standalone broker, itself alone and Alive, with its partitions.
#[tokio::test]
async fn cluster_status_of_a_standalone_broker() {
    bounded(async {
        let server = TestServer::start().await;
        let client = server.client_with_topic("status", 2).await;
        let status = client.admin().cluster_status().await.unwrap();
        assert_eq!(status.nodes.len(), 1);
        assert_eq!(status.nodes[0].node_id, status.node_id);
        assert_eq!(status.nodes[0].state, citystream_protocol::NodeState::Alive);
        assert_eq!(status.metadata_leader, None);
        let partitions: Vec<_> = status.partitions.iter().map(|p| p.partition).collect();
        assert_eq!(partitions, [0, 1]);
    })
    .await;
}
