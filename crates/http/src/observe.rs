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

/// A TCP listener whose connections are counted in
/// `citystream_connections{listener=NAME}` (and get `TCP_NODELAY`: answers
/// are small and latency-bound).
pub struct CountedListener {
    inner: tokio::net::TcpListener,
    name: &'static str,
}

impl CountedListener {
    pub fn new(inner: tokio::net::TcpListener, name: &'static str) -> CountedListener {
        CountedListener { inner, name }
    }
}

impl axum::serve::Listener for CountedListener {
    type Io = CountedStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (stream, address) = axum::serve::Listener::accept(&mut self.inner).await;
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%address, %error, "could not disable Nagle's algorithm");
        }
        metrics::gauge!("citystream_connections", "listener" => self.name).increment(1.0);
        let stream = CountedStream {
            inner: stream,
            name: self.name,
        };
        (stream, address)
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A connection of a [`CountedListener`]; uncounted when dropped.
pub struct CountedStream {
    inner: tokio::net::TcpStream,
    name: &'static str,
}

impl Drop for CountedStream {
    fn drop(&mut self) {
        metrics::gauge!("citystream_connections", "listener" => self.name).decrement(1.0);
    }
}

impl tokio::io::AsyncRead for CountedStream {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for CountedStream {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Groups sampled at most per round.
const GROUP_LAG_GROUPS_MAX: usize = 1_000;

/// Every `period` (`HttpConfig::group_lag_sample_ms`) until `stop`: each
/// group's lag per partition as
/// `citystream_group_lag_offsets{group,topic,partition}` (the high
/// watermark minus the committed offset, as `GET /api/groups/{group}`
/// shows it). Every node with `/metrics` reports the same cluster-wide
/// values; aggregate with `max`.
pub async fn sample_group_lag(
    client: citystream_client::Client,
    period: std::time::Duration,
    stop: tokio_util::sync::CancellationToken,
) {
    let mut ticks = tokio::time::interval(period);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let admin = client.admin();
        let groups = match admin.list_groups().await {
            Ok(groups) => groups,
            Err(error) => {
                tracing::debug!(%error, "group lag: cannot list groups");
                continue;
            }
        };
        for summary in groups.iter().take(GROUP_LAG_GROUPS_MAX) {
            let Ok(group) = admin.describe_group(&summary.group).await else {
                continue;
            };
            for offset in &group.offsets {
                let lag = offset.high_watermark.saturating_sub(offset.committed);
                metrics::gauge!(
                    "citystream_group_lag_offsets",
                    "group" => summary.group.clone(),
                    "topic" => offset.topic.clone(),
                    "partition" => offset.partition.to_string()
                )
                .set(lag as f64);
            }
        }
    }
}
