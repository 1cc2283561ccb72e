//! Per-partition read state of a consumer: the fetch position (next offset
//! to ask for), the consumed position (after the last record handed to the
//! caller; what `commit` writes) and the high watermark of the last answer.
//! It turns a fetch answer's batches into [`ConsumerRecord`]s, skipping
//! control batches and records below the position (a fetch may start with a
//! batch that begins before it). Pure: no I/O, no clock.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use citystream_protocol::TopicPartition;
use citystream_record::{BatchError, BatchIter, RecordBatch};

use crate::{ClientError, ConsumerRecord};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PartitionPosition {
    /// Next offset to fetch.
    pub(crate) fetch: u64,
    /// Offset after the last record returned to the caller.
    pub(crate) consumed: u64,
    /// High watermark as of the last answered fetch; `None` before one.
    pub(crate) high_watermark: Option<u64>,
}

/// Positions of the assigned partitions.
#[derive(Debug, Default)]
pub(crate) struct Positions {
    partitions: BTreeMap<TopicPartition, PartitionPosition>,
}

impl Positions {
    /// Replaces the assignment; every partition starts at `start(tp)`.
    pub(crate) fn assign(&mut self, starts: Vec<(TopicPartition, u64)>) {
        self.partitions = starts
            .into_iter()
            .map(|(tp, offset)| {
                let position = PartitionPosition {
                    fetch: offset,
                    consumed: offset,
                    high_watermark: None,
                };
                (tp, position)
            })
            .collect();
    }

    pub(crate) fn assignment(&self) -> Vec<TopicPartition> {
        self.partitions.keys().cloned().collect()
    }

    #[cfg(test)]
    pub(crate) fn get(&self, tp: &TopicPartition) -> Option<&PartitionPosition> {
        self.partitions.get(tp)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&TopicPartition, &PartitionPosition)> {
        self.partitions.iter()
    }

    /// Moves both positions of `tp` (a seek or an out-of-range reset).
    pub(crate) fn seek(&mut self, tp: &TopicPartition, offset: u64) -> Result<(), ClientError> {
        let position = self.partitions.get_mut(tp).ok_or_else(|| {
            ClientError::InvalidArgument(format!(
                "{}/{} is not assigned to this consumer",
                tp.topic, tp.partition
            ))
        })?;
        position.fetch = offset;
        position.consumed = offset;
        Ok(())
    }

    /// True when every assigned partition has been answered at least once
    /// and read up to its high watermark.
    pub(crate) fn at_end(&self) -> bool {
        self.partitions
            .values()
            .all(|p| p.high_watermark.is_some_and(|hw| p.fetch >= hw))
    }

    /// Applies one partition's fetch answer: records at or above the fetch
    /// position are appended to `out` and the position moves past them (and
    /// past control batches). A trailing partial batch is left for the next
    /// fetch. Answers for partitions no longer assigned are ignored.
    pub(crate) fn apply_fetch(
        &mut self,
        tp: &TopicPartition,
        high_watermark: u64,
        records: Bytes,
        out: &mut Vec<ConsumerRecord>,
    ) -> Result<(), ClientError> {
        let Some(position) = self.partitions.get_mut(tp) else {
            return Ok(());
        };
        position.high_watermark = Some(high_watermark);
        // Shared by every record of the fetch.
        let topic: Arc<str> = Arc::from(tp.topic.as_str());
        for batch in BatchIter::new(records) {
            let batch = match batch {
                Ok(batch) => batch,
                Err(BatchError::Truncated { .. }) => break,
                Err(error) => {
                    return Err(ClientError::Protocol(format!(
                        "corrupt batch in fetch of {}/{} at offset {}: {error}",
                        tp.topic, tp.partition, position.fetch
                    )));
                }
            };
            position.fetch = read_batch((&topic, tp.partition), &batch, position.fetch, out);
        }
        Ok(())
    }

    /// Records the consumed position after each partition's last record in
    /// `records` (which are in offset order per partition).
    pub(crate) fn mark_consumed(&mut self, records: &[ConsumerRecord]) {
        for record in records {
            self.mark_one_consumed(record);
        }
    }

    pub(crate) fn mark_one_consumed(&mut self, record: &ConsumerRecord) {
        let tp = TopicPartition {
            topic: record.topic.to_string(),
            partition: record.partition,
        };
        if let Some(position) = self.partitions.get_mut(&tp) {
            position.consumed = position.consumed.max(record.offset + 1);
        }
    }

