//! [`Tail`]: a state folded from one partition's records in offset order,
//! and brought up to a target offset on demand by reading the partition
//! through the node's client (from its leader, below its high watermark).
//! Every node folds the same committed records in the same order, so every
//! node computes the same state: this is how ids, topic order and positions
//! agree across nodes. It owns no task: a caller that needs the state to be
//! current asks [`high_watermark`] and calls [`Tail::catch_up`] under the
//! tail's lock. What the state means is the folder's business.

use std::time::{Duration, Instant};

use citystream_protocol::OffsetSpec;

use crate::{Client, ClientError, ConsumerRecord};

/// Bytes asked for per read while catching up.
const READ_BYTES: u32 = 1024 * 1024;
/// How long a read waits for records when the partition has none yet
/// below the target (a new leader whose high watermark still lags).
const READ_WAIT_MS: u32 = 200;
/// Pause before reading again after a retriable error (no leader yet,
/// connection lost).
const RETRY_BACKOFF: Duration = Duration::from_millis(50);
/// A catch-up that makes no progress for this long fails.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(10);

/// What a tail does with each record it reads.
pub trait Fold {
    fn apply(&mut self, record: &ConsumerRecord);
}

/// The state of `topic`/`partition` folded from `begin` up to `next_offset`.
pub struct Tail<S> {
    topic: String,
    partition: u32,
    next_offset: u64,
    state: S,
}

impl<S: Fold> Tail<S> {
    /// A tail that will fold the records at offsets `begin` and after.
    pub fn new(topic: impl Into<String>, partition: u32, begin: u64, state: S) -> Tail<S> {
        Tail {
            topic: topic.into(),
            partition,
            next_offset: begin,
            state,
        }
    }

    pub fn state(&self) -> &S {
        &self.state
    }

    pub fn state_mut(&mut self) -> &mut S {
        &mut self.state
    }

    /// Folds every record below `target` (and those read with them).
    /// Retriable errors are retried and a partition whose leader has not
    /// reached `target` yet is waited for, each for at most
    /// [`CATCH_UP_TIMEOUT`] without progress ([`ClientError::Stalled`]).
    pub async fn catch_up(&mut self, client: &Client, target: u64) -> Result<(), ClientError> {
        let mut progress_at = Instant::now();
        let mut wait_ms = 0;
        while self.next_offset < target {
            if progress_at.elapsed() > CATCH_UP_TIMEOUT {
                return Err(ClientError::Stalled {
                    topic: self.topic.clone(),
                    partition: self.partition,
                    target,
                    at: self.next_offset,
                    waited_ms: CATCH_UP_TIMEOUT.as_millis() as u64,
                });
            }
            let read = client
                .read_partition(
                    &self.topic,
                    self.partition,
                    self.next_offset,
                    READ_BYTES,
                    wait_ms,
                )
                .await;
            let read = match read {
                Ok(read) => read,
                Err(error) if error.is_retriable() => {
                    tracing::debug!(topic = %self.topic, %error, "catch-up read will be retried");
                    tokio::time::sleep(RETRY_BACKOFF).await;
                    continue;
                }
                Err(error) => return Err(error),
            };
            for record in &read.records {
                self.state.apply(record);
            }
            if read.next_offset > self.next_offset {
                self.next_offset = read.next_offset;
                progress_at = Instant::now();
                wait_ms = 0;
            } else {
                wait_ms = READ_WAIT_MS;
            }
        }
        Ok(())
    }
}

/// The high watermark of `topic`/`partition`: every record below it is
/// committed, and a record acknowledged before this call is below it.
pub async fn high_watermark(
    client: &Client,
    topic: &str,
    partition: u32,
) -> Result<u64, ClientError> {
    client
        .admin()
        .list_offsets(topic, partition, OffsetSpec::Latest)
        .await
}
