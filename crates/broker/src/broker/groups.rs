//! Consumer-group requests: membership goes to the coordinator (with the
//! current partition counts), committed offsets to the offsets store after
//! the coordinator has vouched for the committer. Cluster mode commits in
//! two steps around its replication ([`Broker::check_commit`], then
//! [`Broker::apply_offsets`]) and copies the replicated offsets in with
//! [`Broker::replace_offsets`].

use std::collections::{BTreeMap, BTreeSet};

use super::Broker;
use crate::group::{GroupCoordinator, GroupPartition};
use crate::names::validate_group_name;
use crate::offsets::{COMMIT_METADATA_BYTES_MAX, COMMIT_PARTITIONS_MAX, Committed, OffsetUpdate};
use crate::{BrokerError, GroupOverview, JoinRequest, JoinTicket};

impl Broker {
    /// Joins or re-joins; the ticket resolves when the rebalance completes.
    pub fn join_group(&self, request: JoinRequest, now_ms: i64) -> Result<JoinTicket, BrokerError> {
        self.observe_time(now_ms);
        let topics = self.topics.read();
        let counts = self.partition_counter(&topics);
        self.groups.lock().join(request, now_ms, &counts)
    }

    pub fn sync_group(
        &self,
        group: &str,
        member_id: &str,
        generation: u32,
    ) -> Result<Vec<GroupPartition>, BrokerError> {
        self.groups.lock().sync(group, member_id, generation)
    }

    pub fn heartbeat(
        &self,
        group: &str,
        member_id: &str,
        generation: u32,
        now_ms: i64,
    ) -> Result<(), BrokerError> {
        self.observe_time(now_ms);
        self.groups
            .lock()
            .heartbeat(group, member_id, generation, now_ms)
    }

    pub fn leave_group(
        &self,
        group: &str,
        member_id: &str,
        now_ms: i64,
    ) -> Result<(), BrokerError> {
        self.observe_time(now_ms);
        let topics = self.topics.read();
        let counts = self.partition_counter(&topics);
        self.groups.lock().leave(group, member_id, now_ms, &counts)
    }

    /// Commits offsets; `member_id` empty + `generation` 0 = manual commit.
    ///
    /// The outer error refuses the whole request (membership, generation);
    /// the inner ones refuse single partitions (unknown topic or partition,
    /// metadata too long) while the others are committed.
    pub fn commit_offsets(
        &self,
        group: &str,
        member_id: &str,
        generation: u32,
        offsets: &[(GroupPartition, u64, String)],
    ) -> Result<Vec<Result<(), BrokerError>>, BrokerError> {
        let topics = self.topics.read();
        let counts = self.partition_counter(&topics);
        // Held until the commit is written, so a concurrent rebalance
        // cannot turn this member into a zombie halfway through.
        let mut groups = self.groups.lock();
        let checked = check_commit(&mut groups, &counts, group, member_id, generation, offsets)?;
        self.offsets.apply(group, &checked.updates, self.now_ms())?;
        Ok(checked.results)
    }

    /// The checks of [`Self::commit_offsets`] without the write, for a
    /// coordinator that makes the commit durable elsewhere first (cluster
    /// mode replicates it through the metadata group) and then calls
    /// [`Self::apply_offsets`]. A refused request changes nothing.
    pub fn check_commit(
        &self,
        group: &str,
        member_id: &str,
        generation: u32,
        offsets: &[(GroupPartition, u64, String)],
    ) -> Result<CheckedCommit, BrokerError> {
        let topics = self.topics.read();
        let counts = self.partition_counter(&topics);
        let mut groups = self.groups.lock();
        check_commit(&mut groups, &counts, group, member_id, generation, offsets)
    }

    /// Writes offset changes of one group to the local store, trusting the
    /// caller (which checked them, or copies them from a replicated source).
    pub fn apply_offsets(&self, group: &str, updates: &[OffsetUpdate]) -> Result<(), BrokerError> {
        self.offsets.apply(group, updates, self.now_ms())
    }

    /// Makes the local store hold exactly `wanted` (group -> offsets),
    /// writing only what differs; the number of partitions changed. Cluster
    /// mode's coordinator calls it with the replicated offsets when it
    /// takes over, since its local store may be behind or ahead of them.
    pub fn replace_offsets(
        &self,
        wanted: &BTreeMap<String, BTreeMap<GroupPartition, Committed>>,
    ) -> Result<usize, BrokerError> {
        let mut names: BTreeSet<String> = self.offsets.groups().into_iter().collect();
        names.extend(wanted.keys().cloned());
        let nothing = BTreeMap::new();
        let mut changed = 0;
        for group in names {
            let want = wanted.get(&group).unwrap_or(&nothing);
            let have: BTreeMap<GroupPartition, Committed> =
                self.offsets.group(&group).into_iter().collect();
            let mut updates: Vec<OffsetUpdate> = have
                .keys()
                .filter(|p| !want.contains_key(*p))
                .map(|p| (p.clone(), None))
                .collect();
            updates.extend(
                want.iter()
                    .filter(|(p, c)| have.get(*p) != Some(*c))
                    .map(|(p, c)| (p.clone(), Some(c.clone()))),
            );
            changed += updates.len();
            // One batch per chunk: a batch holds at most one request's worth.
            for chunk in updates.chunks(COMMIT_PARTITIONS_MAX) {
                self.offsets.apply(&group, chunk, self.now_ms())?;
            }
        }
        Ok(changed)
    }

