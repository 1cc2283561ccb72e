//! [`Client`]: the handle to a cluster. It owns the connection pool (one
//! multiplexed [`Connection`] per broker address, reopened lazily after a
//! loss) and the metadata cache, and routes requests: to any broker (the
//! last one that answered, falling back through the bootstrap list and the
//! known brokers) or to a partition's leader.
//!
//! Retry policy is not here: the producer and consumer decide what to do
//! with an error; this module only offers `refresh_metadata` and
//! `apply_leader_hint` for them to call.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use citystream_protocol::{Cleanup, MetadataRequest, MetadataResponse, NodeRef, Request, Response};
use parking_lot::{Mutex, RwLock};

use crate::connection::Connection;
use crate::local::LocalBroker;
use crate::metadata::MetadataCache;
use crate::{
    Admin, ClientError, Consumer, ConsumerConfig, Producer, ProducerConfig, admin, consumer,
    producer,
};

#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Addresses to bootstrap from (`host:port`); any broker will do.
    pub bootstrap: Vec<String>,
    pub client_id: String,
    pub connect_timeout_ms: u64,
    pub request_timeout_ms: u64,
    /// The broker in this process, called without a socket (decision
    /// 0021). The bootstrap addresses name it, and so does any address
    /// metadata gives its node id; every other broker is dialled.
    pub local: Option<Arc<dyn LocalBroker>>,
}

impl ClientConfig {
    pub fn new(bootstrap: impl Into<String>) -> ClientConfig {
        ClientConfig {
            bootstrap: vec![bootstrap.into()],
            client_id: "citystream-client".to_string(),
            connect_timeout_ms: 5_000,
            request_timeout_ms: 30_000,
            local: None,
        }
    }
}

/// One address's connection, opened on first use and after a loss. The
/// async mutex makes concurrent first users share one connect.
type ConnectionSlot = Arc<tokio::sync::Mutex<Option<Arc<Connection>>>>;

struct ClientInner {
    config: ClientConfig,
    pool: Mutex<HashMap<String, ConnectionSlot>>,
    metadata: RwLock<MetadataCache>,
    /// The address "any broker" requests go to first: the last that worked.
    preferred_address: Mutex<String>,
}

/// A handle to the cluster; cheap to clone.
#[derive(Clone)]
pub struct Client {
    inner: Arc<ClientInner>,
}

impl Client {
    /// Connects to a bootstrap broker and performs the version handshake.
    pub async fn connect(config: ClientConfig) -> Result<Client, ClientError> {
        let first = config.bootstrap.first().cloned().ok_or_else(|| {
            ClientError::InvalidArgument("no bootstrap address given".to_string())
        })?;
        let client = Client {
            inner: Arc::new(ClientInner {
                config,
                pool: Mutex::new(HashMap::new()),
                metadata: RwLock::new(MetadataCache::default()),
                preferred_address: Mutex::new(first),
            }),
        };
        client.any_connection().await?;
        Ok(client)
    }

    /// Sends one request to the bootstrap/any broker and returns its response.
    /// A `Produce` with `Acks::None` gets no answer from the broker: it
    /// resolves once written, with an empty `ProduceResponse`.
    pub async fn request(&self, request: Request) -> Result<Response, ClientError> {
        let connection = self.any_connection().await?;
        let timeout = self.timeout_for(&request);
        connection.call(request, timeout).await
    }

    pub async fn metadata(
        &self,
        topics: Option<Vec<String>>,
    ) -> Result<MetadataResponse, ClientError> {
        let request = Request::Metadata(MetadataRequest { topics });
        let response = match self.request(request.clone()).await {
            Err(error) if error.is_transport() => self.request_elsewhere(request, error).await?,
            other => other?,
        };
        match response {
            Response::Metadata(response) => {
                self.inner.metadata.write().apply(&response);
                Ok(response)
            }
            other => Err(ClientError::unexpected_response("Metadata", &other)),
        }
    }

    pub fn admin(&self) -> Admin {
        admin::new(self.clone())
    }

    /// Starts a producer; refuses a config [`ProducerConfig::validate`] refuses.
    pub fn producer(&self, config: ProducerConfig) -> Result<Producer, ClientError> {
        producer::start(self.clone(), config)
    }

    pub async fn consumer(&self, config: ConsumerConfig) -> Result<Consumer, ClientError> {
        consumer::start(self.clone(), config).await
    }

    /// Limits the broker at the "any broker" address announced in Hello:
    /// `(frame_bytes_max, record_bytes_max)`.
    pub async fn broker_limits(&self) -> Result<(u32, u32), ClientError> {
        let hello = self.any_connection().await?.hello().clone();
        Ok((hello.frame_bytes_max, hello.record_bytes_max))
    }

    // ---- crate-internal routing -------------------------------------------

    pub(crate) fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// Sends `request` to the broker at `address`.
    pub(crate) async fn request_to(
        &self,
        address: &str,
        request: Request,
    ) -> Result<Response, ClientError> {
        let timeout = self.timeout_for(&request);
        self.request_to_within(address, request, timeout).await
    }

    /// As [`Client::request_to`], with the caller's timeout.
    pub(crate) async fn request_to_within(
        &self,
        address: &str,
        request: Request,
        timeout: Duration,
    ) -> Result<Response, ClientError> {
        let connection = self.connection(address).await?;
        connection.call(request, timeout).await
    }

    /// The "any broker" address and the id of the node answering there.
    pub(crate) async fn any_broker(&self) -> Result<(String, u32), ClientError> {
        let connection = self.any_connection().await?;
        Ok((connection.address().to_string(), connection.hello().node_id))
    }

