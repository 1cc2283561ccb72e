//! `/api/groups`: list and describe consumer groups (with lag), read the
//! records a group has not consumed yet (and commit past them), and commit
//! an offset explicitly. HTTP readers are not group members: their commits
//! are manual commits, refused while members of the group own partitions.
//! Group reads of one group are serialized on a node; two nodes serving
//! reads of one group at once may hand out the same records (at least
//! once across nodes).

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use citystream_client::TopicPartition;
use citystream_protocol::OffsetSpec;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::body::json_object;
use crate::error::{ErrorBody, HttpError};
use crate::records::{partition_count, read_from, read_limit};
use crate::state::HttpState;
use crate::views::{GroupSummaryView, GroupView, RecordView};

#[derive(Debug, Serialize, ToSchema)]
pub struct GroupList {
    pub groups: Vec<GroupSummaryView>,
}

/// Every consumer group.
#[utoipa::path(get, path = "/api/groups", tag = "groups", responses((status = 200, body = GroupList)))]
pub async fn list(State(state): State<HttpState>) -> Result<Json<GroupList>, HttpError> {
    let groups = state.client().admin().list_groups().await?;
    Ok(Json(GroupList {
        groups: groups.iter().map(GroupSummaryView::of).collect(),
    }))
}

/// A group: state, members, and per partition the committed offset and lag.
#[utoipa::path(get, path = "/api/groups/{group}", tag = "groups",
    params(("group" = String, Path)),
    responses((status = 200, body = GroupView), (status = 404, body = ErrorBody)))]
pub async fn describe(
    State(state): State<HttpState>,
    Path(group): Path<String>,
) -> Result<Json<GroupView>, HttpError> {
    let described = state.client().admin().describe_group(&group).await?;
    Ok(Json(GroupView::of(&described)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GroupReadQuery {
    pub topic: String,
    /// Records to return at most (default 100).
    pub limit: Option<usize>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GroupRecords {
    pub records: Vec<RecordView>,
    /// The offsets committed for the group after this read.
    pub committed: Vec<CommittedView>,
}

#[derive(Debug, Serialize, ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommittedView {
    pub topic: String,
    pub partition: u32,
    /// The offset of the next record the group reads.
    pub offset: u64,
}

/// Returns up to `limit` records of `topic` the group has not consumed yet
/// (from its committed offsets; from the log start for a new group) and
/// commits past them before answering: each record is handed out once.
#[utoipa::path(post, path = "/api/groups/{group}/records", tag = "groups",
    params(("group" = String, Path), GroupReadQuery),
    responses(
        (status = 200, body = GroupRecords),
        (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "unknown topic"),
    ))]
pub async fn read(
    State(state): State<HttpState>,
    Path(group): Path<String>,
    query: Result<Query<GroupReadQuery>, QueryRejection>,
) -> Result<Json<GroupRecords>, HttpError> {
    let Query(query) = query?;
    let limit = read_limit(state.config(), query.limit)?;
    let topic = query.topic;
    let partitions = partition_count(&state, &topic).await?;
    let lock = state.group_lock(&group);
    let _serialized = lock.lock().await;
    let admin = state.client().admin();
    let tps: Vec<TopicPartition> = (0..partitions)
        .map(|partition| TopicPartition {
            topic: topic.clone(),
            partition,
        })
        .collect();
    let committed = admin.committed_offsets(&group, tps.clone()).await?;
    let mut records = Vec::new();
    let mut advanced = Vec::new();
    for tp in tps {
        if records.len() >= limit {
            break;
        }
        let start = match committed
            .iter()
            .find(|(c, _)| *c == tp)
            .and_then(|(_, o)| *o)
        {
            Some(offset) => offset,
            None => {
                admin
                    .list_offsets(&topic, tp.partition, OffsetSpec::Earliest)
                    .await?
            }
        };
        let read = read_from(
            &state,
            &topic,
            tp.partition,
            start,
            limit - records.len(),
            0,
        )
        .await?;
        if read.next_offset > start {
            advanced.push((tp, read.next_offset));
        }
        records.extend(read.records);
    }
    admin.commit_offsets(&group, advanced.clone()).await?;
    Ok(Json(GroupRecords {
        records,
        committed: advanced
            .into_iter()
            .map(|(tp, offset)| CommittedView {
                topic: tp.topic,
                partition: tp.partition,
                offset,
            })
            .collect(),
    }))
}

/// Commits the group's offset of one partition (the next record it reads).
#[utoipa::path(post, path = "/api/groups/{group}/offsets", tag = "groups",
    params(("group" = String, Path)), request_body = CommittedView,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn commit(
    State(state): State<HttpState>,
    Path(group): Path<String>,
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> Result<StatusCode, HttpError> {
    let offset: CommittedView = json_object(body)?;
    let partitions = partition_count(&state, &offset.topic).await?;
    if offset.partition >= partitions {
        return Err(HttpError::not_found(
            "UNKNOWN_PARTITION",
            format!(
                "topic {:?} has {partitions} partitions, not {}",
                offset.topic, offset.partition
            ),
        ));
    }
    let tp = TopicPartition {
        topic: offset.topic,
        partition: offset.partition,
    };
    state
        .client()
        .admin()
        .commit_offsets(&group, vec![(tp, offset.offset)])
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
