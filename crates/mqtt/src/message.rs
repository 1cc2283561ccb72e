//! An MQTT message as a record and back (decision 0016). Pure.
//!
//! The record's key is the MQTT topic name and its value the payload. What
//! else a subscriber needs rides in headers, in this order:
//!
//! | header | holds |
//! |---|---|
//! | `$mqtt.qos` | the publish QoS, `0`/`1`/`2` (absent: a record written by another protocol, delivered at the subscription's QoS) |
//! | `$mqtt.retain` | `1` when published with RETAIN (for Retain As Published) |
//! | `$mqtt.from` | the publisher's client id (for No Local) |
//! | `$mqtt.payload-format` | `1`: the payload is UTF-8 |
//! | `$mqtt.expires-ms` | when the message expires, ms since the Unix epoch |
//! | `content-type` | the Content Type |
//! | `$mqtt.response-topic`, `$mqtt.correlation-data` | request/response properties |
//! | any other name | a User Property, in order (a name that starts with `$mqtt.` is stored as `$mqtt.user.` + name) |

use bytes::Bytes;
use citystream_client::{ConsumerRecord, ProducerRecord, RecordParts};
use citystream_mqtt_codec::{ByteStr, Publish, PublishProperties, QoS};

const QOS: &str = "$mqtt.qos";
const RETAIN: &str = "$mqtt.retain";
const FROM: &str = "$mqtt.from";
const PAYLOAD_FORMAT: &str = "$mqtt.payload-format";
const EXPIRES_MS: &str = "$mqtt.expires-ms";
const CONTENT_TYPE: &str = "content-type";
const RESPONSE_TOPIC: &str = "$mqtt.response-topic";
const CORRELATION_DATA: &str = "$mqtt.correlation-data";
const RESERVED_PREFIX: &str = "$mqtt.";
const ESCAPED_USER_PREFIX: &str = "$mqtt.user.";

/// The record that stores `publish` (its topic resolved from any alias)
/// in `stream_topic`, published by `client_id` at `now_ms`. The hot path
/// sends the same record from its parts ([`record_parts`]).
pub fn to_record(
    publish: &Publish,
    stream_topic: String,
    client_id: &str,
    now_ms: i64,
) -> ProducerRecord {
    let made = MadeHeaders::of(publish, now_ms);
    let headers = record_headers(publish, client_id, &made)
        .into_iter()
        .map(|(name, value)| (name.to_owned(), Bytes::copy_from_slice(value)))
        .collect();
    ProducerRecord {
        topic: stream_topic,
        partition: None,
        key: Some(publish.topic.clone().into_bytes()),
        value: publish.payload.clone(),
        headers,
        timestamp_ms: Some(now_ms),
        tombstone: false,
    }
}

/// The record of `publish` in `stream_topic`, as parts borrowed from it
/// and from `headers` (its [`record_headers`]), stamped `now_ms`.
pub fn record_parts<'a>(
    publish: &'a Publish,
    stream_topic: &'a str,
    headers: &'a [(&'a str, &'a [u8])],
    now_ms: i64,
) -> RecordParts<'a> {
    RecordParts {
        topic: stream_topic,
        partition: None,
        key: Some(publish.topic.as_str().as_bytes()),
        value: &publish.payload,
        headers,
        timestamp_ms: Some(now_ms),
    }
}

/// The header values a publish does not hold as they are stored: its
/// expiry as a time, and user property names that need escaping. Most
/// messages have neither, and this allocates nothing for them.
pub struct MadeHeaders {
    expires_ms: Option<String>,
    escaped_names: Vec<String>,
}

impl MadeHeaders {
    pub fn of(publish: &Publish, now_ms: i64) -> MadeHeaders {
        let properties = &publish.properties;
        MadeHeaders {
            expires_ms: properties
                .message_expiry_interval_secs
                .map(|seconds| now_ms.saturating_add(i64::from(seconds) * 1000).to_string()),
            escaped_names: properties
                .user_properties
                .iter()
                .filter(|(name, _)| name.starts_with(RESERVED_PREFIX))
                .map(|(name, _)| format!("{ESCAPED_USER_PREFIX}{}", name.as_str()))
                .collect(),
        }
    }
}

