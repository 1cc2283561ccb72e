//! SUBSCRIBE (§3.8, client→server) and SUBACK (§3.9, server→client):
//!
//! ```text
//! SUBSCRIBE: packet id u16 | [properties] | (topic filter, options u8)+
//! SUBACK:    packet id u16 | [properties] | reason code u8 +
//! ```
//!
//! Subscription options, bit 7 to 0: reserved (2), Retain Handling (2),
//! Retain As Published, No Local, Maximum QoS (2); in 3.1.1 only the QoS bits
//! exist. Enforced here: filter syntax, option bits, at least one filter, the
//! filter cap, No Local on shared subscriptions. Whether a filter is
//! authorized, or shared / wildcard subscriptions are supported, is the
//! broker's.

use std::num::NonZeroU16;

use crate::QoS;
use crate::byte_str::ByteStr;
use crate::error::{DecodeError, EncodeError};
use crate::packet::ack::AckProperties;
use crate::packet::{DecodeContext, EncodeContext, PacketType, read_packet_id};
use crate::property::{self, Place, Value, WriteProperties, id};
use crate::reason::{self, ReasonCode};
use crate::topic::{parse_shared, validate_topic_filter};
use crate::wire::{self, Reader, Sink};

const OPTION_NO_LOCAL: u8 = 0b0000_0100;
const OPTION_RETAIN_AS_PUBLISHED: u8 = 0b0000_1000;
const RETAIN_HANDLING_SHIFT: u8 = 4;
const OPTION_RESERVED_V5: u8 = 0b1100_0000;
const OPTION_RESERVED_V3: u8 = 0b1111_1100;

/// A subscription request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribe {
    pub packet_id: NonZeroU16,
    /// 1..=268,435,455 when present (5.0).
    pub subscription_identifier: Option<u32>,
    pub user_properties: Vec<(ByteStr, ByteStr)>,
    /// At least one.
    pub filters: Vec<(ByteStr, SubscriptionOptions)>,
}

/// Per-filter options (§3.8.3.1). In 3.1.1 only `qos` exists; the others
/// decode as false / SendAtSubscribe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubscriptionOptions {
    pub qos: QoS,
    pub no_local: bool,
    pub retain_as_published: bool,
    pub retain_handling: RetainHandling,
}

impl SubscriptionOptions {
    /// Options with this QoS and everything else at its 3.1.1 meaning.
    pub fn with_qos(qos: QoS) -> SubscriptionOptions {
        SubscriptionOptions {
            qos,
            no_local: false,
            retain_as_published: false,
            retain_handling: RetainHandling::SendAtSubscribe,
        }
    }
}

/// Whether retained messages are sent when a subscription is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RetainHandling {
    SendAtSubscribe = 0,
    SendAtSubscribeIfNew = 1,
    DoNotSend = 2,
}

/// The server's answer to SUBSCRIBE: one reason per filter, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubAck {
    pub packet_id: NonZeroU16,
    pub properties: AckProperties,
    /// Granted QoS (0x00-0x02) or an error; in 3.1.1 any error is sent as 0x80.
    pub reasons: Vec<ReasonCode>,
}

