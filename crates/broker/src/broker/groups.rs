//! Consumer-group requests: membership goes to the coordinator (with the
//! current partition counts), committed offsets to the offsets store after
//! the coordinator has vouched for the committer.

use std::collections::BTreeSet;

use super::Broker;
use crate::group::GroupPartition;
use crate::names::validate_group_name;
use crate::offsets::{COMMIT_METADATA_BYTES_MAX, Committed, OffsetUpdate};
use crate::{BrokerError, GroupOverview, JoinRequest, JoinTicket};

/// Partitions one commit request may name.
pub const COMMIT_PARTITIONS_MAX: usize = 10_000;

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
        validate_group_name(group)?;
        if offsets.len() > COMMIT_PARTITIONS_MAX {
            return Err(BrokerError::InvalidRequest(format!(
                "a commit names at most {COMMIT_PARTITIONS_MAX} partitions"
            )));
        }
        let topics = self.topics.read();
        let counts = self.partition_counter(&topics);
        // Held until the commit is written, so a concurrent rebalance
        // cannot turn this member into a zombie halfway through.
        let mut groups = self.groups.lock();
        if member_id.is_empty() && generation == 0 {
            groups.ensure_group(group);
        } else {
            groups.check_commit(group, member_id, generation)?;
        }
        let mut results = Vec::with_capacity(offsets.len());
        let mut updates: Vec<OffsetUpdate> = Vec::with_capacity(offsets.len());
        for (partition, offset, metadata) in offsets {
            let checked = check_commit_entry(&counts, partition, metadata);
            if checked.is_ok() {
                let committed = Committed {
                    offset: *offset,
                    metadata: metadata.clone(),
                };
                updates.push((partition.clone(), Some(committed)));
            }
            results.push(checked);
        }
        self.offsets.apply(group, &updates, self.now_ms())?;
        Ok(results)
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
