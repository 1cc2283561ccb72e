//! PUBLISH (§3.3), both directions. Fixed-header flags: DUP (bit 3), QoS
//! (bits 2-1), RETAIN (bit 0). Layout:
//!
//! ```text
//! topic name | [packet id u16, iff QoS > 0] | [properties] | payload (the rest)
//! ```
//!
//! Enforced here: topic syntax (no wildcards; empty only with a Topic Alias),
//! packet id presence and non-zero. QoS 3 and DUP at QoS 0 are refused from
//! the fixed header in `frame.rs`. Topic alias resolution, Receive Maximum
//! and payload format validation are the broker's (decision 0015 chose not to
//! validate Payload Format Indicator = 1 payloads here).

use std::num::NonZeroU16;

use bytes::Bytes;

use crate::QoS;
use crate::byte_str::ByteStr;
use crate::error::{DecodeError, EncodeError};
use crate::packet::{DecodeContext, EncodeContext, PacketType, read_packet_id};
use crate::property::{self, Place, Value, WriteProperties, id};
use crate::topic::{TopicError, validate_topic_name};
use crate::wire::{self, Reader, Sink};

const FLAG_DUP: u8 = 0b1000;
const QOS_SHIFT: u8 = 1;
const FLAG_RETAIN: u8 = 0b0001;

/// An application message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    pub dup: bool,
    pub qos: QoS,
    pub retain: bool,
    /// May be empty only together with a Topic Alias (5.0).
    pub topic: ByteStr,
    /// `Some` iff `qos` is above 0.
    pub packet_id: Option<NonZeroU16>,
    pub properties: PublishProperties,
    pub payload: Bytes,
}

/// PUBLISH properties (§3.3.2.3); empty in 3.1.1.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PublishProperties {
    pub payload_format_indicator: Option<bool>,
    pub message_expiry_interval_secs: Option<u32>,
    pub topic_alias: Option<NonZeroU16>,
    pub response_topic: Option<ByteStr>,
    pub correlation_data: Option<Bytes>,
    /// In original order [MQTT-3.3.2-17, 3.3.2-18].
    pub user_properties: Vec<(ByteStr, ByteStr)>,
    /// Server→client only: one per matching subscription that had one.
    pub subscription_identifiers: Vec<u32>,
    pub content_type: Option<ByteStr>,
}

/// The decode error for a topic name that `validate_topic_name` refused.
pub(crate) fn topic_error(error: TopicError) -> DecodeError {
    match error {
        TopicError::Empty => DecodeError::EmptyTopicName,
        TopicError::NullChar => DecodeError::NullChar {
            field: "topic name",
        },
        // A u16-prefixed string cannot be too long, and names have no
        // share syntax: what is left is a wildcard.
        _ => DecodeError::WildcardInTopicName,
    }
}

/// A Response Topic is a topic name: no wildcards [MQTT-3.3.2-14], not empty.
pub(crate) fn check_response_topic(response_topic: Option<&ByteStr>) -> Result<(), DecodeError> {
    match response_topic {
        Some(topic) if validate_topic_name(topic).is_err() => {
            Err(DecodeError::InvalidResponseTopic)
        }
        _ => Ok(()),
    }
}

pub(crate) fn decode(
    flags: u8,
    reader: &mut Reader,
    context: &DecodeContext<'_>,
) -> Result<Publish, DecodeError> {
    let qos_bits = (flags >> QOS_SHIFT) & 0b11;
    let qos = QoS::from_u8(qos_bits).ok_or(DecodeError::InvalidQoS {
        field: "PUBLISH",
        value: qos_bits,
    })?;
    let topic = reader.string("topic name")?;
    let packet_id = if qos > QoS::AtMostOnce {
        Some(read_packet_id(reader, PacketType::Publish)?)
    } else {
        None
    };
    let mut properties = PublishProperties::default();
    if context.is_v5() {
        property::read_properties(
            reader,
            Place::Packet(PacketType::Publish),
            context.sender,
            context.limits,
            |property_id, value| properties.apply(property_id, value),
        )?;
    }
    check_response_topic(properties.response_topic.as_ref())?;
    // An empty topic is legal only when a Topic Alias names it (§3.3.2.1).
    if !(topic.is_empty() && properties.topic_alias.is_some()) {
        validate_topic_name(&topic).map_err(topic_error)?;
    }
    Ok(Publish {
        dup: flags & FLAG_DUP != 0,
        qos,
        retain: flags & FLAG_RETAIN != 0,
        topic,
        packet_id,
        properties,
        payload: reader.rest(),
    })
}

