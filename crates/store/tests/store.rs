//! The same assertions against both backends. PostgreSQL runs when `MAILFLOW_TEST_POSTGRES_URL`
//! names a server (start one with `.ci/postgres`); each test gets a fresh database on it. The TLS
//! tests also need the server's CA certificate, which `.ci/postgres` leaves in its data directory.

use std::str::FromStr;
use std::thread;

use chrono::{DateTime, NaiveDate, Utc};
use mailflow_core::Direction;
use mailflow_core::rollup::{Counters, Rollup, RollupKey};
use mailflow_store::{Checkpoint, Commit, ErrorKind, SourceInfo, Store, StoreError};

/// A fresh, empty store that tests can open as often as they like.
struct Db {
    url: String,
    backend: Backend,
}

enum Backend {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

impl Db {
    fn sqlite() -> Db {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/nested/mailflow.db", dir.path().display());
        Db { url, backend: Backend::Sqlite(dir) }
    }

    /// `None` (skip) when no server is configured, except in CI, which must test PostgreSQL.
    fn postgres() -> Option<Db> {
        let Ok(admin_url) = std::env::var("MAILFLOW_TEST_POSTGRES_URL") else {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!(
                    "MAILFLOW_TEST_POSTGRES_URL is not set; start a server with \
                     `export MAILFLOW_TEST_POSTGRES_URL=$(.ci/postgres)`"
                );
            }
            eprintln!("skipping: MAILFLOW_TEST_POSTGRES_URL is not set (start a server with .ci/postgres)");
            return None;
        };
        let name = format!("mailflow_test_{:016x}", fastrand::u64(..));
        admin(&admin_url).batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
        let mut url = url::Url::parse(&admin_url).unwrap();
        url.set_path(&name);
        Some(Db { url: url.to_string(), backend: Backend::Postgres { admin_url, name } })
    }

    fn open(&self) -> Box<dyn Store> {
        mailflow_store::open(&self.url, None).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Runs SQL on the store's database behind mailflow's back.
    fn execute(&self, sql: &str) {
        match &self.backend {
            Backend::Sqlite(_) => {
                let path = self.url.strip_prefix("sqlite://").unwrap();
                rusqlite::Connection::open(path).unwrap().execute_batch(sql).unwrap();
            }
            Backend::Postgres { .. } => admin(&self.url).batch_execute(sql).unwrap(),
        }
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Backend::Postgres { admin_url, name } = &self.backend {
            let dropped = admin(admin_url).batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
            if let Err(e) = dropped {
                eprintln!("cannot drop test database {name}: {e}");
            }
        }
    }
}

fn admin(url: &str) -> ::postgres::Client {
    ::postgres::Config::from_str(url).unwrap().connect(::postgres::NoTls).unwrap()
}

/// Runs each named test function against SQLite and, when configured, PostgreSQL.
macro_rules! on_both_backends {
    ($($test:ident),+ $(,)?) => {
        mod sqlite {
            $(#[test]
            fn $test() {
                super::$test(&super::Db::sqlite());
            })+
        }
        mod postgres {
            $(#[test]
            fn $test() {
                if let Some(db) = super::Db::postgres() {
                    super::$test(&db);
                }
            })+
        }
    };
}

on_both_backends!(
    rows_read_back_exactly,
    commits_add_into_stored_rows,
    counts_saturate_at_i64_max,
    clear_days_replace_a_day,
    stale_generation_writes_nothing,
    rows_of_other_sources_are_invalid,
    prune_drops_old_days,
    forget_drops_everything_of_a_source,
    sources_keep_the_earliest_event,
    opening_again_is_fine,
    newer_schemas_are_refused,
    concurrent_commits_count_exactly_once,
    a_source_is_held_by_one_ingest_at_a_time,
    a_source_belongs_to_the_host_that_ingests_it,
);

fn a_source_belongs_to_the_host_that_ingests_it(db: &Db) {
    let mut store = db.open();
    let rows = rollup_of(&[(key("2026-12-01", "mx", Direction::Inbound, "internet"), messages(1))]);
    commit(&mut *store, "mx", &[], &rows).unwrap();
    // Another host whose collector has the same name: refused, nothing written.
    let generation = store.checkpoint("mx").unwrap().generation;
    let other = Commit { host: "mx2-host", expected_generation: generation, rows: &rows, ..commit_template() };
    let err = store.commit(&other).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Owned);
    assert!(err.to_string().contains("mx-host") && err.to_string().contains("mx2-host"), "{err}");
    assert_eq!(everything(&mut *store), rows);
    assert_eq!(store.checkpoint("mx").unwrap().host.as_deref(), Some("mx-host"));
    // Once forgotten, the source is anyone's.
    store.forget("mx").unwrap();
    let generation = store.checkpoint("mx").unwrap().generation;
    let taken = Commit { host: "mx2-host", expected_generation: generation, rows: &rows, ..commit_template() };
    store.commit(&taken).unwrap();
    assert_eq!(store.checkpoint("mx").unwrap().host.as_deref(), Some("mx2-host"));
}

