//! Wire layouts of the data-plane apis: Produce, Fetch and ListOffsets.
//! Each body is its fields in the listed order (see `docs/protocol.md`);
//! record batches travel as `bytes` and are sliced, not copied, on decode.

use crate::wire::wire_struct;
use crate::{
    FetchPartition, FetchPartitionResponse, FetchRequest, FetchResponse, ListOffsetsPartition,
    ListOffsetsPartitionResponse, ListOffsetsRequest, ListOffsetsResponse, ProducePartition,
    ProducePartitionResponse, ProduceRequest, ProduceResponse,
};

wire_struct!(ProduceRequest {
    acks,
    timeout_ms,
    partitions
});
wire_struct!(ProducePartition {
    topic,
    partition,
    batch
});
wire_struct!(ProduceResponse { partitions });
wire_struct!(ProducePartitionResponse {
    topic,
    partition,
    status,
    base_offset,
    log_start_offset,
});

wire_struct!(FetchRequest {
    max_wait_ms,
    min_bytes,
    max_bytes,
    partitions,
});
wire_struct!(FetchPartition {
    topic,
    partition,
    offset,
    max_bytes,
});
wire_struct!(FetchResponse { partitions });
wire_struct!(FetchPartitionResponse {
    topic,
    partition,
    status,
    high_watermark,
    log_start_offset,
    records,
});

wire_struct!(ListOffsetsRequest { partitions });
wire_struct!(ListOffsetsPartition {
    topic,
    partition,
    spec
});
wire_struct!(ListOffsetsResponse { partitions });
wire_struct!(ListOffsetsPartitionResponse {
    topic,
    partition,
    status,
    offset,
});
