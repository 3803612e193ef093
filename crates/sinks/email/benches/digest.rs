//! Composing the digest for a fleet: 30 days × 50 connectors, plain and with every option (PNG
//! charts, the dashboard and the JSON report attached). Prints each message's size (mail servers
//! commonly refuse messages over 10 to 25 MB) and its HTML part's (Gmail clips an HTML part over
//! 102 kB behind a "View entire message" link).

use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use mailflow_config::Config;
use mailflow_sink_email::EmailSink;

fn sink(extra: &str) -> EmailSink {
    let text = format!(
        "[[sink]]\ntype = \"email\"\nsmtp_host = \"smtp.corp.example\"\nfrom = \"mailflow@corp.example\"\n\
         to = [\"postmaster@corp.example\"]\n{extra}"
    );
    let config = Config::parse(&text, Path::new("/etc/mailflow/mailflow.toml"), &|_| None).unwrap();
    EmailSink::from_section(&config.sinks[0]).unwrap()
}

fn compose(c: &mut Criterion) {
    let report = mailflow_testkit::fleet_report(30, 50);
    for (name, extra) in
        [("plain", ""), ("charts and attachments", "png_charts = true\nattach_html = true\nattach_json = true\n")]
    {
        let sink = sink(extra);
        let message = sink.compose(&report).unwrap();
        let html = mail_parser::MessageParser::default().parse(&message).unwrap().body_html(0).unwrap().len();
        println!("digest for 30 days × 50 connectors, {name}: {} bytes, HTML part {html} bytes", message.len());
        c.bench_function(&format!("compose 30 days x 50 connectors, {name}"), |b| {
            b.iter(|| sink.compose(&report).unwrap())
        });
    }
}

criterion_group!(benches, compose);
criterion_main!(benches);
