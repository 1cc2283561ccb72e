//! The bounded key map of a compaction pass: for each key seen in the
//! dirty section, the offset of its newest record (decision 0017 §6). A key
//! is stored as the first 16 bytes of its SHA-256, so an entry has a fixed
//! size whatever the key (16 + 8 = [`KEY_MAP_ENTRY_BYTES`]); a collision of
//! 128-bit prefixes, which would silently drop a key, is negligible even
//! against crafted keys (§12.4).
//!
//! The map is one flat table of `bytes_max / 24` slots with linear
//! probing, filled to at most three quarters, so its memory is exactly
//! what the caller allows (`compaction_buffer_bytes`) and lookups stay
//! short.
//!
//! It owns only the map and its limit. Which batches are fed to it, and
//! what happens when it is full, is the planner's (`plan.rs`).

use sha2::{Digest, Sha256};

/// The first 16 bytes of a key's SHA-256.
pub(crate) type KeyHash = [u8; 16];

/// Bytes of one slot: a key hash and an offset.
pub const KEY_MAP_ENTRY_BYTES: usize = 24;
/// Marks an empty slot: no record has this offset (offsets stay far below).
const EMPTY_OFFSET: u64 = u64::MAX;

/// The hash a key is stored under.
pub(crate) fn key_hash(key: &[u8]) -> KeyHash {
    let digest = Sha256::digest(key);
    let mut hash = [0u8; 16];
    hash.copy_from_slice(&digest[..16]);
    hash
}

/// Key hash -> offset of the newest record with that key, in a table of
/// at most `bytes_max` bytes.
#[derive(Debug)]
pub(crate) struct KeyMap {
    slots: Vec<(KeyHash, u64)>,
    len: usize,
    entries_max: usize,
}

impl KeyMap {
    /// A map of at most `bytes_max` bytes (whole slots, at least one).
    pub fn new(bytes_max: usize) -> KeyMap {
        let slot_count = (bytes_max / KEY_MAP_ENTRY_BYTES).max(1);
        KeyMap {
            slots: vec![([0; 16], EMPTY_OFFSET); slot_count],
            len: 0,
            entries_max: slot_count * 3 / 4,
        }
    }

    /// Most keys the map holds (three quarters of its slots).
    #[cfg(test)]
    pub fn entries_max(&self) -> usize {
        self.entries_max
    }

    /// Whether `count` more keys surely fit (each may be new).
    pub fn has_room_for(&self, count: usize) -> bool {
        self.len.saturating_add(count) <= self.entries_max
    }

    /// Records that the newest record of `key` so far is at `offset`.
    /// Records must be fed in log order. Panics if the map is full and the
    /// key is new: callers check [`KeyMap::has_room_for`] first.
    pub fn insert(&mut self, key: &[u8], offset: u64) {
        assert_ne!(offset, EMPTY_OFFSET, "offsets stay below u64::MAX");
        let hash = key_hash(key);
        let slot = self.slot_of(&hash);
        let (_, previous) = self.slots[slot];
        if previous == EMPTY_OFFSET {
            assert!(
                self.len < self.entries_max,
                "the key map was filled past its limit"
            );
            self.len += 1;
        } else {
            assert!(
                previous < offset,
                "records are fed to the key map in log order"
            );
        }
        self.slots[slot] = (hash, offset);
    }

    /// Offset of the newest record with `key`, if the map holds the key.
    pub fn newest_offset(&self, key: &[u8]) -> Option<u64> {
        let hash = key_hash(key);
        let (_, offset) = self.slots[self.slot_of(&hash)];
        (offset != EMPTY_OFFSET).then_some(offset)
    }

    /// The slot holding `hash`, or the empty slot where it would go. Ends:
    /// at most three quarters of the slots are full, so an empty one is
    /// found within `slots.len()` steps.
    fn slot_of(&self, hash: &KeyHash) -> usize {
        let slot_count = self.slots.len();
        let start = u64::from_le_bytes(hash[..8].try_into().expect("8 bytes"));
        let mut slot = (start % slot_count as u64) as usize;
        for _ in 0..slot_count {
            let (stored, offset) = &self.slots[slot];
            if *offset == EMPTY_OFFSET || stored == hash {
                return slot;
            }
            slot = (slot + 1) % slot_count;
        }
        unreachable!("a key map at most three quarters full has an empty slot")
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
        let mut map = KeyMap::new(3 * KEY_MAP_ENTRY_BYTES);
        assert_eq!(map.entries_max(), 2);
        map.insert(b"a", 1);
        map.insert(b"b", 2);
        map.insert(b"a", 5);
        assert_eq!(map.newest_offset(b"a"), Some(5));
        assert_eq!(map.newest_offset(b"b"), Some(2));
        assert_eq!(map.newest_offset(b"c"), None);
        assert!(map.has_room_for(0));
        assert!(!map.has_room_for(1));
    }

    /// The map is sized in bytes: three quarters of `bytes / 24` slots
    /// hold keys, and a map full to that point still finds every key.
    #[test]
    fn capacity_follows_the_byte_limit() {
        let mut map = KeyMap::new(1000 * KEY_MAP_ENTRY_BYTES + 23);
        assert_eq!(map.entries_max(), 750);
        for i in 0..750u64 {
            map.insert(&i.to_le_bytes(), i);
        }
        assert!(!map.has_room_for(1));
        for i in 0..750u64 {
            assert_eq!(map.newest_offset(&i.to_le_bytes()), Some(i));
        }
        assert_eq!(map.newest_offset(&750u64.to_le_bytes()), None);
    }

    /// A new key in a full map is a broken invariant, not silently dropped.
    #[test]
    #[should_panic(expected = "filled past its limit")]
    fn a_new_key_in_a_full_map_panics() {
        let mut map = KeyMap::new(2 * KEY_MAP_ENTRY_BYTES);
        map.insert(b"a", 1);
        map.insert(b"b", 2);
    }
}
