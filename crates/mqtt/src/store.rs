//! The replicated session store: session records in the topic
//! `citystream.mqtt-sessions`, keyed by client id, written through the
//! node's quorum producer and read back through a fold per partition,
//! caught up to the high watermark before a session is taken (so a node
//! sees every claim acknowledged before, on any node).
//!
//! A takeover across nodes: every node follows the sessions topic live,
//! and a record claiming a client id with a higher generation than the
//! connection holding it here closes that connection (DISCONNECT 0x8E).
//!
//! The topic is compacted, one key per generation (decision 0019,
//! [`session_key`]): a write also tombstones the keys of older generations
//! that still hold a record, an ended session is a tombstone, and every
//! node's sweep ([`SessionStore::tidy`]) ends expired sessions and
//! tombstones stale keys nobody else writes, so the topic holds about one
//! record per live session. A topic created before (not compacted) keeps
//! its old form: keyed by client id, ended by an empty value.

use std::sync::Arc;

use bytes::Bytes;
use citystream_client::live::{Followed, Follower, Start, Tails};
use citystream_client::tail::{Tail, high_watermark};
use citystream_client::{Client, ClientError, DeliveryFuture, ProducerRecord, partition_for_key};
use citystream_protocol::{Cleanup, TopicConfig};
use tokio::sync::{Mutex, MutexGuard, OnceCell};
use tokio_util::sync::CancellationToken;

use crate::ingest::Ingest;
use crate::registry::Registry;
use crate::session::{
    GENERATION_HEADER, Generation, Known, SessionFold, SessionRecord, claim_of, session_key,
};

/// The topic of session records.
pub const SESSIONS_TOPIC: &str = "citystream.mqtt-sessions";

/// How long a session record stays whole after it is written, before
/// compaction may drop it for a newer record of its key: a node that
/// starts reads the last minute's history (a will superseded by a claim)
/// as it happened.
const SESSIONS_COMPACTION_LAG_MS: u64 = 60_000;

pub struct SessionStore {
    client: Client,
    partitions: u32,
    folds: OnceCell<Folds>,
}

/// The fold of each partition, and the topic's form.
struct Folds {
    partitions: Vec<Mutex<Tail<SessionFold>>>,
    /// One key per generation, tombstones (decision 0019); `false` for a
    /// topic created before, which is not compacted.
    compacted: bool,
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

    async fn folds_of(&self, ingest: &Ingest) -> Result<&Folds, ClientError> {
        self.folds
            .get_or_try_init(|| async {
                let config = TopicConfig {
                    cleanup: Cleanup::Compact,
                    compaction_lag_ms: Some(SESSIONS_COMPACTION_LAG_MS),
                    ..TopicConfig::default()
                };
                ingest
                    .ensure_topic_config(SESSIONS_TOPIC, self.partitions, config)
                    .await?;
                let count = self
                    .client
                    .partition_count(SESSIONS_TOPIC)
                    .await?
                    .unwrap_or(1);
                let cleanup = self.client.topic_cleanup(SESSIONS_TOPIC).await?;
                let compacted = cleanup.is_some_and(Cleanup::compacts);
                if !compacted {
                    tracing::warn!(
                        topic = SESSIONS_TOPIC,
                        "the MQTT sessions topic was created before it was compacted: it keeps every session record (delete it while no persistent session matters to start a compacted one)"
                    );
                }
                let partitions = (0..count)
                    .map(|p| Mutex::new(Tail::new(SESSIONS_TOPIC, p, 0, SessionFold::default())))
                    .collect();
                Ok(Folds {
                    partitions,
                    compacted,
                })
            })
            .await
    }

    async fn folds(&self, ingest: &Ingest) -> Result<&Vec<Mutex<Tail<SessionFold>>>, ClientError> {
        Ok(&self.folds_of(ingest).await?.partitions)
    }

    /// What the cluster knows of `client_id`'s session, as of now.
    pub async fn load(
        &self,
        ingest: &Ingest,
        client_id: &str,
    ) -> Result<Option<Known>, ClientError> {
        let folds = self.folds(ingest).await?;
        let partition = partition_for_key(client_id.as_bytes(), folds.len() as u32);
        let tail = self
            .caught_up(&folds[partition as usize], partition)
            .await?;
        Ok(tail.state().get(client_id).cloned())
    }

