//! What the table-driven cases cannot show, as each holds one file: runs of several files (a
//! summary and a detail of the same messages, overlapping exports, a message's rows split over
//! two files), the same export in every encoding, and a site without accepted domains.

use std::path::Path;

use mailflow_component::{CollectContext, Emitter, SourceStats};
use mailflow_config::Config;
use mailflow_core::{Direction, MessageEvent};

/// Runs the collector over `files` (name, bytes) in a folder of their own.
fn run(files: &[(&str, Vec<u8>)], accepted_domains: &str, options: &str) -> (Vec<MessageEvent>, SourceStats) {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in files {
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    let text = format!(
        "[site]\naccepted_domains = [{accepted_domains}]\n[[collector]]\ntype = \"m365_csv\"\npaths = [\"*.csv\"]\n{options}"
    );
    let config = Config::parse(&text, &dir.path().join("mailflow.toml"), &|_| None).unwrap();
    let collector = mailflow_collector_m365_csv::build(&config.collectors[0]).unwrap();
    let mut events = Vec::new();
    let (mut on_event, mut on_counts) = (|e| events.push(e), |_| {});
    let mut out = Emitter::new(&mut on_event).with_counts(&mut on_counts);
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
    let mut stats = out.into_stats();
    assert!(stats.errors.is_empty(), "{:?}", stats.errors);
    let folder = format!("{}/", dir.path().display());
    stats.warnings.iter_mut().for_each(|w| *w = w.replace(&folder, ""));
    (events, stats)
}

const CONTOSO: &str = "\"contoso.example\"";

fn fixture(case: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases").join(case).join("input.csv");
    String::from_utf8(std::fs::read(path).unwrap()).unwrap().trim_start_matches('\u{FEFF}').to_string()
}

/// Events as text, sorted, without the evidence (which names files and lines).
fn without_evidence(events: &[MessageEvent]) -> Vec<String> {
    let mut lines: Vec<String> = events
        .iter()
        .map(|e| {
            let mut e = e.clone();
            e.evidence = Default::default();
            format!("{e:?}")
        })
        .collect();
    lines.sort();
    lines
}

/// Events with their evidence's files named without their folder.
fn portable(events: Vec<MessageEvent>) -> Vec<MessageEvent> {
    events
        .into_iter()
        .map(|mut e| {
            for at in &mut e.evidence.0 {
                at.file = at.file.as_deref().map(|f| Path::new(f).file_name().unwrap().to_string_lossy().into());
            }
            e
        })
        .collect()
}

#[test]
fn every_encoding_gives_the_same_events() {
    for case in ["detail-utf8-bom", "summary-utf8", "custom-dmy"] {
        let text = fixture(case);
        let options = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases").join(case).join("config.toml"),
        )
        .unwrap_or_default();
        let le: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let be: Vec<u8> = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
        let (utf8, stats) = run(&[("x.csv", text.clone().into_bytes())], CONTOSO, &options);
        let utf8 = portable(utf8);
        assert!(utf8.len() >= 5, "{case}");
        for bytes in [[&[0xFF, 0xFE][..], &le].concat(), le.clone(), [&[0xFE, 0xFF][..], &be].concat(), be.clone()] {
            let (events, other) = run(&[("x.csv", bytes)], CONTOSO, &options);
            assert_eq!(portable(events), utf8, "{case}");
            assert_eq!((other.skipped, other.warnings), (stats.skipped, stats.warnings.clone()), "{case}");
        }
    }
}

#[test]
fn a_message_split_over_two_detail_files_counts_as_in_one() {
    let text = fixture("detail-utf8-bom");
    let mut lines = text.split_inclusive('\n');
    let header = lines.next().unwrap();
    let (mut a, mut b) = (header.to_string(), header.to_string());
    for (i, line) in lines.enumerate() {
        if i % 2 == 0 { &mut a } else { &mut b }.push_str(line);
    }
    let (whole, _) = run(&[("x.csv", text.into_bytes())], CONTOSO, "");
    let (split, stats) = run(&[("a.csv", a.into_bytes()), ("b.csv", b.into_bytes())], CONTOSO, "");
    assert_eq!(without_evidence(&split), without_evidence(&whole));
    // A message whose RECEIVE and DELIVER are in different files is still delivered, and its
    // outbound event names the rows of both files.
    assert!(split.iter().any(|e| e.evidence.0.iter().any(|l| l.file.as_deref().unwrap().ends_with("a.csv"))
        && e.evidence.0.iter().any(|l| l.file.as_deref().unwrap().ends_with("b.csv"))));
    assert!(
        stats.notes.iter().any(|n| n.starts_with("2 messages between accepted domains are internal")),
        "{:?}",
        stats.notes
    );
}

