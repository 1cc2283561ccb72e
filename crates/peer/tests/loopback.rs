//! Three brokers in one process, each hosting two partition groups, talking
//! Raft over the real peer transport on loopback TCP: elections, byte-
//! identical replication, one connection per ordered broker pair whatever
//! the number of groups, and failover after a broker crash.

mod support;

use std::collections::BTreeMap;

use bytes::Bytes;
use citystream_log::BatchHeader;
use citystream_peer::GroupId;
use citystream_raft::Appended;
use support::{Cluster, batch, log_batches};

const BROKERS: [u64; 3] = [1, 2, 3];
const GROUPS: [GroupId; 2] = [GroupId(1), GroupId(2)];

/// Every replica of `group` holds the same batches, byte for byte, at the
/// same offsets; returns that log.
fn assert_identical_logs(cluster: &Cluster, group: GroupId) -> Vec<(BatchHeader, Bytes)> {
    let mut logs = cluster
        .replicas(group)
        .map(|(id, replica)| (id, log_batches(&replica.log.read())));
    let (first_id, first) = logs.next().expect("a replica");
    for (id, log) in logs {
        assert_eq!(log.len(), first.len(), "{group}: broker {id} vs {first_id}");
        for ((h1, b1), (h2, b2)) in first.iter().zip(&log) {
            assert_eq!(
                (h1.base_offset, h1.raft_index, h1.term),
                (h2.base_offset, h2.raft_index, h2.term)
            );
            assert_eq!(b1, b2, "{group}: broker {id} differs at {}", h1.base_offset);
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
        assert_eq!(stored[40..], sent[40..]);
    }
}

async fn write_batches(
    cluster: &Cluster,
    group: GroupId,
    tag: &str,
    count: u32,
) -> Vec<(Bytes, Appended)> {
    let mut acked = Vec::new();
    for n in 0..count {
        let bytes = batch(tag, n);
        acked.push((bytes.clone(), cluster.write(group, bytes).await));
    }
    acked
}

/// Both groups elect leaders and replicate byte-identical logs while
/// leadership of each group moves through every broker (TransferLeader over
/// the wire), so every broker sends both groups' RPCs to both peers; yet
/// each server accepted exactly one connection from each other broker and
/// each link connected once: the groups share every connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_groups_replicate_over_one_connection_per_pair() {
    let cluster = Cluster::start(&BROKERS, &GROUPS, 7).await;
    for group in GROUPS {
        let mut acked = write_batches(&cluster, group, &format!("g{}", group.0), 10).await;
        for to in BROKERS {
            cluster.transfer(group, to).await;
            let tag = format!("g{}-led-by-{to}", group.0);
            acked.extend(write_batches(&cluster, group, &tag, 3).await);
        }
        let end = cluster.settle(group).await;
        let log = assert_identical_logs(&cluster, group);
        assert_acked_present(&log, &acked);
        assert_eq!(log.last().map(|b| b.0.next_offset()), Some(end));
    }
    for (id, broker) in &cluster.brokers {
        assert_eq!(
            broker.server.connections_accepted(),
            2,
            "broker {id} accepts"
        );
        let stats = broker.network.link_stats();
        assert_eq!(stats.len(), 2, "broker {id} has a link per peer");
        for (peer, link) in stats {
            assert_eq!(link.connects, 1, "link {id}->{peer} connected once");
            assert!(link.frames >= link.writes && link.writes > 0);
        }
    }
    cluster.stop().await;
}

/// After the broker leading group 1 crashes, both groups have a leader
/// among the survivors, take more writes, and every batch acknowledged
/// before and after the crash is on both survivors at its offset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_after_a_broker_crash_keeps_acked_batches() {
    let mut cluster = Cluster::start(&BROKERS, &GROUPS, 21).await;
    let mut acked: BTreeMap<GroupId, Vec<(Bytes, Appended)>> = BTreeMap::new();
    for group in GROUPS {
        acked.insert(group, write_batches(&cluster, group, "before", 8).await);
    }
    let crashed = cluster.leader(GROUPS[0]).await;
    cluster.crash(crashed).await;
    for group in GROUPS {
        let leader = cluster.leader(group).await;
        assert_ne!(leader, crashed);
        let after = write_batches(&cluster, group, "after", 8).await;
        acked.get_mut(&group).expect("group").extend(after);
    }
    for group in GROUPS {
        cluster.settle(group).await;
        let log = assert_identical_logs(&cluster, group);
        assert_acked_present(&log, &acked[&group]);
    }
    cluster.stop().await;
}
