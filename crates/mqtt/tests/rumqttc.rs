//! MQTT 3.1.1 with rumqttc, a Rust client nobody here wrote (decision
//! 0018): QoS 0/1/2 round trips, retained messages to a late subscriber
//! and their deletion, and a persistent session that gets what was
//! published while it was away.

mod common;

use std::time::Duration;

use citystream_testkit::{bounded, read_topic};
use common::MqttBroker;
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, Publish, QoS};

/// How long a test waits for one event.
const EVENT_WAIT: Duration = Duration::from_secs(10);

fn options(broker: &MqttBroker, client_id: &str, clean_session: bool) -> MqttOptions {
    let (host, port) = broker.address.rsplit_once(':').expect("HOST:PORT");
    let mut options = MqttOptions::new(client_id, host, port.parse().expect("a port"));
    options.set_keep_alive(Duration::from_secs(30));
    options.set_clean_session(clean_session);
    options
}

/// A connected client and its event loop (CONNACK seen); whether the
/// broker had its session.
async fn connect(
    broker: &MqttBroker,
    client_id: &str,
    clean: bool,
) -> (AsyncClient, EventLoop, bool) {
    let (client, mut events) = AsyncClient::new(options(broker, client_id, clean), 64);
    loop {
        if let Event::Incoming(Packet::ConnAck(ack)) = next(&mut events).await {
            assert_eq!(ack.code, rumqttc::ConnectReturnCode::Success);
            return (client, events, ack.session_present);
        }
    }
}

async fn next(events: &mut EventLoop) -> Event {
    match tokio::time::timeout(EVENT_WAIT, events.poll()).await {
        Ok(Ok(event)) => event,
        other => panic!("expected an MQTT event, got {other:?}"),
    }
}

/// Polls until the SUBACK, returning its return codes.
async fn subscribed(events: &mut EventLoop) -> Vec<rumqttc::SubscribeReasonCode> {
    loop {
        if let Event::Incoming(Packet::SubAck(ack)) = next(events).await {
            return ack.return_codes;
        }
    }
}

/// Polls until `count` PUBLISH packets arrived (rumqttc acknowledges them).
async fn messages(events: &mut EventLoop, count: usize) -> Vec<Publish> {
    let mut got = Vec::new();
    while got.len() < count {
        if let Event::Incoming(Packet::Publish(publish)) = next(events).await {
            got.push(publish);
        }
    }
    got
}

/// Polls until the publish of packet `kind` (PUBACK or PUBCOMP) arrives.
async fn acknowledged(events: &mut EventLoop, qos: QoS) {
    loop {
        match (next(events).await, qos) {
            (Event::Incoming(Packet::PubAck(_)), QoS::AtLeastOnce) => return,
            (Event::Incoming(Packet::PubComp(_)), QoS::ExactlyOnce) => return,
            (Event::Outgoing(rumqttc::Outgoing::Publish(_)), QoS::AtMostOnce) => return,
            _ => {}
        }
    }
}

fn topic_payload_qos(publish: &Publish) -> (String, String, QoS, bool) {
    let payload = String::from_utf8_lossy(&publish.payload).into_owned();
    (publish.topic.clone(), payload, publish.qos, publish.retain)
}

/// QoS 0, 1 and 2 publishes reach a QoS 2 subscriber at their own QoS and
/// are records of the stream topic, once each.
#[tokio::test]
async fn qos_0_1_2_round_trip() {
    bounded(async {
        let broker = MqttBroker::start().await;
        let (subscriber, mut sub_events, _) = connect(&broker, "rumqttc-sub", true).await;
        subscriber
            .subscribe("city/+/air", QoS::ExactlyOnce)
            .await
            .expect("subscribe");
        assert_eq!(subscribed(&mut sub_events).await.len(), 1);

        let (publisher, mut pub_events, _) = connect(&broker, "rumqttc-pub", true).await;
        for (n, qos) in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce]
            .into_iter()
            .enumerate()
        {
            let topic = format!("city/d{n}/air");
            publisher
                .publish(topic, qos, false, format!("pm25 {n}"))
                .await
                .expect("publish");
            acknowledged(&mut pub_events, qos).await;
        }
        let mut got: Vec<_> = messages(&mut sub_events, 3)
            .await
            .iter()
            .map(topic_payload_qos)
            .collect();
        got.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            got,
            vec![
                (
                    "city/d0/air".into(),
                    "pm25 0".into(),
                    QoS::AtMostOnce,
                    false
                ),
                (
                    "city/d1/air".into(),
                    "pm25 1".into(),
                    QoS::AtLeastOnce,
                    false
                ),
                (
                    "city/d2/air".into(),
                    "pm25 2".into(),
                    QoS::ExactlyOnce,
                    false
                ),
            ]
        );
        let records = read_topic(&broker.client, "mqtt.city").await;
        assert_eq!(records.len(), 3, "each message is one record");
    })
    .await;
}

