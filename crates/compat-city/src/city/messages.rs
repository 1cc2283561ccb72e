//! Messages: publish (one record of the city topic's native topic,
//! partition 0, whose value is the posted object as compact ASCII JSON and
//! whose header `priority` is `high` or `low`; answered once a quorum has
//! it) and the logs (the last [`LOGS_MAX`] of them, read from the topic on
//! whichever node is asked).

use std::collections::VecDeque;

use bytes::Bytes;
use citystream_client::tail::{Fold, Tail, high_watermark};
use citystream_client::{ConsumerRecord, ErrorCode, ProducerRecord};
use citystream_protocol::OffsetSpec;

use super::{City, city_topic_config};
use crate::error::CityError;
use crate::names::native_topic;
use crate::request::Publish;

/// Messages `/logs` answers with, as the original kept.
pub const LOGS_MAX: usize = 1000;
/// Bytes of message values `/logs` holds at most: beyond, the oldest of
/// the last [`LOGS_MAX`] are left out (the broker takes records of up to
/// 1 MiB, so 1,000 could be 1 GiB).
const LOGS_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Reads back from the end that `/logs` makes at most to find
/// [`LOGS_MAX`] messages among offsets that hold none (Raft's blank and
/// membership entries take offsets in cluster mode).
const LOGS_WINDOWS_MAX: usize = 8;

impl City {
    /// Appends `message` to its city topic (created on first use).
    #[tracing::instrument(skip_all, fields(topic = %message.topic, object_bytes = message.object.len()))]
    pub async fn publish(&self, message: Publish) -> Result<(), CityError> {
        let native = native_topic(&message.topic).map_err(|e| CityError::refused(e.message()))?;
        self.ensure_topic(&native, city_topic_config()).await?;
        let priority = Bytes::from_static(message.priority.header_value().as_bytes());
        let record = ProducerRecord {
            partition: Some(0),
            headers: vec![("priority".to_owned(), priority)],
            ..ProducerRecord::new(native.clone(), message.object)
        };
        let written = self.write(record).await;
        if let Err(CityError::Broker(error)) = &written
            && error.code() == Some(ErrorCode::UNKNOWN_TOPIC)
        {
            self.forget_topic(&native);
        }
        written.map(|_| ())
    }

    /// The values of the last [`LOGS_MAX`] messages of city topic `topic`,
    /// oldest first; none for a topic that does not exist.
    pub async fn logs(&self, topic: &str) -> Result<Vec<Bytes>, CityError> {
        let Ok(native) = native_topic(topic) else {
            return Ok(Vec::new()); // a name that cannot be stored has no messages
        };
        let end = match high_watermark(&self.client, &native, 0).await {
            Err(error) if error.code() == Some(ErrorCode::UNKNOWN_TOPIC) => return Ok(Vec::new()),
            end => end?,
        };
        let admin = self.client.admin();
        let begin = admin.list_offsets(&native, 0, OffsetSpec::Earliest).await?;
        let mut found = VecDeque::new();
        let mut window_end = end;
        for _ in 0..LOGS_WINDOWS_MAX {
            let missing = (LOGS_MAX - found.len()) as u64;
            let window_begin = window_end.saturating_sub(missing).max(begin);
            if window_begin >= window_end {
                break;
            }
            let mut window = Tail::new(&native, 0, window_begin, Window::below(window_end));
            window.catch_up(&self.client, window_end).await?;
            let older = std::mem::take(&mut window.state_mut().values);
            found = older.into_iter().chain(found).collect();
            window_end = window_begin;
            let found_bytes: usize = found.iter().map(Bytes::len).sum();
            if found.len() >= LOGS_MAX || found_bytes >= LOGS_BYTES_MAX {
                break;
            }
        }
        Ok(trim_to_bytes(found, LOGS_BYTES_MAX))
    }
}

/// The values of the records below `end`, as read, the oldest dropped
/// beyond [`LOGS_BYTES_MAX`].
struct Window {
    end: u64,
    values: VecDeque<Bytes>,
    bytes: usize,
}

impl Window {
    fn below(end: u64) -> Window {
        Window {
            end,
            values: VecDeque::new(),
            bytes: 0,
        }
    }
}

impl Fold for Window {
    fn apply(&mut self, record: &ConsumerRecord) {
        if record.offset >= self.end {
            return;
        }
        self.values.push_back(record.value.clone());
        self.bytes += record.value.len();
        while self.bytes > LOGS_BYTES_MAX {
            let oldest = self
                .values
                .pop_front()
                .expect("a positive total has a value");
            self.bytes -= oldest.len();
        }
    }
}

/// The newest of `values` whose bytes add up to at most `bytes_max`.
fn trim_to_bytes(mut values: VecDeque<Bytes>, bytes_max: usize) -> Vec<Bytes> {
    let mut total: usize = values.iter().map(Bytes::len).sum();
    while total > bytes_max {
        let oldest = values.pop_front().expect("a positive total has a value");
        total -= oldest.len();
    }
    values.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The oldest values go first, until the rest fits.
    #[test]
    fn trimming_keeps_the_newest() {
        let values: VecDeque<Bytes> = ["aaaa", "bb", "cc"].into_iter().map(Bytes::from).collect();
        assert_eq!(
            trim_to_bytes(values.clone(), 8),
            values.iter().cloned().collect::<Vec<_>>()
        );
        assert_eq!(
            trim_to_bytes(values.clone(), 5),
            vec![Bytes::from("bb"), Bytes::from("cc")]
        );
        assert!(trim_to_bytes(values, 1).is_empty());
    }
}
