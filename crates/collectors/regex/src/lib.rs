//! `[[collector]] type = "regex"`: message events from any line-based mail log, its format
//! described in TOML.
//!
//! Many MTAs have no collector of their own, and writing one is code. Here an admin describes
//! the log instead: line patterns whose named groups map to event fields, the time format, and
//! how lines of one session or message are joined. MTAs rarely say everything about a message in
//! one line — the TLS handshake is logged per connection, the delivery per message, a deferral
//! before the retry that delivers — so a pattern can store what its line says under a
//! correlation key, and the line that completes an event reads it back.
//!
//! # Layout
//! - [`RegexConfig`], [`PatternConfig`]: the TOML options (see `sample.toml` beside this crate).
//! - [`RegexCollector`]: the running collector, every pattern compiled once when it is built.
//! - `fields`: the fields a named group can fill in, and the normalizers of their values.
//! - `time`: the `time_format`s; year-less times go through `mailflow_component::clock`.
//! - `state`: stored fields and held events under their keys, drop and delivery marks, and the
//!   limits on them.
//! - `checkpoint`: that state saved after a run and restored by the next, for incremental
//!   ingest.
//!
//! # How a line is read
//! The first pattern (in file order) whose regex matches the line decides; lines no pattern
//! matches are ignored, as most lines of a mail log say nothing about traffic. When every
//! pattern has a `contains` literal, the literals are checked first (a SIMD substring search
//! each) and only a pattern whose literal is in the line runs its regex; otherwise one
//! `RegexSet` pass finds the candidates. Classes like `\w` and `\d` are ASCII, as in grep: logs
//! are bytes, and ASCII classes keep the automata small and fast. A matching line whose
//! values do not parse is skipped, naming the pattern, the group and what was expected: a
//! pattern that matched meant to read the line, so a value it cannot read is lost data, not
//! noise.
//!
//! # Correlation
//! Two kinds of key, because they live for different times: a session (`key`: a connection, a
//! process id) lasts minutes and carries TLS and the peer; a message (`message_key`: a queue id,
//! a transaction) may wait days for a retry. A line without `emit` stores its fields under its
//! message key, or else its session key; an emitting line reads both, its own fields winning.
//! `hold` exists because MTAs log each delivery attempt: a deferral is held, and the attempt that
//! settles the message replaces it, so a message deferred then delivered counts once,
//! delivered, as the `postfix` collector counts it.
//!
//! Three more pattern options shape what counts. `drop` marks a message key whose events are
//! not traffic (a site's own bounces, a message a filter refused after it was logged as
//! received): its held and later events, and those of keys that extend it, are discarded.
//! `hold_secs` bounds how long a held event waits for such a line. `unless_delivered` makes a
//! key's delivery final: later failure or retry lines of that key (recipients refused in the
//! same transaction, the rest of a split delivery) are not counted again.
//!
//! # Robustness
//! Nothing in a log panics the collector: values are read with checked arithmetic, and a value
//! that does not parse is reported. A bad time skips its line (an event needs one); a bad value
//! of any other field is left out of the line, which still correlates, and the collector warns
//! once per pattern and group with a count. A file whose lines match no pattern, or only
//! patterns that emit nothing, gets a warning: a time format or a log format that differs from
//! the patterns would otherwise report nothing, silently.

mod checkpoint;
mod fields;
mod state;
mod time;

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::PathBuf;
use std::sync::Arc;

use chrono_tz::Tz;
use mailflow_component::clock::{self, Clock, InputClocks, YearRule};
use mailflow_component::input::{self, LineRef, PathSpec};
use mailflow_component::resume::{self, Files, State};
use mailflow_component::{CollectContext, CollectError, Collector, Emitter, Resume};
use mailflow_config::{ComponentSection, ConfigError};
use mailflow_core::Direction;
use regex::bytes::{CaptureLocations, Regex, RegexSet};
use serde::Deserialize;

pub use fields::Field;
use fields::Fields;
use state::{Held, Marks, Store};
pub use time::{TimeFormat, TimeFormats};

