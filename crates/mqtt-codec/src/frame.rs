//! Framing: finding one packet in a byte stream, and the codec around it.
//!
//! ```text
//! byte 0: packet type (bits 7-4) | flags (bits 3-0)
//! bytes 1..=4: remaining length (Variable Byte Integer)
//! then `remaining length` bytes of body
//! ```
//!
//! The first byte is judged as soon as it arrives (type, flags, whether this
//! side may receive it), and the whole size against `Limits::max_packet_bytes`
//! as soon as the remaining length is complete, so an oversize packet fails
//! with at most 5 bytes buffered. We reserve at most 64 KiB ahead and parse a
//! body only once it is whole, so every byte is parsed once. Encoding writes
//! the shortest form, exactly [`crate::Packet::encoded_len`] bytes, and leaves
//! the buffer untouched on error. [`MqttCodec`] holds the only connection
//! state this crate keeps: its role, the version, and what the peer asked us
//! to respect. Packet bodies are `packet/`.

use std::borrow::Cow;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::byte_str::ByteStr;
use crate::error::{DecodeError, EncodeError};
use crate::packet::{self, DecodeContext, EncodeContext, Packet, PacketType};
use crate::varint::{self, MAX_VAR_INT};
use crate::wire::Counter;
use crate::{Limits, QoS, Role, Version};

/// The most buffer space reserved ahead of a partly received packet, so a
/// peer announcing a large packet cannot make us allocate it before sending.
const RESERVE_AHEAD_MAX_BYTES: usize = 64 * 1024;

/// What the peer asked for in its CONNECT (5.0), which bounds what we send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerLimits {
    /// The peer's Maximum Packet Size; `None` when it set none.
    pub max_packet_bytes: Option<u32>,
    /// The client's Request Problem Information; when false a server sends
    /// no Reason String or User Properties except on PUBLISH, CONNACK and
    /// DISCONNECT [MQTT-3.1.2-29].
    pub request_problem_information: bool,
}

impl Default for PeerLimits {
    fn default() -> PeerLimits {
        PeerLimits {
            max_packet_bytes: None,
            request_problem_information: true,
        }
    }
}

/// One complete packet split off the stream, its first byte already judged.
struct Frame {
    packet_type: PacketType,
    flags: u8,
    body: Bytes,
}

/// Judges the first byte: type, whether this side may receive it, and the
/// fixed-header flags of Table 2-2.
fn check_first_byte(
    first: u8,
    version: Option<Version>,
    role: Role,
) -> Result<(PacketType, u8), DecodeError> {
    let nibble = first >> 4;
    let flags = first & 0x0F;
    let packet_type = PacketType::from_nibble(nibble)
        .filter(|&packet_type| {
            !(packet_type == PacketType::Auth && version == Some(Version::V3_1_1))
        })
        .ok_or(DecodeError::InvalidPacketType {
            packet_type: nibble,
        })?;
    let sender = match role {
        Role::Server => Role::Client,
        Role::Client => Role::Server,
    };
    // Before CONNECT only CONNECT is acceptable [MQTT-3.1.0-1].
    if !packet_type.is_sent_by(sender) || (version.is_none() && packet_type != PacketType::Connect)
    {
        return Err(DecodeError::UnexpectedPacket { packet_type });
    }
    match packet_type.required_flags() {
        Some(required) if flags != required => {
            Err(DecodeError::InvalidFlags { packet_type, flags })
        }
        Some(_) => Ok((packet_type, flags)),
        None => check_publish_flags(flags).map(|()| (packet_type, flags)),
    }
}

/// QoS 3 is malformed [MQTT-3.3.1-4]; DUP is 0 at QoS 0 [MQTT-3.3.1-2].
fn check_publish_flags(flags: u8) -> Result<(), DecodeError> {
    let qos_bits = (flags >> 1) & 0b11;
    let Some(qos) = QoS::from_u8(qos_bits) else {
        return Err(DecodeError::InvalidQoS {
            field: "PUBLISH",
            value: qos_bits,
        });
    };
    if qos == QoS::AtMostOnce && flags & 0b1000 != 0 {
        return Err(DecodeError::InvalidFlags {
            packet_type: PacketType::Publish,
            flags,
        });
    }
    Ok(())
}

