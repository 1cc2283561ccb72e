//! A persistent session as a record of the replicated sessions topic
//! (decision 0016). Pure: the record's JSON form, and the fold that keeps
//! the newest claim per client id.
//!
//! A session record is a snapshot of everything a session must keep
//! across connections and nodes: its subscriptions, where it is in each
//! stream partition it reads, the QoS 1/2 messages sent and not yet
//! acknowledged (with their packet ids, re-sent with DUP on reconnect
//! [MQTT-4.4.0-1]), and the QoS 2 messages received and not yet released.
//! Each connection that takes a session over writes it with a higher
//! generation; the fold ignores records of lower generations, so a stale
//! writer (the node that lost the session) cannot roll it back. An empty
//! value (a tombstone, on the compacted topic) ends the session.
//!
//! The sessions topic is compacted (decision 0019): each generation's
//! records have their own key ([`session_key`]: the client id, U+0000,
//! the generation), so compaction, which keeps the newest record per key,
//! never lets a late record of an older generation stand for the session
//! in place of a newer generation's. What compaction leaves folds to the
//! same session as the whole log, once the keys of older generations are
//! tombstoned ([`Known::stale`]: every write of the session does it, and
//! the sweep of every node). A topic created before it (keyed by the
//! client id alone, not compacted) is read the same.
//!
//! A will waiting out its Will Delay is kept in its disconnected session's
//! record with its deadline ([`SessionRecord::will_at_ms`]). What stops it
//! waiting is decided by the log's order, in the fold: the node that waits
//! writes the record again without it at the deadline (the will fired), or
//! a claim of a higher generation (a new connection for the client id)
//! comes first, and the fold notes the will as superseded
//! ([`SupersededWill`]).

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use citystream_client::ConsumerRecord;
use citystream_client::tail::Fold;
use serde::{Deserialize, Serialize};

/// A claim on a session: higher wins; ties broken by the owner's name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Generation {
    pub counter: u64,
    pub owner: String,
}

/// A subscription as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredSubscription {
    pub filter: String,
    pub qos: u8,
    #[serde(default)]
    pub no_local: bool,
    #[serde(default)]
    pub retain_as_published: bool,
    #[serde(default)]
    pub retain_handling: u8,
    #[serde(default)]
    pub identifier: Option<u32>,
}

/// Where a message is in the log.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Position {
    pub topic: String,
    pub partition: u32,
    pub offset: u64,
}

/// A message sent to the client and not yet acknowledged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredInflight {
    pub packet_id: u16,
    pub qos: u8,
    /// PUBREC came and PUBREL went (QoS 2): PUBREL is what is re-sent.
    #[serde(default)]
    pub released: bool,
    pub at: Position,
    /// A retained message's content: its record in the compacted retained
    /// topic may be gone (a newer message of its name, compacted) when
    /// the message is sent again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kept: Option<KeptRecord>,
}

/// A record's content, kept with a message in flight. Bytes are base64.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeptRecord {
    pub key: String,
    pub value: String,
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    pub timestamp_ms: i64,
}

impl KeptRecord {
    /// The content of `record`, if its key is text (every MQTT message's is).
    pub fn of(record: &ConsumerRecord) -> Option<KeptRecord> {
        let key = std::str::from_utf8(record.key.as_deref()?).ok()?;
        Some(KeptRecord {
            key: key.to_owned(),
            value: BASE64.encode(&record.value),
            headers: record
                .headers
                .iter()
                .map(|(name, value)| (name.to_string(), BASE64.encode(value)))
                .collect(),
            timestamp_ms: record.timestamp_ms,
        })
    }

    /// The record again, as it was at `at`; `None` if the stored bytes do
    /// not decode.
    pub fn record(&self, at: &Position) -> Option<ConsumerRecord> {
        let headers = self
            .headers
            .iter()
            .map(|(name, value)| {
                Some((
                    Arc::from(name.as_str()),
                    Bytes::from(BASE64.decode(value).ok()?),
                ))
            })
            .collect::<Option<Vec<_>>>()?;
        Some(ConsumerRecord {
            topic: Arc::from(at.topic.as_str()),
            partition: at.partition,
            offset: at.offset,
            timestamp_ms: self.timestamp_ms,
            hlc: 0,
            key: Some(Bytes::from(self.key.clone())),
            value: Bytes::from(BASE64.decode(&self.value).ok()?),
            headers,
            tombstone: false,
        })
    }

