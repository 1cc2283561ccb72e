//! Framing: fixed-header types and flags, variable byte integers, lengths
//! against their container, trailing bytes, size limit, end of stream, and
//! packets only the other side receives.

use super::*;

/// Fixed-header flags follow Table 2-2 (v5-18, v5-28, v3-11), a PUBLISH has
/// no QoS 3 [MQTT-3.3.1-4] and no DUP at QoS 0 [MQTT-3.3.1-2] (v5-16).
#[test]
fn fixed_header_flags() {
    let cases = [
        (0x80, PacketType::Subscribe, 0x0),
        (0x60, PacketType::PubRel, 0x0),
        (0xA0, PacketType::Unsubscribe, 0x0),
        (0xC1, PacketType::PingReq, 0x1),
        (0x12, PacketType::Connect, 0x2),
        (0x38, PacketType::Publish, 0x8),
        (0x4F, PacketType::PubAck, 0xF),
        (0xE2, PacketType::Disconnect, 0x2),
    ];
    for version in [V3, V5] {
        for (first, packet_type, flags) in cases {
            let expected = DecodeError::InvalidFlags { packet_type, flags };
            assert_refused(version, Role::Client, &[first, 0x00], expected, MALFORMED);
        }
        let expected = DecodeError::InvalidQoS {
            field: "PUBLISH",
            value: 3,
        };
        assert_refused(version, Role::Client, &[0x36, 0x00], expected, MALFORMED);
    }
    // CONNACK's acknowledge flags bits 7-1 are reserved [MQTT-3.2.2-1].
    let expected = DecodeError::InvalidFlags {
        packet_type: PacketType::ConnAck,
        flags: 0x02,
    };
    assert_refused(
        V5,
        Role::Server,
        &[0x20, 0x03, 0x02, 0x00, 0x00],
        expected,
        MALFORMED,
    );
}

/// Packet type 0 is reserved; 15 (AUTH) does not exist in 3.1.1.
#[test]
fn invalid_packet_types() {
    let expected = DecodeError::InvalidPacketType { packet_type: 0 };
    assert_refused(V5, Role::Client, &[0x00, 0x00], expected, MALFORMED);
    let expected = DecodeError::InvalidPacketType { packet_type: 15 };
    assert_refused(V3, Role::Client, &[0xF0, 0x00], expected.clone(), MALFORMED);
    assert_refused(V3, Role::Server, &[0xF0, 0x00], expected, MALFORMED);
}

/// A remaining length of 5 bytes, or not in its minimal form
/// [MQTT-1.5.5-1], is malformed; so is a 5-byte property length or
/// Subscription Identifier.
#[test]
fn malformed_variable_byte_integers() {
    let remaining = DecodeError::MalformedVarInt {
        field: "remaining length",
    };
    for bytes in [
        &[0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01][..],
        &[0x30, 0x80, 0x00],
        &[0x30, 0xFF, 0x80, 0x00],
    ] {
        assert_refused(V5, Role::Client, bytes, remaining.clone(), MALFORMED);
    }
    let property_length = frame(0x30, &[0x00, 0x01, b't', 0xFF, 0xFF, 0xFF, 0xFF, 0x01]);
    let expected = DecodeError::MalformedVarInt {
        field: "property length",
    };
    assert_refused(V5, Role::Client, &property_length, expected, MALFORMED);
    let identifier = frame(
        0x30,
        &[0x00, 0x01, b't', 0x06, 0x0B, 0xFF, 0xFF, 0xFF, 0xFF, 0x01],
    );
    let expected = DecodeError::MalformedVarInt {
        field: "Subscription Identifier",
    };
    assert_refused(V5, Role::Server, &identifier, expected.clone(), MALFORMED);
    let non_minimal = frame(0x30, &[0x00, 0x01, b't', 0x03, 0x0B, 0x81, 0x00]);
    assert_refused(V5, Role::Server, &non_minimal, expected, MALFORMED);
}

/// Lengths that run past their container are Truncated, never "need more":
/// a property list past the body, a string past the property list, a
/// client id past the body.
#[test]
fn lengths_past_their_container() {
    let list = frame(0x30, &[0x00, 0x01, b't', 0x05, 0x01, 0x01]);
    let expected = DecodeError::Truncated {
        field: "property list",
    };
    assert_refused(V5, Role::Client, &list, expected, MALFORMED);
    let string = frame(
        0x30,
        &[0x00, 0x01, b't', 0x04, 0x03, 0x00, 0x05, b'a', b'b', b'c'],
    );
    let expected = DecodeError::Truncated {
        field: "Content Type",
    };
    assert_refused(V5, Role::Client, &string, expected, MALFORMED);
    let client_id = connect_frame(4, 0x02, &[], &[0x00, 0x05, b'c']);
    let expected = DecodeError::Truncated {
        field: "client identifier",
    };
    assert_refused(V3, Role::Client, &client_id, expected, MALFORMED);
    let packet_id = [0x40, 0x01, 0x00];
    let expected = DecodeError::Truncated {
        field: "packet identifier",
    };
    assert_refused(V5, Role::Client, &packet_id, expected, MALFORMED);
}

