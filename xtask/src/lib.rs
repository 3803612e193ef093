//! Synthetic Postfix logs for the demo and the benchmarks.
//!
//! The traffic is a small site's: mail from the internet and from partners (some without TLS,
//! some on TLS 1.0), staff submitting over TLS, applications on the host sending through
//! `pickup`, and deliveries to many relays, with deferrals that succeed later, bounces, mail
//! deleted from the queue, postscreen and anvil noise, rejected clients, and lines of other
//! programs. Lines are the forms a real Postfix 3.x writes; the same seed gives the same log.
//!
//! Flows change between the first and the second half of the log, so a report on the second
//! week against the first shows every insight: a partner whose volume doubles, a sender that
//! appears, one that stops, a relay whose instance does not log TLS (`smtp_tls_loglevel = 0`).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{self, Write};

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

/// What to generate.
#[derive(Debug, Clone)]
pub struct Options {
    /// Last local day of the log; the log covers `days` days up to and including it.
    pub end: NaiveDate,
    pub days: u32,
    /// Messages on a weekday of the second half; weekends and the first half scale from it.
    pub messages_per_day: u32,
    pub timezone: Tz,
    pub host: String,
    pub seed: u64,
    /// A few malformed lines and markup in a host name, as real logs have.
    pub oddities: bool,
}

#[derive(Clone, Copy, PartialEq)]
enum Version {
    None,
    Ssl3,
    Tls10,
    Tls11,
    Tls12,
    Tls13,
}

impl Version {
    fn text(self) -> &'static str {
        match self {
            Version::None => "",
            Version::Ssl3 => "SSLv3",
            Version::Tls10 => "TLSv1",
            Version::Tls11 => "TLSv1.1",
            Version::Tls12 => "TLSv1.2",
            Version::Tls13 => "TLSv1.3",
        }
    }

    fn cipher(self, rng: &mut fastrand::Rng) -> &'static str {
        let choices: &[&str] = match self {
            Version::Tls13 => &["TLS_AES_256_GCM_SHA384", "TLS_AES_128_GCM_SHA256", "TLS_CHACHA20_POLY1305_SHA256"],
            Version::Tls12 => {
                &["ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384"]
            }
            Version::Tls11 | Version::Tls10 => &["ECDHE-RSA-AES256-SHA", "DHE-RSA-AES256-SHA", "AES256-SHA"],
            Version::Ssl3 => &["DES-CBC3-SHA", "AES256-SHA"],
            Version::None => &[""],
        };
        choices[rng.usize(..choices.len())]
    }

    fn bits(self, cipher: &str) -> &'static str {
        if cipher.contains("128") { "128/128" } else { "256/256" }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Fate {
    Sent,
    /// Deferred, then sent on a later attempt.
    Retried,
    Bounced,
    /// Deferred until an admin deleted it from the queue.
    Stuck,
}

