//! [`SendableBatch`]: a batch taken for sending, the unit the sender ships,
//! a lane tracks and a re-send re-numbers. It owns its encoded bytes and
//! its completion cell; it does not decide when it goes (the lane does).

use std::sync::Arc;

use bytes::Bytes;
use tokio::time::Instant;

use super::delivery::BatchCompletion;

/// A batch taken for sending: encoded, with its producer id and sequence
/// (idempotent producers), kept for re-sends.
#[derive(Debug)]
pub(crate) struct SendableBatch {
    pub(crate) topic: Arc<str>,
    pub(crate) partition: u32,
    pub(crate) bytes: Bytes,
    pub(crate) producer_id: Option<u64>,
    /// Sequence of the first record, for an idempotent producer.
    pub(crate) base_sequence: Option<u32>,
    pub(crate) completion: Arc<BatchCompletion>,
    /// Sends that failed retriably so far.
    pub(crate) attempts: u32,
    pub(crate) record_count: u32,
    /// Orders the batches of one partition (sealing order).
    pub(crate) ordinal: u64,
    /// When its first record was appended (the delivery timeout counts from it).
    pub(crate) created_at: Instant,
    /// Why its last attempt failed, if one did.
    pub(crate) last_error: Option<String>,
}

impl SendableBatch {
    /// Gives the batch another producer id or sequence (a lane re-numbering
    /// its re-sends); the bytes are copied only if either changes.
    pub(crate) fn renumber(&mut self, producer_id: u64, base_sequence: u32) {
        if (self.producer_id, self.base_sequence) == (Some(producer_id), Some(base_sequence)) {
            return;
        }
        let mut bytes = self.bytes.to_vec();
        citystream_record::set_producer(&mut bytes, producer_id, base_sequence);
        self.bytes = Bytes::from(bytes);
        self.producer_id = Some(producer_id);
        self.base_sequence = Some(base_sequence);
    }
}
