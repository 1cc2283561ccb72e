//! Strategies generating valid packets of every type, per version and
//! sender. The reason-code tables are copied from the spec's tables (§3.2.2.2,
//! §3.4.2.1, §3.6.2.1, §3.9.3, §3.11.3, §3.14.2.1, §3.15.2.1), not from the
//! crate, so the two are checked against each other.

use std::num::NonZeroU16;

use bytes::Bytes;
use citystream_mqtt_codec::*;
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

const CONNACK_CODES: &[u8] = &[
    0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8C, 0x90, 0x95, 0x97,
    0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F,
];
const CONNACK_CODES_V3: &[u8] = &[0x00, 0x84, 0x85, 0x88, 0x86, 0x87];
const PUBACK_CODES: &[u8] = &[0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99];
const PUBREL_CODES: &[u8] = &[0x00, 0x92];
const SUBACK_CODES: &[u8] = &[
    0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2,
];
const SUBACK_CODES_V3: &[u8] = &[0x00, 0x01, 0x02, 0x80];
const UNSUBACK_CODES: &[u8] = &[0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91];
const DISCONNECT_CLIENT_CODES: &[u8] = &[
    0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x99,
];
const DISCONNECT_SERVER_CODES: &[u8] = &[
    0x00, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E, 0x8F, 0x90, 0x93, 0x94, 0x95, 0x96,
    0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2,
];
const AUTH_CODES: &[u8] = &[0x00, 0x18, 0x19];

fn reason(codes: &'static [u8]) -> impl Strategy<Value = ReasonCode> {
    proptest::sample::select(codes).prop_map(ReasonCode)
}

/// Any string without U+0000 (`\PC` excludes control characters).
fn text() -> impl Strategy<Value = ByteStr> {
    "\\PC{0,8}".prop_map(ByteStr::from)
}

fn topic_name() -> impl Strategy<Value = ByteStr> {
    "[a-z0-9 é€😀$]{1,6}(/[a-z0-9 é]{0,5}){0,3}".prop_map(ByteStr::from)
}

fn topic_filter() -> impl Strategy<Value = ByteStr> {
    let level = prop_oneof![Just("+".to_owned()), "[a-zé]{0,4}"];
    let tail = prop_oneof![Just(""), Just("/#")];
    let share = option::of("[a-z]{1,4}");
    (vec(level, 1..4), tail, share)
        .prop_map(|(levels, tail, share)| {
            let filter = format!("{}{tail}", levels.join("/"));
            match share {
                Some(group) => format!("$share/{group}/{filter}"),
                None => filter,
            }
        })
        .prop_filter("a valid filter", |filter| {
            validate_topic_filter(filter).is_ok()
        })
        .prop_map(ByteStr::from)
}

fn binary() -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..12).prop_map(Bytes::from)
}

fn users() -> impl Strategy<Value = Vec<(ByteStr, ByteStr)>> {
    vec((text(), text()), 0..3)
}

fn packet_id() -> impl Strategy<Value = NonZeroU16> {
    (1..=u16::MAX).prop_map(|value| NonZeroU16::new(value).unwrap())
}

fn qos() -> impl Strategy<Value = QoS> {
    prop_oneof![
        Just(QoS::AtMostOnce),
        Just(QoS::AtLeastOnce),
        Just(QoS::ExactlyOnce)
    ]
}

fn non_zero_u16() -> impl Strategy<Value = u16> {
    1..=u16::MAX
}

fn method_and_data() -> impl Strategy<Value = (Option<ByteStr>, Option<Bytes>)> {
    (option::of(text()), option::of(binary()))
        .prop_map(|(method, data)| (method.clone(), method.and(data)))
}

fn connect_properties() -> impl Strategy<Value = ConnectProperties> {
    (
        option::of(any::<u32>()),
        option::of(non_zero_u16()),
        option::of(1..=u32::MAX),
        option::of(any::<u16>()),
        option::of(any::<bool>()),
        option::of(any::<bool>()),
        users(),
        method_and_data(),
    )
        .prop_map(
            |(session, receive, packet, alias, response, problem, users, auth)| ConnectProperties {
                session_expiry_interval_secs: session,
                receive_maximum: receive,
                maximum_packet_size: packet,
                topic_alias_maximum: alias,
                request_response_information: response,
                request_problem_information: problem,
                user_properties: users,
                authentication_method: auth.0,
                authentication_data: auth.1,
            },
        )
}

