//! Splitting a byte stream into frames: [`FrameCodec`] is a tokio-util
//! `Decoder` yielding each frame's bytes (length prefix stripped) and an
//! `Encoder` prepending the prefix. It bounds every frame by
//! `frame_bytes_max`: a larger frame is reported as
//! [`InboundFrame::Oversize`] and its bytes are discarded as they arrive,
//! never buffered, so the connection stays usable. It does not parse bodies;
//! see `envelope.rs`.

use std::io;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::envelope::{LENGTH_PREFIX_BYTES, REQUEST_HEADER_BYTES, encode_request, encode_response};
use crate::{RequestFrame, ResponseFrame};

/// Header bytes both directions have after the length prefix.
const HEADER_BYTES: usize = REQUEST_HEADER_BYTES;

/// One frame read from the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboundFrame {
    /// One whole frame body (length prefix stripped).
    Frame(Bytes),
    /// A frame over the limit; its bytes were skipped. `request_id` and
    /// `api_key` are read from its header so the peer can be answered.
    /// Only meaningful from [`FrameCodec::for_requests`]; a client should
    /// treat an oversize response as fatal for the connection.
    Oversize {
        request_id: u32,
        api_key: u16,
        frame_len: u32,
    },
}

/// A stream that cannot be framed any further.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
    /// The frame cannot even hold its 8-byte header, so it cannot be answered.
    #[error("frame of {frame_len} bytes is shorter than its {HEADER_BYTES}-byte header")]
    FrameTooShort { frame_len: u32 },
    /// The stream ended inside a frame.
    #[error("stream ended inside a frame ({buffered_bytes} bytes buffered)")]
    TruncatedAtEof { buffered_bytes: usize },
    /// A body handed to the encoder does not fit the `u32` length prefix.
    #[error("frame body of {body_bytes} bytes does not fit a u32 length prefix")]
    BodyTooLarge { body_bytes: usize },
}

/// Which header layout an oversize frame's ids are read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    /// `api_key u16 | api_version u16 | request_id u32`
    Requests,
    /// `request_id u32 | api_key u16 | error_code u16`
    Responses,
}

/// Length-prefixed framing with a size limit; see the module doc.
#[derive(Debug, Clone)]
pub struct FrameCodec {
    frame_bytes_max: u32,
    direction: Direction,
    /// Bytes of an oversize frame still to discard (0 when framing normally).
    skip_bytes_remaining: u64,
}

impl FrameCodec {
    /// The codec a broker reads requests with (same as [`FrameCodec::for_requests`]).
    pub fn new(frame_bytes_max: u32) -> FrameCodec {
        FrameCodec::for_requests(frame_bytes_max)
    }

    /// Reads request frames; `Oversize` ids come from the request header.
    pub fn for_requests(frame_bytes_max: u32) -> FrameCodec {
        FrameCodec::with_direction(frame_bytes_max, Direction::Requests)
    }

    /// Reads response frames; `Oversize` ids come from the response header.
    pub fn for_responses(frame_bytes_max: u32) -> FrameCodec {
        FrameCodec::with_direction(frame_bytes_max, Direction::Responses)
    }

    fn with_direction(frame_bytes_max: u32, direction: Direction) -> FrameCodec {
        assert!(
            frame_bytes_max as usize >= HEADER_BYTES,
            "frame_bytes_max {frame_bytes_max} cannot hold a {HEADER_BYTES}-byte header"
        );
        FrameCodec {
            frame_bytes_max,
            direction,
            skip_bytes_remaining: 0,
        }
    }

    pub fn frame_bytes_max(&self) -> u32 {
        self.frame_bytes_max
    }

    /// Drops buffered bytes of an oversize frame; true once it is all gone.
    fn skip(&mut self, src: &mut BytesMut) -> bool {
        let skipped = self.skip_bytes_remaining.min(src.len() as u64);
        src.advance(skipped as usize);
        self.skip_bytes_remaining -= skipped;
        self.skip_bytes_remaining == 0
    }

