//! Daily rollups: the counters everything downstream is computed from.
//!
//! A [`Rollup`] maps (local date, source, direction, connector) to [`Counters`]. Counters only
//! add, so rollups merge associatively and commutatively: partial rollups from many files,
//! threads or hosts combine into exactly the rollup of the whole stream. The store persists and
//! remote agents send exactly these.

use std::collections::BTreeMap;
use std::ops::AddAssign;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::event::{Direction, MessageEvent, Status, TlsVersion, Trust};

/// Messages per TLS version; all seven are always present.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsCounts {
    pub none: u64,
    pub ssl3: u64,
    pub tls1_0: u64,
    pub tls1_1: u64,
    pub tls1_2: u64,
    pub tls1_3: u64,
    pub unknown: u64,
}

impl TlsCounts {
    pub fn get(&self, version: TlsVersion) -> u64 {
        match version {
            TlsVersion::None => self.none,
            TlsVersion::Ssl3 => self.ssl3,
            TlsVersion::Tls1_0 => self.tls1_0,
            TlsVersion::Tls1_1 => self.tls1_1,
            TlsVersion::Tls1_2 => self.tls1_2,
            TlsVersion::Tls1_3 => self.tls1_3,
            TlsVersion::Unknown => self.unknown,
        }
    }

    pub fn get_mut(&mut self, version: TlsVersion) -> &mut u64 {
        match version {
            TlsVersion::None => &mut self.none,
            TlsVersion::Ssl3 => &mut self.ssl3,
            TlsVersion::Tls1_0 => &mut self.tls1_0,
            TlsVersion::Tls1_1 => &mut self.tls1_1,
            TlsVersion::Tls1_2 => &mut self.tls1_2,
            TlsVersion::Tls1_3 => &mut self.tls1_3,
            TlsVersion::Unknown => &mut self.unknown,
        }
    }

    /// Messages that were (or may have been) protected by TLS: all but `none`.
    pub fn protected(&self) -> u64 {
        self.total() - self.none
    }

    pub fn total(&self) -> u64 {
        TlsVersion::ALL.iter().map(|v| self.get(*v)).sum()
    }
}

/// Messages per certificate trust level; `unknown` holds plaintext and unlogged trust.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustCounts {
    pub anonymous: u64,
    pub untrusted: u64,
    pub trusted: u64,
    pub verified: u64,
    pub unknown: u64,
}

impl TrustCounts {
    fn slot(&mut self, trust: Trust) -> &mut u64 {
        match trust {
            Trust::Anonymous => &mut self.anonymous,
            Trust::Untrusted => &mut self.untrusted,
            Trust::Trusted => &mut self.trusted,
            Trust::Verified => &mut self.verified,
            Trust::Unknown => &mut self.unknown,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusCounts {
    pub delivered: u64,
    pub deferred: u64,
    pub failed: u64,
    pub rejected: u64,
}

impl StatusCounts {
    fn slot(&mut self, status: Status) -> &mut u64 {
        match status {
            Status::Delivered => &mut self.delivered,
            Status::Deferred => &mut self.deferred,
            Status::Failed => &mut self.failed,
            Status::Rejected => &mut self.rejected,
        }
    }
}

/// What a rollup counts for one key; the same counters appear in the report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    pub messages: u64,
    pub recipients: u64,
    pub bytes: u64,
    pub tls: TlsCounts,
    pub trust: TrustCounts,
    pub status: StatusCounts,
}

impl Counters {
    /// Counts one event, filling in the documented defaults for absent fields.
    pub fn count(&mut self, event: &MessageEvent) {
        let mut one = Counters {
            messages: 1,
            recipients: u64::from(event.recipients.unwrap_or(1)),
            bytes: event.size.unwrap_or(0),
            ..Default::default()
        };
        *one.tls.get_mut(event.tls.version.unwrap_or(TlsVersion::Unknown)) = 1;
        *one.trust.slot(event.tls.trust.unwrap_or(Trust::Unknown)) = 1;
        *one.status.slot(event.status.unwrap_or(Status::Delivered)) = 1;
        *self += one;
    }

    /// `part / messages`, or 0 when there are no messages.
    pub fn share(&self, part: u64) -> f64 {
        if self.messages == 0 { 0.0 } else { part as f64 / self.messages as f64 }
    }
}

/// Counts saturate instead of overflowing: sizes come from input, and saturating addition is
/// still associative and commutative, so merging stays exact below `u64::MAX`.
macro_rules! add_fields {
    ($ty:ty: $($field:ident),+) => {
        impl AddAssign for $ty {
            fn add_assign(&mut self, other: Self) {
                $(self.$field = self.$field.saturating_add(other.$field);)+
            }
        }
    };
}
add_fields!(TlsCounts: none, ssl3, tls1_0, tls1_1, tls1_2, tls1_3, unknown);
add_fields!(TrustCounts: anonymous, untrusted, trusted, verified, unknown);
add_fields!(StatusCounts: delivered, deferred, failed, rejected);

impl AddAssign for Counters {
    fn add_assign(&mut self, other: Self) {
        self.messages = self.messages.saturating_add(other.messages);
        self.recipients = self.recipients.saturating_add(other.recipients);
        self.bytes = self.bytes.saturating_add(other.bytes);
        self.tls += other.tls;
        self.trust += other.trust;
        self.status += other.status;
    }
}

/// The key of one rollup row.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RollupKey {
    /// Local date in `site.timezone`.
    pub date: NaiveDate,
    /// The collector that saw the traffic.
    pub source: String,
    pub direction: Direction,
    pub connector: String,
}

/// Counters per (date, source, direction, connector). Serialized as a list of rows.
///
/// Stored nested, in `RollupKey`'s order, so counting an event into a row that exists looks it
/// up by `&str` and allocates nothing: this runs once per event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rollup {
    rows: BTreeMap<NaiveDate, BySource>,
}

