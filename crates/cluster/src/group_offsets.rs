//! Committed consumer-group offsets in the metadata
//! ([`MetadataState::group_offsets`]): applying a
//! [`MetadataCommand::CommitOffsets`] and dropping a deleted topic's
//! offsets. Replicated here so that an acknowledged commit survives the
//! loss of the coordinator (the metadata leader).
//!
//! This module checks input only (group name, limits, that every
//! partition exists); whether the committer is a current member of its
//! group is the coordinator's check, made before it proposes.
//!
//! [`MetadataCommand::CommitOffsets`]: crate::MetadataCommand::CommitOffsets

use std::collections::BTreeMap;

use citystream_broker::names::validate_group_name;
use citystream_broker::offsets::{COMMIT_METADATA_BYTES_MAX, COMMIT_PARTITIONS_MAX};

use crate::command::{Committed, MetadataError, MetadataOutcome, OffsetChange};
use crate::state::MetadataState;

/// One group's committed offsets: topic -> partition -> offset. Nested
/// maps, not a `(topic, partition)` key, because the JSON snapshot needs
/// string or integer keys.
pub type GroupOffsets = BTreeMap<String, BTreeMap<u32, Committed>>;

impl MetadataState {
    /// The committed offset of one partition of `group`, if any.
    pub fn committed_offset(&self, group: &str, topic: &str, partition: u32) -> Option<&Committed> {
        self.group_offsets.get(group)?.get(topic)?.get(&partition)
    }

    /// Applies a whole commit, or refuses it and changes nothing.
    pub(crate) fn commit_offsets(
        &mut self,
        group: &str,
        offsets: &[OffsetChange],
    ) -> Result<MetadataOutcome, MetadataError> {
        self.check_commit(group, offsets)?;
        for change in offsets {
            self.set_offset(group, change);
        }
        Ok(MetadataOutcome::OffsetsCommitted)
    }

    /// Drops every group's offsets on `topic` (deleted), so a topic
    /// re-created under the same name starts without stale offsets.
    pub(crate) fn forget_topic_offsets(&mut self, topic: &str) {
        for offsets in self.group_offsets.values_mut() {
            offsets.remove(topic);
        }
        self.group_offsets.retain(|_, offsets| !offsets.is_empty());
    }

    fn check_commit(&self, group: &str, offsets: &[OffsetChange]) -> Result<(), MetadataError> {
        validate_group_name(group).map_err(|e| MetadataError::InvalidGroup(e.to_string()))?;
        if offsets.is_empty() || offsets.len() > COMMIT_PARTITIONS_MAX {
            return Err(MetadataError::InvalidOffsets(format!(
                "a commit names 1-{COMMIT_PARTITIONS_MAX} partitions, not {}",
                offsets.len()
            )));
        }
        for change in offsets {
            let meta = self
                .topics
                .get(&change.topic)
                .ok_or_else(|| MetadataError::UnknownTopic(change.topic.clone()))?;
            let partitions = u32::try_from(meta.partitions.len()).unwrap_or(u32::MAX);
            if change.partition >= partitions {
                return Err(MetadataError::UnknownPartition {
                    topic: change.topic.clone(),
                    partition: change.partition,
                    partitions,
                });
            }
            if let Some(committed) = &change.committed
                && committed.metadata.len() > COMMIT_METADATA_BYTES_MAX
            {
                return Err(MetadataError::InvalidOffsets(format!(
                    "commit metadata is limited to {COMMIT_METADATA_BYTES_MAX} bytes"
                )));
            }
        }
        Ok(())
    }

