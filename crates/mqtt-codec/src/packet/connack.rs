//! CONNACK (§3.2), server→client:
//!
//! ```text
//! acknowledge flags u8 (bit 0: session present) | reason code u8 | [properties]
//! ```
//!
//! In 3.1.1 the reason is a return code 0x00–0x05, mapped to and from the
//! v5 reason codes by `reason.rs`. Which code to send is the broker's.

use bytes::Bytes;

use crate::QoS;
use crate::byte_str::ByteStr;
use crate::error::{DecodeError, EncodeError};
use crate::packet::{DecodeContext, EncodeContext, PacketType};
use crate::property::{self, Place, Value, WriteProperties, id};
use crate::reason::{self, ReasonCode};
use crate::wire::{Reader, Sink};

const FLAG_SESSION_PRESENT: u8 = 0x01;

/// The server's answer to CONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnAck {
    /// Must be false when `reason` is an error [MQTT-3.2.2-6].
    pub session_present: bool,
    pub reason: ReasonCode,
    pub properties: ConnAckProperties,
}

/// CONNACK properties (§3.2.2.3); empty in 3.1.1.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnAckProperties {
    pub session_expiry_interval_secs: Option<u32>,
    pub receive_maximum: Option<u16>,
    /// Only AtMostOnce or AtLeastOnce: absent means QoS 2 is supported.
    pub maximum_qos: Option<QoS>,
    pub retain_available: Option<bool>,
    pub maximum_packet_size: Option<u32>,
    pub assigned_client_identifier: Option<ByteStr>,
    pub topic_alias_maximum: Option<u16>,
    pub reason_string: Option<ByteStr>,
    pub user_properties: Vec<(ByteStr, ByteStr)>,
    pub wildcard_subscription_available: Option<bool>,
    pub subscription_identifiers_available: Option<bool>,
    pub shared_subscription_available: Option<bool>,
    pub server_keep_alive_secs: Option<u16>,
    pub response_information: Option<ByteStr>,
    pub server_reference: Option<ByteStr>,
    pub authentication_method: Option<ByteStr>,
    pub authentication_data: Option<Bytes>,
}

pub(crate) fn decode(
    reader: &mut Reader,
    context: &DecodeContext<'_>,
) -> Result<ConnAck, DecodeError> {
    let flags = reader.u8("acknowledge flags")?;
    // Bits 7-1 are reserved [MQTT-3.2.2-1].
    if flags & !FLAG_SESSION_PRESENT != 0 {
        return Err(DecodeError::InvalidFlags {
            packet_type: PacketType::ConnAck,
            flags,
        });
    }
    let code = reader.u8("reason code")?;
    let invalid = DecodeError::InvalidReasonCode {
        packet_type: PacketType::ConnAck,
        code,
    };
    let reason = if context.is_v5() {
        let reason = ReasonCode(code);
        if !reason::is_allowed(PacketType::ConnAck, context.sender, reason) {
            return Err(invalid);
        }
        reason
    } else {
        reason::connack_code_from_v3(code).ok_or(invalid)?
    };
    let session_present = flags & FLAG_SESSION_PRESENT != 0;
    if session_present && reason.is_error() {
        return Err(DecodeError::SessionPresentWithError);
    }
    let mut properties = ConnAckProperties::default();
    if context.is_v5() {
        let place = Place::Packet(PacketType::ConnAck);
        property::read_properties(
            reader,
            place,
            context.sender,
            context.limits,
            |property_id, value| properties.apply(property_id, value),
        )?;
        if properties.authentication_data.is_some() && properties.authentication_method.is_none() {
            return Err(DecodeError::AuthDataWithoutMethod);
        }
    }
    Ok(ConnAck {
        session_present,
        reason,
        properties,
    })
}

