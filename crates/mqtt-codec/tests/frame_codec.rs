//! MqttCodec splits a byte stream into packets however it is chunked (TCP
//! reads or WebSocket messages [MQTT-6.0.0-2]), judges a packet's size
//! before buffering it, keeps the connection's version (fixed by CONNECT),
//! and encodes as its role.

mod common;

use bytes::BytesMut;
use citystream_mqtt_codec::*;
use common::*;
use tokio_util::codec::{Decoder, Encoder};

const VERSIONS: [Version; 2] = [Version::V3_1_1, Version::V5];

/// Feeds `chunks` one at a time, collecting every packet the codec yields.
fn feed(codec: &mut MqttCodec, chunks: &[&[u8]]) -> Vec<Packet> {
    let mut buffer = BytesMut::new();
    let mut packets = Vec::new();
    for chunk in chunks {
        buffer.extend_from_slice(chunk);
        while let Some(packet) = codec.decode(&mut buffer).unwrap() {
            packets.push(packet);
        }
    }
    assert!(buffer.is_empty(), "{} bytes left undecoded", buffer.len());
    packets
}

/// A client stream decodes the same whole, one byte at a time, and in
/// uneven chunks; the server codec learns the version from CONNECT.
#[test]
fn server_decodes_client_stream_however_chunked() {
    for version in VERSIONS {
        let packets = client_packets(version);
        let stream = stream_of(version, &packets);
        let byte_by_byte: Vec<&[u8]> = stream.chunks(1).collect();
        let uneven: Vec<&[u8]> = stream.chunks(7).collect();
        for chunks in [vec![&stream[..]], byte_by_byte, uneven] {
            let mut codec = MqttCodec::server(Limits::default());
            assert_eq!(codec.version(), None);
            assert_eq!(feed(&mut codec, &chunks), packets);
            assert_eq!(codec.version(), Some(version));
        }
    }
}

/// A client codec decodes a server stream the same way.
#[test]
fn client_decodes_server_stream_however_chunked() {
    for version in VERSIONS {
        let packets = server_packets(version);
        let stream = stream_of(version, &packets);
        for chunk_bytes in [1, 3, stream.len()] {
            let chunks: Vec<&[u8]> = stream.chunks(chunk_bytes).collect();
            let mut codec = MqttCodec::client(version, Limits::default());
            assert_eq!(feed(&mut codec, &chunks), packets);
        }
    }
}

/// Several packets in one WebSocket message, and one packet across two
/// messages, decode with `decode_packet` [MQTT-6.0.0-2].
#[test]
fn websocket_messages_need_not_align_with_packets() {
    let version = Version::V5;
    let packets = client_packets(version);
    let stream = stream_of(version, &packets);
    let middle = stream.len() / 2;
    let mut buffer = BytesMut::new();
    let mut decoded = Vec::new();
    for message in [&stream[..middle], &stream[middle..]] {
        buffer.extend_from_slice(message);
        while let Some(packet) =
            decode_packet(version, Role::Server, &mut buffer, &Limits::default()).unwrap()
        {
            decoded.push(packet);
        }
    }
    assert_eq!(decoded, packets);
}

