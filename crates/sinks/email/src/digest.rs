//! The digest's content: subject, plain text and HTML, computed from a [`Report`].
//!
//! Mail clients are hostile ground for HTML: Gmail and Outlook drop `<style>` blocks, scripts,
//! inline SVG and `data:` URIs, and Outlook lays out with Word. So the HTML part is tables with
//! inline styles, and its bar charts are table cells whose widths are the shares. The plain-text
//! part is laid out for an 80-column terminal mail client. Names come from logs: the HTML
//! template escapes them, the text part escapes control characters, and both cut long names.

use std::fmt::Write as _;

use chrono::{Datelike, NaiveDate, Weekday};
use mailflow_core::format::{fit, percent, printable, thousands};
use mailflow_core::report::{SourceStatus, Traffic};
use mailflow_core::{Counters, Direction, InsightKind, Report, Severity, TlsVersion};
use minijinja::{AutoEscape, Environment, UndefinedBehavior, context};
use serde::Serialize;

use crate::chart;

/// The HTML part's template.
pub const HTML_TEMPLATE: &str = include_str!("../templates/digest.html");

/// The subject when the config gives none.
pub const DEFAULT_SUBJECT: &str = "mailflow: {{ inbound }} in / {{ outbound }} out, {{ tls }} TLS, {{ insights }}\
{% if sources_failed %}, {{ sources_failed }} source{{ 's' if sources_failed != 1 }} failed{% endif %} ({{ range }})";

/// Names longer than this are cut (with `…`), so one long host name cannot break a layout.
const NAME_CHARS: usize = 40;
const TEXT_NAME_CHARS: usize = 22;
const TEXT_WIDTH: usize = 78;
/// Longer ranges show messages per week: a month of daily bars is long to scroll and heavy to
/// mail (Gmail clips an HTML part over 102 kB).
const MAX_DAY_ROWS: usize = 14;

/// How the digest looks, from the sink's options.
#[derive(Debug, Clone)]
pub struct Look {
    pub title: String,
    /// Connectors listed per direction, busiest first.
    pub top_connectors: usize,
    pub png_charts: bool,
}

/// A digest ready to be put into a message.
pub struct Digest {
    pub subject: String,
    pub text: String,
    pub html: String,
    /// PNG images the HTML refers to as `cid:{id}`.
    pub images: Vec<(String, Vec<u8>)>,
}

/// The templates of the subject and the HTML part, compiled once.
pub struct Templates {
    env: Environment<'static>,
}

impl Templates {
    /// Compiles the subject template; its errors name the problem.
    pub fn new(subject: &str) -> Result<Templates, String> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|name| if name.ends_with(".html") { AutoEscape::Html } else { AutoEscape::None });
        env.add_template_owned("subject", subject.to_string())
            .map_err(|e| format!("`subject` is not a valid template: {e}"))?;
        env.add_template("digest.html", HTML_TEMPLATE).map_err(|e| format!("template digest.html: {e}"))?;
        Ok(Templates { env })
    }

    pub fn render(&self, report: &Report, look: &Look) -> Result<Digest, String> {
        let view = View::of(report, look);
        let subject_ctx = context! {
            inbound => thousands(report.totals.inbound.counters.messages),
            outbound => thousands(report.totals.outbound.counters.messages),
            tls => view.tls_share.clone(),
            insights => match report.insights.len() {
                0 => "no insights".to_string(),
                1 => "1 insight".to_string(),
                n => format!("{n} insights"),
            },
            insight_count => report.insights.len(),
            sources_failed => view.problem_sources.iter().filter(|s| s.status != "ok").count(),
            range => view.range_short.clone(),
            range_long => view.range.clone(),
            title => look.title.clone(),
        };
        let subject = self
            .env
            .get_template("subject")
            .and_then(|t| t.render(subject_ctx))
            .map_err(|e| format!("`subject`: {e}"))?;
        // A header is one line; anything a template or a name could smuggle in is escaped.
        let subject = printable(subject.trim());
        let mut images = Vec::new();
        if look.png_charts {
            for d in &view.directions {
                let traffic = report.totals.get(d.direction);
                images.push((format!("daily-{}@mailflow", d.direction), chart::daily_png(&traffic.daily)));
            }
        }
        let ctx =
            context! { view => minijinja::Value::from(minijinja::value::Serde(&view)), png_charts => look.png_charts };
        let html = self
            .env
            .get_template("digest.html")
            .and_then(|t| t.render(ctx))
            .map_err(|e| format!("template digest.html: {e}"))?;
        Ok(Digest { subject, text: text(report, &view), html, images })
    }
}

