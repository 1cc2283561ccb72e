//! MQTT 3.1.1 packets, byte for byte (3.1.1 §3.1-§3.14).

use super::*;

/// A minimal 3.1.1 CONNECT: name "MQTT", level 4, Clean Session, keep alive 60.
#[test]
fn v3_connect_minimal() {
    let packet = Packet::Connect(Box::new(Connect {
        version: V3,
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
        0x10, 0x0D,                         // CONNECT, remaining 13
        0x00, 0x04, b'M', b'Q', b'T', b'T', // protocol name
        0x04,                               // level 4
        0x02,                               // flags: clean session
        0x00, 0x3C,                         // keep alive 60
        0x00, 0x01, b'c',                   // client id
    ];
    assert_exact(V3, Role::Client, packet, &expected);
}

/// A 3.1.1 CONNECT with every payload field: flags byte 0xEE.
#[test]
fn v3_connect_with_will_user_and_password() {
    let packet = Packet::Connect(Box::new(Connect {
        version: V3,
        clean_start: true,
        keep_alive_secs: 10,
        properties: ConnectProperties::default(),
        client_id: bs("id"),
        will: Some(Will {
            qos: QoS::AtLeastOnce,
            retain: true,
            topic: bs("w/t"),
            payload: bytes(b"bye"),
            properties: WillProperties::default(),
        }),
        username: Some(bs("u")),
        password: Some(bytes(b"pw")),
    }));
    #[rustfmt::skip]
    let expected = [
        0x10, 0x1F,
        0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04,
        0xEE,             // user, password, will retain, will QoS 1, will, clean
        0x00, 0x0A,
        0x00, 0x02, b'i', b'd',
        0x00, 0x03, b'w', b'/', b't',
        0x00, 0x03, b'b', b'y', b'e',
        0x00, 0x01, b'u',
        0x00, 0x02, b'p', b'w',
    ];
    assert_exact(V3, Role::Client, packet, &expected);
}

/// 3.1.1 CONNACK: flags then return code; v5 codes map to 0x00-0x05.
#[test]
fn v3_connack_return_codes() {
    let accepted = Packet::ConnAck(ConnAck {
        session_present: true,
        reason: ReasonCode::SUCCESS,
        properties: ConnAckProperties::default(),
    });
    assert_exact(V3, Role::Server, accepted, &[0x20, 0x02, 0x01, 0x00]);
    let codes = [
        (ReasonCode::UNSUPPORTED_PROTOCOL_VERSION, 0x01),
        (ReasonCode::CLIENT_IDENTIFIER_NOT_VALID, 0x02),
        (ReasonCode::SERVER_UNAVAILABLE, 0x03),
        (ReasonCode::BAD_USER_NAME_OR_PASSWORD, 0x04),
        (ReasonCode::NOT_AUTHORIZED, 0x05),
    ];
    for (reason, code) in codes {
        let refused = Packet::ConnAck(ConnAck {
            session_present: false,
            reason,
            properties: ConnAckProperties::default(),
        });
        assert_exact(V3, Role::Server, refused, &[0x20, 0x02, 0x00, code]);
    }
    // Server busy has no 3.1.1 code of its own: it is sent as "server unavailable".
    let busy = Packet::ConnAck(ConnAck {
        session_present: false,
        reason: ReasonCode::SERVER_BUSY,
        properties: ConnAckProperties::default(),
    });
    assert_eq!(encode(V3, &busy), [0x20, 0x02, 0x00, 0x03]);
}

/// 3.1.1 PUBLISH at QoS 0 has no packet id; the payload is the rest.
#[test]
fn v3_publish_qos0() {
    let packet = Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: bs("a/b"),
        packet_id: None,
        properties: PublishProperties::default(),
        payload: bytes(b"hi"),
    });
    let expected = [0x30, 0x07, 0x00, 0x03, b'a', b'/', b'b', b'h', b'i'];
    assert_exact(V3, Role::Client, packet, &expected);
}

