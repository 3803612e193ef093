//! `[[collector]] type = "m365_message_trace"`: Exchange Online through Microsoft Graph's
//! message trace API.
//!
//! The list endpoint gives one row per (message, recipient) but neither connector nor TLS; those
//! are only in each recipient's trace details, one request each. The tenant gets about 100
//! requests per 5 minutes for both together, so a week of a busy tenant takes hours in detail:
//! `detail` chooses between all, a sample per day, or none, and every request waits its turn in
//! one limiter instead of provoking 429s.
//!
//! The collector runs its own single-threaded tokio runtime: the runner gives each collector a
//! thread, and nothing else here needs one.
//!
//! # Layout
//! - [`M365TraceConfig`]: the TOML options (see `sample.toml` beside this crate).
//! - `auth`: OAuth2 client credentials, with a secret or a certificate, and the token cache.
//! - `http`: the Graph client: pacing, retries, `Retry-After`, and errors that say what to do.
//! - `trace`: list rows into messages per direction, and connector and TLS from trace details.

mod auth;
mod http;
mod trace;

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Days, SubsecRound, TimeDelta, Utc};
use mailflow_component::net::is_loopback;
use mailflow_component::{CollectContext, CollectError, Collector, Emitter};
use mailflow_config::{ComponentSection, ConfigError, Secret};
use mailflow_core::range::start_of_day;
use serde::Deserialize;

use crate::auth::{Credential, TokenSource};
use crate::http::{ApiError, GraphClient, Limits};
use crate::trace::{Detail, ListRow, Part};

/// Options of an `m365_message_trace` collector.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct M365TraceConfig {
    /// The directory (tenant) id, a GUID, or a verified domain such as `contoso.onmicrosoft.com`.
    pub tenant_id: String,
    /// The application (client) id of the app registration that has `ExchangeMessageTrace.Read.All`.
    pub client_id: String,
    /// The client secret, from the environment: `client_secret = "${M365_CLIENT_SECRET}"`.
    pub client_secret: Option<Secret>,
    /// A file holding the client secret.
    pub client_secret_file: Option<PathBuf>,
    /// A PEM certificate uploaded to the app registration; signs a client assertion instead of
    /// sending a secret.
    pub certificate_file: Option<PathBuf>,
    /// The certificate's RSA private key (PEM, PKCS#8 or PKCS#1). Defaults to `certificate_file`,
    /// for a PEM that holds both.
    pub private_key_file: Option<PathBuf>,
    /// Microsoft Graph's address. Microsoft documents the message trace API for the global
    /// service only, so national clouds' Graph may not offer it.
    #[serde(default = "default_graph_url")]
    pub graph_url: String,
    /// The Microsoft identity platform's address.
    #[serde(default = "default_login_url")]
    pub login_url: String,
    /// Graph API version in request paths.
    #[serde(default = "default_api_version")]
    pub api_version: String,
    /// Trace details (connector and TLS): `"all"`, `"none"`, or `{ sample = N }` messages a day.
    #[serde(default)]
    pub detail: Detail,
    /// Requests allowed in any 5 minutes, list and detail together: the tenant's limit.
    #[serde(default = "default_requests_per_5min")]
    pub requests_per_5min: u32,
    /// Rows per list page, 1 to 5000.
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// How long one request may take.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// Retries of a request after 429, 5xx or a network error, before it counts as failed.
    #[serde(default = "default_max_retries")]
    pub max_retries: u32,
    /// How far back the API keeps message traces.
    #[serde(default = "default_retention_days")]
    pub retention_days: u32,
}

fn default_graph_url() -> String {
    "https://graph.microsoft.com".into()
}
fn default_login_url() -> String {
    "https://login.microsoftonline.com".into()
}
fn default_api_version() -> String {
    "v1.0".into()
}
fn default_requests_per_5min() -> u32 {
    100
}
fn default_page_size() -> u32 {
    5000
}
fn default_timeout_secs() -> u64 {
    120
}
fn default_max_retries() -> u32 {
    6
}
fn default_retention_days() -> u32 {
    90
}

/// Builds the collector from its config section (the registry's entry point).
pub fn build(section: &ComponentSection) -> Result<Box<dyn Collector>, ConfigError> {
    Ok(Box::new(M365TraceCollector::from_section(section)?))
}

