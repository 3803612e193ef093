//! The TOML options of an `exec` collector, and their checks.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use mailflow_config::Settings;
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
    #[serde(default)]
    pub settings: Settings,
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
            .field("settings", &self.settings)
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
