use thiserror::Error;

/// Errors of the core model: invalid ranges, rules or thresholds. Each says what to change.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// A report range that is empty, reversed or too long.
    #[error("{0}")]
    Range(String),
    /// A `[[connector]]` rule that cannot be compiled.
    #[error("connector #{} \"{name}\": {message}", index + 1)]
    Rule { index: usize, name: String, message: String },
    /// An `[insights]` threshold out of bounds.
    #[error("insights: {0}")]
    Insights(String),
}
