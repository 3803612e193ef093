//! Insights: the findings an admin should act on, per connector and direction.
//!
//! Percentage insights compare a share of the range's messages with a threshold and stay quiet
//! below `min_messages`, where a handful of messages would make any share look alarming.
//! Thresholds are shares (0.25 = 25 %); a value must be strictly above its threshold to fire.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::event::Direction;
use crate::format::{percent, thousands};
use crate::rollup::Counters;
use crate::rules::NO_CONNECTOR;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InsightKind {
    NoTlsOver,
    #[serde(rename = "tls1_0_above")]
    Tls1_0Above,
    LegacyTls,
    TlsUnknown,
    FailuresAbove,
    VolumeChange,
    NewConnector,
    SilentConnector,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Insight {
    pub kind: InsightKind,
    pub severity: Severity,
    pub connector: String,
    pub direction: Direction,
    /// The observed value: a share for percentage kinds, a change for `volume_change`, messages
    /// for `new_connector`, days for `silent_connector`.
    pub value: f64,
    pub threshold: f64,
    pub message: String,
    pub remediation: String,
}

/// `[insights]`: thresholds for every connector.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InsightSettings {
    /// Below this many messages in the range no percentage insight fires.
    pub min_messages: u64,
    pub no_tls_over: f64,
    pub tls1_0_above: f64,
    pub legacy_tls: f64,
    pub tls_unknown: f64,
    pub failures_above: f64,
    /// Relative change against the previous period (0.5 = ±50 %).
    pub volume_change: f64,
    pub silent_days: u32,
    /// Insight kinds not to report.
    pub disable: Vec<InsightKind>,
}

impl Default for InsightSettings {
    fn default() -> Self {
        InsightSettings {
            min_messages: 20,
            no_tls_over: 0.25,
            tls1_0_above: 0.50,
            legacy_tls: 0.05,
            tls_unknown: 0.10,
            failures_above: 0.10,
            volume_change: 0.50,
            silent_days: 3,
            disable: Vec::new(),
        }
    }
}

/// `[connector.insights]`: per-connector overrides of [`InsightSettings`].
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InsightOverrides {
    pub min_messages: Option<u64>,
    pub no_tls_over: Option<f64>,
    pub tls1_0_above: Option<f64>,
    pub legacy_tls: Option<f64>,
    pub tls_unknown: Option<f64>,
    pub failures_above: Option<f64>,
    pub volume_change: Option<f64>,
    pub silent_days: Option<u32>,
    pub disable: Option<Vec<InsightKind>>,
}

impl InsightSettings {
    /// Checks that every share lies in 0..=1 (`volume_change` may exceed 1).
    pub fn validate(&self) -> Result<(), Error> {
        let shares = [
            ("no_tls_over", self.no_tls_over),
            ("tls1_0_above", self.tls1_0_above),
            ("legacy_tls", self.legacy_tls),
            ("tls_unknown", self.tls_unknown),
            ("failures_above", self.failures_above),
        ];
        for (key, value) in shares {
            if !(0.0..=1.0).contains(&value) {
                return Err(Error::Insights(format!("`{key}` is a share between 0 and 1 (0.25 = 25%), not {value}")));
            }
        }
        if self.volume_change.is_nan() || self.volume_change <= 0.0 {
            return Err(Error::Insights(format!(
                "`volume_change` is a relative change above 0 (0.5 = ±50%), not {}",
                self.volume_change
            )));
        }
        Ok(())
    }

    /// These settings with a connector's overrides applied.
    pub fn with(&self, o: &InsightOverrides) -> InsightSettings {
        InsightSettings {
            min_messages: o.min_messages.unwrap_or(self.min_messages),
            no_tls_over: o.no_tls_over.unwrap_or(self.no_tls_over),
            tls1_0_above: o.tls1_0_above.unwrap_or(self.tls1_0_above),
            legacy_tls: o.legacy_tls.unwrap_or(self.legacy_tls),
            tls_unknown: o.tls_unknown.unwrap_or(self.tls_unknown),
            failures_above: o.failures_above.unwrap_or(self.failures_above),
            volume_change: o.volume_change.unwrap_or(self.volume_change),
            silent_days: o.silent_days.unwrap_or(self.silent_days),
            disable: o.disable.clone().unwrap_or_else(|| self.disable.clone()),
        }
    }
}

