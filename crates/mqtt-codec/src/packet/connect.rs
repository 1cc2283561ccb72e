//! CONNECT (§3.1): the first packet of a connection, the only one that
//! carries its own protocol version. Layout:
//!
//! ```text
//! protocol name "MQTT" | level u8 | flags u8 | keep alive u16 | [properties]
//! client id | [will properties | will topic | will payload] | [user name] | [password]
//! ```
//!
//! Connect flags, bit 7 to 0: user name, password, will retain, will QoS (2
//! bits), will flag, clean start, reserved (0). Enforced here: protocol
//! name/level, the flag rules, the Will topic syntax, and (3.1.1) the
//! client-id rule. Client-id content, authentication and session takeover are
//! the broker's.

use bytes::Bytes;

use crate::byte_str::ByteStr;
use crate::error::{DecodeError, EncodeError};
use crate::packet::{DecodeContext, EncodeContext, PacketType};
use crate::property::{self, Place, Value, WriteProperties, id};
use crate::topic::validate_topic_name;
use crate::wire::{self, Reader, Sink};
use crate::{QoS, Version};

const PROTOCOL_NAME: &[u8] = b"MQTT";
/// MQTT 3.1 (level 3) used this name; we do not speak it.
const PROTOCOL_NAME_V3_1: &[u8] = b"MQIsdp";

const FLAG_USER_NAME: u8 = 0x80;
const FLAG_PASSWORD: u8 = 0x40;
const FLAG_WILL_RETAIN: u8 = 0x20;
const WILL_QOS_SHIFT: u8 = 3;
const FLAG_WILL: u8 = 0x04;
const FLAG_CLEAN_START: u8 = 0x02;
const FLAG_RESERVED: u8 = 0x01;

/// A connection request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    /// Taken from the protocol level; encoding checks it matches the codec's.
    pub version: Version,
    /// Clean Start (5.0) / Clean Session (3.1.1).
    pub clean_start: bool,
    pub keep_alive_secs: u16,
    pub properties: ConnectProperties,
    pub client_id: ByteStr,
    pub will: Option<Will>,
    pub username: Option<ByteStr>,
    pub password: Option<Bytes>,
}

/// CONNECT properties (§3.1.2.11); empty in 3.1.1.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectProperties {
    pub session_expiry_interval_secs: Option<u32>,
    pub receive_maximum: Option<u16>,
    pub maximum_packet_size: Option<u32>,
    pub topic_alias_maximum: Option<u16>,
    pub request_response_information: Option<bool>,
    pub request_problem_information: Option<bool>,
    pub user_properties: Vec<(ByteStr, ByteStr)>,
    pub authentication_method: Option<ByteStr>,
    pub authentication_data: Option<Bytes>,
}

/// The Will Message published if the connection ends abnormally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Will {
    pub qos: QoS,
    pub retain: bool,
    pub topic: ByteStr,
    pub payload: Bytes,
    pub properties: WillProperties,
}

/// Will properties (§3.1.3.2); empty in 3.1.1.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WillProperties {
    pub will_delay_interval_secs: Option<u32>,
    pub payload_format_indicator: Option<bool>,
    pub message_expiry_interval_secs: Option<u32>,
    pub content_type: Option<ByteStr>,
    pub response_topic: Option<ByteStr>,
    pub correlation_data: Option<Bytes>,
    pub user_properties: Vec<(ByteStr, ByteStr)>,
}

/// The version a CONNECT body announces, if its name and level are ones we
/// speak: lets the codec fix the connection's version even when the rest of
/// the CONNECT is bad, so the refusal goes out in the right format.
pub(crate) fn peek_version(body: &[u8]) -> Option<Version> {
    let name_end = 2 + usize::from(u16::from_be_bytes([*body.first()?, *body.get(1)?]));
    let name = body.get(2..name_end)?;
    version_of(name, *body.get(name_end)?).ok()
}

/// Protocol name and level to version [MQTT-3.1.2-1, 3.1.2-2].
fn version_of(name: &[u8], level: u8) -> Result<Version, DecodeError> {
    match (name, level) {
        (PROTOCOL_NAME, 4) => Ok(Version::V3_1_1),
        (PROTOCOL_NAME, 5) => Ok(Version::V5),
        (PROTOCOL_NAME | PROTOCOL_NAME_V3_1, level) => {
            Err(DecodeError::UnsupportedProtocol { level })
        }
        _ => Err(DecodeError::UnknownProtocolName),
    }
}

