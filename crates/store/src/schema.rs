//! The schema both backends share, generated from one list of counter columns.

use mailflow_core::{Counters, Direction};

use crate::{ErrorKind, StoreError};

/// Declares the counter columns once, in storage order, with the `Counters` field each holds.
macro_rules! counter_columns {
    ($($column:ident: $($field:ident).+),+ $(,)?) => {
        /// The counter columns of `rollups`, in the order of [`to_values`] and [`from_values`].
        pub(crate) const COUNTER_COLUMNS: [&str; COUNTERS] = [$(stringify!($column)),+];

        /// The stored form: u64 counts above `i64::MAX` are clamped to it.
        pub(crate) fn to_values(c: &Counters) -> [i64; COUNTERS] {
            [$(i64::try_from(c.$($field).+).unwrap_or(i64::MAX)),+]
        }

        pub(crate) fn from_values(values: [i64; COUNTERS]) -> Counters {
            let [$($column),+] = values;
            let mut c = Counters::default();
            // Negative values can only come from outside mailflow; they count as nothing.
            $(c.$($field).+ = u64::try_from($column).unwrap_or(0);)+
            c
        }
    };
}

pub(crate) const COUNTERS: usize = 19;

counter_columns! {
    messages: messages,
    recipients: recipients,
    bytes: bytes,
    tls_none: tls.none,
    tls_ssl3: tls.ssl3,
    tls1_0: tls.tls1_0,
    tls1_1: tls.tls1_1,
    tls1_2: tls.tls1_2,
    tls1_3: tls.tls1_3,
    tls_unknown: tls.unknown,
    trust_anonymous: trust.anonymous,
    trust_untrusted: trust.untrusted,
    trust_trusted: trust.trusted,
    trust_verified: trust.verified,
    trust_unknown: trust.unknown,
    delivered: status.delivered,
    deferred: status.deferred,
    failed: status.failed,
    rejected: status.rejected,
}

/// The key columns of `rollups`, which are also its primary key.
pub(crate) const KEY_COLUMNS: [&str; 4] = ["source", "date", "direction", "connector"];

/// How many counter columns migration 1 created. Later counters come after these in
/// [`COUNTER_COLUMNS`], each added by its own migration, so migration 1 stays as it was.
const V1_COUNTERS: usize = 19;

/// What differs between the backends' SQL.
pub(crate) struct Dialect {
    pub integer: &'static str,
    pub date: &'static str,
    pub blob: &'static str,
    pub timestamp: &'static str,
    /// Positional parameters are `?1` in SQLite and `$1` in PostgreSQL.
    pub param: char,
}

pub(crate) const SQLITE: Dialect =
    Dialect { integer: "INTEGER", date: "TEXT", blob: "BLOB", timestamp: "TEXT", param: '?' };

pub(crate) const POSTGRES: Dialect =
    Dialect { integer: "BIGINT", date: "DATE", blob: "BYTEA", timestamp: "TIMESTAMPTZ", param: '$' };

impl Dialect {
    pub(crate) fn param(&self, n: usize) -> String {
        format!("{}{n}", self.param)
    }

