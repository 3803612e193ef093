//! The TOML options of an `exec` collector, and their checks.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

/// Environment variables mailflow sets itself; `env` may not replace them.
pub const RESERVED_ENV: [&str; 6] = [
    "MAILFLOW_PROTOCOL",
    "MAILFLOW_SOURCE",
    "MAILFLOW_START",
    "MAILFLOW_END",
    "MAILFLOW_REPORT_START",
    "MAILFLOW_TIMEZONE",
];

/// Variables of mailflow's own environment a program still gets with `clear_env`, when set:
/// what finding programs, a home folder, the language and the time zone need.
pub const KEPT_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "TZ",
    // Windows programs (Python among them) cannot start without it.
    #[cfg(windows)]
    "SystemRoot",
];

/// Options of an `exec` collector.
///
/// `Debug` shows the keys of `settings` and `env` but never their values, which may be secrets.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecConfig {
    /// The program and its arguments, run directly, never through a shell:
    /// `["/usr/local/bin/export-mail", "--since", "{start}"]`. A program named with a `/` is
    /// taken from the config file's folder when relative; a bare name is looked up on `PATH`.
    /// Arguments may hold the placeholders `{start}`, `{end}`, `{report_start}`, `{source}`
    /// and `{timezone}`.
    pub command: Vec<String>,
    /// Seconds the whole run may take, from start to exit. A program still running then is
    /// stopped (with everything it started) and the events it printed before count.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// Any table, handed to the program as the `settings` of the JSON document on its
    /// standard input. May hold secrets (write them as `${VAR}`): it is never logged.
    #[serde(default, deserialize_with = "table")]
    pub settings: toml::Table,
    /// Longest line of output read: a longer line is skipped and counted, so one runaway line
    /// cannot exhaust memory.
    #[serde(default = "default_max_line_bytes")]
    pub max_line_bytes: usize,
    /// Environment variables set for the program, on top of mailflow's own environment (or,
    /// with `clear_env`, on top of [`KEPT_ENV`]). Values are never logged.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Give the program only [`KEPT_ENV`] of mailflow's environment (plus `env` and the
    /// `MAILFLOW_*` variables), not all of it: mailflow's environment may hold secrets meant
    /// for other collectors (`${VAR}`). Off by default, as a program may rely on variables
    /// it is not told about (a proxy, a credentials file, a library path).
    #[serde(default)]
    pub clear_env: bool,
    /// The folder the program runs in; relative to the config file's folder. Defaults to the
    /// config file's folder.
    #[serde(default)]
    pub working_dir: Option<PathBuf>,
}

/// A table, or an error that says so in TOML's words.
fn table<'de, D: serde::Deserializer<'de>>(d: D) -> Result<toml::Table, D::Error> {
    match toml::Value::deserialize(d)? {
        toml::Value::Table(table) => Ok(table),
        other => {
            let kind = other.type_str();
            let article = if kind.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" };
            Err(serde::de::Error::custom(format!(
                "`settings` must be a table, like settings = {{ path = \"/var/log/gw.csv\" }}, not {article} {kind}"
            )))
        }
    }
}

fn default_timeout_secs() -> u64 {
    300
}

fn default_max_line_bytes() -> usize {
    1024 * 1024
}

impl fmt::Debug for ExecConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExecConfig")
            .field("command", &self.command.first())
            .field("arguments", &self.command.len().saturating_sub(1))
            .field("timeout_secs", &self.timeout_secs)
            .field("settings", &self.settings.keys().collect::<Vec<_>>())
            .field("max_line_bytes", &self.max_line_bytes)
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .field("clear_env", &self.clear_env)
            .field("working_dir", &self.working_dir)
            .finish()
    }
}

impl ExecConfig {
    /// What is wrong with the options, if anything, for the section's config error.
    pub fn problem(&self) -> Option<String> {
        let Some(program) = self.command.first() else {
            return Some(
                "`command` is empty; give the program and its arguments, \
                 e.g. command = [\"/usr/local/bin/export-mail\", \"--since\", \"{start}\"]"
                    .into(),
            );
        };
        if program.trim().is_empty() {
            return Some("`command` starts with an empty program name".into());
        }
        if self.command.iter().any(|arg| arg.contains('\0')) {
            return Some("`command` holds a NUL character, which no program argument can".into());
        }
        if self.timeout_secs == 0 {
            return Some("`timeout_secs` must be above 0".into());
        }
        if self.max_line_bytes == 0 {
            return Some("`max_line_bytes` must be above 0".into());
        }
        for (key, value) in &self.env {
            if key.is_empty() || key.contains(['=', '\0']) {
                return Some(format!("`env` key {key:?} is not a variable name (empty, or holds `=` or NUL)"));
            }
            if value.contains('\0') {
                return Some(format!("`env` value of {key} holds a NUL character"));
            }
            if RESERVED_ENV.contains(&key.as_str()) {
                return Some(format!("`env` may not set {key}: mailflow sets it for every run"));
            }
        }
        None
    }
}

