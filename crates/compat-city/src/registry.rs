//! The SSE subscriptions as folded from their topic (pure). The original
//! kept, per topic, the URLs its SSE subscribers gave (so that unsubscribe
//! can answer "Not subscribed"); here they are records of the one-partition
//! topic [`SUBSCRIPTIONS_TOPIC`], kept forever, readable with
//! `citystream consume`:
//!
//! | record | meaning |
//! |---|---|
//! | `{"op":"subscribe","topic":T,"mode":"sse","url":U}` | (T, U) is subscribed (U may be `null`: none given) |
//! | `{"op":"unsubscribe","topic":T,"mode":"sse","url":U}` | (T, U) is not any more |
//!
//! Every node folds the same committed records in the same order and so
//! knows the same subscriptions. Webhook subscriptions are not here: they
//! are citystream webhooks, in the webhook registry. A record that is not
//! of this shape (written by something else) is skipped.

use std::collections::HashSet;

use citystream_client::ConsumerRecord;
use citystream_client::tail::Fold;
use serde::{Deserialize, Serialize};

/// The topic of the subscription records.
pub const SUBSCRIPTIONS_TOPIC: &str = "compat-city.subscriptions";

/// One subscription: city topic, mode and URL.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Subscriber {
    pub topic: String,
    pub mode: String,
    pub url: Option<String>,
}

/// One record of [`SUBSCRIPTIONS_TOPIC`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum SubscriptionRecord {
    Subscribe(Subscriber),
    Unsubscribe(Subscriber),
}

impl SubscriptionRecord {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("subscription records always serialize")
    }
}

/// Every current subscription.
#[derive(Debug, Default)]
pub struct Subscriptions {
    current: HashSet<Subscriber>,
}

impl Subscriptions {
    pub fn contains(&self, subscriber: &Subscriber) -> bool {
        self.current.contains(subscriber)
    }
}

impl Fold for Subscriptions {
    fn apply(&mut self, record: &ConsumerRecord) {
        match serde_json::from_slice::<SubscriptionRecord>(&record.value) {
            Ok(SubscriptionRecord::Subscribe(subscriber)) => {
                self.current.insert(subscriber);
            }
            Ok(SubscriptionRecord::Unsubscribe(subscriber)) => {
                self.current.remove(&subscriber);
            }
            Err(error) => {
                tracing::warn!(topic = %record.topic, offset = record.offset, %error, "skipping a record that is not a subscription");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn record(offset: u64, value: Vec<u8>) -> ConsumerRecord {
        ConsumerRecord {
            topic: SUBSCRIPTIONS_TOPIC.into(),
            partition: 0,
            offset,
            timestamp_ms: 0,
            hlc: 0,
            key: None,
            value: Bytes::from(value),
            headers: Vec::new(),
            tombstone: false,
        }
    }

    fn subscriber(topic: &str, url: Option<&str>) -> Subscriber {
        Subscriber {
            topic: topic.to_owned(),
            mode: "sse".to_owned(),
            url: url.map(str::to_owned),
        }
    }

    /// The records are the documented JSON.
    #[test]
    fn records_are_small_json_objects() {
        let record = SubscriptionRecord::Subscribe(subscriber("air", Some("http://h/x")));
        assert_eq!(
            record.encode(),
            br#"{"op":"subscribe","topic":"air","mode":"sse","url":"http://h/x"}"#
        );
        let record = SubscriptionRecord::Unsubscribe(subscriber("air", None));
        assert_eq!(
            record.encode(),
            br#"{"op":"unsubscribe","topic":"air","mode":"sse","url":null}"#
        );
    }

    /// Subscribes add, unsubscribes remove, per (topic, mode, URL); other
    /// records change nothing.
    #[test]
    fn the_fold_follows_the_records() {
        let mut subscriptions = Subscriptions::default();
        let a = subscriber("air", Some("u"));
        let b = subscriber("air", None);
        let subscribe = |s: &Subscriber| SubscriptionRecord::Subscribe(s.clone()).encode();
        let unsubscribe = |s: &Subscriber| SubscriptionRecord::Unsubscribe(s.clone()).encode();
        subscriptions.apply(&record(0, subscribe(&a)));
        subscriptions.apply(&record(1, subscribe(&b)));
        subscriptions.apply(&record(2, b"not json".to_vec()));
        subscriptions.apply(&record(3, unsubscribe(&a)));
        assert!(!subscriptions.contains(&a));
        assert!(subscriptions.contains(&b));
        assert!(!subscriptions.contains(&subscriber("water", None)));
    }
}
