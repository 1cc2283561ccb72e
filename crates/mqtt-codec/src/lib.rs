//! `citystream-mqtt-codec`: a pure (sans-I/O) codec of MQTT 3.1.1 and 5.0
//! packets, both directions, for the broker's MQTT listener and for tests and
//! test clients (decision 0015).
//!
//! It owns the wire format: framing with a size limit checked before anything
//! is buffered, strict decoding of every rule that needs no connection state,
//! deterministic encoding (properties in table order), and topic name / filter
//! syntax and matching. It deliberately does not own connection state beyond
//! the protocol version: packet ids in use, topic alias maps, Receive Maximum,
//! a second CONNECT, keep-alive and sessions belong to the broker.
//!
//! Entry points: [`MqttCodec`] (a tokio-util `Decoder`/`Encoder`),
//! [`decode_packet`] / [`encode_packet`] for one frame (WebSocket, tests),
//! [`encode_packet_within`] to fit the peer's [`PeerLimits`], and the
//! functions of [`topic`]. Every decode failure is a [`DecodeError`] whose
//! [`DecodeError::reason_code`] is what the broker answers with.
//!
//! Files: `frame.rs` (framing, codec), `packet/` (one file per packet body),
//! `property.rs` (MQTT 5 properties), `wire.rs` and `varint.rs` (data
//! representations), `byte_str.rs`, `reason.rs`, `topic.rs`, `error.rs`.

mod byte_str;
mod error;
mod frame;
mod packet;
mod property;
mod reason;
pub mod topic;
mod varint;
mod wire;

pub use byte_str::ByteStr;
pub use error::{DecodeError, EncodeError};
pub use frame::{MqttCodec, PeerLimits, decode_packet, encode_packet, encode_packet_within};
pub use packet::{
    Ack, AckProperties, Auth, AuthProperties, ConnAck, ConnAckProperties, Connect,
    ConnectProperties, Disconnect, DisconnectProperties, Packet, PacketType, Publish,
    PublishProperties, RetainHandling, SubAck, Subscribe, SubscriptionOptions, UnsubAck,
    Unsubscribe, Will, WillProperties,
};
pub use reason::ReasonCode;
pub use topic::{
    SharedFilter, TopicError, parse_shared, topic_matches, validate_topic_filter,
    validate_topic_name,
};

/// The protocol version of a connection, fixed by its CONNECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// MQTT 3.1.1: protocol name "MQTT", level 4.
    V3_1_1,
    /// MQTT 5.0: protocol name "MQTT", level 5.
    V5,
}

impl Version {
    /// The Protocol Level byte of this version's CONNECT.
    pub fn protocol_level(self) -> u8 {
        match self {
            Version::V3_1_1 => 4,
            Version::V5 => 5,
        }
    }
}

/// Quality of service. Ordered, so a granted QoS is `requested.min(maximum)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum QoS {
    AtMostOnce = 0,
    AtLeastOnce = 1,
    ExactlyOnce = 2,
}

impl QoS {
    /// The QoS with this wire value; `None` for 3 and above.
    pub fn from_u8(value: u8) -> Option<QoS> {
        match value {
            0 => Some(QoS::AtMostOnce),
            1 => Some(QoS::AtLeastOnce),
            2 => Some(QoS::ExactlyOnce),
            _ => None,
        }
    }
}

/// Which side of the connection a codec is. A server decodes client→server
/// packets and encodes server→client ones; a client the reverse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Server,
    Client,
}

/// Limits applied while decoding, so a peer cannot make us buffer or allocate
/// more than we chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest whole packet (fixed header + remaining length) accepted; also
    /// what a server announces as its Maximum Packet Size.
    pub max_packet_bytes: u32,
    /// Most User Properties accepted in one property list. Each costs ~64
    /// bytes of memory for as little as 5 bytes of wire, so this bounds
    /// allocation amplification.
    pub max_user_properties: usize,
    /// Most topic filters accepted in one SUBSCRIBE or UNSUBSCRIBE.
    pub max_topic_filters: usize,
}

impl Limits {
    /// 1 MiB: the open question of decision 0015 was resolved to this.
    pub const DEFAULT_MAX_PACKET_BYTES: u32 = 1024 * 1024;
    pub const DEFAULT_MAX_USER_PROPERTIES: usize = 64;
    pub const DEFAULT_MAX_TOPIC_FILTERS: usize = 64;
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_packet_bytes: Limits::DEFAULT_MAX_PACKET_BYTES,
            max_user_properties: Limits::DEFAULT_MAX_USER_PROPERTIES,
            max_topic_filters: Limits::DEFAULT_MAX_TOPIC_FILTERS,
        }
    }
}
