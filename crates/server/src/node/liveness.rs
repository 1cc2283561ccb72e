//! Quiet groups: hundreds of idle partitions cost almost nothing (0005 §4,
//! amended by decision 0008).
//!
//! openraft drives each group with its own timer: a tick every
//! `heartbeat_ms × 13/64` (20 ms at the default) to check the election
//! timeout, plus a heartbeat per follower every `heartbeat_ms`. At 300
//! partitions that was a quarter of a core per idle node. Instead:
//!
//! - **openraft's tick is off** in every partition group. Each replica keeps
//!   the time it last heard from its leader (`contact`). The node's
//!   election watch turns a group's tick on only when its contact is older
//!   than a randomized election timeout (then openraft runs pre-vote and
//!   the election itself, as it would have), and off again once a leader
//!   is heard from or this node leads.
//! - **A leader quiesces an idle group**: no write for [`QUIET_AFTER_BEATS`]
//!   heartbeats, everything committed and replicated to every member.
//!   Instead of one Raft heartbeat per group and follower, each node sends
//!   each peer one **beat** per heartbeat period listing the quiet groups it
//!   leads with their term and last index. A follower whose state matches
//!   (same leader, term, last and committed index) counts the listing as
//!   contact and acknowledges the group. A group stays quiet only while every
//!   member acknowledges it; otherwise the leader sends a Raft heartbeat as
//!   usual (not for a group written within the period: its appends were
//!   contact and renewed the lease), so a lagging or restarted follower
//!   learns its leader the normal way. The first write wakes a group: its
//!   append is contact again.
//! - **The leader lease** of a quiet group is renewed by the beat round in
//!   which every member acknowledged it (`Replica::leader_term`). openraft's
//!   own lease is not (it refuses writes once it expired), so the first
//!   write after a quiet spell renews it with one heartbeat round
//!   (`Replica::renew_lease`).
//!
//! Failover is unchanged in kind: a dead leader stops beating, its
//! followers' contact expires after the election timeout, their ticks
//! start and openraft elects. Safety never depends on any of this: a beat
//! only delays a follower's election, as a heartbeat would.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use citystream_raft::Tc;
use futures::future::join_all;
use openraft::ServerState;
use openraft::async_runtime::WatchReceiver;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::calls::{self, CallAnswer, NodeCall};
use super::groups::Groups;
use super::replica::Replica;
use super::{ClusterNode, rand_seed};

/// Heartbeat periods without a write before a leader quiesces a group.
/// Short: a group written every few hundred milliseconds (a city sensor's
/// partition) is then quiet between writes instead of heartbeating its
/// followers every period, and waking it costs nothing while its lease is
/// fresh (`Replica::renew_lease`).
pub(crate) const QUIET_AFTER_BEATS: u32 = 2;
/// Election-watch passes per heartbeat period: how finely a lost leader
/// is noticed (50 ms at the default heartbeat, against election timeouts
/// of several hundred; each pass is a wake-up of an idle node).
const WATCH_PASSES_PER_BEAT: u32 = 2;

/// One quiet group in a beat: the leader's term and last log index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct QuietGroup {
    pub group: u64,
    pub term: u64,
    pub index: u64,
}

/// A replica's liveness bookkeeping.
pub(crate) struct Liveness {
    /// When this node last heard from the group's leader (or led it).
    contact: Mutex<Instant>,
    /// The last write proposed here as leader.
    last_write: Mutex<Instant>,
    /// When a quorum last acknowledged this group as quiet (leader only).
    quiet_acked: Mutex<Option<Instant>>,
    /// This replica's election timeout, re-drawn at every election.
    election_timeout: Mutex<Duration>,
    /// Whether openraft's tick runs for the group.
    ticking: AtomicBool,
    /// The group was last seen quiet: acknowledged by every member in the
    /// last beat round (leader), or last heard of through a beat rather
    /// than an append (follower).
    quiet: AtomicBool,
    /// The range the election timeout is drawn from, and a per-replica seed.
    election_range: (Duration, Duration),
    seed: u64,
}

impl Liveness {
    pub fn new(election_range: (Duration, Duration), seed: u64) -> Liveness {
        let now = Instant::now();
        Liveness {
            contact: Mutex::new(now),
            last_write: Mutex::new(now),
            quiet_acked: Mutex::new(None),
            election_timeout: Mutex::new(draw(election_range, seed)),
            ticking: AtomicBool::new(false),
            quiet: AtomicBool::new(false),
            election_range,
            seed,
        }
    }

    /// The leader was heard from.
    fn touch_contact(&self) {
        *self.contact.lock() = Instant::now();
    }

    /// The leader was heard from through an append (the group is busy).
    pub fn appended(&self) {
        self.touch_contact();
        self.busy();
    }

    /// The group is not quiet (its leader heartbeats it).
    fn busy(&self) {
        self.quiet.store(false, Ordering::Release);
    }

