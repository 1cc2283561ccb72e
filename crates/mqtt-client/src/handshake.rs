//! Opening a connection: TCP connect, CONNECT, CONNACK, and what the two
//! sides agreed ([`Agreed`]: keep alive, publish window, maximum QoS). It
//! hands the socket, the codec and any bytes read past the CONNACK (a
//! resumed session's messages may follow it at once) to the connection
//! task; it does not run the connection.

use std::time::Duration;

use bytes::BytesMut;
use citystream_mqtt_codec::{ConnAck, MqttCodec, Packet, QoS};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_util::codec::{Decoder as _, Encoder as _};

use crate::error::MqttClientError;
use crate::options::ConnectOptions;

/// Room made in the read buffer before a read while reads are small, so
/// an idle connection holds little memory (also the connection task's).
pub(crate) const READ_ROOM_MIN_BYTES: usize = 4 * 1024;

/// What the connection runs with, from the options and the CONNACK.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Agreed {
    /// `None`: keep alive is off.
    pub keep_alive: Option<Duration>,
    /// QoS 1/2 publishes we may have unacknowledged.
    pub publish_window: u16,
    pub maximum_qos: QoS,
}

/// An open connection whose CONNACK accepted us.
pub(crate) struct Opened {
    pub stream: TcpStream,
    pub codec: MqttCodec,
    /// Bytes received after the CONNACK, not decoded yet.
    pub leftover: BytesMut,
    pub connack: ConnAck,
    pub agreed: Agreed,
}

/// Connects to `address` and exchanges CONNECT / CONNACK within the
/// options' connect timeout.
pub(crate) async fn open(
    address: &str,
    options: &ConnectOptions,
) -> Result<Opened, MqttClientError> {
    let timeout = Duration::from_millis(options.connect_timeout_ms);
    match tokio::time::timeout(timeout, open_unbounded(address, options)).await {
        Ok(opened) => opened,
        Err(_) => Err(MqttClientError::ConnectTimeout {
            address: address.to_owned(),
            timeout_ms: options.connect_timeout_ms,
        }),
    }
}

async fn open_unbounded(
    address: &str,
    options: &ConnectOptions,
) -> Result<Opened, MqttClientError> {
    let connect_error = |source| MqttClientError::Connect {
        address: address.to_owned(),
        source,
    };
    let mut stream = TcpStream::connect(address).await.map_err(connect_error)?;
    // Small packets (acks, 100-byte publishes) must not wait for Nagle.
    stream.set_nodelay(true).map_err(connect_error)?;
    let mut codec = MqttCodec::client(options.version, options.limits);
    let mut outgoing = BytesMut::new();
    codec.encode(
        Packet::Connect(Box::new(options.connect_packet())),
        &mut outgoing,
    )?;
    stream.write_all(&outgoing).await.map_err(connect_error)?;
    let mut incoming = BytesMut::with_capacity(READ_ROOM_MIN_BYTES);
    let connack = loop {
        if let Some(packet) = codec.decode(&mut incoming)? {
            match packet {
                Packet::ConnAck(connack) => break connack,
                other => {
                    return Err(MqttClientError::UnexpectedPacket {
                        packet_type: other.packet_type(),
                    });
                }
            }
        }
        incoming.reserve(READ_ROOM_MIN_BYTES);
        if stream
            .read_buf(&mut incoming)
            .await
            .map_err(connect_error)?
            == 0
        {
            return Err(connect_error(std::io::ErrorKind::UnexpectedEof.into()));
        }
    };
    if connack.reason.is_error() {
        return Err(MqttClientError::Refused {
            reason: connack.reason,
        });
    }
    codec.set_peer_max_packet_bytes(connack.properties.maximum_packet_size);
    let agreed = agree(options, &connack);
    Ok(Opened {
        stream,
        codec,
        leftover: incoming,
        connack,
        agreed,
    })
}

/// The broker's Server Keep Alive replaces ours; its Receive Maximum caps
/// our window (absent: 65,535); its Maximum QoS absent means 2.
fn agree(options: &ConnectOptions, connack: &ConnAck) -> Agreed {
    let properties = &connack.properties;
    let keep_alive_secs = properties
        .server_keep_alive_secs
        .unwrap_or(options.keep_alive_secs);
    let broker_window = properties.receive_maximum.unwrap_or(u16::MAX);
    Agreed {
        keep_alive: (keep_alive_secs > 0).then(|| Duration::from_secs(keep_alive_secs.into())),
        publish_window: broker_window.min(options.publish_inflight_max).max(1),
        maximum_qos: properties.maximum_qos.unwrap_or(QoS::ExactlyOnce),
    }
}

#[cfg(test)]
mod tests {
    use citystream_mqtt_codec::{ConnAckProperties, ReasonCode, Version};

    use super::*;

    fn connack(properties: ConnAckProperties) -> ConnAck {
        ConnAck {
            session_present: false,
            reason: ReasonCode::SUCCESS,
            properties,
        }
    }

    /// The broker's receive maximum, keep alive and maximum QoS win over ours.
    #[test]
    fn the_broker_limits_what_was_asked() {
        let options = ConnectOptions::new(Version::V5, "device");
        let agreed = agree(
            &options,
            &connack(ConnAckProperties {
                receive_maximum: Some(20),
                server_keep_alive_secs: Some(5),
                maximum_qos: Some(QoS::AtLeastOnce),
                ..ConnAckProperties::default()
            }),
        );
        assert_eq!(agreed.publish_window, 20);
        assert_eq!(agreed.keep_alive, Some(Duration::from_secs(5)));
        assert_eq!(agreed.maximum_qos, QoS::AtLeastOnce);
    }

    /// Without broker limits (3.1.1) our own cap and keep alive apply.
    #[test]
    fn without_broker_limits_ours_apply() {
        let mut options = ConnectOptions::new(Version::V3_1_1, "device");
        options.keep_alive_secs = 0;
        let agreed = agree(&options, &connack(ConnAckProperties::default()));
        assert_eq!(agreed.publish_window, options.publish_inflight_max);
        assert_eq!(agreed.keep_alive, None);
        assert_eq!(agreed.maximum_qos, QoS::ExactlyOnce);
    }
}
