//! The HTTP/JSON API of a broker node (`citystream broker --http ADDR`),
//! built with axum. It is a transport over the node's own native client
//! ([`citystream_client::Client`] connected to this node): every node
//! serves every request, and the client routes each to the partition
//! leader or the group coordinator, follows leader changes and retries,
//! so produce over HTTP takes the idempotent, order-keeping path of every
//! other producer (decision 0011).
//!
//! Module map: `state` (client, producers, limits), `error` (one error
//! type, statuses, the JSON error body), `body` (produce bodies into
//! records, pure), `views` (JSON shapes of records, topics, groups, the
//! cluster; shared with the CLI), and one module per resource: `topics`,
//! `records`, `groups`, `health`, `sse/` (Server-Sent Events: shared
//! per-partition tails, filters, one task per stream) and `webhooks/`
//! (registrations in a replicated topic, delivery by one node), `websocket`
//! (MQTT over WebSocket at `/mqtt`, bridged to the node's MQTT server). The OpenAPI document is generated from
//! the handlers' annotations and served at `/api/openapi.json`.

mod body;
mod city;
mod demo;
mod error;
mod groups;
mod health;
mod observe;
mod records;
mod sse;
mod state;
mod topics;
pub mod views;
pub mod webhooks;
pub mod websocket;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, Method};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::cors::{AllowOrigin, Any, CorsLayer};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use error::{ErrorBody, HttpError};
pub use observe::install_recorder;
pub use state::{HttpConfig, HttpState};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "citystream HTTP API",
        description = "Topics, records, consumer groups and the cluster of a citystream broker. Errors are {\"error\":{\"code\",\"message\"}}."
    ),
    tags(
        (name = "topics"), (name = "records"), (name = "groups"),
        (name = "webhooks"), (name = "cluster"), (name = "health"),
        (name = "city")
    )
)]
struct ApiDoc;

/// The router and its OpenAPI document.
fn routes() -> (Router<HttpState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(health::cluster))
        .routes(routes!(observe::metrics))
        .routes(routes!(topics::list, topics::create))
        .routes(routes!(topics::describe, topics::delete))
        .routes(routes!(records::produce, records::read))
        .routes(routes!(sse::stream))
        .routes(routes!(groups::list))
        .routes(routes!(groups::describe))
        .routes(routes!(groups::read))
        .routes(routes!(groups::commit))
        .routes(routes!(city::latest))
        .routes(routes!(city::station_latest))
        .routes(routes!(city::export_csv))
        .routes(routes!(webhooks::api::list, webhooks::api::create))
        .routes(routes!(webhooks::api::describe, webhooks::api::delete))
        .routes(routes!(demo::nodes))
        .routes(routes!(demo::act))
        .split_for_parts()
}

/// The OpenAPI document of every route.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().1
}

/// Every route, with the body limit and CORS of `state`'s config.
pub fn router(state: HttpState) -> Router {
    let (router, api) = routes();
    let api = Arc::new(api);
    let config = state.config().clone();
    let mut router = router
        .route(
            "/api/openapi.json",
            get(move || {
                let api = api.clone();
                async move { axum::Json(api.as_ref().clone()) }
            }),
        )
        .layer(DefaultBodyLimit::max(config.body_bytes_max))
        .route_layer(axum::middleware::from_fn(observe::time_requests))
        .route("/mqtt", get(websocket::mqtt))
        // The web console: `/` and `/console/*`, static assets in the binary.
        .merge(citystream_console::router());
    if let Some(origin) = &config.cors_origin {
        router = router.layer(cors(origin));
    }
    router.with_state(state)
}

fn cors(origin: &str) -> CorsLayer {
    let allow = match origin {
        "*" => AllowOrigin::any(),
        one => AllowOrigin::exact(HeaderValue::from_str(one).expect("checked at start")),
    };
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        .allow_headers(Any)
}

/// Checks a `--http-cors-origin` value: `*` or one origin like `https://a.b:8080`.
pub fn check_cors_origin(origin: &str) -> Result<(), String> {
    if origin == "*" {
        return Ok(());
    }
    let valid = (origin.starts_with("http://") || origin.starts_with("https://"))
        && !origin.ends_with('/')
        && HeaderValue::from_str(origin).is_ok();
    match valid {
        true => Ok(()),
        false => Err(format!(
            "{origin:?} is not an origin: give * or scheme://host[:port] (no path)"
        )),
    }
}

/// Serves the API on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    state: HttpState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    // Streams never end by themselves: stop them, so the graceful
    // shutdown does not wait on their connections.
    let stop = state.stop_token();
    let stopping = shutdown.clone();
    tokio::spawn(async move {
        stopping.cancelled().await;
        stop.cancel();
    });
    if state.metrics().is_some() {
        let period = std::time::Duration::from_millis(state.config().group_lag_sample_ms.max(1));
        tokio::spawn(observe::sample_group_lag(
            state.client().clone(),
            period,
            state.stop_token(),
        ));
    }
    let listener = observe::CountedListener::new(listener, "http");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}