fn will_properties() -> impl Strategy<Value = WillProperties> {
    (
        option::of(any::<u32>()),
        option::of(any::<bool>()),
        option::of(any::<u32>()),
        option::of(text()),
        option::of(topic_name()),
        option::of(binary()),
        users(),
    )
        .prop_map(
            |(delay, format, expiry, content, response, correlation, users)| WillProperties {
                will_delay_interval_secs: delay,
                payload_format_indicator: format,
                message_expiry_interval_secs: expiry,
                content_type: content,
                response_topic: response,
                correlation_data: correlation,
                user_properties: users,
            },
        )
}

fn connect(version: Version) -> impl Strategy<Value = Packet> {
    let v5 = version == Version::V5;
    let properties =
        connect_properties().prop_map(move |p| if v5 { p } else { Default::default() });
    let will_properties =
        will_properties().prop_map(move |p| if v5 { p } else { Default::default() });
    let will = option::of((
        qos(),
        any::<bool>(),
        topic_name(),
        binary(),
        will_properties,
    ))
    .prop_map(|will| {
        will.map(|(qos, retain, topic, payload, properties)| Will {
            qos,
            retain,
            topic,
            payload,
            properties,
        })
    });
    let credentials = (option::of(text()), option::of(binary()));
    (
        any::<bool>(),
        any::<u16>(),
        properties,
        text(),
        will,
        credentials,
    )
        .prop_map(
            move |(
                clean_start,
                keep_alive_secs,
                properties,
                client_id,
                will,
                (username, password),
            )| {
                // 3.1.1: an empty client id needs Clean Session, a password a user name.
                let clean_start = clean_start || (!v5 && client_id.is_empty());
                let password = if v5 || username.is_some() {
                    password
                } else {
                    None
                };
                Packet::Connect(Box::new(Connect {
                    version,
                    clean_start,
                    keep_alive_secs,
                    properties,
                    client_id,
                    will,
                    username,
                    password,
                }))
            },
        )
}

fn connack_properties() -> impl Strategy<Value = ConnAckProperties> {
    let limits = (
        option::of(any::<u32>()),
        option::of(non_zero_u16()),
        option::of(prop_oneof![Just(QoS::AtMostOnce), Just(QoS::AtLeastOnce)]),
        option::of(any::<bool>()),
        option::of(1..=u32::MAX),
        option::of(any::<u16>()),
        option::of(any::<bool>()),
        option::of(any::<bool>()),
        option::of(any::<bool>()),
        option::of(any::<u16>()),
    );
    let texts = (
        option::of(text()),
        option::of(text()),
        users(),
        option::of(text()),
        option::of(text()),
        method_and_data(),
    );
    (limits, texts).prop_map(|(limits, texts)| ConnAckProperties {
        session_expiry_interval_secs: limits.0,
        receive_maximum: limits.1,
        maximum_qos: limits.2,
        retain_available: limits.3,
        maximum_packet_size: limits.4,
        topic_alias_maximum: limits.5,
        wildcard_subscription_available: limits.6,
        subscription_identifiers_available: limits.7,
        shared_subscription_available: limits.8,
        server_keep_alive_secs: limits.9,
        assigned_client_identifier: texts.0,
        reason_string: texts.1,
        user_properties: texts.2,
        response_information: texts.3,
        server_reference: texts.4,
        authentication_method: texts.5.0,
        authentication_data: texts.5.1,
    })
}

fn connack(version: Version) -> impl Strategy<Value = Packet> {
    let v5 = version == Version::V5;
    let codes = if v5 { CONNACK_CODES } else { CONNACK_CODES_V3 };
    let properties =
        connack_properties().prop_map(move |p| if v5 { p } else { Default::default() });
    (any::<bool>(), reason(codes), properties).prop_map(|(session_present, reason, properties)| {
        Packet::ConnAck(ConnAck {
            session_present: session_present && !reason.is_error(),
            reason,
            properties,
        })
    })
}

