//! Rendering the dashboard for a fleet: 30 days × 50 connectors. Prints the page size, which must
//! stay under 1 MB; the time Chromium takes to draw it is in the browser test's log.

use criterion::{Criterion, criterion_group, criterion_main};
use mailflow_sink_html::{HtmlConfig, Templates};

fn render(c: &mut Criterion) {
    let report = mailflow_testkit::fleet_report(30, 50);
    let templates = Templates::new(None);
    let config = HtmlConfig::new("unused.html");
    let page = templates.render(&report, &config).unwrap();
    println!("page for 30 days × 50 connectors: {} bytes ({:.0}% of 1 MB)", page.len(), page.len() as f64 / 1e4);
    c.bench_function("render 30 days x 50 connectors", |b| b.iter(|| templates.render(&report, &config).unwrap()));
}

criterion_group!(benches, render);
criterion_main!(benches);
