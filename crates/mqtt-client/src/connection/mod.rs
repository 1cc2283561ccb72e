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

mod inbound;

use std::collections::{HashSet, VecDeque};
use std::num::NonZeroU16;
use std::pin::Pin;
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
            Command::Publish { reply, .. } => drop(reply.send(Err(error))),
            Command::Subscribe { reply, .. } => drop(reply.send(Err(error))),
            Command::Disconnect { .. } => {}
        }
    }
}

/// What waits on a packet id of ours.
pub(crate) enum Request {
    Publish {
        qos: QoS,
        /// QoS 2: PUBREC came and PUBREL was sent; PUBCOMP is next.
        released: bool,
        reply: PublishReply,
        permit: Option<OwnedSemaphorePermit>,
    },
    Subscribe {
        reply: SubscribeReply,
    },
}

impl Request {
    fn fail(self, error: MqttClientError) {
        match self {
            Request::Publish { reply, .. } => drop(reply.send(Err(error))),
            Request::Subscribe { reply } => drop(reply.send(Err(error))),
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
}

impl Connection {
    pub(crate) fn new(
        opened: Opened,
        commands: mpsc::Receiver<Command>,
        deliveries: mpsc::Sender<Publish>,
        window: Arc<Semaphore>,
        closed: Arc<OnceLock<CloseReason>>,
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
            window,
            closed,
        }
    }

    /// Serves the connection until it ends, then fails what is outstanding.
    pub(crate) async fn run(mut self) {
        let reason = self.serve().await;
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
            Command::Subscribe { filters, reply } => self.queue_subscribe(filters, reply),
            Command::Disconnect { reply } => {
                self.queue_control(Packet::Disconnect(Disconnect::normal()));
                self.disconnecting = Some(reply);
            }
        }
    }

    fn queue_publish(
        &mut self,
        mut publish: Box<Publish>,
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
        let request = Request::Publish {
            qos: publish.qos,
            released: false,
            reply,
            permit,
        };
        let Some(packet_id) = self.allocate(request) else {
            return;
        };
        publish.packet_id = Some(packet_id);
        if let Err(error) = self.queue(&Packet::Publish(*publish)) {
            let request = self.requests.release(packet_id).expect("just allocated");
            request.fail(error.into());
        }
    }

    fn queue_subscribe(
        &mut self,
        filters: Vec<(ByteStr, SubscriptionOptions)>,
        reply: SubscribeReply,
    ) {
        let Some(packet_id) = self.allocate(Request::Subscribe { reply }) else {
            return;
        };
        let subscribe = Subscribe {
            packet_id,
            subscription_identifier: None,
            user_properties: Vec::new(),
            filters,
        };
        if let Err(error) = self.queue(&Packet::Subscribe(subscribe)) {
            let request = self.requests.release(packet_id).expect("just allocated");
            request.fail(error.into());
        }
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

/// Resolves once `deliveries` has room for a message (or is closed). The
/// reservation is given back at once: holding it would borrow the sender
/// past the `select!`.
async fn room(deliveries: &mpsc::Sender<Publish>) {
    let _ = deliveries.reserve().await;
}