fn a_source_is_held_by_one_ingest_at_a_time(db: &Db) {
    let mut first = db.open();
    first.lock_source("mx", &mut || panic!("nothing held it")).unwrap();
    // Another source is free.
    db.open().lock_source("mx2", &mut || panic!("mx2 is free")).unwrap();
    let (waited_tx, waited_rx) = std::sync::mpsc::channel();
    let second = thread::spawn({
        let url = db.url.clone();
        move || {
            let mut store = mailflow_store::open(&url, None).unwrap();
            store.lock_source("mx", &mut || waited_tx.send(()).unwrap()).unwrap();
            std::time::Instant::now()
        }
    });
    waited_rx.recv_timeout(std::time::Duration::from_secs(30)).expect("the second ingest did not wait");
    std::thread::sleep(std::time::Duration::from_millis(200));
    let released = std::time::Instant::now();
    drop(first);
    assert!(second.join().unwrap() >= released);
}

fn day(text: &str) -> NaiveDate {
    text.parse().unwrap()
}

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

fn key(date: &str, source: &str, direction: Direction, connector: &str) -> RollupKey {
    RollupKey { date: day(date), source: source.into(), direction, connector: connector.into() }
}

/// Counters whose every field differs, so a swapped column shows.
fn distinct_counters(base: u64) -> Counters {
    let mut c = Counters { messages: base, recipients: base + 1, bytes: base + 2, ..Default::default() };
    let fields = [
        &mut c.tls.none,
        &mut c.tls.ssl3,
        &mut c.tls.tls1_0,
        &mut c.tls.tls1_1,
        &mut c.tls.tls1_2,
        &mut c.tls.tls1_3,
        &mut c.tls.unknown,
        &mut c.trust.anonymous,
        &mut c.trust.untrusted,
        &mut c.trust.trusted,
        &mut c.trust.verified,
        &mut c.trust.unknown,
        &mut c.status.delivered,
        &mut c.status.deferred,
        &mut c.status.failed,
        &mut c.status.rejected,
    ];
    for (i, field) in fields.into_iter().enumerate() {
        *field = base + 3 + i as u64;
    }
    c
}

fn messages(n: u64) -> Counters {
    Counters { messages: n, ..Default::default() }
}

fn rollup_of(rows: &[(RollupKey, Counters)]) -> Rollup {
    let mut rollup = Rollup::new();
    for (key, counters) in rows {
        rollup.add_counters(key, counters);
    }
    rollup
}

/// Commits `rows` for `source` on top of its current checkpoint.
fn commit(store: &mut dyn Store, source: &str, clear_days: &[NaiveDate], rows: &Rollup) -> Result<i64, StoreError> {
    let generation = store.checkpoint(source)?.generation;
    let state = format!("{source}@{}", generation + 1);
    store.commit(&Commit {
        source,
        kind: "postfix",
        host: "mx-host",
        expected_generation: generation,
        clear_days,
        rows,
        state: state.as_bytes(),
        first_event: None,
        ingested_at: at("2026-12-03T04:00:00Z"),
        last_run: None,
    })
}

fn everything(store: &mut dyn Store) -> Rollup {
    store.rollup(NaiveDate::MIN, NaiveDate::MAX).unwrap()
}

