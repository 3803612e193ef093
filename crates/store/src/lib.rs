//! mailflow's history: daily rollups and collector checkpoints in SQLite or PostgreSQL.
//!
//! Every checkpoint of an ingest is one [`Store::commit`]: the rollup rows counted since the
//! last one and the source's new checkpoint (what it has read so far) land in the same
//! transaction, guarded by the checkpoint's generation. So a crash loses the work since the last
//! checkpoint or nothing, two processes ingesting the same source cannot both count the same
//! lines, and reports over any range are read back from history with [`Store::rollup`].
//!
//! Both backends share one schema, generated from one list of counter columns, and upgrade it
//! on open through numbered migrations; a store written by a newer mailflow is refused.
//!
//! # Layout
//! - [`open`], [`redact`]: store URLs to stores, and URLs fit for messages.
//! - [`Store`], [`Checkpoint`], [`Commit`], [`SourceInfo`]: what every backend offers.
//! - [`StoreError`], [`ErrorKind`].
//! - `schema`: counter columns, migrations and the SQL both backends share.
//! - `sqlite`, `pg`: the backends.

mod pg;
mod schema;
mod sqlite;

use chrono::{DateTime, NaiveDate, Utc};
use mailflow_core::Rollup;
use url::Url;

/// Opens the store at `url` and brings its schema up to date.
///
/// `url` is `sqlite:///absolute/path.db` (the file and its directory are created if missing),
/// `sqlite::memory:`, or `postgres://user@host:port/db` (`postgresql://` too), whose `sslmode`
/// and `sslrootcert` work as libpq's. `password`, when given, is used for PostgreSQL instead of
/// one in the URL; SQLite ignores it.
pub fn open(url: &str, password: Option<&str>) -> Result<Box<dyn Store>, StoreError> {
    let scheme = url.split_once(':').map(|(scheme, _)| scheme.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("sqlite") => Ok(Box::new(sqlite::SqliteStore::open(url)?)),
        Some("postgres" | "postgresql") => Ok(Box::new(pg::PgStore::open(url, password)?)),
        _ => Err(StoreError::new(
            ErrorKind::Url,
            format!(
                "unsupported store URL {}: use sqlite:///path/to/mailflow.db or postgres://user@host/db",
                redact(url)
            ),
        )),
    }
}

