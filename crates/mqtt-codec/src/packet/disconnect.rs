//! DISCONNECT (§3.14), both directions in 5.0, client→server only in 3.1.1:
//!
//! ```text
//! 3.1.1: (empty)
//! 5.0:   [reason u8 | [properties]]
//! ```
//!
//! Remaining length 0 means Normal disconnection and 1 means a reason without
//! properties (§3.14.2.1); we accept both and write the shortest form. Which
//! reason codes and properties a side may send is checked here; what a
//! DISCONNECT does to the session is the broker's.

use crate::Role;
use crate::byte_str::ByteStr;
use crate::error::{DecodeError, EncodeError};
use crate::packet::ack::read_reason;
use crate::packet::{DecodeContext, EncodeContext, PacketType};
use crate::property::{self, Place, Value, WriteProperties, id};
use crate::reason::ReasonCode;
use crate::wire::{Reader, Sink};

/// The end of a connection, with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disconnect {
    pub reason: ReasonCode,
    pub properties: DisconnectProperties,
}

impl Disconnect {
    /// A Normal disconnection (0x00) without properties: `E0 00`.
    pub fn normal() -> Disconnect {
        Disconnect::with_reason(ReasonCode::NORMAL_DISCONNECTION)
    }

    pub fn with_reason(reason: ReasonCode) -> Disconnect {
        Disconnect {
            reason,
            properties: DisconnectProperties::default(),
        }
    }
}

/// DISCONNECT properties (§3.14.2.2); empty in 3.1.1.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DisconnectProperties {
    /// Client→server only [MQTT-3.14.2-2].
    pub session_expiry_interval_secs: Option<u32>,
    pub reason_string: Option<ByteStr>,
    pub user_properties: Vec<(ByteStr, ByteStr)>,
    /// Server→client only.
    pub server_reference: Option<ByteStr>,
}

impl DisconnectProperties {
    pub fn is_empty(&self) -> bool {
        *self == DisconnectProperties::default()
    }

    fn apply(&mut self, property_id: u8, value: Value) -> Result<(), DecodeError> {
        match (property_id, value) {
            (id::SESSION_EXPIRY_INTERVAL, Value::FourByte(v)) => {
                self.session_expiry_interval_secs = Some(v)
            }
            (id::SERVER_REFERENCE, Value::String(v)) => self.server_reference = Some(v),
            (id::REASON_STRING, Value::String(v)) => self.reason_string = Some(v),
            (id::USER_PROPERTY, Value::Pair(name, v)) => self.user_properties.push((name, v)),
            (other, _) => {
                return Err(property::misplaced(
                    Place::Packet(PacketType::Disconnect),
                    other,
                ));
            }
        }
        Ok(())
    }
}

impl WriteProperties for DisconnectProperties {
    fn write_properties<S: Sink>(&self, sink: &mut S) -> Result<(), EncodeError> {
        property::put_four_byte(
            sink,
            id::SESSION_EXPIRY_INTERVAL,
            self.session_expiry_interval_secs,
        );
        property::put_string(sink, id::SERVER_REFERENCE, self.server_reference.as_ref())?;
        property::put_string(sink, id::REASON_STRING, self.reason_string.as_ref())?;
        property::put_user_properties(sink, &self.user_properties)
    }
}

pub(crate) fn decode(
    reader: &mut Reader,
    context: &DecodeContext<'_>,
) -> Result<Disconnect, DecodeError> {
    let mut disconnect = Disconnect::normal();
    // 3.1.1: nothing to read, so any byte is trailing (Reader::finish).
    if context.is_v5() && !reader.is_empty() {
        disconnect.reason = read_reason(reader, PacketType::Disconnect, context)?;
        if !reader.is_empty() {
            let place = Place::Packet(PacketType::Disconnect);
            let properties = &mut disconnect.properties;
            property::read_properties(
                reader,
                place,
                context.sender,
                context.limits,
                |property_id, value| properties.apply(property_id, value),
            )?;
        }
    }
    Ok(disconnect)
}

impl Disconnect {
    fn check_sides(&self, context: &EncodeContext) -> Result<(), EncodeError> {
        let from_server = context.sender == Some(Role::Server);
        let from_client = context.sender == Some(Role::Client);
        if from_server && self.properties.session_expiry_interval_secs.is_some() {
            return Err(EncodeError::InvalidState {
                reason: "a server DISCONNECT has no session expiry [MQTT-3.14.2-2]",
            });
        }
        if from_client && self.properties.server_reference.is_some() {
            return Err(EncodeError::InvalidState {
                reason: "a client DISCONNECT has no server reference",
            });
        }
        Ok(())
    }

    pub(crate) fn write<S: Sink>(
        &self,
        context: &EncodeContext,
        sink: &mut S,
    ) -> Result<(), EncodeError> {
        if !context.is_v5() {
            // A 3.1.1 server cannot send DISCONNECT at all; it closes the socket.
            if context.sender == Some(Role::Server) {
                return Err(context.not_in_version("a server DISCONNECT"));
            }
            if self.reason != ReasonCode::NORMAL_DISCONNECTION || !self.properties.is_empty() {
                return Err(context.not_in_version("a DISCONNECT reason or properties"));
            }
            return Ok(());
        }
        context.check_reason(PacketType::Disconnect, self.reason)?;
        self.check_sides(context)?;
        if self.reason == ReasonCode::NORMAL_DISCONNECTION && self.properties.is_empty() {
            return Ok(());
        }
        sink.put_u8(self.reason.0);
        if !self.properties.is_empty() {
            property::put_properties(sink, &self.properties)?;
        }
        Ok(())
    }
}
