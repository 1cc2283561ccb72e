//! Throughput of the produce path (validation, dedup check, append) for
//! batches of 1000 records of 100 bytes, in memory and on disk with the
//! interval fsync policy (no fsync inside the measured loop).

use bytes::Bytes;
use citystream_broker::{Broker, BrokerConfig, TopicSettings};
use citystream_record::BatchBuilder;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

const RECORDS_PER_BATCH: u32 = 1_000;
const VALUE_BYTES: usize = 100;

fn batch(producer: Option<(u64, u32)>) -> Bytes {
    let mut builder = BatchBuilder::with_capacity(RECORDS_PER_BATCH as usize * (VALUE_BYTES + 32));
    if let Some((id, sequence)) = producer {
        builder.set_producer(id, sequence);
    }
    let value = [b'x'; VALUE_BYTES];
    for i in 0..RECORDS_PER_BATCH {
        builder.push(i64::from(i), None, &value, &[]).unwrap();
    }
    builder.finish()
}

fn bench_produce(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let configs = [
        ("memory", BrokerConfig::default()),
        (
            "disk",
            BrokerConfig {
                data_dir: Some(dir.path().to_owned()),
                ..BrokerConfig::default()
            },
        ),
    ];
    let mut group = c.benchmark_group("produce");
    group.throughput(Throughput::Elements(u64::from(RECORDS_PER_BATCH)));
    for (name, config) in configs {
        let broker = Broker::open(config, 0).unwrap();
        broker
            .create_topic("bench", 1, TopicSettings::default())
            .unwrap();
        let template = batch(None);
        group.bench_function(format!("{name}/plain"), |b| {
            b.iter_batched(
                || Bytes::copy_from_slice(&template),
                |bytes| broker.produce("bench", 0, bytes, 0).unwrap(),
                BatchSize::SmallInput,
            )
        });
        let producer = broker.init_producer().unwrap();
        let mut sequence = 0u32;
        group.bench_function(format!("{name}/idempotent"), |b| {
            b.iter_batched(
                || {
                    let bytes = batch(Some((producer, sequence)));
                    sequence += RECORDS_PER_BATCH;
                    bytes
                },
                |bytes| broker.produce("bench", 0, bytes, 0).unwrap(),
                BatchSize::SmallInput,
            )
        });
        broker.close().unwrap();
    }
    group.finish();
}

criterion_group!(benches, bench_produce);
criterion_main!(benches);
