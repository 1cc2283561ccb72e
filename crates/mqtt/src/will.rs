//! Will messages: published through the node's producer when a
//! connection ends without DISCONNECT 0x00, after the will delay or at the
//! end of the session, whichever comes first [MQTT-3.1.3-9], unless the
//! client connects again first. A connected session keeps its will in its
//! record ([`StoredWill`]), so that if its node dies another node publishes
//! it (`orphans`).
//!
//! A will with a delay waits in its disconnected session's record, with
//! its deadline, on the node that waits for it (the connection's, or the
//! one that adopted the session of a dead node). A new connection for the
//! client id, on any node, writes a claim of a higher generation; at the
//! deadline the waiting node writes the record again without the will and
//! reads it back: the will is published only if no claim came first in the
//! sessions topic's order (`session::SupersededWill`), so a reconnect
//! anywhere within the delay cancels it and a will is published once. A
//! clean-start connection that came first ends the session, and publishes
//! the will itself (`connection::persist`).

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use citystream_client::{ClientError, ProducerRecord};
use citystream_mqtt_codec::{ByteStr, Publish, PublishProperties, QoS, Will, WillProperties};

use crate::Node;
use crate::connection::now_ms;
use crate::message;
use crate::session::{Generation, SessionRecord, StoredWill};

/// How long a will waits after its connection ends: the lower of its Will
/// Delay and the session's expiry (the session's end publishes it).
pub(crate) fn delay_secs(will: &Will, expiry_secs: u32) -> u32 {
    will.properties
        .will_delay_interval_secs
        .unwrap_or(0)
        .min(expiry_secs)
}

/// Publishes `will` of `client_id` now, in the background.
pub(crate) fn publish_now(node: &Arc<Node>, client_id: &str, will: Will) {
    let (node, client_id) = (node.clone(), client_id.to_owned());
    node.clone().tasks.spawn(async move {
        send(&node, &client_id, will).await;
    });
}

/// Publishes `will` of `client_id`'s session of `generation` at
/// `deadline_ms` (ms since the epoch), unless a claim of a newer
/// generation comes first in the sessions topic. The session's record
/// holds the will and its deadline already. A shutdown leaves the will in
/// the record, for another node to adopt.
pub(crate) fn publish_at(
    node: &Arc<Node>,
    client_id: &str,
    will: Will,
    generation: Generation,
    deadline_ms: i64,
) {
    let (ticket, cancelled) = node.registry.delay_will(client_id, &generation);
    let (node, client_id) = (node.clone(), client_id.to_owned());
    node.clone().tasks.spawn(async move {
        let wait_ms = u64::try_from(deadline_ms.saturating_sub(now_ms())).unwrap_or(0);
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(wait_ms)) => {}
            _ = cancelled.cancelled() => return,
            _ = node.shutdown.cancelled() => return,
        }
        node.registry.will_done(&client_id, ticket);
        match fire(&node, &client_id, &generation).await {
            Ok(true) => send(&node, &client_id, will).await,
            Ok(false) => tracing::debug!(%client_id, "MQTT will cancelled: the client connected again"),
            Err(error) => {
                // Rather twice (should a new connection have come first)
                // than never.
                tracing::warn!(%client_id, %error, "cannot fence the MQTT will in the session store; publishing it");
                send(&node, &client_id, will).await;
            }
        }
    });
}

/// Takes the due will out of its session's record, then reads the record
/// back: whether the will is still to be published, that is, whether no
/// claim of a newer generation came before in the sessions topic.
async fn fire(node: &Node, client_id: &str, generation: &Generation) -> Result<bool, ClientError> {
    let mut known = node.store.load(&node.ingest, client_id).await?;
    if let Some(current) = &known
        && current.generation == *generation
        && let Some(record) = &current.record
    {
        let fired = SessionRecord {
            connected: false,
            updated_ms: record.disconnected_at(now_ms()),
            owner_node: None,
            will: None,
            will_at_ms: None,
            ..record.clone()
        };
        let store = &node.store;
        store
            .write(&node.ingest, client_id, generation, Some(&fired))
            .await?;
        known = store.load(&node.ingest, client_id).await?;
    }
    Ok(known.is_none_or(|known| known.superseded_will(generation).is_none()))
}

