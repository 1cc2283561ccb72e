//! Compacted topics through the broker facade (decision 0017 §4, §9): the
//! produce rules that depend on a topic's cleanup policy, the settings
//! kept across a reopen, and the log config a policy gives its partitions.

mod common;

use bytes::Bytes;
use citystream_broker::{
    Broker, BrokerConfig, BrokerError, Cleanup, LogConfig, OffsetQuery, TopicSettings, log_config,
};
use citystream_record::{BatchBuilder, BatchIter};
use common::{batch, disk_config, memory_broker};

fn compacted(cleanup: Cleanup) -> TopicSettings {
    TopicSettings {
        cleanup,
        tombstone_retention_ms: Some(60_000),
        ..TopicSettings::default()
    }
}

/// A value for `key` followed by a tombstone for it.
fn value_then_tombstone(key: &[u8]) -> Bytes {
    let mut builder = BatchBuilder::new();
    builder.push(1_000, Some(key), b"on", &[]).unwrap();
    builder.push_tombstone(1_001, Some(key), &[]).unwrap();
    builder.finish()
}

fn high_watermark(broker: &Broker, topic: &str) -> u64 {
    broker.list_offset(topic, 0, OffsetQuery::Latest).unwrap()
}

/// A compacted topic takes tombstones, and they read back as null values.
#[test]
fn compacted_topic_accepts_tombstones() {
    let broker = memory_broker();
    for (name, cleanup) in [("c", Cleanup::Compact), ("cd", Cleanup::CompactDelete)] {
        broker.create_topic(name, 1, compacted(cleanup)).unwrap();
        broker
            .produce(name, 0, value_then_tombstone(b"k"), 1)
            .unwrap();
        let fetched = broker.fetch(name, 0, 0, 1 << 20).unwrap();
        let values: Vec<Option<Vec<u8>>> = BatchIter::new(fetched.records)
            .flat_map(|batch| {
                let batch = batch.unwrap();
                batch
                    .records()
                    .map(|r| r.value.map(<[u8]>::to_vec))
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(values, [Some(b"on".to_vec()), None], "{name}");
    }
}

/// A delete topic refuses a tombstone with a clear error and writes nothing.
#[test]
fn delete_topic_refuses_tombstones() {
    let broker = memory_broker();
    broker
        .create_topic("plain", 1, TopicSettings::default())
        .unwrap();
    let err = broker
        .produce("plain", 0, value_then_tombstone(b"k"), 1)
        .unwrap_err();
    assert!(matches!(err, BrokerError::InvalidRequest(_)), "{err}");
    assert!(
        err.to_string()
            .contains("null values (tombstones) need a compacted topic"),
        "{err}"
    );
    assert_eq!(high_watermark(&broker, "plain"), 0);
}

/// A compacted topic refuses a batch with a keyless record and writes
/// nothing of it; keyed batches still go through.
#[test]
fn compacted_topic_refuses_keyless_records() {
    let broker = memory_broker();
    broker
        .create_topic("c", 1, compacted(Cleanup::Compact))
        .unwrap();
    let mut builder = BatchBuilder::new();
    builder.push(1_000, None, b"no key", &[]).unwrap();
    let err = broker.produce("c", 0, builder.finish(), 1).unwrap_err();
    assert!(
        err.to_string()
            .contains("record 0 has no key: every record of a compacted topic"),
        "{err}"
    );
    assert_eq!(high_watermark(&broker, "c"), 0);
    broker.produce("c", 0, batch(&["a", "b"]), 1).unwrap();
    assert_eq!(high_watermark(&broker, "c"), 2);
}

/// Invalid compaction settings are refused at creation, naming the setting.
#[test]
fn invalid_compaction_settings_refused() {
    let broker = memory_broker();
    let zero = TopicSettings {
        tombstone_retention_ms: Some(0),
        ..compacted(Cleanup::Compact)
    };
    let err = broker.create_topic("z", 1, zero).unwrap_err();
    assert!(
        err.to_string()
            .contains("tombstone_retention_ms must be greater than 0"),
        "{err}"
    );
    assert!(broker.describe_topic("z").is_err(), "nothing was created");
}

/// A compacted topic's settings survive a reopen (topic.json version 2).
#[test]
fn compacted_settings_persist() {
    let dir = tempfile::tempdir().unwrap();
    let settings = TopicSettings {
        compaction_lag_ms: Some(5_000),
        segment_roll_ms: Some(10_000),
        retention_ms: Some(3_600_000),
        ..compacted(Cleanup::CompactDelete)
    };
    {
        let broker = Broker::open(disk_config(dir.path()), 0).unwrap();
        broker.create_topic("kept", 2, settings.clone()).unwrap();
        broker.close().unwrap();
    }
    let broker = Broker::open(disk_config(dir.path()), 0).unwrap();
    assert_eq!(broker.describe_topic("kept").unwrap().settings, settings);
    let json = std::fs::read_to_string(dir.path().join("topics/kept/topic.json")).unwrap();
    assert!(json.contains("\"version\": 2"), "{json}");
}

/// A topic that is only compacted never loses data to retention, and a
/// compacted topic rolls its segment hourly unless it says otherwise.
#[test]
fn log_config_follows_the_policy() {
    let base = LogConfig {
        retention_ms: Some(1_000),
        ..LogConfig::default()
    };
    let compact = log_config("c", &compacted(Cleanup::Compact), &base);
    assert!(compact.compacted);
    assert_eq!(compact.retention_ms, None);
    assert_eq!(compact.segment_roll_ms, Some(3_600_000));
    let both = log_config("cd", &compacted(Cleanup::CompactDelete), &base);
    assert_eq!(both.retention_ms, Some(1_000));
    let delete = log_config("d", &TopicSettings::default(), &base);
    assert!(!delete.compacted);
    assert_eq!(delete.segment_roll_ms, None);
    let rolled = TopicSettings {
        segment_roll_ms: Some(60_000),
        ..TopicSettings::default()
    };
    assert_eq!(
        log_config("r", &rolled, &base).segment_roll_ms,
        Some(60_000)
    );
}

/// Broker compaction settings are checked at open.
#[test]
fn broker_compaction_settings_validated() {
    let small = BrokerConfig {
        compaction_buffer_bytes: 1 << 20,
        ..BrokerConfig::default()
    };
    let err = Broker::open(small, 0).err().unwrap();
    assert!(err.to_string().contains("compaction_buffer_bytes"), "{err}");
    let ratio = BrokerConfig {
        compaction_dirty_ratio_min_percent: 0,
        ..BrokerConfig::default()
    };
    let err = Broker::open(ratio, 0).err().unwrap();
    assert!(
        err.to_string()
            .contains("compaction_dirty_ratio_min_percent must be 1-100"),
        "{err}"
    );
}
