//! The encoder refuses what the decoder would refuse (so we never send a
//! packet our own peer codec rejects), refuses what 3.1.1 cannot express
//! instead of dropping it silently, leaves the buffer untouched on error,
//! and fits packets to the peer's Maximum Packet Size and Request Problem
//! Information as decision 0015 prescribes.

mod common;

use bytes::{Bytes, BytesMut};
use citystream_mqtt_codec::*;
use common::*;

const V3: Version = Version::V3_1_1;
const V5: Version = Version::V5;

fn invalid_state(error: EncodeError) {
    assert!(
        matches!(error, EncodeError::InvalidState { .. }),
        "{error:?}"
    );
}

fn not_in_version(error: EncodeError) {
    assert!(
        matches!(error, EncodeError::NotInVersion { .. }),
        "{error:?}"
    );
}

/// 3.1.1 cannot carry AUTH, properties, 5.0-only options or refusals in
/// acknowledgements; each is an error, never a silent drop.
#[test]
fn what_3_1_1_cannot_express() {
    let auth = Packet::Auth(Auth {
        reason: ReasonCode::SUCCESS,
        properties: AuthProperties::default(),
    });
    not_in_version(encode_err(V3, &auth));
    let publish = Packet::Publish(publish(V5, QoS::AtMostOnce, None));
    not_in_version(encode_err(V3, &publish));
    let refused = Packet::PubAck(Ack {
        reason: ReasonCode::NOT_AUTHORIZED,
        ..Ack::success(pid(1))
    });
    not_in_version(encode_err(V3, &refused));
    let banned = Packet::ConnAck(ConnAck {
        session_present: false,
        reason: ReasonCode::BANNED,
        properties: ConnAckProperties::default(),
    });
    not_in_version(encode_err(V3, &banned));
    let mut options = SubscriptionOptions::with_qos(QoS::AtLeastOnce);
    options.no_local = true;
    let subscribe = Packet::Subscribe(Subscribe {
        packet_id: pid(1),
        subscription_identifier: None,
        user_properties: vec![],
        filters: vec![(bs("a"), options)],
    });
    not_in_version(encode_err(V3, &subscribe));
    let reasoned = Packet::Disconnect(Disconnect::with_reason(ReasonCode::UNSPECIFIED_ERROR));
    not_in_version(encode_err(V3, &reasoned));
    let mut connect = connect(V3);
    connect.username = None;
    not_in_version(encode_err(V3, &Packet::Connect(Box::new(connect))));
}

/// A success code other than 0x00 in a 3.1.1 acknowledgement is simply not
/// written: the 3.1.1 packet already means success.
#[test]
fn v3_success_codes_are_implicit() {
    let no_subscribers = Packet::PubAck(Ack {
        reason: ReasonCode::NO_MATCHING_SUBSCRIBERS,
        ..Ack::success(pid(1))
    });
    assert_eq!(encode(V3, &no_subscribers), [0x40, 0x02, 0x00, 0x01]);
    let unsuback = Packet::UnsubAck(UnsubAck {
        packet_id: pid(1),
        properties: AckProperties::default(),
        reasons: vec![ReasonCode::NO_SUBSCRIPTION_EXISTED],
    });
    assert_eq!(encode(V3, &unsuback), [0xB0, 0x02, 0x00, 0x01]);
}

