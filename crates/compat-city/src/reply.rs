//! [`Reply`]: every answer of the listener but the event stream. JSON
//! answers are `application/json`, compact and pure ASCII (as Flask's
//! `jsonify` escapes): success is 200 with the original's body, a refusal
//! `{"error": ...}` with its status. `/health` is `text/plain` `OK`, and a
//! publish is 200 with an empty body.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error::CityError;
use crate::json::to_ascii;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: StatusCode,
    content_type: Option<&'static str>,
    pub body: String,
}

#[derive(Serialize)]
struct Message<'a> {
    message: &'a str,
}

#[derive(Serialize)]
struct Failure<'a> {
    error: &'a str,
}

impl Reply {
    /// 200 with `body` (ASCII JSON text).
    pub fn json(body: String) -> Reply {
        Reply {
            status: StatusCode::OK,
            content_type: Some("application/json"),
            body,
        }
    }

    /// 200 with `value` serialized.
    pub fn value<T: Serialize>(value: &T) -> Reply {
        Reply::json(to_ascii(value))
    }

    /// 200 `{"message": message}`.
    pub fn message(message: &str) -> Reply {
        Reply::value(&Message { message })
    }

    /// `status` with `{"error": message}`.
    pub fn error(status: StatusCode, message: &str) -> Reply {
        Reply {
            status,
            ..Reply::value(&Failure { error: message })
        }
    }

    /// 200, no body.
    pub fn empty() -> Reply {
        Reply {
            status: StatusCode::OK,
            content_type: None,
            body: String::new(),
        }
    }

    /// 200 `text/plain` `text`.
    pub fn text(text: &str) -> Reply {
        Reply {
            status: StatusCode::OK,
            content_type: Some("text/plain"),
            body: text.to_owned(),
        }
    }
}

impl From<CityError> for Reply {
    fn from(error: CityError) -> Reply {
        let status = error.status();
        if status.is_server_error() {
            tracing::warn!(%error, "city request failed");
        }
        Reply::error(status, &error.to_string())
    }
}

impl<T: Into<Reply>> From<Result<T, CityError>> for Reply {
    fn from(result: Result<T, CityError>) -> Reply {
        match result {
            Ok(reply) => reply.into(),
            Err(error) => error.into(),
        }
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut response = (self.status, self.body).into_response();
        let headers = response.headers_mut();
        match self.content_type {
            Some(content_type) => {
                headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            }
            None => {
                headers.remove(header::CONTENT_TYPE);
            }
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bodies are compact and ASCII, keys in the original's order.
    #[test]
    fn bodies_are_compact_ascii() {
        let subscribed = Reply::message("Subscribed to topic 'Zürich' via SSE");
        assert_eq!(
            subscribed.body,
            r#"{"message":"Subscribed to topic 'Z\u00fcrich' via SSE"}"#
        );
        let refused = Reply::error(StatusCode::BAD_REQUEST, "No topic specified");
        assert_eq!(refused.status, StatusCode::BAD_REQUEST);
        assert_eq!(refused.body, r#"{"error":"No topic specified"}"#);
        assert_eq!(
            Reply::from(CityError::refused("Missing topic")).body,
            r#"{"error":"Missing topic"}"#
        );
    }
}
