//! The shipped examples `config/haraka.toml` and `config/sendmail.toml`, exactly as shipped, on
//! hand-written lines in the MTAs' real formats: the variants the lab logs (`tests/lab`) do not
//! hold — other time stamps and syslog prefixes, long relay names, the site's own bounces,
//! milter rejections, split recipient lists, MX fallback, partial deliveries, local deliveries
//! and values older versions write.

use std::path::Path;

use mailflow_collector_regex::{RegexCollector, RegexConfig, collect_text};
use mailflow_component::{Emitter, SourceStats};
use mailflow_config::Config;
use mailflow_core::{Direction, MessageEvent, Status, TlsVersion, Trust};

fn example(name: &str) -> RegexCollector {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../config").join(name);
    let config = Config::load(&path).unwrap();
    let options: RegexConfig = config.collectors[0].options().unwrap();
    RegexCollector::new(options, Vec::new()).unwrap()
}

/// The events (inbound first, then by time) and stats of `log` read by the example `name`.
fn run(name: &str, log: &str) -> (Vec<MessageEvent>, SourceStats) {
    let collector = example(name);
    let mut events = Vec::new();
    let mut push = |e| events.push(e);
    let mut out = Emitter::new(&mut push);
    collect_text(&collector, log.as_bytes(), &mut out);
    let stats = out.into_stats();
    events.sort_by_key(|e: &MessageEvent| (e.direction != Direction::Inbound, e.time));
    (events, stats)
}

fn sendmail(log: &str) -> (Vec<MessageEvent>, SourceStats) {
    run("sendmail.toml", log)
}

fn haraka(log: &str) -> (Vec<MessageEvent>, SourceStats) {
    run("haraka.toml", log)
}

fn clean(stats: &SourceStats) {
    assert_eq!((stats.skipped, &stats.warnings, &stats.errors), (0, &vec![], &vec![]), "{stats:?}");
}

// ---- Sendmail ----------------------------------------------------------------------------

const SENDMAIL_BSD: &str = "\
Dec  4 10:00:00 mx sm-mta[100]: STARTTLS=server, relay=mail.example.net [192.0.2.5], version=TLSv1.3, verify=NO, cipher=TLS_AES_256_GCM_SHA384, bits=256/256
Dec  4 10:00:01 mx sm-mta[100]: 4B4A0G1a000100: from=<a@example.net>, size=1234, class=0, nrcpts=1, msgid=<x@example.net>, proto=ESMTPS, daemon=MTA, relay=mail.example.net [192.0.2.5]
Dec  4 10:00:02 mx sm-mta[101]: STARTTLS=client, relay=mx.example.org., version=TLSv1.2, verify=OK, cipher=ECDHE-RSA-AES256-GCM-SHA384, bits=256/256
Dec  4 10:00:03 mx sm-mta[101]: 4B4A0G1b000101: to=<b@example.org>, ctladdr=<a@corp.test> (1000/1000), delay=00:00:02, xdelay=00:00:01, mailer=esmtp, pri=121234, relay=mx.example.org. [198.51.100.7], dsn=2.0.0, stat=Sent (OK id=1)
";

#[test]
fn sendmail_reads_bsd_and_rfc3339_syslog_stamps_alike() {
    let rfc3339 =
        SENDMAIL_BSD.replace("Dec  4 10:00:0", "2026-12-04T10:00:0").replace(" mx sm-mta", ".123456+00:00 mx sm-mta");
    assert!(rfc3339.starts_with("2026-12-04T10:00:00.123456+00:00 mx sm-mta[100]: STARTTLS=server"));
    // journalctl -o short-iso
    let short_iso =
        SENDMAIL_BSD.replace("Dec  4 10:00:0", "2026-12-04T10:00:0").replace(" mx sm-mta", "+0000 mx sm-mta");
    let (bsd, stats) = sendmail(SENDMAIL_BSD);
    clean(&stats);
    assert_eq!(bsd.len(), 2);
    let (iso, stats) = sendmail(&rfc3339);
    clean(&stats);
    let (short, stats) = sendmail(&short_iso);
    clean(&stats);
    assert_eq!(short.len(), 2);
    for (b, i) in bsd.iter().zip(&iso).chain(bsd.iter().zip(&short)) {
        assert_eq!(
            (b.direction, b.tls.version, b.peer.ip, b.status),
            (i.direction, i.tls.version, i.peer.ip, i.status)
        );
        assert_eq!(i.time.timestamp(), b.time.timestamp(), "UTC both ways");
    }
    assert_eq!(bsd[0].tls.version, Some(TlsVersion::Tls1_3));
    assert_eq!(bsd[1].tls.version, Some(TlsVersion::Tls1_2));
}