    /// The leader was heard from through a beat (the group is quiet).
    fn beaten(&self) {
        self.touch_contact();
        self.quiet.store(true, Ordering::Release);
    }

    /// Whether the group is quiet as this replica last heard, recently.
    pub fn is_quiet(&self) -> bool {
        self.quiet.load(Ordering::Acquire) && !self.contact_expired()
    }

    /// A write was proposed: the group is busy.
    pub fn touch_write(&self) {
        *self.last_write.lock() = Instant::now();
    }

    pub fn idle_for(&self) -> Duration {
        self.last_write.lock().elapsed()
    }

    /// How long ago a quorum acknowledged the group as quiet.
    pub fn quiet_acked_ago(&self) -> Option<Duration> {
        self.quiet_acked.lock().map(|at| at.elapsed())
    }

    fn contact_expired(&self) -> bool {
        self.contact.lock().elapsed() > *self.election_timeout.lock()
    }

    fn redraw_timeout(&self) {
        *self.election_timeout.lock() = draw(self.election_range, rand_seed(self.seed));
    }
}

/// A duration in `[min, max)` from `seed` (splitmix64).
fn draw((min, max): (Duration, Duration), seed: u64) -> Duration {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    let span = max.saturating_sub(min).as_micros().max(1) as u64;
    min + Duration::from_micros(z % span)
}

/// What a leader sends a follower for one quiet candidate.
struct Candidate {
    replica: Arc<Replica>,
    quiet: QuietGroup,
    /// Every other member (voters and learners), by id, with its address.
    followers: Vec<(u64, String)>,
}

impl Replica {
    /// The group as a quiet candidate if this node leads it, no write came
    /// for `quiet_after`, no membership change runs, and every member holds
    /// and has committed the leader's last entry.
    fn quiet_candidate(self: &Arc<Self>, me: u64, quiet_after: Duration) -> Option<Candidate> {
        if self.liveness.idle_for() < quiet_after || self.membership_changing() {
            return None;
        }
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow_watched();
        if metrics.state != ServerState::Leader {
            return None;
        }
        let index = metrics.last_log_index?;
        let committed = metrics.local_committed.as_ref().map(|id| id.index);
        let membership = metrics.membership_config.membership();
        if committed != Some(index) || membership.get_joint_config().len() != 1 {
            return None;
        }
        let replication = metrics.replication.as_ref()?;
        let followers: Vec<(u64, String)> = membership
            .nodes()
            .filter(|(id, _)| **id != me)
            .map(|(id, node)| (*id, node.peer.clone()))
            .collect();
        let caught_up = followers.iter().all(|(id, _)| {
            replication
                .get(id)
                .is_some_and(|matched| matched.as_ref().map(|m| m.index) == Some(index))
        });
        caught_up.then(|| Candidate {
            replica: Arc::clone(self),
            quiet: QuietGroup {
                group: self.group,
                term: metrics.current_term,
                index,
            },
            followers,
        })
    }

    /// Whether a beat's listing matches this follower's state: same leader,
    /// term, last and committed index.
    fn matches_quiet(&self, leader: u64, quiet: &QuietGroup) -> bool {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow_watched();
        matches!(metrics.state, ServerState::Follower | ServerState::Learner)
            && metrics.current_leader == Some(leader)
            && metrics.current_term == quiet.term
            && metrics.last_log_index == Some(quiet.index)
            && metrics.local_committed.as_ref().map(|id| id.index) == Some(quiet.index)
    }
}

impl Groups {
    /// A follower's answer to a beat from `leader`: the listed groups whose
    /// state matches, each counted as contact from its leader.
    pub fn answer_beat(&self, leader: u64, quiet: &[QuietGroup]) -> Vec<u64> {
        quiet
            .iter()
            .filter_map(|listed| {
                let replica = self.replica(listed.group)?;
                replica.matches_quiet(leader, listed).then(|| {
                    replica.liveness.beaten();
                    listed.group
                })
            })
            .collect()
    }
}

