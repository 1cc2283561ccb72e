//! The bounded key map of a compaction pass: for each key seen below the
//! horizon, the offset of its newest record (decision 0017 §6). A key is
//! stored as the first 16 bytes of its SHA-256, so an entry has a fixed
//! size whatever the key; a collision of 128-bit prefixes, which would
//! silently drop a key, is negligible even against crafted keys (§12.4).
//!
//! It owns only the map and its limit. Which batches are fed to it, and
//! what happens when it is full, is the planner's (`plan.rs`).
//!
//! Not done yet: §6 sizes the map in bytes (`compaction_buffer_bytes`,
//! open addressing, 24-byte entries); this one counts entries and uses a
//! `HashMap`.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

/// The first 16 bytes of a key's SHA-256.
pub(crate) type KeyHash = [u8; 16];

/// The hash a key is stored under.
pub(crate) fn key_hash(key: &[u8]) -> KeyHash {
    let digest = Sha256::digest(key);
    let mut hash = [0u8; 16];
    hash.copy_from_slice(&digest[..16]);
    hash
}

/// Key hash -> offset of the newest record with that key, at most
/// `entries_max` entries.
#[derive(Debug)]
pub(crate) struct KeyMap {
    newest_offsets: HashMap<KeyHash, u64>,
    entries_max: usize,
}

impl KeyMap {
    pub fn new(entries_max: usize) -> KeyMap {
        KeyMap {
            newest_offsets: HashMap::new(),
            entries_max,
        }
    }

    /// Whether `count` more keys surely fit (each may be new).
    pub fn has_room_for(&self, count: usize) -> bool {
        self.newest_offsets.len().saturating_add(count) <= self.entries_max
    }

    /// Records that the newest record of `key` so far is at `offset`.
    /// Records must be fed in log order. Panics if the map is full and the
    /// key is new: callers check [`KeyMap::has_room_for`] first.
    pub fn insert(&mut self, key: &[u8], offset: u64) {
        let hash = key_hash(key);
        let len = self.newest_offsets.len();
        let previous = self.newest_offsets.insert(hash, offset);
        assert!(
            previous.is_some() || len < self.entries_max,
            "the key map was filled past its limit"
        );
        assert!(
            previous.is_none_or(|previous| previous < offset),
            "records are fed to the key map in log order"
        );
    }

    /// Offset of the newest record with `key`, if the map holds the key.
    pub fn newest_offset(&self, key: &[u8]) -> Option<u64> {
        self.newest_offsets.get(&key_hash(key)).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key's hash is the first half of its SHA-256 (a known vector), and
    /// the map keeps the newest offset per key.
    #[test]
    fn hashes_by_sha256_prefix_and_keeps_the_newest_offset() {
        // SHA-256("abc") = ba7816bf8f01cfea414140de5dae2223 b00361a3...
        let expected: KeyHash = [
            0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae,
            0x22, 0x23,
        ];
        assert_eq!(key_hash(b"abc"), expected);
        let mut map = KeyMap::new(2);
        map.insert(b"a", 1);
        map.insert(b"b", 2);
        map.insert(b"a", 5);
        assert_eq!(map.newest_offset(b"a"), Some(5));
        assert_eq!(map.newest_offset(b"b"), Some(2));
        assert_eq!(map.newest_offset(b"c"), None);
        assert!(map.has_room_for(0));
        assert!(!map.has_room_for(1));
    }

    /// A new key in a full map is a broken invariant, not silently dropped.
    #[test]
    #[should_panic(expected = "filled past its limit")]
    fn a_new_key_in_a_full_map_panics() {
        let mut map = KeyMap::new(1);
        map.insert(b"a", 1);
        map.insert(b"b", 2);
    }
}
