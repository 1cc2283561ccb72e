//! Creating a role's topics if they are missing: its output topic, and
//! its input topics too, so a subscriber started before the publishers
//! waits for readings instead of failing. Created as the publishers do:
//! 3 partitions, the broker's default replication and retention.

use citystream_client::{Client, ClientError, ErrorCode, TopicConfig};

use crate::contract::CITY_TOPIC_PARTITIONS;
use crate::role::Role;

pub(crate) async fn ensure_topics(client: &Client, role: Role) -> Result<(), ClientError> {
    for topic in role.inputs().iter().chain(role.output().iter()) {
        ensure_topic(client, topic).await?;
    }
    Ok(())
}

async fn ensure_topic(client: &Client, topic: &str) -> Result<(), ClientError> {
    if client.partition_count(topic).await?.is_some() {
        return Ok(());
    }
    // replication 0: the broker's default, min(3, brokers).
    let config = TopicConfig::default();
    let created = client
        .admin()
        .create_topic(topic, CITY_TOPIC_PARTITIONS, config)
        .await;
    match created {
        Ok(_) => tracing::info!(topic, partitions = CITY_TOPIC_PARTITIONS, "topic created"),
        // Another subscriber or a publisher created it meanwhile.
        Err(error) if error.code() == Some(ErrorCode::TOPIC_ALREADY_EXISTS) => {}
        Err(error) => return Err(error),
    }
    Ok(())
}