/// Options of a `regex` collector.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegexConfig {
    /// Files, globs (`/var/log/haraka.log*`, rotated and compressed files included) or `-` for
    /// standard input. Relative paths are taken from the config file's folder.
    pub paths: Vec<PathBuf>,
    /// How the `time` group is written: `rfc3339`, `syslog` (`Dec  4 15:00:00`), `unix`,
    /// `unix_ms`, or a strftime format such as `%Y-%m-%d %H:%M:%S%.f`; or a list of them
    /// (`["syslog", "rfc3339"]`), tried in order.
    #[serde(default = "default_time_format", deserialize_with = "one_or_many")]
    pub time_format: Vec<String>,
    /// Time zone of times written without an offset; default: the site's.
    #[serde(default)]
    pub timezone: Option<Tz>,
    /// Year of the first year-less time. Default: inferred per file from its modification time
    /// (standard input: from the end of the report range).
    #[serde(default)]
    pub year: Option<i32>,
    /// Longest line read; longer lines are skipped and counted.
    #[serde(default = "mailflow_component::logs::default_max_line_bytes")]
    pub max_line_bytes: usize,
    /// Keys held in memory at once, sessions and messages each; beyond it the least recently
    /// seen is dropped, its held event emitted, and a warning counts them.
    #[serde(default = "default_max_open_keys")]
    pub max_open_keys: usize,
    /// A session `key` not seen for this long (in log time) is forgotten: connections end in
    /// minutes, and process ids used as keys come back.
    #[serde(default = "default_session_timeout_secs")]
    pub session_timeout_secs: u64,
    /// A `message_key` not seen for this long is forgotten, its held event emitted: as long as
    /// the MTA retries a deferred message.
    #[serde(default = "default_message_timeout_secs")]
    pub message_timeout_secs: u64,
    /// Value maps for every pattern, by field: `{ status = { "250" = "delivered" } }`. A
    /// pattern's own `map` entries win.
    #[serde(default)]
    pub map: BTreeMap<String, BTreeMap<String, String>>,
    /// The line patterns, tried in order (`[[collector.pattern]]` tables).
    #[serde(rename = "pattern", default)]
    pub patterns: Vec<PatternConfig>,
}

/// One `[[collector.pattern]]`: a kind of line and what it means.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatternConfig {
    /// Names the pattern in messages; default: its position, `#1` for the first.
    #[serde(default)]
    pub name: Option<String>,
    /// A regular expression (Rust `regex` syntax; `\d`, `\w`, `\s` are ASCII classes, `(?u)`
    /// makes them Unicode) whose named groups are fields (`time`, `peer_ip`, `tls_version`…),
    /// correlation keys (`key`, `message_key`, and `key_*`, `message_key_*` parts) or ignored
    /// (a name starting with `_`).
    pub regex: String,
    /// A literal the line must contain for the regex to be tried: a cheap filter.
    #[serde(default)]
    pub contains: Option<String>,
    /// The line completes an event of this direction (`inbound` or `outbound`); a `direction`
    /// field, captured, set or stored, wins. Without `emit`, the line only stores its fields
    /// under its keys.
    #[serde(default)]
    pub emit: Option<Direction>,
    /// The event is not final (a deferral): it is held under its key, and a later emitting line
    /// of the key replaces it (its fields, status and time win; recipients add up). Held
    /// events are emitted when their key ends, times out, goes over `max_open_keys` or the
    /// input ends (a `drop` line discards them instead).
    #[serde(default)]
    pub hold: bool,
    /// With `hold`: a held event that no later line replaced is emitted once the log's time is
    /// this many seconds past it (default: it waits until its key ends or times out).
    #[serde(default)]
    pub hold_secs: Option<u64>,
    /// The line ends its keys: what they stored is forgotten, their held events emitted.
    #[serde(default)]
    pub end: bool,
    /// The line's message key is not traffic (the site's own bounce, a message refused after it
    /// was logged): events held under it are discarded, and so are events emitted later under
    /// it or under a key that extends it (`Q2` covers `Q2 example.net`), for
    /// `message_timeout_secs`.
    #[serde(default)]
    pub drop: bool,
    /// Lines this pattern matches are ignored: no later pattern is tried on them. For lines a
    /// broader pattern after it would otherwise read (a delivery to the loopback address).
    #[serde(default)]
    pub ignore: bool,
    /// The event is dropped when its message key already emitted a delivered event: a
    /// delivery counts once, whatever its key logs after it (recipients refused in the same
    /// transaction, a retry of the rest).
    #[serde(default)]
    pub unless_delivered: bool,
    /// Fields this line sets whatever it says, e.g. `{ tls_version = "none" }`; captured
    /// values win.
    #[serde(default)]
    pub set: BTreeMap<String, Constant>,
    /// Fields an emitted event gets when neither the line nor its keys know them.
    #[serde(default)]
    pub default: BTreeMap<String, Constant>,
    /// Value maps by field, applied to captured values before they are read:
    /// `{ tls_version = { N = "none" } }`. Unmapped values are read as they are.
    #[serde(default)]
    pub map: BTreeMap<String, BTreeMap<String, String>>,
}

/// A `set` or `default` value: TOML strings, numbers and booleans are all read as text.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Constant {
    Text(String),
    Number(i64),
    Flag(bool),
}

impl Constant {
    fn text(&self) -> String {
        match self {
            Constant::Text(t) => t.clone(),
            Constant::Number(n) => n.to_string(),
            Constant::Flag(b) => b.to_string(),
        }
    }
}

fn default_time_format() -> Vec<String> {
    vec!["rfc3339".to_string()]
}

/// `time_format = "syslog"` or `time_format = ["syslog", "rfc3339"]`.
fn one_or_many<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    struct OneOrMany;
    impl<'de> serde::de::Visitor<'de> for OneOrMany {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a time format or a list of them")
        }
        fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<Vec<String>, E> {
            Ok(vec![value.to_string()])
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
            let mut formats = Vec::new();
            while let Some(format) = seq.next_element::<String>()? {
                formats.push(format);
            }
            Ok(formats)
        }
    }
    deserializer.deserialize_any(OneOrMany)
}
fn default_max_open_keys() -> usize {
    100_000
}
fn default_session_timeout_secs() -> u64 {
    3600
}
fn default_message_timeout_secs() -> u64 {
    7 * 24 * 3600
}

