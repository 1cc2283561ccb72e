//! `citystream-mqtt-client`: a small async MQTT 3.1.1 / 5.0 client on tokio
//! and `citystream-mqtt-codec`, for the load generator (`citystream bench
//! mqtt`), the city simulator and tests. Works against any broker.
//!
//! One task per connection (`connection/`) owns the socket, reading and
//! writing, packet ids, the QoS 1/2 handshakes both ways, and keep alive;
//! [`MqttClient`] talks to it over a bounded command channel. Publishes are
//! pipelined: QoS 1/2 ones are bounded by the broker's Receive Maximum
//! (a semaphore; [`MqttClient::publish`] waits for room), and each
//! [`PublishFuture`] resolves on its PUBACK / PUBCOMP (QoS 0: once written).
//! Incoming messages go to a bounded channel ([`Messages`]) and are
//! acknowledged once handed to it, so a slow reader slows the broker down
//! instead of growing a queue.
//!
//! Deliberately not here: reconnecting, re-sending unacknowledged messages
//! after a reconnect (a session's in-flight state lives only as long as
//! one connection), topic aliases, AUTH exchanges, TLS, WebSocket.
//!
//! Files: `options.rs` (what to ask for), `handshake.rs` (CONNECT/CONNACK),
//! `connection/` (the task), `packet_ids.rs`, `error.rs`.

mod connection;
mod error;
mod handshake;
mod options;
mod packet_ids;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use bytes::Bytes;
use citystream_mqtt_codec::{ByteStr, PublishProperties, SubscriptionOptions};
use tokio::sync::{Semaphore, mpsc, oneshot};

pub use citystream_mqtt_codec::{ConnAck, Publish, QoS, ReasonCode, Version};
pub use error::{CloseReason, MqttClientError};
pub use options::{ConnectOptions, WillOptions};

use connection::{Command, Connection};

/// Commands queued for the connection task before callers wait.
const COMMANDS_CAPACITY: usize = 1_024;

/// One MQTT connection. Keep it alive while reading [`Messages`]: dropping
/// it closes the connection without DISCONNECT (the broker then publishes
/// the will); [`MqttClient::disconnect`] closes it normally.
pub struct MqttClient {
    commands: mpsc::Sender<Command>,
    /// Permits for QoS 1/2 publishes in flight: the agreed window.
    window: Arc<Semaphore>,
    closed: Arc<OnceLock<CloseReason>>,
    messages: Option<Messages>,
    maximum_qos: QoS,
    publish_window: u16,
}

impl MqttClient {
    /// Connects, sends CONNECT and waits for an accepting CONNACK, which is
    /// returned (session present, the broker's limits).
    pub async fn connect(
        address: &str,
        options: ConnectOptions,
    ) -> Result<(MqttClient, ConnAck), MqttClientError> {
        let opened = handshake::open(address, &options).await?;
        let (commands, commands_received) = mpsc::channel(COMMANDS_CAPACITY);
        let (deliveries, messages) = mpsc::channel(options.messages_capacity.max(1));
        let window = Arc::new(Semaphore::new(usize::from(opened.agreed.publish_window)));
        let closed = Arc::new(OnceLock::new());
        let client = MqttClient {
            commands,
            window: window.clone(),
            closed: closed.clone(),
            messages: Some(Messages { receiver: messages }),
            maximum_qos: opened.agreed.maximum_qos,
            publish_window: opened.agreed.publish_window,
        };
        let connack = opened.connack.clone();
        let connection = Connection::new(opened, commands_received, deliveries, window, closed);
        tokio::spawn(connection.run());
        Ok((client, connack))
    }

    /// Sends a message. Returns once the connection task has it, after
    /// waiting for room in the publish window at QoS 1/2 (backpressure);
    /// the returned future resolves on PUBACK (QoS 1), PUBCOMP (QoS 2) or
    /// once written (QoS 0), with the broker's reason code (success or
    /// 0x10 No matching subscribers).
    pub async fn publish(
        &self,
        topic: &str,
        payload: Bytes,
        qos: QoS,
    ) -> Result<PublishFuture, MqttClientError> {
        self.publish_with(topic, payload, qos, PublishProperties::default())
            .await
    }

