//! The PostgreSQL backend: one synchronous connection per store.

use std::str::FromStr;
use std::sync::LazyLock;
use std::time::Duration;

use chrono::NaiveDate;
use mailflow_core::rollup::RollupKey;
use mailflow_core::{Counters, Rollup};
use postgres::config::{Host, SslMode};
use postgres::error::SqlState;
use postgres::types::ToSql;
use postgres::{Client, Config, NoTls, Statement};

use crate::schema::{self, COUNTER_COLUMNS, COUNTERS, KEY_COLUMNS, LATEST_VERSION, POSTGRES};
use crate::{
    Checkpoint, Commit, ErrorKind, SourceInfo, Store, StoreError, check_rows, prune_through, redact, stored_range,
};

/// Serializes concurrent migrations of one database ("mailflow" in ASCII).
const MIGRATION_LOCK: i64 = 0x6d61_696c_666c_6f77;
/// Mixed into the hash of a source's name for its advisory lock, apart from other applications'.
const SOURCE_LOCKS: u64 = 0x736f_7572_6365_0000;

/// Rows per upsert statement: big enough to need few round trips, small enough to keep each
/// message to the server modest.
const UPSERT_CHUNK: usize = 5_000;

/// Upserts many rows at once: parameter 1 is the source, then one array per other column.
static UPSERT: LazyLock<String> = LazyLock::new(|| {
    let arrays: Vec<String> = ["date", "text", "text"]
        .into_iter()
        .chain(COUNTER_COLUMNS.map(|_| "int8"))
        .enumerate()
        .map(|(i, ty)| format!("{}::{ty}[]", POSTGRES.param(i + 2)))
        .collect();
    POSTGRES.upsert_rollups(&format!("SELECT {}::text, u.* FROM UNNEST({}) AS u", POSTGRES.param(1), arrays.join(", ")))
});

static SELECT_ROLLUPS: LazyLock<String> = LazyLock::new(|| POSTGRES.select_rollups());
static UPSERT_SOURCE: LazyLock<String> = LazyLock::new(|| POSTGRES.upsert_source());

pub(crate) struct PgStore {
    client: Client,
    what: String,
    upsert: Statement,
}

impl PgStore {
    pub(crate) fn open(url: &str, password: Option<&str>) -> Result<Self, StoreError> {
        let bad_url = |why: &str| StoreError::new(ErrorKind::Url, format!("{}: {why}", redact(url)));
        if crate::ambiguous_userinfo(url).is_some() {
            return Err(bad_url(
                "the user or password in the URL holds @, /, # or ? as it is: percent-encode them (%40, %2F, %23, \
                 %3F), or leave the password out of the URL and give it with `password_file` or \
                 `password = \"${VAR}\"`",
            ));
        }
        let mut config =
            Config::from_str(url).map_err(|e| bad_url(&format!("not a usable PostgreSQL URL ({})", error_text(&e))))?;
        if let Some(password) = password {
            config.password(password);
        }
        if config.get_hosts().is_empty() && config.get_hostaddrs().is_empty() {
            return Err(bad_url(
                "the PostgreSQL URL needs a host: postgres://user@host/db, \
                 or postgres://user@%2Frun%2Fpostgresql/db for the local socket",
            ));
        }
        if matches!(config.get_ssl_mode(), SslMode::Require) {
            return Err(bad_url(
                "mailflow connects to PostgreSQL without TLS; \
                 use sslmode=disable or sslmode=prefer, over a local or trusted network",
            ));
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(30));
        }
        if config.get_application_name().is_none() {
            config.application_name("mailflow");
        }
        let what = format!("PostgreSQL {}", location(&config));
        let mut client = config.connect(NoTls).map_err(|e| {
            let hint = match e.code() {
                Some(code)
                    if *code == SqlState::INVALID_PASSWORD
                        || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION =>
                {
                    "are the user and password right?"
                }
                Some(code) if *code == SqlState::INVALID_CATALOG_NAME => "does the database exist?",
                _ => "is the server running and the URL right?",
            };
            StoreError::new(ErrorKind::Open, format!("cannot connect to {what}: {}; {hint}", error_text(&e)))
        })?;
        migrate(&mut client, &what)?;
        let upsert = client.prepare(&UPSERT).map_err(|e| database_error(&what, &e))?;
        Ok(PgStore { client, what, upsert })
    }

    fn error(&self) -> impl Fn(postgres::Error) -> StoreError + '_ {
        |e| database_error(&self.what, &e)
    }
}

