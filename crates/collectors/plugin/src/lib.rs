//! `[[collector]] type = "plugin"`: a collector in a shared library, loaded at run time.
//!
//! The library speaks the C ABI of `mailflow-plugin-abi` (`docs/plugins.md`), so it may be
//! written in Rust with `mailflow-plugin-sdk`, or in C against `mailflow_plugin.h`. It runs in
//! mailflow's process: fast, but a plugin that crashes takes mailflow with it, which is why the
//! host trusts nothing else it does:
//!
//! - only a library at an absolute path named in the config is loaded, and its ABI version is
//!   checked before any other symbol is looked up;
//! - libraries are never unloaded, and what the log callback needs lives as long: a plugin's
//!   threads may outlive its instance;
//! - a run's calls are made on a thread of their own, and the collector waits for them only
//!   until `timeout_secs` have passed since the run started; a plugin that hangs is left behind,
//!   the source is partial, and the plugin is not run again until its call returns;
//! - every event is checked as the `events` collector checks a line; a bad one is skipped with
//!   the plugin's name and the reason, and the others count.
//!
//! # Layout
//! - [`PluginConfig`]: the TOML options (see `sample.toml` beside this crate).
//! - `library`: loading a library and checking its ABI and function table.
//! - [`PluginCollector`]: the running collector; the plugin's calls run in `worker`.

use std::ffi::CString;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use mailflow_collector_events::{decode_line, emit};
use mailflow_component::{CollectContext, CollectError, Collector, Emitter};
use mailflow_config::{ComponentSection, ConfigError, Settings};
use serde::Deserialize;

mod library;
mod worker;

use library::Plugin;
use worker::Message;

/// Options of a `plugin` collector.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    /// The plugin library, e.g. `/usr/local/lib/mailflow/libmy_source.so`. Must be absolute:
    /// the config alone decides which code mailflow runs, never the working folder.
    pub path: PathBuf,
    /// Passed to the plugin's `create` as a JSON object. `${VAR}` works here as anywhere.
    #[serde(default)]
    pub settings: Settings,
    /// How long the plugin may take for the whole run before mailflow stops waiting and marks
    /// the source partial.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// The longest event (one line of JSON) accepted; a longer one is skipped and counted.
    #[serde(default = "default_max_line_bytes")]
    pub max_line_bytes: usize,
}

fn default_max_line_bytes() -> usize {
    1024 * 1024
}

fn default_timeout_secs() -> u64 {
    300
}

/// Builds the collector from its config section (the registry's entry point): loads the
/// library now, so that `mailflow check` finds a wrong path or ABI before any run.
pub fn build(section: &ComponentSection) -> Result<Box<dyn Collector>, ConfigError> {
    let config: PluginConfig = section.options()?;
    if !config.path.is_absolute() {
        return Err(section.error(format!(
            "`path` must be an absolute path to the plugin library, not \"{}\"",
            config.path.display()
        )));
    }
    if config.timeout_secs == 0 || config.max_line_bytes == 0 {
        return Err(section.error("`timeout_secs` and `max_line_bytes` must be above 0"));
    }
    let plugin = library::load(&config.path).map_err(|why| section.error(why))?;
    let settings = config.settings.to_json().map_err(|why| section.error(why))?;
    let settings =
        CString::new(settings.to_string()).map_err(|_| section.error("`settings` must not contain NUL characters"))?;
    Ok(Box::new(PluginCollector {
        plugin,
        settings,
        timeout: Duration::from_secs(config.timeout_secs),
        max_line_bytes: config.max_line_bytes,
        busy: Arc::default(),
    }))
}

pub struct PluginCollector {
    plugin: Plugin,
    settings: CString,
    timeout: Duration,
    max_line_bytes: usize,
    /// Set while a thread of this collector is in the plugin.
    busy: Arc<AtomicBool>,
}

impl Collector for PluginCollector {
    /// Programs are asked for days since their last ingest, as APIs are: one that reads an
    /// API would otherwise be asked for every day kept, every time.
    fn first_ingest_days(&self) -> Option<u32> {
        Some(7)
    }

    fn collect(&self, ctx: &CollectContext<'_>, out: &mut Emitter<'_>) -> Result<(), CollectError> {
        let deadline = Instant::now() + self.timeout;
        let plugin = &self.plugin;
        let range = (ctx.start.timestamp_millis(), ctx.end.timestamp_millis());
        let run = worker::start(plugin.clone(), self.settings.clone(), range, &self.busy)
            .map_err(|e| CollectError::Other(format!("{plugin}: cannot start its thread: {e}")))?
            .ok_or_else(|| {
                CollectError::Other(format!(
                    "{plugin}: a call of an earlier run, which took longer than timeout_secs, has not returned; \
                     the plugin is not run again until it does"
                ))
            })?;
        let evidence_name = format!("plugin {}", plugin.name);
        let max_line_bytes = self.max_line_bytes;
        let mut line_number = 0u64;
        let failure = loop {
            let batch = match run.messages.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(Message::Batch(batch)) => batch,
                Ok(Message::Done) => return Ok(()),
                Ok(Message::Failed(why)) => break why,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    break format!(
                        "did not finish within timeout_secs ({} s); the events it gave before count. \
                         Its call is left running until it returns",
                        self.timeout.as_secs()
                    );
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break "its thread ended without finishing".to_string(),
            };
            let mut start = 0;
            for end in memchr::memchr_iter(b'\n', &batch).chain([batch.len()]) {
                let line = &batch[start..end];
                start = end + 1;
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                line_number += 1;
                let at = || format!("{plugin}: event {line_number}");
                if line.len() > max_line_bytes {
                    out.skip(
                        at(),
                        format!("an event of {} bytes is over max_line_bytes ({max_line_bytes})", line.len()),
                    );
                    continue;
                }
                match decode_line(line) {
                    Ok(record) => emit(record, &evidence_name, line_number, out),
                    Err(why) => out.skip(at(), why),
                }
            }
        };
        out.error(format!("{plugin}: {failure}"));
        Ok(())
    }
}
