//! Request and response frames as a whole: the length prefix, the headers,
//! api-key and version checks, and turning a body decode failure into the
//! [`ApiError`] the peer is answered with. Bodies live in `body/`; splitting
//! a byte stream into frames is `frame.rs`.
//!
//! ```text
//! request:  u32 frame_len | u16 api_key    | u16 api_version | u32 request_id | body
//! response: u32 frame_len | u32 request_id | u16 api_key     | u16 error_code | body
//! ```
//! `frame_len` counts the bytes after itself. A response whose `error_code`
//! is not 0 carries only the error message (a string) as its body.
//!
//! A response carries no version: it is written and read at the version of
//! the request it answers ([`encode_response_at`], [`decode_response_at`]).

use bytes::{BufMut, Bytes, BytesMut};

use crate::body::{
    decode_request_body, decode_response_body, encode_request_body, encode_response_body,
};
use crate::wire::{DecodeError, Reader, Writer};
use crate::{
    ApiError, ApiKey, ErrorCode, PROTOCOL_VERSION, PROTOCOL_VERSION_MIN, RequestFrame, Response,
    ResponseFrame,
};

/// Bytes of the `frame_len` prefix.
pub const LENGTH_PREFIX_BYTES: usize = 4;
/// Bytes of a request header after the prefix: api_key, api_version, request_id.
pub const REQUEST_HEADER_BYTES: usize = 8;
/// Bytes of a response header after the prefix: request_id, api_key, error_code.
pub const RESPONSE_HEADER_BYTES: usize = 8;

/// A request frame that cannot be served, with whatever of its header could
/// be read so the peer can still be answered (by `request_id`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("undecodable request (request_id {request_id:?}, api_key {api_key:?}): {error}")]
pub struct RequestDecodeError {
    /// `None` when the header is shorter than its 8 bytes.
    pub request_id: Option<u32>,
    pub api_key: Option<u16>,
    /// `MALFORMED_FRAME`, `UNKNOWN_REQUEST` or `UNSUPPORTED_VERSION`.
    pub error: ApiError,
}

/// A response frame that cannot be decoded. A client should fail the request
/// named by `request_id` if known, and treat the connection as broken if not.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("undecodable response (request_id {request_id:?}, api_key {api_key:?}): {error}")]
pub struct ResponseDecodeError {
    /// `None` when the frame is shorter than 4 bytes.
    pub request_id: Option<u32>,
    /// `None` when the frame is shorter than 6 bytes.
    pub api_key: Option<u16>,
    /// `MALFORMED_FRAME` or `UNKNOWN_REQUEST` (a response for an api this
    /// build does not know).
    pub error: ApiError,
}

// ---- requests -------------------------------------------------------------------

/// Appends the whole request frame, length prefix included, to `out`; the
/// body is written at `frame.api_version`.
pub fn encode_request(frame: &RequestFrame, out: &mut BytesMut) {
    let prefix_at = begin_frame(out);
    let mut w = Writer::new(out, frame.api_version);
    w.u16(frame.request.api_key() as u16);
    w.u16(frame.api_version);
    w.u32(frame.request_id);
    encode_request_body(&frame.request, &mut w);
    end_frame(out, prefix_at);
}

/// Decodes one request frame body (length prefix already stripped, as
/// [`crate::InboundFrame::Frame`] yields it).
pub fn decode_request(body: Bytes) -> Result<RequestFrame, RequestDecodeError> {
    let Some(header) = RequestHeader::parse(&body) else {
        return Err(RequestDecodeError {
            request_id: None,
            api_key: read_u16_at(&body, 0),
            error: malformed(format!(
                "request header truncated: {} of {REQUEST_HEADER_BYTES} bytes",
                body.len()
            )),
        });
    };
    let fail = |error| RequestDecodeError {
        request_id: Some(header.request_id),
        api_key: Some(header.api_key),
        error,
    };
    let key =
        ApiKey::from_u16(header.api_key).ok_or_else(|| fail(unknown_request(header.api_key)))?;
    check_version(key, header.api_version).map_err(fail)?;
    let mut r = Reader::new(body.slice(REQUEST_HEADER_BYTES..), header.api_version);
    let request = decode_request_body(key, &mut r)
        .and_then(|request| r.finish().map(|()| request))
        .map_err(|error| fail(malformed(format!("{key}: {error}"))))?;
    Ok(RequestFrame {
        request_id: header.request_id,
        api_version: header.api_version,
        request,
    })
}

/// `api_key u16 | api_version u16 | request_id u32`
struct RequestHeader {
    api_key: u16,
    api_version: u16,
    request_id: u32,
}

impl RequestHeader {
    fn parse(body: &[u8]) -> Option<RequestHeader> {
        Some(RequestHeader {
            api_key: read_u16_at(body, 0)?,
            api_version: read_u16_at(body, 2)?,
            request_id: read_u32_at(body, 4)?,
        })
    }
}

fn check_version(key: ApiKey, api_version: u16) -> Result<(), ApiError> {
    if (PROTOCOL_VERSION_MIN..=PROTOCOL_VERSION).contains(&api_version) {
        return Ok(());
    }
    Err(ApiError::new(
        ErrorCode::UNSUPPORTED_VERSION,
        format!(
            "request version {api_version} of {key} is not supported; \
             this broker speaks {PROTOCOL_VERSION_MIN}..={PROTOCOL_VERSION}"
        ),
    ))
}

fn unknown_request(raw_key: u16) -> ApiError {
    ApiError::new(
        ErrorCode::UNKNOWN_REQUEST,
        format!("unknown request type {raw_key}"),
    )
}

// ---- responses ------------------------------------------------------------------

