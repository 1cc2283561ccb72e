//! Completion of produced records without a channel per record: every batch
//! has one [`BatchCompletion`] cell, shared (`Arc`) by the
//! [`DeliveryFuture`]s of its records, each of which only adds its index in
//! the batch to the batch's base offset. A record costs one `Arc` clone; a
//! waker is stored only for futures that are actually polled before the
//! batch completes.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Waker};

use parking_lot::Mutex;

use crate::ClientError;

/// Offset reported for records produced with `Acks::None`: the broker does
/// not answer, so where they landed is unknown.
pub const UNKNOWN_OFFSET: u64 = u64::MAX;

/// Where a record was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMetadata {
    pub topic: String,
    pub partition: u32,
    pub offset: u64,
}

/// The outcome of one batch, set once, and the wakers of futures awaiting it.
#[derive(Debug)]
pub(crate) struct BatchCompletion {
    /// Registry key (see `Accumulator::incomplete`).
    pub(crate) id: u64,
    topic: Arc<str>,
    partition: u32,
    /// `Ok(base_offset)` or why the batch was not written.
    outcome: OnceLock<Result<u64, ClientError>>,
    wakers: Mutex<Vec<Waker>>,
}

impl BatchCompletion {
    pub(crate) fn new(id: u64, topic: Arc<str>, partition: u32) -> BatchCompletion {
        BatchCompletion {
            id,
            topic,
            partition,
            outcome: OnceLock::new(),
            wakers: Mutex::new(Vec::new()),
        }
    }

    /// Sets the outcome (the first call wins) and wakes every waiter.
    pub(crate) fn complete(&self, outcome: Result<u64, ClientError>) {
        if self.outcome.set(outcome).is_err() {
            return;
        }
        let wakers = std::mem::take(&mut *self.wakers.lock());
        for waker in wakers {
            waker.wake();
        }
    }

    /// Ready with the outcome, or registers `cx`'s waker in `slot`
    /// (re-using the slot on later polls so a future holds one entry).
    fn poll_outcome(
        &self,
        cx: &mut Context<'_>,
        slot: &mut Option<usize>,
    ) -> Poll<&Result<u64, ClientError>> {
        if let Some(outcome) = self.outcome.get() {
            return Poll::Ready(outcome);
        }
        let mut wakers = self.wakers.lock();
        // Re-checked under the lock: `complete` sets the outcome before
        // taking the wakers, so a waker pushed now is always woken.
        if let Some(outcome) = self.outcome.get() {
            return Poll::Ready(outcome);
        }
        match slot.and_then(|index| wakers.get_mut(index)) {
            Some(waker) => waker.clone_from(cx.waker()),
            None => {
                *slot = Some(wakers.len());
                wakers.push(cx.waker().clone());
            }
        }
        Poll::Pending
    }
}

/// Resolves when the record is acknowledged (or failed for good).
pub struct DeliveryFuture {
    batch: Arc<BatchCompletion>,
    index: u32,
    waker_slot: Option<usize>,
}

impl DeliveryFuture {
    pub(crate) fn new(batch: Arc<BatchCompletion>, index: u32) -> DeliveryFuture {
        DeliveryFuture {
            batch,
            index,
            waker_slot: None,
        }
    }
}

impl Future for DeliveryFuture {
    type Output = Result<RecordMetadata, ClientError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let index = this.index;
        let batch = &this.batch;
        batch
            .poll_outcome(cx, &mut this.waker_slot)
            .map(|outcome| match outcome {
                Ok(base_offset) => Ok(RecordMetadata {
                    topic: batch.topic.to_string(),
                    partition: batch.partition,
                    offset: match *base_offset {
                        UNKNOWN_OFFSET => UNKNOWN_OFFSET,
                        base_offset => base_offset + u64::from(index),
                    },
                }),
                Err(error) => Err(error.duplicate()),
            })
    }
}

/// Waits for a whole batch (used by `flush`).
pub(crate) struct BatchWait {
    batch: Arc<BatchCompletion>,
    waker_slot: Option<usize>,
}

impl BatchWait {
    pub(crate) fn new(batch: Arc<BatchCompletion>) -> BatchWait {
        BatchWait {
            batch,
            waker_slot: None,
        }
    }
}

impl Future for BatchWait {
    type Output = Result<(), ClientError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        this.batch
            .poll_outcome(cx, &mut this.waker_slot)
            .map(|outcome| match outcome {
                Ok(_) => Ok(()),
                Err(error) => Err(error.duplicate()),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each record's future reports the batch base offset plus its index.
    #[tokio::test]
    async fn futures_share_one_cell_and_add_their_index() {
        let batch = Arc::new(BatchCompletion::new(1, Arc::from("t"), 3));
        let first = DeliveryFuture::new(batch.clone(), 0);
        let third = DeliveryFuture::new(batch.clone(), 2);
        let waiter = tokio::spawn(third);
        tokio::task::yield_now().await;
        batch.complete(Ok(100));
        let expected = |offset| RecordMetadata {
            topic: "t".to_string(),
            partition: 3,
            offset,
        };
        assert_eq!(first.await.unwrap(), expected(100));
        assert_eq!(waiter.await.unwrap().unwrap(), expected(102));
    }

    /// A failed batch fails every one of its records with the same error.
    #[tokio::test]
    async fn failure_reaches_every_record() {
        let batch = Arc::new(BatchCompletion::new(1, Arc::from("t"), 0));
        batch.complete(Err(ClientError::Timeout { timeout_ms: 5 }));
        for index in 0..3 {
            let result = DeliveryFuture::new(batch.clone(), index).await;
            assert!(matches!(
                result,
                Err(ClientError::Timeout { timeout_ms: 5 })
            ));
        }
    }
}
