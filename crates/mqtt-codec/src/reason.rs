//! [`ReasonCode`]: the MQTT 5 reason codes of Table 2-6, which reason codes
//! each packet may carry (and from which side), and the mapping to the 3.1.1
//! CONNACK return codes and SUBACK codes. It does not decide which code the
//! broker sends; that is the broker's business.

use std::fmt;

use crate::Role;
use crate::packet::PacketType;

/// An MQTT 5 reason code (Table 2-6). A newtype rather than an enum, so a
/// code this crate does not name still round-trips and can be logged.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReasonCode(pub u8);

impl ReasonCode {
    pub const SUCCESS: ReasonCode = ReasonCode(0x00);
    pub const NORMAL_DISCONNECTION: ReasonCode = ReasonCode(0x00);
    pub const GRANTED_QOS_0: ReasonCode = ReasonCode(0x00);
    pub const GRANTED_QOS_1: ReasonCode = ReasonCode(0x01);
    pub const GRANTED_QOS_2: ReasonCode = ReasonCode(0x02);
    pub const DISCONNECT_WITH_WILL_MESSAGE: ReasonCode = ReasonCode(0x04);
    pub const NO_MATCHING_SUBSCRIBERS: ReasonCode = ReasonCode(0x10);
    pub const NO_SUBSCRIPTION_EXISTED: ReasonCode = ReasonCode(0x11);
    pub const CONTINUE_AUTHENTICATION: ReasonCode = ReasonCode(0x18);
    pub const RE_AUTHENTICATE: ReasonCode = ReasonCode(0x19);
    pub const UNSPECIFIED_ERROR: ReasonCode = ReasonCode(0x80);
    pub const MALFORMED_PACKET: ReasonCode = ReasonCode(0x81);
    pub const PROTOCOL_ERROR: ReasonCode = ReasonCode(0x82);
    pub const IMPLEMENTATION_SPECIFIC_ERROR: ReasonCode = ReasonCode(0x83);
    pub const UNSUPPORTED_PROTOCOL_VERSION: ReasonCode = ReasonCode(0x84);
    pub const CLIENT_IDENTIFIER_NOT_VALID: ReasonCode = ReasonCode(0x85);
    pub const BAD_USER_NAME_OR_PASSWORD: ReasonCode = ReasonCode(0x86);
    pub const NOT_AUTHORIZED: ReasonCode = ReasonCode(0x87);
    pub const SERVER_UNAVAILABLE: ReasonCode = ReasonCode(0x88);
    pub const SERVER_BUSY: ReasonCode = ReasonCode(0x89);
    pub const BANNED: ReasonCode = ReasonCode(0x8A);
    pub const SERVER_SHUTTING_DOWN: ReasonCode = ReasonCode(0x8B);
    pub const BAD_AUTHENTICATION_METHOD: ReasonCode = ReasonCode(0x8C);
    pub const KEEP_ALIVE_TIMEOUT: ReasonCode = ReasonCode(0x8D);
    pub const SESSION_TAKEN_OVER: ReasonCode = ReasonCode(0x8E);
    pub const TOPIC_FILTER_INVALID: ReasonCode = ReasonCode(0x8F);
    pub const TOPIC_NAME_INVALID: ReasonCode = ReasonCode(0x90);
    pub const PACKET_IDENTIFIER_IN_USE: ReasonCode = ReasonCode(0x91);
    pub const PACKET_IDENTIFIER_NOT_FOUND: ReasonCode = ReasonCode(0x92);
    pub const RECEIVE_MAXIMUM_EXCEEDED: ReasonCode = ReasonCode(0x93);
    pub const TOPIC_ALIAS_INVALID: ReasonCode = ReasonCode(0x94);
    pub const PACKET_TOO_LARGE: ReasonCode = ReasonCode(0x95);
    pub const MESSAGE_RATE_TOO_HIGH: ReasonCode = ReasonCode(0x96);
    pub const QUOTA_EXCEEDED: ReasonCode = ReasonCode(0x97);
    pub const ADMINISTRATIVE_ACTION: ReasonCode = ReasonCode(0x98);
    pub const PAYLOAD_FORMAT_INVALID: ReasonCode = ReasonCode(0x99);
    pub const RETAIN_NOT_SUPPORTED: ReasonCode = ReasonCode(0x9A);
    pub const QOS_NOT_SUPPORTED: ReasonCode = ReasonCode(0x9B);
    pub const USE_ANOTHER_SERVER: ReasonCode = ReasonCode(0x9C);
    pub const SERVER_MOVED: ReasonCode = ReasonCode(0x9D);
    pub const SHARED_SUBSCRIPTIONS_NOT_SUPPORTED: ReasonCode = ReasonCode(0x9E);
    pub const CONNECTION_RATE_EXCEEDED: ReasonCode = ReasonCode(0x9F);
    pub const MAXIMUM_CONNECT_TIME: ReasonCode = ReasonCode(0xA0);
    pub const SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED: ReasonCode = ReasonCode(0xA1);
    pub const WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED: ReasonCode = ReasonCode(0xA2);

