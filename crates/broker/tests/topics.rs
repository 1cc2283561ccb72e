//! Topic administration through the broker facade: create, list, describe,
//! delete, persistence across reopen, and auto-creation.

mod common;

use citystream_broker::{Broker, BrokerConfig, BrokerError, TopicSettings};
use common::{batch, disk_config, memory_broker, read_all};

fn settings() -> TopicSettings {
    TopicSettings {
        retention_ms: Some(60_000),
        retention_bytes: None,
        segment_bytes: Some(1 << 20),
        ..TopicSettings::default()
    }
}

/// Created topics are listed sorted, described with their partitions, and gone after delete.
#[test]
fn create_list_describe_delete() {
    let broker = memory_broker();
    let info = broker.create_topic("b-topic", 3, settings()).unwrap();
    assert_eq!(info.partitions.len(), 3);
    assert_eq!(info.settings, settings());
    broker
        .create_topic("a.topic", 1, TopicSettings::default())
        .unwrap();
    let names: Vec<String> = broker.list_topics().into_iter().map(|t| t.name).collect();
    assert_eq!(names, ["a.topic", "b-topic"]);
    let described = broker.describe_topic("b-topic").unwrap();
    assert_eq!(described, info);
    assert_eq!(described.partitions[2].partition, 2);
    assert_eq!(described.partitions[2].high_watermark, 0);
    broker.delete_topic("b-topic").unwrap();
    let err = broker.describe_topic("b-topic").unwrap_err();
    assert!(matches!(err, BrokerError::UnknownTopic(_)), "{err}");
    assert_eq!(broker.list_topics().len(), 1);
}

/// Every refused creation or deletion names its own error.
#[test]
fn admin_errors() {
    let broker = memory_broker();
    broker
        .create_topic("t", 1, TopicSettings::default())
        .unwrap();
    let cases = [
        broker.create_topic("t", 1, TopicSettings::default()),
        broker.create_topic("zero", 0, TopicSettings::default()),
        broker.create_topic("huge", 10_001, TopicSettings::default()),
        broker.create_topic("bad name", 1, TopicSettings::default()),
        broker.create_topic("__mine", 1, TopicSettings::default()),
        broker.create_topic("..", 1, TopicSettings::default()),
    ];
    let [exists, zero, huge, bad, internal, dots] = cases.map(|r| r.unwrap_err());
    assert!(matches!(exists, BrokerError::TopicExists(_)), "{exists}");
    assert!(matches!(zero, BrokerError::InvalidRequest(_)), "{zero}");
    assert!(matches!(huge, BrokerError::InvalidRequest(_)), "{huge}");
    assert!(matches!(bad, BrokerError::InvalidTopicName { .. }), "{bad}");
    assert!(bad.to_string().contains("ASCII letters, digits"), "{bad}");
    assert!(
        matches!(internal, BrokerError::InvalidTopicName { .. }),
        "{internal}"
    );
    assert!(
        matches!(dots, BrokerError::InvalidTopicName { .. }),
        "{dots}"
    );
    let unknown = broker.delete_topic("nope").unwrap_err();
    assert!(matches!(unknown, BrokerError::UnknownTopic(_)), "{unknown}");
    let internal = broker.delete_topic("__consumer_offsets").unwrap_err();
    assert!(
        matches!(internal, BrokerError::InvalidTopicName { .. }),
        "{internal}"
    );
    assert!(
        broker
            .create_topic("max", 10_000, TopicSettings::default())
            .is_ok()
    );
}

/// The internal offsets topic exists but is never listed.
#[test]
fn internal_topics_not_listed() {
    let broker = memory_broker();
    assert!(broker.list_topics().is_empty());
    assert_eq!(
        broker
            .describe_topic("__consumer_offsets")
            .unwrap()
            .partitions
            .len(),
        1
    );
}

