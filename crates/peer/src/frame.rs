//! The envelope every peer message travels in, and the error payload of a
//! failed request. Pure: [`encode`] builds one frame, [`split_frame`] cuts
//! complete frames off a receive buffer. What a payload holds is
//! [`crate::message`]'s business.
//!
//! Every connection starts with the 8 bytes [`PEER_PREAMBLE`], written by
//! the connecting side, then carries frames both ways. All integers
//! little-endian:
//!
//! ```text
//!  0           4         5              9              17        19
//!  +-----------+---------+--------------+--------------+---------+---------+
//!  | frame_len | kind u8 | request_id   | group_id u64 | rpc u16 | payload |
//!  | u32: bytes| 0 req   | u32, chosen  | 0 = metadata | 1..=6   | ...     |
//!  | after this| 1 resp  | by the side  | others =     | (Rpc)   |         |
//!  | field     | 2 error | that asks    | partitions   |         |         |
//!  +-----------+---------+--------------+--------------+---------+---------+
//! ```
//!
//! A response or error echoes the request's `request_id`, `group_id` and
//! `rpc`. An error's payload is `code u16 | message_len u16 | message`
//! (UTF-8), see [`RemoteError`]. A [`Rpc::Call`] belongs to no group
//! (`group_id` 0, ignored) and its payloads are opaque bytes.

use bytes::{BufMut, Bytes, BytesMut};

use crate::wire::{DecodeError, Reader, put_short_bytes};

/// The first bytes of every peer connection, before any frame. Peer
/// connections arrive on the broker's native client port, whose frames
/// start with a u32 big-endian length: read that way, "CSPE" is
/// 1,129,533,509 bytes (over 1 GiB), above any native frame limit (16 MiB
/// by default; a configured limit must stay below 1 GiB), so the preamble
/// can never start a valid native frame and the broker tells the two apart
/// by peeking at 8 bytes. The trailing "02" is the peer protocol version (02: snapshot chunks
/// and the snapshot prefix flag, decision 0017).
pub const PEER_PREAMBLE: [u8; 8] = *b"CSPEER02";

/// Bytes of the envelope before the payload, `frame_len` included.
pub const HEADER_BYTES: usize = 19;
/// Bytes of `frame_len` itself.
const LEN_BYTES: usize = 4;
/// The largest frame, `frame_len` included. A frame carries one RPC, and
/// openraft's AppendEntries is bounded by its `max_payload_entries`
/// (300 by default) times the batch size limit (1 MiB), so 64 MiB leaves
/// room; anything larger is a corrupt or hostile length.
pub const FRAME_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Longest error message carried in an error frame.
const ERROR_MESSAGE_BYTES_MAX: usize = 1024;

/// Which Raft group a message belongs to: 0 is the metadata group, every
/// other id is a partition's group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupId(pub u64);

impl GroupId {
    pub const METADATA: GroupId = GroupId(0);
}

impl std::fmt::Display for GroupId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "group-{}", self.0)
    }
}

/// Whether a frame asks, answers, or reports that asking failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    Request = 0,
    Response = 1,
    Error = 2,
}

/// The RPC a frame carries. Codes are never renumbered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rpc {
    AppendEntries = 1,
    Vote = 2,
    PreVote = 3,
    FullSnapshot = 4,
    TransferLeader = 5,
    /// A request/response between brokers outside Raft (forwarding a
    /// metadata proposal to the leader, say): opaque bytes both ways,
    /// answered by `GroupRouter::call`.
    Call = 6,
    /// A piece of a compacted partition's snapshot prefix, sent before the
    /// snapshot itself (decision 0017 §5).
    SnapshotChunk = 7,
}

impl Rpc {
    fn from_code(code: u16) -> Result<Rpc, DecodeError> {
        Ok(match code {
            1 => Rpc::AppendEntries,
            2 => Rpc::Vote,
            3 => Rpc::PreVote,
            4 => Rpc::FullSnapshot,
            5 => Rpc::TransferLeader,
            6 => Rpc::Call,
            7 => Rpc::SnapshotChunk,
            value => return Err(unknown("rpc", value.into())),
        })
    }
}

fn unknown(field: &'static str, value: u64) -> DecodeError {
    DecodeError::UnknownTag { field, value }
}

/// The envelope fields of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub kind: FrameKind,
    pub request_id: u32,
    pub group: GroupId,
    pub rpc: Rpc,
}

impl FrameHeader {
    /// The header of the answer to this request.
    pub fn reply(&self, kind: FrameKind) -> FrameHeader {
        FrameHeader { kind, ..*self }
    }
}

/// One decoded frame; the payload shares the receive buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub header: FrameHeader,
    pub payload: Bytes,
}

/// A frame too large to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("frame of {len} bytes exceeds the limit of {max} bytes", max = FRAME_BYTES_MAX)]
pub struct FrameTooLarge {
    pub len: usize,
}

