//! Year-less times take their year from the file: a log last written on 2 January holds the
//! December before it.

use std::fs::File;
use std::time::{Duration, SystemTime};

use mailflow_component::{CollectContext, Emitter};
use mailflow_config::Config;

#[test]
fn year_comes_from_the_files_modification_time() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    std::fs::write(&log, "Dec 31 23:00:00 mx app: sent A\nJan  1 01:00:00 mx app: sent B\n").unwrap();
    // 2027-01-02T12:00:00Z
    let modified = SystemTime::UNIX_EPOCH + Duration::from_secs(1_798_891_200);
    File::options().write(true).open(&log).unwrap().set_modified(modified).unwrap();
    let text = "[[collector]]\ntype = \"regex\"\npaths = [\"mail.log\"]\ntime_format = \"syslog\"\n\
                [[collector.pattern]]\nregex = '^(?P<time>\\w+ +\\d+ [\\d:]+) mx app: sent (?P<queue_id>\\w)'\n\
                emit = \"outbound\"\n";
    let config = Config::parse(text, &dir.path().join("m.toml"), &|_| None).unwrap();
    let collector = mailflow_collector_regex::build(&config.collectors[0]).unwrap();
    let mut times = Vec::new();
    let mut push = |e: mailflow_core::MessageEvent| times.push(e.time.to_rfc3339());
    let mut out = Emitter::new(&mut push);
    let start = chrono::DateTime::UNIX_EPOCH;
    let ctx = CollectContext {
        source: "t",
        site: &config.site,
        start,
        end: chrono::Utc::now(),
        report_start: start,
        resume: None,
    };
    collector.collect(&ctx, &mut out).unwrap();
    assert_eq!(times, ["2026-12-31T23:00:00+00:00", "2027-01-01T01:00:00+00:00"]);
}
