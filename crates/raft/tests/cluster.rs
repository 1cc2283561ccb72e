//! Three replicas of one partition group in one process (no sockets):
//! election, replication to byte-identical logs, failover without losing an
//! acknowledged batch, repair of a cut-off leader's uncommitted tail, and
//! retention through snapshots; compaction (`compaction`).

mod compaction;
mod support;

use std::collections::BTreeMap;

use bytes::Bytes;
use citystream_log::LogConfig;
use citystream_raft::{Appended, BatchData, apply_retention};
use citystream_record::BatchHeader;
use support::cluster::{
    Cluster, WAIT, WRITE_WAIT, batch, log_batches, log_contains, test_log_config,
};

const NODES: [u64; 3] = [1, 2, 3];

/// Every surviving log holds exactly the same batches, byte for byte, at
/// the same offsets and Raft indexes.
fn assert_identical_logs(cluster: &Cluster) -> Vec<(BatchHeader, Bytes)> {
    let mut logs = cluster
        .nodes
        .iter()
        .map(|(id, n)| (*id, log_batches(&n.log.read())));
    let (first_id, first) = logs.next().expect("a node");
    for (id, log) in logs {
        assert_eq!(
            log.len(),
            first.len(),
            "node {id} vs node {first_id}: batch count"
        );
        for ((h1, b1), (h2, b2)) in first.iter().zip(&log) {
            assert_eq!(
                (h1.base_offset, h1.raft_index, h1.term),
                (h2.base_offset, h2.raft_index, h2.term)
            );
            assert_eq!(
                b1, b2,
                "node {id}: batch at offset {} differs",
                h1.base_offset
            );
        }
    }
    first
}

/// Every acknowledged batch is in `log` at its acknowledged offsets, with
/// the producer's bytes after the header fields the leader stamps.
fn assert_acked_present(log: &[(BatchHeader, Bytes)], acked: &[(Bytes, Appended)]) {
    let by_offset: BTreeMap<u64, &(BatchHeader, Bytes)> = log
        .iter()
        .map(|entry| (entry.0.base_offset, entry))
        .collect();
    for (sent, appended) in acked {
        let (header, stored) = by_offset
            .get(&appended.base_offset)
            .unwrap_or_else(|| panic!("acked batch at {} is missing", appended.base_offset));
        assert_eq!(header.last_offset(), appended.last_offset);
        // Bytes [40, len) are the producer's, under its CRC (header v2).
        assert_eq!(
            stored[40..],
            sent[40..],
            "batch at {} differs",
            appended.base_offset
        );
    }
}

/// Offsets are dense: each batch starts where the previous one ended, and
/// Raft indexes count up from 1.
fn assert_dense(log: &[(BatchHeader, Bytes)]) {
    for (i, pair) in log.windows(2).enumerate() {
        assert_eq!(
            pair[0].0.next_offset(),
            pair[1].0.base_offset,
            "gap after batch {i}"
        );
        assert_eq!(pair[0].0.raft_index + 1, pair[1].0.raft_index);
    }
    assert_eq!(log.first().map(|b| b.0.raft_index), Some(1));
}

async fn write_batches(cluster: &Cluster, tag: &str, count: u32) -> Vec<(Bytes, Appended)> {
    let mut acked = Vec::new();
    for n in 0..count {
        let bytes = batch(tag, n);
        let appended = cluster.write(bytes.clone()).await;
        acked.push((bytes, appended));
    }
    acked
}

/// A leader is elected; batches written through it land on all three
/// replicas byte-identical at the same offsets and Raft indexes, and every
/// replica's high watermark reaches its log end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_replicate_to_identical_logs() {
    let cluster = Cluster::start(&NODES, 11).await;
    let leader = cluster.leader().await;
    assert!(NODES.contains(&leader));
    let acked = write_batches(&cluster, "replicate", 30).await;
    for pair in acked.windows(2) {
        assert!(
            pair[0].1.last_offset < pair[1].1.base_offset,
            "acked offsets increase"
        );
    }
    let end = cluster.settle().await;
    let log = assert_identical_logs(&cluster);
    assert_dense(&log);
    assert_acked_present(&log, &acked);
    assert_eq!(log.last().map(|b| b.0.next_offset()), Some(end));
    let controls = log.iter().filter(|b| b.0.is_control()).count();
    assert!(
        controls >= 2,
        "initial membership and the leader's blank entry are control batches"
    );
}

/// After the leader is killed, the two survivors elect a new leader, take
/// more writes, and hold every batch acknowledged before and after the
/// failover at its acknowledged offset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_keeps_every_acknowledged_batch() {
    let mut cluster = Cluster::start(&NODES, 22).await;
    let mut acked = write_batches(&cluster, "before", 10).await;
    let old_leader = cluster.leader().await;
    cluster.kill(old_leader).await;
    let new_leader = cluster.leader().await;
    assert_ne!(new_leader, old_leader);
    acked.extend(write_batches(&cluster, "after", 10).await);
    cluster.settle().await;
    let log = assert_identical_logs(&cluster);
    assert_dense(&log);
    assert_acked_present(&log, &acked);
}