type BySource = BTreeMap<String, BTreeMap<Direction, ByConnector>>;
type ByConnector = BTreeMap<String, Counters>;

/// One serialized rollup row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollupRow {
    #[serde(flatten)]
    pub key: RollupKey,
    #[serde(flatten)]
    pub counters: Counters,
}

impl Rollup {
    pub fn new() -> Self {
        Rollup::default()
    }

    /// Counts `event` under `date`, `source` and `connector`.
    pub fn add(&mut self, date: NaiveDate, source: &str, connector: &str, event: &MessageEvent) {
        self.row(date, source, event.direction, connector).count(event);
    }

    /// Adds counts a source aggregated itself.
    pub fn add_counters(&mut self, key: &RollupKey, counters: &Counters) {
        *self.row(key.date, &key.source, key.direction, &key.connector) += *counters;
    }

    /// The counters of one row, created empty if missing.
    fn row(&mut self, date: NaiveDate, source: &str, direction: Direction, connector: &str) -> &mut Counters {
        let directions = by_name(self.rows.entry(date).or_default(), source);
        by_name(directions.entry(direction).or_default(), connector)
    }

    /// Adds `other` into `self`. Associative and commutative.
    pub fn merge(&mut self, other: Rollup) {
        for (key, counters) in other.iter() {
            *self.row(key.date, &key.source, key.direction, &key.connector) += *counters;
        }
    }

    /// Every row, ordered by (date, source, direction, connector).
    pub fn iter(&self) -> impl Iterator<Item = (RollupKey, &Counters)> {
        self.rows.iter().flat_map(|(date, sources)| {
            sources.iter().flat_map(move |(source, directions)| {
                directions.iter().flat_map(move |(direction, connectors)| {
                    connectors.iter().map(move |(connector, counters)| {
                        let key = RollupKey {
                            date: *date,
                            source: source.clone(),
                            direction: *direction,
                            connector: connector.clone(),
                        };
                        (key, counters)
                    })
                })
            })
        })
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn from_rows(rows: impl IntoIterator<Item = RollupRow>) -> Self {
        let mut rollup = Rollup::new();
        for RollupRow { key, counters } in rows {
            *rollup.row(key.date, &key.source, key.direction, &key.connector) += counters;
        }
        rollup
    }
}

/// `map[name]`, created empty if missing; the name is copied only then.
fn by_name<'m, V: Default>(map: &'m mut BTreeMap<String, V>, name: &str) -> &'m mut V {
    if !map.contains_key(name) {
        map.insert(name.to_string(), V::default());
    }
    map.get_mut(name).expect("inserted above")
}

