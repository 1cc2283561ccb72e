//! The client ids connected to this node: a second connection with the
//! same id takes the session over (the first gets DISCONNECT 0x8E and is
//! closed [MQTT-3.1.4-3]), and a connection with the id cancels the wait of
//! that id's delayed will [MQTT-3.1.3-9]. A takeover by a connection on
//! another node arrives as a session record of a higher generation
//! ([`Registry::claimed_elsewhere`], fed by the session store), and cancels
//! the wait of a delayed will of an older generation the same way.
//!
//! A cancelled wait only saves the work: whether a delayed will is
//! published is decided by the order of the sessions topic (`will`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

use crate::session::Generation;

#[derive(Default)]
pub struct Registry {
    inner: Mutex<Inner>,
}

struct Holder {
    local: u64,
    taken_over: CancellationToken,
    /// Cancelled once the connection let go of the session (its last
    /// snapshot written): a connection taking it over on this node waits
    /// for it, so it resumes from that snapshot.
    done: CancellationToken,
    /// Set when a connection on another node took the session over.
    elsewhere: Arc<AtomicBool>,
    /// The session generation the connection wrote, once it did.
    session: Option<Generation>,
}

#[derive(Default)]
struct Inner {
    next_generation: u64,
    connected: HashMap<String, Holder>,
    delayed_wills: HashMap<String, DelayedWill>,
}

/// A will waiting out its delay on this node.
struct DelayedWill {
    ticket: u64,
    /// The session generation whose will it is.
    generation: Generation,
    cancel: CancellationToken,
}

/// A connection's hold on its client id.
pub struct Claim {
    pub generation: u64,
    /// Cancelled when another connection takes the id over.
    pub taken_over: CancellationToken,
    /// The connection that held the id here before, done once it let go.
    pub previous_done: Option<CancellationToken>,
    done: CancellationToken,
    elsewhere: Arc<AtomicBool>,
}

impl Claim {
    /// Whether the connection that took the id over is on another node
    /// (whose claim fences out this one's writes).
    pub fn taken_elsewhere(&self) -> bool {
        self.elsewhere.load(Ordering::Acquire)
    }
}

impl Registry {
    /// Takes `client_id` for a new connection.
    pub fn claim(&self, client_id: &str) -> Claim {
        let mut inner = self.inner.lock().expect("never poisoned");
        inner.next_generation += 1;
        let generation = inner.next_generation;
        let (taken_over, done) = (CancellationToken::new(), CancellationToken::new());
        let elsewhere = Arc::new(AtomicBool::new(false));
        let holder = Holder {
            local: generation,
            taken_over: taken_over.clone(),
            done: done.clone(),
            elsewhere: elsewhere.clone(),
            session: None,
        };
        let previous = inner.connected.insert(client_id.to_owned(), holder);
        if let Some(previous) = &previous {
            previous.taken_over.cancel();
        }
        if let Some(will) = inner.delayed_wills.remove(client_id) {
            will.cancel.cancel();
        }
        Claim {
            generation,
            taken_over,
            previous_done: previous.map(|previous| previous.done),
            done,
            elsewhere,
        }
    }

    /// Gives the id up (and signals a successor waiting for it), unless
    /// another connection took it since.
    pub fn release(&self, client_id: &str, claim: &Claim) {
        claim.done.cancel();
        let generation = claim.generation;
        let mut inner = self.inner.lock().expect("never poisoned");
        if inner
            .connected
            .get(client_id)
            .is_some_and(|holder| holder.local == generation)
        {
            inner.connected.remove(client_id);
        }
    }

    /// Records the session generation the connection `local` wrote.
    pub fn set_session(&self, client_id: &str, local: u64, session: Generation) {
        let mut inner = self.inner.lock().expect("never poisoned");
        if let Some(holder) = inner.connected.get_mut(client_id)
            && holder.local == local
        {
            holder.session = Some(session);
        }
    }

    /// A session record of `generation` was written for `client_id`
    /// (by any node): a local connection holding an older generation was
    /// taken over, and a delayed will of an older generation need not wait.
    pub fn claimed_elsewhere(&self, client_id: &str, generation: &Generation) {
        let mut inner = self.inner.lock().expect("never poisoned");
        if inner
            .delayed_wills
            .get(client_id)
            .is_some_and(|will| will.generation < *generation)
            && let Some(will) = inner.delayed_wills.remove(client_id)
        {
            will.cancel.cancel();
        }
        if let Some(holder) = inner.connected.get(client_id)
            && holder
                .session
                .as_ref()
                .is_some_and(|held| held < generation)
        {
            holder.elsewhere.store(true, Ordering::Release);
            holder.taken_over.cancel();
        }
    }