fn publish_properties(sender: Role) -> impl Strategy<Value = PublishProperties> {
    let identifiers = if sender == Role::Server { 0..3 } else { 0..1 };
    (
        option::of(any::<bool>()),
        option::of(any::<u32>()),
        option::of(packet_id()),
        option::of(topic_name()),
        option::of(binary()),
        users(),
        vec(1..=268_435_455u32, identifiers),
        option::of(text()),
    )
        .prop_map(
            |(format, expiry, alias, response, correlation, users, ids, content)| {
                PublishProperties {
                    payload_format_indicator: format,
                    message_expiry_interval_secs: expiry,
                    topic_alias: alias,
                    response_topic: response,
                    correlation_data: correlation,
                    user_properties: users,
                    subscription_identifiers: ids,
                    content_type: content,
                }
            },
        )
}

fn publish(version: Version, sender: Role) -> impl Strategy<Value = Packet> {
    let v5 = version == Version::V5;
    let properties =
        publish_properties(sender).prop_map(move |p| if v5 { p } else { Default::default() });
    let payload = vec(any::<u8>(), 0..64).prop_map(Bytes::from);
    (
        qos(),
        any::<bool>(),
        any::<bool>(),
        topic_name(),
        packet_id(),
        properties,
        payload,
        any::<bool>(),
    )
        .prop_map(
            |(qos, dup, retain, topic, id, properties, payload, drop_topic)| {
                let with_id = qos > QoS::AtMostOnce;
                // An aliased PUBLISH may leave its topic empty.
                let topic = if drop_topic && properties.topic_alias.is_some() {
                    ByteStr::new()
                } else {
                    topic
                };
                Packet::Publish(Publish {
                    dup: dup && with_id,
                    qos,
                    retain,
                    topic,
                    packet_id: with_id.then_some(id),
                    properties,
                    payload,
                })
            },
        )
}

fn ack_properties(version: Version) -> impl Strategy<Value = AckProperties> {
    let v5 = version == Version::V5;
    (option::of(text()), users()).prop_map(move |(reason_string, user_properties)| {
        if v5 {
            AckProperties {
                reason_string,
                user_properties,
            }
        } else {
            AckProperties::default()
        }
    })
}

fn ack(version: Version, codes: &'static [u8]) -> impl Strategy<Value = Ack> {
    let codes = if version == Version::V5 {
        codes
    } else {
        &[0x00]
    };
    (packet_id(), reason(codes), ack_properties(version)).prop_map(
        |(packet_id, reason, properties)| Ack {
            packet_id,
            reason,
            properties,
        },
    )
}

fn subscription_options(version: Version) -> impl Strategy<Value = SubscriptionOptions> {
    let v5 = version == Version::V5;
    let handling = prop_oneof![
        Just(RetainHandling::SendAtSubscribe),
        Just(RetainHandling::SendAtSubscribeIfNew),
        Just(RetainHandling::DoNotSend)
    ];
    (qos(), any::<bool>(), any::<bool>(), handling).prop_map(
        move |(qos, no_local, rap, handling)| {
            if !v5 {
                return SubscriptionOptions::with_qos(qos);
            }
            SubscriptionOptions {
                qos,
                no_local,
                retain_as_published: rap,
                retain_handling: handling,
            }
        },
    )
}

fn subscribe(version: Version) -> impl Strategy<Value = Packet> {
    let v5 = version == Version::V5;
    let filter =
        (topic_filter(), subscription_options(version)).prop_map(|(filter, mut options)| {
            // No Local on a shared subscription is a Protocol Error.
            options.no_local &= !filter.starts_with("$share/");
            (filter, options)
        });
    (
        packet_id(),
        option::of(1..=268_435_455u32),
        users(),
        vec(filter, 1..4),
    )
        .prop_map(move |(packet_id, identifier, users, filters)| {
            Packet::Subscribe(Subscribe {
                packet_id,
                subscription_identifier: identifier.filter(|_| v5),
                user_properties: if v5 { users } else { vec![] },
                filters,
            })
        })
}

fn suback(version: Version) -> impl Strategy<Value = Packet> {
    let codes = if version == Version::V5 {
        SUBACK_CODES
    } else {
        SUBACK_CODES_V3
    };
    (
        packet_id(),
        ack_properties(version),
        vec(reason(codes), 1..4),
    )
        .prop_map(|(packet_id, properties, reasons)| {
            Packet::SubAck(SubAck {
                packet_id,
                properties,
                reasons,
            })
        })
}

