//! One multiplexed connection to one broker: TCP, or the broker in this
//! process (`local.rs`), which takes the requests as they are.
//!
//! Over TCP a writer task drains a bounded queue of request frames,
//! encoding whatever is queued into one reused buffer and writing it with
//! one call (reusing the buffer keeps large produce frames off freshly
//! allocated pages); a reader task decodes response frames and routes each,
//! by request id, to the `oneshot` its caller waits on. The number of
//! requests awaiting a response is bounded, every request has a timeout,
//! and when either task stops (EOF, I/O or framing error) every pending
//! request fails with an I/O error and the connection reports itself
//! closed, so the pool (`cluster.rs`) reconnects on next use.
//!
//! It does the Hello handshake and remembers the broker's limits. It knows
//! nothing of topics, leaders or retries.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicU32, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use citystream_protocol::{
    Acks, FrameCodec, HelloRequest, HelloResponse, InboundFrame, PROTOCOL_VERSION,
    PROTOCOL_VERSION_COMPACTION, PROTOCOL_VERSION_MIN, ProduceResponse, Request, RequestFrame,
    Response, decode_response_at, encode_request,
};
use futures::StreamExt;
use parking_lot::Mutex;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;

use crate::ClientError;
use crate::local::{LocalAnswer, LocalBroker};

/// Requests awaiting a response on one connection; callers wait beyond it.
pub(crate) const PENDING_REQUESTS_MAX: usize = 1024;
/// Encoded frames queued for the writer task.
const WRITE_QUEUE_FRAMES_MAX: usize = 256;
/// Largest response frame accepted; a larger one breaks the connection.
const RESPONSE_FRAME_BYTES_MAX: u32 = 256 * 1024 * 1024;
/// Queued frames are encoded together up to about this many bytes per write.
const WRITE_BUFFER_BYTES: usize = 256 * 1024;
/// A write buffer grown beyond this by a huge frame is given back afterwards.
const WRITE_BUFFER_BYTES_KEPT_MAX: usize = 8 * 1024 * 1024;

type ResponseSender = oneshot::Sender<Result<Response, ClientError>>;

/// The wait for the response of a queued request (see [`Connection::queue`]).
pub(crate) type PendingResponse =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Response, ClientError>> + Send>>;

/// One request frame for the writer, and who to tell once it is written.
struct Outbound {
    frame: RequestFrame,
    written: Option<oneshot::Sender<()>>,
}

/// Requests awaiting their response, keyed by request id. `closed` is set
/// (under the same lock) when the reader stops, so nothing registers after
/// the final drain.
#[derive(Default)]
struct PendingMap {
    senders: HashMap<u32, ResponseSender>,
    closed: bool,
}

/// A live (or dead, see [`Connection::is_closed`]) connection to one broker.
pub(crate) struct Connection {
    address: String,
    hello: HelloResponse,
    /// The negotiated protocol version, which requests are sent at and
    /// responses read at; shared with the reader task.
    version: Arc<AtomicU16>,
    link: Link,
    pending_slots: Arc<Semaphore>,
}

/// How requests reach the broker.
enum Link {
    Socket(Socket),
    /// The broker in this process (decision 0021).
    Local(Arc<dyn LocalBroker>),
}

/// The TCP side of a connection: the writer task's queue and the waiters
/// the reader task answers.
struct Socket {
    writer: mpsc::Sender<Outbound>,
    pending: Arc<Mutex<PendingMap>>,
    next_request_id: AtomicU32,
    closed: CancellationToken,
}

impl Connection {
    /// Connects, starts the reader and writer tasks and says Hello.
    pub(crate) async fn open(
        address: &str,
        client_id: &str,
        connect_timeout: Duration,
        request_timeout: Duration,
    ) -> Result<Connection, ClientError> {
        let stream = connect_stream(address, connect_timeout).await?;
        Connection::start(address, stream)
            .handshake(client_id, request_timeout)
            .await
    }

    /// A connection to the broker in this process, named `address`; says
    /// Hello as a socket's would.
    pub(crate) async fn open_local(
        address: &str,
        local: Arc<dyn LocalBroker>,
        client_id: &str,
        request_timeout: Duration,
    ) -> Result<Connection, ClientError> {
        let connection = Connection {
            address: address.to_string(),
            hello: placeholder_hello(),
            version: Arc::new(AtomicU16::new(PROTOCOL_VERSION_MIN)),
            link: Link::Local(local),
            pending_slots: Arc::new(Semaphore::new(PENDING_REQUESTS_MAX)),
        };
        connection.handshake(client_id, request_timeout).await
    }

