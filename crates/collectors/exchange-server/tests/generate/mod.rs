//! A generated week of one Exchange server's logs, with the ground truth of every message: what
//! the collector must count. Shared by `tests/realistic.rs` and `benches/exchange.rs`.
//!
//! The server EX01 (10.0.0.5) runs the Front End Transport and Transport services: mail from
//! the internet (TLS 1.2, 1.3 or none) through `Default Frontend EX01`, a partner's mail through
//! `EX01\Partner Inbound` (half of it proxied to the Transport service, which logs its own
//! session with `XPROXYFROM`), an internal application relaying through `EX01\Internal Relay`,
//! mail from the mailboxes to the internet through `Outbound to Internet` and `To Partner`
//! (deferred then delivered, refused, expired), and mail between mailboxes, which never leaves.
//! Every message also writes the internal rows of a real server (AGENTINFO, HAREDIRECT, the
//! intra-organization hop to the mailbox, MSGTRKMD and MSGTRKMS rows), and the protocol logs
//! hold sessions that carried no mail.

#![allow(dead_code)]

use std::collections::BTreeMap;

pub const TRACKING_2013: &str = "date-time,client-ip,client-hostname,server-ip,server-hostname,source-context,connector-id,source,event-id,internal-message-id,message-id,network-message-id,recipient-address,recipient-status,total-bytes,recipient-count,related-recipient-address,reference,message-subject,sender-address,return-path,message-info,directionality,tenant-id,original-client-ip,original-server-ip,custom-data";
pub const EXTRA_2019: &str = ",transport-traffic-type,log-id,schema-version";
pub const PROTOCOL: &str =
    "date-time,connector-id,session-id,sequence-number,local-endpoint,remote-endpoint,event,data,context";

const EX01: &str = "10.0.0.5";
const FRONTEND: &str = r"EX01\Default Frontend EX01";
const HUB: &str = r"EX01\Default EX01";
const PARTNER_IN: &str = r"EX01\Partner Inbound";
const RELAY: &str = r"EX01\Internal Relay";
const INTRA: &str = "Intra-Organization SMTP Send Connector";
const INTERNET: &str = "Outbound to Internet";
const PARTNER_OUT: &str = "To Partner";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    E2013,
    E2019,
}

/// One event the collector must produce.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Truth {
    pub time: i64,
    pub direction: &'static str,
    pub peer: String,
    pub tls: Option<&'static str>,
    pub status: Option<&'static str>,
    pub connector: Option<String>,
    pub recipients: u32,
}

