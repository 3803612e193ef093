//! `[[collector]] type = "m365_csv"`: the CSV files an admin downloads from Microsoft 365.
//!
//! Exchange Online hands out its mail flow data as files rather than logs: message trace
//! summaries and details from the Exchange admin center or `Start-HistoricalSearch`, and the
//! connector report's daily totals. They come as UTF-8 or UTF-16, with or without a byte-order
//! mark, and their header says which export they are. Summaries and details become message
//! events; the connector report, which holds no single messages, becomes daily counts. Any other
//! CSV (Get-MessageTrace piped to Export-Csv, another system's export) reads through a `columns`
//! mapping.
//!
//! # Layout
//! - [`M365CsvConfig`]: the TOML options (see `sample.toml` beside this crate).
//! - [`M365CsvCollector`]: the running collector: opens each file, reads its header, hands each
//!   row to the reader of that format.
//! - `decode`: bytes to UTF-8 whatever the encoding, streaming, with a cap on record size.
//! - `fields`: cells (times, numbers, statuses, recipients) as the exports spell them.
//! - `summary`, `detail`, `report`, `custom`: one module per format. Only `detail` keeps state
//!   across rows, because a message's events are rows of their own; it keeps it for the whole
//!   run, as a message's rows may be in two files.
//! - [`Run`]: what the run keeps across files: the messages already emitted, so a message in
//!   two files (a summary and a detail of one period, overlapping searches) counts once.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::io::BufRead;
use std::path::PathBuf;
use std::sync::Arc;

use mailflow_component::input::{self, PathSpec};
use mailflow_component::{CollectContext, CollectError, Collector, Emitter};
use mailflow_config::{ComponentSection, ConfigError};
use mailflow_core::{Direction, MessageEvent};
use serde::Deserialize;

mod custom;
mod decode;
mod detail;
mod fields;
mod report;
mod summary;

/// Options of an `m365_csv` collector.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct M365CsvConfig {
    /// Files, globs (`exports/*.csv`) or `-` for standard input. Relative paths are taken from
    /// the config file's folder. gzip, xz and zstd files are read too.
    pub paths: Vec<PathBuf>,
    /// Which export the files are; `auto` tells each file by its header.
    #[serde(default)]
    pub format: Format,
    /// Which columns hold which fields, for CSV files of other layouts (`format = "custom"`, or
    /// `auto` when the header is none of Microsoft's).
    #[serde(default)]
    pub columns: Option<Columns>,
    /// Longest CSV record: an unclosed quote would otherwise make the rest of a file one record
    /// held in memory. A longer record ends the file's reading; the records before it count.
    #[serde(default = "default_max_record_bytes")]
    pub max_record_bytes: usize,
    /// How dates with the year last are written: `11/30/2026` (`mdy`, en-US) or `30/11/2026`
    /// (`dmy`, en-GB and most others); `auto` tells each file by its first date with a day above
    /// 12. ISO dates (`2026-11-30`) read the same whatever this says.
    #[serde(default)]
    pub date_order: DateOrder,
}

/// The order of day, month and year in dates like `11/30/2026`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DateOrder {
    /// Each file by its first date that reads only one way; month first if none does.
    #[default]
    Auto,
    /// Month first: `11/30/2026`.
    Mdy,
    /// Day first: `30/11/2026`, `30.11.2026`.
    Dmy,
    /// Year first: `2026/11/30`; dates with the year last are not read.
    Ymd,
}

fn default_max_record_bytes() -> usize {
    1024 * 1024
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    #[default]
    Auto,
    /// Message trace, enhanced summary report (`-ReportType MessageTrace`): a row per message.
    Summary,
    /// Message trace, extended report (`-ReportType MessageTraceDetail`): a row per event.
    Detail,
    /// The connector report or inbound/outbound messages report: daily totals.
    ConnectorReport,
    /// Any CSV with a row per message, read through `columns`.
    Custom,
}