    /// About how many bytes it adds to a session record.
    pub fn size_bytes(&self) -> usize {
        self.key.len()
            + self.value.len()
            + self
                .headers
                .iter()
                .map(|(name, value)| name.len() + value.len())
                .sum::<usize>()
    }
}

/// A QoS 2 message received from the client and not yet released: its
/// record is written (or about to be) with header `$mqtt.q2` = `id`, at
/// or after `from` in its partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredInbound {
    pub packet_id: u16,
    pub id: u64,
    pub from: Position,
}

/// The node (and its run) that holds a connected session: if it dies or
/// restarts, the session is orphaned and another node publishes its will.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnerNode {
    pub node_id: u32,
    /// The node's start time (ms), as cluster status reports it.
    pub generation: u64,
}

/// A will as kept with a connected session, so another node can publish it
/// if the session's node dies. Bytes are base64.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredWill {
    pub topic: String,
    pub payload: String,
    pub qos: u8,
    #[serde(default)]
    pub retain: bool,
    #[serde(default)]
    pub delay_secs: u32,
    #[serde(default)]
    pub message_expiry_secs: Option<u32>,
    #[serde(default)]
    pub content_type: Option<String>,
    #[serde(default)]
    pub response_topic: Option<String>,
    #[serde(default)]
    pub correlation_data: Option<String>,
    #[serde(default)]
    pub payload_utf8: bool,
    #[serde(default)]
    pub user_properties: Vec<(String, String)>,
}

/// One session snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub generation: Generation,
    /// A connection holds the session now.
    pub connected: bool,
    /// Seconds the session outlives its connection (`u32::MAX`: forever).
    pub expiry_secs: u32,
    /// When this snapshot was taken, ms since the Unix epoch.
    pub updated_ms: i64,
    #[serde(default)]
    pub subscriptions: Vec<StoredSubscription>,
    /// The next offset to read, per followed stream partition.
    #[serde(default)]
    pub positions: Vec<Position>,
    #[serde(default)]
    pub inflight: Vec<StoredInflight>,
    #[serde(default)]
    pub inbound: Vec<StoredInbound>,
    /// The last id given to an inbound QoS 2 message.
    #[serde(default)]
    pub inbound_counter: u64,
    /// Where the session is connected (while it is).
    #[serde(default)]
    pub owner_node: Option<OwnerNode>,
    /// The connection's will while it is connected; after it, the will
    /// that waits out its delay until `will_at_ms`.
    #[serde(default)]
    pub will: Option<StoredWill>,
    /// When the disconnected session's will is due, ms since the epoch
    /// (the connection's end plus the lower of its Will Delay and the
    /// session expiry); the node in `owner_node` waits for it.
    #[serde(default)]
    pub will_at_ms: Option<i64>,
    /// When the store wrote this snapshot, ms since the epoch (absent in
    /// records written before it was kept). See [`LATE_WRITE_MS`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written_ms: Option<i64>,
    /// Retained messages a SUBSCRIBE queued at QoS 1/2 that the in-flight
    /// window had not let out yet, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub queued_retained: Vec<QueuedRetained>,
}

/// A retained message queued for the client and not sent yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedRetained {
    pub qos: u8,
    /// Its record in the retained topic when it was queued.
    pub at: Position,
    pub kept: KeptRecord,
}

/// A snapshot appended this long after the store wrote it is not taken:
/// only a write held up that long (a node that lost the session, cut off)
/// appends so late, and it could land after the end tombstone of the
/// generation that took the session had expired (a day, the topic's
/// tombstone retention), with nothing left to say it is stale (decision
/// 0019). Half the retention leaves room for clocks that disagree.
pub const LATE_WRITE_MS: i64 = 12 * 60 * 60 * 1000;

