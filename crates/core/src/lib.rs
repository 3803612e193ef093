//! The mailflow data model, with no I/O.
//!
//! Data flows one way: collectors produce [`MessageEvent`]s, [`ConnectorRules`] resolve each to a
//! connector, a [`Rollup`] counts them per local day, and [`report::build`] turns rollups into the
//! [`Report`] every sink renders. Keeping this crate free of I/O keeps it exact and easy to test:
//! callers pass in the clock, the configuration and the events.
//!
//! # Layout
//! - [`event`]: `MessageEvent` and its parts, the canonical event format.
//! - [`rules`]: `[site]` and `[[connector]]` settings and their compiled form.
//! - [`range`]: report ranges as local days in the site's time zone.
//! - [`rollup`]: counters per (date, source, direction, connector), mergeable.
//! - [`insights`]: thresholds and the findings they produce.
//! - [`report`]: the report model shared by all sinks (schema `mailflow.report/v1`).
//! - [`format`]: number formatting for human-facing output.

pub mod event;
pub mod format;
pub mod insights;
pub mod range;
pub mod report;
pub mod rollup;
pub mod rules;

mod error;

pub use error::Error;
pub use event::{Direction, Evidence, Location, MessageEvent, Peer, Status, Tls, TlsVersion, Trust};
pub use insights::{Insight, InsightKind, InsightSettings, Severity};
pub use range::{RangeSpec, ReportRange};
pub use report::Report;
pub use rollup::{Counters, Rollup};
pub use rules::{ConnectorConfig, ConnectorRules, NO_CONNECTOR, Resolution, SiteConfig};

/// FNV-1a: a hash that stays the same across builds and runs (std's does not), for names and
/// choices that must stay the same too.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

/// [`fnv1a`] of the bytes in ASCII lower case: the same for `Bob@Example.com` and
/// `bob@example.com`, as mail addresses are compared.
pub fn fnv1a_ignore_case(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b.to_ascii_lowercase())).wrapping_mul(0x0100_0000_01b3))
}