#[test]
fn sendmail_joins_tls_to_a_relay_whose_name_the_to_line_shortened() {
    // Sendmail writes `relay=` of `to=` lines through shortenstring(host, 40): the first 18
    // characters, "...", the last 18. STARTTLS=client lines keep the whole name.
    let log = "\
Dec  4 10:00:02 mx sm-mta[201]: STARTTLS=client, relay=contoso-com.mail.protection.outlook.com., version=TLSv1.2, verify=OK, cipher=ECDHE-RSA-AES256-GCM-SHA384, bits=256/256
Dec  4 10:00:03 mx sm-mta[201]: 4B4A0G1c000201: to=<ceo@contoso.com>, delay=00:00:02, xdelay=00:00:01, mailer=esmtp, pri=121234, relay=contoso-com.mail.p...ction.outlook.com. [52.101.1.1], dsn=2.0.0, stat=Sent (OK <x@contoso.com> [Hostname=AM0PR01MB0001.eurprd01.prod.outlook.com])
";
    let (events, stats) = sendmail(log);
    clean(&stats);
    let [sent]: [MessageEvent; 1] = events.try_into().unwrap();
    assert_eq!((sent.tls.version, sent.tls.trust), (Some(TlsVersion::Tls1_2), Some(Trust::Trusted)));
    assert_eq!(sent.peer.ip, "52.101.1.1".parse().ok());
}

#[test]
fn sendmail_does_not_count_its_own_bounces() {
    let log = "\
Dec  4 10:00:02 mx sm-mta[301]: 4B4A0G1d000301: to=<nobody@example.org>, delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=121234, relay=mx.example.org. [198.51.100.7], dsn=5.1.1, stat=User unknown
Dec  4 10:00:02 mx sm-mta[301]: 4B4A0G1d000301: 4B4A0G1e000301: DSN: User unknown
Dec  4 10:00:03 mx sm-mta[301]: STARTTLS=client, relay=mx.sender.example., version=TLSv1.3, verify=OK, cipher=TLS_AES_256_GCM_SHA384, bits=256/256
Dec  4 10:00:03 mx sm-mta[301]: 4B4A0G1e000301: to=<s@sender.example>, delay=00:00:00, xdelay=00:00:00, mailer=esmtp, pri=31234, relay=mx.sender.example. [203.0.113.9], dsn=2.0.0, stat=Sent (Ok: queued)
Dec  4 10:00:04 mx sm-mta[302]: 4B4A0G1f000302: 4B4A0G1g000302: return to sender: Service unavailable
Dec  4 10:00:04 mx sm-mta[302]: 4B4A0G1g000302: to=<t@sender.example>, delay=00:00:00, xdelay=00:00:00, mailer=esmtp, pri=31234, relay=mx.sender.example. [203.0.113.9], dsn=4.0.0, stat=Deferred: Connection timed out with mx.sender.example.
";
    let (events, stats) = sendmail(log);
    clean(&stats);
    let [failed]: [MessageEvent; 1] = events.try_into().unwrap();
    assert_eq!((failed.status, failed.recipient_domains.clone()), (Some(Status::Failed), vec!["example.org".into()]));
    assert_eq!(stats.notes.len(), 2, "{:?}", stats.notes);
    assert!(stats.notes.iter().any(|n| n.contains("1 event not counted") && n.contains("pattern \"dsn\"")));
}

