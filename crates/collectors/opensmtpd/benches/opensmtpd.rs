//! Throughput of the OpenSMTPD collector (`cargo bench -p mailflow-collector-opensmtpd`) on a
//! generated log of about 60 MB: the lines of real sessions (the lab's OpenSMTPD 6.8 log) with
//! varied session ids, message ids, addresses and hosts, inbound and outbound, plaintext and
//! TLS, several messages per outbound session, deferrals and local deliveries.

use std::fmt::Write as _;
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mailflow_component::Emitter;

/// A small deterministic generator (xorshift), so every run measures the same log.
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
}

fn log(bytes: usize) -> Vec<u8> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut text = String::with_capacity(bytes + 4096);
    let (mut second, mut n) = (0u64, 0u64);
    let relays = ["mx.partner13.test", "mx.partner12.test", "mx.plain.test", "mx.legacy10.test"];
    let ciphers = ["TLSv1.3:TLS_AES_256_GCM_SHA384:256", "TLSv1.2:ECDHE-RSA-AES256-GCM-SHA384:256"];
    // One outbound session per relay, reconnected every 50 messages.
    let mut sessions = [(0u64, 0u32); 4];
    while text.len() < bytes {
        n += 1;
        second += rng.below(3);
        let stamp = format!(
            "Dec {:2} {:02}:{:02}:{:02}",
            1 + second / 86_400 % 28,
            second / 3600 % 24,
            second / 60 % 60,
            second % 60
        );
        let head = format!("{stamp} mx smtpd[3157]:");
        let sid = rng.next();
        let msgid = rng.next() as u32;
        let evp = (u64::from(msgid) << 32) | (rng.next() & 0xffff_ffff);
        let outbound = rng.below(2) == 0;
        let (ip, domain) = if outbound {
            (format!("127.0.0.{}", 10 + rng.below(20)), format!("partner{}.test", rng.below(4)))
        } else {
            (format!("198.51.{}.{}", rng.below(256), rng.below(256)), "corp.test".to_string())
        };
        let from = format!("user{}@ext{}.example", rng.below(1000), rng.below(50));
        let to = format!("rcpt{}@{domain}", rng.below(1000));
        let _ = writeln!(text, "{head} {sid:016x} smtp connected address={ip} host=<unknown>");
        if rng.below(3) == 0 {
            let _ = writeln!(text, "{head} {sid:016x} smtp tls ciphers={}", ciphers[rng.below(2) as usize]);
        }
        let size = 300 + rng.below(9000);
        let _ = writeln!(text, "{head} {sid:016x} smtp message msgid={msgid:08x} size={size} nrcpt=1 proto=ESMTP");
        let _ = writeln!(text, "{head} {sid:016x} smtp envelope evpid={evp:016x} from=<{from}> to=<{to}>");
        let _ = writeln!(text, "{head} {sid:016x} smtp disconnected reason=quit");
        if !outbound {
            let mda = rng.next();
            let _ = writeln!(
                text,
                "{head} {mda:016x} mda delivery evpid={evp:016x} from=<{from}> to=<{to}> rcpt=<{to}> user=rcpt \
                 delay=0s result=Ok stat=Delivered"
            );
            continue;
        }
        let r = rng.below(4) as usize;
        let (session, used) = &mut sessions[r];
        if *used == 0 {
            *session = rng.next();
            let _ = writeln!(
                text,
                "{head} {:016x} mta connecting address=smtp://127.0.3.{}:25 host={}",
                session,
                10 + r,
                relays[r]
            );
            let _ = writeln!(text, "{head} {session:016x} mta connected");
            if r != 2 {
                let _ = writeln!(text, "{head} {session:016x} mta tls ciphers={}", ciphers[r % 2]);
            }
        }
        let result =
            if n % 17 == 0 { ("TempFail", "451 4.7.1 Try again later") } else { ("Ok", "250 2.0.0 Ok: queued") };
        let _ = writeln!(
            text,
            "{head} {session:016x} mta delivery evpid={evp:016x} from=<{from}> to=<{to}> rcpt=<-> source=\"127.0.0.1\" \
             relay=\"127.0.3.{} ({})\" delay=1s result=\"{}\" stat=\"{}\"",
            10 + r,
            relays[r],
            result.0,
            result.1
        );
        *used += 1;
        if *used == 50 {
            let _ = writeln!(text, "{head} {session:016x} mta disconnected reason=quit messages=50");
            *used = 0;
        }
    }
    text.into_bytes()
}

fn opensmtpd(c: &mut Criterion) {
    let text = log(60 * 1024 * 1024);
    let mut group = c.benchmark_group("opensmtpd");
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.sample_size(10);
    group.bench_function("collect_text", |b| {
        b.iter(|| {
            let mut events = 0u64;
            let mut count = |_| events += 1;
            let mut out = Emitter::new(&mut count);
            mailflow_collector_opensmtpd::collect_text(&text, &mut out);
            drop(out);
            black_box(events)
        })
    });
    group.finish();
}

criterion_group!(benches, opensmtpd);
criterion_main!(benches);