pub struct Week {
    /// Relative path → (time, line) rows and header blocks, written in time order.
    pub files: BTreeMap<String, Vec<(i64, String)>>,
    pub truth: Vec<Truth>,
    /// Messages whose rows span more than an hour (deferred, then delivered or expired).
    pub straddling: usize,
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

pub fn stamp(micros: i64) -> String {
    let t = chrono::DateTime::from_timestamp_micros(micros).unwrap();
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

fn cell(value: &str) -> String {
    if value.contains(',') || value.contains('"') {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_string()
    }
}

const MS: i64 = 1000;
const SEC: i64 = 1_000_000;
const MIN: i64 = 60 * SEC;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;

struct Gen {
    version: Version,
    rng: Rng,
    files: BTreeMap<String, Vec<(i64, String)>>,
    truth: Vec<Truth>,
    sessions: u64,
    messages: u64,
    straddling: usize,
}

struct Msg {
    internal: u64,
    id: String,
    network: String,
    sender: String,
    subject: String,
    size: u64,
    directionality: &'static str,
}

impl Gen {
    fn day(t: i64) -> String {
        chrono::DateTime::from_timestamp_micros(t).unwrap().format("%Y%m%d").to_string()
    }

    fn push(&mut self, folder: &str, prefix: &str, t: i64, line: String) {
        let name = format!("{folder}/{prefix}{}-1.LOG", Self::day(t));
        self.files.entry(name).or_default().push((t, line));
    }

    fn sid(&mut self) -> String {
        self.sessions += 1;
        format!("08DE{:012X}", 0x5A00_0000_0000 + self.sessions)
    }

    fn message(&mut self, sender: &str, subject: &str, directionality: &'static str) -> Msg {
        self.messages += 1;
        let n = self.messages;
        let domain = sender.rsplit('@').next().unwrap_or("x");
        Msg {
            internal: 73_014_440_000 + n,
            id: format!("<{:016X}{:04}@{domain}>", n.wrapping_mul(0x9E37_79B9_7F4A_7C15), n % 10_000),
            network: format!(
                "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
                n * 2_654_435_761 % (1 << 32),
                n % 65_536,
                0x4000 | (n % 4096),
                0x8000 | (n % 16_384),
                n * 97
            ),
            sender: sender.to_string(),
            subject: subject.to_string(),
            size: 2_000 + self.rng.below(400_000),
            directionality,
        }
    }

    /// A tracking row: `fields` by name, the rest from the message.
    #[allow(clippy::too_many_arguments)]
    fn track(
        &mut self,
        file: &str,
        t: i64,
        event: &str,
        source: &str,
        m: &Msg,
        rcpts: &[String],
        fields: &[(&str, String)],
    ) {
        let get = |name: &str| fields.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone());
        let mut row: Vec<String> = Vec::new();
        let header = self.tracking_header();
        for name in header.split(',') {
            let value = get(name).unwrap_or_else(|| match name {
                "date-time" => stamp(t),
                "source" => source.to_string(),
                "event-id" => event.to_string(),
                "internal-message-id" => m.internal.to_string(),
                "message-id" => m.id.clone(),
                "network-message-id" => m.network.clone(),
                "recipient-address" => rcpts.join(";"),
                "recipient-count" => rcpts.len().to_string(),
                "total-bytes" => m.size.to_string(),
                "message-subject" => m.subject.clone(),
                "sender-address" | "return-path" => m.sender.clone(),
                "directionality" => m.directionality.to_string(),
                "transport-traffic-type" => "Email".to_string(),
                "log-id" => format!("{:032x}", (t as u64).wrapping_mul(31) ^ m.internal),
                "schema-version" => "15.02.1544.004".to_string(),
                _ => String::new(),
            });
            row.push(cell(&value));
        }
        self.push("MessageTracking", file, t, row.join(","));
    }

    fn tracking_header(&self) -> String {
        match self.version {
            Version::E2013 => TRACKING_2013.to_string(),
            Version::E2019 => format!("{TRACKING_2013}{EXTRA_2019}"),
        }
    }

    fn schema(&self) -> &'static str {
        match self.version {
            Version::E2013 => "15.00.1497.002",
            Version::E2019 => "15.02.1544.004",
        }
    }

