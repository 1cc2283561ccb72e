//! `--http`, `--compat-queue`, `--compat-city` and `--mqtt`: the broker's
//! listeners over its own native client (the API of `citystream-http`, the
//! queue- and city-compatibility APIs, MQTT), and the webhook deliverer
//! every node runs.
//! Each listener is bound before the ready line, so a taken port fails the
//! start, and serves once the node's own native client is connected (they
//! are transports over that client, decision 0011). That client calls the
//! node's server in this process directly, with no socket (decision 0021),
//! and other nodes over TCP.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use citystream_client::{Client, ClientConfig};
use citystream_http::webhooks::{WebhookConfig, Webhooks};
use citystream_http::{HttpConfig, HttpState};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// How long the listeners wait for their node to serve.
const CONNECT_PATIENCE: Duration = Duration::from_secs(30);

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

/// The listeners a node serves over its own native client, bound.
pub struct Services {
    /// `--http`: the API, its limits and the metrics it renders.
    pub http: Option<(TcpListener, HttpConfig, PrometheusHandle)>,
    /// `--compat-queue`.
    pub compat_queue: Option<TcpListener>,
    /// `--compat-city`.
    pub compat_city: Option<TcpListener>,
    /// `--mqtt`: MQTT over TCP, and its settings.
    pub mqtt: Option<(TcpListener, citystream_mqtt::MqttConfig)>,
}

/// Connects one client to this node (`local`, named by its native listener
/// `native`; an unspecified IP is named on loopback), then, until `shutdown`: runs this node's
/// webhook deliverer (on every node, whether or not it serves HTTP: the
/// node that leads the registry delivers) and serves each listener of
/// `services`. Failures are logged.
pub fn spawn(
    native: SocketAddr,
    services: Services,
    local: citystream_server::Local,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let client = match connect(native, local, &shutdown).await {
            Ok(client) => client,
            Err(error) => {
                tracing::error!(%error, "no native client for the node's HTTP services; not serving them");
                return;
            }
        };
        let webhooks = Webhooks::new(client.clone(), WebhookConfig::default());
        let delivery = webhooks.spawn_delivery(shutdown.clone());
        let mut listeners = tokio::task::JoinSet::new();
        let mqtt = match services.mqtt {
            Some((listener, config)) => {
                match citystream_mqtt::MqttServer::new(client.clone(), config, shutdown.clone()) {
                    Ok(server) => Some((listener, server)),
                    Err(error) => {
                        tracing::error!(%error, "cannot start the MQTT server; not serving MQTT");
                        None
                    }
                }
            }
            None => None,
        };
        if let Some((listener, config, metrics)) = services.http {
            let mut state = HttpState::new(client.clone(), config)
                .with_metrics(metrics)
                .with_webhooks(webhooks.clone());
            if let Some((_, server)) = &mqtt {
                state = state.with_mqtt_websocket(websocket_service(server.clone()));
            }
            let stop = shutdown.clone();
            listeners.spawn(async move {
                (
                    "the HTTP API",
                    citystream_http::serve(listener, state, stop).await,
                )
            });
        }
        if let Some(listener) = services.compat_queue {
            let (client, stop) = (client.clone(), shutdown.clone());
            listeners.spawn(async move {
                (
                    "the queue-compatibility API",
                    citystream_compat_queue::serve(listener, client, stop).await,
                )
            });
        }
        if let Some(listener) = services.compat_city {
            let (client, webhooks, stop) = (client.clone(), webhooks.clone(), shutdown.clone());
            listeners.spawn(async move {
                (
                    "the city-compatibility API",
                    citystream_compat_city::serve(listener, client, webhooks, stop).await,
                )
            });
        }
        if let Some((listener, server)) = mqtt {
            listeners.spawn(async move { ("MQTT", server.serve(listener).await) });
        }
        while let Some(done) = listeners.join_next().await {
            if let Ok((what, Err(error))) = done {
                tracing::error!(%error, "the listener of {what} failed");
            }
        }
        let _ = delivery.await;
    })
}

/// The MQTT server's connection handler, for `/mqtt` over WebSocket.
fn websocket_service(
    server: citystream_mqtt::MqttServer,
) -> citystream_http::websocket::ByteService {
    std::sync::Arc::new(move |io, peer| {
        let server = server.clone();
        Box::pin(async move { server.serve_connection(io, peer).await })
    })
}

async fn connect(
    native: SocketAddr,
    local: citystream_server::Local,
    shutdown: &CancellationToken,
) -> anyhow::Result<Client> {
    let mut address = native;
    if address.ip().is_unspecified() {
        address.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    tokio::select! {
        () = local.ready() => {}
        () = shutdown.cancelled() => anyhow::bail!("stopped before the node served"),
        () = tokio::time::sleep(CONNECT_PATIENCE) => anyhow::bail!("the node did not serve within {CONNECT_PATIENCE:?}"),
    };
    let mut config = ClientConfig::new(address.to_string());
    config.client_id = "citystream-http".to_owned();
    config.local = Some(std::sync::Arc::new(local));
    Client::connect(config)
        .await
        .with_context(|| format!("cannot reach this node ({address})"))
}
