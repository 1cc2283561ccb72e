//! MQTT over the log, end to end in one process: a broker, its MQTT
//! listener, and clients speaking 3.1.1 and 5.0 through our codec.

mod common;

use std::num::NonZeroU16;
use std::time::Duration;

use bytes::Bytes;
use citystream_client::ProducerRecord;
use citystream_mqtt::MqttConfig;
use citystream_mqtt_codec::{
    ByteStr, Disconnect, DisconnectProperties, Packet, QoS, ReasonCode, Version, Will,
    WillProperties,
};
use citystream_testkit::{bounded, read_topic};
use common::{MqttBroker, TestClient, ack, connect, publish, publish_acked, subscribe};

fn header<'a>(record: &'a citystream_client::ConsumerRecord, name: &str) -> Option<&'a [u8]> {
    record
        .headers
        .iter()
        .find(|(n, _)| **n == *name)
        .map(|(_, v)| &v[..])
}

/// A QoS 1 publish is acknowledged once it is a record of the first
/// level's stream topic, keyed by its full topic name.
#[tokio::test]
async fn a_qos1_publish_is_a_record_when_acknowledged() {
    bounded(async {
        let broker = MqttBroker::start().await;
        for version in [Version::V3_1_1, Version::V5] {
            let mut device = broker.connect(version, "sensor-7").await;
            device
                .send(Packet::Publish(publish(
                    "city/north/air/7",
                    QoS::AtLeastOnce,
                    9,
                    "42",
                )))
                .await;
            match device.recv().await {
                Packet::PubAck(ack) => {
                    assert_eq!((ack.packet_id.get(), ack.reason), (9, ReasonCode::SUCCESS))
                }
                other => panic!("expected PUBACK, got {other:?}"),
            }
        }
        let records = read_topic(&broker.client, "mqtt.city").await;
        assert_eq!(records.len(), 2);
        for record in &records {
            assert_eq!(record.key.as_deref(), Some(&b"city/north/air/7"[..]));
            assert_eq!(&record.value[..], b"42");
            assert_eq!(header(record, "$mqtt.qos"), Some(&b"1"[..]));
            assert_eq!(header(record, "$mqtt.from"), Some(&b"sensor-7"[..]));
        }
    })
    .await;
}

/// A subscriber gets what matches its filter, at the lower of the publish
/// and the granted QoS, and records written over the native protocol too.
#[tokio::test]
async fn subscribers_receive_matching_messages_from_every_protocol() {
    bounded(async {
        let broker = MqttBroker::start().await;
        let mut subscriber = broker.connect(Version::V5, "dashboard").await;
        subscriber
            .send(Packet::Subscribe(subscribe(
                1,
                &[("city/+/air/#", QoS::AtLeastOnce)],
                None,
            )))
            .await;
        match subscriber.recv().await {
            Packet::SubAck(suback) => assert_eq!(suback.reasons, [ReasonCode(1)]),
            other => panic!("expected SUBACK, got {other:?}"),
        }
        let mut device = broker.connect(Version::V3_1_1, "sensor").await;
        device
            .send(Packet::Publish(publish(
                "city/n/air/1",
                QoS::AtMostOnce,
                0,
                "a",
            )))
            .await;
        device
            .send(Packet::Publish(publish(
                "city/n/traffic/1",
                QoS::AtLeastOnce,
                1,
                "no",
            )))
            .await;
        device
            .send(Packet::Publish(publish(
                "city/s/air/2",
                QoS::ExactlyOnce,
                2,
                "b",
            )))
            .await;
        assert!(matches!(device.recv().await, Packet::PubAck(_)));
        assert!(matches!(device.recv().await, Packet::PubRec(_)));
        let producer = broker.client.producer(Default::default()).unwrap();
        let record = ProducerRecord::new("mqtt.city", "c").with_key("city/e/air/3");
        producer.send(record).await.unwrap().await.unwrap();

        let first = subscriber.recv_publish().await;
        assert_eq!(
            (first.topic.as_str(), &first.payload[..], first.qos),
            ("city/n/air/1", &b"a"[..], QoS::AtMostOnce)
        );
        let second = subscriber.recv_publish().await;
        assert_eq!(
            (second.topic.as_str(), second.qos),
            ("city/s/air/2", QoS::AtLeastOnce)
        );
        subscriber
            .send(Packet::PubAck(ack(second.packet_id.unwrap().get())))
            .await;
        let third = subscriber.recv_publish().await;
        assert_eq!(
            (third.topic.as_str(), &third.payload[..], third.qos),
            ("city/e/air/3", &b"c"[..], QoS::AtLeastOnce)
        );
        assert!(
            subscriber.silent_for(Duration::from_millis(300)).await,
            "traffic is not matched"
        );
    })
    .await;
}

