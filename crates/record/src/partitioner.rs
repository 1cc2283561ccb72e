//! The key partitioner shared by every producer (Rust client, HTTP, MQTT) so
//! that one key always lands on one partition, whoever sends it. It is
//! Kafka's: murmur2 (seed `0x9747b28c`) of the key bytes, sign bit cleared,
//! modulo the partition count. Changing it would move keys between
//! partitions, so it is fixed by test vectors.

/// Partition of a keyed record in a topic of `partitions` partitions.
pub fn partition_for_key(key: &[u8], partitions: u32) -> u32 {
    assert!(partitions > 0, "a topic has at least one partition");
    (murmur2(key) & 0x7fff_ffff) as u32 % partitions
}

/// Kafka's murmur2 variant (`org.apache.kafka.common.utils.Utils.murmur2`).
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h: u32 = SEED ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes(chunk.try_into().expect("4 bytes"));
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hash matches Kafka's published test vectors, so keys map to the
    /// same partitions as in Kafka clients.
    #[test]
    fn murmur2_matches_kafka_vectors() {
        assert_eq!(murmur2(b"21"), -973_932_308);
        assert_eq!(murmur2(b"foobar"), -790_332_482);
        assert_eq!(murmur2(b"a-little-bit-long-string"), -985_981_536);
        assert_eq!(murmur2(b"a-little-bit-longer-string"), -1_486_304_829);
        assert_eq!(
            murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"),
            -58_897_971
        );
        assert_eq!(murmur2(b"abc"), 479_470_107);
    }

    /// Partitions are in range and stable for a key.
    #[test]
    fn partition_is_in_range_and_stable() {
        for partitions in 1..20 {
            let p = partition_for_key(b"sensor-42", partitions);
            assert!(p < partitions);
            assert_eq!(p, partition_for_key(b"sensor-42", partitions));
        }
    }
}
