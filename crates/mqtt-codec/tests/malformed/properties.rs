//! MQTT 5 properties: repeats, value ranges, placement per packet and
//! side, authentication data, and the User Property cap.

use super::*;

/// A property other than User Property may appear once (v5-02).
#[test]
fn duplicate_property() {
    let twice = [0x11, 0, 0, 0, 10, 0x11, 0, 0, 0, 10];
    let bytes = connect_frame(5, 0x02, &twice, CLIENT_ID);
    assert_refused(
        V5,
        Role::Client,
        &bytes,
        DecodeError::DuplicateProperty { id: 0x11 },
        PROTOCOL,
    );
    let aliases = publish_frame(&[0x23, 0x00, 0x01, 0x23, 0x00, 0x02]);
    assert_refused(
        V5,
        Role::Client,
        &aliases,
        DecodeError::DuplicateProperty { id: 0x23 },
        PROTOCOL,
    );
    // SUBSCRIBE carries at most one Subscription Identifier.
    let body = [
        0x00, 0x01, 0x04, 0x0B, 0x01, 0x0B, 0x02, 0x00, 0x01, b't', 0x00,
    ];
    let expected = DecodeError::DuplicateProperty { id: 0x0B };
    assert_refused(V5, Role::Client, &frame(0x82, &body), expected, PROTOCOL);
}

/// Receive Maximum, Maximum Packet Size and Subscription Identifier of 0
/// are Protocol Errors (v5-05/09, v5-22); a Topic Alias of 0 is answered
/// with 0x94 Topic Alias invalid (§3.3.4) (v5-14).
#[test]
fn zero_values() {
    let cases: [(&[u8], u8); 2] = [(&[0x21, 0x00, 0x00], 0x21), (&[0x27, 0, 0, 0, 0], 0x27)];
    for (properties, id) in cases {
        let bytes = connect_frame(5, 0x02, properties, CLIENT_ID);
        assert_refused(
            V5,
            Role::Client,
            &bytes,
            DecodeError::ZeroValue { id },
            PROTOCOL,
        );
    }
    let alias_zero = publish_frame(&[0x23, 0x00, 0x00]);
    assert_refused(
        V5,
        Role::Client,
        &alias_zero,
        DecodeError::ZeroValue { id: 0x23 },
        0x94,
    );
    let body = [0x00, 0x01, 0x02, 0x0B, 0x00, 0x00, 0x01, b't', 0x00];
    let expected = DecodeError::ZeroValue { id: 0x0B };
    assert_refused(V5, Role::Client, &frame(0x82, &body), expected, PROTOCOL);
}

/// Properties limited to 0 or 1 refuse 2 (§3.1.2.11.6/7, §3.2.2.3.4).
#[test]
fn zero_or_one_values() {
    let pfi = publish_frame(&[0x01, 0x02]);
    let expected = DecodeError::PropertyValue { id: 0x01, value: 2 };
    assert_refused(V5, Role::Client, &pfi, expected, PROTOCOL);
    let problem = connect_frame(5, 0x02, &[0x17, 0x02], CLIENT_ID);
    let expected = DecodeError::PropertyValue { id: 0x17, value: 2 };
    assert_refused(V5, Role::Client, &problem, expected, PROTOCOL);
    let max_qos = frame(0x20, &[0x00, 0x00, 0x02, 0x24, 0x02]);
    let expected = DecodeError::PropertyValue { id: 0x24, value: 2 };
    assert_refused(V5, Role::Server, &max_qos, expected, PROTOCOL);
}

/// A property not allowed in this packet, from this side, or at all is
/// malformed (§2.2.2.2) (v5-06).
#[test]
fn property_not_allowed_here() {
    let cases: Vec<(Role, Vec<u8>, &str, u8)> = vec![
        // Topic Alias in CONNECT.
        (
            Role::Client,
            connect_frame(5, 0x02, &[0x23, 0x00, 0x01], CLIENT_ID),
            "CONNECT",
            0x23,
        ),
        // A Will property in the CONNECT's own list.
        (
            Role::Client,
            connect_frame(5, 0x02, &[0x18, 0, 0, 0, 1], CLIENT_ID),
            "CONNECT",
            0x18,
        ),
        // A CONNECT property in the Will's list.
        (
            Role::Client,
            connect_frame(
                5,
                0x06,
                &[],
                &[0, 1, b'c', 5, 0x11, 0, 0, 0, 1, 0, 1, b'w', 0, 0],
            ),
            "Will Properties",
            0x11,
        ),
        // A Subscription Identifier in a client's PUBLISH [MQTT-3.3.4-6].
        (Role::Client, publish_frame(&[0x0B, 0x01]), "PUBLISH", 0x0B),
        // Server Reference in a client's DISCONNECT.
        (
            Role::Client,
            frame(0xE0, &[0x00, 0x05, 0x1C, 0x00, 0x02, b'h', b'2']),
            "DISCONNECT",
            0x1C,
        ),
        // Session Expiry in a server's DISCONNECT [MQTT-3.14.2-2].
        (
            Role::Server,
            frame(0xE0, &[0x00, 0x05, 0x11, 0, 0, 0, 0]),
            "DISCONNECT",
            0x11,
        ),
        // Unknown ids, including one with the continuation bit.
        (Role::Client, publish_frame(&[0x7F, 0x00]), "PUBLISH", 0x7F),
        (Role::Client, publish_frame(&[0x80, 0x01]), "PUBLISH", 0x80),
    ];
    for (sender, bytes, context, id) in cases {
        let expected = DecodeError::InvalidPropertyId { context, id };
        assert_refused(V5, sender, &bytes, expected, MALFORMED);
    }
}

/// Authentication Data needs an Authentication Method (§3.1.2.11.10).
#[test]
fn authentication_data_without_method() {
    let bytes = connect_frame(5, 0x02, &[0x16, 0x00, 0x01, b'd'], CLIENT_ID);
    assert_refused(
        V5,
        Role::Client,
        &bytes,
        DecodeError::AuthDataWithoutMethod,
        PROTOCOL,
    );
    let auth = frame(0xF0, &[0x18, 0x05, 0x16, 0x00, 0x02, 0x01, 0x02]);
    assert_refused(
        V5,
        Role::Server,
        &auth,
        DecodeError::AuthDataWithoutMethod,
        PROTOCOL,
    );
}

/// The User Property and topic filter caps of `Limits` bound allocation.
#[test]
fn limits_on_counts() {
    let limits = Limits {
        max_user_properties: 1,
        max_topic_filters: 2,
        ..Limits::default()
    };
    let pair = [0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'v'];
    let one = publish_frame(&pair);
    assert!(decode_with(V5, Role::Client, &one, &limits).is_ok());
    let two = publish_frame(&[pair, pair].concat());
    let error = decode_with(V5, Role::Client, &two, &limits).unwrap_err();
    assert_eq!(error, DecodeError::TooManyUserProperties { max: 1 });
    assert_eq!(
        error.reason_code(),
        ReasonCode::IMPLEMENTATION_SPECIFIC_ERROR
    );
    let filter = [0x00, 0x01, b't', 0x00];
    let body = [&[0x00, 0x01, 0x00][..], &filter, &filter, &filter].concat();
    let error = decode_with(V5, Role::Client, &frame(0x82, &body), &limits).unwrap_err();
    assert_eq!(error, DecodeError::TooManyTopicFilters { max: 2 });
}
