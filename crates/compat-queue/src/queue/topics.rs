//! Queue topics: create (the first record of a name in
//! `compat-queue.topics` creates it, so two nodes creating one name at once
//! agree on who did), list in creation order, and find one, making sure its
//! native topic exists before it is used.
//!
//! The registry record is written before the native topic is created: a
//! node that dies in between leaves a topic that exists (listed, usable)
//! whose native topic the next use creates, never a native topic that the
//! API does not know.

use std::sync::Arc;

use super::{Queue, lost_record, queue_topic};
use crate::error::QueueError;
use crate::registry::{TopicCreation, TopicEntry, encode};

impl Queue {
    /// Creates queue topic `name`; refused if it exists.
    #[tracing::instrument(skip(self))]
    pub async fn create_topic(&self, name: &str) -> Result<(), QueueError> {
        let exists = || QueueError::refused(format!("Topic:{name} already exist"));
        if self.find_topic(name).await?.is_some() {
            return Err(exists());
        }
        let (entry, offset) = self.record_topic(name).await?;
        if entry.offset != offset {
            return Err(exists()); // another request created it just before
        }
        self.native_topic(entry).await?;
        Ok(())
    }

    /// Every queue topic, in creation order.
    pub async fn list_topics(&self) -> Result<Vec<Arc<str>>, QueueError> {
        self.current(&self.topics, |topics| topics.names().to_vec())
            .await
    }

    /// Queue topic `name`, if it exists.
    pub(super) async fn find_topic(&self, name: &str) -> Result<Option<TopicEntry>, QueueError> {
        self.lookup(&self.topics, |topics| topics.get(name)).await
    }

    /// Queue topic `name`, created if it does not exist yet.
    pub(super) async fn find_or_create_topic(&self, name: &str) -> Result<TopicEntry, QueueError> {
        match self.find_topic(name).await? {
            Some(entry) => Ok(entry),
            None => Ok(self.record_topic(name).await?.0),
        }
    }

    /// The native topic of a queue topic, created if missing.
    pub(super) async fn native_topic(&self, entry: TopicEntry) -> Result<String, QueueError> {
        let native = queue_topic(entry.index);
        self.ensure_topic(&native, 1).await?;
        Ok(native)
    }

    /// Writes a creation record of `name`; returns the topic as the log
    /// decided it (the first record of the name) and this record's offset.
    async fn record_topic(&self, name: &str) -> Result<(TopicEntry, u64), QueueError> {
        let creation = encode(&TopicCreation {
            topic: name.to_owned(),
        });
        let (entry, offset) = self
            .append(&self.topics, creation, |topics, offset| {
                (topics.get(name), offset)
            })
            .await?;
        let entry = entry.ok_or_else(|| lost_record(super::TOPICS_TOPIC, offset))?;
        Ok((entry, offset))
    }
}
