//! [`Admin`]: topic management, group inspection, cluster status and
//! replica placement, each a thin request / response pair. Topic requests
//! go to any broker (the broker forwards to the controller in a cluster)
//! and follow `NOT_LEADER` answers; node removal and rebalancing go to the
//! metadata leader (`controller.rs` does both); offset lookups go to the
//! partition leader. It keeps no state besides the client handle.

use std::collections::HashMap;
use std::time::Duration;

use citystream_protocol::{
    ClusterStatusRequest, ClusterStatusResponse, CreateTopicRequest, DeleteTopicRequest,
    DescribeGroupRequest, DescribeGroupResponse, ErrorCode, GroupSummary, ListGroupsRequest,
    ListOffsetsPartition, ListOffsetsRequest, OffsetSpec, Reassignment, ReassignmentsResponse,
    RebalanceRequest, RemoveNodeRequest, Request, Response, TopicConfig, TopicMetadata,
    TopicPartition,
};

use crate::controller::{Target, request_to_controller};
use crate::error::{needs_metadata_refresh, status_result};
use crate::{ApiError, Client, ClientError};

/// Offset lookups per partition while leaders move: with the backoff,
/// about five seconds, several elections' worth.
const LIST_OFFSETS_ATTEMPTS_MAX: u32 = 50;
const LIST_OFFSETS_BACKOFF_MS: u64 = 100;

/// Topic and group administration; get one with [`Client::admin`].
pub struct Admin {
    client: Client,
}

pub(crate) fn new(client: Client) -> Admin {
    Admin { client }
}

impl Admin {
    /// Creates a topic. A `NOT_LEADER` answer is followed to the node it
    /// names (or to the controller), at most three sends in all.
    pub async fn create_topic(
        &self,
        name: &str,
        partitions: u32,
        config: TopicConfig,
    ) -> Result<TopicMetadata, ClientError> {
        let request = Request::CreateTopic(CreateTopicRequest {
            name: name.to_string(),
            partitions,
            config,
        });
        match request_to_controller(&self.client, Target::AnyBroker, request).await? {
            Response::CreateTopic(response) => {
                status_result(&response.topic.status)?;
                // Make the new topic routable without another round trip later.
                let _ = self.client.refresh_metadata(&[name]).await;
                Ok(response.topic)
            }
            other => Err(ClientError::unexpected_response("CreateTopic", &other)),
        }
    }

    /// Deletes a topic, following `NOT_LEADER` as [`Admin::create_topic`] does.
    pub async fn delete_topic(&self, name: &str) -> Result<(), ClientError> {
        let request = Request::DeleteTopic(DeleteTopicRequest {
            name: name.to_string(),
        });
        match request_to_controller(&self.client, Target::AnyBroker, request).await? {
            Response::DeleteTopic(_) => {
                let _ = self.client.refresh_metadata(&[name]).await;
                Ok(())
            }
            other => Err(ClientError::unexpected_response("DeleteTopic", &other)),
        }
    }

    pub async fn list_topics(&self) -> Result<Vec<TopicMetadata>, ClientError> {
        Ok(self.client.metadata(None).await?.topics)
    }

    pub async fn describe_topic(&self, name: &str) -> Result<TopicMetadata, ClientError> {
        let response = self.client.metadata(Some(vec![name.to_string()])).await?;
        let topic = response
            .topics
            .into_iter()
            .find(|topic| topic.name == name)
            .ok_or_else(|| unknown_topic(name))?;
        status_result(&topic.status)?;
        Ok(topic)
    }

    pub async fn list_offsets(
        &self,
        topic: &str,
        partition: u32,
        spec: OffsetSpec,
    ) -> Result<u64, ClientError> {
        match self.list_offsets_once(topic, partition, spec).await {
            Err(error) if error.code().is_some_and(needs_metadata_refresh) => {
                self.client.refresh_metadata(&[topic]).await?;
                self.list_offsets_once(topic, partition, spec).await
            }
            result => result,
        }
    }

    pub async fn list_groups(&self) -> Result<Vec<GroupSummary>, ClientError> {
        match self
            .client
            .request(Request::ListGroups(ListGroupsRequest {}))
            .await?
        {
            Response::ListGroups(response) => Ok(response.groups),
            other => Err(ClientError::unexpected_response("ListGroups", &other)),
        }
    }