/// DUP, QoS and RETAIN sit in bits 3, 2-1 and 0 of the first byte.
#[test]
fn v3_publish_flags_and_packet_id() {
    let mut publish = Publish {
        dup: true,
        qos: QoS::AtLeastOnce,
        retain: true,
        topic: bs("a/b"),
        packet_id: Some(pid(10)),
        properties: PublishProperties::default(),
        payload: bytes(b"x"),
    };
    let body = [0x00, 0x03, b'a', b'/', b'b', 0x00, 0x0A, b'x'];
    let mut expected = vec![0x3B, 0x08];
    expected.extend_from_slice(&body);
    assert_exact(
        V3,
        Role::Server,
        Packet::Publish(publish.clone()),
        &expected,
    );
    publish.dup = false;
    publish.qos = QoS::ExactlyOnce;
    publish.retain = false;
    expected[0] = 0x34;
    assert_exact(V3, Role::Client, Packet::Publish(publish), &expected);
}

/// 3.1.1 acknowledgements are the packet id alone; PUBREL has flags 0010.
#[test]
fn v3_publish_acknowledgements() {
    let ack = Ack::success(pid(0x0A0B));
    assert_exact(
        V3,
        Role::Client,
        Packet::PubAck(ack.clone()),
        &[0x40, 0x02, 0x0A, 0x0B],
    );
    assert_exact(
        V3,
        Role::Server,
        Packet::PubRec(ack.clone()),
        &[0x50, 0x02, 0x0A, 0x0B],
    );
    assert_exact(
        V3,
        Role::Client,
        Packet::PubRel(ack.clone()),
        &[0x62, 0x02, 0x0A, 0x0B],
    );
    assert_exact(
        V3,
        Role::Server,
        Packet::PubComp(ack),
        &[0x70, 0x02, 0x0A, 0x0B],
    );
}

/// The §3.8.3 example of 3.1.1: "a/b" at QoS 1 and "c/d" at QoS 2.
#[test]
fn v3_subscribe() {
    let packet = Packet::Subscribe(Subscribe {
        packet_id: pid(10),
        subscription_identifier: None,
        user_properties: vec![],
        filters: vec![
            (bs("a/b"), SubscriptionOptions::with_qos(QoS::AtLeastOnce)),
            (bs("c/d"), SubscriptionOptions::with_qos(QoS::ExactlyOnce)),
        ],
    });
    #[rustfmt::skip]
    let expected = [
        0x82, 0x0E, 0x00, 0x0A,
        0x00, 0x03, b'a', b'/', b'b', 0x01,
        0x00, 0x03, b'c', b'/', b'd', 0x02,
    ];
    assert_exact(V3, Role::Client, packet, &expected);
}

/// 3.1.1 SUBACK: granted QoS or 0x80; any v5 error code is sent as 0x80.
#[test]
fn v3_suback() {
    let mut suback = SubAck {
        packet_id: pid(10),
        properties: AckProperties::default(),
        reasons: vec![
            ReasonCode::GRANTED_QOS_1,
            ReasonCode::GRANTED_QOS_2,
            ReasonCode::UNSPECIFIED_ERROR,
        ],
    };
    let expected = [0x90, 0x05, 0x00, 0x0A, 0x01, 0x02, 0x80];
    assert_exact(V3, Role::Server, Packet::SubAck(suback.clone()), &expected);
    suback.reasons[2] = ReasonCode::NOT_AUTHORIZED;
    assert_eq!(encode(V3, &Packet::SubAck(suback)), expected);
}

/// 3.1.1 UNSUBSCRIBE carries filters only; UNSUBACK the packet id only.
#[test]
fn v3_unsubscribe_and_unsuback() {
    let unsubscribe = Packet::Unsubscribe(Unsubscribe {
        packet_id: pid(10),
        user_properties: vec![],
        filters: vec![bs("a/b")],
    });
    let expected = [0xA2, 0x07, 0x00, 0x0A, 0x00, 0x03, b'a', b'/', b'b'];
    assert_exact(V3, Role::Client, unsubscribe, &expected);
    let unsuback = Packet::UnsubAck(UnsubAck {
        packet_id: pid(10),
        properties: AckProperties::default(),
        reasons: vec![],
    });
    assert_exact(V3, Role::Server, unsuback, &[0xB0, 0x02, 0x00, 0x0A]);
}

/// PINGREQ, PINGRESP and the 3.1.1 DISCONNECT are two bytes each.
#[test]
fn v3_ping_and_disconnect() {
    assert_exact(V3, Role::Client, Packet::PingReq, &[0xC0, 0x00]);
    assert_exact(V3, Role::Server, Packet::PingResp, &[0xD0, 0x00]);
    let disconnect = Packet::Disconnect(Disconnect::normal());
    assert_exact(V3, Role::Client, disconnect, &[0xE0, 0x00]);
}
