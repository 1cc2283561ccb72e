//! PUBACK, PUBREC, PUBREL and PUBCOMP (§3.4–§3.7), which share one body:
//!
//! ```text
//! 3.1.1: packet id u16                       (remaining length exactly 2)
//! 5.0:   packet id u16 | [reason u8 | [properties]]
//! ```
//!
//! In 5.0 the reason may be left out when it is 0x00 and there are no
//! properties (remaining length 2), and the property length when there are
//! none (remaining length 3); we accept both and write the shortest form.
//! Also holds [`AckProperties`], which SUBACK and UNSUBACK share. Which
//! packet id is outstanding is the broker's business.

use std::num::NonZeroU16;

use crate::byte_str::ByteStr;
use crate::error::{DecodeError, EncodeError};
use crate::packet::{DecodeContext, EncodeContext, PacketType, read_packet_id};
use crate::property::{self, Place, Value, WriteProperties, id};
use crate::reason::{self, ReasonCode};
use crate::wire::{self, Reader, Sink};

/// The body of PUBACK, PUBREC, PUBREL and PUBCOMP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    pub packet_id: NonZeroU16,
    /// Always SUCCESS when decoded from 3.1.1.
    pub reason: ReasonCode,
    pub properties: AckProperties,
}

impl Ack {
    /// A successful acknowledgement without properties.
    pub fn success(packet_id: NonZeroU16) -> Ack {
        Ack {
            packet_id,
            reason: ReasonCode::SUCCESS,
            properties: AckProperties::default(),
        }
    }
}

/// Properties of the acknowledgements (PUB*, SUBACK, UNSUBACK); empty in 3.1.1.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AckProperties {
    pub reason_string: Option<ByteStr>,
    pub user_properties: Vec<(ByteStr, ByteStr)>,
}

impl AckProperties {
    pub fn is_empty(&self) -> bool {
        self.reason_string.is_none() && self.user_properties.is_empty()
    }

    /// Reads a property list of `packet_type`.
    pub(crate) fn read(
        reader: &mut Reader,
        packet_type: PacketType,
        context: &DecodeContext<'_>,
    ) -> Result<AckProperties, DecodeError> {
        let mut properties = AckProperties::default();
        let place = Place::Packet(packet_type);
        property::read_properties(
            reader,
            place,
            context.sender,
            context.limits,
            |property_id, value| {
                match (property_id, value) {
                    (id::REASON_STRING, Value::String(v)) => properties.reason_string = Some(v),
                    (id::USER_PROPERTY, Value::Pair(name, v)) => {
                        properties.user_properties.push((name, v))
                    }
                    (other, _) => return Err(property::misplaced(place, other)),
                }
                Ok(())
            },
        )?;
        Ok(properties)
    }
}

impl WriteProperties for AckProperties {
    fn write_properties<S: Sink>(&self, sink: &mut S) -> Result<(), EncodeError> {
        property::put_string(sink, id::REASON_STRING, self.reason_string.as_ref())?;
        property::put_user_properties(sink, &self.user_properties)
    }
}

/// Reads a reason code byte and checks it is allowed in `packet_type` from
/// the sender.
pub(crate) fn read_reason(
    reader: &mut Reader,
    packet_type: PacketType,
    context: &DecodeContext<'_>,
) -> Result<ReasonCode, DecodeError> {
    let code = ReasonCode(reader.u8("reason code")?);
    if !reason::is_allowed(packet_type, context.sender, code) {
        return Err(DecodeError::InvalidReasonCode {
            packet_type,
            code: code.0,
        });
    }
    Ok(code)
}

pub(crate) fn decode(
    packet_type: PacketType,
    reader: &mut Reader,
    context: &DecodeContext<'_>,
) -> Result<Ack, DecodeError> {
    let packet_id = read_packet_id(reader, packet_type)?;
    let mut ack = Ack::success(packet_id);
    if context.is_v5() && !reader.is_empty() {
        ack.reason = read_reason(reader, packet_type, context)?;
        if !reader.is_empty() {
            ack.properties = AckProperties::read(reader, packet_type, context)?;
        }
    }
    Ok(ack)
}

impl Ack {
    pub(crate) fn write<S: Sink>(
        &self,
        packet_type: PacketType,
        context: &EncodeContext,
        sink: &mut S,
    ) -> Result<(), EncodeError> {
        context.check_reason(packet_type, self.reason)?;
        wire::put_u16(sink, self.packet_id.get());
        if !context.is_v5() {
            // 3.1.1 acknowledgements only say "done": a success code needs no
            // bytes, a refusal cannot be said at all [MQTT-3.3.5-2 of 3.1.1].
            if self.reason.is_error() {
                return Err(context.not_in_version("an error reason code in an acknowledgement"));
            }
            if !self.properties.is_empty() {
                return Err(context.not_in_version("acknowledgement properties"));
            }
            return Ok(());
        }
        if self.reason == ReasonCode::SUCCESS && self.properties.is_empty() {
            return Ok(());
        }
        sink.put_u8(self.reason.0);
        if !self.properties.is_empty() {
            property::put_properties(sink, &self.properties)?;
        }
        Ok(())
    }
}
