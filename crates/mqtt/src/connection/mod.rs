//! One MQTT connection, from CONNECT to close, on one task: it reads the
//! client's packets, answers its QoS 1/2 publishes in the order they came
//! once the log has them [MQTT-4.6.0-2], and delivers what its
//! subscriptions match from the log through a [`Follower`], within the
//! in-flight window. Nothing here is shared with other connections but
//! the node (client, producer, tails, registry, session store).
//!
//! Submodules: `inbound` (the client's publishes and their answers),
//! `delivery` (subscriptions, following stream topics, sending matches),
//! `persist` (taking, snapshotting and ending the session in the
//! replicated store).
//!
//! How a connection ends decides its will: a DISCONNECT with reason 0x00
//! drops it; anything else (0x04, a closed socket, a protocol error, keep
//! alive expiry, a takeover, shutdown) publishes it [MQTT-3.1.2-8], at
//! once or, with a delay, once the delay passed unless the client connected
//! again first (`will`).

mod delivery;
mod inbound;
mod persist;

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use citystream_client::live::Follower;
use citystream_mqtt_codec::{
    ByteStr, DecodeError, Disconnect, DisconnectProperties, MqttCodec, Packet, Publish, ReasonCode,
    Version,
};
use futures::stream::FuturesOrdered;
use futures::{FutureExt as _, SinkExt, StreamExt as _};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt as _};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;

use crate::Node;
use crate::connect::{self, Accepted};
use crate::outbound::Outbound;
use crate::session::{Generation, KeptRecord, Position, StoredInbound};
use crate::shared::{SharedBatch, Ticket};
use crate::subscriptions::{Subscription, Subscriptions};

/// A matched message waiting for the in-flight window.
struct Pending {
    publish: Publish,
    /// Its record.
    at: At,
    /// A retained message's content (`crate::outbound`).
    kept: Option<KeptRecord>,
    /// The shared-subscription batch it belongs to.
    ticket: Option<Arc<Ticket>>,
}

/// Where a pending message's record is. The stream topic's name is shared
/// by the messages of one tail batch (a `Position` owns a copy).
struct At {
    topic: Arc<str>,
    partition: u32,
    offset: u64,
}

impl At {
    fn of(topic: Arc<str>, record: &citystream_client::ConsumerRecord) -> At {
        At {
            topic,
            partition: record.partition,
            offset: record.offset,
        }
    }

    fn position(&self) -> Position {
        Position {
            topic: self.topic.to_string(),
            partition: self.partition,
            offset: self.offset,
        }
    }
}

impl From<&Position> for At {
    fn from(position: &Position) -> At {
        At {
            topic: Arc::from(position.topic.as_str()),
            partition: position.partition,
            offset: position.offset,
        }
    }
}

/// A shared subscription of this session: its group member runs until
/// `stop`.
struct SharedMember {
    /// The share's one subscription, with the filter inside `$share/...`.
    matching: Subscriptions,
    stop: CancellationToken,
}

impl SharedMember {
    fn subscription(&self) -> &Subscription {
        self.matching
            .iter()
            .next()
            .expect("a share has its subscription")
    }
}

/// How often subscriptions whose filter starts with a wildcard look for
/// new stream topics.
const TOPIC_REFRESH: Duration = Duration::from_secs(5);
/// How often a persistent session's positions and acknowledgements are
/// written when they changed.
const SNAPSHOT_INTERVAL: Duration = Duration::from_millis(500);
/// Initial read and write buffer of a connection.
const CONNECTION_BUFFER_BYTES: usize = 512;
/// The read buffer of a connection whose packets come back to back (one
/// read held more than one packet): fewer, larger reads.
const BUSY_READ_BUFFER_BYTES: usize = 8 * 1024;
/// Most packets handled in one turn of a connection's loop: those already
/// read after the one that woke it.
const PACKETS_PER_TURN_MAX: usize = 64;
/// How long a connection taking a client id over on this node waits for
/// the one it replaces to write its last snapshot.
const HANDOVER_WAIT: Duration = Duration::from_secs(5);