/// Splits the next complete packet off `src`, or `Ok(None)` if it has not
/// all arrived (then nothing is consumed).
fn next_frame(
    version: Option<Version>,
    role: Role,
    src: &mut BytesMut,
    limits: &Limits,
) -> Result<Option<Frame>, DecodeError> {
    let Some(&first) = src.first() else {
        return Ok(None);
    };
    let (packet_type, flags) = check_first_byte(first, version, role)?;
    let (remaining_bytes, length_bytes) = match varint::read_var_int(&src[1..]) {
        Ok(Some(read)) => read,
        Ok(None) => return Ok(None),
        Err(varint::Malformed) => {
            return Err(DecodeError::MalformedVarInt {
                field: "remaining length",
            });
        }
    };
    let header_bytes = 1 + length_bytes;
    // ≤ 5 + 268,435,455: no overflow in u32.
    let size_bytes = header_bytes as u32 + remaining_bytes;
    if size_bytes > limits.max_packet_bytes {
        return Err(DecodeError::PacketTooLarge {
            size_bytes,
            max_bytes: limits.max_packet_bytes,
        });
    }
    let size_bytes = size_bytes as usize;
    if src.len() < size_bytes {
        src.reserve((size_bytes - src.len()).min(RESERVE_AHEAD_MAX_BYTES));
        return Ok(None);
    }
    let mut frame = src.split_to(size_bytes);
    frame.advance(header_bytes);
    Ok(Some(Frame {
        packet_type,
        flags,
        body: frame.freeze(),
    }))
}

/// Decodes the next packet of a connection whose version is `version` from
/// `frame`, as seen by `role`. `Ok(None)` (consuming nothing) if the packet
/// is not complete yet; call again for the next one, e.g. for several
/// packets in one WebSocket message [MQTT-6.0.0-2]. A CONNECT decodes by its
/// own protocol level. Stateless: see [`MqttCodec`] for the connection's
/// first-packet rule.
pub fn decode_packet(
    version: Version,
    role: Role,
    frame: &mut BytesMut,
    limits: &Limits,
) -> Result<Option<Packet>, DecodeError> {
    let Some(frame) = next_frame(Some(version), role, frame, limits)? else {
        return Ok(None);
    };
    decode_frame(frame, version, role, limits).map(Some)
}

fn decode_frame(
    frame: Frame,
    version: Version,
    role: Role,
    limits: &Limits,
) -> Result<Packet, DecodeError> {
    let sender = match role {
        Role::Server => Role::Client,
        Role::Client => Role::Server,
    };
    let context = DecodeContext {
        version,
        sender,
        limits,
    };
    packet::decode_body(frame.packet_type, frame.flags, frame.body, &context)
}

/// Encodes `packet` for a connection of `version`, whichever side sends it
/// (reason codes either side may send are accepted). On error `out` is left
/// as it was.
pub fn encode_packet(
    version: Version,
    packet: &Packet,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    encode_with(packet, &EncodeContext::new(version, None), out)
}

/// Encodes `packet` as `sender` within what the peer asked for: Request
/// Problem Information = 0 drops the Reason String and User Properties of
/// acknowledgements and AUTH [MQTT-3.1.2-29]; over the peer's Maximum Packet
/// Size, the Reason String and then the User Properties of acknowledgements,
/// CONNACK, DISCONNECT and AUTH are dropped [MQTT-3.2.2-19, 3.2.2-20 and
/// the like per packet]; anything still too large, including every PUBLISH,
/// is [`EncodeError::TooLargeForPeer`] and must not be sent [MQTT-3.1.2-24,
/// 3.1.2-25].
pub fn encode_packet_within(
    version: Version,
    sender: Role,
    packet: &Packet,
    peer: &PeerLimits,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    let context = EncodeContext::new(version, Some(sender));
    let mut packet = Cow::Borrowed(packet);
    if sender == Role::Server
        && !peer.request_problem_information
        && !is_problem_information_exempt(&packet)
    {
        strip_diagnostics(&mut packet, true, true);
    }
    let Some(max_bytes) = peer.max_packet_bytes else {
        return encode_with(&packet, &context, out);
    };
    let mut size_bytes = encoded_len(&packet, &context)?;
    for (reason_string, user_properties) in [(true, false), (true, true)] {
        if size_bytes as u64 <= u64::from(max_bytes) {
            break;
        }
        if strip_diagnostics(&mut packet, reason_string, user_properties) {
            size_bytes = encoded_len(&packet, &context)?;
        }
    }
    if size_bytes as u64 > u64::from(max_bytes) {
        return Err(EncodeError::TooLargeForPeer {
            size_bytes,
            max_bytes,
        });
    }
    encode_with(&packet, &context, out)
}