/// Fields that contradict the spec are refused before anything is written.
#[test]
fn contradictions() {
    let mut qos0_with_id = publish(V5, QoS::AtMostOnce, Some(pid(1)));
    invalid_state(encode_err(V5, &Packet::Publish(qos0_with_id.clone())));
    qos0_with_id.packet_id = None;
    qos0_with_id.dup = true;
    invalid_state(encode_err(V5, &Packet::Publish(qos0_with_id)));
    invalid_state(encode_err(
        V5,
        &Packet::Publish(publish(V5, QoS::AtLeastOnce, None)),
    ));
    for topic in ["a/+", "", "#"] {
        let mut bad_topic = publish(V5, QoS::AtMostOnce, None);
        bad_topic.topic = bs(topic);
        invalid_state(encode_err(V5, &Packet::Publish(bad_topic)));
    }
    let empty_subscribe = Packet::Subscribe(Subscribe {
        packet_id: pid(1),
        subscription_identifier: Some(0),
        user_properties: vec![],
        filters: vec![],
    });
    invalid_state(encode_err(V5, &empty_subscribe));
    let zero_identifier = Packet::Subscribe(Subscribe {
        packet_id: pid(1),
        subscription_identifier: Some(0),
        user_properties: vec![],
        filters: vec![(bs("a"), SubscriptionOptions::with_qos(QoS::AtMostOnce))],
    });
    invalid_state(encode_err(V5, &zero_identifier));
    let present_but_refused = Packet::ConnAck(ConnAck {
        session_present: true,
        reason: ReasonCode::NOT_AUTHORIZED,
        properties: ConnAckProperties::default(),
    });
    invalid_state(encode_err(V5, &present_but_refused));
    let qos2_maximum = ConnAckProperties {
        maximum_qos: Some(QoS::ExactlyOnce),
        ..ConnAckProperties::default()
    };
    let connack = Packet::ConnAck(ConnAck {
        session_present: false,
        reason: ReasonCode::SUCCESS,
        properties: qos2_maximum,
    });
    invalid_state(encode_err(V5, &connack));
    let mut data_without_method = connect(V5);
    data_without_method.properties.authentication_data = Some(bytes(b"d"));
    invalid_state(encode_err(
        V5,
        &Packet::Connect(Box::new(data_without_method)),
    ));
    let mut zero_receive = connect(V5);
    zero_receive.properties.receive_maximum = Some(0);
    invalid_state(encode_err(V5, &Packet::Connect(Box::new(zero_receive))));
    // A CONNECT states its own version; it must match the connection's.
    invalid_state(encode_err(V3, &Packet::Connect(Box::new(connect(V5)))));
}

/// Reason codes outside the packet's table are refused.
#[test]
fn reason_codes_per_packet() {
    let puback = Packet::PubAck(Ack {
        reason: ReasonCode::PACKET_IDENTIFIER_NOT_FOUND,
        ..Ack::success(pid(1))
    });
    assert_eq!(
        encode_err(V5, &puback),
        EncodeError::InvalidReasonCode {
            packet_type: PacketType::PubAck,
            code: 0x92
        }
    );
    let connack = Packet::ConnAck(ConnAck {
        session_present: false,
        reason: ReasonCode::GRANTED_QOS_1,
        properties: ConnAckProperties::default(),
    });
    assert!(matches!(
        encode_err(V5, &connack),
        EncodeError::InvalidReasonCode { .. }
    ));
}

/// Strings and binary data longer than 65,535 bytes, and U+0000 in a
/// string, are refused.
#[test]
fn string_limits() {
    let mut long_topic = publish(V5, QoS::AtMostOnce, None);
    long_topic.topic = ByteStr::from("t".repeat(65_536));
    // Topic syntax (which includes the length) is checked first.
    invalid_state(encode_err(V5, &Packet::Publish(long_topic)));
    let mut long_value = publish(V5, QoS::AtMostOnce, None);
    long_value.properties.user_properties = vec![(bs("k"), ByteStr::from("v".repeat(65_536)))];
    assert_eq!(
        encode_err(V5, &Packet::Publish(long_value)),
        EncodeError::StringTooLong {
            field: "User Property",
            length_bytes: 65_536
        }
    );
    let mut long_password = connect(V5);
    long_password.password = Some(Bytes::from(vec![1u8; 70_000]));
    assert_eq!(
        encode_err(V5, &Packet::Connect(Box::new(long_password))),
        EncodeError::StringTooLong {
            field: "password",
            length_bytes: 70_000
        }
    );
    let mut null = publish(V5, QoS::AtMostOnce, None);
    null.properties.user_properties = vec![(bs("k"), ByteStr::from(String::from("a\0b")))];
    assert_eq!(
        encode_err(V5, &Packet::Publish(null)),
        EncodeError::NullChar {
            field: "User Property"
        }
    );
    let mut max = publish(V3, QoS::AtMostOnce, None);
    max.topic = ByteStr::from("t".repeat(65_535));
    assert!(Packet::Publish(max).encoded_len(V3).is_ok());
}

