//! `GET /stream/<topic>`: a city topic's new messages as Server-Sent
//! Events, the way the original's clients read them: `Content-Type:
//! text/event-stream` (no charset), one `data: <object>\n\n` event per
//! message on one line of compact ASCII JSON, each its own chunk, written
//! as soon as it is read (hyper flushes whenever the stream has nothing
//! more ready), and `: ping\n\n` after 15 s without an event.
//!
//! A stream starts at the topic's high watermark when it is opened (asked
//! before the answer's head is sent, so a message published after the
//! client has the head is in the stream), or at the topic's start if the
//! topic does not exist yet. It takes the batches of its topic's shared
//! [`Tails`] reader, and reads from the log itself whatever lies between
//! its position and the next batch (a tail that started after it, or
//! batches it lagged behind on): no gap, no duplicate. It ends when the
//! listener stops, when the topic is gone (deleted and not recreated), or
//! when the client goes away (hyper drops it).

mod tail;

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use citystream_client::tail::high_watermark;
use citystream_client::{Client, ClientError, ErrorCode};
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use tail::Tails;
use tail::{Batch, READ_BYTES, RETRY_PAUSE};

use crate::json::value_line;

/// A comment after this long without an event keeps idle connections open.
const HEARTBEAT: Duration = Duration::from_secs(15);
const PING: &[u8] = b": ping\n\n";

/// `data: <value as one line of compact ASCII JSON>\n\n`.
pub fn event_frame(value: &[u8]) -> Bytes {
    let line = value_line(value);
    let mut frame = Vec::with_capacity(line.len() + 8);
    frame.extend_from_slice(b"data: ");
    frame.extend_from_slice(line.as_bytes());
    frame.extend_from_slice(b"\n\n");
    Bytes::from(frame)
}

/// One client's stream of one native topic.
pub struct EventStream {
    client: Client,
    topic: String,
    receiver: broadcast::Receiver<Arc<Batch>>,
    /// The next offset to send; `None` until the first batch when the
    /// topic did not exist at connect (everything in it is then new).
    position: Option<u64>,
    /// A batch waiting for the log below it to be read first.
    held: Option<Arc<Batch>>,
    /// Frames read and not sent yet (at most one read's worth).
    pending: VecDeque<Bytes>,
    heartbeat_at: Instant,
    stop: CancellationToken,
}

impl EventStream {
    /// Opens a stream of `topic` from its current end.
    pub async fn open(
        client: &Client,
        tails: &Arc<Tails>,
        topic: String,
        stop: &CancellationToken,
    ) -> Result<EventStream, ClientError> {
        // Subscribed before the end is asked: every batch past the end
        // reaches this receiver.
        let receiver = tails.subscribe(client, &topic, stop);
        let position = match high_watermark(client, &topic, 0).await {
            Ok(end) => Some(end),
            Err(error) if error.code() == Some(ErrorCode::UNKNOWN_TOPIC) => None,
            Err(error) => return Err(error),
        };
        Ok(EventStream {
            client: client.clone(),
            topic,
            receiver,
            position,
            held: None,
            pending: VecDeque::new(),
            heartbeat_at: Instant::now() + HEARTBEAT,
            stop: stop.clone(),
        })
    }

    /// The response body: one frame per event or heartbeat.
    pub fn into_body(self) -> Body {
        let frames = futures::stream::unfold(self, |mut stream| async move {
            let frame = stream.next_frame().await?;
            Some((Ok::<_, Infallible>(frame), stream))
        });
        Body::from_stream(frames)
    }

    /// The next frame to send; `None` ends the stream.
    async fn next_frame(&mut self) -> Option<Bytes> {
        loop {
            if let Some(frame) = self.pending.pop_front() {
                self.heartbeat_at = Instant::now() + HEARTBEAT;
                return Some(frame);
            }
            if let Some(batch) = self.held.take() {
                self.take_batch(batch).await?;
                continue;
            }
            tokio::select! {
                () = self.stop.cancelled() => return None,
                () = tokio::time::sleep_until(self.heartbeat_at) => {
                    self.heartbeat_at = Instant::now() + HEARTBEAT;
                    return Some(Bytes::from_static(PING));
                }
                received = self.receiver.recv() => match received {
                    Ok(batch) => self.held = Some(batch),
                    Err(RecvError::Lagged(batches)) => {
                        // The next batch shows the gap, read from the log.
                        tracing::debug!(topic = %self.topic, batches, "stream lagged");
                        self.position.get_or_insert(0);
                    }
                    Err(RecvError::Closed) => return None,
                },
            }
        }
    }

    /// Takes `batch`'s events past the position, after reading from the log
    /// what lies between the position and the batch (one read per call:
    /// the batch is held until the gap is filled). `None` if stopped.
    async fn take_batch(&mut self, batch: Arc<Batch>) -> Option<()> {
        let position = *self.position.get_or_insert(batch.from);
        if position >= batch.from {
            self.take(batch.events.iter().cloned(), batch.next);
            return Some(());
        }
        let read = self
            .client
            .read_partition(&self.topic, 0, position, READ_BYTES, 0);
        let read = tokio::select! {
            read = read => read,
            () = self.stop.cancelled() => return None,
        };
        match read {
            Ok(read) if read.next_offset > position => {
                let events = read
                    .records
                    .iter()
                    .map(|r| (r.offset, event_frame(&r.value)));
                self.take(events, read.next_offset);
            }
            Err(error) if error.code() == Some(ErrorCode::OFFSET_OUT_OF_RANGE) => {
                // Purged by retention before this stream read it.
                self.position = Some(batch.from);
            }
            other => {
                if let Err(error) = other {
                    tracing::debug!(topic = %self.topic, %error, "stream gap read failed; retrying");
                }
                tokio::time::sleep(RETRY_PAUSE).await;
            }
        }
        self.held = Some(batch);
        Some(())
    }

    /// Queues the events at or past the position, and moves it to `next`.
    fn take(&mut self, events: impl Iterator<Item = (u64, Bytes)>, next: u64) {
        let position = self
            .position
            .expect("a position is set before events are taken");
        let new = events.filter(|(offset, _)| *offset >= position);
        self.pending.extend(new.map(|(_, frame)| frame));
        self.position = Some(position.max(next));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An event is one line: `data: `, compact ASCII JSON, a blank line.
    #[test]
    fn events_are_one_ascii_line() {
        let frame = event_frame("{\"city\": \"Zürich\",\n \"icon\": \"🌆\"}".as_bytes());
        assert_eq!(
            &frame[..],
            br#"data: {"city":"Z\u00fcrich","icon":"\ud83c\udf06"}"#
                .iter()
                .chain(b"\n\n")
                .copied()
                .collect::<Vec<u8>>()
                .as_slice()
        );
    }
}
