//! `[[sink]] type = "email"`: the weekly digest admins read, sent through an SMTP server.
//!
//! A digest is one message: `multipart/alternative` with a plain-text part for terminal mail
//! clients and an HTML part for everything else (see [`digest`] for why it is all tables), with
//! optional PNG charts as inline `cid:` images and optional attachments: the HTML dashboard and
//! the JSON report.
//!
//! A digest must not vanish silently. A send that fails (DNS, refused connection, TLS, login, a
//! 4xx or 5xx reply) is an error naming the server and its reply, and with `spool_dir` set the
//! message is kept there as an `.eml` file that `mailflow digest --resend` sends later.
//!
//! # Layout
//! - [`EmailConfig`], [`build`], [`EmailSink`]: options, constructor, and composing, sending and
//!   spooling.
//! - [`digest`]: subject, text and HTML from a report.
//! - [`chart`]: the optional PNG charts.

pub mod chart;
pub mod digest;

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::Utc;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{Address, Message, SmtpTransport, Transport};
use mailflow_component::net::{error_chain, is_loopback};
use mailflow_component::output::{file_name_for, write_atomically};
use mailflow_component::{Sink, SinkError};
use mailflow_config::{ComponentSection, ConfigError, Secret};
use mailflow_core::Report;
use serde::Deserialize;

use crate::digest::{DEFAULT_SUBJECT, Look, Templates};

/// Options of an `email` sink.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// The SMTP server to hand the digest to (your relay or submission server).
    pub smtp_host: String,
    /// Its port; by default 587 with `starttls`, 465 with `tls`, 25 with `none`.
    pub smtp_port: Option<u16>,
    /// How the connection is protected.
    #[serde(default)]
    pub tls: TlsMode,
    /// Log in as this user (AUTH PLAIN or LOGIN); needs a password.
    pub username: Option<String>,
    /// The password, from the environment: `password = "${SMTP_PASSWORD}"`.
    pub password: Option<Secret>,
    /// Or from a file (one trailing newline is dropped).
    pub password_file: Option<PathBuf>,
    /// A PEM file with the CA certificate(s) that signed the server's certificate, when it is not
    /// signed by one the system trusts.
    pub ca_file: Option<PathBuf>,
    /// Check the server's certificate against the system's CAs (and `ca_file`). Turning it off
    /// lets anyone on the path read the digest and the password: a last resort for a server whose
    /// certificate cannot be fixed.
    #[serde(default = "default_true")]
    pub verify_certificate: bool,
    /// Check that the certificate is for `smtp_host`.
    #[serde(default = "default_true")]
    pub verify_hostname: bool,
    /// Give up on a server that does not answer for this long.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// The sender, `"mailflow <mailflow@example.com>"` or a bare address.
    pub from: String,
    /// Recipients; at least one.
    pub to: Vec<String>,
    #[serde(default)]
    pub cc: Vec<String>,
    /// The subject, a template with `inbound`, `outbound`, `tls`, `insights`, `insight_count`,
    /// `sources_failed`, `range`, `range_long` and `title`.
    pub subject: Option<String>,
    /// The heading of the digest.
    #[serde(default = "default_title")]
    pub title: String,
    /// Connectors listed per direction, busiest first.
    #[serde(default = "default_top_connectors")]
    pub top_connectors: usize,
    /// Draw messages per day as PNG images (inline, `cid:`) instead of table bars.
    #[serde(default)]
    pub png_charts: bool,
    /// Attach the HTML dashboard page.
    #[serde(default)]
    pub attach_html: bool,
    /// Attach the JSON report.
    #[serde(default)]
    pub attach_json: bool,
    /// Keep digests that could not be sent here, for `mailflow digest --resend`.
    pub spool_dir: Option<PathBuf>,
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TlsMode {
    /// Plain connection upgraded with STARTTLS, which must succeed (port 587 or 25).
    #[default]
    Starttls,
    /// TLS from the first byte (SMTPS, port 465).
    Tls,
    /// No encryption; allowed only to a server on this machine (loopback).
    None,
}

impl TlsMode {
    fn default_port(self) -> u16 {
        match self {
            TlsMode::Starttls => 587,
            TlsMode::Tls => 465,
            TlsMode::None => 25,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            TlsMode::Starttls => "STARTTLS",
            TlsMode::Tls => "TLS",
            TlsMode::None => "no TLS",
        }
    }
}

fn default_true() -> bool {
    true
}

fn default_timeout_secs() -> u64 {
    60
}

fn default_title() -> String {
    "Mail flow".to_string()
}

