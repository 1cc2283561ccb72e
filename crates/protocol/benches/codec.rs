//! Encode + decode cost of the two frames that carry data: a Produce request
//! with a 64 KiB batch and a Fetch response with 1 MiB of records. Decoding
//! slices the payload out of the frame (zero-copy); encoding copies it once
//! into the output buffer.

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use citystream_protocol::*;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const PRODUCE_BATCH_BYTES: usize = 64 * 1024;
const FETCH_RECORDS_BYTES: usize = 1024 * 1024;

fn produce_frame() -> RequestFrame {
    RequestFrame {
        request_id: 1,
        api_version: PROTOCOL_VERSION,
        request: Request::Produce(ProduceRequest {
            acks: Acks::Leader,
            timeout_ms: 5_000,
            partitions: vec![ProducePartition {
                topic: "city.air".to_owned(),
                partition: 3,
                batch: Bytes::from(vec![0xab; PRODUCE_BATCH_BYTES]),
            }],
        }),
    }
}

fn fetch_frame() -> ResponseFrame {
    ResponseFrame {
        request_id: 2,
        api_key: ApiKey::Fetch,
        response: Ok(Response::Fetch(FetchResponse {
            partitions: vec![FetchPartitionResponse {
                topic: "city.air".to_owned(),
                partition: 3,
                status: PartitionStatus::ok(),
                high_watermark: 1_000_000,
                log_start_offset: 0,
                records: Bytes::from(vec![0xcd; FETCH_RECORDS_BYTES]),
            }],
        })),
    }
}

fn produce_request(c: &mut Criterion) {
    let frame = produce_frame();
    let mut out = BytesMut::with_capacity(PRODUCE_BATCH_BYTES + 1024);
    encode_request(&frame, &mut out);
    let encoded = out.split().freeze();
    let mut group = c.benchmark_group("produce_request_64KiB");
    group.throughput(Throughput::Bytes(encoded.len() as u64));
    group.bench_function("encode", |b| {
        b.iter(|| {
            encode_request(black_box(&frame), &mut out);
            black_box(out.split());
        })
    });
    group.bench_function("decode", |b| {
        b.iter(|| decode_request(black_box(encoded.slice(LENGTH_PREFIX_BYTES..))).unwrap())
    });
    group.finish();
}

fn fetch_response(c: &mut Criterion) {
    let frame = fetch_frame();
    let mut out = BytesMut::with_capacity(FETCH_RECORDS_BYTES + 1024);
    encode_response(&frame, &mut out);
    let encoded = out.split().freeze();
    let mut group = c.benchmark_group("fetch_response_1MiB");
    group.throughput(Throughput::Bytes(encoded.len() as u64));
    group.bench_function("encode", |b| {
        b.iter(|| {
            encode_response(black_box(&frame), &mut out);
            black_box(out.split());
        })
    });
    group.bench_function("decode", |b| {
        b.iter(|| decode_response(black_box(encoded.slice(LENGTH_PREFIX_BYTES..))).unwrap())
    });
    group.finish();
}

criterion_group!(benches, produce_request, fetch_response);
criterion_main!(benches);
