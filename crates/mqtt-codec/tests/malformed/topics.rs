//! Strings, topic names and filters, packet identifiers, subscription
//! options and reason codes per packet.

use super::*;

/// U+0000 [MQTT-1.5.4-2] and ill-formed UTF-8 such as an encoded surrogate
/// [MQTT-1.5.4-1] are malformed (v5-10, v3-04, v5-12).
#[test]
fn string_rules() {
    let null_v5 = frame(0x30, &[0x00, 0x03, b'a', 0x00, b'b', 0x00]);
    let expected = DecodeError::NullChar {
        field: "topic name",
    };
    assert_refused(V5, Role::Client, &null_v5, expected.clone(), MALFORMED);
    let null_v3 = frame(0x30, &[0x00, 0x03, b'a', 0x00, b'b']);
    assert_refused(V3, Role::Client, &null_v3, expected, MALFORMED);
    let surrogate = frame(0x30, &[0x00, 0x03, 0xED, 0xA0, 0x80, 0x00]);
    let expected = DecodeError::InvalidUtf8 {
        field: "topic name",
    };
    assert_refused(V5, Role::Client, &surrogate, expected, MALFORMED);
    // Both strings of a User Property follow the rules [MQTT-1.5.7-1].
    let pair = publish_frame(&[0x26, 0x00, 0x01, b'k', 0x00, 0x01, 0xFF]);
    let expected = DecodeError::InvalidUtf8 {
        field: "User Property",
    };
    assert_refused(V5, Role::Client, &pair, expected, MALFORMED);
}

/// Topic names have no wildcards [MQTT-3.3.2-2] (v5-11, v3-05) and are not
/// empty unless a Topic Alias stands in (§3.3.2.1); Response Topics alike.
#[test]
fn topic_name_rules() {
    let plus = frame(0x30, &[0x00, 0x03, b'a', b'/', b'+', 0x00]);
    assert_refused(
        V5,
        Role::Client,
        &plus,
        DecodeError::WildcardInTopicName,
        PROTOCOL,
    );
    let hash = frame(0x30, &[0x00, 0x03, b'a', b'/', b'#']);
    assert_refused(
        V3,
        Role::Client,
        &hash,
        DecodeError::WildcardInTopicName,
        PROTOCOL,
    );
    let empty_v5 = frame(0x30, &[0x00, 0x00, 0x00]);
    assert_refused(
        V5,
        Role::Client,
        &empty_v5,
        DecodeError::EmptyTopicName,
        PROTOCOL,
    );
    let empty_v3 = frame(0x30, &[0x00, 0x00]);
    assert_refused(
        V3,
        Role::Client,
        &empty_v3,
        DecodeError::EmptyTopicName,
        PROTOCOL,
    );
    let response = publish_frame(&[0x08, 0x00, 0x03, b'a', b'/', b'#']);
    assert_refused(
        V5,
        Role::Client,
        &response,
        DecodeError::InvalidResponseTopic,
        PROTOCOL,
    );
}

/// Topic filter syntax [MQTT-4.7.1-1, 4.7.1-2, 4.7.3-1, 4.8.2-1, 4.8.2-2].
#[test]
fn topic_filter_rules() {
    let cases: [(&[u8], TopicError); 5] = [
        (b"a#", TopicError::MisplacedMultiLevelWildcard),
        (b"a/#/b", TopicError::MisplacedMultiLevelWildcard),
        (b"a+", TopicError::MisplacedSingleLevelWildcard),
        (b"$share/g", TopicError::MissingSharedFilter),
        (b"$share//a", TopicError::InvalidShareName),
    ];
    for (filter, error) in cases {
        let mut body = vec![0x00, 0x01, 0x00, 0x00, filter.len() as u8];
        body.extend_from_slice(filter);
        let mut subscribe = body.clone();
        subscribe.push(0x00);
        let expected = DecodeError::InvalidTopicFilter { error };
        assert_refused(
            V5,
            Role::Client,
            &frame(0x82, &subscribe),
            expected.clone(),
            PROTOCOL,
        );
        assert_refused(V5, Role::Client, &frame(0xA2, &body), expected, PROTOCOL);
    }
    let empty_filter = frame(0x82, &[0x00, 0x01, 0x00, 0x00, 0x00, 0x00]);
    let expected = DecodeError::InvalidTopicFilter {
        error: TopicError::Empty,
    };
    assert_refused(V5, Role::Client, &empty_filter, expected, PROTOCOL);
}

/// Packet identifier 0 is refused wherever one is carried (v5-13, v5-23).
#[test]
fn zero_packet_id() {
    let cases = [
        (
            frame(0x32, &[0x00, 0x01, b't', 0x00, 0x00, 0x00]),
            PacketType::Publish,
        ),
        (
            frame(0x82, &[0x00, 0x00, 0x00, 0x00, 0x01, b't', 0x00]),
            PacketType::Subscribe,
        ),
        (
            frame(0xA2, &[0x00, 0x00, 0x00, 0x00, 0x01, b't']),
            PacketType::Unsubscribe,
        ),
        (vec![0x40, 0x02, 0x00, 0x00], PacketType::PubAck),
        (vec![0x62, 0x02, 0x00, 0x00], PacketType::PubRel),
    ];
    for (bytes, packet_type) in cases {
        let expected = DecodeError::ZeroPacketId { packet_type };
        assert_refused(V5, Role::Client, &bytes, expected, PROTOCOL);
    }
}