#[test]
fn network_message_ids_match_whatever_their_case() {
    let (once, _) = run(&[("a.csv", DETAIL.as_bytes().to_vec())], CONTOSO, "");
    let upper = DETAIL.replace("id-1", "ID-1").replace("id-3", "ID-3");
    let (twice, stats) = run(&[("a.csv", DETAIL.as_bytes().to_vec()), ("b.csv", upper.into_bytes())], CONTOSO, "");
    // The rows of both files are one message's.
    assert_eq!(without_evidence(&twice), without_evidence(&once));
    assert!(!stats.notes.iter().any(|n| n.contains("counted once")), "{:?}", stats.notes);
}

/// Three messages as a summary and as a detail export: one in, one out to a recipient inside and
/// one outside, one internal.
const SUMMARY: &str = r#"origin_timestamp_utc,sender_address,recipient_status,total_bytes,message_id,network_message_id,original_client_ip,directionality,connector_id
2026-11-30T08:00:00Z,partner@fabrikam.example,"gina@contoso.example##Receive, Deliver",1000,<p@fabrikam.example>,id-1,198.51.100.7,Incoming,From Fabrikam
2026-11-30T09:00:00Z,alice@contoso.example,"carol@contoso.example##Receive, Deliver;bob@tailspin.example##Receive, Send",2000,<a@contoso.example>,ID-2,10.0.0.1,Originating,To_DefaultOpportunisticTLS
2026-11-30T10:00:00Z,alice@contoso.example,"dave@contoso.example##Receive, Deliver",3000,<i@contoso.example>,id-3,10.0.0.1,Originating,
"#;
const DETAIL: &str = r#"date_time_utc,client_ip,server_ip,connector_id,source,event_id,message_id,network_message_id,recipient_address,total_bytes,sender_address,directionality,custom_data
2026-11-30T08:00:00Z,198.51.100.7,,,SMTP,RECEIVE,<p@fabrikam.example>,id-1,gina@contoso.example,1000,partner@fabrikam.example,Incoming,S:InboundConnectorData=Name=From Fabrikam
2026-11-30T08:00:01Z,,,,STOREDRIVER,DELIVER,<p@fabrikam.example>,id-1,gina@contoso.example,1000,partner@fabrikam.example,Incoming,
2026-11-30T09:00:00Z,,,,STOREDRIVER,RECEIVE,<a@contoso.example>,id-2,"carol@contoso.example;bob@tailspin.example",2000,alice@contoso.example,Originating,
2026-11-30T09:00:01Z,,10.1.1.1,Intra-Organization SMTP Send Connector,SMTP,SEND,<a@contoso.example>,id-2,"carol@contoso.example;bob@tailspin.example",2000,alice@contoso.example,Originating,
2026-11-30T09:00:02Z,,,,STOREDRIVER,DELIVER,<a@contoso.example>,id-2,carol@contoso.example,2000,alice@contoso.example,Originating,
2026-11-30T09:00:03Z,,203.0.113.40,To_DefaultOpportunisticTLS,SMTP,SEND,<a@contoso.example>,id-2,bob@tailspin.example,2000,alice@contoso.example,Originating,S:tlsversion=SP_PROT_TLS1_3_CLIENT
2026-11-30T10:00:00Z,,,,STOREDRIVER,RECEIVE,<i@contoso.example>,id-3,dave@contoso.example,3000,alice@contoso.example,Originating,
2026-11-30T10:00:01Z,,,Intra-Organization SMTP Send Connector,STOREDRIVER,FAIL,<i@contoso.example>,id-3,dave@contoso.example,3000,alice@contoso.example,Originating,
"#;

/// Per message: direction, message id, recipients and their domains.
fn messages(events: &[MessageEvent]) -> Vec<(Direction, String, Option<u32>, Vec<String>)> {
    let mut all: Vec<_> = events
        .iter()
        .map(|e| (e.direction, e.message_id.clone().unwrap(), e.recipients, e.recipient_domains.clone()))
        .collect();
    all.sort();
    all
}

