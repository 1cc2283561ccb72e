//! Validation of a produced batch before it may touch a log: size limit,
//! full batch validation (CRC and record framing), per-record size limit,
//! no control batches and no compacted or gap batches from producers. Each
//! check has its own error, in this order. Topic and partition checks,
//! idempotence and the append are the facade's and the partition's.
//!
//! The per-record walk is skipped when the whole batch is smaller than the
//! record limit (no record can exceed it then), so the common case walks
//! the records once, inside `RecordBatch::from_bytes`.

use bytes::Bytes;
use citystream_record::{BATCH_HEADER_LEN, RecordBatch, attributes};

use crate::BrokerError;

/// The limits a produced batch must respect.
#[derive(Debug, Clone, Copy)]
pub struct ProduceLimits {
    pub batch_bytes_max: u32,
    pub record_bytes_max: u32,
}

/// Validates one produced batch; nothing has been written when this fails.
pub fn validate_batch(batch: Bytes, limits: ProduceLimits) -> Result<RecordBatch, BrokerError> {
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
    // Tombstones delete a key of a compacted topic (decision 0017 §4);
    // no topic is compacted yet, so one would only read as an empty value.
    if batch.has_tombstones() {
        return Err(BrokerError::InvalidRequest(
            "null values (tombstones) need a compacted topic, and compaction is not offered yet"
                .to_owned(),
        ));
    }
    // Only log compaction makes these (decision 0017 §3); a producer's
    // would enter the log and Raft as if compaction had written it.
    if batch.header().attributes & (attributes::COMPACTED | attributes::GAP) != 0 {
        return Err(BrokerError::InvalidRequest(
            "producers may not send compacted or gap batches (attribute bits 1 and 2)".to_owned(),
        ));
    }
    Ok(batch)
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
        let checked = validate_batch(bytes.clone(), LIMITS).unwrap();
        assert_eq!(checked.bytes(), &bytes);
    }

    /// A batch over the batch limit is refused before it is parsed.
    #[test]
    fn batch_too_large() {
        let big = vec![0u8; 600];
        let err = validate_batch(batch(&[&big, &big]), LIMITS).unwrap_err();
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
        let err = validate_batch(Bytes::from(bytes), LIMITS).unwrap_err();
        assert!(matches!(err, BrokerError::CorruptBatch(_)), "{err}");
    }

    /// Key plus value over the record limit names the offending record.
    #[test]
    fn record_too_large() {
        let big = vec![0u8; 100];
        let err = validate_batch(batch(&[b"ok", &big]), LIMITS).unwrap_err();
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
        let err = validate_batch(builder.finish(), LIMITS).unwrap_err();
        assert!(matches!(err, BrokerError::InvalidRequest(_)), "{err}");
    }

    /// A batch with a null value is refused while no topic is compacted.
    #[test]
    fn tombstones_refused() {
        let mut builder = BatchBuilder::new();
        builder.push_tombstone(1, Some(b"k"), &[]).unwrap();
        let err = validate_batch(builder.finish(), LIMITS).unwrap_err();
        assert!(err.to_string().contains("tombstones"), "{err}");
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
            let err = validate_batch(bytes, LIMITS).unwrap_err();
            assert!(
                err.to_string().contains("compacted or gap batches"),
                "{err}"
            );
        }
    }
}
