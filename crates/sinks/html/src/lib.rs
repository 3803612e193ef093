//! `[[sink]] type = "html"`: the mail flow dashboard as one self-contained HTML page.
//!
//! The page must open from `file://`, offline, years later, so it carries everything: the report
//! (the same document as the `json` sink, embedded once in a `<script type="application/json">`
//! block), the CSS and a small vanilla script that draws every view as inline SVG and recomputes
//! it for the date range the reader picks. Nothing is fetched.
//!
//! Every string in the report may come from a log line, so the page never turns data into markup:
//! the embedded JSON escapes `<`, `>` and `&`, the templates autoescape, and the script builds the
//! DOM with `textContent`. As a second wall, a Content-Security-Policy allows only the page's own
//! script (by its SHA-256) and no network at all, so even an injected `<script>` would not run.
//!
//! # Layout
//! - [`HtmlConfig`], [`build`]: the sink's options and constructor.
//! - [`Templates`], [`BUILT_IN`]: the page's templates (`brand.html`, `style.css`, `page.html`,
//!   `app.js`), built in and overridable one by one from `template_dir`.
//! - `templates/`: the built-in templates.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use mailflow_component::output::write_atomically;
use mailflow_component::{Sink, SinkError};
use mailflow_config::{ComponentSection, ConfigError};
use mailflow_core::Report;
use minijinja::{AutoEscape, Environment, UndefinedBehavior, context};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// Options of an `html` sink.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HtmlConfig {
    /// Where to write the page; relative paths are taken from the config file's folder.
    pub path: PathBuf,
    /// The page's heading and window title.
    #[serde(default = "default_title")]
    pub title: String,
    /// Days the page shows when opened (the last ones of the report); the reader can pick others.
    #[serde(default = "default_days")]
    pub default_days: u32,
    /// A folder whose `page.html`, `brand.html`, `style.css` or `app.js` replace the built-in ones.
    pub template_dir: Option<PathBuf>,
}

impl HtmlConfig {
    /// The defaults, writing to `path`.
    pub fn new(path: impl Into<PathBuf>) -> HtmlConfig {
        HtmlConfig { path: path.into(), title: default_title(), default_days: default_days(), template_dir: None }
    }
}

fn default_title() -> String {
    "Mail flow".to_string()
}

fn default_days() -> u32 {
    7
}

/// The templates a page is made of (name, built-in source), in the order a branding change
/// usually needs them.
pub const BUILT_IN: [(&str, &str); 4] = [
    ("brand.html", include_str!("../templates/brand.html")),
    ("style.css", include_str!("../templates/style.css")),
    ("page.html", include_str!("../templates/page.html")),
    ("app.js", include_str!("../templates/app.js")),
];

/// Builds the sink from its config section (the registry's entry point).
pub fn build(section: &ComponentSection) -> Result<Box<dyn Sink>, ConfigError> {
    let mut config: HtmlConfig = section.options()?;
    config.path = section.resolve_path(&config.path);
    if config.path.file_name().is_none() {
        return Err(section.error("`path` must name a file"));
    }
    if config.default_days == 0 {
        return Err(section.error("`default_days` must be at least 1"));
    }
    if let Some(dir) = &mut config.template_dir {
        *dir = section.resolve_path(dir);
        let entries = std::fs::read_dir(&*dir)
            .map_err(|e| section.error(format!("`template_dir` {} cannot be read: {e}", dir.display())))?;
        for name in entries.filter_map(|e| Some(e.ok()?.file_name().to_string_lossy().into_owned())) {
            if !BUILT_IN.iter().any(|(known, _)| *known == name) {
                tracing::warn!(
                    template_dir = %dir.display(),
                    "`{name}` is not one of the page's templates ({}) and is not used",
                    BUILT_IN.map(|(n, _)| n).join(", ")
                );
            }
        }
    }
    let templates = Templates::new(config.template_dir.clone());
    // Compile every template now, so `mailflow check` reports a broken one.
    templates.check().map_err(|e| section.error(e))?;
    Ok(Box::new(HtmlSink { config, templates }))
}

pub struct HtmlSink {
    config: HtmlConfig,
    templates: Templates,
}

impl Sink for HtmlSink {
    fn write(&self, report: &Report) -> Result<String, SinkError> {
        let page = self.templates.render(report, &self.config).map_err(SinkError::Other)?;
        write_atomically(&self.config.path, page.as_bytes())?;
        Ok(format!("wrote the HTML dashboard to {}", self.config.path.display()))
    }
}

/// The page's templates: the built-in ones, each replaced by a file of the same name in the
/// template folder when there is one.
pub struct Templates {
    env: Environment<'static>,
}

