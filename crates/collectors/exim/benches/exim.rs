//! Throughput of the Exim collector (`cargo bench -p mailflow-collector-exim`) on a generated
//! main log of about 60 MB: the lines of the lab log (`tests/lab`) as templates, with message
//! ids, addresses and times varied. First the line parser alone, then the whole collector
//! (`collect_text`: reading, parsing, tracking messages, building events).

use std::hint::black_box;
use std::io::Write;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mailflow_collector_exim::parse;
use mailflow_component::Emitter;

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// An Exim 4.96 message id for the `n`th message.
fn id(n: u64) -> String {
    let mut digits = [0u8; 14];
    let mut v = n;
    for d in digits.iter_mut().rev() {
        *d = BASE62[(v % 62) as usize];
        v /= 62;
    }
    let s = String::from_utf8(digits.to_vec()).unwrap();
    format!("1x{}-{}-{}", &s[2..6], &s[6..12], &s[12..14])
}

/// About `bytes` of log: per message a connection, an arrival, its deliveries and `Completed`;
/// inbound with TLS 1.3, 1.2 or none, outbound with several recipients, some deferred first,
/// and a rejected relay attempt now and then.
fn log(bytes: usize) -> Vec<u8> {
    let mut text = Vec::with_capacity(bytes + 4096);
    let mut n = 0u64;
    while text.len() < bytes {
        n += 1;
        let (secs, ip) = (n / 20, n % 250 + 2);
        let t = format!(
            "2026-12-{:02} {:02}:{:02}:{:02}",
            1 + secs / 86_400 % 28,
            secs / 3600 % 24,
            secs / 60 % 60,
            secs % 60
        );
        let id = id(n);
        let x = match n % 4 {
            0 => " X=TLS1.3:TLS_AES_256_GCM_SHA384:256 CV=no",
            1 => " X=TLS1.2:ECDHE_X25519__RSA_PSS_RSAE_SHA256__AES_256_GCM:256 CV=no",
            2 => " X=TLSv1.2:ECDHE-RSA-AES256-GCM-SHA384:256 CV=yes",
            _ => "",
        };
        let p = if x.is_empty() { "esmtp" } else { "esmtps" };
        writeln!(
            text,
            "{t} SMTP connection from [198.51.{}.{ip}]:{} (TCP/IP connection count = 3)",
            n % 200,
            40000 + n % 20000
        )
        .unwrap();
        if n.is_multiple_of(3) {
            // Outbound: an internal client relays to two recipients at one MX, one at another.
            writeln!(text, "{t} {id} <= app{n}@corp.example H=app.corp.example [192.0.2.{ip}]:{} P={p}{x} S={} id={n}.{ip}@corp.example for u{n}@example.net v{n}@example.net w{n}@example.org", 30000 + n % 30000, 1000 + n % 9000).unwrap();
            if n.is_multiple_of(15) {
                writeln!(text, "{t} {id} == w{n}@example.org R=dnslookup T=remote_smtp defer (-44) H=mx.example.org [203.0.113.{ip}]: SMTP error from remote mail server after RCPT TO:<w{n}@example.org>: 451 4.7.1 Greylisted").unwrap();
            }
            writeln!(text, "{t} {id} => u{n}@example.net R=dnslookup T=remote_smtp S={} H=mx{}.example.net [203.0.113.{ip}]{x} C=\"250 2.0.0 Ok: queued as 4Q{n}\"", 1100 + n % 9000, n % 3).unwrap();
            writeln!(text, "{t} {id} -> v{n}@example.net R=dnslookup T=remote_smtp S={} H=mx{}.example.net [203.0.113.{ip}]{x} C=\"250 2.0.0 Ok: queued as 4Q{n}\"", 1100 + n % 9000, n % 3).unwrap();
            writeln!(text, "{t} {id} => w{n}@example.org R=dnslookup T=remote_smtp S={} H=mx.example.org [198.51.100.{ip}]{x} C=\"250 OK id={n}\"", 1100 + n % 9000).unwrap();
        } else {
            writeln!(text, "{t} {id} <= s{n}@ext{}.example H=mail{n}.ext.example (helo{n}) [198.51.{}.{ip}]:{} P={p}{x} S={} id=m{n}@ext.example for bob@corp.example", n % 40, n % 200, 40000 + n % 20000, 1000 + n % 9000).unwrap();
            writeln!(text, "{t} {id} => bob <bob@corp.example> R=local_user T=local_delivery S=0").unwrap();
        }
        writeln!(
            text,
            "{t} SMTP connection from (helo{n}) [198.51.{}.{ip}]:{} closed by QUIT",
            n % 200,
            40000 + n % 20000
        )
        .unwrap();
        writeln!(text, "{t} {id} Completed").unwrap();
        if n.is_multiple_of(10) {
            writeln!(
                text,
                "{t} H=(vm) [198.51.100.{ip}]{x} F=<s{n}@ext.example> rejected RCPT <v@partner.test>: relaying denied"
            )
            .unwrap();
        }
    }
    text
}

fn exim(c: &mut Criterion) {
    let text = log(60 << 20);
    let mut group = c.benchmark_group("exim");
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.sample_size(10);
    group.bench_function("parse lines", |b| {
        b.iter(|| {
            let mut relevant = 0u32;
            for line in memchr::memchr_iter(b'\n', &text).scan(0, |start, end| {
                let line = &text[*start..end];
                *start = end + 1;
                Some(line)
            }) {
                let Some(Ok((_, rest))) = parse::stamp(line) else { continue };
                if let Ok((Some(_), record)) = parse::body(rest) {
                    relevant += u32::from(!matches!(record, parse::Record::Irrelevant));
                }
            }
            black_box(relevant)
        })
    });
    group.bench_function("collect_text", |b| {
        b.iter(|| {
            let mut events = 0u32;
            let mut count = |_| events += 1;
            let mut out = Emitter::new(&mut count);
            mailflow_collector_exim::collect_text(&text, &mut out);
            assert_eq!(out.into_stats().skipped, 0);
            black_box(events)
        })
    });
    group.finish();
}

criterion_group!(benches, exim);
criterion_main!(benches);
