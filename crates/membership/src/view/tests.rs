//! Unit tests of the member-list derivation: state rule, generations, foreign clusters.

use std::time::{Duration, Instant};

use super::*;
use crate::node_info::NodeInfo;

const SUSPECT_AFTER: Duration = Duration::from_secs(1);

fn sample(node: u32, generation: u64, cluster: &str, verdict: DetectorVerdict) -> MemberSample {
    let mut info = NodeInfo::new(NodeId(node), cluster)
        .with_listener("native", format!("127.0.0.{node}:9400"));
    info.generation = generation;
    MemberSample {
        gossip_node_id: node.to_string(),
        generation,
        gossip_addr: ([127, 0, 0, node as u8], 7946).into(),
        heartbeat: 1,
        verdict,
        is_self: false,
        key_values: info.to_key_values().unwrap().into_iter().collect(),
    }
}

fn derive(samples: &[MemberSample], last_heard: &LastHeard, now: Instant) -> Derived {
    derive_members(samples, "c", last_heard, now, SUSPECT_AFTER)
}

/// The state rule maps detector verdict and silence to Alive, Suspect or Dead.
#[test]
fn state_rule() {
    let live = sample(1, 1, "c", DetectorVerdict::Live);
    let dead = sample(1, 1, "c", DetectorVerdict::Dead);
    let unknown = sample(1, 1, "c", DetectorVerdict::Unknown);
    let quiet = Duration::from_millis(100);
    let long = Duration::from_secs(2);
    assert_eq!(
        member_state(&live, quiet, SUSPECT_AFTER),
        MemberState::Alive
    );
    assert_eq!(
        member_state(&live, long, SUSPECT_AFTER),
        MemberState::Suspect
    );
    assert_eq!(member_state(&dead, long, SUSPECT_AFTER), MemberState::Dead);
    assert_eq!(
        member_state(&dead, quiet, SUSPECT_AFTER),
        MemberState::Suspect
    );
    assert_eq!(
        member_state(&unknown, quiet, SUSPECT_AFTER),
        MemberState::Suspect
    );
    let mut me = dead.clone();
    me.is_self = true;
    assert_eq!(member_state(&me, long, SUSPECT_AFTER), MemberState::Alive);
}

/// Silence is measured from the last time the heartbeat advanced, not the last look.
#[test]
fn last_heard_tracks_heartbeat_advances() {
    let start = Instant::now();
    let mut tracker = LastHeard::default();
    let mut member = sample(2, 1, "c", DetectorVerdict::Live);
    tracker.observe(std::slice::from_ref(&member), start);
    let later = start + Duration::from_secs(3);
    tracker.observe(std::slice::from_ref(&member), later);
    assert_eq!(tracker.silent_for("2", 1, later), Duration::from_secs(3));
    member.heartbeat = 2;
    tracker.observe(std::slice::from_ref(&member), later);
    assert_eq!(tracker.silent_for("2", 1, later), Duration::ZERO);
    tracker.observe(&[], later);
    assert_eq!(tracker.silent_for("2", 1, later), Duration::ZERO);
}

/// A live member heard from recently is Alive; once silent it turns Suspect, then Dead.
#[test]
fn member_goes_suspect_then_dead() {
    let start = Instant::now();
    let mut tracker = LastHeard::default();
    let mut member = sample(2, 1, "c", DetectorVerdict::Live);
    tracker.observe(std::slice::from_ref(&member), start);
    let state_at = |tracker: &LastHeard, member: &MemberSample, at| {
        derive(std::slice::from_ref(member), tracker, at).members[0].state
    };
    assert_eq!(state_at(&tracker, &member, start), MemberState::Alive);
    let silent = start + Duration::from_secs(2);
    assert_eq!(state_at(&tracker, &member, silent), MemberState::Suspect);
    member.verdict = DetectorVerdict::Dead;
    assert_eq!(state_at(&tracker, &member, silent), MemberState::Dead);
}

/// A restarted node shows once, as its newest generation.
#[test]
fn newest_generation_wins() {
    let now = Instant::now();
    let old = sample(2, 100, "c", DetectorVerdict::Dead);
    let new = sample(2, 200, "c", DetectorVerdict::Live);
    let derived = derive(&[new, old], &LastHeard::default(), now);
    assert_eq!(derived.members.len(), 1);
    assert_eq!(derived.members[0].info.generation, 200);
    assert_eq!(derived.members[0].state, MemberState::Alive);
}

/// Members of another cluster or with unreadable keys are left out and reported.
#[test]
fn foreign_and_undecodable_members_are_rejected() {
    let now = Instant::now();
    let foreign = sample(3, 1, "other", DetectorVerdict::Live);
    let mut broken = sample(4, 1, "c", DetectorVerdict::Live);
    broken.key_values.retain(|(key, _)| key != "node_id");
    let good = sample(1, 1, "c", DetectorVerdict::Live);
    let derived = derive(&[foreign, broken, good], &LastHeard::default(), now);
    let ids: Vec<_> = derived.members.iter().map(|m| m.info.node_id).collect();
    assert_eq!(ids, [NodeId(1)]);
    let reasons: Vec<_> = derived.rejected.iter().map(|r| &r.reason).collect();
    assert_eq!(
        reasons,
        [
            &RejectReason::ForeignCluster("other".into()),
            &RejectReason::Undecodable(DecodeError::MissingKey("node_id")),
        ]
    );
}

/// Members come out sorted by node id, and timing alone does not count as a change.
#[test]
fn sorted_and_compared_without_timing() {
    let now = Instant::now();
    let samples = [
        sample(3, 1, "c", DetectorVerdict::Live),
        sample(1, 1, "c", DetectorVerdict::Live),
        sample(2, 1, "c", DetectorVerdict::Live),
    ];
    let first = derive(&samples, &LastHeard::default(), now).members;
    let ids: Vec<_> = first.iter().map(|m| m.info.node_id.0).collect();
    assert_eq!(ids, [1, 2, 3]);
    let mut second = first.clone();
    second[0].silent_for = Duration::from_millis(500);
    assert!(same_members(&first, &second));
    second[1].state = MemberState::Suspect;
    assert!(!same_members(&first, &second));
    assert!(find_member(&first, NodeId(2)).is_some());
}
