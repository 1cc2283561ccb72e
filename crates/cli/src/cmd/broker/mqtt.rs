//! `--mqtt`, `--mqtt-map` and `--mqtt-deny`: the MQTT server's settings,
//! checked before anything starts (the server itself is `citystream-mqtt`,
//! served with the node's other listeners in `http.rs`).

use super::{BrokerArgs, check_address, usage};
use crate::output::UsageError;

/// The MQTT listener's address and configuration, or `None` without
/// `--mqtt`.
pub(super) fn settings(
    args: &BrokerArgs,
) -> Result<Option<(String, citystream_mqtt::MqttConfig)>, UsageError> {
    let Some(listen) = &args.mqtt else {
        return Ok(None);
    };
    check_address("--mqtt", listen)?;
    let rules = args
        .mqtt_map
        .iter()
        .map(|rule| citystream_mqtt::TopicRule::parse(rule))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| UsageError(format!("--mqtt-map: {error}")))?;
    let map = citystream_mqtt::TopicMap::new(rules, "mqtt.")
        .map_err(|error| UsageError(format!("--mqtt-map: {error}")))?;
    for filter in &args.mqtt_deny {
        if citystream_mqtt_codec::validate_topic_filter(filter).is_err() {
            return usage(format!(
                "--mqtt-deny {filter:?} is not an MQTT topic filter"
            ));
        }
    }
    let config = citystream_mqtt::MqttConfig {
        map,
        deny_filters: args.mqtt_deny.clone(),
        stream_partitions: args.default_partitions,
        ..citystream_mqtt::MqttConfig::default()
    };
    Ok(Some((listen.clone(), config)))
}
