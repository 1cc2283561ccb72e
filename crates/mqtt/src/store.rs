//! The replicated session store: session records in the topic
//! `citystream.mqtt-sessions`, keyed by client id, written through the
//! node's quorum producer and read back through a fold per partition,
//! caught up to the high watermark before a session is taken (so a node
//! sees every claim acknowledged before, on any node).
//!
//! A takeover across nodes: every node follows the sessions topic live,
//! and a record claiming a client id with a higher generation than the
//! connection holding it here closes that connection (DISCONNECT 0x8E).

use std::sync::Arc;

use bytes::Bytes;
use citystream_client::live::{Followed, Follower, Start, Tails};
use citystream_client::tail::{Tail, high_watermark};
use citystream_client::{Client, ClientError, ProducerRecord, partition_for_key};
use tokio::sync::{Mutex, OnceCell};
use tokio_util::sync::CancellationToken;

use crate::ingest::Ingest;
use crate::registry::Registry;
use crate::session::{GENERATION_HEADER, Generation, Known, SessionFold, SessionRecord, claim_of};

/// The topic of session records.
pub const SESSIONS_TOPIC: &str = "citystream.mqtt-sessions";

pub struct SessionStore {
    client: Client,
    partitions: u32,
    folds: OnceCell<Vec<Mutex<Tail<SessionFold>>>>,
}

impl SessionStore {
    /// A store whose topic is created with `partitions` if it is missing.
    pub fn new(client: &Client, partitions: u32) -> SessionStore {
        SessionStore {
            client: client.clone(),
            partitions: partitions.max(1),
            folds: OnceCell::new(),
        }
    }

    async fn folds(&self, ingest: &Ingest) -> Result<&Vec<Mutex<Tail<SessionFold>>>, ClientError> {
        self.folds
            .get_or_try_init(|| async {
                ingest
                    .ensure_topic_with(SESSIONS_TOPIC, self.partitions)
                    .await?;
                let count = self
                    .client
                    .partition_count(SESSIONS_TOPIC)
                    .await?
                    .unwrap_or(1);
                Ok((0..count)
                    .map(|p| Mutex::new(Tail::new(SESSIONS_TOPIC, p, 0, SessionFold::default())))
                    .collect())
            })
            .await
    }

    /// What the cluster knows of `client_id`'s session, as of now.
    pub async fn load(
        &self,
        ingest: &Ingest,
        client_id: &str,
    ) -> Result<Option<Known>, ClientError> {
        let folds = self.folds(ingest).await?;
        let partition = partition_for_key(client_id.as_bytes(), folds.len() as u32);
        let mut tail = folds[partition as usize].lock().await;
        let end = high_watermark(&self.client, SESSIONS_TOPIC, partition).await?;
        tail.catch_up(&self.client, end).await?;
        Ok(tail.state().get(client_id).cloned())
    }

    /// Every session that a node holds, as of now: connected ones, and
    /// disconnected ones whose will waits out its delay there.
    pub async fn owned_sessions(
        &self,
        ingest: &Ingest,
    ) -> Result<Vec<(String, Known)>, ClientError> {
        let folds = self.folds(ingest).await?;
        let mut connected = Vec::new();
        for (partition, fold) in folds.iter().enumerate() {
            let mut tail = fold.lock().await;
            let end = high_watermark(&self.client, SESSIONS_TOPIC, partition as u32).await?;
            tail.catch_up(&self.client, end).await?;
            let sessions = tail.state().iter();
            connected.extend(
                sessions
                    .filter(|(_, known)| {
                        let record = known.record.as_ref();
                        record.is_some_and(|r| r.connected || r.will_at_ms.is_some())
                    })
                    .map(|(client_id, known)| (client_id.clone(), known.clone())),
            );
        }
        Ok(connected)
    }

    /// Writes a snapshot of the session (`None`: ends it) and waits until
    /// a quorum has it.
    pub async fn write(
        &self,
        ingest: &Ingest,
        client_id: &str,
        generation: &Generation,
        record: Option<&SessionRecord>,
    ) -> Result<(), ClientError> {
        self.folds(ingest).await?;
        let value = record.map_or_else(Vec::new, SessionRecord::to_json);
        let generation = serde_json::to_vec(generation).expect("a generation always serializes");
        let mut record = ProducerRecord::new(SESSIONS_TOPIC, value).with_key(client_id.to_owned());
        record
            .headers
            .push((GENERATION_HEADER.to_owned(), Bytes::from(generation)));
        ingest.send(record).await?.await?;
        Ok(())
    }

    /// Follows the sessions topic from its end until `shutdown`, closing
    /// local connections whose session another node took over.
    pub async fn watch_takeovers(
        self: Arc<Self>,
        ingest: Arc<Ingest>,
        registry: Arc<Registry>,
        shutdown: CancellationToken,
    ) {
        let partitions = loop {
            match self.folds(&ingest).await {
                Ok(folds) => break folds.len() as u32,
                Err(error) => {
                    tracing::debug!(%error, "the MQTT sessions topic is not ready; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                        _ = shutdown.cancelled() => return,
                    }
                }
            }
        };
        let tails = Arc::new(Tails::plain(64));
        let mut follower = Follower::new(self.client.clone(), tails, shutdown.clone());
        for partition in 0..partitions {
            while let Err(error) = follower
                .follow(SESSIONS_TOPIC, partition, Start::Latest)
                .await
            {
                tracing::debug!(%error, "cannot follow the MQTT sessions topic yet");
                tokio::select! {
                    _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                    _ = shutdown.cancelled() => return,
                }
            }
        }
        while let Some(followed) = follower.next().await {
            let Followed::Records { span, .. } = followed else {
                continue;
            };
            for (client_id, generation) in span.records().iter().filter_map(claim_of) {
                registry.claimed_elsewhere(client_id, &generation);
            }
        }
    }
}
