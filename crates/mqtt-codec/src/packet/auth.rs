//! AUTH (§3.15), 5.0 only, both directions: a step of enhanced
//! authentication.
//!
//! ```text
//! [reason u8 | [properties]]
//! ```
//!
//! Remaining length 0 means Success (§3.15.2.1). The reason is 0x00, 0x18 or
//! 0x19. The authentication exchange itself is the broker's.

use bytes::Bytes;

use crate::byte_str::ByteStr;
use crate::error::{DecodeError, EncodeError};
use crate::packet::ack::read_reason;
use crate::packet::{DecodeContext, EncodeContext, PacketType};
use crate::property::{self, Place, Value, WriteProperties, id};
use crate::reason::ReasonCode;
use crate::wire::{Reader, Sink};

/// An authentication exchange step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    pub reason: ReasonCode,
    pub properties: AuthProperties,
}

/// AUTH properties (§3.15.2.2).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuthProperties {
    pub authentication_method: Option<ByteStr>,
    pub authentication_data: Option<Bytes>,
    pub reason_string: Option<ByteStr>,
    pub user_properties: Vec<(ByteStr, ByteStr)>,
}

impl AuthProperties {
    pub fn is_empty(&self) -> bool {
        *self == AuthProperties::default()
    }

    fn apply(&mut self, property_id: u8, value: Value) -> Result<(), DecodeError> {
        match (property_id, value) {
            (id::AUTHENTICATION_METHOD, Value::String(v)) => self.authentication_method = Some(v),
            (id::AUTHENTICATION_DATA, Value::Binary(v)) => self.authentication_data = Some(v),
            (id::REASON_STRING, Value::String(v)) => self.reason_string = Some(v),
            (id::USER_PROPERTY, Value::Pair(name, v)) => self.user_properties.push((name, v)),
            (other, _) => return Err(property::misplaced(Place::Packet(PacketType::Auth), other)),
        }
        Ok(())
    }
}

impl WriteProperties for AuthProperties {
    fn write_properties<S: Sink>(&self, sink: &mut S) -> Result<(), EncodeError> {
        if self.authentication_data.is_some() && self.authentication_method.is_none() {
            return Err(EncodeError::InvalidState {
                reason: "authentication data needs a method",
            });
        }
        property::put_string(
            sink,
            id::AUTHENTICATION_METHOD,
            self.authentication_method.as_ref(),
        )?;
        property::put_binary(
            sink,
            id::AUTHENTICATION_DATA,
            self.authentication_data.as_ref(),
        )?;
        property::put_string(sink, id::REASON_STRING, self.reason_string.as_ref())?;
        property::put_user_properties(sink, &self.user_properties)
    }
}

pub(crate) fn decode(
    reader: &mut Reader,
    context: &DecodeContext<'_>,
) -> Result<Auth, DecodeError> {
    let mut auth = Auth {
        reason: ReasonCode::SUCCESS,
        properties: AuthProperties::default(),
    };
    if reader.is_empty() {
        return Ok(auth);
    }
    auth.reason = read_reason(reader, PacketType::Auth, context)?;
    if !reader.is_empty() {
        let properties = &mut auth.properties;
        property::read_properties(
            reader,
            Place::Packet(PacketType::Auth),
            context.sender,
            context.limits,
            |property_id, value| properties.apply(property_id, value),
        )?;
        if properties.authentication_data.is_some() && properties.authentication_method.is_none() {
            return Err(DecodeError::AuthDataWithoutMethod);
        }
    }
    Ok(auth)
}

impl Auth {
    pub(crate) fn write<S: Sink>(
        &self,
        context: &EncodeContext,
        sink: &mut S,
    ) -> Result<(), EncodeError> {
        if !context.is_v5() {
            return Err(context.not_in_version("AUTH"));
        }
        context.check_reason(PacketType::Auth, self.reason)?;
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
