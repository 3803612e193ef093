//! Throughput of the `regex` collector with the shipped `config/haraka.toml` on a generated
//! Haraka log (`cargo bench -p mailflow-collector-regex`), in lines per second: with the
//! patterns' `contains` filters as shipped, and without them (the `RegexSet` pass alone).

use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mailflow_component::{CollectContext, Collector, Emitter};
use mailflow_config::Config;

/// `connections` Haraka connections of one to three transactions each, about one in three
/// relayed and delivered outbound, with the lines of the plugins in between.
fn log(connections: u32) -> (Vec<u8>, u64) {
    let mut text = String::new();
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut ms = 0u64;
    for c in 0..connections {
        let mut stamp = || {
            ms += 7;
            let (s, m) = (ms / 1000, ms % 1000);
            format!("2026-12-04T{:02}:{:02}:{:02}.{m:03}Z", (s / 3600) % 24, (s / 60) % 60, s % 60)
        };
        let uuid = format!("{:08X}-86E9-4863-A3DC-{:012X}", c, next() & 0xffff_ffff_ffff);
        let relay = next() % 3 == 0;
        let ip = if relay { "127.0.0.10".to_string() } else { format!("198.51.{}.{}", next() % 250, next() % 250) };
        let mut line = |s: String| {
            text.push_str(&s);
            text.push('\n');
        };
        line(format!(
            "{} [NOTICE] [{uuid}] [core] connect ip={ip} port={} local_ip=127.0.0.1 local_port=25",
            stamp(),
            40000 + c % 20000
        ));
        line(format!(
            "{} [INFO] [{uuid}] [core]  hook=connect_init plugin=relay function=acl params=\"\" retval=OK msg=\"\"",
            stamp()
        ));
        if next() % 5 != 0 {
            let version = ["TLSv1.3", "TLSv1.2", "TLSv1.3", "TLSv1"][(next() % 4) as usize];
            line(format!(
                "{} [INFO] [{uuid}] [tls] secured: cipher=TLS_AES_256_GCM_SHA384 version={version} verified=false",
                stamp()
            ));
            line(format!(
                "{} [INFO] [{uuid}] [core]  hook=unrecognized_command plugin=tls function=upgrade_connection params=STARTTLS retval=OK msg=\"\"",
                stamp()
            ));
        }
        let transactions = 1 + next() % 3;
        for t in 1..=transactions {
            let domain = if relay { "partner13.test" } else { "corp.test" };
            line(format!("{} [NOTICE] [{uuid}.{t}] [core] sender <s{c}@ext.example> code=CONT msg=\"\"", stamp()));
            line(format!(
                "{} [INFO] [{uuid}.{t}] [core]  hook=rcpt plugin=rcpt_to.in_host_list function=hook_rcpt params=<u{t}@{domain}> retval=OK msg=\"\"",
                stamp()
            ));
            line(format!(
                "{} [NOTICE] [{uuid}.{t}] [core] recipient <u{t}@{domain}> code=OK msg=\"\" sender=s{c}@ext.example",
                stamp()
            ));
            line(format!("{} [INFO] [{uuid}.{t}] [core] DATA line length (1105) exceeds limit of 992 bytes", stamp()));
            line(format!(
                "{} [NOTICE] [{uuid}.{t}] [core] message mid=<m{c}.{t}@ext.example> size={} rcpts=1/0/0 delay=0 code=CONT msg=\"\"",
                stamp(),
                500 + next() % 50000
            ));
            line(format!(
                "{} [INFO] [-] [core] [smtp_client] uuid=65E813FB-C207-4F31-8097-737DD51289A8 host=127.0.0.1 port=2626 created",
                stamp()
            ));
            line(format!("{} [INFO] [{uuid}.{t}] [queue/smtp_forward] forwarding to 127.0.0.1:2626", stamp()));
            line(format!(
                "{} [INFO] [{uuid}.{t}] [core]  hook=queue plugin=queue/smtp_forward function=queue_forward params=\"\" retval=OK msg=\"ok\"",
                stamp()
            ));
            line(format!(
                "{} [NOTICE] [{uuid}.{t}] [core] queue code=OK msg=\"2.0.0 Ok: stored ({uuid}.{t})\"",
                stamp()
            ));
            if relay {
                line(format!("{} [INFO] [-] [outbound] Transaction delivery for domain: {domain}", stamp()));
                line(format!(
                    "{} [INFO] [{uuid}.{t}.1] [outbound] secured verified=false cipher=TLS_AES_256_GCM_SHA384 version=TLSv1.3 error=UNABLE_TO_VERIFY_LEAF_SIGNATURE cn=peer.corp.test",
                    stamp()
                ));
                line(format!(
                    "{} [NOTICE] [{uuid}.{t}.1] [outbound]  delivered file=1796_{c}_{t}_vm domain={domain} host=mx.{domain} ip=127.0.3.13 port=25 mode=SMTP tls=Y auth=N response=\"Ok: queued\" delay=0.066 fails=0 rcpts=1/0/0",
                    stamp()
                ));
            }
        }
        line(format!(
            "{} [NOTICE] [{uuid}.{transactions}] [core] disconnect ip={ip} rdns=NXDOMAIN helo=client.test relay=N early=N esmtp=Y tls=Y pipe=N errors=0 txns={transactions} rcpts=1/0/0 msgs=1/0/0 bytes=240 lr=\"\" time=0.085",
            stamp()
        ));
    }
    let lines = text.lines().count() as u64;
    (text.into_bytes(), lines)
}

fn collector(dir: &Path, filtered: bool) -> Box<dyn Collector> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../config/haraka.toml");
    let mut text = std::fs::read_to_string(root).unwrap().replacen("/var/log/haraka.log*", "haraka.log", 1);
    if !filtered {
        text = text.lines().filter(|l| !l.starts_with("contains = ")).map(|l| format!("{l}\n")).collect();
    }
    let config = Config::parse(&text, &dir.join("mailflow.toml"), &|_| None).unwrap();
    mailflow_collector_regex::build(&config.collectors[0]).unwrap()
}

fn run(collector: &dyn Collector) -> u64 {
    let site = Default::default();
    let start = chrono::DateTime::UNIX_EPOCH;
    let ctx = CollectContext {
        source: "haraka",
        site: &site,
        start,
        end: "2027-01-01T00:00:00Z".parse().unwrap(),
        report_start: start,
        resume: None,
    };
    let mut events = 0u64;
    let mut count = |_| events += 1;
    let mut out = Emitter::new(&mut count);
    collector.collect(&ctx, &mut out).unwrap();
    drop(out);
    events
}

fn haraka(c: &mut Criterion) {
    let (text, lines) = log(20_000);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("haraka.log"), &text).unwrap();
    let mut group = c.benchmark_group("regex");
    group.throughput(Throughput::Elements(lines));
    group.sample_size(10);
    for (name, filtered) in [("haraka.toml", true), ("haraka.toml without contains", false)] {
        let collector = collector(dir.path(), filtered);
        let started = Instant::now();
        let events = run(collector.as_ref());
        let secs = started.elapsed().as_secs_f64();
        println!("{name}: {lines} lines, {events} events in {secs:.3} s: {:.0} lines/s", lines as f64 / secs);
        group.bench_function(name, |b| b.iter(|| black_box(run(collector.as_ref()))));
    }
    group.finish();
}

criterion_group!(benches, haraka);
criterion_main!(benches);