/// The headers of `publish`'s record, in the module doc's order, borrowed
/// from it, from `client_id` and from `made` (made of the same publish).
pub fn record_headers<'a>(
    publish: &'a Publish,
    client_id: &'a str,
    made: &'a MadeHeaders,
) -> Vec<(&'a str, &'a [u8])> {
    let mut headers = Vec::with_capacity(3 + publish.properties.user_properties.len());
    push_record_headers(&mut headers, publish, client_id, made);
    headers
}

/// [`record_headers`], appended to `headers` (one vector for the
/// records of a burst).
pub fn push_record_headers<'a>(
    headers: &mut Vec<(&'a str, &'a [u8])>,
    publish: &'a Publish,
    client_id: &'a str,
    made: &'a MadeHeaders,
) {
    let properties = &publish.properties;
    headers.push((QOS, qos_text(publish.qos)));
    if publish.retain {
        headers.push((RETAIN, b"1"));
    }
    headers.push((FROM, client_id.as_bytes()));
    if properties.payload_format_indicator == Some(true) {
        headers.push((PAYLOAD_FORMAT, b"1"));
    }
    if let Some(expires_ms) = &made.expires_ms {
        headers.push((EXPIRES_MS, expires_ms.as_bytes()));
    }
    if let Some(content_type) = &properties.content_type {
        headers.push((CONTENT_TYPE, content_type.as_str().as_bytes()));
    }
    if let Some(topic) = &properties.response_topic {
        headers.push((RESPONSE_TOPIC, topic.as_str().as_bytes()));
    }
    if let Some(data) = &properties.correlation_data {
        headers.push((CORRELATION_DATA, data));
    }
    let mut escaped = made.escaped_names.iter();
    for (name, value) in &properties.user_properties {
        let name = match name.starts_with(RESERVED_PREFIX) {
            true => escaped.next().map_or(name.as_str(), String::as_str),
            false => name.as_str(),
        };
        headers.push((name, value.as_str().as_bytes()));
    }
}

fn qos_text(qos: QoS) -> &'static [u8] {
    match qos {
        QoS::AtMostOnce => b"0",
        QoS::AtLeastOnce => b"1",
        QoS::ExactlyOnce => b"2",
    }
}

/// What a subscriber needs of a record, read from its headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The MQTT topic name (the record key).
    pub topic: ByteStr,
    /// The publish QoS; `ExactlyOnce` for records of other protocols, so
    /// they are delivered at the subscription's QoS.
    pub qos: QoS,
    pub retain: bool,
    /// The publisher's client id, if it was an MQTT client.
    pub from: Option<Bytes>,
    pub expires_ms: Option<i64>,
}

/// The MQTT view of a record; `None` when its key is no valid MQTT topic
/// name (no key, not UTF-8, wildcards), so no subscriber can match it.
pub fn stored(record: &ConsumerRecord) -> Option<Stored> {
    let key = record.key.clone()?;
    let topic = ByteStr::from_utf8(key).ok()?;
    if citystream_mqtt_codec::validate_topic_name(&topic).is_err() {
        return None;
    }
    let mut stored = Stored {
        topic,
        qos: QoS::ExactlyOnce,
        retain: false,
        from: None,
        expires_ms: None,
    };
    for (name, value) in &record.headers {
        match &**name {
            QOS => stored.qos = QoS::from_u8(value.first()?.wrapping_sub(b'0'))?,
            RETAIN => stored.retain = value.as_ref() == b"1",
            FROM => stored.from = Some(value.clone()),
            EXPIRES_MS => {
                stored.expires_ms = std::str::from_utf8(value)
                    .ok()
                    .and_then(|text| text.parse().ok());
            }
            _ => {}
        }
    }
    Some(stored)
}