/// Builds the collector from its config section (the registry's entry point).
pub fn build(section: &ComponentSection) -> Result<Box<dyn Collector>, ConfigError> {
    let config: RegexConfig = section.options()?;
    let inputs = PathSpec::all(&config.paths, section.config_dir()).map_err(|why| section.error(why))?;
    let collector = RegexCollector::new(config, inputs).map_err(|why| section.error(why))?;
    Ok(Box::new(collector))
}

/// A `regex` collector, every pattern compiled.
pub struct RegexCollector {
    config: RegexConfig,
    inputs: Vec<PathSpec>,
    time_format: TimeFormats,
    patterns: Vec<Pattern>,
    /// All patterns' regexes, in order, for one pass per line.
    set: RegexSet,
    /// Whether every pattern has a `contains` literal: then patterns are tried one by one, each
    /// only on lines with its literal, instead of running the set.
    all_filtered: bool,
}

/// What a named group is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Field(Field),
    Key,
    MessageKey,
}

struct Pattern {
    /// `"name"` or `#N`, for messages.
    label: String,
    regex: Regex,
    contains: Option<memchr::memmem::Finder<'static>>,
    /// Named groups that matter, by capture index, in the order they appear.
    groups: Vec<(usize, Role)>,
    has_key: bool,
    has_message_key: bool,
    set: Fields,
    defaults: Fields,
    /// Value maps, by field (the collector's merged with the pattern's).
    maps: ValueMaps,
    emit: Option<Direction>,
    hold: bool,
    /// `hold_secs` in microseconds.
    hold_micros: Option<i64>,
    end: bool,
    drop: bool,
    ignore: bool,
    unless_delivered: bool,
}

impl RegexCollector {
    /// Compiles `config`; `Err` names the pattern and what is wrong with it.
    pub fn new(config: RegexConfig, inputs: Vec<PathSpec>) -> Result<RegexCollector, String> {
        let limits = [config.max_line_bytes as u64, config.max_open_keys as u64, config.session_timeout_secs];
        if limits.contains(&0) || config.message_timeout_secs == 0 {
            return Err("`max_line_bytes`, `max_open_keys` and the timeouts must be above 0".into());
        }
        clock::check_year(config.year)?;
        let time_format = TimeFormats::new(&config.time_format)?;
        if config.patterns.is_empty() {
            return Err("no patterns: add [[collector.pattern]] tables with a `regex` each".into());
        }
        let shared_maps = field_maps(&config.map).map_err(|e| format!("`map`: {e}"))?;
        let patterns = config
            .patterns
            .iter()
            .enumerate()
            .map(|(i, p)| compile(i, p, &shared_maps))
            .collect::<Result<Vec<_>, _>>()?;
        if !patterns.iter().any(|p| p.emit.is_some()) {
            return Err("no pattern has `emit`, so no event would ever be produced".into());
        }
        let all_filtered = patterns.iter().all(|p| p.contains.is_some());
        let set = if all_filtered {
            RegexSet::empty()
        } else {
            regex::bytes::RegexSetBuilder::new(config.patterns.iter().map(|p| &p.regex))
                .unicode(false)
                .build()
                .map_err(|e| format!("the patterns together are too large to compile: {e}"))?
        };
        Ok(RegexCollector { config, inputs, time_format, patterns, set, all_filtered })
    }

    fn read(
        &self,
        source: Box<dyn BufRead + Send>,
        name: &str,
        reader: &mut Reader,
        out: &mut Emitter<'_>,
    ) -> Result<(), CollectError> {
        reader.file = Arc::from(name);
        reader.line_number = 0;
        reader.file_lines = FileLines::default();
        let max = self.config.max_line_bytes;
        let result = input::for_each_line(source, max, |line| self.line(reader, line, out));
        self.file_warnings(name, reader.file_lines, out);
        result.map_err(|e| CollectError::Other(format!("{name}: stopped after line {}: {e}", reader.line_number)))
    }

    fn line(&self, reader: &mut Reader, line: LineRef<'_>, out: &mut Emitter<'_>) {
        match line {
            LineRef::TooLong(n) => {
                reader.line_number += 1;
                reader.file_lines.read += 1;
                let max = self.config.max_line_bytes;
                out.skip(
                    format!("{}:{}", reader.file, reader.line_number),
                    format!("line of {n} bytes is over max_line_bytes ({max})"),
                )
            }
            LineRef::Text(text) => reader.line(self, text, out),
        }
    }

    /// Says when no line of a file matched, or none emitted: the patterns do not fit it.
    fn file_warnings(&self, name: &str, lines: FileLines, out: &mut Emitter<'_>) {
        if lines.read > 0 && lines.matched == 0 {
            out.warn(format!(
                "no line of {name} matched any pattern; check time_format and the patterns against a line of it"
            ));
        } else if lines.matched > 0 && lines.emitting == 0 {
            out.warn(format!(
                "lines of {name} matched only patterns without `emit`, so no event came from it; check the emitting \
                 patterns against a line of it"
            ));
        }
    }