    /// Codes 0x80 and above report a failure (§2.4).
    pub fn is_error(self) -> bool {
        self.0 >= 0x80
    }

    /// The Table 2-6 name (the first one where a value has several), or
    /// `None` for a value the table does not define.
    pub fn name(self) -> Option<&'static str> {
        NAMES
            .iter()
            .find(|(code, _)| *code == self.0)
            .map(|(_, name)| *name)
    }
}

/// Names for Debug/Display; one entry per value.
const NAMES: &[(u8, &str)] = &[
    (0x00, "Success"),
    (0x01, "Granted QoS 1"),
    (0x02, "Granted QoS 2"),
    (0x04, "Disconnect with Will Message"),
    (0x10, "No matching subscribers"),
    (0x11, "No subscription existed"),
    (0x18, "Continue authentication"),
    (0x19, "Re-authenticate"),
    (0x80, "Unspecified error"),
    (0x81, "Malformed Packet"),
    (0x82, "Protocol Error"),
    (0x83, "Implementation specific error"),
    (0x84, "Unsupported Protocol Version"),
    (0x85, "Client Identifier not valid"),
    (0x86, "Bad User Name or Password"),
    (0x87, "Not authorized"),
    (0x88, "Server unavailable"),
    (0x89, "Server busy"),
    (0x8A, "Banned"),
    (0x8B, "Server shutting down"),
    (0x8C, "Bad authentication method"),
    (0x8D, "Keep Alive timeout"),
    (0x8E, "Session taken over"),
    (0x8F, "Topic Filter invalid"),
    (0x90, "Topic Name invalid"),
    (0x91, "Packet Identifier in use"),
    (0x92, "Packet Identifier not found"),
    (0x93, "Receive Maximum exceeded"),
    (0x94, "Topic Alias invalid"),
    (0x95, "Packet too large"),
    (0x96, "Message rate too high"),
    (0x97, "Quota exceeded"),
    (0x98, "Administrative action"),
    (0x99, "Payload format invalid"),
    (0x9A, "Retain not supported"),
    (0x9B, "QoS not supported"),
    (0x9C, "Use another server"),
    (0x9D, "Server moved"),
    (0x9E, "Shared Subscriptions not supported"),
    (0x9F, "Connection rate exceeded"),
    (0xA0, "Maximum connect time"),
    (0xA1, "Subscription Identifiers not supported"),
    (0xA2, "Wildcard Subscriptions not supported"),
];

impl fmt::Debug for ReasonCode {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "ReasonCode({:#04x} {})",
            self.0,
            self.name().unwrap_or("?")
        )
    }
}

impl fmt::Display for ReasonCode {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "{:#04x} ({})",
            self.0,
            self.name().unwrap_or("unknown")
        )
    }
}

/// CONNACK, §3.2.2.2 (Table 3-1).
const CONNACK: &[u8] = &[
    0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8C, 0x90, 0x95, 0x97,
    0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F,
];
/// PUBACK §3.4.2.1 and PUBREC §3.5.2.1 share one table.
const PUBACK_PUBREC: &[u8] = &[0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99];
/// PUBREL §3.6.2.1 and PUBCOMP §3.7.2.1 share one table.
const PUBREL_PUBCOMP: &[u8] = &[0x00, 0x92];
/// SUBACK, §3.9.3.
const SUBACK: &[u8] = &[
    0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2,
];
/// UNSUBACK, §3.11.3.
const UNSUBACK: &[u8] = &[0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91];
/// DISCONNECT codes a client may send (Table 3-10, "Client" or "Client or Server").
const DISCONNECT_BY_CLIENT: &[u8] = &[
    0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x99,
];
/// DISCONNECT codes a server may send (Table 3-10, "Server" or "Client or Server").
const DISCONNECT_BY_SERVER: &[u8] = &[
    0x00, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E, 0x8F, 0x90, 0x93, 0x94, 0x95, 0x96,
    0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2,
];
/// AUTH, §3.15.2.1.
const AUTH: &[u8] = &[0x00, 0x18, 0x19];

