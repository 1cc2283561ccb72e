//! Producers: register (creating the topic if needed) and produce. A
//! message is one record of the topic's native topic, partition 0, whose
//! value is the message's JSON text; produce answers once a quorum has it.

use super::{PRODUCERS_TOPIC, Queue, lost_record};
use crate::error::QueueError;
use crate::params::RequestedId;
use crate::registry::{ProducerRegistration, encode};

/// Bytes a record adds to its key and value in a batch (the broker's
/// record limit counts them).
const RECORD_OVERHEAD_BYTES: usize = 32;

impl Queue {
    /// Registers a producer of `topic` (created if missing); returns its id.
    #[tracing::instrument(skip(self))]
    pub async fn register_producer(&self, topic: &str) -> Result<u64, QueueError> {
        let entry = self.find_or_create_topic(topic).await?;
        self.native_topic(entry).await?;
        let registration = encode(&ProducerRegistration {
            topic: topic.to_owned(),
        });
        let id = self
            .append(&self.producers, registration, |producers, offset| {
                producers.id_at(offset).ok_or(offset)
            })
            .await?;
        id.map_err(|offset| lost_record(PRODUCERS_TOPIC, offset))
    }

    /// Appends `message` (JSON text) to `topic` for `producer`.
    #[tracing::instrument(skip(self, message), fields(message_bytes = message.len()))]
    pub async fn produce(
        &self,
        topic: &str,
        producer: RequestedId,
        message: String,
    ) -> Result<(), QueueError> {
        let registered = match producer.known() {
            Some(id) => {
                let found = |producers: &super::Registrations<ProducerRegistration>| {
                    producers.get(id).map(|p| p.topic.clone())
                };
                self.lookup(&self.producers, found).await?
            }
            None => None,
        };
        let Some(registered) = registered else {
            return Err(QueueError::refused(format!(
                "Producer:{producer} does not exist"
            )));
        };
        let Some(entry) = self.find_topic(topic).await? else {
            return Err(QueueError::refused(format!("Topic:{topic} does not exist")));
        };
        if registered != topic {
            return Err(QueueError::refused(format!(
                "Producer:{producer} is not registered with Topic:{topic}"
            )));
        }
        let (_, record_bytes_max) = self.client.broker_limits().await?;
        if message.len() + RECORD_OVERHEAD_BYTES > record_bytes_max as usize {
            return Err(QueueError::Malformed);
        }
        let native = self.native_topic(entry).await?;
        self.write(&native, 0, message.into_bytes()).await?;
        Ok(())
    }
}
