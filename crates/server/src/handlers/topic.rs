//! Topics as a resource: cluster metadata, create and delete. This node
//! leads and holds every partition it has and is the controller; the broker
//! list is this node alone, or every live gossip member in cluster mode
//! (see `cluster.rs` for why partitions are still not replicated). Name
//! rules and storage are the broker's.

use citystream_broker::{TopicInfo, TopicSettings};
use citystream_protocol::{
    ApiError, Cleanup, CreateTopicRequest, CreateTopicResponse, DeleteTopicRequest,
    DeleteTopicResponse, MetadataRequest, MetadataResponse, PartitionMetadata, PartitionStatus,
    TopicConfig, TopicMetadata,
};

use crate::errors::{api_error, invalid_request, partition_status};
use crate::handlers::cluster;
use crate::server::Shared;

/// Most partitions one topic may be created with.
const TOPIC_PARTITIONS_MAX: u32 = 10_000;
/// Brokers a partition can be replicated to: this node alone, even in
/// cluster mode, until partition replication exists.
const BROKERS_AVAILABLE: u16 = 1;

pub(crate) fn metadata(shared: &Shared, request: &MetadataRequest) -> MetadataResponse {
    let node_id = shared.broker.config().node_id;
    let topics = match &request.topics {
        None => shared
            .broker
            .list_topics()
            .iter()
            .map(|info| topic_metadata(node_id, info))
            .collect(),
        Some(names) => names
            .iter()
            .map(|name| match shared.broker.describe_topic(name) {
                Ok(info) => topic_metadata(node_id, &info),
                Err(error) => missing_topic(name, partition_status(&error)),
            })
            .collect(),
    };
    MetadataResponse {
        cluster_id: shared.config.cluster_id.clone(),
        controller_id: node_id,
        brokers: cluster::brokers(shared),
        topics,
    }
}

pub(crate) fn create(
    shared: &Shared,
    request: &CreateTopicRequest,
) -> Result<CreateTopicResponse, ApiError> {
    check_partitions(request.partitions)?;
    check_replication(request.config.replication)?;
    let settings = topic_settings(&request.config);
    let info = shared
        .broker
        .create_topic(&request.name, request.partitions, settings)
        .map_err(|e| api_error(&e))?;
    tracing::info!(topic = %info.name, partitions = request.partitions, "topic created");
    let node_id = shared.broker.config().node_id;
    Ok(CreateTopicResponse {
        topic: topic_metadata(node_id, &info),
    })
}

pub(crate) fn delete(
    shared: &Shared,
    request: &DeleteTopicRequest,
) -> Result<DeleteTopicResponse, ApiError> {
    shared
        .broker
        .delete_topic(&request.name)
        .map_err(|e| api_error(&e))?;
    tracing::info!(topic = %request.name, "topic deleted");
    Ok(DeleteTopicResponse {})
}

pub(crate) fn check_partitions(partitions: u32) -> Result<(), ApiError> {
    if partitions == 0 {
        return Err(invalid_request("a topic needs at least 1 partition"));
    }
    if partitions > TOPIC_PARTITIONS_MAX {
        return Err(invalid_request(format!(
            "{partitions} partitions exceed the limit of {TOPIC_PARTITIONS_MAX}"
        )));
    }
    Ok(())
}

/// `0` asks for the default, which on one broker is 1.
fn check_replication(replication: u16) -> Result<(), ApiError> {
    if replication > BROKERS_AVAILABLE {
        return Err(invalid_request(format!(
            "replication factor {replication} exceeds the {BROKERS_AVAILABLE} available broker(s)"
        )));
    }
    Ok(())
}

/// The broker's settings of a wire config (replication is the caller's).
pub(crate) fn topic_settings(config: &TopicConfig) -> TopicSettings {
    TopicSettings {
        retention_ms: config.retention_ms,
        retention_bytes: config.retention_bytes,
        segment_bytes: config.segment_bytes,
        cleanup: broker_cleanup(config.cleanup),
        compaction_lag_ms: config.compaction_lag_ms,
        tombstone_retention_ms: config.tombstone_retention_ms,
        segment_roll_ms: config.segment_roll_ms,
    }
}

/// The wire config of a topic's settings, with its replication factor.
pub(crate) fn topic_config(replication: u16, settings: &TopicSettings) -> TopicConfig {
    TopicConfig {
        replication,
        retention_ms: settings.retention_ms,
        retention_bytes: settings.retention_bytes,
        segment_bytes: settings.segment_bytes,
        cleanup: wire_cleanup(settings.cleanup),
        compaction_lag_ms: settings.compaction_lag_ms,
        tombstone_retention_ms: settings.tombstone_retention_ms,
        segment_roll_ms: settings.segment_roll_ms,
    }
}

fn broker_cleanup(cleanup: Cleanup) -> citystream_broker::Cleanup {
    match cleanup {
        Cleanup::Delete => citystream_broker::Cleanup::Delete,
        Cleanup::Compact => citystream_broker::Cleanup::Compact,
        Cleanup::CompactDelete => citystream_broker::Cleanup::CompactDelete,
    }
}

fn wire_cleanup(cleanup: citystream_broker::Cleanup) -> Cleanup {
    match cleanup {
        citystream_broker::Cleanup::Delete => Cleanup::Delete,
        citystream_broker::Cleanup::Compact => Cleanup::Compact,
        citystream_broker::Cleanup::CompactDelete => Cleanup::CompactDelete,
    }
}

fn topic_metadata(node_id: u32, info: &TopicInfo) -> TopicMetadata {
    let partitions = info
        .partitions
        .iter()
        .map(|partition| PartitionMetadata {
            partition: partition.partition,
            leader: node_id,
            replicas: vec![node_id],
            log_start_offset: partition.log_start_offset,
            high_watermark: partition.high_watermark,
        })
        .collect();
    TopicMetadata {
        name: info.name.clone(),
        status: PartitionStatus::ok(),
        config: topic_config(BROKERS_AVAILABLE, &info.settings),
        partitions,
    }
}

/// The entry of a requested topic that cannot be described.
fn missing_topic(name: &str, status: PartitionStatus) -> TopicMetadata {
    TopicMetadata {
        name: name.to_string(),
        status,
        config: TopicConfig::default(),
        partitions: Vec::new(),
    }
}