/// The PUBLISH a subscriber receives for `record` (properties from its
/// headers; no packet id yet), or `None` if it expired by `now_ms`.
pub fn to_publish(
    record: &ConsumerRecord,
    stored: &Stored,
    qos: QoS,
    retain: bool,
    now_ms: i64,
) -> Option<Publish> {
    let mut properties = PublishProperties::default();
    if let Some(expires_ms) = stored.expires_ms {
        let left_ms = expires_ms.checked_sub(now_ms).filter(|left| *left > 0)?;
        properties.message_expiry_interval_secs =
            Some(u32::try_from((left_ms + 999) / 1000).unwrap_or(u32::MAX));
    }
    for (name, value) in &record.headers {
        let text = || ByteStr::from_utf8(value.clone()).ok();
        match &**name {
            QOS | RETAIN | FROM | EXPIRES_MS => {}
            PAYLOAD_FORMAT => properties.payload_format_indicator = Some(true),
            CONTENT_TYPE => properties.content_type = text(),
            RESPONSE_TOPIC => properties.response_topic = text(),
            CORRELATION_DATA => properties.correlation_data = Some(value.clone()),
            other => {
                let name = match other.strip_prefix(ESCAPED_USER_PREFIX) {
                    Some(name) => name,
                    // A header of ours this version does not know.
                    None if other.starts_with(RESERVED_PREFIX) => continue,
                    None => other,
                };
                if let Some(value) = text() {
                    properties
                        .user_properties
                        .push((ByteStr::from(name.to_owned()), value));
                }
            }
        }
    }
    Some(Publish {
        dup: false,
        qos,
        retain,
        topic: stored.topic.clone(),
        packet_id: None,
        properties,
        payload: record.value.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publish(topic: &'static str) -> Publish {
        Publish {
            dup: false,
            qos: QoS::AtLeastOnce,
            retain: true,
            topic: ByteStr::from(topic),
            packet_id: std::num::NonZeroU16::new(7),
            properties: PublishProperties::default(),
            payload: Bytes::from_static(b"21.5"),
        }
    }

    fn consumed(record: ProducerRecord) -> ConsumerRecord {
        ConsumerRecord {
            topic: record.topic.into(),
            partition: 0,
            offset: 3,
            timestamp_ms: record.timestamp_ms.unwrap_or(0),
            hlc: 0,
            key: record.key,
            value: record.value,
            headers: record
                .headers
                .into_iter()
                .map(|(name, value)| (name.into(), value))
                .collect(),
            tombstone: record.tombstone,
        }
    }

    /// A publish with every property survives the trip through a record:
    /// user properties in order, a reserved-looking name escaped and back.
    #[test]
    fn a_publish_round_trips_through_a_record() {
        let mut message = publish("city/n/air/7");
        message.properties = PublishProperties {
            payload_format_indicator: Some(true),
            message_expiry_interval_secs: Some(60),
            content_type: Some(ByteStr::from("application/json")),
            response_topic: Some(ByteStr::from("replies/7")),
            correlation_data: Some(Bytes::from_static(b"\x01\x02")),
            user_properties: vec![
                (ByteStr::from("b"), ByteStr::from("2")),
                (ByteStr::from("$mqtt.qos"), ByteStr::from("x")),
                (ByteStr::from("a"), ByteStr::from("1")),
            ],
            ..PublishProperties::default()
        };
        let record = to_record(&message, "mqtt.city".to_owned(), "sensor-7", 1_000_000);
        assert_eq!(record.key.as_deref(), Some(&b"city/n/air/7"[..]));
        let record = consumed(record);
        let stored = stored(&record).unwrap();
        assert_eq!(stored.qos, QoS::AtLeastOnce);
        assert!(stored.retain);
        assert_eq!(stored.from.as_deref(), Some(&b"sensor-7"[..]));
        let out = to_publish(&record, &stored, QoS::AtLeastOnce, false, 1_010_000).unwrap();
        assert_eq!(out.properties.message_expiry_interval_secs, Some(50));
        assert_eq!(out.properties.content_type, message.properties.content_type);
        assert_eq!(
            out.properties.response_topic,
            message.properties.response_topic
        );
        assert_eq!(
            out.properties.correlation_data,
            message.properties.correlation_data
        );
        assert_eq!(out.properties.payload_format_indicator, Some(true));
        assert_eq!(
            out.properties.user_properties,
            message.properties.user_properties
        );
        assert_eq!(out.payload, message.payload);
        assert!(!out.retain);
        assert!(
            to_publish(&record, &stored, QoS::AtLeastOnce, false, 1_060_000).is_none(),
            "expired"
        );
    }

    /// Records of other protocols are delivered at the subscription's QoS;
    /// records whose key is no topic name are not MQTT messages.
    #[test]
    fn foreign_records_and_bad_keys() {
        let mut record = consumed(ProducerRecord::new("mqtt.city", "v").with_key("city/x"));
        assert_eq!(stored(&record).unwrap().qos, QoS::ExactlyOnce);
        for key in [&b"city/+"[..], b"a/#", b"", b"\xff"] {
            record.key = Some(Bytes::copy_from_slice(key));
            assert!(stored(&record).is_none(), "{key:?}");
        }
        record.key = None;
        assert!(stored(&record).is_none());
    }
}
