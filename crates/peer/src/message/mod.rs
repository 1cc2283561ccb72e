//! The payloads of the Raft RPCs of every group ([`Tc`]), hand-written
//! without openraft's serde feature. Pure: [`encode`] appends a message to a
//! frame buffer, [`decode`] reads one from a frame payload and refuses
//! trailing bytes. A data entry's batch is split off the received frame
//! (no copy on receive); on send it is copied once into the frame buffer.
//!
//! All integers little-endian. Shared fields:
//!
//! ```text
//! log_id?     present u8 (0|1) [ term u64 | index u64 ]   (1 or 17 bytes)
//! vote        term u64 | voted_for u64 | committed u8        (17 bytes)
//! membership  config_count u8 (1|2) | per config: voter_count u16,
//!             voter_count × id u64 | node_count u16 | per node: id u64,
//!             addr_len u16, addr (UTF-8)   (the control-batch layout)
//! entry       term u64 | index u64 | payload u8 | body
//!             payload 0 blank: no body
//!             payload 1 normal: batch_len u32 | batch bytes (as stored)
//!             payload 2 membership: membership
//! ```
//!
//! Messages (rpc code of the frame in brackets):
//!
//! ```text
//! [1] AppendEntriesRequest   vote | prev_log_id? | leader_commit? |
//!                            entry_count u32 | entries
//! [1] AppendEntriesResponse  tag u8: 0 Success | 1 PartialSuccess log_id? |
//!                            2 Conflict | 3 HigherVote vote
//! [2,3] VoteRequest          vote | last_log_id? | leadership_transfer u8
//! [2,3] VoteResponse         vote | granted u8 | last_log_id?
//! [4] SnapshotRequest        vote | last_log_id? | membership_log_id? |
//!                            membership | data (see `snapshot`: a partition
//!                            group's next_offset u64, or the metadata
//!                            group's state)
//! [4] SnapshotResponse       vote
//! [5] TransferLeaderRequest  from_leader vote | to_node u64 | last_log_id?
//! [5] TransferLeaderResponse tag u8: 0 Ok | 1 VoteChanged vote vote |
//!                            2 LogNotFlushed log_id? log_id?
//! ```
//!
//! Pre-vote uses the vote layouts under its own rpc code. The payloads of
//! a call (rpc 6) are opaque bytes, not decoded here.

use bytes::{BufMut, Bytes, BytesMut};
use citystream_raft::{BatchData, Tc};
use citystream_raft::{ControlError, PartitionMembership};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderError,
    TransferLeaderRequest, TransferLeaderResponse, VoteRequest, VoteResponse,
};
use openraft::type_config::alias::{EntryOf, LogIdOf, VoteOf};
use openraft::{EntryPayload, LogId, Vote};

use crate::wire::{DecodeError, Reader, put_bool};

mod snapshot;

pub use snapshot::{ChunkAck, SnapshotRequest, SnapshotWire};

/// The smallest encoded entry (a blank one), used to bound the entry count
/// a request claims by the bytes it actually carries.
const ENTRY_BYTES_MIN: usize = 17;
const PAYLOAD_BLANK: u8 = 0;
const PAYLOAD_NORMAL: u8 = 1;
const PAYLOAD_MEMBERSHIP: u8 = 2;

/// A message with a wire form.
pub trait WireMessage: Sized {
    fn write(&self, out: &mut BytesMut);
    fn read(reader: &mut Reader) -> Result<Self, DecodeError>;
}

/// Appends `message` to a frame buffer.
pub fn encode<M: WireMessage>(message: &M, out: &mut BytesMut) {
    message.write(out);
}

/// Decodes a whole frame payload as one `M`.
pub fn decode<M: WireMessage>(payload: Bytes) -> Result<M, DecodeError> {
    let mut reader = Reader::new(payload);
    let message = M::read(&mut reader)?;
    reader.finish()?;
    Ok(message)
}

fn invalid(field: &'static str, reason: impl ToString) -> DecodeError {
    DecodeError::Invalid {
        field,
        reason: reason.to_string(),
    }
}

fn unknown(field: &'static str, value: u8) -> DecodeError {
    DecodeError::UnknownTag {
        field,
        value: value.into(),
    }
}

