//! Bodies of every request and response, and the one place that maps an
//! [`ApiKey`] to the body type it carries. Frame headers, versions and error
//! reporting live in `envelope.rs`; primitives in `wire.rs`.

mod admin;
mod cluster;
mod data;
mod group;
mod shared;

use crate::wire::{Decode, DecodeError, Reader, Writer};
use crate::{ApiKey, Request, Response};

pub(crate) fn encode_request_body(request: &Request, w: &mut Writer<'_>) {
    match request {
        Request::Hello(body) => w.put(body),
        Request::Produce(body) => w.put(body),
        Request::Fetch(body) => w.put(body),
        Request::ListOffsets(body) => w.put(body),
        Request::Metadata(body) => w.put(body),
        Request::CreateTopic(body) => w.put(body),
        Request::DeleteTopic(body) => w.put(body),
        Request::InitProducer(body) => w.put(body),
        Request::JoinGroup(body) => w.put(body),
        Request::SyncGroup(body) => w.put(body),
        Request::Heartbeat(body) => w.put(body),
        Request::LeaveGroup(body) => w.put(body),
        Request::CommitOffsets(body) => w.put(body),
        Request::FetchOffsets(body) => w.put(body),
        Request::ListGroups(body) => w.put(body),
        Request::DescribeGroup(body) => w.put(body),
        Request::ClusterStatus(body) => w.put(body),
        Request::RemoveNode(body) => w.put(body),
        Request::Rebalance(body) => w.put(body),
    }
}

pub(crate) fn decode_request_body(key: ApiKey, r: &mut Reader) -> Result<Request, DecodeError> {
    Ok(match key {
        ApiKey::Hello => Request::Hello(Decode::decode(r)?),
        ApiKey::Produce => Request::Produce(Decode::decode(r)?),
        ApiKey::Fetch => Request::Fetch(Decode::decode(r)?),
        ApiKey::ListOffsets => Request::ListOffsets(Decode::decode(r)?),
        ApiKey::Metadata => Request::Metadata(Decode::decode(r)?),
        ApiKey::CreateTopic => Request::CreateTopic(Decode::decode(r)?),
        ApiKey::DeleteTopic => Request::DeleteTopic(Decode::decode(r)?),
        ApiKey::InitProducer => Request::InitProducer(Decode::decode(r)?),
        ApiKey::JoinGroup => Request::JoinGroup(Decode::decode(r)?),
        ApiKey::SyncGroup => Request::SyncGroup(Decode::decode(r)?),
        ApiKey::Heartbeat => Request::Heartbeat(Decode::decode(r)?),
        ApiKey::LeaveGroup => Request::LeaveGroup(Decode::decode(r)?),
        ApiKey::CommitOffsets => Request::CommitOffsets(Decode::decode(r)?),
        ApiKey::FetchOffsets => Request::FetchOffsets(Decode::decode(r)?),
        ApiKey::ListGroups => Request::ListGroups(Decode::decode(r)?),
        ApiKey::DescribeGroup => Request::DescribeGroup(Decode::decode(r)?),
        ApiKey::ClusterStatus => Request::ClusterStatus(Decode::decode(r)?),
        ApiKey::RemoveNode => Request::RemoveNode(Decode::decode(r)?),
        ApiKey::Rebalance => Request::Rebalance(Decode::decode(r)?),
    })
}

pub(crate) fn encode_response_body(response: &Response, w: &mut Writer<'_>) {
    match response {
        Response::Hello(body) => w.put(body),
        Response::Produce(body) => w.put(body),
        Response::Fetch(body) => w.put(body),
        Response::ListOffsets(body) => w.put(body),
        Response::Metadata(body) => w.put(body),
        Response::CreateTopic(body) => w.put(body),
        Response::DeleteTopic(body) => w.put(body),
        Response::InitProducer(body) => w.put(body),
        Response::JoinGroup(body) => w.put(body),
        Response::SyncGroup(body) => w.put(body),
        Response::Heartbeat(body) => w.put(body),
        Response::LeaveGroup(body) => w.put(body),
        Response::CommitOffsets(body) => w.put(body),
        Response::FetchOffsets(body) => w.put(body),
        Response::ListGroups(body) => w.put(body),
        Response::DescribeGroup(body) => w.put(body),
        Response::ClusterStatus(body) => w.put(body),
        Response::RemoveNode(body) => w.put(body),
        Response::Rebalance(body) => w.put(body),
    }
}