#[test]
fn sendmail_takes_back_a_message_a_milter_refused_after_from_was_logged() {
    let log = "\
Dec  4 10:00:00 mx sm-mta[400]: 4B4A0G2a000400: from=<spam@example.net>, size=1234, class=0, nrcpts=1, msgid=<s@example.net>, proto=ESMTP, daemon=MTA, relay=[192.0.2.66]
Dec  4 10:00:00 mx sm-mta[400]: 4B4A0G2a000400: Milter: data, reject=554 5.7.1 Rejected as spam
Dec  4 10:00:00 mx sm-mta[400]: 4B4A0G2a000400: to=<u@corp.test>, delay=00:00:00, pri=31234, stat=Rejected as spam
Dec  4 10:00:05 mx sm-mta[401]: 4B4A0G2b000401: from=<big@example.net>, size=99000000, class=0, nrcpts=1, msgid=<b@example.net>, proto=ESMTP, daemon=MTA, relay=[192.0.2.67]
Dec  4 10:00:05 mx sm-mta[401]: 4B4A0G2b000401: message size (99000000) exceeds maximum (50000000)
Dec  4 10:00:09 mx sm-mta[402]: 4B4A0G2c000402: from=<ok@example.net>, size=1234, class=0, nrcpts=1, msgid=<o@example.net>, proto=ESMTP, daemon=MTA, relay=[192.0.2.68]
Dec  4 10:00:09 mx sm-mta[402]: 4B4A0G2c000402: Milter: data, discard
Dec  4 10:30:00 mx sm-mta[403]: 4B4A0G2d000403: from=<ok@example.net>, size=1234, class=0, nrcpts=1, msgid=<p@example.net>, proto=ESMTP, daemon=MTA, relay=[192.0.2.68]
";
    let (events, stats) = sendmail(log);
    clean(&stats);
    let peers: Vec<_> = events.iter().map(|e| e.peer.ip.unwrap().to_string()).collect();
    assert_eq!(peers, ["192.0.2.68", "192.0.2.68"], "the discarded message was accepted; the refused ones were not");
    assert!(events[0].time < events[1].time && events[0].tls.version == Some(TlsVersion::None));
}

#[test]
fn sendmail_counts_a_recipient_list_split_over_more_lines_once() {
    let log = "\
Dec  4 10:00:03 mx sm-mta[500]: 4B4A0G3a000500: to=<a@example.org>,<b@example.org>, [more], delay=00:00:02, xdelay=00:00:01, mailer=esmtp, pri=121234, relay=mx.example.org. [198.51.100.7], dsn=2.0.0, stat=Sent (OK id=1)
Dec  4 10:00:03 mx sm-mta[500]: 4B4A0G3a000500: to=<c@example.org>, delay=00:00:02, xdelay=00:00:01, mailer=esmtp, pri=121234, relay=mx.example.org. [198.51.100.7], dsn=2.0.0, stat=Sent (OK id=1)
";
    let (events, stats) = sendmail(log);
    clean(&stats);
    let [sent]: [MessageEvent; 1] = events.try_into().unwrap();
    assert_eq!((sent.recipients, sent.status), (Some(3), Some(Status::Delivered)));
    assert_eq!(sent.recipient_domains, ["example.org"]);
}

#[test]
fn sendmail_counts_a_deferral_on_one_mx_and_a_delivery_through_another_once() {
    let log = "\
Dec  4 10:00:03 mx sm-mta[600]: 4B4A0G4a000600: to=<u@gmail.com>, delay=00:00:02, xdelay=00:00:01, mailer=esmtp, pri=121234, relay=alt1.gmail-smtp-in.l.google.com. [142.250.1.27], dsn=4.7.0, stat=Deferred: 421-4.7.0 Try again later
Dec  4 10:30:03 mx sm-mta[601]: STARTTLS=client, relay=gmail-smtp-in.l.google.com., version=TLSv1.3, verify=OK, cipher=TLS_AES_256_GCM_SHA384, bits=256/256
Dec  4 10:30:04 mx sm-mta[601]: 4B4A0G4a000600: to=<u@gmail.com>, delay=00:30:03, xdelay=00:00:01, mailer=esmtp, pri=211234, relay=gmail-smtp-in.l.google.com. [142.250.2.26], dsn=2.0.0, stat=Sent (OK 1733306404 a1si1)
";
    let (events, stats) = sendmail(log);
    clean(&stats);
    let [sent]: [MessageEvent; 1] = events.try_into().unwrap();
    assert_eq!((sent.status, sent.tls.version), (Some(Status::Delivered), Some(TlsVersion::Tls1_3)));
    assert_eq!(sent.peer.host.as_deref(), Some("gmail-smtp-in.l.google.com."));
}

