//! Fixtures shared by the integration tests: short constructors, a decode
//! helper that insists on exactly one complete packet, and one non-trivial
//! instance of every packet each side sends, per version, with distinctive
//! non-default values (a decoder that swaps or drops a field fails to
//! round-trip them).
// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::num::NonZeroU16;

use bytes::{Bytes, BytesMut};
use citystream_mqtt_codec::*;

pub fn bs(text: &'static str) -> ByteStr {
    ByteStr::from(text)
}

pub fn pid(value: u16) -> NonZeroU16 {
    NonZeroU16::new(value).expect("test packet ids are non-zero")
}

pub fn bytes(data: &'static [u8]) -> Bytes {
    Bytes::from_static(data)
}

pub fn user(name: &'static str, value: &'static str) -> (ByteStr, ByteStr) {
    (bs(name), bs(value))
}

/// Large enough for the biggest packet the protocol allows.
pub fn unlimited() -> Limits {
    Limits {
        max_packet_bytes: u32::MAX,
        ..Limits::default()
    }
}

/// The side that receives what `sender` sends.
pub fn receiver_of(sender: Role) -> Role {
    match sender {
        Role::Client => Role::Server,
        Role::Server => Role::Client,
    }
}

/// Decodes `bytes` as exactly one complete packet sent by `sender`.
pub fn decode_with(
    version: Version,
    sender: Role,
    bytes: &[u8],
    limits: &Limits,
) -> Result<Packet, DecodeError> {
    let mut buffer = BytesMut::from(bytes);
    let packet = decode_packet(version, receiver_of(sender), &mut buffer, limits)?
        .expect("the test vector is a complete packet");
    assert!(buffer.is_empty(), "bytes left over after one packet");
    Ok(packet)
}

pub fn decode(version: Version, sender: Role, bytes: &[u8]) -> Result<Packet, DecodeError> {
    decode_with(version, sender, bytes, &Limits::default())
}

pub fn encode(version: Version, packet: &Packet) -> Vec<u8> {
    let mut out = BytesMut::new();
    encode_packet(version, packet, &mut out).expect("the test packet encodes");
    out.to_vec()
}

pub fn encode_err(version: Version, packet: &Packet) -> EncodeError {
    let mut out = BytesMut::from(&b"keep"[..]);
    let error = encode_packet(version, packet, &mut out).expect_err("encoding must fail");
    assert_eq!(
        &out[..],
        b"keep",
        "a failed encode leaves the buffer as it was"
    );
    error
}

/// The CONNECT that opens a connection of `version`.
pub fn connect(version: Version) -> Connect {
    Connect {
        version,
        clean_start: true,
        keep_alive_secs: 30,
        properties: ConnectProperties::default(),
        client_id: bs("client-1"),
        will: None,
        username: Some(bs("user")),
        password: Some(bytes(b"secret")),
    }
}

/// Every packet a client sends, CONNECT first, valid in `version`.
pub fn client_packets(version: Version) -> Vec<Packet> {
    let v5 = version == Version::V5;
    let mut connect = connect(version);
    connect.will = Some(Will {
        qos: QoS::AtLeastOnce,
        retain: true,
        topic: bs("clients/1/status"),
        payload: bytes(b"offline"),
        properties: if v5 {
            WillProperties {
                will_delay_interval_secs: Some(5),
                content_type: Some(bs("text/plain")),
                user_properties: vec![user("w", "1")],
                ..WillProperties::default()
            }
        } else {
            WillProperties::default()
        },
    });
    if v5 {
        connect.properties = ConnectProperties {
            session_expiry_interval_secs: Some(3600),
            receive_maximum: Some(100),
            maximum_packet_size: Some(65_536),
            topic_alias_maximum: Some(10),
            user_properties: vec![user("a", "1"), user("b", "2")],
            ..ConnectProperties::default()
        };
    }
    let mut packets = vec![
        Packet::Connect(Box::new(connect)),
        Packet::Publish(publish(version, QoS::AtMostOnce, None)),
        Packet::Publish(publish(version, QoS::AtLeastOnce, Some(pid(1)))),
        Packet::Publish(publish(version, QoS::ExactlyOnce, Some(pid(2)))),
        Packet::PubAck(Ack::success(pid(7))),
        Packet::PubRec(Ack::success(pid(8))),
        Packet::PubRel(Ack::success(pid(2))),
        Packet::PubComp(Ack::success(pid(9))),
        Packet::Subscribe(subscribe(version)),
        Packet::Unsubscribe(Unsubscribe {
            packet_id: pid(4),
            user_properties: if v5 { vec![user("u", "x")] } else { vec![] },
            filters: vec![bs("a/+"), bs("$share/g/b/#")],
        }),
        Packet::PingReq,
    ];
    if v5 {
        packets.push(Packet::Auth(Auth {
            reason: ReasonCode::RE_AUTHENTICATE,
            properties: AuthProperties {
                authentication_method: Some(bs("SCRAM-SHA-1")),
                authentication_data: Some(bytes(b"\x01\x02")),
                ..AuthProperties::default()
            },
        }));
    }
    packets.push(Packet::Disconnect(Disconnect::normal()));
    packets
}

