//! Hybrid logical clocks and Raft indexes on the produce path: every
//! appended batch gets consecutive HLCs from the broker's one clock (so
//! they grow across partitions even when the wall clock goes back, and
//! across a restart) and the next Raft index of its partition.

mod common;

use bytes::Bytes;
use citystream_broker::{Broker, TopicSettings};
use citystream_record::{BatchIter, hlc_from_parts};
use common::{batch, disk_config, idempotent_batch, memory_broker};

/// `(raft_index, [record HLCs])` of every batch in fetched bytes.
fn stamps(bytes: Bytes) -> Vec<(u64, Vec<u64>)> {
    BatchIter::new(bytes)
        .map(|batch| {
            let batch = batch.unwrap();
            let hlcs = batch.records().map(|r| r.hlc).collect();
            (batch.header().raft_index, hlcs)
        })
        .collect()
}

fn fetch_stamps(broker: &Broker, partition: u32) -> Vec<(u64, Vec<u64>)> {
    stamps(broker.fetch("t", partition, 0, 1 << 20).unwrap().records)
}

/// One clock serves every partition: HLCs follow `now_ms`, then count on
/// from the last one issued when `now_ms` stalls or goes back.
#[test]
fn one_clock_stamps_every_partition_in_append_order() {
    let broker = memory_broker();
    broker
        .create_topic("t", 2, TopicSettings::default())
        .unwrap();
    broker
        .produce("t", 0, batch(&["a", "b", "c"]), 1_000)
        .unwrap();
    broker.produce("t", 1, batch(&["d", "e"]), 1_000).unwrap();
    broker.produce("t", 0, batch(&["f"]), 500).unwrap();
    broker.produce("t", 1, batch(&["g"]), 2_000).unwrap();
    let hlc = hlc_from_parts;
    assert_eq!(
        fetch_stamps(&broker, 0),
        [
            (1, vec![hlc(1_000, 0), hlc(1_000, 1), hlc(1_000, 2)]),
            (2, vec![hlc(1_000, 5)])
        ]
    );
    assert_eq!(
        fetch_stamps(&broker, 1),
        [
            (1, vec![hlc(1_000, 3), hlc(1_000, 4)]),
            (2, vec![hlc(2_000, 0)])
        ]
    );
}

/// An idempotent retry is answered from the log: it takes no new HLCs and
/// no Raft index.
#[test]
fn duplicates_take_no_stamps() {
    let broker = memory_broker();
    let id = broker.init_producer().unwrap();
    broker
        .produce("t", 0, idempotent_batch(id, 0, &["a"]), 10)
        .unwrap();
    let retry = broker
        .produce("t", 0, idempotent_batch(id, 0, &["a"]), 10)
        .unwrap();
    assert!(retry.duplicate);
    broker.produce("t", 0, batch(&["b"]), 10).unwrap();
    let hlc = hlc_from_parts;
    assert_eq!(
        fetch_stamps(&broker, 0),
        [(1, vec![hlc(10, 0)]), (2, vec![hlc(10, 1)])]
    );
}

/// After a restart whose wall clock is behind the last stored HLC, new
/// HLCs still come after it, and Raft indexes continue.
#[test]
fn stamps_continue_after_a_restart_with_the_clock_behind() {
    let dir = tempfile::tempdir().unwrap();
    {
        let broker = Broker::open(disk_config(dir.path()), 0).unwrap();
        broker
            .create_topic("t", 1, TopicSettings::default())
            .unwrap();
        broker.produce("t", 0, batch(&["a", "b"]), 50_000).unwrap();
        broker.close().unwrap();
    }
    let broker = Broker::open(disk_config(dir.path()), 0).unwrap();
    broker.produce("t", 0, batch(&["c"]), 100).unwrap();
    let hlc = hlc_from_parts;
    assert_eq!(
        fetch_stamps(&broker, 0),
        [
            (1, vec![hlc(50_000, 0), hlc(50_000, 1)]),
            (2, vec![hlc(50_000, 2)])
        ]
    );
}
