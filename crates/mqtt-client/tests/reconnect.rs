//! Reconnecting against a scripted fake broker (the server side of our
//! codec) that drops the connection at chosen points of the QoS 1/2
//! exchanges: what the client sends on the next connection (DUP, packet
//! ids, PUBREL, order) for session present 1 and 0, publishes made while
//! it is disconnected, the next address of a list, and a refusal that ends
//! the client for good.

use std::num::NonZeroU16;

use bytes::Bytes;
use citystream_mqtt_client::{
    CloseReason, ConnectOptions, MqttClient, MqttClientError, PublishFuture, QoS, ReasonCode,
    ReconnectOptions, Version,
};
use citystream_mqtt_codec::{
    Ack, ConnAck, ConnAckProperties, Connect, Limits, MqttCodec, Packet, Publish,
};
use citystream_testkit::bounded;
use futures::{SinkExt as _, StreamExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::Framed;

type Server = Framed<TcpStream, MqttCodec>;

/// A persistent 5.0 session that reconnects quickly.
fn persistent_options() -> ConnectOptions {
    let mut options = ConnectOptions::new(Version::V5, "meter-1");
    options.session_expiry_secs = Some(300);
    options.reconnect = Some(ReconnectOptions {
        backoff_initial_ms: 10,
        backoff_max_ms: 50,
        attempts_max: Some(50),
    });
    options
}

/// Accepts one connection and reads its CONNECT (not answered yet).
async fn accept_connect(listener: &TcpListener) -> (Server, Box<Connect>) {
    let (stream, _) = listener.accept().await.expect("accept");
    let mut server = Framed::new(stream, MqttCodec::server(Limits::default()));
    match next(&mut server).await {
        Packet::Connect(connect) => (server, connect),
        other => panic!("expected CONNECT, got {other:?}"),
    }
}

async fn connack(server: &mut Server, session_present: bool, reason: ReasonCode) {
    let connack = ConnAck {
        session_present,
        reason,
        properties: ConnAckProperties::default(),
    };
    server
        .send(Packet::ConnAck(connack))
        .await
        .expect("CONNACK");
}

/// Accepts a connection and accepts its CONNECT.
async fn accept(listener: &TcpListener, session_present: bool) -> (Server, Box<Connect>) {
    let (mut server, connect) = accept_connect(listener).await;
    connack(&mut server, session_present, ReasonCode::SUCCESS).await;
    (server, connect)
}

async fn next(server: &mut Server) -> Packet {
    server.next().await.expect("a packet").expect("decodes")
}

async fn next_publish(server: &mut Server) -> Publish {
    match next(server).await {
        Packet::Publish(publish) => publish,
        other => panic!("expected PUBLISH, got {other:?}"),
    }
}

/// A connected client and the server side of its first connection.
async fn connected(listener: &TcpListener) -> (MqttClient, Server) {
    let address = listener.local_addr().unwrap().to_string();
    let connecting = MqttClient::connect(&address, persistent_options());
    let (connected, (server, _)) = tokio::join!(connecting, accept(listener, false));
    (connected.expect("connected").0, server)
}

async fn publish(client: &MqttClient, payload: &'static str, qos: QoS) -> PublishFuture {
    let payload = Bytes::from_static(payload.as_bytes());
    client
        .publish("meters/1", payload, qos)
        .await
        .expect("queued")
}

fn id(publish: &Publish) -> NonZeroU16 {
    publish.packet_id.expect("QoS 1/2 has an id")
}

/// A QoS 1 publish whose connection drops before PUBACK is sent again on
/// the next connection (Clean Start 0, session present 1) with DUP and
/// the same packet id, and its future resolves on that connection's ack;
/// a publish made while disconnected follows it, new (DUP 0), and a QoS 0
/// one made then fails instead of being dropped silently.
#[tokio::test]
async fn an_unacknowledged_qos1_publish_is_resent_with_dup_and_its_id() {
    bounded(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (client, mut server) = connected(&listener).await;
        let first = publish(&client, "first", QoS::AtLeastOnce).await;
        let sent = next_publish(&mut server).await;
        assert!(!sent.dup);
        drop(server);

        // The client is disconnected once it attempts again.
        let (mut server, connect) = accept_connect(&listener).await;
        assert!(!connect.clean_start, "the reconnect resumes the session");
        let offline = publish(&client, "offline", QoS::AtLeastOnce).await;
        let lost = publish(&client, "qos0", QoS::AtMostOnce).await;
        assert!(matches!(lost.await, Err(MqttClientError::NotSent { .. })));
        connack(&mut server, true, ReasonCode::SUCCESS).await;

        let again = next_publish(&mut server).await;
        assert!(again.dup, "a re-send has DUP");
        assert_eq!(id(&again), id(&sent), "under the same packet id");
        assert_eq!(again.payload, sent.payload);
        let new = next_publish(&mut server).await;
        assert!(!new.dup, "never sent before");
        assert_eq!(&new.payload[..], b"offline");
        for publish in [&again, &new] {
            let ack = Packet::PubAck(Ack::success(id(publish)));
            server.send(ack).await.unwrap();
        }
        assert_eq!(first.await.unwrap(), ReasonCode::SUCCESS);
        assert_eq!(offline.await.unwrap(), ReasonCode::SUCCESS);
        assert_eq!(client.reconnects(), 1);
        assert_eq!(client.close_reason(), None);
    })
    .await;
}