/// Appends the whole response frame at the newest version
/// ([`PROTOCOL_VERSION`]); see [`encode_response_at`].
pub fn encode_response(frame: &ResponseFrame, out: &mut BytesMut) {
    encode_response_at(frame, PROTOCOL_VERSION, out);
}

/// Appends the whole response frame, length prefix included, to `out`,
/// written at `version`: the version of the request it answers.
///
/// Panics if an `Ok` response is for another api than `frame.api_key`, or an
/// `Err` carries code 0: both are bugs of the caller, not of the peer.
pub fn encode_response_at(frame: &ResponseFrame, version: u16, out: &mut BytesMut) {
    let response = match &frame.response {
        Ok(response) => response,
        Err(error) => {
            return encode_error_response(frame.request_id, frame.api_key as u16, error, out);
        }
    };
    assert_eq!(
        response.api_key(),
        frame.api_key,
        "response body does not match the frame's api key"
    );
    let prefix_at = begin_frame(out);
    let mut w = Writer::new(out, version);
    w.u32(frame.request_id);
    w.u16(frame.api_key as u16);
    w.put(&ErrorCode::NONE);
    encode_response_body(response, &mut w);
    end_frame(out, prefix_at);
}

/// Appends an error response for a raw api key, so a request whose key this
/// build does not know (or an oversize frame) can still be answered.
pub fn encode_error_response(request_id: u32, api_key: u16, error: &ApiError, out: &mut BytesMut) {
    assert!(
        !error.code.is_ok(),
        "an error response needs a non-zero code"
    );
    let prefix_at = begin_frame(out);
    // An error body is one string, the same in every version.
    let mut w = Writer::new(out, PROTOCOL_VERSION_MIN);
    w.u32(request_id);
    w.u16(api_key);
    w.put(&error.code);
    w.message(&error.message);
    end_frame(out, prefix_at);
}

/// Decodes one response frame body at the newest version
/// ([`PROTOCOL_VERSION`]); see [`decode_response_at`].
pub fn decode_response(body: Bytes) -> Result<ResponseFrame, ResponseDecodeError> {
    decode_response_at(body, PROTOCOL_VERSION)
}

/// Decodes one response frame body (length prefix already stripped) that
/// answers a request sent at `version`.
pub fn decode_response_at(body: Bytes, version: u16) -> Result<ResponseFrame, ResponseDecodeError> {
    let Some(header) = ResponseHeader::parse(&body) else {
        return Err(ResponseDecodeError {
            request_id: read_u32_at(&body, 0),
            api_key: read_u16_at(&body, 4),
            error: malformed(format!(
                "response header truncated: {} of {RESPONSE_HEADER_BYTES} bytes",
                body.len()
            )),
        });
    };
    let fail = |error| ResponseDecodeError {
        request_id: Some(header.request_id),
        api_key: Some(header.api_key),
        error,
    };
    let key = ApiKey::from_u16(header.api_key).ok_or_else(|| {
        fail(ApiError::new(
            ErrorCode::UNKNOWN_REQUEST,
            format!("response for unknown request type {}", header.api_key),
        ))
    })?;
    let mut r = Reader::new(body.slice(RESPONSE_HEADER_BYTES..), version);
    let response = decode_response_outcome(key, header.error_code, &mut r)
        .and_then(|response| r.finish().map(|()| response))
        .map_err(|error| fail(malformed(format!("{key} response: {error}"))))?;
    Ok(ResponseFrame {
        request_id: header.request_id,
        api_key: key,
        response,
    })
}

/// `request_id u32 | api_key u16 | error_code u16`
struct ResponseHeader {
    request_id: u32,
    api_key: u16,
    error_code: ErrorCode,
}

impl ResponseHeader {
    fn parse(body: &[u8]) -> Option<ResponseHeader> {
        Some(ResponseHeader {
            request_id: read_u32_at(body, 0)?,
            api_key: read_u16_at(body, 4)?,
            error_code: ErrorCode(read_u16_at(body, 6)?),
        })
    }
}

/// The body after a response header: the api's response, or (for a non-zero
/// code) the error message.
fn decode_response_outcome(
    key: ApiKey,
    code: ErrorCode,
    r: &mut Reader,
) -> Result<Result<Response, ApiError>, DecodeError> {
    if code.is_ok() {
        return decode_response_body(key, r).map(Ok);
    }
    let message: String = r.read("error_message")?;
    Ok(Err(ApiError::new(code, message)))
}

// ---- shared ---------------------------------------------------------------------

fn malformed(message: String) -> ApiError {
    ApiError::new(ErrorCode::MALFORMED_FRAME, message)
}

/// Reserves the length prefix; [`end_frame`] fills it in.
fn begin_frame(out: &mut BytesMut) -> usize {
    let prefix_at = out.len();
    out.put_u32_le(0);
    prefix_at
}

fn end_frame(out: &mut BytesMut, prefix_at: usize) {
    let frame_len = out.len() - prefix_at - LENGTH_PREFIX_BYTES;
    let frame_len = u32::try_from(frame_len)
        .unwrap_or_else(|_| panic!("frame of {frame_len} bytes exceeds u32"));
    out[prefix_at..prefix_at + LENGTH_PREFIX_BYTES].copy_from_slice(&frame_len.to_le_bytes());
}

fn read_u16_at(buf: &[u8], at: usize) -> Option<u16> {
    let raw = buf.get(at..at + 2)?;
    Some(u16::from_le_bytes([raw[0], raw[1]]))
}

fn read_u32_at(buf: &[u8], at: usize) -> Option<u32> {
    let raw = buf.get(at..at + 4)?;
    Some(u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]))
}
