//! [`DecodeError`] and [`EncodeError`]: one variant per failure, with the
//! field, packet or property it concerns, so a log line says what was wrong.
//! [`DecodeError::reason_code`] maps each to the MQTT 5 reason code the
//! broker answers with (CONNACK before a session, DISCONNECT after), and
//! [`DecodeError::v3_connack_code`] to a 3.1.1 CONNACK return code where one
//! applies. It does not decide whether to answer at all; that is the broker's.

use std::io;

use crate::Version;
use crate::packet::PacketType;
use crate::property;
use crate::reason::ReasonCode;
use crate::topic::TopicError;

/// Why bytes from the peer are not an acceptable packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    // ---- 0x81 Malformed Packet: framing ----
    /// Packet type 0 (reserved), or 15 (AUTH) in 3.1.1.
    #[error("invalid packet type {packet_type}")]
    InvalidPacketType { packet_type: u8 },
    /// Fixed-header flags other than Table 2-2 prescribes, or a PUBLISH with
    /// DUP set at QoS 0 [MQTT-3.3.1-2].
    #[error("invalid fixed-header flags {flags:#06b} for {packet_type}")]
    InvalidFlags { packet_type: PacketType, flags: u8 },
    /// A Variable Byte Integer longer than 4 bytes or not in its minimal form
    /// [MQTT-1.5.5-1].
    #[error("malformed variable byte integer in {field}")]
    MalformedVarInt { field: &'static str },
    /// A field runs past the end of the packet (or of its property list).
    #[error("{field} runs past the end of its packet or property list")]
    Truncated { field: &'static str },
    /// Bytes left over after the last field of a complete packet.
    #[error("{count} unexpected trailing bytes in {packet_type}")]
    TrailingBytes {
        packet_type: PacketType,
        count: usize,
    },
    /// The stream ended inside a packet.
    #[error("stream ended inside a packet ({buffered_bytes} bytes buffered)")]
    UnexpectedEof { buffered_bytes: usize },

    // ---- 0x81 Malformed Packet: strings ----
    /// Ill-formed UTF-8, including encoded surrogates [MQTT-1.5.4-1].
    #[error("{field} is not well-formed UTF-8")]
    InvalidUtf8 { field: &'static str },
    /// U+0000 inside a string [MQTT-1.5.4-2].
    #[error("{field} contains U+0000")]
    NullChar { field: &'static str },

    // ---- 0x81 Malformed Packet: values ----
    /// QoS 3 in a PUBLISH [MQTT-3.3.1-4] or a Will [MQTT-3.1.2-12], or a
    /// 3.1.1 SUBSCRIBE.
    #[error("QoS {value} in {field}")]
    InvalidQoS { field: &'static str, value: u8 },
    /// CONNECT flags with the reserved bit set [MQTT-3.1.2-3], Will QoS or
    /// Will Retain without the Will Flag [MQTT-3.1.2-11, 3.1.2-13], or (3.1.1)
    /// a password without a user name [MQTT-3.1.2-22 of 3.1.1].
    #[error("invalid CONNECT flags {flags:#010b}")]
    InvalidConnectFlags { flags: u8 },
    /// A reason code this packet may not carry (from this side).
    #[error("reason code {code:#04x} is not valid in {packet_type}")]
    InvalidReasonCode { packet_type: PacketType, code: u8 },
    /// Reserved bits of a subscription options byte [MQTT-3.8.3-5], or any
    /// bit above QoS in 3.1.1.
    #[error("invalid subscription options {options:#010b}")]
    InvalidSubscriptionOptions { options: u8 },
    /// A property id that is unknown, or not allowed in this packet from this
    /// side (§2.2.2.2 calls both a Malformed Packet).
    #[error("property {id:#04x} is not valid in {context}")]
    InvalidPropertyId { context: &'static str, id: u8 },

    // ---- 0x82 Protocol Error ----
    /// A property other than User Property (and, server→client, Subscription
    /// Identifier) appeared twice (§2.2.2.2).
    #[error("property {id:#04x} appears more than once")]
    DuplicateProperty { id: u8 },
    /// A 0-or-1 property with another value, e.g. Request Problem Information.
    #[error("property {id:#04x} has invalid value {value}")]
    PropertyValue { id: u8, value: u32 },
    /// Receive Maximum, Maximum Packet Size or Subscription Identifier of 0
    /// (0x82), or Topic Alias of 0, which §3.3.4 answers with 0x94 Topic Alias
    /// invalid [MQTT-3.3.2-8].
    #[error("property {id:#04x} is 0, which is not allowed")]
    ZeroValue { id: u8 },
    /// Authentication Data without Authentication Method (§3.1.2.11.10).
    #[error("authentication data without authentication method")]
    AuthDataWithoutMethod,
    /// A packet this side never receives: from a client CONNACK, SUBACK,
    /// UNSUBACK, PINGRESP; anything before CONNECT; from a server CONNECT,
    /// SUBSCRIBE, UNSUBSCRIBE, PINGREQ.
    #[error("unexpected {packet_type} packet")]
    UnexpectedPacket { packet_type: PacketType },
    /// `+` or `#` in a PUBLISH or Will topic [MQTT-3.3.2-2].
    #[error("wildcard in topic name")]
    WildcardInTopicName,
    /// A Response Topic that is not a valid topic name: empty or with
    /// wildcards [MQTT-3.3.2-14].
    #[error("response topic is not a valid topic name")]
    InvalidResponseTopic,
    /// An empty topic name without a Topic Alias (§3.3.2.1, [MQTT-4.7.3-1]).
    #[error("empty topic name without a topic alias")]
    EmptyTopicName,
    /// A topic filter with misplaced wildcards or a bad `$share/` prefix.
    #[error("invalid topic filter: {error}")]
    InvalidTopicFilter { error: TopicError },
    /// Packet identifier 0 [MQTT-2.2.1-3, 2.2.1-4].
    #[error("packet identifier 0 in {packet_type}")]
    ZeroPacketId { packet_type: PacketType },
    /// A SUBSCRIBE or UNSUBSCRIBE without filters [MQTT-3.8.3-2, 3.10.3-2],
    /// or a SUBACK (or v5 UNSUBACK) without reason codes.
    #[error("{packet_type} carries no topic filters or reason codes")]
    NoTopicFilters { packet_type: PacketType },
    /// Retain Handling 3 or Maximum QoS 3 in v5 subscription options (§3.8.3.1).
    #[error("subscription options {options:#010b} carry a reserved QoS or Retain Handling")]
    SubscriptionOptionValue { options: u8 },
    /// A CONNACK refusing the connection yet claiming a session
    /// [MQTT-3.2.2-6; 3.2.2-4 of 3.1.1].
    #[error("CONNACK with session present and an error reason")]
    SessionPresentWithError,
    /// No Local on a shared subscription [MQTT-3.8.3-4].
    #[error("No Local set on a shared subscription")]
    NoLocalOnSharedSubscription,

    // ---- other reason codes ----
    /// The whole packet is larger than our limit (0x95).
    #[error("packet of {size_bytes} bytes exceeds the limit of {max_bytes}")]
    PacketTooLarge { size_bytes: u32, max_bytes: u32 },
    /// Protocol name "MQTT" (or "MQIsdp") with a level we do not speak (0x84;
    /// 3.1.1 return code 0x01).
    #[error("unsupported protocol level {level}")]
    UnsupportedProtocol { level: u8 },
    /// A protocol name other than "MQTT" or "MQIsdp" (0x84; 3.1.1 lets us
    /// just close the connection [MQTT-3.1.2-1 of 3.1.1]).
    #[error("unknown protocol name")]
    UnknownProtocolName,
    /// 3.1.1: an empty client id with Clean Session 0 [MQTT-3.1.3-8 of 3.1.1]
    /// (0x85; 3.1.1 return code 0x02).
    #[error("empty client identifier without clean session")]
    EmptyClientIdWithoutCleanSession,
    /// More User Properties in one list than `Limits::max_user_properties` (0x83).
    #[error("more than {max} user properties")]
    TooManyUserProperties { max: usize },
    /// More topic filters than `Limits::max_topic_filters` (0x83).
    #[error("more than {max} topic filters")]
    TooManyTopicFilters { max: usize },
    /// Reading from the transport failed (tokio-util's Decoder needs this).
    #[error("i/o error ({kind:?}): {message}")]
    Io {
        kind: io::ErrorKind,
        message: String,
    },
}

impl DecodeError {
    /// The MQTT 5 reason code to report this failure with.
    pub fn reason_code(&self) -> ReasonCode {
        use DecodeError::*;
        match self {
            InvalidPacketType { .. }
            | InvalidFlags { .. }
            | MalformedVarInt { .. }
            | Truncated { .. }
            | TrailingBytes { .. }
            | UnexpectedEof { .. }
            | InvalidUtf8 { .. }
            | NullChar { .. }
            | InvalidQoS { .. }
            | InvalidConnectFlags { .. }
            | InvalidReasonCode { .. }
            | InvalidSubscriptionOptions { .. }
            | InvalidPropertyId { .. } => ReasonCode::MALFORMED_PACKET,
            ZeroValue { id } if *id == property::id::TOPIC_ALIAS => ReasonCode::TOPIC_ALIAS_INVALID,
            DuplicateProperty { .. }
            | PropertyValue { .. }
            | ZeroValue { .. }
            | InvalidResponseTopic
            | AuthDataWithoutMethod
            | UnexpectedPacket { .. }
            | WildcardInTopicName
            | EmptyTopicName
            | InvalidTopicFilter { .. }
            | ZeroPacketId { .. }
            | NoTopicFilters { .. }
            | SubscriptionOptionValue { .. }
            | SessionPresentWithError
            | NoLocalOnSharedSubscription => ReasonCode::PROTOCOL_ERROR,
            PacketTooLarge { .. } => ReasonCode::PACKET_TOO_LARGE,
            UnsupportedProtocol { .. } | UnknownProtocolName => {
                ReasonCode::UNSUPPORTED_PROTOCOL_VERSION
            }
            EmptyClientIdWithoutCleanSession => ReasonCode::CLIENT_IDENTIFIER_NOT_VALID,
            TooManyUserProperties { .. } | TooManyTopicFilters { .. } => {
                ReasonCode::IMPLEMENTATION_SPECIFIC_ERROR
            }
            Io { .. } => ReasonCode::UNSPECIFIED_ERROR,
        }
    }

    /// The 3.1.1 CONNACK return code to answer a failed CONNECT with, where
    /// 3.1.1 defines one; otherwise the connection is just closed.
    pub fn v3_connack_code(&self) -> Option<u8> {
        match self {
            DecodeError::UnsupportedProtocol { .. } => Some(0x01),
            DecodeError::EmptyClientIdWithoutCleanSession => Some(0x02),
            _ => None,
        }
    }
}

impl From<io::Error> for DecodeError {
    fn from(error: io::Error) -> DecodeError {
        DecodeError::Io {
            kind: error.kind(),
            message: error.to_string(),
        }
    }
}

/// Why a packet cannot be encoded. Nothing is left in the output buffer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// A string or binary field longer than 65,535 bytes.
    #[error("{field} is {length_bytes} bytes, more than 65535")]
    StringTooLong {
        field: &'static str,
        length_bytes: usize,
    },
    /// U+0000 in a string [MQTT-1.5.4-2].
    #[error("{field} contains U+0000")]
    NullChar { field: &'static str },
    /// A remaining length over 268,435,455 bytes (§1.5.5).
    #[error("remaining length {remaining_bytes} exceeds 268435455")]
    RemainingLengthOverflow { remaining_bytes: usize },
    /// The packet exceeds the peer's Maximum Packet Size even after optional
    /// properties were dropped; a PUBLISH is then discarded [MQTT-3.1.2-25].
    #[error("packet of {size_bytes} bytes exceeds the peer's maximum of {max_bytes}")]
    TooLargeForPeer { size_bytes: usize, max_bytes: u32 },
    /// Something this version cannot express (AUTH, a server DISCONNECT, v5
    /// properties or an error reason code in 3.1.1). Strip it explicitly.
    #[error("{what} cannot be expressed in {version:?}")]
    NotInVersion {
        what: &'static str,
        version: Version,
    },
    /// Fields that contradict each other or the spec, e.g. QoS 0 with a
    /// packet id, or a codec that does not know its version yet.
    #[error("invalid packet: {reason}")]
    InvalidState { reason: &'static str },
    /// A reason code this packet may not carry from this side.
    #[error("reason code {code:#04x} is not valid in {packet_type}")]
    InvalidReasonCode { packet_type: PacketType, code: u8 },
    /// Writing to the transport failed (tokio-util's Encoder needs this).
    #[error("i/o error ({kind:?}): {message}")]
    Io {
        kind: io::ErrorKind,
        message: String,
    },
}

impl From<io::Error> for EncodeError {
    fn from(error: io::Error) -> EncodeError {
        EncodeError::Io {
            kind: error.kind(),
            message: error.to_string(),
        }
    }
}
