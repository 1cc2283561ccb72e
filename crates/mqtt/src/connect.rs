//! The CONNECT/CONNACK exchange: what a client asked for, checked against
//! our limits, and the CONNACK that answers it. Pure.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use citystream_mqtt_codec::{
    ByteStr, ConnAck, ConnAckProperties, Connect, ReasonCode, Version, Will,
};

use crate::MqttConfig;

/// Longest client id accepted, in bytes (the spec asks servers for at
/// least 23; ours key session records).
const CLIENT_ID_BYTES_MAX: usize = 200;

/// A connection the broker accepted.
#[derive(Debug)]
pub struct Accepted {
    pub version: Version,
    pub client_id: String,
    /// The client sent no id and got this one (announced in v5).
    pub assigned_id: bool,
    /// The keep alive in force (`None`: none).
    pub keep_alive: Option<Duration>,
    /// The keep alive differs from the client's: announce it (v5).
    pub keep_alive_changed: bool,
    pub will: Option<Will>,
    /// QoS 1/2 messages the client accepts in flight.
    pub client_receive_maximum: u16,
    /// The largest packet the client accepts.
    pub client_max_packet_bytes: Option<u32>,
    /// Topic aliases the client accepts from us (5.0; 0: none).
    pub client_topic_alias_maximum: u16,
    /// Start a new session, discarding any stored one.
    pub clean_start: bool,
    pub session_expiry_secs: u32,
    /// The client asked for reason strings and user properties on errors.
    pub problem_information: bool,
}

/// Checks a CONNECT; the refusal's reason code if it cannot be accepted.
pub fn accept(connect: &Connect, config: &MqttConfig) -> Result<Accepted, ReasonCode> {
    let properties = &connect.properties;
    if properties.authentication_method.is_some() {
        // Enhanced authentication is not offered.
        return Err(ReasonCode::BAD_AUTHENTICATION_METHOD);
    }
    let (client_id, assigned_id) = match connect.client_id.as_str() {
        "" => (assign_client_id(), true),
        id if id.len() > CLIENT_ID_BYTES_MAX => {
            return Err(ReasonCode::CLIENT_IDENTIFIER_NOT_VALID);
        }
        id => (id.to_owned(), false),
    };
    let asked = connect.keep_alive_secs;
    let max = config.keep_alive_max_secs;
    let granted = match connect.version {
        // A 3.1.1 client cannot be told another keep alive.
        Version::V3_1_1 => asked,
        Version::V5 if max > 0 && (asked == 0 || asked > max) => max,
        Version::V5 => asked,
    };
    Ok(Accepted {
        version: connect.version,
        client_id,
        assigned_id,
        keep_alive: (granted > 0).then(|| Duration::from_secs(u64::from(granted))),
        keep_alive_changed: granted != asked,
        will: connect.will.clone(),
        client_receive_maximum: properties.receive_maximum.unwrap_or(u16::MAX),
        client_max_packet_bytes: properties.maximum_packet_size,
        client_topic_alias_maximum: properties.topic_alias_maximum.unwrap_or(0),
        clean_start: connect.clean_start,
        session_expiry_secs: match connect.version {
            // 3.1.1: a session that is not clean lasts until it is cleaned.
            Version::V3_1_1 if !connect.clean_start => u32::MAX,
            Version::V3_1_1 => 0,
            Version::V5 => properties.session_expiry_interval_secs.unwrap_or(0),
        },
        problem_information: properties.request_problem_information != Some(false),
    })
}

/// The CONNACK of an accepted connection (`session_present`: a stored
/// session continues). The capabilities not built yet are announced as
/// missing, so v5 clients do not rely on them.
pub fn connack(accepted: &Accepted, config: &MqttConfig, session_present: bool) -> ConnAck {
    let properties = match accepted.version {
        Version::V3_1_1 => ConnAckProperties::default(),
        Version::V5 => connack_properties(accepted, config),
    };
    ConnAck {
        session_present,
        reason: ReasonCode::SUCCESS,
        properties,
    }
}