#[test]
fn sendmail_counts_address_literal_relays_but_not_the_loopback_hop() {
    let log = "\
Dec  4 10:00:00 mx sm-msp-queue[700]: 4B4A0G5a000700: to=<u@example.org>, ctladdr=<root@corp.test> (0/0), delay=00:00:00, xdelay=00:00:00, mailer=relay, pri=30000, relay=[127.0.0.1] [127.0.0.1], dsn=2.0.0, stat=Sent (4B4A0G5b000701 Message accepted for delivery)
Dec  4 10:00:01 mx sm-mta[702]: STARTTLS=client, relay=[203.0.113.7], version=TLSv1.2, verify=FAIL, cipher=ECDHE-RSA-AES256-GCM-SHA384, bits=256/256
Dec  4 10:00:02 mx sm-mta[702]: 4B4A0G5b000701: to=<u@example.org>, delay=00:00:01, xdelay=00:00:01, mailer=relay, pri=120000, relay=[203.0.113.7] [203.0.113.7], dsn=2.0.0, stat=Sent (Ok: queued as 1234)
Dec  4 10:00:03 mx sm-mta[703]: 4B4A0G5c000703: to=<v@corp.test>, delay=00:00:01, xdelay=00:00:01, mailer=lmtp, pri=120000, relay=/var/run/dovecot/lmtp, dsn=2.0.0, stat=Sent (Ok)
";
    let (events, stats) = sendmail(log);
    clean(&stats);
    let [sent]: [MessageEvent; 1] = events.try_into().unwrap();
    assert_eq!(sent.peer.ip, "203.0.113.7".parse().ok());
    assert_eq!(sent.peer.host, None, "an address literal names no host");
    assert_eq!((sent.tls.version, sent.tls.trust), (Some(TlsVersion::Tls1_2), Some(Trust::Untrusted)));
}

#[test]
fn sendmail_does_not_count_a_delivery_twice_when_failures_follow_it() {
    let log = "\
Dec  4 10:00:01 mx sm-mta[800]: STARTTLS=client, relay=mx.example.org., version=TLSv1.3, verify=OK, cipher=TLS_AES_256_GCM_SHA384, bits=256/256
Dec  4 10:00:02 mx sm-mta[800]: 4B4A0G6a000800: to=<a@example.org>, delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=121234, relay=mx.example.org. [198.51.100.7], dsn=2.0.0, stat=Sent (OK)
Dec  4 10:00:02 mx sm-mta[800]: 4B4A0G6a000800: to=<b@example.org>, delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=121234, relay=mx.example.org. [198.51.100.7], dsn=5.2.2, stat=Mailbox full
Dec  4 10:00:03 mx sm-mta[801]: STARTTLS=client, relay=mx.example.org., version=TLSv1.3, verify=OK, cipher=TLS_AES_256_GCM_SHA384, bits=256/256
Dec  4 10:00:04 mx sm-mta[801]: 4B4A0G6b000801: to=<c@example.org>, delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=121234, relay=mx.example.org. [198.51.100.7], dsn=5.1.1, stat=User unknown
Dec  4 10:00:04 mx sm-mta[801]: 4B4A0G6b000801: to=<d@example.org>, delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=121234, relay=mx.example.org. [198.51.100.7], dsn=2.0.0, stat=Sent (OK)
";
    let (events, stats) = sendmail(log);
    clean(&stats);
    let statuses: Vec<_> = events.iter().map(|e| (e.status, e.recipients)).collect();
    // The failure after a delivery is not a second event; a failure before one is folded into it.
    assert_eq!(statuses, [(Some(Status::Delivered), Some(1)), (Some(Status::Delivered), Some(2))]);
    assert!(events.iter().all(|e| e.peer.ip.is_some() && e.tls.version == Some(TlsVersion::Tls1_3)));
    assert_eq!(stats.notes, ["1 event not counted: its message key had already been delivered (`unless_delivered`)"]);
}

