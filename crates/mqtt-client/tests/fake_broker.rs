//! The client against a scripted fake broker (the server side of our
//! codec), for what the real broker never does on purpose: holding acks
//! back, so the publish window is seen full, and answering with errors.

use std::num::NonZeroU16;

use bytes::Bytes;
use citystream_mqtt_client::{
    CloseReason, ConnectOptions, MqttClient, MqttClientError, QoS, ReasonCode, Version,
};
use citystream_mqtt_codec::{
    Ack, AckProperties, ConnAck, ConnAckProperties, Disconnect, Limits, MqttCodec, Packet,
};
use citystream_testkit::bounded;
use futures::{FutureExt as _, SinkExt as _, StreamExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::Framed;

/// Accepts one connection and answers its CONNECT with a CONNACK
/// announcing `receive_maximum`; returns the server side.
async fn accept(listener: &TcpListener, receive_maximum: u16) -> Framed<TcpStream, MqttCodec> {
    let (stream, _) = listener.accept().await.expect("accept");
    let mut framed = Framed::new(stream, MqttCodec::server(Limits::default()));
    let packet = framed.next().await.expect("a packet").expect("CONNECT");
    assert!(matches!(packet, Packet::Connect(_)), "{packet:?}");
    let connack = ConnAck {
        session_present: false,
        reason: ReasonCode::SUCCESS,
        properties: ConnAckProperties {
            receive_maximum: Some(receive_maximum),
            ..ConnAckProperties::default()
        },
    };
    framed
        .send(Packet::ConnAck(connack))
        .await
        .expect("CONNACK");
    framed
}

async fn next_publish_id(server: &mut Framed<TcpStream, MqttCodec>) -> NonZeroU16 {
    match server.next().await.expect("a packet").expect("decodes") {
        Packet::Publish(publish) => publish.packet_id.expect("QoS 1"),
        other => panic!("expected PUBLISH, got {other:?}"),
    }
}

/// With a window of 2 and no ack yet, a third QoS 1 publish waits (its
/// call is not ready) until one is acknowledged; refusals reach the caller.
#[tokio::test]
async fn a_full_window_holds_the_next_publish() {
    bounded(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let connecting = MqttClient::connect(&address, ConnectOptions::new(Version::V5, "d"));
        let (connected, mut server) = tokio::join!(connecting, accept(&listener, 2));
        let (client, _) = connected.expect("connected");
        let payload = || Bytes::from_static(b"x");
        let first = client
            .publish("t", payload(), QoS::AtLeastOnce)
            .await
            .unwrap();
        let second = client
            .publish("t", payload(), QoS::AtLeastOnce)
            .await
            .unwrap();
        let first_id = next_publish_id(&mut server).await;
        let second_id = next_publish_id(&mut server).await;

        let mut third = Box::pin(client.publish("t", payload(), QoS::AtLeastOnce));
        assert!((&mut third).now_or_never().is_none(), "the window is full");
        let refused = Ack {
            packet_id: first_id,
            reason: ReasonCode::QUOTA_EXCEEDED,
            properties: AckProperties::default(),
        };
        server.send(Packet::PubAck(refused)).await.unwrap();
        let third = third.await.expect("room after the ack");
        assert!(matches!(
            first.await,
            Err(MqttClientError::PublishRefused {
                reason: ReasonCode::QUOTA_EXCEEDED
            })
        ));
        let third_id = next_publish_id(&mut server).await;
        assert_ne!(third_id, second_id);

        server
            .send(Packet::PubAck(Ack::success(second_id)))
            .await
            .unwrap();
        assert_eq!(second.await.unwrap(), ReasonCode::SUCCESS);
        let goodbye = Disconnect::with_reason(ReasonCode::SERVER_SHUTTING_DOWN);
        server.send(Packet::Disconnect(goodbye)).await.unwrap();
        let expected = CloseReason::Disconnected {
            reason: ReasonCode::SERVER_SHUTTING_DOWN,
        };
        match third.await {
            Err(MqttClientError::Closed { reason }) => assert_eq!(reason, expected),
            other => panic!("expected the connection closed, got {other:?}"),
        }
    })
    .await;
}
