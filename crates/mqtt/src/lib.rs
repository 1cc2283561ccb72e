//! MQTT 3.1.1 and 5.0 for devices (`citystream broker --mqtt ADDR`), a
//! transport over the node's own native client like the HTTP API
//! (decision 0011): a PUBLISH becomes a record of a stream topic, written
//! through the node's idempotent quorum producer, and a subscription reads
//! the stream topics its filter can match from the log, through the
//! process's shared live tails, filtering records by key. So MQTT, native,
//! HTTP and SSE clients see one stream, and an acknowledged QoS 1/2
//! message is in the replicated log (decision 0016, `docs/mqtt.md`).
//!
//! Module map: `mapping` (MQTT topic names to stream topics, pure),
//! `message` (a PUBLISH as a record and back, pure), `subscriptions` (a
//! session's filters and matching, pure), `session` (a session as a
//! replicated record, and the fold of them, pure), `store` (the sessions
//! topic), `retained` (retained messages in a compacted topic), `ingest` (the producer and topic creation), `registry` (client
//! ids connected to this node, takeover, delayed wills), `connect` (the
//! CONNECT/CONNACK exchange), `connection/` (one connection: its loop,
//! publishes, delivery, session, will), `outbound` (packet ids and the
//! in-flight window of messages sent to a client), `shared` (shared
//! subscriptions as consumer-group members), `will` (publishing wills,
//! and keeping them in session records), `orphans` (wills of sessions
//! whose node died).

pub mod mapping;
pub mod message;
pub mod session;
pub mod subscriptions;

mod connect;
mod connection;
mod ingest;
mod orphans;
mod outbound;
mod registry;
mod retained;
mod shared;
mod store;
mod will;

use std::sync::Arc;
use std::time::Duration;

use citystream_client::live::Tails;
use citystream_client::{Client, ClientError};
use citystream_mqtt_codec::Limits;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use mapping::{MappingError, TopicMap, TopicRule};
pub use retained::RETAINED_TOPIC;
pub use store::SESSIONS_TOPIC;

/// Limits and options of the MQTT listener.
#[derive(Debug, Clone)]
pub struct MqttConfig {
    /// Where messages are stored.
    pub map: TopicMap,
    /// Partitions of a stream topic created on first publish.
    pub stream_partitions: u32,
    /// Decoding limits; `max_packet_bytes` is announced as our Maximum
    /// Packet Size, and a larger packet gets DISCONNECT 0x95.
    pub limits: Limits,
    /// QoS 1 and 2 publishes a client may have unacknowledged (our Receive
    /// Maximum); one more gets DISCONNECT 0x93.
    pub receive_maximum: u16,
    /// QoS 1 and 2 messages sent to a client and not yet acknowledged, at
    /// most (also bounded by the client's Receive Maximum). Flow control:
    /// delivery waits, the position in the log holds what waits.
    pub inflight_max: u16,
    /// Subscriptions one session may hold (SUBACK 0x97 beyond).
    pub subscriptions_max: usize,
    /// Connections this node serves at once (CONNACK 0x89 beyond).
    pub connections_max: usize,
    /// The longest keep alive a client gets; a v5 client asking for more
    /// (or for none) is told this one in CONNACK (Server Keep Alive).
    pub keep_alive_max_secs: u16,
    /// Topic aliases a client may use when publishing.
    pub topic_alias_maximum: u16,
    /// Subscription filters refused with SUBACK 0x80 (matched exactly, or
    /// as MQTT filters covering the asked filter's names).
    pub deny_filters: Vec<String>,
    /// How long a new connection may take to send CONNECT.
    pub connect_timeout_ms: u64,
    /// Batches a partition's shared tail buffers for its subscribers.
    pub tail_buffer_batches: usize,
}

impl Default for MqttConfig {
    fn default() -> Self {
        MqttConfig {
            map: TopicMap::default(),
            stream_partitions: 1,
            limits: Limits::default(),
            receive_maximum: 1_024,
            inflight_max: 1_024,
            subscriptions_max: 1_000,
            connections_max: 100_000,
            keep_alive_max_secs: 60,
            topic_alias_maximum: 64,
            deny_filters: Vec::new(),
            connect_timeout_ms: 10_000,
            tail_buffer_batches: 1_024,
        }
    }
}