#[derive(Clone, Copy)]
enum Kind {
    /// From a client on the internet to local mailboxes.
    Inbound { service: &'static str },
    /// Staff over submission, or an application through pickup, to a relay.
    Outbound { submission: bool, instance: &'static str },
}

struct Flow {
    kind: Kind,
    /// Weekday messages per 1000 in the first and the second half.
    share: (u32, u32),
    weekend: f64,
    peers: &'static [(&'static str, &'static str)],
    tls: &'static [(Version, u32)],
    fates: &'static [(Fate, u32)],
    /// Local hours of traffic: office (true) or around the clock.
    office: bool,
    /// Days (from the start) before which / after which the flow is silent.
    active: (u32, u32),
}

const SENT: &[(Fate, u32)] = &[(Fate::Sent, 1)];
const ALWAYS: (u32, u32) = (0, u32::MAX);

const FLOWS: &[Flow] = &[
    Flow {
        kind: Kind::Outbound { submission: true, instance: "postfix" },
        share: (110, 190),
        weekend: 0.25,
        peers: &[("mx1.contoso.com", "192.0.2.10"), ("mx2.contoso.com", "192.0.2.11")],
        tls: &[(Version::Tls13, 65), (Version::Tls12, 35)],
        fates: &[(Fate::Sent, 96), (Fate::Retried, 3), (Fate::Stuck, 1)],
        office: true,
        active: ALWAYS,
    },
    Flow {
        kind: Kind::Outbound { submission: false, instance: "postfix" },
        share: (30, 30),
        weekend: 0.3,
        peers: &[("mail.fabrikam.com", "192.0.2.20"), ("mx-old.fabrikam.com", "192.0.2.21")],
        tls: &[(Version::Ssl3, 4), (Version::Tls10, 58), (Version::Tls11, 14), (Version::Tls12, 24)],
        fates: &[(Fate::Sent, 78), (Fate::Retried, 6), (Fate::Stuck, 6), (Fate::Bounced, 10)],
        office: true,
        active: ALWAYS,
    },
    Flow {
        kind: Kind::Outbound { submission: true, instance: "postfix" },
        share: (220, 220),
        weekend: 0.35,
        peers: &[
            ("mx.adatum.example", "198.51.100.21"),
            ("mail.tailspintoys.example", "198.51.100.22"),
            ("mx1.woodgrovebank.example", "198.51.100.23"),
            ("mx.litwareinc.example", "198.51.100.24"),
            ("mx.wingtiptoys.example", "203.0.113.24"),
            ("mx.alpineskihouse.example", "203.0.113.25"),
            ("in1.mailhost.example", "2001:db8:4860::1b"),
            ("in2.mailhost.example", "2001:db8:4860::1c"),
        ],
        tls: &[(Version::Tls13, 45), (Version::Tls12, 47), (Version::None, 8)],
        fates: &[(Fate::Sent, 94), (Fate::Retried, 3), (Fate::Bounced, 2), (Fate::Stuck, 1)],
        office: true,
        active: ALWAYS,
    },
    Flow {
        // A relay host through its own transport, whose instance runs smtp_tls_loglevel = 0.
        kind: Kind::Outbound { submission: false, instance: "postfix/partner-out" },
        share: (110, 110),
        weekend: 0.3,
        peers: &[("relay.northwind.example", "198.51.100.70"), ("relay2.northwind.example", "198.51.100.71")],
        tls: &[(Version::Tls12, 1)],
        fates: SENT,
        office: true,
        active: ALWAYS,
    },
    Flow {
        kind: Kind::Inbound { service: "smtpd" },
        share: (35, 35),
        weekend: 0.3,
        peers: &[
            ("mail1.northwind.example", "198.51.100.60"),
            ("mail2.northwind.example", "198.51.100.61"),
            ("smtp-old.northwind.example", "198.51.100.62"),
        ],
        tls: &[(Version::None, 35), (Version::Tls12, 50), (Version::Tls13, 15)],
        fates: SENT,
        office: true,
        active: ALWAYS,
    },
    Flow {
        // An old scanner that stops sending.
        kind: Kind::Inbound { service: "smtpd" },
        share: (8, 8),
        weekend: 0.34,
        peers: &[("scanner.branch.example", "203.0.113.5")],
        tls: &[(Version::None, 1)],
        fates: SENT,
        office: true,
        active: (0, 9),
    },
    Flow {
        // A new SaaS sender that starts in the second half.
        kind: Kind::Inbound { service: "smtpd" },
        share: (0, 60),
        weekend: 0.7,
        peers: &[("o1.mailer.saas.example", "203.0.113.40"), ("o2.mailer.saas.example", "203.0.113.41")],
        tls: &[(Version::Tls12, 1)],
        fates: SENT,
        office: false,
        active: ALWAYS,
    },
    Flow {
        kind: Kind::Inbound { service: "smtpd" },
        share: (250, 250),
        weekend: 0.6,
        peers: &[
            ("mail.adatum.example", "198.51.100.31"),
            ("mail-am6eur05on2041.outbound.protection.outlook.example", "2001:db8:3000::41"),
            ("mail-db8eur05on2103.outbound.protection.outlook.example", "2001:db8:3000::103"),
            ("smtp.woodgrovebank.example", "198.51.100.33"),
            ("out.mailhost.example", "2001:db8:4860::40"),
            ("mta7.news.lucernepublishing.example", "203.0.113.37"),
            ("mail.litwareinc.example", "198.51.100.34"),
        ],
        tls: &[(Version::Tls13, 50), (Version::Tls12, 45), (Version::None, 5)],
        fates: SENT,
        office: false,
        active: ALWAYS,
    },
    Flow {
        // Internal applications relaying through the gateway: internal, not in reports.
        kind: Kind::Inbound { service: "smtpd" },
        share: (15, 15),
        weekend: 0.4,
        peers: &[("app01.corp.example", "10.0.4.21"), ("erp.corp.example", "10.0.8.5")],
        tls: &[(Version::Tls12, 60), (Version::None, 40)],
        fates: SENT,
        office: true,
        active: ALWAYS,
    },
];

const STAFF: &[&str] = &["anna.schmidt", "jonas.weber", "lea.fischer", "max.mueller", "sofia.wagner", "paul.becker"];
const SENDERS: &[&str] = &["info", "news", "billing", "support", "j.doe", "orders", "noreply"];
const STAFF_CLIENTS: &[(&str, &str)] =
    &[("dsl-198-51-100-90.isp.example", "198.51.100.90"), ("unknown", "2001:db8:a0b:12f0::1")];
const OFFICE: [u32; 24] = [1, 1, 1, 1, 1, 2, 4, 8, 12, 14, 14, 13, 11, 13, 14, 13, 11, 8, 5, 4, 3, 2, 2, 1];
const ALLDAY: [u32; 24] = [3, 3, 3, 3, 3, 3, 4, 6, 8, 9, 9, 9, 8, 9, 9, 8, 8, 7, 6, 6, 5, 5, 4, 4];

/// Writes the log; returns the number of lines.
pub fn generate(options: &Options, out: &mut dyn FnMut(&str) -> io::Result<()>) -> io::Result<u64> {
    let mut g = Generator::new(options);
    let start = options.end - chrono::Days::new(u64::from(options.days.saturating_sub(1)));
    let mut starts = Vec::new();
    for day in 0..options.days {
        let date = start + chrono::Days::new(u64::from(day));
        let second_half = day >= options.days / 2;
        let weekend = date.weekday().number_from_monday() >= 6;
        for (index, flow) in FLOWS.iter().enumerate() {
            if day < flow.active.0 || day > flow.active.1 {
                continue;
            }
            let share = if second_half { flow.share.1 } else { flow.share.0 };
            let mut n = f64::from(share) * f64::from(options.messages_per_day) / 1000.0;
            if weekend {
                n *= flow.weekend;
            }
            let n = (n * (0.85 + 0.3 * g.rng.f64())).round() as u32;
            for _ in 0..n {
                let weights = if flow.office { &OFFICE } else { &ALLDAY };
                let hour =
                    g.weighted(weights.iter().enumerate().map(|(h, w)| (h as u32, *w)).collect::<Vec<_>>().as_slice());
                let local = date.and_hms_opt(hour, g.rng.u32(..60), g.rng.u32(..60)).unwrap_or_default();
                let t = options.timezone.from_local_datetime(&local).earliest().map(|t| t.with_timezone(&Utc));
                if let Some(t) = t {
                    starts.push((t.timestamp_micros() + i64::from(g.rng.u32(..1_000_000)), index));
                }
            }
        }
    }
    starts.sort_unstable();
    let mut lines = 0u64;
    for (i, &(t, flow)) in starts.iter().enumerate() {
        if options.oddities && i == starts.len() * 3 / 4 {
            g.oddities(t);
        }
        g.message(t, &FLOWS[flow]);
        lines += g.flush(Some(t), out)?;
    }
    lines += g.flush(None, out)?;
    Ok(lines)
}

struct Generator<'o> {
    options: &'o Options,
    rng: fastrand::Rng,
    pending: BinaryHeap<Reverse<(i64, u64, String)>>,
    seq: u64,
    next_pid: u32,
    next_queue_id: u64,
}

impl<'o> Generator<'o> {
    fn new(options: &'o Options) -> Self {
        Generator {
            options,
            rng: fastrand::Rng::with_seed(options.seed),
            pending: BinaryHeap::new(),
            seq: 0,
            next_pid: 2000,
            next_queue_id: 0x004B_2A10_0000,
        }
    }

