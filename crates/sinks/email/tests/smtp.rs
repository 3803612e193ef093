//! The digest sent to a real SMTP server on loopback (mailin-embedded, with STARTTLS and AUTH
//! PLAIN, a certificate made for the test), then parsed the way a mail client would.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use mail_parser::{MessageParser, MimeHeaders};
use mailflow_component::Sink;
use mailflow_config::Config;
use mailflow_core::Report;
use mailflow_sink_email::EmailSink;
use mailin_embedded::response::{AUTH_OK, AUTHENTICATION_REQUIRED, INVALID_CREDENTIALS, OK};
use mailin_embedded::{AuthMechanism, Handler, Response, Server, SslConfig};

/// What the server accepted: the envelope, who logged in, and the message.
#[derive(Debug, Clone, Default)]
struct Received {
    from: String,
    to: Vec<String>,
    user: Option<String>,
    data: Vec<u8>,
}

#[derive(Clone, Default)]
struct Recorder {
    accepted: Arc<Mutex<Vec<Received>>>,
    require_login: bool,
    user: Option<String>,
    current: Received,
}

impl Handler for Recorder {
    fn auth_plain(&mut self, _authorization_id: &str, user: &str, password: &str) -> Response {
        if user == "digest" && password == "s3cret pass" {
            self.user = Some(user.to_string());
            AUTH_OK
        } else {
            INVALID_CREDENTIALS
        }
    }

    fn mail(&mut self, _ip: std::net::IpAddr, _domain: &str, _from: &str) -> Response {
        if self.require_login && self.user.is_none() { AUTHENTICATION_REQUIRED } else { OK }
    }

    fn rcpt(&mut self, to: &str) -> Response {
        if to.starts_with("nobody@") {
            Response::custom(550, format!("5.1.1 <{to}>: Recipient address rejected: User unknown"))
        } else {
            OK
        }
    }

    fn data_start(&mut self, _domain: &str, from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.current = Received { from: from.to_string(), to: to.to_vec(), user: self.user.clone(), data: Vec::new() };
        OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.current.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        self.accepted.lock().unwrap().push(std::mem::take(&mut self.current));
        OK
    }
}

/// A server on 127.0.0.1 and a free port, with a certificate for `localhost` (saved as `ca.pem`).
struct SmtpServer {
    addr: SocketAddr,
    accepted: Arc<Mutex<Vec<Received>>>,
    dir: tempfile::TempDir,
}

impl SmtpServer {
    /// With STARTTLS, and AUTH PLAIN offered once TLS is up.
    fn start() -> SmtpServer {
        SmtpServer::start_with(true, false)
    }

    /// `tls`: STARTTLS and AUTH, as a submission server; else plain SMTP that answers MAIL with
    /// 530, as a relay that wants a login does (mailin itself would say 503 to MAIL before AUTH).
    /// `ca_cert`: the server's self-signed certificate says CA:TRUE, as `openssl req -x509` makes.
    fn start_with(tls: bool, ca_cert: bool) -> SmtpServer {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        if ca_cert {
            params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        }
        let cert = params.self_signed(&key).unwrap();
        std::fs::write(dir.path().join("ca.pem"), cert.pem()).unwrap();
        std::fs::write(dir.path().join("key.pem"), key.serialize_pem()).unwrap();
        std::fs::write(dir.path().join("password"), "s3cret pass\n").unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let recorder = Recorder { require_login: !tls, ..Recorder::default() };
        let accepted = recorder.accepted.clone();
        let mut server = Server::new(recorder);
        server.with_name("localhost").with_tcp_listener(listener);
        if tls {
            server
                .with_ssl(SslConfig::SelfSigned {
                    cert_path: dir.path().join("ca.pem").display().to_string(),
                    key_path: dir.path().join("key.pem").display().to_string(),
                })
                .unwrap()
                .with_auth(AuthMechanism::Plain);
        }
        std::thread::spawn(move || server.serve().map_err(|e| e.to_string()));
        SmtpServer { addr, accepted, dir }
    }

    fn accepted(&self) -> Vec<Received> {
        self.accepted.lock().unwrap().clone()
    }

    /// An email sink section for this server; `extra` replaces or adds keys (`-key` removes one).
    fn sink(&self, extra: &str) -> Result<EmailSink, String> {
        sink_config(self.dir.path(), self.addr.port(), extra)
    }
}

