//! The data path through the broker facade: produce/fetch round trips, every
//! produce error leaving the log untouched, idempotent dedup (also across a
//! restart), offset lookups and high-watermark watches.

mod common;

use bytes::Bytes;
use citystream_broker::{Broker, BrokerConfig, BrokerError, OffsetQuery, TopicSettings};
use citystream_record::{BatchBuilder, attributes};
use common::{
    batch, batch_at, disk_config, idempotent_batch, log_state, memory_broker, read_all,
    records_from,
};

fn broker_with_topic(partitions: u32) -> Broker {
    let config = BrokerConfig {
        auto_create_topics: false,
        batch_bytes_max: 4_096,
        record_bytes_max: 512,
        ..BrokerConfig::default()
    };
    let broker = Broker::open(config, 0).unwrap();
    broker
        .create_topic("t", partitions, TopicSettings::default())
        .unwrap();
    broker
}

/// Produced records come back from fetch with their offsets and values.
#[test]
fn produce_fetch_round_trip() {
    let broker = memory_broker();
    let first = broker.produce("t", 0, batch(&["a", "b", "c"]), 1).unwrap();
    let second = broker.produce("t", 0, batch(&["d", "e"]), 2).unwrap();
    assert_eq!((first.base_offset, first.duplicate), (0, false));
    assert_eq!(second.base_offset, 3);
    let fetched = broker.fetch("t", 0, 0, 1 << 20).unwrap();
    assert_eq!(fetched.high_watermark, 5);
    assert_eq!(fetched.log_start_offset, 0);
    let values: Vec<String> = records_from(&fetched.records, 0)
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    assert_eq!(values, ["a", "b", "c", "d", "e"]);
    let middle = broker.fetch("t", 0, 4, 1 << 20).unwrap();
    assert_eq!(records_from(&middle.records, 4), [(4, "e".to_owned())]);
}

/// Fetch at the high watermark is empty; above it or below the start is out of range.
#[test]
fn fetch_bounds() {
    let broker = memory_broker();
    broker.produce("t", 0, batch(&["a", "b"]), 1).unwrap();
    let at_end = broker.fetch("t", 0, 2, 1 << 20).unwrap();
    assert!(at_end.records.is_empty());
    assert_eq!(at_end.high_watermark, 2);
    let err = broker.fetch("t", 0, 3, 1 << 20).unwrap_err();
    assert!(
        matches!(
            err,
            BrokerError::OffsetOutOfRange {
                requested: 3,
                start: 0,
                end: 2
            }
        ),
        "{err}"
    );
    let err = broker.fetch("t", 1, 0, 1 << 20).unwrap_err();
    assert!(
        matches!(err, BrokerError::UnknownPartition { partitions: 1, .. }),
        "{err}"
    );
    let err = broker.fetch("missing", 0, 0, 1 << 20).unwrap_err();
    assert!(matches!(err, BrokerError::UnknownTopic(_)), "{err}");
}

fn corrupt(bytes: Bytes) -> Bytes {
    let mut bytes = bytes.to_vec();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x55;
    Bytes::from(bytes)
}

/// Whether an error is the one a case expects.
type ErrorCheck = fn(&BrokerError) -> bool;

fn control_batch() -> Bytes {
    let mut builder = BatchBuilder::new();
    builder.set_attributes(attributes::CONTROL);
    builder.push(0, None, b"x", &[]).unwrap();
    builder.finish()
}

/// Each refused produce returns its own error and changes neither the
/// log end nor its size.
#[test]
fn produce_errors_write_nothing() {
    let broker = broker_with_topic(2);
    broker.produce("t", 0, batch(&["seed"]), 0).unwrap();
    let before = log_state(&broker, "t", 0);
    let big = "x".repeat(600);
    let huge = "y".repeat(5_000);
    let producer = broker.init_producer().unwrap();
    let cases: Vec<(&str, u32, Bytes, ErrorCheck)> = vec![
        ("bad/name", 0, batch(&["v"]), |e| {
            matches!(e, BrokerError::InvalidTopicName { .. })
        }),
        ("__consumer_offsets", 0, batch(&["v"]), |e| {
            matches!(e, BrokerError::InvalidTopicName { .. })
        }),
        ("missing", 0, batch(&["v"]), |e| {
            matches!(e, BrokerError::UnknownTopic(_))
        }),
        ("t", 2, batch(&["v"]), |e| {
            matches!(e, BrokerError::UnknownPartition { .. })
        }),
        ("t", 0, batch(&[&huge]), |e| {
            matches!(e, BrokerError::BatchTooLarge { limit: 4_096, .. })
        }),
        ("t", 0, corrupt(batch(&["v"])), |e| {
            matches!(e, BrokerError::CorruptBatch(_))
        }),
        ("t", 0, Bytes::from_static(b"short"), |e| {
            matches!(e, BrokerError::CorruptBatch(_))
        }),
        ("t", 0, batch(&["ok", &big]), |e| {
            matches!(e, BrokerError::RecordTooLarge { index: 1, .. })
        }),
        ("t", 0, control_batch(), |e| {
            matches!(e, BrokerError::InvalidRequest(_))
        }),
        ("t", 0, idempotent_batch(producer + 1, 0, &["v"]), |e| {
            matches!(e, BrokerError::UnknownProducer(_))
        }),
        ("t", 0, idempotent_batch(producer, 3, &["v"]), |e| {
            matches!(
                e,
                BrokerError::OutOfSequence {
                    expected: 0,
                    received: 3,
                    ..
                }
            )
        }),
    ];
    for (i, (topic, partition, bytes, expected)) in cases.into_iter().enumerate() {
        let err = broker.produce(topic, partition, bytes, 1).unwrap_err();
        assert!(expected(&err), "case {i}: {err}");
        assert_eq!(log_state(&broker, "t", 0), before, "case {i} wrote");
    }
    assert_eq!(log_state(&broker, "t", 1).0, 0);
    assert!(broker.describe_topic("missing").is_err());
}

