use std::path::Path;

use serde::Deserialize;

use super::*;

fn env(name: &str) -> Option<String> {
    (name == "LOGS").then(|| "/var/log".to_string())
}

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("/etc/mailflow/mailflow.toml"), &env)
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct FilesConfig {
    paths: Vec<String>,
    #[serde(default)]
    format: Option<String>,
}

const GOOD: &str = r#"
[site]
timezone = "Europe/Berlin"
internal_networks = ["10.0.0.0/8"]

[[connector]]
name = "Partner"
direction = "outbound"
relay = ["mx*.partner.example"]

[insights]
min_messages = 5

[[collector]]
type = "events"
name = "mx1"
paths = ["${LOGS}/events.jsonl"]

[[collector]]
type = "events"
paths = ["b.csv"]
format = "csv"

[[sink]]
type = "json"
"#;

#[test]
fn loads_sections_names_and_options() {
    let c = parse(GOOD).unwrap();
    assert_eq!(c.site.timezone.name(), "Europe/Berlin");
    assert_eq!(c.connectors.len(), 1);
    assert_eq!(c.insights.min_messages, 5);
    assert_eq!(c.insights.no_tls_over, 0.25, "defaults fill the rest");
    let names: Vec<_> = c.collectors.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["mx1", "events"], "name defaults to the type");
    let opts: FilesConfig = c.collectors[0].options().unwrap();
    assert_eq!(opts.paths, ["/var/log/events.jsonl"]);
    let opts: FilesConfig = c.collectors[1].options().unwrap();
    assert_eq!(opts.format.as_deref(), Some("csv"));
    assert_eq!(c.collectors[1].resolve_path(Path::new("b.csv")), Path::new("/etc/mailflow/b.csv"));
    assert_eq!(c.collectors[1].resolve_path(Path::new("-")), Path::new("-"));
    assert_eq!(c.sinks[0].name, "json");
}

#[test]
fn component_option_errors_point_at_the_key() {
    let text = GOOD.replace("format = \"csv\"", "fromat = \"csv\"");
    let c = parse(&text).unwrap();
    let e = c.collectors[1].options::<FilesConfig>().unwrap_err();
    let line = text.lines().position(|l| l.starts_with("fromat")).unwrap() + 1;
    assert_eq!(e.position(), Some((line, 1)), "{e}");
    let shown = e.to_string();
    assert!(
        shown.starts_with(&format!(
            "/etc/mailflow/mailflow.toml:{line}:1: [[collector]] \"events\" (type \"events\"): unknown field `fromat`"
        )),
        "{shown}"
    );
    assert!(shown.contains("fromat = \"csv\""), "shows the line: {shown}");
}

#[test]
fn wrong_types_point_at_the_value() {
    let text = GOOD.replace("paths = [\"b.csv\"]", "paths = \"b.csv\"");
    let c = parse(&text).unwrap();
    let e = c.collectors[1].options::<FilesConfig>().unwrap_err();
    let line = text.lines().position(|l| l.starts_with("paths = \"b.csv\"")).unwrap() + 1;
    assert_eq!(e.position().map(|p| p.0), Some(line), "{e}");
    assert!(e.message().contains("invalid type"), "{e}");
}

#[test]
fn site_errors_name_line_column_and_key() {
    let e = parse("[site]\ntimezone = \"Mars/Olympus\"\n").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Invalid);
    assert_eq!(e.position(), Some((2, 12)), "{e}");
    let e = parse("[site]\ntimezon = \"UTC\"\n").unwrap_err();
    assert_eq!(e.position(), Some((2, 1)));
    assert!(e.message().contains("unknown field `timezon`"), "{e}");
    let e = parse("[sitee]\n").unwrap_err();
    assert!(e.message().contains("unknown field `sitee`"), "{e}");
}

#[test]
fn syntax_errors_have_positions() {
    let e = parse("[site]\ntimezone = \n").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Syntax);
    assert_eq!(e.position().map(|p| p.0), Some(2), "{e}");
}