type Io<IO> = Framed<IO, MqttCodec>;
type AckFuture = Pin<Box<dyn Future<Output = Option<Packet>> + Send>>;

/// Why a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// DISCONNECT 0x00: the will is dropped.
    Clean,
    /// A connection on another node took the session: the will is
    /// published, and the session is left to the new holder (whose claim
    /// fences out this connection's writes).
    TakenOver,
    /// Every other way: the will is published.
    WithWill,
}

/// Serves one connection: the CONNECT exchange, then the loop.
pub(crate) async fn serve<IO>(io: IO, node: Arc<Node>, peer: String)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send,
{
    let permit = node.connections.clone().try_acquire_owned().ok();
    let mut framed = Framed::new(io, MqttCodec::server(node.config.limits));
    // Small to start with (an idle device costs little); they grow with
    // the packets. Replaced after the fact: `Framed` raises a smaller
    // buffer given to it to tokio-util's 8 KiB default.
    *framed.read_buffer_mut() = BytesMut::with_capacity(CONNECTION_BUFFER_BYTES);
    *framed.write_buffer_mut() = BytesMut::with_capacity(CONNECTION_BUFFER_BYTES);
    let timeout = Duration::from_millis(node.config.connect_timeout_ms);
    let connect = match tokio::time::timeout(timeout, framed.next()).await {
        Ok(Some(Ok(Packet::Connect(connect)))) => connect,
        Ok(Some(Err(error))) => return refuse_first_packet(framed, &error, &peer).await,
        _ => return,
    };
    let accepted = match (permit.is_some(), connect::accept(&connect, &node.config)) {
        (false, _) => Err(ReasonCode::SERVER_BUSY),
        (true, accepted) => accepted,
    };
    let accepted = match accepted {
        Ok(accepted) => accepted,
        Err(reason) => return refuse(framed, reason, &peer).await,
    };
    framed
        .codec_mut()
        .set_peer_max_packet_bytes(accepted.client_max_packet_bytes);
    let claim = node.registry.claim(&accepted.client_id);
    if let Some(previous) = &claim.previous_done {
        // Let the connection this one replaces write its last snapshot.
        let _ = tokio::time::timeout(HANDOVER_WAIT, previous.cancelled()).await;
    }
    let taken = match Box::pin(persist::take(&node, &accepted)).await {
        Ok(taken) => taken,
        Err(error) => {
            tracing::warn!(%peer, client_id = %accepted.client_id, %error, "cannot take the MQTT session");
            node.registry.release(&accepted.client_id, &claim);
            return refuse(framed, ReasonCode::SERVER_UNAVAILABLE, &peer).await;
        }
    };
    node.registry.set_session(
        &accepted.client_id,
        claim.generation,
        taken.generation.clone(),
    );
    let connack = connect::connack(&accepted, &node.config, taken.present());
    let mut connection = Connection::new(node.clone(), &accepted, taken.generation.clone());
    connection.owner_node = taken.owner_node;
    let end = match framed.send(Packet::ConnAck(connack)).await {
        Ok(()) => {
            tracing::debug!(%peer, client_id = %accepted.client_id, version = ?accepted.version, present = taken.present(), "MQTT client connected");
            match Box::pin(connection.resume(&mut framed, taken.record)).await {
                Ok(()) => connection.run(&mut framed, &claim.taken_over).await,
                Err(end) => end,
            }
        }
        Err(_) => End::WithWill,
    };
    let end = if claim.taken_elsewhere() {
        End::TakenOver
    } else {
        end
    };
    let will = accepted.will.filter(|_| end != End::Clean);
    let delay_secs = will.as_ref().map_or(0, |will| {
        crate::will::delay_secs(will, connection.expiry_secs)
    });
    // A connection elsewhere that took the session over is a new
    // connection within the delay: its claim superseded the will in the
    // store [MQTT-3.1.3-9], and it decides the will's fate.
    let will_at_ms = (delay_secs > 0 && end != End::TakenOver)
        .then(|| now_ms().saturating_add(i64::from(delay_secs) * 1000));
    Box::pin(connection.finish(end, will_at_ms)).await;
    node.registry.release(&accepted.client_id, &claim);
    drop(permit);
    match (will, will_at_ms) {
        (Some(will), _) if delay_secs == 0 => {
            crate::will::publish_now(&node, &accepted.client_id, will);
        }
        (Some(will), Some(deadline_ms)) => {
            let generation = connection.generation.clone();
            crate::will::publish_at(&node, &accepted.client_id, will, generation, deadline_ms);
        }
        _ => {}
    }
}

