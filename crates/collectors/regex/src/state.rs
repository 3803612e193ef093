//! What the collector remembers between lines: fields stored under correlation keys, and
//! events held until a later line settles them.
//!
//! Sessions (`key` groups) and messages (`message_key` groups) live in two stores, as they live
//! for different times: a connection lasts minutes, a deferred delivery days. Memory is bounded
//! three ways: a key ends with its `end` line; a key not seen for its store's timeout (in log
//! time) is dropped; and beyond `max_open_keys` the least recently seen key is dropped (counted,
//! and reported as a warning). A dropped key's held event is emitted with what is known, never
//! lost.
//!
//! Two sets of marks sit beside them, bounded the same way: message keys a `drop` line marked
//! (their events are discarded), and message keys that emitted a delivery (for
//! `unless_delivered`, so one delivery counts once).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use mailflow_core::Direction;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::fields::Fields;

/// Message keys a session remembers before it prunes the ones already gone: a session may
/// carry any number of messages (a queue runner delivering thousands), so its list is not
/// capped, which would leave the messages past the cap behind when the session ends; instead it
/// keeps only keys still in the message store (each once) whenever the list doubles, so it stays
/// within twice the session's live messages, and those within `max_open_keys`.
const MIN_LINKS_BEFORE_PRUNING: usize = 64;

/// An event waiting for a later line of its key: a deferral that a delivery may replace.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Held {
    pub fields: Fields,
    pub time: i64,
    pub direction: Direction,
    pub file: Arc<str>,
    pub line: u64,
    /// The message key the event was emitted under, for `drop` marks and delivered keys.
    pub key: Option<Box<[u8]>>,
    /// Its pattern has `unless_delivered`: a delivery marks the key.
    pub once: bool,
    /// Tells a held event from the one that replaced it, for `hold_secs` deadlines.
    pub id: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Entry {
    /// Position in the recency order; a checkpoint keeps the order, not the numbers.
    #[serde(skip)]
    seq: u64,
    /// Log time the key was last seen, in microseconds.
    seen: i64,
    pub fields: Fields,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<Held>,
    /// Sessions only: message keys seen with this session's key, to forget with it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<Box<[u8]>>,
    /// Sessions only: the length of `messages` at which it is next pruned.
    prune_at: usize,
}

/// Keys of one kind and what is stored under them.
#[derive(Clone)]
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

    /// How many keys hold an event.
    #[cfg(test)]
    pub fn held(&self) -> usize {
        self.entries.values().filter(|e| e.held.is_some()).count()
    }

    /// Takes the keys of a restored checkpoint, keeping this store's limits (the config's) and
    /// counts (the run's).
    pub fn restore(&mut self, saved: Store) {
        (self.entries, self.order, self.next_seq) = (saved.entries, saved.order, saved.next_seq);
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

    /// Whether `key` is stored.
    pub fn contains(&self, key: &[u8]) -> bool {
        self.entries.contains_key(key)
    }

    /// Remembers that `message` was seen with the session `key`; `messages` is the message
    /// store, to prune keys no longer in it (see [`MIN_LINKS_BEFORE_PRUNING`]).
    pub fn link(&mut self, key: &[u8], message: &[u8], messages: &Store) {
        let Some(entry) = self.entries.get_mut(key) else { return };
        // Lines of one message mostly come together: the last link is the cheap check.
        if entry.messages.last().is_some_and(|m| &m[..] == message) {
            return;
        }
        if entry.messages.len() >= entry.prune_at.max(MIN_LINKS_BEFORE_PRUNING) {
            let mut seen = HashSet::new();
            entry.messages.retain(|m| messages.contains(m) && seen.insert(m.clone()));
            entry.prune_at = entry.messages.len() * 2;
        }
        entry.messages.push(message.into());
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

/// A checkpoint holds a store as its keys, least recently seen first, each with its entry: the
/// order is what matters, and each key is written once.
impl Serialize for Store {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let keys: Vec<_> = self.order.values().filter_map(|key| Some((key, self.entries.get(key)?))).collect();
        keys.serialize(serializer)
    }
}

/// Without limits: [`Store::restore`] puts the keys in a store made from the config.
impl<'de> Deserialize<'de> for Store {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Store, D::Error> {
        let mut store = Store::new(usize::MAX, u64::MAX);
        for (key, mut entry) in Vec::<(Box<[u8]>, Entry)>::deserialize(deserializer)? {
            entry.seq = store.next_seq;
            store.next_seq += 1;
            store.order.insert(entry.seq, key.clone());
            if store.entries.insert(key, entry).is_some() {
                return Err(D::Error::custom("a key is listed twice"));
            }
        }
        Ok(store)
    }
}

/// Keys marked for a while: by a `drop` line (with the pattern that dropped them) or by a
/// delivery. Bounded like the stores, by count and by time; a mark that goes early is forgotten
/// without a trace (a later line of its key then counts as if it had not been marked).
#[derive(Clone)]
pub struct Marks {
    marks: std::collections::HashMap<Box<[u8]>, (u64, i64, usize), foldhash::fast::FixedState>,
    /// Keys by when they were marked, oldest first.
    order: BTreeMap<u64, Box<[u8]>>,
    next_seq: u64,
    max_keys: usize,
    timeout_micros: i64,
}

impl Marks {
    pub fn new(max_keys: usize, timeout_secs: u64) -> Marks {
        let timeout_micros = i64::try_from(timeout_secs).unwrap_or(i64::MAX).saturating_mul(1_000_000);
        Marks { marks: Default::default(), order: BTreeMap::new(), next_seq: 0, max_keys, timeout_micros }
    }

    /// Marks `key` at `now`, with `tag` (the pattern that marked it).
    pub fn mark(&mut self, key: &[u8], now: i64, tag: usize) {
        let seq = self.next_seq;
        self.next_seq += 1;
        if let Some((old, _, _)) = self.marks.insert(key.into(), (seq, now, tag)) {
            self.order.remove(&old);
        }
        self.order.insert(seq, key.into());
        while self.marks.len() > self.max_keys {
            let Some((_, oldest)) = self.order.pop_first() else { break };
            self.marks.remove(&oldest);
        }
    }

    /// Forgets marks older than the timeout before `now`.
    pub fn expire(&mut self, now: i64) {
        while let Some((_, key)) = self.order.first_key_value() {
            let Some(&(_, marked, _)) = self.marks.get(key) else { break };
            if now.saturating_sub(marked) <= self.timeout_micros {
                break;
            }
            if let Some((_, key)) = self.order.pop_first() {
                self.marks.remove(&key);
            }
        }
    }

    /// Takes the marks of a restored checkpoint, keeping this set's limits.
    pub fn restore(&mut self, saved: Marks) {
        (self.marks, self.order, self.next_seq) = (saved.marks, saved.order, saved.next_seq);
    }

    /// Every tag, for checking a restored checkpoint.
    pub fn tags(&self) -> impl Iterator<Item = usize> + '_ {
        self.marks.values().map(|&(_, _, tag)| tag)
    }

    /// The tag of `key`'s mark.
    pub fn get(&self, key: &[u8]) -> Option<usize> {
        self.marks.get(key).map(|&(_, _, tag)| tag)
    }

    /// The tag of the mark of `key` or of a key it extends: keys are parts joined by spaces, and
    /// a mark on `Q2` covers `Q2 example.net`.
    pub fn covering(&self, key: &[u8]) -> Option<usize> {
        if self.marks.is_empty() {
            return None;
        }
        let prefixes = key.iter().enumerate().filter(|&(_, &b)| b == b' ').map(|(i, _)| &key[..i]);
        std::iter::once(key).chain(prefixes).find_map(|k| self.get(k))
    }
}