/// A retried idempotent batch is answered with its original offset and
/// written once; sequences must continue without gaps.
#[test]
fn idempotent_dedup() {
    let broker = memory_broker();
    let producer = broker.init_producer().unwrap();
    assert_ne!(producer, 0);
    let first = broker
        .produce("t", 0, idempotent_batch(producer, 0, &["a", "b"]), 1)
        .unwrap();
    let retry = broker
        .produce("t", 0, idempotent_batch(producer, 0, &["a", "b"]), 2)
        .unwrap();
    assert_eq!(
        (retry.base_offset, retry.duplicate),
        (first.base_offset, true)
    );
    let next = broker
        .produce("t", 0, idempotent_batch(producer, 2, &["c"]), 3)
        .unwrap();
    assert_eq!((next.base_offset, next.duplicate), (2, false));
    let err = broker
        .produce("t", 0, idempotent_batch(producer, 5, &["gap"]), 4)
        .unwrap_err();
    assert!(
        matches!(
            err,
            BrokerError::OutOfSequence {
                expected: 3,
                received: 5,
                ..
            }
        ),
        "{err}"
    );
    // Behind the expected sequence and not a recent batch: stale.
    let err = broker
        .produce("t", 0, idempotent_batch(producer, 1, &["old"]), 4)
        .unwrap_err();
    assert!(
        matches!(
            err,
            BrokerError::OutOfOrderSequence {
                expected: 3,
                received: 1,
                ..
            }
        ),
        "{err}"
    );
    // Sequences are per partition: partition 1 of the same producer starts at 0.
    broker
        .create_topic("u", 2, TopicSettings::default())
        .unwrap();
    broker
        .produce("u", 1, idempotent_batch(producer, 0, &["x"]), 5)
        .unwrap();
    let values: Vec<String> = read_all(&broker, "t", 0).into_iter().map(|r| r.1).collect();
    assert_eq!(values, ["a", "b", "c"]);
}

/// After a restart, a retry of a batch written before it is still a
/// duplicate, and the producer continues its sequence.
#[test]
fn idempotent_dedup_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let producer;
    {
        let broker = Broker::open(disk_config(dir.path()), 0).unwrap();
        producer = broker.init_producer().unwrap();
        for seq in 0..3u32 {
            let value = format!("v{seq}");
            broker
                .produce("t", 0, idempotent_batch(producer, seq, &[&value]), 1)
                .unwrap();
        }
        broker.close().unwrap();
    }
    let broker = Broker::open(disk_config(dir.path()), 10).unwrap();
    let retry = broker
        .produce("t", 0, idempotent_batch(producer, 2, &["v2"]), 11)
        .unwrap();
    assert_eq!((retry.base_offset, retry.duplicate), (2, true));
    let next = broker
        .produce("t", 0, idempotent_batch(producer, 3, &["v3"]), 12)
        .unwrap();
    assert_eq!((next.base_offset, next.duplicate), (3, false));
    let fresh = broker.init_producer().unwrap();
    assert!(fresh > producer, "ids are never reused after a restart");
}

/// Earliest, latest and timestamp lookups point where they should.
#[test]
fn list_offsets() {
    let broker = memory_broker();
    broker
        .produce("t", 0, batch_at(1_000, &["a", "b"]), 1)
        .unwrap();
    broker
        .produce("t", 0, batch_at(5_000, &["c", "d"]), 2)
        .unwrap();
    let lookup = |q| broker.list_offset("t", 0, q).unwrap();
    assert_eq!(lookup(OffsetQuery::Earliest), 0);
    assert_eq!(lookup(OffsetQuery::Latest), 4);
    assert_eq!(lookup(OffsetQuery::Timestamp(0)), 0);
    assert!(lookup(OffsetQuery::Timestamp(3_000)) >= 1);
    assert!(lookup(OffsetQuery::Timestamp(3_000)) <= 2);
    assert_eq!(lookup(OffsetQuery::Timestamp(99_000)), 4);
}

/// The watch channel sees the high watermark move with each produce.
#[test]
fn watch_sees_high_watermark() {
    let broker = memory_broker();
    broker
        .create_topic("t", 1, TopicSettings::default())
        .unwrap();
    let mut watch = broker.watch_partition("t", 0).unwrap();
    assert_eq!(*watch.borrow_and_update(), 0);
    broker.produce("t", 0, batch(&["a", "b"]), 1).unwrap();
    assert!(watch.has_changed().unwrap());
    assert_eq!(*watch.borrow_and_update(), 2);
}

/// Producers on different partitions run in parallel and every record lands once.
#[test]
fn concurrent_produce() {
    let broker = std::sync::Arc::new(memory_broker());
    broker
        .create_topic("t", 4, TopicSettings::default())
        .unwrap();
    let threads: Vec<_> = (0..4u32)
        .map(|partition| {
            let broker = broker.clone();
            std::thread::spawn(move || {
                for _ in 0..50 {
                    broker
                        .produce("t", partition % 2, batch(&["a", "b"]), 0)
                        .unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(read_all(&broker, "t", 0).len(), 200);
    assert_eq!(read_all(&broker, "t", 1).len(), 200);
    broker.sync_logs().unwrap();
}
