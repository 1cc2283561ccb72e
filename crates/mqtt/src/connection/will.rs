//! Will messages: published through the node's producer when a
//! connection ends without DISCONNECT 0x00, after the will delay or at the
//! end of the session, whichever comes first [MQTT-3.1.3-9], unless the
//! client connects again first. The delay runs on the node that held the
//! connection (a will whose node dies during the delay is not published:
//! docs/mqtt.md).

use std::sync::Arc;
use std::time::Duration;

use citystream_mqtt_codec::{Publish, PublishProperties, Will};

use super::now_ms;
use crate::Node;
use crate::message;

/// Publishes `will` of `client_id`, whose session outlives the connection
/// by `expiry_secs`.
pub(super) fn publish(node: &Arc<Node>, client_id: &str, will: Will, expiry_secs: u32) {
    let delay_secs = will
        .properties
        .will_delay_interval_secs
        .unwrap_or(0)
        .min(expiry_secs);
    let (ticket, cancelled) = node.registry.delay_will(client_id);
    let (node, client_id) = (node.clone(), client_id.to_owned());
    node.clone().tasks.spawn(async move {
        if delay_secs > 0 {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(u64::from(delay_secs))) => {}
                _ = cancelled.cancelled() => return,
                _ = node.shutdown.cancelled() => return,
            }
        }
        node.registry.will_done(&client_id, ticket);
        let publish = as_publish(will);
        let stream_topic = node.config.map.stream_topic(&publish.topic);
        let record = message::to_record(&publish, &stream_topic, &client_id, now_ms());
        let written = match node.ingest.send(record).await {
            Ok(delivery) => delivery.await.map(|_| ()),
            Err(error) => Err(error),
        };
        match written {
            Ok(()) => tracing::debug!(%client_id, "MQTT will published"),
            Err(error) => tracing::warn!(%client_id, %error, "MQTT will not published"),
        }
    });
}

fn as_publish(will: Will) -> Publish {
    let properties = will.properties;
    Publish {
        dup: false,
        qos: will.qos,
        retain: will.retain,
        topic: will.topic,
        packet_id: None,
        properties: PublishProperties {
            payload_format_indicator: properties.payload_format_indicator,
            message_expiry_interval_secs: properties.message_expiry_interval_secs,
            content_type: properties.content_type,
            response_topic: properties.response_topic,
            correlation_data: properties.correlation_data,
            user_properties: properties.user_properties,
            ..PublishProperties::default()
        },
        payload: will.payload,
    }
}