    /// `mailflow ingest`: the lines after the last checkpoint, with the keys and held events it
    /// kept. Events still held at the end stay in the checkpoint instead of being released.
    fn collect_new(
        &self,
        ctx: &CollectContext<'_>,
        resume: Resume<'_>,
        out: &mut Emitter<'_>,
    ) -> Result<(), CollectError> {
        let tz = self.config.timezone.unwrap_or(ctx.site.timezone);
        let saved: State = resume::load(resume.state).map_err(CollectError::Other)?;
        let mut clocks = InputClocks::new(tz, self.config.year, ctx.end);
        if let Some(year) = saved.year {
            clocks.carry(year);
        }
        let mut reader = Reader::new(self, Clock::new(tz, YearRule::starting(2000)));
        if !saved.parser.is_empty()
            && let Err(why) = reader.restore(&saved.parser)
        {
            out.warn(format!("{why}; the sessions and messages in flight at the last ingest are dropped"));
        }
        let mut files = saved.files;
        let inputs = input::expand(&self.inputs, out);
        files.plan(&inputs);
        for input in inputs {
            reader.clock = clocks.start(&input);
            reader.file = Arc::from(input.display_name());
            reader.file_lines = FileLines::default();
            let mut lines =
                NewLines { collector: self, reader: &mut reader, year: self.config.year.is_some(), first: None };
            let max = self.config.max_line_bytes;
            let result = resume::read_new_lines(&mut files, &input, resume, max, &mut lines, out);
            if lines.first == Some(1) {
                self.file_warnings(&input.display_name(), reader.file_lines, out);
            }
            clocks.finish(&reader.clock);
            if let Err(e) = result {
                out.error(e.to_string());
            }
        }
        files.forget_old();
        let state = State { files, year: clocks.carried(), parser: reader.save() };
        out.checkpoint(&resume::save(&state))?;
        self.report(&reader, out);
        Ok(())
    }

    /// Warnings and notes about the whole run: keys dropped over the limit, values left out,
    /// events discarded.
    fn report(&self, reader: &Reader, out: &mut Emitter<'_>) {
        let (sessions, messages) = (&reader.sessions, &reader.messages);
        let evicted = sessions.evicted + messages.evicted;
        if evicted > 0 {
            out.warn(format!(
                "to stay within max_open_keys ({}), the collector dropped {} correlation keys before their end \
                 ({} of them with a held event, emitted early); lines that came later for those keys lack what \
                 was stored; raise max_open_keys if the log is that busy",
                self.config.max_open_keys,
                evicted,
                sessions.evicted_held + messages.evicted_held
            ));
        }
        for bad in &reader.bad_values {
            let pattern = &self.patterns[bad.pattern].label;
            let lines = if bad.lines == 1 { "1 line".to_string() } else { format!("{} lines", bad.lines) };
            out.warn(format!(
                "{}: {pattern}: group `{}` must be {}, not {}; left out of {lines}, which still counted without it",
                bad.first_at,
                bad.field.name(),
                bad.want,
                bad.value
            ));
        }
        for (pattern, &n) in self.patterns.iter().zip(&reader.dropped_by) {
            if n > 0 {
                let label = &pattern.label;
                out.note(match n {
                    1 => format!("1 event not counted: its message key was dropped by {label}"),
                    n => format!("{n} events not counted: their message key was dropped by {label}"),
                });
            }
        }
        match reader.repeats {
            0 => {}
            1 => out.note("1 event not counted: its message key had already been delivered (`unless_delivered`)"),
            n => out.note(format!(
                "{n} events not counted: their message key had already been delivered (`unless_delivered`)"
            )),
        }
    }

    /// The first pattern that matches `line`, its groups read into `locations`.
    fn first_match(&self, line: &[u8], locations: &mut [CaptureLocations]) -> Option<usize> {
        if self.all_filtered {
            // Each literal is one SIMD scan of a short line: cheaper than running the set, and
            // most lines pass no filter at all.
            return self.patterns.iter().zip(locations).position(|(p, locations)| {
                p.contains.as_ref().is_some_and(|f| f.find(line).is_some())
                    && p.regex.captures_read(locations, line).is_some()
            });
        }
        let index = self
            .set
            .matches(line)
            .into_iter()
            .find(|&i| self.patterns[i].contains.as_ref().is_none_or(|f| f.find(line).is_some()))?;
        self.patterns[index].regex.captures_read(&mut locations[index], line).map(|_| index)
    }
}

/// Value maps by field: what a captured text reads as.
type ValueMaps = Vec<(Field, BTreeMap<String, String>)>;

