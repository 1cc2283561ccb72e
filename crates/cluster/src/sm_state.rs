//! The `sm-state` file of the metadata group: its latest snapshot (the
//! applied log id, the membership, the whole [`MetadataState`]), so a
//! restarted replica starts from it instead of from an empty state and a
//! log that may have been purged behind the snapshot. Replaced whole with
//! [`Storage::write_atomic`], so it is the old or the new snapshot.
//!
//! ```text
//!  0            4
//!  +------------+----------------------------------------------------+
//!  | crc32c u32 | JSON body: {"v":3,"applied":[term,index]|null,      |
//!  | LE over    |  "membership_log_id":[term,index]|null,             |
//!  | the body   |  "configs":[[id,..],..],"nodes":{"id":"peer",..},   |
//!  |            |  "state":{..,"log_next_offset":offset|null,         |
//!  |            |   "group_offsets":{group:{topic:{partition:         |
//!  |            |     {"offset":n,"metadata":".."}}}}}}                |
//!  +------------+----------------------------------------------------+
//! ```
//! Format 2 added the state's `log_next_offset`, format 3 its
//! `group_offsets`; older files still decode, with `None` or no offsets
//! there (the state machine then looks `log_next_offset` up in the log). A
//! format this version does not know is refused.
//! This module converts and stores; it does not decide when to snapshot.

use std::collections::{BTreeMap, BTreeSet};
use std::io;

use citystream_log::Storage;
use citystream_raft::{PeerAddr, Tc};
use citystream_record::crc32c;
use openraft::type_config::alias::{LogIdOf, SnapshotMetaOf};
use openraft::{LogId, Membership, SnapshotMeta, StoredMembership};
use serde::{Deserialize, Serialize};

use crate::command::{decode_versioned_since, encode_versioned};
use crate::state::MetadataState;

/// Name of the file in the metadata log's storage (one of the log's
/// `OWNER_FILES`, which recovery leaves alone).
pub const SM_STATE_FILE: &str = "sm-state";
const FORMAT: u32 = 3;
const FORMAT_OLDEST: u32 = 1;
const CRC_LEN: usize = 4;

#[derive(Serialize, Deserialize)]
struct Body {
    applied: Option<(u64, u64)>,
    membership_log_id: Option<(u64, u64)>,
    configs: Vec<BTreeSet<u64>>,
    nodes: BTreeMap<u64, String>,
    state: MetadataState,
}

fn pair(log_id: &Option<LogIdOf<Tc>>) -> Option<(u64, u64)> {
    log_id.map(|id| (id.leader_id.term, id.index))
}

