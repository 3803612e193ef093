//! The PostgreSQL backend: one synchronous connection per store.

use std::borrow::Cow;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use chrono::NaiveDate;
use mailflow_core::rollup::RollupKey;
use mailflow_core::{Counters, Rollup};
use postgres::config::{Host, SslMode, SslNegotiation};
use postgres::error::SqlState;
use postgres::types::ToSql;
use postgres::{Client, Config, NoTls, Statement};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_postgres_rustls::MakeRustlsConnect;

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
        let (rest, params) = take_tls_params(url).map_err(|why| bad_url(&why))?;
        let mut tls = params.resolve().map_err(|why| bad_url(&why))?;
        let mut config = Config::from_str(&rest)
            .map_err(|e| bad_url(&format!("not a usable PostgreSQL URL ({})", error_text(&e))))?;
        if let Some(password) = password {
            config.password(password);
        }
        if config.get_hosts().is_empty() && config.get_hostaddrs().is_empty() {
            return Err(bad_url(
                "the PostgreSQL URL needs a host: postgres://user@host/db, \
                 or postgres://user@%2Frun%2Fpostgresql/db for the local socket",
            ));
        }
        if tls.mode == TlsMode::Prefer && config.get_ssl_negotiation() == SslNegotiation::Direct {
            return Err(bad_url("sslnegotiation=direct needs sslmode=require, verify-ca or verify-full"));
        }
        if config.get_hosts().iter().all(|host| matches!(host, Host::Unix(_))) && config.get_hostaddrs().is_empty() {
            // The server offers no TLS on its local socket; libpq ignores sslmode there too.
            tls = Tls { mode: TlsMode::Disable, verify: Verify::Nothing };
        }
        if config.get_hosts().is_empty() {
            // The address is the name the certificate is checked against; without a host,
            // tokio-postgres would refuse TLS altogether.
            for addr in config.get_hostaddrs().to_vec() {
                config.host(&addr.to_string());
            }
        }
        config.ssl_mode(tls.ssl_mode());
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(30));
        }
        if config.get_application_name().is_none() {
            config.application_name("mailflow");
        }
        let mut what = format!("PostgreSQL {}", location(&config));
        // Set by the certificate verifier once a server sent one: with `prefer`, whether it took up TLS.
        let saw_certificate = Arc::new(AtomicBool::new(false));
        let connected = match tls.mode {
            TlsMode::Disable => config.connect(NoTls),
            _ => config.connect(connector(&tls.verify, &saw_certificate)?),
        };
        let mut client = connected.map_err(|e| {
            let hint = match e.code() {
                Some(code)
                    if *code == SqlState::INVALID_PASSWORD
                        || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION =>
                {
                    Cow::Borrowed("are the user and password right?")
                }
                Some(code) if *code == SqlState::INVALID_CATALOG_NAME => Cow::Borrowed("does the database exist?"),
                _ if is_tls_error(&e) => Cow::Owned(tls.hint(&e, saw_certificate.load(Ordering::Relaxed))),
                _ => Cow::Borrowed("is the server running and the URL right?"),
            };
            StoreError::new(ErrorKind::Open, format!("cannot connect to {what}: {}; {hint}", error_text(&e)))
        })?;
        let encrypted = match tls.mode {
            TlsMode::Disable => false,
            TlsMode::Prefer => saw_certificate.load(Ordering::Relaxed),
            TlsMode::Require | TlsMode::VerifyCa | TlsMode::VerifyFull => true,
        };
        if encrypted {
            what.push_str(" (TLS)");
        }
        migrate(&mut client, &what)?;
        let upsert = client.prepare(&UPSERT).map_err(|e| database_error(&what, &e))?;
        Ok(PgStore { client, what, upsert })
    }

    fn error(&self) -> impl Fn(postgres::Error) -> StoreError + '_ {
        |e| database_error(&self.what, &e)
    }
}

