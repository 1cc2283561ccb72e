//! A drop-in replacement for the HTTP API of a Flask "distributed queue"
//! broker (`citystream broker --compat-queue ADDR`): topics, producers and
//! consumers with integer ids, produce and consume one JSON message at a
//! time, and `/size`, with the original's bodies, messages and statuses,
//! so its existing clients work unchanged (`docs/compat-queue.md`).
//!
//! Unlike the original, no state lives in the listener: topics, ids,
//! messages and positions are records in citystream topics, written
//! through the node's own native client (as the HTTP API is, decision
//! 0011) with quorum acks, and folded by each node from those topics. So
//! every node of a cluster answers the same, also after one dies.
//!
//! Module map: `routes` (the handlers) with `params` (reading requests,
//! pure), `reply` (the answers) and `cors`; `queue/` (one node's side:
//! topics, producers, consumers over the client); the pure folds of the
//! topics: `registry` (topic order, producer and consumer ids), `claims`
//! (positions as conditional claims), `offset_runs` (message counting);
//! the client's `tail` brings each fold up to a partition's high watermark.
//! It does not own the broker, the native listener or the client's
//! connection: the caller passes a connected client.

mod claims;
pub mod cors;
mod error;
mod offset_runs;
mod params;
mod queue;
mod registry;
mod reply;
mod routes;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{MethodRouter, get, post};
use citystream_client::Client;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use queue::{
    CLAIM_PARTITIONS, CLAIMS_TOPIC, CONSUMERS_TOPIC, PRODUCERS_TOPIC, TOPICS_TOPIC, queue_topic,
};
pub use reply::MALFORMED_MESSAGE;

/// Largest request body; a larger one is answered as malformed (500).
/// Messages must also fit in one record (the broker's `record_bytes_max`,
/// 1 MiB by default).
pub const BODY_BYTES_MAX: usize = 1024 * 1024;

/// Every route, over `client` (connected to this node's native listener).
/// Nothing is read or written until the first request; the topics
/// `compat-queue.*` are created on first use.
pub fn router(client: Client) -> Router {
    let queue = Arc::new(queue::Queue::new(client));
    let route = |methods: MethodRouter<Arc<queue::Queue>>| {
        methods.options(cors::preflight).fallback(routes::malformed)
    };
    Router::new()
        .route(
            "/topics",
            route(get(routes::list_topics).post(routes::create_topic)),
        )
        .route("/producer/register", route(post(routes::register_producer)))
        .route("/producer/produce", route(post(routes::produce)))
        .route("/consumer/register", route(post(routes::register_consumer)))
        .route("/consumer/consume", route(get(routes::consume)))
        .route("/size", route(get(routes::size)))
        .fallback(routes::malformed)
        .layer(DefaultBodyLimit::max(BODY_BYTES_MAX))
        .layer(axum::middleware::map_response(cors::allow_any_origin))
        .with_state(queue)
}

/// Serves the queue API on `listener` until `shutdown` is cancelled, then
/// lets the requests in flight finish (each is bounded: reads by their
/// catch-up timeout, writes by the producer's delivery timeout).
pub async fn serve(
    listener: TcpListener,
    client: Client,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(client))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}
