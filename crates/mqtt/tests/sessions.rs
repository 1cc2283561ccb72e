//! Persistent sessions: kept in the replicated sessions topic, resumed on
//! any node with what the client missed, in order, and what it had not
//! acknowledged re-sent with DUP under the same packet ids.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use citystream_mqtt::session::client_id_of;
use citystream_mqtt::{RETAINED_TOPIC, SESSIONS_TOPIC};
use citystream_mqtt_codec::{Disconnect, DisconnectProperties, Packet, QoS, ReasonCode, Version};
use citystream_protocol::Cleanup;
use citystream_testkit::{bounded, read_topic};
use common::{MqttBroker, TestClient, ack, connect, publish, publish_acked, retained, subscribe};

fn goodbye() -> Packet {
    Packet::Disconnect(Disconnect {
        reason: ReasonCode::SUCCESS,
        properties: DisconnectProperties::default(),
    })
}

/// A persistent session connects with `clean_start` false and, in v5, a
/// session expiry.
async fn persistent(
    address: &str,
    version: Version,
    client_id: &'static str,
    clean_start: bool,
) -> (TestClient, bool) {
    let mut asked = connect(version, client_id);
    asked.clean_start = clean_start;
    if version == Version::V5 {
        asked.properties.session_expiry_interval_secs = Some(300);
    }
    let (client, ack) = TestClient::connect(address, asked).await;
    assert_eq!(ack.reason, ReasonCode::SUCCESS);
    (client, ack.session_present)
}

