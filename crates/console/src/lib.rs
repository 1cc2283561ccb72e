//! The web console: a single-page app of plain HTML, CSS and JavaScript
//! modules (no build step, no framework, nothing fetched from another
//! host), embedded in the binary and served next to the HTTP API on every
//! broker's HTTP port.
//!
//! [`router`] serves `/` (the page) and `/console/{path}` (its assets),
//! each with its content type, `Cache-Control: no-cache` and an `ETag`
//! (so a reload revalidates instead of downloading again); an unknown
//! asset is 404 with the API's error body. The page talks to the HTTP API
//! of `citystream-http` by relative URLs; this crate owns no API route,
//! no state and no task. The pages and their `data-testid`s are listed in
//! `crates/console/README.md`; the asset table is in [`assets`].

pub mod assets;

use axum::Router;
use axum::extract::Path;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

pub use assets::{Asset, find};

/// The page's Content-Security-Policy. Scripts and styles come only from
/// this origin (no inline script, no inline handler, no `eval`); requests
/// may go to any HTTP(S) origin because the page moves to another node's
/// HTTP address when the one that served it stops answering.
const PAGE_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self' http: https:; frame-ancestors 'none'; \
     base-uri 'none'; form-action 'self'";

/// The console's routes: `/`, `/console`, `/console/` (the page) and
/// `/console/{path}` (assets). Merge it into any router: it needs no state.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(page))
        .route("/console", get(page))
        .route("/console/", get(page))
        .route("/console/{*path}", get(asset))
}

async fn page(request_headers: HeaderMap) -> Response {
    let page = find("index.html").expect("index.html is embedded");
    let mut response = serve(page, &request_headers);
    response.headers_mut().insert(
        HeaderName::from_static("content-security-policy"),
        HeaderValue::from_static(PAGE_POLICY),
    );
    response
}

async fn asset(Path(path): Path<String>, request_headers: HeaderMap) -> Response {
    match find(&path) {
        Some(asset) => serve(asset, &request_headers),
        None => not_found(&path),
    }
}

/// The asset with its headers, or 304 when the client holds this version.
fn serve(asset: &'static Asset, request_headers: &HeaderMap) -> Response {
    let etag = asset.etag();
    let fresh = request_headers
        .get(IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|tag| tag.trim() == etag));
    let headers = [
        (CONTENT_TYPE, HeaderValue::from_static(asset.content_type())),
        (CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (
            ETAG,
            HeaderValue::from_str(etag).expect("a hex etag is a header value"),
        ),
        (
            HeaderName::from_static("x-content-type-options"),
            HeaderValue::from_static("nosniff"),
        ),
    ];
    match fresh {
        true => (StatusCode::NOT_MODIFIED, headers).into_response(),
        false => (headers, asset.bytes).into_response(),
    }
}

/// 404 with the API's error body, so the page and scripts see one shape.
fn not_found(path: &str) -> Response {
    let body = serde_json::json!({
        "error": {"code": "NOT_FOUND", "message": format!("no console asset {path:?}")}
    });
    let headers = [
        (CONTENT_TYPE, HeaderValue::from_static("application/json")),
        (CACHE_CONTROL, HeaderValue::from_static("no-cache")),
    ];
    (StatusCode::NOT_FOUND, headers, body.to_string()).into_response()
}