/// `host:port/db` for messages; never the user or password.
fn location(config: &Config) -> String {
    let mut hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|host| match host {
            Host::Tcp(name) => name.clone(),
            Host::Unix(path) => path.display().to_string(),
        })
        .collect();
    if hosts.is_empty() {
        hosts = config.get_hostaddrs().iter().map(|addr| addr.to_string()).collect();
    }
    let port = config.get_ports().first().copied().unwrap_or(5432);
    // The server's default database is the user's name.
    let db = config.get_dbname().or(config.get_user()).unwrap_or_default();
    format!("{}:{port}/{db}", hosts.join(","))
}

fn migrate(client: &mut Client, what: &str) -> Result<(), StoreError> {
    let migrations = POSTGRES.migrations();
    let err = |e: postgres::Error| database_error(what, &e);
    // Most opens find the schema current. Reading that needs no lock and no right to create
    // tables, so fleet hosts may connect as a role that can only read and write the tables.
    let exists: bool =
        client.query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[]).map_err(err)?.get(0);
    let current: Option<i64> = match exists {
        true => {
            Some(client.query_one("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", &[]).map_err(err)?.get(0))
        }
        false => None,
    };
    if let Some(current) = current {
        schema::check_version(current)?;
        if current == LATEST_VERSION {
            return Ok(());
        }
    }
    loop {
        let mut tx = client.transaction().map_err(err)?;
        // Held until commit: concurrent openers queue here, and each sees what the one before
        // applied. Creating the migrations table concurrently would fail without it too.
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).map_err(err)?;
        tx.batch_execute(&POSTGRES.migrations_table()).map_err(err)?;
        let current: i64 =
            tx.query_one("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", &[]).map_err(err)?.get(0);
        schema::check_version(current)?;
        if current == LATEST_VERSION {
            return tx.commit().map_err(err);
        }
        let version = current + 1;
        tx.batch_execute(&migrations[current as usize])
            .and_then(|()| {
                tx.execute("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, now())", &[&version])
            })
            .and_then(|_| tx.commit())
            .map_err(|e| {
                StoreError::new(
                    ErrorKind::Schema,
                    format!("cannot migrate {what} to schema version {version}: {}", error_text(&e)),
                )
            })?;
        tracing::info!(store = what, version, "migrated the store");
    }
}

/// The error and its causes: the client's own `Display` leaves out the server's message.
fn error_text(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return match db.hint() {
            Some(hint) => format!("{} ({hint})", db.message()),
            None => db.message().to_string(),
        };
    }
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        text = format!("{text}: {c}");
        cause = c.source();
    }
    text
}

fn database_error(what: &str, e: &postgres::Error) -> StoreError {
    // The server aborted the transaction, so retrying is safe.
    if e.code()
        .is_some_and(|code| *code == SqlState::T_R_DEADLOCK_DETECTED || *code == SqlState::T_R_SERIALIZATION_FAILURE)
    {
        return StoreError::new(
            ErrorKind::Conflict,
            format!("{what}: {}; nothing was written; run again", error_text(e)),
        );
    }
    StoreError::new(ErrorKind::Database, format!("{what}: {}", error_text(e)))
}

/// One chunk of rows as the arrays [`UPSERT`] takes.
struct Columns<'a> {
    dates: Vec<NaiveDate>,
    directions: Vec<&'static str>,
    connectors: Vec<&'a str>,
    counters: [Vec<i64>; COUNTERS],
}