    fn weighted<T: Copy>(&mut self, table: &[(T, u32)]) -> T {
        let total: u32 = table.iter().map(|(_, w)| w).sum();
        let mut pick = self.rng.u32(..total.max(1));
        for &(item, weight) in table {
            if pick < weight {
                return item;
            }
            pick -= weight;
        }
        table[0].0
    }

    fn pid(&mut self) -> u32 {
        self.next_pid = if self.next_pid >= 4_000_000 { 2000 } else { self.next_pid + 1 + self.rng.u32(..3) };
        self.next_pid
    }

    fn queue_id(&mut self) -> String {
        self.next_queue_id += 1 + u64::from(self.rng.u32(..16));
        format!("{:010X}", self.next_queue_id)
    }

    fn line(&mut self, t: i64, program: &str, pid: u32, message: &str) {
        let local = DateTime::from_timestamp_micros(t).unwrap_or_default().with_timezone(&self.options.timezone);
        let stamp = format!(
            "{} {:>2} {:02}:{:02}:{:02}",
            ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
                [local.month0() as usize],
            local.day(),
            local.hour(),
            local.minute(),
            local.second()
        );
        let line = format!("{stamp} {} {program}[{pid}]: {message}", self.options.host);
        self.seq += 1;
        self.pending.push(Reverse((t, self.seq, line)));
    }

