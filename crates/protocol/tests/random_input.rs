//! The decoders never panic on arbitrary input: a few thousand seeded
//! pseudo-random byte strings and mutations of valid frames go through
//! FrameCodec, decode_request and decode_response. This is the stable-Rust
//! companion of the `fuzz/` target `frame_decoder`, so CI exercises the same
//! paths without nightly.

mod common;

use bytes::BytesMut;
use citystream_protocol::*;
use common::*;
use tokio_util::codec::Decoder;

const RANDOM_INPUTS: usize = 3_000;
const MUTATED_INPUTS: usize = 3_000;

/// xorshift64*: tiny, seeded, good enough to scatter bytes.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// Runs one input through every decoding path; only panics count as failure.
fn exercise(input: &[u8]) {
    let _ = decode_request(bytes::Bytes::copy_from_slice(input));
    let _ = decode_response(bytes::Bytes::copy_from_slice(input));
    for mut codec in [
        FrameCodec::for_requests(256),
        FrameCodec::for_responses(256),
    ] {
        let mut buffer = BytesMut::from(input);
        while let Ok(Some(frame)) = codec.decode(&mut buffer) {
            if let InboundFrame::Frame(body) = frame {
                let _ = decode_request(body.clone());
                let _ = decode_response(body);
            }
        }
        let _ = codec.decode_eof(&mut buffer);
    }
}

/// Purely random bytes never make a decoder panic.
#[test]
fn random_bytes_never_panic() {
    let mut rng = XorShift(0x5eed_0001);
    for _ in 0..RANDOM_INPUTS {
        let len = rng.below(96);
        exercise(&rng.bytes(len));
    }
}

/// Valid frames with a few bytes overwritten, cut or extended never make a
/// decoder panic; mutations of valid input reach far deeper than noise.
#[test]
fn mutated_frames_never_panic() {
    let mut rng = XorShift(0x5eed_0002);
    let mut valid: Vec<Vec<u8>> = all_requests()
        .iter()
        .map(|frame| encoded_request(frame).to_vec())
        .collect();
    valid.extend(all_responses().iter().map(|f| encoded_response(f).to_vec()));
    for _ in 0..MUTATED_INPUTS {
        let mut input = valid[rng.below(valid.len())].clone();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(input.len());
            input[at] = rng.next() as u8;
        }
        match rng.below(3) {
            0 => input.truncate(rng.below(input.len() + 1)),
            1 => {
                let extra_len = rng.below(8);
                input.extend(rng.bytes(extra_len));
            }
            _ => {}
        }
        exercise(&input);
    }
}
