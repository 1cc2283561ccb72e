//! [`Client::read_partition`]: a one-shot read of one partition from an
//! offset, for request/response transports (the HTTP API) that keep no
//! consumer between requests. It asks the partition's leader, following
//! `NOT_LEADER` hints and re-reading metadata after a failed connection, a
//! bounded number of times. Records are decoded as the consumer does
//! (control batches and records below the offset skipped).

use citystream_protocol::{FetchPartition, FetchRequest, Request, Response, TopicPartition};

use crate::consumer::positions::Positions;
use crate::error::{needs_metadata_refresh, status_result};
use crate::{Client, ClientError, ConsumerRecord};

/// Attempts at a read whose leader moved or could not be reached.
const READ_ATTEMPTS_MAX: usize = 3;
/// Pause before another attempt after a retriable refusal.
const RETRY_BACKOFF: std::time::Duration = std::time::Duration::from_millis(50);

/// What one read returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionRead {
    pub records: Vec<ConsumerRecord>,
    /// Where the next read continues (past the records and control batches).
    pub next_offset: u64,
    /// The committed end: records below it are readable.
    pub high_watermark: u64,
    pub log_start_offset: u64,
}

impl Client {
    /// Reads whole batches of `topic`/`partition` from `offset`, up to about
    /// `max_bytes` (at least one batch), waiting up to `max_wait_ms` for a
    /// record if none is there yet (0: answer at once).
    pub async fn read_partition(
        &self,
        topic: &str,
        partition: u32,
        offset: u64,
        max_bytes: u32,
        max_wait_ms: u32,
    ) -> Result<PartitionRead, ClientError> {
        let mut last_error = None;
        for _ in 0..READ_ATTEMPTS_MAX {
            let error = match self
                .fetch_once(topic, partition, offset, max_bytes, max_wait_ms)
                .await
            {
                Ok(read) => return Ok(read),
                Err(error) if error.is_transport() => error,
                Err(error) if error.code().is_some_and(needs_metadata_refresh) => error,
                // A leader that has just taken over refuses reads for a
                // moment (it has not committed in its term yet).
                Err(error) if error.is_retriable() => {
                    tokio::time::sleep(RETRY_BACKOFF).await;
                    last_error = Some(error);
                    continue;
                }
                Err(error) => return Err(error),
            };
            if let Err(refresh) = self.refresh_metadata(&[topic]).await {
                tracing::debug!(%refresh, "metadata refresh after a failed read");
            }
            last_error = Some(error);
        }
        Err(last_error.expect("at least one attempt"))
    }

    async fn fetch_once(
        &self,
        topic: &str,
        partition: u32,
        offset: u64,
        max_bytes: u32,
        max_wait_ms: u32,
    ) -> Result<PartitionRead, ClientError> {
        let address = self
            .leader_address(topic, partition)
            .unwrap_or_else(|| self.preferred_address());
        let request = Request::Fetch(FetchRequest {
            max_wait_ms,
            min_bytes: u32::from(max_wait_ms > 0),
            max_bytes,
            partitions: vec![FetchPartition {
                topic: topic.to_owned(),
                partition,
                offset,
                max_bytes,
            }],
        });
        let answer = match self.request_to(&address, request).await? {
            Response::Fetch(response) => response.partitions.into_iter().next(),
            other => return Err(ClientError::unexpected_response("Fetch", &other)),
        };
        let answer = answer.ok_or_else(|| {
            ClientError::Protocol(format!("the Fetch response has no {topic}/{partition}"))
        })?;
        if let Some(leader) = &answer.status.leader_hint {
            self.apply_leader_hint(topic, partition, leader);
        }
        status_result(&answer.status)?;
        let tp = TopicPartition {
            topic: topic.to_owned(),
            partition,
        };
        let mut positions = Positions::default();
        positions.assign(vec![(tp.clone(), offset)]);
        let mut records = Vec::new();
        positions.apply_fetch(&tp, answer.high_watermark, answer.records, &mut records)?;
        let next_offset = positions.iter().next().map_or(offset, |(_, p)| p.fetch);
        Ok(PartitionRead {
            records,
            next_offset,
            high_watermark: answer.high_watermark,
            log_start_offset: answer.log_start_offset,
        })
    }
}
