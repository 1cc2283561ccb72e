//! The packet model shared by both versions ([`Packet`], one struct per
//! packet body) and the dispatch from a fixed header to each packet's
//! decoder and encoder. MQTT 5 is a superset of 3.1.1: in 3.1.1 properties
//! are empty and reason codes map to 3.1.1 return codes. Framing (finding a
//! packet in a byte stream, the size limit) is `frame.rs`; property lists are
//! `property.rs`.

mod ack;
mod auth;
mod connack;
mod connect;
mod disconnect;
mod publish;
mod subscribe;
mod unsubscribe;

use std::fmt;

use bytes::Bytes;

pub use ack::{Ack, AckProperties};
pub use auth::{Auth, AuthProperties};
pub use connack::{ConnAck, ConnAckProperties};
pub(crate) use connect::peek_version;
pub use connect::{Connect, ConnectProperties, Will, WillProperties};
pub use disconnect::{Disconnect, DisconnectProperties};
pub use publish::{Publish, PublishProperties};
pub use subscribe::{RetainHandling, SubAck, Subscribe, SubscriptionOptions};
pub use unsubscribe::{UnsubAck, Unsubscribe};

use crate::error::{DecodeError, EncodeError};
use crate::wire::{Reader, Sink};
use crate::{Limits, Role, Version};

/// The control packet type: the high nibble of the first byte (Table 2-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketType {
    Connect = 1,
    ConnAck = 2,
    Publish = 3,
    PubAck = 4,
    PubRec = 5,
    PubRel = 6,
    PubComp = 7,
    Subscribe = 8,
    SubAck = 9,
    Unsubscribe = 10,
    UnsubAck = 11,
    PingReq = 12,
    PingResp = 13,
    Disconnect = 14,
    Auth = 15,
}

impl PacketType {
    /// The type with this nibble; `None` for 0 (reserved) and above 15.
    pub fn from_nibble(nibble: u8) -> Option<PacketType> {
        use PacketType::*;
        const ALL: [PacketType; 15] = [
            Connect,
            ConnAck,
            Publish,
            PubAck,
            PubRec,
            PubRel,
            PubComp,
            Subscribe,
            SubAck,
            Unsubscribe,
            UnsubAck,
            PingReq,
            PingResp,
            Disconnect,
            Auth,
        ];
        ALL.get(usize::from(nibble).checked_sub(1)?).copied()
    }

    /// The fixed-header flags Table 2-2 prescribes; `None` for PUBLISH,
    /// whose flags are DUP, QoS and RETAIN.
    pub(crate) fn required_flags(self) -> Option<u8> {
        match self {
            PacketType::Publish => None,
            PacketType::PubRel | PacketType::Subscribe | PacketType::Unsubscribe => Some(0b0010),
            _ => Some(0b0000),
        }
    }

    /// Whether `sender` ever sends this packet type (§2.1.2, Table 2-1).
    pub(crate) fn is_sent_by(self, sender: Role) -> bool {
        use PacketType::*;
        match self {
            Connect | Subscribe | Unsubscribe | PingReq => sender == Role::Client,
            ConnAck | SubAck | UnsubAck | PingResp => sender == Role::Server,
            _ => true,
        }
    }

    pub fn name(self) -> &'static str {
        use PacketType::*;
        match self {
            Connect => "CONNECT",
            ConnAck => "CONNACK",
            Publish => "PUBLISH",
            PubAck => "PUBACK",
            PubRec => "PUBREC",
            PubRel => "PUBREL",
            PubComp => "PUBCOMP",
            Subscribe => "SUBSCRIBE",
            SubAck => "SUBACK",
            Unsubscribe => "UNSUBSCRIBE",
            UnsubAck => "UNSUBACK",
            PingReq => "PINGREQ",
            PingResp => "PINGRESP",
            Disconnect => "DISCONNECT",
            Auth => "AUTH",
        }
    }
}

impl fmt::Display for PacketType {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.name())
    }
}

