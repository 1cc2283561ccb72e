//! The console router: the page at `/`, every file under `assets/` at
//! `/console/<path>` with its content type and caching headers, 404 for
//! anything else, 304 for a client that holds the current version.

mod common;

use axum::body::{Body, to_bytes};
use axum::http::{HeaderMap, Request, StatusCode, header};
use tower::ServiceExt as _;

async fn get(path: &str, if_none_match: Option<&str>) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut request = Request::get(path);
    if let Some(tag) = if_none_match {
        request = request.header(header::IF_NONE_MATCH, tag);
    }
    let response = citystream_console::router::<()>()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
    (status, headers, body.to_vec())
}

fn header_of<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

/// The content type a file's extension must be served with.
fn expected_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        other => panic!("no expected content type for {path} ({other:?})"),
    }
}

/// The page is served at `/`, `/console` and `/console/`, with its policy.
#[tokio::test]
async fn page_is_served_at_the_root() {
    let page = common::read_asset("index.html");
    for path in ["/", "/console", "/console/"] {
        let (status, headers, body) = get(path, None).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(
            header_of(&headers, "content-type"),
            "text/html; charset=utf-8"
        );
        assert_eq!(header_of(&headers, "cache-control"), "no-cache");
        let policy = header_of(&headers, "content-security-policy");
        assert!(policy.contains("script-src 'self'"), "{policy}");
        assert_eq!(body, page, "{path}");
    }
}

/// Every file under assets/ is served, byte for byte, with its type.
#[tokio::test]
async fn every_asset_file_is_served_with_its_type() {
    let files = common::asset_files();
    assert!(files.len() >= 20, "found only {} asset files", files.len());
    for path in files {
        let (status, headers, body) = get(&format!("/console/{path}"), None).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{path} is not served: add it to src/assets.rs"
        );
        assert_eq!(
            header_of(&headers, "content-type"),
            expected_type(&path),
            "{path}"
        );
        assert_eq!(header_of(&headers, "cache-control"), "no-cache", "{path}");
        assert_eq!(
            header_of(&headers, "x-content-type-options"),
            "nosniff",
            "{path}"
        );
        assert_eq!(body, common::read_asset(&path), "{path}");
    }
    assert_eq!(
        common::asset_files().len(),
        citystream_console::assets::ASSETS.len(),
        "src/assets.rs lists a file that assets/ does not have"
    );
}

/// Unknown assets, folders and attempts to leave assets/ are 404 with the API's error body.
#[tokio::test]
async fn unknown_assets_are_not_found() {
    for path in [
        "/console/nope.js",
        "/console/js",
        "/console/js/",
        "/console/../Cargo.toml",
        "/console/js/../../src/lib.rs",
        "/console/%2e%2e/Cargo.toml",
        "/console/index.html.bak",
    ] {
        let (status, headers, body) = get(path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(
            header_of(&headers, "content-type"),
            "application/json",
            "{path}"
        );
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["code"], "NOT_FOUND", "{path}");
    }
}

/// A client holding the current version gets 304 and no body; another version gets the file.
#[tokio::test]
async fn etag_revalidation_answers_not_modified() {
    let (_, headers, _) = get("/console/js/main.js", None).await;
    let etag = header_of(&headers, "etag").to_owned();
    let (status, _, body) = get("/console/js/main.js", Some(&etag)).await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    assert!(body.is_empty());
    let (status, _, body) = get("/console/js/main.js", Some("\"0000000000000000\"")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!body.is_empty());
}

/// The router merges into a stateful router (as the broker mounts it).
#[tokio::test]
async fn router_merges_into_a_stateful_router() {
    #[derive(Clone)]
    struct State;
    let app: axum::Router = axum::Router::new()
        .route("/api/x", axum::routing::get(|| async { "api" }))
        .merge(citystream_console::router::<State>())
        .with_state(State);
    let response = app
        .oneshot(
            Request::get("/console/css/console.css")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}