/// `encoded_len` fails exactly when encoding fails.
#[test]
fn encoded_len_reports_the_same_error() {
    let auth = Packet::Auth(Auth {
        reason: ReasonCode::SUCCESS,
        properties: AuthProperties::default(),
    });
    assert_eq!(auth.encoded_len(V3), Err(encode_err(V3, &auth)));
}

/// A refusing PUBACK with diagnostics, for the peer-limit tests.
fn diagnostic_puback() -> Packet {
    Packet::PubAck(Ack {
        packet_id: pid(1),
        reason: ReasonCode::QUOTA_EXCEEDED,
        properties: AckProperties {
            reason_string: Some(bs("too many messages")),
            user_properties: vec![user("k", "v")],
        },
    })
}

fn encode_within(packet: &Packet, peer: &PeerLimits) -> Result<Vec<u8>, EncodeError> {
    let mut out = BytesMut::new();
    encode_packet_within(V5, Role::Server, packet, peer, &mut out).map(|()| out.to_vec())
}

/// Over the peer's Maximum Packet Size the Reason String goes first, then
/// the User Properties [MQTT-3.4.2-2, 3.4.2-3]; a PUBLISH that does not fit
/// is refused so the broker discards it [MQTT-3.1.2-25].
#[test]
fn fits_the_peer_maximum_packet_size() {
    let packet = diagnostic_puback();
    let full = encode(V5, &packet);
    let peer = |max| PeerLimits {
        max_packet_bytes: Some(max),
        request_problem_information: true,
    };
    assert_eq!(
        encode_within(&packet, &peer(full.len() as u32)),
        Ok(full.clone())
    );
    // Without the 20-byte Reason String: 4 + 1 + 1 + 7 = 13 bytes.
    #[rustfmt::skip]
    let without_reason_string = [
        0x40, 0x0B, 0x00, 0x01, 0x97, 0x07,
        0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'v',
    ];
    assert_eq!(
        encode_within(&packet, &peer(13)),
        Ok(without_reason_string.to_vec())
    );
    assert_eq!(
        encode_within(&packet, &peer(12)),
        Ok(vec![0x40, 0x03, 0x00, 0x01, 0x97])
    );
    assert_eq!(
        encode_within(&packet, &peer(4)),
        Err(EncodeError::TooLargeForPeer {
            size_bytes: 5,
            max_bytes: 4
        })
    );
    let publish = Packet::Publish(publish(V5, QoS::AtLeastOnce, Some(pid(2))));
    let size_bytes = publish.encoded_len(V5).unwrap();
    let max_bytes = size_bytes as u32 - 1;
    assert_eq!(
        encode_within(&publish, &peer(max_bytes)),
        Err(EncodeError::TooLargeForPeer {
            size_bytes,
            max_bytes
        })
    );
}

/// Request Problem Information = 0 strips diagnostics from acknowledgements
/// but not from CONNACK, DISCONNECT or PUBLISH [MQTT-3.1.2-29].
#[test]
fn honours_request_problem_information() {
    let peer = PeerLimits {
        max_packet_bytes: None,
        request_problem_information: false,
    };
    assert_eq!(
        encode_within(&diagnostic_puback(), &peer),
        Ok(vec![0x40, 0x03, 0x00, 0x01, 0x97])
    );
    let disconnect = Packet::Disconnect(Disconnect {
        reason: ReasonCode::SERVER_SHUTTING_DOWN,
        properties: DisconnectProperties {
            reason_string: Some(bs("bye")),
            ..DisconnectProperties::default()
        },
    });
    assert_eq!(
        encode_within(&disconnect, &peer),
        Ok(encode(V5, &disconnect))
    );
    let publish = Packet::Publish(publish(V5, QoS::AtMostOnce, None));
    assert_eq!(encode_within(&publish, &peer), Ok(encode(V5, &publish)));
}