impl SessionRecord {
    /// Whether a disconnected session's expiry passed by `now_ms`.
    pub fn expired(&self, now_ms: i64) -> bool {
        !self.connected
            && self.expiry_secs != u32::MAX
            && self
                .updated_ms
                .saturating_add(i64::from(self.expiry_secs) * 1000)
                <= now_ms
    }

    /// When the session's connection ended, for a record written as
    /// disconnected at `now_ms`: now if it is connected (it ends now),
    /// else when it did (so its expiry keeps counting from there).
    pub fn disconnected_at(&self, now_ms: i64) -> i64 {
        if self.connected {
            now_ms
        } else {
            self.updated_ms
        }
    }

    /// The will a newer claim would stop from being published: one that
    /// waits out its delay, or a connected session's will with a delay
    /// (which the connection's end would start).
    pub fn will_with_delay(&self) -> Option<&StoredWill> {
        let will = self.will.as_ref()?;
        let delayed = will.delay_secs.min(self.expiry_secs) > 0;
        (!self.connected || delayed).then_some(will)
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a session record always serializes")
    }

    /// The record as the store writes it at `now_ms`.
    pub fn written_at(&self, now_ms: i64) -> SessionRecord {
        SessionRecord {
            written_ms: Some(now_ms),
            ..self.clone()
        }
    }
}

/// What the fold knows of one client id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Known {
    /// The highest generation seen, also when the session was then ended.
    pub generation: Generation,
    /// The session, or `None` if that generation ended it.
    pub record: Option<SessionRecord>,
    /// The last wills with a delay that a newer claim came before, oldest
    /// first, at most [`SUPERSEDED_WILLS_KEPT`].
    pub superseded_wills: Vec<SupersededWill>,
    /// Older generations whose newest record (under their own key, see
    /// [`session_key`]) is not a tombstone: garbage for compaction to drop
    /// once tombstoned.
    pub stale: Vec<Generation>,
}

impl Known {
    /// The generations whose keys a write of `generation` tombstones: the
    /// stale ones, and the one its claim supersedes.
    pub fn tombstoned_by(&self, generation: &Generation) -> Vec<Generation> {
        let superseded = (self.generation < *generation && self.record.is_some())
            .then(|| self.generation.clone());
        self.stale.iter().cloned().chain(superseded).collect()
    }

    /// The will of `generation` that a newer claim superseded, if one did.
    pub fn superseded_will(&self, generation: &Generation) -> Option<&SupersededWill> {
        self.superseded_wills
            .iter()
            .find(|superseded| superseded.generation == *generation)
    }
}

/// A will with a delay whose session a claim of a higher generation took
/// before the will was published: the client connected again (or a node
/// adopted the session of a dead one). The new connection decides its fate
/// (a clean start ends the session and publishes it; a resume cancels it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupersededWill {
    /// The generation whose will it was.
    pub generation: Generation,
    /// The claim that came first.
    pub by: Generation,
    pub will: StoredWill,
}

/// Superseded wills the fold keeps per client id: the waiting node looks
/// for its own within moments of its deadline, so a few suffice.
pub const SUPERSEDED_WILLS_KEPT: usize = 4;

/// The newest session per client id of one sessions partition.
#[derive(Debug, Default)]
pub struct SessionFold {
    sessions: HashMap<String, Known>,
}

/// The header of a session record (or tombstone) naming its generation,
/// so an ending is fenced like a snapshot.
pub const GENERATION_HEADER: &str = "$mqtt.generation";

/// The key of a generation's session records on the compacted sessions
/// topic: the client id, U+0000 (which no MQTT client id holds
/// [MQTT-1.5.4-2]) and the generation. The record goes to the partition of
/// the client id ([`SessionStore`](crate::store)), and the generation
/// itself is read from [`GENERATION_HEADER`].
pub fn session_key(client_id: &str, generation: &Generation) -> String {
    format!(
        "{client_id}\u{0}{}\u{0}{}",
        generation.counter, generation.owner
    )
}

/// The client id of a session record's key: all of a key written before
/// decision 0019, the part before U+0000 of a [`session_key`].
pub fn client_id_of(key: &[u8]) -> Option<&str> {
    let key = std::str::from_utf8(key).ok()?;
    Some(
        key.split_once('\u{0}')
            .map_or(key, |(client_id, _)| client_id),
    )
}

