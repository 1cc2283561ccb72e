//! The publisher's Lamport clock: +1 for every reading it sends, and past
//! any counter it is shown (a replayed CSV's own `lamport` column), so
//! counters a publisher emits only grow.

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LamportClock {
    counter: u64,
}

impl LamportClock {
    /// A clock whose next tick is `counter + 1`.
    pub fn starting_after(counter: u64) -> LamportClock {
        LamportClock { counter }
    }

    /// The counter of the next event sent.
    pub fn tick(&mut self) -> u64 {
        self.counter = self
            .counter
            .checked_add(1)
            .expect("a Lamport counter does not reach 2^64");
        self.counter
    }

    /// Takes in a counter seen elsewhere, then ticks.
    pub fn witness(&mut self, seen: u64) -> u64 {
        self.counter = self.counter.max(seen);
        self.tick()
    }

    /// The last counter handed out (0 before the first).
    pub fn current(&self) -> u64 {
        self.counter
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ticks count from 1; a witnessed counter is jumped past, a smaller
    /// one changes nothing but the tick.
    #[test]
    fn ticks_and_witnesses() {
        let mut clock = LamportClock::default();
        assert_eq!(clock.tick(), 1);
        assert_eq!(clock.tick(), 2);
        assert_eq!(clock.witness(10), 11);
        assert_eq!(clock.witness(3), 12);
        assert_eq!(clock.current(), 12);
    }
}