fn default_top_connectors() -> usize {
    10
}

/// Builds the sink from its config section (the registry's entry point).
pub fn build(section: &ComponentSection) -> Result<Box<dyn Sink>, ConfigError> {
    Ok(Box::new(EmailSink::from_section(section)?))
}

/// A spooled digest sent again: its file and the server's reply, or why it is still spooled.
pub type Resent = (PathBuf, Result<String, String>);

/// A configured email sink: composes digests, sends them, spools the ones it could not send.
pub struct EmailSink {
    name: String,
    config: EmailConfig,
    port: u16,
    from: Mailbox,
    to: Vec<Mailbox>,
    cc: Vec<Mailbox>,
    credentials: Option<Credentials>,
    ca: Option<Vec<u8>>,
    templates: Templates,
    look: Look,
}

impl EmailSink {
    pub fn from_section(section: &ComponentSection) -> Result<EmailSink, ConfigError> {
        let mut config: EmailConfig = section.options()?;
        let host = config.smtp_host.trim();
        if host.is_empty() {
            return Err(section.error("`smtp_host` must name the SMTP server"));
        }
        if config.tls == TlsMode::None && !is_loopback(host) {
            return Err(section.error(format!(
                "`tls = \"none\"` would send the digest (and any password) in clear text to {host}; it is allowed \
                 only to a server on this machine (localhost, 127.0.0.1, ::1). Use \"starttls\" or \"tls\""
            )));
        }
        let mailbox = |key: &str, text: &str| {
            text.parse::<Mailbox>()
                .map_err(|e| section.error(format!("`{key}` \"{text}\" is not an email address: {e}")))
        };
        let from = mailbox("from", &config.from)?;
        if config.to.is_empty() {
            return Err(section.error("`to` must list at least one recipient"));
        }
        let to = config.to.iter().map(|t| mailbox("to", t)).collect::<Result<Vec<_>, _>>()?;
        let cc = config.cc.iter().map(|t| mailbox("cc", t)).collect::<Result<Vec<_>, _>>()?;
        let password = section.secret("password", config.password.take(), config.password_file.as_deref())?;
        if config.username.as_deref().is_some_and(|u| u.trim().is_empty()) {
            return Err(section.error("`username` must not be empty; leave it out to send without a login"));
        }
        let credentials = match (&config.username, password) {
            (Some(user), Some(password)) => Some(Credentials::new(user.clone(), password.expose().to_string())),
            (None, None) => None,
            (Some(_), None) => return Err(section.error("`username` needs `password` or `password_file`")),
            (None, Some(_)) => return Err(section.error("a password needs `username`")),
        };
        let ca = match &mut config.ca_file {
            Some(path) => {
                *path = section.resolve_path(path);
                let pem = std::fs::read(&*path)
                    .map_err(|e| section.error(format!("`ca_file` {} cannot be read: {e}", path.display())))?;
                let has_certificate = String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----");
                if !has_certificate || Certificate::from_pem(&pem).is_err() {
                    return Err(section.error(format!("`ca_file` {} holds no PEM certificate", path.display())));
                }
                Some(pem)
            }
            None => None,
        };
        if let Some(dir) = &mut config.spool_dir {
            *dir = section.resolve_path(dir);
        }
        if config.tls == TlsMode::None && (!config.verify_certificate || !config.verify_hostname) {
            return Err(section.error(
                "`verify_certificate` and `verify_hostname` need `tls`; with `tls = \"none\"` nothing is verified",
            ));
        }
        for (key, on) in
            [("verify_certificate", config.verify_certificate), ("verify_hostname", config.verify_hostname)]
        {
            if !on {
                tracing::warn!(sink = %section.name, "`{key} = false`: the connection to {host} can be intercepted");
            }
        }
        if config.timeout_secs == 0 {
            return Err(section.error("`timeout_secs` must be at least 1"));
        }
        let subject = config.subject.clone().unwrap_or_else(|| DEFAULT_SUBJECT.to_string());
        let templates = Templates::new(&subject).map_err(|e| section.error(e))?;
        let look =
            Look { title: config.title.clone(), top_connectors: config.top_connectors, png_charts: config.png_charts };
        // Render once now, so a misspelt variable in `subject` fails `mailflow check`, not Monday's run.
        templates.render(&mailflow_core::report::sample(), &look).map_err(|e| section.error(e))?;
        Ok(EmailSink {
            name: section.name.clone(),
            port: config.smtp_port.unwrap_or(config.tls.default_port()),
            from,
            to,
            cc,
            credentials,
            ca,
            templates,
            look,
            config,
        })
    }

