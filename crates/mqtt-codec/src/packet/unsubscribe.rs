//! UNSUBSCRIBE (§3.10, client→server) and UNSUBACK (§3.11, server→client):
//!
//! ```text
//! UNSUBSCRIBE: packet id u16 | [properties] | topic filter +
//! UNSUBACK:    packet id u16 | [properties | reason code u8 +]   (3.1.1: packet id only)
//! ```
//!
//! Enforced here: filter syntax, at least one filter, the filter cap. Whether
//! the subscription existed is the broker's.

use std::num::NonZeroU16;

use crate::byte_str::ByteStr;
use crate::error::{DecodeError, EncodeError};
use crate::packet::ack::AckProperties;
use crate::packet::{DecodeContext, EncodeContext, PacketType, read_packet_id};
use crate::property::{self, Place, Value, WriteProperties, id};
use crate::reason::{self, ReasonCode};
use crate::topic::validate_topic_filter;
use crate::wire::{self, Reader, Sink};

/// A request to remove subscriptions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribe {
    pub packet_id: NonZeroU16,
    pub user_properties: Vec<(ByteStr, ByteStr)>,
    /// At least one.
    pub filters: Vec<ByteStr>,
}

/// The server's answer to UNSUBSCRIBE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsubAck {
    pub packet_id: NonZeroU16,
    pub properties: AckProperties,
    /// One per filter in 5.0; empty in 3.1.1, which has no payload.
    pub reasons: Vec<ReasonCode>,
}

pub(crate) fn decode(
    reader: &mut Reader,
    context: &DecodeContext<'_>,
) -> Result<Unsubscribe, DecodeError> {
    let packet_id = read_packet_id(reader, PacketType::Unsubscribe)?;
    let mut user_properties = Vec::new();
    if context.is_v5() {
        let place = Place::Packet(PacketType::Unsubscribe);
        property::read_properties(
            reader,
            place,
            context.sender,
            context.limits,
            |property_id, value| {
                match (property_id, value) {
                    (id::USER_PROPERTY, Value::Pair(name, v)) => user_properties.push((name, v)),
                    (other, _) => return Err(property::misplaced(place, other)),
                }
                Ok(())
            },
        )?;
    }
    let mut filters = Vec::new();
    while !reader.is_empty() {
        if filters.len() == context.limits.max_topic_filters {
            return Err(DecodeError::TooManyTopicFilters {
                max: context.limits.max_topic_filters,
            });
        }
        let filter = reader.string("topic filter")?;
        validate_topic_filter(&filter)
            .map_err(|error| DecodeError::InvalidTopicFilter { error })?;
        filters.push(filter);
    }
    if filters.is_empty() {
        return Err(DecodeError::NoTopicFilters {
            packet_type: PacketType::Unsubscribe,
        });
    }
    Ok(Unsubscribe {
        packet_id,
        user_properties,
        filters,
    })
}

pub(crate) fn decode_unsuback(
    reader: &mut Reader,
    context: &DecodeContext<'_>,
) -> Result<UnsubAck, DecodeError> {
    let packet_id = read_packet_id(reader, PacketType::UnsubAck)?;
    if !context.is_v5() {
        return Ok(UnsubAck {
            packet_id,
            properties: AckProperties::default(),
            reasons: Vec::new(),
        });
    }
    let properties = AckProperties::read(reader, PacketType::UnsubAck, context)?;
    let mut reasons = Vec::with_capacity(reader.remaining());
    while !reader.is_empty() {
        let code = ReasonCode(reader.u8("reason code")?);
        if !reason::is_allowed(PacketType::UnsubAck, context.sender, code) {
            return Err(DecodeError::InvalidReasonCode {
                packet_type: PacketType::UnsubAck,
                code: code.0,
            });
        }
        reasons.push(code);
    }
    if reasons.is_empty() {
        return Err(DecodeError::NoTopicFilters {
            packet_type: PacketType::UnsubAck,
        });
    }
    Ok(UnsubAck {
        packet_id,
        properties,
        reasons,
    })
}

struct UnsubscribeProperties<'a>(&'a [(ByteStr, ByteStr)]);

impl WriteProperties for UnsubscribeProperties<'_> {
    fn write_properties<S: Sink>(&self, sink: &mut S) -> Result<(), EncodeError> {
        property::put_user_properties(sink, self.0)
    }
}

impl Unsubscribe {
    pub(crate) fn write<S: Sink>(
        &self,
        context: &EncodeContext,
        sink: &mut S,
    ) -> Result<(), EncodeError> {
        if self.filters.is_empty() {
            return Err(EncodeError::InvalidState {
                reason: "an UNSUBSCRIBE has at least one filter",
            });
        }
        wire::put_u16(sink, self.packet_id.get());
        if context.is_v5() {
            property::put_properties(sink, &UnsubscribeProperties(&self.user_properties))?;
        } else if !self.user_properties.is_empty() {
            return Err(context.not_in_version("UNSUBSCRIBE properties"));
        }
        for filter in &self.filters {
            if validate_topic_filter(filter).is_err() {
                return Err(EncodeError::InvalidState {
                    reason: "an UNSUBSCRIBE topic filter is not valid",
                });
            }
            wire::put_string(sink, filter, "topic filter")?;
        }
        Ok(())
    }
}

impl UnsubAck {
    pub(crate) fn write<S: Sink>(
        &self,
        context: &EncodeContext,
        sink: &mut S,
    ) -> Result<(), EncodeError> {
        for &reason in &self.reasons {
            context.check_reason(PacketType::UnsubAck, reason)?;
        }
        wire::put_u16(sink, self.packet_id.get());
        if !context.is_v5() {
            // 3.1.1 UNSUBACK has no payload: success codes need no bytes, a
            // refusal cannot be said.
            if self.reasons.iter().any(|reason| reason.is_error()) {
                return Err(context.not_in_version("an error reason code in UNSUBACK"));
            }
            if !self.properties.is_empty() {
                return Err(context.not_in_version("UNSUBACK properties"));
            }
            return Ok(());
        }
        if self.reasons.is_empty() {
            return Err(EncodeError::InvalidState {
                reason: "a 5.0 UNSUBACK has one reason code per filter",
            });
        }
        property::put_properties(sink, &self.properties)?;
        for reason in &self.reasons {
            sink.put_u8(reason.0);
        }
        Ok(())
    }
}
