//! [`Tails`]: one reader per (topic, partition) in a process, shared by
//! every live stream of that partition there (the HTTP API's Server-Sent
//! Events, MQTT subscriptions). A tail long-polls the partition's leader
//! from the high watermark on and broadcasts each batch of new records
//! ([`TailBatch`]) on a bounded `broadcast` channel, which never waits for
//! a receiver: a slow stream falls behind and lags, it does not slow the
//! tail, the producers or other streams. A tail stops when its last
//! receiver is gone (checked under the registry lock, so a new subscriber
//! never attaches to a stopping tail).
//!
//! Each batch also carries a rendering `R` of its records, made once by the
//! tail for every stream (the SSE events' JSON; `()` when a transport needs
//! none).

mod follower;

pub use follower::{Followed, Follower, PartitionKey, Span, Start};

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use citystream_protocol::OffsetSpec;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::{Client, ConsumerRecord, ErrorCode};

/// Bytes per long-poll fetch of a tail.
const TAIL_FETCH_BYTES: u32 = 1024 * 1024;
/// How long one long poll waits for new records.
const TAIL_WAIT_MS: u32 = 1_000;
/// Pause after a failed read (no leader yet, a node down).
const TAIL_RETRY: Duration = Duration::from_millis(200);

/// Records read in one fetch: every offset of `[from, next)` is either in
/// `records` or held a control batch (which consumers skip). `rendered` is
/// what the tails' render function made of `records`, once for every stream.
#[derive(Debug)]
pub struct TailBatch<R> {
    pub from: u64,
    pub next: u64,
    pub records: Vec<ConsumerRecord>,
    pub rendered: R,
}

type Key = (String, u32);

/// The tails of a process (or of one transport in it).
pub struct Tails<R> {
    running: Mutex<HashMap<Key, broadcast::Sender<Arc<TailBatch<R>>>>>,
    /// Batches a tail keeps for receivers that have not taken them yet.
    buffer_batches: usize,
    render: fn(&[ConsumerRecord]) -> R,
}

impl Tails<()> {
    /// Tails whose batches carry the records only.
    pub fn plain(buffer_batches: usize) -> Tails<()> {
        Tails::new(buffer_batches, |_| ())
    }
}

impl<R: Send + Sync + 'static> Tails<R> {
    pub fn new(buffer_batches: usize, render: fn(&[ConsumerRecord]) -> R) -> Tails<R> {
        Tails {
            running: Mutex::new(HashMap::new()),
            buffer_batches: buffer_batches.max(1),
            render,
        }
    }

    /// A receiver of `topic`/`partition`'s new records, starting its tail
    /// if none runs.
    pub fn subscribe(
        self: &Arc<Self>,
        client: &Client,
        topic: &str,
        partition: u32,
        shutdown: &CancellationToken,
    ) -> broadcast::Receiver<Arc<TailBatch<R>>> {
        let mut running = self.running.lock().expect("never poisoned");
        let key = (topic.to_owned(), partition);
        if let Some(sender) = running.get(&key) {
            return sender.subscribe();
        }
        let (sender, receiver) = broadcast::channel(self.buffer_batches);
        running.insert(key.clone(), sender.clone());
        let tail = Tail {
            tails: self.clone(),
            client: client.clone(),
            key,
            sender,
        };
        tokio::spawn(tail.run(shutdown.clone()));
        receiver
    }

    /// Removes `key`'s tail if nobody listens; true if it was removed.
    fn stop_if_unused(&self, key: &Key) -> bool {
        let mut running = self.running.lock().expect("never poisoned");
        let unused = running
            .get(key)
            .is_none_or(|sender| sender.receiver_count() == 0);
        if unused {
            running.remove(key);
        }
        unused
    }
}

struct Tail<R> {
    tails: Arc<Tails<R>>,
    client: Client,
    key: Key,
    sender: broadcast::Sender<Arc<TailBatch<R>>>,
}

impl<R: Send + Sync + 'static> Tail<R> {
    async fn run(self, shutdown: CancellationToken) {
        let (topic, partition) = (&self.key.0, self.key.1);
        let mut next = None;
        loop {
            if shutdown.is_cancelled() || self.tails.stop_if_unused(&self.key) {
                return;
            }
            let from = match next {
                Some(offset) => offset,
                None => match self.latest().await {
                    Some(offset) => offset,
                    None => continue,
                },
            };
            let read = tokio::select! {
                read = self.client.read_partition(topic, partition, from, TAIL_FETCH_BYTES, TAIL_WAIT_MS) => read,
                _ = shutdown.cancelled() => return,
            };
            match read {
                Ok(read) => {
                    if read.next_offset > from {
                        let batch = TailBatch {
                            from,
                            next: read.next_offset,
                            rendered: (self.tails.render)(&read.records),
                            records: read.records,
                        };
                        // No receiver now is fine: the next round stops.
                        let _ = self.sender.send(Arc::new(batch));
                    }
                    next = Some(read.next_offset);
                }
                Err(error) if error.code() == Some(ErrorCode::OFFSET_OUT_OF_RANGE) => next = None,
                Err(error) if error.code() == Some(ErrorCode::UNKNOWN_TOPIC) => {
                    self.tails
                        .running
                        .lock()
                        .expect("never poisoned")
                        .remove(&self.key);
                    return;
                }
                Err(error) => {
                    tracing::debug!(topic, partition, %error, "tail read failed; retrying");
                    tokio::time::sleep(TAIL_RETRY).await;
                }
            }
        }
    }

    /// The partition's high watermark, or `None` after a pause if it cannot
    /// be had now.
    async fn latest(&self) -> Option<u64> {
        let admin = self.client.admin();
        match admin
            .list_offsets(&self.key.0, self.key.1, OffsetSpec::Latest)
            .await
        {
            Ok(offset) => Some(offset),
            Err(error) => {
                tracing::debug!(topic = %self.key.0, partition = self.key.1, %error, "tail start failed");
                tokio::time::sleep(TAIL_RETRY).await;
                None
            }
        }
    }
}
