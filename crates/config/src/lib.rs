//! Loads mailflow's TOML configuration.
//!
//! A config file has the site's settings (`[site]`, `[[connector]]`, `[insights]`) and repeated
//! component sections (`[[collector]]`, `[[sink]]`), each with a `type` and a `name`. This crate
//! knows the site settings but not the components: a component's options stay in the document
//! until its constructor asks for them with [`ComponentSection::options`], deserializing into its
//! own config struct. That keeps adding a component to one folder plus one registry line, while
//! every error still points at a file, line and column.
//!
//! `[[job]]` sections say when `mailflow daemon` runs which report; `[daemon]` holds what the
//! daemon needs besides (see [`JobConfig`]).
//!
//! Strings may refer to the environment as `${VAR}` or `${VAR:-default}` (`$${` is a literal
//! `${`). Expansion happens inside parsed string values, never on the raw text, so a variable's
//! value cannot change the structure of the file.
//!
//! # Layout
//! - [`Config`]: the loaded file; [`Config::load`] and [`Config::parse`].
//! - [`ComponentSection`]: one `[[collector]]` or `[[sink]]`, with its options left for later.
//! - [`ConfigError`] and [`ErrorKind`]: what went wrong and where.
//! - [`JobConfig`], [`Schedule`], [`DaemonConfig`]: scheduled runs.
//! - [`Secret`]: a value that is never printed.

mod error;
mod expand;
mod job;
mod secret;
mod settings;
mod store;

use std::collections::BTreeSet;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mailflow_core::insights::InsightSettings;
use mailflow_core::{ConnectorConfig, ConnectorRules, SiteConfig};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeTable, DeValue, Deserializer, ValueDeserializer};

pub use error::{ConfigError, ErrorKind};
pub use job::{DaemonConfig, JobConfig, Schedule};
pub use secret::Secret;
pub use settings::Settings;
pub use store::StoreConfig;

/// Environment variables an expansion read, as (name, value).
type Vars = Vec<(String, String)>;

/// How to look up `${VAR}`: the process environment, or a map in tests.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// A loaded and validated configuration file.
#[derive(Debug, Clone)]
pub struct Config {
    pub site: SiteConfig,
    pub connectors: Vec<ConnectorConfig>,
    pub insights: InsightSettings,
    pub collectors: Vec<ComponentSection>,
    pub sinks: Vec<ComponentSection>,
    pub jobs: Vec<JobConfig>,
    pub daemon: DaemonConfig,
    /// `[store]`, when the config has one.
    pub store: Option<StoreConfig>,
    rules: ConnectorRules,
    document: Arc<Document>,
}

/// The text of a config file, kept so component options can be read (with positions) later.
struct Document {
    path: PathBuf,
    text: String,
    /// The variables expansion read, so options expand the same way later. May hold secrets.
    env: Vars,
}

impl std::fmt::Debug for Document {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Document").field("path", &self.path).finish_non_exhaustive()
    }
}

/// The top level of the file. Component sections are read here only for `type` and `name`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    site: SiteConfig,
    #[serde(default)]
    connector: Vec<ConnectorConfig>,
    #[serde(default)]
    insights: InsightSettings,
    #[serde(default)]
    collector: Vec<ComponentHead>,
    #[serde(default)]
    sink: Vec<ComponentHead>,
    #[serde(default)]
    job: Vec<JobConfig>,
    #[serde(default)]
    daemon: DaemonConfig,
    #[serde(default)]
    store: Option<StoreConfig>,
}

#[derive(Deserialize)]
struct ComponentHead {
    #[serde(rename = "type")]
    type_name: String,
    name: Option<String>,
}

/// Whether a section is a `[[collector]]` or a `[[sink]]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Collector,
    Sink,
}

impl Role {
    fn key(self) -> &'static str {
        match self {
            Role::Collector => "collector",
            Role::Sink => "sink",
        }
    }
}

