//! The report model: what every sink renders (schema `mailflow.report/v1`).
//!
//! A report is computed from a [`Rollup`] that may hold more than the report range: rows of the
//! previous period of equal length feed `volume_change`, `new_connector`, `silent_connector` and
//! `totals.previous`. A source covers the previous period when its first event falls on or before
//! that period's first day: logs that start mid-period would make any comparison wrong, and a
//! source added this week would make all its connectors look new.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::event::Direction;
use crate::insights::{self, ConnectorPeriod, Insight, InsightSettings};
use crate::range::ReportRange;
use crate::rollup::{Counters, Rollup};
use crate::rules::{ConnectorConfig, NO_CONNECTOR};

pub const SCHEMA: &str = "mailflow.report/v1";

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema: &'static str,
    pub generated_at: DateTime<Utc>,
    pub range: ReportRange,
    pub totals: Totals,
    pub connectors: Vec<ConnectorReport>,
    pub insights: Vec<Insight>,
    pub sources: Vec<SourceReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Totals {
    pub inbound: Traffic,
    pub outbound: Traffic,
    /// The previous period of equal length, when every source with traffic covers it.
    pub previous: Option<PreviousTotals>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct PreviousTotals {
    pub inbound: Counters,
    pub outbound: Counters,
}

impl Totals {
    pub fn get(&self, direction: Direction) -> &Traffic {
        match direction {
            Direction::Inbound => &self.inbound,
            Direction::Outbound => &self.outbound,
        }
    }
}

/// Counters over the range and per day (every day of the range, zeros included).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Traffic {
    #[serde(flatten)]
    pub counters: Counters,
    pub daily: Vec<Daily>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Daily {
    pub date: NaiveDate,
    #[serde(flatten)]
    pub counters: Counters,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConnectorReport {
    pub name: String,
    pub direction: Direction,
    #[serde(flatten)]
    pub traffic: Traffic,
}

/// How one collector fared.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SourceReport {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub status: SourceStatus,
    /// Events counted in the report range.
    pub events: u64,
    /// Malformed lines or records, each skipped.
    pub skipped: u64,
    /// Well-formed events outside the report range; those of the previous period feed only
    /// comparisons (`volume_change`, `new_connector`, `silent_connector`).
    pub out_of_range: u64,
    /// Inbound events of the report range from `site.internal_networks`: not connector traffic.
    pub internal: u64,
    /// The earliest well-formed event the source held, whatever its date: how far back its data
    /// reaches.
    pub first_event: Option<DateTime<Utc>>,
    /// The first few problems, each naming where (file:line) and why.
    pub warnings: Vec<String>,
    /// Facts about the run worth knowing, e.g. API calls made, or fields a source could not fill.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Why the collector failed or stopped early.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// In a report from the history store: when `mailflow ingest` last read the source. The
    /// counts besides `events` and `first_event` are that run's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingested_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceStatus {
    Ok,
    /// Failed after producing some events; those are counted.
    Partial,
    Failed,
}

/// Everything [`build`] needs.
pub struct ReportInput<'a> {
    pub range: ReportRange,
    /// Rows of the range and, for comparisons, of its previous period.
    pub rollup: &'a Rollup,
    /// The configured connectors: each appears in the report even without traffic.
    pub connectors: &'a [ConnectorConfig],
    pub insights: &'a InsightSettings,
    pub sources: Vec<SourceReport>,
    pub generated_at: DateTime<Utc>,
}

/// Per (direction, connector): totals and daily counters of the range and the previous period.
#[derive(Default)]
struct Accumulated {
    current: Traffic,
    days: BTreeMap<NaiveDate, Counters>,
    previous: Counters,
    last_active: Option<NaiveDate>,
    sources: BTreeSet<String>,
}

