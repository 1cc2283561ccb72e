//! Replica placement: pure decisions over the metadata, no I/O.
//!
//! - [`place_topic`]: replicas for a new topic, on distinct brokers,
//!   least-loaded first, ties broken by a rotation that starts at an offset
//!   derived from the topic id (as Kafka does) so topics do not all lead
//!   on the same broker; rack-aware when racks are set; the preferred
//!   leader (first replica) is the chosen broker leading fewest partitions
//!   of this topic.
//! - [`replace_broker`]: moves every replica off a removed broker
//!   (`cluster remove-node`).
//! - [`rebalance`]: moves replicas from the most to the least loaded active
//!   broker until they differ by at most one (`cluster rebalance`), one
//!   replica per move, so the number of moves is the surplus and no more.
//!
//! Every function is deterministic: ties are broken by broker id or by the
//! rotation, never by map iteration order of unordered containers.
//! Applying the result is the caller's business ([`ReassignPartition::command`]).

use std::collections::{BTreeMap, BTreeSet};

use crate::command::MetadataCommand;
use crate::state::MetadataState;

/// A broker that may receive replicas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub node_id: u32,
    pub rack: Option<String>,
}

/// A decided move: the new replica list of one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReassignPartition {
    pub topic: String,
    pub partition: u32,
    pub replicas: Vec<u32>,
}

impl ReassignPartition {
    /// The metadata command that carries out this move.
    pub fn command(&self) -> MetadataCommand {
        MetadataCommand::ReassignPartition {
            topic: self.topic.clone(),
            partition: self.partition,
            replicas: self.replicas.clone(),
        }
    }
}

/// The rotation rank of broker `index` (of `count`) for partition
/// `partition` of a topic whose rotation starts at `start`: 0 for the
/// broker the rotation reaches first.
fn rank(index: usize, count: usize, start: u64, partition: u32) -> usize {
    let offset = ((start + u64::from(partition)) % count as u64) as usize;
    (index + count - offset) % count
}

/// Picks the best broker for one more replica next to `taken`: a rack not
/// yet used, then least load, then (when choosing a preferred leader)
/// fewest leaderships, then rotation order. `None` if every candidate is
/// taken.
fn pick(
    brokers: &[Candidate],
    taken: &[u32],
    load: &BTreeMap<u32, u32>,
    leaders: Option<&BTreeMap<u32, u32>>,
    start: u64,
    partition: u32,
) -> Option<u32> {
    let racks: BTreeSet<&str> = brokers
        .iter()
        .filter(|b| taken.contains(&b.node_id))
        .filter_map(|b| b.rack.as_deref())
        .collect();
    brokers
        .iter()
        .enumerate()
        .filter(|(_, b)| !taken.contains(&b.node_id))
        .min_by_key(|(i, b)| {
            let rack_used = b.rack.as_deref().is_some_and(|r| racks.contains(r));
            let count = |map: &BTreeMap<u32, u32>| map.get(&b.node_id).copied().unwrap_or(0);
            let led = leaders.map_or(0, count);
            (
                rack_used,
                count(load),
                led,
                rank(*i, brokers.len(), start, partition),
            )
        })
        .map(|(_, b)| b.node_id)
}