    /// [`MqttClient::publish`] with MQTT 5 properties (user properties,
    /// content type, ...); a 3.1.1 connection refuses non-empty ones.
    pub async fn publish_with(
        &self,
        topic: &str,
        payload: Bytes,
        qos: QoS,
        properties: PublishProperties,
    ) -> Result<PublishFuture, MqttClientError> {
        if qos > self.maximum_qos {
            return Err(MqttClientError::QoSNotSupported {
                requested: qos,
                maximum: self.maximum_qos,
            });
        }
        let permit = if qos > QoS::AtMostOnce {
            let permit = self.window.clone().acquire_owned().await;
            Some(permit.map_err(|_| self.closed_error())?)
        } else {
            None
        };
        let publish = Box::new(Publish {
            dup: false,
            qos,
            retain: false,
            topic: ByteStr::from(topic.to_owned()),
            packet_id: None,
            properties,
            payload,
        });
        let (reply, outcome) = oneshot::channel();
        self.send(Command::Publish {
            publish,
            permit,
            reply,
        })
        .await?;
        Ok(PublishFuture {
            outcome,
            closed: self.closed.clone(),
        })
    }

    /// Subscribes to `filters` and waits for the SUBACK: one reason per
    /// filter, in order (granted QoS 0x00-0x02, or an error code).
    pub async fn subscribe(
        &self,
        filters: &[(&str, QoS)],
    ) -> Result<Vec<ReasonCode>, MqttClientError> {
        let filters = filters
            .iter()
            .map(|&(filter, qos)| {
                (
                    ByteStr::from(filter.to_owned()),
                    SubscriptionOptions::with_qos(qos),
                )
            })
            .collect();
        let (reply, reasons) = oneshot::channel();
        self.send(Command::Subscribe { filters, reply }).await?;
        reasons.await.map_err(|_| self.closed_error())?
    }

    /// The incoming messages, once (later calls get `None`).
    pub fn take_messages(&mut self) -> Option<Messages> {
        self.messages.take()
    }

    /// QoS 1/2 publishes that may be in flight at once: the lower of the
    /// broker's Receive Maximum and `ConnectOptions::publish_inflight_max`.
    pub fn publish_window(&self) -> u16 {
        self.publish_window
    }

    /// Why the connection ended; `None` while it is open.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.closed.get().cloned()
    }

    /// Sends DISCONNECT 0x00 (after everything queued before it) and closes
    /// the connection. Outstanding publishes that were not acknowledged
    /// yet fail with [`CloseReason::ByClient`]: await them first.
    pub async fn disconnect(self) -> Result<(), MqttClientError> {
        let (reply, done) = oneshot::channel();
        self.send(Command::Disconnect { reply }).await?;
        done.await.map_err(|_| self.closed_error())
    }

    async fn send(&self, command: Command) -> Result<(), MqttClientError> {
        self.commands
            .send(command)
            .await
            .map_err(|_| self.closed_error())
    }

    fn closed_error(&self) -> MqttClientError {
        closed_error(&self.closed)
    }
}

fn closed_error(closed: &OnceLock<CloseReason>) -> MqttClientError {
    MqttClientError::Closed {
        reason: closed.get().cloned().unwrap_or(CloseReason::ByClient),
    }
}

/// The messages the broker delivers, in the order received. Bounded: while
/// it is full the client stops reading (and acknowledging).
#[derive(Debug)]
pub struct Messages {
    receiver: mpsc::Receiver<Publish>,
}

impl Messages {
    /// The next message; `None` once the connection has ended and every
    /// message received before was taken.
    pub async fn recv(&mut self) -> Option<Publish> {
        self.receiver.recv().await
    }

    /// Up to `limit` messages at once into `buffer` (0 once the connection
    /// has ended): cheaper per message than [`Messages::recv`].
    pub async fn recv_many(&mut self, buffer: &mut Vec<Publish>, limit: usize) -> usize {
        self.receiver.recv_many(buffer, limit).await
    }
}

/// The outcome of one publish; see [`MqttClient::publish`].
#[derive(Debug)]
#[must_use = "a publish future does nothing unless awaited; drop it to ignore the outcome"]
pub struct PublishFuture {
    outcome: oneshot::Receiver<Result<ReasonCode, MqttClientError>>,
    closed: Arc<OnceLock<CloseReason>>,
}

impl Future for PublishFuture {
    type Output = Result<ReasonCode, MqttClientError>;

    fn poll(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Self::Output> {
        match Pin::new(&mut self.outcome).poll(context) {
            Poll::Ready(Ok(outcome)) => Poll::Ready(outcome),
            Poll::Ready(Err(_)) => Poll::Ready(Err(closed_error(&self.closed))),
            Poll::Pending => Poll::Pending,
        }
    }
}
