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
//! With [`ConnectOptions::reconnect`], a lost connection is replaced
//! (the same or the next of the addresses given to
//! [`MqttClient::connect_any`], capped exponential backoff with jitter)
//! and every QoS 1/2 publish not acknowledged yet is sent again there:
//! with DUP and its packet id when CONNACK says session present (PUBREL
//! for a QoS 2 one that had PUBREC), as a new publish when the broker lost
//! the session (`connection/resume.rs` says exactly what happens). A
//! [`PublishFuture`] resolves on the final ack whichever connection
//! carries it. Use it with a persistent session
//! ([`ConnectOptions::persistent_session`]). A refusal that would repeat
//! (bad credentials, ...) ends the client with a clear [`CloseReason`].
//!
//! Deliberately not here: renewing subscriptions a broker lost, topic
//! aliases, AUTH exchanges, TLS, WebSocket.
//!
//! Files: `options.rs` (what to ask for), `handshake.rs` (CONNECT/CONNACK),
//! `connection/` (the task, and `resume.rs` for reconnects),
//! `reconnect.rs` (the policy), `packet_ids.rs`, `error.rs`.

mod connection;
mod error;
mod handshake;
mod options;
mod packet_ids;
mod reconnect;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use bytes::Bytes;
use citystream_mqtt_codec::{ByteStr, PublishProperties, SubscriptionOptions};
use tokio::sync::{Semaphore, mpsc, oneshot};

pub use citystream_mqtt_codec::{ConnAck, Publish, QoS, ReasonCode, Version};
pub use error::{CloseReason, MqttClientError};
pub use options::{ConnectOptions, WillOptions};
pub use reconnect::ReconnectOptions;

use connection::{Command, Connection, Dialer, Shared};
use reconnect::Addresses;

/// Commands queued for the connection task before callers wait.
const COMMANDS_CAPACITY: usize = 1_024;

/// One MQTT client: a connection, or with [`ConnectOptions::reconnect`]
/// the succession of connections of one session. Keep it alive while
/// reading [`Messages`]: dropping it closes the connection without
/// DISCONNECT (the broker then publishes the will);
/// [`MqttClient::disconnect`] closes it normally.
pub struct MqttClient {
    commands: mpsc::Sender<Command>,
    /// Permits for QoS 1/2 publishes in flight: the agreed window.
    window: Arc<Semaphore>,
    closed: Arc<OnceLock<CloseReason>>,
    reconnects: Arc<AtomicU64>,
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
        MqttClient::connect_any(&[address.to_owned()], options).await
    }

    /// [`MqttClient::connect`] to the first of `addresses` (nodes of one
    /// cluster) that accepts, each tried once, in order; the last error
    /// if none does. With [`ConnectOptions::reconnect`], a lost connection
    /// is replaced by one to the same list.
    pub async fn connect_any(
        addresses: &[String],
        options: ConnectOptions,
    ) -> Result<(MqttClient, ConnAck), MqttClientError> {
        assert!(!addresses.is_empty(), "at least one broker address");
        let mut last_error = None;
        for (index, address) in addresses.iter().enumerate() {
            match handshake::open(address, &options).await {
                Ok(opened) => return Ok(MqttClient::start(opened, addresses, index, options)),
                Err(error) => {
                    tracing::debug!(%address, %error, "MQTT connect failed");
                    last_error = Some(error);
                }
            }
        }
        Err(last_error.expect("one address was tried"))
    }

    /// Spawns the connection task for `opened`, made to `addresses[index]`.
    fn start(
        opened: handshake::Opened,
        addresses: &[String],
        index: usize,
        options: ConnectOptions,
    ) -> (MqttClient, ConnAck) {
        let (commands, commands_received) = mpsc::channel(COMMANDS_CAPACITY);
        let (deliveries, messages) = mpsc::channel(options.messages_capacity.max(1));
        let shared = Shared {
            window: Arc::new(Semaphore::new(usize::from(opened.agreed.publish_window))),
            closed: Arc::new(OnceLock::new()),
            reconnects: Arc::new(AtomicU64::new(0)),
        };
        let client = MqttClient {
            commands,
            window: shared.window.clone(),
            closed: shared.closed.clone(),
            reconnects: shared.reconnects.clone(),
            messages: Some(Messages { receiver: messages }),
            maximum_qos: opened.agreed.maximum_qos,
            publish_window: opened.agreed.publish_window,
        };
        let connack = opened.connack.clone();
        let assigned = connack.properties.assigned_client_identifier.as_ref();
        let dialer = options.reconnect.clone().map(|policy| Dialer {
            addresses: Addresses::new(addresses.to_vec(), index),
            options: options.for_reconnect(assigned.map(|id| id.as_str())),
            policy,
        });
        let connection = Connection::new(opened, commands_received, deliveries, shared, dialer);
        tokio::spawn(connection.run());
        (client, connack)
    }

    /// Sends a message. Returns once the connection task has it, after
    /// waiting for room in the publish window at QoS 1/2 (backpressure,
    /// also while reconnecting); the returned future resolves on PUBACK
    /// (QoS 1), PUBCOMP (QoS 2) or once written (QoS 0), with the broker's
    /// reason code (success or 0x10 No matching subscribers), also when
    /// the ack comes on a later connection.
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

    /// QoS 0 messages to one topic, handed to the connection task in one
    /// go (one channel send for all of them, not one each): a gateway's
    /// or a load generator's readings in hand. All or none are queued
    /// (none if one cannot be encoded, e.g. larger than the broker
    /// accepts); the future resolves once the last is written.
    pub async fn publish_all(
        &self,
        topic: &str,
        payloads: impl IntoIterator<Item = Bytes>,
    ) -> Result<PublishFuture, MqttClientError> {
        let topic = ByteStr::from(topic.to_owned());
        let publishes = payloads
            .into_iter()
            .map(|payload| Publish {
                dup: false,
                qos: QoS::AtMostOnce,
                retain: false,
                topic: topic.clone(),
                packet_id: None,
                properties: PublishProperties::default(),
                payload,
            })
            .collect();
        let (reply, outcome) = oneshot::channel();
        self.send(Command::PublishAll { publishes, reply }).await?;
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

    /// Why the client ended; `None` while it is open or reconnecting.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.closed.get().cloned()
    }

    /// How many times a lost connection was replaced by a new one.
    pub fn reconnects(&self) -> u64 {
        self.reconnects.load(Ordering::Relaxed)
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
