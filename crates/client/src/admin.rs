//! [`Admin`]: topic management, group inspection, cluster status and
//! replica placement, each a thin request / response pair. Topic requests
//! go to any broker (the broker forwards to the controller in a cluster)
//! and follow `NOT_LEADER` answers; node removal and rebalancing go to the
//! metadata leader (`controller.rs` does both); offset lookups go to the
//! partition leader. It keeps no state besides the client handle.

use std::collections::HashMap;

use citystream_protocol::{
    ClusterStatusRequest, ClusterStatusResponse, CreateTopicRequest, DeleteTopicRequest,
    DescribeGroupRequest, DescribeGroupResponse, ErrorCode, GroupSummary, ListGroupsRequest,
    ListOffsetsPartition, ListOffsetsRequest, OffsetSpec, Reassignment, ReassignmentsResponse,
    RebalanceRequest, RemoveNodeRequest, Request, Response, TopicConfig, TopicMetadata,
};

use crate::controller::{Target, request_to_controller};
use crate::error::{needs_metadata_refresh, status_result};
use crate::{ApiError, Client, ClientError};

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

    pub async fn describe_group(&self, group: &str) -> Result<DescribeGroupResponse, ClientError> {
        let request = Request::DescribeGroup(DescribeGroupRequest {
            group: group.to_string(),
        });
        match self.client.request(request).await? {
            Response::DescribeGroup(response) => Ok(response),
            other => Err(ClientError::unexpected_response("DescribeGroup", &other)),
        }
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

/// Looks up `spec` for each partition, asking each partition's leader
/// (one request per leader), and returns `(topic, partition, offset)` in
/// the brokers' order, or the first partition error.
pub(crate) async fn list_offsets(
    client: &Client,
    partitions: Vec<(String, u32)>,
    spec: OffsetSpec,
) -> Result<Vec<(String, u32, u64)>, ClientError> {
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
    let mut offsets = Vec::new();
    for (address, partitions) in by_leader {
        let request = Request::ListOffsets(ListOffsetsRequest { partitions });
        match client.request_to(&address, request).await? {
            Response::ListOffsets(response) => {
                for p in response.partitions {
                    status_result(&p.status)?;
                    offsets.push((p.topic, p.partition, p.offset));
                }
            }
            other => return Err(ClientError::unexpected_response("ListOffsets", &other)),
        }
    }
    Ok(offsets)
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
