//! A large report for size and speed checks of sinks: a fleet with many connectors over many days.

use chrono::{Duration, NaiveDate, TimeZone};
use mailflow_core::report::{ReportInput, SourceReport, SourceStatus, build};
use mailflow_core::{Direction, InsightSettings, MessageEvent, Report, ReportRange, Rollup, Status, TlsVersion};

/// `connectors` connectors (half inbound, half outbound) with traffic on each of `days` days.
pub fn fleet_report(days: u32, connectors: usize) -> Report {
    let to = NaiveDate::from_ymd_opt(2026, 11, 29).unwrap();
    let from = to - Duration::days(i64::from(days) - 1);
    let range = ReportRange::new(from, to, chrono_tz::Tz::Europe__Berlin).unwrap();
    let versions = [
        TlsVersion::Tls1_3,
        TlsVersion::Tls1_2,
        TlsVersion::Tls1_2,
        TlsVersion::Tls1_0,
        TlsVersion::None,
        TlsVersion::Unknown,
        TlsVersion::Tls1_1,
    ];
    let mut rollup = Rollup::new();
    let mut seed = 7u64;
    for c in 0..connectors {
        let direction = if c % 2 == 0 { Direction::Inbound } else { Direction::Outbound };
        let name = format!("Partner connector number {c:02} (relay{c}.partner{c}.example)");
        for day in 0..days * 2 {
            let date = from - Duration::days(i64::from(days)) + Duration::days(i64::from(day));
            let noon = chrono_tz::Tz::Europe__Berlin.from_local_datetime(&date.and_hms_opt(12, 0, 0).unwrap()).unwrap();
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            for n in 0..(seed >> 58) + 3 {
                let mut e = MessageEvent::new(noon.to_utc(), direction);
                e.tls.version = Some(versions[(n as usize + c) % versions.len()]);
                e.size = Some(20_000 + n * 1_000);
                e.status = Some(if n % 11 == 0 { Status::Deferred } else { Status::Delivered });
                rollup.add(date, "mx", &name, &e);
            }
        }
    }
    let source = SourceReport {
        name: "mx".into(),
        kind: "postfix".into(),
        status: SourceStatus::Ok,
        events: 1,
        skipped: 0,
        out_of_range: 0,
        internal: 0,
        first_event: Some(range.previous().utc_bounds().0),
        warnings: vec![],
        notes: vec![],
        error: None,
        ingested_at: None,
    };
    build(ReportInput {
        range,
        rollup: &rollup,
        connectors: &[],
        insights: &InsightSettings::default(),
        sources: vec![source],
        generated_at: "2026-11-30T06:00:00Z".parse().unwrap(),
    })
}