fn unsubscribe(version: Version) -> impl Strategy<Value = Packet> {
    let v5 = version == Version::V5;
    (packet_id(), users(), vec(topic_filter(), 1..4)).prop_map(
        move |(packet_id, users, filters)| {
            Packet::Unsubscribe(Unsubscribe {
                packet_id,
                user_properties: if v5 { users } else { vec![] },
                filters,
            })
        },
    )
}

fn unsuback(version: Version) -> impl Strategy<Value = Packet> {
    let count = if version == Version::V5 { 1..4 } else { 0..1 };
    (
        packet_id(),
        ack_properties(version),
        vec(reason(UNSUBACK_CODES), count),
    )
        .prop_map(|(packet_id, properties, reasons)| {
            Packet::UnsubAck(UnsubAck {
                packet_id,
                properties,
                reasons,
            })
        })
}

fn disconnect(sender: Role) -> impl Strategy<Value = Packet> {
    let codes = if sender == Role::Client {
        DISCONNECT_CLIENT_CODES
    } else {
        DISCONNECT_SERVER_CODES
    };
    let from_client = sender == Role::Client;
    (
        reason(codes),
        option::of(any::<u32>()),
        option::of(text()),
        users(),
        option::of(text()),
    )
        .prop_map(move |(reason, expiry, reason_string, users, reference)| {
            Packet::Disconnect(Disconnect {
                reason,
                properties: DisconnectProperties {
                    session_expiry_interval_secs: expiry.filter(|_| from_client),
                    reason_string,
                    user_properties: users,
                    server_reference: reference.filter(|_| !from_client),
                },
            })
        })
}

fn auth() -> impl Strategy<Value = Packet> {
    (
        reason(AUTH_CODES),
        method_and_data(),
        option::of(text()),
        users(),
    )
        .prop_map(|(reason, (method, data), reason_string, users)| {
            Packet::Auth(Auth {
                reason,
                properties: AuthProperties {
                    authentication_method: method,
                    authentication_data: data,
                    reason_string,
                    user_properties: users,
                },
            })
        })
}

/// Any packet a client may send in `version`.
fn client_packet(version: Version) -> BoxedStrategy<Packet> {
    let common = prop_oneof![
        connect(version),
        publish(version, Role::Client),
        ack(version, PUBACK_CODES).prop_map(Packet::PubAck),
        ack(version, PUBACK_CODES).prop_map(Packet::PubRec),
        ack(version, PUBREL_CODES).prop_map(Packet::PubRel),
        ack(version, PUBREL_CODES).prop_map(Packet::PubComp),
        subscribe(version),
        unsubscribe(version),
        Just(Packet::PingReq),
    ];
    match version {
        Version::V5 => prop_oneof![common, disconnect(Role::Client), auth()].boxed(),
        Version::V3_1_1 => {
            prop_oneof![common, Just(Packet::Disconnect(Disconnect::normal()))].boxed()
        }
    }
}

/// Any packet a server may send in `version`.
fn server_packet(version: Version) -> BoxedStrategy<Packet> {
    let common = prop_oneof![
        connack(version),
        publish(version, Role::Server),
        ack(version, PUBACK_CODES).prop_map(Packet::PubAck),
        ack(version, PUBACK_CODES).prop_map(Packet::PubRec),
        ack(version, PUBREL_CODES).prop_map(Packet::PubRel),
        ack(version, PUBREL_CODES).prop_map(Packet::PubComp),
        suback(version),
        unsuback(version),
        Just(Packet::PingResp),
    ];
    match version {
        Version::V5 => prop_oneof![common, disconnect(Role::Server), auth()].boxed(),
        Version::V3_1_1 => common.boxed(),
    }
}

pub fn any_version() -> impl Strategy<Value = Version> {
    prop_oneof![Just(Version::V3_1_1), Just(Version::V5)]
}

/// A version, a sender and one packet that sender may send in that version.
pub fn any_packet() -> impl Strategy<Value = (Version, Role, Packet)> {
    (
        any_version(),
        prop_oneof![Just(Role::Client), Just(Role::Server)],
    )
        .prop_flat_map(|(version, sender)| {
            let packet = match sender {
                Role::Client => client_packet(version),
                Role::Server => server_packet(version),
            };
            (Just(version), Just(sender), packet)
        })
}