pub(crate) fn decode(
    reader: &mut Reader,
    context: &DecodeContext<'_>,
) -> Result<Subscribe, DecodeError> {
    let packet_id = read_packet_id(reader, PacketType::Subscribe)?;
    let mut subscription_identifier = None;
    let mut user_properties = Vec::new();
    if context.is_v5() {
        let place = Place::Packet(PacketType::Subscribe);
        property::read_properties(
            reader,
            place,
            context.sender,
            context.limits,
            |property_id, value| {
                match (property_id, value) {
                    (id::SUBSCRIPTION_IDENTIFIER, Value::VarInt(v)) => {
                        subscription_identifier = Some(v)
                    }
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
        let options = decode_options(reader.u8("subscription options")?, context)?;
        // No Local on a shared subscription is a Protocol Error [MQTT-3.8.3-4].
        if options.no_local && matches!(parse_shared(&filter), Ok(Some(_))) {
            return Err(DecodeError::NoLocalOnSharedSubscription);
        }
        filters.push((filter, options));
    }
    if filters.is_empty() {
        return Err(DecodeError::NoTopicFilters {
            packet_type: PacketType::Subscribe,
        });
    }
    Ok(Subscribe {
        packet_id,
        subscription_identifier,
        user_properties,
        filters,
    })
}

fn decode_options(
    options: u8,
    context: &DecodeContext<'_>,
) -> Result<SubscriptionOptions, DecodeError> {
    let reserved = if context.is_v5() {
        OPTION_RESERVED_V5
    } else {
        OPTION_RESERVED_V3
    };
    let qos = QoS::from_u8(options & 0b11);
    // 3.1.1 calls its reserved bits 7-2 and QoS 3 malformed [MQTT-3.8.3-4 of
    // 3.1.1, printed there as "MQTT-3-8.3-4"]; 5.0 its bits 7-6 [MQTT-3.8.3-5].
    if options & reserved != 0 || (!context.is_v5() && qos.is_none()) {
        return Err(DecodeError::InvalidSubscriptionOptions { options });
    }
    let retain_handling = match (options >> RETAIN_HANDLING_SHIFT) & 0b11 {
        0 => RetainHandling::SendAtSubscribe,
        1 => RetainHandling::SendAtSubscribeIfNew,
        2 => RetainHandling::DoNotSend,
        _ => return Err(DecodeError::SubscriptionOptionValue { options }),
    };
    // 5.0 calls Maximum QoS 3 a Protocol Error (§3.8.3.1).
    let qos = qos.ok_or(DecodeError::SubscriptionOptionValue { options })?;
    Ok(SubscriptionOptions {
        qos,
        no_local: options & OPTION_NO_LOCAL != 0,
        retain_as_published: options & OPTION_RETAIN_AS_PUBLISHED != 0,
        retain_handling,
    })
}

pub(crate) fn decode_suback(
    reader: &mut Reader,
    context: &DecodeContext<'_>,
) -> Result<SubAck, DecodeError> {
    let packet_id = read_packet_id(reader, PacketType::SubAck)?;
    let properties = if context.is_v5() {
        AckProperties::read(reader, PacketType::SubAck, context)?
    } else {
        AckProperties::default()
    };
    let mut reasons = Vec::with_capacity(reader.remaining());
    while !reader.is_empty() {
        let code = reader.u8("reason code")?;
        let reason = if context.is_v5() {
            Some(ReasonCode(code))
                .filter(|&reason| reason::is_allowed(PacketType::SubAck, context.sender, reason))
        } else {
            reason::suback_code_from_v3(code)
        };
        reasons.push(reason.ok_or(DecodeError::InvalidReasonCode {
            packet_type: PacketType::SubAck,
            code,
        })?);
    }
    if reasons.is_empty() {
        return Err(DecodeError::NoTopicFilters {
            packet_type: PacketType::SubAck,
        });
    }
    Ok(SubAck {
        packet_id,
        properties,
        reasons,
    })
}

impl SubscriptionOptions {
    fn to_byte(self, context: &EncodeContext) -> Result<u8, EncodeError> {
        let byte = (self.qos as u8)
            | if self.no_local { OPTION_NO_LOCAL } else { 0 }
            | if self.retain_as_published {
                OPTION_RETAIN_AS_PUBLISHED
            } else {
                0
            }
            | (self.retain_handling as u8) << RETAIN_HANDLING_SHIFT;
        if !context.is_v5() && byte != self.qos as u8 {
            return Err(context.not_in_version("subscription options other than QoS"));
        }
        Ok(byte)
    }
}

struct SubscribeProperties<'a>(&'a Subscribe);

impl WriteProperties for SubscribeProperties<'_> {
    fn write_properties<S: Sink>(&self, sink: &mut S) -> Result<(), EncodeError> {
        if let Some(identifier) = self.0.subscription_identifier {
            property::put_subscription_identifier(sink, identifier)?;
        }
        property::put_user_properties(sink, &self.0.user_properties)
    }
}

impl Subscribe {
    pub(crate) fn write<S: Sink>(
        &self,
        context: &EncodeContext,
        sink: &mut S,
    ) -> Result<(), EncodeError> {
        if self.filters.is_empty() {
            return Err(EncodeError::InvalidState {
                reason: "a SUBSCRIBE has at least one filter",
            });
        }
        wire::put_u16(sink, self.packet_id.get());
        if context.is_v5() {
            property::put_properties(sink, &SubscribeProperties(self))?;
        } else if self.subscription_identifier.is_some() || !self.user_properties.is_empty() {
            return Err(context.not_in_version("SUBSCRIBE properties"));
        }
        for (filter, options) in &self.filters {
            if validate_topic_filter(filter).is_err() {
                return Err(EncodeError::InvalidState {
                    reason: "a SUBSCRIBE topic filter is not valid",
                });
            }
            if options.no_local && matches!(parse_shared(filter), Ok(Some(_))) {
                return Err(EncodeError::InvalidState {
                    reason: "No Local on a shared subscription",
                });
            }
            wire::put_string(sink, filter, "topic filter")?;
            sink.put_u8(options.to_byte(context)?);
        }
        Ok(())
    }
}

impl SubAck {
    pub(crate) fn write<S: Sink>(
        &self,
        context: &EncodeContext,
        sink: &mut S,
    ) -> Result<(), EncodeError> {
        if self.reasons.is_empty() {
            return Err(EncodeError::InvalidState {
                reason: "a SUBACK has at least one reason code",
            });
        }
        wire::put_u16(sink, self.packet_id.get());
        if context.is_v5() {
            property::put_properties(sink, &self.properties)?;
        } else if !self.properties.is_empty() {
            return Err(context.not_in_version("SUBACK properties"));
        }
        for &reason in &self.reasons {
            context.check_reason(PacketType::SubAck, reason)?;
            sink.put_u8(if context.is_v5() {
                reason.0
            } else {
                reason::suback_code_v3(reason)
            });
        }
        Ok(())
    }
}
