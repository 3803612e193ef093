//! The page as the sink writes it: self-contained, escaped, overridable, small.

use mailflow_sink_html::{HtmlConfig, Templates, script_json};

fn config() -> HtmlConfig {
    HtmlConfig::new("unused.html")
}

#[test]
fn the_page_carries_everything_and_fetches_nothing() {
    let report = mailflow_testkit::fleet_report(7, 4);
    let page = Templates::new(None).render(&report, &config()).unwrap();
    assert!(page.starts_with("<!doctype html>"), "{}", &page[..100]);
    for needle in ["<style>", "id=\"mailflow-report\"", "Content-Security-Policy", "default-src 'none'"] {
        assert!(page.contains(needle), "missing {needle}");
    }
    // No address to fetch from: no src=, no href= to http(s), no @import.
    for forbidden in [" src=", "href=\"http", "@import", "url(http"] {
        assert!(!page.contains(forbidden), "the page would fetch: {forbidden}");
    }
    // The script is in verbatim (no template syntax ate part of it) and the policy allows it.
    let script = include_str!("../templates/app.js");
    assert!(page.contains(script));
    let json = script_json(&report).unwrap();
    assert!(page.contains(&json));
    let start = page.find("script-src '").unwrap() + "script-src '".len();
    let hash = &page[start..start + page[start..].find('\'').unwrap()];
    use base64::Engine as _;
    use sha2::Digest as _;
    let expected = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(script));
    assert_eq!(hash, format!("sha256-{expected}"));
}

#[test]
fn log_text_cannot_leave_its_place() {
    let mut report = mailflow_testkit::fleet_report(7, 2);
    let hostile = "</script><script>alert(1)</script><!-- \"onmouseover=alert(2) & \u{2028}";
    report.connectors[0].name = hostile.into();
    report.sources[0].warnings.push(hostile.into());
    let mut config = config();
    config.title = "<b>Acme</b> & co".into();
    let page = Templates::new(None).render(&report, &config).unwrap();
    assert!(!page.contains("<script>alert"), "raw markup from a log reached the page");
    assert!(!page.contains("<!--"), "a log opened an HTML comment");
    assert!(page.contains("&lt;b&gt;Acme&lt;") && !page.contains("<b>Acme"), "the title is escaped in the template");
    // The embedded JSON still means the same.
    let json = script_json(&report).unwrap();
    let back: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(back["connectors"][0]["name"], hostile);
    assert_eq!(page.matches("</script>").count(), 2, "only the page's own two script blocks close");
}

#[test]
fn a_template_folder_replaces_templates_one_by_one() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("brand.html"), "<div class=\"brand\">Contoso IT · {{ title }}</div>").unwrap();
    let templates = Templates::new(Some(dir.path().to_path_buf()));
    templates.check().unwrap();
    let page = templates.render(&mailflow_testkit::fleet_report(7, 2), &config()).unwrap();
    assert!(page.contains("Contoso IT · Mail flow"));
    assert!(page.contains(include_str!("../templates/app.js")), "the others stay built in");

    std::fs::write(dir.path().join("page.html"), "<html>\n{% if %}\n</html>").unwrap();
    let err = Templates::new(Some(dir.path().to_path_buf())).check().unwrap_err();
    assert!(err.starts_with("template page.html, line 2: syntax error"), "{err}");
}

#[test]
fn a_template_with_windows_line_endings_still_runs() {
    // Browsers hash a script after reading CR LF as LF; so must the policy.
    let dir = tempfile::tempdir().unwrap();
    let script = include_str!("../templates/app.js");
    std::fs::write(dir.path().join("app.js"), script.replace('\n', "\r\n")).unwrap();
    let page = Templates::new(Some(dir.path().to_path_buf()))
        .render(&mailflow_testkit::fleet_report(7, 2), &config())
        .unwrap();
    assert!(!page.contains('\r'));
    assert!(page.contains(script));
    use base64::Engine as _;
    use sha2::Digest as _;
    let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(script));
    assert!(page.contains(&format!("script-src 'sha256-{hash}'")));
}

#[test]
fn a_page_template_that_drops_the_script_or_its_hash_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let templates = || Templates::new(Some(dir.path().to_path_buf()));
    let page = include_str!("../templates/page.html");
    std::fs::write(dir.path().join("page.html"), page.replace("{{ script|safe }}", "{{ script }}")).unwrap();
    assert!(templates().check().unwrap_err().contains("lacks the script"));
    std::fs::write(dir.path().join("page.html"), page.replace("'{{ script_hash|safe }}'", "'self'")).unwrap();
    assert!(templates().check().unwrap_err().contains("does not allow the script"));
}

#[test]
fn values_put_into_the_script_are_json_literals() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("app.js"), "const first = {{ report.connectors[0].name }};").unwrap();
    let mut report = mailflow_testkit::fleet_report(7, 2);
    report.connectors[0].name = "x'; alert(1); '</script>".into();
    let page = Templates::new(Some(dir.path().to_path_buf())).render(&report, &config()).unwrap();
    assert!(page.contains(r#"const first = "x\u0027; alert(1); \u0027\u003c/script\u003e";"#), "{page}");
}

#[test]
fn thirty_days_of_fifty_connectors_stay_under_one_megabyte() {
    let report = mailflow_testkit::fleet_report(30, 50);
    assert_eq!(report.connectors.len(), 52, "50 plus No connector per direction");
    let page = Templates::new(None).render(&report, &config()).unwrap();
    assert!(page.len() < 1_000_000, "{} bytes", page.len());
}
