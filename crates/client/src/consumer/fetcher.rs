//! One round of fetching: a long-poll `Fetch` per broker covering the
//! assigned partitions it leads (all brokers concurrently), each answer
//! applied to the positions. Partition errors are sorted into what the
//! consumer must act on: offsets out of range (reset by the start policy)
//! and stale metadata (refreshed here, following leader hints, also after
//! a failed connection to a leader).

use std::collections::HashMap;

use citystream_protocol::{
    ErrorCode, FetchPartition, FetchPartitionResponse, FetchRequest, Request, Response,
    TopicPartition,
};

use crate::consumer::positions::Positions;
use crate::error::needs_metadata_refresh;
use crate::{Client, ClientError, ConsumerRecord};

/// Limits of one fetch round.
pub(crate) struct FetchLimits {
    pub(crate) max_wait_ms: u32,
    pub(crate) max_bytes: u32,
    pub(crate) min_bytes: u32,
}

/// What a fetch round produced besides records.
#[derive(Default)]
pub(crate) struct FetchRound {
    pub(crate) records: Vec<ConsumerRecord>,
    /// Partitions whose position is outside the log; reset them.
    pub(crate) out_of_range: Vec<TopicPartition>,
    /// Whether any broker answered (false: nothing to fetch, or every
    /// request failed retriably).
    pub(crate) answered: bool,
}

/// Fetches once from every broker leading an assigned partition.
pub(crate) async fn fetch_round(
    client: &Client,
    positions: &mut Positions,
    limits: &FetchLimits,
) -> Result<FetchRound, ClientError> {
    let requests = build_requests(client, positions, limits);
    let calls = requests.into_iter().map(|(address, request)| async move {
        let topics = request_topics(&request);
        (topics, client.request_to(&address, request).await)
    });
    let answers = futures::future::join_all(calls).await;
    let mut round = FetchRound::default();
    let mut refresh = Vec::new();
    for (topics, answer) in answers {
        match answer {
            Ok(Response::Fetch(response)) => {
                round.answered = true;
                for partition in response.partitions {
                    apply_partition(client, positions, partition, &mut round, &mut refresh)?;
                }
            }
            Ok(other) => return Err(ClientError::unexpected_response("Fetch", &other)),
            Err(error) if error.is_retriable() => {
                tracing::debug!(%error, "fetch failed; will retry");
                // The leader may be gone: learn where its partitions moved.
                if error.is_transport() {
                    refresh.extend(topics);
                }
            }
            Err(error) => return Err(error),
        }
    }
    if !refresh.is_empty() {
        refresh.sort();
        refresh.dedup();
        let topics: Vec<&str> = refresh.iter().map(String::as_str).collect();
        if let Err(error) = client.refresh_metadata(&topics).await {
            tracing::debug!(%error, "metadata refresh after a fetch error failed");
        }
    }
    Ok(round)
}

/// One `Fetch` per leader address.
fn build_requests(
    client: &Client,
    positions: &Positions,
    limits: &FetchLimits,
) -> Vec<(String, Request)> {
    let mut by_address: HashMap<String, Vec<FetchPartition>> = HashMap::new();
    for (tp, position) in positions.iter() {
        let address = client
            .leader_address(&tp.topic, tp.partition)
            .unwrap_or_else(|| client.preferred_address());
        by_address.entry(address).or_default().push(FetchPartition {
            topic: tp.topic.clone(),
            partition: tp.partition,
            offset: position.fetch,
            max_bytes: limits.max_bytes,
        });
    }
    by_address
        .into_iter()
        .map(|(address, partitions)| {
            let request = Request::Fetch(FetchRequest {
                max_wait_ms: limits.max_wait_ms,
                min_bytes: limits.min_bytes,
                max_bytes: limits.max_bytes,
                partitions,
            });
            (address, request)
        })
        .collect()
}

/// The topics a `Fetch` asks for.
fn request_topics(request: &Request) -> Vec<String> {
    match request {
        Request::Fetch(fetch) => fetch.partitions.iter().map(|p| p.topic.clone()).collect(),
        _ => Vec::new(),
    }
}

fn apply_partition(
    client: &Client,
    positions: &mut Positions,
    answer: FetchPartitionResponse,
    round: &mut FetchRound,
    refresh: &mut Vec<String>,
) -> Result<(), ClientError> {
    let tp = TopicPartition {
        topic: answer.topic,
        partition: answer.partition,
    };
    let code = answer.status.error;
    if code.is_ok() {
        return positions.apply_fetch(
            &tp,
            answer.high_watermark,
            answer.records,
            &mut round.records,
        );
    }
    if code == ErrorCode::OFFSET_OUT_OF_RANGE {
        round.out_of_range.push(tp);
    } else if needs_metadata_refresh(code) {
        if let Some(leader) = &answer.status.leader_hint {
            client.apply_leader_hint(&tp.topic, tp.partition, leader);
        }
        refresh.push(tp.topic);
    } else {
        tracing::warn!(topic = %tp.topic, partition = tp.partition, %code,
            message = %answer.status.message, "fetch error");
    }
    Ok(())
}
