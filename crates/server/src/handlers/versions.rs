//! What a request's protocol version allows beyond its layout. A version-1
//! client cannot read tombstones or compacted batches, so it may neither
//! produce to nor fetch from a compacted topic (decision 0017 §9); it is
//! told why instead of failing on the first batch it cannot decode. The
//! layouts of each version are the protocol crate's.

use citystream_protocol::{ApiError, ErrorCode, PROTOCOL_VERSION_COMPACTION, Request};

use crate::server::Shared;

/// Refuses a request that its version may not make.
pub(crate) fn check(shared: &Shared, api_version: u16, request: &Request) -> Result<(), ApiError> {
    if api_version >= PROTOCOL_VERSION_COMPACTION {
        return Ok(());
    }
    let compacted = match request {
        Request::Produce(produce) => {
            first_compacted(shared, produce.partitions.iter().map(|p| p.topic.as_str()))
        }
        Request::Fetch(fetch) => {
            first_compacted(shared, fetch.partitions.iter().map(|p| p.topic.as_str()))
        }
        _ => None,
    };
    match compacted {
        Some(topic) => Err(ApiError::new(
            ErrorCode::UNSUPPORTED_VERSION,
            format!(
                "topic {topic} is compacted; it needs protocol version \
                 {PROTOCOL_VERSION_COMPACTION}"
            ),
        )),
        None => Ok(()),
    }
}

fn first_compacted<'a>(
    shared: &Shared,
    mut topics: impl Iterator<Item = &'a str>,
) -> Option<&'a str> {
    topics.find(|topic| is_compacted(shared, topic))
}

/// Whether `topic` exists and its cleanup includes `compact`.
fn is_compacted(shared: &Shared, topic: &str) -> bool {
    match &shared.node {
        Some(node) => node.cleanup(topic).compacts(),
        None => shared
            .broker
            .topic_cleanup(topic)
            .is_some_and(|cleanup| cleanup.compacts()),
    }
}