    /// `partition`'s fold, caught up to its high watermark (every record
    /// acknowledged before the call), held locked.
    async fn caught_up<'a>(
        &self,
        fold: &'a Mutex<Tail<SessionFold>>,
        partition: u32,
    ) -> Result<MutexGuard<'a, Tail<SessionFold>>, ClientError> {
        let mut tail = fold.lock().await;
        let end = high_watermark(&self.client, SESSIONS_TOPIC, partition).await?;
        tail.catch_up(&self.client, end).await?;
        Ok(tail)
    }

    /// What a node's sweep acts on, as of `now_ms`, in one catch-up of
    /// every partition: the sessions a node holds (connected ones, and
    /// disconnected ones whose will waits out its delay there), and, on a
    /// compacted topic, those to tidy ([`SessionStore::tidy`]).
    pub async fn survey(&self, ingest: &Ingest, now_ms: i64) -> Result<Survey, ClientError> {
        let folds = self.folds_of(ingest).await?;
        let mut survey = Survey::default();
        for (partition, fold) in folds.partitions.iter().enumerate() {
            let tail = self.caught_up(fold, partition as u32).await?;
            for (client_id, known) in tail.state().iter() {
                let record = known.record.as_ref();
                if record.is_some_and(|r| r.connected || r.will_at_ms.is_some()) {
                    survey.owned.push((client_id.clone(), known.clone()));
                }
                let expired = expired(known, now_ms);
                if folds.compacted && (expired || !known.stale.is_empty()) {
                    let untidy = Untidy {
                        partition: partition as u32,
                        client_id: client_id.clone(),
                        known: known.clone(),
                        expired,
                    };
                    survey.untidy.push(untidy);
                }
            }
        }
        Ok(survey)
    }

    /// Writes a snapshot of the session (`None`: ends it), and tombstones
    /// for the stale keys of its older generations, and waits until a
    /// quorum has them.
    pub async fn write(
        &self,
        ingest: &Ingest,
        client_id: &str,
        generation: &Generation,
        record: Option<&SessionRecord>,
    ) -> Result<(), ClientError> {
        let folds = self.folds_of(ingest).await?;
        if !folds.compacted {
            let value = record.map_or_else(Vec::new, SessionRecord::to_json);
            let record = ProducerRecord::new(SESSIONS_TOPIC, value).with_key(client_id.to_owned());
            return send_all(ingest, vec![with_generation(record, generation)]).await;
        }
        let partition = partition_for_key(client_id.as_bytes(), folds.partitions.len() as u32);
        let stale = {
            let tail = folds.partitions[partition as usize].lock().await;
            let known = tail.state().get(client_id);
            known.map_or_else(Vec::new, |known| known.tombstoned_by(generation))
        };
        let written = match record {
            Some(record) => {
                let key = session_key(client_id, generation);
                let value = record.written_at(crate::connection::now_ms()).to_json();
                let mut written = ProducerRecord::new(SESSIONS_TOPIC, value).with_key(key);
                written.partition = Some(partition);
                with_generation(written, generation)
            }
            None => tombstone(client_id, generation, partition),
        };
        let tombstones = stale
            .iter()
            .map(|stale| tombstone(client_id, stale, partition));
        send_all(ingest, std::iter::once(written).chain(tombstones).collect()).await
    }

    /// Upkeep of a compacted topic, from a [`Survey`]: ends disconnected
    /// sessions whose expiry passed (and whose will does not wait), and
    /// tombstones the stale keys of the rest. Every node runs it; two
    /// doing the same write the same tombstones.
    pub async fn tidy(&self, ingest: &Ingest, untidy: Vec<Untidy>) -> Result<(), ClientError> {
        for Untidy {
            partition,
            client_id,
            known,
            expired,
        } in untidy
        {
            if expired {
                tracing::debug!(%client_id, "MQTT session expired; ending it");
                self.write(ingest, &client_id, &known.generation, None)
                    .await?;
                continue;
            }
            let tombstones = known
                .stale
                .iter()
                .map(|stale| tombstone(&client_id, stale, partition))
                .collect();
            send_all(ingest, tombstones).await?;
        }
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

/// What one sweep of a node acts on ([`SessionStore::survey`]).
#[derive(Default)]
pub struct Survey {
    /// Sessions held by a node: connected, or with a will waiting there.
    pub owned: Vec<(String, Known)>,
    /// Sessions of a compacted topic with stale keys, or expired.
    pub untidy: Vec<Untidy>,
}

/// A session [`SessionStore::tidy`] ends or cleans up after.
pub struct Untidy {
    partition: u32,
    client_id: String,
    known: Known,
    /// Its expiry passed and no will waits: it is ended.
    expired: bool,
}

/// Whether a session's expiry passed with no will waiting in it.
fn expired(known: &Known, now_ms: i64) -> bool {
    known
        .record
        .as_ref()
        .is_some_and(|record| record.expired(now_ms) && record.will_at_ms.is_none())
}

/// The tombstone of `generation`'s key of `client_id`'s session.
fn tombstone(client_id: &str, generation: &Generation, partition: u32) -> ProducerRecord {
    let key = session_key(client_id, generation);
    let mut tombstone = ProducerRecord::tombstone(SESSIONS_TOPIC, key);
    tombstone.partition = Some(partition);
    with_generation(tombstone, generation)
}

/// The record with its generation header.
fn with_generation(mut record: ProducerRecord, generation: &Generation) -> ProducerRecord {
    let generation = serde_json::to_vec(generation).expect("a generation always serializes");
    record
        .headers
        .push((GENERATION_HEADER.to_owned(), Bytes::from(generation)));
    record
}

/// Sends the records in order and waits until a quorum has every one.
async fn send_all(ingest: &Ingest, records: Vec<ProducerRecord>) -> Result<(), ClientError> {
    let mut deliveries: Vec<DeliveryFuture> = Vec::with_capacity(records.len());
    for record in records {
        deliveries.push(ingest.send(record).await?);
    }
    for delivery in deliveries {
        delivery.await?;
    }
    Ok(())
}
