//! [`MqttClientError`], what every call of the client can fail with, and
//! [`CloseReason`], why a connection ended (kept by the connection task so
//! every call made after the end can say why). Which endings are worth
//! reconnecting is `reconnect.rs`'s.

use std::io;

use citystream_mqtt_codec::{DecodeError, EncodeError, PacketType, QoS, ReasonCode};

/// Why a call of [`crate::MqttClient`] failed.
#[derive(Debug, thiserror::Error)]
pub enum MqttClientError {
    /// The TCP connection could not be opened.
    #[error("connecting to {address}: {source}")]
    Connect {
        address: String,
        #[source]
        source: io::Error,
    },
    /// No CONNACK within the connect timeout.
    #[error("no CONNACK from {address} within {timeout_ms} ms")]
    ConnectTimeout { address: String, timeout_ms: u64 },
    /// The broker answered CONNECT with an error reason (3.1.1 return codes
    /// are mapped to their 5.0 reason codes by the codec).
    #[error("the broker refused the connection: {reason}")]
    Refused { reason: ReasonCode },
    /// The broker sent something other than CONNACK first.
    #[error("expected CONNACK, the broker sent {packet_type}")]
    UnexpectedPacket { packet_type: PacketType },
    /// Bytes from the broker are not an acceptable packet.
    #[error("decoding a packet from the broker: {0}")]
    Decode(#[from] DecodeError),
    /// A packet we were asked to send cannot be encoded (e.g. a topic name
    /// with a wildcard, or larger than the broker's Maximum Packet Size).
    #[error("encoding a packet: {0}")]
    Encode(#[from] EncodeError),
    /// Publishing above the broker's Maximum QoS (CONNACK, 5.0).
    #[error("QoS {requested:?} is above the broker's maximum {maximum:?}")]
    QoSNotSupported { requested: QoS, maximum: QoS },
    /// The broker answered a QoS 1/2 publish with an error reason (5.0).
    #[error("the broker refused the publish: {reason}")]
    PublishRefused { reason: ReasonCode },
    /// Every packet identifier is in use (65,535 outstanding requests).
    #[error("all 65535 packet identifiers are in use")]
    PacketIdsExhausted,
    /// The connection ended; every outstanding and later call fails so.
    #[error("the connection is closed: {reason}")]
    Closed { reason: CloseReason },
    /// A QoS 0 message that was not written when the connection was lost,
    /// or was published while the client was reconnecting: QoS 0 is at
    /// most once, it is never re-sent.
    #[error("the QoS 0 message was not sent: the connection was lost ({reason})")]
    NotSent { reason: CloseReason },
}

/// Why the connection ended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CloseReason {
    /// [`crate::MqttClient::disconnect`] was called, or every handle dropped.
    #[error("closed by this client")]
    ByClient,
    /// The broker closed the TCP connection without a DISCONNECT.
    #[error("the broker closed the connection")]
    ByBroker,
    /// The broker sent DISCONNECT (5.0) with this reason.
    #[error("the broker sent DISCONNECT {reason}")]
    Disconnected { reason: ReasonCode },
    /// No PINGRESP (nor anything else) within a keep-alive period of a PINGREQ.
    #[error("no answer to PINGREQ within the keep alive")]
    KeepAliveTimeout,
    /// The broker broke the protocol (e.g. acknowledged an unknown packet id).
    #[error("protocol violation by the broker: {what}")]
    ProtocolViolation { what: &'static str },
    /// Bytes from the broker did not decode.
    #[error("undecodable packet from the broker: {0}")]
    Decode(DecodeError),
    /// Reading or writing the socket failed.
    #[error("i/o error ({kind:?}): {message}")]
    Io {
        kind: io::ErrorKind,
        message: String,
    },
    /// Reconnecting: a broker refused the session with a reason that
    /// another attempt would get again (e.g. bad credentials).
    #[error("reconnecting to {address}, the broker refused the connection: {reason}")]
    ReconnectRefused { address: String, reason: ReasonCode },
    /// Reconnecting failed `attempts` times in a row
    /// ([`crate::ReconnectOptions::attempts_max`]).
    #[error("gave up reconnecting after {attempts} failed attempts (last: {last_error})")]
    ReconnectGaveUp { attempts: u32, last_error: String },
}

impl From<io::Error> for CloseReason {
    fn from(error: io::Error) -> CloseReason {
        CloseReason::Io {
            kind: error.kind(),
            message: error.to_string(),
        }
    }
}
