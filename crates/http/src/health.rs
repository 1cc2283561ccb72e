//! Liveness (`/healthz`: the process answers), readiness (`/readyz`: the
//! node answers native requests and knows a metadata leader, or runs
//! standalone) and the cluster view (`/api/cluster`).

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{ErrorBody, HttpError};
use crate::state::HttpState;
use crate::views::ClusterView;

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Ready {
    pub status: &'static str,
    pub node_id: u32,
    pub metadata_leader: Option<u32>,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// The node serves requests: 200 once it answers and (in a cluster) knows
/// a metadata leader; 503 with `Retry-After` before.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses((status = 200, body = Ready), (status = 503, body = ErrorBody)))]
pub async fn readyz(State(state): State<HttpState>) -> Result<Json<Ready>, HttpError> {
    let status = state.client().admin().cluster_status().await?;
    // A standalone broker runs no metadata group (term 0).
    let standalone = status.metadata_term == 0;
    if status.metadata_leader.is_none() && !standalone {
        return Err(HttpError::unavailable("no metadata leader is known yet"));
    }
    Ok(Json(Ready {
        status: "ready",
        node_id: status.node_id,
        metadata_leader: status.metadata_leader,
    }))
}

/// Nodes, their liveness and load, the metadata leader, and the partitions
/// this node holds (as `citystream cluster status --json`).
#[utoipa::path(get, path = "/api/cluster", tag = "cluster",
    responses((status = 200, body = ClusterView)))]
pub async fn cluster(State(state): State<HttpState>) -> Result<Json<ClusterView>, HttpError> {
    let status = state.client().admin().cluster_status().await?;
    Ok(Json(ClusterView::of(&status)))
}
