//! Committed consumer-group offsets: an in-memory map, made durable as keyed
//! records appended to the internal single-partition topic
//! `__consumer_offsets` and rebuilt on open by replaying it (last value per
//! key wins; an empty value deletes the key). Membership checks are the
//! coordinator's; this store trusts its caller.
//!
//! ```text
//! key:   0        2          4                 4+g        6+g         6+g+t
//!        +--------+----------+-----------------+----------+-----------+-----------+
//!        |version |group_len |group (UTF-8)    |topic_len |topic      |partition  |
//!        |u16 = 1 |u16       |                 |u16       |(ASCII)    |u32        |
//!        +--------+----------+-----------------+----------+-----------+-----------+
//! value: 0        8          12
//!        +--------+----------+-----------------+
//!        |offset  |meta_len  |metadata (UTF-8) |     (empty value = tombstone)
//!        |u64     |u32       |                 |
//!        +--------+----------+-----------------+
//! ```
//! All integers little-endian. There is no compaction yet, so the topic
//! grows with every commit and replay reads all of it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bytes::Bytes;
use citystream_record::{BatchBuilder, BatchIter, RecordBatch};
use parking_lot::{Mutex, RwLock};

use crate::partition::SCAN_CHUNK_BYTES;
use crate::topic::Topic;
use crate::{BrokerError, GroupPartition};

/// The internal topic holding committed offsets.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";
/// Longest metadata string stored with a committed offset.
pub const COMMIT_METADATA_BYTES_MAX: usize = 4096;
/// Partitions one commit request may name.
pub const COMMIT_PARTITIONS_MAX: usize = 10_000;
const KEY_VERSION: u16 = 1;

/// A committed offset and the consumer's metadata string (also the value
/// the metadata group replicates in cluster mode, hence serde).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Committed {
    pub offset: u64,
    pub metadata: String,
}

/// One change to the store: `None` deletes.
pub type OffsetUpdate = (GroupPartition, Option<Committed>);

type GroupOffsets = BTreeMap<GroupPartition, Committed>;

#[derive(Debug)]
pub struct OffsetStore {
    topic: Arc<Topic>,
    committed: RwLock<HashMap<String, GroupOffsets>>,
    /// Serializes append + map update so the map always equals a replay.
    write_order: Mutex<()>,
}

impl OffsetStore {
    /// Replays `__consumer_offsets` into memory.
    pub fn open(topic: Arc<Topic>) -> Result<OffsetStore, BrokerError> {
        let partition = topic.partition(0)?;
        let mut committed = HashMap::new();
        let mut at = partition.log_extent().0;
        loop {
            let bytes = partition.read_log(at, SCAN_CHUNK_BYTES)?;
            let next = replay_batches(bytes, at, &mut committed)?;
            if next <= at {
                break;
            }
            at = next;
        }
        Ok(OffsetStore {
            topic,
            committed: RwLock::new(committed),
            write_order: Mutex::new(()),
        })
    }

    /// Durably applies `updates` of one group (one batch, one append).
    pub fn apply(
        &self,
        group: &str,
        updates: &[OffsetUpdate],
        now_ms: i64,
    ) -> Result<(), BrokerError> {
        if updates.is_empty() {
            return Ok(());
        }
        let mut builder = BatchBuilder::new();
        for (partition, committed) in updates {
            let key = encode_key(group, partition);
            let value = committed.as_ref().map_or_else(Vec::new, encode_value);
            builder
                .push(now_ms, Some(&key), &value, &[])
                .expect("a commit record always fits a batch");
        }
        let batch = RecordBatch::from_bytes(builder.finish())?;
        let _order = self.write_order.lock();
        self.topic.partition(0)?.append(batch, now_ms)?;
        let mut committed = self.committed.write();
        for (partition, value) in updates {
            apply_update(&mut committed, group, partition.clone(), value.clone());
        }
        Ok(())
    }

    /// The committed offset of one partition, if any.
    pub fn get(&self, group: &str, partition: &GroupPartition) -> Option<Committed> {
        self.committed.read().get(group)?.get(partition).cloned()
    }

    /// Every committed offset of a group, sorted.
    pub fn group(&self, group: &str) -> Vec<(GroupPartition, Committed)> {
        let committed = self.committed.read();
        let Some(offsets) = committed.get(group) else {
            return Vec::new();
        };
        offsets
            .iter()
            .map(|(p, c)| (p.clone(), c.clone()))
            .collect()
    }

    /// Groups that have at least one committed offset.
    pub fn groups(&self) -> Vec<String> {
        self.committed.read().keys().cloned().collect()
    }

    /// Every (group, partition) with a committed offset on `topic`.
    pub fn committed_on_topic(&self, topic: &str) -> Vec<(String, GroupPartition)> {
        let committed = self.committed.read();
        let mut found = Vec::new();
        for (group, offsets) in committed.iter() {
            for partition in offsets.keys().filter(|p| p.topic == topic) {
                found.push((group.clone(), partition.clone()));
            }
        }
        found
    }
}

fn apply_update(
    committed: &mut HashMap<String, GroupOffsets>,
    group: &str,
    partition: GroupPartition,
    value: Option<Committed>,
) {
    match value {
        Some(value) => {
            committed
                .entry(group.to_owned())
                .or_default()
                .insert(partition, value);
        }
        None => {
            if let Some(offsets) = committed.get_mut(group) {
                offsets.remove(&partition);
                if offsets.is_empty() {
                    committed.remove(group);
                }
            }
        }
    }
}