pub(crate) fn decode(
    reader: &mut Reader,
    context: &DecodeContext<'_>,
) -> Result<Connect, DecodeError> {
    let name = reader.binary("protocol name")?;
    let level = reader.u8("protocol level")?;
    let version = version_of(&name, level)?;
    let flags = reader.u8("connect flags")?;
    check_flags(flags, version)?;
    let keep_alive_secs = reader.u16("keep alive")?;
    let mut properties = ConnectProperties::default();
    if version == Version::V5 {
        property::read_properties(
            reader,
            Place::Packet(PacketType::Connect),
            context.sender,
            context.limits,
            |property_id, value| properties.apply(property_id, value),
        )?;
        if properties.authentication_data.is_some() && properties.authentication_method.is_none() {
            return Err(DecodeError::AuthDataWithoutMethod);
        }
    }
    let client_id = reader.string("client identifier")?;
    let clean_start = flags & FLAG_CLEAN_START != 0;
    // [MQTT-3.1.3-8 of 3.1.1]; 5.0 lets the server assign an id instead.
    if version == Version::V3_1_1 && client_id.is_empty() && !clean_start {
        return Err(DecodeError::EmptyClientIdWithoutCleanSession);
    }
    let will = if flags & FLAG_WILL != 0 {
        Some(decode_will(reader, flags, version, context)?)
    } else {
        None
    };
    let username = if flags & FLAG_USER_NAME != 0 {
        Some(reader.string("user name")?)
    } else {
        None
    };
    let password = if flags & FLAG_PASSWORD != 0 {
        Some(reader.binary("password")?)
    } else {
        None
    };
    Ok(Connect {
        version,
        clean_start,
        keep_alive_secs,
        properties,
        client_id,
        will,
        username,
        password,
    })
}

/// The flag rules that need no other field.
fn check_flags(flags: u8, version: Version) -> Result<(), DecodeError> {
    let will_qos = (flags >> WILL_QOS_SHIFT) & 0b11;
    // The reserved bit is 0 [MQTT-3.1.2-3]. Without a Will, Will QoS and Will
    // Retain are 0 [MQTT-3.1.2-11, 3.1.2-13].
    let bad_reserved = flags & FLAG_RESERVED != 0;
    let will_bits_without_will =
        flags & FLAG_WILL == 0 && (will_qos != 0 || flags & FLAG_WILL_RETAIN != 0);
    // 3.1.1 only: a password needs a user name [MQTT-3.1.2-22 of 3.1.1].
    let v3_password_alone =
        version == Version::V3_1_1 && flags & FLAG_PASSWORD != 0 && flags & FLAG_USER_NAME == 0;
    if bad_reserved || will_bits_without_will || v3_password_alone {
        return Err(DecodeError::InvalidConnectFlags { flags });
    }
    if will_qos == 3 {
        // [MQTT-3.1.2-12]: a Will QoS of 3 is a Malformed Packet.
        return Err(DecodeError::InvalidQoS {
            field: "Will QoS",
            value: will_qos,
        });
    }
    Ok(())
}

fn decode_will(
    reader: &mut Reader,
    flags: u8,
    version: Version,
    context: &DecodeContext<'_>,
) -> Result<Will, DecodeError> {
    let mut properties = WillProperties::default();
    if version == Version::V5 {
        property::read_properties(
            reader,
            Place::Will,
            context.sender,
            context.limits,
            |property_id, value| properties.apply(property_id, value),
        )?;
    }
    crate::packet::publish::check_response_topic(properties.response_topic.as_ref())?;
    let topic = reader.string("will topic")?;
    validate_topic_name(&topic).map_err(crate::packet::publish::topic_error)?;
    let payload = reader.binary("will payload")?;
    let qos = QoS::from_u8((flags >> WILL_QOS_SHIFT) & 0b11).ok_or(DecodeError::InvalidQoS {
        field: "Will QoS",
        value: 3,
    })?;
    Ok(Will {
        qos,
        retain: flags & FLAG_WILL_RETAIN != 0,
        topic,
        payload,
        properties,
    })
}

impl ConnectProperties {
    fn apply(&mut self, property_id: u8, value: Value) -> Result<(), DecodeError> {
        match (property_id, value) {
            (id::SESSION_EXPIRY_INTERVAL, Value::FourByte(v)) => {
                self.session_expiry_interval_secs = Some(v)
            }
            (id::RECEIVE_MAXIMUM, Value::TwoByte(v)) => self.receive_maximum = Some(v),
            (id::MAXIMUM_PACKET_SIZE, Value::FourByte(v)) => self.maximum_packet_size = Some(v),
            (id::TOPIC_ALIAS_MAXIMUM, Value::TwoByte(v)) => self.topic_alias_maximum = Some(v),
            (id::REQUEST_RESPONSE_INFORMATION, Value::Byte(v)) => {
                self.request_response_information = Some(v == 1)
            }
            (id::REQUEST_PROBLEM_INFORMATION, Value::Byte(v)) => {
                self.request_problem_information = Some(v == 1)
            }
            (id::USER_PROPERTY, Value::Pair(name, v)) => self.user_properties.push((name, v)),
            (id::AUTHENTICATION_METHOD, Value::String(v)) => self.authentication_method = Some(v),
            (id::AUTHENTICATION_DATA, Value::Binary(v)) => self.authentication_data = Some(v),
            (other, _) => {
                return Err(property::misplaced(
                    Place::Packet(PacketType::Connect),
                    other,
                ));
            }
        }
        Ok(())
    }
}

