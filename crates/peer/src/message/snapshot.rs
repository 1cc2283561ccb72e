//! The full-snapshot request ([`SnapshotRequest`]), generic over what a
//! group's snapshot holds ([`SnapshotWire`]): a partition group's
//! [`PartitionSnapshot`] or the metadata group's [`MetadataState`]. The
//! envelope (vote, log ids, membership) is the same for both; the data is
//! last:
//!
//! ```text
//! SnapshotRequest  vote | last_log_id? | membership_log_id? | membership | data
//! data (partition) next_offset u64
//! data (metadata)  state_len u32 | state (MetadataState::encode: versioned JSON)
//! ```
//!
//! Which type a frame holds is not on the wire: the receiver knows it from
//! the group id (0 is the metadata group).

use bytes::{BufMut, BytesMut};
use citystream_cluster::MetadataState;
use citystream_raft::{PartitionSnapshot, Tc};
use openraft::type_config::alias::{SnapshotOf, VoteOf};
use openraft::{Snapshot, SnapshotMeta, StoredMembership};

use super::{WireMessage, invalid, put_log_id, put_membership, put_vote};
use super::{read_log_id, read_membership, read_vote};
use crate::wire::{DecodeError, Reader};

/// The snapshot data of a group type, with its wire form.
pub trait SnapshotWire: Sized + Send + Sync + 'static {
    fn write(&self, out: &mut BytesMut);
    fn read(reader: &mut Reader) -> Result<Self, DecodeError>;
}

impl SnapshotWire for PartitionSnapshot {
    fn write(&self, out: &mut BytesMut) {
        out.put_u64_le(self.next_offset);
    }

    fn read(reader: &mut Reader) -> Result<Self, DecodeError> {
        Ok(PartitionSnapshot {
            next_offset: reader.u64()?,
        })
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