/// libpq's `sslmode`, except `allow`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TlsMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl TlsMode {
    const NAMES: [(&str, TlsMode); 5] = [
        ("disable", TlsMode::Disable),
        ("prefer", TlsMode::Prefer),
        ("require", TlsMode::Require),
        ("verify-ca", TlsMode::VerifyCa),
        ("verify-full", TlsMode::VerifyFull),
    ];

    fn parse(value: &str) -> Result<Self, String> {
        if let Some((_, mode)) = Self::NAMES.iter().find(|(name, _)| *name == value) {
            return Ok(*mode);
        }
        Err(match value {
            "allow" => "sslmode=allow is not supported: use prefer, or require for TLS always".to_string(),
            _ => format!("sslmode={value} is not known: use disable, prefer, require, verify-ca or verify-full"),
        })
    }

    fn name(self) -> &'static str {
        Self::NAMES.iter().find(|(_, mode)| *mode == self).map_or("", |(name, _)| name)
    }
}

/// The CA certificates a server's certificate must chain to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Roots {
    /// The system's, as `sslrootcert=system` and the verify modes without `sslrootcert` ask.
    System,
    /// A PEM file's.
    File(PathBuf),
}

/// The TLS parameters of a URL, as given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct TlsParams {
    mode: Option<TlsMode>,
    root_cert: Option<Roots>,
}

/// What a connection does about TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Tls {
    mode: TlsMode,
    verify: Verify,
}

/// What is checked of the server's certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verify {
    /// Nothing: the session is encrypted, but the server is not authenticated.
    Nothing,
    /// That it chains to the roots, whatever host it names.
    Chain(Roots),
    /// That it chains to the roots and names the host connected to.
    Full(Roots),
}

/// Takes `sslmode` and `sslrootcert` out of the URL's query, since the `postgres` crate refuses
/// `verify-ca`, `verify-full` and `sslrootcert`; returns the rest of the URL for it as it was.
fn take_tls_params(url: &str) -> Result<(String, TlsParams), String> {
    // A userinfo holding `?` was refused before: the first one starts the query.
    let Some((base, query)) = url.split_once('?') else { return Ok((url.to_string(), TlsParams::default())) };
    let mut params = TlsParams::default();
    let mut rest = Vec::new();
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = percent_encoding::percent_decode_str(key).decode_utf8_lossy();
        let decode = |text: &str| match percent_encoding::percent_decode_str(text).decode_utf8() {
            Ok(text) => Ok(text.into_owned()),
            Err(_) => Err(format!("the value of {key} is not UTF-8 once percent-decoded")),
        };
        match &*key {
            "sslmode" => params.mode = Some(TlsMode::parse(&decode(value)?)?),
            "sslrootcert" => {
                let path = decode(value)?;
                params.root_cert = Some(match path.as_str() {
                    "" => return Err("sslrootcert is empty: name a PEM file of CA certificates, or system".into()),
                    "system" => Roots::System,
                    _ => Roots::File(PathBuf::from(path)),
                });
            }
            "sslcert" | "sslkey" | "sslpassword" => {
                return Err(format!(
                    "{key}: mailflow presents no client certificate to PostgreSQL; authenticate with a password"
                ));
            }
            _ => rest.push(pair),
        }
    }
    let rest = match rest.is_empty() {
        true => base.to_string(),
        false => format!("{base}?{}", rest.join("&")),
    };
    Ok((rest, params))
}

impl TlsParams {
    /// libpq's rules: `sslrootcert` makes `prefer` and `require` check the chain too, and
    /// `sslrootcert=system` asks for `verify-full`.
    fn resolve(self) -> Result<Tls, String> {
        let TlsParams { mode, root_cert } = self;
        let mode = match (mode, &root_cert) {
            (None, Some(Roots::System)) => TlsMode::VerifyFull,
            (Some(mode), Some(Roots::System)) if mode != TlsMode::VerifyFull => {
                return Err(format!("sslmode={} is too weak for sslrootcert=system: use verify-full", mode.name()));
            }
            (mode, _) => mode.unwrap_or(TlsMode::Prefer),
        };
        let verify = match (mode, root_cert) {
            (TlsMode::Disable, _) | (TlsMode::Prefer | TlsMode::Require, None) => Verify::Nothing,
            (TlsMode::Prefer | TlsMode::Require | TlsMode::VerifyCa, roots) => {
                Verify::Chain(roots.unwrap_or(Roots::System))
            }
            (TlsMode::VerifyFull, roots) => Verify::Full(roots.unwrap_or(Roots::System)),
        };
        Ok(Tls { mode, verify })
    }
}

