//! Wills with a Will Delay across nodes (two MQTT servers over one broker
//! act as two nodes): a reconnect on any node within the delay cancels the
//! will, a clean start ends the session and publishes it at once, and a
//! will whose node is gone is published by another node at its deadline,
//! unless the client came back.

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use citystream_client::tail::Fold;
use citystream_client::{ConsumerRecord, ProducerRecord, partition_for_key};
use citystream_mqtt::SESSIONS_TOPIC;
use citystream_mqtt::session::{
    GENERATION_HEADER, Generation, OwnerNode, SessionFold, SessionRecord, StoredWill, session_key,
};
use citystream_mqtt_codec::{ByteStr, Connect, Packet, QoS, Will, WillProperties};
use citystream_testkit::{bounded, read_topic};
use common::{MqttBroker, TestClient, ack, connect};

/// The session's expiry: well beyond every delay here.
const EXPIRY_SECS: u32 = 60;
/// How long a test waits for the sessions topic to show a step.
const STEP_WAIT: Duration = Duration::from_secs(15);

/// A v5 CONNECT of `client_id` with a session expiry and a will to
/// `status/<client_id>` delayed by `delay_secs`.
fn with_delayed_will(client_id: &'static str, delay_secs: u32, clean_start: bool) -> Connect {
    let mut asked = connect(citystream_mqtt_codec::Version::V5, client_id);
    asked.clean_start = clean_start;
    asked.properties.session_expiry_interval_secs = Some(EXPIRY_SECS);
    asked.will = Some(Will {
        qos: QoS::AtLeastOnce,
        retain: false,
        topic: ByteStr::from(format!("status/{client_id}")),
        payload: Bytes::from_static(b"gone"),
        properties: WillProperties {
            will_delay_interval_secs: Some(delay_secs),
            ..WillProperties::default()
        },
    });
    asked
}

fn now_ms() -> i64 {
    let elapsed = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    i64::try_from(elapsed.as_millis()).unwrap()
}

/// The wills of `client_id` in the log.
async fn wills_in_log(broker: &MqttBroker, client_id: &str) -> Vec<ConsumerRecord> {
    let key = format!("status/{client_id}");
    let records = read_topic(&broker.client, "mqtt.status").await;
    records
        .into_iter()
        .filter(|record| record.key.as_deref() == Some(key.as_bytes()))
        .collect()
}

/// The session of `client_id` as the sessions topic holds it (folded as
/// every node folds it).
async fn last_session(broker: &MqttBroker, client_id: &str) -> Option<SessionRecord> {
    let records = read_topic(&broker.client, SESSIONS_TOPIC).await;
    let mut fold = SessionFold::default();
    for record in &records {
        fold.apply(record);
    }
    fold.get(client_id)?.record.clone()
}

