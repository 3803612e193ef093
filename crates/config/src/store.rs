//! `[store]`: where `mailflow ingest` keeps daily rollups and collector checkpoints.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::Secret;

/// The `[store]` section. Its presence turns the history store on: `mailflow run` then ingests
/// into it and reports from it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `sqlite:///path/mailflow.db` (a relative path is taken from the config file's folder) or
    /// `postgres://user@host:5432/db`. Default: [`StoreConfig::default_url`].
    #[serde(default)]
    pub url: Option<String>,
    /// The PostgreSQL password, when the URL holds none: `${VAR}`, or `password_file`.
    #[serde(default)]
    pub password: Option<Secret>,
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Days of rollups kept; older days are pruned after each ingest.
    #[serde(default = "default_retention_days")]
    pub retention_days: u32,
    /// Log bytes read between checkpoints within one file; a killed ingest redoes at most this.
    #[serde(default = "default_checkpoint_bytes")]
    pub checkpoint_bytes: u64,
    /// The name this host's ingests own their sources under. Default: the machine's host name.
    #[serde(default)]
    pub host: Option<String>,
}

fn default_retention_days() -> u32 {
    400
}

fn default_checkpoint_bytes() -> u64 {
    64 * 1024 * 1024
}

impl StoreConfig {
    /// `host`, else the machine's host name.
    pub fn host(&self) -> String {
        self.host.clone().unwrap_or_else(|| {
            hostname::get().map_or_else(|_| "localhost".to_string(), |name| name.to_string_lossy().into_owned())
        })
    }

    /// `/var/lib/mailflow/mailflow.db` for root (or a service with `STATE_DIRECTORY`), else
    /// `$XDG_DATA_HOME/mailflow/mailflow.db` or `~/.local/share/mailflow/mailflow.db`.
    pub fn default_url() -> String {
        let root = || -> Option<bool> {
            use std::os::unix::fs::MetadataExt;
            Some(std::fs::metadata("/proc/self").ok()?.uid() == 0)
        };
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        let root = root().unwrap_or(false);
        let dir = var("STATE_DIRECTORY")
            .or_else(|| root.then(|| PathBuf::from("/var/lib/mailflow")))
            .or_else(|| var("XDG_DATA_HOME").map(|d| d.join("mailflow")))
            .or_else(|| var("HOME").map(|d| d.join(".local/share/mailflow")))
            .unwrap_or_else(|| PathBuf::from("/var/lib/mailflow"));
        format!("sqlite://{}", dir.join("mailflow.db").display())
    }

    /// Takes a relative SQLite path from `base` and fills in the default URL.
    pub(crate) fn resolve(&mut self, base: &Path) {
        let url = self.url.get_or_insert_with(StoreConfig::default_url);
        if let Some(path) = url.strip_prefix("sqlite://")
            && !path.starts_with('/')
            && !path.starts_with(':')
        {
            let path = base.join(path);
            *url = format!("sqlite://{}", std::path::absolute(&path).unwrap_or(path).display());
        }
        if let Some(file) = &mut self.password_file {
            *file = base.join(&*file);
        }
    }

    /// The URL (after [`Config`](crate::Config) loaded it, never `None`).
    pub fn url(&self) -> &str {
        self.url.as_deref().unwrap_or_default()
    }
}
