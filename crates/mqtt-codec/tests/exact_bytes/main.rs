//! Hand-written byte vectors, taken from the byte layouts of the MQTT 3.1.1
//! and 5.0 specifications (not produced by our encoder), pin every packet in
//! both versions and directions: an accidental change to field order, a flag
//! bit, a length or a property id fails here even if round trips still pass.
//! Between them the 5.0 vectors carry all 27 property ids. 3.1.1 is in
//! `v3.rs`; 5.0 in `v5_connection.rs` (CONNECT, CONNACK, DISCONNECT, AUTH,
//! PING) and `v5_messages.rs` (PUBLISH, acknowledgements, SUBSCRIBE,
//! UNSUBSCRIBE); remaining-length boundaries are here.

#[path = "../common/mod.rs"]
mod common;
mod v3;
mod v5_connection;
mod v5_messages;

use bytes::{Bytes, BytesMut};
use citystream_mqtt_codec::*;
use common::*;

const V3: Version = Version::V3_1_1;
const V5: Version = Version::V5;

/// Encodes to exactly `expected`, decodes back to `packet`, and
/// `encoded_len` agrees.
fn assert_exact(version: Version, sender: Role, packet: Packet, expected: &[u8]) {
    assert_eq!(encode(version, &packet), expected, "encoding of {packet:?}");
    assert_eq!(decode(version, sender, expected), Ok(packet.clone()));
    assert_eq!(packet.encoded_len(version), Ok(expected.len()));
}

/// A form the decoder accepts but the encoder does not produce (a longer
/// equivalent of a short form).
fn assert_decodes_to(version: Version, sender: Role, bytes: &[u8], packet: Packet) {
    assert_eq!(decode(version, sender, bytes), Ok(packet));
}

/// A 3.1.1 QoS 0 PUBLISH to "t" whose remaining length is `remaining`.
fn publish_with_remaining(remaining: usize) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: bs("t"),
        packet_id: None,
        properties: PublishProperties::default(),
        // Zeroed memory from the allocator is not touched until written, so
        // even the 256 MiB case costs nothing when only measured.
        payload: Bytes::from(vec![0u8; remaining - 3]),
    })
}

/// The remaining length takes 1, 2, 3 and 4 bytes at the Table 1-1
/// boundaries, and such packets decode.
#[test]
fn remaining_length_boundaries() {
    let cases: &[(usize, &[u8])] = &[
        (127, &[0x30, 0x7F]),
        (128, &[0x30, 0x80, 0x01]),
        (16_383, &[0x30, 0xFF, 0x7F]),
        (16_384, &[0x30, 0x80, 0x80, 0x01]),
        (2_097_151, &[0x30, 0xFF, 0xFF, 0x7F]),
        (2_097_152, &[0x30, 0x80, 0x80, 0x80, 0x01]),
    ];
    for &(remaining, header) in cases {
        let packet = publish_with_remaining(remaining);
        let mut out = BytesMut::new();
        encode_packet(V3, &packet, &mut out).unwrap();
        assert_eq!(&out[..header.len()], header, "remaining {remaining}");
        assert_eq!(&out[header.len()..header.len() + 3], &[0x00, 0x01, b't']);
        assert_eq!(out.len(), header.len() + remaining);
        assert_eq!(
            decode_with(V3, Role::Client, &out, &unlimited()),
            Ok(packet)
        );
    }
}

/// 268,435,455 is the largest remaining length (`FF FF FF 7F`); one more
/// cannot be encoded.
#[test]
fn remaining_length_maximum() {
    let largest = publish_with_remaining(268_435_455);
    assert_eq!(largest.encoded_len(V3), Ok(5 + 268_435_455));
    let too_large = publish_with_remaining(268_435_456);
    assert_eq!(
        too_large.encoded_len(V3),
        Err(EncodeError::RemainingLengthOverflow {
            remaining_bytes: 268_435_456
        })
    );
    // The header alone is accepted (and waits for the body) under no limit.
    let mut header = BytesMut::from(&[0x30, 0xFF, 0xFF, 0xFF, 0x7F][..]);
    assert_eq!(
        decode_packet(V3, Role::Server, &mut header, &unlimited()),
        Ok(None)
    );
    assert_eq!(header.len(), 5);
}