/// Header names (case, spaces and punctuation do not matter) of a custom CSV's fields. Each
/// row is one message.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Columns {
    /// When the message was received or sent (required).
    pub time: Option<String>,
    /// `Inbound`/`Incoming` or `Outbound`/`Outgoing`/`Originating`. Without it, or where it says
    /// neither, the sender's domain decides: outbound from `[site] accepted_domains`. One of
    /// `direction` and `sender` is required.
    pub direction: Option<String>,
    /// The sender's address.
    pub sender: Option<String>,
    /// Recipient addresses separated by `;` or `,`, or their number.
    pub recipients: Option<String>,
    /// The tenant's connector; empty, `-` and Microsoft's built-in connectors are none.
    pub connector: Option<String>,
    /// The TLS version in any of Microsoft's spellings (`TLS1.2`, `SP_PROT_TLS1_2_SERVER`), or
    /// `None`/`No TLS` for plaintext.
    pub tls: Option<String>,
    /// Size in bytes.
    pub size: Option<String>,
    /// Delivery status: `Delivered`, `Failed`, `Pending`, `Quarantined`, … or a trace event.
    pub status: Option<String>,
    pub message_id: Option<String>,
    /// The peer's IP address.
    pub peer_ip: Option<String>,
}

/// Builds the collector from its config section (the registry's entry point).
pub fn build(section: &ComponentSection) -> Result<Box<dyn Collector>, ConfigError> {
    let config: M365CsvConfig = section.options()?;
    let inputs = PathSpec::all(&config.paths, section.config_dir()).map_err(|why| section.error(why))?;
    if config.max_record_bytes == 0 {
        return Err(section.error("`max_record_bytes` must be above 0"));
    }
    match (&config.columns, config.format) {
        (None, Format::Custom) => return Err(section.error("`format = \"custom\"` needs `columns`")),
        (Some(_), Format::Summary | Format::Detail | Format::ConnectorReport) => {
            return Err(section.error("`columns` is read only with `format = \"custom\"` or \"auto\""));
        }
        (Some(c), _) if c.time.is_none() => return Err(section.error("`columns` needs `time`")),
        (Some(c), _) if c.direction.is_none() && c.sender.is_none() => {
            return Err(section.error("`columns` needs `direction` or `sender`, to tell inbound from outbound"));
        }
        _ => {}
    }
    Ok(Box::new(M365CsvCollector { config, inputs }))
}

pub struct M365CsvCollector {
    config: M365CsvConfig,
    inputs: Vec<PathSpec>,
}

impl Collector for M365CsvCollector {
    fn collect(&self, ctx: &CollectContext<'_>, out: &mut Emitter<'_>) -> Result<(), CollectError> {
        let mut run = Run::default();
        for (file, input) in input::expand(&self.inputs, out).into_iter().enumerate() {
            run.file = file;
            let name: Arc<str> = input.display_name().into();
            let result = input.open(out.progress()).and_then(|reader| self.read(reader, &name, ctx, &mut run, out));
            if let Err(e) = result {
                out.error(e.to_string());
            }
        }
        // A detail's messages, whichever files their rows were in.
        run.file = usize::MAX;
        std::mem::take(&mut run.details).finish(&ctx.site.accepted_domains, &mut run, out);
        let internal = run.internal.len() as u64 + run.internal_unkeyed;
        if internal > 0 {
            out.note(format!("{internal} messages between accepted domains are internal and not counted"));
        }
        if run.repeated > 0 {
            out.note(format!("{} messages already read from another file were counted once", run.repeated));
        }
        Ok(())
    }
}

/// What a run keeps across its files.
#[derive(Default)]
pub(crate) struct Run {
    /// The number of the file being read.
    file: usize,
    /// Every message emitted with a key, and the file it was read from.
    emitted: HashMap<(String, Direction), usize>,
    /// Messages skipped because another file had them.
    repeated: u64,
    /// Messages between accepted domains, which no event counts: by key, and those without.
    internal: HashSet<String>,
    internal_unkeyed: u64,
    details: detail::Messages,
}

impl Run {
    /// Emits `event` unless another file already gave the message with this key (see
    /// [`network_key`], [`message_key`]) in the same direction. Rows of one file that share a key
    /// (Get-MessageTrace's row per recipient) are not taken for repeats.
    pub fn emit(&mut self, key: Option<String>, event: MessageEvent, out: &mut Emitter<'_>) {
        if let Some(key) = key {
            match self.emitted.entry((key, event.direction)) {
                Entry::Occupied(e) if *e.get() != self.file => {
                    self.repeated += 1;
                    return;
                }
                Entry::Occupied(_) => {}
                Entry::Vacant(e) => {
                    e.insert(self.file);
                }
            }
        }
        out.event(event);
    }

    /// Counts a message between accepted domains once, however many files hold it.
    pub fn internal(&mut self, key: Option<String>) {
        match key {
            Some(key) => _ = self.internal.insert(key),
            None => self.internal_unkeyed += 1,
        }
    }
}

