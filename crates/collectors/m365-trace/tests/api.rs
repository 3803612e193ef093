//! The collector against the local API emulator, on a paused clock: exact counts, connectors and
//! TLS versions; the tenant's pace; throttling, retries and the errors users meet.

mod emulator;

use std::path::Path;

use chrono::{DateTime, TimeDelta, Timelike, Utc};
use emulator::{AssertionKey, CLIENT_ID, Emulator, Fault, Route, SECRET, TENANT, Truth, populate};
use mailflow_collector_m365_trace::M365TraceCollector;
use mailflow_component::{CollectContext, Emitter, SourceStats};
use mailflow_config::Config;
use mailflow_core::{MessageEvent, Status};

fn config_text(emulator: &Emulator, extra: &str) -> String {
    format!(
        "[site]\naccepted_domains = [\"corp.example\"]\n\
         [[collector]]\ntype = \"m365_message_trace\"\nname = \"m365\"\ntenant_id = \"{TENANT}\"\n\
         client_id = \"{CLIENT_ID}\"\ngraph_url = \"{base}\"\nlogin_url = \"{base}\"\n{extra}\n",
        base = emulator.base
    )
}

struct Run {
    events: Vec<MessageEvent>,
    stats: SourceStats,
    result: Result<(), String>,
}

impl Run {
    fn truth(&self) -> Truth {
        let mut seen = Truth::new();
        for e in &self.events {
            *seen.entry((e.direction, e.connector.clone(), e.tls.version)).or_default() += 1;
        }
        seen
    }

    fn notes(&self) -> String {
        self.stats.notes.join("\n")
    }
}

async fn run(text: &str, now: DateTime<Utc>, start: DateTime<Utc>, report_start: DateTime<Utc>) -> Run {
    run_until(text, now, start, report_start, now).await
}

