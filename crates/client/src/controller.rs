//! Sending admin requests to the metadata leader (the controller): finding
//! its address from a Metadata answer, and following `NOT_LEADER` answers
//! to the node they name, a bounded number of times.
//!
//! The decision of where to go next ([`redirect`]) is pure, so it is tested
//! without a cluster; [`request_to_controller`] is the thin loop around it.
//! It does not retry anything but `NOT_LEADER`: an admin request that timed
//! out may have been applied, so sending it again is the caller's call.

use citystream_protocol::{
    ErrorCode, MetadataRequest, MetadataResponse, NodeRef, PartitionStatus, Request, Response,
};

use crate::{Client, ClientError};

/// Sends of one request to the metadata leader, redirects included: the
/// first node, then at most two `NOT_LEADER` redirects (one is enough unless
/// leadership moves again while the request is redirected).
pub(crate) const CONTROLLER_SENDS_MAX: usize = 3;

/// Where a request goes first, or next after a `NOT_LEADER` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// Any broker (it forwards, or answers `NOT_LEADER`).
    AnyBroker,
    /// The node a `NOT_LEADER` answer named.
    Hinted(NodeRef),
    /// The `controller_id` of a fresh Metadata answer.
    Controller,
}

/// The target to send the same request to after `outcome`, or `None` when
/// `outcome` is final: a success, or an error that is not `NOT_LEADER`.
///
/// A request-level `NOT_LEADER` carries no hint, so it sends the request to
/// the controller; a `NOT_LEADER` status inside a body sends it to the node
/// of its `leader_hint`, if any.
pub(crate) fn redirect(outcome: &Result<Response, ClientError>) -> Option<Target> {
    let status = match outcome {
        Err(error) if error.code() == Some(ErrorCode::NOT_LEADER) => {
            return Some(Target::Controller);
        }
        Err(_) => return None,
        Ok(Response::CreateTopic(response)) => &response.topic.status,
        Ok(Response::RemoveNode(response) | Response::Rebalance(response)) => &response.status,
        Ok(_) => return None,
    };
    not_leader_target(status)
}

fn not_leader_target(status: &PartitionStatus) -> Option<Target> {
    if status.error != ErrorCode::NOT_LEADER {
        return None;
    }
    Some(match &status.leader_hint {
        Some(leader) => Target::Hinted(leader.clone()),
        None => Target::Controller,
    })
}

/// The address of the metadata leader named by `metadata`. When it is the
/// node that answered (`answering_node_id`, reached at `answering_address`)
/// that address is kept: it is known to work, the advertised one may not be
/// reachable from here.
pub(crate) fn controller_address(
    metadata: &MetadataResponse,
    answering_node_id: u32,
    answering_address: &str,
) -> Result<String, ClientError> {
    if metadata.controller_id == answering_node_id {
        return Ok(answering_address.to_string());
    }
    metadata
        .brokers
        .iter()
        .find(|broker| broker.node_id == metadata.controller_id)
        .map(|broker| broker.address.clone())
        .ok_or_else(|| {
            ClientError::Protocol(format!(
                "metadata names node {} as controller but lists no address for it",
                metadata.controller_id
            ))
        })
}

/// Sends `request` to `first`, then wherever `NOT_LEADER` answers point,
/// at most [`CONTROLLER_SENDS_MAX`] times; returns the last outcome.
pub(crate) async fn request_to_controller(
    client: &Client,
    first: Target,
    request: Request,
) -> Result<Response, ClientError> {
    let mut target = first;
    let mut sends = 0;
    loop {
        let outcome = send(client, &target, request.clone()).await;
        sends += 1;
        match redirect(&outcome) {
            Some(next) if sends < CONTROLLER_SENDS_MAX => {
                tracing::debug!(api = %request.api_key(), ?next, "not the metadata leader, redirecting");
                target = next;
            }
            _ => return outcome,
        }
    }
}

async fn send(client: &Client, target: &Target, request: Request) -> Result<Response, ClientError> {
    match target {
        Target::AnyBroker => client.request(request).await,
        Target::Hinted(leader) => client.request_to(&leader.address, request).await,
        Target::Controller => {
            let address = find_controller(client).await?;
            client.request_to(&address, request).await
        }
    }
}