impl Tls {
    fn ssl_mode(&self) -> SslMode {
        match self.mode {
            TlsMode::Disable => SslMode::Disable,
            TlsMode::Prefer => SslMode::Prefer,
            TlsMode::Require | TlsMode::VerifyCa | TlsMode::VerifyFull => SslMode::Require,
        }
    }

    /// What to check after a failed TLS handshake; `saw_certificate` tells whether the server sent one.
    fn hint(&self, e: &postgres::Error, saw_certificate: bool) -> String {
        let asked = format!("sslmode={} was asked", self.mode.name());
        if !saw_certificate {
            return format!("{asked}: does the server offer TLS (ssl = on in postgresql.conf), 1.2 or newer?");
        }
        let wrong_name = matches!(
            rustls_error(e),
            Some(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
            ))
        );
        match &self.verify {
            Verify::Nothing => format!("{asked}: check the server's certificate and key (ssl_cert_file, ssl_key_file)"),
            Verify::Full(_) if wrong_name => {
                format!("{asked}: connect to the server by a host name its certificate holds")
            }
            Verify::Chain(Roots::System) | Verify::Full(Roots::System) => format!(
                "{asked}: is the server's certificate signed by a CA the system trusts? \
                 If not, name its CA with sslrootcert=/path/ca.pem"
            ),
            Verify::Chain(Roots::File(path)) | Verify::Full(Roots::File(path)) => {
                format!("{asked}: is the server's certificate signed by a CA certificate in {}?", path.display())
            }
        }
    }
}

/// The rustls error behind a failed handshake, if that is what failed it.
fn rustls_error(e: &postgres::Error) -> Option<&rustls::Error> {
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        // tokio-rustls hands it on inside an I/O error.
        let inner = c.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()).map_or(c, |inner| inner as _);
        if let Some(tls) = inner.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        cause = c.source();
    }
    None
}

/// A TLS error rather than one of the connection or the server; the client's `Display` shows
/// only its kind, the cause comes after it.
fn is_tls_error(e: &postgres::Error) -> bool {
    e.to_string() == "error performing TLS handshake"
}

/// The TLS side of a connection: ring as the crypto provider, whatever else the process has
/// installed, and a verifier for what `verify` asks that records that a server sent a certificate.
fn connector(verify: &Verify, saw_certificate: &Arc<AtomicBool>) -> Result<MakeRustlsConnect, StoreError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let webpki = |roots: &Roots| -> Result<Arc<WebPkiServerVerifier>, StoreError> {
        WebPkiServerVerifier::builder_with_provider(load_roots(roots)?, provider.clone()).build().map_err(|e| {
            StoreError::new(ErrorKind::Open, format!("cannot verify PostgreSQL servers' certificates: {e}"))
        })
    };
    let verifier = CertVerifier {
        webpki: match verify {
            Verify::Nothing => None,
            Verify::Chain(roots) | Verify::Full(roots) => Some(webpki(roots)?),
        },
        check_name: matches!(verify, Verify::Full(_)),
        algorithms: provider.signature_verification_algorithms,
        saw_certificate: saw_certificate.clone(),
    };
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    // What PostgreSQL 17 expects with sslnegotiation=direct; older servers ignore it.
    config.alpn_protocols = vec![b"postgresql".to_vec()];
    Ok(MakeRustlsConnect::new(config))
}

/// The system's CA certificates, read once.
static SYSTEM_ROOTS: LazyLock<Result<Arc<RootCertStore>, String>> = LazyLock::new(|| {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(found.certs);
    if roots.is_empty() {
        let errors: Vec<String> = found.errors.iter().map(|e| e.to_string()).collect();
        return Err(format!(
            "found no CA certificates of the system{}; install them (the ca-certificates package), \
             or name the server's CA with sslrootcert=/path/ca.pem",
            match errors.is_empty() {
                true => String::new(),
                false => format!(" ({})", errors.join("; ")),
            }
        ));
    }
    Ok(Arc::new(roots))
});

