//! Retained messages (MQTT 3.1.1 §3.3.1.3, 5.0 §3.3.1.3): the newest
//! retained message of each topic name is a record of the **compacted**
//! topic `citystream.mqtt-retained`, keyed by the topic name, with the
//! same headers as the message's record in its stream topic. A retained
//! PUBLISH with an empty payload writes a tombstone, which deletes the
//! name's retained message. Log compaction keeps the newest record per
//! name on every replica (decision 0017), so the topic stays as large as
//! the set of retained names.
//!
//! Every node folds the topic into memory, one [`Tail`] per partition,
//! and catches it up to the partition's high watermark before answering a
//! SUBSCRIBE, so a subscriber on any node receives every retained message
//! acknowledged before, on any node. Memory is one record per retained
//! name, as in Mosquitto.

use std::collections::BTreeMap;

use citystream_client::tail::{Fold, Tail, high_watermark};
use citystream_client::{
    Client, ClientError, ConsumerRecord, ProducerRecord, STARTING_WINDOW, retrying,
    starting_or_retriable,
};
use citystream_mqtt_codec::topic_matches;
use citystream_protocol::{Cleanup, TopicConfig};
use tokio::sync::{Mutex, OnceCell};

use crate::ingest::Ingest;

/// The compacted topic of retained messages.
pub const RETAINED_TOPIC: &str = "citystream.mqtt-retained";

/// The retained messages of the cluster, as this node last read them.
pub struct RetainedStore {
    client: Client,
    partitions: u32,
    folds: OnceCell<Vec<Mutex<Tail<RetainedFold>>>>,
}

/// The newest retained record of each topic name in one partition.
#[derive(Default)]
pub struct RetainedFold {
    by_name: BTreeMap<String, ConsumerRecord>,
}

impl Fold for RetainedFold {
    fn apply(&mut self, record: &ConsumerRecord) {
        let Some(name) = record
            .key
            .as_ref()
            .and_then(|key| std::str::from_utf8(key).ok())
        else {
            return;
        };
        if record.tombstone {
            self.by_name.remove(name);
        } else {
            self.by_name.insert(name.to_owned(), record.clone());
        }
    }
}

impl RetainedStore {
    /// A store whose topic is created, compacted, with `partitions` if it
    /// is missing.
    pub fn new(client: &Client, partitions: u32) -> RetainedStore {
        RetainedStore {
            client: client.clone(),
            partitions: partitions.max(1),
            folds: OnceCell::new(),
        }
    }

    async fn folds(&self, ingest: &Ingest) -> Result<&Vec<Mutex<Tail<RetainedFold>>>, ClientError> {
        self.folds
            .get_or_try_init(|| async {
                let config = TopicConfig {
                    cleanup: Cleanup::Compact,
                    ..TopicConfig::default()
                };
                ingest
                    .ensure_topic_config(RETAINED_TOPIC, self.partitions, config)
                    .await?;
                let count = self
                    .client
                    .partition_count(RETAINED_TOPIC)
                    .await?
                    .unwrap_or(1);
                Ok((0..count)
                    .map(|p| Mutex::new(Tail::new(RETAINED_TOPIC, p, 0, RetainedFold::default())))
                    .collect())
            })
            .await
    }

    /// The retained messages whose topic names match `filter`, as of now
    /// (every one acknowledged before the call), in name order.
    pub async fn matching(
        &self,
        ingest: &Ingest,
        filter: &str,
    ) -> Result<Vec<ConsumerRecord>, ClientError> {
        let folds = self.folds(ingest).await?;
        let mut matched = Vec::new();
        for (partition, fold) in folds.iter().enumerate() {
            let mut tail = fold.lock().await;
            // The topic exists (`folds` made sure), but a partition's
            // replica may still be starting on its leader: UNKNOWN_TOPIC
            // then, for a moment, on a cluster's first subscription.
            let end = retrying(STARTING_WINDOW, starting_or_retriable, || {
                high_watermark(&self.client, RETAINED_TOPIC, partition as u32)
            })
            .await?;
            tail.catch_up(&self.client, end).await?;
            matched.extend(
                tail.state()
                    .by_name
                    .iter()
                    .filter(|(name, _)| topic_matches(filter, name))
                    .map(|(_, record)| record.clone()),
            );
        }
        matched.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(matched)
    }

    /// The record that makes `record` (a retained message's record in its
    /// stream topic, keyed by its topic name) the retained message of its
    /// name, or deletes the name's retained message if the payload is
    /// empty. The topic is created on first use.
    pub async fn record_for(
        &self,
        ingest: &Ingest,
        record: &ProducerRecord,
    ) -> Result<ProducerRecord, ClientError> {
        self.folds(ingest).await?;
        Ok(retained_record(record))
    }
}

/// [`RetainedStore::record_for`] without the topic check.
fn retained_record(record: &ProducerRecord) -> ProducerRecord {
    let key = record.key.clone().unwrap_or_default();
    let mut retained = if record.value.is_empty() {
        ProducerRecord::tombstone(RETAINED_TOPIC, key)
    } else {
        ProducerRecord::new(RETAINED_TOPIC, record.value.clone()).with_key(key)
    };
    retained.headers = record.headers.clone();
    retained.timestamp_ms = record.timestamp_ms;
    retained
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn consumed(offset: u64, name: &str, value: &'static [u8], tombstone: bool) -> ConsumerRecord {
        ConsumerRecord {
            topic: RETAINED_TOPIC.into(),
            partition: 0,
            offset,
            timestamp_ms: 0,
            hlc: 0,
            key: Some(Bytes::from(name.to_owned())),
            value: Bytes::from_static(value),
            headers: Vec::new(),
            tombstone,
        }
    }

    /// The newest record of a name wins; a tombstone deletes the name.
    #[test]
    fn the_fold_keeps_the_newest_message_per_name() {
        let mut fold = RetainedFold::default();
        fold.apply(&consumed(0, "city/a/temp", b"1", false));
        fold.apply(&consumed(1, "city/b/temp", b"2", false));
        fold.apply(&consumed(2, "city/a/temp", b"3", false));
        fold.apply(&consumed(3, "city/b/temp", b"", true));
        let kept: Vec<(&str, &[u8])> = fold
            .by_name
            .iter()
            .map(|(name, record)| (name.as_str(), record.value.as_ref()))
            .collect();
        assert_eq!(kept, vec![("city/a/temp", &b"3"[..])]);
    }

    /// A retained message keeps its key and headers; an empty payload
    /// becomes a tombstone of the name.
    #[test]
    fn an_empty_payload_is_a_tombstone() {
        let mut record =
            ProducerRecord::new("mqtt.city", Bytes::from_static(b"21.5")).with_key("city/a/temp");
        record
            .headers
            .push(("$mqtt.retain".to_owned(), Bytes::from_static(b"1")));
        let retained = retained_record(&record);
        assert_eq!(retained.topic, RETAINED_TOPIC);
        assert_eq!(retained.key.as_deref(), Some(&b"city/a/temp"[..]));
        assert!(!retained.tombstone);
        assert_eq!(retained.headers, record.headers);

        record.value = Bytes::new();
        let deleted = retained_record(&record);
        assert!(deleted.tombstone);
        assert_eq!(deleted.key.as_deref(), Some(&b"city/a/temp"[..]));
    }
}
