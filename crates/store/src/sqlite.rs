//! The SQLite backend: one file, shared by processes and threads through SQLite's locks.

use std::path::PathBuf;
use std::sync::LazyLock;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use mailflow_core::Rollup;
use mailflow_core::rollup::RollupKey;
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};
use url::Url;

use crate::schema::{self, COUNTER_COLUMNS, COUNTERS, KEY_COLUMNS, LATEST_VERSION, SQLITE};
use crate::{
    Checkpoint, Commit, ErrorKind, SourceInfo, Store, StoreError, check_rows, prune_through, redact, stored_range,
};

/// Long enough to wait out another process's commit of thousands of rows.
const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

static UPSERT: LazyLock<String> = LazyLock::new(|| {
    let params: Vec<String> = (1..=KEY_COLUMNS.len() + COUNTER_COLUMNS.len()).map(|n| SQLITE.param(n)).collect();
    SQLITE.upsert_rollups(&format!("VALUES ({})", params.join(", ")))
});
static SELECT_ROLLUPS: LazyLock<String> = LazyLock::new(|| SQLITE.select_rollups());
static UPSERT_SOURCE: LazyLock<String> = LazyLock::new(|| SQLITE.upsert_source());

pub(crate) struct SqliteStore {
    conn: Connection,
    what: String,
    /// The database file; `None` in memory.
    path: Option<PathBuf>,
    /// Lock files of the sources this connection holds, released when dropped.
    held: Vec<std::fs::File>,
}

impl SqliteStore {
    pub(crate) fn open(url: &str) -> Result<Self, StoreError> {
        let (conn, what, path) = if url.eq_ignore_ascii_case("sqlite::memory:") {
            (Connection::open_in_memory(), "SQLite in memory".to_string(), None)
        } else {
            let path = path_of(url)?;
            if let Some(dir) = path.parent().filter(|dir| !dir.exists()) {
                std::fs::create_dir_all(dir).map_err(|e| {
                    StoreError::new(
                        ErrorKind::Open,
                        format!("cannot create the directory {} for the SQLite store: {e}", dir.display()),
                    )
                })?;
            }
            (Connection::open(&path), format!("SQLite {}", path.display()), Some(path))
        };
        let open_error = |e: rusqlite::Error| StoreError::new(ErrorKind::Open, format!("cannot open {what}: {e}"));
        let mut conn = conn.map_err(open_error)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_error)?;
        // WAL lets reports read while an ingest writes; FULL syncs every commit, so a crash or
        // kill keeps each committed transaction whole and never leaves half of one.
        // Switching a new file to WAL takes a lock that SQLite does not wait for: another process
        // opening the store at the same moment makes it fail at once, so wait here.
        let started = std::time::Instant::now();
        loop {
            match conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get::<_, String>(0)) {
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if e.code == rusqlite::ErrorCode::DatabaseBusy && started.elapsed() < BUSY_TIMEOUT =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                result => {
                    result.map_err(open_error)?;
                    break;
                }
            }
        }
        conn.pragma_update(None, "synchronous", "FULL").map_err(open_error)?;
        migrate(&mut conn, &what)?;
        Ok(SqliteStore { conn, what, path, held: Vec::new() })
    }

    fn error(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        |e| database_error(&self.what, e)
    }
}

/// `sqlite:///path` to `/path`; relative paths are the caller's to resolve.
fn path_of(url: &str) -> Result<PathBuf, StoreError> {
    let bad = || {
        StoreError::new(ErrorKind::Url, format!("sqlite URL must be sqlite:///absolute/path.db, not {}", redact(url)))
    };
    let parsed = Url::parse(url).map_err(|_| bad())?;
    if !parsed.host_str().unwrap_or_default().is_empty()
        || !parsed.path().starts_with('/')
        || parsed.query().is_some()
        || parsed.fragment().is_some()
    {
        return Err(bad());
    }
    // Decodes %20 and the like.
    parsed.to_file_path().ok().filter(|path| path.file_name().is_some()).ok_or_else(bad)
}

fn migrate(conn: &mut Connection, what: &str) -> Result<(), StoreError> {
    // Most opens find the schema current; reading that takes no write lock.
    let current = version(conn).map_err(|e| database_error(what, e))?;
    schema::check_version(current)?;
    if current == LATEST_VERSION {
        return Ok(());
    }
    let migrations = SQLITE.migrations();
    loop {
        // IMMEDIATE: concurrent openers queue here, and each sees what the one before applied.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(|e| database_error(what, e))?;
        let current = tx
            .execute_batch(&SQLITE.migrations_table())
            .and_then(|()| version(&tx))
            .map_err(|e| database_error(what, e))?;
        schema::check_version(current)?;
        if current == LATEST_VERSION {
            return Ok(());
        }
        let version = current + 1;
        tx.execute_batch(&migrations[current as usize])
            .and_then(|()| {
                tx.execute(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
                    params![version, timestamp(Utc::now())],
                )
            })
            .and_then(|_| tx.commit())
            .map_err(|e| {
                StoreError::new(ErrorKind::Schema, format!("cannot migrate {what} to schema version {version}: {e}"))
            })?;
        tracing::info!(store = what, version, "migrated the store");
    }
}