fn load_roots(roots: &Roots) -> Result<Arc<RootCertStore>, StoreError> {
    let path = match roots {
        Roots::System => return SYSTEM_ROOTS.clone().map_err(|why| StoreError::new(ErrorKind::Open, why)),
        Roots::File(path) => path,
    };
    let unusable = |why: String| {
        StoreError::new(
            ErrorKind::Open,
            format!(
                "sslrootcert {}: {why}; name a PEM file of the CA certificates that sign the server's",
                path.display()
            ),
        )
    };
    let pem = std::fs::read(path).map_err(|e| unusable(format!("cannot read it ({e})")))?;
    let mut store = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| unusable(format!("not PEM ({e})")))?;
        store.add(cert).map_err(|e| unusable(format!("holds an unusable certificate ({e})")))?;
    }
    if store.is_empty() {
        return Err(unusable("holds no certificate (-----BEGIN CERTIFICATE-----)".to_string()));
    }
    Ok(Arc::new(store))
}

/// Checks what `sslmode` asks of the server's certificate. The handshake's signatures are
/// verified in every mode, so the server holds the key of the certificate it sent.
#[derive(Debug)]
struct CertVerifier {
    /// `None` accepts any certificate: `prefer` and `require` without `sslrootcert`.
    webpki: Option<Arc<WebPkiServerVerifier>>,
    /// Whether the certificate must name the host (`verify-full`).
    check_name: bool,
    algorithms: WebPkiSupportedAlgorithms,
    saw_certificate: Arc<AtomicBool>,
}