fn log_id(pair: Option<(u64, u64)>) -> Option<LogIdOf<Tc>> {
    pair.map(|(term, index)| LogId::new_term_index(term, index))
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// The file's bytes for a snapshot.
pub fn encode(meta: &SnapshotMetaOf<Tc>, state: &MetadataState) -> Vec<u8> {
    let membership = meta.last_membership.membership();
    let body = Body {
        applied: pair(&meta.last_log_id),
        membership_log_id: pair(meta.last_membership.log_id()),
        configs: membership.get_joint_config().clone(),
        nodes: membership
            .nodes()
            .map(|(id, node)| (*id, node.peer.clone()))
            .collect(),
        state: state.clone(),
    };
    let json = encode_versioned(FORMAT, &body);
    let mut out = Vec::with_capacity(CRC_LEN + json.len());
    out.extend_from_slice(&crc32c(&json).to_le_bytes());
    out.extend_from_slice(&json);
    out
}

/// Decodes the file's bytes, checking the CRC and the format.
pub fn decode(bytes: &[u8]) -> io::Result<(SnapshotMetaOf<Tc>, MetadataState)> {
    if bytes.len() < CRC_LEN {
        return Err(invalid("sm-state is truncated".into()));
    }
    let (crc, json) = bytes.split_at(CRC_LEN);
    if crc32c(json).to_le_bytes() != crc {
        return Err(invalid("sm-state CRC mismatch".into()));
    }
    let body: Body =
        decode_versioned_since(FORMAT_OLDEST, FORMAT, json).map_err(|e| invalid(e.to_string()))?;
    let nodes: BTreeMap<u64, PeerAddr> = body
        .nodes
        .into_iter()
        .map(|(id, peer)| (id, PeerAddr { peer }))
        .collect();
    let membership =
        Membership::new(body.configs, nodes).map_err(|e| invalid(format!("membership: {e}")))?;
    let meta = SnapshotMeta {
        last_log_id: log_id(body.applied),
        last_membership: StoredMembership::new(log_id(body.membership_log_id), membership),
    };
    Ok((meta, body.state))
}

/// Reads the stored snapshot, if any.
pub fn read(storage: &dyn Storage) -> io::Result<Option<(SnapshotMetaOf<Tc>, MetadataState)>> {
    let Some(bytes) = storage.read_whole(SM_STATE_FILE)? else {
        return Ok(None);
    };
    decode(&bytes).map(Some).map_err(|e| {
        let path = storage.location(SM_STATE_FILE);
        invalid(format!("{}: {e}", path.display()))
    })
}

/// Replaces the stored snapshot durably.
pub fn write(
    storage: &dyn Storage,
    meta: &SnapshotMetaOf<Tc>,
    state: &MetadataState,
) -> io::Result<()> {
    storage.write_atomic(SM_STATE_FILE, &encode(meta, state))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (SnapshotMetaOf<Tc>, MetadataState) {
        let nodes: BTreeMap<u64, PeerAddr> = (1..=3)
            .map(|id| {
                (
                    id,
                    PeerAddr {
                        peer: format!("node-{id}:9093"),
                    },
                )
            })
            .collect();
        let membership = Membership::new(vec![BTreeSet::from([1, 2, 3])], nodes).unwrap();
        let meta = SnapshotMeta {
            last_log_id: Some(LogId::new_term_index(2, 17)),
            last_membership: StoredMembership::new(Some(LogId::new_term_index(1, 0)), membership),
        };
        let mut state = MetadataState::default();
        state
            .apply(&crate::MetadataCommand::AllocateProducerIds { count: 7 })
            .unwrap();
        state.log_next_offset = Some(18);
        let offset = crate::Committed {
            offset: 5,
            metadata: String::new(),
        };
        state.group_offsets.insert(
            "g".to_owned(),
            BTreeMap::from([("t".to_owned(), BTreeMap::from([(0, offset)]))]),
        );
        (meta, state)
    }

    /// `bytes` with its JSON body edited by `edit` and the CRC redone.
    fn edited(bytes: &[u8], edit: impl Fn(String) -> String) -> Vec<u8> {
        let json = edit(String::from_utf8(bytes[CRC_LEN..].to_vec()).unwrap());
        let mut out = crc32c(json.as_bytes()).to_le_bytes().to_vec();
        out.extend_from_slice(json.as_bytes());
        out
    }

    /// A snapshot survives the file, membership and log ids included.
    #[test]
    fn sm_state_round_trips() {
        let (meta, state) = sample();
        let (meta2, state2) = decode(&encode(&meta, &state)).unwrap();
        assert_eq!(meta2, meta);
        assert_eq!(state2, state);
    }

    /// Every truncation and a flipped byte are refused, never misread.
    #[test]
    fn damaged_sm_state_is_refused() {
        let (meta, state) = sample();
        let bytes = encode(&meta, &state);
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "cut {cut}");
        }
        let mut flipped = bytes.clone();
        flipped[10] ^= 0x20;
        assert!(decode(&flipped).is_err());
    }

    /// A format-1 file (before `log_next_offset`) and a format-2 file
    /// (before `group_offsets`) still decode, without them; an unknown
    /// future format is refused.
    #[test]
    fn older_format_decodes_and_future_is_refused() {
        let (meta, state) = sample();
        let bytes = encode(&meta, &state);
        let offsets = r#","group_offsets":{"g":{"t":{"0":{"offset":5,"metadata":""}}}}"#;
        assert!(String::from_utf8_lossy(&bytes).contains(offsets));
        let v2 = edited(&bytes, |json| {
            json.replacen("\"v\":3", "\"v\":2", 1)
                .replacen(offsets, "", 1)
        });
        let (_, state2) = decode(&v2).unwrap();
        assert!(state2.group_offsets.is_empty());
        assert_eq!(state2.log_next_offset, Some(18));
        let v1 = edited(&v2, |json| {
            json.replacen("\"v\":2", "\"v\":1", 1)
                .replacen(",\"log_next_offset\":18", "", 1)
        });
        let (meta1, state1) = decode(&v1).unwrap();
        assert_eq!(meta1, meta);
        assert_eq!(state1.log_next_offset, None);
        assert_eq!(
            state1,
            MetadataState {
                log_next_offset: None,
                group_offsets: BTreeMap::new(),
                ..state
            }
        );
        let future = edited(&bytes, |json| json.replacen("\"v\":3", "\"v\":4", 1));
        let error = decode(&future).unwrap_err().to_string();
        assert!(error.contains("format 4"), "{error}");
    }
}
