//! Delivery: one supervisor per node and, on the node that leads the
//! registry topic's partition, one task per webhook and partition.
//!
//! A partition's task reads from the committed position, POSTs each
//! record that passes the key filter and waits for a 2xx before the next
//! (so order is kept), retrying a failed POST with exponential backoff for
//! as long as it takes. It commits its position after each delivered batch
//! (and every `COMMIT_EVERY` within a long one), and reads the next batch
//! only once that commit succeeded: a node cut off from the cluster (that
//! may still think it leads) stops after at most one batch, and a new
//! deliverer starts where the last commit left off — so a record may be
//! POSTed twice, never skipped.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use citystream_client::{ConsumerRecord, ErrorCode, TopicPartition};
use citystream_protocol::OffsetSpec;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use tokio_util::sync::CancellationToken;

use super::{DeliveryState, DeliveryStatus, WEBHOOKS_TOPIC, Webhook, Webhooks, now_ms};
use crate::sse::filter::key_matches;
use crate::views::record_json;

/// Bytes read per delivery batch: at most this much is POSTed past the
/// last committed position.
const READ_BYTES: u32 = 64 * 1024;
/// While a batch is being delivered, its position is committed this often.
const COMMIT_EVERY: Duration = Duration::from_millis(200);
/// Pause after a failed read or commit (no leader, topic gone).
const RETRY_PAUSE: Duration = Duration::from_millis(500);

type Key = (u64, u32);

impl Webhooks {
    /// Runs this node's deliverer until `stop` is cancelled: every
    /// `supervise_every` it checks whether this node leads the registry
    /// and starts or stops partition tasks to match the registrations.
    pub fn spawn_delivery(&self, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
        tokio::spawn(supervise(self.clone(), stop))
    }
}

async fn supervise(webhooks: Webhooks, stop: CancellationToken) {
    let Some(me) = own_node_id(&webhooks, &stop).await else {
        return;
    };
    let mut running: HashMap<Key, CancellationToken> = HashMap::new();
    let mut tick = tokio::time::interval(webhooks.inner.config.supervise_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        let wanted = match wanted(&webhooks, me).await {
            Ok(wanted) => wanted,
            Err(error) => {
                // Keep what runs: a hiccup reading metadata is no reason
                // to stop delivering (a lost leadership shows as one).
                tracing::debug!(%error, "webhook supervision could not read the registry");
                continue;
            }
        };
        let keys: HashSet<Key> = wanted.keys().copied().collect();
        running.retain(|key, token| {
            let keep = keys.contains(key);
            if !keep {
                token.cancel();
                webhooks.inner.status.lock().remove(key);
                tracing::info!(
                    webhook = key.0,
                    partition = key.1,
                    "webhook delivery stopped"
                );
            }
            keep
        });
        for (key, hook) in wanted {
            if running.contains_key(&key) {
                continue;
            }
            let token = stop.child_token();
            tracing::info!(webhook = hook.id, topic = %hook.topic, partition = key.1, url = %hook.url, "webhook delivery started");
            tokio::spawn(deliver_partition(
                webhooks.clone(),
                hook,
                key.1,
                token.clone(),
            ));
            running.insert(key, token);
        }
    }
    for token in running.values() {
        token.cancel();
    }
}

/// The node id of this node (the one the client is connected to).
async fn own_node_id(webhooks: &Webhooks, stop: &CancellationToken) -> Option<u32> {
    loop {
        match webhooks.inner.client.admin().cluster_status().await {
            Ok(status) => return Some(status.node_id),
            Err(error) => tracing::debug!(%error, "webhook delivery waits for its node"),
        }
        tokio::select! {
            () = stop.cancelled() => return None,
            () = tokio::time::sleep(RETRY_PAUSE) => {}
        }
    }
}

/// The (webhook, partition) pairs this node should deliver: all of them
/// if it leads the registry's partition, else none.
async fn wanted(webhooks: &Webhooks, me: u32) -> Result<HashMap<Key, Webhook>, String> {
    let client = &webhooks.inner.client;
    let metadata = client
        .metadata(Some(vec![WEBHOOKS_TOPIC.to_owned()]))
        .await
        .map_err(|error| error.to_string())?;
    let leads = metadata.topics.iter().any(|topic| {
        topic.name == WEBHOOKS_TOPIC
            && topic.status.error == ErrorCode::NONE
            && topic
                .partitions
                .iter()
                .any(|partition| partition.partition == 0 && partition.leader == me)
    });
    let mut wanted = HashMap::new();
    if !leads {
        return Ok(wanted);
    }
    for hook in webhooks.list().await.map_err(|error| error.message)? {
        let partitions = client
            .partition_count(&hook.topic)
            .await
            .map_err(|error| error.to_string())?
            // A deleted topic: its webhook waits, visibly, on partition 0.
            .unwrap_or(1);
        for partition in 0..partitions {
            wanted.insert((hook.id, partition), hook.clone());
        }
    }
    Ok(wanted)
}

