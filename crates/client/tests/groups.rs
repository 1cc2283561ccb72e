//! End-to-end tests of consumer groups: partition split between members,
//! resuming after a commit, and the stream interface.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use citystream_client::{Client, ConsumerConfig, ConsumerRecord, StartPosition};
use common::{TestServer, bounded, consume, consume_to_end, produce, producer};
use futures::StreamExt;
use tokio::sync::mpsc;

fn group_config(topic: &str, group: &str) -> ConsumerConfig {
    ConsumerConfig {
        group: Some(group.to_string()),
        start: StartPosition::Earliest,
        heartbeat_interval_ms: 50,
        session_timeout_ms: 5_000,
        rebalance_timeout_ms: 5_000,
        auto_commit_interval_ms: 100,
        fetch_max_wait_ms: 100,
        ..ConsumerConfig::new(topic)
    }
}

/// Polls as a member of `group` until `total` records were read by all
/// members together, reporting its assignment size and its records.
async fn member(
    client: Client,
    group: &'static str,
    total: usize,
    read: Arc<AtomicUsize>,
    assigned: mpsc::Sender<usize>,
    records: mpsc::UnboundedSender<ConsumerRecord>,
) {
    let mut consumer = client.consumer(group_config("split", group)).await.unwrap();
    let mut last_reported = usize::MAX;
    while read.load(Ordering::SeqCst) < total {
        for record in consumer.poll(Duration::from_millis(100)).await.unwrap() {
            read.fetch_add(1, Ordering::SeqCst);
            records.send(record).unwrap();
        }
        let partitions = consumer.assignment().len();
        if partitions != last_reported {
            last_reported = partitions;
            let _ = assigned.send(partitions).await;
        }
    }
    consumer.close().await.unwrap();
}

/// Two members of one group split the partitions and read each record once.
#[tokio::test]
async fn two_members_split_partitions_and_read_each_record_once() {
    bounded(async {
        let server = TestServer::start().await;
        let client = server.client_with_topic("split", 4).await;
        let total = 400;
        let read = Arc::new(AtomicUsize::new(0));
        let (assigned_tx, mut assigned) = mpsc::channel(16);
        let (records_tx, mut records) = mpsc::unbounded_channel();
        let members: Vec<_> = (0..2)
            .map(|_| {
                tokio::spawn(member(
                    client.clone(),
                    "g-split",
                    total,
                    read.clone(),
                    assigned_tx.clone(),
                    records_tx.clone(),
                ))
            })
            .collect();
        drop(records_tx);
        // Produce only once the group settled on two members with two partitions each.
        let mut twos = 0;
        while twos < 2 {
            if assigned.recv().await.unwrap() == 2 {
                twos += 1;
            }
        }
        produce(&producer(&client), "split", 0..total as u32).await;
        for member in members {
            member.await.unwrap();
        }
        let mut seen = HashSet::new();
        while let Some(record) = records.recv().await {
            assert!(
                seen.insert((record.partition, record.offset)),
                "read twice: {record:?}"
            );
        }
        assert_eq!(seen.len(), total);
    })
    .await;
}

/// A new member of a group starts after the records a closed member committed.
#[tokio::test]
async fn new_member_resumes_after_committed_records() {
    bounded(async {
        let server = TestServer::start().await;
        let client = server.client_with_topic("resume", 1).await;
        let producer = producer(&client);
        produce(&producer, "resume", 0..10).await;
        let mut first = client
            .consumer(group_config("resume", "g-resume"))
            .await
            .unwrap();
        assert_eq!(consume(&mut first, 10).await.len(), 10);
        first.commit().await.unwrap();
        first.close().await.unwrap();
        produce(&producer, "resume", 10..15).await;
        let mut second = client
            .consumer(group_config("resume", "g-resume"))
            .await
            .unwrap();
        let records = consume_to_end(&mut second).await;
        let offsets: Vec<u64> = records.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, (10..15).collect::<Vec<u64>>());
        second.close().await.unwrap();
    })
    .await;
}

/// Closing with auto-commit commits what was read, without an explicit commit.
#[tokio::test]
async fn close_auto_commits() {
    bounded(async {
        let server = TestServer::start().await;
        let client = server.client_with_topic("auto", 1).await;
        produce(&producer(&client), "auto", 0..5).await;
        let mut first = client
            .consumer(group_config("auto", "g-auto"))
            .await
            .unwrap();
        consume(&mut first, 5).await;
        first.close().await.unwrap();
        let described = client.admin().describe_group("g-auto").await.unwrap();
        assert_eq!(described.offsets[0].committed, 5);
        let mut second = client
            .consumer(group_config("auto", "g-auto"))
            .await
            .unwrap();
        assert!(consume_to_end(&mut second).await.is_empty());
    })
    .await;
}

/// `stream` yields records one by one in offset order.
#[tokio::test]
async fn stream_yields_records_in_order() {
    bounded(async {
        let server = TestServer::start().await;
        let client = server.client_with_topic("stream", 1).await;
        produce(&producer(&client), "stream", 0..20).await;
        let config = ConsumerConfig {
            start: StartPosition::Earliest,
            ..ConsumerConfig::new("stream")
        };
        let mut consumer = client.consumer(config).await.unwrap();
        let records: Vec<ConsumerRecord> = consumer
            .stream()
            .take(20)
            .map(|record| record.unwrap())
            .collect()
            .await;
        let offsets: Vec<u64> = records.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, (0..20).collect::<Vec<u64>>());
        assert!(consumer.at_end());
    })
    .await;
}