/// `settings` as JSON. TOML dates and times become their RFC 3339 text; NaN and infinity,
/// which JSON cannot hold, are an error naming the key.
pub fn settings_json(settings: &toml::Table) -> Result<serde_json::Value, String> {
    fn convert(value: &toml::Value, path: &str) -> Result<serde_json::Value, String> {
        use serde_json::Value as J;
        Ok(match value {
            toml::Value::String(s) => J::String(s.clone()),
            toml::Value::Integer(i) => J::from(*i),
            toml::Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(J::Number)
                .ok_or_else(|| format!("`settings.{path}` is {f}, which JSON cannot hold"))?,
            toml::Value::Boolean(b) => J::Bool(*b),
            toml::Value::Datetime(d) => J::String(d.to_string()),
            toml::Value::Array(items) => J::Array(
                items.iter().enumerate().map(|(i, v)| convert(v, &format!("{path}[{i}]"))).collect::<Result<_, _>>()?,
            ),
            toml::Value::Table(table) => table_json(table, Some(path))?,
        })
    }
    fn table_json(table: &toml::Table, path: Option<&str>) -> Result<serde_json::Value, String> {
        let mut map = serde_json::Map::new();
        for (key, value) in table {
            let path = path.map_or_else(|| key.clone(), |p| format!("{p}.{key}"));
            map.insert(key.clone(), convert(value, &path)?);
        }
        Ok(serde_json::Value::Object(map))
    }
    table_json(settings, None)
}

/// The values the placeholders in arguments stand for.
pub struct Placeholders<'a> {
    pub start: &'a str,
    pub end: &'a str,
    pub report_start: &'a str,
    pub source: &'a str,
    pub timezone: &'a str,
}

impl Placeholders<'_> {
    /// `arg` with every `{start}`, `{end}`, `{report_start}`, `{source}` and `{timezone}`
    /// replaced; other braces are left alone (a `jq` filter stays intact).
    pub fn fill(&self, arg: &str) -> String {
        let names = [
            ("{start}", self.start),
            ("{end}", self.end),
            ("{report_start}", self.report_start),
            ("{source}", self.source),
            ("{timezone}", self.timezone),
        ];
        let mut filled = String::with_capacity(arg.len());
        let mut rest = arg;
        'scan: while let Some(open) = rest.find('{') {
            filled.push_str(&rest[..open]);
            rest = &rest[open..];
            for (name, value) in names {
                if let Some(after) = rest.strip_prefix(name) {
                    filled.push_str(value);
                    rest = after;
                    continue 'scan;
                }
            }
            filled.push('{');
            rest = &rest[1..];
        }
        filled.push_str(rest);
        filled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_replaced_once_and_other_braces_kept() {
        let p = Placeholders {
            start: "2026-12-01T00:00:00Z",
            end: "2026-12-08T00:00:00Z",
            report_start: "R",
            source: "{end}",
            timezone: "Europe/Berlin",
        };
        assert_eq!(p.fill("--from={start}&to={end}"), "--from=2026-12-01T00:00:00Z&to=2026-12-08T00:00:00Z");
        // A value holding a placeholder's name is not expanded again.
        assert_eq!(p.fill("{source}/{timezone}"), "{end}/Europe/Berlin");
        assert_eq!(p.fill("{time: .t} {{start}} {"), "{time: .t} {2026-12-01T00:00:00Z} {");
        assert_eq!(p.fill("{report_start}"), "R");
        assert_eq!(p.fill("plain"), "plain");
    }

    #[test]
    fn settings_become_json_with_dates_as_text() {
        let table: toml::Table = toml::from_str(
            "path = \"/var/log/x\"\nport = 25\nratio = 0.5\non = true\nsince = 2026-12-01T08:00:00Z\n\
             day = 2026-12-01\nlist = [1, \"a\"]\n[nested]\nkey = \"v\"\n",
        )
        .unwrap();
        let json = settings_json(&table).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "path": "/var/log/x", "port": 25, "ratio": 0.5, "on": true,
                "since": "2026-12-01T08:00:00Z", "day": "2026-12-01",
                "list": [1, "a"], "nested": {"key": "v"}
            })
        );
        let table: toml::Table = toml::from_str("[a]\nb = [1.0, nan]\n").unwrap();
        assert_eq!(settings_json(&table).unwrap_err(), "`settings.a.b[1]` is NaN, which JSON cannot hold");
    }

    #[test]
    fn debug_never_shows_settings_or_env_values() {
        let config: ExecConfig = toml::from_str(
            "command = [\"/bin/x\", \"--token=hunter2\"]\nenv = { API_TOKEN = \"hunter2\" }\n\
             [settings]\npassword = \"hunter2\"\n",
        )
        .unwrap();
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("password") && shown.contains("API_TOKEN"), "{shown}");
    }
}