fn compile(index: usize, config: &PatternConfig, shared_maps: &ValueMaps) -> Result<Pattern, String> {
    let label = match &config.name {
        Some(name) => format!("pattern \"{name}\""),
        None => format!("pattern #{}", index + 1),
    };
    let regex = regex::bytes::RegexBuilder::new(&config.regex)
        .unicode(false)
        .build()
        .map_err(|e| format!("{label}: `regex` does not compile: {e}"))?;
    let mut groups = Vec::new();
    for (i, name) in regex.capture_names().enumerate() {
        let Some(name) = name else { continue };
        if name.starts_with('_') {
            continue;
        }
        let role = if name == "key" || name.starts_with("key_") {
            Role::Key
        } else if name == "message_key" || name.starts_with("message_key_") {
            Role::MessageKey
        } else if let Some(field) = Field::from_name(name) {
            Role::Field(field)
        } else {
            return Err(format!(
                "{label}: the group `{name}` names no field; use one of {}, `key` or `message_key` (parts: `key_*`, \
                 `message_key_*`), or start the name with `_` to ignore the group",
                Field::names()
            ));
        };
        groups.push((i, role));
    }
    let has_key = groups.iter().any(|(_, r)| *r == Role::Key);
    let has_message_key = groups.iter().any(|(_, r)| *r == Role::MessageKey);
    let has_time = groups.iter().any(|(_, r)| *r == Role::Field(Field::Time));
    if config.emit.is_some() && !has_time {
        return Err(format!("{label}: it has `emit` but no `time` group; an event needs a time"));
    }
    if (config.hold || config.end) && !has_key && !has_message_key {
        let option = if config.hold { "hold" } else { "end" };
        return Err(format!("{label}: `{option}` needs a `key` or `message_key` group"));
    }
    if config.hold && config.emit.is_none() {
        return Err(format!("{label}: `hold` holds an event, so it needs `emit`"));
    }
    if config.hold_secs.is_some() && !config.hold {
        return Err(format!("{label}: `hold_secs` bounds how long an event is held, so it needs `hold = true`"));
    }
    let combined = config.emit.is_some()
        || config.hold
        || config.end
        || config.drop
        || config.unless_delivered
        || !config.set.is_empty()
        || !config.default.is_empty();
    if config.ignore && combined {
        return Err(format!(
            "{label}: `ignore` makes the collector ignore the line, so it cannot also have `emit`, `hold`, `end`, \
             `drop`, `unless_delivered`, `set` or `default`"
        ));
    }
    if config.drop && !has_message_key {
        return Err(format!("{label}: `drop` needs a `message_key` group: the key whose events it drops"));
    }
    if config.drop && (config.emit.is_some() || config.end) {
        return Err(format!("{label}: `drop` discards its key's events, so it cannot also have `emit` or `end`"));
    }
    if config.unless_delivered && (config.emit.is_none() || !has_message_key) {
        return Err(format!(
            "{label}: `unless_delivered` needs `emit` and a `message_key` group: the key whose delivery counts once"
        ));
    }
    if config.emit.is_none() && !config.end && !config.ignore && !has_key && !has_message_key {
        return Err(format!(
            "{label}: it does nothing: give it `emit`, `end`, `ignore`, or a `key` or `message_key` group to store \
             its fields under"
        ));
    }
    let constants = |table: &BTreeMap<String, Constant>, option: &str| -> Result<Fields, String> {
        let mut fields = Fields::default();
        for (name, value) in table {
            let field = match Field::from_name(name) {
                Some(Field::Time) | None => {
                    return Err(format!("{label}: `{option}.{name}` is not a field that can be set"));
                }
                Some(field) => field,
            };
            fields.set(field, &value.text()).map_err(|want| format!("{label}: `{option}.{name}` must be {want}"))?;
        }
        Ok(fields)
    };
    let set = constants(&config.set, "set")?;
    let defaults = constants(&config.default, "default")?;
    let mut maps = shared_maps.to_vec();
    for (field, map) in field_maps(&config.map).map_err(|e| format!("{label}: `map`: {e}"))? {
        match maps.iter_mut().find(|(f, _)| *f == field) {
            Some((_, shared)) => shared.extend(map),
            None => maps.push((field, map)),
        }
    }
    let contains = match &config.contains {
        Some(literal) if literal.is_empty() => return Err(format!("{label}: `contains` is empty")),
        Some(literal) => Some(memchr::memmem::Finder::new(literal.as_bytes()).into_owned()),
        None => None,
    };
    Ok(Pattern {
        label,
        regex,
        contains,
        groups,
        has_key,
        has_message_key,
        set,
        defaults,
        maps,
        emit: config.emit,
        hold: config.hold,
        hold_micros: config.hold_secs.map(|secs| i64::try_from(secs).unwrap_or(i64::MAX).saturating_mul(1_000_000)),
        end: config.end,
        drop: config.drop,
        ignore: config.ignore,
        unless_delivered: config.unless_delivered,
    })
}

fn field_maps(maps: &BTreeMap<String, BTreeMap<String, String>>) -> Result<ValueMaps, String> {
    maps.iter()
        .map(|(name, map)| match Field::from_name(name) {
            Some(field) => Ok((field, map.clone())),
            None => Err(format!("`{name}` is not a field; fields are {}", Field::names())),
        })
        .collect()
}

