//! The client against the real MQTT server over an in-memory broker
//! (citystream-testkit + citystream-mqtt, as crates/mqtt/tests does):
//! round trips at every QoS and both versions, the publish window at the
//! broker's Receive Maximum, automatic acknowledgement of deliveries, a
//! persistent session resumed with what it missed, and a publisher that
//! reconnects to another listener when its own shuts down.

use bytes::Bytes;
use citystream_mqtt::{MqttConfig, MqttServer};
use citystream_mqtt_client::{
    ConnectOptions, Messages, MqttClient, Publish, QoS, ReasonCode, ReconnectOptions, Version,
};
use citystream_mqtt_codec::Limits;
use citystream_testkit::{TestBroker, bounded};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// An in-memory broker with an MQTT listener; stops when dropped.
struct Broker {
    _native: TestBroker,
    address: String,
    shutdown: CancellationToken,
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// An MQTT listener over `native` (one of several, as the nodes of a
/// cluster); returns its address and what shuts it down.
async fn serve_mqtt(native: &TestBroker, config: MqttConfig) -> (String, CancellationToken) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind MQTT");
    let address = listener.local_addr().expect("bound").to_string();
    let shutdown = CancellationToken::new();
    let server =
        MqttServer::new(native.client().await, config, shutdown.clone()).expect("an MQTT server");
    tokio::spawn(server.serve(listener));
    (address, shutdown)
}

impl Broker {
    async fn start(config: MqttConfig) -> Broker {
        let native = TestBroker::start().await;
        let (address, shutdown) = serve_mqtt(&native, config).await;
        Broker {
            _native: native,
            address,
            shutdown,
        }
    }

    async fn connect(&self, options: ConnectOptions) -> MqttClient {
        let (client, connack) = MqttClient::connect(&self.address, options)
            .await
            .expect("connect");
        assert_eq!(connack.reason, ReasonCode::SUCCESS);
        client
    }
}

/// A subscriber of `filter` at `qos` and its messages.
async fn subscriber(
    broker: &Broker,
    options: ConnectOptions,
    filter: &str,
    qos: QoS,
) -> (MqttClient, Messages) {
    let mut client = broker.connect(options).await;
    let reasons = client.subscribe(&[(filter, qos)]).await.expect("SUBACK");
    assert_eq!(reasons, [ReasonCode(qos as u8)]);
    let messages = client.take_messages().expect("messages taken once");
    (client, messages)
}

async fn receive(messages: &mut Messages, count: usize) -> Vec<Publish> {
    let mut received = Vec::with_capacity(count);
    while received.len() < count {
        received.push(messages.recv().await.expect("a message"));
    }
    received
}

/// A message at each QoS reaches a subscriber at that QoS, with its topic
/// and payload, and each publish resolves successfully; in both versions.
#[tokio::test]
async fn every_qos_round_trips() {
    bounded(async {
        let broker = Broker::start(MqttConfig::default()).await;
        for version in [Version::V3_1_1, Version::V5] {
            let (listener, mut messages) = subscriber(
                &broker,
                ConnectOptions::new(version, format!("listener-{version:?}")),
                "city/+/air",
                QoS::ExactlyOnce,
            )
            .await;
            let device = broker
                .connect(ConnectOptions::new(version, format!("sensor-{version:?}")))
                .await;
            let qualities = [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce];
            for qos in qualities {
                let payload = Bytes::from(format!("{qos:?}"));
                let outcome = device.publish("city/north/air", payload, qos).await;
                assert!(!outcome.expect("queued").await.unwrap().is_error());
            }
            let mut received: Vec<(QoS, String)> = receive(&mut messages, 3)
                .await
                .into_iter()
                .map(|publish| {
                    assert_eq!(publish.topic.as_str(), "city/north/air");
                    let payload = String::from_utf8(publish.payload.to_vec()).unwrap();
                    (publish.qos, payload)
                })
                .collect();
            received.sort();
            let expected: Vec<(QoS, String)> = qualities
                .iter()
                .map(|&qos| (qos, format!("{qos:?}")))
                .collect();
            assert_eq!(received, expected);
            device.disconnect().await.expect("DISCONNECT");
            listener.disconnect().await.expect("DISCONNECT");
        }
    })
    .await;
}