    fn set_offset(&mut self, group: &str, change: &OffsetChange) {
        match &change.committed {
            Some(committed) => {
                self.group_offsets
                    .entry(group.to_owned())
                    .or_default()
                    .entry(change.topic.clone())
                    .or_default()
                    .insert(change.partition, committed.clone());
            }
            None => {
                let Some(offsets) = self.group_offsets.get_mut(group) else {
                    return;
                };
                if let Some(partitions) = offsets.get_mut(&change.topic) {
                    partitions.remove(&change.partition);
                    if partitions.is_empty() {
                        offsets.remove(&change.topic);
                    }
                }
                if offsets.is_empty() {
                    self.group_offsets.remove(group);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{BrokerAddresses, MetadataCommand};
    use crate::state::TopicConfig;

    /// A state with one broker and the topics `a` (2 partitions) and `b` (1).
    fn state_with_topics() -> MetadataState {
        let mut state = MetadataState::default();
        let addresses = BrokerAddresses {
            native: "n1:9092".into(),
            gossip: "n1:7946".into(),
            peer: "n1:9092".into(),
        };
        let register = MetadataCommand::RegisterBroker {
            node_id: 1,
            addresses,
            rack: None,
        };
        state.apply(&register).unwrap();
        for (name, partitions) in [("a", 2), ("b", 1)] {
            let create = state
                .plan_create_topic(name, partitions, 1, TopicConfig::default())
                .unwrap();
            state.apply(&create).unwrap();
        }
        state
    }

    fn change(topic: &str, partition: u32, offset: Option<u64>) -> OffsetChange {
        OffsetChange {
            topic: topic.into(),
            partition,
            committed: offset.map(|offset| Committed {
                offset,
                metadata: format!("at {offset}"),
            }),
        }
    }

    fn commit(group: &str, offsets: Vec<OffsetChange>) -> MetadataCommand {
        MetadataCommand::CommitOffsets {
            group: group.into(),
            offsets,
        }
    }

    fn offset_of(state: &MetadataState, group: &str, topic: &str, partition: u32) -> Option<u64> {
        state
            .committed_offset(group, topic, partition)
            .map(|c| c.offset)
    }

    /// A commit sets offsets, a later one overwrites, and `None` deletes
    /// (an emptied group disappears).
    #[test]
    fn commit_sets_overwrites_and_deletes() {
        let mut state = state_with_topics();
        let first = commit("g", vec![change("a", 0, Some(5)), change("a", 1, Some(9))]);
        assert_eq!(state.apply(&first), Ok(MetadataOutcome::OffsetsCommitted));
        state
            .apply(&commit("g", vec![change("a", 0, Some(7))]))
            .unwrap();
        assert_eq!(offset_of(&state, "g", "a", 0), Some(7));
        assert_eq!(offset_of(&state, "g", "a", 1), Some(9));
        assert_eq!(
            state.committed_offset("g", "a", 1).unwrap().metadata,
            "at 9"
        );
        state
            .apply(&commit(
                "g",
                vec![change("a", 0, None), change("a", 1, None)],
            ))
            .unwrap();
        assert!(state.group_offsets.is_empty(), "{:?}", state.group_offsets);
    }

    /// Bad input is refused whole: nothing of the command is applied.
    #[test]
    fn bad_commits_are_refused_and_change_nothing() {
        let mut state = state_with_topics();
        state
            .apply(&commit("g", vec![change("a", 0, Some(1))]))
            .unwrap();
        let before = state.clone();
        let long_metadata = OffsetChange {
            committed: Some(Committed {
                offset: 3,
                metadata: "m".repeat(COMMIT_METADATA_BYTES_MAX + 1),
            }),
            ..change("a", 0, None)
        };
        let too_many = (0..=COMMIT_PARTITIONS_MAX)
            .map(|_| change("a", 0, Some(2)))
            .collect();
        let refused = [
            commit("", vec![change("a", 0, Some(2))]),
            commit(&"g".repeat(300), vec![change("a", 0, Some(2))]),
            commit("g", vec![]),
            commit("g", too_many),
            commit(
                "g",
                vec![change("a", 0, Some(2)), change("missing", 0, Some(2))],
            ),
            commit("g", vec![change("a", 0, Some(2)), change("a", 2, Some(2))]),
            commit("g", vec![change("a", 0, Some(2)), long_metadata]),
        ];
        for command in &refused {
            assert!(state.apply(command).is_err(), "accepted a bad commit");
            assert_eq!(state, before, "a refused commit changed the state");
        }
    }

    /// Deleting a topic drops every group's offsets on it, and only those.
    #[test]
    fn deleting_a_topic_drops_its_offsets() {
        let mut state = state_with_topics();
        state
            .apply(&commit(
                "g",
                vec![change("a", 0, Some(1)), change("b", 0, Some(2))],
            ))
            .unwrap();
        state
            .apply(&commit("h", vec![change("a", 1, Some(3))]))
            .unwrap();
        state
            .apply(&MetadataCommand::DeleteTopic { name: "a".into() })
            .unwrap();
        assert_eq!(offset_of(&state, "g", "b", 0), Some(2));
        assert_eq!(offset_of(&state, "g", "a", 0), None);
        assert!(!state.group_offsets.contains_key("h"), "emptied group kept");
    }

    /// Committed offsets are part of the snapshot: a state restored from
    /// its bytes has them.
    #[test]
    fn offsets_survive_a_snapshot() {
        let mut state = state_with_topics();
        state
            .apply(&commit(
                "g",
                vec![change("a", 1, Some(11)), change("b", 0, Some(4))],
            ))
            .unwrap();
        let restored = MetadataState::decode(&state.encode()).unwrap();
        assert_eq!(restored, state);
        assert_eq!(offset_of(&restored, "g", "a", 1), Some(11));
    }
}
