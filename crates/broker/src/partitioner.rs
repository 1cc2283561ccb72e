//! Which partition a keyed record goes to. The hash is Kafka's murmur2
//! (seed `0x9747b28c`, the same byte order and tail handling), so a key lands
//! on the same partition as with Kafka's default partitioner and the mapping
//! never changes across versions or platforms: it is a pure function of the
//! key bytes and the partition count, fixed by the tests below.
//!
//! Keyless records are not this module's business: the client spreads them
//! (round-robin or sticky) and the broker just receives a partition number.

/// Kafka's murmur2 of `key` (32-bit, as a signed Java `int` would hold it).
pub fn murmur2(key: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h: u32 = SEED ^ key.len() as u32;
    let mut chunks = key.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes(chunk.try_into().expect("4-byte chunk"));
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        for (i, byte) in tail.iter().enumerate() {
            h ^= u32::from(*byte) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition of a keyed record: `(murmur2(key) & 0x7fffffff) % partitions`.
///
/// Panics if `partitions` is 0 (a topic always has at least one partition).
pub fn partition_for_key(key: &[u8], partitions: u32) -> u32 {
    assert!(partitions > 0, "a topic has at least one partition");
    let positive = (murmur2(key) & 0x7fff_ffff) as u32;
    positive % partitions
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hash matches Kafka's published murmur2 test vectors exactly.
    #[test]
    fn murmur2_matches_kafka_vectors() {
        let cases: &[(&[u8], i32)] = &[
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            (b"abc", 479_470_107),
        ];
        for (key, expected) in cases {
            assert_eq!(
                murmur2(key),
                *expected,
                "{:?}",
                String::from_utf8_lossy(key)
            );
        }
    }

    /// Fixed keys map to fixed partitions; changing this breaks key ordering
    /// for every existing topic.
    #[test]
    fn partition_for_key_is_stable() {
        let cases: &[(&[u8], u32, u32)] = &[
            (b"foobar", 1, 0),
            (b"21", 12, 0),
            (b"abc", 10, 7),
            (b"", 7, 2),
            (b"sensor-42", 3, 1),
            (b"city/north/air/17", 12, 0),
        ];
        for (key, partitions, expected) in cases {
            assert_eq!(partition_for_key(key, *partitions), *expected, "{key:?}");
        }
    }

    /// Every key lands inside the partition range.
    #[test]
    fn partition_in_range() {
        for n in 1..50u32 {
            for key in 0..200u32 {
                assert!(partition_for_key(&key.to_le_bytes(), n) < n);
            }
        }
    }
}