/// A retained message reaches a later subscriber flagged retained; an
/// empty retained payload deletes it, so the next late subscriber gets
/// only the other name's.
#[tokio::test]
async fn retained_messages_reach_late_subscribers_until_deleted() {
    bounded(async {
        let broker = MqttBroker::start().await;
        let (publisher, mut pub_events, _) = connect(&broker, "rumqttc-retainer", true).await;
        for (topic, payload) in [("home/door", "open"), ("home/window", "shut")] {
            publisher
                .publish(topic, QoS::AtLeastOnce, true, payload)
                .await
                .expect("publish");
            acknowledged(&mut pub_events, QoS::AtLeastOnce).await;
        }

        let (late, mut late_events, _) = connect(&broker, "rumqttc-late", true).await;
        late.subscribe("home/#", QoS::AtLeastOnce)
            .await
            .expect("subscribe");
        subscribed(&mut late_events).await;
        let mut got: Vec<_> = messages(&mut late_events, 2)
            .await
            .iter()
            .map(topic_payload_qos)
            .collect();
        got.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            got,
            vec![
                ("home/door".into(), "open".into(), QoS::AtLeastOnce, true),
                ("home/window".into(), "shut".into(), QoS::AtLeastOnce, true),
            ]
        );

        publisher
            .publish("home/door", QoS::AtLeastOnce, true, Vec::<u8>::new())
            .await
            .expect("delete");
        acknowledged(&mut pub_events, QoS::AtLeastOnce).await;
        let (later, mut later_events, _) = connect(&broker, "rumqttc-later", true).await;
        later
            .subscribe("home/#", QoS::AtLeastOnce)
            .await
            .expect("subscribe");
        subscribed(&mut later_events).await;
        let got: Vec<_> = messages(&mut later_events, 1)
            .await
            .iter()
            .map(topic_payload_qos)
            .collect();
        assert_eq!(
            got,
            vec![("home/window".into(), "shut".into(), QoS::AtLeastOnce, true)]
        );
        // Nothing else comes (the deleted name's message is gone).
        let quiet = tokio::time::timeout(Duration::from_millis(500), async {
            loop {
                if let Event::Incoming(Packet::Publish(p)) = next(&mut later_events).await {
                    return p;
                }
            }
        })
        .await;
        assert!(quiet.is_err(), "unexpected {quiet:?}");
    })
    .await;
}

/// A client with clean_session = false subscribes, goes away, and on
/// reconnecting gets session present and every message published while it
/// was away, in order.
#[tokio::test]
async fn a_persistent_session_gets_what_it_missed() {
    bounded(async {
        let broker = MqttBroker::start().await;
        let (client, mut events, present) = connect(&broker, "rumqttc-truck", false).await;
        assert!(!present);
        client
            .subscribe("fleet/#", QoS::AtLeastOnce)
            .await
            .expect("subscribe");
        subscribed(&mut events).await;
        client.disconnect().await.expect("disconnect");
        loop {
            if let Event::Outgoing(rumqttc::Outgoing::Disconnect) = next(&mut events).await {
                break;
            }
        }
        drop(events);

        let (publisher, mut pub_events, _) = connect(&broker, "rumqttc-dispatch", true).await;
        for n in 1..=20 {
            publisher
                .publish("fleet/truck/7", QoS::AtLeastOnce, false, n.to_string())
                .await
                .expect("publish");
            acknowledged(&mut pub_events, QoS::AtLeastOnce).await;
        }

        let (_client, mut events, present) = connect(&broker, "rumqttc-truck", false).await;
        assert!(present, "the broker kept the session");
        let payloads: Vec<u32> = messages(&mut events, 20)
            .await
            .iter()
            .map(|p| {
                String::from_utf8_lossy(&p.payload)
                    .parse()
                    .expect("a number")
            })
            .collect();
        assert_eq!(payloads, (1..=20).collect::<Vec<_>>());
    })
    .await;
}
