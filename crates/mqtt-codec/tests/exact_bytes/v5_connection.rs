//! MQTT 5.0 connection packets, byte for byte: CONNECT, CONNACK,
//! DISCONNECT, AUTH, PINGREQ and PINGRESP.

use super::*;

/// A minimal 5.0 CONNECT: level 5 and an empty property list.
#[test]
fn v5_connect_minimal() {
    let packet = Packet::Connect(Box::new(Connect {
        version: V5,
        clean_start: true,
        keep_alive_secs: 60,
        properties: ConnectProperties::default(),
        client_id: bs("c"),
        will: None,
        username: None,
        password: None,
    }));
    #[rustfmt::skip]
    let expected = [
        0x10, 0x0E,
        0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, 0x02, 0x00, 0x3C,
        0x00,             // property length 0
        0x00, 0x01, b'c',
    ];
    assert_exact(V5, Role::Client, packet, &expected);
}

/// Every CONNECT property (ids 0x11 0x15 0x16 0x17 0x19 0x21 0x22 0x26 0x27)
/// and every Will property (0x01 0x02 0x03 0x08 0x09 0x18 0x26), in id order.
#[test]
fn v5_connect_with_all_properties() {
    let packet = Packet::Connect(Box::new(Connect {
        version: V5,
        clean_start: false,
        keep_alive_secs: 60,
        properties: ConnectProperties {
            session_expiry_interval_secs: Some(120),
            receive_maximum: Some(10),
            maximum_packet_size: Some(1024),
            topic_alias_maximum: Some(5),
            request_response_information: Some(true),
            request_problem_information: Some(false),
            user_properties: vec![user("k", "v")],
            authentication_method: Some(bs("m")),
            authentication_data: Some(bytes(b"d")),
        },
        client_id: bs("id"),
        will: Some(Will {
            qos: QoS::ExactlyOnce,
            retain: false,
            topic: bs("w"),
            payload: bytes(b"p"),
            properties: WillProperties {
                will_delay_interval_secs: Some(5),
                payload_format_indicator: Some(true),
                message_expiry_interval_secs: Some(30),
                content_type: Some(bs("t")),
                response_topic: Some(bs("r")),
                correlation_data: Some(bytes(b"c")),
                user_properties: vec![user("a", "b")],
            },
        }),
        username: Some(bs("u")),
        password: Some(bytes(b"s")),
    }));
    #[rustfmt::skip]
    let expected = [
        0x10, 0x5E,
        0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05,
        0xD4,                               // user, password, will QoS 2, will
        0x00, 0x3C,
        0x23,                               // property length 35
        0x11, 0x00, 0x00, 0x00, 0x78,       // session expiry 120
        0x15, 0x00, 0x01, b'm',             // authentication method
        0x16, 0x00, 0x01, b'd',             // authentication data
        0x17, 0x00,                         // request problem information 0
        0x19, 0x01,                         // request response information 1
        0x21, 0x00, 0x0A,                   // receive maximum 10
        0x22, 0x00, 0x05,                   // topic alias maximum 5
        0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'v',
        0x27, 0x00, 0x00, 0x04, 0x00,       // maximum packet size 1024
        0x00, 0x02, b'i', b'd',             // client id
        0x1F,                               // will property length 31
        0x01, 0x01,                         // payload format indicator 1
        0x02, 0x00, 0x00, 0x00, 0x1E,       // message expiry 30
        0x03, 0x00, 0x01, b't',             // content type
        0x08, 0x00, 0x01, b'r',             // response topic
        0x09, 0x00, 0x01, b'c',             // correlation data
        0x18, 0x00, 0x00, 0x00, 0x05,       // will delay 5
        0x26, 0x00, 0x01, b'a', 0x00, 0x01, b'b',
        0x00, 0x01, b'w',                   // will topic
        0x00, 0x01, b'p',                   // will payload
        0x00, 0x01, b'u',                   // user name
        0x00, 0x01, b's',                   // password
    ];
    assert_exact(V5, Role::Client, packet, &expected);
}

/// 5.0 allows a password without a user name (flags 0x42).
#[test]
fn v5_connect_password_without_user_name() {
    let packet = Packet::Connect(Box::new(Connect {
        version: V5,
        clean_start: true,
        keep_alive_secs: 0,
        properties: ConnectProperties::default(),
        client_id: ByteStr::new(),
        will: None,
        username: None,
        password: Some(bytes(b"t")),
    }));
    #[rustfmt::skip]
    let expected = [
        0x10, 0x10,
        0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, 0x42, 0x00, 0x00,
        0x00,
        0x00, 0x00,       // empty client id
        0x00, 0x01, b't', // password
    ];
    assert_exact(V5, Role::Client, packet, &expected);
}

