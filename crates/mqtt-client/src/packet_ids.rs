//! [`PacketIds`]: the packet identifiers this client has in use and what
//! waits on each (a publish awaiting PUBACK/PUBREC/PUBCOMP, a subscribe
//! awaiting SUBACK). Pure: it allocates and frees ids; what an
//! acknowledgement means is the connection's (`connection/inbound.rs`).

use std::collections::HashMap;
use std::num::NonZeroU16;

/// Ids in use, each with its waiting request `T`. Ids are handed out in
/// rising order, wrapping after 65,535 and skipping ids still in use, so a
/// just-freed id is not reused at once (a late duplicate ack of it would
/// then be taken for the new request's).
#[derive(Debug)]
pub(crate) struct PacketIds<T> {
    in_use: HashMap<NonZeroU16, T>,
    /// The last id handed out (0 before the first).
    last: u16,
}

impl<T> PacketIds<T> {
    pub(crate) fn new() -> PacketIds<T> {
        PacketIds {
            in_use: HashMap::new(),
            last: 0,
        }
    }

    /// A free id, now holding `request`; the request back when all 65,535
    /// ids are in use (the caller fails it with
    /// [`crate::MqttClientError::PacketIdsExhausted`]).
    pub(crate) fn allocate(&mut self, request: T) -> Result<NonZeroU16, T> {
        if self.in_use.len() >= usize::from(u16::MAX) {
            return Err(request);
        }
        // At least one id is free, so this loop ends within 65,535 steps.
        loop {
            self.last = self.last.wrapping_add(1);
            let Some(id) = NonZeroU16::new(self.last) else {
                continue;
            };
            if let std::collections::hash_map::Entry::Vacant(slot) = self.in_use.entry(id) {
                slot.insert(request);
                return Ok(id);
            }
        }
    }

    pub(crate) fn get_mut(&mut self, id: NonZeroU16) -> Option<&mut T> {
        self.in_use.get_mut(&id)
    }

    /// Frees `id`, returning what waited on it.
    pub(crate) fn release(&mut self, id: NonZeroU16) -> Option<T> {
        self.in_use.remove(&id)
    }

    /// Every id in use with what waits on it, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (NonZeroU16, &T)> + '_ {
        self.in_use.iter().map(|(&id, request)| (id, request))
    }

    /// Frees every id, returning what waited (when the connection ends).
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = T> + '_ {
        self.in_use.drain().map(|(_, request)| request)
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.in_use.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ids rise from 1, skip those in use after wrapping, and never are 0.
    #[test]
    fn ids_rise_wrap_and_skip_those_in_use() {
        let mut ids = PacketIds::new();
        assert_eq!(ids.allocate("a").unwrap().get(), 1);
        assert_eq!(ids.allocate("b").unwrap().get(), 2);
        assert_eq!(ids.release(NonZeroU16::new(1).unwrap()), Some("a"));
        ids.last = u16::MAX - 1;
        assert_eq!(ids.allocate("c").unwrap().get(), u16::MAX);
        // 0 is skipped and 1 is free again; 2 is still in use.
        assert_eq!(ids.allocate("d").unwrap().get(), 1);
        assert_eq!(ids.allocate("e").unwrap().get(), 3);
        assert_eq!(ids.len(), 4);
    }

    /// With all 65,535 ids in use the next allocation fails instead of looping.
    #[test]
    fn exhaustion_is_an_error() {
        let mut ids = PacketIds::new();
        for _ in 0..u16::MAX {
            ids.allocate(()).unwrap();
        }
        assert_eq!(ids.allocate(()), Err(()));
        assert_eq!(ids.drain().count(), usize::from(u16::MAX));
    }
}