/// Whether the key is a [`session_key`] (one per generation).
fn keyed_by_generation(key: &[u8]) -> bool {
    key.contains(&0)
}

/// The client id and generation a session record claims; `None` for a
/// record that is not one.
pub fn claim_of(record: &ConsumerRecord) -> Option<(&str, Generation)> {
    let client_id = client_id_of(record.key.as_deref()?)?;
    let (_, value) = record
        .headers
        .iter()
        .find(|(name, _)| &**name == GENERATION_HEADER)?;
    let generation = serde_json::from_slice::<Generation>(value).ok()?;
    Some((client_id, generation))
}

impl SessionFold {
    pub fn get(&self, client_id: &str) -> Option<&Known> {
        self.sessions.get(client_id)
    }

    /// Every client id and what is known of it.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Known)> {
        self.sessions.iter()
    }

    /// Keeps `record` unless a higher generation is known: one connection
    /// writes many snapshots under its generation, each replacing the last.
    /// A higher generation over a record holding a will with a delay
    /// supersedes that will. With `keyed` records (one key per generation),
    /// an older generation whose key still holds a record is noted stale.
    fn take(
        &mut self,
        client_id: &str,
        generation: Generation,
        record: Option<SessionRecord>,
        keyed: bool,
    ) {
        let Some(known) = self.sessions.get_mut(client_id) else {
            let known = Known {
                generation,
                record,
                superseded_wills: Vec::new(),
                stale: Vec::new(),
            };
            self.sessions.insert(client_id.to_owned(), known);
            return;
        };
        if generation < known.generation {
            if keyed {
                known.stale.retain(|stale| *stale != generation);
                if record.is_some() {
                    known.stale.push(generation);
                }
            }
            return;
        }
        let superseded = known
            .record
            .as_ref()
            .and_then(SessionRecord::will_with_delay);
        if generation > known.generation
            && let Some(will) = superseded
        {
            if known.superseded_wills.len() == SUPERSEDED_WILLS_KEPT {
                known.superseded_wills.remove(0);
            }
            known.superseded_wills.push(SupersededWill {
                generation: known.generation.clone(),
                by: generation.clone(),
                will: will.clone(),
            });
        }
        if generation > known.generation && keyed && known.record.is_some() {
            known.stale.push(known.generation.clone());
        }
        known.generation = generation;
        known.record = record;
    }
}

