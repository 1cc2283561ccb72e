//! One group's membership and its eager rebalance: who is in, which
//! generation, who has re-joined, and the pending join tickets to resolve.
//! Validation of requests and the map of groups live in the coordinator.
//!
//! States: `Empty` (no members) → `Rebalancing` (a member joined, left or
//! expired; waiting for every member to re-join, until `deadline_ms`) →
//! `Stable` (generation bumped, assignment computed, tickets resolved).

use std::collections::BTreeMap;

use tokio::sync::oneshot;

use super::assignor::{Subscription, assign_round_robin};
use super::{GroupPartition, JoinResult, MemberOverview, PartitionCount};
use crate::BrokerError;

pub(super) type TicketSender = oneshot::Sender<Result<JoinResult, BrokerError>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum GroupState {
    Empty,
    Stable,
    Rebalancing { deadline_ms: i64 },
}

impl GroupState {
    pub(super) fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::Stable => "Stable",
            GroupState::Rebalancing { .. } => "Rebalancing",
        }
    }
}

#[derive(Debug)]
pub(super) struct Member {
    pub client_id: String,
    pub topics: Vec<String>,
    pub session_timeout_ms: u32,
    pub rebalance_timeout_ms: u32,
    pub session_deadline_ms: i64,
    pub assignment: Vec<GroupPartition>,
    /// Re-joined during the current rebalance (meaningless when not rebalancing).
    pub rejoined: bool,
    /// The blocked join call waiting for this rebalance to complete.
    pub ticket: Option<TicketSender>,
}

impl Member {
    pub(super) fn refresh_session(&mut self, now_ms: i64) {
        self.session_deadline_ms = now_ms.saturating_add(i64::from(self.session_timeout_ms));
    }
}

#[derive(Debug)]
pub(super) struct Group {
    pub name: String,
    pub state: GroupState,
    pub generation: u32,
    pub members: BTreeMap<String, Member>,
}

impl Group {
    pub(super) fn new(name: String) -> Group {
        Group {
            name,
            state: GroupState::Empty,
            generation: 0,
            members: BTreeMap::new(),
        }
    }

    pub(super) fn is_rebalancing(&self) -> bool {
        matches!(self.state, GroupState::Rebalancing { .. })
    }

    /// Enters `Rebalancing` (if not already): every member must re-join by
    /// `now + the longest rebalance timeout` of the current members.
    pub(super) fn begin_rebalance(&mut self, now_ms: i64) {
        if self.is_rebalancing() {
            return;
        }
        let timeout_ms = self
            .members
            .values()
            .map(|m| m.rebalance_timeout_ms)
            .max()
            .unwrap_or(0);
        for member in self.members.values_mut() {
            member.rejoined = false;
        }
        self.state = GroupState::Rebalancing {
            deadline_ms: now_ms.saturating_add(i64::from(timeout_ms)),
        };
    }

    /// Completes the rebalance if every member has re-joined.
    pub(super) fn try_complete(&mut self, now_ms: i64, partitions_of: PartitionCount<'_>) {
        if self.is_rebalancing() && self.members.values().all(|m| m.rejoined) {
            self.complete(now_ms, partitions_of);
        }
    }

    /// Ends the rebalance: drops members that did not re-join, bumps the
    /// generation, assigns partitions and resolves every pending ticket.
    pub(super) fn complete(&mut self, now_ms: i64, partitions_of: PartitionCount<'_>) {
        assert!(self.is_rebalancing(), "only a rebalance can complete");
        self.members.retain(|_, m| m.rejoined);
        self.generation = self.generation.wrapping_add(1);
        self.assign(partitions_of);
        self.state = match self.members.is_empty() {
            true => GroupState::Empty,
            false => GroupState::Stable,
        };
        let generation = self.generation;
        for (member_id, member) in &mut self.members {
            member.refresh_session(now_ms);
            if let Some(ticket) = member.ticket.take() {
                // A dropped receiver means the caller gave up; nothing to do.
                let _ = ticket.send(Ok(JoinResult {
                    generation,
                    member_id: member_id.clone(),
                    assignment: member.assignment.clone(),
                }));
            }
        }
        tracing::info!(group = %self.name, generation, members = self.members.len(), "rebalance complete");
    }

    fn assign(&mut self, partitions_of: PartitionCount<'_>) {
        let subscriptions: Vec<Subscription<'_>> = self
            .members
            .iter()
            .map(|(id, m)| Subscription {
                member_id: id,
                topics: &m.topics,
            })
            .collect();
        let assignments = assign_round_robin(&subscriptions, partitions_of);
        for (member, assignment) in self.members.values_mut().zip(assignments) {
            member.assignment = assignment;
        }
    }

    /// Removes members whose session expired and starts a rebalance for the
    /// rest; during a rebalance only members that have not re-joined expire
    /// (re-joined ones are blocked in their join call and cannot heartbeat).
    pub(super) fn expire_sessions(&mut self, now_ms: i64) -> usize {
        let before = self.members.len();
        let rebalancing = self.is_rebalancing();
        self.members
            .retain(|_, m| (rebalancing && m.rejoined) || m.session_deadline_ms > now_ms);
        let expired = before - self.members.len();
        if expired > 0 {
            tracing::info!(group = %self.name, expired, "member sessions expired");
            self.begin_rebalance(now_ms);
        }
        expired
    }

    /// Drives deadlines: session expiry, then the rebalance deadline.
    pub(super) fn tick(&mut self, now_ms: i64, partitions_of: PartitionCount<'_>) {
        self.expire_sessions(now_ms);
        match self.state {
            GroupState::Rebalancing { deadline_ms } if now_ms >= deadline_ms => {
                self.complete(now_ms, partitions_of);
            }
            _ => self.try_complete(now_ms, partitions_of),
        }
    }

    pub(super) fn member_overviews(&self) -> Vec<MemberOverview> {
        self.members
            .iter()
            .map(|(id, m)| MemberOverview {
                member_id: id.clone(),
                client_id: m.client_id.clone(),
                assignment: m.assignment.clone(),
            })
            .collect()
    }
}
