//! Tests of the group coordinator state machine, driven by `now_ms` alone.

use std::collections::HashSet;

use proptest::prelude::*;

use super::coordinator::GroupCoordinator;
use super::{GroupPartition, JoinRequest, JoinResult, JoinTicket};
use crate::BrokerError;

const SESSION_MS: u32 = 10_000;
const REBALANCE_MS: u32 = 30_000;

fn counts(topic: &str) -> u32 {
    match topic {
        "t" => 4,
        "u" => 2,
        _ => 0,
    }
}

fn coordinator() -> GroupCoordinator {
    GroupCoordinator::new(1_000, 60_000, 0xabc)
}

fn request(member_id: &str, topics: &[&str]) -> JoinRequest {
    JoinRequest {
        group: "g".to_owned(),
        member_id: member_id.to_owned(),
        client_id: "client".to_owned(),
        topics: topics.iter().map(|t| (*t).to_owned()).collect(),
        session_timeout_ms: SESSION_MS,
        rebalance_timeout_ms: REBALANCE_MS,
    }
}

fn join(c: &mut GroupCoordinator, member_id: &str, now_ms: i64) -> JoinTicket {
    c.join(request(member_id, &["t"]), now_ms, &counts).unwrap()
}

fn done(ticket: &mut JoinTicket) -> JoinResult {
    ticket.try_recv().expect("join completed").unwrap()
}

fn pending(ticket: &mut JoinTicket) -> bool {
    matches!(
        ticket.try_recv(),
        Err(tokio::sync::oneshot::error::TryRecvError::Empty)
    )
}

fn all_of_t() -> Vec<GroupPartition> {
    (0..4)
        .map(|partition| GroupPartition {
            topic: "t".to_owned(),
            partition,
        })
        .collect()
}

/// Stable two-member group: returns (a, b) joined at generation 2.
fn two_members(c: &mut GroupCoordinator) -> (JoinResult, JoinResult) {
    let a = done(&mut join(c, "", 0));
    let mut b_ticket = join(c, "", 1);
    assert!(pending(&mut b_ticket));
    let a = done(&mut join(c, &a.member_id, 2));
    let b = done(&mut b_ticket);
    assert_eq!((a.generation, b.generation), (2, 2));
    (a, b)
}

/// A member joining an empty group gets every partition at once, in generation 1.
#[test]
fn single_member_completes_immediately() {
    let mut c = coordinator();
    let result = done(&mut join(&mut c, "", 0));
    assert_eq!(result.generation, 1);
    assert_eq!(result.assignment, all_of_t());
    assert!(result.member_id.starts_with("client-abc-"));
    assert_eq!(c.snapshot("g").unwrap().state, "Stable");
}

/// A second member's join rebalances: the first is told to re-join, and
/// then both share the partitions without overlap.
#[test]
fn rebalance_on_join_splits_partitions() {
    let mut c = coordinator();
    let a = done(&mut join(&mut c, "", 0));
    let mut b_ticket = join(&mut c, "", 1);
    let err = c.heartbeat("g", &a.member_id, 1, 1).unwrap_err();
    assert!(matches!(err, BrokerError::RebalanceInProgress(_)), "{err}");
    assert!(pending(&mut b_ticket));
    let a = done(&mut join(&mut c, &a.member_id, 2));
    let b = done(&mut b_ticket);
    assert_eq!(a.assignment.len() + b.assignment.len(), 4);
    let mut all: Vec<_> = a.assignment.iter().chain(&b.assignment).cloned().collect();
    all.sort();
    assert_eq!(all, all_of_t());
    assert_eq!(c.sync("g", &b.member_id, 2).unwrap(), b.assignment);
    c.heartbeat("g", &a.member_id, 2, 3).unwrap();
}