/// What a node's shared tails make of each batch once, for every
/// subscriber there: each record's MQTT view (`None`: no subscriber can
/// match it).
pub(crate) type Rendered = Vec<Option<message::Stored>>;

fn render(records: &[citystream_client::ConsumerRecord]) -> Rendered {
    records.iter().map(message::stored).collect()
}

/// What every connection of a node shares.
pub(crate) struct Node {
    pub client: Client,
    pub config: MqttConfig,
    pub ingest: Arc<ingest::Ingest>,
    pub tails: Arc<Tails<Rendered>>,
    pub registry: Arc<registry::Registry>,
    pub store: Arc<store::SessionStore>,
    pub retained: retained::RetainedStore,
    /// This server's name in session generations.
    pub instance: String,
    /// This node's id and run, once cluster status told them.
    pub owner: tokio::sync::OnceCell<session::OwnerNode>,
    pub connections: Arc<Semaphore>,
    pub shutdown: CancellationToken,
    /// Will publications and other work that outlives a connection.
    pub tasks: TaskTracker,
}

impl Node {
    /// This node's id and run (asked of the node once; `None` while it
    /// cannot say).
    pub async fn owner_node(&self) -> Option<session::OwnerNode> {
        let asked = self
            .owner
            .get_or_try_init(|| async {
                let status = self.client.admin().cluster_status().await?;
                let own = status
                    .nodes
                    .iter()
                    .find(|node| node.node_id == status.node_id);
                let generation = own.map(|node| node.generation).ok_or(ClientError::Closed)?;
                Ok::<_, ClientError>(session::OwnerNode {
                    node_id: status.node_id,
                    generation,
                })
            })
            .await;
        asked.ok().copied()
    }
}

/// The MQTT side of a node: serves connections from any transport.
#[derive(Clone)]
pub struct MqttServer {
    node: Arc<Node>,
}

impl MqttServer {
    /// An MQTT server over `client` (connected to this node's native
    /// listener), stopping at `shutdown`.
    pub fn new(
        client: Client,
        config: MqttConfig,
        shutdown: CancellationToken,
    ) -> Result<MqttServer, ClientError> {
        let node = Node {
            ingest: Arc::new(ingest::Ingest::new(
                &client,
                config.stream_partitions.max(1),
            )?),
            tails: Arc::new(Tails::new(config.tail_buffer_batches, render)),
            registry: Arc::new(registry::Registry::default()),
            store: Arc::new(store::SessionStore::new(&client, config.stream_partitions)),
            retained: retained::RetainedStore::new(&client, config.stream_partitions),
            instance: instance_name(),
            owner: tokio::sync::OnceCell::new(),
            connections: Arc::new(Semaphore::new(config.connections_max)),
            client,
            config,
            shutdown,
            tasks: TaskTracker::new(),
        };
        let node = Arc::new(node);
        let watch = node.store.clone().watch_takeovers(
            node.ingest.clone(),
            node.registry.clone(),
            node.shutdown.clone(),
        );
        node.tasks.spawn(watch);
        node.tasks.spawn(orphans::sweep(node.clone()));
        Ok(MqttServer { node })
    }

    /// Serves one connection (TCP, or WebSocket bytes) until it closes.
    pub async fn serve_connection<IO>(&self, io: IO, peer: String)
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send,
    {
        connection::serve(io, self.node.clone(), peer).await;
    }

    /// Accepts TCP connections until shutdown, then waits (bounded) for
    /// the will publications still under way.
    pub async fn serve(self, listener: TcpListener) -> std::io::Result<()> {
        let shutdown = self.node.shutdown.clone();
        let connections = TaskTracker::new();
        loop {
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => accepted?,
                _ = shutdown.cancelled() => break,
            };
            let _ = stream.set_nodelay(true);
            let server = self.clone();
            connections.spawn(async move {
                server.serve_connection(stream, peer.to_string()).await;
            });
        }
        connections.close();
        self.node.tasks.close();
        let drained = async {
            connections.wait().await;
            self.node.tasks.wait().await;
        };
        let _ = tokio::time::timeout(Duration::from_secs(5), drained).await;
        Ok(())
    }
}

/// A name for this server in session generations: unique across restarts
/// and nodes (start time in ms and process id).
fn instance_name() -> String {
    let started_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis());
    format!("{started_ms:x}-{}", std::process::id())
}
