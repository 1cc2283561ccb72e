//! Helpers shared by the broker's integration tests: brokers in memory or on
//! a temp dir, batch builders, and decoding fetched records.
#![allow(dead_code)]

use std::path::Path;

use bytes::Bytes;
use citystream_broker::{Broker, BrokerConfig, TopicInfo};
use citystream_record::{BatchBuilder, BatchIter};

pub fn memory_broker() -> Broker {
    Broker::open(BrokerConfig::default(), 0).unwrap()
}

pub fn disk_config(dir: &Path) -> BrokerConfig {
    BrokerConfig {
        data_dir: Some(dir.to_owned()),
        ..BrokerConfig::default()
    }
}

/// A keyed batch of `values`, timestamps starting at `timestamp_ms`.
pub fn batch_at(timestamp_ms: i64, values: &[&str]) -> Bytes {
    let mut builder = BatchBuilder::new();
    for (i, value) in values.iter().enumerate() {
        let key = format!("k{i}");
        builder
            .push(
                timestamp_ms + i as i64,
                Some(key.as_bytes()),
                value.as_bytes(),
                &[],
            )
            .unwrap();
    }
    builder.finish()
}

pub fn batch(values: &[&str]) -> Bytes {
    batch_at(1_000, values)
}

/// A batch of an idempotent producer.
pub fn idempotent_batch(producer_id: u64, base_sequence: u32, values: &[&str]) -> Bytes {
    let mut builder = BatchBuilder::new();
    builder.set_producer(producer_id, base_sequence);
    for value in values {
        builder.push(1_000, None, value.as_bytes(), &[]).unwrap();
    }
    builder.finish()
}

/// `(offset, value)` of every record at or after `from` in fetched bytes.
pub fn records_from(bytes: &Bytes, from: u64) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    for batch in BatchIter::new(bytes.clone()) {
        for record in batch.unwrap().records() {
            if record.offset >= from {
                out.push((
                    record.offset,
                    String::from_utf8(record.value.expect("test records have values").to_vec())
                        .unwrap(),
                ));
            }
        }
    }
    out
}

/// Everything readable in a partition, from its start.
pub fn read_all(broker: &Broker, topic: &str, partition: u32) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    let mut offset = broker
        .list_offset(topic, partition, citystream_broker::OffsetQuery::Earliest)
        .unwrap();
    loop {
        let fetched = broker.fetch(topic, partition, offset, 1 << 20).unwrap();
        let records = records_from(&fetched.records, offset);
        let Some(last) = records.last() else { break };
        offset = last.0 + 1;
        out.extend(records);
    }
    out
}

/// (next offset, size in bytes) of one partition, to prove nothing was written.
pub fn log_state(broker: &Broker, topic: &str, partition: u32) -> (u64, u64) {
    let info: TopicInfo = broker.describe_topic(topic).unwrap();
    let p = &info.partitions[partition as usize];
    (p.high_watermark, p.size_bytes)
}
