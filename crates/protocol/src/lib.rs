//! The native wire protocol of citystream as a pure codec: length-prefixed
//! frames, typed requests and responses, and stable numeric error codes.
//! No sockets here; the server and the client drive the codec over TCP.
//! Byte layouts are specified in `docs/protocol.md`.
//!
//! Where things live: `messages` (the types), `error` (stable codes),
//! `wire` (primitives, `Reader`/`Writer`), `body/` (one layout per message),
//! `envelope` (frame headers, `encode_*`/`decode_*`), `frame` (`FrameCodec`:
//! splitting a stream into frames under a size limit).

mod body;
mod envelope;
mod error;
mod frame;
pub mod local;
mod messages;
mod wire;

pub use envelope::{
    LENGTH_PREFIX_BYTES, REQUEST_HEADER_BYTES, RESPONSE_HEADER_BYTES, RequestDecodeError,
    ResponseDecodeError, decode_request, decode_response, decode_response_at,
    encode_error_response, encode_request, encode_response, encode_response_at,
};
pub use error::{ApiError, ErrorCode};
pub use frame::{FrameCodec, FrameError, InboundFrame};
pub use messages::*;
pub use wire::STRING_BYTES_MAX;

/// Newest protocol version this build speaks; negotiated by [`HelloRequest`].
/// Version 2 adds the compaction settings to [`TopicConfig`] (decision
/// 0017 §9); every other body is the same in both versions.
pub const PROTOCOL_VERSION: u16 = 2;
/// Oldest protocol version this build still speaks.
pub const PROTOCOL_VERSION_MIN: u16 = 1;
/// The first version whose [`TopicConfig`] carries the compaction settings,
/// and so the first that may produce or fetch on a compacted topic.
pub const PROTOCOL_VERSION_COMPACTION: u16 = 2;
/// Default upper bound on one frame, length prefix excluded.
pub const FRAME_BYTES_MAX_DEFAULT: u32 = 16 * 1024 * 1024;
