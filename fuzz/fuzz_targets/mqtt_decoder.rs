//! Feeds arbitrary bytes through every decoding path of the MQTT codec
//! (`citystream-mqtt-codec`): `decode_packet` in both versions and both
//! roles, the client codec in both versions, and the server codec both cold
//! (the input must begin with CONNECT) and after a valid 3.1.1 or 5.0
//! CONNECT, so everything a connected client can send is reached. Codecs get
//! the input in two pieces, as a socket might, and a small packet limit so
//! the size check is reached. Every decoded packet is re-encoded, and the
//! re-encoding must decode to the same packet. Must never panic.
//! The stable-Rust companion is `crates/mqtt-codec/tests/random_input.rs`.
//! Seeds: `fuzz/seeds/mqtt_decoder/` holds the byte vectors of
//! `crates/mqtt-codec/tests/exact_bytes/`; run
//! `cargo +nightly fuzz run mqtt_decoder fuzz/seeds/mqtt_decoder -- -max_total_time=60`.
#![no_main]

use bytes::BytesMut;
use citystream_mqtt_codec::{
    Limits, MqttCodec, Packet, Role, Version, decode_packet, encode_packet,
};
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::Decoder;

/// Small enough that fuzzed remaining lengths often exceed it.
const SMALL_LIMITS: Limits = Limits {
    max_packet_bytes: 512,
    max_user_properties: 8,
    max_topic_filters: 8,
};

/// A minimal CONNECT of each version (client id "c", clean start).
const CONNECT_V3: &[u8] = &[
    0x10, 0x0D, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x3C, 0x00, 0x01, b'c',
];
const CONNECT_V5: &[u8] = &[
    0x10, 0x0E, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, 0x02, 0x00, 0x3C, 0x00, 0x00, 0x01, b'c',
];

fuzz_target!(|input: &[u8]| {
    for version in [Version::V3_1_1, Version::V5] {
        for receiver in [Role::Server, Role::Client] {
            let mut buffer = BytesMut::from(input);
            while let Ok(Some(packet)) =
                decode_packet(version, receiver, &mut buffer, &SMALL_LIMITS)
            {
                assert_re_encodes(version, receiver, &packet);
            }
        }
        deliver(MqttCodec::client(version, SMALL_LIMITS), &[], input);
    }
    for prefix in [&[][..], CONNECT_V3, CONNECT_V5] {
        deliver(MqttCodec::server(SMALL_LIMITS), prefix, input);
    }
});

/// Delivers `prefix` then the input in two pieces, decoding every packet.
fn deliver(mut codec: MqttCodec, prefix: &[u8], input: &[u8]) {
    let split_at = input
        .first()
        .map_or(0, |&byte| usize::from(byte))
        .min(input.len());
    let mut buffer = BytesMut::from(prefix);
    for piece in [&input[..split_at], &input[split_at..]] {
        buffer.extend_from_slice(piece);
        while let Ok(Some(packet)) = codec.decode(&mut buffer) {
            let version = codec.version().expect("a decoded packet fixes the version");
            assert_re_encodes(version, codec.role(), &packet);
        }
    }
    let _ = codec.decode_eof(&mut buffer);
}

/// Whatever decodes must re-encode to bytes that decode to the same packet.
fn assert_re_encodes(version: Version, receiver: Role, packet: &Packet) {
    // A CONNECT is decoded by its own protocol level.
    let version = match packet {
        Packet::Connect(connect) => connect.version,
        _ => version,
    };
    let mut out = BytesMut::new();
    encode_packet(version, packet, &mut out).expect("a decoded packet re-encodes");
    let unlimited = Limits {
        max_packet_bytes: u32::MAX,
        ..SMALL_LIMITS
    };
    let again = decode_packet(version, receiver, &mut out, &unlimited);
    assert_eq!(again, Ok(Some(packet.clone())));
}
