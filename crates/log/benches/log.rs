//! Micro-benchmarks of the append and read paths with 100-byte records in
//! batches of 1000 (≈ 130 KB per batch), against the broker's targets of
//! 1M records/s appended and 2M records/s read through one log; and of one
//! compaction pass (decision 0017) over a keyed log.

use std::hint::black_box;

use citystream_log::{CompactionParams, FsyncPolicy, LogConfig, Offset, PartitionLog, Term};
use citystream_record::BatchBuilder;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

const RECORDS_PER_BATCH: u64 = 1000;
const VALUE_BYTES: usize = 100;
/// Batches preloaded for the read benchmarks (≈ 65 MB).
const READ_BATCHES: u64 = 500;
/// A consumer's fetch size.
const FETCH_BYTES: usize = 1 << 20;

fn config() -> LogConfig {
    LogConfig {
        fsync: FsyncPolicy::Never,
        ..LogConfig::default()
    }
}

fn batch() -> Vec<u8> {
    let mut builder = BatchBuilder::with_capacity(RECORDS_PER_BATCH as usize * (VALUE_BYTES + 30));
    let value = [7u8; VALUE_BYTES];
    for i in 0..RECORDS_PER_BATCH {
        builder
            .push(1_700_000_000_000 + i as i64, None, &value, &[])
            .unwrap();
    }
    builder.finish_vec()
}

fn bench_append(c: &mut Criterion) {
    let template = batch();
    let mut group = c.benchmark_group("append");
    group.throughput(Throughput::Elements(RECORDS_PER_BATCH));
    for (name, memory) in [("file", false), ("memory", true)] {
        let dir = tempfile::tempdir().unwrap();
        let mut log = if memory {
            PartitionLog::in_memory(config())
        } else {
            PartitionLog::open(dir.path(), config()).unwrap()
        };
        group.bench_function(name, |b| {
            b.iter_batched_ref(
                || template.clone(),
                |batch| log.append(batch, Term(1)).unwrap(),
                BatchSize::SmallInput,
            )
        });
        // The memory log grows without bound otherwise.
        log.purge_before(log.next_offset()).unwrap();
    }
    group.finish();
}

/// What the append path cannot avoid: one CRC pass and one copy of the batch.
fn bench_baseline(c: &mut Criterion) {
    let template = batch();
    let mut group = c.benchmark_group("baseline");
    group.throughput(Throughput::Elements(RECORDS_PER_BATCH));
    group.bench_function("crc32c", |b| {
        b.iter(|| citystream_record::crc32c(black_box(&template[40..])))
    });
    let mut sink = Vec::with_capacity(template.len());
    group.bench_function("copy", |b| {
        b.iter(|| {
            sink.clear();
            sink.extend_from_slice(black_box(&template));
        })
    });
    group.finish();
}

fn bench_read(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), config()).unwrap();
    for _ in 0..READ_BATCHES {
        log.append(&mut batch(), Term(1)).unwrap();
    }
    let end = log.next_offset().0;
    let mut group = c.benchmark_group("read");
    let per_fetch = (FETCH_BYTES / batch().len()).max(1) as u64 * RECORDS_PER_BATCH;
    group.throughput(Throughput::Elements(per_fetch));
    let mut from = 0;
    group.bench_function("sequential_1MiB", |b| {
        b.iter(|| {
            let result = log.read(Offset(from), FETCH_BYTES).unwrap();
            from = (from + per_fetch) % (end - per_fetch);
            black_box(result.bytes.len())
        })
    });
    let mut probe = 12_345u64;
    group.bench_function("random_1MiB", |b| {
        b.iter(|| {
            probe = probe
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let result = log
                .read(Offset((probe >> 11) % (end - per_fetch)), FETCH_BYTES)
                .unwrap();
            black_box(result.bytes.len())
        })
    });
    group.finish();
}

/// Batches of the compaction benchmark (≈ 16 MB of 100-byte values).
const COMPACT_BATCHES: u64 = 120;
/// Distinct keys the compaction benchmark's records update.
const COMPACT_KEYS: u64 = 10_000;

/// One pass over a 16 MB log of keyed records (10,000 keys, each updated
/// 12 times) on 1 MiB segments: every closed segment is read, mapped and
/// rewritten to the newest record per key. Throughput is input bytes.
fn bench_compact(c: &mut Criterion) {
    let config = LogConfig {
        segment_bytes_max: 1 << 20,
        compacted: true,
        ..config()
    };
    let value = [7u8; VALUE_BYTES];
    let batches: Vec<Vec<u8>> = (0..COMPACT_BATCHES)
        .map(|b| {
            let mut builder = BatchBuilder::with_capacity(RECORDS_PER_BATCH as usize * 140);
            for i in 0..RECORDS_PER_BATCH {
                let key = format!("key-{}", (b * RECORDS_PER_BATCH + i) % COMPACT_KEYS);
                builder
                    .push(1_700_000_000_000, Some(key.as_bytes()), &value, &[])
                    .unwrap();
            }
            builder.finish_vec()
        })
        .collect();
    let bytes: u64 = batches.iter().map(|b| b.len() as u64).sum();
    let params = CompactionParams {
        tombstone_retention_ms: 86_400_000,
        key_map_bytes_max: 32 << 20,
        dirty_ratio_min_percent: 0,
    };
    let mut group = c.benchmark_group("compact");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(bytes));
    group.bench_function("pass_16MB_10k_keys", |b| {
        b.iter_batched(
            || {
                let mut log = PartitionLog::in_memory(config.clone());
                for batch in &batches {
                    log.append(&mut batch.clone(), Term(1)).unwrap();
                }
                log
            },
            |mut log| {
                let summary = log.compact(log.next_offset(), &params).unwrap();
                assert!(summary.segments_rewritten > 0);
                log
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(
    benches,
    bench_baseline,
    bench_append,
    bench_read,
    bench_compact
);
criterion_main!(benches);