/// QoS 0 messages handed over together arrive in order; a batch with one
/// message larger than the broker accepts is refused whole, and nothing
/// of it is sent.
#[tokio::test]
async fn messages_published_together_arrive_in_order_or_not_at_all() {
    bounded(async {
        let config = MqttConfig {
            limits: Limits {
                max_packet_bytes: 1024,
                ..Limits::default()
            },
            ..MqttConfig::default()
        };
        let broker = Broker::start(config).await;
        let options = |id: &str| ConnectOptions::new(Version::V5, id.to_owned());
        let (_listener, mut messages) =
            subscriber(&broker, options("listener"), "row/#", QoS::AtMostOnce).await;
        let device = broker.connect(options("gateway")).await;
        let texts = |texts: &[&str]| -> Vec<Bytes> {
            texts
                .iter()
                .map(|text| Bytes::from(text.to_string()))
                .collect()
        };
        let written = device.publish_all("row/a", texts(&["1", "2", "3"])).await;
        assert!(!written.expect("queued").await.unwrap().is_error());
        let big = "x".repeat(2048);
        let refused = device.publish_all("row/a", texts(&["4", &big])).await;
        assert!(refused.is_err() || refused.unwrap().await.is_err());
        let written = device.publish_all("row/a", texts(&["5"])).await;
        assert!(!written.expect("queued").await.unwrap().is_error());
        let received: Vec<String> = receive(&mut messages, 4)
            .await
            .iter()
            .map(|publish| String::from_utf8_lossy(&publish.payload).into_owned())
            .collect();
        assert_eq!(received, ["1", "2", "3", "5"], "4 went nowhere");
    })
    .await;
}

/// With the broker's Receive Maximum at 4, the window is 4 and 300 QoS 1
/// publishes sent without waiting all succeed: one over the maximum would
/// have been answered with DISCONNECT 0x93.
#[tokio::test]
async fn the_publish_window_is_the_brokers_receive_maximum() {
    bounded(async {
        let config = MqttConfig {
            receive_maximum: 4,
            ..MqttConfig::default()
        };
        let broker = Broker::start(config).await;
        let device = broker
            .connect(ConnectOptions::new(Version::V5, "fast-sensor"))
            .await;
        assert_eq!(device.publish_window(), 4);
        let mut outcomes = Vec::new();
        for index in 0..300 {
            let payload = Bytes::from(format!("{index}"));
            let outcome = device.publish("city/fast", payload, QoS::AtLeastOnce).await;
            outcomes.push(outcome.expect("queued"));
        }
        for outcome in outcomes {
            assert!(!outcome.await.expect("acknowledged").is_error());
        }
        device.disconnect().await.expect("DISCONNECT");
    })
    .await;
}

/// A subscriber that lets the broker have only 2 unacknowledged messages
/// still receives 200, in order: the client acknowledges each delivery.
#[tokio::test]
async fn deliveries_are_acknowledged_automatically() {
    bounded(async {
        let broker = Broker::start(MqttConfig::default()).await;
        for qos in [QoS::AtLeastOnce, QoS::ExactlyOnce] {
            let mut options = ConnectOptions::new(Version::V5, format!("slow-{qos:?}"));
            options.receive_maximum = 2;
            options.messages_capacity = 1;
            let (listener, mut messages) = subscriber(&broker, options, "city/slow", qos).await;
            let device = broker
                .connect(ConnectOptions::new(Version::V5, "sensor"))
                .await;
            for index in 0..200u32 {
                let payload = Bytes::from(index.to_be_bytes().to_vec());
                let outcome = device.publish("city/slow", payload, qos).await;
                drop(outcome.expect("queued"));
            }
            let received: Vec<u32> = receive(&mut messages, 200)
                .await
                .iter()
                .map(|publish| u32::from_be_bytes(publish.payload[..].try_into().unwrap()))
                .collect();
            assert_eq!(received, (0..200).collect::<Vec<_>>());
            device.disconnect().await.expect("DISCONNECT");
            listener.disconnect().await.expect("DISCONNECT");
        }
    })
    .await;
}