impl<'a> Columns<'a> {
    fn of(rows: &'a [(RollupKey, &Counters)]) -> Self {
        let mut columns = Columns {
            dates: Vec::with_capacity(rows.len()),
            directions: Vec::with_capacity(rows.len()),
            connectors: Vec::with_capacity(rows.len()),
            counters: std::array::from_fn(|_| Vec::with_capacity(rows.len())),
        };
        for (key, counters) in rows {
            columns.dates.push(key.date);
            columns.directions.push(key.direction.as_str());
            columns.connectors.push(&key.connector);
            for (column, value) in columns.counters.iter_mut().zip(schema::to_values(counters)) {
                column.push(value);
            }
        }
        columns
    }

    fn params<'p>(&'p self, source: &'p &'p str) -> Vec<&'p (dyn ToSql + Sync)> {
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![source, &self.dates, &self.directions, &self.connectors];
        params.extend(self.counters.iter().map(|column| column as &(dyn ToSql + Sync)));
        debug_assert_eq!(params.len(), KEY_COLUMNS.len() + COUNTERS);
        params
    }
}

impl Store for PgStore {
    fn describe(&self) -> String {
        self.what.clone()
    }

    fn lock_source(&mut self, source: &str, waiting: &mut dyn FnMut()) -> Result<(), StoreError> {
        // A session lock: held until this connection closes, by the server for a killed process.
        let key = (mailflow_core::fnv1a(source.as_bytes()) ^ SOURCE_LOCKS) as i64;
        let got: bool = self.client.query_one("SELECT pg_try_advisory_lock($1)", &[&key]).map_err(self.error())?.get(0);
        if !got {
            waiting();
            self.client.execute("SELECT pg_advisory_lock($1)", &[&key]).map_err(self.error())?;
        }
        Ok(())
    }

    fn checkpoint(&mut self, source: &str) -> Result<Checkpoint, StoreError> {
        let row = self
            .client
            .query_opt("SELECT generation, state FROM checkpoints WHERE source = $1", &[&source])
            .map_err(self.error())?;
        Ok(row.map(|row| Checkpoint { generation: row.get(0), state: row.get(1) }).unwrap_or_default())
    }

    fn commit(&mut self, commit: &Commit<'_>) -> Result<i64, StoreError> {
        check_rows(commit)?;
        let PgStore { client, what, upsert } = self;
        let err = |e: postgres::Error| database_error(what, &e);
        let source = commit.source;
        let mut tx = client.transaction().map_err(err)?;
        tx.execute(
            "INSERT INTO checkpoints (source, generation, state, updated_at) VALUES ($1, 0, '', $2)
             ON CONFLICT (source) DO NOTHING",
            &[&source, &commit.ingested_at],
        )
        .map_err(err)?;
        // The row lock serializes commits of one source; READ COMMITTED suffices with it.
        let generation: i64 = tx
            .query_one("SELECT generation FROM checkpoints WHERE source = $1 FOR UPDATE", &[&source])
            .map_err(err)?
            .get(0);
        if generation != commit.expected_generation {
            return Err(StoreError::conflict(source));
        }
        if !commit.clear_days.is_empty() {
            tx.execute("DELETE FROM rollups WHERE source = $1 AND date = ANY($2)", &[&source, &commit.clear_days])
                .map_err(err)?;
        }
        // In key order, so concurrent writers lock rows in the same order.
        let rows: Vec<(RollupKey, &Counters)> = commit.rows.iter().collect();
        for chunk in rows.chunks(UPSERT_CHUNK) {
            let columns = Columns::of(chunk);
            tx.execute(&*upsert, &columns.params(&source)).map_err(err)?;
        }
        tx.execute(
            "UPDATE checkpoints SET generation = $2, state = $3, updated_at = $4 WHERE source = $1",
            &[&source, &(generation + 1), &commit.state, &commit.ingested_at],
        )
        .map_err(err)?;
        tx.execute(
            UPSERT_SOURCE.as_str(),
            &[&source, &commit.kind, &commit.first_event, &commit.ingested_at, &commit.last_run],
        )
        .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(generation + 1)
    }

