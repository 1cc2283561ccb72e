//! The full-snapshot request ([`SnapshotRequest`]), generic over what a
//! group's snapshot holds ([`SnapshotWire`]): a partition group's
//! [`PartitionSnapshot`] or the metadata group's [`MetadataState`]. The
//! envelope (vote, log ids, membership) is the same for both; the data is
//! last:
//!
//! ```text
//! SnapshotRequest  vote | last_log_id? | membership_log_id? | membership | data
//! data (partition) next_offset u64 | carries_prefix u8 (0 or 1)
//! data (metadata)  state_len u32 | state (MetadataState::encode: versioned JSON)
//! PrefixChunk      vote | snapshot log id | first u8 | from_offset u64
//!                  | floor_term u64 | floor_raft_index u64
//!                  | batches_len u32 | batches (whole record batches)
//! ChunkAck         (empty)
//! ```
//!
//! A compacted partition's snapshot is sent after its prefix, in
//! [`PrefixChunk`]s (`Rpc::SnapshotChunk`, decision 0017 §5): the network
//! streams them from [`SnapshotWire::prefix_reader`] before the snapshot.
//!
//! Which type a frame holds is not on the wire: the receiver knows it from
//! the group id (0 is the metadata group).

use bytes::{BufMut, BytesMut};
use citystream_cluster::MetadataState;
use citystream_raft::{PartitionSnapshot, PrefixChunk, PrefixReader, Tc};
use openraft::type_config::alias::{SnapshotOf, VoteOf};
use openraft::{LogId, Snapshot, SnapshotMeta, StoredMembership};

use super::{WireMessage, invalid, put_log_id, put_membership, put_vote};
use super::{read_log_id, read_membership, read_vote};
use crate::wire::put_bool;
use crate::wire::{DecodeError, Reader};

/// The snapshot data of a group type, with its wire form.
pub trait SnapshotWire: Sized + Send + Sync + 'static {
    fn write(&self, out: &mut BytesMut);
    fn read(reader: &mut Reader) -> Result<Self, DecodeError>;

    /// Where the records sent before `snapshot` are read from, if it
    /// carries a prefix. By default, none.
    fn prefix_reader(vote: VoteOf<Tc>, snapshot: &SnapshotOf<Tc, Self>) -> Option<PrefixReader> {
        let _ = (vote, snapshot);
        None
    }
}

impl SnapshotWire for PartitionSnapshot {
    fn write(&self, out: &mut BytesMut) {
        out.put_u64_le(self.next_offset);
        put_bool(out, self.carries_prefix);
    }

    fn read(reader: &mut Reader) -> Result<Self, DecodeError> {
        Ok(PartitionSnapshot {
            next_offset: reader.u64()?,
            carries_prefix: reader.bool("carries prefix")?,
            source: None,
        })
    }

    fn prefix_reader(vote: VoteOf<Tc>, snapshot: &SnapshotOf<Tc, Self>) -> Option<PrefixReader> {
        PrefixReader::new(vote, snapshot)
    }
}

impl WireMessage for PrefixChunk {
    fn write(&self, out: &mut BytesMut) {
        put_vote(out, &self.vote);
        out.put_u64_le(self.snapshot.leader_id.term);
        out.put_u64_le(self.snapshot.index);
        put_bool(out, self.first);
        out.put_u64_le(self.from_offset);
        out.put_u64_le(self.floor.0);
        out.put_u64_le(self.floor.1);
        let len = u32::try_from(self.batches.len()).expect("a chunk is below 4 GiB");
        out.put_u32_le(len);
        out.put_slice(&self.batches);
    }

    fn read(reader: &mut Reader) -> Result<Self, DecodeError> {
        let vote = read_vote(reader)?;
        let snapshot = LogId::new_term_index(reader.u64()?, reader.u64()?);
        let first = reader.bool("first chunk")?;
        let from_offset = reader.u64()?;
        let floor = (reader.u64()?, reader.u64()?);
        let len = reader.u32()? as usize;
        let batches = reader.bytes(len)?;
        Ok(PrefixChunk {
            vote,
            snapshot,
            first,
            from_offset,
            floor,
            batches,
        })
    }
}

/// The answer to a staged [`PrefixChunk`]; a refusal is an error frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkAck;

impl WireMessage for ChunkAck {
    fn write(&self, _out: &mut BytesMut) {}

    fn read(_reader: &mut Reader) -> Result<Self, DecodeError> {
        Ok(ChunkAck)
    }
}

/// The state's own encoding, behind a length: it is versioned, so a
/// receiver refuses a format it does not know instead of guessing.
impl SnapshotWire for MetadataState {
    fn write(&self, out: &mut BytesMut) {
        let state = self.encode();
        let len = u32::try_from(state.len()).expect("metadata state is below 4 GiB");
        out.put_u32_le(len);
        out.put_slice(&state);
    }

    fn read(reader: &mut Reader) -> Result<Self, DecodeError> {
        let len = reader.u32()? as usize;
        let state = reader.bytes(len)?;
        MetadataState::decode(&state).map_err(|e| invalid("metadata state", e))
    }
}

/// The request of a full-snapshot transfer: the leader's vote and the
/// whole (small) snapshot.
#[derive(Debug, Clone)]
pub struct SnapshotRequest<S: SnapshotWire> {
    pub vote: VoteOf<Tc>,
    pub snapshot: SnapshotOf<Tc, S>,
}

impl<S: SnapshotWire> WireMessage for SnapshotRequest<S> {
    fn write(&self, out: &mut BytesMut) {
        put_vote(out, &self.vote);
        let meta = &self.snapshot.meta;
        put_log_id(out, &meta.last_log_id);
        put_log_id(out, meta.last_membership.log_id());
        put_membership(out, meta.last_membership.membership());
        self.snapshot.snapshot.write(out);
    }

    fn read(reader: &mut Reader) -> Result<Self, DecodeError> {
        let vote = read_vote(reader)?;
        let last_log_id = read_log_id(reader)?;
        let membership_log_id = read_log_id(reader)?;
        let membership = read_membership(reader)?;
        let meta = SnapshotMeta {
            last_log_id,
            last_membership: StoredMembership::new(membership_log_id, membership),
        };
        let snapshot = Snapshot {
            meta,
            snapshot: S::read(reader)?,
        };
        Ok(SnapshotRequest { vote, snapshot })
    }
}