    /// The table that records applied migrations; created before any migration runs.
    pub(crate) fn migrations_table(&self) -> String {
        format!(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version {} PRIMARY KEY, applied_at {} NOT NULL)",
            self.integer, self.timestamp
        )
    }

    /// Migration `n` is at index `n - 1`; applied ones never change.
    pub(crate) fn migrations(&self) -> [String; LATEST_VERSION as usize] {
        [self.v1(), self.v2()]
    }

    /// The host whose ingests own a source's checkpoint: file positions and half-read sessions
    /// mean nothing on another host's files.
    fn v2(&self) -> String {
        "ALTER TABLE checkpoints ADD COLUMN host TEXT".to_string()
    }

    fn v1(&self) -> String {
        let Dialect { integer, date, blob, timestamp, .. } = self;
        let counters: String =
            COUNTER_COLUMNS[..V1_COUNTERS].iter().map(|c| format!("    {c} {integer} NOT NULL DEFAULT 0,\n")).collect();
        format!(
            "CREATE TABLE rollups (
    source TEXT NOT NULL,
    date {date} NOT NULL,
    direction TEXT NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    connector TEXT NOT NULL,
{counters}    PRIMARY KEY (source, date, direction, connector)
);
CREATE INDEX rollups_date ON rollups (date);
CREATE TABLE checkpoints (
    source TEXT PRIMARY KEY,
    generation {integer} NOT NULL,
    state {blob} NOT NULL,
    updated_at {timestamp} NOT NULL
);
CREATE TABLE sources (
    name TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    first_event {timestamp},
    last_ingest {timestamp},
    last_run TEXT
);"
        )
    }

    /// Adds the excluded row's counters into the stored row, saturating at `i64::MAX`.
    /// Written out for the SQLite upsert of one row and the PostgreSQL upsert of many.
    pub(crate) fn upsert_rollups(&self, values: &str) -> String {
        let add: Vec<String> = COUNTER_COLUMNS
            .iter()
            .map(|c| {
                format!(
                    "{c} = CASE WHEN rollups.{c} > {max} - excluded.{c} THEN {max} ELSE rollups.{c} + excluded.{c} END",
                    max = i64::MAX
                )
            })
            .collect();
        format!(
            "INSERT INTO rollups ({keys}, {counters}) {values} ON CONFLICT ({keys}) DO UPDATE SET {add}",
            keys = KEY_COLUMNS.join(", "),
            counters = COUNTER_COLUMNS.join(", "),
            add = add.join(", ")
        )
    }

    /// Every row with `from <= date <= to` (parameters 1 and 2), keys first.
    pub(crate) fn select_rollups(&self) -> String {
        format!(
            "SELECT {}, {} FROM rollups WHERE date BETWEEN {} AND {}",
            KEY_COLUMNS.join(", "),
            COUNTER_COLUMNS.join(", "),
            self.param(1),
            self.param(2)
        )
    }

    /// Parameters: name, kind, first_event, last_ingest, last_run.
    pub(crate) fn upsert_source(&self) -> String {
        let p = |n| self.param(n);
        format!(
            "INSERT INTO sources (name, kind, first_event, last_ingest, last_run) VALUES ({}, {}, {}, {}, {})
ON CONFLICT (name) DO UPDATE SET
    kind = excluded.kind,
    first_event = CASE
        WHEN excluded.first_event IS NULL THEN sources.first_event
        WHEN sources.first_event IS NULL OR excluded.first_event < sources.first_event THEN excluded.first_event
        ELSE sources.first_event
    END,
    last_ingest = excluded.last_ingest,
    last_run = COALESCE(excluded.last_run, sources.last_run)",
            p(1),
            p(2),
            p(3),
            p(4),
            p(5)
        )
    }
}

/// The schema version this build writes; [`Dialect::migrations`] has one migration per version.
pub(crate) const LATEST_VERSION: i64 = 2;

/// Refuses stores from newer builds, whose schema this one would misread or damage.
pub(crate) fn check_version(version: i64) -> Result<(), StoreError> {
    if version > LATEST_VERSION {
        return Err(StoreError::new(
            ErrorKind::Schema,
            format!(
                "the store was written by a newer mailflow (schema version {version}, this one knows \
                 {LATEST_VERSION}); upgrade mailflow"
            ),
        ));
    }
    Ok(())
}

pub(crate) fn parse_direction(text: &str) -> Result<Direction, StoreError> {
    Direction::ALL
        .into_iter()
        .find(|d| d.as_str() == text)
        .ok_or_else(|| StoreError::new(ErrorKind::Database, format!("unknown direction {text:?} in the store")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_round_trip_through_values_in_column_order() {
        let mut values = [0i64; COUNTERS];
        for (i, v) in values.iter_mut().enumerate() {
            *v = i as i64 + 1;
        }
        let counters = from_values(values);
        assert_eq!(to_values(&counters), values);
        assert_eq!((counters.messages, counters.tls.none, counters.status.rejected), (1, 4, 19));
        assert_eq!(COUNTER_COLUMNS[3], "tls_none");
    }

    #[test]
    fn values_clamp_above_i64_max_and_below_zero() {
        let counters = Counters { bytes: u64::MAX, ..Default::default() };
        assert_eq!(to_values(&counters)[2], i64::MAX);
        let mut values = [0; COUNTERS];
        values[0] = -5;
        assert_eq!(from_values(values).messages, 0);
    }
}
