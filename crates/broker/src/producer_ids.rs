//! Allocation of idempotent-producer ids that are never handed out twice,
//! even across restarts and across brokers.
//!
//! An id is `node_id << 32 | counter`, with `counter >= 1` (so never 0, the
//! "no producer" id, and unique per node without coordination). The counter
//! is reserved on disk in blocks of [`PRODUCER_ID_BLOCK`]: the file
//! `producer-ids` holds the first counter value not yet reserved, and is
//! rewritten (atomically) only when a block runs out, and once at open,
//! which skips whatever was left of the previous run's block.

use std::path::PathBuf;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::BrokerError;
use crate::data_dir::{read_json, write_json};

/// Counter values reserved per write of the file.
pub const PRODUCER_ID_BLOCK: u32 = 1_000;

#[derive(Debug, Serialize, Deserialize)]
struct Reservation {
    /// First counter value not reserved yet.
    reserved_until: u32,
}

#[derive(Debug)]
struct Counter {
    next: u32,
    reserved_until: u32,
}

#[derive(Debug)]
pub struct ProducerIds {
    node_id: u32,
    /// `None` in memory mode: ids only need to be unique for this process.
    path: Option<PathBuf>,
    counter: Mutex<Counter>,
}

impl ProducerIds {
    /// Loads the reservation (if any) and reserves a fresh block.
    pub fn open(node_id: u32, path: Option<PathBuf>) -> Result<ProducerIds, BrokerError> {
        let next = match &path {
            Some(path) => read_json::<Reservation>(path)?.map_or(1, |r| r.reserved_until),
            None => 1,
        };
        let ids = ProducerIds {
            node_id,
            path,
            counter: Mutex::new(Counter {
                next,
                reserved_until: next,
            }),
        };
        ids.reserve(&mut ids.counter.lock())?;
        Ok(ids)
    }

    /// A fresh id (never 0, never returned before).
    pub fn allocate(&self) -> Result<u64, BrokerError> {
        let mut counter = self.counter.lock();
        if counter.next >= counter.reserved_until {
            self.reserve(&mut counter)?;
        }
        let id = (u64::from(self.node_id) << 32) | u64::from(counter.next);
        counter.next += 1;
        Ok(id)
    }

    /// False for an id this node would have allocated but has not: a client
    /// inventing ids. Ids of other nodes are taken on trust.
    pub fn is_plausible(&self, producer_id: u64) -> bool {
        let node = (producer_id >> 32) as u32;
        let counter = producer_id as u32;
        node != self.node_id || (counter >= 1 && counter < self.counter.lock().next)
    }

    fn reserve(&self, counter: &mut Counter) -> Result<(), BrokerError> {
        let reserved_until = counter
            .reserved_until
            .checked_add(PRODUCER_ID_BLOCK)
            .ok_or_else(|| {
                BrokerError::InvalidRequest("this node has run out of producer ids".to_owned())
            })?;
        if let Some(path) = &self.path {
            write_json(path, &Reservation { reserved_until })?;
        }
        counter.reserved_until = reserved_until;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ids are unique, non-zero, carry the node id, and are never reused after reopen.
    #[test]
    fn ids_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("producer-ids");
        let ids = ProducerIds::open(3, Some(path.clone())).unwrap();
        let first: Vec<u64> = (0..1_500).map(|_| ids.allocate().unwrap()).collect();
        assert!(first.iter().all(|&id| id >> 32 == 3 && id as u32 >= 1));
        assert!(first.windows(2).all(|w| w[0] < w[1]));
        drop(ids);
        let reopened = ProducerIds::open(3, Some(path)).unwrap();
        let next = reopened.allocate().unwrap();
        assert!(next > *first.last().unwrap());
    }

    /// Only ids this node has handed out are plausible; other nodes' are trusted.
    #[test]
    fn plausibility() {
        let ids = ProducerIds::open(1, None).unwrap();
        let id = ids.allocate().unwrap();
        assert!(ids.is_plausible(id));
        assert!(!ids.is_plausible(id + 1));
        assert!(!ids.is_plausible(1 << 32));
        assert!(ids.is_plausible((2 << 32) | 77));
    }
}