    /// The envelope's recipients: `to`, then `cc`.
    fn recipients(&self) -> impl Iterator<Item = Address> + '_ {
        self.to.iter().chain(&self.cc).map(|m| m.email.clone())
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `host:port (STARTTLS)`, as errors name the server.
    pub fn server(&self) -> String {
        format!("{}:{} ({})", self.config.smtp_host, self.port, self.config.tls.describe())
    }

    /// The whole message (RFC 5322) for `report`, as it would be sent.
    pub fn compose(&self, report: &Report) -> Result<Vec<u8>, SinkError> {
        let digest = self.templates.render(report, &self.look).map_err(SinkError::Other)?;
        let plain = MultiPart::alternative().singlepart(SinglePart::plain(digest.text));
        let html = SinglePart::html(digest.html);
        let alternative = if digest.images.is_empty() {
            plain.singlepart(html)
        } else {
            // The images belong to the HTML part: multipart/related inside the alternative.
            let mut related = MultiPart::related().singlepart(html);
            for (id, png) in digest.images {
                related = related.singlepart(Attachment::new_inline(id).body(png, content_type("image/png")));
            }
            plain.multipart(related)
        };
        let stem = format!("mailflow-{}-to-{}", report.range.from, report.range.to);
        let mut attachments = Vec::new();
        if self.config.attach_html {
            let mut page = mailflow_sink_html::HtmlConfig::new(format!("{stem}.html"));
            page.title = self.look.title.clone();
            let html = mailflow_sink_html::Templates::new(None).render(report, &page).map_err(SinkError::Other)?;
            attachments.push(Attachment::new(format!("{stem}.html")).body(html, ContentType::TEXT_HTML));
        }
        if self.config.attach_json {
            let json = serde_json::to_vec_pretty(report).map_err(|e| SinkError::Other(e.to_string()))?;
            attachments.push(Attachment::new(format!("{stem}.json")).body(json, content_type("application/json")));
        }
        let body = if attachments.is_empty() {
            alternative
        } else {
            attachments.into_iter().fold(MultiPart::mixed().multipart(alternative), |m, a| m.singlepart(a))
        };
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(digest.subject)
            .date_now()
            .message_id(None)
            .user_agent(format!("mailflow/{}", env!("CARGO_PKG_VERSION")))
            // RFC 3834: no vacation replies or bounces to a robot.
            .raw_header(HeaderValue::new(HeaderName::new_from_ascii_str("Auto-Submitted"), "auto-generated".into()));
        for m in &self.to {
            builder = builder.to(m.clone());
        }
        for m in &self.cc {
            builder = builder.cc(m.clone());
        }
        let message =
            builder.multipart(body).map_err(|e| SinkError::Other(format!("cannot compose the digest: {e}")))?;
        Ok(message.formatted())
    }

    /// Sends a composed message; returns the server's reply.
    pub fn send(&self, message: &[u8]) -> Result<String, String> {
        let envelope = lettre::address::Envelope::new(Some(self.from.email.clone()), self.recipients().collect())
            .map_err(|e| format!("cannot address the digest: {e}"))?;
        let transport = self.transport()?;
        let response = transport.send_raw(&envelope, message).map_err(|e| self.describe(&e))?;
        let reply = response.message().collect::<Vec<_>>().join(" ");
        Ok(format!("{} {}", u16::from(response.code()), mailflow_core::format::printable(&reply)))
    }

    fn transport(&self) -> Result<SmtpTransport, String> {
        let host = self.config.smtp_host.trim();
        let tls = match self.config.tls {
            TlsMode::None => Tls::None,
            mode => {
                let mut params = TlsParameters::builder(host.to_string());
                if let Some(pem) = &self.ca {
                    let cert = Certificate::from_pem(pem).map_err(|e| format!("`ca_file`: {e}"))?;
                    params = params.add_root_certificate(cert);
                }
                let params = params
                    .dangerous_accept_invalid_certs(!self.config.verify_certificate)
                    .dangerous_accept_invalid_hostnames(!self.config.verify_hostname)
                    .build_rustls()
                    .map_err(|e| format!("cannot set up TLS: {e}"))?;
                if mode == TlsMode::Tls { Tls::Wrapper(params) } else { Tls::Required(params) }
            }
        };
        let mut builder = SmtpTransport::builder_dangerous(host)
            .port(self.port)
            .tls(tls)
            .timeout(Some(Duration::from_secs(self.config.timeout_secs)));
        if let Some(credentials) = &self.credentials {
            builder = builder.credentials(credentials.clone());
        }
        Ok(builder.build())
    }

