//! Compaction of a replicated partition (decision 0017 §5) with three
//! replicas in one process: each replica compacts below its own purge
//! point, every replica ends with the newest record of every key, and a
//! follower that was away while the others compacted is sent the
//! compacted prefix with the snapshot instead of an empty log.

use std::collections::BTreeMap;

use crate::support::cluster::{Cluster, WAIT, log_batches, test_log_config};
use bytes::Bytes;
use citystream_log::{CompactionParams, LogConfig, PartitionLog};
use citystream_raft::apply_compaction;
use citystream_record::{BatchBuilder, RecordBatch};

const NODES: [u64; 3] = [1, 2, 3];
const KEYS: u32 = 8;

fn compacted_config() -> LogConfig {
    LogConfig {
        compacted: true,
        ..test_log_config()
    }
}

fn params() -> CompactionParams {
    CompactionParams {
        tombstone_retention_ms: 60_000,
        key_map_bytes_max: 1024 * 1024,
        dirty_ratio_min_percent: 0,
    }
}

/// One batch of one record: `key-{key}` = `{tag}-{round}` (a tombstone
/// if `value` is false).
fn keyed(tag: &str, round: u32, key: u32, value: bool) -> Bytes {
    let mut builder = BatchBuilder::new();
    let key = format!("key-{key}");
    let timestamp_ms = 1_700_000_000_000 + i64::from(round);
    if value {
        let value = format!("{tag}-{round}");
        builder
            .push(timestamp_ms, Some(key.as_bytes()), value.as_bytes(), &[])
            .expect("push");
    } else {
        builder
            .push_tombstone(timestamp_ms, Some(key.as_bytes()), &[])
            .expect("push");
    }
    builder.finish()
}

/// Writes `rounds` updates of every key; returns the newest value of each
/// (`None`: deleted).
async fn write_rounds(
    cluster: &Cluster,
    tag: &str,
    rounds: std::ops::Range<u32>,
    newest: &mut BTreeMap<String, Option<String>>,
) {
    for round in rounds {
        for key in 0..KEYS {
            // Key 7 is deleted in every fifth round.
            let value = !(key == 7 && round % 5 == 4);
            cluster.write(keyed(tag, round, key, value)).await;
            let written = value.then(|| format!("{tag}-{round}"));
            newest.insert(format!("key-{key}"), written);
        }
    }
}

/// The newest value per key that `log` serves, and how many records it
/// holds in all.
fn newest_per_key(log: &PartitionLog) -> (BTreeMap<String, Option<String>>, usize) {
    let mut newest = BTreeMap::new();
    let mut records = 0;
    for (_, bytes) in log_batches(log) {
        let batch = RecordBatch::from_bytes(bytes).expect("a valid batch");
        for record in batch.records() {
            let Some(key) = record.key else { continue };
            records += 1;
            let value = record
                .value
                .map(|v| String::from_utf8_lossy(v).into_owned());
            newest.insert(String::from_utf8_lossy(key).into_owned(), value);
        }
    }
    (newest, records)
}

/// Runs compaction on every node that is not cut off until `node` has
/// rewritten some segments (the first call on a replica only snapshots and
/// purges; a later one compacts).
async fn compact_until_rewritten(cluster: &Cluster, node: u64) {
    let compacted = tokio::time::timeout(WAIT, async {
        loop {
            let mut rewritten = false;
            for (id, n) in &cluster.nodes {
                if cluster.router.is_cut(*id) {
                    continue;
                }
                let summary = apply_compaction(&n.raft, &n.sm, &params(), 0, i64::MAX)
                    .await
                    .expect("compaction runs");
                if *id == node && summary.is_some_and(|s| s.segments_rewritten > 0) {
                    rewritten = true;
                }
            }
            if rewritten {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    });
    compacted
        .await
        .expect("compaction rewrites segments in time");
}

fn has_compacted_batches(log: &PartitionLog) -> bool {
    log_batches(log).iter().any(|(h, _)| h.is_compacted())
}

/// Every replica compacts on its own; each keeps the newest record of
/// every key, at the same offsets, and far fewer records than were
/// written. A follower cut off while the others compacted past what it
/// holds gets the compacted prefix with the snapshot, keeps it across a
/// restart, and replicates on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_behind_compaction_installs_the_prefix() {
    let mut cluster = Cluster::start_with(&NODES, 57, compacted_config()).await;
    let mut newest = BTreeMap::new();
    write_rounds(&cluster, "early", 0..10, &mut newest).await;
    cluster.settle().await;
    let leader = cluster.leader().await;
    let lagging = *NODES.iter().find(|&&id| id != leader).expect("a follower");
    cluster.router.cut(lagging);
    // Keys written once, while the follower is away, then never again:
    // only the compacted prefix can bring them to it.
    for key in 100..105 {
        cluster.write(keyed("once", 10, key, true)).await;
        newest.insert(format!("key-{key}"), Some("once-10".to_owned()));
    }
    write_rounds(&cluster, "away", 10..60, &mut newest).await;
    assert_eq!(cluster.leader().await, leader, "the leader kept leading");
    compact_until_rewritten(&cluster, leader).await;
    let leader_log = cluster.nodes[&leader].log.clone();
    assert!(has_compacted_batches(&leader_log.read()));
    let snapshot = cluster.nodes[&leader].sm.snapshot_point();
    assert!(snapshot.is_some(), "compaction followed a snapshot");

    cluster.router.heal(lagging);
    // A write after the heal, so the leader replicates to the follower.
    write_rounds(&cluster, "healed", 60..61, &mut newest).await;
    cluster.settle().await;
    let lagging_log = cluster.nodes[&lagging].log.clone();
    assert!(
        has_compacted_batches(&lagging_log.read()),
        "the follower was sent the leader's compacted prefix"
    );
    assert_eq!(cluster.nodes[&lagging].sm.snapshot_point(), snapshot);
    for (id, node) in &cluster.nodes {
        let (served, records) = newest_per_key(&node.log.read());
        assert_eq!(
            served, newest,
            "node {id} serves the newest record of each key"
        );
        assert!(
            records < (KEYS * 61 / 2) as usize,
            "node {id} holds {records} records: it compacted"
        );
    }

    cluster.restart(lagging).await;
    let restarted = cluster.nodes[&lagging].log.clone();
    assert_eq!(
        newest_per_key(&restarted.read()).0,
        newest,
        "a restart keeps the restored prefix"
    );
    write_rounds(&cluster, "after-restart", 61..70, &mut newest).await;
    cluster.settle().await;
    for _ in 0..5 {
        for node in cluster.nodes.values() {
            apply_compaction(&node.raft, &node.sm, &params(), 0, i64::MAX)
                .await
                .expect("compaction runs");
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    for (id, node) in &cluster.nodes {
        assert_eq!(
            newest_per_key(&node.log.read()).0,
            newest,
            "node {id} after the restart and another pass"
        );
    }
}