/// The schema version, 0 before the first migration.
fn version(conn: &Connection) -> rusqlite::Result<i64> {
    let exists: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'schema_migrations')",
        [],
        |row| row.get(0),
    )?;
    if !exists {
        return Ok(0);
    }
    conn.query_row("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", [], |row| row.get(0))
}

fn database_error(what: &str, e: rusqlite::Error) -> StoreError {
    if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) {
        return StoreError::new(
            ErrorKind::Database,
            format!("{what} stayed locked by another process for over {} s; run again", BUSY_TIMEOUT.as_secs()),
        );
    }
    StoreError::new(ErrorKind::Database, format!("{what}: {e}"))
}

/// Fixed-width UTC text, so comparing texts compares instants.
fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn parse_timestamp(text: Option<String>) -> Result<Option<DateTime<Utc>>, StoreError> {
    text.map(|text| {
        DateTime::parse_from_rfc3339(&text)
            .map(|at| at.with_timezone(&Utc))
            .map_err(|e| StoreError::new(ErrorKind::Database, format!("bad timestamp {text:?} in the store: {e}")))
    })
    .transpose()
}

fn parse_date(text: &str) -> Result<NaiveDate, StoreError> {
    text.parse().map_err(|e| StoreError::new(ErrorKind::Database, format!("bad date {text:?} in the store: {e}")))
}

/// A `rollups` row as read by [`SELECT_ROLLUPS`], still as text.
fn read_row(row: &Row<'_>) -> rusqlite::Result<(String, String, String, String, [i64; COUNTERS])> {
    let mut values = [0; COUNTERS];
    for (i, value) in values.iter_mut().enumerate() {
        *value = row.get(KEY_COLUMNS.len() + i)?;
    }
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, values))
}

impl Store for SqliteStore {
    fn describe(&self) -> String {
        self.what.clone()
    }

