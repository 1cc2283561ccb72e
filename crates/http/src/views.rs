//! JSON shapes of what the API returns, shared with the CLI (`consume
//! --format json` prints [`RecordView`]s): records, topics, groups, the
//! cluster. Keys and values that are valid UTF-8 are strings; others are
//! base64 with `key_encoding`/`value_encoding` set to `"base64"`. A
//! tombstone's value is `null`.

use std::collections::BTreeMap;

use base64::Engine as _;
use citystream_client::ConsumerRecord;
use citystream_protocol::{
    ClusterNode, ClusterPartition, ClusterStatusResponse, DescribeGroupResponse, GroupSummary,
    NodeState, TopicMetadata,
};
use serde::Serialize;
use utoipa::ToSchema;

use crate::topics::CleanupPolicy;

/// One record as read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct RecordView {
    pub topic: String,
    pub partition: u32,
    pub offset: u64,
    /// The producer's timestamp, milliseconds since the Unix epoch.
    pub timestamp: i64,
    /// The broker's hybrid logical clock for the record.
    pub hlc: u64,
    /// Physical part of `hlc`: milliseconds since the Unix epoch.
    pub hlc_ms: i64,
    pub key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_encoding: Option<&'static str>,
    /// `null` for a tombstone (it deletes `key` from a compacted topic).
    pub value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_encoding: Option<&'static str>,
    /// Header values as UTF-8 (lossy); a repeated name keeps its last value
    /// here, and all of them are in `header_list`.
    pub headers: BTreeMap<String, String>,
    /// Every header in order, present only when a name repeats (MQTT user
    /// properties may); otherwise `headers` holds them all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header_list: Option<Vec<HeaderView>>,
}

/// One header of a record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct HeaderView {
    pub name: String,
    /// UTF-8 (lossy).
    pub value: String,
}

impl RecordView {
    pub fn of(record: &ConsumerRecord) -> RecordView {
        let (key, key_encoding) = match &record.key {
            Some(key) => {
                let (text, encoding) = text_or_base64(key);
                (Some(text), encoding)
            }
            None => (None, None),
        };
        let (value, value_encoding) = match record.tombstone {
            true => (None, None),
            false => {
                let (text, encoding) = text_or_base64(&record.value);
                (Some(text), encoding)
            }
        };
        RecordView {
            topic: record.topic.to_string(),
            partition: record.partition,
            offset: record.offset,
            timestamp: record.timestamp_ms,
            hlc: record.hlc,
            hlc_ms: record.hlc_ms(),
            key,
            key_encoding,
            value,
            value_encoding,
            headers: record
                .headers
                .iter()
                .map(|(name, value)| {
                    (
                        name.to_string(),
                        String::from_utf8_lossy(value).into_owned(),
                    )
                })
                .collect(),
            header_list: header_list(&record.headers),
        }
    }
}

/// Every header in order, if a name repeats.
fn header_list(headers: &[(std::sync::Arc<str>, bytes::Bytes)]) -> Option<Vec<HeaderView>> {
    // Records carry a few headers: a scan, no allocation per record read.
    let repeats = (1..headers.len()).any(|i| {
        let name = &headers[i].0;
        headers[..i].iter().any(|(earlier, _)| earlier == name)
    });
    if !repeats {
        return None;
    }
    let list = headers.iter().map(|(name, value)| HeaderView {
        name: name.to_string(),
        value: String::from_utf8_lossy(value).into_owned(),
    });
    Some(list.collect())
}

/// The record as one line of JSON.
pub fn record_json(record: &ConsumerRecord) -> String {
    serde_json::to_string(&RecordView::of(record)).expect("a record always serializes")
}

