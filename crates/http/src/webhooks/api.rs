//! `/api/webhooks`: register, list, describe (with per-partition position,
//! lag and, from the delivering node, live state) and remove webhooks.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{BodyFormat, DeliveryStatus, WEBHOOKS_TOPIC, Webhook, WebhookSpec, Webhooks};
use crate::body::json_object;
use crate::error::{ErrorBody, HttpError};
use crate::state::HttpState;

/// A webhook to register.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    pub topic: String,
    /// `http://` or `https://`, with a host.
    pub url: String,
    /// Only records whose key matches: a prefix, or an MQTT-style filter
    /// with `+` and `#` (as the stream's `key`).
    #[serde(default)]
    pub key: Option<String>,
    /// `record` (default): the record as JSON; `value`: the value bytes.
    #[serde(default)]
    pub body: BodyFormat,
    /// `latest` (default): records written from now on; `earliest`: also
    /// those already in the topic.
    #[serde(default)]
    pub from: From,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum From {
    #[default]
    Latest,
    Earliest,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookView {
    pub id: u64,
    pub topic: String,
    pub url: String,
    pub key: Option<String>,
    pub body: BodyFormat,
    pub created_ms: i64,
    /// The node delivering it (the leader of the registry topic), if known.
    pub delivered_by: Option<u32>,
    pub partitions: Vec<WebhookPartitionView>,
    /// Records not delivered yet, over every partition.
    pub lag: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookPartitionView {
    pub partition: u32,
    pub position: u64,
    pub high_watermark: u64,
    pub lag: u64,
    /// The delivering node's live state (absent when asked of another
    /// node that could not reach it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery: Option<DeliveryStatus>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookList {
    pub webhooks: Vec<WebhookView>,
}

/// Registers a webhook.
#[utoipa::path(post, path = "/api/webhooks", tag = "webhooks", request_body = NewWebhook,
    responses(
        (status = 201, body = WebhookView),
        (status = 400, body = ErrorBody, description = "malformed URL, key filter or body"),
        (status = 404, body = ErrorBody, description = "unknown topic"),
    ))]
pub async fn create(
    State(state): State<HttpState>,
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> Result<(StatusCode, Json<WebhookView>), HttpError> {
    let new: NewWebhook = json_object(body)?;
    let spec = WebhookSpec {
        topic: new.topic,
        url: new.url,
        key_filter: new.key,
        body: new.body,
        from_earliest: matches!(new.from, From::Earliest),
    };
    let webhooks = state.webhooks();
    let hook = webhooks.create(spec).await?;
    let deliverer = deliverer(webhooks).await;
    let view = view(webhooks, &hook, deliverer.as_ref()).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// Every webhook, with positions and lag.
#[utoipa::path(get, path = "/api/webhooks", tag = "webhooks",
    responses((status = 200, body = WebhookList)))]