impl ConnAckProperties {
    fn apply(&mut self, property_id: u8, value: Value) -> Result<(), DecodeError> {
        match (property_id, value) {
            (id::SESSION_EXPIRY_INTERVAL, Value::FourByte(v)) => {
                self.session_expiry_interval_secs = Some(v)
            }
            (id::ASSIGNED_CLIENT_IDENTIFIER, Value::String(v)) => {
                self.assigned_client_identifier = Some(v)
            }
            (id::SERVER_KEEP_ALIVE, Value::TwoByte(v)) => self.server_keep_alive_secs = Some(v),
            (id::AUTHENTICATION_METHOD, Value::String(v)) => self.authentication_method = Some(v),
            (id::AUTHENTICATION_DATA, Value::Binary(v)) => self.authentication_data = Some(v),
            (id::RESPONSE_INFORMATION, Value::String(v)) => self.response_information = Some(v),
            (id::SERVER_REFERENCE, Value::String(v)) => self.server_reference = Some(v),
            (id::REASON_STRING, Value::String(v)) => self.reason_string = Some(v),
            (id::RECEIVE_MAXIMUM, Value::TwoByte(v)) => self.receive_maximum = Some(v),
            (id::TOPIC_ALIAS_MAXIMUM, Value::TwoByte(v)) => self.topic_alias_maximum = Some(v),
            (id::MAXIMUM_QOS, Value::Byte(v)) => self.maximum_qos = QoS::from_u8(v),
            (id::RETAIN_AVAILABLE, Value::Byte(v)) => self.retain_available = Some(v == 1),
            (id::USER_PROPERTY, Value::Pair(name, v)) => self.user_properties.push((name, v)),
            (id::MAXIMUM_PACKET_SIZE, Value::FourByte(v)) => self.maximum_packet_size = Some(v),
            (id::WILDCARD_SUBSCRIPTION_AVAILABLE, Value::Byte(v)) => {
                self.wildcard_subscription_available = Some(v == 1)
            }
            (id::SUBSCRIPTION_IDENTIFIER_AVAILABLE, Value::Byte(v)) => {
                self.subscription_identifiers_available = Some(v == 1)
            }
            (id::SHARED_SUBSCRIPTION_AVAILABLE, Value::Byte(v)) => {
                self.shared_subscription_available = Some(v == 1)
            }
            (other, _) => {
                return Err(property::misplaced(
                    Place::Packet(PacketType::ConnAck),
                    other,
                ));
            }
        }
        Ok(())
    }

    fn check(&self) -> Result<(), EncodeError> {
        property::non_zero(self.receive_maximum, "Receive Maximum is not 0")?;
        property::non_zero(self.maximum_packet_size, "Maximum Packet Size is not 0")?;
        if self.maximum_qos == Some(QoS::ExactlyOnce) {
            return Err(EncodeError::InvalidState {
                reason: "Maximum QoS is 0 or 1; omit it to allow 2",
            });
        }
        if self.authentication_data.is_some() && self.authentication_method.is_none() {
            return Err(EncodeError::InvalidState {
                reason: "authentication data needs a method",
            });
        }
        Ok(())
    }
}

impl WriteProperties for ConnAckProperties {
    fn write_properties<S: Sink>(&self, sink: &mut S) -> Result<(), EncodeError> {
        self.check()?;
        property::put_four_byte(
            sink,
            id::SESSION_EXPIRY_INTERVAL,
            self.session_expiry_interval_secs,
        );
        property::put_string(
            sink,
            id::ASSIGNED_CLIENT_IDENTIFIER,
            self.assigned_client_identifier.as_ref(),
        )?;
        property::put_two_byte(sink, id::SERVER_KEEP_ALIVE, self.server_keep_alive_secs);
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
        property::put_string(
            sink,
            id::RESPONSE_INFORMATION,
            self.response_information.as_ref(),
        )?;
        property::put_string(sink, id::SERVER_REFERENCE, self.server_reference.as_ref())?;
        property::put_string(sink, id::REASON_STRING, self.reason_string.as_ref())?;
        property::put_two_byte(sink, id::RECEIVE_MAXIMUM, self.receive_maximum);
        property::put_two_byte(sink, id::TOPIC_ALIAS_MAXIMUM, self.topic_alias_maximum);
        property::put_byte(sink, id::MAXIMUM_QOS, self.maximum_qos.map(|qos| qos as u8));
        property::put_bool(sink, id::RETAIN_AVAILABLE, self.retain_available);
        property::put_user_properties(sink, &self.user_properties)?;
        property::put_four_byte(sink, id::MAXIMUM_PACKET_SIZE, self.maximum_packet_size);
        property::put_bool(
            sink,
            id::WILDCARD_SUBSCRIPTION_AVAILABLE,
            self.wildcard_subscription_available,
        );
        property::put_bool(
            sink,
            id::SUBSCRIPTION_IDENTIFIER_AVAILABLE,
            self.subscription_identifiers_available,
        );
        property::put_bool(
            sink,
            id::SHARED_SUBSCRIPTION_AVAILABLE,
            self.shared_subscription_available,
        );
        Ok(())
    }
}

impl ConnAck {
    pub(crate) fn write<S: Sink>(
        &self,
        context: &EncodeContext,
        sink: &mut S,
    ) -> Result<(), EncodeError> {
        if self.session_present && self.reason.is_error() {
            return Err(EncodeError::InvalidState {
                reason: "session present with an error reason [MQTT-3.2.2-6]",
            });
        }
        sink.put_u8(if self.session_present {
            FLAG_SESSION_PRESENT
        } else {
            0
        });
        if context.is_v5() {
            context.check_reason(PacketType::ConnAck, self.reason)?;
            sink.put_u8(self.reason.0);
            return property::put_properties(sink, &self.properties);
        }
        if self.properties != ConnAckProperties::default() {
            return Err(context.not_in_version("CONNACK properties"));
        }
        let code = reason::connack_code_v3(self.reason)
            .ok_or(context.not_in_version("this CONNACK reason code"))?;
        sink.put_u8(code);
        Ok(())
    }
}
