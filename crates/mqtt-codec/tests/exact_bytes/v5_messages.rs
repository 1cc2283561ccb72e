//! MQTT 5.0 message packets, byte for byte: PUBLISH, its acknowledgements,
//! SUBSCRIBE, SUBACK, UNSUBSCRIBE and UNSUBACK.

use super::*;

/// A server's PUBLISH with all PUBLISH properties, two Subscription
/// Identifiers and three User Properties (one name twice) in their order.
#[test]
fn v5_publish_with_all_properties() {
    let packet = Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: false,
        topic: bs("a/b"),
        packet_id: Some(pid(10)),
        properties: PublishProperties {
            payload_format_indicator: Some(true),
            message_expiry_interval_secs: Some(60),
            topic_alias: Some(pid(3)),
            response_topic: Some(bs("r/t")),
            correlation_data: Some(bytes(b"id")),
            user_properties: vec![user("k1", "v1"), user("k2", "v2"), user("k1", "v3")],
            subscription_identifiers: vec![1, 200],
            content_type: Some(bs("ct")),
        },
        payload: bytes(b"hello"),
    });
    #[rustfmt::skip]
    let expected = [
        0x32, 0x47,
        0x00, 0x03, b'a', b'/', b'b',
        0x00, 0x0A,                         // packet id 10
        0x3A,                               // property length 58
        0x01, 0x01,                         // payload format indicator 1
        0x02, 0x00, 0x00, 0x00, 0x3C,       // message expiry 60
        0x03, 0x00, 0x02, b'c', b't',       // content type
        0x08, 0x00, 0x03, b'r', b'/', b't', // response topic
        0x09, 0x00, 0x02, b'i', b'd',       // correlation data
        0x0B, 0x01,                         // subscription identifier 1
        0x0B, 0xC8, 0x01,                   // subscription identifier 200
        0x23, 0x00, 0x03,                   // topic alias 3
        0x26, 0x00, 0x02, b'k', b'1', 0x00, 0x02, b'v', b'1',
        0x26, 0x00, 0x02, b'k', b'2', 0x00, 0x02, b'v', b'2',
        0x26, 0x00, 0x02, b'k', b'1', 0x00, 0x02, b'v', b'3',
        b'h', b'e', b'l', b'l', b'o',
    ];
    assert_exact(V5, Role::Server, packet, &expected);
}

/// A 5.0 PUBLISH without properties still has a property length of 0.
#[test]
fn v5_publish_without_properties() {
    let packet = Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: bs("a/b"),
        packet_id: None,
        properties: PublishProperties::default(),
        payload: bytes(b"hi"),
    });
    let expected = [0x30, 0x08, 0x00, 0x03, b'a', b'/', b'b', 0x00, b'h', b'i'];
    assert_exact(V5, Role::Client, packet, &expected);
}

/// An empty topic is legal with a Topic Alias, and the payload may be empty.
#[test]
fn v5_publish_empty_topic_with_alias() {
    let packet = Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: ByteStr::new(),
        packet_id: None,
        properties: PublishProperties {
            topic_alias: Some(pid(5)),
            ..PublishProperties::default()
        },
        payload: Bytes::new(),
    });
    let expected = [0x30, 0x06, 0x00, 0x00, 0x03, 0x23, 0x00, 0x05];
    assert_exact(V5, Role::Client, packet, &expected);
}

/// PUBACK's three forms: remaining length 2 (success), 3 (reason only) and
/// with properties; PUBREL/PUBCOMP with 0x92.
#[test]
fn v5_publish_acknowledgements() {
    let success = Ack::success(pid(10));
    assert_exact(
        V5,
        Role::Client,
        Packet::PubAck(success.clone()),
        &[0x40, 0x02, 0x00, 0x0A],
    );
    assert_exact(
        V5,
        Role::Server,
        Packet::PubRec(success.clone()),
        &[0x50, 0x02, 0x00, 0x0A],
    );
    let no_subscribers = Ack {
        reason: ReasonCode::NO_MATCHING_SUBSCRIBERS,
        ..success.clone()
    };
    assert_exact(
        V5,
        Role::Server,
        Packet::PubAck(no_subscribers),
        &[0x40, 0x03, 0x00, 0x0A, 0x10],
    );
    let refused = Ack {
        packet_id: pid(10),
        reason: ReasonCode::NOT_AUTHORIZED,
        properties: AckProperties {
            reason_string: Some(bs("no")),
            user_properties: vec![user("k", "v")],
        },
    };
    #[rustfmt::skip]
    let expected = [
        0x40, 0x10, 0x00, 0x0A,
        0x87,                               // not authorized
        0x0C,                               // property length 12
        0x1F, 0x00, 0x02, b'n', b'o',
        0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'v',
    ];
    assert_exact(V5, Role::Server, Packet::PubAck(refused), &expected);
    let not_found = Ack {
        reason: ReasonCode::PACKET_IDENTIFIER_NOT_FOUND,
        ..success.clone()
    };
    assert_exact(
        V5,
        Role::Client,
        Packet::PubRel(not_found.clone()),
        &[0x62, 0x03, 0x00, 0x0A, 0x92],
    );
    assert_exact(
        V5,
        Role::Server,
        Packet::PubComp(not_found),
        &[0x70, 0x03, 0x00, 0x0A, 0x92],
    );
}

