//! The MQTT tests' harness: an in-memory broker with an MQTT listener over
//! its native client, and a small MQTT client built on our codec (client
//! role) that sends and reads single packets.

#![allow(dead_code)]

use std::num::NonZeroU16;
use std::time::Duration;

use bytes::Bytes;
use citystream_client::Client;
use citystream_mqtt::{MqttConfig, MqttServer};
use citystream_mqtt_codec::{
    Ack, AckProperties, ByteStr, ConnAck, Connect, ConnectProperties, Limits, MqttCodec, Packet,
    Publish, PublishProperties, QoS, ReasonCode, RetainHandling, SubAck, Subscribe,
    SubscriptionOptions, Version,
};
use citystream_testkit::{BrokerConfig, TestBroker};
use futures::{SinkExt as _, StreamExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;

/// How long a test waits for one packet.
pub const PACKET_WAIT: Duration = Duration::from_secs(10);

/// A broker with an MQTT listener; stops when dropped.
pub struct MqttBroker {
    pub broker: TestBroker,
    pub client: Client,
    pub address: String,
    shutdown: CancellationToken,
}

impl Drop for MqttBroker {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl MqttBroker {
    pub async fn start() -> MqttBroker {
        MqttBroker::start_with(MqttConfig::default()).await
    }

    pub async fn start_with(config: MqttConfig) -> MqttBroker {
        MqttBroker::start_on(BrokerConfig::default(), config).await
    }

    /// An MQTT server over a broker with `broker` settings.
    pub async fn start_on(broker: BrokerConfig, config: MqttConfig) -> MqttBroker {
        let broker = TestBroker::start_with(broker).await;
        let client = broker.client().await;
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind MQTT");
        let address = listener.local_addr().expect("bound").to_string();
        let shutdown = CancellationToken::new();
        let server = MqttServer::new(client.clone(), config, shutdown.clone()).expect("server");
        tokio::spawn(server.serve(listener));
        MqttBroker {
            broker,
            client,
            address,
            shutdown,
        }
    }

    /// Another MQTT server over the same broker, as another node would
    /// serve: its address and the token that stops it.
    pub async fn another_server(&self) -> (String, CancellationToken) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind MQTT");
        let address = listener.local_addr().expect("bound").to_string();
        let stop = self.shutdown.child_token();
        let server = MqttServer::new(self.client.clone(), MqttConfig::default(), stop.clone())
            .expect("server");
        tokio::spawn(server.serve(listener));
        (address, stop)
    }

    /// A v5 client "watcher" subscribed to `filter` at QoS 1 (SUBACK seen).
    pub async fn watcher(&self, filter: &str) -> TestClient {
        let mut watcher = self.connect(Version::V5, "watcher").await;
        let granted = watcher.subscribe_to(filter, QoS::AtLeastOnce).await;
        assert_eq!(granted.reasons, [ReasonCode(1)]);
        watcher
    }

    pub async fn connect(&self, version: Version, client_id: &'static str) -> TestClient {
        let (client, ack) = TestClient::connect(&self.address, connect(version, client_id)).await;
        assert_eq!(ack.reason.0, 0, "CONNACK {ack:?}");
        client
    }
}

/// A CONNECT with a clean start and a 30 s keep alive.
pub fn connect(version: Version, client_id: &'static str) -> Connect {
    Connect {
        version,
        clean_start: true,
        keep_alive_secs: 30,
        properties: ConnectProperties::default(),
        client_id: ByteStr::from(client_id),
        will: None,
        username: None,
        password: None,
    }
}

/// A successful PUBACK/PUBREC/PUBREL/PUBCOMP body for packet `id`.
pub fn ack(id: u16) -> Ack {
    Ack {
        packet_id: NonZeroU16::new(id).expect("a packet id"),
        reason: ReasonCode::SUCCESS,
        properties: AckProperties::default(),
    }
}

pub fn publish(topic: &str, qos: QoS, packet_id: u16, payload: &'static str) -> Publish {
    Publish {
        dup: false,
        qos,
        retain: false,
        topic: ByteStr::from(topic.to_owned()),
        packet_id: NonZeroU16::new(packet_id),
        properties: PublishProperties::default(),
        payload: Bytes::from_static(payload.as_bytes()),
    }
}

/// `publish` with RETAIN set.
pub fn retained(topic: &str, qos: QoS, packet_id: u16, payload: &'static str) -> Publish {
    Publish {
        retain: true,
        ..publish(topic, qos, packet_id, payload)
    }
}

/// Publishes `message` and waits for its PUBACK (QoS 1).
pub async fn publish_acked(client: &mut TestClient, message: Publish) {
    let id = message.packet_id.expect("QoS 1").get();
    client.send(Packet::Publish(message)).await;
    match client.recv().await {
        Packet::PubAck(ack) => {
            assert_eq!((ack.packet_id.get(), ack.reason), (id, ReasonCode::SUCCESS))
        }
        other => panic!("expected PUBACK, got {other:?}"),
    }
}

pub fn subscribe(packet_id: u16, filters: &[(&str, QoS)], identifier: Option<u32>) -> Subscribe {
    Subscribe {
        packet_id: NonZeroU16::new(packet_id).expect("a packet id"),
        subscription_identifier: identifier,
        user_properties: Vec::new(),
        filters: filters
            .iter()
            .map(|(filter, qos)| {
                let options = SubscriptionOptions {
                    qos: *qos,
                    no_local: false,
                    retain_as_published: false,
                    retain_handling: RetainHandling::SendAtSubscribe,
                };
                (ByteStr::from((*filter).to_owned()), options)
            })
            .collect(),
    }
}

/// One MQTT client connection.
pub struct TestClient {
    framed: Framed<TcpStream, MqttCodec>,
}

impl TestClient {
    /// Connects and sends `connect`; the client and the CONNACK.
    pub async fn connect(address: &str, connect: Connect) -> (TestClient, ConnAck) {
        let stream = TcpStream::connect(address).await.expect("connect to MQTT");
        let codec = MqttCodec::client(connect.version, Limits::default());
        let mut client = TestClient {
            framed: Framed::new(stream, codec),
        };
        client.send(Packet::Connect(Box::new(connect))).await;
        match client.recv().await {
            Packet::ConnAck(ack) => (client, ack),
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }

    /// A TCP connection that has sent nothing yet.
    pub async fn open(address: &str, version: Version) -> TestClient {
        let stream = TcpStream::connect(address).await.expect("connect to MQTT");
        TestClient {
            framed: Framed::new(stream, MqttCodec::client(version, Limits::default())),
        }
    }

    /// Subscribes to one filter (packet id 1) and returns the SUBACK.
    pub async fn subscribe_to(&mut self, filter: &str, qos: QoS) -> SubAck {
        self.send(Packet::Subscribe(subscribe(1, &[(filter, qos)], None)))
            .await;
        match self.recv().await {
            Packet::SubAck(suback) => suback,
            other => panic!("expected SUBACK, got {other:?}"),
        }
    }

    pub async fn send(&mut self, packet: Packet) {
        self.framed.send(packet).await.expect("send a packet");
    }

    /// Sends `packets` in one write (a client's burst).
    pub async fn send_all(&mut self, packets: Vec<Packet>) {
        for packet in packets {
            self.framed.feed(packet).await.expect("queue a packet");
        }
        futures::SinkExt::<Packet>::flush(&mut self.framed)
            .await
            .expect("send the packets");
    }

    /// Writes raw bytes (malformed packets).
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        use tokio::io::AsyncWriteExt as _;
        self.framed.get_mut().write_all(bytes).await.expect("write");
    }

    /// The next packet; panics on close or after [`PACKET_WAIT`].
    pub async fn recv(&mut self) -> Packet {
        match tokio::time::timeout(PACKET_WAIT, self.framed.next()).await {
            Ok(Some(Ok(packet))) => packet,
            other => panic!("expected a packet, got {other:?}"),
        }
    }

    /// The next PUBLISH, answering nothing.
    pub async fn recv_publish(&mut self) -> Publish {
        match self.recv().await {
            Packet::Publish(publish) => publish,
            other => panic!("expected PUBLISH, got {other:?}"),
        }
    }

    /// Whether the server closes the connection (after any packets it
    /// sends first, which are returned) within [`PACKET_WAIT`].
    pub async fn closed(&mut self) -> (bool, Vec<Packet>) {
        let mut before = Vec::new();
        loop {
            match tokio::time::timeout(PACKET_WAIT, self.framed.next()).await {
                Ok(Some(Ok(packet))) => before.push(packet),
                Ok(Some(Err(_))) | Ok(None) => return (true, before),
                Err(_) => return (false, before),
            }
        }
    }

    /// No packet arrives within `wait`.
    pub async fn silent_for(&mut self, wait: Duration) -> bool {
        tokio::time::timeout(wait, self.framed.next())
            .await
            .is_err()
    }
}