/// Waits (bounded) until the session of `client_id` passes
/// `check`, and returns it.
async fn session_until(
    broker: &MqttBroker,
    client_id: &str,
    check: impl Fn(&SessionRecord) -> bool,
) -> SessionRecord {
    let deadline = Instant::now() + STEP_WAIT;
    loop {
        if let Some(record) = last_session(broker, client_id).await
            && check(&record)
        {
            return record;
        }
        assert!(Instant::now() < deadline, "the session never got there");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `client_id`'s connection ended and its will waits out its
/// delay; returns when it is due (ms since the epoch).
async fn will_waits(broker: &MqttBroker, client_id: &str) -> i64 {
    let record = session_until(broker, client_id, |r| r.will_at_ms.is_some()).await;
    assert!(!record.connected && record.will.is_some());
    record.will_at_ms.unwrap()
}

/// Connects `client_id` with a delayed will to the listener at `address`,
/// then closes its socket without DISCONNECT; returns when the will is due.
async fn connect_and_vanish(broker: &MqttBroker, address: &str, client_id: &'static str) -> i64 {
    let asked = with_delayed_will(client_id, 2, true);
    let (device, _) = TestClient::connect(address, asked).await;
    drop(device);
    will_waits(broker, client_id).await
}

/// A client that reconnects to another node within its will delay (its
/// first node still running) cancels the will: none is ever published.
#[tokio::test]
async fn a_reconnect_on_another_node_cancels_the_delayed_will() {
    bounded(async {
        let broker = MqttBroker::start().await;
        let (other, _stop) = broker.another_server().await;
        let mut watcher = broker.watcher("status/#").await;
        let due_ms = connect_and_vanish(&broker, &broker.address, "roamer").await;
        let (_back, connack) =
            TestClient::connect(&other, with_delayed_will("roamer", 2, false)).await;
        assert!(connack.session_present);
        assert!(now_ms() < due_ms, "reconnected within the delay");
        let past_due = Duration::from_millis(u64::try_from(due_ms - now_ms()).unwrap() + 1_500);
        assert!(watcher.silent_for(past_due).await, "no will arrived");
        assert!(wills_in_log(&broker, "roamer").await.is_empty());
    })
    .await;
}

/// Without a reconnect, a delayed will is published once, when its delay
/// has passed and not before.
#[tokio::test]
async fn without_a_reconnect_the_delayed_will_is_published_after_its_delay() {
    bounded(async {
        let broker = MqttBroker::start().await;
        let mut watcher = broker.watcher("status/#").await;
        let (device, _) =
            TestClient::connect(&broker.address, with_delayed_will("quiet", 2, true)).await;
        let closed = Instant::now();
        drop(device);
        let will = watcher.recv_publish().await;
        assert!(
            closed.elapsed() >= Duration::from_millis(1_900),
            "published after {:?}",
            closed.elapsed()
        );
        assert_eq!(
            (will.topic.as_str(), &will.payload[..]),
            ("status/quiet", &b"gone"[..])
        );
        watcher
            .send(Packet::PubAck(ack(will.packet_id.unwrap().get())))
            .await;
        assert!(watcher.silent_for(Duration::from_millis(500)).await);
        assert_eq!(wills_in_log(&broker, "quiet").await.len(), 1);
    })
    .await;
}

/// A reconnect with a clean start on another node ends the session whose
/// will waits: the will is in the log before the CONNACK, long before its
/// delay would have passed, and the first node does not publish it again.
#[tokio::test]
async fn a_clean_start_on_another_node_publishes_the_waiting_will_at_once() {
    bounded(async {
        let broker = MqttBroker::start().await;
        let (other, _stop) = broker.another_server().await;
        let due_ms = connect_and_vanish(&broker, &broker.address, "fresh").await;
        let (_back, connack) =
            TestClient::connect(&other, with_delayed_will("fresh", 2, true)).await;
        assert!(!connack.session_present);
        assert_eq!(wills_in_log(&broker, "fresh").await.len(), 1);
        assert!(now_ms() < due_ms, "published before its delay passed");
        let past_due = u64::try_from(due_ms - now_ms()).unwrap() + 1_500;
        tokio::time::sleep(Duration::from_millis(past_due)).await;
        assert_eq!(wills_in_log(&broker, "fresh").await.len(), 1, "once");
    })
    .await;
}

/// Writes, as a node that has since restarted would have left it, the
/// record of `client_id`'s disconnected session whose will waits until
/// `due_ms`.
async fn leave_an_orphaned_will(broker: &MqttBroker, client_id: &str, due_ms: i64) {
    let status = broker.client.admin().cluster_status().await.unwrap();
    let generation = Generation {
        counter: 1,
        owner: "a-node-that-restarted".to_owned(),
    };
    let will = StoredWill {
        topic: format!("status/{client_id}"),
        payload: "Z29uZQ==".to_owned(), // "gone"
        qos: 1,
        retain: false,
        delay_secs: 5,
        message_expiry_secs: None,
        content_type: None,
        response_topic: None,
        correlation_data: None,
        payload_utf8: false,
        user_properties: Vec::new(),
    };
    let record = SessionRecord {
        generation: generation.clone(),
        connected: false,
        expiry_secs: EXPIRY_SECS,
        updated_ms: now_ms(),
        subscriptions: Vec::new(),
        positions: Vec::new(),
        inflight: Vec::new(),
        inbound: Vec::new(),
        inbound_counter: 0,
        owner_node: Some(OwnerNode {
            node_id: status.node_id,
            generation: 1, // not this node's run: it restarted since
        }),
        will: Some(will),
        will_at_ms: Some(due_ms),
        written_ms: None,
        queued_retained: Vec::new(),
    };
    // The MQTT server makes its sessions topic as it starts.
    let deadline = Instant::now() + STEP_WAIT;
    let partitions = loop {
        if let Some(count) = broker.client.partition_count(SESSIONS_TOPIC).await.unwrap() {
            break count;
        }
        assert!(Instant::now() < deadline, "no sessions topic");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut produced = ProducerRecord::new(SESSIONS_TOPIC, record.to_json())
        .with_key(session_key(client_id, &generation));
    produced.partition = Some(partition_for_key(client_id.as_bytes(), partitions));
    let generation = serde_json::to_vec(&generation).unwrap();
    produced
        .headers
        .push((GENERATION_HEADER.to_owned(), Bytes::from(generation)));
    let producer = broker.client.producer(Default::default()).unwrap();
    producer.send(produced).await.unwrap().await.unwrap();
}

/// A will that waited out its delay on a node that restarted (so its wait
/// is gone) is published by a node that adopts the session, once, and not
/// before it was due.
#[tokio::test]
async fn a_will_waiting_on_a_restarted_node_is_published_at_its_deadline() {
    bounded(async {
        let broker = MqttBroker::start().await;
        let mut watcher = broker.watcher("status/#").await;
        let due_ms = now_ms() + 5_000;
        leave_an_orphaned_will(&broker, "orphan", due_ms).await;
        let will = watcher.recv_publish().await;
        assert!(
            now_ms() >= due_ms,
            "published {} ms early",
            due_ms - now_ms()
        );
        assert_eq!(
            (will.topic.as_str(), &will.payload[..]),
            ("status/orphan", &b"gone"[..])
        );
        watcher
            .send(Packet::PubAck(ack(will.packet_id.unwrap().get())))
            .await;
        assert!(watcher.silent_for(Duration::from_millis(500)).await);
        assert_eq!(wills_in_log(&broker, "orphan").await.len(), 1);
    })
    .await;
}

/// A client that reconnects (to any node) after a node adopted its
/// session from a restarted one, but before its will was due, cancels it.
#[tokio::test]
async fn a_reconnect_cancels_a_will_adopted_from_a_restarted_node() {
    bounded(async {
        let broker = MqttBroker::start().await;
        let (other, _stop) = broker.another_server().await;
        let mut watcher = broker.watcher("status/#").await;
        let due_ms = now_ms() + 9_000;
        leave_an_orphaned_will(&broker, "returns", due_ms).await;
        let adopted = |record: &SessionRecord| record.generation.owner.starts_with("orphans:");
        let record = session_until(&broker, "returns", adopted).await;
        assert_eq!(record.will_at_ms, Some(due_ms), "the deadline stays");
        let (_back, connack) =
            TestClient::connect(&other, with_delayed_will("returns", 2, false)).await;
        assert!(connack.session_present);
        assert!(now_ms() < due_ms, "reconnected before the will was due");
        let past_due = Duration::from_millis(u64::try_from(due_ms - now_ms()).unwrap() + 1_500);
        assert!(watcher.silent_for(past_due).await, "no will arrived");
        assert!(wills_in_log(&broker, "returns").await.is_empty());
    })
    .await;
}