impl Fold for SessionFold {
    fn apply(&mut self, record: &ConsumerRecord) {
        let Some((client_id, generation)) = claim_of(record) else {
            return;
        };
        let keyed = record.key.as_deref().is_some_and(keyed_by_generation);
        if record.tombstone || record.value.is_empty() {
            self.take(client_id, generation, None, keyed);
            return;
        }
        match serde_json::from_slice::<SessionRecord>(&record.value) {
            Ok(session)
                if session
                    .written_ms
                    .is_some_and(|written| record.hlc_ms() - written > LATE_WRITE_MS) =>
            {
                tracing::warn!(
                    client_id,
                    offset = record.offset,
                    "MQTT session snapshot appended over 12 h after it was written; not taken"
                );
            }
            Ok(session) => self.take(client_id, generation, Some(session), keyed),
            Err(error) => {
                tracing::warn!(client_id, offset = record.offset, %error, "unreadable MQTT session record skipped");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn generation(counter: u64, owner: &str) -> Generation {
        Generation {
            counter,
            owner: owner.to_owned(),
        }
    }

    fn session(generation: Generation) -> SessionRecord {
        SessionRecord {
            generation,
            connected: true,
            expiry_secs: 60,
            updated_ms: 1_000,
            subscriptions: Vec::new(),
            positions: Vec::new(),
            inflight: Vec::new(),
            inbound: Vec::new(),
            inbound_counter: 0,
            owner_node: None,
            will: None,
            will_at_ms: None,
            written_ms: None,
            queued_retained: Vec::new(),
        }
    }

    fn record(client_id: &str, generation: &Generation, value: Vec<u8>) -> ConsumerRecord {
        ConsumerRecord {
            topic: "sessions".into(),
            partition: 0,
            offset: 0,
            timestamp_ms: 0,
            hlc: 0,
            key: Some(Bytes::copy_from_slice(client_id.as_bytes())),
            value: Bytes::from(value),
            headers: vec![(
                GENERATION_HEADER.into(),
                Bytes::from(serde_json::to_vec(generation).unwrap()),
            )],
            tombstone: false,
        }
    }

    /// A record of a lower generation, written late by the node that lost
    /// the session, does not replace the newer one; an ending of the
    /// newest generation does.
    #[test]
    fn the_highest_generation_wins() {
        let mut fold = SessionFold::default();
        let (old, new) = (generation(1, "a"), generation(2, "b"));
        fold.apply(&record("c", &new, session(new.clone()).to_json()));
        fold.apply(&record("c", &old, session(old.clone()).to_json()));
        assert_eq!(fold.get("c").unwrap().generation, new);
        assert!(fold.get("c").unwrap().record.is_some());
        let mut later = session(new.clone());
        later.updated_ms = 2_000;
        fold.apply(&record("c", &new, later.to_json()));
        assert_eq!(
            fold.get("c").unwrap().record.as_ref().unwrap().updated_ms,
            2_000,
            "same generation replaces"
        );
        fold.apply(&record("c", &new, Vec::new()));
        assert_eq!(fold.get("c").unwrap().record, None);
        assert_eq!(fold.get("c").unwrap().generation, new);
    }

    fn waiting(generation: Generation, delay_secs: u32) -> SessionRecord {
        SessionRecord {
            connected: false,
            will: Some(StoredWill {
                topic: "status/c".to_owned(),
                payload: String::new(),
                qos: 1,
                retain: false,
                delay_secs,
                message_expiry_secs: None,
                content_type: None,
                response_topic: None,
                correlation_data: None,
                payload_utf8: false,
                user_properties: Vec::new(),
            }),
            will_at_ms: Some(5_000),
            ..session(generation)
        }
    }

    /// A claim of a higher generation that comes before the waiting will
    /// fired supersedes it; one that comes after the record was written
    /// again without the will (it fired) does not. The log's order decides.
    #[test]
    fn a_newer_claim_supersedes_a_waiting_will_only_before_it_fired() {
        let (old, new) = (generation(1, "a"), generation(2, "b"));
        let mut fold = SessionFold::default();
        fold.apply(&record("c", &old, waiting(old.clone(), 5).to_json()));
        fold.apply(&record("c", &new, session(new.clone()).to_json()));
        let known = fold.get("c").unwrap();
        let superseded = known.superseded_will(&old).expect("superseded");
        assert_eq!((&superseded.by, superseded.will.delay_secs), (&new, 5));
        assert!(known.superseded_will(&new).is_none());

        let mut fold = SessionFold::default();
        fold.apply(&record("c", &old, waiting(old.clone(), 5).to_json()));
        fold.apply(&record("c", &old, session(old.clone()).to_json()));
        fold.apply(&record("c", &new, session(new.clone()).to_json()));
        let fired_first = fold.get("c").unwrap();
        assert!(fired_first.superseded_will(&old).is_none());

        let mut fold = SessionFold::default();
        fold.apply(&record("c", &old, waiting(old.clone(), 5).to_json()));
        fold.apply(&record("c", &new, Vec::new()));
        fold.apply(&record("c", &old, session(old.clone()).to_json()));
        let ended = fold.get("c").unwrap();
        assert!(
            ended.superseded_will(&old).is_some(),
            "a late write of the old generation changes nothing"
        );
    }

    /// A connected session's will is superseded by a takeover only if it
    /// has a delay (one without is published when the connection ends),
    /// and only the last few superseded wills are kept.
    #[test]
    fn a_takeover_supersedes_a_connected_will_with_a_delay() {
        let mut fold = SessionFold::default();
        let mut connected = waiting(generation(1, "a"), 0);
        connected.connected = true;
        fold.apply(&record("c", &generation(1, "a"), connected.to_json()));
        fold.apply(&record(
            "c",
            &generation(2, "a"),
            session(generation(2, "a")).to_json(),
        ));
        assert!(fold.get("c").unwrap().superseded_wills.is_empty());
        for counter in 3..20 {
            let mut connected = waiting(generation(counter, "a"), 5);
            connected.connected = true;
            connected.generation = generation(counter, "a");
            fold.apply(&record("c", &generation(counter, "a"), connected.to_json()));
        }
        let known = fold.get("c").unwrap();
        assert_eq!(known.superseded_wills.len(), SUPERSEDED_WILLS_KEPT);
        assert!(known.superseded_will(&generation(18, "a")).is_some());
        assert!(known.superseded_will(&generation(14, "a")).is_none());
    }

    /// What the store writes, as the log of one partition.
    #[derive(Default)]
    struct Log {
        records: Vec<ConsumerRecord>,
    }

    impl Log {
        fn fold(records: &[ConsumerRecord]) -> SessionFold {
            let mut fold = SessionFold::default();
            records.iter().for_each(|record| fold.apply(record));
            fold
        }

        fn push(&mut self, generation: &Generation, value: Option<SessionRecord>) {
            let key = session_key("c", generation);
            let mut record = record("c", generation, Vec::new());
            record.key = Some(Bytes::from(key));
            record.offset = self.records.len() as u64;
            match value {
                Some(value) => record.value = Bytes::from(value.to_json()),
                None => record.tombstone = true,
            }
            self.records.push(record);
        }

        /// A write as `SessionStore::write` makes it: the record, then
        /// tombstones for the stale keys the fold knows and the key a claim
        /// supersedes.
        fn write(&mut self, generation: &Generation, value: Option<SessionRecord>) {
            let stale = Log::fold(&self.records)
                .get("c")
                .map_or_else(Vec::new, |known| known.tombstoned_by(generation));
            self.push(generation, value);
            for stale in stale {
                self.push(&stale, None);
            }
        }

        /// Compaction at its most: the newest record per key, and no
        /// tombstones (their retention passed).
        fn compacted(&self) -> Vec<ConsumerRecord> {
            let newest: HashMap<_, _> = self
                .records
                .iter()
                .map(|record| (record.key.clone(), record.offset))
                .collect();
            self.records
                .iter()
                .filter(|record| newest[&record.key] == record.offset && !record.tombstone)
                .cloned()
                .collect()
        }
    }

    #[derive(Debug, Clone)]
    enum Step {
        /// A new connection (or an adopting node) claims the session.
        Claim,
        /// The holder writes a snapshot.
        Snapshot,
        /// An older generation writes late (the node that lost it).
        Late(usize),
        /// The holder ends the session.
        End,
        /// A node's sweep tombstones the stale keys.
        Tidy,
    }

    fn step() -> impl proptest::strategy::Strategy<Value = Step> {
        use proptest::prelude::*;
        prop_oneof![
            Just(Step::Claim),
            Just(Step::Snapshot),
            (0..4usize).prop_map(Step::Late),
            Just(Step::End),
            Just(Step::Tidy),
        ]
    }

    proptest::proptest! {
        /// Decision 0019: once a sweep has run, the sessions topic as
        /// compaction leaves it (newest record per key, no tombstones)
        /// folds to the same session as the whole log, whatever late
        /// writes of older generations it holds. Keyed by client id alone,
        /// a late write would stand for the session after compaction.
        #[test]
        fn compaction_keeps_the_folded_session(steps in proptest::collection::vec(step(), 1..40)) {
            let mut log = Log::default();
            let mut generations: Vec<Generation> = Vec::new();
            for (at, step) in steps.into_iter().enumerate() {
                let snapshot = |generation: &Generation| SessionRecord {
                    updated_ms: at as i64,
                    ..session(generation.clone())
                };
                match step {
                    Step::Claim => {
                        let counter = generations.last().map_or(0, |g| g.counter) + 1;
                        let owner = format!("node-{}", counter % 3);
                        let claimed = generation(counter, &owner);
                        log.write(&claimed, Some(snapshot(&claimed)));
                        generations.push(claimed);
                    }
                    Step::Snapshot | Step::End => {
                        let Some(holder) = generations.last().cloned() else { continue };
                        let value = matches!(step, Step::Snapshot).then(|| snapshot(&holder));
                        log.write(&holder, value);
                    }
                    Step::Late(back) => {
                        if generations.len() > back + 1 {
                            let late = generations[generations.len() - 2 - back].clone();
                            log.push(&late, Some(snapshot(&late)));
                        }
                    }
                    Step::Tidy => {
                        let stale = Log::fold(&log.records)
                            .get("c")
                            .map(|known| known.stale.clone())
                            .unwrap_or_default();
                        stale.iter().for_each(|stale| log.push(stale, None));
                    }
                }
            }
            let stale = Log::fold(&log.records).get("c").map(|k| k.stale.clone()).unwrap_or_default();
            stale.iter().for_each(|stale| log.push(stale, None));
            let whole = Log::fold(&log.records);
            let compacted = Log::fold(&log.compacted());
            let session = |fold: &SessionFold| fold.get("c").and_then(|known| known.record.clone());
            proptest::prop_assert_eq!(session(&compacted), session(&whole));
        }
    }

    /// A session expires its expiry after it was disconnected, never while
    /// connected, and never with the maximum expiry.
    #[test]
    fn expiry_counts_from_the_disconnect() {
        let mut record = session(generation(1, "a"));
        assert!(!record.expired(10_000_000), "connected");
        record.connected = false;
        assert!(!record.expired(60_999));
        assert!(record.expired(61_000));
        record.expiry_secs = u32::MAX;
        assert!(!record.expired(i64::MAX));
    }

    /// The JSON form round-trips, and fields added later default.
    #[test]
    fn records_round_trip_and_default() {
        let mut record = session(generation(3, "n"));
        record.positions.push(Position {
            topic: "mqtt.city".to_owned(),
            partition: 2,
            offset: 40,
        });
        let back: SessionRecord = serde_json::from_slice(&record.to_json()).unwrap();
        assert_eq!(back, record);
        let minimal = r#"{"generation":{"counter":1,"owner":"x"},"connected":false,"expiry_secs":5,"updated_ms":9}"#;
        let parsed: SessionRecord = serde_json::from_str(minimal).unwrap();
        assert!(parsed.subscriptions.is_empty() && parsed.inflight.is_empty());
    }

    /// A snapshot appended more than [`LATE_WRITE_MS`] after the store
    /// wrote it is not taken; one appended in time is.
    #[test]
    fn a_snapshot_appended_too_late_is_not_taken() {
        let written_ms = 10 * LATE_WRITE_MS;
        let holder = generation(1, "node-1");
        let value = session(holder.clone()).written_at(written_ms).to_json();
        let appended_at = |ms: i64| {
            let mut appended = record("c", &holder, value.clone());
            appended.hlc = (ms as u64) << 16;
            appended
        };
        let mut fold = SessionFold::default();
        fold.apply(&appended_at(written_ms + LATE_WRITE_MS + 1));
        assert!(fold.get("c").is_none(), "a late write is not taken");
        fold.apply(&appended_at(written_ms + 60_000));
        let taken = fold.get("c").and_then(|known| known.record.clone());
        assert_eq!(taken.and_then(|r| r.written_ms), Some(written_ms));
    }

    /// A kept record comes back as it was, bytes and headers included.
    #[test]
    fn a_kept_record_round_trips() {
        let record = ConsumerRecord {
            topic: "citystream.mqtt-retained".into(),
            partition: 2,
            offset: 7,
            timestamp_ms: 1_000,
            hlc: 0,
            key: Some(Bytes::from_static(b"city/x/status")),
            value: Bytes::from_static(&[0, 159, 255]),
            headers: vec![("$mqtt.qos".into(), Bytes::from_static(b"1"))],
            tombstone: false,
        };
        let kept = KeptRecord::of(&record).unwrap();
        let json = serde_json::to_vec(&kept).unwrap();
        let back: KeptRecord = serde_json::from_slice(&json).unwrap();
        let at = Position {
            topic: record.topic.to_string(),
            partition: 2,
            offset: 7,
        };
        assert_eq!(back.record(&at), Some(record));
        let mut bad = back;
        bad.value = "not base64!".to_owned();
        assert_eq!(bad.record(&at), None);
    }
}