async fn refuse<IO>(mut framed: Io<IO>, reason: ReasonCode, peer: &str)
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    tracing::debug!(%peer, reason = reason.0, "MQTT connection refused");
    let _ = framed.send(Packet::ConnAck(connect::refusal(reason))).await;
}

/// Answers a first packet that could not be decoded: 3.1.1 CONNACK codes
/// where the specification asks for one (unknown protocol level, empty
/// client id without clean session), then closes.
async fn refuse_first_packet<IO>(mut framed: Io<IO>, error: &DecodeError, peer: &str)
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    tracing::debug!(%peer, %error, "MQTT connection refused before CONNECT");
    if let Some(code) = error.v3_connack_code() {
        // A 3.1.1 CONNACK: fixed header, remaining length 2, no session
        // present, the return code.
        let _ = framed.get_mut().write_all(&[0x20, 0x02, 0x00, code]).await;
        let _ = framed.get_mut().flush().await;
    }
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
        })
}

/// The state of one connected client.
struct Connection {
    node: Arc<Node>,
    version: Version,
    client_id: String,
    keep_alive: Option<Duration>,
    last_heard: Instant,
    /// The wall clock when the packets of this turn were read: their
    /// records' timestamps and expiries (one clock read per burst).
    heard_ms: i64,
    /// The read buffer was grown for packets that come back to back.
    busy_reads: bool,
    /// The write buffer takes more before it is written out: many
    /// messages came to be sent at once.
    busy_writes: bool,
    /// The stream topic this client last wrote, known to exist, and the
    /// name it was for: most publishes go to it, and need no look at the
    /// node's set of created topics (nor a mapping, for the same name).
    last_stream_topic: Option<(ByteStr, Arc<str>)>,
    /// QoS 0 publishes of the current burst, not yet written.
    held: inbound::Held,
    problem_information: bool,
    /// Seconds the session outlives the connection (0: it ends with it).
    expiry_secs: u32,
    generation: Generation,
    /// This node's run and the will, kept in snapshots while connected (so
    /// another node publishes the will if this one dies).
    owner_node: Option<crate::session::OwnerNode>,
    stored_will: Option<crate::session::StoredWill>,
    /// A persistent session changed since its last snapshot.
    dirty: bool,
    /// Topic aliases the client set when publishing.
    aliases: HashMap<u16, ByteStr>,
    /// Topic aliases we gave topic names when sending to the client: the
    /// first `alias_maximum` distinct names get one, for the connection.
    outbound_aliases: HashMap<ByteStr, u16>,
    outbound_alias_maximum: u16,
    /// Answers of QoS 1/2 publishes, in arrival order.
    acks: FuturesOrdered<AckFuture>,
    /// QoS 1/2 publishes not yet answered (bounded by our Receive Maximum).
    unanswered: usize,
    /// QoS 2 messages received and not yet released, by packet id.
    inbound: HashMap<u16, StoredInbound>,
    /// QoS 2 packet ids whose record this connection wrote (or is writing).
    written_here: std::collections::HashSet<u16>,
    inbound_counter: u64,
    subscriptions: Subscriptions,
    follower: Follower<crate::Rendered>,
    followed_topics: std::collections::HashSet<String>,
    /// Messages matched and waiting for the in-flight window, with their
    /// records' positions (and shared-subscription batches).
    pending: VecDeque<Pending>,
    /// Shared subscriptions by their `$share/...` filter.
    shared: HashMap<String, SharedMember>,
    /// Batches of every shared subscription's group member.
    /// Made with the first shared subscription (idle devices need none).
    shared_channel: Option<(mpsc::Sender<SharedBatch>, mpsc::Receiver<SharedBatch>)>,
    outbound: Outbound,
    client_max_packet_bytes: Option<u32>,
}