/// Topics, their settings and their data survive a reopen; deleted ones stay deleted.
#[test]
fn topics_persist_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let broker = Broker::open(disk_config(dir.path()), 0).unwrap();
        broker.create_topic("keep", 2, settings()).unwrap();
        broker
            .create_topic("drop", 1, TopicSettings::default())
            .unwrap();
        broker.produce("keep", 1, batch(&["x", "y"]), 5).unwrap();
        broker.delete_topic("drop").unwrap();
        broker.close().unwrap();
    }
    assert!(!dir.path().join("topics/drop").exists());
    assert!(dir.path().join("topics/keep/topic.json").exists());
    let broker = Broker::open(disk_config(dir.path()), 10).unwrap();
    let topics = broker.list_topics();
    assert_eq!(topics.len(), 1);
    assert_eq!(topics[0].settings, settings());
    assert_eq!(topics[0].partitions[1].high_watermark, 2);
    assert_eq!(
        read_all(&broker, "keep", 1),
        [(0, "x".to_owned()), (1, "y".to_owned())]
    );
}

/// A topic directory without topic.json (a crashed creation) and a leftover
/// tombstone are both cleaned up at open.
#[test]
fn open_cleans_interrupted_create_and_delete() {
    let dir = tempfile::tempdir().unwrap();
    drop(Broker::open(disk_config(dir.path()), 0).unwrap());
    std::fs::create_dir_all(dir.path().join("topics/half/0")).unwrap();
    std::fs::create_dir_all(dir.path().join("deleting/gone/0")).unwrap();
    let broker = Broker::open(disk_config(dir.path()), 0).unwrap();
    assert!(broker.list_topics().is_empty());
    assert!(!dir.path().join("topics/half").exists());
    assert!(!dir.path().join("deleting/gone").exists());
    broker
        .create_topic("half", 1, TopicSettings::default())
        .unwrap();
}

/// Produce to a missing topic creates it with the default partition count.
#[test]
fn auto_create_on_produce() {
    let config = BrokerConfig {
        default_partitions: 3,
        ..BrokerConfig::default()
    };
    let broker = Broker::open(config, 0).unwrap();
    broker.produce("fresh", 2, batch(&["v"]), 0).unwrap();
    let info = broker.describe_topic("fresh").unwrap();
    assert_eq!(info.partitions.len(), 3);
    assert_eq!(info.partitions[2].high_watermark, 1);
}

/// With auto-creation off, produce to a missing topic is UnknownTopic and creates nothing.
#[test]
fn auto_create_off() {
    let config = BrokerConfig {
        auto_create_topics: false,
        ..BrokerConfig::default()
    };
    let broker = Broker::open(config, 0).unwrap();
    let err = broker.produce("fresh", 0, batch(&["v"]), 0).unwrap_err();
    assert!(matches!(err, BrokerError::UnknownTopic(_)), "{err}");
    assert!(broker.list_topics().is_empty());
}

/// A broker config outside its bounds is refused at open with a message naming the setting.
#[test]
fn invalid_config_refused() {
    let config = BrokerConfig {
        group_session_timeout_ms_min: 10,
        group_session_timeout_ms_max: 5,
        ..BrokerConfig::default()
    };
    let err = Broker::open(config, 0).err().unwrap();
    assert!(
        err.to_string().contains("group_session_timeout_ms_min"),
        "{err}"
    );
    let config = BrokerConfig {
        retention_check_interval_ms: 0,
        ..BrokerConfig::default()
    };
    let err = Broker::open(config, 0).err().unwrap();
    assert!(
        err.to_string().contains("retention_check_interval_ms"),
        "{err}"
    );
}

/// tick applies retention: segments entirely older than retention_ms are dropped.
#[test]
fn tick_applies_retention() {
    let broker = memory_broker();
    let settings = TopicSettings {
        retention_ms: Some(1_000),
        retention_bytes: None,
        segment_bytes: Some(1_024),
        ..TopicSettings::default()
    };
    broker.create_topic("old", 1, settings).unwrap();
    let value = "v".repeat(200);
    for _ in 0..20 {
        broker
            .produce("old", 0, common::batch_at(0, &[&value, &value]), 0)
            .unwrap();
    }
    broker.tick(1_000_000);
    let start = broker
        .list_offset("old", 0, citystream_broker::OffsetQuery::Earliest)
        .unwrap();
    assert!(start > 0, "old segments were deleted");
    assert_eq!(
        broker
            .list_offset("old", 0, citystream_broker::OffsetQuery::Latest)
            .unwrap(),
        40
    );
}