    /// Writes every line up to `until` (everything when `None`), in time order.
    fn flush(&mut self, until: Option<i64>, out: &mut dyn FnMut(&str) -> io::Result<()>) -> io::Result<u64> {
        let mut n = 0;
        while let Some(Reverse((t, _, _))) = self.pending.peek() {
            if until.is_some_and(|u| *t > u) {
                break;
            }
            let Some(Reverse((_, _, line))) = self.pending.pop() else { break };
            out(&line)?;
            n += 1;
        }
        Ok(n)
    }

    /// `: TLSv1.3 with cipher … (256/256 bits)`, the end of a TLS line.
    fn tls_text(&mut self, version: Version) -> String {
        let cipher = version.cipher(&mut self.rng);
        format!(": {} with cipher {cipher} ({} bits)", version.text(), version.bits(cipher))
    }

    fn message(&mut self, t: i64, flow: &Flow) {
        const S: i64 = 1_000_000;
        let qid = self.queue_id();
        let version = self.weighted(flow.tls);
        let size = 2_000 + (self.rng.f64().powi(3) * 3_000_000.0) as u64;
        match flow.kind {
            Kind::Inbound { service } => {
                let (host, ip) = flow.peers[self.rng.usize(..flow.peers.len())];
                let sender = format!("{}@{}", SENDERS[self.rng.usize(..SENDERS.len())], domain_of(host));
                let rcpts = 1 + usize::from(self.rng.u8(..10) == 0);
                self.session(t, service, host, ip, version, &qid, &sender, size, rcpts);
                let local = self.pid();
                for r in 0..rcpts {
                    let who = STAFF[self.rng.usize(..STAFF.len())];
                    let msg = format!(
                        "{qid}: to=<{who}@corp.example>, relay=mail.corp.example[private/dovecot-lmtp], delay=0.{r}2, delays=0.1/0/0/0.0{r}, dsn=2.0.0, status=sent (250 2.0.0 <{who}@corp.example> Saved)"
                    );
                    self.line(t + 2 * S, "postfix/lmtp", local, &msg);
                }
                self.line(t + 2 * S, "postfix/qmgr", 1500, &format!("{qid}: removed"));
            }
            Kind::Outbound { submission, instance } => {
                let staff = STAFF[self.rng.usize(..STAFF.len())];
                let sender = format!("{staff}@corp.example");
                let (relay, ip) = flow.peers[self.rng.usize(..flow.peers.len())];
                let rcpts = [1, 1, 1, 1, 2, 3][self.rng.usize(..6)];
                if submission {
                    let (host, client_ip) = STAFF_CLIENTS[self.rng.usize(..STAFF_CLIENTS.len())];
                    self.session(t, "submission", host, client_ip, Version::Tls13, &qid, &sender, size, rcpts);
                } else {
                    let pid = self.pid();
                    self.line(t, "postfix/pickup", pid, &format!("{qid}: uid=1001 from=<{sender}>"));
                    self.queued(t, &qid, &sender, size, rcpts);
                }
                let fate = self.weighted(flow.fates);
                let logs_tls = instance == "postfix";
                let mut at = t + 2 * S;
                if matches!(fate, Fate::Retried | Fate::Stuck) {
                    self.delivery(at, instance, relay, ip, version, logs_tls, &qid, rcpts, "deferred");
                    at += (20 + i64::from(self.rng.u32(..90))) * 60 * S;
                    self.line(
                        at - S,
                        "postfix/qmgr",
                        1500,
                        &format!("{qid}: from=<{sender}>, size={size}, nrcpt={rcpts} (queue active)"),
                    );
                }
                match fate {
                    Fate::Sent | Fate::Retried => {
                        self.delivery(at, instance, relay, ip, version, logs_tls, &qid, rcpts, "sent");
                        self.line(at, "postfix/qmgr", 1500, &format!("{qid}: removed"));
                    }
                    Fate::Bounced => {
                        self.delivery(at, instance, relay, ip, version, logs_tls, &qid, rcpts, "bounced");
                        let ndr = self.queue_id();
                        self.line(at, "postfix/cleanup", 1600, &format!("{ndr}: message-id=<{ndr}@mx1.corp.example>"));
                        self.line(
                            at,
                            "postfix/bounce",
                            1700,
                            &format!("{qid}: sender non-delivery notification: {ndr}"),
                        );
                        self.line(
                            at,
                            "postfix/qmgr",
                            1500,
                            &format!("{ndr}: from=<>, size=4210, nrcpt=1 (queue active)"),
                        );
                        self.line(at, "postfix/qmgr", 1500, &format!("{qid}: removed"));
                        let local = self.pid();
                        self.line(at + S, "postfix/lmtp", local, &format!("{ndr}: to=<{sender}>, relay=mail.corp.example[private/dovecot-lmtp], delay=0.1, delays=0/0/0/0.1, dsn=2.0.0, status=sent (250 2.0.0 <{sender}> Saved)"));
                        self.line(at + S, "postfix/qmgr", 1500, &format!("{ndr}: removed"));
                    }
                    Fate::Stuck => {
                        let pid = self.pid();
                        self.line(at, "postfix/postsuper", pid, &format!("{qid}: removed"));
                    }
                }
            }
        }
    }

