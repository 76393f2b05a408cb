//! One request per key at a time: callers asking about a key while a request for it is under
//! way wait for that request and share its outcome instead of making their own. The object
//! cache uses it for the store, the lazy mirror for the upstream.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// A key's slot: held while its request runs, then keeps the outcome and when it was known.
type Gate<V> = Arc<tokio::sync::Mutex<Option<(Instant, V)>>>;

/// The keys with a request under way or awaited.
#[derive(Debug)]
pub(crate) struct Flights<K, V> {
    gates: Mutex<HashMap<K, Gate<V>>>,
}

impl<K: Hash + Eq + Clone, V: Clone> Flights<K, V> {
    pub(crate) fn new() -> Flights<K, V> {
        Flights {
            gates: Mutex::new(HashMap::new()),
        }
    }

    /// A place in `key`'s queue.
    pub(crate) fn join(&self, key: K) -> Seat<'_, K, V> {
        let gate = Arc::clone(
            self.gates
                .lock()
                .expect("gates lock")
                .entry(key.clone())
                .or_default(),
        );
        Seat {
            flights: self,
            key,
            gate,
        }
    }

    /// Whether no key has a request under way or awaited.
    #[cfg(test)]
    pub(crate) fn is_idle(&self) -> bool {
        self.gates.lock().expect("gates lock").is_empty()
    }
}

/// A place in a key's queue; the key's slot goes when its last user does.
pub(crate) struct Seat<'f, K: Hash + Eq + Clone, V> {
    flights: &'f Flights<K, V>,
    key: K,
    gate: Gate<V>,
}

/// The key's slot, held: its owner makes the request.
pub(crate) type Slot<'s, V> = tokio::sync::MutexGuard<'s, Option<(Instant, V)>>;

impl<K: Hash + Eq + Clone, V: Clone> Seat<'_, K, V> {
    /// The key.
    pub(crate) fn key(&self) -> &K {
        &self.key
    }

    /// The slot if nobody holds it now.
    pub(crate) fn try_take(&self) -> Option<Slot<'_, V>> {
        self.gate.try_lock().ok()
    }

    /// The slot, once whoever holds it lets go.
    pub(crate) async fn take(&self) -> Slot<'_, V> {
        self.gate.lock().await
    }

    /// How many hold a place in this key's queue, this one included.
    #[cfg(test)]
    pub(crate) fn queued(&self) -> usize {
        Arc::strong_count(&self.gate) - 1
    }
}

impl<K: Hash + Eq + Clone, V> Drop for Seat<'_, K, V> {
    fn drop(&mut self) {
        let mut gates = self.flights.gates.lock().expect("gates lock");
        // Clones are only made under this lock: two means the map's and ours, nobody waiting.
        if Arc::strong_count(&self.gate) == 2 {
            gates.remove(&self.key);
        }
    }
}

/// The outcome of a request that began after `asked` if one already landed in `slot` (the
/// caller waited for it), else `request`'s, which is kept in `slot` for those waiting.
pub(crate) async fn share<V: Clone>(
    slot: &mut Slot<'_, V>,
    asked: Instant,
    request: impl Future<Output = V>,
) -> V {
    if let Some((known, outcome)) = &**slot
        && *known >= asked
    {
        return outcome.clone();
    }
    let outcome = request.await;
    **slot = Some((Instant::now(), outcome.clone()));
    outcome
}