/// One `[[collector]]` or `[[sink]]` section.
#[derive(Debug, Clone)]
pub struct ComponentSection {
    pub role: Role,
    /// Position among the sections of its role, from 0.
    pub index: usize,
    /// The `type` key: which component to build.
    pub type_name: String,
    /// The `name` key, defaulting to the type; unique per role.
    pub name: String,
    span: Range<usize>,
    document: Arc<Document>,
}

impl Config {
    /// Reads and validates the file at `path`, expanding `${VAR}` from the process environment.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new(path, ErrorKind::Io, format!("cannot read the config file: {e}")))?;
        Config::parse(&text, path, &|name| std::env::var(name).ok())
    }

    /// Parses `text` as if read from `path` (relative paths in it resolve against its folder).
    pub fn parse(text: &str, path: &Path, env: Env<'_>) -> Result<Config, ConfigError> {
        let (root, used_env) = parse_expanded(text, path, env)?;
        let document = Arc::new(Document { path: path.to_path_buf(), text: text.to_string(), env: used_env });
        let spans = Spans::of(root.get_ref());
        let raw = RawConfig::deserialize(Deserializer::from(root)).map_err(|e| document.toml_error(e, None))?;

        raw.insights
            .validate()
            .map_err(|e| document.error_at(spans.insights.clone(), ErrorKind::Invalid, None, e.to_string()))?;
        for (index, c) in raw.connector.iter().enumerate() {
            raw.insights.with(&c.insights).validate().map_err(|e| {
                let message = format!("connector #{} \"{}\": {e}", index + 1, c.name);
                document.error_at(spans.connector.get(index).cloned(), ErrorKind::Invalid, None, message)
            })?;
        }
        let rules = ConnectorRules::new(raw.site.clone(), &raw.connector).map_err(|e| {
            let span = match &e {
                mailflow_core::Error::Rule { index, .. } => spans.connector.get(*index).cloned(),
                _ => None,
            };
            document.error_at(span, ErrorKind::Invalid, None, e.to_string())
        })?;

        let sections = |role: Role,
                        heads: Vec<ComponentHead>,
                        spans: &[Range<usize>]|
         -> Result<Vec<ComponentSection>, ConfigError> {
            let mut names = BTreeSet::new();
            heads
                .into_iter()
                .enumerate()
                .map(|(index, head)| {
                    let name = head.name.unwrap_or_else(|| head.type_name.clone());
                    let section = ComponentSection {
                        role,
                        index,
                        type_name: head.type_name,
                        name: name.clone(),
                        span: spans[index].clone(),
                        document: document.clone(),
                    };
                    if name.trim().is_empty() {
                        return Err(section.error("`name` must not be empty"));
                    }
                    if !names.insert(name.clone()) {
                        return Err(section.error(format!(
                            "another [[{}]] is already named \"{name}\"; give each a distinct `name`",
                            role.key()
                        )));
                    }
                    Ok(section)
                })
                .collect()
        };
        let collectors = sections(Role::Collector, raw.collector, &spans.collector)?;
        let sinks = sections(Role::Sink, raw.sink, &spans.sink)?;
        let mut job_names = BTreeSet::new();
        for (index, job) in raw.job.iter().enumerate() {
            let problem = job_problem(job, &collectors, &sinks).or_else(|| {
                (!job_names.insert(job.name.as_str()))
                    .then(|| format!("another [[job]] is already named \"{}\"; give each a distinct `name`", job.name))
            });
            if let Some(message) = problem {
                let context = format!("[[job]] \"{}\"", job.name);
                return Err(document.error_at(
                    spans.job.get(index).cloned(),
                    ErrorKind::Invalid,
                    Some(context),
                    message,
                ));
            }
        }
        let mut daemon = raw.daemon;
        if let Some(dir) = &mut daemon.lock_dir {
            *dir = path.parent().unwrap_or(Path::new("")).join(&*dir);
        }
        let mut store = raw.store;
        if let Some(store) = &mut store {
            let base = path.parent().unwrap_or(Path::new(""));
            store.resolve(base);
            let problem = |message: String| document.error_at(spans.store.clone(), ErrorKind::Invalid, None, message);
            if !(1..=36_500).contains(&store.retention_days) || store.checkpoint_bytes < 4096 {
                return Err(problem(
                    "[store]: `retention_days` must be from 1 to 36500 and `checkpoint_bytes` at least 4096".into(),
                ));
            }
            if let Some(file) = store.password_file.take() {
                if store.password.is_some() {
                    return Err(problem("[store]: give `password` or `password_file`, not both".into()));
                }
                let secret = Secret::from_file(&file).map_err(|e| {
                    ConfigError::new(
                        path,
                        ErrorKind::Io,
                        format!("[store]: cannot read `password_file` {}: {e}", file.display()),
                    )
                })?;
                store.password = Some(secret);
            }
        }
        Ok(Config {
            store,
            collectors,
            sinks,
            jobs: raw.job,
            daemon,
            site: raw.site,
            connectors: raw.connector,
            insights: raw.insights,
            rules,
            document,
        })
    }

    /// The config file's path.
    pub fn path(&self) -> &Path {
        &self.document.path
    }

    /// The connector rules, compiled when the file was loaded.
    pub fn rules(&self) -> &ConnectorRules {
        &self.rules
    }
}

