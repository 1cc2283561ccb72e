//! Retained messages (MQTT 3.3.1.3): kept per topic name in the compacted
//! topic `citystream.mqtt-retained`, sent to a later subscriber whose
//! filter matches, replaced by a newer one, deleted by an empty payload,
//! and sent as retain handling says.

mod common;

use citystream_client::ProducerRecord;
use citystream_mqtt::RETAINED_TOPIC;
use citystream_mqtt_codec::{Packet, Publish, QoS, ReasonCode, RetainHandling, Version};
use citystream_testkit::{bounded, read_topic};
use common::{MqttBroker, TestClient, publish, publish_acked, retained, subscribe};

/// Subscribes with `handling` and returns the SUBACK's reasons.
async fn subscribe_with(
    client: &mut TestClient,
    packet_id: u16,
    filter: &str,
    qos: QoS,
    handling: RetainHandling,
    identifier: Option<u32>,
) -> Vec<ReasonCode> {
    let mut request = subscribe(packet_id, &[(filter, qos)], identifier);
    request.filters[0].1.retain_handling = handling;
    client.send(Packet::Subscribe(request)).await;
    match client.recv().await {
        Packet::SubAck(suback) => suback.reasons,
        other => panic!("expected SUBACK, got {other:?}"),
    }
}

/// What arrives within a short quiet period: (topic, payload, retain).
async fn received(client: &mut TestClient, count: usize) -> Vec<(String, String, bool, QoS)> {
    let mut got = Vec::new();
    for _ in 0..count {
        let publish = client.recv_publish().await;
        got.push((
            publish.topic.to_string(),
            String::from_utf8_lossy(&publish.payload).into_owned(),
            publish.retain,
            publish.qos,
        ));
    }
    got.sort();
    got
}

/// A later subscriber receives the newest retained message of each
/// matching name, flagged retained, at the lower QoS; a name's empty
/// retained payload deletes it; a message published without retain does
/// not replace it; 3.1.1 and 5.0 alike.
#[tokio::test]
async fn a_late_subscriber_receives_the_newest_retained_messages() {
    bounded(async {
        let broker = MqttBroker::start().await;
        let mut sensor = broker.connect(Version::V5, "sensor").await;
        publish_acked(
            &mut sensor,
            retained("city/north/temp", QoS::AtLeastOnce, 1, "10"),
        )
        .await;
        publish_acked(
            &mut sensor,
            retained("city/north/temp", QoS::AtLeastOnce, 2, "11"),
        )
        .await;
        publish_acked(
            &mut sensor,
            retained("city/south/temp", QoS::AtLeastOnce, 3, "20"),
        )
        .await;
        publish_acked(
            &mut sensor,
            retained("city/east/temp", QoS::AtLeastOnce, 4, "30"),
        )
        .await;
        // Not retained: delivered live, but the retained message stays.
        publish_acked(
            &mut sensor,
            publish("city/south/temp", QoS::AtLeastOnce, 5, "21"),
        )
        .await;
        // An empty retained payload deletes east's.
        publish_acked(
            &mut sensor,
            retained("city/east/temp", QoS::AtLeastOnce, 6, ""),
        )
        .await;
        publish_acked(&mut sensor, retained("other/x", QoS::AtLeastOnce, 7, "o")).await;

        for (version, id) in [(Version::V5, "late-5"), (Version::V3_1_1, "late-3")] {
            let mut late = broker.connect(version, id).await;
            let reasons = subscribe_with(
                &mut late,
                1,
                "city/+/temp",
                QoS::AtLeastOnce,
                RetainHandling::SendAtSubscribe,
                None,
            )
            .await;
            assert_eq!(reasons, [ReasonCode(1)]);
            assert_eq!(
                received(&mut late, 2).await,
                vec![
                    (
                        "city/north/temp".into(),
                        "11".into(),
                        true,
                        QoS::AtLeastOnce
                    ),
                    (
                        "city/south/temp".into(),
                        "20".into(),
                        true,
                        QoS::AtLeastOnce
                    ),
                ],
                "{version:?}"
            );
            assert!(late.silent_for(std::time::Duration::from_millis(300)).await);
        }

        // At QoS 0 the retained messages come at QoS 0.
        let mut cheap = broker.connect(Version::V5, "cheap").await;
        subscribe_with(
            &mut cheap,
            1,
            "city/north/#",
            QoS::AtMostOnce,
            RetainHandling::SendAtSubscribe,
            Some(9),
        )
        .await;
        let message = cheap.recv_publish().await;
        assert_eq!((message.qos, message.retain), (QoS::AtMostOnce, true));
        assert_eq!(message.properties.subscription_identifiers, vec![9]);

        // The retained messages are records of the compacted topic, the
        // deletion a tombstone of its name.
        let records = read_topic(&broker.client, RETAINED_TOPIC).await;
        let east: Vec<bool> = records
            .iter()
            .filter(|r| r.key.as_deref() == Some(&b"city/east/temp"[..]))
            .map(|r| r.tombstone)
            .collect();
        assert_eq!(east, vec![false, true]);
        let topics = broker.client.admin().list_topics().await.expect("topics");
        let topic = topics
            .iter()
            .find(|t| t.name == RETAINED_TOPIC)
            .expect("the retained topic");
        assert_eq!(topic.config.cleanup, citystream_protocol::Cleanup::Compact);
    })
    .await;
}