/// A message's key by its `network_message_id`, the same GUID in every export of Exchange Online
/// but not always written alike: with or without dashes and braces, in either case.
pub(crate) fn network_key(id: &str) -> String {
    let id: String = id.chars().filter(|c| !matches!(c, '-' | '{' | '}')).map(|c| c.to_ascii_lowercase()).collect();
    format!("n:{id}")
}

/// A message's key by its Message-ID, for files without a network message id.
pub(crate) fn message_key(id: &str) -> String {
    format!("m:{id}")
}

/// Rows held while a file's date order is not known yet: beyond this many bytes of cells,
/// dates are read month first.
const UNDECIDED_BYTES: usize = 64 << 20;

/// The most rows a historical search report holds (Start-HistoricalSearch): a file of exactly
/// this many was most likely cut there.
const HISTORICAL_SEARCH_ROWS: u64 = 100_000;

/// A record whose every cell is empty or spaces: a blank line, or only separators.
fn blank(record: &csv::ByteRecord) -> bool {
    record.iter().all(|cell| cell.iter().all(u8::is_ascii_whitespace))
}

/// The reader of one file's format.
enum Rows {
    Summary(summary::Summary),
    Detail(detail::Detail),
    Report(report::Report),
    Custom(custom::Custom),
}

impl Rows {
    /// The column whose dates tell a file's date order.
    fn time_column(&self) -> usize {
        match self {
            Rows::Summary(r) => r.time,
            Rows::Detail(r) => r.time,
            Rows::Report(r) => r.date,
            Rows::Custom(r) => r.time,
        }
    }
}