#[test]
fn rule_and_threshold_errors_point_at_their_section() {
    let e = parse("[[connector]]\nname = \"A\"\ndirection = \"outbound\"\n\n[[connector]]\nname = \"B\"\ndirection = \"inbound\"\nrelay = [\"x\"]\n").unwrap_err();
    assert_eq!(e.position().map(|p| p.0), Some(5), "{e}");
    assert!(e.message().contains("connector #2 \"B\""), "{e}");
    let e = parse("[insights]\nno_tls_over = 25\n").unwrap_err();
    assert!(e.message().contains("0.25 = 25%"), "{e}");
    let e =
        parse("[[connector]]\nname = \"A\"\ndirection = \"outbound\"\ninsights = { legacy_tls = 5.0 }\n").unwrap_err();
    assert_eq!(e.position().map(|p| p.0), Some(1), "{e}");
    assert!(e.message().starts_with("connector #1 \"A\": insights: `legacy_tls`"), "{e}");
    let e = parse("[[connector]]\nname = \"A\"\ndirection = \"outbound\"\nrelay = []\n").unwrap_err();
    assert_eq!(e.position(), Some((4, 9)), "{e}");
    assert!(e.message().contains("an empty list matches nothing"), "{e}");
}

#[test]
fn missing_variables_are_errors_with_positions() {
    let e = parse("[[collector]]\ntype = \"events\"\npaths = [\"${NOPE}/x\"]\n").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::MissingVariable);
    assert_eq!(e.position(), Some((3, 10)), "{e}");
    assert!(e.message().contains("`NOPE` is not set"));
}

#[test]
fn a_variable_cannot_inject_toml() {
    let c = Config::parse("[[collector]]\ntype = \"events\"\npaths = [\"${EVIL}\"]\n", Path::new("m.toml"), &|_| {
        Some("x\"]\nformat = \"csv".to_string())
    })
    .unwrap();
    let opts: FilesConfig = c.collectors[0].options().unwrap();
    assert_eq!(opts.paths, ["x\"]\nformat = \"csv"]);
    assert_eq!(opts.format, None);
}

#[test]
fn component_names_are_unique_per_role() {
    let e = parse("[[collector]]\ntype = \"events\"\n[[collector]]\ntype = \"events\"\n").unwrap_err();
    assert!(e.message().contains("distinct `name`"), "{e}");
    assert_eq!(e.position().map(|p| p.0), Some(3), "{e}");
    let e = parse("[[sink]]\nname = \"x\"\n").unwrap_err();
    assert!(e.message().contains("missing field `type`"), "{e}");
}

#[test]
fn secrets_in_the_environment_are_not_in_debug_output() {
    let c = Config::parse("[[sink]]\ntype = \"email\"\npassword = \"${PW}\"\n", Path::new("m.toml"), &|_| {
        Some("hunter2".to_string())
    })
    .unwrap();
    assert!(!format!("{c:?}").contains("hunter2"));
}

#[test]
fn load_names_an_unreadable_file() {
    let e = Config::load(Path::new("/nonexistent/mailflow.toml")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Io);
    assert!(e.to_string().starts_with("/nonexistent/mailflow.toml: cannot read"), "{e}");
}

