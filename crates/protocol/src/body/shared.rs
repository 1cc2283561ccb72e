//! Wire layouts of the pieces several apis share: topic-partition pairs,
//! node references, per-partition status, topic config, and the u8-tagged
//! enums. Layouts are drawn in `docs/protocol.md`.

use crate::wire::{Decode, DecodeError, Encode, Reader, Writer, wire_struct};
use crate::{Acks, NodeRef, OffsetSpec, PartitionStatus, StartFrom, TopicConfig, TopicPartition};

wire_struct!(TopicPartition { topic, partition });
wire_struct!(NodeRef { node_id, address });
wire_struct!(TopicConfig {
    replication,
    retention_ms,
    retention_bytes,
    segment_bytes,
});

/// `error u16 | message string | leader_hint Option<NodeRef>`. Written by
/// hand because the message is cut to fit, never refused.
impl Encode for PartitionStatus {
    fn encode(&self, w: &mut Writer<'_>) {
        w.put(&self.error);
        w.message(&self.message);
        w.put(&self.leader_hint);
    }
}

impl Decode for PartitionStatus {
    const WIRE_BYTES_MIN: usize = 2 + 2 + 1;

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(PartitionStatus {
            error: r.read("error")?,
            message: r.read("message")?,
            leader_hint: r.read("leader_hint")?,
        })
    }
}

impl Encode for Acks {
    fn encode(&self, w: &mut Writer<'_>) {
        w.u8(*self as u8);
    }
}

impl Decode for Acks {
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        match r.tag()? {
            0 => Ok(Acks::None),
            1 => Ok(Acks::Leader),
            2 => Ok(Acks::Quorum),
            tag => Err(DecodeError::bad_tag(tag)),
        }
    }
}

impl Encode for StartFrom {
    fn encode(&self, w: &mut Writer<'_>) {
        w.u8(*self as u8);
    }
}

impl Decode for StartFrom {
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        match r.tag()? {
            0 => Ok(StartFrom::Latest),
            1 => Ok(StartFrom::Earliest),
            tag => Err(DecodeError::bad_tag(tag)),
        }
    }
}

const OFFSET_SPEC_EARLIEST: u8 = 0;
const OFFSET_SPEC_LATEST: u8 = 1;
const OFFSET_SPEC_TIMESTAMP: u8 = 2;

/// `tag u8` (0 Earliest, 1 Latest, 2 Timestamp) `| timestamp_ms i64` (tag 2 only).
impl Encode for OffsetSpec {
    fn encode(&self, w: &mut Writer<'_>) {
        match self {
            OffsetSpec::Earliest => w.u8(OFFSET_SPEC_EARLIEST),
            OffsetSpec::Latest => w.u8(OFFSET_SPEC_LATEST),
            OffsetSpec::Timestamp(timestamp_ms) => {
                w.u8(OFFSET_SPEC_TIMESTAMP);
                w.i64(*timestamp_ms);
            }
        }
    }
}

impl Decode for OffsetSpec {
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        match r.tag()? {
            OFFSET_SPEC_EARLIEST => Ok(OffsetSpec::Earliest),
            OFFSET_SPEC_LATEST => Ok(OffsetSpec::Latest),
            OFFSET_SPEC_TIMESTAMP => r.read("timestamp_ms").map(OffsetSpec::Timestamp),
            tag => Err(DecodeError::bad_tag(tag)),
        }
    }
}