impl Connection {
    fn new(node: Arc<Node>, accepted: &Accepted, generation: Generation) -> Connection {
        let window = accepted
            .client_receive_maximum
            .min(node.config.inflight_max);
        // A child token, as in `run`: its checks lock only its own node.
        let follower = Follower::new(
            node.client.clone(),
            node.tails.clone(),
            node.shutdown.child_token(),
        );
        Connection {
            version: accepted.version,
            client_id: accepted.client_id.clone(),
            keep_alive: accepted.keep_alive,
            last_heard: Instant::now(),
            heard_ms: now_ms(),
            busy_reads: false,
            busy_writes: false,
            last_stream_topic: None,
            held: inbound::Held::new(),
            problem_information: accepted.problem_information,
            expiry_secs: accepted.session_expiry_secs,
            generation,
            owner_node: None,
            stored_will: accepted.will.as_ref().map(crate::will::to_stored),
            dirty: false,
            aliases: HashMap::new(),
            outbound_aliases: HashMap::new(),
            outbound_alias_maximum: accepted
                .client_topic_alias_maximum
                .min(node.config.topic_alias_maximum),
            acks: FuturesOrdered::new(),
            unanswered: 0,
            inbound: HashMap::new(),
            written_here: std::collections::HashSet::new(),
            inbound_counter: 0,
            subscriptions: Subscriptions::default(),
            follower,
            followed_topics: std::collections::HashSet::new(),
            pending: VecDeque::new(),
            shared: HashMap::new(),
            shared_channel: None,
            outbound: Outbound::new(usize::from(window)),
            client_max_packet_bytes: accepted.client_max_packet_bytes,
            node,
        }
    }

    fn persistent(&self) -> bool {
        self.expiry_secs > 0
    }

    /// Whether a subscription's filter starts with a wildcard, so new
    /// stream topics have to be looked for.
    fn follows_all_topics(&self) -> bool {
        self.subscriptions
            .iter()
            .any(|s| s.filter.starts_with('+') || s.filter.starts_with('#'))
    }

