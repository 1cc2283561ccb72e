//! The handlers that differ in cluster mode, where topics live in the
//! metadata group and partitions are Raft groups (`crate::node`): produce
//! (submitted in arrival order, acknowledged later), topic admin through
//! the metadata leader, and Metadata answered from the replicated state
//! with each partition's leader. Fetch and offset lookups share the
//! standalone handlers through `data::Source`.

use std::time::Duration;

use citystream_broker::names::validate_user_topic_name;
use citystream_cluster::TopicMeta;
use citystream_protocol::{
    Acks, ApiError, CreateTopicRequest, CreateTopicResponse, DeleteTopicRequest,
    DeleteTopicResponse, MetadataRequest, MetadataResponse, PartitionMetadata, PartitionStatus,
    ProduceRequest, ProduceResponse, Reassignment, ReassignmentsResponse, RebalanceRequest,
    RemoveNodeRequest, Response, TopicConfig, TopicMetadata,
};
use futures::future::{BoxFuture, join_all};

use crate::clock::now_ms;
use crate::dispatch::Outcome;
use crate::errors::{api_error, invalid_request, partition_status};
use crate::handlers::data::produce_answer;
use crate::handlers::{cluster, topic};
use crate::node::ClusterNode;
use crate::server::Shared;

/// The ack wait of a produce that asks for none (`timeout_ms == 0`).
const PRODUCE_TIMEOUT_DEFAULT_MS: u64 = 30_000;

/// Submits every batch of `request` to its partition's Raft group, in
/// order, and returns the wait for their acknowledgements. The caller runs
/// this inline (so pipelined produces keep their order) and the returned
/// future apart (so the connection keeps reading).
pub(crate) async fn submit_produce(
    shared: &Shared,
    node: &ClusterNode,
    request: ProduceRequest,
) -> BoxFuture<'static, Outcome> {
    let now_ms = now_ms();
    let timeout = match request.timeout_ms {
        0 => Duration::from_millis(PRODUCE_TIMEOUT_DEFAULT_MS),
        ms => Duration::from_millis(u64::from(ms)),
    };
    let mut pending = Vec::with_capacity(request.partitions.len());
    for partition in request.partitions {
        let batch = partition.batch.clone();
        let submitted = node
            .submit(
                &partition.topic,
                partition.partition,
                partition.batch,
                request.acks,
                now_ms,
                timeout,
            )
            .await;
        if submitted.is_ok() {
            shared.load.record_in(batch.len());
            crate::metrics::produced(&partition.topic, &batch);
        }
        pending.push((partition.topic, partition.partition, submitted));
    }
    let acks = request.acks;
    Box::pin(async move {
        let answers = join_all(pending.into_iter().map(
            |(topic, partition, submitted)| async move {
                let result = match submitted {
                    Ok(wait) => wait.await,
                    Err(error) => Err(error),
                };
                produce_answer(topic, partition, result)
            },
        ))
        .await;
        match acks {
            Acks::None => None,
            Acks::Leader | Acks::Quorum => Some(Ok(Response::Produce(ProduceResponse {
                partitions: answers,
            }))),
        }
    })
}

pub(crate) fn metadata(
    shared: &Shared,
    node: &ClusterNode,
    request: &MetadataRequest,
) -> MetadataResponse {
    let state = node.metadata();
    let topics = match &request.topics {
        None => state
            .topics
            .iter()
            .filter(|(name, _)| !citystream_broker::names::is_internal_topic(name))
            .map(|(name, meta)| topic_metadata(node, name, meta))
            .collect(),
        Some(names) => names
            .iter()
            .map(|name| match state.topics.get(name) {
                Some(meta) => topic_metadata(node, name, meta),
                None => TopicMetadata {
                    name: name.clone(),
                    status: partition_status(&citystream_broker::BrokerError::UnknownTopic(
                        name.clone(),
                    )),
                    config: TopicConfig::default(),
                    partitions: Vec::new(),
                },
            })
            .collect(),
    };
    let controller_id = node
        .groups
        .metadata_leader()
        .and_then(|(id, _)| u32::try_from(id).ok())
        .unwrap_or(0);
    MetadataResponse {
        cluster_id: shared.config.cluster_id.clone(),
        controller_id,
        brokers: cluster::brokers(shared),
        topics,
    }
}

