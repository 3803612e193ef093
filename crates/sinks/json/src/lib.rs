//! `[[sink]] type = "json"`: the report as JSON (schema `mailflow.report/v1`).
//!
//! The file is written to a temporary file beside the target and renamed over it, so a reader
//! (a dashboard, a cron job copying it) never sees half a report. The schema is documented in
//! `docs/report.md` and shipped as `docs/report.schema.json`.

use std::path::PathBuf;

use mailflow_component::output::write_atomically;
use mailflow_component::{Sink, SinkError};
use mailflow_config::{ComponentSection, ConfigError};
use mailflow_core::Report;
use serde::Deserialize;

/// Options of a `json` sink.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonConfig {
    /// Where to write the report; relative paths are taken from the config file's folder.
    pub path: PathBuf,
    /// Indent for people (`true`) or write one compact line (`false`).
    #[serde(default = "default_pretty")]
    pub pretty: bool,
}

fn default_pretty() -> bool {
    true
}

/// Builds the sink from its config section (the registry's entry point).
pub fn build(section: &ComponentSection) -> Result<Box<dyn Sink>, ConfigError> {
    let mut config: JsonConfig = section.options()?;
    config.path = section.resolve_path(&config.path);
    if config.path.file_name().is_none() {
        return Err(section.error("`path` must name a file"));
    }
    Ok(Box::new(JsonSink { config }))
}

pub struct JsonSink {
    config: JsonConfig,
}

impl Sink for JsonSink {
    fn write(&self, report: &Report) -> Result<String, SinkError> {
        let path = &self.config.path;
        let mut content =
            if self.config.pretty { serde_json::to_vec_pretty(report) } else { serde_json::to_vec(report) }
                .map_err(|e| SinkError::Io { path: path.clone(), source: e.into() })?;
        content.push(b'\n');
        write_atomically(path, &content)?;
        Ok(format!("wrote the JSON report to {}", path.display()))
    }
}
