//! `/api/demo`: the console's stop and start buttons of `citystream demo`.
//! A broker that the demo started knows the demo's control address
//! (`HttpConfig::demo_control`) and forwards these requests to it, so the
//! page stays same-origin; any other broker lists no nodes and refuses
//! actions with 404.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use crate::error::{ErrorBody, HttpError};
use crate::state::HttpState;

/// The demo's nodes: `{"nodes":[{"node_id","running","http","native","log"}]}`;
/// `{"nodes":[]}` on a broker the demo did not start (so the console can
/// ask every broker without an error in the browser's console).
#[utoipa::path(get, path = "/api/demo", tag = "cluster",
    responses((status = 200, description = "the demo's nodes, none outside a demo")))]
pub async fn nodes(State(state): State<HttpState>) -> Result<Json<serde_json::Value>, HttpError> {
    if state.config().demo_control.is_none() {
        return Ok(Json(serde_json::json!({"nodes": []})));
    }
    forward(&state, reqwest::Method::GET, "/nodes").await
}

/// Stops (`stop`: SIGKILL, no clean shutdown) or starts (`start`) a node
/// of the demo.
#[utoipa::path(post, path = "/api/demo/nodes/{node}/{action}", tag = "cluster",
    params(("node" = u32, Path), ("action" = String, Path, description = "stop or start")),
    responses((status = 200, description = "the demo's nodes after the action"),
              (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn act(
    State(state): State<HttpState>,
    Path((node, action)): Path<(String, String)>,
) -> Result<Json<serde_json::Value>, HttpError> {
    let node: u32 = node
        .parse()
        .map_err(|_| HttpError::bad_request(format!("{node:?} is not a node id")))?;
    if action != "stop" && action != "start" {
        return Err(HttpError::bad_request(format!(
            "{action:?} is not an action: stop or start"
        )));
    }
    forward(
        &state,
        reqwest::Method::POST,
        &format!("/nodes/{node}/{action}"),
    )
    .await
}

async fn forward(
    state: &HttpState,
    method: reqwest::Method,
    path: &str,
) -> Result<Json<serde_json::Value>, HttpError> {
    let Some(base) = &state.config().demo_control else {
        return Err(HttpError::not_found(
            "NOT_FOUND",
            "this broker was not started by citystream demo",
        ));
    };
    let answer = state
        .webhooks()
        .http()
        .request(method, format!("{base}{path}"))
        .timeout(std::time::Duration::from_secs(10))
        .send()
        .await
        .map_err(|error| HttpError::unavailable(format!("the demo does not answer: {error}")))?;
    let status =
        StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body: serde_json::Value = answer.json().await.map_err(|error| {
        HttpError::unavailable(format!("the demo's answer is not JSON: {error}"))
    })?;
    if status.is_success() {
        return Ok(Json(body));
    }
    let message = body["error"]["message"]
        .as_str()
        .unwrap_or("the demo refused")
        .to_owned();
    let code = body["error"]["code"].as_str().unwrap_or("DEMO");
    Err(HttpError::new(status, code, message))
}
