//! What a node publishes about itself ([`NodeInfo`]) and its exact encoding as gossip
//! key-values (schema version 1). Pure: no sockets, clocks or tasks.
//!
//! Every value is a short UTF-8 string. The keys are stable; add new keys rather than
//! change the meaning of old ones, and bump [`SCHEMA_VERSION`] only for a change an older
//! reader would misread.
//!
//! | key                    | value                              | example                 |
//! |------------------------|------------------------------------|-------------------------|
//! | `schema_version`       | decimal, currently `1`             | `1`                     |
//! | `cluster_id`           | the cluster's id                   | `city-north`            |
//! | `node_id`              | decimal `u32`                      | `3`                     |
//! | `addr.<listener>`      | the address clients should dial    | `addr.native` = `127.0.0.2:9400` |
//! | `meta.leader`          | `<node_id>@<term>` or empty        | `1@7`                   |
//! | `leads`                | sorted `<group>@<term>` list, `,`  | `meta@7,t3/0@2`         |
//! | `load.partitions_led`  | decimal `u32`                      | `12`                    |
//! | `load.bytes_in_per_s`  | decimal `u64`                      | `1048576`               |
//! | `load.bytes_out_per_s` | decimal `u64`                      | `2097152`               |
//! | `load.cpu_permille`    | decimal `u32`, 0–1000 per core     | `250`                   |
//!
//! The generation (start time) is not a key: it is part of the gossip identity, so a
//! restarted node is a new gossip member. Decoding is forgiving with what only informs
//! (a malformed load or leadership value is skipped and reported) and strict with what
//! identifies (schema version, cluster id, node id).
//!
//! This module does not decide liveness (see `view`) and never trusts gossip for
//! correctness: leaderships and `meta.leader` are routing hints; Raft is the truth.

use std::collections::BTreeMap;
use std::fmt;

use crate::error::{DecodeError, MembershipError};

/// Version of the key schema this code writes and reads.
pub const SCHEMA_VERSION: u32 = 1;

pub const KEY_SCHEMA_VERSION: &str = "schema_version";
pub const KEY_CLUSTER_ID: &str = "cluster_id";
pub const KEY_NODE_ID: &str = "node_id";
/// Prefix of one key per listener: `addr.native`, `addr.http`, `addr.mqtt`, `addr.peer`.
pub const LISTENER_KEY_PREFIX: &str = "addr.";
pub const KEY_METADATA_LEADER: &str = "meta.leader";
pub const KEY_LEADS: &str = "leads";
pub const KEY_LOAD_PARTITIONS_LED: &str = "load.partitions_led";
pub const KEY_LOAD_BYTES_IN_PER_S: &str = "load.bytes_in_per_s";
pub const KEY_LOAD_BYTES_OUT_PER_S: &str = "load.bytes_out_per_s";
pub const KEY_LOAD_CPU_PERMILLE: &str = "load.cpu_permille";

/// Longest listener name (`native`, `http`, ...).
pub const LISTENER_NAME_BYTES_MAX: usize = 32;
/// Longest listener address string.
pub const LISTENER_ADDRESS_BYTES_MAX: usize = 256;
/// Longest group name in `leads`.
pub const GROUP_NAME_BYTES_MAX: usize = 128;
/// Longest cluster id.
pub const CLUSTER_ID_BYTES_MAX: usize = 128;
/// Largest single value: well under one gossip datagram (65,507 bytes), which must also
/// carry the digest of every node. About 2,000 leaderships of `tNNN/PP@TTTT`.
pub const VALUE_BYTES_MAX: usize = 32 * 1024;

/// A broker's id, unique in its cluster and never reused for another disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub u32);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Load figures a node publishes for placement and the console.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeLoad {
    pub partitions_led: u32,
    pub bytes_in_per_s: u64,
    pub bytes_out_per_s: u64,
    /// CPU use in thousandths of one core (may exceed 1000 on several cores).
    pub cpu_permille: u32,
}

/// Which node a member believes leads a Raft group, and in which term.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaderHint {
    pub node_id: NodeId,
    pub term: u64,
}

/// Everything a node publishes about itself by gossip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    pub node_id: NodeId,
    pub cluster_id: String,
    /// Start time (ms since the Unix epoch) of this run of the node; set by
    /// `Membership::start` from the configuration.
    pub generation: u64,
    /// Listener name (`native`, `http`, `mqtt`, `peer`) → address to dial.
    pub listeners: BTreeMap<String, String>,
    pub load: NodeLoad,
    /// Raft groups this node leads → the term of that leadership (hint only).
    pub leaderships: BTreeMap<String, u64>,
    /// The metadata group's leader as this node last saw it (hint only).
    pub metadata_leader: Option<LeaderHint>,
}

/// A decoded peer, with the optional values that were malformed and skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    pub info: NodeInfo,
    pub skipped: Vec<DecodeError>,
}