/// What insights are computed from, for one connector and direction.
#[derive(Debug, Clone)]
pub struct ConnectorPeriod<'a> {
    pub connector: &'a str,
    pub direction: Direction,
    /// Totals over the report range.
    pub current: Counters,
    /// Totals over the previous period of equal length; `None` when it was not collected.
    pub previous: Option<Counters>,
    /// Length of the report range in days.
    pub days: u32,
    /// The last day of the report range.
    pub range_end: NaiveDate,
    /// The last day with traffic, in the report range or the previous period.
    pub last_active: Option<NaiveDate>,
    /// Types of the sources that carried this connector's traffic (for remediation hints).
    pub source_types: Vec<&'a str>,
}

/// Every insight that fires for `p` under `settings`.
pub fn evaluate(p: &ConnectorPeriod<'_>, settings: &InsightSettings) -> Vec<Insight> {
    let mut out = Vec::new();
    let c = &p.current;
    let who = format!("{} messages through {}", p.direction, p.connector);
    let mut fire = |kind, severity, value: f64, threshold: f64, message: String, remediation: String| {
        if !settings.disable.contains(&kind) {
            out.push(Insight {
                kind,
                severity,
                connector: p.connector.to_string(),
                direction: p.direction,
                value,
                threshold,
                message,
                remediation,
            });
        }
    };
    let of = |n: u64| format!("{} of {}", thousands(n), thousands(c.messages));

    if c.messages >= settings.min_messages && c.messages > 0 {
        let none = c.share(c.tls.none);
        if none > settings.no_tls_over {
            let (verb, fix) = match p.direction {
                Direction::Outbound => (
                    "were sent without TLS",
                    "Ask the receiving side to offer STARTTLS, then require TLS for this connector \
                     (Postfix: a TLS policy entry with `encrypt`; Exim: `hosts_require_tls`).",
                ),
                Direction::Inbound => (
                    "were received without TLS",
                    "Check that your listener offers STARTTLS (Postfix: `smtpd_tls_security_level = may`) \
                     and ask these senders to use it; then require TLS on this connector.",
                ),
            };
            fire(
                InsightKind::NoTlsOver,
                Severity::Warning,
                none,
                settings.no_tls_over,
                format!(
                    "No TLS is over {}: {} of {who} {verb} ({}).",
                    percent(settings.no_tls_over),
                    percent(none),
                    of(c.tls.none)
                ),
                fix.to_string(),
            );
        }
        let tls1_0 = c.share(c.tls.tls1_0);
        if tls1_0 > settings.tls1_0_above {
            fire(
                InsightKind::Tls1_0Above,
                Severity::Warning,
                tls1_0,
                settings.tls1_0_above,
                format!(
                    "TLS 1.0 is above {}: {} of {who} used TLS 1.0 ({}).",
                    percent(settings.tls1_0_above),
                    percent(tls1_0),
                    of(c.tls.tls1_0)
                ),
                "TLS 1.0 is deprecated (RFC 8996): have the peer move to TLS 1.2 or 1.3, then raise \
                 the minimum protocol (Postfix: `smtp_tls_protocols = >=TLSv1.2`)."
                    .to_string(),
            );
        }
        let legacy_count = c.tls.ssl3 + c.tls.tls1_0 + c.tls.tls1_1;
        let legacy = c.share(legacy_count);
        if legacy > settings.legacy_tls {
            fire(
                InsightKind::LegacyTls,
                Severity::Warning,
                legacy,
                settings.legacy_tls,
                format!(
                    "Legacy TLS is above {}: {} of {who} used SSLv3, TLS 1.0 or TLS 1.1 ({}).",
                    percent(settings.legacy_tls),
                    percent(legacy),
                    of(legacy_count)
                ),
                "SSLv3, TLS 1.0 and 1.1 are broken or deprecated: find the peers still using them \
                 (`mailflow events`) and have them upgrade to TLS 1.2 or later."
                    .to_string(),
            );
        }
        let unknown = c.share(c.tls.unknown);
        if unknown > settings.tls_unknown {
            fire(
                InsightKind::TlsUnknown,
                Severity::Info,
                unknown,
                settings.tls_unknown,
                format!(
                    "The TLS version is unknown for {} of {who} ({}), above {}.",
                    percent(unknown),
                    of(c.tls.unknown),
                    percent(settings.tls_unknown)
                ),
                tls_logging_hint(&p.source_types),
            );
        }
        let failing_count = c.status.failed + c.status.deferred;
        let failing = c.share(failing_count);
        if p.direction == Direction::Outbound && failing > settings.failures_above {
            fire(
                InsightKind::FailuresAbove,
                Severity::Warning,
                failing,
                settings.failures_above,
                format!(
                    "Failed or deferred deliveries are above {}: {} of {who} ({}).",
                    percent(settings.failures_above),
                    percent(failing),
                    of(failing_count)
                ),
                "Look at the delivery errors for this connector (`mailflow events` lists each message \
                 with its status): DNS, certificate checks or the relay refusing mail are the usual causes."
                    .to_string(),
            );
        }
    }

    let previous_days = format!("the previous {} day{}", p.days, if p.days == 1 { "" } else { "s" });
    if let Some(prev) = &p.previous {
        let (now, before) = (c.messages, prev.messages);
        // A drop to zero counts (-100%); a rise from zero is `new_connector` instead.
        if before > 0 && now.max(before) >= settings.min_messages {
            let change = (now as f64 - before as f64) / before as f64;
            if change.abs() > settings.volume_change {
                fire(
                    InsightKind::VolumeChange,
                    Severity::Info,
                    change,
                    settings.volume_change,
                    format!(
                        "Volume {} by {}: {} {} against {} in {previous_days}.",
                        if change > 0.0 { "rose" } else { "fell" },
                        percent(change.abs()),
                        thousands(now),
                        who,
                        thousands(before)
                    ),
                    "If the change is unexpected, check for new or lost senders, a routing change, a \
                     compromised account, or a source that stopped logging."
                        .to_string(),
                );
            }
        }
        if now > 0 && before == 0 && p.connector != NO_CONNECTOR {
            fire(
                InsightKind::NewConnector,
                Severity::Info,
                now as f64,
                0.0,
                format!("New traffic: {} {who} in this period, none in {previous_days}.", thousands(now)),
                "Confirm this traffic is expected; if not, find its senders with `mailflow events`.".to_string(),
            );
        }
    }
    if let Some(last) = p.last_active.filter(|_| p.connector != NO_CONNECTOR) {
        let silent = (p.range_end - last).num_days();
        if silent >= i64::from(settings.silent_days) {
            fire(
                InsightKind::SilentConnector,
                Severity::Warning,
                silent as f64,
                f64::from(settings.silent_days),
                format!(
                    "No {} traffic through {} for {silent} days (last message on {last}).",
                    p.direction, p.connector
                ),
                "Check the connector's peer and routing, and that the source still logs this traffic.".to_string(),
            );
        }
    }
    out
}