/// Asks any broker for the metadata leader's address (no topics needed).
async fn find_controller(client: &Client) -> Result<String, ClientError> {
    let (address, node_id) = client.any_broker().await?;
    let request = Request::Metadata(MetadataRequest {
        topics: Some(Vec::new()),
    });
    match client.request_to(&address, request).await? {
        Response::Metadata(metadata) => controller_address(&metadata, node_id, &address),
        other => Err(ClientError::unexpected_response("Metadata", &other)),
    }
}

#[cfg(test)]
mod tests {
    use citystream_protocol::{
        ApiError, CreateTopicResponse, DeleteTopicResponse, ReassignmentsResponse, TopicConfig,
        TopicMetadata,
    };

    use super::*;

    fn node(node_id: u32, address: &str) -> NodeRef {
        NodeRef {
            node_id,
            address: address.to_string(),
        }
    }

    fn not_leader(hint: Option<NodeRef>) -> PartitionStatus {
        PartitionStatus {
            error: ErrorCode::NOT_LEADER,
            message: "not the metadata leader".to_string(),
            leader_hint: hint,
        }
    }

    fn reassignments(status: PartitionStatus) -> ReassignmentsResponse {
        ReassignmentsResponse {
            status,
            reassignments: Vec::new(),
        }
    }

    fn created(status: PartitionStatus) -> Response {
        Response::CreateTopic(CreateTopicResponse {
            topic: TopicMetadata {
                name: "t".to_string(),
                status,
                config: TopicConfig::default(),
                partitions: Vec::new(),
            },
        })
    }

    /// A NOT_LEADER status with a hint redirects to the hinted node, in every
    /// body that carries one.
    #[test]
    fn hinted_not_leader_redirects_to_the_hint() {
        let hint = node(2, "b:2");
        let expected = Some(Target::Hinted(hint.clone()));
        let rebalance = Response::Rebalance(reassignments(not_leader(Some(hint.clone()))));
        let remove = Response::RemoveNode(reassignments(not_leader(Some(hint.clone()))));
        assert_eq!(redirect(&Ok(rebalance)), expected);
        assert_eq!(redirect(&Ok(remove)), expected);
        assert_eq!(redirect(&Ok(created(not_leader(Some(hint))))), expected);
    }

    /// NOT_LEADER without a hint, in a body or as the request's error, sends
    /// the request to the controller named by fresh metadata.
    #[test]
    fn unhinted_not_leader_redirects_to_the_controller() {
        let request_error = ClientError::Api(ApiError::new(ErrorCode::NOT_LEADER, "no"));
        assert_eq!(redirect(&Err(request_error)), Some(Target::Controller));
        let rebalance = Response::Rebalance(reassignments(not_leader(None)));
        assert_eq!(redirect(&Ok(rebalance)), Some(Target::Controller));
    }

    /// Successes and other errors are final.
    #[test]
    fn other_outcomes_are_final() {
        let ok = Response::Rebalance(reassignments(PartitionStatus::ok()));
        assert_eq!(redirect(&Ok(ok)), None);
        assert_eq!(redirect(&Ok(created(PartitionStatus::ok()))), None);
        let exists = PartitionStatus::error(ErrorCode::TOPIC_ALREADY_EXISTS, "exists");
        assert_eq!(redirect(&Ok(created(exists))), None);
        let deleted = Response::DeleteTopic(DeleteTopicResponse {});
        assert_eq!(redirect(&Ok(deleted)), None);
        let invalid = ClientError::Api(ApiError::new(ErrorCode::INVALID_REQUEST, "no"));
        assert_eq!(redirect(&Err(invalid)), None);
        assert_eq!(redirect(&Err(ClientError::Timeout { timeout_ms: 1 })), None);
    }

    fn metadata(controller_id: u32) -> MetadataResponse {
        MetadataResponse {
            cluster_id: "c".to_string(),
            controller_id,
            brokers: vec![node(1, "advertised-a:1"), node(2, "b:2")],
            topics: Vec::new(),
        }
    }

    /// The controller's listed address is used, except when the controller
    /// answered itself: then the address that reached it is kept.
    #[test]
    fn controller_address_prefers_the_working_address() {
        assert_eq!(controller_address(&metadata(2), 1, "a:1").unwrap(), "b:2");
        assert_eq!(controller_address(&metadata(1), 1, "a:1").unwrap(), "a:1");
        let error = controller_address(&metadata(7), 1, "a:1").unwrap_err();
        assert!(error.to_string().contains("node 7"), "{error}");
    }
}
