//! [`Follower`]: one live reader of any set of partitions, from positions
//! of its own. It takes new records from the shared [`Tails`] and reads the
//! log itself (through the client, from each leader) whenever it is behind
//! them: at the start, after a gap between its position and a tail batch,
//! and after it lagged (the tail's buffer ran past it). Every record of a
//! followed partition at or after the start position is yielded once, in
//! offset order; what retention removed before it was read is reported as
//! [`Followed::Skipped`].
//!
//! It owns no task: the caller drives it with [`Follower::next`], which is
//! cancel-safe (positions move only when a span is returned), so it can sit
//! in a `select!` beside a connection's other work. A caller that stops
//! calling `next` simply lags; nothing is lost, since positions are offsets.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use citystream_protocol::OffsetSpec;
use futures::stream::{AbortHandle, SelectAll};
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use super::{TailBatch, Tails};
use crate::{Client, ClientError, ConsumerRecord, ErrorCode};

/// Bytes per catch-up read from the log.
const CATCH_UP_FETCH_BYTES: u32 = 1024 * 1024;
/// Pause after a failed catch-up read (no leader yet, a node down).
const CATCH_UP_RETRY: Duration = Duration::from_millis(200);

/// A followed partition.
pub type PartitionKey = (Arc<str>, u32);

/// Where a followed partition starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// At the high watermark when [`Follower::follow`] is called: only new
    /// records.
    Latest,
    /// At the first record still in the log.
    Earliest,
    /// At this offset (a stored position).
    Offset(u64),
}

/// Records of one partition, in offset order, none before the position the
/// follower had.
pub enum Span<R> {
    /// From a shared tail batch, starting at `records[first]`.
    Shared(Arc<TailBatch<R>>, usize),
    /// Read from the log by this follower.
    Read(Vec<ConsumerRecord>),
}

impl<R> Span<R> {
    pub fn records(&self) -> &[ConsumerRecord] {
        match self {
            Span::Shared(batch, first) => &batch.records[*first..],
            Span::Read(records) => records,
        }
    }
}

/// What [`Follower::next`] returns.
pub enum Followed<R> {
    /// New records of a partition; the position is past them.
    Records {
        partition: PartitionKey,
        span: Span<R>,
    },
    /// Retention removed `[from, to)` before this follower read it; the
    /// position moved to `to`.
    Skipped {
        partition: PartitionKey,
        from: u64,
        to: u64,
    },
}

/// One partition's tail batches, with its key.
type Received<R> = Pin<
    Box<
        dyn futures::Stream<
                Item = (
                    PartitionKey,
                    Result<Arc<TailBatch<R>>, BroadcastStreamRecvError>,
                ),
            > + Send
            + Sync,
    >,
>;

/// A live reader of partitions; see the module docs.
pub struct Follower<R> {
    client: Client,
    tails: Arc<Tails<R>>,
    shutdown: CancellationToken,
    /// `shutdown`'s wait, made once: a wait made per call registers and
    /// unregisters with the token on every record batch.
    stopped: Pin<Box<WaitForCancellationFutureOwned>>,
    positions: HashMap<PartitionKey, u64>,
    /// The tails' receivers, polled only when woken (`SelectAll`): an
    /// idle partition costs nothing per turn.
    receivers: SelectAll<Received<R>>,
    /// Ends a partition's receiver on `unfollow`.
    stops: HashMap<PartitionKey, AbortHandle>,
    /// Partitions to read from the log before taking tail batches again,
    /// with the offset to read up to (`None`: the high watermark).
    behind: HashMap<PartitionKey, Option<u64>>,
    /// A tail batch that arrived while its partition was behind, applied
    /// once the gap before it is read.
    held: HashMap<PartitionKey, Arc<TailBatch<R>>>,
}

