//! CORS as the original Flask brokers (Flask-CORS with its defaults) answer
//! it, shared by both compatibility listeners: every
//! answer carries `Access-Control-Allow-Origin: *`, and an `OPTIONS`
//! request to a route is a preflight answered 200 with the methods it
//! takes and whatever headers the browser asked for. The preflight body is
//! `{}` so that, like every answer, it is JSON.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// How long a browser may cache a preflight, in seconds.
const PREFLIGHT_MAX_AGE_S: u32 = 86_400;
const ALLOWED_METHODS: &str = "GET, HEAD, POST, OPTIONS";

/// Adds `Access-Control-Allow-Origin: *` to `response`.
pub async fn allow_any_origin(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    response
}

/// The answer to a preflight `OPTIONS` request.
pub async fn preflight(request: HeaderMap) -> Response {
    let asked = request
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .cloned()
        .unwrap_or(HeaderValue::from_static("*"));
    let headers = [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        ),
        (
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(ALLOWED_METHODS),
        ),
        (header::ACCESS_CONTROL_ALLOW_HEADERS, asked),
        (
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from(PREFLIGHT_MAX_AGE_S),
        ),
    ];
    (StatusCode::OK, headers, "{}").into_response()
}
