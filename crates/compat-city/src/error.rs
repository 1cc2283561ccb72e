//! [`CityError`]: why a request did not succeed, and so its status. The
//! original answers every refusal 400 `{"error": ...}`; the errors it
//! never had (the broker unreachable, a record too large) keep that body
//! with the status that says what happened (503, 413, 500).

use axum::http::StatusCode;
use citystream_client::{ClientError, ErrorCode};
use citystream_http::HttpError;

#[derive(Debug, thiserror::Error)]
pub enum CityError {
    /// The request is refused; the text is the answer's `error` (400).
    #[error("{0}")]
    Refused(String),
    /// The broker refused or could not be reached.
    #[error("broker: {0}")]
    Broker(#[from] ClientError),
    /// The webhook registry refused (a URL that is not one: 400) or failed.
    #[error("{message}")]
    Webhook { status: StatusCode, message: String },
}

impl CityError {
    pub fn refused(message: impl Into<String>) -> CityError {
        CityError::Refused(message.into())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            CityError::Refused(_) => StatusCode::BAD_REQUEST,
            CityError::Broker(error) => broker_status(error),
            CityError::Webhook { status, .. } => *status,
        }
    }
}

impl From<HttpError> for CityError {
    fn from(error: HttpError) -> CityError {
        CityError::Webhook {
            status: error.status,
            message: error.message,
        }
    }
}

/// 413 for a record the broker will not take, 503 for what may pass when
/// tried again, 500 for the rest.
fn broker_status(error: &ClientError) -> StatusCode {
    match error.code() {
        Some(ErrorCode::RECORD_TOO_LARGE | ErrorCode::FRAME_TOO_LARGE) => {
            StatusCode::PAYLOAD_TOO_LARGE
        }
        _ if error.is_retriable() => StatusCode::SERVICE_UNAVAILABLE,
        _ => match error {
            ClientError::DeliveryTimeout { .. } | ClientError::Stalled { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        },
    }
}