impl WriteProperties for ConnectProperties {
    fn write_properties<S: Sink>(&self, sink: &mut S) -> Result<(), EncodeError> {
        property::non_zero(self.receive_maximum, "Receive Maximum is not 0")?;
        property::non_zero(self.maximum_packet_size, "Maximum Packet Size is not 0")?;
        if self.authentication_data.is_some() && self.authentication_method.is_none() {
            return Err(EncodeError::InvalidState {
                reason: "authentication data needs a method",
            });
        }
        property::put_four_byte(
            sink,
            id::SESSION_EXPIRY_INTERVAL,
            self.session_expiry_interval_secs,
        );
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
        property::put_bool(
            sink,
            id::REQUEST_PROBLEM_INFORMATION,
            self.request_problem_information,
        );
        property::put_bool(
            sink,
            id::REQUEST_RESPONSE_INFORMATION,
            self.request_response_information,
        );
        property::put_two_byte(sink, id::RECEIVE_MAXIMUM, self.receive_maximum);
        property::put_two_byte(sink, id::TOPIC_ALIAS_MAXIMUM, self.topic_alias_maximum);
        property::put_user_properties(sink, &self.user_properties)?;
        property::put_four_byte(sink, id::MAXIMUM_PACKET_SIZE, self.maximum_packet_size);
        Ok(())
    }
}

impl WillProperties {
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
            (id::WILL_DELAY_INTERVAL, Value::FourByte(v)) => {
                self.will_delay_interval_secs = Some(v)
            }
            (id::USER_PROPERTY, Value::Pair(name, v)) => self.user_properties.push((name, v)),
            (other, _) => return Err(property::misplaced(Place::Will, other)),
        }
        Ok(())
    }
}

impl WriteProperties for WillProperties {
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
        property::put_four_byte(sink, id::WILL_DELAY_INTERVAL, self.will_delay_interval_secs);
        property::put_user_properties(sink, &self.user_properties)?;
        Ok(())
    }
}

impl Connect {
    fn flags(&self) -> u8 {
        let mut flags = 0;
        if self.username.is_some() {
            flags |= FLAG_USER_NAME;
        }
        if self.password.is_some() {
            flags |= FLAG_PASSWORD;
        }
        if let Some(will) = &self.will {
            flags |= FLAG_WILL | (will.qos as u8) << WILL_QOS_SHIFT;
            if will.retain {
                flags |= FLAG_WILL_RETAIN;
            }
        }
        if self.clean_start {
            flags |= FLAG_CLEAN_START;
        }
        flags
    }

    /// The same rules the decoder enforces, so we never send what we would refuse.
    fn check(&self, context: &EncodeContext) -> Result<(), EncodeError> {
        if self.version != context.version {
            return Err(EncodeError::InvalidState {
                reason: "CONNECT version differs from the connection's",
            });
        }
        if context.is_v5() {
            return Ok(());
        }
        let will_properties = self
            .will
            .as_ref()
            .is_some_and(|will| will.properties != WillProperties::default());
        if self.properties != ConnectProperties::default() || will_properties {
            return Err(context.not_in_version("CONNECT properties"));
        }
        if self.password.is_some() && self.username.is_none() {
            return Err(context.not_in_version("a password without a user name"));
        }
        if self.client_id.is_empty() && !self.clean_start {
            return Err(EncodeError::InvalidState {
                reason: "3.1.1: an empty client id needs clean session",
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
        wire::put_binary(sink, PROTOCOL_NAME, "protocol name")?;
        sink.put_u8(self.version.protocol_level());
        sink.put_u8(self.flags());
        wire::put_u16(sink, self.keep_alive_secs);
        if context.is_v5() {
            property::put_properties(sink, &self.properties)?;
        }
        wire::put_string(sink, &self.client_id, "client identifier")?;
        if let Some(will) = &self.will {
            if context.is_v5() {
                property::put_properties(sink, &will.properties)?;
            }
            validate_topic_name(&will.topic).map_err(|_| EncodeError::InvalidState {
                reason: "the will topic is not a valid topic name",
            })?;
            wire::put_string(sink, &will.topic, "will topic")?;
            wire::put_binary(sink, &will.payload, "will payload")?;
        }
        if let Some(username) = &self.username {
            wire::put_string(sink, username, "user name")?;
        }
        if let Some(password) = &self.password {
            wire::put_binary(sink, password, "password")?;
        }
        Ok(())
    }
}