/// Every packet a server sends, valid in `version`.
pub fn server_packets(version: Version) -> Vec<Packet> {
    let v5 = version == Version::V5;
    let mut packets = vec![
        Packet::ConnAck(ConnAck {
            session_present: true,
            reason: ReasonCode::SUCCESS,
            properties: if v5 {
                ConnAckProperties {
                    receive_maximum: Some(20),
                    maximum_qos: Some(QoS::AtLeastOnce),
                    assigned_client_identifier: Some(bs("auto-1")),
                    user_properties: vec![user("region", "eu")],
                    ..ConnAckProperties::default()
                }
            } else {
                ConnAckProperties::default()
            },
        }),
        Packet::Publish(publish(version, QoS::AtLeastOnce, Some(pid(11)))),
        Packet::PubAck(Ack::success(pid(1))),
        Packet::PubRec(Ack::success(pid(2))),
        Packet::PubRel(Ack::success(pid(12))),
        Packet::PubComp(Ack::success(pid(2))),
        Packet::SubAck(SubAck {
            packet_id: pid(3),
            properties: AckProperties::default(),
            reasons: vec![
                ReasonCode::GRANTED_QOS_1,
                ReasonCode::GRANTED_QOS_0,
                ReasonCode::UNSPECIFIED_ERROR,
            ],
        }),
        Packet::UnsubAck(UnsubAck {
            packet_id: pid(4),
            properties: AckProperties::default(),
            reasons: if v5 {
                vec![ReasonCode::SUCCESS, ReasonCode::NO_SUBSCRIPTION_EXISTED]
            } else {
                vec![]
            },
        }),
        Packet::PingResp,
    ];
    if v5 {
        packets.push(Packet::Auth(Auth {
            reason: ReasonCode::CONTINUE_AUTHENTICATION,
            properties: AuthProperties {
                authentication_method: Some(bs("SCRAM-SHA-1")),
                ..AuthProperties::default()
            },
        }));
        packets.push(Packet::Disconnect(Disconnect::with_reason(
            ReasonCode::SERVER_SHUTTING_DOWN,
        )));
    }
    packets
}

pub fn publish(version: Version, qos: QoS, packet_id: Option<NonZeroU16>) -> Publish {
    Publish {
        dup: false,
        qos,
        retain: qos == QoS::AtLeastOnce,
        topic: bs("sensors/room-1/temperature"),
        packet_id,
        properties: if version == Version::V5 {
            PublishProperties {
                payload_format_indicator: Some(true),
                message_expiry_interval_secs: Some(60),
                user_properties: vec![user("unit", "celsius")],
                ..PublishProperties::default()
            }
        } else {
            PublishProperties::default()
        },
        payload: bytes(b"21.5"),
    }
}

fn subscribe(version: Version) -> Subscribe {
    let v5 = version == Version::V5;
    let mut fancy = SubscriptionOptions::with_qos(QoS::AtLeastOnce);
    if v5 {
        fancy.retain_as_published = true;
        fancy.retain_handling = RetainHandling::DoNotSend;
    }
    Subscribe {
        packet_id: pid(3),
        subscription_identifier: v5.then_some(42),
        user_properties: vec![],
        filters: vec![
            (bs("sensors/+/temperature"), fancy),
            (bs("#"), SubscriptionOptions::with_qos(QoS::AtMostOnce)),
            (
                bs("$share/group/jobs"),
                SubscriptionOptions::with_qos(QoS::ExactlyOnce),
            ),
        ],
    }
}

/// The bytes of `packets`, one after another.
pub fn stream_of(version: Version, packets: &[Packet]) -> Vec<u8> {
    packets
        .iter()
        .flat_map(|packet| encode(version, packet))
        .collect()
}