fn rows_read_back_exactly(db: &Db) {
    let mut store = db.open();
    let rows = rollup_of(&[
        (key("2026-12-01", "mx", Direction::Inbound, "internet"), distinct_counters(1)),
        (key("2026-12-01", "mx", Direction::Outbound, "internet"), distinct_counters(100)),
        (key("2026-12-02", "mx", Direction::Inbound, "partner ü"), distinct_counters(1_000_000_000_000)),
    ]);
    assert_eq!(store.checkpoint("mx").unwrap(), Checkpoint::default());
    assert_eq!(commit(&mut *store, "mx", &[], &rows).unwrap(), 1);
    assert_eq!(
        store.checkpoint("mx").unwrap(),
        Checkpoint { generation: 1, state: b"mx@1".to_vec(), host: Some("mx-host".into()) }
    );
    assert_eq!(everything(&mut *store), rows);
    let first_day = store.rollup(day("2026-12-01"), day("2026-12-01")).unwrap();
    assert_eq!(first_day.iter().count(), 2);
    assert!(first_day.iter().all(|(key, _)| key.date == day("2026-12-01")));
    assert!(store.rollup(day("2026-12-03"), day("2026-12-31")).unwrap().is_empty());
}

fn commits_add_into_stored_rows(db: &Db) {
    let mut store = db.open();
    let k = key("2026-12-01", "mx", Direction::Inbound, "internet");
    commit(&mut *store, "mx", &[], &rollup_of(&[(k.clone(), distinct_counters(1))])).unwrap();
    let other = key("2026-12-01", "mx", Direction::Inbound, "partner");
    commit(&mut *store, "mx", &[], &rollup_of(&[(k.clone(), distinct_counters(10)), (other.clone(), messages(7))]))
        .unwrap();
    let mut sum = distinct_counters(1);
    sum += distinct_counters(10);
    assert_eq!(everything(&mut *store), rollup_of(&[(k, sum), (other, messages(7))]));
    assert_eq!(store.checkpoint("mx").unwrap().generation, 2);
}

fn counts_saturate_at_i64_max(db: &Db) {
    let mut store = db.open();
    let max = i64::MAX as u64;
    let k = key("2026-12-01", "mx", Direction::Inbound, "internet");
    let huge = Counters { messages: max - 1, bytes: u64::MAX, ..Default::default() };
    commit(&mut *store, "mx", &[], &rollup_of(&[(k.clone(), huge)])).unwrap();
    let stored = |store: &mut dyn Store| everything(store).iter().map(|(_, c)| *c).next().unwrap();
    assert_eq!((stored(&mut *store).messages, stored(&mut *store).bytes), (max - 1, max));
    commit(&mut *store, "mx", &[], &rollup_of(&[(k, Counters { messages: 5, bytes: 5, recipients: 5, ..huge })]))
        .unwrap();
    let c = stored(&mut *store);
    assert_eq!((c.messages, c.bytes, c.recipients), (max, max, 5));
}

fn clear_days_replace_a_day(db: &Db) {
    let mut store = db.open();
    let window = [day("2026-12-02")];
    let kept = key("2026-12-01", "mx", Direction::Inbound, "internet");
    let other_source = key("2026-12-02", "relay", Direction::Outbound, "internet");
    commit(&mut *store, "mx", &[], &rollup_of(&[(kept.clone(), messages(1))])).unwrap();
    commit(&mut *store, "relay", &[], &rollup_of(&[(other_source.clone(), messages(2))])).unwrap();
    let recount = rollup_of(&[
        (key("2026-12-02", "mx", Direction::Inbound, "internet"), messages(3)),
        (key("2026-12-02", "mx", Direction::Outbound, "internet"), messages(4)),
    ]);
    commit(&mut *store, "mx", &window, &recount).unwrap();
    commit(&mut *store, "mx", &window, &recount).unwrap();
    let mut expected = recount.clone();
    expected.merge(rollup_of(&[(kept, messages(1)), (other_source, messages(2))]));
    assert_eq!(everything(&mut *store), expected);
    // A recount that found nothing empties the day.
    commit(&mut *store, "mx", &window, &Rollup::new()).unwrap();
    assert_eq!(store.rollup(day("2026-12-02"), day("2026-12-02")).unwrap().iter().count(), 1);
}

