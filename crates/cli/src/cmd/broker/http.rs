//! `--http` and `--compat-queue`: the broker's HTTP listeners (the API of
//! `citystream-http`, the queue-compatibility API of
//! `citystream-compat-queue`). Each is bound before the ready line, so a
//! taken port fails the start, and serves once the node's own native client
//! is connected (both are transports over that client, decision 0011).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use citystream_client::{Client, ClientConfig};
use citystream_http::{HttpConfig, HttpState};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// How long the HTTP listener waits for its node's native listener.
const CONNECT_PATIENCE: Duration = Duration::from_secs(30);
const CONNECT_RETRY: Duration = Duration::from_millis(100);

/// The validated HTTP flags.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub listen: String,
    pub config: HttpConfig,
}

/// Binds a listener of `what` at `listen`; returns it and its address.
pub async fn bind(listen: &str, what: &str) -> anyhow::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen for {what} on {listen}"))?;
    let bound = listener
        .local_addr()
        .with_context(|| format!("the listener for {what} has no address"))?;
    Ok((listener, bound))
}

/// Serves the queue-compatibility API until `shutdown` (as [`spawn`]).
pub fn spawn_compat_queue(
    listener: TcpListener,
    native: SocketAddr,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    spawn_over_client(
        "the queue-compatibility API",
        native,
        shutdown,
        |client, stop| citystream_compat_queue::serve(listener, client, stop),
    )
}

/// Serves the API until `shutdown`, through a client of the native
/// listener at `native` (an unspecified IP is dialled on loopback).
pub fn spawn(
    listener: TcpListener,
    native: SocketAddr,
    config: HttpConfig,
    metrics: PrometheusHandle,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    spawn_over_client("the HTTP API", native, shutdown, |client, stop| {
        let state = HttpState::new(client, config).with_metrics(metrics);
        citystream_http::serve(listener, state, stop)
    })
}

/// Connects a client to the native listener at `native`, then runs
/// `serve` with it until it returns; failures are logged as `what`'s.
fn spawn_over_client<F, Fut>(
    what: &'static str,
    native: SocketAddr,
    shutdown: CancellationToken,
    serve: F,
) -> tokio::task::JoinHandle<()>
where
    F: FnOnce(Client, CancellationToken) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = std::io::Result<()>> + Send,
{
    tokio::spawn(async move {
        let client = match connect(native, &shutdown).await {
            Ok(client) => client,
            Err(error) => {
                tracing::error!(%error, "{what} has no native client; not serving");
                return;
            }
        };
        if let Err(error) = serve(client, shutdown).await {
            tracing::error!(%error, "the listener of {what} failed");
        }
    })
}

async fn connect(native: SocketAddr, shutdown: &CancellationToken) -> anyhow::Result<Client> {
    let mut address = native;
    if address.ip().is_unspecified() {
        address.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let mut config = ClientConfig::new(address.to_string());
    config.client_id = "citystream-http".to_owned();
    let deadline = tokio::time::Instant::now() + CONNECT_PATIENCE;
    loop {
        match Client::connect(config.clone()).await {
            Ok(client) => return Ok(client),
            Err(error) if tokio::time::Instant::now() >= deadline || shutdown.is_cancelled() => {
                return Err(error).context(format!("cannot reach the native listener {address}"));
            }
            Err(_) => tokio::time::sleep(CONNECT_RETRY).await,
        }
    }
}