    /// An inbound session of `folder`/RECV: returns the time after it.
    #[allow(clippy::too_many_arguments)]
    fn receive_session(
        &mut self,
        folder: &str,
        t: i64,
        sid: &str,
        connector: &str,
        local: &str,
        remote: &str,
        helo: &str,
        tls: Option<&str>,
        mails: &[(&Msg, &[String])],
        proxy: Option<String>,
    ) -> i64 {
        let mut lines: Vec<(String, String, String)> = Vec::new();
        let mut add = |e: &str, d: String, c: &str| lines.push((e.to_string(), d, c.to_string()));
        add("+", String::new(), "");
        add("*", "SMTPSubmit SMTPAcceptAnyRecipient SMTPAcceptAnySender".into(), "Set Session Permissions");
        add(
            ">",
            "220 EX01.corp.example Microsoft ESMTP MAIL Service ready at Sat, 5 Dec 2026 10:00:00 +0000".into(),
            "",
        );
        add("<", format!("EHLO {helo}"), "");
        add(
            ">",
            "250-EX01.corp.example Hello SIZE 37748736 PIPELINING DSN ENHANCEDSTATUSCODES STARTTLS 8BITMIME".into(),
            "",
        );
        if let Some(version) = tls {
            add("<", "STARTTLS".into(), "");
            add(">", "220 2.0.0 SMTP server ready".into(), "");
            add("*", String::new(), "Sending certificate");
            add("*", "CN=mail.corp.example".into(), "Certificate subject");
            let text = format!(
                "TLS protocol SP_PROT_{version}_SERVER negotiation succeeded using bulk encryption algorithm CALG_AES_256 with strength 256 bits, MAC hash algorithm CALG_SHA_384 with strength 0 bits and key exchange algorithm CALG_ECDHE with strength 384 bits"
            );
            lines.push(("*".into(), String::new(), text));
            lines.push(("<".into(), format!("EHLO {helo}"), String::new()));
            lines.push((">".into(), "250-EX01.corp.example Hello SIZE 37748736 PIPELINING DSN".into(), String::new()));
        }
        if let Some(proxy) = proxy {
            lines.push(("<".into(), proxy, String::new()));
            lines.push((">".into(), "250 XProxyFrom accepted".into(), String::new()));
        }
        for (n, (m, rcpts)) in mails.iter().enumerate() {
            lines.push(("<".into(), format!("MAIL FROM:<{}> SIZE={}", m.sender, m.size), String::new()));
            lines.push(("*".into(), format!("{sid};{};{}", stamp(t), n + 1), "receiving message".into()));
            lines.push((">".into(), "250 2.1.0 Sender OK".into(), String::new()));
            for r in rcpts.iter() {
                lines.push(("<".into(), format!("RCPT TO:<{r}>"), String::new()));
                lines.push((">".into(), "250 2.1.5 Recipient OK".into(), String::new()));
            }
            lines.push(("<".into(), format!("BDAT {} LAST", m.size), String::new()));
            lines.push((
                ">".into(),
                format!("250 2.6.0 {} [InternalId={}, Hostname=EX01.corp.example] {} bytes in 0.1, 120.5 KB/sec Queued mail for delivery", m.id, m.internal, m.size),
                String::new(),
            ));
        }
        lines.push(("<".into(), "QUIT".into(), String::new()));
        lines.push((">".into(), "221 2.0.0 Service closing transmission channel".into(), String::new()));
        lines.push(("-".into(), String::new(), "Remote".into()));
        let mut at = t;
        for (seq, (event, data, context)) in lines.into_iter().enumerate() {
            at += 3 * MS + (seq as i64 % 5) * MS;
            let line = format!(
                "{},{},{sid},{seq},{local},{remote},{event},{},{}",
                stamp(at),
                cell(connector),
                cell(&data),
                cell(&context)
            );
            self.push(folder, "RECV", at, line);
        }
        at
    }

    /// An outbound session on Hub/SEND; `reply` is the server's answer to the data.
    #[allow(clippy::too_many_arguments)]
    fn send_session(
        &mut self,
        t: i64,
        sid: &str,
        connector: &str,
        ip: &str,
        mx: &str,
        tls: Option<&str>,
        m: &Msg,
        rcpts: &[String],
        reply: &str,
    ) -> i64 {
        let mut lines: Vec<(&str, String, String)> = vec![
            ("*", String::new(), "attempting to connect".into()),
            ("+", String::new(), String::new()),
            ("<", format!("220 {mx} ESMTP ready"), String::new()),
            (">", "EHLO EX01.corp.example".into(), String::new()),
            ("<", format!("250-{mx} PIPELINING SIZE 52428800 STARTTLS ENHANCEDSTATUSCODES 8BITMIME"), String::new()),
        ];
        if let Some(version) = tls {
            lines.push((">", "STARTTLS".into(), String::new()));
            lines.push(("<", "220 2.0.0 Ready to start TLS".into(), String::new()));
            lines.push(("*", String::new(), "Received certificate".into()));
            lines.push(("*", format!("CN={mx}"), "Certificate subject".into()));
            lines.push(("*", String::new(), format!("TLS protocol SP_PROT_{version}_CLIENT negotiation succeeded using bulk encryption algorithm CALG_AES_256 with strength 256 bits, MAC hash algorithm CALG_SHA_384 with strength 0 bits and key exchange algorithm CALG_ECDHE with strength 384 bits")));
            lines.push((">", "EHLO EX01.corp.example".into(), String::new()));
            lines.push(("<", format!("250-{mx} PIPELINING SIZE 52428800 ENHANCEDSTATUSCODES"), String::new()));
        }
        lines.push((
            "*",
            String::new(),
            format!("sending message with RecordId {} and InternetMessageId {}", m.internal, m.id),
        ));
        lines.push((">", format!("MAIL FROM:<{}> SIZE={}", m.sender, m.size), String::new()));
        for r in rcpts {
            lines.push((">", format!("RCPT TO:<{r}>"), String::new()));
        }
        lines.push(("<", "250 2.1.0 Ok".into(), String::new()));
        lines.push((">", format!("BDAT {} LAST", m.size), String::new()));
        lines.push(("<", reply.to_string(), String::new()));
        lines.push((">", "QUIT".into(), String::new()));
        lines.push(("-", String::new(), "Local".into()));
        let mut at = t;
        let port = 20_000 + self.rng.below(40_000);
        for (seq, (event, data, context)) in lines.into_iter().enumerate() {
            at += 4 * MS + (seq as i64 % 3) * MS;
            let line = format!(
                "{},{},{sid},{seq},{EX01}:{port},{ip}:25,{event},{},{}",
                stamp(at),
                cell(connector),
                cell(&data),
                cell(&context)
            );
            self.push("Hub", "SEND", at, line);
        }
        at
    }