fn stale_generation_writes_nothing(db: &Db) {
    let mut store = db.open();
    let rows = rollup_of(&[(key("2026-12-01", "mx", Direction::Inbound, "internet"), messages(1))]);
    commit(&mut *store, "mx", &[], &rows).unwrap();
    let before = (everything(&mut *store), store.checkpoint("mx").unwrap(), store.sources().unwrap());
    let err = store
        .commit(&Commit {
            source: "mx",
            kind: "exim",
            host: "mx-host",
            expected_generation: 0,
            clear_days: &[day("2026-12-01")],
            rows: &rows,
            state: b"stale",
            first_event: Some(at("2020-01-01T00:00:00Z")),
            ingested_at: at("2026-12-04T00:00:00Z"),
            last_run: Some("{}"),
        })
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert_eq!(err.to_string(), "source mx was ingested by another process meanwhile; nothing was written; run again");
    assert_eq!((everything(&mut *store), store.checkpoint("mx").unwrap(), store.sources().unwrap()), before);
    // A source without a checkpoint is at generation 0; expecting more conflicts and creates nothing.
    let err = store
        .commit(&Commit { source: "new", expected_generation: 3, rows: &Rollup::new(), ..commit_template() })
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert_eq!(store.checkpoint("new").unwrap(), Checkpoint::default());
    assert_eq!(store.sources().unwrap().len(), 1);
}

fn commit_template() -> Commit<'static> {
    static EMPTY: std::sync::LazyLock<Rollup> = std::sync::LazyLock::new(Rollup::new);
    Commit {
        source: "mx",
        kind: "postfix",
        host: "mx-host",
        expected_generation: 0,
        clear_days: &[],
        rows: &EMPTY,
        state: b"",
        first_event: None,
        ingested_at: at("2026-12-03T04:00:00Z"),
        last_run: None,
    }
}

fn rows_of_other_sources_are_invalid(db: &Db) {
    let mut store = db.open();
    let rows = rollup_of(&[
        (key("2026-12-01", "mx", Direction::Inbound, "internet"), messages(1)),
        (key("2026-12-01", "relay", Direction::Inbound, "internet"), messages(1)),
    ]);
    let err = store.commit(&Commit { rows: &rows, ..commit_template() }).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid);
    assert!(everything(&mut *store).is_empty());
    assert_eq!(store.checkpoint("mx").unwrap(), Checkpoint::default());
}

fn prune_drops_old_days(db: &Db) {
    let mut store = db.open();
    let rows = rollup_of(&[
        (key("2026-11-30", "mx", Direction::Inbound, "internet"), messages(1)),
        (key("2026-12-01", "mx", Direction::Inbound, "internet"), messages(2)),
        (key("2026-12-01", "mx", Direction::Outbound, "internet"), messages(3)),
        (key("2026-12-02", "mx", Direction::Inbound, "internet"), messages(4)),
    ]);
    commit(&mut *store, "mx", &[], &rows).unwrap();
    let relay = rollup_of(&[(key("2026-11-30", "relay", Direction::Inbound, "internet"), messages(5))]);
    commit(&mut *store, "relay", &[], &relay).unwrap();
    // One host prunes its own sources only.
    assert_eq!(store.prune(day("2026-12-02"), Some("mx")).unwrap(), 3);
    assert_eq!(store.prune(day("2026-12-02"), Some("mx")).unwrap(), 0);
    let left: Vec<_> = everything(&mut *store).iter().map(|(key, c)| (key.date, c.messages)).collect();
    assert_eq!(left, [(day("2026-11-30"), 5), (day("2026-12-02"), 4)]);
    assert_eq!(store.prune(day("2026-12-02"), None).unwrap(), 1);
}

fn forget_drops_everything_of_a_source(db: &Db) {
    let mut store = db.open();
    let mx = rollup_of(&[
        (key("2026-12-01", "mx", Direction::Inbound, "internet"), messages(1)),
        (key("2026-12-02", "mx", Direction::Inbound, "internet"), messages(2)),
    ]);
    let relay = rollup_of(&[(key("2026-12-01", "relay", Direction::Inbound, "internet"), messages(3))]);
    commit(&mut *store, "mx", &[], &mx).unwrap();
    commit(&mut *store, "relay", &[], &relay).unwrap();
    let before = store.checkpoint("mx").unwrap().generation;
    assert_eq!(store.forget("mx").unwrap(), 2);
    assert_eq!(store.forget("mx").unwrap(), 0);
    // The state is gone; the generation goes on, so an ingest that read before cannot commit.
    let after = store.checkpoint("mx").unwrap();
    assert_eq!((after.state.len(), after.generation), (0, before + 2));
    let stale = Commit { source: "mx", expected_generation: before, rows: &mx, ..commit_template() };
    assert_eq!(store.commit(&stale).unwrap_err().kind(), ErrorKind::Conflict);
    assert_eq!(everything(&mut *store), relay);
    let names: Vec<String> = store.sources().unwrap().into_iter().map(|s| s.name).collect();
    assert_eq!(names, ["relay"]);
    // Read again from scratch.
    assert_eq!(commit(&mut *store, "mx", &[], &mx).unwrap(), before + 3);
}