/// Everything the HTML template shows, formatted.
#[derive(Serialize)]
struct View {
    title: String,
    range: String,
    range_short: String,
    timezone: String,
    generated_at: String,
    version: &'static str,
    tls_share: String,
    /// The day bars are week bars.
    weekly: bool,
    directions: Vec<DirectionView>,
    legend: Vec<LegendItem>,
    connectors: Vec<ConnectorGroup>,
    insight_count: usize,
    /// Insights with the same severity, kind and remediation, listed under it once: a fleet
    /// with fifty connectors missing TLS logs reads one remediation, not fifty.
    insights: Vec<InsightGroup>,
    problem_sources: Vec<SourceView>,
}

#[derive(Serialize)]
struct DirectionView {
    direction: Direction,
    label: &'static str,
    messages: String,
    recipients: String,
    size: String,
    with_tls: String,
    without_tls: String,
    not_logged: String,
    /// "+4.1%" against the previous period, when every source covers it.
    change: Option<String>,
    mix: Vec<Segment>,
    mix_legend: Vec<LegendItem>,
    days: Vec<DayView>,
    busiest_day: String,
}

#[derive(Serialize)]
struct DayView {
    date: String,
    messages: String,
    bar: Vec<Segment>,
    /// What is left of the row after the bar, in percent.
    rest: u32,
}

#[derive(Serialize)]
struct ConnectorGroup {
    label: &'static str,
    rows: Vec<ConnectorView>,
    /// Connectors not listed, and their messages.
    more: Option<String>,
}

#[derive(Serialize)]
struct ConnectorView {
    name: String,
    full_name: String,
    messages: String,
    with_tls: String,
    mix: Vec<Segment>,
    insights: usize,
    #[serde(skip)]
    counters: Counters,
}

#[derive(Serialize)]
struct Segment {
    color: &'static str,
    width: u32,
    title: String,
}

#[derive(Serialize)]
struct LegendItem {
    color: &'static str,
    label: &'static str,
    share: String,
}

#[derive(Serialize)]
struct InsightGroup {
    warning: bool,
    severity: &'static str,
    remediation: String,
    items: Vec<InsightItem>,
}

#[derive(Serialize)]
struct InsightItem {
    connector: String,
    direction: Direction,
    message: String,
}

#[derive(Serialize)]
struct SourceView {
    name: String,
    kind: String,
    status: &'static str,
    error: Option<String>,
    skipped: String,
    warnings: Vec<String>,
}