    fn tls_choice(&mut self, weights: [u64; 3]) -> Option<&'static str> {
        let r = self.rng.below(weights.iter().sum());
        if r < weights[0] {
            Some("TLS1_2")
        } else if r < weights[0] + weights[1] {
            Some("TLS1_3")
        } else {
            None
        }
    }

    fn label(tls: Option<&str>) -> Option<&'static str> {
        match tls {
            Some("TLS1_2") => Some("tls1_2"),
            Some("TLS1_3") => Some("tls1_3"),
            _ => Some("none"),
        }
    }

    fn mailbox_hop(&mut self, t: i64, m: &Msg, rcpts: &[String], original: &str) {
        let sid = self.sid();
        self.track(
            "MSGTRK",
            t,
            "SEND",
            "SMTP",
            m,
            rcpts,
            &[
                ("client-ip", EX01.into()),
                ("client-hostname", "EX01.corp.example".into()),
                ("server-ip", EX01.into()),
                ("server-hostname", "EX01.corp.example".into()),
                ("connector-id", INTRA.into()),
                ("source-context", format!("{sid};250 2.1.5 Recipient OK;ClientSubmitTime:{}", stamp(t))),
                ("recipient-status", rcpts.iter().map(|_| "250 2.1.5 Recipient OK").collect::<Vec<_>>().join(";")),
                ("original-client-ip", original.into()),
                ("message-info", stamp(t)),
            ],
        );
        self.track(
            "MSGTRKMD",
            t + 40 * MS,
            "RECEIVE",
            "SMTP",
            m,
            rcpts,
            &[
                ("client-ip", EX01.into()),
                ("server-ip", EX01.into()),
                ("server-hostname", "EX01.corp.example".into()),
                ("source-context", format!("{sid};{};0", stamp(t))),
                ("connector-id", r"EX01\Default Mailbox Delivery EX01".into()),
            ],
        );
        self.track(
            "MSGTRKMD",
            t + 90 * MS,
            "DELIVER",
            "STOREDRIVER",
            m,
            rcpts,
            &[
                ("server-hostname", "EX01.corp.example".into()),
                ("message-info", stamp(t)),
                (
                    "source-context",
                    "MDB:5a3c1f2e-0000-4000-8000-000000000001, Mailbox:1, Event:123, MessageClass:IPM.Note".into(),
                ),
            ],
        );
    }

    fn noise(&mut self, t: i64, m: &Msg, rcpts: &[String]) {
        self.track("MSGTRK", t, "AGENTINFO", "AGENT", m, rcpts, &[
            ("client-hostname", "EX01".into()),
            ("custom-data", "S:CFA=SUM|SID=08DE000000000000|ET=MAIL FROM|Action=OriginalDomainTrust|Score=0;S:DeliveryPriority=Normal".into()),
        ]);
        self.track(
            "MSGTRK",
            t + 4 * MS,
            "HAREDIRECT",
            "SMTP",
            m,
            rcpts,
            &[
                ("server-hostname", "EX01".into()),
                ("source-context", format!("EX02.corp.example = 250 2.6.0 {} Queued mail for redundancy", m.id)),
            ],
        );
    }

    fn inbound(&mut self, t: i64) {
        let kind = self.rng.below(100);
        let (connector, named) = match kind {
            0..=79 => (FRONTEND, None),
            80..=91 => (PARTNER_IN, Some("Partner Inbound".to_string())),
            _ => (RELAY, Some("Internal Relay".to_string())),
        };
        let n = self.rng.below(250) + 2;
        let (client, helo) = match connector {
            RELAY => (format!("10.1.2.{}", n % 200 + 2), format!("app{}.corp.example", n % 7)),
            PARTNER_IN => (format!("198.51.100.{n}"), "smtp.fabrikam.example".to_string()),
            _ if n.is_multiple_of(9) => (format!("2001:db8:{n:x}::25"), format!("mx{n}.mail{}.example", n % 13)),
            _ => (format!("203.0.113.{n}"), format!("mx{n}.mail{}.example", n % 13)),
        };
        let tls = match connector {
            RELAY => None,
            PARTNER_IN => Some("TLS1_2"),
            _ => self.tls_choice([60, 25, 15]),
        };
        let domain = helo.split_once('.').map_or("x.example", |(_, d)| d).to_string();
        let sender =
            if connector == RELAY { "app@corp.example".to_string() } else { format!("news{}@{domain}", n % 5) };
        let count = 1 + self.rng.below(3) as usize;
        let rcpts: Vec<String> =
            (0..count).map(|i| format!("user{}@corp.example", (n as usize + i * 31) % 400)).collect();
        let subject = if n.is_multiple_of(4) { format!("Invoice {n}, \"final\" copy") } else { format!("Report {n}") };
        let mails = if self.rng.chance(10) { 2 } else { 1 };
        let msgs: Vec<Msg> = (0..mails)
            .map(|_| self.message(&sender, &subject, if connector == RELAY { "Originating" } else { "Incoming" }))
            .collect();
        let sid = self.sid();
        let port = 30_000 + self.rng.below(30_000);
        let remote = if client.contains(':') { format!("[{client}]:{port}") } else { format!("{client}:{port}") };
        let proxied = connector == PARTNER_IN && self.rng.chance(50);
        let refs: Vec<(&Msg, &[String])> = msgs.iter().map(|m| (m, rcpts.as_slice())).collect();
        let end = self.receive_session(
            "FrontEnd",
            t,
            &sid,
            connector,
            &format!("{EX01}:25"),
            &remote,
            &helo,
            tls,
            &refs,
            None,
        );
        let mut hub_sid = None;
        let mut end = end;
        if proxied {
            let hub = self.sid();
            let proxy = format!(
                "XPROXYFROM SID={sid} IP={client} PORT={port} DOMAIN={helo} SEQNUM=1 PERMS=1 AUTHSRC=Anonymous"
            );
            end = self.receive_session(
                "Hub",
                t + 200 * MS,
                &hub,
                HUB,
                &format!("{EX01}:2525"),
                &format!("{EX01}:{}", 40_000 + n),
                "EX01.corp.example",
                Some("TLS1_2"),
                &refs,
                Some(proxy),
            );
            hub_sid = Some(hub);
        }
        for (i, m) in msgs.iter().enumerate() {
            let at = end + 30 * MS + i as i64 * 20 * MS;
            let (client_ip, session, connector_id) = match &hub_sid {
                Some(hub) => (EX01.to_string(), hub.clone(), HUB),
                None => (client.clone(), sid.clone(), connector),
            };
            let custom = format!(
                "S:ProxiedClientIPAddress={client};S:ProxiedClientHostname={helo};S:ProxyHop1=EX01.corp.example({EX01})"
            );
            self.track(
                "MSGTRK",
                at,
                "RECEIVE",
                "SMTP",
                m,
                &rcpts,
                &[
                    ("client-ip", client_ip.clone()),
                    ("client-hostname", helo.clone()),
                    ("server-ip", EX01.into()),
                    ("server-hostname", "EX01".into()),
                    ("source-context", format!("{session};{};{}", stamp(t), i + 1)),
                    ("connector-id", connector_id.into()),
                    ("recipient-status", rcpts.iter().map(|_| "To").collect::<Vec<_>>().join(";")),
                    ("original-client-ip", client.clone()),
                    ("original-server-ip", EX01.into()),
                    ("custom-data", custom),
                ],
            );
            if self.rng.chance(5) {
                // A second row of the same message (a copy after bifurcation): counts once.
                let last = vec![rcpts[rcpts.len() - 1].clone()];
                self.track(
                    "MSGTRK",
                    at + 2 * MS,
                    "RECEIVE",
                    "SMTP",
                    m,
                    &last,
                    &[
                        ("client-ip", client_ip),
                        ("server-ip", EX01.into()),
                        ("source-context", format!("{session};{};{}", stamp(t), i + 1)),
                        ("connector-id", connector_id.into()),
                        ("original-client-ip", client.clone()),
                    ],
                );
            }
            self.noise(at + 5 * MS, m, &rcpts);
            self.mailbox_hop(at + 60 * MS, m, &rcpts, &client);
            let distinct = {
                let mut r: Vec<String> = rcpts.iter().map(|r| r.to_lowercase()).collect();
                r.sort();
                r.dedup();
                r.len() as u32
            };
            self.truth.push(Truth {
                time: at,
                direction: "inbound",
                peer: client.clone(),
                tls: Self::label(tls),
                status: None,
                connector: named.clone(),
                recipients: distinct,
            });
        }
    }

    /// The submission from a mailbox: MSGTRKMS rows and an SMTP RECEIVE from the server itself.
    fn submit(&mut self, t: i64, m: &Msg, rcpts: &[String]) {
        self.track("MSGTRKMS", t - 300 * MS, "SUBMIT", "STOREDRIVER", m, rcpts, &[
            ("client-ip", EX01.into()), ("server-hostname", "EX01.corp.example".into()),
            ("source-context", format!("MDB:5a3c1f2e-0000-4000-8000-000000000001, Mailbox:2, Event:1, MessageClass:IPM.Note, CreationTime:{}, ClientType:OWA", stamp(t))),
        ]);
        let sid = self.sid();
        self.track(
            "MSGTRK",
            t,
            "RECEIVE",
            "SMTP",
            m,
            rcpts,
            &[
                ("client-ip", EX01.into()),
                ("client-hostname", "EX01.corp.example".into()),
                ("server-ip", EX01.into()),
                ("server-hostname", "EX01".into()),
                ("source-context", format!("{sid};{};0", stamp(t))),
                ("connector-id", HUB.into()),
            ],
        );
        self.noise(t + 10 * MS, m, rcpts);
    }

    fn outbound(&mut self, t: i64) {
        let n = self.rng.below(5000);
        let partner = self.rng.chance(15);
        let sender = format!("user{}@corp.example", n % 400);
        let m = self.message(&sender, &format!("Proposal {n}, revised"), "Originating");
        // One or two destination domains; each is its own next hop.
        let domains: Vec<String> = if partner {
            vec!["fabrikam.example".into()]
        } else if self.rng.chance(20) {
            vec![format!("d{}.example", n % 97), format!("e{}.example", n % 89)]
        } else {
            vec![format!("d{}.example", n % 97)]
        };
        let mut all: Vec<String> = Vec::new();
        let mut per_domain = Vec::new();
        for d in &domains {
            let count = 1 + self.rng.below(2) as usize;
            let rcpts: Vec<String> = (0..count).map(|i| format!("r{}{i}@{d}", n % 50)).collect();
            all.extend(rcpts.clone());
            per_domain.push((d.clone(), rcpts));
        }
        self.submit(t, &m, &all);
        let mut at = t + 500 * MS;
        for (d, rcpts) in per_domain {
            let connector = if partner { PARTNER_OUT } else { INTERNET };
            let tls = if partner { Some("TLS1_2") } else { self.tls_choice([50, 35, 15]) };
            let mx = format!("mx.{d}");
            // A next hop per domain, in 198.18.0.0/15 by the domain's name.
            let h = d.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
            let ip = format!("198.{}.{}.{}", 18 + h % 2, (h >> 8) % 256, 1 + (h >> 16) % 254);
            let fate = self.rng.below(100);
            let ok = "250 2.0.0 Ok: queued as 4Q1AbC2xyz";
            match fate {
                // Deferred, then delivered (by the same or another MX).
                0..=9 => {
                    let sid = self.sid();
                    let end = self.send_session(
                        at,
                        &sid,
                        connector,
                        &ip,
                        &mx,
                        tls,
                        &m,
                        &rcpts,
                        "451 4.7.1 Greylisted, try again later",
                    );
                    self.hand_over(
                        end - 20 * MS,
                        "DEFER",
                        &m,
                        &rcpts,
                        connector,
                        &ip,
                        &mx,
                        &sid,
                        "451 4.7.1 Greylisted, try again later",
                    );
                    let later = end + (5 + self.rng.below(40) as i64) * MIN;
                    let (ip2, mx2) = if self.rng.chance(50) {
                        (ip.clone(), mx.clone())
                    } else {
                        (
                            format!("198.{}.{}.{}", 18 + (h >> 24) % 2, (h >> 32) % 256, 1 + (h >> 40) % 254),
                            format!("mx2.{d}"),
                        )
                    };
                    let tls2 = if partner { Some("TLS1_2") } else { self.tls_choice([50, 35, 15]) };
                    let sid = self.sid();
                    let end = self.send_session(later, &sid, connector, &ip2, &mx2, tls2, &m, &rcpts, ok);
                    self.hand_over(end - 20 * MS, "SEND", &m, &rcpts, connector, &ip2, &mx2, &sid, ok);
                    self.expect_out(end - 20 * MS, &ip2, tls2, "delivered", connector, rcpts.len());
                    if later - at > HOUR {
                        self.straddling += 1;
                    }
                    self.straddling += 1;
                    at = end;
                }
                // Refused.
                10..=12 => {
                    let sid = self.sid();
                    let reply = "550 5.1.1 User unknown, mailbox disabled";
                    let end = self.send_session(at, &sid, connector, &ip, &mx, tls, &m, &rcpts, reply);
                    self.hand_over(end - 20 * MS, "FAIL", &m, &rcpts, connector, &ip, &mx, &sid, reply);
                    self.expect_out(end - 20 * MS, &ip, tls, "failed", connector, rcpts.len());
                    at = end;
                }
                // Deferred until the queue gives up.
                13..=14 => {
                    let sid = self.sid();
                    let reply = "421 4.4.2 Connection dropped, try later";
                    let end = self.send_session(at, &sid, connector, &ip, &mx, tls, &m, &rcpts, reply);
                    self.hand_over(end - 20 * MS, "DEFER", &m, &rcpts, connector, &ip, &mx, &sid, reply);
                    let expired = end + 6 * HOUR;
                    self.track(
                        "MSGTRK",
                        expired,
                        "FAIL",
                        "QUEUE",
                        &m,
                        &rcpts,
                        &[
                            ("server-hostname", "EX01".into()),
                            ("recipient-status", "550 4.4.7 QUEUE.Expired; message expired".into()),
                        ],
                    );
                    self.track(
                        "MSGTRK",
                        expired + 30 * MS,
                        "DSN",
                        "DSN",
                        &m,
                        std::slice::from_ref(&m.sender),
                        &[("reference", m.id.clone())],
                    );
                    self.expect_out(expired, &ip, tls, "failed", connector, rcpts.len());
                    self.straddling += 1;
                    at = end;
                }
                _ => {
                    let sid = self.sid();
                    let end = self.send_session(at, &sid, connector, &ip, &mx, tls, &m, &rcpts, ok);
                    self.hand_over(end - 20 * MS, "SEND", &m, &rcpts, connector, &ip, &mx, &sid, ok);
                    self.expect_out(end - 20 * MS, &ip, tls, "delivered", connector, rcpts.len());
                    at = end;
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn hand_over(
        &mut self,
        t: i64,
        event: &str,
        m: &Msg,
        rcpts: &[String],
        connector: &str,
        ip: &str,
        mx: &str,
        sid: &str,
        reply: &str,
    ) {
        self.track(
            "MSGTRK",
            t,
            event,
            "SMTP",
            m,
            rcpts,
            &[
                ("client-ip", EX01.into()),
                ("client-hostname", "EX01.corp.example".into()),
                ("server-ip", ip.into()),
                ("server-hostname", mx.into()),
                ("connector-id", connector.into()),
                ("source-context", format!("{sid};{reply};ClientSubmitTime:{}", stamp(t))),
                ("recipient-status", rcpts.iter().map(|_| reply).collect::<Vec<_>>().join(";")),
                ("message-info", stamp(t)),
            ],
        );
    }

    fn expect_out(
        &mut self,
        t: i64,
        ip: &str,
        tls: Option<&str>,
        status: &'static str,
        connector: &str,
        recipients: usize,
    ) {
        self.truth.push(Truth {
            time: t,
            direction: "outbound",
            peer: ip.to_string(),
            tls: Self::label(tls),
            status: Some(status),
            connector: Some(connector.to_string()),
            recipients: recipients as u32,
        });
    }

    fn internal(&mut self, t: i64) {
        let n = self.rng.below(400);
        let m = self.message(&format!("user{n}@corp.example"), "Lunch?", "Originating");
        let rcpts = vec![format!("user{}@corp.example", (n + 1) % 400)];
        self.submit(t, &m, &rcpts);
        self.mailbox_hop(t + 300 * MS, &m, &rcpts, EX01);
    }

    fn probe(&mut self, t: i64) {
        let sid = self.sid();
        let remote = format!("192.0.2.{}:{}", 100 + self.rng.below(100), 40_000 + self.rng.below(20_000));
        for (seq, (event, data)) in
            [("+", ""), ("<", "EHLO scanner.example"), (">", "250 EX01 Hello"), ("<", "QUIT"), ("-", "")]
                .iter()
                .enumerate()
        {
            let line = format!(
                "{},{},{sid},{seq},{EX01}:25,{remote},{event},{data},",
                stamp(t + seq as i64 * MS),
                cell(FRONTEND)
            );
            self.push("FrontEnd", "RECV", t + seq as i64 * MS, line);
        }
    }
}

/// A week from `start` (UTC midnight, microseconds) with about `per_day` messages a day.
pub fn week(version: Version, seed: u64, start: i64, days: i64, per_day: u64) -> Week {
    let mut g = Gen {
        version,
        rng: Rng(seed | 1),
        files: BTreeMap::new(),
        truth: Vec::new(),
        sessions: 0,
        messages: 0,
        straddling: 0,
    };
    let gap = DAY / per_day.max(1) as i64;
    let mut t = start + gap / 2;
    while t < start + days * DAY {
        // Exchange writes milliseconds.
        t -= t.rem_euclid(MS);
        match g.rng.below(100) {
            0..=44 => g.inbound(t),
            45..=79 => g.outbound(t),
            80..=91 => g.internal(t),
            _ => g.probe(t),
        }
        t += gap / 2 + g.rng.below(gap as u64) as i64;
    }
    // Headers: each file starts with one; on the fourth day the Transport service restarts at
    // noon and writes a second header block into its tracking log.
    let tracking = g.tracking_header();
    let schema = g.schema();
    let restart_day = Gen::day(start + 3 * DAY);
    for (name, rows) in g.files.iter_mut() {
        rows.sort_by_key(|(t, _)| *t);
        let first = rows.first().map_or(start, |(t, _)| *t);
        let day_start = first - first.rem_euclid(DAY);
        let (log_type, fields) = if name.contains("MSGTRK") {
            ("Message Tracking Log", tracking.as_str())
        } else if name.contains("SEND") {
            ("SMTP Send Protocol Log", PROTOCOL)
        } else {
            ("SMTP Receive Protocol Log", PROTOCOL)
        };
        let header = |t: i64| {
            format!(
                "#Software: Microsoft Exchange Server\n#Version: {schema}\n#Log-type: {log_type}\n#Date: {}\n#Fields: {fields}",
                stamp(t)
            )
        };
        if name.contains(&format!("MSGTRK{restart_day}")) {
            let noon = day_start + 12 * HOUR;
            let at = rows.partition_point(|(t, _)| *t < noon);
            rows.insert(at, (noon, header(noon)));
        }
        rows.insert(0, (day_start, header(day_start)));
    }
    g.truth.sort();
    Week { files: g.files, truth: g.truth, straddling: g.straddling }
}

impl Week {
    /// The files' text, CRLF-terminated as Exchange writes them.
    pub fn text(rows: &[(i64, String)]) -> String {
        let mut text = String::new();
        for (_, line) in rows {
            for l in line.split('\n') {
                text.push_str(l);
                text.push_str("\r\n");
            }
        }
        text
    }

    /// Writes every file under `dir`, each cut to the rows before `until` (if given), the last
    /// kept row cut in the middle when `mid_line`.
    pub fn write(&self, dir: &std::path::Path, until: Option<i64>, mid_line: bool) {
        for (name, rows) in &self.files {
            let keep: Vec<(i64, String)> = match until {
                Some(u) => rows.iter().filter(|(t, _)| *t < u).cloned().collect(),
                None => rows.clone(),
            };
            if keep.is_empty() {
                continue;
            }
            let mut text = Self::text(&keep);
            if mid_line && let Some(next) = rows.get(keep.len()) {
                let line = &next.1;
                text.push_str(&line[..line.len() / 2]);
            }
            let path = dir.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
    }
}