fn connack_properties(accepted: &Accepted, config: &MqttConfig) -> ConnAckProperties {
    let mut properties = ConnAckProperties {
        receive_maximum: Some(config.receive_maximum),
        maximum_packet_size: Some(config.limits.max_packet_bytes),
        topic_alias_maximum: Some(config.topic_alias_maximum),
        ..ConnAckProperties::default()
    };
    if accepted.assigned_id {
        properties.assigned_client_identifier = Some(ByteStr::from(accepted.client_id.clone()));
    }
    if accepted.keep_alive_changed {
        let secs = accepted
            .keep_alive
            .map_or(0, |keep_alive| keep_alive.as_secs());
        properties.server_keep_alive_secs = Some(u16::try_from(secs).unwrap_or(u16::MAX));
    }
    properties
}

/// The CONNACK that refuses a connection.
pub fn refusal(reason: ReasonCode) -> ConnAck {
    ConnAck {
        session_present: false,
        reason,
        properties: ConnAckProperties::default(),
    }
}

/// A client id no client chose: unique in this process and unlikely to
/// meet one of another node (the start time in ms, then a counter).
fn assign_client_id() -> String {
    static STARTED_MS: std::sync::OnceLock<u128> = std::sync::OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let started = STARTED_MS.get_or_init(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_millis())
    });
    format!(
        "citystream-{started:x}-{}",
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use citystream_mqtt_codec::ConnectProperties;

    fn connect(version: Version, client_id: &'static str, keep_alive_secs: u16) -> Connect {
        Connect {
            version,
            clean_start: true,
            keep_alive_secs,
            properties: ConnectProperties::default(),
            client_id: ByteStr::from(client_id),
            will: None,
            username: None,
            password: None,
        }
    }

    /// An empty client id gets one assigned, announced in v5 only.
    #[test]
    fn an_empty_id_is_assigned_one() {
        let config = MqttConfig::default();
        let v5 = accept(&connect(Version::V5, "", 30), &config).unwrap();
        assert!(v5.assigned_id && v5.client_id.starts_with("citystream-"));
        let ack = connack(&v5, &config, false);
        assert_eq!(
            ack.properties.assigned_client_identifier.as_deref(),
            Some(v5.client_id.as_str())
        );
        let v3 = accept(&connect(Version::V3_1_1, "", 30), &config).unwrap();
        assert_ne!(v3.client_id, v5.client_id);
        assert!(
            connack(&v3, &config, false)
                .properties
                .assigned_client_identifier
                .is_none()
        );
    }

    /// A v5 keep alive of 0 or above the maximum becomes the maximum and is
    /// announced; a 3.1.1 client keeps its own.
    #[test]
    fn keep_alive_is_capped_in_v5() {
        let config = MqttConfig::default();
        for asked in [0, 61, u16::MAX] {
            let accepted = accept(&connect(Version::V5, "c", asked), &config).unwrap();
            assert_eq!(accepted.keep_alive, Some(Duration::from_secs(60)));
            assert_eq!(
                connack(&accepted, &config, false)
                    .properties
                    .server_keep_alive_secs,
                Some(60)
            );
        }
        let accepted = accept(&connect(Version::V5, "c", 30), &config).unwrap();
        assert_eq!(
            connack(&accepted, &config, false)
                .properties
                .server_keep_alive_secs,
            None
        );
        let accepted = accept(&connect(Version::V3_1_1, "c", 0), &config).unwrap();
        assert_eq!(accepted.keep_alive, None);
    }

    /// Enhanced authentication and over-long ids are refused with their
    /// reason codes.
    #[test]
    fn refusals_name_their_reason() {
        let config = MqttConfig::default();
        let mut asked = connect(Version::V5, "c", 30);
        asked.properties.authentication_method = Some(ByteStr::from("SCRAM-SHA-1"));
        assert_eq!(
            accept(&asked, &config).unwrap_err(),
            ReasonCode::BAD_AUTHENTICATION_METHOD
        );
        let long = ByteStr::from("x".repeat(CLIENT_ID_BYTES_MAX + 1));
        let mut asked = connect(Version::V5, "c", 30);
        asked.client_id = long;
        assert_eq!(
            accept(&asked, &config).unwrap_err(),
            ReasonCode::CLIENT_IDENTIFIER_NOT_VALID
        );
    }
}