#[test]
fn a_summary_and_a_detail_of_the_same_messages_count_the_same_and_once_together() {
    let summary = || ("a-summary.csv", SUMMARY.as_bytes().to_vec());
    let detail = || ("b-detail.csv", DETAIL.as_bytes().to_vec());
    let (from_summary, stats) = run(&[summary()], CONTOSO, "");
    let (from_detail, _) = run(&[detail()], CONTOSO, "");
    let want = vec![
        (Direction::Inbound, "<p@fabrikam.example>".to_string(), Some(1), vec!["contoso.example".to_string()]),
        (Direction::Outbound, "<a@contoso.example>".to_string(), Some(1), vec!["tailspin.example".to_string()]),
    ];
    assert_eq!(messages(&from_summary), want);
    assert_eq!(messages(&from_detail), want);
    assert_eq!(stats.notes, ["1 messages between accepted domains are internal and not counted"]);

    // Together, each message counts once (network message ids match whatever their case); so
    // does a summary read twice, as overlapping searches would give.
    let copy = ("c-summary.csv", SUMMARY.as_bytes().to_vec());
    let (together, stats) = run(&[summary(), detail(), copy], CONTOSO, "");
    assert_eq!(messages(&together), want);
    assert_eq!(
        stats.notes,
        [
            "1 messages between accepted domains are internal and not counted",
            "4 messages already read from another file were counted once"
        ]
    );
}

#[test]
fn without_accepted_domains_internal_mail_cannot_be_told_and_a_warning_says_so() {
    let (events, stats) = run(&[("x.csv", SUMMARY.as_bytes().to_vec())], "", "");
    // Originating mail, internal included, counts as outbound with all its recipients.
    assert_eq!(events.iter().filter(|e| e.direction == Direction::Outbound).count(), 2);
    assert!(
        stats.warnings.iter().any(|w| w.contains("2 Originating (2) messages count as outbound")
            && w.contains("between the tenant's own users")),
        "{:?}",
        stats.warnings
    );
    let (_, stats) = run(&[("x.csv", DETAIL.as_bytes().to_vec())], "", "");
    assert!(
        stats.warnings.iter().any(|w| w.contains("Originating (2) messages count as outbound")),
        "{:?}",
        stats.warnings
    );
}

#[test]
fn date_order_set_reads_every_file_that_way_without_a_warning() {
    let text = fixture("custom-ambiguous-dates");
    let options = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases/custom-ambiguous-dates/config.toml"),
    )
    .unwrap();
    let times = |order: &str| {
        let (events, stats) =
            run(&[("x.csv", text.clone().into_bytes())], CONTOSO, &format!("date_order = \"{order}\"\n{options}"));
        assert!(stats.warnings.is_empty(), "{:?}", stats.warnings);
        events.iter().map(|e| e.time.format("%m-%d").to_string()).collect::<Vec<_>>()
    };
    assert_eq!(times("dmy"), ["11-04", "11-05", "05-05", "11-06"]);
    assert_eq!(times("mdy"), ["11-04", "05-11", "05-05", "06-11"]);
}

#[test]
fn network_message_ids_match_with_or_without_dashes_and_braces() {
    let ids = [
        "1341ac7b-13fb-42ab-4d44-08cf7f558901",
        "1341ac7b-13fb-42ab-4d44-08cf7f558902",
        "1341ac7b-13fb-42ab-4d44-08cf7f558903",
    ];
    let (mut summary, mut detail) = (SUMMARY.to_string(), DETAIL.to_string());
    for (old, id) in ["id-1", "id-2", "id-3"].iter().zip(ids) {
        summary = summary.replace(old, &id.replace('-', "")).replace(&old.to_uppercase(), &id.replace('-', ""));
        detail = detail.replace(old, &format!("{{{}}}", id.to_uppercase()));
    }
    let (together, stats) =
        run(&[("a-summary.csv", summary.into_bytes()), ("b-detail.csv", detail.into_bytes())], CONTOSO, "");
    assert_eq!(messages(&together).len(), 2, "{together:?}");
    assert!(
        stats.notes.iter().any(|n| n == "2 messages already read from another file were counted once"),
        "{:?}",
        stats.notes
    );
}