/// Retain handling 1 sends retained messages only for a new
/// subscription, 2 never; a live retained publish reaches a subscriber
/// without the retain flag unless it asked for retain-as-published.
#[tokio::test]
async fn retain_handling_and_retain_as_published() {
    bounded(async {
        let broker = MqttBroker::start().await;
        let mut sensor = broker.connect(Version::V5, "sensor").await;
        publish_acked(
            &mut sensor,
            retained("home/door", QoS::AtLeastOnce, 1, "open"),
        )
        .await;

        let mut client = broker.connect(Version::V5, "handling").await;
        subscribe_with(
            &mut client,
            1,
            "home/#",
            QoS::AtLeastOnce,
            RetainHandling::DoNotSend,
            None,
        )
        .await;
        assert!(
            client
                .silent_for(std::time::Duration::from_millis(300))
                .await
        );
        // Already subscribed: "if new" sends nothing.
        subscribe_with(
            &mut client,
            2,
            "home/#",
            QoS::AtLeastOnce,
            RetainHandling::SendAtSubscribeIfNew,
            None,
        )
        .await;
        assert!(
            client
                .silent_for(std::time::Duration::from_millis(300))
                .await
        );
        subscribe_with(
            &mut client,
            3,
            "home/+",
            QoS::AtLeastOnce,
            RetainHandling::SendAtSubscribeIfNew,
            None,
        )
        .await;
        let message = client.recv_publish().await;
        assert_eq!(
            (message.topic.as_str(), message.retain),
            ("home/door", true)
        );
        answer(&mut client, &message).await;

        // Live: retain cleared for a subscription without retain as
        // published [MQTT-3.3.1-12].
        publish_acked(
            &mut sensor,
            retained("home/door", QoS::AtLeastOnce, 2, "closed"),
        )
        .await;
        let live = client.recv_publish().await;
        assert_eq!(
            (live.payload.as_ref(), live.retain),
            (&b"closed"[..], false)
        );
    })
    .await;
}

async fn answer(client: &mut TestClient, message: &Publish) {
    if let Some(id) = message.packet_id {
        client.send(Packet::PubAck(common::ack(id.get()))).await;
    }
}

/// A record written over the native protocol to the retained topic is a
/// retained message too (the topic is the store, not a cache).
#[tokio::test]
async fn the_retained_topic_is_the_store() {
    bounded(async {
        let broker = MqttBroker::start().await;
        let mut sensor = broker.connect(Version::V5, "sensor").await;
        publish_acked(&mut sensor, retained("lab/a", QoS::AtLeastOnce, 1, "1")).await;
        let producer = broker
            .client
            .producer(Default::default())
            .expect("producer");
        let record = ProducerRecord::tombstone(RETAINED_TOPIC, "lab/a");
        producer
            .send(record)
            .await
            .expect("send")
            .await
            .expect("written");
        publish_acked(&mut sensor, retained("lab/b", QoS::AtLeastOnce, 2, "2")).await;
        let mut late = broker.connect(Version::V5, "late").await;
        subscribe_with(
            &mut late,
            1,
            "lab/#",
            QoS::AtLeastOnce,
            RetainHandling::SendAtSubscribe,
            None,
        )
        .await;
        let message = late.recv_publish().await;
        assert_eq!(message.topic.as_str(), "lab/b");
        assert!(late.silent_for(std::time::Duration::from_millis(300)).await);
    })
    .await;
}
