//! The HTML dashboard in a real browser: headless Chromium driven through WebDriver.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them; `CHROME` and
//! `CHROMEDRIVER` name other binaries). Without them these tests say so and pass, except under
//! `CI=true`, where a missing browser is a failure. Screenshots of every view, light and dark, land
//! in `target/tmp/dashboard-screenshots/`.

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use mailflow_core::format::thousands;
use serde_json::{Value, json};

const CHROME: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A chromedriver process and a session in it; the process dies with this value.
struct Browser {
    client: Client,
    driver: Child,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn binary(var: &str, default: &str) -> Option<PathBuf> {
    let path = std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| default.into());
    path.exists().then_some(path)
}

/// A browser session, or `None` (after saying why) when Chromium is not installed outside CI.
async fn browser() -> Option<Browser> {
    let (Some(chrome), Some(chromedriver)) = (binary("CHROME", CHROME), binary("CHROMEDRIVER", CHROMEDRIVER)) else {
        let why = "Chromium and ChromeDriver are not installed (apt-get install chromium chromium-driver)";
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}");
        eprintln!("skipped: {why}");
        return None;
    };
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let driver = Command::new(&chromedriver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromedriver.display()));
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": chrome,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--disable-background-networking", "--window-size=1280,1000", "--lang=en-US"],
        },
        "goog:loggingPrefs": { "browser": "ALL" },
    });
    let capabilities = capabilities.as_object().unwrap().clone();
    let started = Instant::now();
    loop {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(connector)
            .capabilities(capabilities.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(client) => return Some(Browser { client, driver }),
            Err(e) if started.elapsed() > Duration::from_secs(30) => panic!("ChromeDriver did not start: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// A ChromeDriver command fantoccini has no method for: `POST /session/{id}/{path}`.
#[derive(Debug)]
struct SessionPost {
    path: &'static str,
    body: Value,
}

impl WebDriverCompatibleCommand for SessionPost {
    fn endpoint(&self, base: &url::Url, session: Option<&str>) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/{}", session.unwrap_or_default(), self.path))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(self.body.to_string()))
    }
}

impl Browser {
    /// Opens a page from disk and waits until its script has drawn it.
    async fn open(&self, page: &Path, hash: &str) {
        let url = format!("file://{}{hash}", page.display());
        self.client.goto(&url).await.unwrap();
        self.client.refresh().await.unwrap();
        self.wait_ready().await;
    }

    async fn wait_ready(&self) {
        let started = Instant::now();
        while self.js("return document.body.dataset.ready || null").await.is_null() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the page never finished drawing: {:?}",
                self.console().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn js(&self, script: &str) -> Value {
        self.client.execute(script, vec![]).await.unwrap()
    }

    async fn text(&self, css: &str) -> String {
        self.client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("no {css}: {e}")).text().await.unwrap()
    }

    async fn click(&self, css: &str) {
        self.client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("no {css}: {e}")).click().await.unwrap();
    }

    /// Console messages at level SEVERE (errors, CSP refusals, uncaught exceptions).
    async fn console(&self) -> Vec<String> {
        let log =
            self.client.issue_cmd(SessionPost { path: "se/log", body: json!({"type": "browser"}) }).await.unwrap();
        log.as_array()
            .unwrap()
            .iter()
            .filter(|entry| entry["level"] == "SEVERE")
            .map(|entry| entry["message"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// Emulates a CSS media type or feature (Chrome DevTools `Emulation.setEmulatedMedia`).
    async fn media(&self, params: Value) {
        let body = json!({"cmd": "Emulation.setEmulatedMedia", "params": params});
        self.client.issue_cmd(SessionPost { path: "goog/cdp/execute", body }).await.unwrap();
    }

    async fn dark(&self, on: bool) {
        let scheme = if on { "dark" } else { "light" };
        self.media(json!({"features": [{"name": "prefers-color-scheme", "value": scheme}]})).await;
    }

    async fn screenshot(&self, name: &str) {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), self.client.screenshot().await.unwrap()).unwrap();
    }

    /// Sets the date filter as a reader would: a date picked in an input fires `change`.
    async fn pick_dates(&self, from: &str, to: &str) {
        for (id, date) in [("from", from), ("to", to)] {
            let script = format!(
                "const i = document.getElementById('{id}'); i.value = '{date}'; i.dispatchEvent(new Event('change'));"
            );
            self.js(&script).await;
        }
    }
}

fn mailflow_ok(args: &[&str]) {
    let out = common::mailflow(args);
    assert!(out.status.success(), "mailflow {args:?}: {}", common::text(&out.stderr));
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn count(value: &Value) -> String {
    thousands(value.as_u64().unwrap())
}

/// The sum of `field` over the days of `traffic` from `from` to `to` (both included).
fn days_sum(traffic: &Value, from: &str, to: &str, field: &[&str]) -> u64 {
    let days = traffic["daily"].as_array().unwrap();
    let picked = days.iter().filter(|d| (from..=to).contains(&d["date"].as_str().unwrap()));
    picked.map(|d| field.iter().fold(d, |v, k| &v[*k]).as_u64().unwrap()).sum()
}

/// A connector of the report, and its id in the page (its `value` in the picker, `connector=` in
/// links).
fn connector<'a>(report: &'a Value, name: &str, direction: &str) -> (&'a Value, String) {
    let connectors = report["connectors"].as_array().unwrap();
    let found = connectors.iter().find(|c| c["name"] == name && c["direction"] == direction);
    (found.unwrap_or_else(|| panic!("no connector {name} ({direction})")), format!("{direction}:{name}"))
}

#[tokio::test]
async fn the_demo_dashboard_shows_the_reports_figures_in_every_view() {
    let Some(browser) = browser().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    mailflow_ok(&["-q", "demo", "--out", out]);
    let page = dir.path().join("dashboard.html");
    let report = read_json(&dir.path().join("report.json"));
    let totals = &report["totals"];
    browser.open(&page, "").await;
    assert_eq!(browser.console().await, Vec::<String>::new(), "console errors");

    // Overview: the whole week, as the report counts it.
    assert_eq!(browser.text("[data-metric=inbound-messages]").await, count(&totals["inbound"]["messages"]));
    assert_eq!(browser.text("[data-metric=outbound-messages]").await, count(&totals["outbound"]["messages"]));
    assert_eq!(browser.text("[data-metric=insights]").await, report["insights"].as_array().unwrap().len().to_string());
    let inbound = &totals["inbound"];
    let protected = inbound["messages"].as_u64().unwrap() - inbound["tls"]["none"].as_u64().unwrap();
    let expected = format!("{:.1}%", 100.0 * protected as f64 / inbound["messages"].as_f64().unwrap());
    assert_eq!(browser.text("[data-metric=inbound-protected]").await, expected);

    // "Message protected in transit": every TLS version and trust level, both directions.
    browser.click("[role=tab][data-view=tls]").await;
    for direction in ["inbound", "outbound"] {
        for version in ["none", "ssl3", "tls1_0", "tls1_1", "tls1_2", "tls1_3", "unknown"] {
            let css = format!("#view-tls [data-table=tls-{direction}] tr[data-key={version}] [data-field=messages]");
            assert_eq!(browser.text(&css).await, count(&totals[direction]["tls"][version]), "{direction} {version}");
        }
        for trust in ["anonymous", "untrusted", "trusted", "verified", "unknown"] {
            let css = format!("#view-tls [data-table=trust-{direction}] tr[data-key={trust}] [data-field=messages]");
            assert_eq!(browser.text(&css).await, count(&totals[direction]["trust"][trust]), "{direction} {trust}");
        }
    }
    assert!(browser.js("return !document.getElementById('view-overview').checkVisibility()").await.as_bool().unwrap());

    // Connector report: pick a connector by name; its days and total are the report's.
    browser.click("[role=tab][data-view=connectors]").await;
    let (connector, id) = connector(&report, "Partner Contoso", "outbound");
    browser.client.find(Locator::Id("connector")).await.unwrap().select_by_value(&id).await.unwrap();
    assert!(browser.text("#view-connectors h2").await.starts_with("Partner Contoso (outbound)"));
    assert!(browser.text("#view-connectors h2").await.contains("Volume rose"), "the insight badge sits by the name");
    assert_eq!(browser.text("[data-table=flow] tfoot [data-field=messages]").await, count(&connector["messages"]));
    for day in connector["daily"].as_array().unwrap() {
        let css = format!("[data-table=flow] tr[data-date='{}'] [data-field=messages]", day["date"].as_str().unwrap());
        assert_eq!(browser.text(&css).await, count(&day["messages"]));
    }
    browser.click("#view-connectors .seg [data-value=status]").await;
    let focused = browser.js("return document.activeElement.dataset.focus").await;
    assert_eq!(focused, "Break down by:status", "a redraw keeps the focus on the control used");
    assert_eq!(browser.text("[data-table=flow] tfoot [data-key=failed]").await, count(&connector["status"]["failed"]));
    browser.click("#view-connectors .seg [data-value=tls]").await;
    assert!(
        browser
            .js("return document.querySelectorAll('#view-connectors svg.chart rect').length > 0")
            .await
            .as_bool()
            .unwrap()
    );
    browser.screenshot("connector-tls-usage-light").await;

    // "All mail flow" lists every connector, "No connector" included.
    browser.client.find(Locator::Id("connector")).await.unwrap().select_by_value("all").await.unwrap();
    let rows = browser.js("return document.querySelectorAll('[data-table=tls-usage] tbody tr').length").await;
    assert_eq!(rows.as_u64().unwrap() as usize, report["connectors"].as_array().unwrap().len());
    let names = browser.js("return [...document.querySelectorAll('[data-table=connectors] tbody td:first-child')].map(td => td.textContent)").await;
    assert_eq!(names.as_array().unwrap().iter().filter(|n| *n == "No connector").count(), 2, "{names}");

    // The date filter recomputes every view for the days picked.
    browser.pick_dates("2026-11-25", "2026-11-27").await;
    browser.click("[role=tab][data-view=overview]").await;
    let sub = days_sum(&totals["inbound"], "2026-11-25", "2026-11-27", &["messages"]);
    assert_eq!(browser.text("[data-metric=inbound-messages]").await, thousands(sub));
    browser.click("[role=tab][data-view=tls]").await;
    let css = "#view-tls [data-table=tls-outbound] tr[data-key=tls1_2] [data-field=messages]";
    assert_eq!(
        browser.text(css).await,
        thousands(days_sum(&totals["outbound"], "2026-11-25", "2026-11-27", &["tls", "tls1_2"]))
    );
    let hash = browser.js("return location.hash").await;
    assert!(hash.as_str().unwrap().contains("from=2026-11-25&to=2026-11-27"), "{hash}");
    browser.click("#filter [data-value='7']").await;
    assert_eq!(browser.js("return document.getElementById('from').value").await, "2026-11-23");

    // Typed from the keyboard, a date applies once complete, and the field keeps the focus.
    browser.click("[role=tab][data-view=overview]").await;
    browser.js("document.getElementById('from').focus()").await;
    browser.client.find(Locator::Id("from")).await.unwrap().send_keys("11242026").await.unwrap();
    assert_eq!(browser.js("return document.getElementById('from').value").await, "2026-11-24");
    assert_eq!(browser.js("return document.activeElement.id").await, "from");
    let sub = days_sum(&totals["inbound"], "2026-11-24", "2026-11-29", &["messages"]);
    assert_eq!(browser.text("[data-metric=inbound-messages]").await, thousands(sub));

    // A link with the state in it opens where it was.
    browser
        .open(&page, &format!("#view=connectors&from=2026-11-24&to=2026-11-24&connector={id}&mode=flow&by=direction"))
        .await;
    let one_day = days_sum(connector, "2026-11-24", "2026-11-24", &["messages"]);
    assert_eq!(browser.text("[data-table=flow] tfoot [data-field=messages]").await, thousands(one_day));

    // Insights: each with its value, threshold, message and remediation; sources with their counts.
    browser.click("[role=tab][data-view=insights]").await;
    let shown = browser.js("return document.querySelectorAll('#view-insights article').length").await;
    assert_eq!(shown.as_u64().unwrap() as usize, report["insights"].as_array().unwrap().len());
    let first = &report["insights"][0];
    let first_text = browser.text("#view-insights article").await;
    assert!(first_text.contains(first["message"].as_str().unwrap()), "{first_text}");
    assert!(first_text.contains(first["remediation"].as_str().unwrap()), "{first_text}");
    browser.click("#view-insights article .link").await;
    let picked = browser.js("return document.getElementById('connector').value").await;
    let expected = format!("{}:{}", first["direction"].as_str().unwrap(), first["connector"].as_str().unwrap());
    assert_eq!(picked, expected.as_str(), "an insight's connector opens its report");
    browser.click("[role=tab][data-view=insights]").await;
    browser.click("[role=tab][data-view=sources]").await;
    for source in report["sources"].as_array().unwrap() {
        let css = format!("tr[data-source='{}'] [data-field=skipped]", source["name"].as_str().unwrap());
        assert_eq!(browser.text(&css).await, count(&source["skipped"]));
    }
    assert_eq!(browser.console().await, Vec::<String>::new(), "console errors");

    // Printed, the page shows every view one after another, without the controls.
    browser.media(json!({"media": "print"})).await;
    let shown = "return [...document.querySelectorAll('.view')].filter(v => v.checkVisibility()).length";
    assert_eq!(browser.js(shown).await, 5, "every view prints");
    assert_eq!(browser.js("return document.getElementById('filter').checkVisibility()").await, false);
    browser.media(json!({"media": ""})).await;

    // Screenshots of each view, light and dark, and on a phone.
    browser.client.set_window_size(1280, 1500).await.unwrap();
    browser.open(&page, "").await;
    for dark in [false, true] {
        browser.dark(dark).await;
        for view in ["overview", "tls", "connectors", "insights", "sources"] {
            browser.click(&format!("[role=tab][data-view={view}]")).await;
            browser.screenshot(&format!("{view}-{}", if dark { "dark" } else { "light" })).await;
        }
    }
    browser.dark(false).await;
    browser.client.set_window_size(390, 844).await.unwrap();
    browser.click("[role=tab][data-view=overview]").await;
    browser.screenshot("overview-phone").await;
    let overflow = browser.js("return document.documentElement.scrollWidth > window.innerWidth").await;
    assert_eq!(overflow, false, "the page is wider than a phone");
}

/// Names a log can carry: each must show as text and run nothing.
const HOSTILE: [&str; 3] = [
    "<script>window.pwned = 1</script>",
    "\"><img src=x onerror=\"window.pwned = 2\">",
    "Relay\" onmouseover=\"window.pwned = 3",
];

#[tokio::test]
async fn names_from_logs_render_as_text() {
    let Some(browser) = browser().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut events = String::new();
    for (i, name) in HOSTILE.iter().enumerate() {
        for n in 0..30 {
            let event = json!({
                "time": format!("2026-11-2{}T1{}:00:00Z", 3 + i, n % 10),
                "direction": "inbound",
                "connector": name,
                "tls": {"version": "none"},
            });
            events.push_str(&format!("{event}\n"));
        }
    }
    events.push_str("{\"time\": \"<img src=x onerror=window.pwned=4>\", \"direction\": \"inbound\"}\n");
    std::fs::write(dir.path().join("events.jsonl"), events).unwrap();
    let config = r#"
[[collector]]
type = "events"
name = "<b>edge</b>"
paths = ["events.jsonl"]

[[sink]]
type = "html"
path = "dashboard.html"
title = "<i>Acme</i>"
"#;
    std::fs::write(dir.path().join("mailflow.toml"), config).unwrap();
    let config = dir.path().join("mailflow.toml");
    mailflow_ok(&["-q", "run", "--config", config.to_str().unwrap(), "--from", "2026-11-23", "--to", "2026-11-29"]);
    let page = dir.path().join("dashboard.html");

    for view in ["overview", "tls", "connectors", "insights", "sources"] {
        browser.open(&page, &format!("#view={view}")).await;
        let details = "document.querySelectorAll('details').forEach(d => d.open = true)";
        browser.js(details).await;
        for row in browser.client.find_all(Locator::Css("td, button, option, span")).await.unwrap().iter().take(60) {
            let _ = row.click().await; // pointer events over every name: onmouseover must not exist
        }
    }
    assert_eq!(browser.js("return window.pwned === undefined").await, true, "a name from a log ran as script");
    assert_eq!(browser.js("return document.querySelectorAll('img').length").await, 0);
    assert_eq!(browser.js("return document.scripts.length").await, 2, "only the page's own data and script blocks");

    browser.open(&page, "#view=connectors").await;
    let options =
        browser.js("return [...document.querySelectorAll('#connector option')].map(o => o.textContent)").await;
    for name in HOSTILE {
        assert!(options.as_array().unwrap().iter().any(|o| o == name), "{name} not shown as text in {options}");
    }
    browser.open(&page, "#view=insights").await;
    assert!(browser.text("#view-insights").await.contains(HOSTILE[0]), "the insight names the connector as text");
    browser.open(&page, "#view=sources").await;
    browser.js("document.querySelectorAll('details').forEach(d => d.open = true)").await;
    let sources = browser.text("[data-table=sources]").await;
    assert!(sources.contains("<b>edge</b>") && sources.contains("<img src=x"), "{sources}");
    assert_eq!(browser.text("h1").await, "<i>Acme</i>");
    assert_eq!(browser.console().await, Vec::<String>::new(), "console errors");
}

#[tokio::test]
async fn a_fleet_page_of_30_days_and_50_connectors_stays_small_and_fast() {
    let Some(browser) = browser().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut events = String::new();
    for day in 1..=30 {
        for c in 0..50 {
            let direction = if c % 2 == 0 { "inbound" } else { "outbound" };
            let version = ["tls1_3", "tls1_2", "tls1_2", "none", "tls1_0", "unknown"][(day + c) % 6];
            for n in 0..(1 + (day * 7 + c * 3) % 9) {
                let event = json!({
                    "time": format!("2026-11-{day:02}T{:02}:{:02}:00Z", 8 + n % 10, c),
                    "direction": direction,
                    "connector": format!("Partner {c:02} relay{c}.partner{c}.example"),
                    "tls": {"version": version},
                    "size": 30_000 + n * 1_000,
                });
                events.push_str(&format!("{event}\n"));
            }
        }
    }
    std::fs::write(dir.path().join("events.jsonl"), events).unwrap();
    let config = "[[collector]]\ntype = \"events\"\nname = \"fleet\"\npaths = [\"events.jsonl\"]\n\n\
                  [[sink]]\ntype = \"html\"\npath = \"dashboard.html\"\n";
    std::fs::write(dir.path().join("mailflow.toml"), config).unwrap();
    let config = dir.path().join("mailflow.toml");
    mailflow_ok(&["-q", "run", "--config", config.to_str().unwrap(), "--from", "2026-11-01", "--to", "2026-11-30"]);
    let page = dir.path().join("dashboard.html");
    let size = std::fs::metadata(&page).unwrap().len();
    assert!(size < 1_000_000, "{size} bytes");

    browser.open(&page, "").await;
    let first_draw = browser.js("return document.body.dataset.renderMs").await.as_str().unwrap().to_string();
    browser.click("#filter [data-value='30']").await;
    browser.click("[role=tab][data-view=connectors]").await;
    // A click redraws synchronously, so the script can time it without WebDriver's round trip.
    let timed = "const t = performance.now(); document.querySelector('#view-connectors .seg [data-value=tls]').click(); \
                 return (performance.now() - t).toFixed(1)";
    let redraw = browser.js(timed).await.as_str().unwrap().to_string();
    let rows = browser.js("return document.querySelectorAll('[data-table=tls-usage] tbody tr').length").await;
    assert_eq!(rows, 52, "50 connectors and No connector per direction");
    browser.screenshot("fleet-tls-usage-30-days").await;
    browser.click("[role=tab][data-view=tls]").await;
    browser.screenshot("fleet-tls-30-days").await;
    assert_eq!(browser.console().await, Vec::<String>::new(), "console errors");
    eprintln!(
        "fleet page (30 days × 50 connectors): {size} bytes; first draw {first_draw} ms in Chromium; \
         TLS usage view of 52 connectors redrawn for 30 days in {redraw} ms"
    );
}

#[tokio::test]
async fn a_day_without_mail_and_a_failed_source_still_make_a_page() {
    let Some(browser) = browser().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let config = "[[collector]]\ntype = \"events\"\nname = \"gone\"\npaths = [\"missing.jsonl\"]\n\n\
                  [[sink]]\ntype = \"html\"\npath = \"dashboard.html\"\n";
    std::fs::write(dir.path().join("mailflow.toml"), config).unwrap();
    let config = dir.path().join("mailflow.toml");
    let out = common::mailflow(&[
        "-q",
        "run",
        "--config",
        config.to_str().unwrap(),
        "--from",
        "2026-11-29",
        "--to",
        "2026-11-29",
    ]);
    assert_eq!(out.status.code(), Some(1), "a failed source exits 1, and the page is still written");
    let page = dir.path().join("dashboard.html");
    browser.open(&page, "").await;
    assert_eq!(browser.text("[data-metric=inbound-messages]").await, "0");
    assert_eq!(browser.text("[data-metric=inbound-protected]").await, "–");
    assert_eq!(browser.js("return [...document.querySelectorAll('#filter button:disabled')].length").await, 3);
    browser.click("[role=tab][data-view=sources]").await;
    let sources = browser.text("[data-table=sources]").await;
    assert!(sources.contains("failed") && sources.contains("missing.jsonl"), "{sources}");
    for view in ["tls", "connectors", "insights"] {
        browser.click(&format!("[role=tab][data-view={view}]")).await;
    }
    assert_eq!(browser.console().await, Vec::<String>::new(), "console errors");
}

#[tokio::test]
async fn the_digests_html_part_reads_right_in_a_browser_window_and_on_a_phone() {
    use mail_parser::{MessageParser, MimeHeaders};
    let Some(browser) = browser().await else { return };
    let dir = tempfile::tempdir().unwrap();
    mailflow_ok(&["-q", "demo", "--out", dir.path().to_str().unwrap()]);
    let config = dir.path().join("mailflow.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(
        "\n[[sink]]\ntype = \"email\"\nsmtp_host = \"smtp.corp.example\"\nfrom = \"mailflow@corp.example\"\n\
         to = [\"postmaster@corp.example\"]\ntitle = \"Mail flow at corp.example\"\npng_charts = true\n",
    );
    std::fs::write(&config, text).unwrap();
    let eml = dir.path().join("digest.eml");
    let (config, eml_arg) = (config.to_str().unwrap(), eml.to_str().unwrap());
    mailflow_ok(&[
        "digest",
        "--config",
        config,
        "--from",
        "2026-11-23",
        "--to",
        "2026-11-29",
        "--dry-run",
        "--out",
        eml_arg,
    ]);
    let report = read_json(&dir.path().join("report.json"));

    // As a mail client shows it: the HTML part, its cid: images saved beside it.
    let raw = std::fs::read(&eml).unwrap();
    let message = MessageParser::default().parse(&raw).unwrap();
    let mut html = message.body_html(0).unwrap().into_owned();
    for part in message.parts.iter().filter(|p| p.content_id().is_some()) {
        let id = part.content_id().unwrap();
        let file = format!("{}.png", id.split('@').next().unwrap());
        std::fs::write(dir.path().join(&file), part.contents()).unwrap();
        html = html.replace(&format!("cid:{id}"), &file);
    }
    let page = dir.path().join("digest.html");
    std::fs::write(&page, html).unwrap();

    browser.client.set_window_size(760, 1000).await.unwrap();
    browser.client.goto(&format!("file://{}", page.display())).await.unwrap();
    assert_eq!(browser.console().await, Vec::<String>::new(), "console errors");
    let body = browser.text("body").await;
    for direction in ["inbound", "outbound"] {
        assert!(body.contains(&count(&report["totals"][direction]["messages"])), "{direction} messages");
    }
    for insight in report["insights"].as_array().unwrap() {
        assert!(body.contains(insight["message"].as_str().unwrap()), "{insight}");
    }
    let images = "return [...document.images].map(i => i.complete && i.naturalWidth).join(',')";
    assert_eq!(browser.js(images).await, "1120,1120", "both charts load");
    let fits = "return document.documentElement.scrollWidth <= window.innerWidth";
    assert_eq!(browser.js(fits).await, true, "no sideways scrolling");
    let height = browser.js("return document.documentElement.scrollHeight").await.as_u64().unwrap();
    browser.client.set_window_size(760, height as u32 + 100).await.unwrap();
    browser.screenshot("digest").await;

    browser.client.set_window_size(400, 900).await.unwrap();
    assert_eq!(browser.js(fits).await, true, "no sideways scrolling on a phone");
    browser.screenshot("digest-phone").await;
}
