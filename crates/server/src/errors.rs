//! The one mapping from domain errors to wire errors. Every handler goes
//! through here, so a `BrokerError` variant gets the same code and message
//! whether it fails a whole request or one partition of it. It does not
//! decide which of the two a failure is; the handlers do.

use citystream_broker::BrokerError;
use citystream_protocol::{ApiError, ErrorCode, NodeRef, PartitionStatus};

/// The wire code of a domain error.
pub(crate) fn error_code(error: &BrokerError) -> ErrorCode {
    match error {
        BrokerError::InvalidTopicName { .. } => ErrorCode::INVALID_TOPIC_NAME,
        BrokerError::UnknownTopic(_) => ErrorCode::UNKNOWN_TOPIC,
        BrokerError::UnknownPartition { .. } => ErrorCode::UNKNOWN_PARTITION,
        BrokerError::TopicExists(_) => ErrorCode::TOPIC_ALREADY_EXISTS,
        BrokerError::InvalidRequest(_) => ErrorCode::INVALID_REQUEST,
        BrokerError::BatchTooLarge { .. } | BrokerError::RecordTooLarge { .. } => {
            ErrorCode::RECORD_TOO_LARGE
        }
        BrokerError::CorruptBatch(_) => ErrorCode::CORRUPT_BATCH,
        BrokerError::OffsetOutOfRange { .. } => ErrorCode::OFFSET_OUT_OF_RANGE,
        BrokerError::OutOfOrderSequence { .. } => ErrorCode::OUT_OF_ORDER_SEQUENCE,
        BrokerError::OutOfSequence { .. } => ErrorCode::OUT_OF_SEQUENCE,
        BrokerError::UnknownProducer(_) => ErrorCode::UNKNOWN_PRODUCER,
        BrokerError::UnknownGroup(_) => ErrorCode::UNKNOWN_GROUP,
        BrokerError::UnknownMember { .. } => ErrorCode::UNKNOWN_MEMBER,
        BrokerError::IllegalGeneration { .. } => ErrorCode::ILLEGAL_GENERATION,
        BrokerError::RebalanceInProgress(_) => ErrorCode::REBALANCE_IN_PROGRESS,
        BrokerError::NotLeader { .. } => ErrorCode::NOT_LEADER,
        BrokerError::Unavailable(_) => ErrorCode::REQUEST_TIMED_OUT,
        BrokerError::Storage(_) => ErrorCode::STORAGE_ERROR,
    }
}

/// A whole-request error. Storage failures are the broker's fault, not the
/// client's, so they are logged here, once.
pub(crate) fn api_error(error: &BrokerError) -> ApiError {
    if let BrokerError::Storage(source) = error {
        tracing::warn!(error = %source, "storage error while serving a request");
    }
    ApiError::new(error_code(error), error.to_string())
}

/// The outcome of one partition inside a multi-partition request.
pub(crate) fn partition_status(error: &BrokerError) -> PartitionStatus {
    let api_error = api_error(error);
    let mut status = PartitionStatus::error(api_error.code, api_error.message);
    if let BrokerError::NotLeader {
        leader: Some(hint), ..
    } = error
    {
        status.leader_hint = Some(NodeRef {
            node_id: hint.node_id,
            address: hint.address.clone(),
        });
    }
    status
}

/// `INVALID_REQUEST` for a field the server itself rejects.
pub(crate) fn invalid_request(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::INVALID_REQUEST, message)
}
