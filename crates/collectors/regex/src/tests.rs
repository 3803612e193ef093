//! Config errors: every mistake in a pattern is caught when the collector is built, naming the
//! section, the pattern and what is wrong.

use mailflow_config::Config;

/// The error `build` gives for a collector with these options.
fn error(options: &str) -> String {
    let text = format!("[[collector]]\ntype = \"regex\"\nname = \"mta\"\npaths = [\"x.log\"]\n{options}");
    let config = Config::parse(&text, std::path::Path::new("/etc/mailflow/m.toml"), &|_| None).unwrap();
    match crate::build(&config.collectors[0]) {
        Ok(_) => panic!("built: {options}"),
        Err(e) => e.to_string(),
    }
}

const EMIT: &str = "[[collector.pattern]]\nregex = '^(?P<time>\\S+) sent'\nemit = \"outbound\"\n";

#[test]
fn a_bad_regex_names_its_pattern() {
    let e = error("[[collector.pattern]]\nname = \"tls\"\nregex = '^(?P<time>\\S+ (unclosed'\nemit = \"inbound\"\n");
    assert!(e.contains("[[collector]] \"mta\" (type \"regex\")"), "{e}");
    assert!(e.contains("pattern \"tls\": `regex` does not compile"), "{e}");
}

#[test]
fn a_group_that_names_no_field_is_an_error() {
    let e = error(&format!("{EMIT}[[collector.pattern]]\nregex = '(?P<key>\\d+) (?P<tls_vers>\\S+)'\n"));
    assert!(e.contains("pattern #2: the group `tls_vers` names no field; use one of time, direction"), "{e}");
    // `_` groups are the admin's own; key parts are keys.
    let ok = format!("{EMIT}[[collector.pattern]]\nregex = '(?P<key>\\d+) (?P<key_host>\\S+) (?P<_x>\\S+)'\n");
    let text = format!("[[collector]]\ntype = \"regex\"\npaths = [\"x.log\"]\n{ok}");
    let config = Config::parse(&text, std::path::Path::new("m.toml"), &|_| None).unwrap();
    assert!(crate::build(&config.collectors[0]).is_ok());
}