/// One MQTT control packet, either direction, either version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// Boxed: by far the largest body, and sent once per connection.
    Connect(Box<Connect>),
    ConnAck(ConnAck),
    Publish(Publish),
    PubAck(Ack),
    PubRec(Ack),
    PubRel(Ack),
    PubComp(Ack),
    Subscribe(Subscribe),
    SubAck(SubAck),
    Unsubscribe(Unsubscribe),
    UnsubAck(UnsubAck),
    PingReq,
    PingResp,
    Disconnect(Disconnect),
    Auth(Auth),
}

impl Packet {
    pub fn packet_type(&self) -> PacketType {
        match self {
            Packet::Connect(_) => PacketType::Connect,
            Packet::ConnAck(_) => PacketType::ConnAck,
            Packet::Publish(_) => PacketType::Publish,
            Packet::PubAck(_) => PacketType::PubAck,
            Packet::PubRec(_) => PacketType::PubRec,
            Packet::PubRel(_) => PacketType::PubRel,
            Packet::PubComp(_) => PacketType::PubComp,
            Packet::Subscribe(_) => PacketType::Subscribe,
            Packet::SubAck(_) => PacketType::SubAck,
            Packet::Unsubscribe(_) => PacketType::Unsubscribe,
            Packet::UnsubAck(_) => PacketType::UnsubAck,
            Packet::PingReq => PacketType::PingReq,
            Packet::PingResp => PacketType::PingResp,
            Packet::Disconnect(_) => PacketType::Disconnect,
            Packet::Auth(_) => PacketType::Auth,
        }
    }

    /// The exact number of bytes [`crate::encode_packet`] writes for this
    /// packet in `version`, or the error it would return.
    pub fn encoded_len(&self, version: Version) -> Result<usize, EncodeError> {
        crate::frame::encoded_len(self, &EncodeContext::new(version, None))
    }

    /// The fixed header's first byte: type and flags.
    pub(crate) fn first_byte(&self) -> u8 {
        let flags = match self {
            Packet::Publish(publish) => publish.header_flags(),
            other => other.packet_type().required_flags().unwrap_or(0),
        };
        (self.packet_type() as u8) << 4 | flags
    }

    /// Writes the variable header and payload (everything after the
    /// remaining length).
    pub(crate) fn write_body<S: Sink>(
        &self,
        context: &EncodeContext,
        sink: &mut S,
    ) -> Result<(), EncodeError> {
        context.check_sender(self.packet_type())?;
        match self {
            Packet::Connect(connect) => connect.write(context, sink),
            Packet::ConnAck(connack) => connack.write(context, sink),
            Packet::Publish(publish) => publish.write(context, sink),
            Packet::PubAck(ack) => ack.write(PacketType::PubAck, context, sink),
            Packet::PubRec(ack) => ack.write(PacketType::PubRec, context, sink),
            Packet::PubRel(ack) => ack.write(PacketType::PubRel, context, sink),
            Packet::PubComp(ack) => ack.write(PacketType::PubComp, context, sink),
            Packet::Subscribe(subscribe) => subscribe.write(context, sink),
            Packet::SubAck(suback) => suback.write(context, sink),
            Packet::Unsubscribe(unsubscribe) => unsubscribe.write(context, sink),
            Packet::UnsubAck(unsuback) => unsuback.write(context, sink),
            Packet::PingReq | Packet::PingResp => Ok(()),
            Packet::Disconnect(disconnect) => disconnect.write(context, sink),
            Packet::Auth(auth) => auth.write(context, sink),
        }
    }
}

/// What a decoder knows about the packet it is decoding.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DecodeContext<'a> {
    /// The connection's version; ignored by CONNECT, which carries its own.
    pub(crate) version: Version,
    /// Who sent the packet (the opposite of the decoding codec's role).
    pub(crate) sender: Role,
    pub(crate) limits: &'a Limits,
}

impl DecodeContext<'_> {
    pub(crate) fn is_v5(&self) -> bool {
        self.version == Version::V5
    }
}