    /// `(partition, consumed)` of every assigned partition, for a commit.
    pub(crate) fn consumed(&self) -> Vec<(TopicPartition, u64)> {
        self.partitions
            .iter()
            .map(|(tp, position)| (tp.clone(), position.consumed))
            .collect()
    }
}

/// Distinct header names of a batch its records share; more are rare (a
/// name per record) and each gets its own.
const SHARED_HEADER_NAMES_MAX: usize = 16;

/// Appends the records of `batch` at or above `from`; returns the new fetch
/// position.
fn read_batch(
    (topic, partition): (&Arc<str>, u32),
    batch: &RecordBatch,
    from: u64,
    out: &mut Vec<ConsumerRecord>,
) -> u64 {
    let header = batch.header();
    let next = header.next_offset().max(from);
    if header.is_control() || header.next_offset() <= from {
        return next;
    }
    let bytes = batch.bytes();
    out.reserve(header.record_count as usize);
    // The batch's first distinct header names, shared by its records.
    let mut names: Vec<Arc<str>> = Vec::new();
    let mut name_of = |name: &str| {
        if let Some(known) = names.iter().find(|known| ***known == *name) {
            return known.clone();
        }
        let new: Arc<str> = Arc::from(name);
        if names.len() < SHARED_HEADER_NAMES_MAX {
            names.push(new.clone());
        }
        new
    };
    for record in batch.records().filter(|record| record.offset >= from) {
        out.push(ConsumerRecord {
            topic: topic.clone(),
            partition,
            offset: record.offset,
            timestamp_ms: record.timestamp_ms,
            hlc: record.hlc,
            key: record.key.map(|key| bytes.slice_ref(key)),
            // A null value (a tombstone) is an empty value and the flag.
            value: record
                .value
                .map_or_else(Bytes::new, |value| bytes.slice_ref(value)),
            tombstone: record.value.is_none(),
            headers: record
                .headers
                .iter()
                .map(|(name, value)| (name_of(name), bytes.slice_ref(value)))
                .collect(),
        });
    }
    next
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use citystream_record::{BatchBuilder, attributes, set_base_hlc, set_base_offset};

    use super::*;

    fn tp() -> TopicPartition {
        TopicPartition {
            topic: "t".to_string(),
            partition: 0,
        }
    }

    /// A batch of `count` records numbered from `base_offset`, values
    /// "v<offset>", HLCs `1000 + offset`.
    fn batch(base_offset: u64, count: u64, control: bool) -> Vec<u8> {
        let mut builder = BatchBuilder::new();
        if control {
            builder.set_attributes(attributes::CONTROL);
        }
        for offset in base_offset..base_offset + count {
            let value = format!("v{offset}");
            builder.push(5, Some(b"k"), value.as_bytes(), &[]).unwrap();
        }
        let mut bytes = builder.finish_vec();
        set_base_offset(&mut bytes, base_offset);
        set_base_hlc(&mut bytes, 1_000 + base_offset);
        bytes
    }

    fn fetch_answer(batches: &[Vec<u8>]) -> Bytes {
        let mut out = BytesMut::new();
        for batch in batches {
            out.extend_from_slice(batch);
        }
        out.freeze()
    }

    fn positions_at(offset: u64) -> Positions {
        let mut positions = Positions::default();
        positions.assign(vec![(tp(), offset)]);
        positions
    }

    /// Records below the position (in a batch starting before it) are
    /// skipped; the rest keep their own HLC (base HLC plus index in batch).
    #[test]
    fn skips_records_below_the_position() {
        let mut positions = positions_at(3);
        let mut out = Vec::new();
        let answer = fetch_answer(&[batch(0, 5, false), batch(5, 2, false)]);
        positions.apply_fetch(&tp(), 7, answer, &mut out).unwrap();
        let offsets: Vec<u64> = out.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, vec![3, 4, 5, 6]);
        let hlcs: Vec<u64> = out.iter().map(|r| r.hlc).collect();
        assert_eq!(hlcs, vec![1_003, 1_004, 1_005, 1_006]);
        assert_eq!(out[0].value, Bytes::from_static(b"v3"));
        assert_eq!(out[0].key, Some(Bytes::from_static(b"k")));
        assert_eq!(positions.get(&tp()).unwrap().fetch, 7);
    }

    /// The records of a batch share their header names: in order, repeats
    /// kept, each distinct name allocated once (past the shared few, each
    /// header gets its own).
    #[test]
    fn header_names_are_shared_within_a_batch() {
        let mut builder = BatchBuilder::new();
        let many: Vec<String> = (0..SHARED_HEADER_NAMES_MAX + 2)
            .map(|i| format!("n{i}"))
            .collect();
        for value in ["a", "b"] {
            let mut headers: Vec<(&str, &[u8])> = vec![("x", b"1"), ("y", b"2"), ("x", b"3")];
            headers.extend(many.iter().map(|name| (name.as_str(), &b""[..])));
            builder.push(5, None, value.as_bytes(), &headers).unwrap();
        }
        let mut bytes = builder.finish_vec();
        set_base_offset(&mut bytes, 0);
        let mut out = Vec::new();
        let answer = fetch_answer(&[bytes]);
        positions_at(0)
            .apply_fetch(&tp(), 2, answer, &mut out)
            .unwrap();
        let (first, second) = (&out[0].headers, &out[1].headers);
        let names: Vec<&str> = first.iter().take(3).map(|(name, _)| &**name).collect();
        assert_eq!(names, ["x", "y", "x"]);
        assert_eq!(first[2].1, Bytes::from_static(b"3"));
        assert_eq!(first.len(), 3 + many.len());
        assert!(Arc::ptr_eq(&first[0].0, &first[2].0), "one x");
        for (index, ((a, _), (b, _))) in first.iter().zip(second).enumerate() {
            assert_eq!(a, b);
            // x, y and the first 14 others are shared; the last n get their own.
            assert_eq!(
                Arc::ptr_eq(a, b),
                index < 3 + SHARED_HEADER_NAMES_MAX - 2,
                "{a}"
            );
        }
    }

    /// Control batches yield no records but the position moves past them.
    #[test]
    fn control_batches_are_skipped() {
        let mut positions = positions_at(0);
        let mut out = Vec::new();
        let answer = fetch_answer(&[batch(0, 2, false), batch(2, 1, true), batch(3, 1, false)]);
        positions.apply_fetch(&tp(), 4, answer, &mut out).unwrap();
        let offsets: Vec<u64> = out.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, vec![0, 1, 3]);
        assert_eq!(positions.get(&tp()).unwrap().fetch, 4);
    }

    /// A trailing partial batch is left for the next fetch.
    #[test]
    fn truncated_tail_is_left_for_later() {
        let mut positions = positions_at(0);
        let mut out = Vec::new();
        let second = batch(2, 2, false);
        let mut answer = BytesMut::from(&batch(0, 2, false)[..]);
        answer.extend_from_slice(&second[..second.len() / 2]);
        positions
            .apply_fetch(&tp(), 4, answer.freeze(), &mut out)
            .unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(positions.get(&tp()).unwrap().fetch, 2);
    }

    /// at_end needs an answer for every partition, then position >= high watermark.
    #[test]
    fn at_end_only_after_an_answer_per_partition() {
        let other = TopicPartition {
            topic: "t".to_string(),
            partition: 1,
        };
        let mut positions = Positions::default();
        positions.assign(vec![(tp(), 0), (other.clone(), 0)]);
        assert!(!positions.at_end());
        let mut out = Vec::new();
        positions
            .apply_fetch(&tp(), 0, Bytes::new(), &mut out)
            .unwrap();
        assert!(!positions.at_end(), "partition 1 was not answered yet");
        positions
            .apply_fetch(&other, 2, fetch_answer(&[batch(0, 2, false)]), &mut out)
            .unwrap();
        assert!(positions.at_end());
        positions
            .apply_fetch(&other, 3, Bytes::new(), &mut out)
            .unwrap();
        assert!(!positions.at_end(), "a new record arrived");
    }

    /// The consumed position follows the records handed out, not the fetch position.
    #[test]
    fn consumed_follows_returned_records() {
        let mut positions = positions_at(0);
        let mut out = Vec::new();
        positions
            .apply_fetch(&tp(), 3, fetch_answer(&[batch(0, 3, false)]), &mut out)
            .unwrap();
        assert_eq!(positions.consumed(), vec![(tp(), 0)]);
        positions.mark_one_consumed(&out[0]);
        assert_eq!(positions.consumed(), vec![(tp(), 1)]);
        positions.mark_consumed(&out);
        assert_eq!(positions.consumed(), vec![(tp(), 3)]);
    }
}
