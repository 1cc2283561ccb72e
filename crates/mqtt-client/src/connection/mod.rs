//! The connection task: the one owner of the socket. Each turn it decodes
//! what was read (`inbound.rs`), then waits for whichever comes first:
//! bytes to read, room to write, room in the messages channel for a
//! message that did not fit, a command from [`crate::MqttClient`], or the
//! keep-alive timer. Writing goes through one buffer, so many small
//! packets leave in one system call, and reading and writing never wait
//! on each other (no deadlock with a broker that also blocks on writes).
//!
//! Every queue is bounded: commands are taken only while the write buffer
//! is under [`OUTGOING_COMMANDS_MAX_BYTES`], the socket is read only while
//! it is under [`OUTGOING_MAX_BYTES`] and no message waits for the
//! channel. When the task ends it records why ([`CloseReason`]) and fails
//! every outstanding request with it.
//!
//! The requests waiting on packet ids (each publish with its packet, for
//! a re-send) outlive one socket: with reconnecting on, a lost connection
//! is replaced by a new one (`resume.rs`) and they are sent again there.

mod inbound;
mod resume;

use std::collections::{HashSet, VecDeque};
use std::num::NonZeroU16;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::BytesMut;
use citystream_mqtt_codec::{
    ByteStr, Disconnect, EncodeError, MqttCodec, Packet, Publish, QoS, ReasonCode, Subscribe,
    SubscriptionOptions, Version,
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::time::{Instant, Sleep};
use tokio_util::codec::Encoder as _;

use crate::error::{CloseReason, MqttClientError};
use crate::handshake::{Opened, READ_ROOM_MIN_BYTES};
use crate::packet_ids::PacketIds;

pub(crate) use resume::Dialer;

/// Commands are taken from the channel only while fewer bytes than this
/// wait to be written.
const OUTGOING_COMMANDS_MAX_BYTES: usize = 256 * 1024;
/// The socket is read only while fewer bytes than this wait to be written
/// (reading makes acknowledgements to write).
const OUTGOING_MAX_BYTES: usize = 4 * 1024 * 1024;
/// Room made in the read buffer after a read that filled it: a busy
/// connection reads many packets per system call.
const READ_ROOM_MAX_BYTES: usize = 64 * 1024;
/// Keep alive off: the timer is set this far ahead and never polled.
const TIMER_IDLE: Duration = Duration::from_secs(86_400);

pub(crate) type PublishReply = oneshot::Sender<Result<ReasonCode, MqttClientError>>;
pub(crate) type SubscribeReply = oneshot::Sender<Result<Vec<ReasonCode>, MqttClientError>>;

/// What [`crate::MqttClient`] asks the task to do.
pub(crate) enum Command {
    /// `publish.packet_id` is `None`; the task assigns one at QoS 1/2.
    /// Boxed: a channel slot is the size of the largest command.
    Publish {
        publish: Box<Publish>,
        /// A place in the publish window, held until the last ack (QoS 1/2).
        permit: Option<OwnedSemaphorePermit>,
        reply: PublishReply,
    },
    /// QoS 0 publishes queued together: all or none.
    PublishAll {
        publishes: Vec<Publish>,
        reply: PublishReply,
    },
    Subscribe {
        filters: Vec<(ByteStr, SubscriptionOptions)>,
        reply: SubscribeReply,
    },
    Disconnect {
        reply: oneshot::Sender<()>,
    },
}

impl Command {
    fn fail(self, error: MqttClientError) {
        match self {
            Command::Publish { reply, .. } | Command::PublishAll { reply, .. } => {
                drop(reply.send(Err(error)))
            }
            Command::Subscribe { reply, .. } => drop(reply.send(Err(error))),
            Command::Disconnect { .. } => {}
        }
    }
}

/// What waits on a packet id of ours. `sequence` orders requests as they
/// were made, so a reconnect re-sends them in that order [MQTT-4.6.0-1].
pub(crate) enum Request {
    Publish {
        /// The packet, with its id: sent again after a reconnect.
        publish: Box<Publish>,
        /// Written to a connection at least once (a re-send has DUP).
        sent: bool,
        /// QoS 2: PUBREC came and PUBREL was sent; PUBCOMP is next.
        released: bool,
        reply: PublishReply,
        permit: Option<OwnedSemaphorePermit>,
        sequence: u64,
    },
    Subscribe {
        filters: Vec<(ByteStr, SubscriptionOptions)>,
        reply: SubscribeReply,
        sequence: u64,
    },
}

impl Request {
    fn fail(self, error: MqttClientError) {
        match self {
            Request::Publish { reply, .. } => drop(reply.send(Err(error))),
            Request::Subscribe { reply, .. } => drop(reply.send(Err(error))),
        }
    }

    fn sequence(&self) -> u64 {
        match self {
            Request::Publish { sequence, .. } | Request::Subscribe { sequence, .. } => *sequence,
        }
    }
}

pub(crate) struct Connection {
    reader: OwnedReadHalf,
    writer: OwnedWriteHalf,
    codec: MqttCodec,
    version: Version,
    incoming: BytesMut,
    /// Room to make before the next read: small until a read fills it.
    read_room_bytes: usize,
    outgoing: BytesMut,
    /// Bytes ever put in, and ever written from, `outgoing`.
    queued_bytes_total: u64,
    written_bytes_total: u64,
    /// QoS 0 publishes waiting for their last byte to be written: the
    /// `queued_bytes_total` at their end, and their reply.
    written_waiters: VecDeque<(u64, PublishReply)>,
    requests: PacketIds<Request>,
    /// Ids of QoS 2 messages delivered to us whose PUBREL has not come;
    /// a PUBLISH with one of them is a re-send, not a new message.
    awaiting_release: HashSet<NonZeroU16>,
    /// A message read while the channel was full (reading stops until it fits).
    undelivered: Option<Publish>,
    deliveries: mpsc::Sender<Publish>,
    commands: mpsc::Receiver<Command>,
    keep_alive: Option<Duration>,
    last_write_at: Instant,
    ping_sent_at: Option<Instant>,
    keep_alive_timer: Pin<Box<Sleep>>,
    /// Set once DISCONNECT is queued: the task ends when it is written.
    disconnecting: Option<oneshot::Sender<()>>,
    window: Arc<Semaphore>,
    closed: Arc<OnceLock<CloseReason>>,
    /// How to connect again; `None`: the task ends with the connection.
    dialer: Option<Dialer>,
    /// The next request's `sequence`.
    next_sequence: u64,
    /// The size of `window`, agreed at the first connect.
    publish_window: u16,
    /// Connections replaced by a new one, for [`crate::MqttClient::reconnects`].
    reconnects: Arc<AtomicU64>,
}

/// What the task shares with [`crate::MqttClient`].
pub(crate) struct Shared {
    pub window: Arc<Semaphore>,
    pub closed: Arc<OnceLock<CloseReason>>,
    pub reconnects: Arc<AtomicU64>,
}

impl Connection {
    pub(crate) fn new(
        opened: Opened,
        commands: mpsc::Receiver<Command>,
        deliveries: mpsc::Sender<Publish>,
        shared: Shared,
        dialer: Option<Dialer>,
    ) -> Connection {
        let (reader, writer) = opened.stream.into_split();
        let now = Instant::now();
        let keep_alive = opened.agreed.keep_alive;
        Connection {
            reader,
            writer,
            version: opened
                .codec
                .version()
                .expect("a client codec knows its version"),
            codec: opened.codec,
            incoming: opened.leftover,
            read_room_bytes: READ_ROOM_MIN_BYTES,
            outgoing: BytesMut::new(),
            queued_bytes_total: 0,
            written_bytes_total: 0,
            written_waiters: VecDeque::new(),
            requests: PacketIds::new(),
            awaiting_release: HashSet::new(),
            undelivered: None,
            deliveries,
            commands,
            keep_alive,
            last_write_at: now,
            ping_sent_at: None,
            keep_alive_timer: Box::pin(tokio::time::sleep_until(
                now + keep_alive.unwrap_or(TIMER_IDLE),
            )),
            disconnecting: None,
            window: shared.window,
            closed: shared.closed,
            dialer,
            next_sequence: 0,
            publish_window: opened.agreed.publish_window,
            reconnects: shared.reconnects,
        }
    }

    /// Serves the connection, and each that replaces it when it is lost,
    /// until one ends for good; then fails what is outstanding.
    pub(crate) async fn run(mut self) {
        let reason = loop {
            let lost = self.serve().await;
            match self.resume_after(lost).await {
                Ok(()) => {
                    self.reconnects.fetch_add(1, Ordering::Relaxed);
                }
                Err(reason) => break reason,
            }
        };
        self.end(reason);
    }

    /// Records why the task ends and fails everything outstanding with it.
    fn end(&mut self, reason: CloseReason) {
        if reason != CloseReason::ByClient {
            tracing::debug!(%reason, "MQTT client connection ended");
        }
        let _ = self.closed.set(reason.clone());
        self.window.close();
        let error = || MqttClientError::Closed {
            reason: reason.clone(),
        };
        for request in self.requests.drain() {
            request.fail(error());
        }
        for (_, reply) in self.written_waiters.drain(..) {
            let _ = reply.send(Err(error()));
        }
        self.commands.close();
        while let Ok(command) = self.commands.try_recv() {
            command.fail(error());
        }
        if let Some(reply) = self.disconnecting.take() {
            let _ = reply.send(());
        }
    }

    async fn serve(&mut self) -> CloseReason {
        loop {
            if let Err(reason) = self.process_incoming() {
                return reason;
            }
            if self.disconnecting.is_some() && self.outgoing.is_empty() {
                let _ = self.writer.shutdown().await;
                return CloseReason::ByClient;
            }
            if let Err(reason) = self.step().await {
                return reason;
            }
        }
    }

    /// Waits for one event and handles it.
    async fn step(&mut self) -> Result<(), CloseReason> {
        let reading = self.undelivered.is_none() && self.outgoing.len() < OUTGOING_MAX_BYTES;
        let taking_commands = self.taking_commands();
        if reading {
            self.incoming.reserve(self.read_room_bytes);
        }
        let room_bytes = self.incoming.capacity() - self.incoming.len();
        tokio::select! {
            read = self.reader.read_buf(&mut self.incoming), if reading => {
                let read = read?;
                if read == 0 {
                    return Err(CloseReason::ByBroker);
                }
                self.read_room_bytes = if read >= room_bytes {
                    READ_ROOM_MAX_BYTES
                } else {
                    READ_ROOM_MIN_BYTES
                };
            }
            written = self.writer.write_buf(&mut self.outgoing), if !self.outgoing.is_empty() => {
                match written? {
                    0 => return Err(std::io::Error::from(std::io::ErrorKind::WriteZero).into()),
                    written => self.wrote(written),
                }
            }
            () = room(&self.deliveries), if self.undelivered.is_some() => {
                let publish = self.undelivered.take().expect("guarded by the branch condition");
                let (qos, packet_id) = (publish.qos, publish.packet_id);
                // This task is the only sender, so the room found stays.
                let _ = self.deliveries.try_send(publish);
                self.delivered(qos, packet_id);
            }
            command = self.commands.recv(), if taking_commands => match command {
                Some(command) => self.commands_received(command),
                // Every handle was dropped: close without DISCONNECT.
                None => return Err(CloseReason::ByClient),
            },
            () = self.keep_alive_timer.as_mut(), if self.keep_alive.is_some() => {
                self.keep_alive_due()?;
            }
        }
        Ok(())
    }

    fn taking_commands(&self) -> bool {
        self.disconnecting.is_none() && self.outgoing.len() < OUTGOING_COMMANDS_MAX_BYTES
    }

    /// Handles `first` and whatever else is queued, while there is room:
    /// one write then carries many packets.
    fn commands_received(&mut self, first: Command) {
        self.command(first);
        while self.taking_commands() {
            match self.commands.try_recv() {
                Ok(command) => self.command(command),
                Err(_) => break,
            }
        }
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::Publish {
                publish,
                permit,
                reply,
            } => self.queue_publish(publish, permit, reply),
            Command::PublishAll { publishes, reply } => self.queue_all(publishes, reply),
            Command::Subscribe { filters, reply } => self.queue_subscribe(filters, reply),
            Command::Disconnect { reply } => {
                self.queue_control(Packet::Disconnect(Disconnect::normal()));
                self.disconnecting = Some(reply);
            }
        }
    }

    /// Queues QoS 0 publishes, all or none (none if one cannot be
    /// encoded); `reply` is answered once the last is written.
    fn queue_all(&mut self, publishes: Vec<Publish>, reply: PublishReply) {
        let (before, before_total) = (self.outgoing.len(), self.queued_bytes_total);
        for publish in publishes {
            if let Err(error) = self.queue(&Packet::Publish(publish)) {
                self.outgoing.truncate(before);
                self.queued_bytes_total = before_total;
                drop(reply.send(Err(error.into())));
                return;
            }
        }
        self.written_waiters
            .push_back((self.queued_bytes_total, reply));
    }

    fn queue_publish(
        &mut self,
        publish: Box<Publish>,
        permit: Option<OwnedSemaphorePermit>,
        reply: PublishReply,
    ) {
        if publish.qos == QoS::AtMostOnce {
            match self.queue(&Packet::Publish(*publish)) {
                Ok(()) => self
                    .written_waiters
                    .push_back((self.queued_bytes_total, reply)),
                Err(error) => drop(reply.send(Err(error.into()))),
            }
            return;
        }
        let Some(packet_id) = self.track_publish(publish, permit, reply) else {
            return;
        };
        let Some(Request::Publish { publish, sent, .. }) = self.requests.get_mut(packet_id) else {
            unreachable!("just allocated as a publish");
        };
        *sent = true;
        let packet = Packet::Publish(Publish::clone(publish));
        if let Err(error) = self.queue(&packet) {
            let request = self.requests.release(packet_id).expect("just allocated");
            request.fail(error.into());
        }
    }

    /// Gives a QoS 1/2 publish a packet id and keeps it (not sent yet);
    /// `None` after failing it when every id is in use.
    fn track_publish(
        &mut self,
        publish: Box<Publish>,
        permit: Option<OwnedSemaphorePermit>,
        reply: PublishReply,
    ) -> Option<NonZeroU16> {
        assert!(publish.qos > QoS::AtMostOnce, "QoS 0 needs no packet id");
        let sequence = self.take_sequence();
        let request = Request::Publish {
            publish,
            sent: false,
            released: false,
            reply,
            permit,
            sequence,
        };
        let packet_id = self.allocate(request)?;
        if let Some(Request::Publish { publish, .. }) = self.requests.get_mut(packet_id) {
            publish.packet_id = Some(packet_id);
        }
        Some(packet_id)
    }

    fn take_sequence(&mut self) -> u64 {
        self.next_sequence += 1;
        self.next_sequence
    }

    fn queue_subscribe(
        &mut self,
        filters: Vec<(ByteStr, SubscriptionOptions)>,
        reply: SubscribeReply,
    ) {
        let Some(packet_id) = self.track_subscribe(filters.clone(), reply) else {
            return;
        };
        if let Err(error) = self.queue(&subscribe_packet(packet_id, filters)) {
            let request = self.requests.release(packet_id).expect("just allocated");
            request.fail(error.into());
        }
    }

    /// Gives a subscribe a packet id and keeps it (not sent yet).
    fn track_subscribe(
        &mut self,
        filters: Vec<(ByteStr, SubscriptionOptions)>,
        reply: SubscribeReply,
    ) -> Option<NonZeroU16> {
        let sequence = self.take_sequence();
        self.allocate(Request::Subscribe {
            filters,
            reply,
            sequence,
        })
    }

    /// A packet id for `request`, or `None` after failing it when every id
    /// is in use.
    fn allocate(&mut self, request: Request) -> Option<NonZeroU16> {
        match self.requests.allocate(request) {
            Ok(packet_id) => Some(packet_id),
            Err(request) => {
                request.fail(MqttClientError::PacketIdsExhausted);
                None
            }
        }
    }

    /// Encodes `packet` at the end of the write buffer (nothing on error).
    fn queue(&mut self, packet: &Packet) -> Result<(), EncodeError> {
        let before = self.outgoing.len();
        self.codec.encode(packet, &mut self.outgoing)?;
        self.queued_bytes_total += (self.outgoing.len() - before) as u64;
        Ok(())
    }

    /// Queues an acknowledgement, PINGREQ or DISCONNECT: these have no
    /// fields that could fail to encode.
    fn queue_control(&mut self, packet: Packet) {
        self.queue(&packet)
            .expect("acknowledgements, PINGREQ and DISCONNECT always encode");
    }

    /// `written` more bytes left: resolves the QoS 0 publishes now sent.
    fn wrote(&mut self, written: usize) {
        self.written_bytes_total += written as u64;
        self.last_write_at = Instant::now();
        while let Some(&(end, _)) = self.written_waiters.front()
            && end <= self.written_bytes_total
        {
            let (_, reply) = self.written_waiters.pop_front().expect("front exists");
            let _ = reply.send(Ok(ReasonCode::SUCCESS));
        }
    }

    /// The timer fired: send PINGREQ if nothing was written for a keep
    /// alive, fail if the last PINGREQ went unanswered for one, and set the
    /// timer for the next check.
    fn keep_alive_due(&mut self) -> Result<(), CloseReason> {
        let keep_alive = self
            .keep_alive
            .expect("the timer runs only with keep alive");
        let now = Instant::now();
        let next = if let Some(sent_at) = self.ping_sent_at {
            if now >= sent_at + keep_alive {
                return Err(CloseReason::KeepAliveTimeout);
            }
            sent_at + keep_alive
        } else if now >= self.last_write_at + keep_alive {
            self.queue_control(Packet::PingReq);
            self.ping_sent_at = Some(now);
            now + keep_alive
        } else {
            self.last_write_at + keep_alive
        };
        self.keep_alive_timer.as_mut().reset(next);
        Ok(())
    }
}

fn subscribe_packet(packet_id: NonZeroU16, filters: Vec<(ByteStr, SubscriptionOptions)>) -> Packet {
    Packet::Subscribe(Subscribe {
        packet_id,
        subscription_identifier: None,
        user_properties: Vec::new(),
        filters,
    })
}

/// Resolves once `deliveries` has room for a message (or is closed). The
/// reservation is given back at once: holding it would borrow the sender
/// past the `select!`.
async fn room(deliveries: &mpsc::Sender<Publish>) {
    let _ = deliveries.reserve().await;
}