async fn deliver_partition(
    webhooks: Webhooks,
    hook: Webhook,
    partition: u32,
    stop: CancellationToken,
) {
    let key = (hook.id, partition);
    let labels = [
        ("webhook", hook.id.to_string()),
        ("topic", hook.topic.clone()),
        ("partition", partition.to_string()),
    ];
    let lag = metrics::gauge!("citystream_webhook_lag_offsets", &labels);
    let client = webhooks.client().clone();
    let config = webhooks.inner.config.clone();
    set_state(&webhooks, key, DeliveryState::Delivering, None);
    let Some(mut position) = retry_until_stopped(&webhooks, key, &stop, || {
        webhooks.committed_one(&hook, partition)
    })
    .await
    else {
        return;
    };
    let mut committed_at = Instant::now();
    loop {
        let read = tokio::select! {
            () = stop.cancelled() => return,
            read = client.read_partition(&hook.topic, partition, position, READ_BYTES, config.read_wait_ms) => read,
        };
        let read = match read {
            Ok(read) => read,
            Err(error) if error.code() == Some(ErrorCode::OFFSET_OUT_OF_RANGE) => {
                // Retention removed records before they were delivered.
                let admin = client.admin();
                match admin
                    .list_offsets(&hook.topic, partition, OffsetSpec::Earliest)
                    .await
                {
                    Ok(earliest) if earliest > position => {
                        tracing::warn!(webhook = hook.id, topic = %hook.topic, partition, from = position, to = earliest, "webhook skips records removed by retention before delivery");
                        position = earliest;
                    }
                    _ => pause(&webhooks, key, &stop, error.to_string()).await,
                }
                continue;
            }
            Err(error) => {
                pause(&webhooks, key, &stop, error.to_string()).await;
                continue;
            }
        };
        set_state(&webhooks, key, DeliveryState::Delivering, None);
        for record in &read.records {
            let wanted = hook
                .key_filter
                .as_deref()
                .is_none_or(|filter| key_matches(filter, record.key.as_deref()));
            if wanted && !post_until_delivered(&webhooks, &hook, record, &stop).await {
                return;
            }
            // A long batch to a slow receiver commits as it goes, so a
            // takeover re-sends at most about COMMIT_EVERY of it.
            if committed_at.elapsed() >= COMMIT_EVERY {
                position = record.offset + 1;
                if !commit(&webhooks, &hook, partition, position, &stop).await {
                    return;
                }
                committed_at = Instant::now();
            }
        }
        lag.set(read.high_watermark.saturating_sub(read.next_offset) as f64);
        if read.next_offset <= position {
            continue;
        }
        position = read.next_offset;
        if !commit(&webhooks, &hook, partition, position, &stop).await {
            return;
        }
        committed_at = Instant::now();
    }
}

/// Commits `position` as `hook`'s for `partition`, retrying until it is
/// (`true`) or `stop` (`false`).
async fn commit(
    webhooks: &Webhooks,
    hook: &Webhook,
    partition: u32,
    position: u64,
    stop: &CancellationToken,
) -> bool {
    let key = (hook.id, partition);
    retry_until_stopped(webhooks, key, stop, || async {
        let tp = TopicPartition {
            topic: hook.topic.clone(),
            partition,
        };
        webhooks
            .client()
            .admin()
            .commit_offsets(&hook.group(), vec![(tp, position)])
            .await
            .map_err(crate::HttpError::from)
    })
    .await
    .is_some()
}