/// A persistent subscriber that disconnects and comes back finds its
/// session and gets the QoS 1 messages published while it was away.
#[tokio::test]
async fn a_persistent_session_gets_what_it_missed() {
    bounded(async {
        let broker = Broker::start(MqttConfig::default()).await;
        let mut options = ConnectOptions::new(Version::V5, "archive");
        options.clean_start = false;
        options.session_expiry_secs = Some(300);
        let (listener, _) =
            subscriber(&broker, options.clone(), "city/log", QoS::AtLeastOnce).await;
        listener.disconnect().await.expect("DISCONNECT");
        let device = broker
            .connect(ConnectOptions::new(Version::V5, "logger"))
            .await;
        for index in 0..10u8 {
            let outcome = device.publish("city/log", Bytes::from(vec![index]), QoS::AtLeastOnce);
            outcome.await.expect("queued").await.expect("acknowledged");
        }
        let (mut listener, connack) = MqttClient::connect(&broker.address, options)
            .await
            .expect("reconnect");
        assert!(connack.session_present);
        let mut messages = listener.take_messages().expect("messages");
        let received: Vec<u8> = receive(&mut messages, 10)
            .await
            .iter()
            .map(|publish| publish.payload[0])
            .collect();
        assert_eq!(received, (0..10).collect::<Vec<_>>());
        listener.disconnect().await.expect("DISCONNECT");
    })
    .await;
}

/// A persistent QoS 2 publisher given two listeners of one broker (as two
/// nodes) loses the first when it shuts down (DISCONNECT 0x8B) halfway
/// through 40 pipelined publishes: it reconnects to the second, resumes
/// its session, and every publish completes; a subscriber gets each
/// message exactly once, in order.
#[tokio::test]
async fn a_publisher_moves_to_another_listener_and_loses_nothing() {
    bounded(async {
        let native = TestBroker::start().await;
        let (first, first_shutdown) = serve_mqtt(&native, MqttConfig::default()).await;
        let (second, _second_shutdown) = serve_mqtt(&native, MqttConfig::default()).await;
        let (watcher, _) =
            MqttClient::connect(&second, ConnectOptions::new(Version::V5, "watcher"))
                .await
                .expect("connect the watcher");
        let mut watcher = watcher;
        let reasons = watcher
            .subscribe(&[("city/moving", QoS::ExactlyOnce)])
            .await;
        assert_eq!(reasons.expect("SUBACK"), [ReasonCode::GRANTED_QOS_2]);
        let mut messages = watcher.take_messages().expect("messages");

        let mut options = ConnectOptions::new(Version::V5, "moving-sensor");
        options.session_expiry_secs = Some(300);
        options.reconnect = Some(ReconnectOptions {
            backoff_initial_ms: 20,
            backoff_max_ms: 200,
            attempts_max: Some(100),
        });
        let addresses = [first, second];
        let (sensor, _) = MqttClient::connect_any(&addresses, options)
            .await
            .expect("connect the sensor");
        let mut outcomes = Vec::new();
        for index in 0..40u8 {
            if index == 20 {
                first_shutdown.cancel();
            }
            let publish = sensor.publish("city/moving", Bytes::from(vec![index]), QoS::ExactlyOnce);
            outcomes.push(publish.await.expect("queued"));
        }
        for outcome in outcomes {
            assert!(!outcome.await.expect("acknowledged").is_error());
        }
        assert_eq!(sensor.reconnects(), 1);
        let received: Vec<u8> = receive(&mut messages, 40)
            .await
            .iter()
            .map(|publish| publish.payload[0])
            .collect();
        assert_eq!(received, (0..40).collect::<Vec<_>>());
        let extra = tokio::time::timeout(std::time::Duration::from_millis(500), messages.recv());
        assert!(extra.await.is_err(), "no message twice");
        sensor.disconnect().await.expect("DISCONNECT");
        watcher.disconnect().await.expect("DISCONNECT");
    })
    .await;
}
