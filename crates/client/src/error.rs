//! The client's one error type, [`ClientError`], and the questions every
//! retry loop asks of it: which wire code it carries, whether trying again
//! may help, and whether the metadata cache should be refreshed first.
//! It does not decide how often to retry; the producer and consumer do.

use citystream_protocol::{ApiError, ErrorCode};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The broker answered with an error code.
    #[error("{0}")]
    Api(#[from] ApiError),
    #[error("connection to {address} failed: {source}")]
    Connect {
        address: String,
        source: std::io::Error,
    },
    #[error("I/O error talking to {address}: {source}")]
    Io {
        address: String,
        source: std::io::Error,
    },
    #[error("request timed out after {timeout_ms} ms")]
    Timeout { timeout_ms: u64 },
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("the client is closed")]
    Closed,
    /// A produced batch was given up on: it was retried for the whole
    /// delivery timeout. It may or may not have been written.
    #[error(
        "gave up on {topic}/{partition} after trying for {waited_ms} ms ({attempts} attempts; delivery timeout {delivery_timeout_ms} ms); last error: {last_error}"
    )]
    DeliveryTimeout {
        topic: String,
        partition: u32,
        waited_ms: u64,
        attempts: u32,
        delivery_timeout_ms: u64,
        last_error: String,
    },
    /// A [`crate::tail::Tail`] made no progress towards `target` for
    /// `waited_ms` (the partition's leader is gone or far behind).
    #[error("{topic}/{partition} did not reach offset {target} within {waited_ms} ms (at {at})")]
    Stalled {
        topic: String,
        partition: u32,
        target: u64,
        at: u64,
        waited_ms: u64,
    },
}

impl ClientError {
    /// The broker's error code, if the broker answered with one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Api(error) => Some(error.code),
            _ => None,
        }
    }

    /// Whether sending the same request again (after a backoff and perhaps a
    /// metadata refresh) may succeed: retriable codes, I/O and timeouts.
    pub fn is_retriable(&self) -> bool {
        match self {
            ClientError::Api(error) => error.code.is_retriable(),
            ClientError::Connect { .. } | ClientError::Io { .. } | ClientError::Timeout { .. } => {
                true
            }
            ClientError::Protocol(_)
            | ClientError::InvalidArgument(_)
            | ClientError::Closed
            | ClientError::DeliveryTimeout { .. }
            | ClientError::Stalled { .. } => false,
        }
    }

    /// Whether the request failed on the way (connect, I/O, timeout) rather
    /// than being answered: the broker may be down or unreachable.
    pub(crate) fn is_transport(&self) -> bool {
        matches!(
            self,
            ClientError::Connect { .. } | ClientError::Io { .. } | ClientError::Timeout { .. }
        )
    }

    /// A structurally equal copy (`io::Error` is not `Clone`), so one batch
    /// failure can be handed to each of its records' futures.
    pub(crate) fn duplicate(&self) -> ClientError {
        let copy_io =
            |source: &std::io::Error| std::io::Error::new(source.kind(), source.to_string());
        match self {
            ClientError::Api(error) => ClientError::Api(error.clone()),
            ClientError::Connect { address, source } => ClientError::Connect {
                address: address.clone(),
                source: copy_io(source),
            },
            ClientError::Io { address, source } => ClientError::Io {
                address: address.clone(),
                source: copy_io(source),
            },
            ClientError::Timeout { timeout_ms } => ClientError::Timeout {
                timeout_ms: *timeout_ms,
            },
            ClientError::Protocol(message) => ClientError::Protocol(message.clone()),
            ClientError::InvalidArgument(message) => ClientError::InvalidArgument(message.clone()),
            ClientError::Closed => ClientError::Closed,
            ClientError::DeliveryTimeout {
                topic,
                partition,
                waited_ms,
                attempts,
                delivery_timeout_ms,
                last_error,
            } => ClientError::DeliveryTimeout {
                topic: topic.clone(),
                partition: *partition,
                waited_ms: *waited_ms,
                attempts: *attempts,
                delivery_timeout_ms: *delivery_timeout_ms,
                last_error: last_error.clone(),
            },
            ClientError::Stalled {
                topic,
                partition,
                target,
                at,
                waited_ms,
            } => ClientError::Stalled {
                topic: topic.clone(),
                partition: *partition,
                target: *target,
                at: *at,
                waited_ms: *waited_ms,
            },
        }
    }

    pub(crate) fn unexpected_response(expected: &str, got: &citystream_protocol::Response) -> Self {
        ClientError::Protocol(format!(
            "expected a {expected} response, got {:?}",
            got.api_key()
        ))
    }
}

/// Codes after which the cached leader or partition count may be stale.
pub(crate) fn needs_metadata_refresh(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::NOT_LEADER | ErrorCode::UNKNOWN_TOPIC | ErrorCode::UNKNOWN_PARTITION
    )
}

/// Turns a per-partition status into a `Result`.
pub(crate) fn status_result(
    status: &citystream_protocol::PartitionStatus,
) -> Result<(), ClientError> {
    if status.error.is_ok() {
        return Ok(());
    }
    Err(ClientError::Api(ApiError::new(
        status.error,
        status.message.clone(),
    )))
}
