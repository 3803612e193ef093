//! The shipped examples `config/haraka.toml` and `config/sendmail.toml`, exactly as shipped
//! (only `paths` pointed at the fixture), on real logs of those MTAs with known ground truth
//! (`tests/lab/*/truth.jsonl`, see `tests/lab/README.md`): the counts per direction, TLS version
//! and status must be the truth's.

use std::path::Path;

use mailflow_component::{CollectContext, Emitter, SourceStats};
use mailflow_config::Config;
use mailflow_core::{Direction, MessageEvent, Status, TlsVersion};
use mailflow_testkit::lab::{Counts, counted, truth_counts};

/// Runs the collector of `config/<example>` on the log in `tests/lab/<example stem>/`.
fn run(example: &str, shipped_paths: &str, log: &str) -> (Vec<MessageEvent>, SourceStats, Config) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let shipped = std::fs::read_to_string(root.join("../../../config").join(example)).unwrap();
    assert!(shipped.contains(shipped_paths), "{example} reads {shipped_paths}");
    let text = shipped.replacen(shipped_paths, &format!("paths = [\"{log}\"]"), 1);
    let lab = root.join("tests/lab").join(example.trim_end_matches(".toml"));
    let config = Config::parse(&text, &lab.join("mailflow.toml"), &|_| None).unwrap();
    let collector = mailflow_collector_regex::build(&config.collectors[0]).unwrap();
    let mut events = Vec::new();
    let mut push = |e| events.push(e);
    let mut out = Emitter::new(&mut push);
    let (start, end) = (chrono::DateTime::UNIX_EPOCH, "2027-01-31T00:00:00Z".parse().unwrap());
    let ctx = CollectContext { source: "lab", site: &config.site, start, end, report_start: start, resume: None };
    collector.collect(&ctx, &mut out).unwrap();
    let stats = out.into_stats();
    (events, stats, config)
}

/// The truth of the lab run beside `config/<example>`.
fn truth(example: &str) -> Counts {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lab").join(example.trim_end_matches(".toml"));
    truth_counts(&root.join("truth.jsonl"))
}

#[test]
fn haraka_example_counts_the_truth() {
    let (events, stats, config) = run("haraka.toml", r#"paths = ["/var/log/haraka.log*"]"#, "haraka.log");
    assert_eq!((stats.skipped, &stats.warnings, &stats.errors), (0, &vec![], &vec![]));
    assert_eq!(counted(&events, &config.site), truth("haraka.toml"));
    // Every inbound event has its peer and envelope; relayed mail is there too, as internal.
    let inbound: Vec<_> = events.iter().filter(|e| e.direction == Direction::Inbound).collect();
    assert_eq!(inbound.len(), 145, "every queued message");
    assert!(inbound.iter().all(|e| e.peer.ip.is_some() && e.sender.is_some() && e.size.is_some()));
    assert!(inbound.iter().all(|e| e.recipients.is_some() && !e.recipient_domains.is_empty()));
    let outbound: Vec<_> = events.iter().filter(|e| e.direction == Direction::Outbound).collect();
    assert!(outbound.iter().all(|e| e.recipient_domains.len() == 1), "one event per destination domain");
}

#[test]
fn sendmail_example_counts_the_truth() {
    let (events, stats, config) = run("sendmail.toml", r#"paths = ["/var/log/mail.log*"]"#, "mail.log");
    assert_eq!((stats.skipped, &stats.warnings, &stats.errors), (0, &vec![], &vec![]));
    assert_eq!(counted(&events, &config.site), truth("sendmail.toml"));
    let inbound: Vec<_> = events.iter().filter(|e| e.direction == Direction::Inbound).collect();
    assert_eq!(inbound.len(), 150, "every queued message");
    assert!(inbound.iter().all(|e| e.peer.ip.is_some() && e.sender.is_some() && e.queue_id.is_some()));
}

#[test]
fn sendmail_example_reads_the_fields_other_versions_add() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../config/sendmail.toml");
    let config = Config::load(&root).unwrap();
    let options: mailflow_collector_regex::RegexConfig = config.collectors[0].options().unwrap();
    let collector = mailflow_collector_regex::RegexCollector::new(options, Vec::new()).unwrap();
    let log = "\
Dec  4 10:00:00 mx sm-mta[100]: STARTTLS=server, relay=mail.example.net [192.0.2.5] (may be forged), version=TLSv1.3, verify=NO, cipher=TLS_AES_256_GCM_SHA384, bits=256/256
Dec  4 10:00:01 mx sm-mta[100]: 4B4A0G1a000100: from=<a@example.net>, size=1234, class=0, nrcpts=1, msgid=<x@example.net>, bodytype=8BITMIME, proto=ESMTPS, daemon=MTA, tls_verify=NO, auth=NONE, relay=mail.example.net [192.0.2.5] (may be forged)
Dec  4 10:00:02 mx sm-mta[101]: STARTTLS=client, relay=mx.example.org., version=TLSv1.2, verify=OK, cipher=ECDHE-RSA-AES256-GCM-SHA384, bits=256/256
Dec  4 10:00:03 mx sm-mta[101]: 4B4A0G1b000101: to=<b@example.org>, ctladdr=<a@corp.test> (1000/1000), delay=00:00:02, xdelay=00:00:01, mailer=esmtp, tls_verify=OK, pri=121234, relay=mx.example.org. [198.51.100.7], dsn=2.0.0, stat=Sent (OK id=1)
";
    let mut events = Vec::new();
    let mut push = |e| events.push(e);
    let mut out = Emitter::new(&mut push);
    mailflow_collector_regex::collect_text(&collector, log.as_bytes(), &mut out);
    assert_eq!(out.into_stats().skipped, 0);
    // Inbound events are held for a while (a milter may still refuse the message), so they may
    // come after the outbound ones.
    events.sort_by_key(|e| e.direction != Direction::Inbound);
    let [inbound, outbound]: [MessageEvent; 2] = events.try_into().unwrap();
    assert_eq!(inbound.tls.version, Some(TlsVersion::Tls1_3));
    assert_eq!(inbound.peer.host.as_deref(), Some("mail.example.net"));
    assert_eq!(inbound.peer.ip, "192.0.2.5".parse().ok());
    assert_eq!((inbound.service.as_deref(), inbound.size), (Some("MTA"), Some(1234)));
    assert_eq!(outbound.tls.version, Some(TlsVersion::Tls1_2));
    assert_eq!(outbound.tls.trust, Some(mailflow_core::Trust::Trusted));
    assert_eq!(
        (outbound.status, outbound.recipient_domains),
        (Some(Status::Delivered), vec!["example.org".to_string()])
    );
}