/// Which setting turns on TLS version logging, for the sources that carried the traffic.
fn tls_logging_hint(source_types: &[&str]) -> String {
    let mut hints: Vec<&str> = source_types
        .iter()
        .map(|t| match *t {
            "postfix" => "Postfix: set `smtpd_tls_loglevel = 1` and `smtp_tls_loglevel = 1` in main.cf",
            "exim" => "Exim: keep `tls_cipher` in `log_selector` (on by default) so `X=` is logged",
            "sendmail" => "Sendmail: raise `LogLevel` to 9 or more so STARTTLS lines are logged",
            "exchange" => "Exchange: turn on protocol logging (`ProtocolLoggingLevel Verbose`) on the connectors",
            "opensmtpd" => "OpenSMTPD: keep the `smtp tls` lines in the log (default)",
            _ => "have the source record `tls.version` in its events",
        })
        .collect();
    hints.sort_unstable();
    hints.dedup();
    if hints.is_empty() {
        hints.push("have the source record `tls.version` in its events");
    }
    format!("Turn on TLS version logging: {}.", hints.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn period(direction: Direction, current: Counters) -> ConnectorPeriod<'static> {
        ConnectorPeriod {
            connector: "Partner",
            direction,
            current,
            previous: None,
            days: 7,
            range_end: "2026-12-03".parse().unwrap(),
            last_active: Some("2026-12-03".parse().unwrap()),
            source_types: vec!["postfix"],
        }
    }

    fn kinds(p: &ConnectorPeriod<'_>, s: &InsightSettings) -> Vec<InsightKind> {
        evaluate(p, s).into_iter().map(|i| i.kind).collect()
    }

    /// `part` messages of `total` in one bucket, the rest TLS 1.2 and delivered.
    fn counters(total: u64, set: impl Fn(&mut Counters, u64), part: u64) -> Counters {
        let mut c = Counters { messages: total, ..Default::default() };
        c.tls.tls1_2 = total - part;
        c.status.delivered = total;
        set(&mut c, part);
        c
    }

    #[test]
    fn each_percentage_kind_fires_only_above_its_threshold() {
        let s = InsightSettings::default();
        type Setter = fn(&mut Counters, u64);
        let cases: [(InsightKind, Setter, u64, u64); 5] = [
            (InsightKind::NoTlsOver, |c, n| c.tls.none = n, 25, 26),
            (InsightKind::Tls1_0Above, |c, n| c.tls.tls1_0 = n, 50, 51),
            (InsightKind::LegacyTls, |c, n| c.tls.tls1_1 = n, 5, 6),
            (InsightKind::TlsUnknown, |c, n| c.tls.unknown = n, 10, 11),
            (
                InsightKind::FailuresAbove,
                |c, n| {
                    c.status.failed = n - n / 2;
                    c.status.deferred = n / 2
                },
                10,
                11,
            ),
        ];
        for (kind, set, at, above) in cases {
            let at_threshold = period(Direction::Outbound, counters(100, set, at));
            assert!(!kinds(&at_threshold, &s).contains(&kind), "{kind:?} fired at its threshold");
            let over = period(Direction::Outbound, counters(100, set, above));
            let fired = evaluate(&over, &s);
            let insight = fired.iter().find(|i| i.kind == kind).unwrap_or_else(|| panic!("{kind:?} did not fire"));
            assert!((insight.value - above as f64 / 100.0).abs() < 1e-9);
            assert!(!insight.message.is_empty() && !insight.remediation.is_empty());
        }
    }

    #[test]
    fn seed_messages_read_as_in_the_dashboard() {
        let s = InsightSettings::default();
        let p = period(Direction::Outbound, counters(200, |c, n| c.tls.none = n, 62));
        let i = &evaluate(&p, &s)[0];
        assert_eq!(
            i.message,
            "No TLS is over 25%: 31% of outbound messages through Partner were sent without TLS (62 of 200)."
        );
        let p = period(Direction::Inbound, counters(2000, |c, n| c.tls.tls1_0 = n, 1500));
        let i = evaluate(&p, &s).into_iter().find(|i| i.kind == InsightKind::Tls1_0Above).unwrap();
        assert!(i.message.starts_with("TLS 1.0 is above 50%: 75% of inbound messages"), "{}", i.message);
        assert!(i.message.ends_with("(1,500 of 2,000)."), "{}", i.message);
    }

    #[test]
    fn min_messages_silences_percentage_insights() {
        let mut s = InsightSettings::default();
        let p = period(Direction::Outbound, counters(19, |c, n| c.tls.none = n, 19));
        assert!(kinds(&p, &s).is_empty());
        s.min_messages = 10;
        assert_eq!(kinds(&p, &s), vec![InsightKind::NoTlsOver]);
        let p = period(Direction::Outbound, counters(20, |c, n| c.tls.none = n, 20));
        assert_eq!(kinds(&p, &InsightSettings::default()), vec![InsightKind::NoTlsOver]);
    }

    #[test]
    fn failures_are_an_outbound_insight() {
        let p = period(Direction::Inbound, counters(100, |c, n| c.status.rejected = n, 50));
        assert!(kinds(&p, &InsightSettings::default()).is_empty());
    }

    #[test]
    fn volume_change_needs_the_previous_period() {
        let s = InsightSettings::default();
        let mut p = period(Direction::Inbound, counters(151, |_, _| {}, 0));
        assert!(kinds(&p, &s).is_empty(), "previous period unknown");
        p.previous = Some(counters(100, |_, _| {}, 0));
        assert_eq!(kinds(&p, &s), vec![InsightKind::VolumeChange]);
        p.current = counters(150, |_, _| {}, 0);
        assert!(kinds(&p, &s).is_empty(), "exactly +50% does not fire");
        p.current = Counters::default();
        let i = &evaluate(&p, &s)[0];
        assert_eq!((i.kind, i.value), (InsightKind::VolumeChange, -1.0), "a drop to zero");
        p.current = counters(49, |_, _| {}, 0);
        let i = &evaluate(&p, &s)[0];
        assert_eq!(i.kind, InsightKind::VolumeChange);
        assert!((i.value + 0.51).abs() < 1e-9);
        assert!(
            i.message.starts_with("Volume fell by 51%: 49 inbound messages through Partner against 100"),
            "{}",
            i.message
        );
    }

    #[test]
    fn new_and_silent_connectors() {
        let s = InsightSettings::default();
        let mut p = period(Direction::Outbound, counters(5, |_, _| {}, 0));
        p.previous = Some(Counters::default());
        assert_eq!(kinds(&p, &s), vec![InsightKind::NewConnector]);
        p.previous = None;
        p.current = Counters::default();
        p.last_active = Some("2026-12-01".parse().unwrap());
        assert!(kinds(&p, &s).is_empty(), "2 silent days");
        p.last_active = Some("2026-11-30".parse().unwrap());
        assert_eq!(kinds(&p, &s), vec![InsightKind::SilentConnector]);
        p.last_active = None;
        assert!(kinds(&p, &s).is_empty(), "never active is not silent");
        p.connector = NO_CONNECTOR;
        p.last_active = Some("2026-11-01".parse().unwrap());
        assert!(kinds(&p, &s).is_empty());
    }

    #[test]
    fn overrides_and_disable() {
        let s = InsightSettings { disable: vec![InsightKind::NoTlsOver], ..Default::default() };
        let p = period(Direction::Outbound, counters(100, |c, n| c.tls.none = n, 90));
        assert!(kinds(&p, &s).is_empty());
        let o = InsightOverrides { disable: Some(vec![]), no_tls_over: Some(0.95), ..Default::default() };
        assert!(kinds(&p, &s.with(&o)).is_empty());
        let o = InsightOverrides { disable: Some(vec![]), no_tls_over: Some(0.5), ..Default::default() };
        assert_eq!(kinds(&p, &s.with(&o)), vec![InsightKind::NoTlsOver]);
    }

    #[test]
    fn tls_unknown_names_the_setting_for_the_source() {
        let mut p = period(Direction::Inbound, counters(100, |c, n| c.tls.unknown = n, 50));
        let i = &evaluate(&p, &InsightSettings::default())[0];
        assert!(i.remediation.contains("smtpd_tls_loglevel"), "{}", i.remediation);
        p.source_types = vec!["events"];
        let i = &evaluate(&p, &InsightSettings::default())[0];
        assert!(i.remediation.contains("tls.version"), "{}", i.remediation);
    }

    #[test]
    fn invalid_thresholds_are_rejected() {
        assert!(InsightSettings::default().validate().is_ok());
        let s = InsightSettings { no_tls_over: 25.0, ..Default::default() };
        assert!(s.validate().unwrap_err().to_string().contains("0.25 = 25%"));
    }
}