fn put_log_id(out: &mut BytesMut, log_id: &Option<LogIdOf<Tc>>) {
    put_bool(out, log_id.is_some());
    if let Some(log_id) = log_id {
        out.put_u64_le(log_id.leader_id.term);
        out.put_u64_le(log_id.index);
    }
}

fn read_log_id(reader: &mut Reader) -> Result<Option<LogIdOf<Tc>>, DecodeError> {
    if !reader.bool("log id presence")? {
        return Ok(None);
    }
    let term = reader.u64()?;
    Ok(Some(LogId::new_term_index(term, reader.u64()?)))
}

fn put_vote(out: &mut BytesMut, vote: &VoteOf<Tc>) {
    out.put_u64_le(vote.leader_id.term);
    out.put_u64_le(vote.leader_id.voted_for);
    put_bool(out, vote.committed);
}

fn read_vote(reader: &mut Reader) -> Result<VoteOf<Tc>, DecodeError> {
    let term = reader.u64()?;
    let voted_for = reader.u64()?;
    Ok(match reader.bool("vote committed")? {
        true => Vote::new_committed(term, voted_for),
        false => Vote::new(term, voted_for),
    })
}

/// Memberships use the raft crate's encoding (the one control batches use).
fn put_membership(out: &mut BytesMut, membership: &PartitionMembership) {
    let mut encoded = Vec::new();
    citystream_raft::encode_membership(membership, &mut encoded);
    out.put_slice(&encoded);
}

fn read_membership(reader: &mut Reader) -> Result<PartitionMembership, DecodeError> {
    let available = reader.remaining();
    let (membership, used) =
        citystream_raft::decode_membership_prefix(reader.rest()).map_err(|error| match error {
            ControlError::Truncated => DecodeError::Truncated {
                needed: available + 1,
                available,
            },
            other => invalid("membership", other),
        })?;
    reader.bytes(used)?;
    Ok(membership)
}

fn put_entry(out: &mut BytesMut, entry: &EntryOf<Tc>) {
    out.put_u64_le(entry.log_id.leader_id.term);
    out.put_u64_le(entry.log_id.index);
    match &entry.payload {
        EntryPayload::Blank => out.put_u8(PAYLOAD_BLANK),
        EntryPayload::Normal(data) => {
            out.put_u8(PAYLOAD_NORMAL);
            let len = u32::try_from(data.bytes.len()).expect("a batch is below 4 GiB");
            out.put_u32_le(len);
            out.put_slice(&data.bytes);
        }
        EntryPayload::Membership(membership) => {
            out.put_u8(PAYLOAD_MEMBERSHIP);
            put_membership(out, membership);
        }
    }
}

fn read_entry(reader: &mut Reader) -> Result<EntryOf<Tc>, DecodeError> {
    let term = reader.u64()?;
    let log_id = LogId::new_term_index(term, reader.u64()?);
    let payload = match reader.u8()? {
        PAYLOAD_BLANK => EntryPayload::Blank,
        PAYLOAD_NORMAL => {
            let len = reader.u32()? as usize;
            EntryPayload::Normal(BatchData::new(reader.bytes(len)?))
        }
        PAYLOAD_MEMBERSHIP => EntryPayload::Membership(read_membership(reader)?),
        tag => return Err(unknown("entry payload", tag)),
    };
    Ok(openraft::Entry { log_id, payload })
}

impl WireMessage for AppendEntriesRequest<Tc> {
    fn write(&self, out: &mut BytesMut) {
        put_vote(out, &self.vote);
        put_log_id(out, &self.prev_log_id);
        put_log_id(out, &self.leader_commit);
        let count = u32::try_from(self.entries.len()).expect("fewer than 2^32 entries");
        out.put_u32_le(count);
        self.entries.iter().for_each(|entry| put_entry(out, entry));
    }

    fn read(reader: &mut Reader) -> Result<Self, DecodeError> {
        let vote = read_vote(reader)?;
        let prev_log_id = read_log_id(reader)?;
        let leader_commit = read_log_id(reader)?;
        let count = reader.u32()? as usize;
        if count > reader.remaining() / ENTRY_BYTES_MIN {
            return Err(DecodeError::Truncated {
                needed: count.saturating_mul(ENTRY_BYTES_MIN),
                available: reader.remaining(),
            });
        }
        let entries = (0..count)
            .map(|_| read_entry(reader))
            .collect::<Result<_, _>>()?;
        Ok(AppendEntriesRequest {
            vote,
            prev_log_id,
            entries,
            leader_commit,
        })
    }
}

