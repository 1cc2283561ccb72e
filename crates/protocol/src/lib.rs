//! The native wire protocol of citystream as a pure codec: length-prefixed
//! frames, typed requests and responses, and stable numeric error codes.
//! No sockets here; the server and the client drive the codec over TCP.
//! Byte layouts are specified in `docs/protocol.md`.

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

// CODEC CONTRACT (implemented by the protocol work; signatures fixed):
//
// pub struct FrameCodec { frame_bytes_max: u32, .. }        // tokio_util Decoder + Encoder
//   impl Decoder for FrameCodec { type Item = InboundFrame; type Error = FrameError; }
//   impl Encoder<Bytes> / Encoder<&[u8]> for FrameCodec (writes the length prefix)
// pub enum InboundFrame {
//     /// One whole frame body (length prefix stripped).
//     Frame(bytes::Bytes),
//     /// A frame over the limit; its bytes were skipped. `request_id` and
//     /// `api_key` are read from its header so the peer can be answered.
//     Oversize { request_id: u32, api_key: u16, frame_len: u32 },
// }
// pub fn encode_request(frame: &RequestFrame, out: &mut bytes::BytesMut);   // with length prefix
// pub fn decode_request(body: bytes::Bytes) -> Result<RequestFrame, RequestDecodeError>;
// pub fn encode_response(frame: &ResponseFrame, out: &mut bytes::BytesMut); // with length prefix
// pub fn decode_response(body: bytes::Bytes) -> Result<ResponseFrame, ResponseDecodeError>;
// pub struct RequestDecodeError { pub request_id: Option<u32>, pub api_key: Option<u16>, pub error: ApiError }
//   (MALFORMED_FRAME / UNKNOWN_REQUEST / UNSUPPORTED_VERSION, with a message saying what was wrong)