    async fn handshake(
        mut self,
        client_id: &str,
        request_timeout: Duration,
    ) -> Result<Connection, ClientError> {
        let hello = Request::Hello(HelloRequest {
            version_min: PROTOCOL_VERSION_MIN,
            version_max: PROTOCOL_VERSION,
            client_id: client_id.to_string(),
        });
        match self.call(hello, request_timeout).await {
            Ok(Response::Hello(hello)) => {
                self.version.store(hello.version, Ordering::Release);
                self.hello = hello;
                Ok(self)
            }
            // Dropping the connection stops its tasks.
            Ok(other) => Err(ClientError::unexpected_response("Hello", &other)),
            Err(error) => Err(error),
        }
    }

    fn start(address: &str, stream: TcpStream) -> Connection {
        let (read_half, write_half) = stream.into_split();
        let (writer, queue) = mpsc::channel(WRITE_QUEUE_FRAMES_MAX);
        let pending = Arc::new(Mutex::new(PendingMap::default()));
        let closed = CancellationToken::new();
        // Hello is read the same at every version; the rest follow it.
        let version = Arc::new(AtomicU16::new(PROTOCOL_VERSION_MIN));
        tokio::spawn(write_loop(
            address.to_string(),
            write_half,
            queue,
            closed.clone(),
        ));
        tokio::spawn(read_loop(
            address.to_string(),
            read_half,
            pending.clone(),
            Arc::clone(&version),
            closed.clone(),
        ));
        Connection {
            address: address.to_string(),
            hello: placeholder_hello(),
            version,
            link: Link::Socket(Socket {
                writer,
                pending,
                next_request_id: AtomicU32::new(1),
                closed,
            }),
            pending_slots: Arc::new(Semaphore::new(PENDING_REQUESTS_MAX)),
        }
    }

    pub(crate) fn address(&self) -> &str {
        &self.address
    }

    /// What the broker said in the handshake (node id and limits).
    pub(crate) fn hello(&self) -> &HelloResponse {
        &self.hello
    }

    /// The protocol version this connection speaks.
    pub(crate) fn version(&self) -> u16 {
        self.version.load(Ordering::Acquire)
    }

    pub(crate) fn is_closed(&self) -> bool {
        match &self.link {
            Link::Socket(socket) => socket.closed.is_cancelled(),
            Link::Local(_) => false,
        }
    }

    /// Sends `request` and waits up to `timeout` for its response. A
    /// `Produce` with `Acks::None` gets no response from the broker: it
    /// resolves once written, with an empty `ProduceResponse`.
    pub(crate) async fn call(
        &self,
        request: Request,
        timeout: Duration,
    ) -> Result<Response, ClientError> {
        self.queue(request, timeout).await?.await
    }

    /// Queues `request` for the writer and returns the wait for its
    /// response. Requests queued one after another on one connection are
    /// written, and so reach the broker, in that order: a producer queues
    /// a partition's batches in sequence order and awaits the answers on
    /// tasks of their own.
    pub(crate) async fn queue(
        &self,
        request: Request,
        timeout: Duration,
    ) -> Result<PendingResponse, ClientError> {
        let api_version = self.version();
        check_version(&self.address, api_version, &request)?;
        let slot = self
            .pending_slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| ClientError::Closed)?;
        let socket = match &self.link {
            Link::Socket(socket) => socket,
            Link::Local(local) => {
                let Some(answer) = local.submit(request).await else {
                    return Err(crate::local::stopped(&self.address));
                };
                return Ok(Box::pin(async move {
                    let _slot = slot;
                    local_answer(answer, timeout).await
                }));
            }
        };
        let timeout_ms = timeout.as_millis() as u64;
        let fire_and_forget = matches!(&request, Request::Produce(p) if p.acks == Acks::None);
        let request_id = socket.next_request_id.fetch_add(1, Ordering::Relaxed);
        let frame = RequestFrame {
            request_id,
            api_version,
            request,
        };
        let address = self.address.clone();
        if fire_and_forget {
            let written = socket.write(&address, frame, true).await?;
            return Ok(Box::pin(async move {
                let _slot = slot;
                await_written(&address, written, timeout_ms).await
            }));
        }
        let response = socket.register(&address, request_id)?;
        if let Err(error) = socket.write(&address, frame, false).await {
            socket.pending.lock().senders.remove(&request_id);
            return Err(error);
        }
        let pending = socket.pending.clone();
        Ok(Box::pin(async move {
            let _slot = slot;
            match tokio::time::timeout(timeout, response).await {
                Ok(Ok(result)) => result,
                Ok(Err(_)) => Err(connection_lost(&address)),
                Err(_) => {
                    pending.lock().senders.remove(&request_id);
                    Err(ClientError::Timeout { timeout_ms })
                }
            }
        }))
    }
}

