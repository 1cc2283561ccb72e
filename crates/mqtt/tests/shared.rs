//! Shared subscriptions: the sessions of one share split its messages,
//! each message to one of them, none lost, as members of a consumer group.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use citystream_mqtt::MqttConfig;
use citystream_mqtt_codec::{Packet, QoS, ReasonCode, Version};
use citystream_testkit::bounded;
use common::{MqttBroker, TestClient, ack, publish, subscribe};

const SHARE: &str = "$share/workers/jobs/#";
const GROUP: &str = "mqtt-share/workers/jobs/#";
const MESSAGES: usize = 40;

/// Waits until the share's group has `count` members, each with some of
/// the 4 partitions.
async fn wait_for_members(broker: &MqttBroker, count: usize) {
    let admin = broker.client.admin();
    loop {
        if let Ok(group) = admin.describe_group(GROUP).await {
            let assigned: usize = group.members.iter().map(|m| m.assignment.len()).sum();
            let balanced = group.members.iter().all(|m| !m.assignment.is_empty());
            if group.members.len() == count && assigned == 4 && balanced {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Takes every message `client` gets within a quiet spell, acknowledging each.
async fn drain(client: &mut TestClient) -> Vec<String> {
    let mut payloads = Vec::new();
    while let Ok(packet) = tokio::time::timeout(Duration::from_millis(1_500), client.recv()).await {
        if let Packet::Publish(message) = packet {
            payloads.push(String::from_utf8(message.payload.to_vec()).unwrap());
            if let Some(id) = message.packet_id {
                client.send(Packet::PubAck(ack(id.get()))).await;
            }
        }
    }
    payloads
}

/// Two sessions of one share get disjoint parts of the messages that
/// together are all of them; a plain subscriber gets every one.
#[tokio::test]
async fn a_share_splits_its_messages_without_loss() {
    bounded(async {
        let config = MqttConfig {
            stream_partitions: 4,
            ..MqttConfig::default()
        };
        let broker = MqttBroker::start_with(config).await;
        let mut workers = Vec::new();
        for client_id in ["worker-a", "worker-b"] {
            let mut worker = broker.connect(Version::V5, client_id).await;
            worker
                .send(Packet::Subscribe(subscribe(
                    1,
                    &[(SHARE, QoS::AtLeastOnce)],
                    None,
                )))
                .await;
            assert!(
                matches!(worker.recv().await, Packet::SubAck(s) if s.reasons == [ReasonCode(1)])
            );
            workers.push(worker);
        }
        let mut watcher = broker.connect(Version::V5, "watcher").await;
        watcher
            .send(Packet::Subscribe(subscribe(
                1,
                &[("jobs/#", QoS::AtMostOnce)],
                None,
            )))
            .await;
        watcher.recv().await;
        wait_for_members(&broker, 2).await;

        let mut device = broker.connect(Version::V5, "dispatcher").await;
        for job in 1..=MESSAGES {
            let topic = format!("jobs/{job}");
            device
                .send(Packet::Publish(publish(
                    &topic,
                    QoS::AtLeastOnce,
                    job as u16,
                    "x",
                )))
                .await;
            assert!(matches!(device.recv().await, Packet::PubAck(_)));
        }
        // The topic tells the jobs apart.
        let a = drain_topics(&mut workers[0]).await;
        let b = drain_topics(&mut workers[1]).await;
        assert!(
            a.is_disjoint(&b),
            "each message to one worker: {a:?} / {b:?}"
        );
        let all: BTreeSet<String> = a.union(&b).cloned().collect();
        let expected: BTreeSet<String> = (1..=MESSAGES).map(|job| format!("jobs/{job}")).collect();
        assert_eq!(all, expected, "none lost");
        assert!(!a.is_empty() && !b.is_empty(), "both workers got a share");
        assert_eq!(
            drain(&mut watcher).await.len(),
            MESSAGES,
            "a plain subscription gets them all"
        );
    })
    .await;
}

async fn drain_topics(client: &mut TestClient) -> BTreeSet<String> {
    let mut topics = BTreeSet::new();
    while let Ok(packet) = tokio::time::timeout(Duration::from_millis(1_500), client.recv()).await {
        if let Packet::Publish(message) = packet {
            assert!(
                topics.insert(message.topic.to_string()),
                "{} twice",
                message.topic
            );
            if let Some(id) = message.packet_id {
                client.send(Packet::PubAck(ack(id.get()))).await;
            }
        }
    }
    topics
}