pub async fn list(State(state): State<HttpState>) -> Result<Json<WebhookList>, HttpError> {
    let webhooks = state.webhooks();
    let deliverer = deliverer(webhooks).await;
    let mut views = Vec::new();
    for hook in webhooks.list().await? {
        views.push(view(webhooks, &hook, deliverer.as_ref()).await?);
    }
    Ok(Json(WebhookList { webhooks: views }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DescribeQuery {
    /// Answer from this node's state only (do not ask the delivering node).
    #[serde(default)]
    pub local: bool,
}

/// One webhook: positions, lag, and the delivering node's live state.
#[utoipa::path(get, path = "/api/webhooks/{id}", tag = "webhooks",
    params(("id" = u64, Path), DescribeQuery),
    responses((status = 200, body = WebhookView), (status = 404, body = ErrorBody)))]
pub async fn describe(
    State(state): State<HttpState>,
    Path(id): Path<String>,
    Query(query): Query<DescribeQuery>,
) -> Result<Json<WebhookView>, HttpError> {
    let webhooks = state.webhooks();
    let hook = find(webhooks, &id).await?;
    let deliverer = match query.local {
        true => None,
        false => deliverer(webhooks).await,
    };
    Ok(Json(view(webhooks, &hook, deliverer.as_ref()).await?))
}

/// Removes a webhook: its deliveries stop.
#[utoipa::path(delete, path = "/api/webhooks/{id}", tag = "webhooks",
    params(("id" = u64, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<HttpState>,
    Path(id): Path<String>,
) -> Result<StatusCode, HttpError> {
    let id = parse_id(&id)?;
    match state.webhooks().delete(id).await? {
        true => Ok(StatusCode::NO_CONTENT),
        false => Err(no_such(id)),
    }
}

fn parse_id(text: &str) -> Result<u64, HttpError> {
    text.parse()
        .map_err(|_| HttpError::bad_request(format!("{text:?} is not a webhook id")))
}

fn no_such(id: u64) -> HttpError {
    HttpError::not_found("NOT_FOUND", format!("no webhook {id}"))
}

async fn find(webhooks: &Webhooks, id: &str) -> Result<Webhook, HttpError> {
    let id = parse_id(id)?;
    webhooks.get(id).await?.ok_or_else(|| no_such(id))
}

/// The delivering node: its id, whether it is this node, and its HTTP
/// address (to ask for live state).
struct Deliverer {
    node_id: u32,
    is_me: bool,
    http: Option<String>,
}

async fn deliverer(webhooks: &Webhooks) -> Option<Deliverer> {
    let status = webhooks.client().admin().cluster_status().await.ok()?;
    let metadata = webhooks
        .client()
        .metadata(Some(vec![WEBHOOKS_TOPIC.to_owned()]))
        .await
        .ok()?;
    let leader = metadata
        .topics
        .iter()
        .find(|topic| topic.name == WEBHOOKS_TOPIC)?
        .partitions
        .iter()
        .find(|partition| partition.partition == 0)?
        .leader;
    let http = status
        .nodes
        .iter()
        .find(|node| node.node_id == leader)
        .and_then(|node| node.addresses.iter().find(|a| a.name == "http"))
        .map(|address| address.address.clone());
    Some(Deliverer {
        node_id: leader,
        is_me: leader == status.node_id,
        http,
    })
}

async fn view(
    webhooks: &Webhooks,
    hook: &Webhook,
    deliverer: Option<&Deliverer>,
) -> Result<WebhookView, HttpError> {
    let positions = webhooks.positions(hook).await?;
    let mut live = webhooks.status(hook.id);
    if let Some(remote) = deliverer.filter(|d| !d.is_me)
        && live.is_empty()
    {
        live = remote_status(webhooks, remote, hook.id).await;
    }
    let partitions: Vec<WebhookPartitionView> = positions
        .into_iter()
        .map(|position| WebhookPartitionView {
            partition: position.partition,
            position: position.position,
            high_watermark: position.high_watermark,
            lag: position.lag,
            delivery: live
                .iter()
                .find(|(partition, _)| *partition == position.partition)
                .map(|(_, status)| status.clone()),
        })
        .collect();
    Ok(WebhookView {
        id: hook.id,
        topic: hook.topic.clone(),
        url: hook.url.clone(),
        key: hook.key_filter.clone(),
        body: hook.body,
        created_ms: hook.created_ms,
        delivered_by: deliverer.map(|d| d.node_id),
        lag: partitions.iter().map(|p| p.lag).sum(),
        partitions,
    })
}

/// The live state of `id` as the delivering node's HTTP API tells it
/// (nothing if it has no HTTP listener or does not answer in time).
async fn remote_status(
    webhooks: &Webhooks,
    deliverer: &Deliverer,
    id: u64,
) -> Vec<(u32, DeliveryStatus)> {
    #[derive(Deserialize)]
    struct Remote {
        partitions: Vec<RemotePartition>,
    }
    #[derive(Deserialize)]
    struct RemotePartition {
        partition: u32,
        delivery: Option<DeliveryStatus>,
    }
    let Some(address) = &deliverer.http else {
        return Vec::new();
    };
    let url = format!("http://{address}/api/webhooks/{id}?local=true");
    let answer = webhooks
        .http()
        .get(url)
        .timeout(std::time::Duration::from_secs(2))
        .send()
        .await;
    let Ok(answer) = answer else {
        return Vec::new();
    };
    let Ok(remote) = answer.json::<Remote>().await else {
        return Vec::new();
    };
    remote
        .partitions
        .into_iter()
        .filter_map(|p| Some((p.partition, p.delivery?)))
        .collect()
}