    /// The connection's loop. The handlers' futures are boxed: they are
    /// large (client requests inside) and rare for an idle device, and
    /// inline they would make every connection's task that much larger.
    async fn run<IO>(&mut self, framed: &mut Io<IO>, taken_over: &CancellationToken) -> End
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        // A child of the node's token: checking it locks this connection's
        // own node of the token tree, not the one every connection shares.
        let shutdown = self.node.shutdown.child_token();
        // Timers only where they have work: an idle device's task sleeps
        // until its keep alive runs out or a packet comes.
        let mut refresh = tokio::time::interval(TOPIC_REFRESH);
        let mut snapshot = tokio::time::interval(SNAPSHOT_INTERVAL);
        // A timer that was off does not fire its missed ticks in a burst.
        refresh.set_missed_tick_behavior(MissedTickBehavior::Delay);
        snapshot.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let persistent = self.persistent();
        // Made once: a wait made per turn registers and unregisters with
        // its token on every packet.
        let mut shutting_down = std::pin::pin!(shutdown.cancelled());
        let mut taken = std::pin::pin!(taken_over.cancelled());
        loop {
            // Most turns have nothing to send (a publisher's packets, acks):
            // no boxed future then.
            if !self.pending.is_empty()
                && let Err(end) = Box::pin(self.drain(framed)).await
            {
                return end;
            }
            if SinkExt::<Packet>::flush(framed).await.is_err() {
                return End::WithWill;
            }
            let deliver = self.pending.is_empty() && !self.subscriptions.is_empty();
            let deliver_shared = self.pending.is_empty() && !self.shared.is_empty();
            let keep_alive_deadline = self
                .keep_alive
                .map(|keep_alive| self.last_heard + keep_alive * 3 / 2);
            let step = tokio::select! {
                biased;
                _ = &mut shutting_down => {
                    Box::pin(self.disconnect(framed, ReasonCode::SERVER_SHUTTING_DOWN)).await;
                    Err(End::WithWill)
                }
                Some(answer) = self.acks.next(), if !self.acks.is_empty() => Box::pin(self.answers(framed, answer)).await,
                // What the client sent before a takeover still counts (its
                // acknowledgements, a DISCONNECT): packets come first.
                packet = framed.next() => Box::pin(self.received_burst(framed, packet)).await,
                _ = &mut taken => {
                    Box::pin(self.disconnect(framed, ReasonCode::SESSION_TAKEN_OVER)).await;
                    Err(End::WithWill)
                }
                followed = self.follower.next(), if deliver => {
                    if let Some(followed) = followed {
                        self.matched(framed, followed);
                        self.matched_ready(framed);
                    }
                    Ok(())
                }
                Some(batch) = next_shared(&mut self.shared_channel), if deliver_shared => {
                    self.matched_shared(batch);
                    Ok(())
                }
                _ = sleep_until(keep_alive_deadline) => {
                    Box::pin(self.disconnect(framed, ReasonCode::KEEP_ALIVE_TIMEOUT)).await;
                    Err(End::WithWill)
                }
                _ = snapshot.tick(), if persistent && self.dirty => Box::pin(self.save_if_dirty()).await,
                _ = refresh.tick(), if self.follows_all_topics() => {
                    Box::pin(self.refresh_topics()).await;
                    Ok(())
                }
            };
            if let Err(end) = step {
                return end;
            }
        }
    }

    /// Handles what the socket gave.
    async fn received<IO>(
        &mut self,
        framed: &mut Io<IO>,
        packet: Option<Result<Packet, DecodeError>>,
    ) -> Result<(), End>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let packet = match packet {
            Some(Ok(Packet::Publish(publish))) => match self.hold(publish) {
                None => return Ok(()),
                Some(publish) => Some(Ok(Packet::Publish(publish))),
            },
            other => other,
        };
        // What was held came first.
        self.write_held(framed).await?;
        match packet {
            None => Err(End::WithWill),
            Some(Err(error)) => {
                tracing::debug!(client_id = %self.client_id, %error, "MQTT packet refused; closing");
                Box::pin(self.disconnect(framed, error.reason_code())).await;
                Err(End::WithWill)
            }
            Some(Ok(packet)) => self.handle(framed, packet).await,
        }
    }

    /// `packet`, then the packets already read behind it (up to
    /// [`PACKETS_PER_TURN_MAX`], and only while nothing waits to be sent):
    /// a burst of publishes costs one turn of the loop, one boxed future
    /// and one reading of the clocks, not one per packet.
    async fn received_burst<IO>(
        &mut self,
        framed: &mut Io<IO>,
        packet: Option<Result<Packet, DecodeError>>,
    ) -> Result<(), End>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        self.last_heard = Instant::now();
        self.heard_ms = now_ms();
        self.received(framed, packet).await?;
        // Bytes left after the first packet: the client sends faster than
        // one packet per read, so the small idle buffer is replaced by a
        // larger one (once: tokio-util grows a full buffer to the size it
        // was made with, copying only the partial packet at its end).
        let buffer = framed.read_buffer_mut();
        if !self.busy_reads && !buffer.is_empty() {
            let mut busy = BytesMut::with_capacity(BUSY_READ_BUFFER_BYTES.max(buffer.len()));
            busy.extend_from_slice(buffer);
            *buffer = busy;
            self.busy_reads = true;
        }
        for _ in 1..PACKETS_PER_TURN_MAX {
            if !self.pending.is_empty() {
                break;
            }
            // Ready now or not at all: a read that would wait registers
            // no waker here, and the loop's own poll registers it again.
            let Some(packet) = framed.next().now_or_never() else {
                break;
            };
            self.received(framed, packet).await?;
        }
        self.write_held(framed).await
    }

    async fn handle<IO>(&mut self, framed: &mut Io<IO>, packet: Packet) -> Result<(), End>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        match packet {
            Packet::Publish(mut publish) => match self.publish_now(&mut publish) {
                true => Ok(()),
                false => Box::pin(self.publish(framed, publish)).await,
            },
            Packet::PubAck(ack) => {
                self.dirty |= self.outbound.acked(ack.packet_id.get());
                Ok(())
            }
            Packet::PubRec(ack) => Box::pin(self.publish_received(framed, ack)).await,
            Packet::PubComp(ack) => {
                self.dirty |= self.outbound.completed(ack.packet_id.get());
                Ok(())
            }
            Packet::PubRel(ack) => Box::pin(self.release(framed, ack)).await,
            Packet::Subscribe(subscribe) => Box::pin(self.subscribe(framed, subscribe)).await,
            Packet::Unsubscribe(unsubscribe) => {
                Box::pin(self.unsubscribe(framed, unsubscribe)).await
            }
            Packet::PingReq => self.feed(framed, Packet::PingResp).await,
            Packet::Disconnect(disconnect) => {
                // A v5 client may change the session's expiry on the way
                // out, but not from 0 [MQTT-3.14.2-2].
                if let Some(expiry) = disconnect.properties.session_expiry_interval_secs
                    && self.persistent()
                {
                    self.expiry_secs = expiry;
                }
                Err(match disconnect.reason {
                    ReasonCode::SUCCESS => End::Clean,
                    _ => End::WithWill,
                })
            }
            // A second CONNECT is a protocol error [MQTT-3.1.0-2]; AUTH is
            // not offered (no authentication method was agreed).
            Packet::Connect(_) | Packet::Auth(_) => {
                Box::pin(self.disconnect(framed, ReasonCode::PROTOCOL_ERROR)).await;
                Err(End::WithWill)
            }
            // Server-to-client packets are refused by the decoder.
            other => {
                tracing::debug!(client_id = %self.client_id, packet = ?other, "unexpected MQTT packet");
                Box::pin(self.disconnect(framed, ReasonCode::PROTOCOL_ERROR)).await;
                Err(End::WithWill)
            }
        }
    }

    async fn feed<IO>(&mut self, framed: &mut Io<IO>, packet: Packet) -> Result<(), End>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        match framed.feed(packet).await {
            Ok(()) => Ok(()),
            Err(error) => {
                tracing::debug!(client_id = %self.client_id, %error, "MQTT write failed; closing");
                Err(End::WithWill)
            }
        }
    }

    /// Tells a v5 client why the server closes (3.1.1 has no such packet).
    async fn disconnect<IO>(&mut self, framed: &mut Io<IO>, reason: ReasonCode)
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        if self.version != Version::V5 {
            return;
        }
        let disconnect = Disconnect {
            reason,
            properties: DisconnectProperties::default(),
        };
        let _ = framed.send(Packet::Disconnect(disconnect)).await;
    }
}

/// The next batch of a shared subscription's member, if there is one.
async fn next_shared(
    channel: &mut Option<(mpsc::Sender<SharedBatch>, mpsc::Receiver<SharedBatch>)>,
) -> Option<SharedBatch> {
    match channel {
        Some((_, batches)) => batches.recv().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
