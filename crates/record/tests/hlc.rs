//! Property tests of the hybrid logical clock: whatever the wall clock does
//! and whatever is observed, stamps strictly increase, reservations hold
//! `count` values, and every stamp follows what was observed before it.

use citystream_record::{HybridClock, hlc_from_parts, hlc_logical, hlc_physical_ms};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Step {
    Stamp { now_ms: i64, count: u32 },
    Observe { remote: u64 },
}

fn step() -> impl Strategy<Value = Step> {
    // Wall clocks and remote timestamps stay well inside the 48-bit
    // physical range (any value, even negative, up to about the year 4200)
    // so the clock cannot run out of u64, which is documented to panic.
    let remote = (0i64..1 << 46, any::<u16>()).prop_map(|(ms, l)| hlc_from_parts(ms, l));
    prop_oneof![
        4 => (prop_oneof![i64::MIN..1 << 46, -10i64..10_000], 1u32..70_000)
            .prop_map(|(now_ms, count)| Step::Stamp { now_ms, count }),
        1 => remote.prop_map(|remote| Step::Observe { remote }),
    ]
}

proptest! {
    /// Reservations never overlap and only go up; after `observe(x)` the
    /// next stamp is above `x`; a stamp is never below its wall clock.
    #[test]
    fn stamps_strictly_increase(steps in proptest::collection::vec(step(), 1..100)) {
        let mut clock = HybridClock::new();
        let mut floor: Option<u64> = None; // largest value issued or observed
        for step in steps {
            match step {
                Step::Stamp { now_ms, count } => {
                    let first = clock.stamp(now_ms, count);
                    let last = first + u64::from(count) - 1;
                    if let Some(floor) = floor {
                        prop_assert!(first > floor, "{first} after {floor}");
                    }
                    prop_assert!(first >= hlc_from_parts(now_ms, 0));
                    prop_assert_eq!(clock.last(), last);
                    floor = Some(last);
                }
                Step::Observe { remote } => {
                    clock.observe(remote);
                    floor = Some(floor.map_or(remote, |f| f.max(remote)));
                    prop_assert_eq!(clock.last(), floor.unwrap());
                }
            }
        }
    }

    /// A reservation made within one millisecond keeps that millisecond
    /// until its logical counter is used up.
    #[test]
    fn small_reservations_stay_in_their_millisecond(now_ms in 0i64..1 << 40, count in 1u32..1000) {
        let mut clock = HybridClock::new();
        let first = clock.stamp(now_ms, count);
        prop_assert_eq!(hlc_physical_ms(first), now_ms);
        prop_assert_eq!(hlc_logical(first), 0);
        prop_assert_eq!(hlc_physical_ms(clock.last()), now_ms);
        prop_assert_eq!(u64::from(hlc_logical(clock.last())), u64::from(count) - 1);
    }
}