pub(crate) fn decode_response_body(key: ApiKey, r: &mut Reader) -> Result<Response, DecodeError> {
    Ok(match key {
        ApiKey::Hello => Response::Hello(Decode::decode(r)?),
        ApiKey::Produce => Response::Produce(Decode::decode(r)?),
        ApiKey::Fetch => Response::Fetch(Decode::decode(r)?),
        ApiKey::ListOffsets => Response::ListOffsets(Decode::decode(r)?),
        ApiKey::Metadata => Response::Metadata(Decode::decode(r)?),
        ApiKey::CreateTopic => Response::CreateTopic(Decode::decode(r)?),
        ApiKey::DeleteTopic => Response::DeleteTopic(Decode::decode(r)?),
        ApiKey::InitProducer => Response::InitProducer(Decode::decode(r)?),
        ApiKey::JoinGroup => Response::JoinGroup(Decode::decode(r)?),
        ApiKey::SyncGroup => Response::SyncGroup(Decode::decode(r)?),
        ApiKey::Heartbeat => Response::Heartbeat(Decode::decode(r)?),
        ApiKey::LeaveGroup => Response::LeaveGroup(Decode::decode(r)?),
        ApiKey::CommitOffsets => Response::CommitOffsets(Decode::decode(r)?),
        ApiKey::FetchOffsets => Response::FetchOffsets(Decode::decode(r)?),
        ApiKey::ListGroups => Response::ListGroups(Decode::decode(r)?),
        ApiKey::DescribeGroup => Response::DescribeGroup(Decode::decode(r)?),
        ApiKey::ClusterStatus => Response::ClusterStatus(Decode::decode(r)?),
        ApiKey::RemoveNode => Response::RemoveNode(Decode::decode(r)?),
        ApiKey::Rebalance => Response::Rebalance(Decode::decode(r)?),
    })
}

impl Response {
    /// The api this response answers; must match its frame's `api_key`.
    pub fn api_key(&self) -> ApiKey {
        match self {
            Response::Hello(_) => ApiKey::Hello,
            Response::Produce(_) => ApiKey::Produce,
            Response::Fetch(_) => ApiKey::Fetch,
            Response::ListOffsets(_) => ApiKey::ListOffsets,
            Response::Metadata(_) => ApiKey::Metadata,
            Response::CreateTopic(_) => ApiKey::CreateTopic,
            Response::DeleteTopic(_) => ApiKey::DeleteTopic,
            Response::InitProducer(_) => ApiKey::InitProducer,
            Response::JoinGroup(_) => ApiKey::JoinGroup,
            Response::SyncGroup(_) => ApiKey::SyncGroup,
            Response::Heartbeat(_) => ApiKey::Heartbeat,
            Response::LeaveGroup(_) => ApiKey::LeaveGroup,
            Response::CommitOffsets(_) => ApiKey::CommitOffsets,
            Response::FetchOffsets(_) => ApiKey::FetchOffsets,
            Response::ListGroups(_) => ApiKey::ListGroups,
            Response::DescribeGroup(_) => ApiKey::DescribeGroup,
            Response::ClusterStatus(_) => ApiKey::ClusterStatus,
            Response::RemoveNode(_) => ApiKey::RemoveNode,
            Response::Rebalance(_) => ApiKey::Rebalance,
        }
    }
}

impl ApiKey {
    /// Every api, in wire-number order.
    pub const ALL: [ApiKey; 19] = [
        ApiKey::Hello,
        ApiKey::Produce,
        ApiKey::Fetch,
        ApiKey::ListOffsets,
        ApiKey::Metadata,
        ApiKey::CreateTopic,
        ApiKey::DeleteTopic,
        ApiKey::InitProducer,
        ApiKey::JoinGroup,
        ApiKey::SyncGroup,
        ApiKey::Heartbeat,
        ApiKey::LeaveGroup,
        ApiKey::CommitOffsets,
        ApiKey::FetchOffsets,
        ApiKey::ListGroups,
        ApiKey::DescribeGroup,
        ApiKey::ClusterStatus,
        ApiKey::RemoveNode,
        ApiKey::Rebalance,
    ];

    /// The api numbered `raw` on the wire, if this build knows it.
    pub fn from_u16(raw: u16) -> Option<ApiKey> {
        ApiKey::ALL.get(usize::from(raw)).copied()
    }
}

impl TryFrom<u16> for ApiKey {
    type Error = u16;

    fn try_from(raw: u16) -> Result<ApiKey, u16> {
        ApiKey::from_u16(raw).ok_or(raw)
    }
}

impl std::fmt::Display for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ApiKey::ALL` is in wire-number order, so `from_u16` indexes it safely.
    #[test]
    fn all_is_indexed_by_wire_number() {
        for (index, key) in ApiKey::ALL.iter().enumerate() {
            assert_eq!(*key as usize, index);
            assert_eq!(ApiKey::from_u16(index as u16), Some(*key));
        }
        assert_eq!(ApiKey::from_u16(ApiKey::ALL.len() as u16), None);
    }
}