/// Replica lists for `partitions` partitions of a new topic with
/// `replication_factor` replicas each, over `brokers` (the active ones),
/// given the replicas each broker already hosts. `start` seeds the
/// rotation; pass the topic id.
///
/// Panics if `replication_factor` is 0 or exceeds the broker count (the
/// caller validates both: [`MetadataState::plan_create_topic`]).
pub fn place_topic(
    brokers: &[Candidate],
    partitions: u32,
    replication_factor: u32,
    start: u64,
    existing_load: &BTreeMap<u32, u32>,
) -> Vec<Vec<u32>> {
    let rf = replication_factor as usize;
    assert!(
        rf >= 1 && rf <= brokers.len(),
        "replication factor fits the brokers"
    );
    let mut brokers = brokers.to_vec();
    brokers.sort_by_key(|b| b.node_id);
    let mut load = existing_load.clone();
    let mut leaders: BTreeMap<u32, u32> = BTreeMap::new();
    let mut placement = Vec::with_capacity(partitions as usize);
    for partition in 0..partitions {
        let mut replicas = Vec::with_capacity(rf);
        for _ in 0..rf {
            let id = pick(&brokers, &replicas, &load, Some(&leaders), start, partition)
                .expect("fewer replicas than brokers");
            *load.entry(id).or_default() += 1;
            replicas.push(id);
        }
        let leader_at = (0..rf)
            .min_by_key(|&slot| leaders.get(&replicas[slot]).copied().unwrap_or(0))
            .expect("at least one replica");
        let leader = replicas.remove(leader_at);
        replicas.insert(0, leader);
        *leaders.entry(leader).or_default() += 1;
        placement.push(replicas);
    }
    let ids: Vec<u32> = brokers.iter().map(|b| b.node_id).collect();
    balance_leaders(&mut placement, &ids);
    placement
}

/// Evens out preferred leaders within one topic without moving replicas:
/// while some broker leads at least two more partitions than another it
/// can reach (a chain of partitions, each led by the previous broker and
/// holding the next as a replica), shift leadership along that chain.
/// Each shift lowers the sum of squared leader counts, so this ends; it
/// is also bounded by the partition count.
fn balance_leaders(placement: &mut [Vec<u32>], brokers: &[u32]) {
    for _ in 0..placement.len() {
        let mut leaders: BTreeMap<u32, u32> = brokers.iter().map(|&id| (id, 0)).collect();
        for replicas in placement.iter() {
            *leaders.entry(replicas[0]).or_default() += 1;
        }
        let Some(chain) = leader_chain(placement, &leaders) else {
            return;
        };
        for (partition, leader) in chain {
            let replicas = &mut placement[partition];
            let at = replicas
                .iter()
                .position(|&id| id == leader)
                .expect("a replica");
            let id = replicas.remove(at);
            replicas.insert(0, id);
        }
    }
}

/// A chain of (partition, new leader) from the busiest leader to a broker
/// leading at least two fewer, found breadth-first; `None` if none exists.
fn leader_chain(placement: &[Vec<u32>], leaders: &BTreeMap<u32, u32>) -> Option<Vec<(usize, u32)>> {
    let (&source, &most) = leaders.iter().rev().max_by_key(|(_, count)| **count)?;
    let mut led: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for (partition, replicas) in placement.iter().enumerate() {
        led.entry(replicas[0]).or_default().push(partition);
    }
    let mut parent: BTreeMap<u32, (usize, u32)> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([source]);
    while let Some(broker) = queue.pop_front() {
        if leaders.get(&broker).copied().unwrap_or(0) + 2 <= most {
            let mut chain = Vec::new();
            let mut at = broker;
            while at != source {
                let (partition, from) = parent[&at];
                chain.push((partition, at));
                at = from;
            }
            return Some(chain);
        }
        for &partition in led.get(&broker).map_or(&[][..], Vec::as_slice) {
            for &next in &placement[partition][1..] {
                if next != source && !parent.contains_key(&next) {
                    parent.insert(next, (partition, broker));
                    queue.push_back(next);
                }
            }
        }
    }
    None
}

/// Moves every replica of `removed` to another active broker (rack-aware,
/// least loaded first). The replacement goes last, so the next replica
/// becomes preferred leader rather than a broker that must catch up. A
/// partition with no other broker to go to keeps its remaining replicas
/// only; one that would have none is left alone (there is no active broker
/// at all).
pub fn replace_broker(state: &MetadataState, removed: u32) -> Vec<ReassignPartition> {
    let brokers: Vec<Candidate> = state
        .active_brokers()
        .into_iter()
        .filter(|b| b.node_id != removed)
        .collect();
    let mut load = state.replica_load();
    let mut moves = Vec::new();
    for (name, topic) in &state.topics {
        for (partition, assignment) in topic.partitions.iter().enumerate() {
            if !assignment.replicas.contains(&removed) {
                continue;
            }
            let partition = partition as u32;
            let mut replicas: Vec<u32> = assignment
                .replicas
                .iter()
                .copied()
                .filter(|&id| id != removed)
                .collect();
            if let Some(id) = pick(
                &brokers,
                &replicas,
                &load,
                None,
                topic.topic_id.0,
                partition,
            ) {
                *load.entry(id).or_default() += 1;
                replicas.push(id);
            }
            if !replicas.is_empty() {
                moves.push(ReassignPartition {
                    topic: name.clone(),
                    partition,
                    replicas,
                });
            }
        }
    }
    moves
}

