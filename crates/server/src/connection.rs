//! One client connection. A reader loop frames requests with the protocol
//! [`FrameCodec`] and applies them **in arrival order**: every request that
//! does not wait (produce, commit, admin, ...) is served inline by the
//! reader, so two pipelined produces to one partition are appended in the
//! order they were sent and two pipelined commits never land out of order.
//! Only requests that wait — a long-poll fetch, a blocking group join — run
//! as their own task (at most `in_flight_per_connection_max` at once), so
//! they never hold up the requests behind them. Responses go to the writer
//! over a bounded queue and may therefore leave out of order, matched to
//! requests by `request_id` (the pipelining contract).
//!
//! Lifetime: the reader stops on end of stream, a fatal framing error, a
//! writer failure or shutdown, and then cancels the connection's token so
//! in-flight waits return early. The writer ends once every in-flight task
//! has dropped its handle on the queue, so responses already being computed
//! are still flushed before the socket closes. It does not know what any
//! request means; that is `dispatch.rs`.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use citystream_protocol::{
    ApiError, ApiKey, ErrorCode, FrameCodec, FrameError, InboundFrame, Request, RequestDecodeError,
    RequestFrame, Response, ResponseFrame, decode_request, encode_error_response,
    encode_response_at,
};
use futures::{FutureExt, StreamExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::dispatch::{Outcome, dispatch};
use crate::server::Shared;
use crate::writer;

/// Room in the response queue beyond one frame per in-flight request, for
/// the answers the reader sends itself (handshake, undecodable frames).
const RESPONSE_QUEUE_SLACK_FRAMES: usize = 8;

/// The reader stopped and the connection is winding down.
struct Closing;

/// Counts the connection as closed when dropped (however `run` ends).
fn counted_connection() -> impl Drop {
    struct Closed;
    impl Drop for Closed {
        fn drop(&mut self) {
            crate::metrics::connections("native", -1.0);
        }
    }
    Closed
}

/// Serves one accepted socket until it closes or the server shuts down.
pub(crate) async fn run(stream: TcpStream, shared: Arc<Shared>, stop: CancellationToken) {
    tracing::debug!("connection opened");
    crate::metrics::connections("native", 1.0);
    let _closed = counted_connection();
    let (read_half, write_half) = stream.into_split();
    let in_flight_max = shared.config.in_flight_per_connection_max;
    let (responses, queue) = mpsc::channel(in_flight_max + RESPONSE_QUEUE_SLACK_FRAMES);
    let reader = Reader {
        frames: FramedRead::new(
            read_half,
            FrameCodec::for_requests(shared.config.frame_bytes_max),
        ),
        in_flight: Arc::new(Semaphore::new(in_flight_max)),
        handshaken: false,
        responses,
        stop: stop.clone(),
        shared,
    };
    tokio::join!(reader.run(), writer::run(queue, write_half, stop));
    tracing::debug!("connection closed");
}

struct Reader {
    frames: FramedRead<OwnedReadHalf, FrameCodec>,
    /// One permit per request being served.
    in_flight: Arc<Semaphore>,
    /// Whether a Hello has succeeded on this connection.
    handshaken: bool,
    responses: mpsc::Sender<Bytes>,
    /// Cancelled on shutdown, or by the reader or writer when they stop.
    stop: CancellationToken,
    shared: Arc<Shared>,
}

impl Reader {
    async fn run(mut self) {
        loop {
            let frame = tokio::select! {
                biased;
                () = self.stop.cancelled() => break,
                frame = self.frames.next() => frame,
            };
            let step = match frame {
                Some(Ok(InboundFrame::Frame(body))) => self.on_frame(body).await,
                Some(Ok(InboundFrame::Oversize {
                    request_id,
                    api_key,
                    frame_len,
                })) => self.on_oversize(request_id, api_key, frame_len).await,
                Some(Err(error)) => Err(log_frame_error(&error)),
                None => Err(Closing),
            };
            if step.is_err() {
                break;
            }
        }
        // In-flight long polls and joins return early; their answers (and
        // those already queued) are still written before the socket closes.
        self.stop.cancel();
    }

    async fn on_frame(&mut self, body: Bytes) -> Result<(), Closing> {
        let frame = match decode_request(body) {
            Ok(frame) => frame,
            Err(error) => return self.on_undecodable(error).await,
        };
        if matches!(frame.request, Request::Hello(_)) {
            return self.on_hello(frame).await;
        }
        if !self.handshaken {
            let error = ApiError::new(
                ErrorCode::HANDSHAKE_REQUIRED,
                "the first request on a connection must be Hello",
            );
            let api_key = frame.request.api_key();
            return self
                .send(encode(header_of(&frame), api_key, Err(error)))
                .await;
        }
        if let Err(error) =
            crate::handlers::versions::check(&self.shared, frame.api_version, &frame.request)
        {
            return self.refuse(frame, error).await;
        }
        if waits(&frame.request) {
            return self.spawn_request(frame).await;
        }
        if matches!(frame.request, Request::Produce(_)) && self.shared.node.is_some() {
            return self.submit_produce(frame).await;
        }
        self.serve_inline(frame).await
    }

    /// Serves a request that does not wait, before reading the next frame.
    async fn serve_inline(&mut self, frame: RequestFrame) -> Result<(), Closing> {
        let api_key = frame.request.api_key();
        let span = tracing::info_span!("request", request_id = frame.request_id, api = %api_key);
        let header = header_of(&frame);
        let outcome = serve_request(&self.shared, &self.stop, frame.request)
            .instrument(span)
            .await;
        match outcome {
            Some(response) => self.send(encode(header, api_key, response)).await,
            None => Ok(()),
        }
    }

    /// Answers a request its version may not make; a produce that asked
    /// for no acknowledgement gets no answer, as always.
    async fn refuse(&mut self, frame: RequestFrame, error: ApiError) -> Result<(), Closing> {
        tracing::debug!(request_id = frame.request_id, %error, "request refused at its version");
        if matches!(&frame.request, Request::Produce(p) if p.acks == citystream_protocol::Acks::None)
        {
            return Ok(());
        }
        let api_key = frame.request.api_key();
        self.send(encode(header_of(&frame), api_key, Err(error)))
            .await
    }

    /// Hello is answered inline, in arrival order, so requests pipelined
    /// right behind it already see the connection as handshaken.
    async fn on_hello(&mut self, frame: RequestFrame) -> Result<(), Closing> {
        let header = header_of(&frame);
        let Some(response) = dispatch(&self.shared, &self.stop, frame.request).await else {
            return Ok(());
        };
        self.handshaken |= response.is_ok();
        // Hello's layout is the same in every version.
        self.send(encode(header, ApiKey::Hello, response)).await
    }

    /// Answers a frame the codec could not decode; the connection stays up.
    async fn on_undecodable(&mut self, error: RequestDecodeError) -> Result<(), Closing> {
        let Some(request_id) = error.request_id else {
            // The frame codec never yields a frame shorter than its header,
            // so this is unreachable in practice; without an id there is no
            // way to answer, so give up on the stream.
            tracing::warn!(%error, "request without a readable header; closing");
            return Err(Closing);
        };
        tracing::warn!(request_id, error = %error.error, "undecodable request");
        let api_key = error.api_key.unwrap_or_default();
        self.send(encode_error(request_id, api_key, &error.error))
            .await
    }

    async fn on_oversize(
        &mut self,
        request_id: u32,
        api_key: u16,
        frame_len: u32,
    ) -> Result<(), Closing> {
        let limit = self.shared.config.frame_bytes_max;
        tracing::warn!(request_id, frame_len, limit, "oversize frame skipped");
        let error = ApiError::new(
            ErrorCode::FRAME_TOO_LARGE,
            format!("frame of {frame_len} bytes exceeds the limit of {limit} bytes"),
        );
        self.send(encode_error(request_id, api_key, &error)).await
    }

    /// Runs one request as its own task once an in-flight slot is free;
    /// waiting for the slot is the connection's backpressure.
    async fn spawn_request(&mut self, frame: RequestFrame) -> Result<(), Closing> {
        let slot = self.take_slot().await?;
        let header = header_of(&frame);
        let request = frame.request;
        let api_key = request.api_key();
        let span = tracing::info_span!("request", request_id = header.request_id, api = %api_key);
        let (shared, stop) = (Arc::clone(&self.shared), self.stop.clone());
        let answer = async move { serve_request(&shared, &stop, request).await };
        self.respond_later(header, api_key, span, slot, answer);
        Ok(())
    }

    /// A produce in cluster mode: its batches are submitted to Raft here,
    /// in arrival order (as a single broker appends them inline), and the
    /// wait for their acknowledgement runs apart, so the next request on
    /// the connection is read meanwhile and proposals pipeline.
    async fn submit_produce(&mut self, frame: RequestFrame) -> Result<(), Closing> {
        let slot = self.take_slot().await?;
        let header = header_of(&frame);
        let Request::Produce(produce) = frame.request else {
            unreachable!("submit_produce is only called for produce requests");
        };
        let node = Arc::clone(self.shared.node.as_ref().expect("checked by the caller"));
        let span =
            tracing::info_span!("request", request_id = header.request_id, api = %ApiKey::Produce);
        let acked = crate::handlers::replicated::submit_produce(&self.shared, &node, produce)
            .instrument(span.clone())
            .await;
        self.respond_later(header, ApiKey::Produce, span, slot, acked);
        Ok(())
    }

    /// Waits for an in-flight slot (or the connection's end).
    async fn take_slot(&self) -> Result<OwnedSemaphorePermit, Closing> {
        tokio::select! {
            biased;
            () = self.stop.cancelled() => Err(Closing),
            slot = Arc::clone(&self.in_flight).acquire_owned() => {
                Ok(slot.expect("the in-flight semaphore is never closed"))
            }
        }
    }

    /// Queues the response `answer` resolves to (if any) from a task of
    /// its own, then frees `slot`.
    fn respond_later<F>(
        &self,
        header: RequestHeader,
        api_key: ApiKey,
        span: tracing::Span,
        slot: OwnedSemaphorePermit,
        answer: F,
    ) where
        F: Future<Output = Option<Result<Response, ApiError>>> + Send + 'static,
    {
        let responses = self.responses.clone();
        let started = std::time::Instant::now();
        self.shared.tasks.spawn(
            async move {
                let answer = answer.await;
                let ok = !matches!(answer, Some(Err(_)));
                crate::metrics::request_served(api_key, started.elapsed(), ok);
                if let Some(response) = answer {
                    // A closed queue means the writer is gone with the socket.
                    let _ = responses.send(encode(header, api_key, response)).await;
                }
                drop(slot);
            }
            .instrument(span),
        );
    }

    async fn send(&self, frame: Bytes) -> Result<(), Closing> {
        self.responses.send(frame).await.map_err(|_| Closing)
    }
}

/// Whether a request may wait (for data or for a rebalance) and so must not
/// hold up the connection's reader.
pub(crate) fn waits(request: &Request) -> bool {
    matches!(request, Request::Fetch(_) | Request::JoinGroup(_))
}

/// Dispatches one request; a panicking handler (a bug) costs the client an
/// `INTERNAL` answer, not the connection or the server.
pub(crate) async fn serve_request(
    shared: &Shared,
    stop: &CancellationToken,
    request: Request,
) -> Outcome {
    let api = request.api_key();
    let started = std::time::Instant::now();
    let outcome = dispatch_guarded(shared, stop, request).await;
    let ok = !matches!(outcome, Some(Err(_)));
    crate::metrics::request_served(api, started.elapsed(), ok);
    outcome
}

async fn dispatch_guarded(shared: &Shared, stop: &CancellationToken, request: Request) -> Outcome {
    match AssertUnwindSafe(dispatch(shared, stop, request))
        .catch_unwind()
        .await
    {
        Ok(Some(Err(error))) => {
            tracing::debug!(code = %error.code, message = %error.message, "request failed");
            Some(Err(error))
        }
        Ok(outcome) => outcome,
        Err(_) => {
            tracing::error!("request handler panicked");
            Some(Err(ApiError::new(
                ErrorCode::INTERNAL,
                "internal error while serving the request",
            )))
        }
    }
}

fn log_frame_error(error: &FrameError) -> Closing {
    match error {
        FrameError::Io(error) => tracing::debug!(%error, "read failed; closing"),
        _ => tracing::warn!(%error, "unframeable input; closing"),
    }
    Closing
}

/// What a response needs of its request: the id it echoes and the
/// version it is written at.
#[derive(Debug, Clone, Copy)]
struct RequestHeader {
    request_id: u32,
    api_version: u16,
}

fn header_of(frame: &RequestFrame) -> RequestHeader {
    RequestHeader {
        request_id: frame.request_id,
        api_version: frame.api_version,
    }
}

/// Encodes the answer to a request, at the request's version.
fn encode(request: RequestHeader, api_key: ApiKey, response: Result<Response, ApiError>) -> Bytes {
    let mut out = BytesMut::new();
    let frame = ResponseFrame {
        request_id: request.request_id,
        api_key,
        response,
    };
    encode_response_at(&frame, request.api_version, &mut out);
    out.freeze()
}

fn encode_error(request_id: u32, api_key: u16, error: &ApiError) -> Bytes {
    let mut out = BytesMut::new();
    encode_error_response(request_id, api_key, error, &mut out);
    out.freeze()
}