/// QoS 0 publishes that come in one read are written together, in order
/// with the packets around them: a publish to another stream topic, a
/// QoS 1 publish, and a DISCONNECT right behind them.
#[tokio::test]
async fn a_burst_of_publishes_keeps_its_order() {
    bounded(async {
        let broker = MqttBroker::start().await;
        let mut device = broker.connect(Version::V5, "burst").await;
        let name = "city/a/air";
        publish_acked(&mut device, publish(name, QoS::AtLeastOnce, 1, "0")).await;
        let q0 = |topic, payload| Packet::Publish(publish(topic, QoS::AtMostOnce, 0, payload));
        device
            .send_all(vec![
                q0(name, "1"),
                q0(name, "2"),
                q0("town/b", "3"),
                q0(name, "4"),
                q0("city/b/air", "b1"),
                q0(name, "5"),
                q0("city/b/air", "b2"),
                Packet::Publish(publish(name, QoS::AtLeastOnce, 2, "6")),
                q0(name, "7"),
                q0(name, "8"),
                Packet::Disconnect(Disconnect::normal()),
            ])
            .await;
        // The connection ends with the DISCONNECT, before the PUBACK of
        // "6" is due; its record is written all the same.
        assert!(device.closed().await.0, "closed after DISCONNECT");
        // In order per name (one name's records share a partition).
        let values = |records: &[citystream_client::ConsumerRecord], key: &str| -> Vec<String> {
            records
                .iter()
                .filter(|record| record.key.as_deref() == Some(key.as_bytes()))
                .map(|record| String::from_utf8_lossy(&record.value).into_owned())
                .collect()
        };
        let mut city = Vec::new();
        for _ in 0..100 {
            city = read_topic(&broker.client, "mqtt.city").await;
            if city.len() >= 10 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(city.len(), 10);
        assert_eq!(
            values(&city, name),
            ["0", "1", "2", "4", "5", "6", "7", "8"]
        );
        assert_eq!(values(&city, "city/b/air"), ["b1", "b2"]);
        let town = read_topic(&broker.client, "mqtt.town").await;
        assert_eq!(values(&town, "town/b"), ["3"]);
    })
    .await;
}

/// Two overlapping subscriptions of one v5 client give one copy carrying
/// both subscription identifiers.
#[tokio::test]
async fn overlapping_subscriptions_deliver_one_copy() {
    bounded(async {
        let broker = MqttBroker::start().await;
        let mut subscriber = broker.connect(Version::V5, "overlap").await;
        subscriber
            .send(Packet::Subscribe(subscribe(
                1,
                &[("a/#", QoS::AtMostOnce)],
                Some(5),
            )))
            .await;
        subscriber.recv().await;
        subscriber
            .send(Packet::Subscribe(subscribe(
                2,
                &[("a/+", QoS::AtLeastOnce)],
                Some(6),
            )))
            .await;
        subscriber.recv().await;
        let mut device = broker.connect(Version::V5, "pub").await;
        device
            .send(Packet::Publish(publish("a/b", QoS::AtLeastOnce, 1, "x")))
            .await;
        let delivered = subscriber.recv_publish().await;
        assert_eq!(delivered.qos, QoS::AtLeastOnce);
        let mut ids = delivered.properties.subscription_identifiers.clone();
        ids.sort();
        assert_eq!(ids, [5, 6]);
        subscriber
            .send(Packet::PubAck(ack(delivered.packet_id.unwrap().get())))
            .await;
        assert!(
            subscriber.silent_for(Duration::from_millis(300)).await,
            "one copy only"
        );
    })
    .await;
}

/// A QoS 2 publish sent again with the same packet id before PUBREL is
/// written once; PUBREL is answered with PUBCOMP.
#[tokio::test]
async fn qos2_is_written_once() {
    bounded(async {
        let broker = MqttBroker::start().await;
        let mut device = broker.connect(Version::V5, "q2").await;
        let message = publish("exact/once", QoS::ExactlyOnce, 3, "1");
        device.send(Packet::Publish(message.clone())).await;
        assert!(matches!(device.recv().await, Packet::PubRec(rec) if rec.packet_id.get() == 3));
        let mut again = message;
        again.dup = true;
        device.send(Packet::Publish(again)).await;
        assert!(matches!(device.recv().await, Packet::PubRec(rec) if rec.packet_id.get() == 3));
        device.send(Packet::PubRel(ack(3))).await;
        assert!(matches!(device.recv().await, Packet::PubComp(comp) if comp.reason == ReasonCode::SUCCESS));
        device.send(Packet::PubRel(ack(3))).await;
        assert!(matches!(device.recv().await, Packet::PubComp(comp) if comp.reason == ReasonCode::PACKET_IDENTIFIER_NOT_FOUND));
        assert_eq!(read_topic(&broker.client, "mqtt.exact").await.len(), 1);
    })
    .await;
}

/// A connection closed without DISCONNECT publishes its will; one closed
/// with DISCONNECT 0x00 does not.
#[tokio::test]
async fn the_will_is_published_on_an_abrupt_close_only() {
    bounded(async {
        let broker = MqttBroker::start().await;
        let mut watcher = broker.watcher("status/#").await;
        for (client_id, clean) in [("clean", true), ("abrupt", false)] {
            let mut asked = connect(Version::V5, client_id);
            asked.will = Some(Will {
                qos: QoS::AtLeastOnce,
                retain: false,
                topic: ByteStr::from(format!("status/{client_id}")),
                payload: Bytes::from_static(b"offline"),
                properties: WillProperties::default(),
            });
            let (mut device, _) = TestClient::connect(&broker.address, asked).await;
            if clean {
                let disconnect = Disconnect {
                    reason: ReasonCode::SUCCESS,
                    properties: DisconnectProperties::default(),
                };
                device.send(Packet::Disconnect(disconnect)).await;
            }
            drop(device);
        }
        let will = watcher.recv_publish().await;
        assert_eq!(
            (will.topic.as_str(), &will.payload[..]),
            ("status/abrupt", &b"offline"[..])
        );
        watcher
            .send(Packet::PubAck(ack(will.packet_id.unwrap().get())))
            .await;
        assert!(watcher.silent_for(Duration::from_millis(300)).await);
    })
    .await;
}

/// A second connection with a client id takes it over: the first gets
/// DISCONNECT 0x8E and is closed.
#[tokio::test]
async fn a_second_connection_takes_the_session_over() {
    bounded(async {
        let broker = MqttBroker::start().await;
        let mut first = broker.connect(Version::V5, "twice").await;
        let mut second = broker.connect(Version::V5, "twice").await;
        let (closed, before) = first.closed().await;
        assert!(closed);
        assert!(matches!(&before[..], [Packet::Disconnect(d)] if d.reason == ReasonCode::SESSION_TAKEN_OVER));
        second.send(Packet::PingReq).await;
        assert!(matches!(second.recv().await, Packet::PingResp));
    })
    .await;
}

/// Protocol errors close the connection with their reason code (v5) and
/// write nothing: a second CONNECT, a packet over the size limit, an
/// unknown alias, more QoS 2 messages unreleased than the receive maximum,
/// a retained publish (Retain Available is 0).
#[tokio::test]
async fn protocol_errors_close_with_their_reason() {
    bounded(async {
        let config = MqttConfig {
            receive_maximum: 2,
            limits: citystream_mqtt_codec::Limits {
                max_packet_bytes: 1024,
                ..Default::default()
            },
            ..MqttConfig::default()
        };
        let broker = MqttBroker::start_with(config).await;

        let mut client = broker.connect(Version::V5, "twice").await;
        client
            .send(Packet::Connect(Box::new(connect(Version::V5, "twice"))))
            .await;
        assert_closed_with(&mut client, ReasonCode::PROTOCOL_ERROR).await;

        let mut client = broker.connect(Version::V5, "big").await;
        let mut big = publish("big/x", QoS::AtLeastOnce, 1, "");
        big.payload = Bytes::from(vec![b'x'; 2048]);
        client.send(Packet::Publish(big)).await;
        assert_closed_with(&mut client, ReasonCode::PACKET_TOO_LARGE).await;

        let mut client = broker.connect(Version::V5, "alias").await;
        let mut aliased = publish("", QoS::AtMostOnce, 0, "x");
        aliased.properties.topic_alias = NonZeroU16::new(3);
        client.send(Packet::Publish(aliased)).await;
        assert_closed_with(&mut client, ReasonCode::PROTOCOL_ERROR).await;

        // QoS 2 messages count against the receive maximum until PUBREL.
        let mut client = broker.connect(Version::V5, "greedy").await;
        for id in 1..=3 {
            client.send(Packet::Publish(publish("greedy/x", QoS::ExactlyOnce, id, "x"))).await;
        }
        let (closed, before) = client.closed().await;
        assert!(closed);
        let recs = before.iter().filter(|p| matches!(p, Packet::PubRec(_))).count();
        assert!(recs <= 2, "{before:?}");
        assert!(matches!(before.last(), Some(Packet::Disconnect(d)) if d.reason == ReasonCode::RECEIVE_MAXIMUM_EXCEEDED));

        assert!(read_topic(&broker.client, "mqtt.big").await.is_empty());
    })
    .await;
}

/// A 3.1.1 client with an empty client id and no clean session gets
/// CONNACK 0x02 and is closed.
#[tokio::test]
async fn an_empty_client_id_needs_a_clean_session_in_3_1_1() {
    bounded(async {
        let broker = MqttBroker::start().await;
        let mut client = TestClient::open(&broker.address, Version::V3_1_1).await;
        // CONNECT "MQTT" level 4, flags 0 (no clean session), keep alive
        // 30, client id "" (our codec refuses to encode it).
        client
            .send_raw(&[0x10, 12, 0, 4, b'M', b'Q', b'T', b'T', 4, 0, 0, 30, 0, 0])
            .await;
        let (closed, before) = client.closed().await;
        assert!(closed);
        assert!(
            matches!(&before[..], [Packet::ConnAck(ack)] if ack.reason == ReasonCode::CLIENT_IDENTIFIER_NOT_VALID),
            "{before:?}"
        );
    })
    .await;
}

/// Topic aliases set on one publish name the topic of later ones.
#[tokio::test]
async fn topic_aliases_resolve() {
    bounded(async {
        let broker = MqttBroker::start().await;
        let mut device = broker.connect(Version::V5, "aliases").await;
        let mut first = publish("fleet/bus/12", QoS::AtLeastOnce, 1, "a");
        first.properties.topic_alias = NonZeroU16::new(1);
        device.send(Packet::Publish(first)).await;
        device.recv().await;
        let mut second = publish("", QoS::AtLeastOnce, 2, "b");
        second.properties.topic_alias = NonZeroU16::new(1);
        device.send(Packet::Publish(second)).await;
        device.recv().await;
        let keys: Vec<_> = read_topic(&broker.client, "mqtt.fleet")
            .await
            .into_iter()
            .map(|r| r.key.unwrap())
            .collect();
        assert_eq!(
            keys,
            [
                Bytes::from_static(b"fleet/bus/12"),
                Bytes::from_static(b"fleet/bus/12")
            ]
        );
    })
    .await;
}

async fn assert_closed_with(client: &mut TestClient, reason: ReasonCode) {
    let (closed, before) = client.closed().await;
    assert!(closed, "the connection stays open");
    let reasons: Vec<ReasonCode> = before
        .iter()
        .filter_map(|p| match p {
            Packet::Disconnect(d) => Some(d.reason),
            _ => None,
        })
        .collect();
    assert_eq!(reasons, [reason], "packets before the close: {before:?}");
}

/// Filters on the deny list, or covered by one, are refused with SUBACK
/// 0x80; others in the same SUBSCRIBE are granted.
#[tokio::test]
async fn denied_filters_are_refused() {
    bounded(async {
        let config = MqttConfig {
            deny_filters: vec!["secret/#".to_owned()],
            ..MqttConfig::default()
        };
        let broker = MqttBroker::start_with(config).await;
        for version in [Version::V3_1_1, Version::V5] {
            let mut client = broker.connect(version, "curious").await;
            let filters = [
                ("secret/#", QoS::AtLeastOnce),
                ("secret/x/y", QoS::AtMostOnce),
                ("public/#", QoS::AtLeastOnce),
            ];
            client
                .send(Packet::Subscribe(subscribe(1, &filters, None)))
                .await;
            match client.recv().await {
                Packet::SubAck(suback) => assert_eq!(
                    suback.reasons,
                    [
                        ReasonCode::UNSPECIFIED_ERROR,
                        ReasonCode::UNSPECIFIED_ERROR,
                        ReasonCode(1)
                    ]
                ),
                other => panic!("expected SUBACK, got {other:?}"),
            }
        }
    })
    .await;
}

fn with_will(client_id: &'static str, delay_secs: Option<u32>) -> citystream_mqtt_codec::Connect {
    let mut asked = connect(Version::V5, client_id);
    asked.properties.session_expiry_interval_secs = Some(60);
    asked.will = Some(Will {
        qos: QoS::AtLeastOnce,
        retain: false,
        topic: ByteStr::from(format!("status/{client_id}")),
        payload: Bytes::from_static(b"gone"),
        properties: WillProperties {
            will_delay_interval_secs: delay_secs,
            ..WillProperties::default()
        },
    });
    asked
}

/// A will with a delay is not published if the client connects again
/// within it (resuming its session), and is published once the delay
/// passes.
#[tokio::test]
async fn a_will_delay_is_cancelled_by_a_reconnect() {
    bounded(async {
        let broker = MqttBroker::start().await;
        let mut watcher = broker.watcher("status/#").await;
        let (first, _) = TestClient::connect(&broker.address, with_will("delayed", Some(2))).await;
        drop(first);
        let mut resumed = with_will("delayed", Some(1));
        resumed.clean_start = false;
        let (second, _) = TestClient::connect(&broker.address, resumed).await;
        assert!(
            watcher.silent_for(Duration::from_millis(2_500)).await,
            "the reconnect cancelled the first will"
        );
        drop(second);
        let will = watcher.recv_publish().await;
        assert_eq!(
            (will.topic.as_str(), &will.payload[..]),
            ("status/delayed", &b"gone"[..])
        );
    })
    .await;
}

/// A client silent for 1.5 times its keep alive is disconnected with
/// 0x8D, and its will is published.
#[tokio::test]
async fn keep_alive_expiry_closes_the_connection_and_publishes_the_will() {
    bounded(async {
        let broker = MqttBroker::start().await;
        let mut watcher = broker.watcher("status/#").await;
        let mut asked = with_will("sleepy", None);
        asked.keep_alive_secs = 1;
        let (mut sleepy, _) = TestClient::connect(&broker.address, asked).await;
        assert_closed_with(&mut sleepy, ReasonCode::KEEP_ALIVE_TIMEOUT).await;
        let will = watcher.recv_publish().await;
        assert_eq!(will.topic.as_str(), "status/sleepy");
    })
    .await;
}

/// A message whose expiry passed while a persistent session was away is
/// not delivered; one still valid arrives with the time it has left.
#[tokio::test]
async fn expired_messages_are_not_delivered() {
    bounded(async {
        let broker = MqttBroker::start().await;
        let mut asked = connect(Version::V5, "away");
        asked.properties.session_expiry_interval_secs = Some(60);
        let (mut away, _) = TestClient::connect(&broker.address, asked.clone()).await;
        away.send(Packet::Subscribe(subscribe(
            1,
            &[("news/#", QoS::AtLeastOnce)],
            None,
        )))
        .await;
        away.recv().await;
        away.send(Packet::Disconnect(Disconnect {
            reason: ReasonCode::SUCCESS,
            properties: DisconnectProperties::default(),
        }))
        .await;
        drop(away);
        let mut device = broker.connect(Version::V5, "press").await;
        for (id, expiry) in [(1, 1), (2, 600)] {
            let mut message = publish(
                "news/today",
                QoS::AtLeastOnce,
                id,
                if expiry == 1 { "stale" } else { "fresh" },
            );
            message.properties.message_expiry_interval_secs = Some(expiry);
            device.send(Packet::Publish(message)).await;
            device.recv().await;
        }
        tokio::time::sleep(Duration::from_millis(1_200)).await;
        asked.clean_start = false;
        let (mut back, connack) = TestClient::connect(&broker.address, asked).await;
        assert!(connack.session_present);
        let message = back.recv_publish().await;
        assert_eq!(&message.payload[..], b"fresh");
        let left = message.properties.message_expiry_interval_secs.unwrap();
        assert!((598..=600).contains(&left), "{left}");
        back.send(Packet::PubAck(ack(message.packet_id.unwrap().get())))
            .await;
        assert!(back.silent_for(Duration::from_millis(300)).await);
    })
    .await;
}

/// The broker gives topic names aliases when sending, up to the client's
/// Topic Alias Maximum, and then sends those names as the alias alone.
#[tokio::test]
async fn the_broker_assigns_topic_aliases_when_sending() {
    bounded(async {
        let broker = MqttBroker::start().await;
        let mut asked = connect(Version::V5, "aliased");
        asked.properties.topic_alias_maximum = Some(2);
        let (mut subscriber, _) = TestClient::connect(&broker.address, asked).await;
        subscriber
            .send(Packet::Subscribe(subscribe(
                1,
                &[("a/#", QoS::AtMostOnce)],
                None,
            )))
            .await;
        subscriber.recv().await;
        let mut device = broker.connect(Version::V5, "device").await;
        for (id, topic) in [(1, "a/1"), (2, "a/1"), (3, "a/2"), (4, "a/3"), (5, "a/1")] {
            device
                .send(Packet::Publish(publish(topic, QoS::AtLeastOnce, id, "x")))
                .await;
            device.recv().await;
        }
        let mut seen = Vec::new();
        for _ in 0..5 {
            let message = subscriber.recv_publish().await;
            let alias = message.properties.topic_alias.map(|alias| alias.get());
            seen.push((message.topic.to_string(), alias));
        }
        let expected = [
            ("a/1", Some(1)),
            ("", Some(1)),
            ("a/2", Some(2)),
            ("a/3", None),
            ("", Some(1)),
        ];
        let expected: Vec<(String, Option<u16>)> =
            expected.iter().map(|(t, a)| (t.to_string(), *a)).collect();
        assert_eq!(seen, expected);
    })
    .await;
}

/// A client's Maximum Packet Size is honoured: messages that fit arrive
/// at every QoS, a larger one is not sent to it, and the next one is.
#[tokio::test]
async fn the_clients_maximum_packet_size_is_honoured() {
    bounded(async {
        let broker = MqttBroker::start().await;
        let mut asked = connect(Version::V5, "small");
        asked.properties.maximum_packet_size = Some(64);
        let (mut small, _) = TestClient::connect(&broker.address, asked).await;
        small.subscribe_to("sizes/#", QoS::ExactlyOnce).await;
        let mut device = broker.connect(Version::V5, "device").await;
        let big = "x".repeat(100);
        for (id, qos, payload) in [
            (1, QoS::AtLeastOnce, "fits"),
            (2, QoS::AtLeastOnce, big.as_str()),
            (3, QoS::AtMostOnce, "fits too"),
        ] {
            let mut message = publish(
                "sizes/a",
                qos,
                if qos == QoS::AtMostOnce { 0 } else { id },
                "",
            );
            message.payload = Bytes::from(payload.to_owned());
            device.send(Packet::Publish(message)).await;
            if qos != QoS::AtMostOnce {
                device.recv().await;
            }
        }
        let first = small.recv_publish().await;
        assert_eq!(
            (&first.payload[..], first.qos),
            (&b"fits"[..], QoS::AtLeastOnce)
        );
        small
            .send(Packet::PubAck(ack(first.packet_id.unwrap().get())))
            .await;
        let next = small.recv_publish().await;
        assert_eq!(&next.payload[..], b"fits too", "the large one was skipped");
        // With nothing queued, QoS 0 deliveries are written at once; a
        // large one is skipped there too.
        for payload in [big.as_str(), "last"] {
            let mut message = publish("sizes/a", QoS::AtMostOnce, 0, "");
            message.payload = Bytes::from(payload.to_owned());
            device.send(Packet::Publish(message)).await;
        }
        let last = small.recv_publish().await;
        assert_eq!(&last.payload[..], b"last", "the large one was skipped");
    })
    .await;
}