/// A leader cut off from the others cannot commit: its write is appended
/// locally but never acknowledged. The majority elects a new leader and
/// commits more writes; once healed, the old leader's uncommitted tail is
/// truncated and its log becomes identical to the others'.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_off_leader_cannot_commit_and_is_repaired() {
    let cluster = Cluster::start(&NODES, 33).await;
    let mut acked = write_batches(&cluster, "before", 5).await;
    cluster.settle().await;
    let old_leader = cluster.leader().await;
    cluster.router.cut(old_leader);

    let lost = batch("lost-write", 7);
    let lost_write = cluster.write_to(old_leader, lost.clone());
    let (lost_result, ()) = tokio::join!(lost_write, async {
        // The isolated leader appends the batch to its own log first.
        let appended = tokio::time::timeout(support::cluster::WAIT, async {
            while !log_contains(&cluster.nodes[&old_leader].log.read(), b"lost-write-7-0") {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        });
        appended.await.expect("the cut-off leader appends locally");
    });
    assert!(
        lost_result.is_err(),
        "a cut-off leader acknowledged a write: {lost_result:?}"
    );

    let new_leader = cluster.leader().await;
    assert_ne!(new_leader, old_leader);
    acked.extend(write_batches(&cluster, "after", 5).await);
    cluster.router.heal(old_leader);
    cluster.settle().await;
    let log = assert_identical_logs(&cluster);
    assert_dense(&log);
    assert_acked_present(&log, &acked);
    for (id, node) in &cluster.nodes {
        assert!(
            !log_contains(&node.log.read(), b"lost-write-7-0"),
            "node {id} kept the uncommitted batch"
        );
    }
}

/// An `acks=leader` token is answered by the leader's own append with the
/// same offsets that the quorum ack of the same write returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_ack_matches_quorum_ack() {
    let cluster = Cluster::start(&NODES, 44).await;
    let mut matched = 0;
    // Bounded by time, not attempts: on a loaded machine a spurious election
    // can fail several writes in a row; each failure backs off briefly.
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut n = 0;
    while matched < 5 && tokio::time::Instant::now() < deadline {
        n += 1;
        let node = &cluster.nodes[&cluster.leader().await];
        let (token, leader_rx) = node.leader_acks.register().expect("room for a waiter");
        let data = BatchData {
            bytes: batch("leader-ack", n),
            token,
        };
        let Ok(Ok(quorum)) = tokio::time::timeout(WRITE_WAIT, node.raft.client_write(data)).await
        else {
            node.leader_acks.cancel(token);
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let leader_ack = tokio::time::timeout(WAIT, leader_rx)
            .await
            .expect("in time")
            .expect("fired");
        assert_eq!(leader_ack, quorum.data);
        matched += 1;
    }
    assert!(matched >= 5, "only {matched} writes succeeded");
}

/// Runs retention on every node that is not cut off until `node`'s log
/// starts past offset 0; returns that start offset.
async fn retain_until_purged(cluster: &Cluster, node: u64) -> u64 {
    let purged = tokio::time::timeout(WAIT, async {
        loop {
            for (id, n) in &cluster.nodes {
                if !cluster.router.is_cut(*id) {
                    apply_retention(&n.raft, &n.sm, 0)
                        .await
                        .expect("retention runs");
                }
            }
            let start = cluster.nodes[&node].log.read().start_offset().0;
            if start > 0 {
                return start;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    });
    purged
        .await
        .expect("retention purges the leader's log in time")
}

/// Retention on a replicated log (decision 0005 §2): the replicas that are
/// up delete old segments only through a snapshot at the retention point. A
/// follower that was cut off meanwhile needs entries the leader no longer
/// has: it is sent the snapshot, and ends with exactly the leader's retained
/// batches at the same offsets. Its snapshot survives a restart, after
/// which it serves the same log and keeps replicating.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_behind_retention_installs_the_leaders_snapshot() {
    let log_config = LogConfig {
        retention_bytes: Some(8 * 1024),
        ..test_log_config()
    };
    let mut cluster = Cluster::start_with(&NODES, 44, log_config).await;
    write_batches(&cluster, "early", 10).await;
    cluster.settle().await;
    let leader = cluster.leader().await;
    let lagging = *NODES.iter().find(|&&id| id != leader).expect("a follower");
    cluster.router.cut(lagging);
    let acked = write_batches(&cluster, "while-away", 200).await;
    assert_eq!(cluster.leader().await, leader, "the leader kept leading");
    let leader_start = retain_until_purged(&cluster, leader).await;
    let snapshot = cluster.nodes[&leader].sm.snapshot_point();
    assert!(snapshot.is_some(), "the purge followed a snapshot");

    cluster.router.heal(lagging);
    cluster.settle().await;
    let lagging_log = log_batches(&cluster.nodes[&lagging].log.read());
    let lagging_start = cluster.nodes[&lagging].log.read().start_offset().0;
    assert_eq!(
        lagging_start, leader_start,
        "the lagging follower was sent the snapshot at the leader's retention point"
    );
    assert!(
        !log_contains(&cluster.nodes[&lagging].log.read(), b"early-0-0"),
        "batches before the snapshot never reach the lagging follower"
    );
    assert_eq!(cluster.nodes[&lagging].sm.snapshot_point(), snapshot);
    let leader_log = log_batches(&cluster.nodes[&leader].log.read());
    let leader_tail: Vec<_> = leader_log
        .iter()
        .filter(|(h, _)| h.base_offset >= lagging_start)
        .cloned()
        .collect();
    assert_eq!(
        lagging_log, leader_tail,
        "the same batches at the same offsets"
    );
    let retained: Vec<_> = acked
        .iter()
        .filter(|(_, appended)| appended.base_offset >= lagging_start)
        .cloned()
        .collect();
    assert!(retained.len() > 10, "most recent batches are retained");
    assert_acked_present(&lagging_log, &retained);

    cluster.restart(lagging).await;
    assert_eq!(
        log_batches(&cluster.nodes[&lagging].log.read()),
        lagging_log,
        "a restart keeps the log after the snapshot"
    );
    let after = write_batches(&cluster, "after-restart", 5).await;
    cluster.settle().await;
    let lagging_log = log_batches(&cluster.nodes[&lagging].log.read());
    assert_acked_present(&lagging_log, &after);
    assert_eq!(cluster.nodes[&lagging].sm.snapshot_point(), snapshot);
}