    fn lock_source(&mut self, source: &str, waiting: &mut dyn FnMut()) -> Result<(), StoreError> {
        let Some(path) = &self.path else { return Ok(()) };
        // A file lock beside the database: SQLite's own locks last one transaction, an ingest
        // many. The kernel releases it when the process ends, killed or not.
        let mut name = path.as_os_str().to_owned();
        name.push(format!(".{:016x}.lock", mailflow_core::fnv1a(source.as_bytes())));
        let failed = |e: std::io::Error| {
            StoreError::new(
                ErrorKind::Open,
                format!("cannot lock {} for source {source}: {e}", PathBuf::from(&name).display()),
            )
        };
        let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&name).map_err(failed)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                waiting();
                file.lock().map_err(failed)?;
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(failed(e)),
        }
        self.held.push(file);
        Ok(())
    }

    fn checkpoint(&mut self, source: &str) -> Result<Checkpoint, StoreError> {
        let found = self
            .conn
            .query_row("SELECT generation, state, host FROM checkpoints WHERE source = ?1", [source], |row| {
                Ok(Checkpoint { generation: row.get(0)?, state: row.get(1)?, host: row.get(2)? })
            })
            .optional()
            .map_err(self.error())?;
        Ok(found.unwrap_or_default())
    }

    fn commit(&mut self, commit: &Commit<'_>) -> Result<i64, StoreError> {
        check_rows(commit)?;
        let err = |e| database_error(&self.what, e);
        let source = commit.source;
        let now = timestamp(commit.ingested_at);
        // IMMEDIATE takes the write lock first, so the generation read below stays true until commit.
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(err)?;
        tx.execute(
            "INSERT INTO checkpoints (source, generation, state, updated_at) VALUES (?1, 0, x'', ?2)
             ON CONFLICT (source) DO NOTHING",
            params![source, now],
        )
        .map_err(err)?;
        let (generation, owner): (i64, Option<String>) = tx
            .query_row("SELECT generation, host FROM checkpoints WHERE source = ?1", [source], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .map_err(err)?;
        if let Some(owner) = owner.filter(|owner| owner != commit.host) {
            return Err(StoreError::owned(source, &owner, commit.host));
        }
        if generation != commit.expected_generation {
            return Err(StoreError::conflict(source));
        }
        {
            let mut clear = tx.prepare_cached("DELETE FROM rollups WHERE source = ?1 AND date = ?2").map_err(err)?;
            for day in commit.clear_days {
                clear.execute(params![source, day.to_string()]).map_err(err)?;
            }
            let mut upsert = tx.prepare_cached(&UPSERT).map_err(err)?;
            for (key, counters) in commit.rows.iter() {
                upsert.raw_bind_parameter(1, source).map_err(err)?;
                upsert.raw_bind_parameter(2, key.date.to_string()).map_err(err)?;
                upsert.raw_bind_parameter(3, key.direction.as_str()).map_err(err)?;
                upsert.raw_bind_parameter(4, &key.connector).map_err(err)?;
                for (i, value) in schema::to_values(counters).into_iter().enumerate() {
                    upsert.raw_bind_parameter(KEY_COLUMNS.len() + 1 + i, value).map_err(err)?;
                }
                upsert.raw_execute().map_err(err)?;
            }
        }
        tx.execute(
            "UPDATE checkpoints SET generation = ?2, state = ?3, updated_at = ?4, host = ?5 WHERE source = ?1",
            params![source, generation + 1, commit.state, now, commit.host],
        )
        .map_err(err)?;
        tx.execute(
            &UPSERT_SOURCE,
            params![source, commit.kind, commit.first_event.map(timestamp), now, commit.last_run],
        )
        .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(generation + 1)
    }

    fn rollup(&mut self, from: NaiveDate, to: NaiveDate) -> Result<Rollup, StoreError> {
        let mut rollup = Rollup::new();
        let Some((from, to)) = stored_range(from, to) else { return Ok(rollup) };
        let err = self.error();
        let mut select = self.conn.prepare_cached(&SELECT_ROLLUPS).map_err(&err)?;
        let rows = select.query_map([from.to_string(), to.to_string()], read_row).map_err(&err)?;
        for row in rows {
            let (source, date, direction, connector, values) = row.map_err(&err)?;
            let key = RollupKey {
                date: parse_date(&date)?,
                source,
                direction: schema::parse_direction(&direction)?,
                connector,
            };
            rollup.add_counters(&key, &schema::from_values(values));
        }
        Ok(rollup)
    }

    fn sources(&mut self) -> Result<Vec<SourceInfo>, StoreError> {
        let err = self.error();
        let mut select = self
            .conn
            .prepare_cached("SELECT name, kind, first_event, last_ingest, last_run FROM sources ORDER BY name")
            .map_err(&err)?;
        let rows = select
            .query_map([], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, Option<String>>(2)?,
                    row.get::<_, Option<String>>(3)?,
                    row.get::<_, Option<String>>(4)?,
                ))
            })
            .map_err(&err)?;
        let mut sources = Vec::new();
        for row in rows {
            let (name, kind, first_event, last_ingest, last_run) = row.map_err(&err)?;
            sources.push(SourceInfo {
                name,
                kind,
                first_event: parse_timestamp(first_event)?,
                last_ingest: parse_timestamp(last_ingest)?,
                last_run,
            });
        }
        Ok(sources)
    }

    fn prune(&mut self, before: NaiveDate, source: Option<&str>) -> Result<u64, StoreError> {
        let Some(through) = prune_through(before) else { return Ok(0) };
        let deleted = self
            .conn
            .execute(
                "DELETE FROM rollups WHERE date <= ?1 AND (?2 IS NULL OR source = ?2)",
                rusqlite::params![through.to_string(), source],
            )
            .map_err(self.error())?;
        Ok(deleted as u64)
    }

    fn forget(&mut self, source: &str) -> Result<u64, StoreError> {
        let err = |e| database_error(&self.what, e);
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(err)?;
        let deleted = tx.execute("DELETE FROM rollups WHERE source = ?1", [source]).map_err(err)?;
        // The generation goes on: an ingest of the source still running cannot commit after this.
        tx.execute(
            "UPDATE checkpoints SET state = X'', generation = generation + 1, host = NULL WHERE source = ?1",
            [source],
        )
        .map_err(err)?;
        tx.execute("DELETE FROM sources WHERE name = ?1", [source]).map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(deleted as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_need_an_absolute_path() {
        assert_eq!(
            path_of("sqlite:///var/lib/mailflow/mailflow.db").unwrap(),
            PathBuf::from("/var/lib/mailflow/mailflow.db")
        );
        assert_eq!(path_of("sqlite:///srv/my%20data/m.db").unwrap(), PathBuf::from("/srv/my data/m.db"));
        for bad in ["sqlite://relative.db", "sqlite:relative.db", "sqlite:///", "sqlite:///x.db?mode=ro"] {
            let err = path_of(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Url, "{bad}");
            assert!(err.to_string().contains("sqlite:///absolute/path.db"), "{err}");
        }
    }

    #[test]
    fn timestamps_compare_as_text() {
        let early: DateTime<Utc> = "2026-12-01T09:00:00Z".parse().unwrap();
        let late: DateTime<Utc> = "2026-12-01T10:00:00.5Z".parse().unwrap();
        assert!(timestamp(early) < timestamp(late));
        assert_eq!(parse_timestamp(Some(timestamp(late))).unwrap(), Some(late));
    }
}