impl View {
    fn of(report: &Report, look: &Look) -> View {
        let totals = &report.totals;
        let all = {
            let mut c = totals.inbound.counters;
            c += totals.outbound.counters;
            c
        };
        let directions = Direction::ALL
            .into_iter()
            .map(|direction| {
                let traffic = totals.get(direction);
                let c = &traffic.counters;
                let previous = totals.previous.as_ref().map(|p| match direction {
                    Direction::Inbound => p.inbound.messages,
                    Direction::Outbound => p.outbound.messages,
                });
                let change = previous.and_then(|before| change(c.messages, before));
                DirectionView {
                    direction,
                    label: label(direction),
                    messages: thousands(c.messages),
                    recipients: thousands(c.recipients),
                    size: bytes(c.bytes),
                    with_tls: percent(c.share(with_tls(c))),
                    without_tls: percent(c.share(c.tls.none)),
                    not_logged: percent(c.share(c.tls.unknown)),
                    change,
                    mix: mix(c),
                    mix_legend: legend(c),
                    days: days(traffic),
                    busiest_day: busiest_day(traffic),
                }
            })
            .collect();
        let connectors = Direction::ALL
            .into_iter()
            .map(|direction| {
                let all: Vec<_> = report.connectors.iter().filter(|c| c.direction == direction).collect();
                let active: Vec<_> = all.iter().filter(|c| c.traffic.counters.messages > 0).collect();
                let rows: Vec<ConnectorView> = active
                    .iter()
                    .take(look.top_connectors)
                    .map(|c| {
                        let counters = &c.traffic.counters;
                        ConnectorView {
                            name: fit(&c.name, NAME_CHARS),
                            full_name: printable(&c.name),
                            messages: thousands(counters.messages),
                            with_tls: percent(counters.share(with_tls(counters))),
                            mix: mix(counters),
                            insights: report
                                .insights
                                .iter()
                                .filter(|i| i.direction == direction && i.connector == c.name)
                                .count(),
                            counters: *counters,
                        }
                    })
                    .collect();
                let rest = &active[rows.len()..];
                let more = (!rest.is_empty()).then(|| {
                    let messages: u64 = rest.iter().map(|c| c.traffic.counters.messages).sum();
                    format!(
                        "and {} more connector{} with {} messages",
                        rest.len(),
                        if rest.len() == 1 { "" } else { "s" },
                        thousands(messages)
                    )
                });
                ConnectorGroup { label: label(direction), rows, more }
            })
            .collect();
        let mut insights: Vec<(InsightKind, InsightGroup)> = Vec::new();
        for i in &report.insights {
            let item = InsightItem {
                connector: fit(&i.connector, NAME_CHARS),
                direction: i.direction,
                message: printable(&i.message),
            };
            let remediation = printable(&i.remediation);
            let warning = i.severity == Severity::Warning;
            match insights
                .iter_mut()
                .find(|(k, g)| *k == i.kind && g.warning == warning && g.remediation == remediation)
            {
                Some((_, group)) => group.items.push(item),
                None => insights.push((
                    i.kind,
                    InsightGroup {
                        warning,
                        severity: if warning { "Warning" } else { "Info" },
                        remediation,
                        items: vec![item],
                    },
                )),
            }
        }
        let problem_sources = report
            .sources
            .iter()
            .filter(|s| s.status != SourceStatus::Ok || s.skipped > 0)
            .map(|s| SourceView {
                name: fit(&s.name, NAME_CHARS),
                kind: printable(&s.kind),
                status: match s.status {
                    SourceStatus::Ok => "ok",
                    SourceStatus::Partial => "partial",
                    SourceStatus::Failed => "failed",
                },
                error: s.error.as_deref().map(printable),
                skipped: thousands(s.skipped),
                warnings: s.warnings.iter().take(3).map(|w| fit(w, 200)).collect(),
            })
            .collect();
        View {
            title: printable(&look.title),
            range: range_label(report.range.from, report.range.to, true),
            range_short: range_label(report.range.from, report.range.to, false),
            timezone: report.range.timezone.name().to_string(),
            generated_at: report.generated_at.format("%Y-%m-%d %H:%M UTC").to_string(),
            version: env!("CARGO_PKG_VERSION"),
            tls_share: percent(all.share(with_tls(&all))),
            weekly: report.range.days() as usize > MAX_DAY_ROWS,
            directions,
            legend: TlsVersion::ALL
                .into_iter()
                .map(|v| LegendItem { color: chart::color(v).1, label: v.label(), share: String::new() })
                .collect(),
            connectors,
            insight_count: report.insights.len(),
            insights: insights.into_iter().map(|(_, g)| g).collect(),
            problem_sources,
        }
    }
}

fn label(direction: Direction) -> &'static str {
    match direction {
        Direction::Inbound => "Inbound",
        Direction::Outbound => "Outbound",
    }
}

/// Messages sent over a known TLS version: a lower bound, since `unknown` may be TLS too.
fn with_tls(c: &Counters) -> u64 {
    c.tls.protected() - c.tls.unknown
}

/// "+4.1%" or "-12%"; none when there was nothing before.
fn change(now: u64, before: u64) -> Option<String> {
    if before == 0 {
        return None;
    }
    let relative = now as f64 / before as f64 - 1.0;
    let sign = if relative >= 0.0 { "+" } else { "-" };
    Some(format!("{sign}{}", percent(relative.abs())))
}