#[test]
fn patterns_must_be_able_to_do_what_they_say() {
    let cases = [
        ("", "no patterns"),
        ("[[collector.pattern]]\nregex = '(?P<key>\\d+) (?P<sender>\\S+)'\n", "no pattern has `emit`"),
        (
            "[[collector.pattern]]\nregex = 'sent'\nemit = \"outbound\"\n",
            "pattern #1: it has `emit` but no `time` group",
        ),
        (
            "[[collector.pattern]]\nregex = '(?P<time>\\S+) sent'\nemit = \"outbound\"\nhold = true\n",
            "pattern #1: `hold` needs a `key` or `message_key` group",
        ),
        (&format!("{EMIT}[[collector.pattern]]\nregex = 'x'\n"), "pattern #2: it does nothing"),
        (
            &format!("{EMIT}[[collector.pattern]]\nregex = '(?P<key>x)'\nhold = true\n"),
            "`hold` holds an event, so it needs `emit`",
        ),
        (
            &format!("{EMIT}set = {{ tls_version = \"TLSv9\" }}\n"),
            "pattern #1: `set.tls_version` must be a TLS version",
        ),
        (&format!("{EMIT}default = {{ time = \"now\" }}\n"), "`default.time` is not a field that can be set"),
        (&format!("{EMIT}map = {{ tls = {{ N = \"none\" }} }}\n"), "pattern #1: `map`: `tls` is not a field"),
        (&format!("map = {{ stat = {{}} }}\n{EMIT}"), "`map`: `stat` is not a field"),
        (&format!("{EMIT}contains = \"\"\n"), "`contains` is empty"),
        (&format!("time_format = \"iso\"\n{EMIT}"), "`time_format` \"iso\" is unknown"),
        (&format!("max_open_keys = 0\n{EMIT}"), "must be above 0"),
        (&format!("year = 1969\n{EMIT}"), "`year` must be between 1970 and 9999"),
        (&format!("{EMIT}emit_as = \"x\"\n"), "unknown field `emit_as`"),
        ("[[collector.pattern]]\nregex = '(?P<time>x)'\nemit = \"sideways\"\n", "unknown variant `sideways`"),
        (&format!("time_format = []\n{EMIT}"), "`time_format` is an empty list"),
        (&format!("time_format = 5\n{EMIT}"), "a time format or a list of them"),
        (&format!("time_format = [\"syslog\", \"iso\"]\n{EMIT}"), "`time_format` \"iso\" is unknown"),
        (
            "[[collector.pattern]]\nregex = '(?P<time>\\S+) (?P<key>\\d+)'\nemit = \"outbound\"\nhold_secs = 60\n",
            "pattern #1: `hold_secs` bounds how long an event is held, so it needs `hold = true`",
        ),
        (
            &format!("{EMIT}[[collector.pattern]]\nregex = '(?P<time>x)'\nignore = true\nemit = \"inbound\"\n"),
            "pattern #2: `ignore` makes the collector ignore the line",
        ),
        (
            &format!("{EMIT}[[collector.pattern]]\nregex = '(?P<key>\\d+) bounce'\ndrop = true\n"),
            "pattern #2: `drop` needs a `message_key` group",
        ),
        (
            &format!(
                "{EMIT}[[collector.pattern]]\nregex = '(?P<time>\\S+) (?P<message_key>\\d+)'\ndrop = true\nemit = \"inbound\"\n"
            ),
            "pattern #2: `drop` discards its key's events, so it cannot also have `emit` or `end`",
        ),
        (
            &format!("{EMIT}unless_delivered = true\n"),
            "pattern #1: `unless_delivered` needs `emit` and a `message_key` group",
        ),
    ];
    for (options, want) in cases {
        let e = error(options);
        assert!(e.contains(want), "{options}\n=> {e}");
    }
}

#[test]
fn patterns_that_only_ignore_or_drop_are_valid() {
    let text = format!(
        "[[collector]]\ntype = \"regex\"\npaths = [\"x.log\"]\n{EMIT}\
         [[collector.pattern]]\nregex = 'loopback'\nignore = true\n\
         [[collector.pattern]]\nregex = '(?P<message_key>\\w+) bounce'\ndrop = true\n"
    );
    let config = Config::parse(&text, std::path::Path::new("m.toml"), &|_| None).unwrap();
    assert!(crate::build(&config.collectors[0]).is_ok());
}

#[test]
fn the_sample_config_builds() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sample.toml");
    let config = Config::load(&path).unwrap();
    crate::build(&config.collectors[0]).unwrap();
}

#[test]
fn classes_are_ascii_unless_asked_and_literals_may_be_any_text() {
    use mailflow_component::Emitter;
    let text = "[[collector]]\ntype = \"regex\"\npaths = [\"x.log\"]\ntime_format = \"unix\"\n\
                [[collector.pattern]]\nregex = '^(?P<time>\\d+) zugestellt für (?P<peer_host>\\w+)(?u:\\w*) (?P<_u>(?u)\\w+)$'\n\
                emit = \"outbound\"\n";
    let config = Config::parse(text, std::path::Path::new("m.toml"), &|_| None).unwrap();
    let options: crate::RegexConfig = config.collectors[0].options().unwrap();
    let collector = crate::RegexCollector::new(options, Vec::new()).unwrap();
    let mut hosts = Vec::new();
    let mut push = |e: mailflow_core::MessageEvent| hosts.push(e.peer.host);
    let mut out = Emitter::new(&mut push);
    crate::collect_text(&collector, "1796400000 zugestellt für mxé grüße\n".as_bytes(), &mut out);
    drop(out);
    assert_eq!(hosts, [Some("mx".to_string())]);
}