impl M365CsvCollector {
    fn read(
        &self,
        reader: Box<dyn BufRead + Send>,
        name: &Arc<str>,
        ctx: &CollectContext<'_>,
        run: &mut Run,
        out: &mut Emitter<'_>,
    ) -> Result<(), CollectError> {
        let failed = |line: u64, why: &dyn std::fmt::Display| CollectError::Other(format!("{name}:{line}: {why}"));
        let decoder = decode::Decoder::new(reader, self.config.max_record_bytes).map_err(|e| failed(1, &e))?;
        // Records end at `\n` alone: by default the csv crate gives every record of a CRLF file
        // the line before its own. The `\r` left at a record's end is trimmed with its cell.
        let mut csv = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .terminator(csv::Terminator::Any(b'\n'))
            .from_reader(decoder);
        let mut record = csv::ByteRecord::new();
        // PowerShell's Export-Csv starts with a `#TYPE …` line before the header.
        let header = loop {
            if !csv.read_byte_record(&mut record).map_err(|e| failed(csv.position().line(), &e))? {
                return Ok(()); // An empty file: no header, no messages.
            }
            if !blank(&record) && !record.get(0).is_some_and(|first| first.starts_with(b"#TYPE")) {
                break record.iter().map(|cell| String::from_utf8_lossy(cell).trim().to_string()).collect::<Vec<_>>();
            }
        };
        let header_line = record.position().map_or(1, |p| p.line());
        let mut rows = self.rows_for(&fields::Header::new(&header)).map_err(|why| failed(header_line, &why))?;

        let accepted_domains = &ctx.site.accepted_domains;
        let handle = |cells: &[&str], line, date_order, rows: &mut Rows, run: &mut Run, out: &mut Emitter<'_>| {
            let row = fields::Row { cells, file: name, line, accepted_domains, date_order };
            let done = match rows {
                Rows::Summary(r) => r.row(&row, run, out),
                Rows::Detail(r) => r.row(&row, &mut run.details),
                Rows::Report(r) => r.row(&row, out),
                Rows::Custom(r) => r.row(&row, run, out),
            };
            if let Err(why) = done {
                out.skip(format!("{name}:{line}"), why);
            }
        };
        let replay = |waiting: &mut Vec<(u64, Vec<String>)>, order, rows: &mut Rows, run: &mut Run, out: &mut _| {
            for (line, cells) in waiting.drain(..) {
                handle(&cells.iter().map(String::as_str).collect::<Vec<_>>(), line, order, rows, run, out);
            }
        };
        // With `date_order = "auto"`, rows wait from the first date that reads both ways
        // (`05/11/2026`) until a date tells the order (`30/11/2026`), the end of the file, or
        // UNDECIDED_BYTES; then month first, with a warning.
        let time_column = rows.time_column();
        let mut date_order = Some(self.config.date_order).filter(|o| *o != DateOrder::Auto);
        let mut waiting: Vec<(u64, Vec<String>)> = Vec::new();
        let mut waiting_bytes = 0;
        let warn_undecided = |waiting: &[(u64, Vec<String>)], capped: bool, out: &mut Emitter<'_>| {
            out.warn(format!(
                "{name}: dates such as {:?} read as month first or day first alike, and no date {} tells which, \
                 so {} rows from there on are read month first; set `date_order` to \"dmy\" if the file writes \
                 the day first, or to \"mdy\"",
                waiting[0].1.get(time_column).map_or("", String::as_str),
                if capped { "in the rows held until then" } else { "of the file" },
                waiting.len(),
            ));
        };
        let mut data_rows = 0u64;
        let result = loop {
            let result = csv.read_byte_record(&mut record);
            let line = record.position().map_or_else(|| csv.position().line(), |p| p.line());
            match result {
                Ok(false) => break Ok(()),
                // A blank line (a CRLF file's trailing `\r\n\r\n`, say) holds no row.
                Ok(true) if blank(&record) => continue,
                Ok(true) if record.len() != header.len() => {
                    data_rows += 1;
                    out.skip(
                        format!("{name}:{line}"),
                        format!("expected {} columns as in the header, found {}", header.len(), record.len()),
                    );
                }
                Ok(true) => {
                    data_rows += 1;
                    // The decoder wrote UTF-8 and CSV splits only at ASCII, so every cell is UTF-8.
                    let cells: Vec<&str> =
                        record.iter().map(|cell| std::str::from_utf8(cell).unwrap_or("\u{FFFD}").trim()).collect();
                    if date_order.is_none() {
                        let time = cells.get(time_column).copied().unwrap_or("");
                        date_order = fields::order_shown(time);
                        if date_order.is_none() && (fields::ambiguous(time) || !waiting.is_empty()) {
                            waiting_bytes += cells.iter().map(|c| c.len() + 24).sum::<usize>();
                            waiting.push((line, cells.iter().map(|c| c.to_string()).collect()));
                            if waiting_bytes > UNDECIDED_BYTES {
                                warn_undecided(&waiting, true, out);
                                date_order = Some(DateOrder::Mdy);
                                replay(&mut waiting, DateOrder::Mdy, &mut rows, run, out);
                            }
                            continue;
                        }
                        replay(&mut waiting, date_order.unwrap_or_default(), &mut rows, run, out);
                    }
                    handle(&cells, line, date_order.unwrap_or_default(), &mut rows, run, out);
                }
                Err(e) => break Err(failed(line, &e)),
            }
        };
        // What was read before an error still counts.
        if !waiting.is_empty() {
            warn_undecided(&waiting, false, out);
            replay(&mut waiting, DateOrder::Mdy, &mut rows, run, out);
        }
        if let Rows::Summary(r) = rows {
            r.finish(name, accepted_domains, out);
        }
        if result.is_ok() && data_rows == HISTORICAL_SEARCH_ROWS {
            out.warn(format!(
                "{name}: holds {data_rows} rows, the most a historical search report holds, so the export is \
                 probably cut short at Microsoft's limit; split the report's period into smaller searches and read \
                 them all"
            ));
        }
        let decoder = csv.get_ref();
        if decoder.invalid > 0 {
            out.warn(format!(
                "{name}: {} byte sequences that are not {} were read as U+FFFD",
                decoder.invalid,
                decoder.encoding.name()
            ));
        }
        result
    }

    fn rows_for(&self, header: &fields::Header) -> Result<Rows, String> {
        let format = match self.config.format {
            Format::Auto if detail::looks_like(header) => Format::Detail,
            Format::Auto if summary::looks_like(header) => Format::Summary,
            Format::Auto if report::looks_like(header) => Format::ConnectorReport,
            Format::Auto if self.config.columns.is_some() => Format::Custom,
            Format::Auto => {
                return Err("expected the header of a message trace summary (origin_timestamp_utc,sender_address,\
                            recipient_status,…), a message trace detail (date_time_utc,…,event_id,…,\
                            network_message_id,…) or a connector report (Date, Connector direction and name, …, \
                            TLS 1.2, …, Volume); set `columns` to read other files"
                    .into());
            }
            format => format,
        };
        Ok(match format {
            Format::Summary => Rows::Summary(summary::Summary::new(header)?),
            Format::Detail => Rows::Detail(detail::Detail::new(header)?),
            Format::ConnectorReport => Rows::Report(report::Report::new(header)?),
            _ => {
                Rows::Custom(custom::Custom::new(header, self.config.columns.as_ref().unwrap_or(&Columns::default()))?)
            }
        })
    }
}