async fn post_until_delivered(
    webhooks: &Webhooks,
    hook: &Webhook,
    record: &ConsumerRecord,
    stop: &CancellationToken,
) -> bool {
    let config = &webhooks.inner.config;
    let key = (hook.id, record.partition);
    let id = hook.id.to_string();
    let mut backoff = config.backoff_min;
    loop {
        let outcome = tokio::select! {
            () = stop.cancelled() => return false,
            outcome = post(webhooks, hook, record) => outcome,
        };
        match outcome {
            Ok(()) => {
                metrics::counter!("citystream_webhook_deliveries_total", "webhook" => id, "outcome" => "delivered").increment(1);
                let mut status = webhooks.inner.status.lock();
                let state = status.entry(key).or_insert_with(fresh_status);
                state.state = DeliveryState::Delivering;
                state.delivered += 1;
                state.attempts = 0;
                state.last_delivered_ms = Some(now_ms());
                return true;
            }
            Err(error) => {
                metrics::counter!("citystream_webhook_deliveries_total", "webhook" => id.clone(), "outcome" => "failed").increment(1);
                tracing::debug!(webhook = hook.id, offset = record.offset, %error, "webhook POST failed; retrying");
                {
                    let mut status = webhooks.inner.status.lock();
                    let state = status.entry(key).or_insert_with(fresh_status);
                    state.state = DeliveryState::Retrying;
                    state.attempts += 1;
                    state.last_error = Some(format!("offset {}: {error}", record.offset));
                }
                tokio::select! {
                    () = stop.cancelled() => return false,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(config.backoff_max);
            }
        }
    }
}

/// One POST of `record` to `hook`'s URL.
async fn post(webhooks: &Webhooks, hook: &Webhook, record: &ConsumerRecord) -> Result<(), String> {
    let mut headers = HeaderMap::new();
    let mut add = |name: &'static str, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    };
    add("x-citystream-topic", &record.topic);
    add("x-citystream-partition", &record.partition.to_string());
    add("x-citystream-offset", &record.offset.to_string());
    add("x-citystream-webhook", &hook.id.to_string());
    if let Some(key) = record
        .key
        .as_deref()
        .and_then(|key| std::str::from_utf8(key).ok())
    {
        add("x-citystream-key", key);
    }
    let body = match hook.body {
        super::BodyFormat::Record => {
            add("content-type", "application/json");
            reqwest::Body::from(record_json(record))
        }
        super::BodyFormat::Value => {
            let declared = record
                .headers
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case("content-type"))
                .and_then(|(_, value)| HeaderValue::from_bytes(value).ok());
            headers.insert(
                CONTENT_TYPE,
                declared.unwrap_or(HeaderValue::from_static("application/json")),
            );
            reqwest::Body::from(record.value.clone())
        }
    };
    let answer = webhooks
        .inner
        .http
        .post(&hook.url)
        .headers(headers)
        .body(body)
        .send()
        .await
        .map_err(|error| without_url(&error))?;
    match answer.status() {
        status if status.is_success() => Ok(()),
        status => Err(format!("the receiver answered {status}")),
    }
}

/// reqwest's error text, with its source chain (the URL is known).
fn without_url(error: &reqwest::Error) -> String {
    let mut text = match () {
        () if error.is_timeout() => "no answer in time".to_owned(),
        () if error.is_connect() => "cannot connect".to_owned(),
        () => "request failed".to_owned(),
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Runs `attempt` until it succeeds (`Some`) or `stop` (`None`), showing
/// each failure as the `waiting` state.
async fn retry_until_stopped<T, F, Fut>(
    webhooks: &Webhooks,
    key: Key,
    stop: &CancellationToken,
    mut attempt: F,
) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, crate::HttpError>>,
{
    loop {
        let outcome = tokio::select! {
            () = stop.cancelled() => return None,
            outcome = attempt() => outcome,
        };
        match outcome {
            Ok(value) => return Some(value),
            Err(error) => pause(webhooks, key, stop, error.message).await,
        }
    }
}

/// Shows `error` as the `waiting` state and sleeps [`RETRY_PAUSE`].
async fn pause(webhooks: &Webhooks, key: Key, stop: &CancellationToken, error: String) {
    set_state(webhooks, key, DeliveryState::Waiting, Some(error));
    tokio::select! {
        () = stop.cancelled() => {}
        () = tokio::time::sleep(RETRY_PAUSE) => {}
    }
}

fn set_state(webhooks: &Webhooks, key: Key, state: DeliveryState, error: Option<String>) {
    let mut status = webhooks.inner.status.lock();
    let entry = status.entry(key).or_insert_with(fresh_status);
    if entry.state == DeliveryState::Retrying && state == DeliveryState::Delivering {
        return; // only a delivered record ends a retry
    }
    entry.state = state;
    if error.is_some() {
        entry.last_error = error;
    }
}

fn fresh_status() -> DeliveryStatus {
    DeliveryStatus {
        state: DeliveryState::Delivering,
        delivered: 0,
        attempts: 0,
        last_error: None,
        last_delivered_ms: None,
    }
}

impl Webhooks {
    /// Where delivery of `hook`'s `partition` continues.
    async fn committed_one(&self, hook: &Webhook, partition: u32) -> Result<u64, crate::HttpError> {
        let tp = TopicPartition {
            topic: hook.topic.clone(),
            partition,
        };
        let committed = self
            .inner
            .client
            .admin()
            .committed_offsets(&hook.group(), vec![tp])
            .await?;
        Ok(committed
            .first()
            .and_then(|(_, offset)| *offset)
            .unwrap_or_else(|| hook.start_of(partition)))
    }
}
