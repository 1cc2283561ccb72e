//! Subscriptions in both modes, answered with the original's messages.
//!
//! - **SSE**: only recorded (the subscriber reads `/stream/<topic>`
//!   itself), as records of `compat-city.subscriptions` folded under this
//!   node's lock after catching up to the topic's high watermark, so every
//!   node answers "Not subscribed" alike.
//! - **Webhook**: a citystream webhook on the city topic's native topic,
//!   POSTing each message's value (the published object). One webhook per
//!   (topic, URL): a subscribe that finds one answers as if it made it, and
//!   two nodes subscribing one URL at once both keep the oldest webhook
//!   and delete the others, the same on both.

use citystream_client::tail::high_watermark;
use citystream_client::{ProducerRecord, tail::Tail};
use citystream_http::webhooks::{BodyFormat, Webhook, WebhookSpec, check_url};

use super::{City, city_topic_config};
use crate::error::CityError;
use crate::names::native_topic;
use crate::registry::{SUBSCRIPTIONS_TOPIC, Subscriber, SubscriptionRecord, Subscriptions};
use crate::request::{Mode, Subscription};

impl City {
    /// `POST /subscribe`: the message to answer with.
    #[tracing::instrument(skip(self))]
    pub async fn subscribe(&self, subscription: Subscription) -> Result<String, CityError> {
        let topic = subscription.topic.clone();
        match subscription.mode {
            Mode::Sse => {
                self.change_sse(SubscriptionRecord::Subscribe(sse_subscriber(subscription)))
                    .await?;
                Ok(format!("Subscribed to topic '{topic}' via SSE"))
            }
            Mode::Webhook => {
                let url = subscription.url.expect("a webhook subscription has a URL");
                self.subscribe_webhook(&topic, &url).await?;
                Ok(format!("Subscribed to topic '{topic}' (webhook)"))
            }
        }
    }

    /// `POST /unsubscribe`: the message to answer with.
    #[tracing::instrument(skip(self))]
    pub async fn unsubscribe(&self, subscription: Subscription) -> Result<String, CityError> {
        let topic = subscription.topic.clone();
        let url = subscription.url.clone();
        let (removed, mode) = match subscription.mode {
            Mode::Sse => {
                let record = SubscriptionRecord::Unsubscribe(sse_subscriber(subscription));
                (self.change_sse(record).await?, "SSE")
            }
            Mode::Webhook => {
                let url = url.as_deref().expect("a webhook subscription has a URL");
                (self.unsubscribe_webhook(&topic, url).await?, "webhook")
            }
        };
        // Python shows a missing URL as None.
        let url = url.as_deref().unwrap_or("None");
        Ok(match removed {
            true => format!("Unsubscribed from topic '{topic}' ({mode})"),
            false => format!("Not subscribed to '{topic}' with URL '{url}'"),
        })
    }

    /// Applies `change` unless the folded state already is what it asks
    /// for; true if it changed something.
    async fn change_sse(&self, change: SubscriptionRecord) -> Result<bool, CityError> {
        let fold = self.subscriptions().await?;
        let mut fold = fold.lock().await;
        let end = high_watermark(&self.client, SUBSCRIPTIONS_TOPIC, 0).await?;
        fold.catch_up(&self.client, end).await?;
        let needed = match &change {
            SubscriptionRecord::Subscribe(subscriber) => !fold.state().contains(subscriber),
            SubscriptionRecord::Unsubscribe(subscriber) => fold.state().contains(subscriber),
        };
        if needed {
            self.append_sse(&mut fold, &change).await?;
        }
        Ok(needed)
    }

    async fn append_sse(
        &self,
        fold: &mut Tail<Subscriptions>,
        change: &SubscriptionRecord,
    ) -> Result<(), CityError> {
        let record = ProducerRecord {
            partition: Some(0),
            ..ProducerRecord::new(SUBSCRIPTIONS_TOPIC, change.encode())
        };
        let written = self.write(record).await?;
        fold.catch_up(&self.client, written.offset + 1).await?;
        Ok(())
    }

    /// Makes sure one webhook POSTs `topic`'s messages to `url`.
    async fn subscribe_webhook(&self, topic: &str, url: &str) -> Result<(), CityError> {
        // Before anything is created: a URL the registry refuses must leave
        // no topic behind either.
        check_url(url).map_err(CityError::refused)?;
        let native = native_topic(topic).map_err(|e| CityError::refused(e.message()))?;
        self.ensure_topic(&native, city_topic_config()).await?;
        let _serialized = self.webhook_changes.lock().await;
        if self.city_webhooks(&native, url).await?.is_empty() {
            let spec = WebhookSpec {
                topic: native.clone(),
                url: url.to_owned(),
                key_filter: None,
                body: BodyFormat::Value,
                from_earliest: false,
            };
            let hook = self.webhooks.create(spec).await?;
            tracing::info!(webhook = hook.id, topic = %native, url, "webhook subscribed");
        }
        // Another node may have made one at the same time: keep the oldest.
        for duplicate in self.city_webhooks(&native, url).await?.iter().skip(1) {
            self.webhooks.delete(duplicate.id).await?;
        }
        Ok(())
    }

    /// Deletes every webhook POSTing `topic`'s messages to `url`; false if
    /// there was none.
    async fn unsubscribe_webhook(&self, topic: &str, url: &str) -> Result<bool, CityError> {
        let Ok(native) = native_topic(topic) else {
            return Ok(false); // a name that cannot be stored has no webhook
        };
        let _serialized = self.webhook_changes.lock().await;
        let hooks = self.city_webhooks(&native, url).await?;
        for hook in &hooks {
            self.webhooks.delete(hook.id).await?;
            tracing::info!(webhook = hook.id, topic = %native, url, "webhook unsubscribed");
        }
        Ok(!hooks.is_empty())
    }

    /// The webhooks of a city subscription of `native` to `url`, oldest first.
    async fn city_webhooks(&self, native: &str, url: &str) -> Result<Vec<Webhook>, CityError> {
        let mut hooks: Vec<Webhook> = self
            .webhooks
            .list()
            .await?
            .into_iter()
            .filter(|hook| {
                hook.topic == native
                    && hook.url == url
                    && hook.body == BodyFormat::Value
                    && hook.key_filter.is_none()
            })
            .collect();
        hooks.sort_by_key(|hook| hook.id);
        Ok(hooks)
    }
}

fn sse_subscriber(subscription: Subscription) -> Subscriber {
    Subscriber {
        topic: subscription.topic,
        mode: Mode::Sse.name().to_owned(),
        url: subscription.url,
    }
}