/// An oversize PUBLISH fails once its remaining length is complete, with at
/// most 5 bytes buffered, when delivered a byte at a time.
#[test]
fn oversize_packet_fails_within_five_bytes() {
    let version = Version::V5;
    let mut codec = MqttCodec::server(Limits::default());
    let connect = encode(version, &Packet::Connect(Box::new(connect(version))));
    assert!(feed(&mut codec, &[&connect]).len() == 1);
    let mut big = publish(version, QoS::AtMostOnce, None);
    big.payload = vec![7u8; 2 * 1024 * 1024].into();
    let bytes = encode(version, &Packet::Publish(big));
    let mut buffer = BytesMut::new();
    for &byte in &bytes {
        buffer.extend_from_slice(&[byte]);
        match codec.decode(&mut buffer) {
            Ok(None) => assert!(
                buffer.len() < 5,
                "still waiting with {} bytes",
                buffer.len()
            ),
            Err(DecodeError::PacketTooLarge {
                size_bytes,
                max_bytes,
            }) => {
                assert!(buffer.len() <= 5);
                assert_eq!(size_bytes as usize, bytes.len());
                assert_eq!(max_bytes, Limits::DEFAULT_MAX_PACKET_BYTES);
                return;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    panic!("the oversize packet was never refused");
}

/// A packet just under the limit is buffered as it arrives: announcing it
/// reserves at most 64 KiB, not its whole size.
#[test]
fn announcing_a_large_packet_reserves_little() {
    let mut codec = MqttCodec::client(Version::V3_1_1, Limits::default());
    // PUBLISH with remaining length 1,000,000 (0xC0 0x84 0x3D), then nothing.
    let mut buffer = BytesMut::new();
    buffer.extend_from_slice(&[0x30, 0xC0, 0x84, 0x3D]);
    assert_eq!(codec.decode(&mut buffer), Ok(None));
    assert!(
        buffer.capacity() <= 128 * 1024,
        "reserved {} bytes",
        buffer.capacity()
    );
    assert_eq!(buffer.len(), 4, "nothing consumed while incomplete");
}

/// The first packet fixes the version even when the rest of that CONNECT
/// is bad, so the refusal can go out in the client's format.
#[test]
fn connect_fixes_the_version_even_when_refused() {
    // v5 CONNECT with Receive Maximum 0.
    #[rustfmt::skip]
    let bad = [
        0x10, 0x11, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, 0x02, 0x00, 0x3C,
        0x03, 0x21, 0x00, 0x00, 0x00, 0x01, b'c',
    ];
    let mut codec = MqttCodec::server(Limits::default());
    let error = codec.decode(&mut BytesMut::from(&bad[..])).unwrap_err();
    assert_eq!(error, DecodeError::ZeroValue { id: 0x21 });
    assert_eq!(codec.version(), Some(Version::V5));
    let mut out = BytesMut::new();
    let refusal = Packet::ConnAck(ConnAck {
        session_present: false,
        reason: error.reason_code(),
        properties: ConnAckProperties::default(),
    });
    codec.encode(&refusal, &mut out).unwrap();
    assert_eq!(&out[..], &[0x20, 0x03, 0x00, 0x82, 0x00]);
}

/// After CONNECT, a 3.1.1 connection refuses AUTH, and a second CONNECT
/// decodes as a packet for the broker to refuse.
#[test]
fn version_applies_after_connect() {
    let version = Version::V3_1_1;
    let mut codec = MqttCodec::server(Limits::default());
    let connect_bytes = encode(version, &Packet::Connect(Box::new(connect(version))));
    let packets = feed(&mut codec, &[&connect_bytes, &connect_bytes]);
    assert!(matches!(
        packets[..],
        [Packet::Connect(_), Packet::Connect(_)]
    ));
    let error = codec
        .decode(&mut BytesMut::from(&[0xF0, 0x00][..]))
        .unwrap_err();
    assert_eq!(error, DecodeError::InvalidPacketType { packet_type: 15 });
}

/// A server codec cannot encode before it knows the version, unless told.
#[test]
fn encoding_needs_a_version() {
    let mut codec = MqttCodec::server(Limits::default());
    let refusal = Packet::ConnAck(ConnAck {
        session_present: false,
        reason: ReasonCode::UNSUPPORTED_PROTOCOL_VERSION,
        properties: ConnAckProperties::default(),
    });
    let mut out = BytesMut::new();
    assert!(matches!(
        codec.encode(&refusal, &mut out),
        Err(EncodeError::InvalidState { .. })
    ));
    codec.set_version(Version::V3_1_1);
    codec.encode(refusal, &mut out).unwrap();
    assert_eq!(&out[..], &[0x20, 0x02, 0x00, 0x01]);
}

/// Each codec sends only its side's packets and reason codes: a server no
/// PINGREQ, a client no CONNACK or Session-taken-over DISCONNECT, and a
/// 3.1.1 server no DISCONNECT at all.
#[test]
fn encoding_respects_the_role() {
    let mut server = MqttCodec::server(Limits::default());
    server.set_version(Version::V5);
    let mut out = BytesMut::new();
    assert!(matches!(
        server.encode(Packet::PingReq, &mut out),
        Err(EncodeError::InvalidState { .. })
    ));
    let mut client = MqttCodec::client(Version::V5, Limits::default());
    assert!(client.encode(Packet::PingResp, &mut out).is_err());
    let taken_over = Packet::Disconnect(Disconnect::with_reason(ReasonCode::SESSION_TAKEN_OVER));
    assert_eq!(
        client.encode(&taken_over, &mut out),
        Err(EncodeError::InvalidReasonCode {
            packet_type: PacketType::Disconnect,
            code: 0x8E
        })
    );
    server.encode(&taken_over, &mut out).unwrap();
    assert_eq!(&out[..], &[0xE0, 0x01, 0x8E]);
    let mut v3_server = MqttCodec::server(Limits::default());
    v3_server.set_version(Version::V3_1_1);
    let normal = Packet::Disconnect(Disconnect::normal());
    assert!(matches!(
        v3_server.encode(&normal, &mut out),
        Err(EncodeError::NotInVersion { .. })
    ));
    let mut v3_client = MqttCodec::client(Version::V3_1_1, Limits::default());
    v3_client.encode(&normal, &mut out).unwrap();
    assert_eq!(&out[3..], &[0xE0, 0x00]);
}
