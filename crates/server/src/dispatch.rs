//! The one dispatcher of the native transport: a single match from
//! [`Request`] to the handler of its resource. Handlers live in `handlers/`,
//! one file per resource; this file decides nothing but the routing.

use citystream_protocol::{ApiError, Request, Response};
use tokio_util::sync::CancellationToken;

use crate::handlers::{cluster, coordinator, data, group, handshake, producer, replicated, topic};
use crate::server::Shared;

/// A request's answer; `None` when none is sent (produce with `acks = None`).
pub(crate) type Outcome = Option<Result<Response, ApiError>>;

/// Serves one decoded request. `stop` is cancelled when the connection or
/// the server winds down; waiting handlers (long polls, joins) watch it.
pub(crate) async fn dispatch(
    shared: &Shared,
    stop: &CancellationToken,
    request: Request,
) -> Outcome {
    if let Some(node) = &shared.node
        && coordinator::is_group_request(&request)
    {
        if !node.leads_metadata() {
            return coordinator::forward(node, request).await;
        }
        if let Err(error) = coordinator::take_over(shared, node).await {
            return Some(Err(error));
        }
    }
    let response = match request {
        Request::Hello(hello) => handshake::hello(shared, &hello).map(Response::Hello),
        Request::Produce(produce) => {
            if let Some(node) = &shared.node {
                return replicated::submit_produce(shared, node, produce)
                    .await
                    .await;
            }
            return data::produce(shared, produce).map(|r| Ok(Response::Produce(r)));
        }
        Request::Fetch(fetch) => Ok(Response::Fetch(data::fetch(shared, stop, fetch).await)),
        Request::ListOffsets(list) => Ok(Response::ListOffsets(data::list_offsets(shared, list))),
        Request::Metadata(metadata) => Ok(Response::Metadata(match &shared.node {
            Some(node) => replicated::metadata(shared, node, &metadata),
            None => topic::metadata(shared, &metadata),
        })),
        Request::CreateTopic(create) => match &shared.node {
            Some(node) => replicated::create(node, &create).await,
            None => topic::create(shared, &create),
        }
        .map(Response::CreateTopic),
        Request::DeleteTopic(delete) => match &shared.node {
            Some(node) => replicated::delete(node, &delete).await,
            None => topic::delete(shared, &delete),
        }
        .map(Response::DeleteTopic),
        Request::InitProducer(_) => producer::init(shared).map(Response::InitProducer),
        Request::JoinGroup(join) => group::join(shared, stop, join)
            .await
            .map(Response::JoinGroup),
        Request::SyncGroup(sync) => group::sync(shared, &sync).map(Response::SyncGroup),
        Request::Heartbeat(beat) => group::heartbeat(shared, &beat).map(Response::Heartbeat),
        Request::LeaveGroup(leave) => group::leave(shared, &leave).map(Response::LeaveGroup),
        Request::CommitOffsets(commit) => match &shared.node {
            Some(node) => coordinator::commit(shared, node, commit).await,
            None => group::commit(shared, commit),
        }
        .map(Response::CommitOffsets),
        Request::FetchOffsets(fetch) => {
            Ok(Response::FetchOffsets(group::fetch_offsets(shared, fetch)))
        }
        Request::ListGroups(_) => Ok(Response::ListGroups(group::list(shared))),
        Request::DescribeGroup(describe) => {
            group::describe(shared, &describe).map(Response::DescribeGroup)
        }
        Request::ClusterStatus(_) => Ok(Response::ClusterStatus(cluster::status(shared))),
        Request::RemoveNode(remove) => match &shared.node {
            Some(node) => replicated::remove_node(node, &remove)
                .await
                .map(Response::RemoveNode),
            None => Err(needs_cluster_mode("RemoveNode")),
        },
        Request::Rebalance(rebalance) => match &shared.node {
            Some(node) => replicated::rebalance(node, &rebalance)
                .await
                .map(Response::Rebalance),
            None => Err(needs_cluster_mode("Rebalance")),
        },
    };
    Some(response)
}

fn needs_cluster_mode(request: &str) -> ApiError {
    ApiError::new(
        citystream_protocol::ErrorCode::INVALID_REQUEST,
        format!("{request} needs cluster mode"),
    )
}