/// The lines of one input of an incremental run.
struct NewLines<'a> {
    collector: &'a RegexCollector,
    reader: &'a mut Reader,
    /// Whether the year rule is kept (a configured `year`).
    year: bool,
    /// The number of the first line read.
    first: Option<u64>,
}

impl resume::Lines for NewLines<'_> {
    fn line(&mut self, line: LineRef<'_>, number: u64, out: &mut Emitter<'_>) {
        self.first.get_or_insert(number);
        self.reader.line_number = number - 1;
        self.collector.line(self.reader, line, out);
    }

    fn save(&self, files: &Files) -> Vec<u8> {
        let year = self.year.then(|| self.reader.clock.year_rule());
        resume::save(&State { files: files.clone(), year, parser: self.reader.save() })
    }
}

impl Collector for RegexCollector {
    fn resumable(&self) -> bool {
        true
    }

    fn collect(&self, ctx: &CollectContext<'_>, out: &mut Emitter<'_>) -> Result<(), CollectError> {
        if let Some(resume) = ctx.resume {
            return self.collect_new(ctx, resume, out);
        }
        let tz = self.config.timezone.unwrap_or(ctx.site.timezone);
        let mut clocks = InputClocks::new(tz, self.config.year, ctx.end);
        let mut reader = Reader::new(self, Clock::new(tz, YearRule::starting(2000)));
        for input in input::expand(&self.inputs, out) {
            let name = input.display_name();
            reader.clock = clocks.start(&input);
            let result = input.open(out.progress()).and_then(|source| self.read(source, &name, &mut reader, out));
            if let Err(e) = result {
                out.error(e.to_string());
            }
            clocks.finish(&reader.clock);
        }
        reader.finish(out);
        self.report(&reader, out);
        Ok(())
    }
}

/// Runs the collector over `text` as one log named `text`, with year-less times in 2026 UTC: for
/// property tests and benchmarks, which need no files.
#[doc(hidden)]
pub fn collect_text(collector: &RegexCollector, text: &[u8], out: &mut Emitter<'_>) {
    let mut reader = Reader::new(collector, Clock::new(Tz::UTC, YearRule::starting(2026)));
    let source = Box::new(std::io::Cursor::new(text.to_vec()));
    if let Err(e) = collector.read(source, "text", &mut reader, out) {
        out.error(e.to_string());
    }
    reader.finish(out);
    collector.report(&reader, out);
}

/// Lines of one file: read (not blank), matched by a pattern, matched by an emitting pattern.
#[derive(Debug, Clone, Copy, Default)]
struct FileLines {
    read: u64,
    matched: u64,
    emitting: u64,
}

/// A value of one group of one pattern that did not parse, left out of its lines.
struct BadValue {
    pattern: usize,
    field: Field,
    lines: u64,
    /// `file:line` of the first.
    first_at: String,
    /// The first value, quoted, and what was expected.
    value: String,
    want: String,
}

/// Where a held event with a deadline lives: in the session store or not, and its key.
type HeldAt = (bool, Box<[u8]>);

/// Pattern and group pairs whose bad values are reported (each once, with a count); more are
/// not tracked.
const MAX_BAD_VALUE_KINDS: usize = 64;

/// The state of one collection: the keys, and per file its clock and position.
struct Reader {
    clock: Clock,
    sessions: Store,
    messages: Store,
    /// Message keys a `drop` line marked, with the pattern's index.
    dropped: Marks,
    /// Message keys that emitted a delivery, for `unless_delivered`.
    delivered: Marks,
    /// Held events with a `hold_secs` deadline: (deadline, held id) → (in the session store,
    /// key). An entry whose held event was replaced or released is stale and skipped.
    deadlines: BTreeMap<(i64, u64), HeldAt>,
    next_held_id: u64,
    locations: Vec<CaptureLocations>,
    file: Arc<str>,
    line_number: u64,
    file_lines: FileLines,
    /// The latest log time seen, for lines without a time of their own.
    now: i64,
    key: Vec<u8>,
    message_key: Vec<u8>,
    released: Vec<Held>,
    bad_values: Vec<BadValue>,
    /// Events discarded by each pattern's `drop` marks, by pattern index.
    dropped_by: Vec<u64>,
    /// Events discarded by `unless_delivered`.
    repeats: u64,
    /// Of the patterns, for checkpoints.
    fingerprint: u64,
}

impl Reader {
    fn new(collector: &RegexCollector, clock: Clock) -> Self {
        let config = &collector.config;
        Reader {
            clock,
            sessions: Store::new(config.max_open_keys, config.session_timeout_secs),
            messages: Store::new(config.max_open_keys, config.message_timeout_secs),
            dropped: Marks::new(config.max_open_keys, config.message_timeout_secs),
            delivered: Marks::new(config.max_open_keys, config.message_timeout_secs),
            deadlines: BTreeMap::new(),
            next_held_id: 0,
            locations: collector.patterns.iter().map(|p| p.regex.capture_locations()).collect(),
            file: Arc::from(""),
            line_number: 0,
            file_lines: FileLines::default(),
            now: i64::MIN,
            key: Vec::new(),
            message_key: Vec::new(),
            released: Vec::new(),
            bad_values: Vec::new(),
            dropped_by: vec![0; collector.patterns.len()],
            repeats: 0,
            fingerprint: checkpoint::fingerprint(config),
        }
    }

