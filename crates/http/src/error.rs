//! [`HttpError`]: the one error type of every handler, and the one mapping
//! from client (wire) errors to HTTP statuses. Every refusal is answered as
//! `{"error":{"code":"...","message":"..."}}`; codes are the native
//! protocol's stable names (`UNKNOWN_TOPIC`, `RECORD_TOO_LARGE`, ...) or, for
//! refusals the HTTP layer makes itself, `BAD_REQUEST`, `PAYLOAD_TOO_LARGE`,
//! `NOT_FOUND`, `UNAVAILABLE`. A 503 carries `Retry-After`.

use axum::Json;
use axum::extract::rejection::{BytesRejection, JsonRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use citystream_client::{ClientError, ErrorCode};
use serde::Serialize;
use utoipa::ToSchema;

/// Seconds a client should wait before retrying a 503.
const RETRY_AFTER_S: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
}

/// The body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable upper-snake name, e.g. `UNKNOWN_TOPIC`.
    pub code: String,
    pub message: String,
}

impl HttpError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> HttpError {
        HttpError {
            status,
            code: code.to_owned(),
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> HttpError {
        HttpError::new(StatusCode::BAD_REQUEST, "BAD_REQUEST", message)
    }

    pub fn too_large(message: impl Into<String>) -> HttpError {
        HttpError::new(StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE", message)
    }

    pub fn not_found(code: &str, message: impl Into<String>) -> HttpError {
        HttpError::new(StatusCode::NOT_FOUND, code, message)
    }

    pub fn unavailable(message: impl Into<String>) -> HttpError {
        HttpError::new(StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE", message)
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let retry = self.status == StatusCode::SERVICE_UNAVAILABLE;
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if retry {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_S));
        }
        response
    }
}

impl From<ClientError> for HttpError {
    fn from(error: ClientError) -> HttpError {
        let message = error.to_string();
        match &error {
            ClientError::Api(api) => {
                HttpError::new(status_of(api.code), api.code.name(), api.message.clone())
            }
            ClientError::InvalidArgument(_) => HttpError::bad_request(message),
            ClientError::Connect { .. }
            | ClientError::Io { .. }
            | ClientError::Timeout { .. }
            | ClientError::DeliveryTimeout { .. }
            | ClientError::Stalled { .. } => HttpError::unavailable(message),
            ClientError::Protocol(_) | ClientError::Closed => {
                HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", message)
            }
        }
    }
}

/// The HTTP status of a wire error code.
fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::UNKNOWN_TOPIC | ErrorCode::UNKNOWN_PARTITION | ErrorCode::UNKNOWN_GROUP => {
            StatusCode::NOT_FOUND
        }
        ErrorCode::TOPIC_ALREADY_EXISTS => StatusCode::CONFLICT,
        ErrorCode::RECORD_TOO_LARGE | ErrorCode::FRAME_TOO_LARGE => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::INVALID_TOPIC_NAME
        | ErrorCode::INVALID_REQUEST
        | ErrorCode::CORRUPT_BATCH
        | ErrorCode::OFFSET_OUT_OF_RANGE
        | ErrorCode::UNKNOWN_MEMBER
        | ErrorCode::ILLEGAL_GENERATION
        | ErrorCode::REBALANCE_IN_PROGRESS => StatusCode::BAD_REQUEST,
        code if code.is_retriable() => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<BytesRejection> for HttpError {
    fn from(rejection: BytesRejection) -> HttpError {
        match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => HttpError::too_large(rejection.body_text()),
            _ => HttpError::bad_request(rejection.body_text()),
        }
    }
}

impl From<JsonRejection> for HttpError {
    fn from(rejection: JsonRejection) -> HttpError {
        match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => HttpError::too_large(rejection.body_text()),
            _ => HttpError::bad_request(rejection.body_text()),
        }
    }
}

impl From<QueryRejection> for HttpError {
    fn from(rejection: QueryRejection) -> HttpError {
        HttpError::bad_request(rejection.body_text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use citystream_client::ApiError;

    /// Wire codes map to the statuses the API documents.
    #[test]
    fn wire_codes_map_to_statuses() {
        let cases = [
            (ErrorCode::UNKNOWN_TOPIC, StatusCode::NOT_FOUND),
            (ErrorCode::TOPIC_ALREADY_EXISTS, StatusCode::CONFLICT),
            (ErrorCode::RECORD_TOO_LARGE, StatusCode::PAYLOAD_TOO_LARGE),
            (ErrorCode::INVALID_TOPIC_NAME, StatusCode::BAD_REQUEST),
            (ErrorCode::NOT_LEADER, StatusCode::SERVICE_UNAVAILABLE),
            (ErrorCode::INTERNAL, StatusCode::INTERNAL_SERVER_ERROR),
        ];
        for (code, status) in cases {
            let error = HttpError::from(ClientError::Api(ApiError::new(code, "m")));
            assert_eq!((error.status, error.code.as_str()), (status, code.name()));
        }
    }

    /// A 503 tells the client when to come back.
    #[test]
    fn unavailable_carries_retry_after() {
        let response = HttpError::unavailable("no leader yet").into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    }
}