async fn publish_all(broker: &MqttBroker, topic: &str, payloads: &[&'static str]) {
    let mut device = broker.connect(Version::V5, "device").await;
    for (index, payload) in payloads.iter().enumerate() {
        let id = index as u16 + 1;
        device
            .send(Packet::Publish(publish(
                topic,
                QoS::AtLeastOnce,
                id,
                payload,
            )))
            .await;
        assert!(matches!(device.recv().await, Packet::PubAck(_)));
    }
}

/// Messages published while a persistent session was offline arrive, in
/// order, when it reconnects (3.1.1 and 5.0), and not again after they
/// were acknowledged.
#[tokio::test]
async fn an_offline_session_receives_what_it_missed() {
    bounded(async {
        let broker = MqttBroker::start().await;
        for (version, client_id, topic) in [
            (Version::V3_1_1, "v3", "fleet/v3"),
            (Version::V5, "v5", "fleet/v5"),
        ] {
            // A 3.1.1 session is persistent when it is not clean.
            let clean_start = version == Version::V5;
            let (mut client, present) =
                persistent(&broker.address, version, client_id, clean_start).await;
            assert!(!present);
            client
                .send(Packet::Subscribe(subscribe(
                    1,
                    &[(topic, QoS::AtLeastOnce)],
                    None,
                )))
                .await;
            assert!(matches!(client.recv().await, Packet::SubAck(_)));
            client.send(goodbye()).await;
            drop(client);

            publish_all(&broker, topic, &["1", "2", "3"]).await;
            let (mut client, present) =
                persistent(&broker.address, version, client_id, false).await;
            assert!(present, "the session was kept");
            for expected in ["1", "2", "3"] {
                let message = client.recv_publish().await;
                assert_eq!(
                    (message.topic.as_str(), &message.payload[..]),
                    (topic, expected.as_bytes())
                );
                client
                    .send(Packet::PubAck(ack(message.packet_id.unwrap().get())))
                    .await;
            }
            // Acknowledged and snapshotted before the clean disconnect.
            client.send(goodbye()).await;
            drop(client);
            let (mut client, present) =
                persistent(&broker.address, version, client_id, false).await;
            assert!(present);
            let (_, extra) = tokio::join!(tokio::time::sleep(Duration::from_millis(1)), async {
                tokio::time::timeout(Duration::from_millis(500), client.recv())
                    .await
                    .ok()
            });
            assert!(extra.is_none(), "nothing is sent twice: {extra:?}");
        }
    })
    .await;
}

/// A message sent and not acknowledged is sent again with DUP and the same
/// packet id when the session resumes on another node.
#[tokio::test]
async fn unacknowledged_messages_are_resent_with_their_ids_on_another_node() {
    bounded(async {
        let broker = MqttBroker::start().await;
        let (other, _stop) = broker.another_server().await;
        let (mut client, _) = persistent(&broker.address, Version::V5, "resend", true).await;
        client.send(Packet::Subscribe(subscribe(1, &[("alerts/#", QoS::ExactlyOnce)], None))).await;
        client.recv().await;
        // Written over the native protocol: delivered at the granted QoS 2.
        let producer = broker.client.producer(Default::default()).unwrap();
        let record = citystream_client::ProducerRecord::new("mqtt.alerts", "smoke").with_key("alerts/fire");
        producer.send(record).await.unwrap().await.unwrap();
        let first = client.recv_publish().await;
        assert_eq!((first.qos, first.dup), (QoS::ExactlyOnce, false));
        // Gone without acknowledging: the session's snapshot holds it.
        drop(client);
        let (mut client, present) = persistent(&other, Version::V5, "resend", false).await;
        assert!(present);
        let again = client.recv_publish().await;
        assert!(again.dup);
        assert_eq!((again.packet_id, &again.payload[..]), (first.packet_id, &b"smoke"[..]));
        client.send(Packet::PubRec(ack(again.packet_id.unwrap().get()))).await;
        assert!(matches!(client.recv().await, Packet::PubRel(rel) if Some(rel.packet_id) == first.packet_id));
        client.send(Packet::PubComp(ack(again.packet_id.unwrap().get()))).await;
        assert!(client.silent_for(Duration::from_millis(300)).await);
    })
    .await;
}

/// A clean start discards the stored session.
#[tokio::test]
async fn a_clean_start_discards_the_session() {
    bounded(async {
        let broker = MqttBroker::start().await;
        let (mut client, _) = persistent(&broker.address, Version::V5, "fresh", true).await;
        client
            .send(Packet::Subscribe(subscribe(
                1,
                &[("x/#", QoS::AtLeastOnce)],
                None,
            )))
            .await;
        client.recv().await;
        client.send(goodbye()).await;
        drop(client);
        publish_all(&broker, "x/1", &["missed"]).await;
        let (mut client, present) = persistent(&broker.address, Version::V5, "fresh", true).await;
        assert!(!present);
        assert!(client.silent_for(Duration::from_millis(500)).await);
    })
    .await;
}

/// A QoS 2 publish resent with DUP to another node, after the first node
/// answered PUBREC and the client lost the connection, is not written again.
#[tokio::test]
async fn qos2_stays_exactly_once_across_nodes() {
    bounded(async {
        let broker = MqttBroker::start().await;
        let (other, _stop) = broker.another_server().await;
        let (mut client, _) = persistent(&broker.address, Version::V5, "exact", true).await;
        let message = publish("meter/7", QoS::ExactlyOnce, 42, "kwh=3");
        client.send(Packet::Publish(message.clone())).await;
        assert!(matches!(client.recv().await, Packet::PubRec(_)));
        drop(client);
        let (mut client, present) = persistent(&other, Version::V5, "exact", false).await;
        assert!(present);
        let mut again = message;
        again.dup = true;
        client.send(Packet::Publish(again)).await;
        assert!(matches!(client.recv().await, Packet::PubRec(rec) if rec.packet_id.get() == 42));
        client.send(Packet::PubRel(ack(42))).await;
        assert!(matches!(client.recv().await, Packet::PubComp(comp) if comp.reason == ReasonCode::SUCCESS));
        assert_eq!(read_topic(&broker.client, "mqtt.meter").await.len(), 1);
    })
    .await;
}

/// A client id connecting on another node takes the session over: the
/// first connection gets DISCONNECT 0x8E.
#[tokio::test]
async fn a_connection_on_another_node_takes_the_session_over() {
    bounded(async {
        let broker = MqttBroker::start().await;
        let (other, _stop) = broker.another_server().await;
        let mut first = broker.connect(Version::V5, "roaming").await;
        let (mut second, _) = TestClient::connect(&other, connect(Version::V5, "roaming")).await;
        let (closed, before) = first.closed().await;
        assert!(closed);
        assert!(matches!(&before[..], [Packet::Disconnect(d)] if d.reason == ReasonCode::SESSION_TAKEN_OVER), "{before:?}");
        second.send(Packet::PingReq).await;
        assert!(matches!(second.recv().await, Packet::PingResp));
    })
    .await;
}

/// Decision 0019: the sessions topic is compacted, one key per generation.
/// A session taken over by a later connection leaves its older
/// generation's key tombstoned, and a session whose expiry passed is ended
/// by the nodes' sweep, so no key of the client is left holding a record.
#[tokio::test]
async fn the_sessions_topic_keeps_only_live_generations() {
    bounded(async {
        let broker = MqttBroker::start().await;
        let mut asked = connect(Version::V5, "brief");
        asked.clean_start = false;
        asked.properties.session_expiry_interval_secs = Some(1);
        for _ in 0..3 {
            let (mut client, ack) = TestClient::connect(&broker.address, asked.clone()).await;
            assert_eq!(ack.reason, ReasonCode::SUCCESS);
            client.send(goodbye()).await;
            assert!(client.closed().await.0);
        }
        let cleanup = broker.client.topic_cleanup(SESSIONS_TOPIC).await.unwrap();
        assert_eq!(cleanup, Some(Cleanup::Compact));
        let deadline = Instant::now() + Duration::from_secs(20);
        let live = loop {
            let records = read_topic(&broker.client, SESSIONS_TOPIC).await;
            let mut newest = HashMap::new();
            for record in records
                .iter()
                .filter(|r| r.key.as_deref().and_then(client_id_of) == Some("brief"))
            {
                newest.insert(record.key.clone(), record.tombstone);
            }
            let live = newest.values().filter(|tombstone| !**tombstone).count();
            if live == 0 || Instant::now() > deadline {
                break (newest.len(), live);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert_eq!(
            live,
            (3, 0),
            "three generations' keys, none holding a record"
        );
    })
    .await;
}

/// A retained message in flight to a persistent session is sent again on
/// resume, with RETAIN, DUP and its packet id, even after its name got a
/// newer retained message and compaction removed the old one's record.
#[tokio::test]
async fn an_unacknowledged_retained_message_survives_its_compaction() {
    bounded(async {
        let mut settings = citystream_testkit::BrokerConfig::default();
        settings.log.segment_bytes_max = 1024;
        settings.retention_check_interval_ms = 20;
        settings.compaction_lag_floor_ms = 0;
        settings.compaction_dirty_ratio_min_percent = 1;
        let broker = MqttBroker::start_on(settings, Default::default()).await;
        let mut sensor = broker.connect(Version::V5, "sensor").await;
        let name = "city/x/status";
        publish_acked(&mut sensor, retained(name, QoS::AtLeastOnce, 1, "first")).await;

        let (mut client, _) = persistent(&broker.address, Version::V5, "late", true).await;
        client.subscribe_to("city/x/#", QoS::AtLeastOnce).await;
        let first = client.recv_publish().await;
        assert_eq!((first.retain, &first.payload[..]), (true, &b"first"[..]));
        // Let a snapshot take the in-flight message, then go without
        // acknowledging it.
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        drop(client);

        // Newer retained messages of the name, until compaction removed
        // the record of the first.
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut id = 2;
        loop {
            let newer = "a newer value, long enough to fill segments quickly";
            publish_acked(&mut sensor, retained(name, QoS::AtLeastOnce, id, newer)).await;
            id += 1;
            let records = read_topic(&broker.client, RETAINED_TOPIC).await;
            if records.iter().all(|r| &r.value[..] != b"first") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "compaction never removed the first value"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }

        let (mut client, present) = persistent(&broker.address, Version::V5, "late", false).await;
        assert!(present);
        let again = client.recv_publish().await;
        assert_eq!(
            (again.dup, again.retain, again.packet_id, &again.payload[..]),
            (true, true, first.packet_id, &b"first"[..])
        );
    })
    .await;
}

/// Retained messages a SUBSCRIBE queued behind a full in-flight window are
/// kept with the session: on resume the one in flight comes again with
/// DUP, then the queued ones, each with RETAIN, in name order.
#[tokio::test]
async fn retained_messages_queued_behind_the_window_come_on_resume() {
    bounded(async {
        let broker = MqttBroker::start().await;
        let mut sensor = broker.connect(Version::V5, "sensor").await;
        for (id, name) in [
            (1, "city/a/status"),
            (2, "city/b/status"),
            (3, "city/c/status"),
        ] {
            publish_acked(&mut sensor, retained(name, QoS::AtLeastOnce, id, "up")).await;
        }
        let narrow = |clean_start: bool| {
            let mut asked = connect(Version::V5, "narrow");
            asked.clean_start = clean_start;
            asked.properties.session_expiry_interval_secs = Some(300);
            asked.properties.receive_maximum = Some(1);
            asked
        };
        let (mut client, _) = TestClient::connect(&broker.address, narrow(true)).await;
        client.subscribe_to("city/+/status", QoS::AtLeastOnce).await;
        let first = client.recv_publish().await;
        assert_eq!(&first.topic[..], "city/a/status");
        assert!(
            client.silent_for(Duration::from_millis(300)).await,
            "the window holds one"
        );
        // A snapshot takes the window and the queue; then the client goes.
        tokio::time::sleep(Duration::from_millis(1_000)).await;
        drop(client);

        let (mut client, connack) = TestClient::connect(&broker.address, narrow(false)).await;
        assert!(connack.session_present);
        let mut seen = Vec::new();
        for _ in 0..3 {
            let message = client.recv_publish().await;
            seen.push((message.topic.to_string(), message.dup, message.retain));
            client
                .send(Packet::PubAck(ack(message.packet_id.unwrap().get())))
                .await;
        }
        assert_eq!(
            seen,
            [
                ("city/a/status".to_owned(), true, true),
                ("city/b/status".to_owned(), false, true),
                ("city/c/status".to_owned(), false, true),
            ]
        );
    })
    .await;
}