/// Whether `code` may appear in a v5 `packet_type` sent by `sender`.
pub(crate) fn is_allowed(packet_type: PacketType, sender: Role, code: ReasonCode) -> bool {
    let table = match packet_type {
        PacketType::ConnAck => CONNACK,
        PacketType::PubAck | PacketType::PubRec => PUBACK_PUBREC,
        PacketType::PubRel | PacketType::PubComp => PUBREL_PUBCOMP,
        PacketType::SubAck => SUBACK,
        PacketType::UnsubAck => UNSUBACK,
        PacketType::Disconnect if sender == Role::Client => DISCONNECT_BY_CLIENT,
        PacketType::Disconnect => DISCONNECT_BY_SERVER,
        PacketType::Auth => AUTH,
        _ => return false,
    };
    table.contains(&code.0)
}

/// The 3.1.1 CONNACK return code (§3.2.2.3 of 3.1.1) for a v5 reason code,
/// or `None` where 3.1.1 has no equivalent.
pub(crate) fn connack_code_v3(code: ReasonCode) -> Option<u8> {
    match code {
        ReasonCode::SUCCESS => Some(0x00),
        ReasonCode::UNSUPPORTED_PROTOCOL_VERSION => Some(0x01),
        ReasonCode::CLIENT_IDENTIFIER_NOT_VALID => Some(0x02),
        ReasonCode::SERVER_UNAVAILABLE | ReasonCode::SERVER_BUSY => Some(0x03),
        ReasonCode::BAD_USER_NAME_OR_PASSWORD => Some(0x04),
        ReasonCode::NOT_AUTHORIZED => Some(0x05),
        _ => None,
    }
}

/// The v5 reason code a 3.1.1 CONNACK return code stands for.
pub(crate) fn connack_code_from_v3(code: u8) -> Option<ReasonCode> {
    match code {
        0x00 => Some(ReasonCode::SUCCESS),
        0x01 => Some(ReasonCode::UNSUPPORTED_PROTOCOL_VERSION),
        0x02 => Some(ReasonCode::CLIENT_IDENTIFIER_NOT_VALID),
        0x03 => Some(ReasonCode::SERVER_UNAVAILABLE),
        0x04 => Some(ReasonCode::BAD_USER_NAME_OR_PASSWORD),
        0x05 => Some(ReasonCode::NOT_AUTHORIZED),
        _ => None,
    }
}

/// The 3.1.1 SUBACK return code: a granted QoS, or 0x80 for any failure.
pub(crate) fn suback_code_v3(code: ReasonCode) -> u8 {
    if code.0 <= 0x02 { code.0 } else { 0x80 }
}

/// 3.1.1 SUBACK return codes are 0x00, 0x01, 0x02 and 0x80 (§3.9.3 of 3.1.1),
/// which are also their v5 values.
pub(crate) fn suback_code_from_v3(code: u8) -> Option<ReasonCode> {
    matches!(code, 0x00 | 0x01 | 0x02 | 0x80).then_some(ReasonCode(code))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every named error code is ≥ 0x80 and every success code below it.
    #[test]
    fn is_error_splits_at_0x80() {
        for (code, _) in NAMES {
            assert_eq!(ReasonCode(*code).is_error(), *code >= 0x80);
        }
    }

    /// The v3 CONNACK mapping goes both ways for the six 3.1.1 codes.
    #[test]
    fn connack_v3_mapping_round_trips() {
        for v3 in 0..=5u8 {
            assert_eq!(connack_code_v3(connack_code_from_v3(v3).unwrap()), Some(v3));
        }
        assert_eq!(connack_code_v3(ReasonCode::SERVER_BUSY), Some(3));
        assert_eq!(connack_code_v3(ReasonCode::BANNED), None);
        assert_eq!(connack_code_from_v3(6), None);
    }

    /// A client may not send Session taken over; a server may.
    #[test]
    fn disconnect_codes_depend_on_sender() {
        let code = ReasonCode::SESSION_TAKEN_OVER;
        assert!(is_allowed(PacketType::Disconnect, Role::Server, code));
        assert!(!is_allowed(PacketType::Disconnect, Role::Client, code));
        assert!(is_allowed(
            PacketType::Disconnect,
            Role::Client,
            ReasonCode::DISCONNECT_WITH_WILL_MESSAGE
        ));
    }
}
