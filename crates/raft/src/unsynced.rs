//! Group commit of a node's partition replicas under
//! `FsyncPolicy::Interval` (decision 0020). An `append` under that policy
//! writes the batch into the log's files and reports it flushed to
//! openraft at once, as the single broker acknowledges a write before its
//! interval fsync; the log is noted here, and the node's group-commit
//! timer ([`UnsyncedLogs::sync_all`], every `--fsync-interval-ms`) fsyncs
//! every noted log in one pass, off the Raft tasks. So a quorum
//! acknowledgement means a majority has the batch in its files (it
//! survives `kill -9` of any minority; the page cache outlives a process),
//! and fsynced within the interval; `--fsync always` waits for the fsync
//! on each replica. This crate runs no task; the server owns the timer.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Weak};

use citystream_log::{FsyncPolicy, PartitionLog};
use parking_lot::{Mutex, RwLock};
use tokio::sync::Notify;

use crate::SharedLog;

/// The logs written since their last fsync, by identity.
#[derive(Default)]
pub struct UnsyncedLogs {
    logs: Mutex<HashMap<usize, Weak<RwLock<PartitionLog>>>>,
    written: Notify,
}

impl UnsyncedLogs {
    pub fn new() -> Arc<UnsyncedLogs> {
        Arc::new(UnsyncedLogs::default())
    }

    /// Notes that `log` has writes to fsync.
    pub fn mark(&self, log: &SharedLog) {
        let key = Arc::as_ptr(log) as usize;
        self.logs
            .lock()
            .entry(key)
            .or_insert_with(|| Arc::downgrade(log));
        self.written.notify_one();
    }

    /// Resolves once some log was noted (at once if one was since the last
    /// call), so an idle node's timer does no work.
    pub async fn written(&self) {
        self.written.notified().await;
    }

    /// fsyncs every noted log that is still open. Blocking: run it off the
    /// async workers. A log whose fsync fails is noted again, and the
    /// first error is returned after the others were tried.
    pub fn sync_all(&self) -> io::Result<()> {
        let logs: Vec<(usize, Weak<RwLock<PartitionLog>>)> = self.logs.lock().drain().collect();
        let mut failed = None;
        for (key, log) in logs {
            let Some(log) = log.upgrade() else {
                continue;
            };
            if let Err(error) = sync(&log) {
                self.logs.lock().insert(key, Arc::downgrade(&log));
                failed.get_or_insert(error);
            }
        }
        failed.map_or(Ok(()), Err)
    }
}

/// Makes every append to `log` so far durable, without holding the log's
/// lock during the fsync. A no-op under `FsyncPolicy::Never`.
pub(crate) fn sync(log: &SharedLog) -> io::Result<()> {
    let pending = {
        let mut log = log.write();
        if log.config().fsync == FsyncPolicy::Never {
            return Ok(());
        }
        log.begin_sync().map_err(io::Error::other)?
    };
    if pending.is_empty() {
        return Ok(());
    }
    let done = pending.run().map_err(io::Error::other)?;
    log.write().finish_sync(done);
    Ok(())
}