impl ComponentSection {
    /// Deserializes this section's options (all keys but `type` and `name`) into the
    /// component's config struct. Errors point at the offending key.
    pub fn options<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        let doc = &self.document;
        let env = |name: &str| doc.env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let (mut root, _) = parse_expanded(&doc.text, &doc.path, &env)?;
        let table = root
            .get_mut()
            .get_mut(self.role.key())
            .and_then(|v| match v.get_mut() {
                DeValue::Array(items) => items.get_mut(self.index),
                _ => None,
            })
            .map(|item| std::mem::replace(item, Spanned::new(0..0, DeValue::Boolean(false))))
            .expect("the section was found when the file was loaded");
        let span = table.span();
        let mut table = table.into_inner();
        if let DeValue::Table(t) = &mut table {
            t.remove("type");
            t.remove("name");
        }
        T::deserialize(ValueDeserializer::from(Spanned::new(span, table)))
            .map_err(|e| doc.toml_error(e, Some(self.context())))
    }

    /// An error about this section as a whole, pointing at its header.
    pub fn error(&self, message: impl Into<String>) -> ConfigError {
        self.error_kind(ErrorKind::Invalid, message)
    }

    pub fn error_kind(&self, kind: ErrorKind, message: impl Into<String>) -> ConfigError {
        self.document.error_at(Some(self.span.clone()), kind, Some(self.context()), message.into())
    }

    /// A secret given either as `key = "${VAR}"` or as `key_file = "/path"`: exactly one of
    /// `value` and `file` (the component's two fields), or neither when the secret is optional.
    /// The file is read now, so a missing or unreadable file is a config error naming it.
    pub fn secret(&self, key: &str, value: Option<Secret>, file: Option<&Path>) -> Result<Option<Secret>, ConfigError> {
        match (value, file) {
            (Some(_), Some(_)) => Err(self.error(format!("give `{key}` or `{key}_file`, not both"))),
            (Some(value), None) => Ok(Some(value)),
            (None, None) => Ok(None),
            (None, Some(file)) => {
                let path = self.resolve_path(file);
                let secret = Secret::from_file(&path).map_err(|e| {
                    self.error_kind(ErrorKind::Io, format!("cannot read `{key}_file` {}: {e}", path.display()))
                })?;
                if secret.expose().is_empty() {
                    return Err(self.error(format!("`{key}_file` {} is empty", path.display())));
                }
                Ok(Some(secret))
            }
        }
    }

    /// The folder relative paths in the config are taken from: the config file's.
    pub fn config_dir(&self) -> &Path {
        self.document.path.parent().unwrap_or(Path::new(""))
    }

    /// Resolves a path from the config against [`config_dir`](Self::config_dir).
    pub fn resolve_path(&self, path: &Path) -> PathBuf {
        if path.is_absolute() || path == Path::new("-") { path.to_path_buf() } else { self.config_dir().join(path) }
    }

    fn context(&self) -> String {
        format!("[[{}]] \"{}\" (type \"{}\")", self.role.key(), self.name, self.type_name)
    }
}

