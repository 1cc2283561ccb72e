//! CONNECT: protocol name and level, the first-packet rule, connect flags,
//! the Will and the 3.1.1 client-id rule.

use super::*;

/// A server codec refuses anything but CONNECT first [MQTT-3.1.0-1], and a
/// CONNECT of a level or name it does not speak.
#[test]
fn first_packet_rules() {
    let mut codec = MqttCodec::server(Limits::default());
    let mut buffer = BytesMut::from(&[0xC0, 0x00][..]);
    let expected = DecodeError::UnexpectedPacket {
        packet_type: PacketType::PingReq,
    };
    assert_eq!(codec.decode(&mut buffer), Err(expected));

    let mqisdp = frame(
        0x10,
        &[
            0, 6, b'M', b'Q', b'I', b's', b'd', b'p', 3, 2, 0, 60, 0, 1, b'c',
        ],
    );
    let mqtt6 = connect_frame(6, 0x02, &[], CLIENT_ID);
    for (bytes, level) in [(mqisdp, 3), (mqtt6, 6)] {
        let mut codec = MqttCodec::server(Limits::default());
        let error = codec.decode(&mut BytesMut::from(&bytes[..])).unwrap_err();
        assert_eq!(error, DecodeError::UnsupportedProtocol { level });
        assert_eq!(
            error.reason_code(),
            ReasonCode::UNSUPPORTED_PROTOCOL_VERSION
        );
        assert_eq!(error.v3_connack_code(), Some(0x01));
        assert_eq!(codec.version(), None);
    }
    let mut http = connect_frame(4, 0x02, &[], CLIENT_ID);
    http[4..8].copy_from_slice(b"HTTP");
    let error = decode(V3, Role::Client, &http).unwrap_err();
    assert_eq!(error, DecodeError::UnknownProtocolName);
    assert_eq!(error.v3_connack_code(), None);
}

/// The CONNECT reserved flag is 0 [MQTT-3.1.2-3] (v5-03, v3-03).
#[test]
fn connect_reserved_flag() {
    for level in [4, 5] {
        let version = if level == 4 { V3 } else { V5 };
        let bytes = connect_frame(level, 0x03, &[], CLIENT_ID);
        let expected = DecodeError::InvalidConnectFlags { flags: 0x03 };
        assert_refused(version, Role::Client, &bytes, expected, MALFORMED);
    }
}

/// Without the Will Flag, Will QoS and Will Retain are 0
/// [MQTT-3.1.2-11, 3.1.2-13] (v5-04); Will QoS 3 is malformed [MQTT-3.1.2-12].
#[test]
fn will_flags() {
    for flags in [0x0A, 0x22] {
        let bytes = connect_frame(5, flags, &[], CLIENT_ID);
        let expected = DecodeError::InvalidConnectFlags { flags };
        assert_refused(V5, Role::Client, &bytes, expected, MALFORMED);
    }
    let will = [0x00, 0x01, b'c', 0x00, 0x00, 0x01, b'w', 0x00, 0x00];
    let bytes = connect_frame(5, 0x1E, &[], &will);
    let expected = DecodeError::InvalidQoS {
        field: "Will QoS",
        value: 3,
    };
    assert_refused(V5, Role::Client, &bytes, expected, MALFORMED);
}

/// 3.1.1 needs a user name for a password [MQTT-3.1.2-22 of 3.1.1].
#[test]
fn v3_password_without_user_name() {
    let payload = [0x00, 0x01, b'c', 0x00, 0x01, b'p'];
    let bytes = connect_frame(4, 0x42, &[], &payload);
    let expected = DecodeError::InvalidConnectFlags { flags: 0x42 };
    assert_refused(V3, Role::Client, &bytes, expected, MALFORMED);
}

/// The Will topic is a topic name, and its Response Topic too.
#[test]
fn will_topic_syntax() {
    let will = [0x00, 0x01, b'c', 0x00, 0x00, 0x01, b'#', 0x00, 0x00];
    let bytes = connect_frame(5, 0x06, &[], &will);
    assert_refused(
        V5,
        Role::Client,
        &bytes,
        DecodeError::WildcardInTopicName,
        PROTOCOL,
    );
    let will = [
        0x00, 0x01, b'c', 0x04, 0x08, 0x00, 0x01, b'+', 0x00, 0x01, b'w', 0x00, 0x00,
    ];
    let bytes = connect_frame(5, 0x06, &[], &will);
    assert_refused(
        V5,
        Role::Client,
        &bytes,
        DecodeError::InvalidResponseTopic,
        PROTOCOL,
    );
}

/// 3.1.1: an empty client id needs Clean Session [MQTT-3.1.3-8 of 3.1.1],
/// answered with return code 0x02; 5.0 lets the server assign one.
#[test]
fn v3_empty_client_id_without_clean_session() {
    let bytes = connect_frame(4, 0x00, &[], &[0x00, 0x00]);
    let error = decode(V3, Role::Client, &bytes).unwrap_err();
    assert_eq!(error, DecodeError::EmptyClientIdWithoutCleanSession);
    assert_eq!(error.reason_code(), ReasonCode::CLIENT_IDENTIFIER_NOT_VALID);
    assert_eq!(error.v3_connack_code(), Some(0x02));
    let v5 = connect_frame(5, 0x00, &[], &[0x00, 0x00]);
    assert!(decode(V5, Role::Client, &v5).is_ok());
}

/// A refusing CONNACK cannot claim a session [MQTT-3.2.2-6; 3.2.2-4 of 3.1.1].
#[test]
fn connack_session_present_with_error() {
    let v5 = [0x20, 0x03, 0x01, 0x87, 0x00];
    assert_refused(
        V5,
        Role::Server,
        &v5,
        DecodeError::SessionPresentWithError,
        PROTOCOL,
    );
    let v3 = [0x20, 0x02, 0x01, 0x05];
    assert_refused(
        V3,
        Role::Server,
        &v3,
        DecodeError::SessionPresentWithError,
        PROTOCOL,
    );
}
