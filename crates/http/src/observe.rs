//! Prometheus metrics at `GET /metrics` (the process's recorder, installed
//! by the binary: see [`install_recorder`]), and the middleware that times
//! every HTTP request by route and status.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};

use crate::error::HttpError;
use crate::state::HttpState;

/// Histogram buckets of every `_seconds` metric: 100 µs to 10 s.
const LATENCY_BUCKETS_S: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.5, 10.0,
];

/// Installs the process-wide Prometheus recorder (once per process) and
/// returns the handle that renders it.
pub fn install_recorder() -> Result<PrometheusHandle, BuildError> {
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), &LATENCY_BUCKETS_S)?
        .install_recorder()
}

/// The metrics in Prometheus' text format.
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, content_type = "text/plain", description = "Prometheus text format")))]
pub async fn metrics(State(state): State<HttpState>) -> Response {
    match state.metrics() {
        Some(handle) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            handle.render(),
        )
            .into_response(),
        None => HttpError::not_found("NOT_FOUND", "metrics are not recorded in this process")
            .into_response(),
    }
}

/// Times each request: `citystream_http_request_seconds{route,method,status}`.
pub async fn time_requests(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let method = request.method().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::histogram!(
        "citystream_http_request_seconds",
        "route" => route,
        "method" => method,
        "status" => status
    )
    .record(started.elapsed().as_secs_f64());
    response
}

/// Open Server-Sent-Events streams (a guard: +1 now, -1 when dropped).
pub struct StreamGauge;

impl StreamGauge {
    pub fn open() -> StreamGauge {
        metrics::gauge!("citystream_sse_clients").increment(1.0);
        StreamGauge
    }
}

impl Drop for StreamGauge {
    fn drop(&mut self) {
        metrics::gauge!("citystream_sse_clients").decrement(1.0);
    }
}
