//! The group coordinator: every group's membership, as a pure state machine
//! driven by requests and `now_ms` (Kafka's eager protocol with server-side
//! assignment). It validates requests, allocates member ids and routes each
//! call to its [`Group`]; it owns no timers (the broker calls
//! [`GroupCoordinator::tick`]) and no committed offsets (see `offsets`).
//!
//! Commits with a matching generation are accepted while the group is
//! rebalancing, as Kafka does: an eager consumer commits in its "partitions
//! revoked" step, after it learned of the rebalance and before re-joining.

use std::collections::BTreeMap;

use tokio::sync::oneshot;

use super::membership::{Group, Member};
use super::{GroupPartition, JoinRequest, JoinTicket, MemberOverview, PartitionCount};
use crate::BrokerError;
use crate::names::validate_group_name;

/// Members one group may hold.
pub const GROUP_MEMBERS_MAX: usize = 1_000;
/// Topics one member may subscribe to.
pub const SUBSCRIBED_TOPICS_MAX: usize = 1_000;
/// Longest rebalance timeout a member may ask for.
pub const REBALANCE_TIMEOUT_MS_MAX: u32 = 30 * 60 * 1_000;
/// Characters of the client id kept in a generated member id.
const CLIENT_ID_IN_MEMBER_ID_CHARS_MAX: usize = 64;

/// A group's membership as seen from outside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSnapshot {
    pub state: &'static str,
    pub generation: u32,
    pub members: Vec<MemberOverview>,
}

#[derive(Debug)]
pub struct GroupCoordinator {
    groups: BTreeMap<String, Group>,
    session_timeout_ms_min: u32,
    session_timeout_ms_max: u32,
    /// Part of every member id, so ids from before a restart never collide
    /// with new ones (the broker passes its start time).
    instance: u64,
    next_member: u64,
}

impl GroupCoordinator {
    pub fn new(session_timeout_ms_min: u32, session_timeout_ms_max: u32, instance: u64) -> Self {
        assert!(session_timeout_ms_min <= session_timeout_ms_max);
        GroupCoordinator {
            groups: BTreeMap::new(),
            session_timeout_ms_min,
            session_timeout_ms_max,
            instance,
            next_member: 0,
        }
    }

    /// Joins (empty `member_id`) or re-joins; starts a rebalance if none is
    /// running. The ticket resolves when every member has re-joined or at
    /// the rebalance deadline (see [`GroupCoordinator::tick`]).
    pub fn join(
        &mut self,
        request: JoinRequest,
        now_ms: i64,
        partitions_of: PartitionCount<'_>,
    ) -> Result<JoinTicket, BrokerError> {
        self.validate_join(&request)?;
        let member_id = self.resolve_member_id(&request)?;
        let group = self
            .groups
            .entry(request.group.clone())
            .or_insert_with(|| Group::new(request.group.clone()));
        upsert_member(group, &member_id, request, now_ms);
        group.begin_rebalance(now_ms);
        let member = group.members.get_mut(&member_id).expect("just upserted");
        member.rejoined = true;
        let (sender, ticket) = oneshot::channel();
        if let Some(replaced) = member.ticket.replace(sender) {
            let _ = replaced.send(Err(BrokerError::RebalanceInProgress(group.name.clone())));
        }
        group.try_complete(now_ms, partitions_of);
        Ok(ticket)
    }

    /// The member's assignment in the current generation.
    pub fn sync(
        &self,
        group: &str,
        member_id: &str,
        generation: u32,
    ) -> Result<Vec<GroupPartition>, BrokerError> {
        let (group, member) = self.current_member(group, member_id, generation)?;
        if group.is_rebalancing() {
            return Err(BrokerError::RebalanceInProgress(group.name.clone()));
        }
        Ok(member.assignment.clone())
    }

    /// Refreshes the member's session; while the group rebalances the
    /// session is refreshed too but the member is told to re-join.
    pub fn heartbeat(
        &mut self,
        group: &str,
        member_id: &str,
        generation: u32,
        now_ms: i64,
    ) -> Result<(), BrokerError> {
        self.current_member(group, member_id, generation)?;
        let group = self.groups.get_mut(group).expect("checked above");
        let rebalancing = group.is_rebalancing();
        let member = group.members.get_mut(member_id).expect("checked above");
        member.refresh_session(now_ms);
        match rebalancing {
            true => Err(BrokerError::RebalanceInProgress(group.name.clone())),
            false => Ok(()),
        }
    }

    /// Removes the member and rebalances the rest.
    pub fn leave(
        &mut self,
        group: &str,
        member_id: &str,
        now_ms: i64,
        partitions_of: PartitionCount<'_>,
    ) -> Result<(), BrokerError> {
        let group = self
            .groups
            .get_mut(group)
            .ok_or_else(|| BrokerError::UnknownGroup(group.to_owned()))?;
        let member = group
            .members
            .remove(member_id)
            .ok_or_else(|| unknown_member(&group.name, member_id))?;
        if let Some(ticket) = member.ticket {
            let _ = ticket.send(Err(unknown_member(&group.name, member_id)));
        }
        tracing::info!(group = %group.name, member_id, "member left");
        group.begin_rebalance(now_ms);
        group.try_complete(now_ms, partitions_of);
        Ok(())
    }