pub fn build(input: ReportInput<'_>) -> Report {
    let range = input.range;
    let previous_range = range.previous();
    let mut acc: BTreeMap<(Direction, String), Accumulated> = BTreeMap::new();
    for direction in Direction::ALL {
        acc.entry((direction, NO_CONNECTOR.to_string())).or_default();
    }
    for c in input.connectors {
        acc.entry((c.direction, c.name.trim().to_string())).or_default();
    }
    let sources_with_history: BTreeSet<&str> = input
        .sources
        .iter()
        .filter(|s| s.first_event.is_some_and(|t| range.local_date(t) <= previous_range.from))
        .map(|s| s.name.as_str())
        .collect();
    for (key, counters) in input.rollup.iter() {
        let in_range = range.contains(key.date);
        let in_previous = previous_range.contains(key.date);
        if !in_range && !in_previous {
            continue;
        }
        let a = acc.entry((key.direction, key.connector.clone())).or_default();
        if in_range {
            *a.days.entry(key.date).or_default() += *counters;
            a.current.counters += *counters;
        } else {
            a.previous += *counters;
        }
        if counters.messages > 0 {
            a.last_active = a.last_active.max(Some(key.date));
            a.sources.insert(key.source.clone());
        }
    }

    let source_types: BTreeMap<&str, &str> = input.sources.iter().map(|s| (s.name.as_str(), s.kind.as_str())).collect();
    let mut insights = Vec::new();
    let mut totals = Totals { inbound: Traffic::default(), outbound: Traffic::default(), previous: None };
    let mut previous_totals = PreviousTotals::default();
    let mut totals_by_day: BTreeMap<(Direction, NaiveDate), Counters> = BTreeMap::new();
    let mut connectors = Vec::new();
    for ((direction, name), mut a) in acc {
        let overrides = input
            .connectors
            .iter()
            .find(|c| c.direction == direction && c.name.trim() == name)
            .map(|c| input.insights.with(&c.insights));
        let period = ConnectorPeriod {
            connector: &name,
            direction,
            current: a.current.counters,
            previous: a.sources.iter().any(|s| sources_with_history.contains(s.as_str())).then_some(a.previous),
            days: range.days(),
            range_end: range.to,
            last_active: a.last_active,
            source_types: a.sources.iter().filter_map(|s| source_types.get(s.as_str()).copied()).collect(),
        };
        insights.extend(insights::evaluate(&period, overrides.as_ref().unwrap_or(input.insights)));

        match direction {
            Direction::Inbound => {
                totals.inbound.counters += a.current.counters;
                previous_totals.inbound += a.previous;
            }
            Direction::Outbound => {
                totals.outbound.counters += a.current.counters;
                previous_totals.outbound += a.previous;
            }
        }
        for (date, counters) in &a.days {
            *totals_by_day.entry((direction, *date)).or_default() += *counters;
        }
        a.current.daily = daily(&range, |d| a.days.get(&d).copied());
        connectors.push(ConnectorReport { name, direction, traffic: a.current });
    }
    let with_traffic = || input.sources.iter().filter(|s| s.events > 0);
    if with_traffic().next().is_some() && with_traffic().all(|s| sources_with_history.contains(s.name.as_str())) {
        totals.previous = Some(previous_totals);
    }
    totals.inbound.daily = daily(&range, |d| totals_by_day.get(&(Direction::Inbound, d)).copied());
    totals.outbound.daily = daily(&range, |d| totals_by_day.get(&(Direction::Outbound, d)).copied());

    // Busiest first within each direction; "No connector" last, where an admin looks for leftovers.
    connectors.sort_by(|a, b| {
        (a.direction, a.name == NO_CONNECTOR, std::cmp::Reverse(a.traffic.counters.messages), &a.name).cmp(&(
            b.direction,
            b.name == NO_CONNECTOR,
            std::cmp::Reverse(b.traffic.counters.messages),
            &b.name,
        ))
    });
    insights.sort_by(|a, b| {
        (std::cmp::Reverse(a.severity), a.direction, &a.connector).cmp(&(
            std::cmp::Reverse(b.severity),
            b.direction,
            &b.connector,
        ))
    });

    Report {
        schema: SCHEMA,
        generated_at: input.generated_at,
        range,
        totals,
        connectors,
        insights,
        sources: input.sources,
    }
}