/// Encodes one frame whose payload `write_payload` appends.
pub fn encode(
    header: &FrameHeader,
    write_payload: impl FnOnce(&mut BytesMut),
) -> Result<Bytes, FrameTooLarge> {
    let mut out = BytesMut::with_capacity(HEADER_BYTES + 64);
    out.put_u32_le(0); // patched below, once the payload length is known
    out.put_u8(header.kind as u8);
    out.put_u32_le(header.request_id);
    out.put_u64_le(header.group.0);
    out.put_u16_le(header.rpc as u16);
    write_payload(&mut out);
    if out.len() > FRAME_BYTES_MAX {
        return Err(FrameTooLarge { len: out.len() });
    }
    let frame_len = u32::try_from(out.len() - LEN_BYTES).expect("below FRAME_BYTES_MAX");
    out[..LEN_BYTES].copy_from_slice(&frame_len.to_le_bytes());
    Ok(out.freeze())
}

/// Cuts the first complete frame off `buffer`; `Ok(None)` if it does not
/// hold one yet. A length beyond the limit is an error before any of the
/// frame is buffered.
pub fn split_frame(buffer: &mut BytesMut) -> Result<Option<Frame>, DecodeError> {
    let Some(len_bytes) = buffer.get(..LEN_BYTES) else {
        return Ok(None);
    };
    let frame_len = u32::from_le_bytes(len_bytes.try_into().expect("4 bytes")) as usize;
    let total = LEN_BYTES.saturating_add(frame_len);
    if total > FRAME_BYTES_MAX {
        return Err(DecodeError::FrameTooLarge {
            len: total,
            max: FRAME_BYTES_MAX,
        });
    }
    if buffer.len() < total {
        buffer.reserve(total - buffer.len());
        return Ok(None);
    }
    decode(buffer.split_to(total).freeze()).map(Some)
}

/// Decodes exactly one complete frame, `frame_len` included.
pub fn decode(frame: Bytes) -> Result<Frame, DecodeError> {
    let mut reader = Reader::new(frame);
    let frame_len = reader.u32()? as usize;
    if frame_len != reader.remaining() {
        return Err(DecodeError::Invalid {
            field: "frame_len",
            reason: format!("{frame_len}, but {} bytes follow", reader.remaining()),
        });
    }
    let kind = match reader.u8()? {
        0 => FrameKind::Request,
        1 => FrameKind::Response,
        2 => FrameKind::Error,
        value => return Err(unknown("frame kind", value.into())),
    };
    let request_id = reader.u32()?;
    let group = GroupId(reader.u64()?);
    let rpc = Rpc::from_code(reader.u16()?)?;
    let payload = reader.bytes(reader.remaining())?;
    let header = FrameHeader {
        kind,
        request_id,
        group,
        rpc,
    };
    Ok(Frame { header, payload })
}

/// Why the receiving broker could not answer a request. Codes are never
/// renumbered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The receiver hosts no replica of the group (yet, or any more).
    UnknownGroup = 1,
    /// The group's Raft on the receiver has stopped.
    RaftStopped = 2,
    /// The request payload could not be decoded.
    BadRequest = 3,
    /// The receiver does not serve this kind of request (calls, when its
    /// router has no `call`).
    Unsupported = 4,
    /// A call's handler refused or failed it; the message says why.
    CallFailed = 5,
}

impl ErrorCode {
    fn from_code(code: u16) -> Result<ErrorCode, DecodeError> {
        Ok(match code {
            1 => ErrorCode::UnknownGroup,
            2 => ErrorCode::RaftStopped,
            3 => ErrorCode::BadRequest,
            4 => ErrorCode::Unsupported,
            5 => ErrorCode::CallFailed,
            value => return Err(unknown("error code", value.into())),
        })
    }
}

/// The payload of an error frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("peer answered {code:?}: {message}")]
pub struct RemoteError {
    pub code: ErrorCode,
    pub message: String,
}

impl RemoteError {
    pub fn encode(&self, out: &mut BytesMut) {
        out.put_u16_le(self.code as u16);
        let mut end = self.message.len().min(ERROR_MESSAGE_BYTES_MAX);
        while !self.message.is_char_boundary(end) {
            end -= 1;
        }
        put_short_bytes(out, &self.message.as_bytes()[..end]);
    }

    pub fn decode(payload: Bytes) -> Result<RemoteError, DecodeError> {
        let mut reader = Reader::new(payload);
        let code = ErrorCode::from_code(reader.u16()?)?;
        let len = usize::from(reader.u16()?);
        let message =
            String::from_utf8(reader.bytes(len)?.to_vec()).map_err(|_| DecodeError::Invalid {
                field: "error message",
                reason: "not UTF-8".into(),
            })?;
        reader.finish()?;
        Ok(RemoteError { code, message })
    }
}

#[cfg(test)]
mod tests;
