//! `/api/topics`: list, create, describe, delete (through the node's
//! client: creation and deletion go to the metadata leader).

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use citystream_client::{Cleanup, TopicConfig};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::body::json_object;
use crate::error::{ErrorBody, HttpError};
use crate::state::HttpState;
use crate::views::TopicView;

#[derive(Debug, Serialize, ToSchema)]
pub struct TopicList {
    pub topics: Vec<TopicView>,
}

/// A topic to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTopic {
    pub name: String,
    /// Default 1.
    #[serde(default = "one")]
    pub partitions: u32,
    /// Replicas per partition; default min(3, brokers).
    #[serde(default)]
    pub replication: u16,
    #[serde(default)]
    pub retention_ms: Option<u64>,
    #[serde(default)]
    pub retention_bytes: Option<u64>,
    /// What happens to old records; default `delete`. A compacted topic
    /// keeps the newest record per key, needs a key on every record and
    /// takes tombstones (`"value": null`).
    #[serde(default)]
    pub cleanup: CleanupPolicy,
    /// Compacted topics: records younger than this stay uncompacted (default 0).
    #[serde(default)]
    pub compaction_lag_ms: Option<u64>,
    /// Compacted topics: how long a tombstone is kept (default 86400000).
    #[serde(default)]
    pub tombstone_retention_ms: Option<u64>,
    /// Roll the active segment at this age (default none; 3600000 when compacted).
    #[serde(default)]
    pub segment_roll_ms: Option<u64>,
}

/// A topic's cleanup policy, as JSON.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum CleanupPolicy {
    /// Old segments are deleted by age and size.
    #[default]
    #[serde(rename = "delete")]
    Delete,
    /// The newest record of each key is kept.
    #[serde(rename = "compact")]
    Compact,
    /// Both.
    #[serde(rename = "compact,delete")]
    CompactDelete,
}

impl From<CleanupPolicy> for Cleanup {
    fn from(policy: CleanupPolicy) -> Cleanup {
        match policy {
            CleanupPolicy::Delete => Cleanup::Delete,
            CleanupPolicy::Compact => Cleanup::Compact,
            CleanupPolicy::CompactDelete => Cleanup::CompactDelete,
        }
    }
}

impl From<Cleanup> for CleanupPolicy {
    fn from(cleanup: Cleanup) -> CleanupPolicy {
        match cleanup {
            Cleanup::Delete => CleanupPolicy::Delete,
            Cleanup::Compact => CleanupPolicy::Compact,
            Cleanup::CompactDelete => CleanupPolicy::CompactDelete,
        }
    }
}

fn one() -> u32 {
    1
}

/// Every topic with its partitions, leaders and offsets.
#[utoipa::path(get, path = "/api/topics", tag = "topics",
    responses((status = 200, body = TopicList)))]
pub async fn list(State(state): State<HttpState>) -> Result<Json<TopicList>, HttpError> {
    let topics = state.client().admin().list_topics().await?;
    Ok(Json(TopicList {
        topics: topics.iter().map(TopicView::of).collect(),
    }))
}

/// Creates a topic.
#[utoipa::path(post, path = "/api/topics", tag = "topics", request_body = NewTopic,
    responses(
        (status = 201, body = TopicView),
        (status = 400, body = ErrorBody, description = "invalid name or settings"),
        (status = 409, body = ErrorBody, description = "the topic exists"),
    ))]
pub async fn create(
    State(state): State<HttpState>,
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> Result<(StatusCode, Json<TopicView>), HttpError> {
    let topic: NewTopic = json_object(body)?;
    let config = TopicConfig {
        replication: topic.replication,
        retention_ms: topic.retention_ms,
        retention_bytes: topic.retention_bytes,
        segment_bytes: None,
        cleanup: topic.cleanup.into(),
        compaction_lag_ms: topic.compaction_lag_ms,
        tombstone_retention_ms: topic.tombstone_retention_ms,
        segment_roll_ms: topic.segment_roll_ms,
    };
    let admin = state.client().admin();
    let created = admin
        .create_topic(&topic.name, topic.partitions, config)
        .await?;
    Ok((StatusCode::CREATED, Json(TopicView::of(&created))))
}

/// One topic.
#[utoipa::path(get, path = "/api/topics/{topic}", tag = "topics",
    params(("topic" = String, Path)),
    responses((status = 200, body = TopicView), (status = 404, body = ErrorBody)))]
pub async fn describe(
    State(state): State<HttpState>,
    Path(topic): Path<String>,
) -> Result<Json<TopicView>, HttpError> {
    let described = state.client().admin().describe_topic(&topic).await?;
    Ok(Json(TopicView::of(&described)))
}

/// Deletes a topic and its records.
#[utoipa::path(delete, path = "/api/topics/{topic}", tag = "topics",
    params(("topic" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<HttpState>,
    Path(topic): Path<String>,
) -> Result<StatusCode, HttpError> {
    let admin = state.client().admin();
    // The broker's delete is idempotent; the API answers 404 for a topic
    // that is not there.
    admin.describe_topic(&topic).await?;
    admin.delete_topic(&topic).await?;
    Ok(StatusCode::NO_CONTENT)
}
