//! The webhook registrations as folded from the `citystream.webhooks` topic
//! (pure; one partition, kept forever).
//! Each record is a small JSON object, readable with `citystream consume`:
//!
//! | record | meaning |
//! |---|---|
//! | `{"op":"create","topic":T,"url":U,"key":F,"body":"record","start":[o0,o1,..]}` | webhook *id* (the record's offset) POSTs T's records from offsets `start` on |
//! | `{"op":"delete","id":N}` | webhook N is removed |
//!
//! An id is the offset of its creation record: unique without a counter,
//! so two nodes registering at once never get the same id. Every node
//! folds the same committed records in the same order, so every node knows
//! the same webhooks. A record that is not valid JSON of this shape
//! (written by something else) is skipped, the same way on every node.

use std::collections::BTreeMap;

use citystream_client::ConsumerRecord;
use citystream_client::tail::Fold;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The topic holding the registrations (one partition, no retention). Not
/// in the broker's `__` namespace: that one is closed to clients, and the
/// registry is written through the node's client like any topic.
pub const WEBHOOKS_TOPIC: &str = "citystream.webhooks";

/// What a webhook POSTs for each record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BodyFormat {
    /// The record as the read API shows it (topic, partition, offset, key,
    /// value, headers, timestamp), as JSON.
    #[default]
    Record,
    /// The record's value bytes as they are (`Content-Type` from the
    /// record's `content-type` header, else `application/json`).
    Value,
}

/// One record of the registry topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum RegistryRecord {
    Create {
        topic: String,
        url: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
        #[serde(default)]
        body: BodyFormat,
        /// Per partition, the first offset to deliver.
        start: Vec<u64>,
    },
    Delete {
        id: u64,
    },
}

impl RegistryRecord {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("registry records always serialize")
    }
}

/// A registered webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub id: u64,
    pub topic: String,
    pub url: String,
    /// Only records whose key matches (prefix or MQTT-style wildcard).
    pub key_filter: Option<String>,
    pub body: BodyFormat,
    /// Per partition, the first offset to deliver (partitions beyond the
    /// list, added later, start at 0).
    pub start: Vec<u64>,
    /// When it was registered (the registry record's timestamp).
    pub created_ms: i64,
}

impl Webhook {
    /// The consumer group whose committed offsets are its positions.
    pub fn group(&self) -> String {
        group_of(self.id)
    }

    /// Where delivery of `partition` starts when nothing was committed.
    pub fn start_of(&self, partition: u32) -> u64 {
        self.start.get(partition as usize).copied().unwrap_or(0)
    }
}

/// The consumer group of webhook `id`.
pub fn group_of(id: u64) -> String {
    format!("__webhook.{id}")
}

/// Every webhook, by id.
#[derive(Debug, Default, Clone)]
pub struct Registry {
    hooks: BTreeMap<u64, Webhook>,
}

impl Registry {
    pub fn get(&self, id: u64) -> Option<&Webhook> {
        self.hooks.get(&id)
    }

    /// Every webhook, by id.
    pub fn all(&self) -> impl Iterator<Item = &Webhook> {
        self.hooks.values()
    }
}

impl Fold for Registry {
    fn apply(&mut self, record: &ConsumerRecord) {
        let Ok(entry) = serde_json::from_slice::<RegistryRecord>(&record.value) else {
            return;
        };
        match entry {
            RegistryRecord::Create {
                topic,
                url,
                key,
                body,
                start,
            } => {
                let id = record.offset;
                self.hooks.insert(
                    id,
                    Webhook {
                        id,
                        topic,
                        url,
                        key_filter: key,
                        body,
                        start,
                        created_ms: record.timestamp_ms,
                    },
                );
            }
            RegistryRecord::Delete { id } => {
                self.hooks.remove(&id);
            }
        }
    }
}

/// Checks a webhook URL: absolute, `http` or `https`, with a host, and no
/// user name or password (they would be shown by the API).
pub fn check_url(text: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(text).map_err(|error| format!("{text:?} is not a URL: {error}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "{text:?} is not an http:// or https:// URL (scheme {:?})",
            url.scheme()
        ));
    }
    // The URL standard forgives `http:///x` (host `x`): we do not.
    let authority = text.split_once("://").map_or("", |(_, rest)| {
        rest.split(['/', '\\', '?', '#']).next().unwrap_or("")
    });
    if authority.is_empty() || url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{text:?} has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "{text:?} carries credentials; webhook URLs are shown by the API, so give none"
        ));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn record(offset: u64, entry: &RegistryRecord) -> ConsumerRecord {
        raw(offset, entry.encode())
    }

    fn raw(offset: u64, value: Vec<u8>) -> ConsumerRecord {
        ConsumerRecord {
            topic: WEBHOOKS_TOPIC.into(),
            partition: 0,
            offset,
            timestamp_ms: 1_000 + offset as i64,
            hlc: 0,
            key: None,
            value: Bytes::from(value),
            headers: Vec::new(),
            tombstone: false,
        }
    }

    fn create(topic: &str, url: &str) -> RegistryRecord {
        RegistryRecord::Create {
            topic: topic.to_owned(),
            url: url.to_owned(),
            key: Some("city/+/air/#".to_owned()),
            body: BodyFormat::Value,
            start: vec![3, 0],
        }
    }

    #[test]
    fn ids_are_creation_offsets_and_deletes_remove() {
        let mut registry = Registry::default();
        registry.apply(&record(4, &create("a", "http://h/1")));
        registry.apply(&raw(5, b"not json".to_vec()));
        registry.apply(&raw(6, br#"{"op":"create","topic":1}"#.to_vec()));
        registry.apply(&record(7, &create("b", "https://h/2")));
        registry.apply(&record(8, &RegistryRecord::Delete { id: 4 }));
        registry.apply(&record(9, &RegistryRecord::Delete { id: 99 }));
        let ids: Vec<u64> = registry.all().map(|hook| hook.id).collect();
        assert_eq!(ids, vec![7]);
        let hook = registry.get(7).unwrap();
        assert_eq!(hook.topic, "b");
        assert_eq!(hook.url, "https://h/2");
        assert_eq!(hook.key_filter.as_deref(), Some("city/+/air/#"));
        assert_eq!(hook.body, BodyFormat::Value);
        assert_eq!(
            (hook.start_of(0), hook.start_of(1), hook.start_of(2)),
            (3, 0, 0)
        );
        assert_eq!(hook.created_ms, 1_007);
        assert_eq!(hook.group(), "__webhook.7");
    }

    #[test]
    fn records_round_trip_and_body_defaults_to_record() {
        let entry = create("t", "http://x");
        let decoded: RegistryRecord = serde_json::from_slice(&entry.encode()).unwrap();
        assert_eq!(decoded, entry);
        let bare: RegistryRecord =
            serde_json::from_str(r#"{"op":"create","topic":"t","url":"http://x","start":[]}"#)
                .unwrap();
        let RegistryRecord::Create { body, key, .. } = bare else {
            panic!("a create record");
        };
        assert_eq!((body, key), (BodyFormat::Record, None));
    }

    #[test]
    fn only_http_and_https_urls_with_a_host_are_taken() {
        for good in [
            "http://127.0.0.1:8080/hook",
            "https://example.com/a?b=c",
            "http://[::1]:9/x",
        ] {
            assert!(check_url(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "example.com/hook",
            "ftp://example.com/x",
            "file:///etc/passwd",
            "http://",
            "http:///path",
            "javascript:alert(1)",
            "http://user:secret@example.com/",
            "http://exa mple.com/",
        ] {
            assert!(check_url(bad).is_err(), "{bad:?} was taken");
        }
    }
}