/// An empty one-day report: what templates are checked against before any data is read.
pub fn sample() -> Report {
    let day = NaiveDate::from_ymd_opt(2026, 1, 1).expect("a valid date");
    build(ReportInput {
        range: ReportRange { from: day, to: day, timezone: chrono_tz::Tz::UTC },
        rollup: &Rollup::new(),
        connectors: &[],
        insights: &InsightSettings::default(),
        sources: Vec::new(),
        generated_at: DateTime::UNIX_EPOCH,
    })
}

fn daily(range: &ReportRange, get: impl Fn(NaiveDate) -> Option<Counters>) -> Vec<Daily> {
    range.dates().map(|date| Daily { date, counters: get(date).unwrap_or_default() }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{MessageEvent, TlsVersion};
    use crate::insights::InsightKind;
    use chrono_tz::Tz;

    fn event(time: &str, direction: Direction, tls: TlsVersion) -> MessageEvent {
        let mut e = MessageEvent::new(time.parse().unwrap(), direction);
        e.tls.version = Some(tls);
        e
    }

    fn range() -> ReportRange {
        ReportRange::new("2026-11-27".parse().unwrap(), "2026-12-03".parse().unwrap(), Tz::UTC).unwrap()
    }

    fn source(name: &str) -> SourceReport {
        SourceReport {
            name: name.into(),
            kind: "events".into(),
            status: SourceStatus::Ok,
            events: 0,
            skipped: 0,
            out_of_range: 0,
            internal: 0,
            first_event: Some("2026-11-01T00:00:00Z".parse().unwrap()),
            warnings: vec![],
            notes: vec![],
            error: None,
            ingested_at: None,
        }
    }

    fn build_from(rollup: &Rollup, connectors: &[ConnectorConfig]) -> Report {
        build_with(rollup, connectors, vec![SourceReport { events: 1, ..source("mx1") }])
    }

    fn build_with(rollup: &Rollup, connectors: &[ConnectorConfig], sources: Vec<SourceReport>) -> Report {
        build(ReportInput {
            range: range(),
            rollup,
            connectors,
            insights: &InsightSettings::default(),
            sources,
            generated_at: "2026-12-04T07:00:00Z".parse().unwrap(),
        })
    }

    #[test]
    fn totals_daily_and_no_connector_per_direction() {
        let r = range();
        let mut rollup = Rollup::new();
        for (time, conn) in
            [("2026-11-27T10:00:00Z", "A"), ("2026-11-27T11:00:00Z", "A"), ("2026-12-03T23:59:59Z", NO_CONNECTOR)]
        {
            let e = event(time, Direction::Outbound, TlsVersion::Tls1_3);
            rollup.add(r.local_date(e.time), "mx1", conn, &e);
        }
        let report = build_from(&rollup, &[]);
        assert_eq!(report.totals.outbound.counters.messages, 3);
        assert_eq!(report.totals.outbound.daily.len(), 7);
        assert_eq!(report.totals.outbound.daily[0].counters.messages, 2);
        assert_eq!(report.totals.outbound.daily[6].counters.messages, 1);
        assert_eq!(report.totals.inbound.counters.messages, 0);
        let names: Vec<_> = report.connectors.iter().map(|c| (c.direction, c.name.as_str())).collect();
        assert_eq!(
            names,
            vec![(Direction::Inbound, NO_CONNECTOR), (Direction::Outbound, "A"), (Direction::Outbound, NO_CONNECTOR)]
        );
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["schema"], "mailflow.report/v1");
        assert_eq!(json["range"]["timezone"], "UTC");
        assert_eq!(json["connectors"][1]["tls"]["tls1_3"], 2);
        assert_eq!(json["connectors"][1]["daily"][0]["date"], "2026-11-27");
        assert_eq!(json["sources"][0]["type"], "events");
    }

    #[test]
    fn previous_period_feeds_volume_and_new_connector_but_not_totals() {
        let r = range();
        let mut rollup = Rollup::new();
        let mut add = |time: &str, conn: &str, n: usize| {
            for _ in 0..n {
                let e = event(time, Direction::Inbound, TlsVersion::Tls1_2);
                rollup.add(r.local_date(e.time), "mx1", conn, &e);
            }
        };
        add("2026-11-21T10:00:00Z", "Steady", 40);
        add("2026-11-28T10:00:00Z", "Steady", 100);
        add("2026-11-29T10:00:00Z", "Fresh", 3);
        add("2026-11-22T10:00:00Z", "Gone", 30);
        add("2026-10-01T10:00:00Z", "Ancient", 30);
        // A source without history in the previous period: its connectors are not "new".
        let e = event("2026-11-29T10:00:00Z", Direction::Inbound, TlsVersion::Tls1_2);
        rollup.add(r.local_date(e.time), "added-this-week", "Unseen", &e);
        let new_source = SourceReport { events: 1, first_event: Some(e.time), ..source("added-this-week") };
        let report = build_with(&rollup, &[], vec![SourceReport { events: 103, ..source("mx1") }, new_source]);
        assert!(report.totals.previous.is_none(), "one source with traffic has no history");
        assert_eq!(report.totals.inbound.counters.messages, 104);
        let found: Vec<(InsightKind, &str)> = report.insights.iter().map(|i| (i.kind, i.connector.as_str())).collect();
        assert!(found.contains(&(InsightKind::VolumeChange, "Steady")), "{found:?}");
        assert!(found.contains(&(InsightKind::NewConnector, "Fresh")), "{found:?}");
        assert!(found.contains(&(InsightKind::SilentConnector, "Gone")), "{found:?}");
        assert!(found.contains(&(InsightKind::SilentConnector, "Fresh")), "last traffic 4 days before the end");
        assert!(!report.connectors.iter().any(|c| c.name == "Ancient"), "outside both periods");
        assert!(!found.iter().any(|(k, c)| *k == InsightKind::NewConnector && *c == "Unseen"), "{found:?}");
    }

    #[test]
    fn logs_that_start_mid_period_are_not_compared() {
        let r = range();
        let mut rollup = Rollup::new();
        let mut add = |time: &str, n: usize| {
            for _ in 0..n {
                let e = event(time, Direction::Inbound, TlsVersion::Tls1_2);
                rollup.add(r.local_date(e.time), "mx1", "Steady", &e);
            }
        };
        add("2026-11-26T23:00:00Z", 10);
        add("2026-11-28T10:00:00Z", 100);
        let rotated =
            SourceReport { events: 100, first_event: Some("2026-11-26T23:00:00Z".parse().unwrap()), ..source("mx1") };
        let report = build_with(&rollup, &[], vec![rotated]);
        assert!(report.insights.iter().all(|i| i.kind != InsightKind::VolumeChange), "{:?}", report.insights);
        assert!(report.totals.previous.is_none());
        let full =
            SourceReport { events: 100, first_event: Some("2026-11-20T00:00:00Z".parse().unwrap()), ..source("mx1") };
        let report = build_with(&rollup, &[], vec![full]);
        assert!(report.insights.iter().any(|i| i.kind == InsightKind::VolumeChange));
        assert_eq!(report.totals.previous.unwrap().inbound.messages, 10);
    }

    #[test]
    fn configured_connectors_appear_and_use_their_overrides() {
        let r = range();
        let connectors: Vec<ConnectorConfig> = toml::from_str::<BTreeMap<String, Vec<ConnectorConfig>>>(
            r#"
            [[connector]]
            name = "Quiet"
            direction = "outbound"
            [[connector]]
            name = "Strict"
            direction = "outbound"
            insights = { no_tls_over = 0.01, min_messages = 1 }
            "#,
        )
        .unwrap()
        .remove("connector")
        .unwrap();
        let mut rollup = Rollup::new();
        for tls in [TlsVersion::None, TlsVersion::Tls1_2, TlsVersion::Tls1_2] {
            let e = event("2026-12-02T10:00:00Z", Direction::Outbound, tls);
            rollup.add(r.local_date(e.time), "mx1", "Strict", &e);
        }
        let no_history = SourceReport { events: 3, first_event: None, ..source("mx1") };
        let report = build_with(&rollup, &connectors, vec![no_history]);
        assert!(report.connectors.iter().any(|c| c.name == "Quiet" && c.traffic.counters.messages == 0));
        assert_eq!(report.insights.len(), 1, "{:?}", report.insights);
        assert_eq!(report.insights[0].kind, InsightKind::NoTlsOver);
        assert_eq!(report.insights[0].threshold, 0.01);
    }
}