    /// The offsets `group` committed for `partitions` (`None`: nothing yet).
    pub async fn committed_offsets(
        &self,
        group: &str,
        partitions: Vec<TopicPartition>,
    ) -> Result<Vec<(TopicPartition, Option<u64>)>, ClientError> {
        crate::consumer::committed_offsets(&self.client, group, partitions).await
    }

    /// Commits `offsets` for `group` without being a member (a manual
    /// commit: refused while the group has members that own partitions).
    pub async fn commit_offsets(
        &self,
        group: &str,
        offsets: Vec<(TopicPartition, u64)>,
    ) -> Result<(), ClientError> {
        crate::consumer::commit(&self.client, group, None, offsets).await
    }

    pub async fn describe_group(&self, group: &str) -> Result<DescribeGroupResponse, ClientError> {
        let request = Request::DescribeGroup(DescribeGroupRequest {
            group: group.to_string(),
        });
        let mut response = match self.client.request(request).await? {
            Response::DescribeGroup(response) => response,
            other => return Err(ClientError::unexpected_response("DescribeGroup", &other)),
        };
        // The coordinator knows committed offsets, not every partition's
        // end: in cluster mode it holds no partition state of its own. Ask
        // each partition's leader (as consumers do).
        let partitions: Vec<(String, u32)> = response
            .offsets
            .iter()
            .map(|offset| (offset.topic.clone(), offset.partition))
            .collect();
        if !partitions.is_empty() {
            match list_offsets(&self.client, partitions, OffsetSpec::Latest).await {
                Ok(ends) => {
                    for offset in &mut response.offsets {
                        if let Some((_, _, end)) = ends
                            .iter()
                            .find(|(t, p, _)| *t == offset.topic && *p == offset.partition)
                        {
                            offset.high_watermark = *end;
                        }
                    }
                }
                Err(error) => {
                    tracing::debug!(%error, group, "high watermarks for a group's lag unavailable")
                }
            }
        }
        Ok(response)
    }

    /// The cluster as the node this client talks to sees it: members with
    /// their liveness, addresses and load (from gossip), and the partitions
    /// that node holds. `node_id` in the answer names the node that answered.
    pub async fn cluster_status(&self) -> Result<ClusterStatusResponse, ClientError> {
        let request = Request::ClusterStatus(ClusterStatusRequest {});
        match self.client.request(request).await? {
            Response::ClusterStatus(response) => Ok(response),
            other => Err(ClientError::unexpected_response("ClusterStatus", &other)),
        }
    }

    /// Moves every replica off node `node_id` so it can be retired; returns
    /// the moves the metadata leader committed. Sent to the metadata leader,
    /// following a `NOT_LEADER` answer to the node it names.
    pub async fn remove_node(&self, node_id: u32) -> Result<Vec<Reassignment>, ClientError> {
        let request = Request::RemoveNode(RemoveNodeRequest { node_id });
        match request_to_controller(&self.client, Target::Controller, request).await? {
            Response::RemoveNode(response) => reassignments(response),
            other => Err(ClientError::unexpected_response("RemoveNode", &other)),
        }
    }

    /// Spreads replicas and leaders evenly over the alive nodes; returns the
    /// moves committed, or with `dry_run` the moves planned (nothing
    /// changes). Routed as [`Admin::remove_node`].
    pub async fn rebalance(&self, dry_run: bool) -> Result<Vec<Reassignment>, ClientError> {
        let request = Request::Rebalance(RebalanceRequest { dry_run });
        match request_to_controller(&self.client, Target::Controller, request).await? {
            Response::Rebalance(response) => reassignments(response),
            other => Err(ClientError::unexpected_response("Rebalance", &other)),
        }
    }

    async fn list_offsets_once(
        &self,
        topic: &str,
        partition: u32,
        spec: OffsetSpec,
    ) -> Result<u64, ClientError> {
        list_offsets(&self.client, vec![(topic.to_string(), partition)], spec)
            .await?
            .pop()
            .map(|(_, _, offset)| offset)
            .ok_or_else(|| ClientError::Protocol("ListOffsets answered no partition".to_string()))
    }
}