/// Bytes after the last field are malformed (v5-08, v5-30).
#[test]
fn trailing_bytes() {
    let mut bytes = connect_frame(5, 0x02, &[], &[0x00, 0x01, b'c', 0xFF]);
    let expected = DecodeError::TrailingBytes {
        packet_type: PacketType::Connect,
        count: 1,
    };
    assert_refused(V5, Role::Client, &bytes, expected, MALFORMED);
    bytes = vec![0xC0, 0x01, 0x00];
    let expected = DecodeError::TrailingBytes {
        packet_type: PacketType::PingReq,
        count: 1,
    };
    assert_refused(V5, Role::Client, &bytes, expected, MALFORMED);
    let expected = DecodeError::TrailingBytes {
        packet_type: PacketType::Disconnect,
        count: 1,
    };
    assert_refused(V3, Role::Client, &[0xE0, 0x01, 0x00], expected, MALFORMED);
    let expected = DecodeError::TrailingBytes {
        packet_type: PacketType::PubAck,
        count: 1,
    };
    assert_refused(
        V3,
        Role::Client,
        &[0x40, 0x03, 0x00, 0x01, 0x00],
        expected,
        MALFORMED,
    );
    let expected = DecodeError::TrailingBytes {
        packet_type: PacketType::UnsubAck,
        count: 1,
    };
    assert_refused(
        V3,
        Role::Server,
        &[0xB0, 0x03, 0x00, 0x01, 0x00],
        expected,
        MALFORMED,
    );
}

/// Each side refuses the packet types only the other side receives.
#[test]
fn packets_from_the_wrong_side() {
    let from_client = [
        (vec![0x20, 0x03, 0x00, 0x00, 0x00], PacketType::ConnAck),
        (vec![0x90, 0x03, 0x00, 0x01, 0x00], PacketType::SubAck),
        (vec![0xB0, 0x02, 0x00, 0x01], PacketType::UnsubAck),
        (vec![0xD0, 0x00], PacketType::PingResp),
    ];
    for (bytes, packet_type) in from_client {
        let expected = DecodeError::UnexpectedPacket { packet_type };
        assert_refused(V5, Role::Client, &bytes, expected.clone(), PROTOCOL);
        assert_refused(V3, Role::Client, &bytes, expected, PROTOCOL);
    }
    let from_server = [
        (connect_frame(5, 0x02, &[], CLIENT_ID), PacketType::Connect),
        (
            frame(0x82, &[0x00, 0x01, 0x00, 0x00, 0x01, b't', 0x00]),
            PacketType::Subscribe,
        ),
        (
            frame(0xA2, &[0x00, 0x01, 0x00, 0x00, 0x01, b't']),
            PacketType::Unsubscribe,
        ),
        (vec![0xC0, 0x00], PacketType::PingReq),
    ];
    for (bytes, packet_type) in from_server {
        let expected = DecodeError::UnexpectedPacket { packet_type };
        assert_refused(V5, Role::Server, &bytes, expected, PROTOCOL);
    }
}

/// v5-34: a header announcing 256 MiB fails as soon as its remaining length
/// is known, with 0x95, before the rest arrives.
#[test]
fn oversize_packet() {
    let mut buffer = BytesMut::from(&[0x30, 0xFF, 0xFF, 0xFF, 0x7F, 1, 2, 3, 4, 5, 6][..]);
    let error = decode_packet(V5, Role::Server, &mut buffer, &Limits::default()).unwrap_err();
    let expected = DecodeError::PacketTooLarge {
        size_bytes: 268_435_460,
        max_bytes: 1024 * 1024,
    };
    assert_eq!(error, expected);
    assert_eq!(error.reason_code(), ReasonCode::PACKET_TOO_LARGE);
}

/// The stream ending inside a packet is an error at end of input.
#[test]
fn eof_inside_a_packet() {
    let mut codec = MqttCodec::client(V5, Limits::default());
    let mut buffer = BytesMut::from(&[0x30, 0x05, 0x00][..]);
    assert_eq!(
        codec.decode_eof(&mut buffer),
        Err(DecodeError::UnexpectedEof { buffered_bytes: 3 })
    );
    assert_eq!(codec.decode_eof(&mut BytesMut::new()), Ok(None));
}