/// QoS 2 across a drop with session present 1: the publish that had
/// PUBREC gets its PUBREL again (not the message), the one that had not
/// is sent again with DUP, in the order they were made, same ids; both
/// futures resolve on their PUBCOMP.
#[tokio::test]
async fn qos2_resends_pubrel_after_pubrec_and_publish_before_it() {
    bounded(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (client, mut server) = connected(&listener).await;
        let received = publish(&client, "received", QoS::ExactlyOnce).await;
        let pending = publish(&client, "pending", QoS::ExactlyOnce).await;
        let received_id = id(&next_publish(&mut server).await);
        let pending_id = id(&next_publish(&mut server).await);
        server
            .send(Packet::PubRec(Ack::success(received_id)))
            .await
            .unwrap();
        match next(&mut server).await {
            Packet::PubRel(ack) => assert_eq!(ack.packet_id, received_id),
            other => panic!("expected PUBREL, got {other:?}"),
        }
        drop(server);

        let (mut server, _) = accept(&listener, true).await;
        match next(&mut server).await {
            Packet::PubRel(ack) => assert_eq!(ack.packet_id, received_id),
            other => panic!("expected PUBREL again first, got {other:?}"),
        }
        let again = next_publish(&mut server).await;
        assert!(again.dup && id(&again) == pending_id, "{again:?}");
        server
            .send(Packet::PubComp(Ack::success(received_id)))
            .await
            .unwrap();
        assert_eq!(received.await.unwrap(), ReasonCode::SUCCESS);
        server
            .send(Packet::PubRec(Ack::success(pending_id)))
            .await
            .unwrap();
        assert!(matches!(next(&mut server).await, Packet::PubRel(_)));
        server
            .send(Packet::PubComp(Ack::success(pending_id)))
            .await
            .unwrap();
        assert_eq!(pending.await.unwrap(), ReasonCode::SUCCESS);
    })
    .await;
}

/// With session present 0 the broker lost the session: the QoS 1 publish
/// is sent again as a new one (DUP 0), and the QoS 2 one that had PUBREC
/// is complete (the broker took it; no PUBREL for a session that is
/// gone), so the next packet after the re-sent publish is our DISCONNECT.
#[tokio::test]
async fn without_the_session_publishes_are_sent_again_as_new_ones() {
    bounded(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (client, mut server) = connected(&listener).await;
        let at_least_once = publish(&client, "one", QoS::AtLeastOnce).await;
        let exactly_once = publish(&client, "two", QoS::ExactlyOnce).await;
        let first_id = id(&next_publish(&mut server).await);
        let second_id = id(&next_publish(&mut server).await);
        server
            .send(Packet::PubRec(Ack::success(second_id)))
            .await
            .unwrap();
        assert!(matches!(next(&mut server).await, Packet::PubRel(_)));
        drop(server);

        let (mut server, _) = accept(&listener, false).await;
        let again = next_publish(&mut server).await;
        assert!(!again.dup, "a new publish for a new session");
        assert_eq!(&again.payload[..], b"one");
        assert_eq!(exactly_once.await.unwrap(), ReasonCode::SUCCESS);
        server
            .send(Packet::PubAck(Ack::success(id(&again))))
            .await
            .unwrap();
        assert_eq!(at_least_once.await.unwrap(), ReasonCode::SUCCESS);
        assert_eq!(id(&again), first_id);
        client.disconnect().await.expect("DISCONNECT");
        assert!(matches!(next(&mut server).await, Packet::Disconnect(_)));
    })
    .await;
}

/// Given two addresses, a client that loses the first reconnects to the
/// second (the next of the list), and its publish completes there.
#[tokio::test]
async fn a_lost_node_is_replaced_by_the_next_address() {
    bounded(async {
        let first = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let second = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addresses = [&first, &second].map(|l| l.local_addr().unwrap().to_string());
        let connecting = MqttClient::connect_any(&addresses, persistent_options());
        let (connected, (mut server, _)) = tokio::join!(connecting, accept(&first, false));
        let (client, _) = connected.expect("connected to the first");
        let outcome = publish(&client, "x", QoS::AtLeastOnce).await;
        let sent = next_publish(&mut server).await;
        drop(server);
        drop(first);
        let (mut server, _) = accept(&second, true).await;
        let again = next_publish(&mut server).await;
        assert_eq!((again.dup, id(&again)), (true, id(&sent)));
        server
            .send(Packet::PubAck(Ack::success(id(&again))))
            .await
            .unwrap();
        assert_eq!(outcome.await.unwrap(), ReasonCode::SUCCESS);
    })
    .await;
}

/// A reconnect refused for bad credentials ends the client: the waiting
/// publish fails with that reason instead of being retried forever.
#[tokio::test]
async fn a_refusal_for_bad_credentials_is_final() {
    bounded(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (client, mut server) = connected(&listener).await;
        let outcome = publish(&client, "x", QoS::AtLeastOnce).await;
        next_publish(&mut server).await;
        drop(server);
        let (mut server, _) = accept_connect(&listener).await;
        connack(&mut server, false, ReasonCode::BAD_USER_NAME_OR_PASSWORD).await;
        let refused = |reason: &CloseReason| {
            matches!(reason, CloseReason::ReconnectRefused { reason, .. }
                if *reason == ReasonCode::BAD_USER_NAME_OR_PASSWORD)
        };
        match outcome.await {
            Err(MqttClientError::Closed { reason }) => assert!(refused(&reason), "{reason}"),
            other => panic!("expected the client closed, got {other:?}"),
        }
        assert!(refused(&client.close_reason().expect("closed")));
    })
    .await;
}
