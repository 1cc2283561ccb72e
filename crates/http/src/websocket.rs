//! `GET /mqtt`: MQTT over WebSocket (subprotocol `mqtt`), for browsers.
//! The HTTP API knows nothing of MQTT: the node hands it a
//! [`ByteService`] (the MQTT server's connection handler), and each
//! upgraded socket is bridged to it as a byte stream. Binary messages are
//! bytes in; what the service writes goes out as binary messages. Packets
//! may be split across messages or share one, in both directions
//! [MQTT-6.0.0-2]; a text message closes the connection [MQTT-6.0.0-1].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::{SinkExt as _, StreamExt as _};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _, DuplexStream};

use crate::error::HttpError;
use crate::state::HttpState;

/// Serves one connection given as a byte stream, named by its peer.
pub type ByteService =
    Arc<dyn Fn(DuplexStream, String) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// Bytes buffered between the socket and the service, each way.
const BRIDGE_BUFFER_BYTES: usize = 64 * 1024;
/// Largest WebSocket message accepted (the MQTT packet limit is checked by
/// the service; a packet may span messages).
const MESSAGE_BYTES_MAX: usize = 1024 * 1024;

/// Upgrades to a WebSocket speaking MQTT; 404 where the node serves no MQTT.
pub async fn mqtt(State(state): State<HttpState>, upgrade: WebSocketUpgrade) -> Response {
    let Some(service) = state.mqtt_websocket().cloned() else {
        let message = "this node serves no MQTT (start it with --mqtt)";
        return HttpError::not_found("NO_MQTT", message).into_response();
    };
    upgrade
        .protocols(["mqtt"])
        .max_message_size(MESSAGE_BYTES_MAX)
        .on_upgrade(move |socket| bridge(socket, service))
}

async fn bridge(socket: WebSocket, service: ByteService) {
    let (ours, theirs) = tokio::io::duplex(BRIDGE_BUFFER_BYTES);
    let serve = service(theirs, "websocket".to_owned());
    let (mut from_service, mut to_service) = tokio::io::split(ours);
    let (mut sink, mut stream) = socket.split();
    let inbound = tokio::spawn(async move {
        while let Some(Ok(message)) = stream.next().await {
            let written = match message {
                Message::Binary(bytes) => to_service.write_all(&bytes).await,
                Message::Text(_) | Message::Close(_) => break,
                Message::Ping(_) | Message::Pong(_) => Ok(()),
            };
            if written.is_err() {
                break;
            }
        }
        // The service reads the end of its input and closes.
        let _ = to_service.shutdown().await;
    });
    let outbound = async move {
        let mut buffer = vec![0u8; BRIDGE_BUFFER_BYTES];
        loop {
            match from_service.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(read) => {
                    let message = Message::Binary(Bytes::copy_from_slice(&buffer[..read]));
                    if sink.send(message).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = sink.close().await;
    };
    tokio::join!(serve, outbound);
    inbound.abort();
}