/// PUBLISH, CONNACK and DISCONNECT keep their diagnostics when the client
/// asked for no problem information [MQTT-3.1.2-29].
fn is_problem_information_exempt(packet: &Packet) -> bool {
    matches!(
        packet,
        Packet::Publish(_) | Packet::ConnAck(_) | Packet::Disconnect(_)
    )
}

type Diagnostics<'a> = (&'a mut Option<ByteStr>, &'a mut Vec<(ByteStr, ByteStr)>);

/// The Reason String and User Properties of packets that may drop them.
fn diagnostics_mut(packet: &mut Packet) -> Option<Diagnostics<'_>> {
    match packet {
        Packet::PubAck(ack) | Packet::PubRec(ack) | Packet::PubRel(ack) | Packet::PubComp(ack) => {
            Some((
                &mut ack.properties.reason_string,
                &mut ack.properties.user_properties,
            ))
        }
        Packet::SubAck(suback) => Some((
            &mut suback.properties.reason_string,
            &mut suback.properties.user_properties,
        )),
        Packet::UnsubAck(unsuback) => Some((
            &mut unsuback.properties.reason_string,
            &mut unsuback.properties.user_properties,
        )),
        Packet::ConnAck(connack) => Some((
            &mut connack.properties.reason_string,
            &mut connack.properties.user_properties,
        )),
        Packet::Disconnect(disconnect) => Some((
            &mut disconnect.properties.reason_string,
            &mut disconnect.properties.user_properties,
        )),
        Packet::Auth(auth) => Some((
            &mut auth.properties.reason_string,
            &mut auth.properties.user_properties,
        )),
        _ => None,
    }
}

/// Whether the packet has a Reason String, and User Properties, to drop.
fn has_diagnostics(packet: &Packet) -> (bool, bool) {
    let (reason_string, user_properties) = match packet {
        Packet::PubAck(ack) | Packet::PubRec(ack) | Packet::PubRel(ack) | Packet::PubComp(ack) => (
            &ack.properties.reason_string,
            &ack.properties.user_properties,
        ),
        Packet::SubAck(suback) => (
            &suback.properties.reason_string,
            &suback.properties.user_properties,
        ),
        Packet::UnsubAck(unsuback) => (
            &unsuback.properties.reason_string,
            &unsuback.properties.user_properties,
        ),
        Packet::ConnAck(connack) => (
            &connack.properties.reason_string,
            &connack.properties.user_properties,
        ),
        Packet::Disconnect(disconnect) => (
            &disconnect.properties.reason_string,
            &disconnect.properties.user_properties,
        ),
        Packet::Auth(auth) => (
            &auth.properties.reason_string,
            &auth.properties.user_properties,
        ),
        _ => return (false, false),
    };
    (reason_string.is_some(), !user_properties.is_empty())
}

/// Drops the chosen diagnostics, cloning a borrowed packet only when there
/// is something to drop; true if anything was dropped.
fn strip_diagnostics(
    packet: &mut Cow<'_, Packet>,
    reason_string: bool,
    user_properties: bool,
) -> bool {
    let (has_reason_string, has_user_properties) = has_diagnostics(packet);
    if !((reason_string && has_reason_string) || (user_properties && has_user_properties)) {
        return false;
    }
    if let Some((reason, properties)) = diagnostics_mut(packet.to_mut()) {
        if reason_string {
            *reason = None;
        }
        if user_properties {
            properties.clear();
        }
    }
    true
}

pub(crate) fn encoded_len(packet: &Packet, context: &EncodeContext) -> Result<usize, EncodeError> {
    let body_bytes = body_len(packet, context)?;
    Ok(1 + varint::var_int_len(body_bytes) + body_bytes as usize)
}

fn body_len(packet: &Packet, context: &EncodeContext) -> Result<u32, EncodeError> {
    let mut counter = Counter::default();
    packet.write_body(context, &mut counter)?;
    u32::try_from(counter.bytes)
        .ok()
        .filter(|&bytes| bytes <= MAX_VAR_INT)
        .ok_or(EncodeError::RemainingLengthOverflow {
            remaining_bytes: counter.bytes,
        })
}