/// What is wrong with a job's name or the components it names, if anything.
fn job_problem(job: &JobConfig, collectors: &[ComponentSection], sinks: &[ComponentSection]) -> Option<String> {
    if job.name.trim().is_empty() {
        return Some("`name` must not be empty".to_string());
    }
    for (key, chosen, sections) in [("collectors", &job.collectors, collectors), ("sinks", &job.sinks, sinks)] {
        let Some(chosen) = chosen else { continue };
        if chosen.is_empty() {
            return Some(format!("`{key}` is empty; leave it out to use all {key}"));
        }
        if let Some(unknown) = chosen.iter().find(|name| !sections.iter().any(|s| &s.name == *name)) {
            let known: Vec<&str> = sections.iter().map(|s| s.name.as_str()).collect();
            return Some(format!("`{key}` names \"{unknown}\", which is not defined; defined: {}", known.join(", ")));
        }
    }
    None
}

/// Parses `text` and expands `${VAR}` in every string; returns the variables it used.
fn parse_expanded<'i>(text: &'i str, path: &Path, env: Env<'_>) -> Result<(Spanned<DeTable<'i>>, Vars), ConfigError> {
    let mut root = DeTable::parse(text).map_err(|e| ConfigError::from_toml(path, text, &e, ErrorKind::Syntax, None))?;
    let mut used = Vec::new();
    let span = root.span();
    let mut value = Spanned::new(span.clone(), DeValue::Table(std::mem::take(root.get_mut())));
    expand::expand_value(&mut value, env, &mut used)
        .map_err(|(span, message)| ConfigError::at(path, text, span, ErrorKind::MissingVariable, None, message))?;
    if let DeValue::Table(t) = value.into_inner() {
        root = Spanned::new(span, t);
    }
    Ok((root, used))
}

/// Where `[insights]` and each `[[connector]]`, `[[collector]]` and `[[sink]]` stand.
struct Spans {
    insights: Option<Range<usize>>,
    store: Option<Range<usize>>,
    connector: Vec<Range<usize>>,
    collector: Vec<Range<usize>>,
    sink: Vec<Range<usize>>,
    job: Vec<Range<usize>>,
}

impl Spans {
    fn of(root: &DeTable<'_>) -> Spans {
        let items = |key: &str| match root.get(key).map(|v| v.get_ref()) {
            Some(DeValue::Array(items)) => items.iter().map(|v| v.span()).collect(),
            _ => Vec::new(),
        };
        Spans {
            insights: root.get("insights").map(|v| v.span()),
            store: root.get("store").map(|v| v.span()),
            connector: items("connector"),
            collector: items("collector"),
            sink: items("sink"),
            job: items("job"),
        }
    }
}

impl Document {
    fn toml_error(&self, e: toml::de::Error, context: Option<String>) -> ConfigError {
        ConfigError::from_toml(&self.path, &self.text, &e, ErrorKind::Invalid, context)
    }

    fn error_at(
        &self,
        span: Option<Range<usize>>,
        kind: ErrorKind,
        context: Option<String>,
        message: String,
    ) -> ConfigError {
        match span {
            Some(span) => ConfigError::at(&self.path, &self.text, span, kind, context, message),
            None => ConfigError::new(&self.path, kind, message),
        }
    }
}

#[cfg(test)]
mod tests;
