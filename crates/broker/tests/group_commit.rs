//! The signal the interval fsync waits on: it fires once a write leaves a
//! partition unsynced, and stays quiet while nothing is written.

use std::time::Duration;

use citystream_broker::{Broker, BrokerConfig, FsyncPolicy};
use citystream_record::BatchBuilder;

fn broker() -> (tempfile::TempDir, Broker) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = BrokerConfig {
        data_dir: Some(dir.path().to_owned()),
        ..BrokerConfig::default()
    };
    config.log.fsync = FsyncPolicy::Interval { interval_ms: 5 };
    (dir, Broker::open(config, 0).unwrap())
}

async fn signalled(broker: &Broker) -> bool {
    tokio::time::timeout(Duration::from_millis(50), broker.unsynced_writes())
        .await
        .is_ok()
}

/// An idle broker never asks for a sync; a produce does, once; after the
/// sync it is quiet again until the next write.
#[tokio::test]
async fn unsynced_writes_fire_only_after_a_write() {
    let (_dir, broker) = broker();
    assert!(!signalled(&broker).await, "nothing was written yet");
    let mut batch = BatchBuilder::new();
    batch.push(1, None, b"reading", &[]).unwrap();
    broker.produce("sensors", 0, batch.finish(), 1).unwrap();
    assert!(
        signalled(&broker).await,
        "a write must wake the fsync timer"
    );
    broker.sync_logs().unwrap();
    assert!(!signalled(&broker).await, "synced: nothing left to do");
}

/// Records recovered at open are owed an fsync (they may only be in the
/// page cache after a crash), so a reopened broker asks for one sync.
#[tokio::test]
async fn reopened_broker_syncs_what_it_recovered() {
    let (dir, broker) = broker();
    let mut batch = BatchBuilder::new();
    batch.push(1, None, b"reading", &[]).unwrap();
    broker.produce("sensors", 0, batch.finish(), 1).unwrap();
    drop(broker);
    let mut config = BrokerConfig {
        data_dir: Some(dir.path().to_owned()),
        ..BrokerConfig::default()
    };
    config.log.fsync = FsyncPolicy::Interval { interval_ms: 5 };
    let reopened = Broker::open(config, 0).unwrap();
    assert!(signalled(&reopened).await, "recovered bytes must be synced");
    reopened.sync_logs().unwrap();
    assert!(!signalled(&reopened).await);
}