impl PublishProperties {
    fn apply(&mut self, property_id: u8, value: Value) -> Result<(), DecodeError> {
        match (property_id, value) {
            (id::PAYLOAD_FORMAT_INDICATOR, Value::Byte(v)) => {
                self.payload_format_indicator = Some(v == 1)
            }
            (id::MESSAGE_EXPIRY_INTERVAL, Value::FourByte(v)) => {
                self.message_expiry_interval_secs = Some(v)
            }
            (id::CONTENT_TYPE, Value::String(v)) => self.content_type = Some(v),
            (id::RESPONSE_TOPIC, Value::String(v)) => self.response_topic = Some(v),
            (id::CORRELATION_DATA, Value::Binary(v)) => self.correlation_data = Some(v),
            (id::SUBSCRIPTION_IDENTIFIER, Value::VarInt(v)) => {
                self.subscription_identifiers.push(v)
            }
            (id::TOPIC_ALIAS, Value::TwoByte(v)) => self.topic_alias = NonZeroU16::new(v),
            (id::USER_PROPERTY, Value::Pair(name, v)) => self.user_properties.push((name, v)),
            (other, _) => {
                return Err(property::misplaced(
                    Place::Packet(PacketType::Publish),
                    other,
                ));
            }
        }
        Ok(())
    }
}

impl WriteProperties for PublishProperties {
    fn write_properties<S: Sink>(&self, sink: &mut S) -> Result<(), EncodeError> {
        property::put_bool(
            sink,
            id::PAYLOAD_FORMAT_INDICATOR,
            self.payload_format_indicator,
        );
        property::put_four_byte(
            sink,
            id::MESSAGE_EXPIRY_INTERVAL,
            self.message_expiry_interval_secs,
        );
        property::put_string(sink, id::CONTENT_TYPE, self.content_type.as_ref())?;
        property::put_string(sink, id::RESPONSE_TOPIC, self.response_topic.as_ref())?;
        property::put_binary(sink, id::CORRELATION_DATA, self.correlation_data.as_ref())?;
        for &identifier in &self.subscription_identifiers {
            property::put_subscription_identifier(sink, identifier)?;
        }
        property::put_two_byte(sink, id::TOPIC_ALIAS, self.topic_alias.map(NonZeroU16::get));
        property::put_user_properties(sink, &self.user_properties)?;
        Ok(())
    }
}

impl Publish {
    pub(crate) fn header_flags(&self) -> u8 {
        let mut flags = (self.qos as u8) << QOS_SHIFT;
        if self.dup {
            flags |= FLAG_DUP;
        }
        if self.retain {
            flags |= FLAG_RETAIN;
        }
        flags
    }

    /// The same rules the decoder enforces, so we never send what we would refuse.
    fn check(&self, context: &EncodeContext) -> Result<(), EncodeError> {
        if self.dup && self.qos == QoS::AtMostOnce {
            return Err(EncodeError::InvalidState {
                reason: "DUP is 0 at QoS 0 [MQTT-3.3.1-2]",
            });
        }
        if self.packet_id.is_some() != (self.qos > QoS::AtMostOnce) {
            return Err(EncodeError::InvalidState {
                reason: "a PUBLISH has a packet id iff QoS > 0",
            });
        }
        if !context.is_v5() && self.properties != PublishProperties::default() {
            return Err(context.not_in_version("PUBLISH properties"));
        }
        if context.sender == Some(crate::Role::Client)
            && !self.properties.subscription_identifiers.is_empty()
        {
            return Err(EncodeError::InvalidState {
                reason: "a client's PUBLISH has no subscription identifier",
            });
        }
        if check_response_topic(self.properties.response_topic.as_ref()).is_err() {
            return Err(EncodeError::InvalidState {
                reason: "the Response Topic is not a valid topic name",
            });
        }
        let aliased_empty = self.topic.is_empty() && self.properties.topic_alias.is_some();
        if !aliased_empty && validate_topic_name(&self.topic).is_err() {
            return Err(EncodeError::InvalidState {
                reason: "the PUBLISH topic is not a valid topic name",
            });
        }
        Ok(())
    }

    pub(crate) fn write<S: Sink>(
        &self,
        context: &EncodeContext,
        sink: &mut S,
    ) -> Result<(), EncodeError> {
        self.check(context)?;
        wire::put_string(sink, &self.topic, "topic name")?;
        if let Some(packet_id) = self.packet_id {
            wire::put_u16(sink, packet_id.get());
        }
        if context.is_v5() {
            property::put_properties(sink, &self.properties)?;
        }
        sink.put_slice(&self.payload);
        Ok(())
    }
}
