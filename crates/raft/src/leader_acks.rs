//! `acks=leader` (decision 0005 §5): a producer that wants the leader's own
//! write, not the quorum's, registers a token, proposes its batch with that
//! token in [`crate::BatchData::token`], and is told where the batch landed
//! once the leader's log has written it (and fsynced it, unless the policy
//! is `Never`). Like Kafka's `acks=1`, such a batch can still be truncated
//! after a failover.
//!
//! Tokens are leader-local and never stored: the batch bytes do not carry
//! them, so a follower (or an entry read back from the log) has token 0.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use tokio::sync::oneshot;

use crate::types::Appended;

/// Registered waiters, at most [`LeaderAcks::WAITING_MAX`] at a time.
#[derive(Clone, Debug, Default)]
pub struct LeaderAcks {
    waiting: Arc<Mutex<HashMap<u64, oneshot::Sender<Appended>>>>,
    last_token: Arc<AtomicU64>,
}

/// Too many `acks=leader` batches are waiting for their append.
#[derive(Debug, thiserror::Error)]
#[error("{0} batches already wait for a leader ack")]
pub struct TooManyWaiting(pub usize);

impl LeaderAcks {
    /// Bound on registered waiters (in-flight `acks=leader` batches).
    pub const WAITING_MAX: usize = 65_536;

    /// A fresh nonzero token and the receiver its append will answer.
    /// Call [`Self::cancel`] if the batch is then not proposed, or its
    /// proposal fails.
    pub fn register(&self) -> Result<(u64, oneshot::Receiver<Appended>), TooManyWaiting> {
        let mut waiting = self.waiting.lock();
        if waiting.len() >= Self::WAITING_MAX {
            return Err(TooManyWaiting(waiting.len()));
        }
        let token = self.last_token.fetch_add(1, Ordering::Relaxed) + 1;
        let (tx, rx) = oneshot::channel();
        waiting.insert(token, tx);
        Ok((token, rx))
    }

    /// Forgets a token whose batch will not be appended.
    pub fn cancel(&self, token: u64) {
        self.waiting.lock().remove(&token);
    }

    /// Tells the waiter of `token`, if any, where its batch landed.
    pub(crate) fn fire(&self, token: u64, appended: Appended) {
        if token == 0 {
            return;
        }
        if let Some(tx) = self.waiting.lock().remove(&token) {
            // The producer may have given up; nothing to do then.
            let _ = tx.send(appended);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A registered token is answered once; token 0 and cancelled tokens
    /// are ignored.
    #[test]
    fn register_fire_cancel() {
        let acks = LeaderAcks::default();
        let (token, mut rx) = acks.register().unwrap();
        assert_ne!(token, 0);
        let (cancelled, mut cancelled_rx) = acks.register().unwrap();
        acks.cancel(cancelled);
        let at = Appended {
            base_offset: 4,
            last_offset: 6,
        };
        acks.fire(0, at);
        acks.fire(cancelled, at);
        acks.fire(token, at);
        assert_eq!(rx.try_recv().unwrap(), at);
        assert!(cancelled_rx.try_recv().is_err());
        assert!(acks.waiting.lock().is_empty());
    }
}
