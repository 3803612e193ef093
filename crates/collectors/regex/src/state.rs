//! What the collector remembers between lines: fields stored under correlation keys, and
//! events held until a later line settles them.
//!
//! Sessions (`key` groups) and messages (`message_key` groups) live in two stores, as they live
//! for different times: a connection lasts minutes, a deferred delivery days. Memory is bounded
//! three ways: a key ends with its `end` line; a key not seen for its store's timeout (in log
//! time) is dropped; and beyond `max_open_keys` the least recently seen key is dropped (counted,
//! and reported as a warning). A dropped key's held event is emitted with what is known, never
//! lost.

use std::collections::BTreeMap;
use std::sync::Arc;

use mailflow_core::Direction;

use crate::fields::Fields;

/// Message keys a session remembers, to forget them with it.
const MAX_LINKED_MESSAGES: usize = 64;

/// An event waiting for a later line of its key: a deferral that a delivery may replace.
#[derive(Debug, Clone)]
pub struct Held {
    pub fields: Fields,
    pub time: i64,
    pub direction: Direction,
    pub file: Arc<str>,
    pub line: u64,
}

#[derive(Debug, Default)]
pub struct Entry {
    /// Position in the recency order.
    seq: u64,
    /// Log time the key was last seen, in microseconds.
    seen: i64,
    pub fields: Fields,
    pub held: Option<Held>,
    /// Sessions only: message keys seen with this session's key, to forget with it.
    pub messages: Vec<Box<[u8]>>,
}

/// Keys of one kind and what is stored under them.
pub struct Store {
    entries: std::collections::HashMap<Box<[u8]>, Entry, foldhash::fast::FixedState>,
    /// Keys by when they were last seen, oldest first.
    order: BTreeMap<u64, Box<[u8]>>,
    next_seq: u64,
    max_keys: usize,
    timeout_micros: i64,
    /// Keys dropped over `max_keys`, and how many of them held an event.
    pub evicted: u64,
    pub evicted_held: u64,
}

impl Store {
    pub fn new(max_keys: usize, timeout_secs: u64) -> Store {
        let timeout_micros = i64::try_from(timeout_secs).unwrap_or(i64::MAX).saturating_mul(1_000_000);
        Store {
            entries: Default::default(),
            order: BTreeMap::new(),
            next_seq: 0,
            max_keys,
            timeout_micros,
            evicted: 0,
            evicted_held: 0,
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Drops keys not seen for the timeout before `now`; their held events go to `released`.
    pub fn expire(&mut self, now: i64, released: &mut Vec<Held>) {
        while let Some((_, key)) = self.order.first_key_value() {
            let Some(entry) = self.entries.get(key) else { break };
            if now.saturating_sub(entry.seen) <= self.timeout_micros {
                break;
            }
            let key = key.clone();
            self.remove(&key, released);
        }
    }

    /// The entry of `key`, created if new (which may drop the least recently seen key), marked
    /// as seen at `now`.
    pub fn touch(&mut self, key: &[u8], now: i64, released: &mut Vec<Held>) -> &mut Entry {
        let seq = self.next_seq;
        self.next_seq += 1;
        if let Some(entry) = self.entries.get_mut(key) {
            self.order.remove(&entry.seq);
            entry.seq = seq;
            entry.seen = entry.seen.max(now);
            self.order.insert(seq, key.into());
            // Borrowck: look it up again to hand it out.
            return self.entries.get_mut(key).expect("the entry was just found");
        }
        while self.entries.len() >= self.max_keys {
            let Some((_, oldest)) = self.order.pop_first() else { break };
            if let Some(entry) = self.entries.remove(&oldest) {
                self.evicted += 1;
                if let Some(held) = entry.held {
                    self.evicted_held += 1;
                    released.push(held);
                }
            }
        }
        self.order.insert(seq, key.into());
        self.entries.entry(key.into()).or_insert(Entry { seq, seen: now, ..Entry::default() })
    }

    #[cfg(test)]
    pub fn get(&self, key: &[u8]) -> Option<&Entry> {
        self.entries.get(key)
    }

    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut Entry> {
        self.entries.get_mut(key)
    }

    /// Forgets `key`; its held event goes to `released`. Returns the message keys it linked.
    pub fn remove(&mut self, key: &[u8], released: &mut Vec<Held>) -> Vec<Box<[u8]>> {
        let Some(entry) = self.entries.remove(key) else { return Vec::new() };
        self.order.remove(&entry.seq);
        released.extend(entry.held);
        entry.messages
    }

    /// Forgets `key` unless it holds an event (a message whose session ended, say, while its
    /// deferral waits for the retry).
    pub fn remove_settled(&mut self, key: &[u8]) {
        if self.entries.get(key).is_some_and(|e| e.held.is_none()) {
            self.remove(key, &mut Vec::new());
        }
    }

    /// Remembers that `message` was seen with the session `key`.
    pub fn link(&mut self, key: &[u8], message: &[u8]) {
        if let Some(entry) = self.entries.get_mut(key)
            && entry.messages.len() < MAX_LINKED_MESSAGES
            && !entry.messages.iter().any(|m| &m[..] == message)
        {
            entry.messages.push(message.into());
        }
    }

    /// Releases every held event, oldest key first, and forgets everything.
    pub fn finish(&mut self, released: &mut Vec<Held>) {
        let order = std::mem::take(&mut self.order);
        for key in order.into_values() {
            if let Some(entry) = self.entries.remove(&key) {
                released.extend(entry.held);
            }
        }
        self.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(line: u64) -> Held {
        Held { fields: Fields::default(), time: 0, direction: Direction::Outbound, file: Arc::from("f"), line }
    }

    #[test]
    fn bounded_by_count_and_by_time() {
        let mut store = Store::new(2, 60);
        let mut released = Vec::new();
        store.touch(b"sa", 0, &mut released).held = Some(held(1));
        store.touch(b"sb", 1_000_000, &mut released);
        store.touch(b"sa", 2_000_000, &mut released);
        store.touch(b"sc", 3_000_000, &mut released);
        assert!(store.get(b"sb").is_none(), "the least recently seen key goes");
        assert_eq!((store.evicted, store.evicted_held, released.len()), (1, 0, 0));
        store.expire(62_500_000, &mut released);
        assert!(store.get(b"sa").is_none() && store.get(b"sc").is_some());
        assert_eq!(released.len(), 1, "a timed-out key's held event is released");
        store.touch(b"sd", 62_500_000, &mut released).held = Some(held(2));
        store.finish(&mut released);
        assert_eq!(released.iter().map(|h| h.line).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(store.len(), 0);
    }

    #[test]
    fn only_settled_keys_go_with_their_session() {
        let (mut sessions, mut messages) = (Store::new(10, 60), Store::new(10, 60));
        let mut released = Vec::new();
        sessions.touch(b"s1", 0, &mut released);
        messages.touch(b"1.1", 0, &mut released);
        messages.touch(b"1.2", 0, &mut released).held = Some(held(7));
        sessions.link(b"s1", b"1.1");
        sessions.link(b"s1", b"1.2");
        for message in sessions.remove(b"s1", &mut released) {
            messages.remove_settled(&message);
        }
        assert!(messages.get(b"1.1").is_none());
        assert!(messages.get(b"1.2").is_some(), "a held message outlives its session");
        assert!(released.is_empty());
    }
}