impl Socket {
    fn register(
        &self,
        address: &str,
        request_id: u32,
    ) -> Result<oneshot::Receiver<Result<Response, ClientError>>, ClientError> {
        let (sender, receiver) = oneshot::channel();
        let mut pending = self.pending.lock();
        if pending.closed {
            return Err(connection_lost(address));
        }
        let previous = pending.senders.insert(request_id, sender);
        assert!(
            previous.is_none(),
            "request id {request_id} reused while pending"
        );
        Ok(receiver)
    }

    async fn write(
        &self,
        address: &str,
        frame: RequestFrame,
        notify: bool,
    ) -> Result<Option<oneshot::Receiver<()>>, ClientError> {
        let (written, receiver) = match notify {
            true => {
                let (sender, receiver) = oneshot::channel();
                (Some(sender), Some(receiver))
            }
            false => (None, None),
        };
        self.writer
            .send(Outbound { frame, written })
            .await
            .map_err(|_| connection_lost(address))?;
        Ok(receiver)
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        // Stops the reader; the writer stops when its queue sender drops.
        self.closed.cancel();
    }
}

/// The answer of a local broker, as a socket's waiter would see it.
async fn local_answer(answer: LocalAnswer, timeout: Duration) -> Result<Response, ClientError> {
    match tokio::time::timeout(timeout, answer).await {
        Ok(Some(Ok(response))) => Ok(response),
        Ok(Some(Err(error))) => Err(ClientError::Api(error)),
        // A produce with `Acks::None`: resolved once applied.
        Ok(None) => Ok(unanswered_produce()),
        Err(_) => Err(ClientError::Timeout {
            timeout_ms: timeout.as_millis() as u64,
        }),
    }
}

/// Refuses, before sending, a request the negotiated version cannot carry:
/// a version-1 broker would take a compacted topic's creation as a delete
/// topic, since its TopicConfig has no cleanup field.
fn check_version(address: &str, version: u16, request: &Request) -> Result<(), ClientError> {
    match request {
        Request::CreateTopic(create)
            if create.config.cleanup.compacts() && version < PROTOCOL_VERSION_COMPACTION =>
        {
            Err(ClientError::InvalidArgument(format!(
                "cannot create compacted topic {} (cleanup {}): the broker at {address} speaks \
                 protocol version {version}, and compacted topics need version \
                 {PROTOCOL_VERSION_COMPACTION}",
                create.name, create.config.cleanup
            )))
        }
        _ => Ok(()),
    }
}

async fn await_written(
    address: &str,
    written: Option<oneshot::Receiver<()>>,
    timeout_ms: u64,
) -> Result<Response, ClientError> {
    let written = written.expect("a write notification was requested");
    match tokio::time::timeout(Duration::from_millis(timeout_ms), written).await {
        Ok(Ok(())) => Ok(unanswered_produce()),
        Ok(Err(_)) => Err(connection_lost(address)),
        Err(_) => Err(ClientError::Timeout { timeout_ms }),
    }
}

/// What a produce with `Acks::None` resolves to: the broker answers
/// nothing, so there are no partitions to report.
fn unanswered_produce() -> Response {
    Response::Produce(ProduceResponse {
        partitions: Vec::new(),
    })
}

fn connection_lost(address: &str) -> ClientError {
    ClientError::Io {
        address: address.to_string(),
        source: std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "connection closed before the response arrived",
        ),
    }
}

async fn connect_stream(address: &str, timeout: Duration) -> Result<TcpStream, ClientError> {
    let connect_error = |source| ClientError::Connect {
        address: address.to_string(),
        source,
    };
    let stream = tokio::time::timeout(timeout, TcpStream::connect(address))
        .await
        .map_err(|_| {
            connect_error(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no connection within {} ms", timeout.as_millis()),
            ))
        })?
        .map_err(connect_error)?;
    stream.set_nodelay(true).map_err(connect_error)?;
    Ok(stream)
}