    fn rollup(&mut self, from: NaiveDate, to: NaiveDate) -> Result<Rollup, StoreError> {
        let mut rollup = Rollup::new();
        let Some((from, to)) = stored_range(from, to) else { return Ok(rollup) };
        let rows = self.client.query(SELECT_ROLLUPS.as_str(), &[&from, &to]).map_err(self.error())?;
        for row in rows {
            let key = RollupKey {
                source: row.get(0),
                date: row.get(1),
                direction: schema::parse_direction(row.get(2))?,
                connector: row.get(3),
            };
            let values = std::array::from_fn(|i| row.get(KEY_COLUMNS.len() + i));
            rollup.add_counters(&key, &schema::from_values(values));
        }
        Ok(rollup)
    }

    fn sources(&mut self) -> Result<Vec<SourceInfo>, StoreError> {
        let rows = self
            .client
            .query("SELECT name, kind, first_event, last_ingest, last_run FROM sources ORDER BY name", &[])
            .map_err(self.error())?;
        Ok(rows
            .into_iter()
            .map(|row| SourceInfo {
                name: row.get(0),
                kind: row.get(1),
                first_event: row.get(2),
                last_ingest: row.get(3),
                last_run: row.get(4),
            })
            .collect())
    }

    fn prune(&mut self, before: NaiveDate, source: Option<&str>) -> Result<u64, StoreError> {
        let Some(through) = prune_through(before) else { return Ok(0) };
        self.client
            .execute("DELETE FROM rollups WHERE date <= $1 AND ($2::TEXT IS NULL OR source = $2)", &[&through, &source])
            .map_err(self.error())
    }

    fn forget(&mut self, source: &str) -> Result<u64, StoreError> {
        let PgStore { client, what, .. } = self;
        let err = |e: postgres::Error| database_error(what, &e);
        let mut tx = client.transaction().map_err(err)?;
        // Lock the checkpoint first, in the same order as commit, so the two cannot deadlock.
        tx.execute("SELECT 1 FROM checkpoints WHERE source = $1 FOR UPDATE", &[&source]).map_err(err)?;
        let deleted = tx.execute("DELETE FROM rollups WHERE source = $1", &[&source]).map_err(err)?;
        // The generation goes on: an ingest of the source still running cannot commit after this.
        tx.execute(
            "UPDATE checkpoints SET state = ''::BYTEA, generation = generation + 1 WHERE source = $1",
            &[&source],
        )
        .map_err(err)?;
        tx.execute("DELETE FROM sources WHERE name = $1", &[&source]).map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_names_host_port_and_database_only() {
        let config = Config::from_str("postgres://mf:s3cret@db.example.com:6432/reports").unwrap();
        assert_eq!(location(&config), "db.example.com:6432/reports");
        let config = Config::from_str("postgresql://mf@%2Frun%2Fpostgresql").unwrap();
        assert_eq!(location(&config), "/run/postgresql:5432/mf");
    }

    #[test]
    fn unusable_urls_are_refused_before_connecting() {
        for (url, says) in [
            ("postgres://mf:s3cret@db/m?sslmode=require", "sslmode=disable"),
            ("postgres://mf:s3cret@/m", "needs a host"),
            ("postgres://mf:s3cret@db/m?bogus=1", "not a usable PostgreSQL URL"),
        ] {
            let err = PgStore::open(url, None).err().unwrap();
            assert_eq!(err.kind(), ErrorKind::Url, "{url}: {err}");
            assert!(err.to_string().contains(says), "{url}: {err}");
            assert!(!err.to_string().contains("s3cret"), "{url}: {err}");
        }
    }

    #[test]
    fn connection_errors_name_the_server_but_not_the_password() {
        let err = PgStore::open("postgres://mf:s3cret@127.0.0.1:1/reports", Some("hunter2")).err().unwrap();
        assert_eq!(err.kind(), ErrorKind::Open);
        let text = err.to_string();
        assert!(text.starts_with("cannot connect to PostgreSQL 127.0.0.1:1/reports: "), "{text}");
        assert!(text.ends_with("is the server running and the URL right?"), "{text}");
        assert!(!text.contains("s3cret") && !text.contains("hunter2"), "{text}");
    }
}
