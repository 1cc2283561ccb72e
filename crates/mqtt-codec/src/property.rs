//! MQTT 5 properties (§2.2.2): the table of the 27 property ids with their
//! wire type and the packets (and sides) that may carry them, one reader that
//! checks a property list against that table (unknown or misplaced ids,
//! repeats, value ranges, the user-property cap) and hands each value to the
//! packet's properties struct, and the writers those structs encode with.
//! Which struct field a property fills is the packet's business
//! (`packet/*.rs`); 3.1.1 has no properties and never calls this.

use bytes::Bytes;

use crate::byte_str::ByteStr;
use crate::error::{DecodeError, EncodeError};
use crate::packet::PacketType;
use crate::varint::{self, MAX_VAR_INT};
use crate::wire::{self, Counter, Reader, Sink};
use crate::{Limits, Role};

/// Property identifiers (Table 2-4).
pub(crate) mod id {
    pub(crate) const PAYLOAD_FORMAT_INDICATOR: u8 = 0x01;
    pub(crate) const MESSAGE_EXPIRY_INTERVAL: u8 = 0x02;
    pub(crate) const CONTENT_TYPE: u8 = 0x03;
    pub(crate) const RESPONSE_TOPIC: u8 = 0x08;
    pub(crate) const CORRELATION_DATA: u8 = 0x09;
    pub(crate) const SUBSCRIPTION_IDENTIFIER: u8 = 0x0B;
    pub(crate) const SESSION_EXPIRY_INTERVAL: u8 = 0x11;
    pub(crate) const ASSIGNED_CLIENT_IDENTIFIER: u8 = 0x12;
    pub(crate) const SERVER_KEEP_ALIVE: u8 = 0x13;
    pub(crate) const AUTHENTICATION_METHOD: u8 = 0x15;
    pub(crate) const AUTHENTICATION_DATA: u8 = 0x16;
    pub(crate) const REQUEST_PROBLEM_INFORMATION: u8 = 0x17;
    pub(crate) const WILL_DELAY_INTERVAL: u8 = 0x18;
    pub(crate) const REQUEST_RESPONSE_INFORMATION: u8 = 0x19;
    pub(crate) const RESPONSE_INFORMATION: u8 = 0x1A;
    pub(crate) const SERVER_REFERENCE: u8 = 0x1C;
    pub(crate) const REASON_STRING: u8 = 0x1F;
    pub(crate) const RECEIVE_MAXIMUM: u8 = 0x21;
    pub(crate) const TOPIC_ALIAS_MAXIMUM: u8 = 0x22;
    pub(crate) const TOPIC_ALIAS: u8 = 0x23;
    pub(crate) const MAXIMUM_QOS: u8 = 0x24;
    pub(crate) const RETAIN_AVAILABLE: u8 = 0x25;
    pub(crate) const USER_PROPERTY: u8 = 0x26;
    pub(crate) const MAXIMUM_PACKET_SIZE: u8 = 0x27;
    pub(crate) const WILDCARD_SUBSCRIPTION_AVAILABLE: u8 = 0x28;
    pub(crate) const SUBSCRIPTION_IDENTIFIER_AVAILABLE: u8 = 0x29;
    pub(crate) const SHARED_SUBSCRIPTION_AVAILABLE: u8 = 0x2A;
}

/// How a property's value is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Byte,
    TwoByte,
    FourByte,
    VarInt,
    String,
    Binary,
    Pair,
}

/// What a value may be, beyond its wire type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Range {
    Any,
    /// 0 or 1: the flags, Payload Format Indicator and Maximum QoS.
    ZeroOrOne,
    /// Receive Maximum, Maximum Packet Size, Topic Alias, Subscription Identifier.
    NonZero,
}

/// Where a property list sits. The Will Properties of a CONNECT are their
/// own place (§3.1.3.2): Will properties are refused in the CONNECT's list
/// and CONNECT properties in the Will's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    Packet(PacketType),
    Will,
}

impl Place {
    fn name(self) -> &'static str {
        match self {
            Place::Packet(packet_type) => packet_type.name(),
            Place::Will => "Will Properties",
        }
    }
}

struct Definition {
    id: u8,
    name: &'static str,
    kind: Kind,
    range: Range,
    /// The places that may carry it (before the per-side exceptions of
    /// [`is_allowed`]).
    places: &'static [Place],
}

use PacketType as P;
use Place::{Packet as In, Will};