/// The running collector.
pub struct M365TraceCollector {
    config: M365TraceConfig,
    credential: Credential,
}

impl M365TraceCollector {
    pub fn from_section(section: &ComponentSection) -> Result<Self, ConfigError> {
        let mut config: M365TraceConfig = section.options()?;
        for (key, value) in [("tenant_id", &config.tenant_id), ("client_id", &config.client_id)] {
            if value.trim().is_empty() || value.contains(['/', '?', '#', ' ']) {
                return Err(section.error(format!("`{key}` must be the id from the app registration's overview page")));
            }
        }
        for (key, value) in [("graph_url", &config.graph_url), ("login_url", &config.login_url)] {
            // Plain http would hand the token to anyone on the path; only a local test server may use it.
            match url::Url::parse(value) {
                Ok(url) if url.scheme() == "https" && url.host().is_some() => {}
                Ok(url) if url.scheme() == "http" && url.host_str().is_some_and(is_loopback) => {}
                _ => return Err(section.error(format!("`{key}` must be an https:// address, not \"{value}\""))),
            }
        }
        if !(1..=5000).contains(&config.page_size) {
            return Err(section.error("`page_size` must be between 1 and 5000, the API's limits"));
        }
        if config.requests_per_5min == 0 {
            return Err(section.error("`requests_per_5min` must be above 0"));
        }
        if config.retention_days == 0 {
            return Err(section.error("`retention_days` must be above 0"));
        }
        if let Detail::Sample(0) = config.detail {
            return Err(section.error("`detail = { sample = N }` needs N above 0; use `detail = \"none\"` for none"));
        }
        let secret =
            section.secret("client_secret", config.client_secret.take(), config.client_secret_file.as_deref())?;
        let credential = match (secret, &config.certificate_file) {
            (Some(_), Some(_)) => {
                return Err(section.error("give a client secret or a certificate, not both"));
            }
            (Some(secret), None) => {
                if config.private_key_file.is_some() {
                    return Err(section.error("`private_key_file` belongs to `certificate_file`"));
                }
                Credential::Secret(secret)
            }
            (None, Some(certificate)) => {
                let certificate = section.resolve_path(certificate);
                let key = config.private_key_file.as_deref().map_or(certificate.clone(), |k| section.resolve_path(k));
                Credential::certificate(&certificate, &key).map_err(|why| section.error(why))?
            }
            (None, None) => {
                return Err(section.error(
                    "give `client_secret` (from the environment: \"${VAR}\"), `client_secret_file`, or \
                     `certificate_file` (with `private_key_file`)",
                ));
            }
        };
        Ok(M365TraceCollector { config, credential })
    }

    /// Collects `ctx`'s window as of `now`; the async core of [`Collector::collect`], for tests
    /// that run it on a paused clock.
    pub async fn collect_async(
        &self,
        ctx: &CollectContext<'_>,
        out: &mut Emitter<'_>,
        now: DateTime<Utc>,
    ) -> Result<(), CollectError> {
        if ctx.site.accepted_domains.is_empty() {
            return Err(CollectError::Other(
                "set `accepted_domains` in [site]: the message trace API does not say which mail is inbound and which \
                 outbound, so mailflow tells them apart by the sender's and recipients' domains"
                    .into(),
            ));
        }
        let (start, end) = self.available(ctx, now, out)?;
        let config = &self.config;
        let tokens = TokenSource::new(
            &config.login_url,
            &config.tenant_id,
            &config.client_id,
            &config.graph_url,
            self.credential.clone(),
        );
        let limits = Limits {
            requests_per_5min: config.requests_per_5min as usize,
            timeout: Duration::from_secs(config.timeout_secs),
            max_retries: config.max_retries,
        };
        let mut client =
            GraphClient::new(&config.graph_url, &config.api_version, tokens, limits, out.progress().clone())
                .map_err(CollectError::Other)?;

        // One local day per query, though the API allows ten: memory holds one day's rows, a
        // sample is per day, and a failure costs one day. It adds one request per day.
        let mut tally = trace::Tally::default();
        let mut window_start = start;
        while window_start < end {
            let next_day = window_start.with_timezone(&ctx.site.timezone).date_naive() + Days::new(1);
            let window_end = start_of_day(next_day, ctx.site.timezone).min(end);
            let result = self.collect_window(&mut client, ctx, window_start, window_end, &mut tally, out).await;
            if let Err(e) = result {
                let fatal = e.is_fatal();
                out.error(e.to_string());
                if fatal {
                    break;
                }
            }
            window_start = window_end;
        }
        tally.finish(&self.config.detail, client.stats(), self.config.requests_per_5min, out);
        Ok(())
    }