    /// What went wrong, in words an admin can act on, with the server's own reply.
    fn describe(&self, e: &lettre::transport::smtp::Error) -> String {
        let code = e.status().map(u16::from);
        let chain = error_chain(e);
        let what = if code == Some(530) && chain.contains("STARTTLS") {
            "the server accepts mail only after STARTTLS; use `tls = \"starttls\"`".to_string()
        } else if code == Some(530) && self.credentials.is_none() {
            "the server requires a login; set `username` and `password_file` (or `password`)".to_string()
        } else if matches!(code, Some(530 | 534 | 535 | 538)) {
            "the server refused the login; check `username` and the password".to_string()
        } else if chain.contains("authentication mechanism") {
            "the server offers no login method mailflow speaks (PLAIN or LOGIN) on this connection".to_string()
        } else if e.is_permanent() {
            "the server refused the digest".to_string()
        } else if e.is_transient() {
            "the server deferred the digest (a temporary failure; send it again later)".to_string()
        } else if is_timeout(e) {
            // A STARTTLS client waits for a greeting an SMTPS server never sends.
            let hint = if self.port == 465 && self.config.tls != TlsMode::Tls {
                " (port 465 is SMTPS: use `tls = \"tls\"`)"
            } else {
                ""
            };
            format!("no answer within {} s{hint}", self.config.timeout_secs)
        } else if self.config.tls == TlsMode::Tls && has_any(&chain, &["InvalidContentType", "corrupt message"]) {
            "the server does not speak TLS from the first byte on this port; use `tls = \"starttls\"` (ports 587 \
             and 25) or the SMTPS port (465)"
                .to_string()
        } else if let Some(why) = certificate_problem(&chain, &self.config.smtp_host, self.config.ca_file.as_deref()) {
            format!("TLS failed: {why}")
        } else if e.is_tls() {
            "TLS failed; check `tls` (\"tls\" for port 465, \"starttls\" for 587 and 25)".to_string()
        } else if chain.contains("STARTTLS") {
            "the server does not offer STARTTLS; use `tls = \"tls\"` if it speaks TLS from the start (port 465)"
                .to_string()
        } else {
            "cannot reach the server".to_string()
        };
        format!("cannot send the digest through {}: {what}: {chain}", self.server())
    }

    /// This sink's spool folder: `spool_dir/<sink name>/`, so sinks sharing a `spool_dir` never
    /// send each other's digests.
    pub fn spool_dir(&self) -> Option<PathBuf> {
        self.config.spool_dir.as_ref().map(|dir| dir.join(file_name_for(&self.name)))
    }

    /// Keeps a message that could not be sent; returns its path.
    pub fn spool(&self, message: &[u8]) -> Result<Option<PathBuf>, SinkError> {
        let Some(dir) = self.spool_dir() else { return Ok(None) };
        // Digests hold the site's traffic: readable by the service's user only.
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(&dir).map_err(|source| SinkError::Io { path: dir.clone(), source })?;
        let path = dir.join(format!("{}.eml", Utc::now().format("%Y%m%dT%H%M%S%.6fZ")));
        write_atomically(&path, message)?;
        Ok(Some(path))
    }

    /// Sends every message this sink spooled, oldest first; a sent one is removed. Each is locked
    /// (`flock`) while it is sent, so two resends at once never send one twice, and a resend that
    /// dies half way leaves nothing stuck: the lock goes with the process. Messages another
    /// process is sending are left to it and not listed.
    pub fn resend_spooled(&self) -> Result<Vec<Resent>, SinkError> {
        let Some(dir) = self.spool_dir() else { return Ok(Vec::new()) };
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(SinkError::Io { path: dir, source }),
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect();
        paths.sort();
        Ok(paths.into_iter().filter_map(|path| Some((path.clone(), self.resend_one(&path)?))).collect())
    }

    /// Sends one spooled message; `None` if another process has it (or has sent it).
    fn resend_one(&self, path: &Path) -> Option<Result<String, String>> {
        let mut file = match std::fs::File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => return Some(Err(format!("cannot read it: {e}"))),
        };
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return None,
            Err(std::fs::TryLockError::Error(e)) => return Some(Err(format!("cannot lock it: {e}"))),
        }
        // Another resend may have sent and removed it between our open and our lock.
        if !same_file(&file, path) {
            return None;
        }
        let mut message = Vec::new();
        if let Err(e) = std::io::Read::read_to_end(&mut file, &mut message) {
            return Some(Err(format!("cannot read it: {e}")));
        }
        Some(self.send(&message).and_then(|reply| {
            std::fs::remove_file(path)
                .map_err(|e| format!("sent, but cannot remove it (remove it by hand, or it is sent again): {e}"))?;
            Ok(reply)
        }))
    }
}