async fn run_until(
    text: &str,
    now: DateTime<Utc>,
    start: DateTime<Utc>,
    report_start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Run {
    let config = Config::parse(text, Path::new("/etc/mailflow/mailflow.toml"), &|name| {
        (name == "M365_SECRET").then(|| SECRET.to_string())
    })
    .unwrap();
    let collector = M365TraceCollector::from_section(&config.collectors[0]).unwrap();
    let mut events = Vec::new();
    let mut push = |e: MessageEvent| events.push(e);
    let mut out = Emitter::new(&mut push);
    let ctx = CollectContext { source: "m365", site: &config.site, start, end, report_start, resume: None };
    let result = collector.collect_async(&ctx, &mut out, now).await.map_err(|e| e.to_string());
    let stats = out.into_stats();
    Run { events, stats, result }
}

const SECRET_CONFIG: &str = "client_secret = \"${M365_SECRET}\"";

#[tokio::test(start_paused = true)]
async fn counts_connectors_and_tls_exactly_within_the_tenants_pace() {
    let now = Utc::now();
    let emulator = Emulator::start(now).await;
    let truth = populate(&emulator, now, 12, 400);
    emulator.with(|i| i.token_lifetime_secs = 900);
    let text = config_text(&emulator, &format!("{SECRET_CONFIG}\npage_size = 40"));
    let began = tokio::time::Instant::now();
    let run = run(&text, now, now - TimeDelta::days(12), now - TimeDelta::days(6)).await;

    assert_eq!(run.result, Ok(()));
    assert_eq!(run.stats.errors, Vec::<String>::new());
    assert_eq!(run.truth(), truth);
    assert_eq!(run.events.len(), 350, "400 messages, 50 of them internal");
    let outbound_failed = run.events.iter().filter(|e| e.status == Some(Status::Failed)).count();
    assert_eq!(outbound_failed, 25);
    let newsletter = run.events.iter().find(|e| e.connector.as_deref() == Some("Bulk & Co")).unwrap();
    assert_eq!(
        (newsletter.recipients, newsletter.recipient_domains.as_slice()),
        (Some(2), &["corp.example".to_string()][..])
    );
    assert!(run.events.iter().all(|e| e.peer.ip.is_some() && e.size.is_some()));

    // A list page or more per day, and one detail per counted message.
    let requests = emulator.requests();
    let details = requests.iter().filter(|r| r.route == Route::Detail).count();
    assert_eq!(details, 350);
    assert!(requests.iter().filter(|r| r.route == Route::List).count() >= 11);
    assert!(emulator.busiest_five_minutes() <= 100, "{} requests in 5 minutes", emulator.busiest_five_minutes());
    assert_eq!(emulator.with(|i| i.throttled), 0, "the pacer must keep below the limit");
    assert!(requests.iter().all(|r| r.status == 200));
    // About 370 requests at 100 per 5 minutes: three waits of nearly 5 minutes each.
    let elapsed = began.elapsed();
    assert!(elapsed >= std::time::Duration::from_secs(15 * 60) - std::time::Duration::from_secs(5), "{elapsed:?}");
    assert!(run.notes().contains("waited 15 min 0 s for the limit of 100"), "{}", run.notes());
    assert!(run.notes().contains("50 messages between accepted domains are internal"), "{}", run.notes());
    assert!(run.notes().contains("1 repeated rows"), "{}", run.notes());
    // One list page more or less, as the six days fall on the clock: the note counts what was made.
    let calls = requests.iter().filter(|r| r.route != Route::Any).count();
    assert!((369..=371).contains(&calls), "{calls} calls");
    let said = format!("made {calls} API calls (0 retried) and 2 token requests");
    assert!(run.notes().contains(&said), "{}", run.notes());
    // A token lives 15 minutes and is renewed when less than 5 are left: once, at the third burst.
    assert_eq!(emulator.with(|i| i.token_requests), 2);
}

#[tokio::test(start_paused = true)]
async fn obeys_retry_after_and_retries_server_errors() {
    let now = Utc::now();
    let emulator = Emulator::start(now).await;
    let truth = populate(&emulator, now, 3, 30);
    emulator.with(|i| {
        i.faults.push_back(Fault::new(Route::List, 429, 2).retry_after(30));
        i.faults.push_back(Fault::new(Route::Detail, 503, 3));
        i.faults.push_back(Fault::new(Route::Detail, 504, 1).retry_after(7));
    });
    let run =
        run(&config_text(&emulator, SECRET_CONFIG), now, now - TimeDelta::days(3), now - TimeDelta::days(3)).await;
    assert_eq!(run.result, Ok(()));
    assert_eq!(run.stats.errors, Vec::<String>::new());
    assert_eq!(run.truth(), truth);

    let requests = emulator.requests();
    let gap = |i: usize| requests[i + 1].at - requests[i].at;
    assert_eq!(requests[0].status, 429);
    assert!(gap(0) >= std::time::Duration::from_secs(30), "{:?}", gap(0));
    assert!(gap(1) >= std::time::Duration::from_secs(30), "{:?}", gap(1));
    let first_503 = requests.iter().position(|r| r.status == 503).unwrap();
    assert!(requests[first_503 + 1..first_503 + 3].iter().all(|r| r.status == 503));
    // Backoff doubles, with jitter in its upper half: 0.5–1 s, 1–2 s, 2–4 s.
    assert!(gap(first_503) >= std::time::Duration::from_millis(500));
    assert!(gap(first_503 + 2) >= std::time::Duration::from_secs(2));
    assert!(gap(first_503 + 3) >= std::time::Duration::from_secs(7), "Retry-After on a 504 counts too");
    assert!(run.notes().contains("(6 retried)"), "{}", run.notes());
}

#[tokio::test(start_paused = true)]
async fn gives_up_after_max_retries_with_the_url() {
    let now = Utc::now();
    let emulator = Emulator::start(now).await;
    populate(&emulator, now, 2, 5);
    emulator.with(|i| i.faults.push_back(Fault::new(Route::List, 500, 100)));
    let text = config_text(&emulator, &format!("{SECRET_CONFIG}\nmax_retries = 2"));
    let run = run(&text, now, now - TimeDelta::days(2), now - TimeDelta::days(2)).await;
    assert!(run.events.is_empty());
    let error = &run.stats.errors[0];
    assert!(error.contains("/messageTraces?$filter=receivedDateTime%20ge%202"), "{error}");
    assert!(error.contains("gave up after 3 attempts: 500 Internal Server Error (Fault: scripted 500)"), "{error}");
    // Each day's listing fails on its own after three attempts.
    assert_eq!(emulator.requests().len(), 3 * run.stats.errors.len());
}

#[tokio::test(start_paused = true)]
async fn a_wrong_token_and_missing_consent_say_what_to_do() {
    let now = Utc::now();
    for (status, expected) in
        [(401, "Check that `tenant_id` is the tenant"), (403, "ExchangeMessageTrace.Read.All with admin consent")]
    {
        let emulator = Emulator::start(now).await;
        populate(&emulator, now, 12, 20);
        emulator.with(|i| i.faults.push_back(Fault::new(Route::Any, status, 10)));
        let run =
            run(&config_text(&emulator, SECRET_CONFIG), now, now - TimeDelta::days(12), now - TimeDelta::days(6)).await;
        assert_eq!(run.stats.errors.len(), 1, "a fatal error stops the other windows: {:?}", run.stats.errors);
        assert!(run.stats.errors[0].contains(expected), "{}", run.stats.errors[0]);
        let requests = emulator.requests();
        // A 401 is tried once more with a new token; a 403 is not.
        assert_eq!(requests.len(), if status == 401 { 2 } else { 1 });
        assert_eq!(emulator.with(|i| i.token_requests), if status == 401 { 2 } else { 1 });
        assert!(!run.stats.errors[0].contains("New-MgServicePrincipal"), "{}", run.stats.errors[0]);
    }
}

#[tokio::test(start_paused = true)]
async fn a_missing_service_principal_names_the_app_and_the_command() {
    let now = Utc::now();
    let emulator = Emulator::start(now).await;
    populate(&emulator, now, 2, 10);
    let body = serde_json::json!({"error": {"code": "Unauthorized", "message": "The service principal for App ID \
        8bd644d1-64a1-4d4b-ae52-2e0cbf64e373 was not found. Please create a service principal for this app in your \
        tenant. Provisioning may take several hours."}});
    emulator.with(|i| i.faults.push_back(Fault::new(Route::Any, 401, 10).body(body)));
    let run =
        run(&config_text(&emulator, SECRET_CONFIG), now, now - TimeDelta::days(2), now - TimeDelta::days(2)).await;
    assert_eq!(run.stats.errors.len(), 1, "{:?}", run.stats.errors);
    let error = &run.stats.errors[0];
    for expected in [
        "8bd644d1-64a1-4d4b-ae52-2e0cbf64e373 was not found",
        "Connect-MgGraph -Scopes \"Application.ReadWrite.All\"",
        "New-MgServicePrincipal -AppId 8bd644d1-64a1-4d4b-ae52-2e0cbf64e373",
        "several hours to take effect",
    ] {
        assert!(error.contains(expected), "{expected}: {error}");
    }
    assert!(!error.contains("Check that `tenant_id`"), "{error}");
    // A new token would not help: the tenant lacks the app, so one request, not two.
    assert_eq!(emulator.requests().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_400_names_the_window_rules_only_for_lists_and_quotes_the_request_ids() {
    let now: DateTime<Utc> = "2026-12-04T12:00:00Z".parse().unwrap();
    let emulator = Emulator::start(now).await;
    populate(&emulator, now, 2, 16);
    let body = |id: &str| {
        serde_json::json!({"error": {"code": "BadRequest", "message": "Invalid request.", "innerError": {
            "date": "2026-01-05T10:00:00", "request-id": id, "client-request-id": format!("{id}-client")}}})
    };
    emulator.with(|i| {
        i.faults.push_back(Fault::new(Route::Detail, 400, 1).body(body("detail-req")));
        i.faults.push_back(Fault::new(Route::List, 400, 1).body(body("list-req")));
    });
    let start = now - TimeDelta::days(2);
    let text = config_text(&emulator, SECRET_CONFIG);
    // The first day's details meet the detail fault; the next day's list the list fault.
    let run = run_until(&text, now, start, start, now).await;
    let detail = run.stats.warnings.iter().find(|w| w.contains("detail-req")).expect("the detail's 400 is a warning");
    assert!(detail.contains("getDetailsByRecipient"), "{detail}");
    assert!(detail.contains("client-request-id detail-req-client; date 2026-01-05T10:00:00"), "{detail}");
    assert!(!detail.contains("10 days"), "a detail call takes no window: {detail}");
    let list = run.stats.errors.iter().find(|e| e.contains("list-req")).expect("the list's 400 is an error");
    assert!(list.contains("/messageTraces?$filter=") && list.contains("at most 10 days"), "{list}");
}

#[tokio::test(start_paused = true)]
async fn a_refused_secret_names_the_fix_and_never_the_secret() {
    let now = Utc::now();
    let emulator = Emulator::start(now).await;
    let text = config_text(&emulator, "client_secret = \"wrong-secret-value\"");
    let run = run(&text, now, now - TimeDelta::days(1), now - TimeDelta::days(1)).await;
    let error = run.stats.errors.join(" ");
    assert!(error.contains("AADSTS7000215") && error.contains("create a new one"), "{error}");
    assert!(!error.contains("wrong-secret-value") && error.contains("'***'"), "the echoed secret is masked: {error}");
    assert!(emulator.requests().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_truncated_page_fails_its_day_and_keeps_the_rest() {
    let now = Utc::now();
    let emulator = Emulator::start(now).await;
    // Three UTC days of ten messages each, the last one a millisecond before midnight.
    let first = (now - TimeDelta::days(3)).date_naive().and_hms_opt(0, 0, 0).unwrap().and_utc();
    let times: Vec<DateTime<Utc>> = (0..3)
        .flat_map(|day| (0..10).map(move |k| first + TimeDelta::days(day) + TimeDelta::hours(2 * k + 1)))
        .map(|t| if t.hour() == 19 { t + TimeDelta::minutes(299) + TimeDelta::milliseconds(59_999) } else { t })
        .collect();
    emulator.with(|i| {
        for (n, t) in times.iter().enumerate() {
            i.rows.push(serde_json::json!({"id": format!("m{n}"), "senderAddress": "a@outside.example",
                "recipientAddress": "b@corp.example", "receivedDateTime": t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
                "status": "Delivered"}));
        }
        // Pages of 4: the first day is pages 1-3; the second day's second page breaks off.
        i.truncate_list_pages.push(5);
    });
    let text = config_text(&emulator, &format!("{SECRET_CONFIG}\npage_size = 4\ndetail = \"none\"\n"));
    let run = run_until(&text, now, first, first, first + TimeDelta::days(3)).await;
    assert_eq!(run.stats.errors.len(), 1, "{:?}", run.stats.errors);
    let error = &run.stats.errors[0];
    let second_day = (first + TimeDelta::days(1)).format("%Y-%m-%dT%H:%M:%SZ").to_string();
    // The failing page's address, as the API's next link gave it.
    assert!(error.contains(&second_day.replace(':', "%3A")) && error.contains("skiptoken=4"), "{error}");
    assert!(error.contains("expected a JSON page"), "{error}");
    // Every message of days one and three, and the first page of day two.
    let mut per_day = std::collections::BTreeMap::new();
    for e in &run.events {
        *per_day.entry(e.time.date_naive()).or_insert(0) += 1;
    }
    let days: Vec<u32> = per_day.values().copied().collect();
    assert_eq!(days, [10, 4, 10]);
    assert_eq!(run.events.iter().filter(|e| e.time.hour() == 23).count(), 2, "the last millisecond of a day counts");
}

#[tokio::test(start_paused = true)]
async fn without_details_connector_and_tls_are_unknown_and_the_report_says_so() {
    let now = Utc::now();
    let emulator = Emulator::start(now).await;
    populate(&emulator, now, 3, 40);
    let run = run(
        &config_text(&emulator, &format!("{SECRET_CONFIG}\ndetail = \"none\"")),
        now,
        now - TimeDelta::days(3),
        now - TimeDelta::days(3),
    )
    .await;
    assert_eq!(run.events.len(), 35);
    assert!(run.events.iter().all(|e| e.connector.is_none() && e.tls.version.is_none()));
    assert!(emulator.requests().iter().all(|r| r.route == Route::List));
    assert!(run.notes().contains("connector and TLS are unknown for 35 messages"), "{}", run.notes());
}

#[tokio::test(start_paused = true)]
async fn a_sample_reads_at_most_n_details_a_day_per_direction() {
    let now = "2026-12-04T12:00:00Z".parse().unwrap();
    let emulator = Emulator::start(now).await;
    populate(&emulator, now, 4, 300);
    let text = config_text(&emulator, &format!("{SECRET_CONFIG}\ndetail = {{ sample = 3 }}"));
    let run = run(&text, now, now - TimeDelta::days(4), now - TimeDelta::days(4)).await;
    let details = emulator.requests().iter().filter(|r| r.route == Route::Detail).count();
    // 4 days plus the day the window starts in, 2 directions, 3 each.
    assert!((4 * 2 * 3..=5 * 2 * 3).contains(&details), "{details}");
    let detailed = run.events.iter().filter(|e| e.tls.version.is_some() || e.connector.is_some()).count();
    assert!(detailed <= details);
    assert!(run.notes().contains(&format!("unknown for {} messages", run.events.len() - details)), "{}", run.notes());
}

#[tokio::test(start_paused = true)]
async fn a_range_beyond_what_the_api_keeps_is_said_clearly() {
    let now = Utc::now();
    let emulator = Emulator::start(now).await;
    populate(&emulator, now, 12, 20);
    let text = config_text(&emulator, &format!("{SECRET_CONFIG}\ndetail = \"none\""));
    // The report range itself reaches past 90 days: an error, yet what is kept is read.
    let run_old = run(&text, now, now - TimeDelta::days(120), now - TimeDelta::days(95)).await;
    assert!(run_old.stats.errors[0].contains("keeps only 90 days"), "{:?}", run_old.stats.errors);
    assert!(run_old.stats.errors[0].contains("m365_csv"));
    assert_eq!(run_old.events.len(), 18);
    // The tenant's limit spans runs: let the last one's five minutes pass.
    tokio::time::sleep(std::time::Duration::from_secs(300)).await;
    // Only the comparison period does: a note.
    let run_prev = run(&text, now, now - TimeDelta::days(100), now - TimeDelta::days(50)).await;
    assert!(run_prev.stats.errors.is_empty(), "{:?}", run_prev.stats.errors);
    assert!(run_prev.notes().contains("the previous period, for comparisons, is read only from"));
    // Every query the emulator saw respected 10 days and 90 days back.
    assert!(emulator.requests().iter().all(|r| r.status == 200));
    // All of it too old: an error without requests.
    let before = emulator.requests().len();
    let (start, end) = (now - TimeDelta::days(100), now - TimeDelta::days(95));
    let run_gone = run_until(&text, now, start, start, end).await;
    assert!(run_gone.result.unwrap_err().contains("keeps only 90 days"));
    assert_eq!(emulator.requests().len(), before);
}

#[tokio::test(start_paused = true)]
async fn a_next_link_to_another_host_is_not_followed() {
    let now = Utc::now();
    let emulator = Emulator::start(now).await;
    populate(&emulator, now, 2, 20);
    emulator.with(|i| i.next_link_override = Some("https://attacker.example/steal".into()));
    let text = config_text(&emulator, &format!("{SECRET_CONFIG}\npage_size = 5\ndetail = \"none\""));
    let run = run(&text, now, now - TimeDelta::days(2), now - TimeDelta::days(2)).await;
    assert!(run.stats.errors[0].contains("https://attacker.example/steal"), "{:?}", run.stats.errors);
    assert!(run.stats.errors[0].contains("leads away from `graph_url`"));
}

#[tokio::test(start_paused = true)]
async fn a_next_link_that_repeats_ends_its_day() {
    let now = Utc::now();
    let emulator = Emulator::start(now).await;
    populate(&emulator, now, 1, 10);
    emulator.with(|i| i.repeat_next_link = true);
    let text = config_text(&emulator, &format!("{SECRET_CONFIG}\ndetail = \"none\""));
    let start = now - TimeDelta::hours(3);
    let day = std::time::Duration::from_secs(86_400);
    let run = tokio::time::timeout(day, run(&text, now, start, start)).await.expect("the paging ends");
    assert!(run.stats.errors[0].contains("the API keeps giving next pages"), "{:?}", run.stats.errors);
    // Each window asked for its first page once and did not follow the link back to it.
    assert_eq!(emulator.requests().len(), run.stats.errors.len());
}

#[tokio::test(start_paused = true)]
async fn a_certificate_signs_the_client_assertion() {
    let now = Utc::now();
    let emulator = Emulator::start(now).await;
    let truth = populate(&emulator, now, 2, 16);
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let pem = std::fs::read(fixtures.join("app.key")).unwrap();
    let der = rustls_pki_types::PrivateKeyDer::from_pem_slice(&pem).unwrap();
    let key = ring::signature::RsaKeyPair::from_pkcs8(der.secret_der()).unwrap();
    let cert = rustls_pki_types::CertificateDer::from_pem_file(fixtures.join("app.pem")).unwrap();
    let x5t = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &cert),
    );
    let x5t_s256 = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        ring::digest::digest(&ring::digest::SHA256, &cert),
    );
    let public_key = ring::signature::KeyPair::public_key(&key).as_ref().to_vec();
    // The identity platform may know the certificate by either thumbprint: each alone must do.
    let known_by = [(Some(x5t), None), (None, Some(x5t_s256))];
    for (key_file, (x5t, x5t_s256)) in ["app.key", "app-pkcs1.key"].into_iter().zip(known_by) {
        emulator.with(|i| i.assertion_key = Some(AssertionKey { public_key: public_key.clone(), x5t, x5t_s256 }));
        let text = config_text(
            &emulator,
            &format!(
                "certificate_file = \"{}\"\nprivate_key_file = \"{}\"",
                fixtures.join("app.pem").display(),
                fixtures.join(key_file).display()
            ),
        );
        let run = run(&text, now, now - TimeDelta::days(2), now - TimeDelta::days(2)).await;
        assert_eq!(run.stats.errors, Vec::<String>::new(), "{key_file}");
        assert_eq!(run.truth(), truth, "{key_file}");
    }
    // Each run signed one assertion, each with its own `jti` (the emulator refuses a repeat).
    assert_eq!(emulator.with(|i| i.seen_jtis.len()), 2);
}

use rustls_pki_types::pem::PemObject;

#[test]
fn config_errors_name_the_key() {
    let check = |extra: &str, expected: &str| {
        let text = format!(
            "[[collector]]\ntype = \"m365_message_trace\"\ntenant_id = \"{TENANT}\"\nclient_id = \"{CLIENT_ID}\"\n{extra}\n"
        );
        let config = Config::parse(&text, Path::new("/etc/mailflow/mailflow.toml"), &|_| None).unwrap();
        let error = M365TraceCollector::from_section(&config.collectors[0]).err().expect(extra).to_string();
        assert!(error.contains(expected), "{extra}: {error}");
    };
    check("", "give `client_secret`");
    check("client_secret = \"x\"\ncertificate_file = \"a.pem\"", "not both");
    check("certificate_file = \"/nonexistent.pem\"", "`certificate_file` /nonexistent.pem");
    check("client_secret = \"x\"\npage_size = 9000", "between 1 and 5000");
    check("client_secret = \"x\"\ndetail = \"some\"", "\"all\", \"none\" or { sample = N }");
    check("client_secret = \"x\"\ndetail = { sample = 0 }", "N above 0");
    check("client_secret = \"x\"\ngraph_url = \"http://graph.example\"", "https://");
    check("client_secret = \"x\"\nrequests_per_5min = 0", "above 0");
}

#[tokio::test(start_paused = true)]
async fn a_token_whose_expiry_is_a_string_and_short_is_used_for_half_its_life() {
    let now = Utc::now();
    let emulator = Emulator::start(now).await;
    let truth = populate(&emulator, now, 3, 60);
    // Four minutes, less than the five-minute margin, written as v1-style endpoints write it.
    emulator.with(|i| {
        i.token_lifetime_secs = 240;
        i.token_expiry_as_string = true;
        i.limit = 20;
    });
    let text = config_text(&emulator, &format!("{SECRET_CONFIG}\nrequests_per_5min = 20"));
    let began = tokio::time::Instant::now();
    let run = run(&text, now, now - TimeDelta::days(3), now - TimeDelta::days(3)).await;
    assert_eq!(run.stats.errors, Vec::<String>::new());
    assert_eq!(run.truth(), truth);
    // About 60 calls at 20 per 5 minutes: a token for each two minutes of the run, not one per call.
    let calls = emulator.requests().len() as u64;
    let minutes = began.elapsed().as_secs() / 60;
    let tokens = u64::from(emulator.with(|i| i.token_requests));
    assert!(minutes >= 5, "{minutes} min");
    assert!(tokens <= minutes / 2 + 1, "{tokens} tokens in {minutes} min for {calls} calls");
    assert!(emulator.requests().iter().all(|r| r.status == 200), "no call was made with an expired token");
}

#[tokio::test(start_paused = true)]
async fn unreadable_detail_events_are_skipped_and_counted_with_their_url() {
    let now: DateTime<Utc> = "2026-12-04T12:00:00Z".parse().unwrap();
    let emulator = Emulator::start(now).await;
    let at = "2026-12-04T09:00:00Z";
    let data = r#"<root><MEP Name="ConnectorId" String="From Partner" /><MEP Name="CustomData" String="S:InboundConnectorData=Name=From Partner;S:tlsversion=SP_PROT_TLS1_2_SERVER" /></root>"#;
    emulator.with(|i| {
        i.rows.push(serde_json::json!({"id": "m1", "senderAddress": "a@outside.example",
            "recipientAddress": "b@corp.example", "receivedDateTime": at, "status": "Delivered"}));
        i.details.insert(
            ("m1".into(), "b@corp.example".into()),
            vec![
                // A null event name reads as none; a number where a string belongs cannot be read.
                serde_json::json!({"event": null, "action": null, "description": "Spam diagnostics", "dateTime": at}),
                serde_json::json!({"event": 42, "description": "?", "dateTime": at}),
                serde_json::json!({"event": "Receive", "action": "", "description": "Message received by: X",
                "dateTime": at, "data": data, "newField": {"nested": [1, 2]}}),
            ],
        );
    });
    let text = config_text(&emulator, SECRET_CONFIG);
    let start = now - TimeDelta::hours(6);
    let run = run(&text, now, start, start).await;
    assert_eq!(run.stats.errors, Vec::<String>::new());
    assert_eq!(run.events.len(), 1);
    let event = &run.events[0];
    assert_eq!(
        (event.connector.as_deref(), event.tls.version),
        (Some("From Partner"), Some(mailflow_core::TlsVersion::Tls1_2))
    );
    assert_eq!(run.stats.skipped, 1, "{:?}", run.stats.warnings);
    let warning = &run.stats.warnings[0];
    assert!(
        warning.contains("/messageTraces/m1/getDetailsByRecipient(recipientAddress='b@corp.example') (event 1)"),
        "{warning}"
    );
    assert!(warning.contains("skipped: invalid type: integer `42`, expected a string"), "{warning}");
}

#[tokio::test(start_paused = true)]
async fn recalled_mail_is_delivered_and_unknown_statuses_are_counted() {
    let now: DateTime<Utc> = "2026-12-04T12:00:00Z".parse().unwrap();
    let emulator = Emulator::start(now).await;
    emulator.with(|i| {
        for (n, status) in ["recalled", "unknownFutureValue", "Delivered", "brandNewStatus"].iter().enumerate() {
            i.rows.push(serde_json::json!({"id": format!("m{n}"), "senderAddress": "a@outside.example",
                "recipientAddress": "b@corp.example", "receivedDateTime": "2026-12-04T09:00:00Z", "status": status}));
        }
    });
    let text = config_text(&emulator, &format!("{SECRET_CONFIG}\ndetail = \"none\""));
    let start = now - TimeDelta::hours(6);
    let run = run(&text, now, start, start).await;
    assert_eq!(run.stats.errors, Vec::<String>::new());
    let mut statuses: Vec<(String, Option<Status>)> =
        run.events.iter().map(|e| (e.evidence.0[0].page.clone().unwrap_or_default(), e.status)).collect();
    statuses.sort();
    let expected = [
        ("messageTraces/m0".to_string(), Some(Status::Delivered)),
        ("messageTraces/m1".to_string(), None),
        ("messageTraces/m2".to_string(), Some(Status::Delivered)),
        ("messageTraces/m3".to_string(), None),
    ];
    assert_eq!(statuses, expected);
    let lists: Vec<_> = emulator.requests().into_iter().filter(|r| r.route == Route::List).collect();
    assert!(!lists.is_empty());
    assert!(lists.iter().all(|r| r.prefer.as_deref() == Some("include-unknown-enum-members")), "{lists:?}");
    assert!(
        run.notes().contains("2 recipients' status is not known to mailflow (brandNewStatus, unknownFutureValue)"),
        "{}",
        run.notes()
    );
}

#[tokio::test(start_paused = true)]
async fn a_429_without_retry_after_waits_for_the_window_instead_of_giving_up() {
    let now = Utc::now();
    let emulator = Emulator::start(now).await;
    let truth = populate(&emulator, now, 2, 30);
    // Another tool spends most of the tenant's requests: it throttles at 10, with no Retry-After.
    emulator.with(|i| {
        i.limit = 10;
        i.throttle_retry_after = None;
    });
    let text = config_text(&emulator, &format!("{SECRET_CONFIG}\nmax_retries = 3"));
    let run = run(&text, now, now - TimeDelta::days(2), now - TimeDelta::days(2)).await;
    assert_eq!(run.stats.errors, Vec::<String>::new());
    assert_eq!(run.stats.warnings, Vec::<String>::new());
    assert_eq!(run.truth(), truth);
    // Each 429 waited until the window had room: one per 10 calls, never two in a row.
    let requests = emulator.requests();
    let throttled = requests.iter().filter(|r| r.status == 429).count();
    let served = requests.iter().filter(|r| r.status == 200).count();
    assert!(throttled > 0 && throttled <= served / 10 + 1, "{throttled} throttled, {served} served");
    assert!(requests.windows(2).all(|w| !(w[0].status == 429 && w[1].status == 429)));
    assert!(emulator.busiest_five_minutes() <= 11);
}