/// A member that does not re-join by the rebalance deadline is removed.
#[test]
fn rebalance_deadline_drops_silent_members() {
    let mut c = coordinator();
    let a = done(&mut join(&mut c, "", 0));
    let mut b_ticket = join(&mut c, "", 1_000);
    // a heartbeats (so its session stays alive) but never re-joins.
    for now_ms in (2_000..31_000).step_by(2_000) {
        let _ = c.heartbeat("g", &a.member_id, 1, now_ms);
        c.tick(now_ms, &counts);
        assert!(pending(&mut b_ticket), "still waiting at {now_ms}");
    }
    c.tick(1_000 + i64::from(REBALANCE_MS), &counts);
    let b = done(&mut b_ticket);
    assert_eq!((b.generation, b.assignment), (2, all_of_t()));
    let err = c.heartbeat("g", &a.member_id, 1, 40_000).unwrap_err();
    assert!(matches!(err, BrokerError::UnknownMember { .. }), "{err}");
}

/// A leaving member triggers a rebalance that gives the rest everything.
#[test]
fn leave_rebalances_the_rest() {
    let mut c = coordinator();
    let (a, b) = two_members(&mut c);
    c.leave("g", &a.member_id, 5, &counts).unwrap();
    let err = c.heartbeat("g", &b.member_id, 2, 6).unwrap_err();
    assert!(matches!(err, BrokerError::RebalanceInProgress(_)), "{err}");
    let b = done(&mut join(&mut c, &b.member_id, 7));
    assert_eq!((b.generation, b.assignment), (3, all_of_t()));
}

/// A member that stops heartbeating is expired by `tick`, and the rest rebalance.
#[test]
fn session_expiry_rebalances() {
    let mut c = coordinator();
    let (a, b) = two_members(&mut c);
    let mut now_ms = 2;
    while now_ms < 12_000 {
        now_ms += 1_000;
        let _ = c.heartbeat("g", &b.member_id, 2, now_ms);
        c.tick(now_ms, &counts);
    }
    assert_eq!(c.snapshot("g").unwrap().members.len(), 1);
    let err = c.heartbeat("g", &b.member_id, 2, now_ms).unwrap_err();
    assert!(matches!(err, BrokerError::RebalanceInProgress(_)), "{err}");
    let b = done(&mut join(&mut c, &b.member_id, now_ms));
    assert_eq!((b.generation, b.assignment), (3, all_of_t()));
    let err = c.check_commit("g", &a.member_id, 2).unwrap_err();
    assert!(matches!(err, BrokerError::UnknownMember { .. }), "{err}");
}

/// Heartbeat answers each failure with its own error, in the documented order.
#[test]
fn heartbeat_errors() {
    let mut c = coordinator();
    let a = done(&mut join(&mut c, "", 0));
    let err = c.heartbeat("nope", &a.member_id, 1, 1).unwrap_err();
    assert!(matches!(err, BrokerError::UnknownGroup(_)), "{err}");
    let err = c.heartbeat("g", "stranger", 1, 1).unwrap_err();
    assert!(matches!(err, BrokerError::UnknownMember { .. }), "{err}");
    let err = c.heartbeat("g", &a.member_id, 0, 1).unwrap_err();
    assert!(
        matches!(
            err,
            BrokerError::IllegalGeneration {
                received: 0,
                current: 1,
                ..
            }
        ),
        "{err}"
    );
    c.heartbeat("g", &a.member_id, 1, 1).unwrap();
}

/// A stale generation may not commit, so a zombie cannot move offsets.
#[test]
fn stale_generation_commit_refused() {
    let mut c = coordinator();
    let first = done(&mut join(&mut c, "", 0));
    let second = done(&mut join(&mut c, &first.member_id, 1));
    assert_eq!(second.generation, 2);
    let err = c.check_commit("g", &first.member_id, 1).unwrap_err();
    assert!(
        matches!(err, BrokerError::IllegalGeneration { .. }),
        "{err}"
    );
    c.check_commit("g", &first.member_id, 2).unwrap();
}