/// Table 2-4, in id order (which is also the order we write them in).
#[rustfmt::skip]
const TABLE: [Definition; 27] = [
    def(id::PAYLOAD_FORMAT_INDICATOR, "Payload Format Indicator", Kind::Byte, Range::ZeroOrOne, &[In(P::Publish), Will]),
    def(id::MESSAGE_EXPIRY_INTERVAL, "Message Expiry Interval", Kind::FourByte, Range::Any, &[In(P::Publish), Will]),
    def(id::CONTENT_TYPE, "Content Type", Kind::String, Range::Any, &[In(P::Publish), Will]),
    def(id::RESPONSE_TOPIC, "Response Topic", Kind::String, Range::Any, &[In(P::Publish), Will]),
    def(id::CORRELATION_DATA, "Correlation Data", Kind::Binary, Range::Any, &[In(P::Publish), Will]),
    def(id::SUBSCRIPTION_IDENTIFIER, "Subscription Identifier", Kind::VarInt, Range::NonZero, &[In(P::Publish), In(P::Subscribe)]),
    def(id::SESSION_EXPIRY_INTERVAL, "Session Expiry Interval", Kind::FourByte, Range::Any, &[In(P::Connect), In(P::ConnAck), In(P::Disconnect)]),
    def(id::ASSIGNED_CLIENT_IDENTIFIER, "Assigned Client Identifier", Kind::String, Range::Any, &[In(P::ConnAck)]),
    def(id::SERVER_KEEP_ALIVE, "Server Keep Alive", Kind::TwoByte, Range::Any, &[In(P::ConnAck)]),
    def(id::AUTHENTICATION_METHOD, "Authentication Method", Kind::String, Range::Any, &[In(P::Connect), In(P::ConnAck), In(P::Auth)]),
    def(id::AUTHENTICATION_DATA, "Authentication Data", Kind::Binary, Range::Any, &[In(P::Connect), In(P::ConnAck), In(P::Auth)]),
    def(id::REQUEST_PROBLEM_INFORMATION, "Request Problem Information", Kind::Byte, Range::ZeroOrOne, &[In(P::Connect)]),
    def(id::WILL_DELAY_INTERVAL, "Will Delay Interval", Kind::FourByte, Range::Any, &[Will]),
    def(id::REQUEST_RESPONSE_INFORMATION, "Request Response Information", Kind::Byte, Range::ZeroOrOne, &[In(P::Connect)]),
    def(id::RESPONSE_INFORMATION, "Response Information", Kind::String, Range::Any, &[In(P::ConnAck)]),
    def(id::SERVER_REFERENCE, "Server Reference", Kind::String, Range::Any, &[In(P::ConnAck), In(P::Disconnect)]),
    def(id::REASON_STRING, "Reason String", Kind::String, Range::Any, &[
        In(P::ConnAck), In(P::PubAck), In(P::PubRec), In(P::PubRel), In(P::PubComp),
        In(P::SubAck), In(P::UnsubAck), In(P::Disconnect), In(P::Auth),
    ]),
    def(id::RECEIVE_MAXIMUM, "Receive Maximum", Kind::TwoByte, Range::NonZero, &[In(P::Connect), In(P::ConnAck)]),
    def(id::TOPIC_ALIAS_MAXIMUM, "Topic Alias Maximum", Kind::TwoByte, Range::Any, &[In(P::Connect), In(P::ConnAck)]),
    def(id::TOPIC_ALIAS, "Topic Alias", Kind::TwoByte, Range::NonZero, &[In(P::Publish)]),
    def(id::MAXIMUM_QOS, "Maximum QoS", Kind::Byte, Range::ZeroOrOne, &[In(P::ConnAck)]),
    def(id::RETAIN_AVAILABLE, "Retain Available", Kind::Byte, Range::ZeroOrOne, &[In(P::ConnAck)]),
    def(id::USER_PROPERTY, "User Property", Kind::Pair, Range::Any, &[
        In(P::Connect), In(P::ConnAck), In(P::Publish), Will, In(P::PubAck), In(P::PubRec),
        In(P::PubRel), In(P::PubComp), In(P::Subscribe), In(P::SubAck), In(P::Unsubscribe),
        In(P::UnsubAck), In(P::Disconnect), In(P::Auth),
    ]),
    def(id::MAXIMUM_PACKET_SIZE, "Maximum Packet Size", Kind::FourByte, Range::NonZero, &[In(P::Connect), In(P::ConnAck)]),
    def(id::WILDCARD_SUBSCRIPTION_AVAILABLE, "Wildcard Subscription Available", Kind::Byte, Range::ZeroOrOne, &[In(P::ConnAck)]),
    def(id::SUBSCRIPTION_IDENTIFIER_AVAILABLE, "Subscription Identifier Available", Kind::Byte, Range::ZeroOrOne, &[In(P::ConnAck)]),
    def(id::SHARED_SUBSCRIPTION_AVAILABLE, "Shared Subscription Available", Kind::Byte, Range::ZeroOrOne, &[In(P::ConnAck)]),
];

const fn def(
    id: u8,
    name: &'static str,
    kind: Kind,
    range: Range,
    places: &'static [Place],
) -> Definition {
    Definition {
        id,
        name,
        kind,
        range,
        places,
    }
}