/// Writes `will`'s record (and retained message), logging the outcome.
pub(crate) async fn send(node: &Node, client_id: &str, will: Will) {
    let publish = as_publish(will);
    let stream_topic = node.config.map.stream_topic(&publish.topic);
    let record = message::to_record(&publish, stream_topic, client_id, now_ms());
    match write(node, record, publish.retain).await {
        Ok(()) => tracing::debug!(%client_id, "MQTT will published"),
        Err(error) => tracing::warn!(%client_id, %error, "MQTT will not published"),
    }
}

/// Writes a will's record and, if it is retained, its name's retained
/// message; returns once a quorum has both.
async fn write(node: &Node, record: ProducerRecord, retain: bool) -> Result<(), ClientError> {
    let retained = match retain {
        true => Some(node.retained.record_for(&node.ingest, &record).await?),
        false => None,
    };
    node.ingest.send(record).await?.await?;
    if let Some(retained) = retained {
        node.ingest.send(retained).await?.await?;
    }
    Ok(())
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

/// The will as a session record keeps it.
pub(crate) fn to_stored(will: &Will) -> StoredWill {
    let properties = &will.properties;
    StoredWill {
        topic: will.topic.to_string(),
        payload: BASE64.encode(&will.payload),
        qos: will.qos as u8,
        retain: will.retain,
        delay_secs: properties.will_delay_interval_secs.unwrap_or(0),
        message_expiry_secs: properties.message_expiry_interval_secs,
        content_type: properties.content_type.as_ref().map(ToString::to_string),
        response_topic: properties.response_topic.as_ref().map(ToString::to_string),
        correlation_data: properties
            .correlation_data
            .as_ref()
            .map(|data| BASE64.encode(data)),
        payload_utf8: properties.payload_format_indicator == Some(true),
        user_properties: properties
            .user_properties
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect(),
    }
}

/// The will a session record kept; `None` if it does not decode.
pub(crate) fn from_stored(stored: &StoredWill) -> Option<Will> {
    let text = |value: &Option<String>| value.clone().map(ByteStr::from);
    let correlation_data = match &stored.correlation_data {
        Some(data) => Some(Bytes::from(BASE64.decode(data).ok()?)),
        None => None,
    };
    Some(Will {
        qos: QoS::from_u8(stored.qos)?,
        retain: stored.retain,
        topic: ByteStr::from(stored.topic.clone()),
        payload: Bytes::from(BASE64.decode(&stored.payload).ok()?),
        properties: WillProperties {
            will_delay_interval_secs: Some(stored.delay_secs).filter(|delay| *delay > 0),
            payload_format_indicator: stored.payload_utf8.then_some(true),
            message_expiry_interval_secs: stored.message_expiry_secs,
            content_type: text(&stored.content_type),
            response_topic: text(&stored.response_topic),
            correlation_data,
            user_properties: stored
                .user_properties
                .iter()
                .map(|(name, value)| (ByteStr::from(name.clone()), ByteStr::from(value.clone())))
                .collect(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A will with every property survives the trip through a session record.
    #[test]
    fn a_will_round_trips_through_a_session_record() {
        let will = Will {
            qos: QoS::ExactlyOnce,
            retain: false,
            topic: ByteStr::from("status/7"),
            payload: Bytes::from_static(b"\x00offline"),
            properties: WillProperties {
                will_delay_interval_secs: Some(5),
                payload_format_indicator: Some(true),
                message_expiry_interval_secs: Some(60),
                content_type: Some(ByteStr::from("text/plain")),
                response_topic: Some(ByteStr::from("replies/7")),
                correlation_data: Some(Bytes::from_static(b"\x01\x02")),
                user_properties: vec![
                    (ByteStr::from("b"), ByteStr::from("2")),
                    (ByteStr::from("a"), ByteStr::from("1")),
                ],
            },
        };
        let json = serde_json::to_vec(&to_stored(&will)).unwrap();
        let stored: StoredWill = serde_json::from_slice(&json).unwrap();
        assert_eq!(from_stored(&stored), Some(will));
    }
}