/// What an encoder knows about the packet it is encoding.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EncodeContext {
    pub(crate) version: Version,
    /// Who is sending; `None` from the role-less [`crate::encode_packet`],
    /// which then accepts what either side may send.
    pub(crate) sender: Option<Role>,
}

impl EncodeContext {
    pub(crate) fn new(version: Version, sender: Option<Role>) -> EncodeContext {
        EncodeContext { version, sender }
    }

    pub(crate) fn is_v5(&self) -> bool {
        self.version == Version::V5
    }

    /// A codec with a role refuses to send the other side's packets.
    fn check_sender(&self, packet_type: PacketType) -> Result<(), EncodeError> {
        match self.sender {
            Some(sender) if !packet_type.is_sent_by(sender) => Err(EncodeError::InvalidState {
                reason: "this side never sends this packet type",
            }),
            _ => Ok(()),
        }
    }

    /// Whether this side may send `code` in `packet_type`; without a role,
    /// either side's codes are accepted.
    pub(crate) fn check_reason(
        &self,
        packet_type: PacketType,
        code: crate::ReasonCode,
    ) -> Result<(), EncodeError> {
        let allowed = match self.sender {
            Some(sender) => crate::reason::is_allowed(packet_type, sender, code),
            None => [Role::Client, Role::Server]
                .into_iter()
                .any(|sender| crate::reason::is_allowed(packet_type, sender, code)),
        };
        if !allowed {
            return Err(EncodeError::InvalidReasonCode {
                packet_type,
                code: code.0,
            });
        }
        Ok(())
    }

    /// The error for something 3.1.1 cannot carry.
    pub(crate) fn not_in_version(&self, what: &'static str) -> EncodeError {
        EncodeError::NotInVersion {
            what,
            version: self.version,
        }
    }
}

/// Decodes one packet body. `flags` were checked against Table 2-2 already.
pub(crate) fn decode_body(
    packet_type: PacketType,
    flags: u8,
    body: Bytes,
    context: &DecodeContext<'_>,
) -> Result<Packet, DecodeError> {
    let mut reader = Reader::new(body);
    let packet = match packet_type {
        PacketType::Connect => Packet::Connect(Box::new(connect::decode(&mut reader, context)?)),
        PacketType::ConnAck => Packet::ConnAck(connack::decode(&mut reader, context)?),
        PacketType::Publish => Packet::Publish(publish::decode(flags, &mut reader, context)?),
        PacketType::PubAck => Packet::PubAck(ack::decode(packet_type, &mut reader, context)?),
        PacketType::PubRec => Packet::PubRec(ack::decode(packet_type, &mut reader, context)?),
        PacketType::PubRel => Packet::PubRel(ack::decode(packet_type, &mut reader, context)?),
        PacketType::PubComp => Packet::PubComp(ack::decode(packet_type, &mut reader, context)?),
        PacketType::Subscribe => Packet::Subscribe(subscribe::decode(&mut reader, context)?),
        PacketType::SubAck => Packet::SubAck(subscribe::decode_suback(&mut reader, context)?),
        PacketType::Unsubscribe => Packet::Unsubscribe(unsubscribe::decode(&mut reader, context)?),
        PacketType::UnsubAck => {
            Packet::UnsubAck(unsubscribe::decode_unsuback(&mut reader, context)?)
        }
        PacketType::PingReq => Packet::PingReq,
        PacketType::PingResp => Packet::PingResp,
        PacketType::Disconnect => Packet::Disconnect(disconnect::decode(&mut reader, context)?),
        PacketType::Auth => Packet::Auth(auth::decode(&mut reader, context)?),
    };
    reader.finish(packet_type)?;
    Ok(packet)
}

/// Reads a non-zero packet identifier [MQTT-2.2.1-3, 2.2.1-4].
pub(crate) fn read_packet_id(
    reader: &mut Reader,
    packet_type: PacketType,
) -> Result<std::num::NonZeroU16, DecodeError> {
    let value = reader.u16("packet identifier")?;
    std::num::NonZeroU16::new(value).ok_or(DecodeError::ZeroPacketId { packet_type })
}