/// Every CONNACK property (17 ids from 0x11 to 0x2A), in id order.
#[test]
fn v5_connack_with_all_properties() {
    let packet = Packet::ConnAck(ConnAck {
        session_present: false,
        reason: ReasonCode::SUCCESS,
        properties: ConnAckProperties {
            session_expiry_interval_secs: Some(0),
            receive_maximum: Some(20),
            maximum_qos: Some(QoS::AtLeastOnce),
            retain_available: Some(false),
            maximum_packet_size: Some(65_536),
            assigned_client_identifier: Some(bs("x")),
            topic_alias_maximum: Some(8),
            reason_string: Some(bs("ok")),
            user_properties: vec![user("k", "v")],
            wildcard_subscription_available: Some(true),
            subscription_identifiers_available: Some(false),
            shared_subscription_available: Some(true),
            server_keep_alive_secs: Some(30),
            response_information: Some(bs("ri")),
            server_reference: Some(bs("s")),
            authentication_method: Some(bs("m")),
            authentication_data: Some(bytes(b"d")),
        },
    });
    #[rustfmt::skip]
    let expected = [
        0x20, 0x41,
        0x00,                               // acknowledge flags
        0x00,                               // reason: success
        0x3E,                               // property length 62
        0x11, 0x00, 0x00, 0x00, 0x00,       // session expiry 0
        0x12, 0x00, 0x01, b'x',             // assigned client identifier
        0x13, 0x00, 0x1E,                   // server keep alive 30
        0x15, 0x00, 0x01, b'm',             // authentication method
        0x16, 0x00, 0x01, b'd',             // authentication data
        0x1A, 0x00, 0x02, b'r', b'i',       // response information
        0x1C, 0x00, 0x01, b's',             // server reference
        0x1F, 0x00, 0x02, b'o', b'k',       // reason string
        0x21, 0x00, 0x14,                   // receive maximum 20
        0x22, 0x00, 0x08,                   // topic alias maximum 8
        0x24, 0x01,                         // maximum QoS 1
        0x25, 0x00,                         // retain available 0
        0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'v',
        0x27, 0x00, 0x01, 0x00, 0x00,       // maximum packet size 65536
        0x28, 0x01,                         // wildcard subscription available
        0x29, 0x00,                         // subscription identifiers available
        0x2A, 0x01,                         // shared subscription available
    ];
    assert_exact(V5, Role::Server, packet, &expected);
}

/// A refusing 5.0 CONNACK carries the reason code itself.
#[test]
fn v5_connack_refusal() {
    let packet = Packet::ConnAck(ConnAck {
        session_present: false,
        reason: ReasonCode::BANNED,
        properties: ConnAckProperties::default(),
    });
    assert_exact(V5, Role::Server, packet, &[0x20, 0x03, 0x00, 0x8A, 0x00]);
}

/// DISCONNECT's short forms `E0 00`, `E0 01 8E`, `E0 01 04`, and with
/// properties from either side.
#[test]
fn v5_disconnect() {
    assert_exact(
        V5,
        Role::Client,
        Packet::Disconnect(Disconnect::normal()),
        &[0xE0, 0x00],
    );
    let taken_over = Disconnect::with_reason(ReasonCode::SESSION_TAKEN_OVER);
    assert_exact(
        V5,
        Role::Server,
        Packet::Disconnect(taken_over),
        &[0xE0, 0x01, 0x8E],
    );
    let with_will = Disconnect::with_reason(ReasonCode::DISCONNECT_WITH_WILL_MESSAGE);
    assert_exact(
        V5,
        Role::Client,
        Packet::Disconnect(with_will),
        &[0xE0, 0x01, 0x04],
    );
    let from_client = Disconnect {
        reason: ReasonCode::NORMAL_DISCONNECTION,
        properties: DisconnectProperties {
            session_expiry_interval_secs: Some(0),
            reason_string: Some(bs("bye")),
            ..DisconnectProperties::default()
        },
    };
    #[rustfmt::skip]
    let expected = [
        0xE0, 0x0D, 0x00, 0x0B,
        0x11, 0x00, 0x00, 0x00, 0x00,       // session expiry 0
        0x1F, 0x00, 0x03, b'b', b'y', b'e', // reason string
    ];
    assert_exact(V5, Role::Client, Packet::Disconnect(from_client), &expected);
    let redirect = Disconnect {
        reason: ReasonCode::USE_ANOTHER_SERVER,
        properties: DisconnectProperties {
            server_reference: Some(bs("h2")),
            ..DisconnectProperties::default()
        },
    };
    let expected = [0xE0, 0x07, 0x9C, 0x05, 0x1C, 0x00, 0x02, b'h', b'2'];
    assert_exact(V5, Role::Server, Packet::Disconnect(redirect), &expected);
}

/// AUTH's short form `F0 00`, and the continue / re-authenticate forms.
#[test]
fn v5_auth() {
    let success = Auth {
        reason: ReasonCode::SUCCESS,
        properties: AuthProperties::default(),
    };
    assert_exact(V5, Role::Server, Packet::Auth(success), &[0xF0, 0x00]);
    let method_only = AuthProperties {
        authentication_method: Some(bs("x")),
        ..AuthProperties::default()
    };
    let next = Auth {
        reason: ReasonCode::CONTINUE_AUTHENTICATION,
        properties: method_only.clone(),
    };
    let expected = [0xF0, 0x06, 0x18, 0x04, 0x15, 0x00, 0x01, b'x'];
    assert_exact(V5, Role::Client, Packet::Auth(next), &expected);
    let again = Auth {
        reason: ReasonCode::RE_AUTHENTICATE,
        properties: AuthProperties {
            authentication_data: Some(bytes(b"\x01")),
            ..method_only
        },
    };
    #[rustfmt::skip]
    let expected = [
        0xF0, 0x0A, 0x19, 0x08,
        0x15, 0x00, 0x01, b'x',
        0x16, 0x00, 0x01, 0x01,
    ];
    assert_exact(V5, Role::Client, Packet::Auth(again), &expected);
}

/// PINGREQ and PINGRESP are the same in 5.0.
#[test]
fn v5_ping() {
    assert_exact(V5, Role::Client, Packet::PingReq, &[0xC0, 0x00]);
    assert_exact(V5, Role::Server, Packet::PingResp, &[0xD0, 0x00]);
}