fn sink_config(dir: &Path, port: u16, extra: &str) -> Result<EmailSink, String> {
    let mut keys = vec![
        ("name", "\"weekly digest\"".to_string()),
        ("smtp_host", "\"localhost\"".to_string()),
        ("smtp_port", port.to_string()),
        ("ca_file", "\"ca.pem\"".to_string()),
        ("username", "\"digest\"".to_string()),
        ("password_file", "\"password\"".to_string()),
        ("from", "\"mailflow <mailflow@corp.example>\"".to_string()),
        ("to", "[\"admin@corp.example\"]".to_string()),
        ("cc", "[\"noc@corp.example\"]".to_string()),
        ("spool_dir", "\"spool\"".to_string()),
        ("timeout_secs", "10".to_string()),
    ];
    for line in extra.lines().filter(|l| !l.trim().is_empty()) {
        if let Some(key) = line.strip_prefix('-') {
            keys.retain(|(k, _)| *k != key.trim());
            continue;
        }
        let (key, value) = line.split_once('=').unwrap();
        keys.retain(|(k, _)| *k != key.trim());
        keys.push((key.trim(), value.trim().to_string()));
    }
    let body: String = keys.iter().map(|(k, v)| format!("{k} = {v}\n")).collect();
    let text = format!("[[sink]]\ntype = \"email\"\n{body}");
    let config = Config::parse(&text, &dir.join("mailflow.toml"), &|_| None).map_err(|e| e.to_string())?;
    EmailSink::from_section(&config.sinks[0]).map_err(|e| e.to_string())
}

/// The fleet report with a connector name and an insight written by an attacker.
fn hostile_report() -> Report {
    let mut report = mailflow_testkit::fleet_report(7, 6);
    report.connectors[0].name = "<script>alert(1)</script>\u{1b}[31m".to_string();
    if let Some(insight) = report.insights.first_mut() {
        insight.connector = report.connectors[0].name.clone();
        insight.message = "<img src=x onerror=alert(1)> is over 25%".to_string();
    }
    report
}

