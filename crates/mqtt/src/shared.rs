//! Shared subscriptions (`$share/<name>/<filter>`) as consumer groups: every
//! session subscribed with the same share name and filter is a member of
//! the native consumer group `mqtt-share/<name>/<filter>` over the filter's
//! stream topics, so each partition is read by one member and each message
//! goes to one session of the share. A member's reader (one task per
//! shared subscription) hands the connection one polled batch at a time
//! and commits the group's offsets past it only once the connection has
//! sent every matching QoS 0 message and had every QoS 1/2 one
//! acknowledged; a member that leaves before that leaves the batch to the
//! member that gets its partitions (at least once).
//!
//! The unit of sharing is the partition: a share spreads over as many
//! members as its stream topics have partitions (`--default-partitions`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use citystream_client::{Client, ClientError, ConsumerConfig, ConsumerRecord, StartPosition};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// Longest consumer group name (the broker's rule).
const GROUP_NAME_BYTES_MAX: usize = 255;
/// How long one poll of a member waits for records.
const POLL_WAIT: Duration = Duration::from_millis(500);
/// Pause after a failed poll or commit.
const RETRY_PAUSE: Duration = Duration::from_millis(500);

/// The consumer group of a share, or `None` if the name would be too long.
pub fn group_name(share: &str, filter: &str) -> Option<String> {
    let name = format!("mqtt-share/{share}/{filter}");
    (name.len() <= GROUP_NAME_BYTES_MAX).then_some(name)
}

/// Tracks the messages of one batch still owed to the client; the batch
/// is done when the last one is sent (QoS 0) or acknowledged.
#[derive(Debug)]
pub struct Ticket {
    remaining: AtomicUsize,
    done: std::sync::Mutex<Option<oneshot::Sender<()>>>,
}

impl Ticket {
    /// One more message of the batch to deliver.
    pub fn add(&self) {
        self.remaining.fetch_add(1, Ordering::AcqRel);
    }

    /// One message of the batch delivered.
    pub fn complete(&self) {
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.finish();
        }
    }

    fn finish(&self) {
        if let Some(done) = self.done.lock().expect("never poisoned").take() {
            let _ = done.send(());
        }
    }
}

/// A batch handed to the connection.
pub struct SharedBatch {
    /// Which shared subscription (its `$share/...` filter) it is for.
    pub filter: Arc<str>,
    pub records: Vec<ConsumerRecord>,
    pub ticket: Arc<Ticket>,
}

impl SharedBatch {
    /// Call once every record has been looked at: a batch none of whose
    /// records was delivered is done now.
    pub fn seal(&self) {
        // The count starts at 1 for the batch itself.
        self.ticket.complete();
    }
}

/// Starts the member of `group` reading `topics` for the shared
/// subscription `filter`; its batches arrive on `batches` until `stop`.
pub fn spawn_member(
    client: Client,
    group: String,
    topics: Vec<String>,
    filter: Arc<str>,
    batches: mpsc::Sender<SharedBatch>,
    stop: CancellationToken,
) {
    tokio::spawn(async move {
        if let Err(error) = member(client, &group, topics, filter, batches, &stop).await {
            tracing::warn!(%group, %error, "MQTT shared subscription member stopped");
        }
    });
}

async fn member(
    client: Client,
    group: &str,
    topics: Vec<String>,
    filter: Arc<str>,
    batches: mpsc::Sender<SharedBatch>,
    stop: &CancellationToken,
) -> Result<(), ClientError> {
    let mut config = ConsumerConfig::new(topics[0].clone());
    config.topics = topics;
    config.group = Some(group.to_owned());
    config.start = StartPosition::Latest;
    config.auto_commit = false;
    let mut consumer = client.consumer(config).await?;
    loop {
        let records = tokio::select! {
            polled = consumer.poll(POLL_WAIT) => polled,
            _ = stop.cancelled() => break,
        };
        let records = match records {
            Ok(records) if records.is_empty() => continue,
            Ok(records) => records,
            Err(error) => {
                tracing::debug!(group, %error, "shared subscription poll failed; retrying");
                tokio::time::sleep(RETRY_PAUSE).await;
                continue;
            }
        };
        let (done, delivered) = oneshot::channel();
        let ticket = Arc::new(Ticket {
            remaining: AtomicUsize::new(1),
            done: std::sync::Mutex::new(Some(done)),
        });
        let batch = SharedBatch {
            filter: filter.clone(),
            records,
            ticket,
        };
        if batches.send(batch).await.is_err() {
            break;
        }
        tokio::select! {
            result = delivered => if result.is_err() { break },
            _ = stop.cancelled() => break,
        }
        while let Err(error) = consumer.commit().await {
            tracing::debug!(group, %error, "shared subscription commit failed; retrying");
            tokio::select! {
                _ = tokio::time::sleep(RETRY_PAUSE) => {}
                _ = stop.cancelled() => break,
            }
        }
    }
    // Leave (so the partitions move at once) without committing what was
    // not delivered.
    let _ = tokio::time::timeout(Duration::from_secs(5), consumer.close()).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The batch is done once it is sealed and every added message
    /// completed, in either order, and only once.
    #[test]
    fn a_ticket_is_done_when_its_messages_are() {
        let (done, mut delivered) = oneshot::channel();
        let ticket = Ticket {
            remaining: AtomicUsize::new(1),
            done: std::sync::Mutex::new(Some(done)),
        };
        ticket.add();
        ticket.add();
        ticket.complete();
        ticket.complete(); // the seal
        assert!(delivered.try_recv().is_err(), "one message still owed");
        ticket.complete();
        assert!(delivered.try_recv().is_ok());
    }

    /// Group names carry the share and the filter, within the broker's limit.
    #[test]
    fn group_names_are_bounded() {
        assert_eq!(
            group_name("g", "city/#").as_deref(),
            Some("mqtt-share/g/city/#")
        );
        assert!(group_name("g", &"x".repeat(300)).is_none());
    }
}
