//! Wire layouts of the pieces several apis share: topic-partition pairs,
//! node references, per-partition status, topic config, and the u8-tagged
//! enums. Layouts are drawn in `docs/protocol.md`.

use crate::wire::{Decode, DecodeError, Encode, Reader, Writer, wire_struct};
use crate::{
    Acks, Cleanup, NodeRef, OffsetSpec, PROTOCOL_VERSION_COMPACTION, PartitionStatus, StartFrom,
    TopicConfig, TopicPartition,
};

wire_struct!(TopicPartition { topic, partition });
wire_struct!(NodeRef { node_id, address });

/// ```text
/// v1: replication u16 | retention_ms u64? | retention_bytes u64? | segment_bytes u64?
/// v2: v1 | cleanup u8 | compaction_lag_ms u64? | tombstone_retention_ms u64?
///        | segment_roll_ms u64?
/// ```
/// The only layout that depends on the version: a v1 peer never sees the
/// compaction settings, and a v1 decode yields `Cleanup::Delete` and `None`s.
impl Encode for TopicConfig {
    fn encode(&self, w: &mut Writer<'_>) {
        w.u16(self.replication);
        w.put(&self.retention_ms);
        w.put(&self.retention_bytes);
        w.put(&self.segment_bytes);
        if w.version() >= PROTOCOL_VERSION_COMPACTION {
            w.put(&self.cleanup);
            w.put(&self.compaction_lag_ms);
            w.put(&self.tombstone_retention_ms);
            w.put(&self.segment_roll_ms);
        }
    }
}

impl Decode for TopicConfig {
    const WIRE_BYTES_MIN: usize = 2 + 1 + 1 + 1;

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let mut config = TopicConfig {
            replication: r.read("replication")?,
            retention_ms: r.read("retention_ms")?,
            retention_bytes: r.read("retention_bytes")?,
            segment_bytes: r.read("segment_bytes")?,
            ..TopicConfig::default()
        };
        if r.version() >= PROTOCOL_VERSION_COMPACTION {
            config.cleanup = r.read("cleanup")?;
            config.compaction_lag_ms = r.read("compaction_lag_ms")?;
            config.tombstone_retention_ms = r.read("tombstone_retention_ms")?;
            config.segment_roll_ms = r.read("segment_roll_ms")?;
        }
        Ok(config)
    }
}

impl Encode for Cleanup {
    fn encode(&self, w: &mut Writer<'_>) {
        w.u8(*self as u8);
    }
}

impl Decode for Cleanup {
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        match r.tag()? {
            0 => Ok(Cleanup::Delete),
            1 => Ok(Cleanup::Compact),
            2 => Ok(Cleanup::CompactDelete),
            tag => Err(DecodeError::bad_tag(tag)),
        }
    }
}

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
