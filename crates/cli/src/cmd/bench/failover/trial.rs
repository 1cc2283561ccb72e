//! One failover trial: find the leader of partition 0, produce through the
//! probe, SIGKILL the leader, time the first acknowledgement of a record
//! sent after the kill (only a new leader can give it), then restart the
//! killed node and wait until it has caught up. Every wait is bounded.

use std::time::Duration;

use anyhow::bail;
use citystream_client::Client;
use tokio::time::Instant;

use super::TOPIC;
use super::local_cluster::{LocalCluster, NODE_COUNT, POLL_INTERVAL, alive_nodes};
use super::probe::{Probe, ProbeLog, ProbeSettings};

/// Acknowledgements the probe must have before the leader is killed.
const WARMUP_ACKS: usize = 20;
/// How long a leader may take to appear (first one, or after a restart).
const LEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long after a kill the first acknowledgement may take before the
/// trial fails.
const FAILOVER_TIMEOUT: Duration = Duration::from_secs(30);
/// Producing goes on this long on the new leader before the probe stops.
const AFTER_FAILOVER: Duration = Duration::from_millis(200);
/// How long a restarted node may take to catch up.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct TrialResult {
    pub killed_leader: u32,
    pub new_leader: u32,
    /// SIGKILL of the leader -> first acknowledgement of a record sent after it.
    pub failover: Duration,
    /// Restart of the killed node -> its commit index equals the leader's.
    pub catch_up: Duration,
}

/// Runs one trial; the probe's records go with sequence numbers from `first_sequence`.
pub async fn run_trial(
    cluster: &mut LocalCluster,
    client: &Client,
    probe_settings: ProbeSettings,
    first_sequence: u64,
) -> anyhow::Result<(TrialResult, ProbeLog)> {
    let leader = wait_for_leader(cluster, None).await?;
    let probe = Probe::start(client, TOPIC, probe_settings, first_sequence)?;
    let warmup_deadline = Instant::now() + LEADER_TIMEOUT;
    while probe.acked_count() < WARMUP_ACKS {
        if Instant::now() > warmup_deadline {
            bail!("the probe got no acknowledgements within {LEADER_TIMEOUT:?}");
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    let killed_at = cluster.kill(leader);
    let failover = loop {
        if let Some(first) = probe.first_ack_sent_since(killed_at) {
            break first.acked_at.duration_since(killed_at);
        }
        if killed_at.elapsed() > FAILOVER_TIMEOUT {
            bail!("no acknowledgement within {FAILOVER_TIMEOUT:?} of killing leader {leader}");
        }
        // Short: the poll interval bounds the time the trial waits, not the
        // measurement (acknowledgements carry their own arrival time).
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    tokio::time::sleep(AFTER_FAILOVER).await;
    let log = probe.stop().await;
    let new_leader = wait_for_leader(cluster, Some(leader)).await?;
    cluster.restart(leader)?;
    let catch_up = wait_caught_up(cluster, leader, new_leader).await?;
    let result = TrialResult {
        killed_leader: leader,
        new_leader,
        failover,
        catch_up,
    };
    Ok((result, log))
}

/// The node that says it leads partition 0 of [`TOPIC`] (each node answers
/// for itself: a follower's view of the leader may be stale).
async fn wait_for_leader(cluster: &mut LocalCluster, killed: Option<u32>) -> anyhow::Result<u32> {
    let deadline = Instant::now() + LEADER_TIMEOUT;
    loop {
        cluster.check_running()?;
        for node_id in (1..=NODE_COUNT).filter(|&id| Some(id) != killed) {
            if leader_seen_by(cluster, node_id).await == Some(node_id) {
                return Ok(node_id);
            }
        }
        if Instant::now() > deadline {
            bail!("no node leads partition 0 after {LEADER_TIMEOUT:?}");
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

async fn leader_seen_by(cluster: &LocalCluster, node_id: u32) -> Option<u32> {
    let status = cluster.status(node_id).await?;
    partition_zero(&status).map(|partition| partition.leader)
}

/// Waits until `restarted` answers with the leader's commit index of
/// partition 0 and the leader sees every node alive.
async fn wait_caught_up(
    cluster: &mut LocalCluster,
    restarted: u32,
    leader: u32,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    loop {
        cluster.check_running()?;
        let leader_status = cluster.status(leader).await;
        let restarted_status = cluster.status(restarted).await;
        if let (Some(leader_status), Some(restarted_status)) = (leader_status, restarted_status)
            && alive_nodes(&leader_status) == NODE_COUNT as usize
            && let (Some(at_leader), Some(at_restarted)) = (
                partition_zero(&leader_status),
                partition_zero(&restarted_status),
            )
            && at_leader.commit_index == at_restarted.commit_index
        {
            return Ok(started.elapsed());
        }
        if started.elapsed() > CATCH_UP_TIMEOUT {
            bail!("node {restarted} did not catch up within {CATCH_UP_TIMEOUT:?}");
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

fn partition_zero(
    status: &citystream_protocol::ClusterStatusResponse,
) -> Option<&citystream_protocol::ClusterPartition> {
    status
        .partitions
        .iter()
        .find(|partition| partition.topic == TOPIC && partition.partition == 0)
}