impl ClusterNode {
    /// Every heartbeat period: a Raft heartbeat for the metadata group and
    /// each busy group this node leads; one beat per peer for the quiet ones.
    pub(super) async fn beats(self: Arc<Self>) {
        let period = Duration::from_millis(self.config.timing.heartbeat_ms);
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = self.stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            self.beat_round(period).await;
        }
    }

    async fn beat_round(&self, period: Duration) {
        let started = Instant::now();
        if self.groups.meta_raft.is_leader() {
            let _ = self.groups.meta_raft.trigger().heartbeat().await;
        }
        let me = u64::from(self.config.node_id);
        let quiet_after = period * QUIET_AFTER_BEATS;
        let leading: Vec<Arc<Replica>> = self
            .groups
            .replicas
            .read()
            .values()
            .filter(|r| r.raft.is_leader())
            .cloned()
            .collect();
        let mut candidates = Vec::new();
        for replica in leading {
            match replica.quiet_candidate(me, quiet_after) {
                Some(candidate) => candidates.push(candidate),
                // Written within the period: its AppendEntries were the
                // followers' contact and renewed the lease.
                None if replica.liveness.idle_for() < period => replica.liveness.busy(),
                None => {
                    replica.liveness.busy();
                    let _ = replica.raft.trigger().heartbeat().await;
                }
            }
        }
        if candidates.is_empty() {
            return;
        }
        let mut listings: BTreeMap<u64, (String, Vec<QuietGroup>)> = BTreeMap::new();
        for candidate in &candidates {
            for (id, address) in &candidate.followers {
                let listing = listings
                    .entry(*id)
                    .or_insert_with(|| (address.clone(), Vec::new()));
                listing.1.push(candidate.quiet);
            }
        }
        let acks = self.send_beats(me, listings, period / 2).await;
        for candidate in candidates {
            let group = candidate.quiet.group;
            let all_acked = candidate
                .followers
                .iter()
                .all(|(id, _)| acks.get(id).is_some_and(|acked| acked.contains(&group)));
            let liveness = &candidate.replica.liveness;
            if all_acked {
                *liveness.quiet_acked.lock() = Some(started);
                liveness.beaten();
            } else {
                liveness.busy();
                let _ = candidate.replica.raft.trigger().heartbeat().await;
            }
        }
    }

    /// Sends each peer its beat at once; the groups each acknowledged
    /// within `timeout` (none from a peer that did not answer).
    async fn send_beats(
        &self,
        me: u64,
        listings: BTreeMap<u64, (String, Vec<QuietGroup>)>,
        timeout: Duration,
    ) -> HashMap<u64, HashSet<u64>> {
        let beats = listings.into_iter().map(|(peer, (address, quiet))| {
            let call = NodeCall::Beat { leader: me, quiet };
            let payload = Bytes::from(calls::encode(&call));
            async move {
                let answer = self.network.call(peer, &address, payload, timeout).await;
                let acked = match answer.map(|bytes| calls::decode::<CallAnswer>(&bytes)) {
                    Ok(Ok(CallAnswer::Beat(acked))) => acked.into_iter().collect(),
                    _ => HashSet::new(),
                };
                (peer, acked)
            }
        });
        join_all(beats).await.into_iter().collect()
    }

    /// Turns openraft's tick on for each group whose leader has been silent
    /// longer than the replica's election timeout (openraft then elects),
    /// and off again once a leader is heard from or this node leads.
    pub(super) async fn election_watch(self: Arc<Self>) {
        let period = Duration::from_millis(self.config.timing.heartbeat_ms) / WATCH_PASSES_PER_BEAT;
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let me = u64::from(self.config.node_id);
        loop {
            tokio::select! {
                () = self.stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            watch_group(
                &self.groups.meta_liveness,
                &self.groups.meta_raft,
                me,
                || {
                    tracing::debug!("metadata leader silent; electing");
                },
            );
            let replicas: Vec<Arc<Replica>> =
                self.groups.replicas.read().values().cloned().collect();
            for replica in replicas {
                watch_replica(&replica, me);
            }
        }
    }
}

fn watch_replica(replica: &Replica, me: u64) {
    let id = &replica.id;
    watch_group(&replica.liveness, &replica.raft, me, || {
        tracing::debug!(topic = %id.topic, partition = id.partition, "leader silent; electing");
    });
}

/// Turns `raft`'s tick on when this voter has not heard from a leader
/// within its election timeout, off once it leads or hears from one.
fn watch_group<SM>(
    liveness: &Liveness,
    raft: &openraft::Raft<Tc, SM>,
    me: u64,
    electing: impl FnOnce(),
) where
    SM: openraft::storage::RaftStateMachine<Tc>,
{
    let ticking = liveness.ticking.load(Ordering::Acquire);
    let expired = liveness.contact_expired();
    if !ticking && !expired {
        return;
    }
    let (leads, votes) = {
        let metrics = raft.metrics();
        let metrics = metrics.borrow_watched();
        let votes = metrics
            .membership_config
            .membership()
            .voter_ids()
            .any(|id| id == me);
        (metrics.state == ServerState::Leader, votes)
    };
    if leads {
        liveness.touch_contact();
    }
    let tick = votes && !leads && expired;
    if tick != ticking {
        if tick {
            electing();
            liveness.redraw_timeout();
        }
        liveness.ticking.store(tick, Ordering::Release);
        raft.runtime_config().tick(tick);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drawn timeouts stay in range and differ between seeds.
    #[test]
    fn election_timeouts_are_drawn_in_range() {
        let range = (Duration::from_millis(300), Duration::from_millis(600));
        let drawn: HashSet<Duration> = (0..100).map(|seed| draw(range, seed)).collect();
        assert!(drawn.iter().all(|d| *d >= range.0 && *d < range.1));
        assert!(drawn.len() > 90, "{} distinct of 100", drawn.len());
    }
}