/// `1_234_567` bytes → "1.2 MB" (powers of 1000, as mail servers count sizes).
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["kB", "MB", "GB", "TB", "PB"];
    if n < 1000 {
        return format!("{n} B");
    }
    let mut value = n as f64;
    let mut unit = "B";
    for u in UNITS {
        if value < 1000.0 {
            break;
        }
        value /= 1000.0;
        unit = u;
    }
    format!("{value:.1} {unit}")
}

/// "Nov 23 – Nov 29, 2026", "Dec 28, 2026 – Jan 3, 2027" or "Nov 29, 2026"; without the year
/// for the subject.
fn range_label(from: NaiveDate, to: NaiveDate, with_year: bool) -> String {
    let day = |d: NaiveDate| d.format("%b %-d").to_string();
    match (from == to, from.year() == to.year(), with_year) {
        (true, _, true) => format!("{}, {}", day(to), to.year()),
        (true, _, false) => day(to),
        (false, true, true) => format!("{} – {}, {}", day(from), day(to), to.year()),
        (false, false, true) => format!("{}, {} – {}, {}", day(from), from.year(), day(to), to.year()),
        (false, _, false) => format!("{} – {}", day(from), day(to)),
    }
}

/// The TLS mix as bar segments whose widths add up to 100, each with its figures as a tooltip.
fn mix(c: &Counters) -> Vec<Segment> {
    segments(c, 100, true)
}

/// Bar segments per TLS version of `c`, with widths (whole percent) adding up to `scale`.
fn segments(c: &Counters, scale: u32, tooltips: bool) -> Vec<Segment> {
    let parts: Vec<(TlsVersion, u64)> =
        TlsVersion::ALL.into_iter().map(|v| (v, c.tls.get(v))).filter(|(_, n)| *n > 0).collect();
    let widths = apportion(&parts.iter().map(|(_, n)| *n).collect::<Vec<_>>(), scale);
    parts
        .into_iter()
        .zip(widths)
        .filter(|(_, w)| *w > 0)
        .map(|((v, n), width)| Segment {
            color: chart::color(v).1,
            width,
            title: if tooltips {
                format!("{}: {} ({})", v.label(), thousands(n), percent(c.share(n)))
            } else {
                String::new()
            },
        })
        .collect()
}

/// Splits `scale` in proportion to `counts` by largest remainder, so the parts add up exactly and
/// every nonzero count gets at least 1 while there is room.
fn apportion(counts: &[u64], scale: u32) -> Vec<u32> {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return vec![0; counts.len()];
    }
    let exact: Vec<f64> = counts.iter().map(|n| *n as f64 * f64::from(scale) / total as f64).collect();
    let mut widths: Vec<u32> = exact.iter().map(|x| x.floor() as u32).collect();
    let mut left = scale.saturating_sub(widths.iter().sum());
    let mut order: Vec<usize> = (0..counts.len()).collect();
    // Empty-looking parts first, then the largest remainders.
    order.sort_by(|a, b| {
        (widths[*a] > 0)
            .cmp(&(widths[*b] > 0))
            .then((exact[*b] - exact[*b].floor()).total_cmp(&(exact[*a] - exact[*a].floor())))
    });
    for i in order {
        if left == 0 {
            break;
        }
        if counts[i] > 0 {
            widths[i] += 1;
            left -= 1;
        }
    }
    widths
}

fn legend(c: &Counters) -> Vec<LegendItem> {
    TlsVersion::ALL
        .into_iter()
        .filter(|v| c.tls.get(*v) > 0)
        .map(|v| LegendItem { color: chart::color(v).1, label: v.label(), share: percent(c.share(c.tls.get(v))) })
        .collect()
}

/// One row per day, the bar scaled to the busiest day.
/// One row per day, or per week (Monday to Sunday, cut at the range's ends) when the range has
/// more than [`MAX_DAY_ROWS`] days; the bars are scaled to the busiest row.
fn days(traffic: &Traffic) -> Vec<DayView> {
    let mut rows: Vec<(NaiveDate, NaiveDate, Counters)> = Vec::new();
    for d in &traffic.daily {
        match rows.last_mut() {
            Some((first, last, counters))
                if traffic.daily.len() > MAX_DAY_ROWS
                    && first.week(Weekday::Mon).first_day() == d.date.week(Weekday::Mon).first_day() =>
            {
                *last = d.date;
                *counters += d.counters;
            }
            _ => rows.push((d.date, d.date, d.counters)),
        }
    }
    let max = rows.iter().map(|(_, _, c)| c.messages).max().unwrap_or(0);
    rows.into_iter()
        .map(|(first, last, counters)| {
            let scale = if max == 0 { 0 } else { (counters.messages * 100).div_ceil(max) as u32 };
            let bar = segments(&counters, scale, false);
            let rest = 100 - bar.iter().map(|s| s.width).sum::<u32>();
            let date = if first == last {
                first.format("%a %b %-d").to_string()
            } else {
                format!("{} – {}", first.format("%b %-d"), last.format("%b %-d"))
            };
            DayView { date, messages: thousands(counters.messages), bar, rest }
        })
        .collect()
}

