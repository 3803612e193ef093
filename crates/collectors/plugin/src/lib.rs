//! `[[collector]] type = "plugin"`.

use mailflow_component::Collector;
use mailflow_config::{ComponentSection, ConfigError};

/// Builds the collector from its config section (the registry's entry point).
pub fn build(section: &ComponentSection) -> Result<Box<dyn Collector>, ConfigError> {
    Err(section.error("type \"plugin\" is being built"))
}