#[test]
fn numeric_directionality_is_1_inbound_and_2_outbound() {
    let numeric = |text: &str| text.replace(",Incoming,", ",1,").replace(",Originating,", ",2,");
    // Without accepted domains the codes alone decide.
    let (events, stats) = run(&[("x.csv", numeric(SUMMARY).into_bytes())], "", "");
    let directions: Vec<_> = events.iter().map(|e| e.direction).collect();
    assert_eq!(directions, [Direction::Inbound, Direction::Outbound, Direction::Outbound]);
    assert!(!stats.warnings.iter().any(|w| w.contains("directionality other than")), "{:?}", stats.warnings);
    assert!(
        stats.warnings.iter().any(|w| w.contains("2 Originating (2) messages count as outbound")),
        "{:?}",
        stats.warnings
    );
    // A detail reads them as the words.
    for domains in ["", CONTOSO] {
        let (words, words_stats) = run(&[("x.csv", DETAIL.as_bytes().to_vec())], domains, "");
        let (codes, codes_stats) = run(&[("x.csv", numeric(DETAIL).into_bytes())], domains, "");
        assert_eq!(without_evidence(&codes), without_evidence(&words));
        assert_eq!(codes_stats.warnings, words_stats.warnings);
    }
}

#[test]
fn relayed_mail_counts_in_and_out_from_a_summary_as_from_a_detail() {
    let summary = r#"origin_timestamp_utc,sender_address,recipient_status,total_bytes,message_id,network_message_id,original_client_ip,directionality,connector_id
2026-11-30T11:00:00Z,noreply@crm.example,"customer@northwind.example##Receive, Send",5000,<r@crm.example>,id-4,203.0.113.9,Incoming,From CRM
"#;
    let detail = r#"date_time_utc,client_ip,server_ip,connector_id,source,event_id,message_id,network_message_id,recipient_address,total_bytes,sender_address,directionality,custom_data
2026-11-30T11:00:00Z,203.0.113.9,,,SMTP,RECEIVE,<r@crm.example>,id-4,customer@northwind.example,5000,noreply@crm.example,Incoming,S:InboundConnectorData=Name=From CRM
2026-11-30T11:00:02Z,,192.0.2.80,To_DefaultOpportunisticTLS,SMTP,SEND,<r@crm.example>,id-4,customer@northwind.example,5000,noreply@crm.example,Incoming,S:tlsversion=SP_PROT_TLS1_2_CLIENT
"#;
    let want: Vec<_> = [Direction::Inbound, Direction::Outbound]
        .into_iter()
        .map(|d| (d, "<r@crm.example>".to_string(), Some(1), vec!["northwind.example".to_string()]))
        .collect();
    let (from_summary, _) = run(&[("a.csv", summary.as_bytes().to_vec())], CONTOSO, "");
    let (from_detail, _) = run(&[("b.csv", detail.as_bytes().to_vec())], CONTOSO, "");
    assert_eq!(messages(&from_summary), want);
    assert_eq!(messages(&from_detail), want);
    let (together, stats) =
        run(&[("a.csv", summary.as_bytes().to_vec()), ("b.csv", detail.as_bytes().to_vec())], CONTOSO, "");
    assert_eq!(messages(&together), want);
    assert_eq!(stats.notes, ["2 messages already read from another file were counted once"]);
}

#[test]
fn a_file_of_exactly_100000_rows_is_taken_for_a_historical_search_cut_short() {
    let file = |rows: usize| {
        let mut text = String::from("origin_timestamp_utc,sender_address,recipient_status,network_message_id\r\n");
        for i in 0..rows {
            text.push_str(&format!(
                "2026-11-30T08:00:00Z,alice@contoso.example,\"bob@fabrikam.example##Receive, Send\",id-{i}\r\n"
            ));
        }
        text.push_str("\r\n"); // Blank lines are no rows.
        text.into_bytes()
    };
    let (events, stats) = run(&[("x.csv", file(100_000))], CONTOSO, "");
    assert_eq!((events.len(), stats.skipped), (100_000, 0));
    assert_eq!(
        stats.warnings,
        ["x.csv: holds 100000 rows, the most a historical search report holds, so the export is probably cut \
          short at Microsoft's limit; split the report's period into smaller searches and read them all"]
    );
    let (events, stats) = run(&[("x.csv", file(99_999))], CONTOSO, "");
    assert_eq!(events.len(), 99_999);
    assert!(stats.warnings.is_empty(), "{:?}", stats.warnings);
}