    /// The part of `ctx`'s window the API still keeps; an error when it keeps none of it.
    fn available(
        &self,
        ctx: &CollectContext<'_>,
        now: DateTime<Utc>,
        out: &mut Emitter<'_>,
    ) -> Result<(DateTime<Utc>, DateTime<Utc>), CollectError> {
        // An hour's margin: retries of the first day may take that long, and a query that starts
        // beyond the limit by the time it is sent is refused.
        let now = now.trunc_subsecs(0);
        let oldest = now - TimeDelta::days(i64::from(self.config.retention_days)) + TimeDelta::hours(1);
        let end = ctx.end.min(now);
        let days = self.config.retention_days;
        let older = |what: &str| {
            format!(
                "{what} starts {}, but the message trace API keeps only {days} days (back to {}); export older days \
                 with Start-HistoricalSearch and read them with an `m365_csv` collector",
                ctx.report_start.format("%Y-%m-%d %H:%M UTC"),
                oldest.format("%Y-%m-%d %H:%M UTC"),
            )
        };
        if end <= oldest {
            return Err(CollectError::Other(older("the report range")));
        }
        if ctx.start >= oldest {
            return Ok((ctx.start, end));
        }
        if ctx.report_start < oldest {
            out.error(older("the report range"));
        } else {
            out.note(format!(
                "the previous period, for comparisons, is read only from {}: the API keeps {days} days",
                oldest.format("%Y-%m-%d %H:%M UTC")
            ));
        }
        Ok((oldest, end))
    }

    /// Lists one window, fetches the details `detail` asks for, and emits its messages. Rows
    /// of pages read before a failure are still emitted, and the failure returned.
    async fn collect_window(
        &self,
        client: &mut GraphClient,
        ctx: &CollectContext<'_>,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        tally: &mut trace::Tally,
        out: &mut Emitter<'_>,
    ) -> Result<(), ApiError> {
        let mut rows: Vec<ListRow> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        client.plan_calls(1);
        let listed = client
            .list(start, end, self.config.page_size, |page_rows, page, skipped| {
                for (index, why) in skipped {
                    out.skip(format!("{page} (row {index})"), why);
                }
                for row in page_rows {
                    if seen.insert((row.id.clone(), row.recipient_address.to_ascii_lowercase())) {
                        rows.push(row);
                    } else {
                        tally.duplicates += 1;
                    }
                }
            })
            .await;
        let mut parts = trace::parts(rows, &ctx.site.accepted_domains, tally);
        let chosen = self.config.detail.choose(&parts);
        client.plan_calls(chosen.len() as u64);
        let mut detail_error = None;
        for index in chosen {
            let part: &mut Part = &mut parts[index];
            match client.details(&part.id, &part.detail_recipient).await {
                Ok(details) => {
                    for (page, index, why) in &details.skipped {
                        out.skip(format!("{page} (event {index})"), why);
                    }
                    part.apply_details(&details.events);
                }
                Err(e) if e.is_fatal() => {
                    detail_error = Some(e);
                    break;
                }
                Err(e) => {
                    tally.detail_failures += 1;
                    out.warn(e.to_string());
                }
            }
        }
        for part in parts {
            out.event(part.into_event(tally));
        }
        listed.and(detail_error.map_or(Ok(()), Err))
    }
}

impl Collector for M365TraceCollector {
    /// A first ingest of 90 days would take thousands of paced calls; `--days` asks for more.
    fn first_ingest_days(&self) -> Option<u32> {
        Some(7)
    }

    /// A day less than the API keeps: the oldest day is gone by evening.
    fn history_days(&self) -> Option<u32> {
        Some(self.config.retention_days.saturating_sub(1).max(1))
    }

    fn collect(&self, ctx: &CollectContext<'_>, out: &mut Emitter<'_>) -> Result<(), CollectError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| CollectError::Other(format!("cannot start the HTTP runtime: {e}")))?;
        runtime.block_on(self.collect_async(ctx, out, Utc::now()))
    }
}