impl NodeInfo {
    /// A node with no listeners, no load and no leaderships.
    pub fn new(node_id: NodeId, cluster_id: impl Into<String>) -> NodeInfo {
        NodeInfo {
            node_id,
            cluster_id: cluster_id.into(),
            generation: 0,
            listeners: BTreeMap::new(),
            load: NodeLoad::default(),
            leaderships: BTreeMap::new(),
            metadata_leader: None,
        }
    }

    /// Adds a listener; a builder convenience.
    pub fn with_listener(mut self, name: &str, address: impl Into<String>) -> NodeInfo {
        self.listeners.insert(name.to_string(), address.into());
        self
    }

    /// The address of listener `name`, if published.
    pub fn listener(&self, name: &str) -> Option<&str> {
        self.listeners.get(name).map(String::as_str)
    }

    /// Encodes into the key schema, refusing names or values that it cannot carry.
    pub fn to_key_values(&self) -> Result<BTreeMap<String, String>, MembershipError> {
        validate_cluster_id(&self.cluster_id)?;
        let mut out = BTreeMap::new();
        out.insert(KEY_SCHEMA_VERSION.to_string(), SCHEMA_VERSION.to_string());
        out.insert(KEY_CLUSTER_ID.to_string(), self.cluster_id.clone());
        out.insert(KEY_NODE_ID.to_string(), self.node_id.0.to_string());
        for (name, address) in &self.listeners {
            validate_listener(name, address)?;
            out.insert(format!("{LISTENER_KEY_PREFIX}{name}"), address.clone());
        }
        let leader = self
            .metadata_leader
            .map(|hint| format!("{}@{}", hint.node_id, hint.term))
            .unwrap_or_default();
        out.insert(KEY_METADATA_LEADER.to_string(), leader);
        out.insert(KEY_LEADS.to_string(), encode_leads(&self.leaderships)?);
        let load = &self.load;
        out.insert(
            KEY_LOAD_PARTITIONS_LED.into(),
            load.partitions_led.to_string(),
        );
        out.insert(
            KEY_LOAD_BYTES_IN_PER_S.into(),
            load.bytes_in_per_s.to_string(),
        );
        out.insert(
            KEY_LOAD_BYTES_OUT_PER_S.into(),
            load.bytes_out_per_s.to_string(),
        );
        out.insert(KEY_LOAD_CPU_PERMILLE.into(), load.cpu_permille.to_string());
        Ok(out)
    }

    /// Decodes a peer's key-values. `gossip_node_id` and `generation` come from the
    /// peer's gossip identity; the `node_id` key must agree with the former.
    pub fn decode<'a>(
        gossip_node_id: &str,
        generation: u64,
        key_values: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Decoded, DecodeError> {
        let map: BTreeMap<&str, &str> = key_values.into_iter().collect();
        let node_id = decode_identity(&map, gossip_node_id)?;
        let cluster_id = required(&map, KEY_CLUSTER_ID)?.to_string();
        let mut skipped = Vec::new();
        let mut info = NodeInfo::new(node_id, cluster_id);
        info.generation = generation;
        info.listeners = decode_listeners(&map, &mut skipped);
        info.leaderships = decode_leads(map.get(KEY_LEADS).copied(), &mut skipped);
        info.metadata_leader = decode_leader_hint(&map, &mut skipped);
        info.load = NodeLoad {
            partitions_led: optional_number(&map, KEY_LOAD_PARTITIONS_LED, &mut skipped),
            bytes_in_per_s: optional_number(&map, KEY_LOAD_BYTES_IN_PER_S, &mut skipped),
            bytes_out_per_s: optional_number(&map, KEY_LOAD_BYTES_OUT_PER_S, &mut skipped),
            cpu_permille: optional_number(&map, KEY_LOAD_CPU_PERMILLE, &mut skipped),
        };
        Ok(Decoded { info, skipped })
    }
}

/// The keys to set and to delete to go from `old` to `new`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct KeyValueDiff {
    pub set: Vec<(String, String)>,
    pub delete: Vec<String>,
}

/// Computes the smallest change from `old` to `new`, so unchanged keys keep their gossip
/// version and are not re-sent.
pub fn diff_key_values(
    old: &BTreeMap<String, String>,
    new: &BTreeMap<String, String>,
) -> KeyValueDiff {
    let set = new
        .iter()
        .filter(|(key, value)| old.get(*key) != Some(*value))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    let delete = old
        .keys()
        .filter(|key| !new.contains_key(*key))
        .cloned()
        .collect();
    KeyValueDiff { set, delete }
}

/// Checks a cluster id: non-empty, short, printable, no spaces.
pub fn validate_cluster_id(cluster_id: &str) -> Result<(), MembershipError> {
    validate_name("cluster id", cluster_id, CLUSTER_ID_BYTES_MAX, |c| {
        c.is_ascii_graphic()
    })
}

fn validate_listener(name: &str, address: &str) -> Result<(), MembershipError> {
    validate_name("listener", name, LISTENER_NAME_BYTES_MAX, |c| {
        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-'
    })?;
    validate_name(
        "listener address",
        address,
        LISTENER_ADDRESS_BYTES_MAX,
        |c| c.is_ascii_graphic(),
    )
}