    /// Checks that a member commit comes from a current member of the
    /// current generation, so a zombie cannot move offsets.
    pub fn check_commit(
        &self,
        group: &str,
        member_id: &str,
        generation: u32,
    ) -> Result<(), BrokerError> {
        self.current_member(group, member_id, generation)
            .map(|_| ())
    }

    /// Makes sure a group entry exists (a manual commit creates one, `Empty`).
    pub fn ensure_group(&mut self, group: &str) {
        if !self.groups.contains_key(group) {
            self.groups
                .insert(group.to_owned(), Group::new(group.to_owned()));
        }
    }

    /// Expires silent members and completes rebalances that are done or overdue.
    pub fn tick(&mut self, now_ms: i64, partitions_of: PartitionCount<'_>) {
        for group in self.groups.values_mut() {
            group.tick(now_ms, partitions_of);
        }
    }

    pub fn snapshot(&self, group: &str) -> Option<GroupSnapshot> {
        let group = self.groups.get(group)?;
        Some(GroupSnapshot {
            state: group.state.name(),
            generation: group.generation,
            members: group.member_overviews(),
        })
    }

    /// Names of every known group, sorted.
    pub fn group_names(&self) -> impl Iterator<Item = &str> {
        self.groups.keys().map(String::as_str)
    }

    fn validate_join(&self, request: &JoinRequest) -> Result<(), BrokerError> {
        validate_group_name(&request.group)?;
        let (min, max) = (self.session_timeout_ms_min, self.session_timeout_ms_max);
        if !(min..=max).contains(&request.session_timeout_ms) {
            return Err(BrokerError::InvalidRequest(format!(
                "session timeout {} ms is outside the allowed [{min}, {max}] ms",
                request.session_timeout_ms
            )));
        }
        if request.rebalance_timeout_ms > REBALANCE_TIMEOUT_MS_MAX {
            return Err(BrokerError::InvalidRequest(format!(
                "rebalance timeout {} ms exceeds {REBALANCE_TIMEOUT_MS_MAX} ms",
                request.rebalance_timeout_ms
            )));
        }
        if request.topics.is_empty() || request.topics.len() > SUBSCRIBED_TOPICS_MAX {
            return Err(BrokerError::InvalidRequest(format!(
                "a member subscribes to 1-{SUBSCRIBED_TOPICS_MAX} topics"
            )));
        }
        Ok(())
    }

    /// The id of the joining member: a new one for an empty id (if the
    /// group has room), the given one if the group knows it.
    fn resolve_member_id(&mut self, request: &JoinRequest) -> Result<String, BrokerError> {
        let group = self.groups.get(&request.group);
        if !request.member_id.is_empty() {
            return match group.is_some_and(|g| g.members.contains_key(&request.member_id)) {
                true => Ok(request.member_id.clone()),
                false => Err(unknown_member(&request.group, &request.member_id)),
            };
        }
        if group.is_some_and(|g| g.members.len() >= GROUP_MEMBERS_MAX) {
            return Err(BrokerError::InvalidRequest(format!(
                "group {:?} already has {GROUP_MEMBERS_MAX} members",
                request.group
            )));
        }
        self.next_member += 1;
        let client: String = request
            .client_id
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
            .take(CLIENT_ID_IN_MEMBER_ID_CHARS_MAX)
            .collect();
        let client = if client.is_empty() { "member" } else { &client };
        Ok(format!("{client}-{:x}-{}", self.instance, self.next_member))
    }

    /// The group and member, if the member belongs to `generation`.
    fn current_member(
        &self,
        group: &str,
        member_id: &str,
        generation: u32,
    ) -> Result<(&Group, &Member), BrokerError> {
        let group = self
            .groups
            .get(group)
            .ok_or_else(|| BrokerError::UnknownGroup(group.to_owned()))?;
        let member = group
            .members
            .get(member_id)
            .ok_or_else(|| unknown_member(&group.name, member_id))?;
        if generation != group.generation {
            return Err(BrokerError::IllegalGeneration {
                group: group.name.clone(),
                received: generation,
                current: group.generation,
            });
        }
        Ok((group, member))
    }
}

fn unknown_member(group: &str, member_id: &str) -> BrokerError {
    BrokerError::UnknownMember {
        group: group.to_owned(),
        member_id: member_id.to_owned(),
    }
}

/// Adds the member or updates its subscription and timeouts.
fn upsert_member(group: &mut Group, member_id: &str, request: JoinRequest, now_ms: i64) {
    let member = group
        .members
        .entry(member_id.to_owned())
        .or_insert_with(|| Member {
            client_id: String::new(),
            topics: Vec::new(),
            session_timeout_ms: 0,
            rebalance_timeout_ms: 0,
            session_deadline_ms: 0,
            assignment: Vec::new(),
            rejoined: false,
            ticket: None,
        });
    member.client_id = request.client_id;
    member.topics = request.topics;
    member.session_timeout_ms = request.session_timeout_ms;
    // 0 means "as long as the session timeout" (Kafka's v0 behaviour).
    member.rebalance_timeout_ms = match request.rebalance_timeout_ms {
        0 => request.session_timeout_ms,
        timeout_ms => timeout_ms,
    };
    member.refresh_session(now_ms);
}