/// The digests the sink "weekly digest" keeps in `dir/spool`.
fn spooled(dir: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(dir.join("spool/weekly%20digest")) {
        Ok(entries) => entries.map(|e| e.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    }
}

#[test]
fn a_digest_arrives_over_starttls_with_auth_and_reads_right() {
    let server = SmtpServer::start();
    let sink = server.sink("attach_html = true\nattach_json = true\npng_charts = true").unwrap();
    let report = hostile_report();
    let done = sink.write(&report).unwrap();
    assert!(done.contains("admin@corp.example, noc@corp.example"), "{done}");
    assert!(done.contains(&format!("localhost:{} (STARTTLS): 250", server.addr.port())), "{done}");

    let accepted = server.accepted();
    assert_eq!(accepted.len(), 1);
    let received = &accepted[0];
    assert_eq!(received.user.as_deref(), Some("digest"), "logged in (AUTH is offered only after STARTTLS)");
    assert_eq!(received.from, "mailflow@corp.example");
    assert_eq!(received.to, ["admin@corp.example", "noc@corp.example"]);

    let message = MessageParser::default().parse(&received.data).unwrap();
    let inbound = mailflow_core::format::thousands(report.totals.inbound.counters.messages);
    let outbound = mailflow_core::format::thousands(report.totals.outbound.counters.messages);
    let subject = message.subject().unwrap();
    assert!(subject.starts_with(&format!("mailflow: {inbound} in / {outbound} out, ")), "{subject}");
    assert!(subject.ends_with("insights (Nov 23 – Nov 29)"), "{subject}");
    assert_eq!(message.from().unwrap().first().unwrap().address(), Some("mailflow@corp.example"));
    assert_eq!(message.cc().unwrap().first().unwrap().address(), Some("noc@corp.example"));
    assert!(message.message_id().is_some() && message.date().is_some());
    assert_eq!(message.header_raw("Auto-Submitted").map(str::trim), Some("auto-generated"));

    let text = message.body_text(0).unwrap();
    assert!(text.contains(&inbound) && text.contains(&outbound), "{text}");
    assert!(text.contains("\\u{1b}[31m") && !text.contains('\u{1b}'), "control characters are escaped");
    for line in text.lines() {
        assert!(line.chars().count() <= 78, "a line wider than a terminal: {line:?}");
    }

    let html = message.body_html(0).unwrap();
    assert!(html.contains(&inbound) && html.contains(&outbound));
    assert!(html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"), "names are escaped");
    assert!(!html.contains("<script") && !html.contains("<img src=x"), "nothing from a log becomes markup");
    assert!(html.contains("&lt;img src=x onerror=alert(1)&gt; is over 25%"), "{html}");
    for insight in &report.insights {
        let remediation = insight.remediation.replace('\'', "&#x27;").replace('"', "&quot;");
        assert!(html.contains(&remediation), "every insight's remediation: {remediation}");
    }
    for direction in ["inbound", "outbound"] {
        assert!(html.contains(&format!("src=\"cid:daily-{direction}@mailflow\"")), "{direction} chart");
    }

    let parts: Vec<_> = message.parts.iter().collect();
    let inline: Vec<_> = parts.iter().filter(|p| p.content_id().is_some()).collect();
    assert_eq!(inline.len(), 2);
    for part in inline {
        assert_eq!(part.content_type().unwrap().subtype(), Some("png"));
        assert!(part.contents().starts_with(b"\x89PNG\r\n\x1a\n"));
    }
    let attachment = |name: &str| {
        message.attachments().find(|a| a.attachment_name() == Some(name)).unwrap_or_else(|| panic!("{name}"))
    };
    let json: serde_json::Value =
        serde_json::from_slice(attachment("mailflow-2026-11-23-to-2026-11-29.json").contents()).unwrap();
    let expected = serde_json::to_value(&report).unwrap();
    for key in ["range", "totals", "connectors", "sources"] {
        assert!(json[key] == expected[key], "the attached report's {key} differs");
    }
    let page = std::str::from_utf8(attachment("mailflow-2026-11-23-to-2026-11-29.html").contents()).unwrap();
    assert!(page.contains("Content-Security-Policy") && page.contains("application/json"));
}

#[test]
fn a_rejected_recipient_names_the_reply_and_the_digest_waits_in_the_spool() {
    let server = SmtpServer::start();
    let sink = server.sink("to = [\"admin@corp.example\", \"nobody@corp.example\"]").unwrap();
    let e = sink.write(&hostile_report()).unwrap_err().to_string();
    let port = server.addr.port();
    assert!(e.contains(&format!("cannot send the digest through localhost:{port} (STARTTLS)")), "{e}");
    assert!(e.contains("the server refused the digest"), "{e}");
    assert!(e.contains("550") && e.contains("<nobody@corp.example>: Recipient address rejected"), "{e}");
    assert!(e.contains("mailflow digest --resend"), "{e}");
    assert!(server.accepted().is_empty());
    let kept = spooled(server.dir.path());
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(kept[0].extension().unwrap() == "eml");
    // Another sink sharing the spool folder never sends this sink's digests.
    let other = server.sink("name = \"weekly_digest\"").unwrap();
    assert!(other.resend_spooled().unwrap().is_empty());

    // While another mailflow sends it (and holds its lock), a resend leaves it alone.
    let kept_message = std::fs::read(&kept[0]).unwrap();
    let fixed = server.sink("").unwrap();
    let sending = std::fs::File::open(&kept[0]).unwrap();
    sending.try_lock().unwrap();
    assert!(fixed.resend_spooled().unwrap().is_empty());
    drop(sending);

    // Fixed, the spooled digest goes out as it was and leaves the spool.
    let results = fixed.resend_spooled().unwrap();
    assert_eq!(results.len(), 1);
    assert!(results[0].1.as_ref().unwrap().starts_with("250"), "{results:?}");
    assert!(spooled(server.dir.path()).is_empty());
    let accepted = server.accepted();
    assert_eq!(accepted.len(), 1);
    assert_eq!(accepted[0].to, ["admin@corp.example", "noc@corp.example"], "the fixed recipients");
    // SMTP transparency may differ on the wire; the message is the same one.
    let sent = MessageParser::default().parse(&accepted[0].data).unwrap();
    let kept = MessageParser::default().parse(&kept_message).unwrap();
    assert_eq!(sent.message_id(), kept.message_id());
    assert!(sent.subject().unwrap().starts_with("mailflow: "));

    // The next digest that goes out takes the spooled ones with it.
    sink.write(&hostile_report()).unwrap_err();
    assert_eq!(spooled(server.dir.path()).len(), 1);
    let done = fixed.write(&hostile_report()).unwrap();
    assert!(done.ends_with("; and 1 of 1 spooled digests"), "{done}");
    assert!(spooled(server.dir.path()).is_empty());
    assert_eq!(server.accepted().len(), 3);
}

#[test]
fn a_refused_connection_is_an_error_and_the_digest_waits_in_the_spool() {
    let server = SmtpServer::start();
    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let sink = sink_config(server.dir.path(), closed, "smtp_host = \"127.0.0.1\"").unwrap();
    let e = sink.write(&hostile_report()).unwrap_err().to_string();
    assert!(e.contains(&format!("127.0.0.1:{closed} (STARTTLS): cannot reach the server")), "{e}");
    assert!(e.to_lowercase().contains("connection refused"), "{e}");
    assert_eq!(spooled(server.dir.path()).len(), 1);
}

#[test]
fn a_wrong_password_and_an_untrusted_certificate_say_what_to_fix() {
    let server = SmtpServer::start();
    std::fs::write(server.dir.path().join("wrong"), "guess").unwrap();
    let e = server.sink("password_file = \"wrong\"").unwrap().write(&hostile_report()).unwrap_err().to_string();
    assert!(e.contains("the server refused the login; check `username` and the password"), "{e}");
    assert!(e.contains("535"), "{e}");
    assert!(!e.contains("guess"), "the password is never printed: {e}");

    // A CA that did not sign the server's certificate.
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    std::fs::write(server.dir.path().join("other.pem"), other.cert.pem()).unwrap();
    let e = server.sink("ca_file = \"other.pem\"").unwrap().write(&hostile_report()).unwrap_err().to_string();
    assert!(e.contains("TLS failed: the server's certificate is signed by a CA that is neither in `ca_file`"), "{e}");
    assert!(e.contains("other.pem) nor trusted by this system"), "{e}");
    assert!(server.accepted().is_empty());
}

#[test]
fn certificates_as_servers_often_have_them_name_the_fix_and_can_be_let_through() {
    // The certificate is for "localhost", the sink asks for 127.0.0.1.
    let server = SmtpServer::start();
    let by_address = "smtp_host = \"127.0.0.1\"";
    let e = server.sink(by_address).unwrap().write(&hostile_report()).unwrap_err().to_string();
    assert!(e.contains("the server's certificate is not for \"127.0.0.1\"; set `smtp_host` to a name"), "{e}");
    server.sink(&format!("{by_address}\nverify_hostname = false")).unwrap().write(&hostile_report()).unwrap();

    // A self-signed certificate that says CA:TRUE, as `openssl req -x509` makes by default.
    let server = SmtpServer::start_with(true, true);
    let e = server.sink("").unwrap().write(&hostile_report()).unwrap_err().to_string();
    assert!(e.contains("the server presents a CA certificate as its own"), "{e}");
    assert!(e.contains("basicConstraints=critical,CA:FALSE"), "{e}");
    let done = server.sink("verify_certificate = false").unwrap().write(&hostile_report()).unwrap();
    assert!(done.ends_with("and 1 of 1 spooled digests"), "the refused one went too: {done}");
    assert_eq!(server.accepted().len(), 2);
}

#[test]
fn unsafe_or_incomplete_settings_are_config_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("password"), "x").unwrap();
    std::fs::write(dir.path().join("ca.pem"), rcgen::generate_simple_self_signed(vec![]).unwrap().cert.pem()).unwrap();
    for (extra, expected) in [
        ("tls = \"none\"\nsmtp_host = \"smtp.example.com\"", "allowed only to a server on this machine"),
        ("subject = \"{{ inbound \"", "`subject` is not a valid template"),
        ("subject = \"{{ inbund }} in\"", "`subject`: undefined value"),
        ("to = []", "`to` must list at least one recipient"),
        ("username = \"\"", "`username` must not be empty"),
        ("tls = \"none\"\nsmtp_host = \"::1\"\nverify_certificate = false", "need `tls`"),
        ("from = \"not an address\"", "`from` \"not an address\" is not an email address"),
        ("password_file = \"missing\"", "cannot read `password_file`"),
        ("tls = \"starttls-please\"", "unknown variant"),
        ("ca_file = \"password\"", "holds no PEM certificate"),
    ] {
        let e = sink_config(dir.path(), 2525, extra).err().unwrap_or_else(|| panic!("{extra} was accepted"));
        assert!(e.contains(expected), "{extra}: {e}");
        assert!(e.contains("[[sink]] \"weekly digest\" (type \"email\")"), "{e}");
    }
}