    /// Reports an oversize frame once its header is buffered and starts
    /// discarding the rest of it.
    fn begin_skip(&mut self, frame_len: u32, src: &mut BytesMut) -> Option<InboundFrame> {
        if src.len() < LENGTH_PREFIX_BYTES + HEADER_BYTES {
            src.reserve(LENGTH_PREFIX_BYTES + HEADER_BYTES - src.len());
            return None;
        }
        let header = &src[LENGTH_PREFIX_BYTES..LENGTH_PREFIX_BYTES + HEADER_BYTES];
        let (request_id, api_key) = match self.direction {
            Direction::Requests => (le_u32(&header[4..8]), le_u16(&header[0..2])),
            Direction::Responses => (le_u32(&header[0..4]), le_u16(&header[4..6])),
        };
        self.skip_bytes_remaining = LENGTH_PREFIX_BYTES as u64 + u64::from(frame_len);
        self.skip(src);
        Some(InboundFrame::Oversize {
            request_id,
            api_key,
            frame_len,
        })
    }
}

impl Decoder for FrameCodec {
    type Item = InboundFrame;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<InboundFrame>, FrameError> {
        if !self.skip(src) || src.len() < LENGTH_PREFIX_BYTES {
            return Ok(None);
        }
        let frame_len = le_u32(&src[..LENGTH_PREFIX_BYTES]);
        if (frame_len as usize) < HEADER_BYTES {
            return Err(FrameError::FrameTooShort { frame_len });
        }
        if frame_len > self.frame_bytes_max {
            return Ok(self.begin_skip(frame_len, src));
        }
        let whole_bytes = LENGTH_PREFIX_BYTES + frame_len as usize;
        if src.len() < whole_bytes {
            src.reserve(whole_bytes - src.len());
            return Ok(None);
        }
        src.advance(LENGTH_PREFIX_BYTES);
        Ok(Some(InboundFrame::Frame(
            src.split_to(frame_len as usize).freeze(),
        )))
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<InboundFrame>, FrameError> {
        if let Some(frame) = self.decode(src)? {
            return Ok(Some(frame));
        }
        if src.is_empty() && self.skip_bytes_remaining == 0 {
            return Ok(None);
        }
        Err(FrameError::TruncatedAtEof {
            buffered_bytes: src.len(),
        })
    }
}

/// Writes `u32 frame_len | body`; `body` is the frame without its prefix.
impl Encoder<&[u8]> for FrameCodec {
    type Error = FrameError;

    fn encode(&mut self, body: &[u8], dst: &mut BytesMut) -> Result<(), FrameError> {
        let frame_len = u32::try_from(body.len()).map_err(|_| FrameError::BodyTooLarge {
            body_bytes: body.len(),
        })?;
        dst.reserve(LENGTH_PREFIX_BYTES + body.len());
        dst.put_u32_le(frame_len);
        dst.put_slice(body);
        Ok(())
    }
}

impl Encoder<Bytes> for FrameCodec {
    type Error = FrameError;

    fn encode(&mut self, body: Bytes, dst: &mut BytesMut) -> Result<(), FrameError> {
        self.encode(&body[..], dst)
    }
}

/// Encodes a whole request frame (what a client sends).
impl Encoder<RequestFrame> for FrameCodec {
    type Error = FrameError;

    fn encode(&mut self, frame: RequestFrame, dst: &mut BytesMut) -> Result<(), FrameError> {
        encode_request(&frame, dst);
        Ok(())
    }
}

/// Encodes a whole response frame (what a broker sends).
impl Encoder<ResponseFrame> for FrameCodec {
    type Error = FrameError;

    fn encode(&mut self, frame: ResponseFrame, dst: &mut BytesMut) -> Result<(), FrameError> {
        encode_response(&frame, dst);
        Ok(())
    }
}

fn le_u16(raw: &[u8]) -> u16 {
    u16::from_le_bytes([raw[0], raw[1]])
}

fn le_u32(raw: &[u8]) -> u32 {
    u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]])
}