/// `url` with any password replaced by `***`, fit for messages and logs.
pub fn redact(url: &str) -> String {
    if let Some((scheme, _, rest)) = ambiguous_userinfo(url) {
        // Where the password ends cannot be told: hide everything before the host.
        return format!("{scheme}://***@{rest}");
    }
    let Ok(mut parsed) = Url::parse(url) else {
        // Not a URL: keep it only if it cannot hold a secret.
        let lower = url.to_ascii_lowercase();
        if url.contains('@') || lower.contains("password") {
            return match url.split_once("://") {
                Some((scheme, _)) => format!("{scheme}://***"),
                None => "***".to_string(),
            };
        }
        return url.to_string();
    };
    if parsed.password().is_some() {
        // Fails only for URLs that cannot have a password, which this one has.
        let _ = parsed.set_password(Some("***"));
    }
    if parsed.query_pairs().any(|(key, _)| key.eq_ignore_ascii_case("password")) {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(key, value)| {
                let value = if key.eq_ignore_ascii_case("password") { "***".into() } else { value.into_owned() };
                (key.into_owned(), value)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.to_string()
}

/// `(scheme, userinfo, after)` of a URL whose user or password holds `@`, `/`, `#` or `?` unescaped,
/// as `postgres://mf:${PASSWORD}@db/mailflow` gives with such a password. URL parsers split
/// these at the first of those characters, which would show part of the password as a host
/// or path; the last `@` is taken as the end of the userinfo instead.
pub(crate) fn ambiguous_userinfo(url: &str) -> Option<(&str, &str, &str)> {
    let (scheme, after) = url.split_once("://")?;
    let (userinfo, rest) = after.rsplit_once('@')?;
    userinfo.contains(['@', '/', '#', '?']).then_some((scheme, userinfo, rest))
}

/// A history store. Each thread that uses one opens its own with [`open`].
pub trait Store: Send {
    /// What this store is, for messages: `SQLite /var/lib/mailflow/mailflow.db` or
    /// `PostgreSQL db.example.com:5432/mailflow (TLS)`.
    fn describe(&self) -> String;

    /// Holds `source` for this connection until it is dropped: another ingest of the same
    /// source (a second job, an overlapping cron run) waits for it instead of failing on a moved
    /// checkpoint. Calls `waiting` before it waits.
    fn lock_source(&mut self, source: &str, waiting: &mut dyn FnMut()) -> Result<(), StoreError>;

    /// The source's checkpoint; generation 0 and an empty state when it has none.
    fn checkpoint(&mut self, source: &str) -> Result<Checkpoint, StoreError>;

    /// Applies one ingest of `commit.source` in a single transaction and returns the
    /// checkpoint's new generation.
    ///
    /// Fails with [`ErrorKind::Conflict`], writing nothing, when the checkpoint's generation is
    /// no longer `commit.expected_generation`. Otherwise deletes the source's rows of every day
    /// in `clear_days`, adds `rows` into the stored ones (saturating at `i64::MAX`), stores
    /// `state` and updates the source's [`SourceInfo`]. Every row must belong to
    /// `commit.source` ([`ErrorKind::Invalid`] otherwise).
    fn commit(&mut self, commit: &Commit<'_>) -> Result<i64, StoreError>;

    /// Every source's rows with `from <= date <= to`.
    fn rollup(&mut self, from: NaiveDate, to: NaiveDate) -> Result<Rollup, StoreError>;

    /// Every source that has committed, by name.
    fn sources(&mut self) -> Result<Vec<SourceInfo>, StoreError>;

    /// Deletes the rows of every day before `before`, of one source or all; returns how many
    /// rows went.
    fn prune(&mut self, before: NaiveDate, source: Option<&str>) -> Result<u64, StoreError>;

    /// Deletes a source's rows, checkpoint and info, so its next ingest starts from scratch;
    /// returns how many rows went.
    fn forget(&mut self, source: &str) -> Result<u64, StoreError>;
}

/// What a source has read so far, as the collector encoded it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checkpoint {
    /// Bumped by every commit; a commit names the generation it started from.
    pub generation: i64,
    pub state: Vec<u8>,
    /// The host whose ingests own the source (see [`Commit::host`]).
    pub host: Option<String>,
}

/// One ingest of one source, for [`Store::commit`].
#[derive(Debug, Clone, Copy)]
pub struct Commit<'a> {
    pub source: &'a str,
    /// The collector type, e.g. `postfix`.
    pub kind: &'a str,
    /// The host committing: the first commit of a source makes it the source's owner, and
    /// commits from any other host fail with [`ErrorKind::Owned`], writing nothing.
    pub host: &'a str,
    /// The generation of the checkpoint the ingest started from.
    pub expected_generation: i64,
    /// Days whose rows the ingest recounted in full: their stored rows are replaced, not added to.
    pub clear_days: &'a [NaiveDate],
    pub rows: &'a Rollup,
    /// The new checkpoint state.
    pub state: &'a [u8],
    /// The earliest event the ingest saw, if any.
    pub first_event: Option<DateTime<Utc>>,
    pub ingested_at: DateTime<Utc>,
    /// JSON describing this run, kept as is; `None` keeps the previous one.
    pub last_run: Option<&'a str>,
}

/// What the store knows about a source besides its rows.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceInfo {
    pub name: String,
    pub kind: String,
    /// The earliest event any ingest saw.
    pub first_event: Option<DateTime<Utc>>,
    pub last_ingest: Option<DateTime<Utc>>,
    /// JSON describing the last run that reported one.
    pub last_run: Option<String>,
}

/// Why a store operation failed; the message says what to do about it.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct StoreError {
    kind: ErrorKind,
    message: String,
}

/// The kinds of [`StoreError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Not a usable store URL.
    Url,
    /// The store cannot be opened or connected to.
    Open,
    /// A migration failed, or the store was written by a newer mailflow.
    Schema,
    /// Another process changed the source first; nothing was written, running again helps.
    Conflict,
    /// The caller asked for something the store does not allow.
    Invalid,
    /// Another host ingests this source: two hosts' collectors share a name.
    Owned,
    /// Any other database error.
    Database,
}