fn sources_keep_the_earliest_event(db: &Db) {
    let mut store = db.open();
    let run = |store: &mut dyn Store, kind, first_event: Option<&str>, ingested_at, last_run| {
        let generation = store.checkpoint("mx").unwrap().generation;
        store
            .commit(&Commit {
                kind,
                expected_generation: generation,
                first_event: first_event.map(at),
                ingested_at: at(ingested_at),
                last_run,
                ..commit_template()
            })
            .unwrap();
    };
    run(&mut *store, "postfix", Some("2026-12-02T10:00:00.123456Z"), "2026-12-03T01:00:00Z", Some(r#"{"run":1}"#));
    run(&mut *store, "postfix", Some("2026-12-01T10:00:00Z"), "2026-12-03T02:00:00Z", None);
    run(&mut *store, "exim", None, "2026-12-03T03:00:00Z", None);
    run(&mut *store, "exim", Some("2026-12-02T23:00:00Z"), "2026-12-03T04:00:00Z", None);
    let expected = SourceInfo {
        name: "mx".into(),
        kind: "exim".into(),
        first_event: Some(at("2026-12-01T10:00:00Z")),
        last_ingest: Some(at("2026-12-03T04:00:00Z")),
        last_run: Some(r#"{"run":1}"#.into()),
    };
    assert_eq!(store.sources().unwrap(), std::slice::from_ref(&expected));
    run(&mut *store, "exim", None, "2026-12-03T05:00:00Z", Some(r#"{"run":5}"#));
    let [info] = &store.sources().unwrap()[..] else { panic!("one source") };
    assert_eq!(info.last_run.as_deref(), Some(r#"{"run":5}"#));
    assert_eq!(info.first_event, expected.first_event);
}

fn opening_again_is_fine(db: &Db) {
    let rows = rollup_of(&[(key("2026-12-01", "mx", Direction::Inbound, "internet"), messages(1))]);
    commit(&mut *db.open(), "mx", &[], &rows).unwrap();
    // Several at once, as threads of one run do.
    let stores: Vec<_> = thread::scope(|s| {
        let handles: Vec<_> = (0..4).map(|_| s.spawn(|| db.open())).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for mut store in stores {
        assert_eq!(everything(&mut *store), rows);
    }
}

fn newer_schemas_are_refused(db: &Db) {
    let store = db.open();
    let described = store.describe();
    assert!(described.starts_with("SQLite /") || described.starts_with("PostgreSQL 127.0.0.1:"), "{described}");
    drop(store);
    db.execute("INSERT INTO schema_migrations (version, applied_at) VALUES (99, '2030-01-01T00:00:00Z')");
    let err = mailflow_store::open(&db.url, None).err().expect("refused");
    assert_eq!(err.kind(), ErrorKind::Schema);
    assert_eq!(
        err.to_string(),
        "the store was written by a newer mailflow (schema version 99, this one knows 2); upgrade mailflow"
    );
}

/// Four threads, each with its own connection, commit batches for a source of their own and
/// for one they share, retrying the shared one on conflict as an ingest would.
fn concurrent_commits_count_exactly_once(db: &Db) {
    const THREADS: u64 = 4;
    const BATCHES: u64 = 25;
    let batch = |source: &str, n: u64| {
        // Several days and connectors, so batches overlap in rows.
        let rows: Vec<_> = (0..6)
            .map(|i| {
                let date = format!("2026-12-0{}", 1 + i % 3);
                (key(&date, source, Direction::ALL[i % 2], &format!("c{}", n % 3)), messages(1 + i as u64))
            })
            .collect();
        rollup_of(&rows)
    };
    let conflicts = thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                s.spawn(move || {
                    let mut store = db.open();
                    let mut conflicts = 0;
                    for n in 0..BATCHES {
                        let own = format!("own{t}");
                        commit(&mut *store, &own, &[], &batch(&own, n)).unwrap();
                        loop {
                            match commit(&mut *store, "shared", &[], &batch("shared", n)) {
                                Ok(_) => break,
                                Err(e) if e.kind() == ErrorKind::Conflict => conflicts += 1,
                                Err(e) => panic!("{e}"),
                            }
                        }
                    }
                    conflicts
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
    });
    eprintln!("{conflicts} conflicts retried");
    let mut store = db.open();
    let per_batch: u64 = (1..=6).sum();
    let totals = everything(&mut *store).iter().fold(std::collections::BTreeMap::new(), |mut totals, (key, c)| {
        *totals.entry(key.source).or_insert(0) += c.messages;
        totals
    });
    for t in 0..THREADS {
        assert_eq!(totals[&format!("own{t}")], BATCHES * per_batch);
        assert_eq!(store.checkpoint(&format!("own{t}")).unwrap().generation, BATCHES as i64);
    }
    assert_eq!(totals["shared"], THREADS * BATCHES * per_batch);
    assert_eq!(store.checkpoint("shared").unwrap().generation, (THREADS * BATCHES) as i64);
}

#[test]
fn sqlite_memory_stores_work() {
    let mut store = mailflow_store::open("sqlite::memory:", None).unwrap();
    let rows = rollup_of(&[(key("2026-12-01", "mx", Direction::Inbound, "internet"), messages(1))]);
    commit(&mut *store, "mx", &[], &rows).unwrap();
    assert_eq!(everything(&mut *store), rows);
}

#[test]
fn sqlite_refuses_files_that_are_not_databases() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, "not a database, but long enough to look like a header of one".repeat(20)).unwrap();
    let err = mailflow_store::open(&format!("sqlite://{}", path.display()), None).err().expect("refused");
    assert_eq!(err.kind(), ErrorKind::Open);
    assert!(err.to_string().contains(&path.display().to_string()), "{err}");
}

/// A fleet host may connect as a role that can only read and write the tables, once the schema
/// is in place: opening does not try to create or lock anything then.
#[test]
fn postgres_roles_without_schema_rights_use_a_migrated_store() {
    let Some(db) = Db::postgres() else { return };
    drop(db.open());
    let role = format!("mailflow_rw_{:08x}", fastrand::u32(..));
    db.execute(&format!(
        "CREATE ROLE {role} LOGIN; REVOKE CREATE ON SCHEMA public FROM PUBLIC; \
         GRANT USAGE ON SCHEMA public TO {role}; \
         GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}; \
         GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}"
    ));
    let mut url = url::Url::parse(&db.url).unwrap();
    url.set_username(&role).unwrap();
    let opened = mailflow_store::open(url.as_str(), None);
    let mut store = opened.unwrap_or_else(|e| panic!("{e}"));
    let rows = rollup_of(&[(key("2026-12-01", "mx", Direction::Inbound, "internet"), messages(3))]);
    store.lock_source("mx", &mut || {}).unwrap();
    commit(&mut *store, "mx", &[], &rows).unwrap();
    assert_eq!(everything(&mut *db.open()), rows);
    drop(store);
    db.execute(&format!("DROP OWNED BY {role}; DROP ROLE {role}"));
}

/// A database on the test server for the TLS tests, and the server's CA certificate in a file of
/// its own: `.ci/postgres` leaves it in the data directory as `ca.pem`, which the superuser of the
/// test URL reads with `pg_read_file`, wherever the server runs. `None` as for [`Db::postgres`].
struct TlsDb {
    db: Db,
    dir: tempfile::TempDir,
    ca: std::path::PathBuf,
}

impl TlsDb {
    fn new() -> Option<TlsDb> {
        let db = Db::postgres()?;
        let Backend::Postgres { admin_url, .. } = &db.backend else { unreachable!("a PostgreSQL database") };
        let ca = match admin(admin_url).query_one("SELECT pg_read_file('ca.pem')", &[]) {
            Ok(row) => row.get::<_, String>(0),
            Err(e) => {
                let why =
                    format!("the test server has no ca.pem in its data directory ({e}); start it with .ci/postgres");
                if std::env::var("CI").as_deref() == Ok("true") {
                    panic!("{why}");
                }
                eprintln!("skipping: {why}");
                return None;
            }
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, ca).unwrap();
        Some(TlsDb { db, dir, ca: path })
    }

    /// The database's URL with another host and a query.
    fn url(&self, host: &str, query: &str) -> String {
        let mut url = url::Url::parse(&self.db.url).unwrap();
        url.set_host(Some(host)).unwrap();
        url.set_query(Some(query));
        url.to_string()
    }

    /// Whether each session named `application` is encrypted, as the server sees it.
    fn sessions_encrypted(&self, application: &str) -> Vec<bool> {
        let Backend::Postgres { admin_url, .. } = &self.db.backend else { unreachable!("a PostgreSQL database") };
        admin(admin_url)
            .query(
                "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.application_name = $1",
                &[&application],
            )
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect()
    }

    /// Opens a store at `url`, checks that it says whether it is encrypted and that the server
    /// agrees, and that rows go in and come back out.
    fn check(&self, url: &str, encrypted: bool) {
        // A name of its own: sessions of stores dropped before may linger a moment.
        let application = format!("mailflow_{:08x}", fastrand::u32(..));
        let named = format!("{url}&application_name={application}");
        let mut store = mailflow_store::open(&named, None).unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(store.describe().ends_with(" (TLS)"), encrypted, "{url}: {}", store.describe());
        assert_eq!(self.sessions_encrypted(&application), [encrypted], "{url}");
        let source = format!("mx{:08x}", fastrand::u32(..));
        let rows = rollup_of(&[(key("2026-12-01", &source, Direction::Inbound, "internet"), messages(2))]);
        commit(&mut *store, &source, &[], &rows).unwrap();
        let read = everything(&mut *store).iter().filter(|(key, _)| key.source == source).count();
        assert_eq!(read, 1, "{url}");
    }

    /// A CA that signed nothing the server has.
    fn other_ca(&self) -> String {
        let path = self.dir.path().join("other-ca.pem");
        std::fs::write(&path, rcgen::generate_simple_self_signed(vec![]).unwrap().cert.pem()).unwrap();
        path.display().to_string()
    }
}

fn refused(url: &str) -> String {
    let err = mailflow_store::open(url, None).err().unwrap_or_else(|| panic!("{url} connected"));
    assert_eq!(err.kind(), ErrorKind::Open, "{err}");
    err.to_string()
}

#[test]
fn postgres_verify_full_checks_the_ca_and_the_host_name() {
    let Some(tls) = TlsDb::new() else { return };
    let ca = tls.ca.display().to_string();
    let url = tls.url("localhost", &format!("sslmode=verify-full&sslrootcert={ca}"));
    tls.check(&url, true);
    assert!(mailflow_store::open(&url, None).unwrap().describe().starts_with("PostgreSQL localhost:"));
    // The certificate names 127.0.0.1 too.
    tls.check(&tls.url("127.0.0.1", &format!("sslmode=verify-full&sslrootcert={ca}")), true);

    let other = tls.other_ca();
    let text = refused(&tls.url("localhost", &format!("sslmode=verify-full&sslrootcert={other}")));
    assert!(text.contains("error performing TLS handshake"), "{text}");
    assert!(
        text.contains(&format!(
            "sslmode=verify-full was asked: is the server's certificate signed by a CA certificate in {other}"
        )),
        "{text}"
    );
    // sslrootcert makes require check the chain too.
    let text = refused(&tls.url("localhost", &format!("sslmode=require&sslrootcert={other}")));
    assert!(text.contains("sslmode=require was asked: is the server's certificate signed by"), "{text}");

    // Another name for the same address: verify-ca does not mind it, verify-full does.
    let renamed =
        |mode: &str| tls.url("mailflow.invalid", &format!("hostaddr=127.0.0.1&sslmode={mode}&sslrootcert={ca}"));
    let text = refused(&renamed("verify-full"));
    assert!(text.contains("connect to the server by a host name its certificate holds"), "{text}");
    tls.check(&renamed("verify-ca"), true);
    // Against the system's CAs, the test CA is unknown.
    let text = refused(&tls.url("localhost", "sslmode=verify-full"));
    assert!(
        text.contains("sslmode=verify-full was asked: is the server's certificate signed by a CA the system"),
        "{text}"
    );
}

#[test]
fn postgres_require_and_prefer_encrypt_without_a_ca() {
    let Some(tls) = TlsDb::new() else { return };
    tls.check(&tls.url("127.0.0.1", "sslmode=require"), true);
    // prefer, the default, takes the TLS the server offers.
    tls.check(&tls.url("127.0.0.1", "sslmode=prefer"), true);
    tls.check(&tls.url("127.0.0.1", "connect_timeout=30"), true);
}

#[test]
fn postgres_sslmode_disable_connects_in_plain() {
    let Some(tls) = TlsDb::new() else { return };
    tls.check(&tls.url("127.0.0.1", "sslmode=disable"), false);
    tls.check(&tls.url("localhost", &format!("sslmode=disable&sslrootcert={}", tls.ca.display())), false);
}
