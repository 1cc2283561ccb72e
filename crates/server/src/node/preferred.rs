//! Preferred leaders. Placement spreads partitions so that each node is the
//! first replica, the *preferred leader*, of its share of them (decision
//! 0005 §3); after a failover the partitions a dead node led end up on the
//! survivors and stay there, so one node carries the load of two. As Kafka
//! does with `auto.leader.rebalance.enable`, the leader of a partition hands
//! leadership back (`trigger().transfer_leader`) once the preferred
//! replica has been a caught-up voter for [`PREFERRED_LEADER_DELAY`]:
//!
//! - it is a voter, the group is not changing its membership, and
//! - its log is within [`READY_SLACK`] entries of the leader's, and
//! - gossip (when it runs) reports it alive, and
//! - right before the transfer it answers a heartbeat, so a node that died
//!   during a quiet spell (when its match index stays current) is not
//!   handed a leadership it cannot take, and its log holds the leader's
//!   last entry.
//!
//! The transfer itself is openraft's: the leader stops taking writes and
//! the target, being up to date, elects itself at once. A client sees it
//! as a `NOT_LEADER` and follows the hint. Known weak spot: under steady
//! writes an entry can land between the last check and the transfer; the
//! target then declines (its log is behind the leader's), the old leader
//! takes no writes, and the group elects a leader after an election
//! timeout, a pause like a failover's.

use std::sync::Arc;
use std::time::Duration;

use citystream_cluster::MetadataState;
use citystream_membership::MemberState;
use citystream_raft::Tc;
use openraft::RaftMetrics;
use openraft::async_runtime::WatchReceiver;

use super::{ClusterNode, Replica};

/// How long a preferred replica must stay caught up before it is handed
/// the leadership: long enough that a restarted node has settled, short
/// enough that load evens out soon after a failover.
pub(crate) const PREFERRED_LEADER_DELAY: Duration = Duration::from_secs(5);
/// How far behind the leader's last entry the preferred replica may be and
/// still count as ready (a busy group is rarely exactly matched).
const READY_SLACK: u64 = 64;
/// How long the hand-over waits for the preferred replica to hold the
/// leader's last entry.
const HAND_OVER_WAIT: Duration = Duration::from_millis(500);

impl ClusterNode {
    /// For every group this node leads whose preferred leader is another
    /// node: notes since when that node is ready to lead, and hands it the
    /// leadership once it has been ready for [`PREFERRED_LEADER_DELAY`].
    pub(super) fn prefer_leaders(&self, state: &MetadataState) {
        let me = u64::from(self.config.node_id);
        let alive = self.alive_nodes();
        let replicas: Vec<Arc<Replica>> = self.groups.replicas.read().values().cloned().collect();
        for replica in replicas {
            let preferred = state
                .topics
                .get(&replica.id.topic)
                .and_then(|topic| topic.partitions.get(replica.id.partition as usize))
                .and_then(|assignment| assignment.replicas.first())
                .map(|id| u64::from(*id));
            let ready = preferred.filter(|&p| {
                p != me
                    && alive.as_ref().is_none_or(|alive| alive.contains(&p))
                    && replica.leader_term().is_ok()
                    && !replica.membership_changing()
                    && caught_up_voter(&replica.raft.metrics().borrow_watched(), p, READY_SLACK)
            });
            let Some(preferred) = ready else {
                replica.set_preferred_ready(false);
                continue;
            };
            replica.set_preferred_ready(true);
            if replica.preferred_ready_for() < PREFERRED_LEADER_DELAY
                || !replica.begin_membership_change()
            {
                continue;
            }
            self.tasks.spawn(hand_over(replica, preferred));
        }
    }

    /// Node ids gossip reports alive; `None` without gossip.
    fn alive_nodes(&self) -> Option<Vec<u64>> {
        let members = self.members.as_ref()?.borrow();
        let alive = members
            .iter()
            .filter(|m| m.state == MemberState::Alive)
            .map(|m| u64::from(m.info.node_id.0))
            .collect();
        Some(alive)
    }
}

/// Whether `node` is a voter of the group's (non-joint) membership whose
/// log is at most `slack` entries behind the leader's last entry.
fn caught_up_voter(metrics: &RaftMetrics<Tc>, node: u64, slack: u64) -> bool {
    let membership = metrics.membership_config.membership();
    if membership.get_joint_config().len() != 1 || !membership.voter_ids().any(|id| id == node) {
        return false;
    }
    let matched = metrics
        .replication
        .as_ref()
        .and_then(|replication| replication.get(&node).copied().flatten());
    match (matched, metrics.last_log_index) {
        (Some(matched), Some(last)) => matched.index + slack >= last,
        _ => false,
    }
}

/// Checks once more that `preferred` answers and waits until it holds the
/// leader's last entry (openraft's target declines a transfer otherwise),
/// then transfers the group's leadership to it. Holds the replica's change
/// slot meanwhile.
async fn hand_over(replica: Arc<Replica>, preferred: u64) {
    let (topic, partition) = (replica.id.topic.clone(), replica.id.partition);
    let ready = replica.answers_heartbeat(preferred).await
        && replica
            .raft
            .wait(Some(HAND_OVER_WAIT))
            .metrics(
                |m| caught_up_voter(m, preferred, 0),
                "the preferred replica caught up",
            )
            .await
            .is_ok();
    if ready {
        tracing::info!(%topic, partition, to = preferred, "handing leadership to the preferred replica");
        if let Err(error) = replica.raft.trigger().transfer_leader(preferred).await {
            tracing::debug!(%topic, partition, %error, "leadership transfer not started");
        }
    } else {
        tracing::debug!(%topic, partition, to = preferred, "preferred replica not ready; keeping leadership");
    }
    replica.set_preferred_ready(false);
    replica.end_membership_change();
}