impl Serialize for Rollup {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter().map(|(key, counters)| RollupRow { key, counters: *counters }))
    }
}

impl<'de> Deserialize<'de> for Rollup {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Vec::<RollupRow>::deserialize(d).map(Rollup::from_rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Tls;
    use proptest::prelude::*;

    fn arb_event() -> impl Strategy<Value = (u8, u8, u8, MessageEvent)> {
        (
            0u8..5,
            0u8..3,
            0u8..3,
            any::<bool>(),
            proptest::sample::select(TlsVersion::ALL.to_vec()),
            proptest::option::of(proptest::sample::select(vec![Trust::Anonymous, Trust::Trusted, Trust::Verified])),
            proptest::option::of(proptest::sample::select(vec![
                Status::Delivered,
                Status::Deferred,
                Status::Failed,
                Status::Rejected,
            ])),
            proptest::option::of(0u32..50),
            proptest::option::of(0u64..10_000_000),
        )
            .prop_map(|(day, source, connector, inbound, version, trust, status, recipients, size)| {
                let direction = if inbound { Direction::Inbound } else { Direction::Outbound };
                let mut e = MessageEvent::new("2026-12-01T00:00:00Z".parse().unwrap(), direction);
                e.tls = Tls { version: Some(version), cipher: None, trust };
                e.status = status;
                e.recipients = recipients;
                e.size = size;
                (day, source, connector, e)
            })
    }

    fn rollup_of(events: &[(u8, u8, u8, MessageEvent)]) -> Rollup {
        let mut r = Rollup::new();
        let base: NaiveDate = "2026-12-01".parse().unwrap();
        for (day, source, connector, e) in events {
            let date = base + chrono::Days::new(u64::from(*day));
            r.add(date, &format!("s{source}"), &format!("c{connector}"), e);
        }
        r
    }

    proptest! {
        /// Any split of an event stream, rolled up part by part and merged in any order,
        /// equals the rollup of the whole stream.
        #[test]
        fn merge_of_any_split_in_any_order_equals_the_whole(
            events in proptest::collection::vec(arb_event(), 0..200),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..6),
            order in any::<prop::sample::Index>(),
        ) {
            let whole = rollup_of(&events);
            let mut points: Vec<usize> = cuts.iter().map(|i| i.index(events.len() + 1)).collect();
            points.extend([0, events.len()]);
            points.sort_unstable();
            let mut parts: Vec<Rollup> = points.windows(2).map(|w| rollup_of(&events[w[0]..w[1]])).collect();
            let rotate = order.index(parts.len());
            parts.rotate_left(rotate);
            parts.reverse();
            // Merge as a tree (pairs first) to exercise associativity, not just a left fold.
            while parts.len() > 1 {
                let mut next = Vec::new();
                let mut it = parts.into_iter();
                while let Some(mut a) = it.next() {
                    if let Some(b) = it.next() { a.merge(b); }
                    next.push(a);
                }
                parts = next;
            }
            let merged = parts.pop().unwrap_or_default();
            prop_assert_eq!(merged, whole);
        }

        #[test]
        fn serialized_rows_round_trip(events in proptest::collection::vec(arb_event(), 0..50)) {
            let r = rollup_of(&events);
            let json = serde_json::to_string(&r).unwrap();
            prop_assert_eq!(serde_json::from_str::<Rollup>(&json).unwrap(), r);
        }
    }

    #[test]
    fn huge_sizes_saturate_instead_of_overflowing() {
        let mut e = MessageEvent::new("2026-12-01T00:00:00Z".parse().unwrap(), Direction::Inbound);
        e.size = Some(u64::MAX);
        let mut c = Counters::default();
        c.count(&e);
        c.count(&e);
        assert_eq!((c.messages, c.bytes), (2, u64::MAX));
    }

    #[test]
    fn absent_fields_count_with_documented_defaults() {
        let mut c = Counters::default();
        c.count(&MessageEvent::new("2026-12-01T00:00:00Z".parse().unwrap(), Direction::Inbound));
        assert_eq!((c.messages, c.recipients, c.bytes), (1, 1, 0));
        assert_eq!((c.tls.unknown, c.trust.unknown, c.status.delivered), (1, 1, 1));
        assert_eq!(c.tls.protected(), 1);
    }
}
