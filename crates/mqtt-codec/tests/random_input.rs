//! The decoders never panic on arbitrary input, and whatever they accept
//! re-encodes to bytes that decode to the same packet: a few thousand seeded
//! pseudo-random byte strings and mutations of valid streams go through the
//! client codec (both versions), the server codec (cold, and after a valid
//! CONNECT of each version), with a small packet limit and two-piece
//! delivery, and through `decode_packet` in both versions and roles. This is the stable-Rust companion of the
//! `fuzz/` target `mqtt_decoder`, so CI exercises the same paths without
//! nightly.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::BytesMut;
use citystream_mqtt_codec::*;
use common::*;
use tokio_util::codec::Decoder;

const RANDOM_INPUTS: usize = 3_000;
const MUTATED_INPUTS: usize = 3_000;
/// Small enough that random remaining lengths often exceed it.
const SMALL_LIMITS: Limits = Limits {
    max_packet_bytes: 256,
    max_user_properties: 4,
    max_topic_filters: 4,
};

/// Packets decoded (and re-encoded) so far, to show mutation reaches deep.
static DECODED_PACKETS: AtomicUsize = AtomicUsize::new(0);

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

/// A decoded packet must re-encode, and the re-encoding must decode to it.
fn assert_re_encodes(version: Version, receiver: Role, packet: &Packet) {
    // A CONNECT is decoded by its own protocol level.
    let version = match packet {
        Packet::Connect(connect) => connect.version,
        _ => version,
    };
    let mut out = BytesMut::new();
    encode_packet(version, packet, &mut out)
        .unwrap_or_else(|error| panic!("decoded {packet:?} does not re-encode: {error}"));
    let again = decode_packet(version, receiver, &mut out, &unlimited());
    assert_eq!(again, Ok(Some(packet.clone())));
    DECODED_PACKETS.fetch_add(1, Ordering::Relaxed);
}

/// Runs one input through every decoding path.
fn exercise(input: &[u8]) {
    for version in [Version::V3_1_1, Version::V5] {
        for receiver in [Role::Server, Role::Client] {
            let mut buffer = BytesMut::from(input);
            while let Ok(Some(packet)) =
                decode_packet(version, receiver, &mut buffer, &SMALL_LIMITS)
            {
                assert_re_encodes(version, receiver, &packet);
            }
        }
        stream(MqttCodec::client(version, SMALL_LIMITS), &[], input);
        // A connected server codec reaches every packet after CONNECT.
        let connect = encode(version, &Packet::Connect(Box::new(connect(version))));
        stream(MqttCodec::server(SMALL_LIMITS), &connect, input);
    }
    stream(MqttCodec::server(SMALL_LIMITS), &[], input);
}

/// Delivers `prefix`, then the input in two pieces as a socket might.
fn stream(mut codec: MqttCodec, prefix: &[u8], input: &[u8]) {
    let split_at = input
        .first()
        .map_or(0, |&byte| usize::from(byte))
        .min(input.len());
    let mut buffer = BytesMut::from(prefix);
    for piece in [&input[..split_at], &input[split_at..]] {
        buffer.extend_from_slice(piece);
        while let Ok(Some(packet)) = codec.decode(&mut buffer) {
            let version = codec
                .version()
                .expect("a packet was decoded, so the version is known");
            assert_re_encodes(version, codec.role(), &packet);
        }
    }
    let _ = codec.decode_eof(&mut buffer);
}

/// Purely random bytes never make a decoder panic.
#[test]
fn random_bytes_never_panic() {
    let mut rng = XorShift(0x5eed_0001);
    for _ in 0..RANDOM_INPUTS {
        let len = rng.below(64);
        exercise(&rng.bytes(len));
    }
}

/// Valid streams with a few bytes overwritten, cut or extended never make a
/// decoder panic, and what still decodes re-encodes faithfully.
#[test]
fn mutated_streams_never_panic() {
    let mut rng = XorShift(0x5eed_0002);
    let mut valid = Vec::new();
    for version in [Version::V3_1_1, Version::V5] {
        valid.push(stream_of(version, &client_packets(version)));
        valid.push(stream_of(version, &server_packets(version)));
        for packet in client_packets(version)
            .iter()
            .chain(&server_packets(version))
        {
            valid.push(encode(version, packet));
        }
    }
    for _ in 0..MUTATED_INPUTS {
        let mut input = valid[rng.below(valid.len())].clone();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(input.len());
            input[at] = rng.next() as u8;
        }
        match rng.below(3) {
            0 => input.truncate(rng.below(input.len() + 1)),
            1 => {
                let extra = rng.below(8);
                input.extend(rng.bytes(extra));
            }
            _ => {}
        }
        exercise(&input);
    }
    // Most mutations leave some packets intact; if none decoded, the test
    // would be exercising only the error paths.
    let decoded = DECODED_PACKETS.load(Ordering::Relaxed);
    assert!(decoded > MUTATED_INPUTS, "only {decoded} packets decoded");
}