impl Templates {
    pub fn new(template_dir: Option<PathBuf>) -> Templates {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // Templates are inlined verbatim: the script's hash must match its text to the last byte.
        env.set_syntax(
            minijinja::syntax::SyntaxConfig::builder().keep_trailing_newline(true).build().expect("default delimiters"),
        );
        // Values put into the script or the styles become JSON literals that cannot close the
        // block they sit in: a name from a log can never turn into code there either.
        env.set_auto_escape_callback(|name| if name.ends_with(".html") { AutoEscape::Html } else { IN_SCRIPT });
        env.set_formatter(|out, state, value| {
            if *state.auto_escape() != IN_SCRIPT || value.is_safe() {
                return minijinja::escape_formatter(out, state, value);
            }
            let json = serde_json::to_string(value).map_err(|e| {
                minijinja::Error::new(minijinja::ErrorKind::BadSerialization, "cannot write a value as JSON")
                    .with_source(e)
            })?;
            out.write_str(&escape_for_script(&json)).map_err(minijinja::Error::from)
        });
        env.set_loader(move |name| {
            if let Some(dir) = &template_dir
                && let Some(source) = read_override(dir, name)?
            {
                return Ok(Some(source));
            }
            Ok(BUILT_IN.iter().find(|(n, _)| *n == name).map(|(_, source)| source.to_string()))
        });
        Templates { env }
    }

    /// Renders a page for an empty one-day report: names the first broken template, or a
    /// `page.html` that would leave the script out or blocked.
    pub fn check(&self) -> Result<(), String> {
        self.render(&mailflow_core::report::sample(), &HtmlConfig::new("check.html")).map(drop)
    }

    /// The whole page for `report`.
    pub fn render(&self, report: &Report, config: &HtmlConfig) -> Result<String, String> {
        let render = |name: &str, ctx: minijinja::Value| {
            self.env.get_template(name).and_then(|t| t.render(ctx)).map_err(|e| describe(&e))
        };
        let report_json = script_json(report).map_err(|e| format!("cannot serialize the report: {e}"))?;
        let ctx = context! {
            report => minijinja::Value::from(minijinja::value::Serde(report)),
            title => &config.title,
            default_days => config.default_days,
            version => env!("CARGO_PKG_VERSION"),
        };
        // Browsers read CR LF in a page as LF before they hash a script, so hash what they see.
        let script = render("app.js", ctx.clone())?.replace("\r\n", "\n").replace('\r', "\n");
        let style = render("style.css", ctx.clone())?;
        let script_hash =
            format!("sha256-{}", base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&script)));
        let page = render(
            "page.html",
            context! { script => &script, style, script_hash => &script_hash, report_json, ..ctx },
        )?;
        if !page.contains(&script) {
            return Err(
                "template page.html: the page lacks the script; keep `<script>{{ script|safe }}</script>`".into()
            );
        }
        if !page.contains(&format!("'{script_hash}'")) {
            return Err("template page.html: the Content-Security-Policy does not allow the script; keep \
                        `script-src '{{ script_hash|safe }}'`"
                .into());
        }
        Ok(page)
    }
}

/// The escaping of values rendered into `app.js` and `style.css`.
const IN_SCRIPT: AutoEscape = AutoEscape::Custom(std::borrow::Cow::Borrowed("script"));

fn read_override(dir: &Path, name: &str) -> Result<Option<String>, minijinja::Error> {
    let path = dir.join(name);
    match std::fs::read_to_string(&path) {
        Ok(source) => Ok(Some(source)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(minijinja::Error::new(
            minijinja::ErrorKind::InvalidOperation,
            format!("cannot read template {}: {e}", path.display()),
        )),
    }
}

/// A template error with the template's name and line, and what went wrong.
fn describe(e: &minijinja::Error) -> String {
    let mut out = match (e.name(), e.line()) {
        (Some(name), Some(line)) => format!("template {name}, line {line}: {}", e.kind()),
        (Some(name), None) => format!("template {name}: {}", e.kind()),
        _ => e.kind().to_string(),
    };
    if let Some(detail) = e.detail() {
        out.push_str(": ");
        out.push_str(detail);
    }
    out
}

/// The report as JSON that can sit inside `<script type="application/json">`: no log line can
/// close the block or open a comment.
pub fn script_json(report: &Report) -> serde_json::Result<String> {
    Ok(escape_for_script(&serde_json::to_string(report)?))
}

/// JSON with `<`, `>`, `&` and `'` written as `\u` escapes, which mean the same inside its strings
/// (the only place JSON has them) but cannot end a `<script>` or `<style>` block or a quoted
/// attribute.
fn escape_for_script(json: &str) -> String {
    let mut out = String::with_capacity(json.len() + json.len() / 64);
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\'' => out.push_str("\\u0027"),
            c => out.push(c),
        }
    }
    out
}