#[test]
fn sendmail_keeps_a_delivery_whose_tls_line_has_an_unexpected_verify_value() {
    let log = "\
Dec  4 10:00:01 mx sm-mta[900]: STARTTLS=client, relay=mx.example.org., version=TLSv1.3, verify=TEMP, cipher=TLS_AES_256_GCM_SHA384, bits=256/256
Dec  4 10:00:02 mx sm-mta[900]: 4B4A0G7a000900: to=<a@example.org>, delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=121234, relay=mx.example.org. [198.51.100.7], dsn=2.0.0, stat=Sent (OK)
Dec  4 10:00:03 mx sm-mta[901]: STARTTLS=client, relay=mx.example.net., version=TLSv1.2, verify=SOMETHING_NEW, cipher=ECDHE-RSA-AES256-GCM-SHA384, bits=256/256
Dec  4 10:00:04 mx sm-mta[901]: 4B4A0G7b000901: to=<b@example.net>, delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=121234, relay=mx.example.net. [198.51.100.8], dsn=2.0.0, stat=Sent (OK)
Dec  4 10:00:05 mx sm-mta[902]: STARTTLS=client, relay=mx.example.com., version=TLSv1/SSLv3, verify=TRUSTED, cipher=DHE-RSA-AES256-SHA, bits=256/256
Dec  4 10:00:06 mx sm-mta[902]: 4B4A0G7c000902: to=<c@example.com>, delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=121234, relay=mx.example.com. [198.51.100.9], dsn=2.0.0, stat=Sent (OK)
";
    let (events, stats) = sendmail(log);
    assert_eq!(stats.skipped, 0);
    let tls: Vec<_> = events.iter().map(|e| (e.tls.version, e.tls.trust)).collect();
    assert_eq!(
        tls,
        [
            (Some(TlsVersion::Tls1_3), Some(Trust::Unknown)),
            (Some(TlsVersion::Tls1_2), None),
            (Some(TlsVersion::Unknown), Some(Trust::Verified)),
        ]
    );
    assert_eq!(stats.warnings.len(), 1, "{:?}", stats.warnings);
    assert!(stats.warnings[0].contains("text:3: pattern \"tls-out\": group `tls_trust`"), "{:?}", stats.warnings);
    assert!(stats.warnings[0].contains("\"SOMETHING_NEW\"; left out of 1 line"), "{:?}", stats.warnings);
}

#[test]
fn sendmail_counts_deliveries_that_never_reached_a_relay() {
    let log = "\
Dec  4 10:00:02 mx sm-mta[1000]: 4B4A0G8a001000: to=<u@nosuch.example>, delay=00:00:00, xdelay=00:00:00, mailer=esmtp, pri=30000, relay=nosuch.example, dsn=5.1.2, stat=Host unknown (Name server: nosuch.example: host not found)
Dec  4 10:00:03 mx sm-mta[1001]: 4B4A0G8b001001: to=<v@slowdns.example>, delay=00:00:00, xdelay=00:00:00, mailer=esmtp, pri=30000, relay=slowdns.example, dsn=4.4.3, stat=Deferred: Name server: slowdns.example.: host name lookup failure
";
    let (events, stats) = sendmail(log);
    clean(&stats);
    let got: Vec<_> = events.iter().map(|e| (e.status, e.tls.version, e.recipient_domains.clone())).collect();
    assert_eq!(
        got,
        [
            (Some(Status::Failed), None, vec!["nosuch.example".to_string()]),
            (Some(Status::Deferred), None, vec!["slowdns.example".to_string()]),
        ]
    );
}

#[test]
fn sendmail_reads_a_message_id_with_a_comma() {
    let log = "\
Dec  4 10:00:01 mx sm-mta[1100]: 4B4A0G9a001100: from=<a@example.net>, size=1234, class=0, nrcpts=2, msgid=<1234.5678,part2@example.net>, bodytype=8BITMIME, proto=ESMTP, daemon=MTA, relay=mail.example.net [192.0.2.5]
";
    let (events, stats) = sendmail(log);
    clean(&stats);
    let [inbound]: [MessageEvent; 1] = events.try_into().unwrap();
    assert_eq!(inbound.message_id.as_deref(), Some("<1234.5678,part2@example.net>"));
    assert_eq!(inbound.recipients, Some(2));
}

