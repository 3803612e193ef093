//! Throughput of the Sendmail collector (`cargo bench -p mailflow-collector-sendmail`) on a
//! generated log of about 60 MB: real lines of Sendmail 8.17 (sessions with and without TLS,
//! background deliveries, local mail, rejections, a deferral then delivery through a second MX,
//! LogLevel 10 chatter and other programs)
//! with varied queue ids, pids and addresses. The line parser alone, then the whole collector.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mailflow_collector_sendmail::parse;
use mailflow_component::{Emitter, syslog};

/// One message's lines: `{t}` time, `{q}` queue id, `{p}` session pid, `{c}` child pid,
/// `{a}` client address byte, `{r}` recipient number.
const TEMPLATES: &[&str] = &[
    "{t} mx1 sm-mta[{p}]: NOQUEUE: connect from mail{a}.example.net [192.0.2.{a}]
{t} mx1 sm-mta[{p}]: tls_srv_features=(null), relay=mail{a}.example.net [192.0.2.{a}]
{t} mx1 sm-mta[{p}]: STARTTLS=server, relay=mail{a}.example.net [192.0.2.{a}], version=TLSv1.3, verify=NOT, cipher=TLS_AES_256_GCM_SHA384, bits=256/256
{t} mx1 sm-mta[{p}]: {q}: from=<sender{r}@example.net>, size=4{r}, class=0, nrcpts=1, msgid=<{q}.{r}@example.net>, bodytype=8BITMIME, proto=ESMTPS, daemon=MTA-v4, relay=mail{a}.example.net [192.0.2.{a}]
{t} mx1 sm-mta[{c}]: {q}: to=<user{r}@corp.example>, delay=00:00:00, xdelay=00:00:00, mailer=local, pri=34{r}, dsn=2.0.0, stat=Sent
{t} mx1 dovecot[900]: lda(user{r}): sieve: msgid=<{q}.{r}@example.net>: stored mail into mailbox 'INBOX'
",
    "{t} mx1 sm-mta[{p}]: NOQUEUE: connect from [10.0.{a}.7]
{t} mx1 sm-mta[{p}]: {q}: from=<app{r}@corp.example>, size=2{r}, class=0, nrcpts=2, msgid=<{q}@corp.example>, proto=ESMTP, daemon=MTA-v4, relay=app.corp.example [10.0.{a}.7]
{t} mx1 sm-mta[{c}]: STARTTLS=client, relay=mx{a}.partner.example., version=TLSv1.2, verify=OK, cipher=ECDHE-RSA-AES256-GCM-SHA384, bits=256/256
{t} mx1 sm-mta[{c}]: AUTH=client, relay=mx{a}.partner.example., mech=, bits=0
{t} mx1 sm-mta[{c}]: {q}: to=<a{r}@partner{a}.example>,<b{r}@partner{a}.example>, ctladdr=<app{r}@corp.example> (1000/1000), delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=12{r}, relay=mx{a}.partner.example. [198.51.100.{a}], dsn=2.0.0, stat=Sent (2.0.0 Ok: queued as 4Q{r})
",
    "{t} mx1 sm-mta[{p}]: NOQUEUE: connect from [203.0.113.{a}]
{t} mx1 sm-mta[{p}]: {q}: ruleset=check_rcpt, arg1=<victim{r}@elsewhere.example>, relay=[203.0.113.{a}], reject=550 5.7.1 <victim{r}@elsewhere.example>... Relaying denied. IP name lookup failed [203.0.113.{a}]
{t} mx1 sm-mta[{p}]: {q}: from=<spam{r}@spam.example>, size=1655, class=0, nrcpts=0, proto=ESMTP, daemon=MTA-v4, relay=[203.0.113.{a}]
{t} mx1 sm-mta[{p}]: STARTTLS=server, relay=[198.51.100.{a}], version=TLSv1.2, verify=NOT, cipher=ECDHE-RSA-AES256-GCM-SHA384, bits=256/256
{t} mx1 sm-mta[{p}]: {q}a: from=<list{r}@lists.example>, size=9{r}, class=0, nrcpts=1, msgid=<{q}@lists.example>, proto=ESMTPS, daemon=MTA-v4, relay=[198.51.100.{a}]
{t} mx1 sm-mta[{c}]: {q}a: to=<slow{r}@slow.example>, ctladdr=<list@corp.example> (8/0), delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=32{r}, relay=mx.slow.example. [198.51.100.200], dsn=4.3.0, reply=451 4.3.0 Try again later, stat=Deferred: 451 4.3.0 Try again later
{t} mx1 sm-mta[{c}]: {q}a: to=<slow{r}@slow.example>, ctladdr=<list@corp.example> (8/0), delay=00:00:02, xdelay=00:00:01, mailer=esmtp, pri=32{r}, relay=mx2.slow.example. [198.51.100.201], dsn=2.0.0, stat=Sent (ok)
{t} mx1 opendkim[800]: {q}a: DKIM verification successful
",
];

fn log(bytes: usize) -> Vec<u8> {
    let mut text = String::with_capacity(bytes + 4096);
    let mut n: u64 = 0;
    while text.len() < bytes {
        let seconds = n / 4;
        let (day, rest) = (4 + seconds / 86_400 % 20, seconds % 86_400);
        let t = format!("Dec {day:>2} {:02}:{:02}:{:02}", rest / 3600, rest / 60 % 60, rest % 60);
        let pid = 1000 + n % 60_000;
        let q = format!("6B{day:02}{:06}{:06}", n % 1_000_000, pid);
        let template = TEMPLATES[(n % 7 % 3) as usize];
        let line = template
            .replace("{t}", &t)
            .replace("{q}", &q)
            .replace("{p}", &pid.to_string())
            .replace("{c}", &(pid + 1).to_string())
            .replace("{a}", &(n % 250 + 1).to_string())
            .replace("{r}", &(n % 9973).to_string());
        text.push_str(&line);
        n += 1;
    }
    text.into_bytes()
}

fn sendmail(c: &mut Criterion) {
    let text = log(60 << 20);
    let mut group = c.benchmark_group("sendmail");
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.sample_size(10);
    group.bench_function("parse lines", |b| {
        b.iter(|| {
            let mut relevant = 0u32;
            let mut start = 0;
            for end in memchr::memchr_iter(b'\n', &text) {
                let line = &text[start..end];
                start = end + 1;
                let Ok(header) = syslog::parse(line) else { continue };
                if header.program.starts_with(b"sm-") {
                    relevant += u32::from(!matches!(parse::record(header.message), Ok(parse::Record::Irrelevant)));
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
            mailflow_collector_sendmail::collect_text(&text, &mut out);
            assert_eq!(out.into_stats().skipped, 0);
            black_box(events)
        })
    });
    group.finish();
}

criterion_group!(benches, sendmail);
criterion_main!(benches);