#[test]
fn secrets_come_from_a_value_or_a_file_never_both() {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct WithSecret {
        password: Option<Secret>,
        password_file: Option<std::path::PathBuf>,
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pw"), "hunter2\n").unwrap();
    std::fs::write(dir.path().join("empty"), "").unwrap();
    let section = |options: &str| {
        let text = format!("[[sink]]\ntype = \"email\"\n{options}\n");
        Config::parse(&text, &dir.path().join("m.toml"), &|_| Some("from-env".into())).unwrap().sinks.remove(0)
    };
    let secret = |options: &str| {
        let s = section(options);
        let o: WithSecret = s.options().unwrap();
        s.secret("password", o.password, o.password_file.as_deref())
    };
    assert_eq!(secret("password_file = \"pw\"").unwrap().unwrap().expose(), "hunter2");
    assert_eq!(secret("password = \"${PW}\"").unwrap().unwrap().expose(), "from-env");
    assert!(secret("").unwrap().is_none());
    let e = secret("password = \"x\"\npassword_file = \"pw\"").unwrap_err();
    assert!(e.message().contains("not both"), "{e}");
    let e = secret("password_file = \"missing\"").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Io);
    assert!(e.message().contains("missing"), "{e}");
    assert!(secret("password_file = \"empty\"").unwrap_err().message().contains("is empty"));
    let e = secret("password_file = \"pw\"\npassword = \"y\"").unwrap_err();
    assert!(!e.to_string().contains("hunter2"));
}

proptest::proptest! {
    /// Whatever the file holds, loading it returns a config or an error, never a panic.
    #[test]
    fn any_text_loads_or_fails_cleanly(text in "\\PC*") {
        let _ = parse(&text);
    }

    /// Near-misses of a valid file (a cut, a byte changed) are the likely real-world mistakes.
    #[test]
    fn damaged_configs_fail_cleanly(cut in 0..GOOD.len(), at in 0..GOOD.len(), byte in proptest::sample::select(b"=[]\"'{},.#\n 0a$".to_vec())) {
        let mut text = GOOD.as_bytes().to_vec();
        text[at] = byte;
        text.truncate(cut.max(at + 1));
        if let Ok(text) = String::from_utf8(text)
            && let Ok(config) = parse(&text)
        {
            for section in config.collectors.iter().chain(&config.sinks) {
                let _ = section.options::<FilesConfig>();
            }
        }
    }
}

#[test]
fn jobs_name_existing_components() {
    let text = format!(
        "{GOOD}\n[daemon]\nlock_dir = \"locks\"\n\n[[job]]\nname = \"weekly\"\nschedule = \"0 7 * * MON\"\n\
         range = \"previous calendar week\"\nsinks = [\"json\"]\n\n[[job]]\nname = \"daily\"\nschedule = \"0 6 * * *\"\n\
         timezone = \"America/New_York\"\n"
    );
    let c = parse(&text).unwrap();
    assert_eq!(c.jobs.len(), 2);
    assert_eq!(c.jobs[0].range, mailflow_core::RangeSpec::PreviousCalendarWeek);
    assert_eq!(c.jobs[0].sinks.as_deref(), Some(&["json".to_string()][..]));
    assert_eq!(c.jobs[1].range, mailflow_core::RangeSpec::LastDays(7), "the default range");
    assert_eq!(c.jobs[1].timezone, Some(chrono_tz::America::New_York));
    assert_eq!(c.daemon.lock_dir.as_deref(), Some(Path::new("/etc/mailflow/locks")));

    for (job, expected) in [
        ("name = \"w\"\nschedule = \"0 7 * *\"", "five cron fields"),
        ("name = \"w\"\nschedule = \"0 7 * * MON\"\nrange = \"last week\"", "previous calendar week"),
        (
            "name = \"w\"\nschedule = \"0 7 * * MON\"\nsinks = [\"mail\"]",
            "`sinks` names \"mail\", which is not defined; defined: json",
        ),
        ("name = \"w\"\nschedule = \"0 7 * * MON\"\ncollectors = []", "`collectors` is empty"),
        ("name = \"w\"\nschedule = \"0 7 * * MON\"\ntimezone = \"Mars/Olympus\"", "Mars/Olympus"),
        (
            "name = \"w\"\nschedule = \"0 7 * * MON\"\n[[job]]\nname = \"w\"\nschedule = \"0 8 * * MON\"",
            "already named",
        ),
    ] {
        let e = parse(&format!("{GOOD}\n[[job]]\n{job}\n")).unwrap_err().to_string();
        assert!(e.contains(expected), "{job}: {e}");
        assert!(e.contains("mailflow.toml:"), "{e}");
    }
}
