//! [`Reply`]: every answer of the listener, as the original broker's
//! clients expect it: JSON always; success is 200 `{"status":"success",...}`;
//! a refusal is 400 `{"status":"failure","message":...}`; anything
//! malformed is 500 `{"message":"Internal server Error: check params"}`;
//! a broker failure is 500 with a failure body naming it. Clients count
//! only 400 and 500 as errors, so no other status is ever answered.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error::QueueError;

/// The original's answer to a request it could not read.
pub const MALFORMED_MESSAGE: &str = "Internal server Error: check params";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    status: StatusCode,
    /// JSON text.
    body: String,
}

#[derive(Serialize)]
struct Failure<'a> {
    status: &'static str,
    message: &'a str,
}

#[derive(Serialize)]
struct Malformed {
    message: &'static str,
}

impl Reply {
    /// `{"status":"success"}`.
    pub fn success() -> Reply {
        Reply::ok(r#"{"status":"success"}"#.to_owned())
    }

    /// `{"status":"success","<field>":<value>}`; `value_json` is JSON text.
    pub fn success_with(field: &'static str, value_json: &str) -> Reply {
        let field = serde_json::to_string(field).expect("strings serialize");
        Reply::ok(format!(r#"{{"status":"success",{field}:{value_json}}}"#))
    }

    /// As [`Reply::success_with`], serializing `value`.
    pub fn success_value<T: Serialize>(field: &'static str, value: &T) -> Reply {
        let value = serde_json::to_string(value).expect("answers serialize");
        Reply::success_with(field, &value)
    }

    /// 400 with the original's message.
    pub fn refused(message: &str) -> Reply {
        let body = Failure {
            status: "failure",
            message,
        };
        Reply {
            status: StatusCode::BAD_REQUEST,
            body: serde_json::to_string(&body).expect("answers serialize"),
        }
    }

    /// 500 "check params".
    pub fn malformed() -> Reply {
        let body = Malformed {
            message: MALFORMED_MESSAGE,
        };
        Reply {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            body: serde_json::to_string(&body).expect("answers serialize"),
        }
    }

    /// 500 naming what failed.
    pub fn internal(reason: &str) -> Reply {
        let message = format!("Internal server Error: {reason}");
        let body = Failure {
            status: "failure",
            message: &message,
        };
        Reply {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            body: serde_json::to_string(&body).expect("answers serialize"),
        }
    }

    fn ok(body: String) -> Reply {
        Reply {
            status: StatusCode::OK,
            body,
        }
    }
}

impl From<QueueError> for Reply {
    fn from(error: QueueError) -> Reply {
        match error {
            QueueError::Refused(message) => Reply::refused(&message),
            QueueError::Malformed => Reply::malformed(),
            QueueError::Broker(_) | QueueError::Unavailable(_) => {
                tracing::warn!(%error, "queue request failed");
                Reply::internal(&error.to_string())
            }
        }
    }
}

impl<T: Into<Reply>> From<Result<T, QueueError>> for Reply {
    fn from(result: Result<T, QueueError>) -> Reply {
        match result {
            Ok(reply) => reply.into(),
            Err(error) => error.into(),
        }
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let json = [(header::CONTENT_TYPE, "application/json")];
        (self.status, json, self.body).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bodies are exactly the original's, keys in its order.
    #[test]
    fn bodies_are_the_originals() {
        assert_eq!(Reply::success().body, r#"{"status":"success"}"#);
        assert_eq!(
            Reply::success_value("producer_id", &3).body,
            r#"{"status":"success","producer_id":3}"#
        );
        let refused = Reply::refused("Topic:\"x\" does not exist");
        assert_eq!(refused.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            refused.body,
            r#"{"status":"failure","message":"Topic:\"x\" does not exist"}"#
        );
        let malformed = Reply::malformed();
        assert_eq!(malformed.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            malformed.body,
            r#"{"message":"Internal server Error: check params"}"#
        );
    }
}