    /// The cached leader address of a partition.
    pub(crate) fn leader_address(&self, topic: &str, partition: u32) -> Option<String> {
        let cache = self.inner.metadata.read();
        cache.leader_address(topic, partition).map(str::to_string)
    }

    /// The address "any broker" requests currently go to.
    pub(crate) fn preferred_address(&self) -> String {
        self.inner.preferred_address.lock().clone()
    }

    /// The cached partition count of `topic`, if known.
    pub(crate) fn cached_partition_count(&self, topic: &str) -> Option<u32> {
        self.inner.metadata.read().partition_count(topic)
    }

    /// The partition count of `topic`, asking the cluster if it is not
    /// cached; `None` when the topic does not exist.
    pub async fn partition_count(&self, topic: &str) -> Result<Option<u32>, ClientError> {
        if let Some(count) = self.cached_partition_count(topic) {
            return Ok(Some(count));
        }
        self.refresh_metadata(&[topic]).await?;
        Ok(self.cached_partition_count(topic))
    }

    /// The cleanup policy of `topic` (whether it takes tombstones), asking
    /// the cluster if it is not cached; `None` when the topic does not exist.
    pub async fn topic_cleanup(&self, topic: &str) -> Result<Option<Cleanup>, ClientError> {
        if let Some(cleanup) = self.inner.metadata.read().cleanup(topic) {
            return Ok(Some(cleanup));
        }
        self.refresh_metadata(&[topic]).await?;
        Ok(self.inner.metadata.read().cleanup(topic))
    }

    /// Re-reads the metadata of `topics` into the cache.
    pub(crate) async fn refresh_metadata(&self, topics: &[&str]) -> Result<(), ClientError> {
        let topics = topics.iter().map(|topic| topic.to_string()).collect();
        self.metadata(Some(topics)).await.map(|_| ())
    }

    pub(crate) fn apply_leader_hint(&self, topic: &str, partition: u32, leader: &NodeRef) {
        self.inner
            .metadata
            .write()
            .apply_leader_hint(topic, partition, leader);
    }

    /// After the "any broker" failed `request` with a transport `error` (a
    /// dead broker refuses at once, a frozen or cut-off one only times out,
    /// keeping its connection open): the same request to each other known
    /// broker in turn; the first that answers becomes the preferred one.
    /// Only for requests that are safe to send twice (reads).
    async fn request_elsewhere(
        &self,
        request: Request,
        mut last_error: ClientError,
    ) -> Result<Response, ClientError> {
        let failed = self.preferred_address();
        let timeout = self.timeout_for(&request);
        for address in self.fallback_addresses(&failed) {
            match self
                .request_to_within(&address, request.clone(), timeout)
                .await
            {
                Ok(response) => {
                    *self.inner.preferred_address.lock() = address;
                    return Ok(response);
                }
                Err(error) if error.is_transport() => last_error = error,
                Err(error) => return Err(error),
            }
        }
        Err(last_error)
    }

    /// A request's timeout: the configured one, plus the time the broker may
    /// legitimately hold it (fetch long-poll, group join).
    fn timeout_for(&self, request: &Request) -> Duration {
        let held_ms = match request {
            Request::Fetch(fetch) => u64::from(fetch.max_wait_ms),
            Request::JoinGroup(join) => u64::from(join.rebalance_timeout_ms),
            _ => 0,
        };
        Duration::from_millis(self.inner.config.request_timeout_ms + held_ms)
    }

    /// A live connection to `address`, opened if needed.
    pub(crate) async fn connection(&self, address: &str) -> Result<Arc<Connection>, ClientError> {
        let slot = self
            .inner
            .pool
            .lock()
            .entry(address.to_string())
            .or_default()
            .clone();
        let mut slot = slot.lock().await;
        if let Some(connection) = slot.as_ref().filter(|c| !c.is_closed()) {
            return Ok(connection.clone());
        }
        let config = &self.inner.config;
        let request_timeout = Duration::from_millis(config.request_timeout_ms);
        let connection = Arc::new(match self.local_at(address) {
            Some(local) => {
                Connection::open_local(address, local, &config.client_id, request_timeout).await?
            }
            None => {
                let connect_timeout = Duration::from_millis(config.connect_timeout_ms);
                Connection::open(address, &config.client_id, connect_timeout, request_timeout)
                    .await?
            }
        });
        tracing::debug!(address, node_id = connection.hello().node_id, "connected");
        *slot = Some(connection.clone());
        Ok(connection)
    }

    /// The broker in this process, if `address` names it.
    fn local_at(&self, address: &str) -> Option<Arc<dyn LocalBroker>> {
        let local = self.inner.config.local.as_ref()?;
        let named = self.inner.config.bootstrap.iter().any(|b| b == address)
            || self.inner.metadata.read().node_of(address) == Some(local.node_id());
        named.then(|| Arc::clone(local))
    }

    /// A connection to any broker: the preferred address, then the
    /// bootstrap list, then every known broker.
    async fn any_connection(&self) -> Result<Arc<Connection>, ClientError> {
        let preferred = self.preferred_address();
        let mut last_error = match self.connection(&preferred).await {
            Ok(connection) => return Ok(connection),
            Err(error) => error,
        };
        for address in self.fallback_addresses(&preferred) {
            match self.connection(&address).await {
                Ok(connection) => {
                    *self.inner.preferred_address.lock() = connection.address().to_string();
                    return Ok(connection);
                }
                Err(error) => last_error = error,
            }
        }
        Err(last_error)
    }

    fn fallback_addresses(&self, tried: &str) -> Vec<String> {
        let mut addresses = self.inner.config.bootstrap.clone();
        addresses.extend(self.inner.metadata.read().addresses());
        let mut seen = std::collections::HashSet::new();
        addresses.retain(|address| address != tried && seen.insert(address.clone()));
        addresses
    }
}