/// A success written out in full (reason 0x00, with or without an empty
/// property list) decodes like the 2-byte short form (§3.4.2.1, §3.4.2.2.1).
#[test]
fn v5_publish_acknowledgement_long_forms() {
    let success = Ack::success(pid(10));
    assert_decodes_to(
        V5,
        Role::Client,
        &[0x40, 0x03, 0x00, 0x0A, 0x00],
        Packet::PubAck(success.clone()),
    );
    assert_decodes_to(
        V5,
        Role::Client,
        &[0x40, 0x04, 0x00, 0x0A, 0x00, 0x00],
        Packet::PubAck(success),
    );
}

/// SUBSCRIBE with a Subscription Identifier, a User Property, all option
/// bits, and a shared subscription.
#[test]
fn v5_subscribe() {
    let packet = Packet::Subscribe(Subscribe {
        packet_id: pid(10),
        subscription_identifier: Some(5),
        user_properties: vec![user("k", "v")],
        filters: vec![
            (
                bs("a/+"),
                SubscriptionOptions {
                    qos: QoS::AtLeastOnce,
                    no_local: true,
                    retain_as_published: true,
                    retain_handling: RetainHandling::DoNotSend,
                },
            ),
            (
                bs("$share/g/x/#"),
                SubscriptionOptions {
                    qos: QoS::ExactlyOnce,
                    no_local: false,
                    retain_as_published: false,
                    retain_handling: RetainHandling::SendAtSubscribeIfNew,
                },
            ),
        ],
    });
    #[rustfmt::skip]
    let expected = [
        0x82, 0x21, 0x00, 0x0A,
        0x09,                               // property length 9
        0x0B, 0x05,                         // subscription identifier 5
        0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'v',
        0x00, 0x03, b'a', b'/', b'+',
        0x2D,                               // RH 2, RAP, NL, QoS 1
        0x00, 0x0C, b'$', b's', b'h', b'a', b'r', b'e', b'/', b'g', b'/', b'x', b'/', b'#',
        0x12,                               // RH 1, QoS 2
    ];
    assert_exact(V5, Role::Client, packet, &expected);
}

/// SUBACK with a Reason String and three reason codes.
#[test]
fn v5_suback() {
    let packet = Packet::SubAck(SubAck {
        packet_id: pid(10),
        properties: AckProperties {
            reason_string: Some(bs("r")),
            user_properties: vec![],
        },
        reasons: vec![
            ReasonCode::GRANTED_QOS_1,
            ReasonCode::GRANTED_QOS_2,
            ReasonCode::WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED,
        ],
    });
    #[rustfmt::skip]
    let expected = [
        0x90, 0x0A, 0x00, 0x0A,
        0x04, 0x1F, 0x00, 0x01, b'r',
        0x01, 0x02, 0xA2,
    ];
    assert_exact(V5, Role::Server, packet, &expected);
}

/// UNSUBSCRIBE and UNSUBACK with empty property lists.
#[test]
fn v5_unsubscribe_and_unsuback() {
    let unsubscribe = Packet::Unsubscribe(Unsubscribe {
        packet_id: pid(10),
        user_properties: vec![],
        filters: vec![bs("a/b"), bs("c/#")],
    });
    #[rustfmt::skip]
    let expected = [
        0xA2, 0x0D, 0x00, 0x0A, 0x00,
        0x00, 0x03, b'a', b'/', b'b',
        0x00, 0x03, b'c', b'/', b'#',
    ];
    assert_exact(V5, Role::Client, unsubscribe, &expected);
    let unsuback = Packet::UnsubAck(UnsubAck {
        packet_id: pid(10),
        properties: AckProperties::default(),
        reasons: vec![ReasonCode::SUCCESS, ReasonCode::NO_SUBSCRIPTION_EXISTED],
    });
    assert_exact(
        V5,
        Role::Server,
        unsuback,
        &[0xB0, 0x05, 0x00, 0x0A, 0x00, 0x00, 0x11],
    );
}