// ---- Haraka ------------------------------------------------------------------------------

const UUID: &str = "7F35FB2A-BD34-41F4-8E87-8CD47C671529";

/// One inbound message over TLS 1.3, its lines after `prefix(n)` (n: tenths of a second).
fn haraka_inbound(prefix: impl Fn(u32) -> String) -> String {
    let lines = [
        format!("[NOTICE] [{UUID}] [core] connect ip=192.0.2.44 port=47353 local_ip=192.0.2.1 local_port=25"),
        format!("[INFO] [{UUID}] [tls] secured: cipher=TLS_AES_256_GCM_SHA384 version=TLSv1.3 verified=false"),
        format!("[NOTICE] [{UUID}.1] [core] sender <s@example.net> code=CONT msg=\"\""),
        format!("[NOTICE] [{UUID}.1] [core] recipient <alice@corp.test> code=OK msg=\"\" sender=s@example.net"),
        format!(
            "[NOTICE] [{UUID}.1] [core] message mid=<m1@example.net> size=252 rcpts=1/0/0 delay=0 code=CONT msg=\"\""
        ),
        format!("[NOTICE] [{UUID}.1] [core] queue code=OK msg=\"Message Queued ({UUID}.1)\""),
        format!("[NOTICE] [{UUID}.1] [core] disconnect ip=192.0.2.44 rdns=NXDOMAIN helo=client.test relay=N"),
    ];
    lines.iter().enumerate().map(|(i, line)| format!("{}{line}\n", prefix(i as u32))).collect()
}

#[test]
fn haraka_reads_its_own_stamps_and_syslog_journald_and_s6_prefixes() {
    let variants = [
        // timestamps=true
        haraka_inbound(|i| format!("2026-12-04T22:25:12.{i}00Z ")),
        // syslog / journalctl -o short (BSD stamps, local time: UTC here)
        haraka_inbound(|_| "Dec  4 22:25:12 mx haraka[812]: ".to_string()),
        // rsyslog's RFC 3339 stamps, journalctl -o short-iso
        haraka_inbound(|i| format!("2026-12-04T22:25:12.{i}00000+00:00 mx haraka[812]: ")),
        // journalctl -o short-iso
        haraka_inbound(|_| "2026-12-04T22:25:12+0000 mx haraka[812]: ".to_string()),
        // syslog around timestamps=true
        haraka_inbound(|i| format!("Dec  4 22:25:12 mx haraka[812]: 2026-12-04T22:25:12.{i}00Z ")),
        // s6-log (poste.io): nanoseconds, local time, two spaces
        haraka_inbound(|i| format!("2026-12-04 22:25:12.{i}27992500  ")),
    ];
    for log in &variants {
        let (events, stats) = haraka(log);
        clean(&stats);
        let [inbound]: [MessageEvent; 1] = events.try_into().unwrap_or_else(|e| panic!("{log}\n{e:?}"));
        assert_eq!(inbound.tls.version, Some(TlsVersion::Tls1_3), "{log}");
        assert_eq!((inbound.sender.as_deref(), inbound.size), (Some("s@example.net"), Some(252)), "{log}");
        assert_eq!(inbound.time.timestamp(), 1_796_423_112, "{log}");
    }
}

#[test]
fn haraka_without_timestamps_gets_a_warning_not_silence() {
    let (events, stats) = haraka(&haraka_inbound(|_| String::new()));
    assert!(events.is_empty());
    assert_eq!(
        stats.warnings,
        ["no line of text matched any pattern; check time_format and the patterns against a line of it"]
    );
}

#[test]
fn haraka_accepts_a_sender_a_plugin_accepted() {
    let log = haraka_inbound(|i| format!("2026-12-04T22:25:12.{i}00Z "))
        .replace("code=CONT msg=\"\"\n", "code=OK msg=\"\"\n");
    assert!(log.contains("sender <s@example.net> code=OK"));
    let (events, stats) = haraka(&log);
    clean(&stats);
    assert_eq!(events[0].sender.as_deref(), Some("s@example.net"));
}

