//! A broker and its city listener in one process, for measuring the city
//! API with `wrk` before the CLI's `--compat-city` flag exists: a
//! standalone broker (in memory, or on `DATA_DIR`) on an ephemeral native
//! port, the city API on `ADDRESS`, webhook delivery running. Stops on
//! Ctrl-C.
//!
//! ```sh
//! cargo run --release -p citystream-compat-city --example city_server -- 127.0.0.1:15001 &
//! wrk -t2 -c64 -d10s -s publish.lua http://127.0.0.1:15001/publish
//! ```

use std::sync::Arc;

use citystream_broker::{Broker, BrokerConfig};
use citystream_client::{Client, ClientConfig};
use citystream_http::webhooks::{WebhookConfig, Webhooks};
use citystream_server::ServerConfig;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let usage = "usage: city_server ADDRESS [DATA_DIR]";
    let address = std::env::args().nth(1).ok_or(usage)?;
    let config = BrokerConfig {
        data_dir: std::env::args().nth(2).map(Into::into),
        ..BrokerConfig::default()
    };
    let shutdown = CancellationToken::new();
    let native = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let native_address = native.local_addr()?.to_string();
    let broker = Arc::new(Broker::open(config, 0)?);
    let server = ServerConfig {
        advertised_address: native_address.clone(),
        ..ServerConfig::default()
    };
    tokio::spawn(citystream_server::serve(
        native,
        broker,
        server,
        shutdown.clone(),
    ));

    let client = Client::connect(ClientConfig::new(native_address)).await?;
    let webhooks = Webhooks::new(client.clone(), WebhookConfig::default());
    let delivery = webhooks.spawn_delivery(shutdown.clone());
    let listener = tokio::net::TcpListener::bind(&address).await?;
    println!("city API on http://{}", listener.local_addr()?);
    let served = tokio::spawn(citystream_compat_city::serve(
        listener,
        client,
        webhooks,
        shutdown.clone(),
    ));
    tokio::signal::ctrl_c().await?;
    shutdown.cancel();
    served.await??;
    delivery.await?;
    Ok(())
}
