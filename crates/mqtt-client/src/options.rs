//! [`ConnectOptions`]: what a client asks for when it connects, their
//! defaults, the CONNECT packet they make, and the one a reconnect makes
//! (resuming the session). It does not hold what the broker answered
//! (that is the CONNACK, read in `handshake.rs`).

use bytes::Bytes;
use citystream_mqtt_codec::{
    ByteStr, Connect, ConnectProperties, Limits, QoS, Version, Will, WillProperties,
};

use crate::reconnect::ReconnectOptions;

/// The settings of one connection.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub version: Version,
    /// May be empty with `clean_start` (the broker then assigns one).
    pub client_id: String,
    /// Clean Start (5.0) / Clean Session (3.1.1).
    pub clean_start: bool,
    /// 0 turns keep alive off; the broker may impose another (5.0).
    pub keep_alive_secs: u16,
    /// 5.0 only: how long the session outlives the connection; `None`
    /// means 0 (ends with the connection). 3.1.1 sessions without clean
    /// session never expire.
    pub session_expiry_secs: Option<u32>,
    /// QoS 1/2 messages the broker may send us unacknowledged (5.0 Receive
    /// Maximum); ignored in 3.1.1.
    pub receive_maximum: u16,
    pub will: Option<WillOptions>,
    pub username: Option<String>,
    pub password: Option<Bytes>,
    /// Our own cap on QoS 1/2 publishes in flight; the effective window is
    /// the lower of this and the broker's Receive Maximum (3.1.1 brokers
    /// announce none).
    pub publish_inflight_max: u16,
    /// Incoming messages buffered for [`crate::Messages`] before the client
    /// stops reading from the socket (and so stops acknowledging).
    pub messages_capacity: usize,
    /// How long the TCP connect and the CONNACK may take together.
    pub connect_timeout_ms: u64,
    /// Decoding limits for packets from the broker.
    pub limits: Limits,
    /// Connect again when the connection is lost, and re-send what was
    /// not acknowledged (`None`, the default: the client ends with the
    /// connection). Useful with a persistent session
    /// ([`ConnectOptions::persistent_session`]); see [`crate::MqttClient`].
    pub reconnect: Option<ReconnectOptions>,
}

/// The message the broker publishes if the connection ends abnormally.
#[derive(Debug, Clone)]
pub struct WillOptions {
    pub topic: String,
    pub payload: Bytes,
    pub qos: QoS,
    pub retain: bool,
}

impl ConnectOptions {
    /// A clean session with a 30 s keep alive and the defaults below.
    pub fn new(version: Version, client_id: impl Into<String>) -> ConnectOptions {
        ConnectOptions {
            version,
            client_id: client_id.into(),
            clean_start: true,
            keep_alive_secs: 30,
            session_expiry_secs: None,
            receive_maximum: 1_024,
            will: None,
            username: None,
            password: None,
            publish_inflight_max: 1_024,
            messages_capacity: 4_096,
            connect_timeout_ms: 10_000,
            limits: Limits::default(),
            reconnect: None,
        }
    }

    /// Whether the broker keeps the session after the connection ends:
    /// 3.1.1 without Clean Session, 5.0 with a Session Expiry above 0.
    /// Only then can a reconnect find it (CONNACK session present) and
    /// finish the QoS 1/2 exchanges of the lost connection.
    pub fn persistent_session(&self) -> bool {
        match self.version {
            Version::V3_1_1 => !self.clean_start,
            Version::V5 => self.session_expiry_secs.is_some_and(|secs| secs > 0),
        }
    }

    /// The options of a reconnect: the same, resuming the session if it
    /// is persistent (Clean Start 0 even if the first connect started
    /// clean), with the client id the broker assigned, if it did.
    pub(crate) fn for_reconnect(&self, assigned_client_id: Option<&str>) -> ConnectOptions {
        let mut options = self.clone();
        options.clean_start = !self.persistent_session();
        if let Some(client_id) = assigned_client_id {
            options.client_id = client_id.to_owned();
        }
        options
    }

    /// The CONNECT packet of these options; 5.0 properties are left out in
    /// 3.1.1, where they cannot be said.
    pub(crate) fn connect_packet(&self) -> Connect {
        let v5 = self.version == Version::V5;
        // Maximum Packet Size is not announced: our decoding limit applies
        // anyway (a larger packet closes the connection), and a broker that
        // knows it must size-check every message it sends us.
        let properties = if v5 {
            ConnectProperties {
                session_expiry_interval_secs: self.session_expiry_secs,
                receive_maximum: Some(self.receive_maximum.max(1)),
                ..ConnectProperties::default()
            }
        } else {
            ConnectProperties::default()
        };
        Connect {
            version: self.version,
            clean_start: self.clean_start,
            keep_alive_secs: self.keep_alive_secs,
            properties,
            client_id: ByteStr::from(self.client_id.clone()),
            will: self.will.as_ref().map(|will| Will {
                qos: will.qos,
                retain: will.retain,
                topic: ByteStr::from(will.topic.clone()),
                payload: will.payload.clone(),
                properties: WillProperties::default(),
            }),
            username: self.username.clone().map(ByteStr::from),
            password: self.password.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 3.1.1 CONNECTs carry no properties even when 5.0-only options are set.
    #[test]
    fn v3_connect_has_no_properties() {
        let mut options = ConnectOptions::new(Version::V3_1_1, "device");
        options.session_expiry_secs = Some(60);
        let connect = options.connect_packet();
        assert_eq!(connect.properties, ConnectProperties::default());
        assert_eq!(connect.client_id.as_str(), "device");
    }

    /// 5.0 CONNECTs announce the receive maximum and session expiry asked for.
    #[test]
    fn v5_connect_carries_flow_control() {
        let mut options = ConnectOptions::new(Version::V5, "device");
        options.session_expiry_secs = Some(60);
        options.receive_maximum = 10;
        let connect = options.connect_packet();
        assert_eq!(connect.properties.receive_maximum, Some(10));
        assert_eq!(connect.properties.session_expiry_interval_secs, Some(60));
    }

    /// A reconnect resumes a persistent session even when the first
    /// connect started clean, and starts clean again when the session
    /// ended with the connection anyway.
    #[test]
    fn a_reconnect_resumes_only_a_persistent_session() {
        let mut options = ConnectOptions::new(Version::V5, "device");
        assert!(options.for_reconnect(None).clean_start);
        options.session_expiry_secs = Some(300);
        assert!(options.clean_start && options.persistent_session());
        let again = options.for_reconnect(Some("assigned-1"));
        assert!(!again.clean_start);
        assert_eq!(again.client_id, "assigned-1");
        let mut v3 = ConnectOptions::new(Version::V3_1_1, "device");
        assert!(!v3.persistent_session());
        v3.clean_start = false;
        assert!(!v3.for_reconnect(None).clean_start);
    }
}