pub(crate) async fn create(
    node: &ClusterNode,
    request: &CreateTopicRequest,
) -> Result<CreateTopicResponse, ApiError> {
    validate_user_topic_name(&request.name).map_err(|e| api_error(&e))?;
    topic::check_partitions(request.partitions)?;
    let settings = citystream_cluster::TopicConfig::from(&topic::topic_settings(&request.config));
    node.create_topic(
        &request.name,
        request.partitions,
        u32::from(request.config.replication),
        settings,
    )
    .await
    .map_err(|e| api_error(&e))?;
    tracing::info!(topic = %request.name, partitions = request.partitions, "topic created");
    let state = node.metadata();
    let meta = state
        .topics
        .get(&request.name)
        .ok_or_else(|| invalid_request("the topic was created but is not known here yet"))?;
    Ok(CreateTopicResponse {
        topic: topic_metadata(node, &request.name, meta),
    })
}

pub(crate) async fn delete(
    node: &ClusterNode,
    request: &DeleteTopicRequest,
) -> Result<DeleteTopicResponse, ApiError> {
    validate_user_topic_name(&request.name).map_err(|e| api_error(&e))?;
    node.delete_topic(&request.name)
        .await
        .map_err(|e| api_error(&e))?;
    tracing::info!(topic = %request.name, "topic deleted");
    Ok(DeleteTopicResponse {})
}

fn topic_metadata(node: &ClusterNode, name: &str, meta: &TopicMeta) -> TopicMetadata {
    let state = node.metadata();
    let partitions = meta
        .partitions
        .iter()
        .enumerate()
        .map(|(partition, assignment)| {
            let partition = partition as u32;
            let leader = node.partition_leader(&state, name, partition).map_or_else(
                || assignment.replicas.first().copied().unwrap_or(0),
                |hint| hint.node_id,
            );
            let (log_start_offset, high_watermark) = node
                .groups
                .replica(meta.topic_id.partition_group(partition))
                .map_or((0, 0), |replica| {
                    let (start, _, hwm) = replica.extent();
                    (start, hwm)
                });
            PartitionMetadata {
                partition,
                leader,
                replicas: assignment.replicas.clone(),
                log_start_offset,
                high_watermark,
            }
        })
        .collect();
    TopicMetadata {
        name: name.to_owned(),
        status: PartitionStatus::ok(),
        config: topic::topic_config(
            u16::try_from(meta.replication_factor).unwrap_or(u16::MAX),
            &citystream_broker::TopicSettings::from(&meta.settings),
        ),
        partitions,
    }
}

pub(crate) async fn remove_node(
    node: &ClusterNode,
    request: &RemoveNodeRequest,
) -> Result<ReassignmentsResponse, ApiError> {
    let moves = node
        .remove_node(request.node_id)
        .await
        .map_err(|e| api_error(&e))?;
    tracing::info!(
        node = request.node_id,
        moves = moves.len(),
        "broker removed"
    );
    Ok(reassignments(moves))
}

pub(crate) async fn rebalance(
    node: &ClusterNode,
    request: &RebalanceRequest,
) -> Result<ReassignmentsResponse, ApiError> {
    let moves = node
        .rebalance(request.dry_run)
        .await
        .map_err(|e| api_error(&e))?;
    tracing::info!(dry_run = request.dry_run, moves = moves.len(), "rebalance");
    Ok(reassignments(moves))
}

fn reassignments(moves: Vec<crate::node::Moved>) -> ReassignmentsResponse {
    ReassignmentsResponse {
        status: PartitionStatus::ok(),
        reassignments: moves
            .into_iter()
            .map(|moved| Reassignment {
                topic: moved.topic,
                partition: moved.partition,
                from: moved.from,
                to: moved.to,
            })
            .collect(),
    }
}