/// Whether `path` still names the file open as `file`.
fn same_file(file: &std::fs::File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

impl Sink for EmailSink {
    fn write(&self, report: &Report) -> Result<String, SinkError> {
        let message = self.compose(report)?;
        tracing::info!(sink = %self.name, server = %self.server(), bytes = message.len(), "sending the digest");
        match self.send(&message) {
            Ok(reply) => {
                let mut done = format!(
                    "sent the digest to {} through {}: {reply}",
                    self.recipients().map(|a| a.to_string()).collect::<Vec<_>>().join(", "),
                    self.server()
                );
                // The server takes mail again: send what failed before.
                let resent = self.resend_spooled().unwrap_or_else(|e| {
                    tracing::error!(sink = %self.name, "cannot read the spooled digests: {e}");
                    Vec::new()
                });
                let sent = resent.iter().filter(|(_, r)| r.is_ok()).count();
                if !resent.is_empty() {
                    done.push_str(&format!("; and {sent} of {} spooled digests", resent.len()));
                }
                for (path, result) in resent {
                    if let Err(e) = result {
                        tracing::error!(sink = %self.name, path = %path.display(), "a spooled digest is still not sent: {e}");
                    }
                }
                Ok(done)
            }
            Err(error) => Err(SinkError::Other(match self.spool(&message) {
                Ok(Some(path)) => format!(
                    "{error}; the digest is kept in {} and `mailflow digest --resend` sends it again",
                    path.display()
                ),
                Ok(None) => format!("{error}; set `spool_dir` to keep digests that could not be sent"),
                Err(spool) => format!("{error}; and it could not be kept: {spool}"),
            })),
        }
    }
}

fn content_type(mime: &str) -> ContentType {
    ContentType::parse(mime).expect("a valid MIME type")
}

/// What is wrong with the server's certificate, from rustls's error, and what to do.
fn certificate_problem(chain: &str, host: &str, ca_file: Option<&Path>) -> Option<String> {
    let fix = "or, as a last resort, set `verify_certificate = false`";
    // rustls's words for it, as Debug names or Display sentences depending on the case.
    let has = |words: &[&str]| has_any(chain, words);
    // BadSignature: an issuer of the right name but another key, i.e. another CA of that name.
    let why = if has(&["UnknownIssuer", "BadSignature"]) {
        match ca_file {
            Some(file) => format!(
                "the server's certificate is signed by a CA that is neither in `ca_file` ({}) nor trusted by this \
                 system; put the CA that signed it there, {fix}",
                file.display()
            ),
            None => format!(
                "the server's certificate is signed by a CA this system does not trust; set `ca_file` to that CA, {fix}"
            ),
        }
    } else if has(&["NotValidForName", "not valid for name"]) {
        format!(
            "the server's certificate is not for \"{host}\"; set `smtp_host` to a name on the certificate, or \
             set `verify_hostname = false`"
        )
    } else if has(&["Expired", "expired", "NotValidYet", "not valid yet"]) {
        format!("the server's certificate has expired or is not valid yet; renew it, {fix}")
    } else if chain.contains("CaUsedAsEndEntity") {
        format!(
            "the server presents a CA certificate as its own (as `openssl req -x509` makes unless given \
             `-addext basicConstraints=critical,CA:FALSE`), which is refused; give the server a certificate with \
             CA:FALSE, {fix}"
        )
    } else if chain.contains("UnsupportedCertVersion") {
        // rustls cannot parse these at all, so `verify_certificate = false` would not help.
        "the server's certificate is X.509 version 1, which mailflow's TLS library cannot read at all; give the \
         server a version 3 certificate"
            .to_string()
    } else if chain.to_lowercase().contains("certificate") {
        format!("the server's certificate was refused; check it, or set `ca_file` to the CA that signed it, {fix}")
    } else {
        return None;
    };
    Some(why)
}

fn has_any(text: &str, words: &[&str]) -> bool {
    words.iter().any(|w| text.contains(w))
}

/// A socket timeout: lettre only knows `TimedOut`, but a read timeout on Unix is `WouldBlock`.
fn is_timeout(e: &lettre::transport::smtp::Error) -> bool {
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>()
            && matches!(io.kind(), std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock)
        {
            return true;
        }
        source = s.source();
    }
    false
}