    /// An smtpd session that delivers one message: connect, TLS, client, queue, disconnect.
    #[allow(clippy::too_many_arguments)]
    fn session(
        &mut self,
        t: i64,
        service: &str,
        host: &str,
        ip: &str,
        version: Version,
        qid: &str,
        sender: &str,
        size: u64,
        rcpts: usize,
    ) {
        const S: i64 = 1_000_000;
        let program = if service == "smtpd" { "postfix/smtpd".to_string() } else { format!("postfix/{service}/smtpd") };
        let pid = self.pid();
        self.line(t - S, &program, pid, &format!("connect from {host}[{ip}]"));
        if version != Version::None {
            let tls = self.tls_text(version);
            self.line(t - S, &program, pid, &format!("Anonymous TLS connection established from {host}[{ip}]{tls}"));
        }
        let auth = if service == "submission" { ", sasl_method=PLAIN, sasl_username=staff" } else { "" };
        self.line(t, &program, pid, &format!("{qid}: client={host}[{ip}]{auth}"));
        self.queued(t, qid, sender, size, rcpts);
        let starttls = if version != Version::None { "starttls=1 " } else { "" };
        let auth = if service == "submission" { "auth=1 " } else { "" };
        let commands = 5 + rcpts + usize::from(version != Version::None) * 2 + usize::from(!auth.is_empty());
        self.line(
            t + S / 2,
            &program,
            pid,
            &format!("disconnect from {host}[{ip}] ehlo={} {starttls}{auth}mail=1 rcpt={rcpts} data=1 quit=1 commands={commands}", if starttls.is_empty() { 1 } else { 2 }),
        );
    }

