//! Validation of a produced batch before it may touch a log: size limit,
//! full batch validation (CRC and record framing), per-record size limit,
//! no control batches, the topic's cleanup rules (decision 0017 §4: null
//! values only on compacted topics, and every record of a compacted topic
//! keyed), and no compacted or gap batches from producers. Each check has
//! its own error, in this order. Topic and partition checks, idempotence
//! and the append are the facade's and the partition's.
//!
//! The per-record walk is skipped when the whole batch is smaller than the
//! record limit (no record can exceed it then), so the common case walks
//! the records once, inside `RecordBatch::from_bytes`.

use bytes::Bytes;
use citystream_record::{BATCH_HEADER_LEN, RecordBatch, attributes};

use crate::{BrokerError, Cleanup};

/// The limits a produced batch must respect.
#[derive(Debug, Clone, Copy)]
pub struct ProduceLimits {
    pub batch_bytes_max: u32,
    pub record_bytes_max: u32,
}

/// Validates one produced batch for a topic whose cleanup policy is
/// `cleanup`; nothing has been written when this fails.
pub fn validate_batch(
    batch: Bytes,
    limits: ProduceLimits,
    cleanup: Cleanup,
) -> Result<RecordBatch, BrokerError> {
    if batch.len() > limits.batch_bytes_max as usize {
        return Err(BrokerError::BatchTooLarge {
            size: batch.len(),
            limit: limits.batch_bytes_max,
        });
    }
    let batch = RecordBatch::from_bytes(batch)?;
    let record_bytes_max = limits.record_bytes_max as usize;
    if batch.bytes().len() - BATCH_HEADER_LEN > record_bytes_max {
        for (index, record) in batch.records().enumerate() {
            // A null value (a tombstone) has no bytes to count.
            let value_len = record.value.map_or(0, <[u8]>::len);
            let size = record.key.map_or(0, <[u8]>::len) + value_len;
            if size > record_bytes_max {
                return Err(BrokerError::RecordTooLarge {
                    index: index as u32,
                    size,
                    limit: limits.record_bytes_max,
                });
            }
        }
    }
    if batch.header().is_control() {
        return Err(BrokerError::InvalidRequest(
            "producers may not send control batches (attribute bit 0)".to_owned(),
        ));
    }
    check_cleanup_rules(&batch, cleanup)?;
    // Only log compaction makes these (decision 0017 §3); a producer's
    // would enter the log and Raft as if compaction had written it.
    if batch.header().attributes & (attributes::COMPACTED | attributes::GAP) != 0 {
        return Err(BrokerError::InvalidRequest(
            "producers may not send compacted or gap batches (attribute bits 1 and 2)".to_owned(),
        ));
    }
    Ok(batch)
}

