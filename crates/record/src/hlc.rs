//! A hybrid logical clock (HLC): timestamps that follow wall-clock time but
//! never go backwards and respect causality (a timestamp issued after seeing
//! another is greater than it), even when the wall clock stalls or jumps
//! back.
//!
//! An HLC is one `u64`:
//!
//! ```text
//!  63                                   16 15            0
//!  +---------------------------------------+--------------+
//!  | physical: ms since the Unix epoch (48) | logical (16) |
//!  +---------------------------------------+--------------+
//! ```
//!
//! so HLCs compare like integers, and consecutive integers are consecutive
//! HLCs. When the logical part of a reservation would overflow 16 bits, the
//! value simply carries into the physical part: the clock runs up to a
//! millisecond ahead of the wall for each 65,536 values issued within one
//! millisecond, and falls back in step once the wall clock passes it.
//!
//! The clock is pure: the caller passes `now_ms`. It does not decide which
//! remote timestamps are trustworthy; a caller merging timestamps from other
//! nodes or clients should bound how far ahead of its wall clock they may be.

/// Bits of the logical counter.
const LOGICAL_BITS: u32 = 16;
/// Largest physical part (48 bits of milliseconds, about the year 10889).
const PHYSICAL_MS_MAX: i64 = (1 << (64 - LOGICAL_BITS)) - 1;

/// Physical part of an HLC: milliseconds since the Unix epoch.
pub fn hlc_physical_ms(hlc: u64) -> i64 {
    (hlc >> LOGICAL_BITS) as i64
}

/// Logical part of an HLC: the counter within its millisecond.
pub fn hlc_logical(hlc: u64) -> u16 {
    hlc as u16
}

/// The HLC with the given parts (`physical_ms` clamped into `[0, 2^48)`).
pub fn hlc_from_parts(physical_ms: i64, logical: u16) -> u64 {
    ((physical_ms.clamp(0, PHYSICAL_MS_MAX) as u64) << LOGICAL_BITS) | u64::from(logical)
}

/// Issues strictly increasing HLCs. One per broker, so that causality spans
/// all of its partitions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HybridClock {
    /// The largest HLC issued or observed (0 before any).
    last: u64,
}

impl HybridClock {
    pub fn new() -> HybridClock {
        HybridClock::default()
    }

    /// Reserves `count` consecutive HLCs, all greater than any issued or
    /// observed before, and returns the first. It is `now_ms` with a zero
    /// counter if the wall clock moved past the last HLC's millisecond,
    /// else the last HLC plus one. `now_ms` outside `[0, 2^48)` is clamped.
    ///
    /// Panics if `count` is 0, or if the clock would pass `u64::MAX` (only
    /// after observing a timestamp near the end of the 48-bit range).
    pub fn stamp(&mut self, now_ms: i64, count: u32) -> u64 {
        assert!(count > 0, "an HLC reservation holds at least one value");
        let wall = hlc_from_parts(now_ms, 0);
        let first = if wall > self.last {
            wall
        } else {
            self.last.checked_add(1).expect("the HLC ran out of range")
        };
        self.last = first
            .checked_add(u64::from(count) - 1)
            .expect("the HLC ran out of range");
        first
    }

    /// Merges a timestamp seen elsewhere (another node, a client, a stored
    /// batch), so every later stamp is greater than it.
    pub fn observe(&mut self, remote: u64) {
        self.last = self.last.max(remote);
    }

    /// The largest HLC issued or observed so far (0 before any).
    pub fn last(&self) -> u64 {
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The parts round-trip through the documented bit layout.
    #[test]
    fn parts_round_trip() {
        let hlc = hlc_from_parts(1_700_000_000_123, 7);
        assert_eq!(hlc, (1_700_000_000_123u64 << 16) | 7);
        assert_eq!(hlc_physical_ms(hlc), 1_700_000_000_123);
        assert_eq!(hlc_logical(hlc), 7);
        assert_eq!(hlc_from_parts(-5, 0), 0);
        assert_eq!(
            hlc_physical_ms(hlc_from_parts(i64::MAX, 0)),
            PHYSICAL_MS_MAX
        );
    }

    /// A moving wall clock gives a zero counter; a stalled or backwards one
    /// counts on from the last value.
    #[test]
    fn stamp_follows_the_wall_clock_and_counts_when_it_stalls() {
        let mut clock = HybridClock::new();
        assert_eq!(clock.stamp(100, 3), hlc_from_parts(100, 0));
        assert_eq!(clock.last(), hlc_from_parts(100, 2));
        assert_eq!(clock.stamp(100, 1), hlc_from_parts(100, 3));
        assert_eq!(clock.stamp(50, 2), hlc_from_parts(100, 4));
        assert_eq!(clock.stamp(101, 1), hlc_from_parts(101, 0));
    }

    /// A full logical counter carries into the physical part.
    #[test]
    fn logical_overflow_bumps_the_physical_part() {
        let mut clock = HybridClock::new();
        clock.observe(hlc_from_parts(100, u16::MAX - 1));
        let first = clock.stamp(100, 3);
        assert_eq!(first, hlc_from_parts(100, u16::MAX));
        assert_eq!(clock.last(), hlc_from_parts(101, 1));
        assert_eq!(clock.stamp(101, 1), hlc_from_parts(101, 2));
    }

    /// Observing a timestamp ahead of the wall clock pushes later stamps
    /// past it; one behind changes nothing.
    #[test]
    fn observe_orders_later_stamps_after_the_remote() {
        let mut clock = HybridClock::new();
        clock.observe(hlc_from_parts(500, 9));
        assert_eq!(clock.stamp(100, 1), hlc_from_parts(500, 10));
        clock.observe(hlc_from_parts(10, 0));
        assert_eq!(clock.stamp(100, 1), hlc_from_parts(500, 11));
    }
}