/// Session timeouts outside the configured bounds are refused; so are
/// unknown member ids and empty subscriptions.
#[test]
fn join_validation() {
    let mut c = coordinator();
    for timeout_ms in [999, 60_001] {
        let mut req = request("", &["t"]);
        req.session_timeout_ms = timeout_ms;
        let err = c.join(req, 0, &counts).unwrap_err();
        assert!(matches!(err, BrokerError::InvalidRequest(_)), "{err}");
    }
    let err = c.join(request("ghost", &["t"]), 0, &counts).unwrap_err();
    assert!(matches!(err, BrokerError::UnknownMember { .. }), "{err}");
    let err = c.join(request("", &[]), 0, &counts).unwrap_err();
    assert!(matches!(err, BrokerError::InvalidRequest(_)), "{err}");
    assert!(c.snapshot("g").is_none());
}

/// The last member leaving empties the group and bumps its generation.
#[test]
fn last_leave_empties_group() {
    let mut c = coordinator();
    let a = done(&mut join(&mut c, "", 0));
    c.leave("g", &a.member_id, 1, &counts).unwrap();
    let snapshot = c.snapshot("g").unwrap();
    assert_eq!((snapshot.state, snapshot.generation), ("Empty", 2));
    assert!(snapshot.members.is_empty());
}

/// A second join while one is pending resolves the first ticket with an error.
#[test]
fn duplicate_join_replaces_ticket() {
    let mut c = coordinator();
    let a = done(&mut join(&mut c, "", 0));
    let mut b_first = join(&mut c, "", 1);
    let b_id = c.snapshot("g").unwrap().members[1].member_id.clone();
    let mut b_second = join(&mut c, &b_id, 2);
    let err = b_first.try_recv().unwrap().unwrap_err();
    assert!(matches!(err, BrokerError::RebalanceInProgress(_)), "{err}");
    done(&mut join(&mut c, &a.member_id, 3));
    assert_eq!(done(&mut b_second).generation, 2);
}

#[derive(Debug, Clone)]
enum Op {
    Join,
    Rejoin(usize),
    Leave(usize),
    Heartbeat(usize),
    Advance(u16),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        Just(Op::Join),
        (0usize..8).prop_map(Op::Rejoin),
        (0usize..8).prop_map(Op::Leave),
        (0usize..8).prop_map(Op::Heartbeat),
        (0u16..20_000).prop_map(Op::Advance),
    ]
}

proptest! {
    /// Whatever members do, a stable generation assigns every partition of
    /// the subscribed topics to exactly one member.
    #[test]
    fn stable_generation_assigns_each_partition_once(ops in proptest::collection::vec(op(), 1..60)) {
        let mut c = coordinator();
        let mut now_ms = 0i64;
        let mut ids: Vec<String> = Vec::new();
        for op in ops {
            let known = |i: usize| ids.get(i % ids.len().max(1)).cloned();
            match op {
                Op::Join => {
                    let topics: &[&str] = if ids.len().is_multiple_of(2) { &["t"] } else { &["t", "u"] };
                    let _ = c.join(request("", topics), now_ms, &counts);
                    ids = c.snapshot("g").unwrap().members.into_iter().map(|m| m.member_id).collect();
                }
                Op::Rejoin(i) => if let Some(id) = known(i) {
                    let _ = c.join(request(&id, &["t", "u"]), now_ms, &counts);
                },
                Op::Leave(i) => if let Some(id) = known(i) {
                    let _ = c.leave("g", &id, now_ms, &counts);
                },
                Op::Heartbeat(i) => if let Some(id) = known(i) {
                    let generation = c.snapshot("g").map_or(0, |s| s.generation);
                    let _ = c.heartbeat("g", &id, generation, now_ms);
                },
                Op::Advance(ms) => {
                    now_ms += i64::from(ms);
                    c.tick(now_ms, &counts);
                }
            }
            let Some(snapshot) = c.snapshot("g") else { continue };
            if snapshot.state != "Stable" {
                continue;
            }
            let mut seen = HashSet::new();
            for member in &snapshot.members {
                for partition in &member.assignment {
                    prop_assert!(seen.insert(partition.clone()), "{partition:?} assigned twice");
                }
            }
            for partition in all_of_t() {
                prop_assert!(seen.contains(&partition), "{partition:?} unassigned");
            }
            let of_u = seen.iter().filter(|p| p.topic == "u").count();
            prop_assert!(of_u == 0 || of_u == 2, "u is assigned whole or not subscribed");
        }
    }
}