impl WireMessage for AppendEntriesResponse<Tc> {
    fn write(&self, out: &mut BytesMut) {
        match self {
            AppendEntriesResponse::Success => out.put_u8(0),
            AppendEntriesResponse::PartialSuccess(log_id) => {
                out.put_u8(1);
                put_log_id(out, log_id);
            }
            AppendEntriesResponse::Conflict => out.put_u8(2),
            AppendEntriesResponse::HigherVote(vote) => {
                out.put_u8(3);
                put_vote(out, vote);
            }
        }
    }

    fn read(reader: &mut Reader) -> Result<Self, DecodeError> {
        Ok(match reader.u8()? {
            0 => AppendEntriesResponse::Success,
            1 => AppendEntriesResponse::PartialSuccess(read_log_id(reader)?),
            2 => AppendEntriesResponse::Conflict,
            3 => AppendEntriesResponse::HigherVote(read_vote(reader)?),
            tag => return Err(unknown("append entries response", tag)),
        })
    }
}

impl WireMessage for VoteRequest<Tc> {
    fn write(&self, out: &mut BytesMut) {
        put_vote(out, &self.vote);
        put_log_id(out, &self.last_log_id);
        put_bool(out, self.leadership_transfer);
    }

    fn read(reader: &mut Reader) -> Result<Self, DecodeError> {
        let mut request = VoteRequest::new(read_vote(reader)?, read_log_id(reader)?);
        request.leadership_transfer = reader.bool("leadership transfer")?;
        Ok(request)
    }
}

impl WireMessage for VoteResponse<Tc> {
    fn write(&self, out: &mut BytesMut) {
        put_vote(out, &self.vote);
        put_bool(out, self.vote_granted);
        put_log_id(out, &self.last_log_id);
    }

    fn read(reader: &mut Reader) -> Result<Self, DecodeError> {
        let vote = read_vote(reader)?;
        let granted = reader.bool("vote granted")?;
        Ok(VoteResponse::new(vote, read_log_id(reader)?, granted))
    }
}

impl WireMessage for SnapshotResponse<Tc> {
    fn write(&self, out: &mut BytesMut) {
        put_vote(out, &self.vote);
    }

    fn read(reader: &mut Reader) -> Result<Self, DecodeError> {
        Ok(SnapshotResponse::new(read_vote(reader)?))
    }
}

impl WireMessage for TransferLeaderRequest<Tc> {
    fn write(&self, out: &mut BytesMut) {
        put_vote(out, self.from_leader());
        out.put_u64_le(*self.to_node_id());
        put_log_id(out, &self.last_log_id().cloned());
    }

    fn read(reader: &mut Reader) -> Result<Self, DecodeError> {
        let from = read_vote(reader)?;
        let to = reader.u64()?;
        Ok(TransferLeaderRequest::new(from, to, read_log_id(reader)?))
    }
}

impl WireMessage for TransferLeaderResponse<Tc> {
    fn write(&self, out: &mut BytesMut) {
        match self {
            Ok(()) => out.put_u8(0),
            Err(TransferLeaderError::VoteChanged { expected, actual }) => {
                out.put_u8(1);
                put_vote(out, expected);
                put_vote(out, actual);
            }
            Err(TransferLeaderError::LogNotFlushed { expected, actual }) => {
                out.put_u8(2);
                put_log_id(out, expected);
                put_log_id(out, actual);
            }
        }
    }

    fn read(reader: &mut Reader) -> Result<Self, DecodeError> {
        Ok(match reader.u8()? {
            0 => Ok(()),
            1 => Err(TransferLeaderError::VoteChanged {
                expected: read_vote(reader)?,
                actual: read_vote(reader)?,
            }),
            2 => Err(TransferLeaderError::LogNotFlushed {
                expected: read_log_id(reader)?,
                actual: read_log_id(reader)?,
            }),
            tag => return Err(unknown("transfer leader response", tag)),
        })
    }
}

#[cfg(test)]
mod tests;