    /// Committed offsets (`None`: nothing committed); empty `partitions` = all.
    pub fn fetch_offsets(
        &self,
        group: &str,
        partitions: &[GroupPartition],
    ) -> Vec<(GroupPartition, Option<u64>, String)> {
        if partitions.is_empty() {
            return self
                .offsets
                .group(group)
                .into_iter()
                .map(|(p, c)| (p, Some(c.offset), c.metadata))
                .collect();
        }
        partitions
            .iter()
            .map(|p| match self.offsets.get(group, p) {
                Some(c) => (p.clone(), Some(c.offset), c.metadata),
                None => (p.clone(), None, String::new()),
            })
            .collect()
    }

    /// Every group with members or committed offsets, sorted by name.
    pub fn list_groups(&self) -> Vec<GroupOverview> {
        let mut names: BTreeSet<String> = self.offsets.groups().into_iter().collect();
        names.extend(self.groups.lock().group_names().map(str::to_owned));
        names
            .iter()
            .filter_map(|name| self.describe_group(name).ok())
            .collect()
    }

    /// Members with their assignments, and committed offsets with each
    /// partition's high watermark (the lag is their difference).
    pub fn describe_group(&self, group: &str) -> Result<GroupOverview, BrokerError> {
        let snapshot = self.groups.lock().snapshot(group);
        let committed = self.offsets.group(group);
        if snapshot.is_none() && committed.is_empty() {
            return Err(BrokerError::UnknownGroup(group.to_owned()));
        }
        let (state, generation, members) = match snapshot {
            Some(s) => (s.state, s.generation, s.members),
            None => ("Empty", 0, Vec::new()),
        };
        let topics = self.topics.read();
        let offsets = committed
            .into_iter()
            .map(|(partition, c)| {
                let high_watermark = topics
                    .get(&partition.topic)
                    .and_then(|t| t.partition(partition.partition).ok())
                    .map_or(0, |p| p.high_watermark());
                (partition, c.offset, high_watermark)
            })
            .collect();
        Ok(GroupOverview {
            group: group.to_owned(),
            state,
            generation,
            members,
            offsets,
        })
    }
}

/// What a commit request would change, and the answer for each of its
/// partitions (in request order).
#[derive(Debug)]
pub struct CheckedCommit {
    /// The accepted partitions' new offsets.
    pub updates: Vec<OffsetUpdate>,
    pub results: Vec<Result<(), BrokerError>>,
}

/// The whole-request checks (group name, size, membership) and then each
/// partition's; a manual commit makes sure the group exists.
fn check_commit(
    groups: &mut GroupCoordinator,
    counts: &impl Fn(&str) -> u32,
    group: &str,
    member_id: &str,
    generation: u32,
    offsets: &[(GroupPartition, u64, String)],
) -> Result<CheckedCommit, BrokerError> {
    validate_group_name(group)?;
    if offsets.len() > COMMIT_PARTITIONS_MAX {
        return Err(BrokerError::InvalidRequest(format!(
            "a commit names at most {COMMIT_PARTITIONS_MAX} partitions"
        )));
    }
    if member_id.is_empty() && generation == 0 {
        groups.ensure_group(group);
    } else {
        groups.check_commit(group, member_id, generation)?;
    }
    let mut checked = CheckedCommit {
        updates: Vec::with_capacity(offsets.len()),
        results: Vec::with_capacity(offsets.len()),
    };
    for (partition, offset, metadata) in offsets {
        let result = check_commit_entry(counts, partition, metadata);
        if result.is_ok() {
            let committed = Committed {
                offset: *offset,
                metadata: metadata.clone(),
            };
            checked.updates.push((partition.clone(), Some(committed)));
        }
        checked.results.push(result);
    }
    Ok(checked)
}

/// One committed partition must exist (user topics only) and carry bounded metadata.
fn check_commit_entry(
    counts: &impl Fn(&str) -> u32,
    partition: &GroupPartition,
    metadata: &str,
) -> Result<(), BrokerError> {
    let partitions = counts(&partition.topic);
    if partitions == 0 {
        return Err(BrokerError::UnknownTopic(partition.topic.clone()));
    }
    if partition.partition >= partitions {
        return Err(BrokerError::UnknownPartition {
            topic: partition.topic.clone(),
            partition: partition.partition,
            partitions,
        });
    }
    if metadata.len() > COMMIT_METADATA_BYTES_MAX {
        return Err(BrokerError::InvalidRequest(format!(
            "commit metadata is limited to {COMMIT_METADATA_BYTES_MAX} bytes"
        )));
    }
    Ok(())
}
