//! The short terminal summary `mailflow run` prints: per connector, messages, TLS mix and
//! insights. Names come from logs, so control characters are escaped before they reach a terminal.

use std::fmt::Write;

use mailflow_core::format::{fit, percent, printable, thousands};
use mailflow_core::report::SourceStatus;
use mailflow_core::{Direction, Report, TlsVersion};

const NAME_WIDTH: usize = 28;

pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let r = &report.range;
    let _ = writeln!(out, "Mail flow {} to {} ({})", r.from, r.to, r.timezone.name());
    for direction in Direction::ALL {
        let totals = &report.totals.get(direction).counters;
        let tls = &totals.tls;
        let change = match &report.totals.previous {
            Some(p) => {
                let before = if direction == Direction::Inbound { p.inbound.messages } else { p.outbound.messages };
                match before {
                    0 => String::new(),
                    _ => format!(
                        " ({:+.1}% against the previous period)",
                        (totals.messages as f64 / before as f64 - 1.0) * 100.0
                    ),
                }
            }
            None => String::new(),
        };
        let _ = writeln!(
            out,
            "\n{:<9}{:>10} messages{change}: {} with TLS, {} without, {} unknown",
            capitalize(direction.as_str()),
            thousands(totals.messages),
            percent(totals.share(tls.protected() - tls.unknown)),
            percent(totals.share(tls.none)),
            percent(totals.share(tls.unknown))
        );
        let _ = write!(out, "  {:<NAME_WIDTH$} {:>9}", "Connector", "Messages");
        for v in TlsVersion::ALL {
            let _ = write!(out, " {:>7}", v.label());
        }
        let _ = writeln!(out, "  Insights");
        for c in report.connectors.iter().filter(|c| c.direction == direction) {
            let counters = &c.traffic.counters;
            let _ = write!(out, "  {:<NAME_WIDTH$} {:>9}", fit(&c.name, NAME_WIDTH), thousands(counters.messages));
            for v in TlsVersion::ALL {
                let n = counters.tls.get(v);
                let cell = if counters.messages == 0 { "-".to_string() } else { percent(counters.share(n)) };
                let _ = write!(out, " {cell:>7}");
            }
            let insights = report.insights.iter().filter(|i| i.direction == direction && i.connector == c.name).count();
            let _ = writeln!(out, "  {}", if insights == 0 { String::new() } else { insights.to_string() });
        }
    }
    if !report.insights.is_empty() {
        let _ = writeln!(out, "\nInsights ({})", report.insights.len());
        for i in &report.insights {
            let severity = format!("{:?}", i.severity).to_lowercase();
            let _ = writeln!(out, "  {severity:<8}{}", printable(&i.message));
        }
    }
    let _ = writeln!(out, "\nSources");
    for s in &report.sources {
        let status = match s.status {
            SourceStatus::Ok => "ok",
            SourceStatus::Partial => "PARTIAL",
            SourceStatus::Failed => "FAILED",
        };
        let _ = writeln!(
            out,
            "  {} ({}): {status}, {} events, {} skipped, {} outside the range, {} internal",
            printable(&s.name),
            printable(&s.kind),
            thousands(s.events),
            thousands(s.skipped),
            thousands(s.out_of_range),
            thousands(s.internal)
        );
        if let Some(e) = &s.error {
            let _ = writeln!(out, "    error: {}", printable(e));
        }
        for line in s.notes.iter().chain(s.warnings.iter().take(3)) {
            let _ = writeln!(out, "    {}", printable(line));
        }
    }
    out
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}