fn definition(id: u8) -> Option<&'static Definition> {
    TABLE.iter().find(|definition| definition.id == id)
}

/// Whether `definition` may appear at `place` in a packet sent by `sender`.
fn is_allowed(definition: &Definition, place: Place, sender: Role) -> bool {
    if !definition.places.contains(&place) {
        return false;
    }
    match (definition.id, place) {
        // A client's PUBLISH carries no Subscription Identifier [MQTT-3.3.4-6].
        (id::SUBSCRIPTION_IDENTIFIER, In(P::Publish)) => sender == Role::Server,
        // Only a server redirects a client (§3.14.2.2.5).
        (id::SERVER_REFERENCE, In(P::Disconnect)) => sender == Role::Server,
        // A server's DISCONNECT has no Session Expiry Interval [MQTT-3.14.2-2].
        (id::SESSION_EXPIRY_INTERVAL, In(P::Disconnect)) => sender == Role::Client,
        _ => true,
    }
}

/// Whether the property may appear more than once at `place` (§2.2.2.2):
/// User Property always; Subscription Identifier in a PUBLISH (one per
/// matching subscription, §3.3.2.3.8).
fn is_repeatable(id: u8, place: Place) -> bool {
    id == id::USER_PROPERTY || (id == id::SUBSCRIPTION_IDENTIFIER && place == In(P::Publish))
}

/// One decoded property value, typed by its [`Kind`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    Byte(u8),
    TwoByte(u16),
    FourByte(u32),
    VarInt(u32),
    String(ByteStr),
    Binary(Bytes),
    Pair(ByteStr, ByteStr),
}

impl Value {
    fn as_number(&self) -> Option<u32> {
        match *self {
            Value::Byte(value) => Some(u32::from(value)),
            Value::TwoByte(value) => Some(u32::from(value)),
            Value::FourByte(value) | Value::VarInt(value) => Some(value),
            _ => None,
        }
    }
}

/// The error for a property id that reached a struct which does not hold it:
/// the table and the struct disagree, which tests catch; never a panic.
pub(crate) fn misplaced(place: Place, id: u8) -> DecodeError {
    DecodeError::InvalidPropertyId {
        context: place.name(),
        id,
    }
}

/// Reads a property list (length, then properties) at `place`, handing each
/// checked property to `apply`.
pub(crate) fn read_properties(
    reader: &mut Reader,
    place: Place,
    sender: Role,
    limits: &Limits,
    mut apply: impl FnMut(u8, Value) -> Result<(), DecodeError>,
) -> Result<(), DecodeError> {
    let length = reader.var_int("property length")?;
    let mut list = Reader::new(reader.take(length as usize, "property list")?);
    let mut seen_ids: u64 = 0;
    let mut user_properties = 0usize;
    while !list.is_empty() {
        // Every defined id is below 0x80, so it is a one-byte Variable Byte
        // Integer; a byte with the continuation bit is an unknown id.
        let property_id = list.u8("property identifier")?;
        let definition = definition(property_id)
            .filter(|definition| is_allowed(definition, place, sender))
            .ok_or_else(|| misplaced(place, property_id))?;
        if !is_repeatable(property_id, place) {
            let bit = 1u64 << property_id;
            if seen_ids & bit != 0 {
                return Err(DecodeError::DuplicateProperty { id: property_id });
            }
            seen_ids |= bit;
        }
        if property_id == id::USER_PROPERTY {
            user_properties += 1;
            if user_properties > limits.max_user_properties {
                return Err(DecodeError::TooManyUserProperties {
                    max: limits.max_user_properties,
                });
            }
        }
        let value = read_value(&mut list, definition)?;
        check_range(definition, &value)?;
        apply(property_id, value)?;
    }
    Ok(())
}

fn read_value(list: &mut Reader, definition: &Definition) -> Result<Value, DecodeError> {
    let field = definition.name;
    Ok(match definition.kind {
        Kind::Byte => Value::Byte(list.u8(field)?),
        Kind::TwoByte => Value::TwoByte(list.u16(field)?),
        Kind::FourByte => Value::FourByte(list.u32(field)?),
        Kind::VarInt => Value::VarInt(list.var_int(field)?),
        Kind::String => Value::String(list.string(field)?),
        Kind::Binary => Value::Binary(list.binary(field)?),
        Kind::Pair => {
            let (name, value) = list.string_pair(field)?;
            Value::Pair(name, value)
        }
    })
}

/// The spec calls each of these out-of-range values a Protocol Error (the
/// "It is a Protocol Error to … have a value other than 0 or 1" sentences
/// of §3.1.2.11 and §3.2.2.3).
fn check_range(definition: &Definition, value: &Value) -> Result<(), DecodeError> {
    let Some(number) = value.as_number() else {
        return Ok(());
    };
    match definition.range {
        Range::ZeroOrOne if number > 1 => Err(DecodeError::PropertyValue {
            id: definition.id,
            value: number,
        }),
        Range::NonZero if number == 0 => Err(DecodeError::ZeroValue { id: definition.id }),
        _ => Ok(()),
    }
}