fn busiest_day(traffic: &Traffic) -> String {
    match traffic.daily.iter().max_by_key(|d| d.counters.messages) {
        Some(d) if d.counters.messages > 0 => {
            format!("busiest day {} with {} messages", d.date.format("%a %b %-d"), thousands(d.counters.messages))
        }
        _ => "no messages".to_string(),
    }
}

/// The plain-text part: fixed columns for a terminal mail client, wrapped at 78.
fn text(report: &Report, view: &View) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", view.title);
    let _ = writeln!(out, "{} ({})\n", view.range, view.timezone);
    let _ = writeln!(
        out,
        "{:<10}{:>12}{:>9}{:>10}{:>9}{:>12}",
        "", "Messages", "Change", "With TLS", "No TLS", "Not logged"
    );
    for d in &view.directions {
        let _ = writeln!(
            out,
            "{:<10}{:>12}{:>9}{:>10}{:>9}{:>12}",
            d.label,
            d.messages,
            d.change.as_deref().unwrap_or("-"),
            d.with_tls,
            d.without_tls,
            d.not_logged
        );
    }
    if report.totals.previous.is_none() {
        let _ = writeln!(out, "(No change shown: not every source reaches back over the previous period.)");
    }

    let _ = write!(out, "\nTLS versions");
    let _ = write!(out, "\n{:<10}", "");
    for v in TlsVersion::ALL {
        let _ = write!(out, "{:>9}", v.label());
    }
    for direction in Direction::ALL {
        let c = &report.totals.get(direction).counters;
        let _ = write!(out, "\n{:<10}", label(direction));
        for v in TlsVersion::ALL {
            let _ = write!(out, "{:>9}", share_cell(c, c.tls.get(v)));
        }
    }
    out.push('\n');

    if let [inbound, outbound] = &view.directions[..] {
        let unit = if view.weekly { "week" } else { "day" };
        let _ = writeln!(out, "\n{:<22}{:>12}{:>12}", format!("Messages per {unit}"), "Inbound", "Outbound");
        for (i, o) in inbound.days.iter().zip(&outbound.days) {
            let _ = writeln!(out, "  {:<20}{:>12}{:>12}", i.date, i.messages, o.messages);
        }
    }

    for group in &view.connectors {
        let _ = writeln!(out, "\n{} connectors", group.label);
        if group.rows.is_empty() {
            let _ = writeln!(out, "  no traffic");
            continue;
        }
        let _ = writeln!(
            out,
            "  {:<TEXT_NAME_CHARS$} {:>9}{:>7}{:>7}{:>7}{:>7}{:>7}{:>8}",
            "Name (! = insights)", "Messages", "No TLS", "<=1.0", "1.1", "1.2", "1.3", "Unknown"
        );
        for row in &group.rows {
            let c = &row.counters;
            let mark = if row.insights > 0 { " !" } else { "" };
            let _ = writeln!(
                out,
                "  {:<TEXT_NAME_CHARS$} {:>9}{:>7}{:>7}{:>7}{:>7}{:>7}{:>8}",
                format!("{}{mark}", fit(&row.full_name, TEXT_NAME_CHARS - mark.len())),
                row.messages,
                share_cell(c, c.tls.none),
                share_cell(c, c.tls.ssl3 + c.tls.tls1_0),
                share_cell(c, c.tls.tls1_1),
                share_cell(c, c.tls.tls1_2),
                share_cell(c, c.tls.tls1_3),
                share_cell(c, c.tls.unknown),
            );
        }
        if let Some(more) = &group.more {
            let _ = writeln!(out, "  {more}");
        }
    }

    let _ = writeln!(out, "\nInsights ({})", view.insight_count);
    if view.insights.is_empty() {
        let _ = writeln!(out, "  None: every connector is within its thresholds.");
    }
    for group in &view.insights {
        out.push('\n');
        for i in &group.items {
            let line = format!("{} - {} ({}): {}", group.severity.to_uppercase(), i.connector, i.direction, i.message);
            wrap_into(&mut out, &line, "  ", "    ");
        }
        wrap_into(&mut out, &format!("What to do: {}", group.remediation), "    ", "    ");
    }

    if !view.problem_sources.is_empty() {
        let _ = writeln!(out, "\nSources with problems");
        for s in &view.problem_sources {
            let head = format!("{} ({}): {}, {} records skipped", s.name, s.kind, s.status, s.skipped);
            wrap_into(&mut out, &head, "  ", "    ");
            if let Some(e) = &s.error {
                wrap_into(&mut out, &format!("error: {e}"), "    ", "      ");
            }
            for w in &s.warnings {
                wrap_into(&mut out, w, "    ", "      ");
            }
        }
    }
    let _ = writeln!(out, "\n-- \nmailflow {}, report generated {}", view.version, view.generated_at);
    out
}

