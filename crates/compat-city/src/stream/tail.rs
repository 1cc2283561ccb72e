//! [`Tails`]: one reader per native topic on a node, shared by every
//! stream of that topic. A tail long-polls partition 0 from the topic's
//! end (from its start if the topic did not exist yet: everything in it is
//! then new) and broadcasts each read as a [`Batch`] of events framed
//! once for every stream, on a bounded `broadcast` channel that never
//! waits for a receiver: a slow stream lags and reads the gap from the
//! log itself (`super`), it does not slow the tail or other streams.
//!
//! A tail stops when its last receiver is gone (checked under the registry
//! lock, so a new stream never attaches to a stopping tail), when the node
//! stops, or when its topic is gone (its streams then end).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use citystream_client::{Client, ClientError, ErrorCode};
use citystream_protocol::OffsetSpec;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::event_frame;

/// Bytes per long-poll read of a tail.
pub const READ_BYTES: u32 = 1024 * 1024;
/// How long one long poll waits for new records.
const READ_WAIT_MS: u32 = 1_000;
/// Pause after a failed read (no leader yet, a node down), and between
/// looks for a topic that does not exist yet.
pub const RETRY_PAUSE: Duration = Duration::from_millis(200);
/// Batches a tail keeps for streams that have not taken them yet.
const BUFFER_BATCHES: usize = 1_024;

/// One read of a tail: every offset of `[from, next)` is either one of
/// `events` (with its offset) or held no message.
#[derive(Debug)]
pub struct Batch {
    pub from: u64,
    pub next: u64,
    pub events: Vec<(u64, Bytes)>,
}

/// The running tails of a node, by native topic.
#[derive(Default)]
pub struct Tails {
    running: Mutex<HashMap<String, broadcast::Sender<Arc<Batch>>>>,
}

impl Tails {
    /// A receiver of `topic`'s new messages, starting its tail if none runs.
    pub fn subscribe(
        self: &Arc<Self>,
        client: &Client,
        topic: &str,
        stop: &CancellationToken,
    ) -> broadcast::Receiver<Arc<Batch>> {
        let mut running = self.running.lock().expect("never poisoned");
        if let Some(sender) = running.get(topic) {
            return sender.subscribe();
        }
        let (sender, receiver) = broadcast::channel(BUFFER_BATCHES);
        running.insert(topic.to_owned(), sender.clone());
        let tail = Tail {
            tails: self.clone(),
            client: client.clone(),
            topic: topic.to_owned(),
            sender,
        };
        tokio::spawn(tail.run(stop.clone()));
        receiver
    }

    /// Removes `topic`'s tail if nobody listens; true if it was removed.
    fn stop_if_unused(&self, topic: &str) -> bool {
        let mut running = self.running.lock().expect("never poisoned");
        let unused = running
            .get(topic)
            .is_none_or(|sender| sender.receiver_count() == 0);
        if unused {
            running.remove(topic);
        }
        unused
    }

    fn remove(&self, topic: &str) {
        self.running.lock().expect("never poisoned").remove(topic);
    }
}

struct Tail {
    tails: Arc<Tails>,
    client: Client,
    topic: String,
    sender: broadcast::Sender<Arc<Batch>>,
}

impl Tail {
    async fn run(self, stop: CancellationToken) {
        let Some(mut position) = self.begin(&stop).await else {
            return;
        };
        tracing::debug!(topic = %self.topic, position, "stream tail started");
        loop {
            if stop.is_cancelled() || self.tails.stop_if_unused(&self.topic) {
                return;
            }
            let read =
                self.client
                    .read_partition(&self.topic, 0, position, READ_BYTES, READ_WAIT_MS);
            let read = tokio::select! {
                read = read => read,
                () = stop.cancelled() => return,
            };
            match read {
                Ok(read) if read.next_offset > position => {
                    let events = read
                        .records
                        .iter()
                        .map(|record| (record.offset, event_frame(&record.value)))
                        .collect();
                    let batch = Batch {
                        from: position,
                        next: read.next_offset,
                        events,
                    };
                    // No receiver now is fine: the next round stops.
                    let _ = self.sender.send(Arc::new(batch));
                    position = read.next_offset;
                }
                Ok(_) => {}
                Err(error) if error.code() == Some(ErrorCode::UNKNOWN_TOPIC) => {
                    tracing::info!(topic = %self.topic, "topic deleted; its streams end");
                    self.tails.remove(&self.topic);
                    return;
                }
                Err(error) if error.code() == Some(ErrorCode::OFFSET_OUT_OF_RANGE) => {
                    // Purged by retention past the tail: go on from the end.
                    if let Ok(end) = self.offset(OffsetSpec::Latest).await {
                        position = end;
                    }
                }
                Err(error) => {
                    tracing::debug!(topic = %self.topic, %error, "stream tail read failed; retrying");
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
            }
        }
    }

    /// Where the tail starts: the end of the topic, or its start if it does
    /// not exist yet (waiting for it); `None` once nobody listens.
    async fn begin(&self, stop: &CancellationToken) -> Option<u64> {
        let mut which = OffsetSpec::Latest;
        loop {
            match self.offset(which).await {
                Ok(offset) => return Some(offset),
                Err(error) if error.code() == Some(ErrorCode::UNKNOWN_TOPIC) => {
                    which = OffsetSpec::Earliest;
                }
                Err(error) => {
                    tracing::debug!(topic = %self.topic, %error, "stream tail start failed");
                }
            }
            tokio::select! {
                () = tokio::time::sleep(RETRY_PAUSE) => {}
                () = stop.cancelled() => return None,
            }
            if self.tails.stop_if_unused(&self.topic) {
                return None;
            }
        }
    }

    async fn offset(&self, which: OffsetSpec) -> Result<u64, ClientError> {
        let admin = self.client.admin();
        admin.list_offsets(&self.topic, 0, which).await
    }
}