impl ServerCertVerifier for CertVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.saw_certificate.store(true, Ordering::Relaxed);
        let Some(webpki) = &self.webpki else { return Ok(ServerCertVerified::assertion()) };
        match webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            // The name is checked last, once the chain is good.
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.check_name => Ok(ServerCertVerified::assertion()),
            verified => verified,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
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
            .query_opt("SELECT generation, state, host FROM checkpoints WHERE source = $1", &[&source])
            .map_err(self.error())?;
        Ok(row
            .map(|row| Checkpoint { generation: row.get(0), state: row.get(1), host: row.get(2) })
            .unwrap_or_default())
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
        let row = tx
            .query_one("SELECT generation, host FROM checkpoints WHERE source = $1 FOR UPDATE", &[&source])
            .map_err(err)?;
        let (generation, owner): (i64, Option<String>) = (row.get(0), row.get(1));
        if let Some(owner) = owner.filter(|owner| owner != commit.host) {
            return Err(StoreError::owned(source, &owner, commit.host));
        }
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
            "UPDATE checkpoints SET generation = $2, state = $3, updated_at = $4, host = $5 WHERE source = $1",
            &[&source, &(generation + 1), &commit.state, &commit.ingested_at, &commit.host],
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
            "UPDATE checkpoints SET state = ''::BYTEA, generation = generation + 1, host = NULL WHERE source = $1",
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
            ("postgres://mf:s3cret@/m", "needs a host"),
            ("postgres://mf:s3cret@db/m?bogus=1", "not a usable PostgreSQL URL"),
            ("postgres://mf:s3cret@db/m?sslmode=allow", "sslmode=allow is not supported"),
            ("postgres://mf:s3cret@db/m?sslmode=verify_full", "use disable, prefer, require, verify-ca or verify-full"),
            ("postgres://mf:s3cret@db/m?sslrootcert=system&sslmode=require", "use verify-full"),
            ("postgres://mf:s3cret@db/m?sslrootcert=", "sslrootcert is empty"),
            ("postgres://mf:s3cret@db/m?sslcert=/etc/mf.pem", "no client certificate"),
            ("postgres://mf:s3cret@db/m?sslnegotiation=direct", "sslnegotiation=direct needs"),
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

    #[test]
    fn tls_parameters_are_taken_out_of_the_url() {
        let (rest, params) = take_tls_params(
            "postgres://mf:p%40ss@db/m?sslmode=verify-full&application_name=x&sslrootcert=%2Fetc%2Fca.pem",
        )
        .unwrap();
        assert_eq!(rest, "postgres://mf:p%40ss@db/m?application_name=x");
        let root_cert = Some(Roots::File("/etc/ca.pem".into()));
        assert_eq!(params, TlsParams { mode: Some(TlsMode::VerifyFull), root_cert });
        // The last of a parameter counts, as in the rest of the URL.
        let (rest, params) = take_tls_params("postgres://db/m?sslmode=require&sslmode=disable").unwrap();
        assert_eq!((rest.as_str(), params.mode), ("postgres://db/m", Some(TlsMode::Disable)));
        let (rest, params) = take_tls_params("postgres://mf@db/m?password=s3cret").unwrap();
        assert_eq!((rest.as_str(), params), ("postgres://mf@db/m?password=s3cret", TlsParams::default()));
        assert_eq!(take_tls_params("postgres://db").unwrap(), ("postgres://db".to_string(), TlsParams::default()));
    }

    #[test]
    fn sslmode_and_sslrootcert_resolve_as_in_libpq() {
        let file = || Some(Roots::File("ca.pem".into()));
        let resolve = |mode, root_cert| TlsParams { mode, root_cert }.resolve();
        let tls = |mode, verify| Ok(Tls { mode, verify });
        let ca = Roots::File("ca.pem".into());
        use {TlsMode::*, Verify::*};
        assert_eq!(resolve(None, None), tls(Prefer, Nothing));
        assert_eq!(resolve(Some(Disable), file()), tls(Disable, Nothing));
        assert_eq!(resolve(Some(Require), None), tls(Require, Nothing));
        // A root certificate makes the weak modes check the chain, as libpq does.
        assert_eq!(resolve(None, file()), tls(Prefer, Chain(ca.clone())));
        assert_eq!(resolve(Some(Require), file()), tls(Require, Chain(ca.clone())));
        assert_eq!(resolve(Some(VerifyCa), None), tls(VerifyCa, Chain(Roots::System)));
        assert_eq!(resolve(Some(VerifyCa), file()), tls(VerifyCa, Chain(ca.clone())));
        assert_eq!(resolve(Some(VerifyFull), None), tls(VerifyFull, Full(Roots::System)));
        assert_eq!(resolve(Some(VerifyFull), file()), tls(VerifyFull, Full(ca)));
        assert_eq!(resolve(None, Some(Roots::System)), tls(VerifyFull, Full(Roots::System)));
        assert!(resolve(Some(VerifyCa), Some(Roots::System)).unwrap_err().contains("use verify-full"));
        for (name, mode) in TlsMode::NAMES {
            assert_eq!(TlsMode::parse(name), Ok(mode));
            assert_eq!(mode.name(), name);
        }
    }

    #[test]
    fn unreadable_root_certificates_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no certificate here\n").unwrap();
        for (path, says) in [(&missing, "cannot read it"), (&empty, "holds no certificate")] {
            let url = format!("postgres://mf:s3cret@127.0.0.1:1/m?sslmode=verify-full&sslrootcert={}", path.display());
            let err = PgStore::open(&url, None).err().unwrap();
            assert_eq!(err.kind(), ErrorKind::Open, "{err}");
            let text = err.to_string();
            assert!(text.starts_with(&format!("sslrootcert {}: {says}", path.display())), "{text}");
            assert!(!text.contains("s3cret"), "{text}");
        }
    }

    #[test]
    fn the_local_socket_ignores_sslmode() {
        // libpq ignores sslmode on the local socket: verify-full there connects, or fails, as plain.
        let err = PgStore::open("postgres://mf@%2Fnonexistent/m?sslmode=verify-full&sslrootcert=/nonexistent", None)
            .err()
            .unwrap();
        assert!(err.to_string().contains("is the server running"), "{err}");
    }

    #[test]
    fn a_server_without_tls_is_named_as_such() {
        // Answers the request for TLS with "no", as a server with ssl = off does.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            use std::io::{Read, Write};
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = [0; 8];
            stream.read_exact(&mut request).unwrap();
            stream.write_all(b"N").unwrap();
        });
        let err = PgStore::open(&format!("postgres://mf@127.0.0.1:{port}/m?sslmode=require"), None).err().unwrap();
        server.join().unwrap();
        let text = err.to_string();
        assert_eq!(err.kind(), ErrorKind::Open, "{text}");
        assert!(
            text.ends_with(
                "sslmode=require was asked: does the server offer TLS (ssl = on in postgresql.conf), 1.2 or newer?"
            ),
            "{text}"
        );
    }
}
