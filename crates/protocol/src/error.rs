//! Stable numeric error codes. A code, once released, is never renumbered or
//! reused; new failures get new numbers. Unknown codes from a newer peer still
//! decode (as `ErrorCode(n)`), so clients degrade instead of failing to parse.

/// A wire error code (`0` = no error).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorCode(pub u16);

impl ErrorCode {
    pub const NONE: ErrorCode = ErrorCode(0);
    /// The frame could not be parsed (bad header, truncated body, bad UTF-8...).
    pub const MALFORMED_FRAME: ErrorCode = ErrorCode(1);
    /// The request's api version is not supported, or Hello found no common version.
    pub const UNSUPPORTED_VERSION: ErrorCode = ErrorCode(2);
    /// The api key names no request this broker knows.
    pub const UNKNOWN_REQUEST: ErrorCode = ErrorCode(3);
    /// The frame is larger than the broker's frame limit; it was skipped.
    pub const FRAME_TOO_LARGE: ErrorCode = ErrorCode(4);
    /// A record or batch is larger than the broker's record limit.
    pub const RECORD_TOO_LARGE: ErrorCode = ErrorCode(5);
    pub const INVALID_TOPIC_NAME: ErrorCode = ErrorCode(6);
    pub const UNKNOWN_TOPIC: ErrorCode = ErrorCode(7);
    pub const UNKNOWN_PARTITION: ErrorCode = ErrorCode(8);
    pub const TOPIC_ALREADY_EXISTS: ErrorCode = ErrorCode(9);
    pub const OFFSET_OUT_OF_RANGE: ErrorCode = ErrorCode(10);
    /// A produced batch failed its CRC or structure check.
    pub const CORRUPT_BATCH: ErrorCode = ErrorCode(11);
    pub const UNKNOWN_GROUP: ErrorCode = ErrorCode(12);
    pub const UNKNOWN_MEMBER: ErrorCode = ErrorCode(13);
    pub const ILLEGAL_GENERATION: ErrorCode = ErrorCode(14);
    /// The group is rebalancing: re-join to get the new assignment.
    pub const REBALANCE_IN_PROGRESS: ErrorCode = ErrorCode(15);
    /// An idempotent producer's batch is behind what the partition holds
    /// and is not one of its recent batches (the producer's state here was
    /// lost or reset): the producer must start over with a new producer id.
    pub const OUT_OF_ORDER_SEQUENCE: ErrorCode = ErrorCode(16);
    /// This node does not lead the partition; see the leader hint.
    pub const NOT_LEADER: ErrorCode = ErrorCode(17);
    /// A field has a value outside its allowed range (e.g. 0 partitions).
    pub const INVALID_REQUEST: ErrorCode = ErrorCode(18);
    pub const STORAGE_ERROR: ErrorCode = ErrorCode(19);
    pub const REQUEST_TIMED_OUT: ErrorCode = ErrorCode(20);
    /// A request other than Hello arrived before the handshake.
    pub const HANDSHAKE_REQUIRED: ErrorCode = ErrorCode(21);
    pub const UNKNOWN_PRODUCER: ErrorCode = ErrorCode(22);
    pub const NOT_ENOUGH_REPLICAS: ErrorCode = ErrorCode(23);
    /// Too many requests in flight on this connection or broker.
    pub const BUSY: ErrorCode = ErrorCode(24);
    pub const SHUTTING_DOWN: ErrorCode = ErrorCode(25);
    pub const INTERNAL: ErrorCode = ErrorCode(26);
    /// An idempotent producer's batch skipped ahead: an earlier batch of it
    /// has not reached this leader yet (lost in transit, or still on its
    /// way). Nothing was written; re-send the unacknowledged batches of the
    /// partition in sequence order.
    pub const OUT_OF_SEQUENCE: ErrorCode = ErrorCode(27);

    pub fn is_ok(self) -> bool {
        self == ErrorCode::NONE
    }

    /// Stable upper-snake name of the code, `UNKNOWN_CODE` for unknown ones.
    pub fn name(self) -> &'static str {
        match self.0 {
            0 => "NONE",
            1 => "MALFORMED_FRAME",
            2 => "UNSUPPORTED_VERSION",
            3 => "UNKNOWN_REQUEST",
            4 => "FRAME_TOO_LARGE",
            5 => "RECORD_TOO_LARGE",
            6 => "INVALID_TOPIC_NAME",
            7 => "UNKNOWN_TOPIC",
            8 => "UNKNOWN_PARTITION",
            9 => "TOPIC_ALREADY_EXISTS",
            10 => "OFFSET_OUT_OF_RANGE",
            11 => "CORRUPT_BATCH",
            12 => "UNKNOWN_GROUP",
            13 => "UNKNOWN_MEMBER",
            14 => "ILLEGAL_GENERATION",
            15 => "REBALANCE_IN_PROGRESS",
            16 => "OUT_OF_ORDER_SEQUENCE",
            17 => "NOT_LEADER",
            18 => "INVALID_REQUEST",
            19 => "STORAGE_ERROR",
            20 => "REQUEST_TIMED_OUT",
            21 => "HANDSHAKE_REQUIRED",
            22 => "UNKNOWN_PRODUCER",
            23 => "NOT_ENOUGH_REPLICAS",
            24 => "BUSY",
            25 => "SHUTTING_DOWN",
            26 => "INTERNAL",
            27 => "OUT_OF_SEQUENCE",
            _ => "UNKNOWN_CODE",
        }
    }

    /// Whether a client may retry the same request (possibly elsewhere).
    pub fn is_retriable(self) -> bool {
        matches!(
            self,
            ErrorCode::NOT_LEADER
                | ErrorCode::REQUEST_TIMED_OUT
                | ErrorCode::NOT_ENOUGH_REPLICAS
                | ErrorCode::BUSY
                | ErrorCode::SHUTTING_DOWN
                | ErrorCode::STORAGE_ERROR
                | ErrorCode::OUT_OF_SEQUENCE
        )
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.name(), self.0)
    }
}

/// An error code with a human message, as carried on the wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
        }
    }
}