fn encode_with(
    packet: &Packet,
    context: &EncodeContext,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    let body_bytes = body_len(packet, context)?;
    let total_bytes = 1 + varint::var_int_len(body_bytes) + body_bytes as usize;
    out.reserve(total_bytes);
    let start = out.len();
    out.put_u8(packet.first_byte());
    varint::write_var_int(out, body_bytes);
    if let Err(error) = packet.write_body(context, out) {
        out.truncate(start);
        return Err(error);
    }
    // The counting pass and the writing pass run the same code.
    assert_eq!(
        out.len() - start,
        total_bytes,
        "encoded length differs from the counted length"
    );
    Ok(())
}

/// The tokio-util codec of one MQTT connection; see the module doc.
///
/// A server codec starts without a version: the first packet must be
/// CONNECT (else [`DecodeError::UnexpectedPacket`]), and its protocol name
/// and level fix the version (MQTT/4 → 3.1.1, MQTT/5 → 5.0), even if the rest
/// of the CONNECT then fails to decode, so the refusal can be sent in the
/// right format. On [`DecodeError::UnsupportedProtocol`] the version stays
/// unknown; answer with [`encode_packet`] or after [`MqttCodec::set_version`].
/// A second CONNECT decodes as a packet; the broker refuses it. A client
/// codec is given its version up front.
#[derive(Debug, Clone)]
pub struct MqttCodec {
    role: Role,
    version: Option<Version>,
    limits: Limits,
    peer: PeerLimits,
}

impl MqttCodec {
    pub fn server(limits: Limits) -> MqttCodec {
        MqttCodec {
            role: Role::Server,
            version: None,
            limits,
            peer: PeerLimits::default(),
        }
    }

    pub fn client(version: Version, limits: Limits) -> MqttCodec {
        MqttCodec {
            role: Role::Client,
            version: Some(version),
            limits,
            peer: PeerLimits::default(),
        }
    }

    pub fn role(&self) -> Role {
        self.role
    }

    pub fn version(&self) -> Option<Version> {
        self.version
    }

    /// Fixes the version by hand, e.g. to answer a CONNECT of an unsupported
    /// level with a CONNACK in a format the client can read.
    pub fn set_version(&mut self, version: Version) {
        self.version = Some(version);
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn peer_limits(&self) -> &PeerLimits {
        &self.peer
    }

    /// The peer's Maximum Packet Size (from its CONNECT in 5.0); see
    /// [`encode_packet_within`] for what happens to larger packets.
    pub fn set_peer_max_packet_bytes(&mut self, max: Option<u32>) {
        self.peer.max_packet_bytes = max;
    }

    /// The client's Request Problem Information (absent means true).
    pub fn set_peer_request_problem_information(&mut self, requested: bool) {
        self.peer.request_problem_information = requested;
    }
}

impl Decoder for MqttCodec {
    type Item = Packet;
    type Error = DecodeError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Packet>, DecodeError> {
        let Some(frame) = next_frame(self.version, self.role, src, &self.limits)? else {
            return Ok(None);
        };
        if self.version.is_none() {
            // next_frame let only a CONNECT through.
            self.version = packet::peek_version(&frame.body);
        }
        // Still None only for a CONNECT naming a version we do not speak;
        // its decoder reads the level itself and reports why.
        let version = self.version.unwrap_or(Version::V5);
        decode_frame(frame, version, self.role, &self.limits).map(Some)
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Packet>, DecodeError> {
        match self.decode(src)? {
            Some(packet) => Ok(Some(packet)),
            None if src.is_empty() => Ok(None),
            None => Err(DecodeError::UnexpectedEof {
                buffered_bytes: src.len(),
            }),
        }
    }
}

impl Encoder<&Packet> for MqttCodec {
    type Error = EncodeError;

    fn encode(&mut self, packet: &Packet, out: &mut BytesMut) -> Result<(), EncodeError> {
        let version = self.version.ok_or(EncodeError::InvalidState {
            reason: "the connection's version is not known yet",
        })?;
        encode_packet_within(version, self.role, packet, &self.peer, out)
    }
}

impl Encoder<Packet> for MqttCodec {
    type Error = EncodeError;

    fn encode(&mut self, packet: Packet, out: &mut BytesMut) -> Result<(), EncodeError> {
        Encoder::<&Packet>::encode(self, &packet, out)
    }
}
