//! The demo's control API on 127.0.0.1 (an ephemeral port the nodes are
//! told with `--demo-control`): the console's stop and start buttons reach
//! it through any node's `/api/demo`.
//!
//! - `GET /nodes` → `{"nodes":[{"node_id","running","http","native","log"}]}`
//! - `POST /nodes/{id}/stop` (SIGKILL) and `POST /nodes/{id}/start` →
//!   the same list after the action; an unknown node is 404.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use super::nodes::Node;

pub type Nodes = Arc<Mutex<Vec<Node>>>;

type Answer = (StatusCode, Json<Value>);

/// Serves the control API on `listener` until `stop`.
pub fn spawn(
    listener: tokio::net::TcpListener,
    nodes: Nodes,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let app = axum::Router::new()
        .route("/nodes", get(list))
        .route("/nodes/{node}/{action}", post(act))
        .with_state(nodes);
    tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await;
        if let Err(error) = served {
            tracing::error!(%error, "the demo's control API failed");
        }
    })
}

async fn list(State(nodes): State<Nodes>) -> Answer {
    let mut nodes = nodes.lock().await;
    (StatusCode::OK, Json(views(&mut nodes)))
}

async fn act(State(nodes): State<Nodes>, Path((node, action)): Path<(u32, String)>) -> Answer {
    let mut nodes = nodes.lock().await;
    let Some(target) = nodes.iter_mut().find(|n| n.spec.node_id == node) else {
        return error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("the demo has no node {node}"),
        );
    };
    match action.as_str() {
        "stop" => {
            target.kill().await;
            println!("demo: node {node} stopped (killed) from the console");
        }
        "start" => {
            if let Err(failure) = target.start().await {
                return error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "UNAVAILABLE",
                    format!("{failure:#}"),
                );
            }
            println!("demo: node {node} started from the console");
        }
        other => {
            return error(
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
                format!("{other:?} is not an action: stop or start"),
            );
        }
    }
    (StatusCode::OK, Json(views(&mut nodes)))
}

fn views(nodes: &mut [Node]) -> Value {
    json!({"nodes": nodes.iter_mut().map(Node::view).collect::<Vec<_>>()})
}

fn error(status: StatusCode, code: &str, message: String) -> Answer {
    (
        status,
        Json(json!({"error": {"code": code, "message": message}})),
    )
}