/// Limits used until the handshake answers (only Hello is sent before).
fn placeholder_hello() -> HelloResponse {
    HelloResponse {
        version: PROTOCOL_VERSION,
        node_id: 0,
        cluster_id: String::new(),
        frame_bytes_max: citystream_protocol::FRAME_BYTES_MAX_DEFAULT,
        record_bytes_max: citystream_protocol::FRAME_BYTES_MAX_DEFAULT,
    }
}

/// Writes queued frames until the queue closes, a write fails or the
/// connection is closed; everything queued at one moment shares a write.
async fn write_loop(
    address: String,
    mut socket: OwnedWriteHalf,
    mut queue: mpsc::Receiver<Outbound>,
    closed: CancellationToken,
) {
    let mut out = BytesMut::with_capacity(WRITE_BUFFER_BYTES);
    let mut written = Vec::new();
    loop {
        let first = tokio::select! {
            _ = closed.cancelled() => break,
            next = queue.recv() => match next {
                Some(outbound) => outbound,
                None => break,
            },
        };
        encode_queued(first, &mut queue, &mut out, &mut written);
        if let Err(error) = socket.write_all(&out).await {
            tracing::debug!(%address, %error, "write failed; closing the connection");
            break;
        }
        out.clear();
        if out.capacity() > WRITE_BUFFER_BYTES_KEPT_MAX {
            out = BytesMut::with_capacity(WRITE_BUFFER_BYTES);
        }
        for notify in written.drain(..) {
            let _ = notify.send(());
        }
    }
    closed.cancel();
    let _ = socket.shutdown().await;
}

/// Encodes `first` and whatever else is queued, up to about
/// `WRITE_BUFFER_BYTES`, into `out`.
fn encode_queued(
    first: Outbound,
    queue: &mut mpsc::Receiver<Outbound>,
    out: &mut BytesMut,
    written: &mut Vec<oneshot::Sender<()>>,
) {
    let mut next = Some(first);
    while let Some(outbound) = next {
        encode_request(&outbound.frame, out);
        written.extend(outbound.written);
        next = match out.len() < WRITE_BUFFER_BYTES {
            true => queue.try_recv().ok(),
            false => None,
        };
    }
}

/// Routes responses to their callers until the stream ends or fails, then
/// fails every pending request.
async fn read_loop(
    address: String,
    socket: OwnedReadHalf,
    pending: Arc<Mutex<PendingMap>>,
    version: Arc<AtomicU16>,
    closed: CancellationToken,
) {
    let mut frames = FramedRead::new(socket, FrameCodec::for_responses(RESPONSE_FRAME_BYTES_MAX));
    loop {
        let next = tokio::select! {
            _ = closed.cancelled() => break,
            next = frames.next() => next,
        };
        let body = match next {
            Some(Ok(InboundFrame::Frame(body))) => body,
            Some(Ok(InboundFrame::Oversize { frame_len, .. })) => {
                tracing::warn!(%address, frame_len, "response frame over the limit");
                break;
            }
            Some(Err(error)) => {
                tracing::debug!(%address, %error, "read failed; closing the connection");
                break;
            }
            None => break,
        };
        let version = version.load(Ordering::Acquire);
        if !route_response(&address, body, version, &pending) {
            break;
        }
    }
    closed.cancel();
    let mut pending = pending.lock();
    pending.closed = true;
    for (_, sender) in pending.senders.drain() {
        let _ = sender.send(Err(connection_lost(&address)));
    }
}

/// Hands one response to its waiter; false if the stream cannot go on.
fn route_response(address: &str, body: Bytes, version: u16, pending: &Mutex<PendingMap>) -> bool {
    let (request_id, result) = match decode_response_at(body, version) {
        Ok(frame) => (frame.request_id, frame.response.map_err(ClientError::Api)),
        Err(error) => match error.request_id {
            Some(request_id) => (request_id, Err(ClientError::Protocol(error.to_string()))),
            None => {
                tracing::warn!(%address, %error, "undecodable response header");
                return false;
            }
        },
    };
    let sender = pending.lock().senders.remove(&request_id);
    match sender {
        Some(sender) => {
            let _ = sender.send(result);
        }
        None => tracing::debug!(%address, request_id, "response for an abandoned request"),
    }
    true
}