fn share_cell(c: &Counters, n: u64) -> String {
    if c.messages == 0 { "-".to_string() } else { percent(c.share(n)) }
}

fn wrap_into(out: &mut String, text: &str, first: &str, rest: &str) {
    let options = textwrap::Options::new(TEXT_WIDTH).initial_indent(first).subsequent_indent(rest);
    for line in textwrap::wrap(text, options) {
        out.push_str(&line);
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up_and_small_parts_stay_visible() {
        assert_eq!(apportion(&[1, 1, 1], 100), [34, 33, 33]);
        assert_eq!(apportion(&[1, 10_000], 100), [1, 99]);
        assert_eq!(apportion(&[0, 5], 100), [0, 100]);
        assert_eq!(apportion(&[0, 0], 100), [0, 0]);
        assert_eq!(apportion(&[3, 7], 40), [12, 28]);
    }

    #[test]
    fn long_ranges_show_weeks_cut_at_the_ranges_ends() {
        let report = traffic_of_days(30);
        let rows = days(&report);
        let labels: Vec<&str> = rows.iter().map(|r| r.date.as_str()).collect();
        // 2026-11-01 is a Sunday; 2026-11-30 a Monday.
        assert_eq!(
            labels,
            ["Sun Nov 1", "Nov 2 – Nov 8", "Nov 9 – Nov 15", "Nov 16 – Nov 22", "Nov 23 – Nov 29", "Mon Nov 30"]
        );
        assert_eq!(rows[1].messages, "7", "one message a day");
        assert_eq!(days(&traffic_of_days(14)).len(), 14);
    }

    /// `days` days from 2026-11-01 with one message each.
    fn traffic_of_days(days: i64) -> Traffic {
        let from: NaiveDate = "2026-11-01".parse().unwrap();
        let daily = (0..days)
            .map(|i| mailflow_core::report::Daily {
                date: from + chrono::Days::new(i as u64),
                counters: Counters { messages: 1, ..Default::default() },
            })
            .collect();
        Traffic { counters: Counters::default(), daily }
    }

    #[test]
    fn labels() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        assert_eq!(range_label(d("2026-11-27"), d("2026-12-03"), false), "Nov 27 – Dec 3");
        assert_eq!(range_label(d("2026-11-27"), d("2026-12-03"), true), "Nov 27 – Dec 3, 2026");
        assert_eq!(range_label(d("2026-12-28"), d("2027-01-03"), true), "Dec 28, 2026 – Jan 3, 2027");
        assert_eq!(range_label(d("2026-12-03"), d("2026-12-03"), true), "Dec 3, 2026");
        assert_eq!(bytes(999), "999 B");
        assert_eq!(bytes(1_234_567), "1.2 MB");
        assert_eq!(change(110, 100).as_deref(), Some("+10%"));
        assert_eq!(change(90, 100).as_deref(), Some("-10%"));
        assert_eq!(change(5, 0), None);
    }
}