/// One partition in [`rebalance`]'s working copy.
struct Slot {
    topic: String,
    partition: u32,
    original: Vec<u32>,
    replicas: Vec<u32>,
}

/// Moves replicas between active brokers until their replica counts differ
/// by at most one, one replica at a time from the most to the least loaded
/// broker (lowest id first on ties). Replicas on draining or removed
/// brokers are not counted or moved. Each move lowers the sum of squared
/// loads, so the loop ends; it is also bounded by the replica count.
pub fn rebalance(state: &MetadataState) -> Vec<ReassignPartition> {
    let active = state.active_brokers();
    let racks: BTreeMap<u32, Option<String>> =
        active.iter().map(|b| (b.node_id, b.rack.clone())).collect();
    let mut load: BTreeMap<u32, u32> = racks.keys().map(|&id| (id, 0)).collect();
    let mut slots = Vec::new();
    for (name, topic) in &state.topics {
        for (partition, assignment) in topic.partitions.iter().enumerate() {
            for id in &assignment.replicas {
                if let Some(count) = load.get_mut(id) {
                    *count += 1;
                }
            }
            slots.push(Slot {
                topic: name.clone(),
                partition: partition as u32,
                original: assignment.replicas.clone(),
                replicas: assignment.replicas.clone(),
            });
        }
    }
    let moves_max: u32 = load.values().sum();
    for _ in 0..moves_max {
        let Some((from, to)) = most_and_least(&load) else {
            break;
        };
        let at = choose_slot(&slots, from, to, &racks);
        let slot = &mut slots[at.expect("the fuller broker has a partition the other lacks")];
        let position = slot
            .replicas
            .iter()
            .position(|&id| id == from)
            .expect("from is a replica");
        slot.replicas[position] = to;
        *load.get_mut(&from).expect("active") -= 1;
        *load.get_mut(&to).expect("active") += 1;
    }
    slots
        .into_iter()
        .filter(|s| s.replicas != s.original)
        .map(|s| ReassignPartition {
            topic: s.topic,
            partition: s.partition,
            replicas: s.replicas,
        })
        .collect()
}

/// The most and least loaded brokers, if they differ by more than one.
fn most_and_least(load: &BTreeMap<u32, u32>) -> Option<(u32, u32)> {
    // `max_by_key` keeps the last maximum; reverse so the lowest id wins.
    let (&most, &high) = load.iter().rev().max_by_key(|(_, count)| **count)?;
    let (&least, &low) = load.iter().min_by_key(|(_, count)| **count)?;
    (high > low + 1).then_some((most, least))
}

/// A partition holding `from` and not `to`, preferring one where `to`
/// brings no rack that another replica already has. A partition exists
/// whenever `from` hosts more replicas than `to` (else `to` would be in
/// every partition of `from` and host at least as many).
fn choose_slot(
    slots: &[Slot],
    from: u32,
    to: u32,
    racks: &BTreeMap<u32, Option<String>>,
) -> Option<usize> {
    let movable = |s: &Slot| s.replicas.contains(&from) && !s.replicas.contains(&to);
    let to_rack = racks.get(&to).cloned().flatten();
    let keeps_racks = |s: &Slot| {
        to_rack.as_ref().is_none_or(|rack| {
            !s.replicas
                .iter()
                .filter(|&&id| id != from)
                .any(|id| racks.get(id).and_then(|r| r.as_ref()) == Some(rack))
        })
    };
    slots
        .iter()
        .position(|s| movable(s) && keeps_racks(s))
        .or_else(|| slots.iter().position(movable))
}
