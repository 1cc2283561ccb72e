//! A session's subscriptions and how a message matches them. Pure.
//!
//! Overlapping subscriptions of one client give one copy of a message, at
//! the highest QoS any matching subscription granted, carrying every
//! matching subscription identifier [MQTT-3.3.4-2, 3.3.4-3, 3.3.4-5].

use citystream_mqtt_codec::{QoS, SubscriptionOptions, topic_matches};

use crate::message::Stored;

/// One subscription: a (non-shared) filter, its options and identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub filter: String,
    pub options: SubscriptionOptions,
    pub identifier: Option<u32>,
}

/// How a message is delivered to a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    /// The lower of the publish QoS and the highest granted QoS.
    pub qos: QoS,
    pub identifiers: Vec<u32>,
    /// Whether the RETAIN flag is kept as published (Retain As Published).
    pub retain_as_published: bool,
}

/// The subscriptions of one session, at most one per filter.
#[derive(Debug, Clone, Default)]
pub struct Subscriptions {
    list: Vec<Subscription>,
}

impl Subscriptions {
    /// Adds `subscription`, replacing one with the same filter [MQTT-3.8.4-3];
    /// true if it is new.
    pub fn insert(&mut self, subscription: Subscription) -> bool {
        match self
            .list
            .iter_mut()
            .find(|s| s.filter == subscription.filter)
        {
            Some(existing) => {
                *existing = subscription;
                false
            }
            None => {
                self.list.push(subscription);
                true
            }
        }
    }

    /// Removes the subscription to `filter`; true if there was one.
    pub fn remove(&mut self, filter: &str) -> bool {
        let before = self.list.len();
        self.list.retain(|s| s.filter != filter);
        self.list.len() != before
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Subscription> {
        self.list.iter()
    }

    /// How `message` reaches this session (whose client id is `own_id`), or
    /// `None` if no subscription takes it.
    pub fn matching(&self, message: &Stored, own_id: &[u8]) -> Option<Match> {
        let mut found: Option<Match> = None;
        let own = message.from.as_deref() == Some(own_id);
        for subscription in &self.list {
            if (own && subscription.options.no_local)
                || !topic_matches(&subscription.filter, &message.topic)
            {
                continue;
            }
            let entry = found.get_or_insert(Match {
                qos: QoS::AtMostOnce,
                identifiers: Vec::new(),
                retain_as_published: false,
            });
            entry.qos = entry.qos.max(subscription.options.qos);
            entry.identifiers.extend(subscription.identifier);
            entry.retain_as_published |= subscription.options.retain_as_published;
        }
        let mut found = found?;
        found.qos = found.qos.min(message.qos);
        Some(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use citystream_mqtt_codec::{ByteStr, RetainHandling};

    fn subscription(
        filter: &str,
        qos: QoS,
        identifier: Option<u32>,
        no_local: bool,
    ) -> Subscription {
        Subscription {
            filter: filter.to_owned(),
            options: SubscriptionOptions {
                qos,
                no_local,
                retain_as_published: false,
                retain_handling: RetainHandling::SendAtSubscribe,
            },
            identifier,
        }
    }

    fn message(topic: &'static str, qos: QoS, from: &'static [u8]) -> Stored {
        Stored {
            topic: ByteStr::from(topic),
            qos,
            retain: false,
            from: Some(Bytes::from_static(from)),
            expires_ms: None,
        }
    }

    /// Two overlapping subscriptions give one match at the higher granted
    /// QoS, capped by the publish QoS, with both identifiers.
    #[test]
    fn overlapping_subscriptions_give_one_copy() {
        let mut subscriptions = Subscriptions::default();
        subscriptions.insert(subscription("city/#", QoS::AtMostOnce, Some(1), false));
        subscriptions.insert(subscription("city/+/air", QoS::ExactlyOnce, Some(2), false));
        subscriptions.insert(subscription("home/#", QoS::AtLeastOnce, Some(3), false));
        let found = subscriptions
            .matching(&message("city/n/air", QoS::AtLeastOnce, b"other"), b"me")
            .unwrap();
        assert_eq!(found.qos, QoS::AtLeastOnce);
        assert_eq!(found.identifiers, [1, 2]);
        assert!(
            subscriptions
                .matching(&message("town/x", QoS::ExactlyOnce, b"o"), b"me")
                .is_none()
        );
    }

    /// No Local drops the session's own messages for that subscription only.
    #[test]
    fn no_local_skips_own_messages() {
        let mut subscriptions = Subscriptions::default();
        subscriptions.insert(subscription("a/#", QoS::AtLeastOnce, Some(1), true));
        assert!(
            subscriptions
                .matching(&message("a/b", QoS::AtLeastOnce, b"me"), b"me")
                .is_none()
        );
        subscriptions.insert(subscription("a/b", QoS::AtMostOnce, Some(2), false));
        let found = subscriptions
            .matching(&message("a/b", QoS::AtLeastOnce, b"me"), b"me")
            .unwrap();
        assert_eq!((found.qos, found.identifiers), (QoS::AtMostOnce, vec![2]));
    }

    /// Subscribing to a filter again replaces it; unsubscribing removes it.
    #[test]
    fn a_filter_is_subscribed_once() {
        let mut subscriptions = Subscriptions::default();
        assert!(subscriptions.insert(subscription("a", QoS::AtMostOnce, None, false)));
        assert!(!subscriptions.insert(subscription("a", QoS::ExactlyOnce, None, false)));
        assert_eq!(subscriptions.len(), 1);
        assert_eq!(
            subscriptions.iter().next().unwrap().options.qos,
            QoS::ExactlyOnce
        );
        assert!(subscriptions.remove("a"));
        assert!(!subscriptions.remove("a"));
    }
}