    fn line(&mut self, collector: &RegexCollector, text: &[u8], out: &mut Emitter<'_>) {
        self.line_number += 1;
        if text.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        self.file_lines.read += 1;
        let Some(index) = collector.first_match(text, &mut self.locations) else { return };
        let pattern = &collector.patterns[index];
        self.file_lines.matched += 1;
        if pattern.ignore {
            return;
        }
        if pattern.emit.is_some() {
            self.file_lines.emitting += 1;
        }
        let locations = &self.locations[index];
        let mut fields = pattern.set.clone();
        let mut time = None;
        self.key.clear();
        self.message_key.clear();
        for &(group, role) in &pattern.groups {
            let Some((start, end)) = locations.get(group) else { continue };
            let raw = &text[start..end];
            match role {
                Role::Key => append_part(&mut self.key, raw),
                Role::MessageKey => append_part(&mut self.message_key, raw),
                Role::Field(field) => {
                    let value = String::from_utf8_lossy(raw);
                    let value = match pattern.maps.iter().find(|(f, _)| *f == field) {
                        Some((_, map)) => map.get(value.as_ref()).map_or(value.as_ref(), String::as_str),
                        None => value.as_ref(),
                    };
                    if field == Field::Time {
                        let read = collector.time_format.stamp(value).and_then(|stamp| {
                            self.clock.instant(stamp).ok_or_else(|| {
                                "a date that exists (in the inferred year: set `year` if it is wrong)".to_string()
                            })
                        });
                        match read {
                            Ok(t) => time = Some(t),
                            // An event needs its time: the line is skipped.
                            Err(want) => {
                                let at = format!("{}:{}", self.file, self.line_number);
                                let why =
                                    format!("{}: group `time` must be {want}, not {}", pattern.label, excerpt(value));
                                return out.skip(at, why);
                            }
                        }
                    } else if let Err(want) = fields.set(field, value) {
                        // Any other value is one field of the line: it is left out, and the
                        // line still counts and correlates.
                        let at = || format!("{}:{}", self.file, self.line_number);
                        bad_value(&mut self.bad_values, index, field, value, want, at);
                    }
                }
            }
        }
        if let Some(t) = time {
            self.now = self.now.max(t);
        }
        let now = time.unwrap_or(self.now);
        self.sessions.expire(self.now, &mut self.released);
        self.messages.expire(self.now, &mut self.released);
        self.dropped.expire(self.now);
        self.delivered.expire(self.now);
        self.release_due();
        self.release(out);
        let session = std::mem::take(&mut self.key);
        let message = std::mem::take(&mut self.message_key);
        let keys = Keys {
            session: (pattern.has_key && !session.is_empty()).then_some(&session[..]),
            message: (pattern.has_message_key && !message.is_empty()).then_some(&message[..]),
        };
        match (pattern.emit, time) {
            _ if pattern.drop => self.drop_key(index, keys, now),
            (None, _) => self.store_fields(keys, &fields, now),
            (Some(direction), Some(time)) => self.emit(pattern, keys, fields, direction, time),
            // The time group is optional in this regex and did not take part.
            (Some(_), None) => {
                let at = format!("{}:{}", self.file, self.line_number);
                out.skip(at, format!("{}: the line has no `time`; an event needs one", pattern.label));
            }
        }
        if pattern.end {
            if let Some(message) = keys.message {
                self.messages.remove(message, &mut self.released);
            }
            if let Some(session) = keys.session {
                for message in self.sessions.remove(session, &mut self.released) {
                    self.messages.remove_settled(&message);
                }
            }
        }
        (self.key, self.message_key) = (session, message);
        self.release(out);
    }

    /// A `drop` line: its message key's events are discarded, those held now and those to come.
    fn drop_key(&mut self, pattern: usize, keys: Keys<'_>, now: i64) {
        let Some(message) = keys.message else { return };
        self.dropped.mark(message, now, pattern);
        let mut discarded = Vec::new();
        self.messages.remove(message, &mut discarded);
        self.dropped_by[pattern] += discarded.len() as u64;
    }

    /// A line without `emit`: its fields are stored under its message key, or else its key.
    fn store_fields(&mut self, keys: Keys<'_>, fields: &Fields, now: i64) {
        if let Some(session) = keys.session {
            let entry = self.sessions.touch(session, now, &mut self.released);
            if keys.message.is_none() {
                entry.fields.overlay(fields);
            }
        }
        if let Some(message) = keys.message {
            self.messages.touch(message, now, &mut self.released).fields.overlay(fields);
            if let Some(session) = keys.session {
                self.sessions.link(session, message, &self.messages);
            }
        }
    }

