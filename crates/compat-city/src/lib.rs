//! A drop-in replacement for the HTTP API of a small Flask "smart city"
//! pub/sub broker (`citystream broker --compat-city ADDR`): publish JSON
//! objects to topics, stream them as Server-Sent Events, read a topic's
//! last 1,000, subscribe by SSE or webhook, with the original's bodies,
//! messages and statuses, so its existing clients work unchanged
//! (`docs/compat-city.md`).
//!
//! Unlike the original, no state lives in the listener: messages are
//! records of citystream topics (one per city topic), SSE subscriptions
//! are records of `compat-city.subscriptions`, and webhook subscriptions
//! are citystream webhooks — all written through the node's own native
//! client with quorum acks. So every node of a cluster answers the same,
//! also after one dies, and webhook subscribers really get each message.
//!
//! Module map: `routes` (the handlers) with `request` (reading bodies,
//! pure), `reply` (the answers), `json` (compact ASCII JSON, pure), and
//! the queue listener's `cors` (both emulate Flask-CORS); `names` (which native topic holds a city topic, pure);
//! `city/` (one node's side: publish and logs, subscriptions);
//! `registry` (the pure fold of the SSE subscriptions); `stream/` (the
//! event streams and their shared per-topic tails). It does not own the
//! broker, the native listener, the client's connection or webhook
//! delivery (`Webhooks::spawn_delivery`, run once per node by the caller).

mod city;
mod error;
mod json;
mod names;
mod registry;
mod reply;
mod request;
mod routes;
mod stream;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{MethodRouter, get, post};
use axum::serve::ListenerExt as _;
use citystream_client::Client;
use citystream_compat_queue::cors;
use citystream_http::webhooks::Webhooks;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use city::LOGS_MAX;
pub use names::{MAPPED_NAME_BYTES_MAX, MAPPED_PREFIX, native_topic};
pub use registry::SUBSCRIPTIONS_TOPIC;

/// Largest request body; a larger one is refused (413). A message must
/// also fit in one record (the broker's `record_bytes_max`, 1 MiB by
/// default).
pub const BODY_BYTES_MAX: usize = 1024 * 1024;

/// Every route, over `client` (connected to this node's native listener)
/// and the node's `webhooks`. Event streams end when `stop` is cancelled.
/// Nothing is read or written until the first request; topics are created
/// on first use.
pub fn router(client: Client, webhooks: Webhooks, stop: CancellationToken) -> Router {
    let city = Arc::new(city::City::new(client, webhooks, stop));
    let route = |methods: MethodRouter<Arc<city::City>>| {
        methods
            .options(cors::preflight)
            .fallback(routes::method_not_allowed)
    };
    Router::new()
        .route("/publish", route(post(routes::publish)))
        .route("/stream/{*topic}", route(get(routes::stream)))
        .route("/logs/{*topic}", route(get(routes::logs)))
        .route("/subscribe", route(post(routes::subscribe)))
        .route("/unsubscribe", route(post(routes::unsubscribe)))
        .route("/get_leader", route(get(routes::get_leader)))
        .route("/health", route(get(routes::health)))
        .route("/ping", route(get(routes::ping)))
        .fallback(routes::not_found)
        .layer(DefaultBodyLimit::max(BODY_BYTES_MAX))
        .layer(axum::middleware::map_response(cors::allow_any_origin))
        .with_state(city)
}

/// Serves the city API on `listener` until `shutdown` is cancelled: event
/// streams end then, and the requests in flight finish (each is bounded:
/// a publish by the producer's delivery timeout, a read by its catch-up
/// timeout). Nagle is off, so a short event is not held back.
pub async fn serve(
    listener: TcpListener,
    client: Client,
    webhooks: Webhooks,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let listener = listener.tap_io(|connection| {
        if let Err(error) = connection.set_nodelay(true) {
            tracing::debug!(%error, "could not turn Nagle off");
        }
    });
    axum::serve(listener, router(client, webhooks, shutdown.clone()))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}