/// Looks up offsets at each partition's leader. While a leader is moving
/// (a dead one refuses connections, a deposed one answers `NOT_LEADER`),
/// the partitions concerned are asked again after a metadata refresh and a
/// backoff, at most [`LIST_OFFSETS_ATTEMPTS_MAX`] times in all.
pub(crate) async fn list_offsets(
    client: &Client,
    partitions: Vec<(String, u32)>,
    spec: OffsetSpec,
) -> Result<Vec<(String, u32, u64)>, ClientError> {
    let mut offsets = Vec::new();
    let mut pending = partitions;
    for attempt in 1..=LIST_OFFSETS_ATTEMPTS_MAX {
        let round = list_offsets_round(client, pending, spec).await?;
        offsets.extend(round.found);
        let Some(error) = round.retry_error else {
            return Ok(offsets);
        };
        if attempt == LIST_OFFSETS_ATTEMPTS_MAX {
            return Err(error);
        }
        tracing::debug!(%error, attempt, "offset lookup will be retried");
        tokio::time::sleep(Duration::from_millis(LIST_OFFSETS_BACKOFF_MS)).await;
        let mut topics: Vec<&str> = round.retry.iter().map(|(t, _)| t.as_str()).collect();
        topics.sort();
        topics.dedup();
        if let Err(error) = client.refresh_metadata(&topics).await {
            tracing::debug!(%error, "metadata refresh before an offset lookup failed");
        }
        pending = round.retry;
    }
    unreachable!("the last attempt returns")
}

/// One lookup round: what was found, and what to ask again (with the
/// last error that asked for it).
#[derive(Default)]
struct ListOffsetsRound {
    found: Vec<(String, u32, u64)>,
    retry: Vec<(String, u32)>,
    retry_error: Option<ClientError>,
}

async fn list_offsets_round(
    client: &Client,
    partitions: Vec<(String, u32)>,
    spec: OffsetSpec,
) -> Result<ListOffsetsRound, ClientError> {
    let mut by_leader: HashMap<String, Vec<ListOffsetsPartition>> = HashMap::new();
    for (topic, partition) in partitions {
        let address = client
            .leader_address(&topic, partition)
            .unwrap_or_else(|| client.preferred_address());
        by_leader
            .entry(address)
            .or_default()
            .push(ListOffsetsPartition {
                topic,
                partition,
                spec,
            });
    }
    let mut round = ListOffsetsRound::default();
    for (address, partitions) in by_leader {
        let asked: Vec<(String, u32)> = partitions
            .iter()
            .map(|p| (p.topic.clone(), p.partition))
            .collect();
        let request = Request::ListOffsets(ListOffsetsRequest { partitions });
        let response = match client.request_to(&address, request).await {
            Ok(Response::ListOffsets(response)) => response,
            Ok(other) => return Err(ClientError::unexpected_response("ListOffsets", &other)),
            Err(error) if error.is_transport() => {
                round.retry.extend(asked);
                round.retry_error = Some(error);
                continue;
            }
            Err(error) => return Err(error),
        };
        for p in response.partitions {
            // NOT_LEADER: the leader moved. Other retriable refusals: e.g. a
            // leader that has just taken over and not yet committed in its
            // term (its high watermark may lag for that moment).
            if p.status.error == ErrorCode::NOT_LEADER || p.status.error.is_retriable() {
                if let Some(leader) = &p.status.leader_hint {
                    client.apply_leader_hint(&p.topic, p.partition, leader);
                }
                round.retry_error = status_result(&p.status).err();
                round.retry.push((p.topic, p.partition));
                continue;
            }
            status_result(&p.status)?;
            round.found.push((p.topic, p.partition, p.offset));
        }
    }
    Ok(round)
}

/// The moves of a reassignments answer, or the error of its status (a
/// `NOT_LEADER` still there after the redirects).
fn reassignments(response: ReassignmentsResponse) -> Result<Vec<Reassignment>, ClientError> {
    status_result(&response.status)?;
    Ok(response.reassignments)
}

fn unknown_topic(name: &str) -> ClientError {
    ClientError::Api(ApiError::new(
        ErrorCode::UNKNOWN_TOPIC,
        format!("unknown topic {name:?}"),
    ))
}