impl<R: Send + Sync + 'static> Follower<R> {
    pub fn new(client: Client, tails: Arc<Tails<R>>, shutdown: CancellationToken) -> Follower<R> {
        Follower {
            client,
            tails,
            stopped: Box::pin(shutdown.clone().cancelled_owned()),
            shutdown,
            positions: HashMap::new(),
            receivers: SelectAll::new(),
            stops: HashMap::new(),
            behind: HashMap::new(),
            held: HashMap::new(),
        }
    }

    /// Starts following `topic`/`partition` at `start` (a partition already
    /// followed keeps its position). It subscribes to the partition's tail
    /// before it looks up the start, so no record falls between the two.
    pub async fn follow(
        &mut self,
        topic: &str,
        partition: u32,
        start: Start,
    ) -> Result<(), ClientError> {
        let key: PartitionKey = (Arc::from(topic), partition);
        if self.positions.contains_key(&key) {
            return Ok(());
        }
        let receiver = self
            .tails
            .subscribe(&self.client, topic, partition, &self.shutdown);
        let position = match start {
            Start::Offset(offset) => offset,
            Start::Latest => self.list(topic, partition, OffsetSpec::Latest).await?,
            Start::Earliest => self.list(topic, partition, OffsetSpec::Earliest).await?,
        };
        let keyed = key.clone();
        let batches = BroadcastStream::new(receiver).map(move |batch| (keyed.clone(), batch));
        let (batches, stop) = futures::stream::abortable(batches);
        self.receivers.push(Box::pin(batches));
        if let Some(previous) = self.stops.insert(key.clone(), stop) {
            previous.abort();
        }
        self.positions.insert(key.clone(), position);
        // Whatever lies between the position and the first tail batch is
        // read from the log.
        self.behind.insert(key, None);
        Ok(())
    }

    /// Stops following a partition.
    pub fn unfollow(&mut self, topic: &str, partition: u32) {
        let key: PartitionKey = (Arc::from(topic), partition);
        if let Some(stop) = self.stops.remove(&key) {
            stop.abort();
        }
        self.positions.remove(&key);
        self.behind.remove(&key);
        self.held.remove(&key);
    }

    /// The followed partitions and the offset each reads next.
    pub fn positions(&self) -> &HashMap<PartitionKey, u64> {
        &self.positions
    }

    /// Whether `topic`/`partition` is followed.
    pub fn follows(&self, topic: &str, partition: u32) -> bool {
        self.positions.contains_key(&(Arc::from(topic), partition))
    }

    /// The next records of any followed partition; `None` at shutdown or
    /// when nothing is followed. Cancel-safe.
    pub async fn next(&mut self) -> Option<Followed<R>> {
        loop {
            if self.shutdown.is_cancelled() || self.positions.is_empty() {
                return None;
            }
            if let Some(key) = self.behind.keys().next().cloned() {
                // Boxed: a read is a large future and catching up is the
                // rare path; inline it would enlarge every caller's task.
                match Box::pin(self.catch_up(&key)).await {
                    Some(followed) => return Some(followed),
                    None => continue,
                }
            }
            let held = self.held.keys().next().cloned();
            if let Some(key) = held {
                let batch = self.held.remove(&key).expect("just seen");
                if let Some(followed) = self.take(key, batch) {
                    return Some(followed);
                }
                continue;
            }
            let item = tokio::select! {
                item = self.receivers.next() => item,
                _ = &mut self.stopped => return None,
            };
            match item? {
                (key, Ok(batch)) => {
                    if let Some(followed) = self.take(key, batch) {
                        return Some(followed);
                    }
                }
                (key, Err(BroadcastStreamRecvError::Lagged(_))) => {
                    self.behind.insert(key, None);
                }
            }
        }
    }

    /// Applies a tail batch: the records at or past the position, or, if
    /// the batch starts past it, a catch-up first.
    fn take(&mut self, key: PartitionKey, batch: Arc<TailBatch<R>>) -> Option<Followed<R>> {
        let position = *self.positions.get(&key)?;
        if batch.from > position {
            self.behind.insert(key.clone(), Some(batch.from));
            self.held.insert(key, batch);
            return None;
        }
        if batch.next <= position {
            return None;
        }
        let first = batch.records.partition_point(|r| r.offset < position);
        self.positions.insert(key.clone(), batch.next);
        Some(Followed::Records {
            partition: key,
            span: Span::Shared(batch, first),
        })
    }

    /// One read of a partition that is behind; `None` when it had nothing
    /// to yield (caught up, or the read failed and was paused on).
    async fn catch_up(&mut self, key: &PartitionKey) -> Option<Followed<R>> {
        let position = self.positions[key];
        let until = self.behind[key];
        if until.is_some_and(|until| position >= until) {
            self.behind.remove(key);
            return None;
        }
        let read = self
            .client
            .read_partition(&key.0, key.1, position, CATCH_UP_FETCH_BYTES, 0)
            .await;
        match read {
            Ok(read) => {
                let next = read.next_offset.max(position);
                self.positions.insert(key.clone(), next);
                let reached = until.is_some_and(|until| next >= until);
                if reached || next >= read.high_watermark || next == position {
                    self.behind.remove(key);
                }
                if read.records.is_empty() {
                    if next == position && until.is_some() {
                        // Nothing to read yet below a held batch (a new
                        // leader's high watermark still lags): do not spin.
                        // Caught up to the high watermark (no held batch),
                        // there is nothing to wait for: the tail brings the
                        // next records.
                        self.pause().await;
                    }
                    return None;
                }
                Some(Followed::Records {
                    partition: key.clone(),
                    span: Span::Read(read.records),
                })
            }
            Err(error) if error.code() == Some(ErrorCode::OFFSET_OUT_OF_RANGE) => {
                self.retention_skip(key, position).await
            }
            Err(error) => {
                tracing::debug!(topic = %key.0, partition = key.1, %error, "follower catch-up failed; retrying");
                self.pause().await;
                None
            }
        }
    }

    /// The position fell below the log start: move it there.
    async fn retention_skip(&mut self, key: &PartitionKey, position: u64) -> Option<Followed<R>> {
        match self.list(&key.0, key.1, OffsetSpec::Earliest).await {
            Ok(start) if start > position => {
                self.positions.insert(key.clone(), start);
                Some(Followed::Skipped {
                    partition: key.clone(),
                    from: position,
                    to: start,
                })
            }
            _ => {
                self.pause().await;
                None
            }
        }
    }

    async fn list(
        &self,
        topic: &str,
        partition: u32,
        spec: OffsetSpec,
    ) -> Result<u64, ClientError> {
        self.client
            .admin()
            .list_offsets(topic, partition, spec)
            .await
    }

    async fn pause(&self) {
        tokio::select! {
            _ = tokio::time::sleep(CATCH_UP_RETRY) => {}
            _ = self.shutdown.cancelled() => {}
        }
    }
}
