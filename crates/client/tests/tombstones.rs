//! Tombstones through the client on a single broker (decision 0017 §4):
//! `ProducerRecord::tombstone` sends a null value to a compacted topic, the
//! consumer reads it back with `tombstone` set and an empty value, and the
//! refusals (a delete topic, a tombstone without a key) are clear.

mod common;

use citystream_client::{
    Cleanup, ClientError, ConsumerConfig, ErrorCode, ProducerRecord, StartPosition, TopicConfig,
};
use common::{TestServer, bounded, consume, producer};

fn earliest(topic: &str) -> ConsumerConfig {
    ConsumerConfig {
        start: StartPosition::Earliest,
        ..ConsumerConfig::new(topic)
    }
}

/// A value and then a tombstone for its key come back in order; the second
/// is a tombstone with an empty value, the first is not.
#[tokio::test]
async fn value_then_tombstone_round_trip() {
    bounded(async {
        let server = TestServer::start().await;
        let client = server.client().await;
        let compacted = TopicConfig {
            cleanup: Cleanup::Compact,
            ..TopicConfig::default()
        };
        let created = client
            .admin()
            .create_topic("retained", 1, compacted)
            .await
            .unwrap();
        assert_eq!(created.config.cleanup, Cleanup::Compact);
        let producer = producer(&client);
        let value = ProducerRecord::new("retained", "on").with_key("lamp");
        let first = producer.send(value).await.unwrap();
        let second = producer
            .send(ProducerRecord::tombstone("retained", "lamp"))
            .await
            .unwrap();
        assert_eq!(first.await.unwrap().offset, 0);
        assert_eq!(second.await.unwrap().offset, 1);

        let mut consumer = client.consumer(earliest("retained")).await.unwrap();
        let records = consume(&mut consumer, 2).await;
        assert_eq!(records[0].value, "on");
        assert!(!records[0].tombstone);
        assert!(records[1].tombstone);
        assert!(records[1].value.is_empty());
        assert_eq!(records[1].key.as_deref(), Some(&b"lamp"[..]));
    })
    .await;
}

/// A tombstone to a delete topic is refused by the broker, and one without
/// a key is refused before it is queued.
#[tokio::test]
async fn tombstone_refusals() {
    bounded(async {
        let server = TestServer::start().await;
        let client = server.client_with_topic("plain", 1).await;
        let producer = producer(&client);
        let delivery = producer
            .send(ProducerRecord::tombstone("plain", "lamp"))
            .await
            .unwrap();
        let error = delivery.await.unwrap_err();
        assert_eq!(error.code(), Some(ErrorCode::INVALID_REQUEST), "{error}");
        assert!(
            error
                .to_string()
                .contains("null values (tombstones) need a compacted topic"),
            "{error}"
        );
        let keyless = ProducerRecord {
            key: None,
            ..ProducerRecord::tombstone("plain", "")
        };
        let Err(error) = producer.send(keyless).await else {
            panic!("a keyless tombstone was queued");
        };
        assert!(matches!(error, ClientError::InvalidArgument(_)), "{error}");
        assert!(
            error.to_string().contains("a tombstone needs a key"),
            "{error}"
        );
    })
    .await;
}