    /// A line with `emit`: the event is what its keys stored, then what the line says, then
    /// the pattern's defaults; held, or emitted (replacing a held one).
    fn emit(&mut self, pattern: &Pattern, keys: Keys<'_>, line_fields: Fields, direction: Direction, time: i64) {
        if pattern.unless_delivered && keys.message.is_some_and(|message| self.delivered.get(message).is_some()) {
            self.repeats += 1;
            return;
        }
        let mut fields = Fields::default();
        if let Some(session) = keys.session {
            fields.overlay(&self.sessions.touch(session, time, &mut self.released).fields);
        }
        if let Some(message) = keys.message {
            fields.overlay(&self.messages.touch(message, time, &mut self.released).fields);
            if let Some(session) = keys.session {
                self.sessions.link(session, message, &self.messages);
            }
        }
        fields.overlay(&line_fields);
        // The held event lives with the message if there is one, else with the session.
        let in_session = keys.message.is_none();
        let slot = match (keys.message, keys.session) {
            (Some(message), _) => self.messages.get_mut(message),
            (None, Some(session)) => self.sessions.get_mut(session),
            (None, None) => None,
        };
        let mut slot = slot;
        if let Some(mut held) = slot.as_mut().and_then(|entry| entry.held.take()) {
            held.fields.overlay(&fields);
            fields = held.fields;
        }
        fields.fill(&pattern.defaults);
        let direction = fields.direction.unwrap_or(direction);
        let id = self.next_held_id;
        self.next_held_id += 1;
        let held = Held {
            fields,
            time,
            direction,
            file: self.file.clone(),
            line: self.line_number,
            key: keys.message.map(Box::from),
            once: pattern.unless_delivered,
            id,
        };
        if pattern.hold
            && let Some(entry) = slot
        {
            entry.held = Some(held);
            if let (Some(hold), Some(key)) = (pattern.hold_micros, keys.message.or(keys.session)) {
                self.deadlines.insert((time.saturating_add(hold), id), (in_session, key.into()));
            }
            return;
        }
        if let Some(message) = keys.message {
            self.messages.remove(message, &mut self.released);
        }
        self.released.push(held);
    }

    /// Releases the held events whose `hold_secs` ran out by the log's time.
    fn release_due(&mut self) {
        while let Some((&(deadline, id), _)) = self.deadlines.first_key_value() {
            if deadline > self.now {
                break;
            }
            let Some((_, (in_session, key))) = self.deadlines.pop_first() else { break };
            let store = if in_session { &mut self.sessions } else { &mut self.messages };
            let Some(entry) = store.get_mut(&key) else { continue };
            if entry.held.as_ref().is_none_or(|held| held.id != id) {
                continue;
            }
            if in_session {
                self.released.extend(entry.held.take());
            } else {
                // Settled, as if its event had been emitted when it came: the message goes.
                store.remove(&key, &mut self.released);
            }
        }
    }

    /// Emits the events released from their keys, unless a `drop` line covers their key.
    fn release(&mut self, out: &mut Emitter<'_>) {
        let mut released = std::mem::take(&mut self.released);
        for held in released.drain(..) {
            if let Some(pattern) = held.key.as_deref().and_then(|key| self.dropped.covering(key)) {
                self.dropped_by[pattern] += 1;
                continue;
            }
            if held.once
                && let Some(key) = &held.key
                && held.fields.status.is_none_or(|s| s == mailflow_core::Status::Delivered)
            {
                self.delivered.mark(key, held.time.max(self.now), 0);
            }
            out.event(held.fields.into_event(held.time, held.direction, &held.file, held.line));
        }
        self.released = released;
    }

    /// Emits every event still held: the input ended before a line settled it.
    fn finish(&mut self, out: &mut Emitter<'_>) {
        self.sessions.finish(&mut self.released);
        self.messages.finish(&mut self.released);
        self.release(out);
    }
}

/// Counts a value that did not parse; the first of each pattern and group is reported, `at`
/// saying where.
fn bad_value(
    bad_values: &mut Vec<BadValue>,
    pattern: usize,
    field: Field,
    value: &str,
    want: String,
    at: impl FnOnce() -> String,
) {
    if let Some(bad) = bad_values.iter_mut().find(|b| b.pattern == pattern && b.field == field) {
        bad.lines += 1;
    } else if bad_values.len() < MAX_BAD_VALUE_KINDS {
        bad_values.push(BadValue { pattern, field, lines: 1, first_at: at(), value: excerpt(value), want });
    }
}

/// The keys of a line, as they were captured.
#[derive(Clone, Copy)]
struct Keys<'k> {
    session: Option<&'k [u8]>,
    message: Option<&'k [u8]>,
}

/// Adds one key part: parts are joined with a space, so `a b` + `c` differs from `a` + `b c`
/// only in theory (keys are ids, without spaces).
fn append_part(key: &mut Vec<u8>, part: &[u8]) {
    if !key.is_empty() {
        key.push(b' ');
    }
    key.extend_from_slice(part);
}

/// A value for a message: quoted, control characters escaped, at most 60 characters.
fn excerpt(value: &str) -> String {
    let mut short: String = value.chars().take(60).flat_map(char::escape_debug).collect();
    if value.chars().count() > 60 {
        short.push('…');
    }
    format!("\"{short}\"")
}

#[cfg(test)]
mod tests;