/// A tombstone deletes a key of a compacted topic; elsewhere it would
/// only read as an empty value. A keyless record is never superseded, so a
/// compacted topic refuses it (as Kafka does) instead of keeping it forever.
fn check_cleanup_rules(batch: &RecordBatch, cleanup: Cleanup) -> Result<(), BrokerError> {
    if !cleanup.compacts() {
        if batch.has_tombstones() {
            return Err(BrokerError::InvalidRequest(format!(
                "null values (tombstones) need a compacted topic (cleanup compact or \
                 compact,delete); this topic's cleanup is {cleanup}"
            )));
        }
        return Ok(());
    }
    match batch.records().position(|record| record.key.is_none()) {
        Some(index) => Err(BrokerError::InvalidRequest(format!(
            "record {index} has no key: every record of a compacted topic (cleanup \
             {cleanup}) needs one"
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use citystream_record::{BatchBuilder, attributes};

    use super::*;

    const LIMITS: ProduceLimits = ProduceLimits {
        batch_bytes_max: 1_000,
        record_bytes_max: 100,
    };

    fn batch(values: &[&[u8]]) -> Bytes {
        let mut builder = BatchBuilder::new();
        for value in values {
            builder.push(0, Some(b"k"), value, &[]).unwrap();
        }
        builder.finish()
    }

    /// A batch within every limit passes and keeps its bytes.
    #[test]
    fn valid_batch_passes() {
        let bytes = batch(&[b"hello", b"world"]);
        let checked = validate_batch(bytes.clone(), LIMITS, Cleanup::Delete).unwrap();
        assert_eq!(checked.bytes(), &bytes);
    }

    /// A batch over the batch limit is refused before it is parsed.
    #[test]
    fn batch_too_large() {
        let big = vec![0u8; 600];
        let err = validate_batch(batch(&[&big, &big]), LIMITS, Cleanup::Delete).unwrap_err();
        assert!(
            matches!(err, BrokerError::BatchTooLarge { limit: 1_000, .. }),
            "{err}"
        );
    }

    /// A flipped byte fails the CRC check as a corrupt batch.
    #[test]
    fn corrupt_batch() {
        let mut bytes = batch(&[b"hello"]).to_vec();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        let err = validate_batch(Bytes::from(bytes), LIMITS, Cleanup::Delete).unwrap_err();
        assert!(matches!(err, BrokerError::CorruptBatch(_)), "{err}");
    }

    /// Key plus value over the record limit names the offending record.
    #[test]
    fn record_too_large() {
        let big = vec![0u8; 100];
        let err = validate_batch(batch(&[b"ok", &big]), LIMITS, Cleanup::Delete).unwrap_err();
        assert!(
            matches!(
                err,
                BrokerError::RecordTooLarge {
                    index: 1,
                    size: 101,
                    limit: 100
                }
            ),
            "{err}"
        );
    }

    /// Control batches are for the broker itself, never from producers.
    #[test]
    fn control_batch_refused() {
        let mut builder = BatchBuilder::new();
        builder.set_attributes(attributes::CONTROL);
        builder.push(0, None, b"x", &[]).unwrap();
        let err = validate_batch(builder.finish(), LIMITS, Cleanup::Delete).unwrap_err();
        assert!(matches!(err, BrokerError::InvalidRequest(_)), "{err}");
    }

    fn tombstone_batch() -> Bytes {
        let mut builder = BatchBuilder::new();
        builder.push(0, Some(b"k"), b"v", &[]).unwrap();
        builder.push_tombstone(1, Some(b"k"), &[]).unwrap();
        builder.finish()
    }

    /// A batch with a null value is refused on a delete topic, with a
    /// message that says which topics take one.
    #[test]
    fn tombstones_refused_on_a_delete_topic() {
        let err = validate_batch(tombstone_batch(), LIMITS, Cleanup::Delete).unwrap_err();
        assert!(matches!(err, BrokerError::InvalidRequest(_)), "{err}");
        assert!(
            err.to_string()
                .contains("null values (tombstones) need a compacted topic"),
            "{err}"
        );
    }

    /// Tombstones pass on both compacted policies.
    #[test]
    fn tombstones_accepted_on_a_compacted_topic() {
        for cleanup in [Cleanup::Compact, Cleanup::CompactDelete] {
            let checked = validate_batch(tombstone_batch(), LIMITS, cleanup).unwrap();
            assert!(checked.has_tombstones());
        }
    }

    /// A keyless record is refused on a compacted topic, named by its
    /// index, and accepted on a delete topic.
    #[test]
    fn keyless_records_refused_on_a_compacted_topic() {
        let mut builder = BatchBuilder::new();
        builder.push(0, Some(b"k"), b"keyed", &[]).unwrap();
        builder.push(0, None, b"keyless", &[]).unwrap();
        let bytes = builder.finish();
        let err = validate_batch(bytes.clone(), LIMITS, Cleanup::Compact).unwrap_err();
        assert!(
            err.to_string()
                .contains("record 1 has no key: every record of a compacted topic"),
            "{err}"
        );
        validate_batch(bytes, LIMITS, Cleanup::Delete).unwrap();
    }

    /// Compacted and gap batches are for log compaction, never from
    /// producers, although they are valid batches.
    #[test]
    fn compacted_and_gap_batches_refused() {
        let batch = RecordBatch::from_bytes(batch(&[b"a", b"b"])).unwrap();
        let compacted = citystream_record::compact_batch(&batch, &[false, true]).unwrap();
        let gap = citystream_record::gap_batch(&[*batch.header()]);
        for bytes in [compacted, gap] {
            RecordBatch::from_bytes(bytes.clone()).expect("a valid batch");
            let err = validate_batch(bytes, LIMITS, Cleanup::Delete).unwrap_err();
            assert!(
                err.to_string().contains("compacted or gap batches"),
                "{err}"
            );
        }
    }
}