/// Subscription options: reserved bits are malformed [MQTT-3.8.3-5] (v5-20,
/// v3-07); in 5.0 QoS 3 and Retain Handling 3 are Protocol Errors; No Local
/// on a shared subscription is a Protocol Error [MQTT-3.8.3-4].
#[test]
fn subscription_options() {
    let subscribe = |filter: &[u8], options: u8, v5: bool| {
        let mut body = vec![0x00, 0x01];
        if v5 {
            body.push(0x00);
        }
        body.extend_from_slice(&[0x00, filter.len() as u8]);
        body.extend_from_slice(filter);
        body.push(options);
        frame(0x82, &body)
    };
    let malformed = [(V5, 0x40), (V5, 0x80), (V3, 0x04), (V3, 0x03), (V3, 0x40)];
    for (version, options) in malformed {
        let bytes = subscribe(b"a", options, version == V5);
        let expected = DecodeError::InvalidSubscriptionOptions { options };
        assert_refused(version, Role::Client, &bytes, expected, MALFORMED);
    }
    for options in [0x03, 0x30] {
        let bytes = subscribe(b"a", options, true);
        let expected = DecodeError::SubscriptionOptionValue { options };
        assert_refused(V5, Role::Client, &bytes, expected, PROTOCOL);
    }
    let shared = subscribe(b"$share/g/a", 0x04, true);
    assert_refused(
        V5,
        Role::Client,
        &shared,
        DecodeError::NoLocalOnSharedSubscription,
        PROTOCOL,
    );
}

/// SUBSCRIBE and UNSUBSCRIBE carry at least one filter [MQTT-3.8.3-2,
/// 3.10.3-2]; SUBACK at least one reason code.
#[test]
fn no_topic_filters() {
    let cases = [
        (
            V5,
            Role::Client,
            vec![0x82, 0x03, 0x00, 0x01, 0x00],
            PacketType::Subscribe,
        ),
        (
            V3,
            Role::Client,
            vec![0x82, 0x02, 0x00, 0x01],
            PacketType::Subscribe,
        ),
        (
            V5,
            Role::Client,
            vec![0xA2, 0x03, 0x00, 0x01, 0x00],
            PacketType::Unsubscribe,
        ),
        (
            V3,
            Role::Client,
            vec![0xA2, 0x02, 0x00, 0x01],
            PacketType::Unsubscribe,
        ),
        (
            V5,
            Role::Server,
            vec![0x90, 0x03, 0x00, 0x01, 0x00],
            PacketType::SubAck,
        ),
        (
            V5,
            Role::Server,
            vec![0xB0, 0x03, 0x00, 0x01, 0x00],
            PacketType::UnsubAck,
        ),
    ];
    for (version, sender, bytes, packet_type) in cases {
        let expected = DecodeError::NoTopicFilters { packet_type };
        assert_refused(version, sender, &bytes, expected, PROTOCOL);
    }
}

/// A reason code the packet (from this side) may not carry is malformed.
#[test]
fn reason_code_not_allowed() {
    #[rustfmt::skip]
    let cases = [
        (V5, Role::Client, vec![0x40, 0x03, 0x00, 0x01, 0x05], PacketType::PubAck, 0x05),
        (V5, Role::Client, vec![0x62, 0x03, 0x00, 0x01, 0x10], PacketType::PubRel, 0x10),
        (V5, Role::Client, vec![0xE0, 0x01, 0x8E], PacketType::Disconnect, 0x8E),
        (V5, Role::Server, vec![0xE0, 0x01, 0x04], PacketType::Disconnect, 0x04),
        (V5, Role::Client, vec![0xF0, 0x01, 0x01], PacketType::Auth, 0x01),
        (V5, Role::Server, vec![0x20, 0x03, 0x00, 0x04, 0x00], PacketType::ConnAck, 0x04),
        (V5, Role::Server, vec![0x90, 0x04, 0x00, 0x01, 0x00, 0x11], PacketType::SubAck, 0x11),
        (V5, Role::Server, vec![0xB0, 0x04, 0x00, 0x01, 0x00, 0x01], PacketType::UnsubAck, 0x01),
        (V3, Role::Server, vec![0x20, 0x02, 0x00, 0x06], PacketType::ConnAck, 0x06),
        (V3, Role::Server, vec![0x90, 0x03, 0x00, 0x01, 0x03], PacketType::SubAck, 0x03),
        (V3, Role::Server, vec![0x90, 0x03, 0x00, 0x01, 0x87], PacketType::SubAck, 0x87),
    ];
    for (version, sender, bytes, packet_type, code) in cases {
        let expected = DecodeError::InvalidReasonCode { packet_type, code };
        assert_refused(version, sender, &bytes, expected, MALFORMED);
    }
}
