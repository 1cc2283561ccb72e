//! Feeds arbitrary bytes through every decoding path of the native protocol:
//! FrameCodec (request and response direction, with a small frame limit so
//! the oversize-skip state machine is reached), then decode_request and
//! decode_response on each frame and on the raw input. Must never panic.
//! The stable-Rust companion is `crates/protocol/tests/random_input.rs`.
#![no_main]

use bytes::{Bytes, BytesMut};
use citystream_protocol::{FrameCodec, InboundFrame, decode_request, decode_response};
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::Decoder;

/// Small enough that fuzzed frames often exceed it.
const FRAME_BYTES_MAX: u32 = 256;

fuzz_target!(|input: &[u8]| {
    let raw = Bytes::copy_from_slice(input);
    let _ = decode_request(raw.clone());
    let _ = decode_response(raw);
    for codec in [
        FrameCodec::for_requests(FRAME_BYTES_MAX),
        FrameCodec::for_responses(FRAME_BYTES_MAX),
    ] {
        frame_stream(codec, input);
    }
});

/// Delivers the input in two pieces, as a socket might, decoding every frame.
fn frame_stream(mut codec: FrameCodec, input: &[u8]) {
    let split_at = input
        .first()
        .map_or(0, |&b| usize::from(b))
        .min(input.len());
    let mut buffer = BytesMut::new();
    for piece in [&input[..split_at], &input[split_at..]] {
        buffer.extend_from_slice(piece);
        while let Ok(Some(frame)) = codec.decode(&mut buffer) {
            if let InboundFrame::Frame(body) = frame {
                let _ = decode_request(body.clone());
                let _ = decode_response(body);
            }
        }
    }
    let _ = codec.decode_eof(&mut buffer);
}