#[test]
fn a_server_that_never_answers_and_one_that_wants_a_login_say_so() {
    let server = SmtpServer::start();
    // Accepts the connection, then says nothing.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let sink = sink_config(server.dir.path(), port, "smtp_host = \"127.0.0.1\"\ntimeout_secs = 1").unwrap();
    let started = std::time::Instant::now();
    let e = sink.write(&hostile_report()).unwrap_err().to_string();
    assert!(e.contains("no answer within 1 s"), "{e}");
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    drop(silent);

    // SMTPS to a server that speaks plain SMTP first.
    let e = server.sink("tls = \"tls\"").unwrap().write(&hostile_report()).unwrap_err().to_string();
    assert!(e.contains("the server does not speak TLS from the first byte on this port"), "{e}");

    let relay = SmtpServer::start_with(false, false);
    let anonymous = sink_config(
        server.dir.path(),
        relay.addr.port(),
        "-username\n-password_file\ntls = \"none\"\nsmtp_host = \"127.0.0.1\"",
    )
    .unwrap();
    let e = anonymous.write(&hostile_report()).unwrap_err().to_string();
    assert!(e.contains("the server requires a login; set `username`"), "{e}");
    assert!(e.contains("530"), "{e}");
}

#[test]
fn plain_smtp_to_this_machine_needs_no_tls_and_no_login() {
    let server = SmtpServer::start();
    let dir = server.dir.path();
    let sink = sink_config(dir, 2525, "tls = \"none\"\nsmtp_host = \"127.0.0.1\"").unwrap();
    assert_eq!(sink.server(), "127.0.0.1:2525 (no TLS)");
}