/// Applies the records at or after `from`; returns the offset after the last batch.
fn replay_batches(
    bytes: Bytes,
    from: u64,
    committed: &mut HashMap<String, GroupOffsets>,
) -> Result<u64, BrokerError> {
    let mut next = from;
    for batch in BatchIter::new(bytes) {
        let batch = batch?;
        for record in batch.records().filter(|r| r.offset >= from) {
            let Some(key) = record.key.and_then(decode_key) else {
                tracing::warn!(
                    offset = record.offset,
                    "skipping unreadable offset commit key"
                );
                continue;
            };
            // A null value (a tombstone; nothing writes one here yet) is
            // read as the empty value, which already means "deleted".
            let value = record.value.unwrap_or_default();
            let value = match value.is_empty() {
                true => None,
                false => match decode_value(value) {
                    Some(value) => Some(value),
                    None => {
                        tracing::warn!(offset = record.offset, "skipping unreadable offset commit");
                        continue;
                    }
                },
            };
            apply_update(committed, &key.0, key.1, value);
        }
        next = batch.header().next_offset();
    }
    Ok(next)
}

/// Encodes the key of a commit record (layout in the module doc).
pub fn encode_key(group: &str, partition: &GroupPartition) -> Vec<u8> {
    let (group, topic) = (group.as_bytes(), partition.topic.as_bytes());
    let mut key = Vec::with_capacity(2 + 2 + group.len() + 2 + topic.len() + 4);
    key.extend_from_slice(&KEY_VERSION.to_le_bytes());
    key.extend_from_slice(&(group.len() as u16).to_le_bytes());
    key.extend_from_slice(group);
    key.extend_from_slice(&(topic.len() as u16).to_le_bytes());
    key.extend_from_slice(topic);
    key.extend_from_slice(&partition.partition.to_le_bytes());
    key
}

/// Decodes a key; `None` if malformed or of an unknown version.
pub fn decode_key(bytes: &[u8]) -> Option<(String, GroupPartition)> {
    let mut reader = Reader(bytes);
    if reader.u16()? != KEY_VERSION {
        return None;
    }
    let group_len = usize::from(reader.u16()?);
    let group = std::str::from_utf8(reader.take(group_len)?)
        .ok()?
        .to_owned();
    let topic_len = usize::from(reader.u16()?);
    let topic = std::str::from_utf8(reader.take(topic_len)?)
        .ok()?
        .to_owned();
    let partition = reader.u32()?;
    reader
        .0
        .is_empty()
        .then_some((group, GroupPartition { topic, partition }))
}

/// Encodes a commit value (layout in the module doc).
pub fn encode_value(committed: &Committed) -> Vec<u8> {
    let metadata = committed.metadata.as_bytes();
    let mut value = Vec::with_capacity(12 + metadata.len());
    value.extend_from_slice(&committed.offset.to_le_bytes());
    value.extend_from_slice(&(metadata.len() as u32).to_le_bytes());
    value.extend_from_slice(metadata);
    value
}

/// Decodes a non-empty value; `None` if malformed.
pub fn decode_value(bytes: &[u8]) -> Option<Committed> {
    let mut reader = Reader(bytes);
    let offset = reader.u64()?;
    let len = reader.u32()? as usize;
    let metadata = std::str::from_utf8(reader.take(len)?).ok()?.to_owned();
    reader
        .0
        .is_empty()
        .then_some(Committed { offset, metadata })
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }

    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.take(2)?.try_into().ok()?))
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gp(topic: &str, partition: u32) -> GroupPartition {
        GroupPartition {
            topic: topic.to_owned(),
            partition,
        }
    }

    /// The key layout is exactly the documented bytes.
    #[test]
    fn key_exact_bytes() {
        let key = encode_key("g", &gp("ab", 7));
        assert_eq!(key, [1, 0, 1, 0, b'g', 2, 0, b'a', b'b', 7, 0, 0, 0]);
        assert_eq!(decode_key(&key), Some(("g".to_owned(), gp("ab", 7))));
    }

    /// The value layout is exactly the documented bytes.
    #[test]
    fn value_exact_bytes() {
        let committed = Committed {
            offset: 258,
            metadata: "m".to_owned(),
        };
        let value = encode_value(&committed);
        assert_eq!(value, [2, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, b'm']);
        assert_eq!(decode_value(&value), Some(committed));
    }

    /// Every truncation (and any trailing byte) of a key or value is refused.
    #[test]
    fn truncated_and_trailing_refused() {
        let key = encode_key("group", &gp("topic", 1));
        let value = encode_value(&Committed {
            offset: 1,
            metadata: "meta".to_owned(),
        });
        for len in 0..key.len() {
            assert_eq!(decode_key(&key[..len]), None, "key len {len}");
        }
        for len in 0..value.len() {
            assert_eq!(decode_value(&value[..len]), None, "value len {len}");
        }
        let mut long = key.clone();
        long.push(0);
        assert_eq!(decode_key(&long), None);
        let mut wrong_version = key;
        wrong_version[0] = 2;
        assert_eq!(decode_key(&wrong_version), None);
    }
}