impl StoreError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        StoreError { kind, message: message.into() }
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// `source` belongs to `owner`, not to `host`.
    pub fn owned(source: &str, owner: &str, host: &str) -> Self {
        StoreError::new(
            ErrorKind::Owned,
            format!(
                "source {source} is ingested by host {owner}, and this host is {host}: give each host's collectors \
                 their own `name` (it is the source of their rows and checkpoint); if this host took over from \
                 {owner}, set `host = \"{owner}\"` in [store]"
            ),
        )
    }

    fn conflict(source: &str) -> Self {
        StoreError::new(
            ErrorKind::Conflict,
            format!("source {source} was ingested by another process meanwhile; nothing was written; run again"),
        )
    }
}

/// The dates a store holds: years of four digits, whose ISO texts sort like the dates.
const FIRST_DATE: NaiveDate = NaiveDate::from_ymd_opt(0, 1, 1).expect("valid date");
const LAST_DATE: NaiveDate = NaiveDate::from_ymd_opt(9999, 12, 31).expect("valid date");

/// `from..=to` narrowed to the dates a store holds; `None` when no stored date is in it.
fn stored_range(from: NaiveDate, to: NaiveDate) -> Option<(NaiveDate, NaiveDate)> {
    let (from, to) = (from.max(FIRST_DATE), to.min(LAST_DATE));
    (from <= to).then_some((from, to))
}

/// The last day [`Store::prune`] deletes, if any can be stored.
fn prune_through(before: NaiveDate) -> Option<NaiveDate> {
    stored_range(FIRST_DATE, before.pred_opt()?).map(|(_, to)| to)
}

/// Rejects rows the commit cannot hold before anything is written.
fn check_rows(commit: &Commit<'_>) -> Result<(), StoreError> {
    for (key, _) in commit.rows.iter() {
        if key.source != commit.source {
            return Err(StoreError::new(
                ErrorKind::Invalid,
                format!("a commit for source {} holds a row of source {}", commit.source, key.source),
            ));
        }
        if !(FIRST_DATE..=LAST_DATE).contains(&key.date) {
            return Err(StoreError::new(
                ErrorKind::Invalid,
                format!("source {} has a row dated {}, outside years 0 to 9999", commit.source, key.date),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_with_unescaped_delimiters_is_refused_unseen() {
        let Err(e) = open("postgres://mf:p@ss/w:rd%#x@127.0.0.1:1/mfdb", None) else { panic!("opened") };
        let message = e.to_string();
        assert!(message.contains("percent-encode") && !message.contains("ss/w"), "{message}");
    }

    #[test]
    fn redact_hides_passwords_in_userinfo_and_query() {
        assert_eq!(redact("postgres://mf:s3cret@db:5432/mailflow"), "postgres://mf:***@db:5432/mailflow");
        assert_eq!(
            redact("postgresql://mf@db/mailflow?password=s3cret&sslmode=disable"),
            "postgresql://mf@db/mailflow?password=***&sslmode=disable"
        );
        assert_eq!(redact("postgres://mf@db/mailflow"), "postgres://mf@db/mailflow");
        assert_eq!(redact("sqlite:///var/lib/mailflow/mailflow.db"), "sqlite:///var/lib/mailflow/mailflow.db");
        assert_eq!(redact("host=db password=s3cret"), "***");
        assert_eq!(redact("pg://mf:s3cret@[db/x"), "pg://***");
        for url in [
            "postgres://mf:p@ss/w:rd%#x@127.0.0.1:55432/mfdb",
            "postgres://mf:a#b@db/mailflow",
            "postgres://mf:a/b?c@db",
        ] {
            let shown = redact(url);
            assert!(!shown.contains("ss/w") && !shown.contains("a#b") && !shown.contains("a/b"), "{shown}");
            assert!(shown.starts_with("postgres://***@"), "{shown}");
        }
    }

    #[test]
    fn unknown_schemes_are_url_errors() {
        let err = open("mysql://mf:s3cret@db/mailflow", None).err().unwrap();
        assert_eq!(err.kind(), ErrorKind::Url);
        assert!(!err.to_string().contains("s3cret"), "{err}");
    }
}