/// Like a store: (key, time marked, tag), oldest first.
impl Serialize for Marks {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let marks: Vec<_> = self
            .order
            .values()
            .filter_map(|key| self.marks.get(key).map(|&(_, marked, tag)| (key, marked, tag)))
            .collect();
        marks.serialize(serializer)
    }
}

/// Without limits: [`Marks::restore`] puts the marks in a set made from the config.
impl<'de> Deserialize<'de> for Marks {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Marks, D::Error> {
        let mut marks = Marks::new(usize::MAX, u64::MAX);
        for (key, marked, tag) in Vec::<(Box<[u8]>, i64, usize)>::deserialize(deserializer)? {
            let seq = marks.next_seq;
            marks.next_seq += 1;
            marks.order.insert(seq, key.clone());
            if marks.marks.insert(key, (seq, marked, tag)).is_some() {
                return Err(D::Error::custom("a mark is listed twice"));
            }
        }
        Ok(marks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(line: u64) -> Held {
        Held {
            fields: Fields::default(),
            time: 0,
            direction: Direction::Outbound,
            file: Arc::from("f"),
            line,
            key: None,
            once: false,
            id: line,
        }
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
        sessions.link(b"s1", b"1.1", &messages);
        sessions.link(b"s1", b"1.2", &messages);
        for message in sessions.remove(b"s1", &mut released) {
            messages.remove_settled(&message);
        }
        assert!(messages.get(b"1.1").is_none());
        assert!(messages.get(b"1.2").is_some(), "a held message outlives its session");
        assert!(released.is_empty());
    }

    #[test]
    fn a_session_forgets_every_message_it_carried_not_just_the_first_64() {
        let (mut sessions, mut messages) = (Store::new(10, 60), Store::new(100_000, 60));
        let mut released = Vec::new();
        sessions.touch(b"s1", 0, &mut released);
        for i in 0..1000 {
            let key = format!("1.{i}");
            messages.touch(key.as_bytes(), 0, &mut released);
            sessions.link(b"s1", key.as_bytes(), &messages);
            sessions.link(b"s1", key.as_bytes(), &messages);
            // Half of them end on their own (an emitted event removes its message).
            if i % 2 == 0 {
                messages.remove(key.as_bytes(), &mut released);
            }
        }
        let linked = sessions.get(b"s1").unwrap().messages.len();
        assert!(linked < 1000, "keys already gone are pruned as the list grows: {linked}");
        for message in sessions.remove(b"s1", &mut released) {
            messages.remove_settled(&message);
        }
        assert_eq!(messages.len(), 0, "every message of the session went with it");
    }

    #[test]
    fn marks_cover_longer_keys_and_are_bounded() {
        let mut marks = Marks::new(2, 60);
        marks.mark(b"Q2", 0, 7);
        assert_eq!(marks.covering(b"Q2"), Some(7));
        assert_eq!(marks.covering(b"Q2 example.net"), Some(7));
        assert_eq!(marks.covering(b"Q22 example.net"), None);
        assert_eq!(marks.covering(b"Q1 Q2"), None);
        marks.mark(b"Q3", 1, 1);
        marks.mark(b"Q4", 3_000_000, 1);
        assert_eq!(marks.get(b"Q2"), None, "the oldest goes over the limit");
        marks.expire(62_000_001);
        assert_eq!(marks.get(b"Q3"), None);
        assert_eq!(marks.get(b"Q4"), Some(1));
    }
}
