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
mod messages;
mod wire;

pub use envelope::{
    LENGTH_PREFIX_BYTES, REQUEST_HEADER_BYTES, RESPONSE_HEADER_BYTES, RequestDecodeError,
    ResponseDecodeError, decode_request, decode_response, encode_error_response, encode_request,
    encode_response,
};
pub use error::{ApiError, ErrorCode};
pub use frame::{FrameCodec, FrameError, InboundFrame};
pub use messages::*;
pub use wire::STRING_BYTES_MAX;

/// Protocol version this build speaks; negotiated by [`HelloRequest`].
pub const PROTOCOL_VERSION: u16 = 1;
/// Default upper bound on one frame, length prefix excluded.
pub const FRAME_BYTES_MAX_DEFAULT: u32 = 16 * 1024 * 1024;