    /// A token that a new connection with `client_id` cancels (here, or
    /// elsewhere with a generation above `generation`), and its ticket for
    /// [`Registry::will_done`]: the delayed will of `generation` waits on it.
    pub fn delay_will(&self, client_id: &str, generation: &Generation) -> (u64, CancellationToken) {
        let cancel = CancellationToken::new();
        let mut inner = self.inner.lock().expect("never poisoned");
        inner.next_generation += 1;
        let ticket = inner.next_generation;
        let will = DelayedWill {
            ticket,
            generation: generation.clone(),
            cancel: cancel.clone(),
        };
        if let Some(previous) = inner.delayed_wills.insert(client_id.to_owned(), will) {
            previous.cancel.cancel();
        }
        (ticket, cancel)
    }

    /// Forgets a delayed will that fired.
    pub fn will_done(&self, client_id: &str, ticket: u64) {
        let mut inner = self.inner.lock().expect("never poisoned");
        if inner
            .delayed_wills
            .get(client_id)
            .is_some_and(|will| will.ticket == ticket)
        {
            inner.delayed_wills.remove(client_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A second claim of an id signals the first holder, and the first
    /// holder's release then leaves the second in place.
    #[test]
    fn a_second_connection_takes_the_id_over() {
        let registry = Registry::default();
        let first = registry.claim("sensor");
        let second = registry.claim("sensor");
        assert!(first.taken_over.is_cancelled());
        assert!(!second.taken_over.is_cancelled());
        assert!(!second.previous_done.as_ref().unwrap().is_cancelled());
        registry.release("sensor", &first);
        assert!(
            second.previous_done.as_ref().unwrap().is_cancelled(),
            "the first let go"
        );
        let third = registry.claim("sensor");
        assert!(
            second.taken_over.is_cancelled(),
            "the second still held the id"
        );
        assert!(!second.taken_elsewhere());
        registry.release("sensor", &third);
    }

    /// A newer session generation written elsewhere takes the connection
    /// over; its own or an older one does not.
    #[test]
    fn a_newer_generation_elsewhere_takes_over() {
        let registry = Registry::default();
        let claim = registry.claim("sensor");
        let generation = |counter, owner: &str| Generation {
            counter,
            owner: owner.to_owned(),
        };
        registry.claimed_elsewhere("sensor", &generation(9, "z"));
        assert!(
            !claim.taken_over.is_cancelled(),
            "no generation written yet"
        );
        registry.set_session("sensor", claim.generation, generation(4, "a"));
        registry.claimed_elsewhere("sensor", &generation(4, "a"));
        registry.claimed_elsewhere("sensor", &generation(3, "z"));
        assert!(!claim.taken_over.is_cancelled());
        registry.claimed_elsewhere("sensor", &generation(5, "b"));
        assert!(claim.taken_over.is_cancelled() && claim.taken_elsewhere());
    }

    /// Connecting with an id cancels its delayed will.
    #[test]
    fn a_reconnect_cancels_the_delayed_will() {
        let registry = Registry::default();
        let (_, will) = registry.delay_will("sensor", &generation(1, "a"));
        let _claim = registry.claim("sensor");
        assert!(will.is_cancelled());
    }

    /// A newer generation written by another node cancels the wait of a
    /// delayed will; the will's own generation (its record written again)
    /// and older ones do not, nor does a will that already fired.
    #[test]
    fn a_newer_generation_elsewhere_cancels_the_delayed_will() {
        let registry = Registry::default();
        let (ticket, will) = registry.delay_will("sensor", &generation(4, "a"));
        registry.claimed_elsewhere("sensor", &generation(4, "a"));
        registry.claimed_elsewhere("sensor", &generation(3, "z"));
        registry.claimed_elsewhere("other", &generation(9, "z"));
        assert!(!will.is_cancelled());
        registry.claimed_elsewhere("sensor", &generation(5, "b"));
        assert!(will.is_cancelled());
        let (ticket_after, fired) = registry.delay_will("sensor", &generation(6, "b"));
        assert_ne!(ticket, ticket_after);
        registry.will_done("sensor", ticket_after);
        registry.claimed_elsewhere("sensor", &generation(7, "c"));
        assert!(!fired.is_cancelled(), "it fired before the claim");
    }

    fn generation(counter: u64, owner: &str) -> Generation {
        Generation {
            counter,
            owner: owner.to_owned(),
        }
    }
}
