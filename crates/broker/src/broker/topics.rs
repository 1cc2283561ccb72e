//! Topic administration: create, delete, list, describe, and the
//! auto-creation that produce relies on. Name and shape rules come from
//! `names` and `topic`; the files from `data_dir`.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::Broker;
use crate::data_dir::remove_via_tombstone;
use crate::names::{is_internal_topic, validate_topic_name, validate_user_topic_name};
use crate::topic::{Topic, validate_topic_shape};
use crate::{BrokerError, Cleanup, TopicInfo, TopicSettings};

impl Broker {
    pub fn create_topic(
        &self,
        name: &str,
        partitions: u32,
        settings: TopicSettings,
    ) -> Result<TopicInfo, BrokerError> {
        validate_user_topic_name(name)?;
        validate_topic_shape(partitions, &settings)?;
        Ok(self.create_topic_entry(name, partitions, settings)?.info())
    }

    pub fn delete_topic(&self, name: &str) -> Result<(), BrokerError> {
        validate_user_topic_name(name)?;
        let _admin = self.admin.lock();
        let topic = self
            .topics
            .write()
            .remove(name)
            .ok_or_else(|| BrokerError::UnknownTopic(name.to_owned()))?;
        if let (Some(dir), Some(deleting)) = (topic.dir(), self.deleting_dir()) {
            remove_via_tombstone(dir, &deleting)?;
        }
        self.forget_committed_offsets(name)?;
        tracing::info!(topic = name, "topic deleted");
        Ok(())
    }

    /// Every user topic, sorted by name (internal `__` topics excluded).
    pub fn list_topics(&self) -> Vec<TopicInfo> {
        let topics = self.topics.read();
        let sorted: BTreeMap<&str, &Arc<Topic>> = topics
            .iter()
            .filter(|(name, _)| !is_internal_topic(name))
            .map(|(name, topic)| (name.as_str(), topic))
            .collect();
        sorted.values().map(|topic| topic.info()).collect()
    }

    pub fn describe_topic(&self, name: &str) -> Result<TopicInfo, BrokerError> {
        validate_topic_name(name)?;
        Ok(self.topic(name)?.info())
    }

    /// The cleanup policy of an existing topic, cheaply (no partition
    /// scan); `None` when there is no such topic.
    pub fn topic_cleanup(&self, name: &str) -> Option<Cleanup> {
        self.topics
            .read()
            .get(name)
            .map(|topic| topic.settings().cleanup)
    }

    /// The topic a producer writes to, auto-created if allowed.
    pub(super) fn topic_for_produce(&self, name: &str) -> Result<Arc<Topic>, BrokerError> {
        validate_user_topic_name(name)?;
        match self.topic(name) {
            Err(BrokerError::UnknownTopic(_)) if self.config.auto_create_topics => {}
            found => return found,
        }
        let partitions = self.config.default_partitions;
        match self.create_topic_entry(name, partitions, TopicSettings::default()) {
            // Another producer created it first.
            Err(BrokerError::TopicExists(_)) => self.topic(name),
            created => created,
        }
    }

    /// Creates the topic on disk (or in memory) and publishes it in the map.
    fn create_topic_entry(
        &self,
        name: &str,
        partitions: u32,
        settings: TopicSettings,
    ) -> Result<Arc<Topic>, BrokerError> {
        let _admin = self.admin.lock();
        if self.topics.read().contains_key(name) {
            return Err(BrokerError::TopicExists(name.to_owned()));
        }
        let topics_dir = self.topics_dir();
        let topic = Topic::create(
            name,
            partitions,
            settings,
            &self.config.log,
            topics_dir.as_deref(),
            &self.shared,
        )?;
        let topic = Arc::new(topic);
        self.topics.write().insert(name.to_owned(), topic.clone());
        tracing::info!(topic = name, partitions, "topic created");
        Ok(topic)
    }

    /// Deletes every group's committed offsets on a deleted topic, so a
    /// topic re-created under the same name starts without stale offsets.
    fn forget_committed_offsets(&self, topic: &str) -> Result<(), BrokerError> {
        let mut by_group: BTreeMap<String, Vec<_>> = BTreeMap::new();
        for (group, partition) in self.offsets.committed_on_topic(topic) {
            by_group.entry(group).or_default().push((partition, None));
        }
        for (group, updates) in by_group {
            self.offsets.apply(&group, &updates, self.now_ms())?;
        }
        Ok(())
    }
}