#[test]
fn haraka_counts_a_partial_delivery_once_with_its_peer() {
    let log = format!(
        "\
2026-12-04T22:25:12.486Z [INFO] [{UUID}.1.1] [outbound] secured verified=true cipher=TLS_AES_256_GCM_SHA384 version=TLSv1.3 error=null cn=mx.example.org
2026-12-04T22:25:12.488Z [NOTICE] [{UUID}.1.1] [outbound] recipient <gone@example.org> rejected: 550 5.1.1 User unknown
2026-12-04T22:25:12.532Z [NOTICE] [{UUID}.1.1] [outbound]  delivered file=1796423112447_1796423112447_0_9619_FQ01ej_1_vm domain=example.org host=mx.example.org ip=198.51.100.7 port=25 mode=SMTP tls=Y auth=N response=\"Ok: queued as 1\" delay=0.085 fails=0 rcpts=1/0/1
2026-12-04T22:25:12.533Z [INFO] [{UUID}.1.1] [outbound] bouncing mail: Some recipients failed: <gone@example.org>
"
    );
    let (events, stats) = haraka(&log);
    clean(&stats);
    let [delivered]: [MessageEvent; 1] = events.try_into().unwrap();
    assert_eq!((delivered.status, delivered.tls.version), (Some(Status::Delivered), Some(TlsVersion::Tls1_3)));
    assert_eq!(delivered.peer.ip, "198.51.100.7".parse().ok());
}

#[test]
fn haraka_ignores_lmtp_deliveries() {
    let log = format!(
        "\
2026-12-04T22:25:12.532Z [NOTICE] [{UUID}.1.1] [outbound]  delivered file=1796423112447_1796423112447_0_9619_FQ01ej_1_vm domain=corp.test host=/run/dovecot/lmtp ip=/run/dovecot/lmtp port=24 mode=LMTP tls=N auth=N response=\"2.0.0 <alice@corp.test> Saved\" delay=0.01 fails=0 rcpts=1/0/0
2026-12-04T22:25:13.532Z [NOTICE] [{UUID}.2.1] [outbound]  delivered file=1796423112447_1796423112447_0_9619_FQ01ek_1_vm domain=example.org host=mx.example.org ip=198.51.100.7 port=25 mode=SMTP tls=N auth=N response=\"Ok\" delay=0.01 fails=0 rcpts=1/0/0
"
    );
    let (events, stats) = haraka(&log);
    clean(&stats);
    let [delivered]: [MessageEvent; 1] = events.try_into().unwrap();
    assert_eq!(
        (delivered.recipient_domains.clone(), delivered.tls.version),
        (vec!["example.org".into()], Some(TlsVersion::None))
    );
}

#[test]
fn haraka_2_lines_quote_domain_and_host_and_name_old_tls_versions() {
    let log = format!(
        "\
2026-12-04T22:25:12.486Z [INFO] [{UUID}.1.1] [outbound] secured: cipher=ECDHE-RSA-AES256-SHA version=TLSv1/SSLv3 verified=true
2026-12-04T22:25:12.532Z [NOTICE] [{UUID}.1.1] [outbound] delivered file=1796423112447_1796423112447_0_9619_FQ01ej_1_vm domain=\"example.org\" host=\"mx.example.org\" ip=198.51.100.7 port=25 mode=SMTP tls=Y auth=N response=\"Ok: queued as 1\" delay=0.085 fails=0 rcpts=2/0/0
"
    );
    let (events, stats) = haraka(&log);
    clean(&stats);
    let [delivered]: [MessageEvent; 1] = events.try_into().unwrap();
    assert_eq!((delivered.tls.version, delivered.tls.trust), (Some(TlsVersion::Unknown), Some(Trust::Trusted)));
    assert_eq!(delivered.peer.host.as_deref(), Some("mx.example.org"));
    assert_eq!((delivered.recipient_domains.clone(), delivered.recipients), (vec!["example.org".into()], Some(2)));
}
