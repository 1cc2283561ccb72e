//! Wire layouts of the handshake and the cluster/topic admin apis: Hello,
//! Metadata, CreateTopic, DeleteTopic and InitProducer. Each body is its
//! fields in the listed order (see `docs/protocol.md`).

use crate::wire::wire_struct;
use crate::{
    CreateTopicRequest, CreateTopicResponse, DeleteTopicRequest, DeleteTopicResponse, HelloRequest,
    HelloResponse, InitProducerRequest, InitProducerResponse, MetadataRequest, MetadataResponse,
    PartitionMetadata, TopicMetadata,
};

// Hello's layout is frozen forever: it is how two builds of different
// versions find out which version to speak.
wire_struct!(HelloRequest {
    version_min,
    version_max,
    client_id,
});
wire_struct!(HelloResponse {
    version,
    node_id,
    cluster_id,
    frame_bytes_max,
    record_bytes_max,
});

wire_struct!(MetadataRequest { topics });
wire_struct!(MetadataResponse {
    cluster_id,
    controller_id,
    brokers,
    topics,
});
wire_struct!(TopicMetadata {
    name,
    status,
    config,
    partitions,
});
wire_struct!(PartitionMetadata {
    partition,
    leader,
    replicas,
    log_start_offset,
    high_watermark,
});

wire_struct!(CreateTopicRequest {
    name,
    partitions,
    config
});
wire_struct!(CreateTopicResponse { topic });
wire_struct!(DeleteTopicRequest { name });
wire_struct!(DeleteTopicResponse {});

wire_struct!(InitProducerRequest {});
wire_struct!(InitProducerResponse { producer_id });