fn validate_group(group: &str) -> Result<(), MembershipError> {
    validate_name("group", group, GROUP_NAME_BYTES_MAX, |c| {
        c.is_ascii_graphic() && c != ',' && c != '@'
    })
}

fn validate_name(
    what: &'static str,
    name: &str,
    bytes_max: usize,
    allowed: impl Fn(char) -> bool,
) -> Result<(), MembershipError> {
    let reason = if name.is_empty() {
        "empty"
    } else if name.len() > bytes_max {
        "too long"
    } else if !name.chars().all(allowed) {
        "contains a character outside the allowed set"
    } else {
        return Ok(());
    };
    Err(MembershipError::InvalidName {
        what,
        name: name.to_string(),
        reason,
    })
}

fn encode_leads(leaderships: &BTreeMap<String, u64>) -> Result<String, MembershipError> {
    let mut value = String::new();
    for (group, term) in leaderships {
        validate_group(group)?;
        if !value.is_empty() {
            value.push(',');
        }
        value.push_str(&format!("{group}@{term}"));
    }
    if value.len() > VALUE_BYTES_MAX {
        return Err(MembershipError::ValueTooLarge {
            key: KEY_LEADS.to_string(),
            value_bytes: value.len(),
            limit_bytes: VALUE_BYTES_MAX,
        });
    }
    Ok(value)
}

fn decode_identity(
    map: &BTreeMap<&str, &str>,
    gossip_node_id: &str,
) -> Result<NodeId, DecodeError> {
    let schema = required(map, KEY_SCHEMA_VERSION)?;
    if schema != SCHEMA_VERSION.to_string() {
        return Err(DecodeError::UnsupportedSchema(schema.to_string()));
    }
    let raw = required(map, KEY_NODE_ID)?;
    let node_id: u32 = raw.parse().map_err(|_| malformed(KEY_NODE_ID, raw))?;
    if gossip_node_id != raw {
        return Err(DecodeError::NodeIdMismatch {
            in_value: node_id,
            in_identity: gossip_node_id.to_string(),
        });
    }
    Ok(NodeId(node_id))
}

fn decode_listeners(
    map: &BTreeMap<&str, &str>,
    skipped: &mut Vec<DecodeError>,
) -> BTreeMap<String, String> {
    let mut listeners = BTreeMap::new();
    for (key, value) in map.range(LISTENER_KEY_PREFIX..) {
        let Some(name) = key.strip_prefix(LISTENER_KEY_PREFIX) else {
            break;
        };
        match validate_listener(name, value) {
            Ok(()) => {
                listeners.insert(name.to_string(), value.to_string());
            }
            Err(_) => skipped.push(malformed(key, value)),
        }
    }
    listeners
}

fn decode_leads(value: Option<&str>, skipped: &mut Vec<DecodeError>) -> BTreeMap<String, u64> {
    let mut leads = BTreeMap::new();
    for entry in value
        .unwrap_or_default()
        .split(',')
        .filter(|e| !e.is_empty())
    {
        let parsed = entry
            .rsplit_once('@')
            .filter(|(group, _)| validate_group(group).is_ok())
            .and_then(|(group, term)| Some((group, term.parse::<u64>().ok()?)));
        match parsed {
            Some((group, term)) => {
                leads.insert(group.to_string(), term);
            }
            None => skipped.push(malformed(KEY_LEADS, entry)),
        }
    }
    leads
}

fn decode_leader_hint(
    map: &BTreeMap<&str, &str>,
    skipped: &mut Vec<DecodeError>,
) -> Option<LeaderHint> {
    let value = map.get(KEY_METADATA_LEADER).copied().unwrap_or_default();
    if value.is_empty() {
        return None;
    }
    let parsed = value.split_once('@').and_then(|(node, term)| {
        Some(LeaderHint {
            node_id: NodeId(node.parse().ok()?),
            term: term.parse().ok()?,
        })
    });
    if parsed.is_none() {
        skipped.push(malformed(KEY_METADATA_LEADER, value));
    }
    parsed
}

fn optional_number<T: std::str::FromStr + Default>(
    map: &BTreeMap<&str, &str>,
    key: &str,
    skipped: &mut Vec<DecodeError>,
) -> T {
    let Some(value) = map.get(key) else {
        return T::default();
    };
    value.parse().unwrap_or_else(|_| {
        skipped.push(malformed(key, value));
        T::default()
    })
}

fn required<'a>(map: &BTreeMap<&str, &'a str>, key: &'static str) -> Result<&'a str, DecodeError> {
    map.get(key).copied().ok_or(DecodeError::MissingKey(key))
}

fn malformed(key: &str, value: &str) -> DecodeError {
    DecodeError::Malformed {
        key: key.to_string(),
        value: value.to_string(),
    }
}

#[cfg(test)]
mod tests;
