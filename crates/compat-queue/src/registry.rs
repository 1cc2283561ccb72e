//! The registries as folded from their topics (pure): which queue topics
//! exist and in which order ([`TopicLog`]), and which producer and consumer
//! ids exist and what each is bound to ([`Registrations`]). The records
//! are small JSON objects, readable with `citystream consume`:
//!
//! | topic | record | meaning |
//! |---|---|---|
//! | `compat-queue.topics` | `{"topic":"T"}` | queue topic T exists; its index is its place among the first records of each name |
//! | `compat-queue.producers` | `{"topic":"T"}` | producer id N (its place among the records) writes to T |
//! | `compat-queue.consumers` | `{"topic":"T","start":S}` | consumer id N reads T's messages at offsets S and after |
//!
//! An id or index is a record's place among the registry's valid records,
//! not its offset: in cluster mode Raft's blank and membership entries take
//! offsets (readers skip them), and ids must be dense from 0. A record that
//! is not valid JSON of its shape (written by something else) is skipped,
//! the same way on every node.

use std::collections::HashMap;
use std::sync::Arc;

use citystream_client::ConsumerRecord;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use citystream_client::tail::Fold;

/// The record of a queue topic's creation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicCreation {
    pub topic: String,
}

/// The record of a producer's registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducerRegistration {
    pub topic: String,
}

/// The record of a consumer's registration: its topic, and the topic's
/// high watermark when it registered (it gets the messages from there on).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerRegistration {
    pub topic: String,
    pub start: u64,
}

/// The JSON bytes of a registry record.
pub fn encode<R: Serialize>(record: &R) -> Vec<u8> {
    serde_json::to_vec(record).expect("registry records always serialize")
}

/// A queue topic: its index (its native topic's name) and the offset of
/// the record that created it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicEntry {
    pub index: u64,
    pub offset: u64,
}

/// The queue topics, in creation order. A second record for a name
/// (two creations racing) changes nothing: the first one created it.
#[derive(Debug, Default)]
pub struct TopicLog {
    names: Vec<Arc<str>>,
    by_name: HashMap<Arc<str>, TopicEntry>,
}

impl TopicLog {
    pub fn get(&self, name: &str) -> Option<TopicEntry> {
        self.by_name.get(name).copied()
    }

    /// Every topic name, in creation order.
    pub fn names(&self) -> &[Arc<str>] {
        &self.names
    }

    fn insert(&mut self, offset: u64, creation: TopicCreation) {
        let name: Arc<str> = creation.topic.into();
        if self.by_name.contains_key(&name) {
            return;
        }
        let index = self.names.len() as u64;
        self.by_name
            .insert(name.clone(), TopicEntry { index, offset });
        self.names.push(name);
    }
}

impl Fold for TopicLog {
    fn apply(&mut self, record: &ConsumerRecord) {
        if let Some(creation) = decode::<TopicCreation>(record) {
            self.insert(record.offset, creation);
        }
    }
}

/// Registrations of one kind; an id is an index into it.
#[derive(Debug)]
pub struct Registrations<R> {
    /// `(offset of the record, registration)`, in offset order.
    entries: Vec<(u64, R)>,
}

impl<R> Default for Registrations<R> {
    fn default() -> Self {
        Registrations {
            entries: Vec::new(),
        }
    }
}

impl<R: DeserializeOwned> Registrations<R> {
    pub fn get(&self, id: u64) -> Option<&R> {
        let index = usize::try_from(id).ok()?;
        self.entries
            .get(index)
            .map(|(_, registration)| registration)
    }

    /// The id of the registration recorded at `offset`, if one is.
    pub fn id_at(&self, offset: u64) -> Option<u64> {
        let index = self
            .entries
            .binary_search_by_key(&offset, |(at, _)| *at)
            .ok()?;
        Some(index as u64)
    }

    fn push(&mut self, offset: u64, registration: R) {
        if self.entries.last().is_some_and(|(last, _)| *last >= offset) {
            return; // a re-read record
        }
        self.entries.push((offset, registration));
    }
}

impl<R: DeserializeOwned> Fold for Registrations<R> {
    fn apply(&mut self, record: &ConsumerRecord) {
        if let Some(registration) = decode::<R>(record) {
            self.push(record.offset, registration);
        }
    }
}

fn decode<R: DeserializeOwned>(record: &ConsumerRecord) -> Option<R> {
    match serde_json::from_slice(&record.value) {
        Ok(decoded) => Some(decoded),
        Err(error) => {
            tracing::warn!(topic = %record.topic, offset = record.offset, %error, "skipping a record that is not a registration");
            None
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use bytes::Bytes;

    pub(crate) fn record(offset: u64, value: &[u8]) -> ConsumerRecord {
        ConsumerRecord {
            topic: "compat-queue.test".into(),
            partition: 0,
            offset,
            timestamp_ms: 0,
            hlc: 0,
            key: None,
            value: Bytes::copy_from_slice(value),
            headers: Vec::new(),
            tombstone: false,
        }
    }

    fn creation(name: &str) -> Vec<u8> {
        encode(&TopicCreation {
            topic: name.to_owned(),
        })
    }

    /// Topics are indexed in the order of their first record; a second
    /// record of a name and a foreign record take no index.
    #[test]
    fn topic_order_is_the_first_record_of_each_name() {
        let mut topics = TopicLog::default();
        topics.apply(&record(0, &creation("b")));
        topics.apply(&record(2, b"not json"));
        topics.apply(&record(3, &creation("a")));
        topics.apply(&record(4, &creation("b")));
        topics.apply(&record(5, &creation("")));
        let names: Vec<&str> = topics.names().iter().map(|n| &**n).collect();
        assert_eq!(names, ["b", "a", ""]);
        assert_eq!(
            topics.get("b"),
            Some(TopicEntry {
                index: 0,
                offset: 0
            })
        );
        assert_eq!(
            topics.get("a"),
            Some(TopicEntry {
                index: 1,
                offset: 3
            })
        );
        assert_eq!(topics.get("c"), None);
    }

    /// Ids are dense over valid records whatever offsets they sit at, and a
    /// record's id is found from its offset.
    #[test]
    fn ids_are_dense_over_valid_records() {
        let mut consumers = Registrations::<ConsumerRegistration>::default();
        let registration = |start| {
            encode(&ConsumerRegistration {
                topic: "t".to_owned(),
                start,
            })
        };
        consumers.apply(&record(1, &registration(0)));
        consumers.apply(&record(2, br#"{"topic":"t"}"#)); // no start: not a consumer
        consumers.apply(&record(5, &registration(7)));
        consumers.apply(&record(5, &registration(7))); // read again
        assert_eq!(consumers.id_at(5), Some(1));
        assert_eq!(consumers.id_at(2), None);
        assert_eq!(consumers.get(1).map(|c| c.start), Some(7));
        assert!(consumers.get(2).is_none());
    }

    /// The record bytes are the documented JSON.
    #[test]
    fn records_are_small_json_objects() {
        let consumer = ConsumerRegistration {
            topic: "t\"1".to_owned(),
            start: 3,
        };
        assert_eq!(encode(&consumer), br#"{"topic":"t\"1","start":3}"#);
        assert_eq!(creation("x"), br#"{"topic":"x"}"#);
    }
}