/// A properties struct that can write itself (in table order).
pub(crate) trait WriteProperties {
    fn write_properties<S: Sink>(&self, sink: &mut S) -> Result<(), EncodeError>;
}

/// Writes a property list: its length, then the properties.
pub(crate) fn put_properties<S: Sink, P: WriteProperties>(
    sink: &mut S,
    properties: &P,
) -> Result<(), EncodeError> {
    let mut counter = Counter::default();
    properties.write_properties(&mut counter)?;
    wire::put_length(sink, counter.bytes)?;
    properties.write_properties(sink)
}

pub(crate) fn put_byte<S: Sink>(sink: &mut S, property_id: u8, value: Option<u8>) {
    if let Some(value) = value {
        sink.put_u8(property_id);
        sink.put_u8(value);
    }
}

pub(crate) fn put_bool<S: Sink>(sink: &mut S, property_id: u8, value: Option<bool>) {
    put_byte(sink, property_id, value.map(u8::from));
}

pub(crate) fn put_two_byte<S: Sink>(sink: &mut S, property_id: u8, value: Option<u16>) {
    if let Some(value) = value {
        sink.put_u8(property_id);
        wire::put_u16(sink, value);
    }
}

pub(crate) fn put_four_byte<S: Sink>(sink: &mut S, property_id: u8, value: Option<u32>) {
    if let Some(value) = value {
        sink.put_u8(property_id);
        wire::put_u32(sink, value);
    }
}

/// A Subscription Identifier: 1..=268,435,455 (§3.3.2.3.8).
pub(crate) fn put_subscription_identifier<S: Sink>(
    sink: &mut S,
    value: u32,
) -> Result<(), EncodeError> {
    if value == 0 || value > MAX_VAR_INT {
        return Err(EncodeError::InvalidState {
            reason: "a subscription identifier is 1..=268435455",
        });
    }
    sink.put_u8(id::SUBSCRIPTION_IDENTIFIER);
    varint::write_var_int(sink, value);
    Ok(())
}

pub(crate) fn put_string<S: Sink>(
    sink: &mut S,
    property_id: u8,
    value: Option<&ByteStr>,
) -> Result<(), EncodeError> {
    if let Some(value) = value {
        sink.put_u8(property_id);
        wire::put_string(sink, value, name_of(property_id))?;
    }
    Ok(())
}

pub(crate) fn put_binary<S: Sink>(
    sink: &mut S,
    property_id: u8,
    value: Option<&Bytes>,
) -> Result<(), EncodeError> {
    if let Some(value) = value {
        sink.put_u8(property_id);
        wire::put_binary(sink, value, name_of(property_id))?;
    }
    Ok(())
}

/// User Properties, in their original order [MQTT-3.3.2-17, 3.3.2-18].
pub(crate) fn put_user_properties<S: Sink>(
    sink: &mut S,
    pairs: &[(ByteStr, ByteStr)],
) -> Result<(), EncodeError> {
    for (name, value) in pairs {
        sink.put_u8(id::USER_PROPERTY);
        wire::put_string(sink, name, "User Property")?;
        wire::put_string(sink, value, "User Property")?;
    }
    Ok(())
}

fn name_of(property_id: u8) -> &'static str {
    definition(property_id).map_or("property", |definition| definition.name)
}

/// Refuses a value of 0 where the spec forbids it, so we never send what
/// we would reject.
pub(crate) fn non_zero<T: Copy + PartialEq + Default>(
    value: Option<T>,
    reason: &'static str,
) -> Result<(), EncodeError> {
    if value == Some(T::default()) {
        return Err(EncodeError::InvalidState { reason });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table holds each of the 27 ids of Table 2-4 once, in id order.
    #[test]
    fn table_is_complete_and_ordered() {
        assert!(TABLE.windows(2).all(|pair| pair[0].id < pair[1].id));
        assert!(TABLE.iter().all(|definition| definition.id < 0x40));
    }

    /// Side-specific rules: Subscription Identifier and Server Reference.
    #[test]
    fn side_exceptions() {
        let sub_id = definition(id::SUBSCRIPTION_IDENTIFIER).unwrap();
        assert!(is_allowed(sub_id, In(P::Publish), Role::Server));
        assert!(!is_allowed(sub_id, In(P::Publish), Role::Client));
        let reference = definition(id::SERVER_REFERENCE).unwrap();
        assert!(!is_allowed(reference, In(P::Disconnect), Role::Client));
        assert!(is_allowed(reference, In(P::Disconnect), Role::Server));
    }
}