    fn queued(&mut self, t: i64, qid: &str, sender: &str, size: u64, rcpts: usize) {
        let id: String = (0..16).map(|_| self.rng.alphanumeric()).collect();
        let domain = sender.rsplit('@').next().unwrap_or("example");
        self.line(t, "postfix/cleanup", 1600, &format!("{qid}: message-id=<{id}@{domain}>"));
        self.line(
            t,
            "postfix/qmgr",
            1500,
            &format!("{qid}: from=<{sender}>, size={size}, nrcpt={rcpts} (queue active)"),
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn delivery(
        &mut self,
        t: i64,
        instance: &str,
        relay: &str,
        ip: &str,
        version: Version,
        logs_tls: bool,
        qid: &str,
        rcpts: usize,
        status: &str,
    ) {
        let program = format!("{instance}/smtp");
        let pid = self.pid();
        if version != Version::None && logs_tls {
            let trust = ["Trusted", "Verified", "Untrusted"][self.rng.usize(..3)];
            let tls = self.tls_text(version);
            self.line(t, &program, pid, &format!("{trust} TLS connection established to {relay}[{ip}]:25{tls}"));
        }
        let domain = domain_of(relay);
        for r in 0..rcpts {
            let (dsn, detail) = match status {
                "sent" => ("2.0.0", format!("250 2.0.0 Ok: queued as {:X}", self.rng.u64(..))),
                "deferred" => (
                    "4.7.1",
                    format!("host {relay}[{ip}] said: 451 4.7.1 Try again later (in reply to RCPT TO command)"),
                ),
                _ => {
                    ("5.1.1", format!("host {relay}[{ip}] said: 550 5.1.1 User unknown (in reply to RCPT TO command)"))
                }
            };
            let msg = format!(
                "{qid}: to=<user{r}@{domain}>, relay={relay}[{ip}]:25, delay=1.{r}, delays=0.1/0/0.4/0.{r}, dsn={dsn}, status={status} ({detail})"
            );
            self.line(t, &program, pid, &msg);
        }
    }

    /// Lines a real log has that a reader must cope with.
    fn oddities(&mut self, t: i64) {
        let pid = self.pid();
        let qid = self.queue_id();
        let host = "<script>alert(1)</script>.evil.example";
        self.session(
            t,
            "smtpd",
            host,
            "198.51.100.66",
            Version::Tls12,
            &qid,
            "\"><img src=x onerror=alert(1)>@evil.example",
            4242,
            1,
        );
        self.line(t + 1_000_000, "postfix/qmgr", 1500, &format!("{qid}: removed"));
        self.line(t, "postfix/smtpd", pid, "NOQUEUE: reject: RCPT from unknown[192.0.2.99]: 554 5.7.1 <x@other.example>: Relay access denied; from=<a@b.example> to=<x@other.example> proto=ESMTP helo=<b>");
        self.line(t, "postfix/smtp", pid, "7F00BA11: to=<truncated@example.net>, relay=mx.exa");
        self.line(t, "postfix/frobnicate", pid, "a daemon this reader does not know");
        self.line(t, "postfix/qmgr", 1500, "8F00BA11: from=<a@b.example>, siz");
    }
}

fn domain_of(host: &str) -> &str {
    let parts: Vec<&str> = host.rsplitn(3, '.').collect();
    match parts.as_slice() {
        [tld, name, _] => &host[host.len() - tld.len() - name.len() - 1..],
        _ => host,
    }
}

/// Writes `generate`'s lines to `writer`, one per line.
pub fn write_all(options: &Options, writer: &mut dyn Write) -> io::Result<u64> {
    generate(options, &mut |line| {
        writer.write_all(line.as_bytes())?;
        writer.write_all(b"\n")
    })
}
