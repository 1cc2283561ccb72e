//! `group describe` in cluster mode: the lag is the partition leader's high
//! watermark minus the committed offset (the coordinator holds no partition
//! state of its own, and once answered 0 for every high watermark).

use crate::failover::create_replicated_topic;
use crate::test_cluster::TestCluster;

#[test]
fn group_lag_in_a_cluster_counts_what_is_not_read() {
    let cluster = TestCluster::start(3);
    create_replicated_topic(&cluster, "lagged", 1);
    let lines: String = (1..=10).map(|i| format!("r-{i}\n")).collect();
    cluster
        .broker(1)
        .run_with_stdin(&["produce", "lagged"], &lines);
    let read = cluster.broker(2).run(&[
        "consume",
        "lagged",
        "--group",
        "g",
        "--from-beginning",
        "--max",
        "4",
    ]);
    assert_eq!(read, "r-1\nr-2\nr-3\nr-4\n");
    let described = cluster.broker(3).run(&["group", "describe", "g"]);
    let row: Vec<u64> = described
        .lines()
        .find(|line| line.starts_with("lagged "))
        .unwrap_or_else(|| panic!("{described}"))
        .split_whitespace()
        .skip(1)
        .map(|field| field.parse().unwrap())
        .collect();
    let [partition, committed, high_watermark, lag] = row[..] else {
        panic!("{described}");
    };
    assert_eq!(partition, 0);
    // Offsets count Raft's control entries too: 6 records are unread, at
    // the end of the log.
    assert!(high_watermark >= committed + 6, "{described}");
    assert_eq!(lag, high_watermark - committed, "{described}");
}
