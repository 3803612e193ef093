//! The one place that maps `type = "…"` to a component. A new collector or sink is one line here.

use mailflow_component::{Collector, Sink};
use mailflow_config::{ComponentSection, ConfigError, ErrorKind};

pub type BuildCollector = fn(&ComponentSection) -> Result<Box<dyn Collector>, ConfigError>;
pub type BuildSink = fn(&ComponentSection) -> Result<Box<dyn Sink>, ConfigError>;

/// `[[collector]]` types.
pub const COLLECTORS: &[(&str, BuildCollector)] = &[
    ("events", mailflow_collector_events::build),
    ("postfix", mailflow_collector_postfix::build),
    ("exim", mailflow_collector_exim::build),
    ("exchange", mailflow_collector_exchange_server::build),
    ("sendmail", mailflow_collector_sendmail::build),
    ("opensmtpd", mailflow_collector_opensmtpd::build),
    ("m365_message_trace", mailflow_collector_m365_trace::build),
    ("m365_csv", mailflow_collector_m365_csv::build),
    ("regex", mailflow_collector_regex::build),
    ("exec", mailflow_collector_exec::build),
    ("plugin", mailflow_collector_plugin::build),
];

/// `[[sink]]` types.
pub const SINKS: &[(&str, BuildSink)] =
    &[("json", mailflow_sink_json::build), ("html", mailflow_sink_html::build), ("email", mailflow_sink_email::build)];

pub fn build_collector(section: &ComponentSection) -> Result<Box<dyn Collector>, ConfigError> {
    lookup(COLLECTORS, section, "collector")?(section)
}

pub fn build_sink(section: &ComponentSection) -> Result<Box<dyn Sink>, ConfigError> {
    lookup(SINKS, section, "sink")?(section)
}

fn lookup<T: Copy>(table: &[(&str, T)], section: &ComponentSection, role: &str) -> Result<T, ConfigError> {
    table.iter().find(|(name, _)| *name == section.type_name).map(|(_, build)| *build).ok_or_else(|| {
        let known: Vec<&str> = table.iter().map(|(name, _)| *name).collect();
        section.error_kind(
            ErrorKind::UnknownComponent,
            format!("unknown {role} type \"{}\"; known types: {}", section.type_name, known.join(", ")),
        )
    })
}