/// The bytes as a string when they are UTF-8, else base64 and its marker.
fn text_or_base64(bytes: &[u8]) -> (String, Option<&'static str>) {
    match std::str::from_utf8(bytes) {
        Ok(text) => (text.to_owned(), None),
        Err(_) => (
            base64::engine::general_purpose::STANDARD.encode(bytes),
            Some("base64"),
        ),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TopicView {
    pub name: String,
    pub replication: u16,
    pub retention_ms: Option<u64>,
    pub retention_bytes: Option<u64>,
    pub cleanup: CleanupPolicy,
    /// `null`: the default (0).
    pub compaction_lag_ms: Option<u64>,
    /// `null`: the default (86400000).
    pub tombstone_retention_ms: Option<u64>,
    /// `null`: none, or 3600000 on a compacted topic.
    pub segment_roll_ms: Option<u64>,
    pub partitions: Vec<PartitionView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PartitionView {
    pub partition: u32,
    /// Node id of the leader (0: none known).
    pub leader: u32,
    pub replicas: Vec<u32>,
    pub log_start_offset: u64,
    pub high_watermark: u64,
}

impl TopicView {
    pub fn of(topic: &TopicMetadata) -> TopicView {
        TopicView {
            name: topic.name.clone(),
            replication: topic.config.replication,
            retention_ms: topic.config.retention_ms,
            retention_bytes: topic.config.retention_bytes,
            cleanup: topic.config.cleanup.into(),
            compaction_lag_ms: topic.config.compaction_lag_ms,
            tombstone_retention_ms: topic.config.tombstone_retention_ms,
            segment_roll_ms: topic.config.segment_roll_ms,
            partitions: topic
                .partitions
                .iter()
                .map(|p| PartitionView {
                    partition: p.partition,
                    leader: p.leader,
                    replicas: p.replicas.clone(),
                    log_start_offset: p.log_start_offset,
                    high_watermark: p.high_watermark,
                })
                .collect(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GroupSummaryView {
    pub group: String,
    /// `Empty`, `Rebalancing` or `Stable`.
    pub state: String,
    pub generation: u32,
    pub member_count: u32,
}

impl GroupSummaryView {
    pub fn of(summary: &GroupSummary) -> GroupSummaryView {
        GroupSummaryView {
            group: summary.group.clone(),
            state: summary.state.clone(),
            generation: summary.generation,
            member_count: summary.member_count,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GroupView {
    #[serde(flatten)]
    pub summary: GroupSummaryView,
    pub members: Vec<GroupMemberView>,
    pub offsets: Vec<GroupOffsetView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GroupMemberView {
    pub member_id: String,
    pub client_id: String,
    /// `topic/partition` of each partition the member owns.
    pub assignment: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GroupOffsetView {
    pub topic: String,
    pub partition: u32,
    /// The offset of the next record the group will read.
    pub committed: u64,
    pub high_watermark: u64,
    /// Records the group has not read yet.
    pub lag: u64,
}

impl GroupView {
    pub fn of(group: &DescribeGroupResponse) -> GroupView {
        GroupView {
            summary: GroupSummaryView::of(&group.summary),
            members: group
                .members
                .iter()
                .map(|m| GroupMemberView {
                    member_id: m.member_id.clone(),
                    client_id: m.client_id.clone(),
                    assignment: m
                        .assignment
                        .iter()
                        .map(|tp| format!("{}/{}", tp.topic, tp.partition))
                        .collect(),
                })
                .collect(),
            offsets: group
                .offsets
                .iter()
                .map(|o| GroupOffsetView {
                    topic: o.topic.clone(),
                    partition: o.partition,
                    committed: o.committed,
                    high_watermark: o.high_watermark,
                    lag: o.high_watermark.saturating_sub(o.committed),
                })
                .collect(),
        }
    }
}

/// The cluster as the answering node sees it (as `citystream cluster status --json`).
#[derive(Debug, Serialize, ToSchema)]
pub struct ClusterView {
    pub cluster_id: String,
    pub node_id: u32,
    pub metadata_leader: Option<u32>,
    pub metadata_term: u64,
    pub nodes: Vec<NodeView>,
    pub partitions: Vec<ClusterPartitionView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NodeView {
    pub node_id: u32,
    /// `alive`, `suspect` or `dead`.
    pub state: &'static str,
    /// Listener name (`native`, `http`, ...) to address.
    pub addresses: BTreeMap<String, String>,
    pub partitions_led: u32,
    pub bytes_in_per_s: u64,
    pub bytes_out_per_s: u64,
    /// CPU use in thousandths of one core.
    pub cpu_permille: u32,
    /// Start time of this run of the node (ms since the Unix epoch).
    pub generation: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ClusterPartitionView {
    pub topic: String,
    pub partition: u32,
    pub leader: u32,
    pub replicas: Vec<u32>,
    pub commit_index: u64,
    pub log_end: u64,
    pub lag: u64,
    pub quiet: bool,
}

impl ClusterView {
    pub fn of(status: &ClusterStatusResponse) -> ClusterView {
        ClusterView {
            cluster_id: status.cluster_id.clone(),
            node_id: status.node_id,
            metadata_leader: status.metadata_leader,
            metadata_term: status.metadata_term,
            nodes: status.nodes.iter().map(NodeView::of).collect(),
            partitions: status
                .partitions
                .iter()
                .map(ClusterPartitionView::of)
                .collect(),
        }
    }
}

impl NodeView {
    fn of(node: &ClusterNode) -> NodeView {
        NodeView {
            node_id: node.node_id,
            state: state_name(node.state),
            addresses: node
                .addresses
                .iter()
                .map(|l| (l.name.clone(), l.address.clone()))
                .collect(),
            partitions_led: node.partitions_led,
            bytes_in_per_s: node.bytes_in_per_s,
            bytes_out_per_s: node.bytes_out_per_s,
            cpu_permille: node.cpu_permille,
            generation: node.generation,
        }
    }
}

impl ClusterPartitionView {
    fn of(partition: &ClusterPartition) -> ClusterPartitionView {
        ClusterPartitionView {
            topic: partition.topic.clone(),
            partition: partition.partition,
            leader: partition.leader,
            replicas: partition.replicas.clone(),
            commit_index: partition.commit_index,
            log_end: partition.log_end,
            lag: partition.lag,
            quiet: partition.quiet,
        }
    }
}

pub fn state_name(state: NodeState) -> &'static str {
    match state {
        NodeState::Alive => "alive",
        NodeState::Suspect => "suspect",
        NodeState::Dead => "dead",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn record(key: &[u8], value: &[u8]) -> ConsumerRecord {
        ConsumerRecord {
            topic: "t".into(),
            partition: 1,
            offset: 7,
            timestamp_ms: 1_000,
            hlc: 0,
            key: Some(Bytes::copy_from_slice(key)),
            value: Bytes::copy_from_slice(value),
            headers: vec![("unit".into(), Bytes::from_static(b"ug/m3"))],
            tombstone: false,
        }
    }

    /// Text stays text; binary becomes base64 with its marker.
    #[test]
    fn binary_is_base64_and_text_is_text() {
        let text = RecordView::of(&record(b"k", b"hello"));
        assert_eq!(
            (text.value.as_deref(), text.value_encoding),
            (Some("hello"), None)
        );
        let binary = RecordView::of(&record(&[0xff], &[0, 0xfe, 0xff]));
        assert_eq!(binary.key.as_deref(), Some("/w=="));
        assert_eq!(binary.key_encoding, Some("base64"));
        assert_eq!(
            (binary.value.as_deref(), binary.value_encoding),
            (Some("AP7/"), Some("base64"))
        );
        let json: serde_json::Value =
            serde_json::from_str(&record_json(&record(b"k", b"v"))).unwrap();
        assert_eq!(json["headers"]["unit"], "ug/m3");
        assert!(json.get("value_encoding").is_none());
    }

    /// A tombstone's value is JSON null; an empty value stays "".
    #[test]
    fn tombstone_value_is_null() {
        let tombstone = ConsumerRecord {
            tombstone: true,
            ..record(b"k", b"")
        };
        let json: serde_json::Value = serde_json::from_str(&record_json(&tombstone)).unwrap();
        assert!(json["value"].is_null(), "{json}");
        assert!(json.get("value_encoding").is_none());
        let empty: serde_json::Value =
            serde_json::from_str(&record_json(&record(b"k", b""))).unwrap();
        assert_eq!(empty["value"], "");
    }
}
