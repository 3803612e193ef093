//! The Graph client: every request waits for the pacer, carries a cached token, and is retried
//! after 429 (as long as `Retry-After` says, else until the 5-minute window has room), 5xx and
//! network errors (capped exponential backoff with jitter). Errors a user meets say what to do.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use mailflow_component::Progress;
use mailflow_component::net::error_chain;
use mailflow_config::Secret;
use mailflow_core::format::{fit, printable};
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, HeaderValue, RETRY_AFTER};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::time::{Duration, Instant};
use url::Url;

use crate::auth::{TokenError, TokenSource};
use crate::trace::{DetailEvent, ListRow};

/// How hard the client may push.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub requests_per_5min: usize,
    pub timeout: Duration,
    pub max_retries: u32,
}

/// What the client did, for the run's note.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub calls: u64,
    pub retries: u64,
    pub token_requests: u64,
    /// Time spent waiting for the pacer.
    pub paced: Duration,
    /// Time spent waiting after 429, 5xx and network errors.
    pub backed_off: Duration,
}

const FIVE_MINUTES: Duration = Duration::from_secs(300);
/// The longest a `Retry-After` is obeyed; a longer one is taken as this.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);
/// Rows of one listing before the collector takes the paging to be broken.
const MAX_ROWS: usize = 50_000_000;
/// Microsoft's app behind the message trace API; the tenant needs a service principal for it.
pub const TRACE_APP_ID: &str = "8bd644d1-64a1-4d4b-ae52-2e0cbf64e373";
/// Without it, Graph writes statuses added after v1.0 (`recalled`) as `unknownFutureValue`.
const PREFER_UNKNOWN_ENUM_MEMBERS: &str = "include-unknown-enum-members";

/// Allows `limit` requests in any five minutes: each request's slot frees five minutes after
/// it was taken. This is the API's own rule ("100 requests within a 5-minute running window"),
/// so a full bucket may be spent at once and the pace never provokes a 429.
struct Pacer {
    limit: usize,
    taken: VecDeque<Instant>,
}

impl Pacer {
    async fn acquire(&mut self, stats: &mut Stats) {
        if self.taken.len() >= self.limit {
            let oldest = self.taken.pop_front().expect("limit is above 0");
            let free_at = oldest + FIVE_MINUTES;
            let now = Instant::now();
            if free_at > now {
                stats.paced += free_at - now;
                tokio::time::sleep_until(free_at).await;
            }
        }
        self.taken.push_back(Instant::now());
    }

    /// How long until the oldest request of the last five minutes leaves the window: after a
    /// 429 without `Retry-After`, the earliest the tenant's count can have gone down.
    fn window_frees_in(&self) -> Duration {
        let now = Instant::now();
        self.taken.iter().map(|t| *t + FIVE_MINUTES).find(|free_at| *free_at > now).map_or(Duration::ZERO, |f| f - now)
    }
}

/// Which kind of request, for its headers and its error advice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    List,
    Detail,
}

/// Why a request failed for good.
#[derive(Debug)]
pub enum ApiError {
    /// `missing_app`: Graph said the tenant lacks the service principal of [`TRACE_APP_ID`].
    Unauthorized {
        url: String,
        detail: String,
        missing_app: bool,
    },
    Forbidden {
        url: String,
        detail: String,
    },
    Refused {
        url: String,
        status: StatusCode,
        detail: String,
        call: Call,
    },
    GaveUp {
        url: String,
        attempts: u32,
        why: String,
    },
    Malformed {
        url: String,
        why: String,
    },
    Token(String),
    ForeignLink {
        url: String,
    },
}

impl ApiError {
    /// Whether every later request would fail the same way, so the collector should stop.
    pub fn is_fatal(&self) -> bool {
        matches!(self, ApiError::Unauthorized { .. } | ApiError::Forbidden { .. } | ApiError::Token(_))
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::Unauthorized { url, detail, missing_app: true } => write!(
                f,
                "{url}: 401 Unauthorized ({detail}). The message trace API needs a service principal for \
                 Microsoft's app {TRACE_APP_ID} in the tenant: a tenant admin creates it once, in PowerShell, with \
                 `Connect-MgGraph -Scopes \"Application.ReadWrite.All\"` then `New-MgServicePrincipal -AppId \
                 {TRACE_APP_ID}`. Once created it can take several hours to take effect: run again later"
            ),
            ApiError::Unauthorized { url, detail, missing_app: false } => write!(
                f,
                "{url}: 401 Unauthorized ({detail}). Check that `tenant_id` is the tenant whose mail this is, that \
                 `client_id` is the app registration holding the Microsoft Graph application permission \
                 ExchangeMessageTrace.Read.All, and that admin consent was granted for it"
            ),
            ApiError::Forbidden { url, detail } => write!(
                f,
                "{url}: 403 Forbidden ({detail}). The app needs the Microsoft Graph application permission \
                 ExchangeMessageTrace.Read.All with admin consent: in Entra ID, App registrations, the app, API \
                 permissions, add it under Application permissions, then Grant admin consent"
            ),
            ApiError::Refused { url, status, detail, call } => {
                write!(f, "{url}: {status} ({detail})")?;
                // Only the list takes a time window; a detail call's 400 is about something else.
                if *status == StatusCode::BAD_REQUEST && *call == Call::List {
                    f.write_str("; a query may span at most 10 days and start at most 90 days back")?;
                }
                Ok(())
            }
            ApiError::GaveUp { url, attempts, why } => write!(f, "{url}: gave up after {attempts} attempts: {why}"),
            ApiError::Malformed { url, why } => {
                write!(f, "{url}: {why}; the rows of this window read before this page are counted")
            }
            ApiError::Token(why) => f.write_str(why),
            ApiError::ForeignLink { url } => write!(
                f,
                "the API's next page link {url} leads away from `graph_url`; it was not followed, so the token \
                 stays with Graph"
            ),
        }
    }
}

/// A page of a collection: the rows stay raw, so one bad row is skipped, not the page.
#[derive(Deserialize)]
struct Page<'a> {
    #[serde(borrow)]
    value: Vec<&'a RawValue>,
    #[serde(rename = "@odata.nextLink")]
    next_link: Option<String>,
}

/// Graph's error body: `{"error":{"code":"…","message":"…","innerError":{"request-id":"…",
/// "client-request-id":"…","date":"…"}}}`. Microsoft support asks for the ids and the date.
#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    #[serde(default, deserialize_with = "text")]
    code: String,
    #[serde(default, deserialize_with = "text")]
    message: String,
    #[serde(default, rename = "innerError", alias = "innererror")]
    inner_error: Option<InnerError>,
}

#[derive(Default, Deserialize)]
struct InnerError {
    #[serde(default, rename = "request-id", deserialize_with = "text")]
    request_id: String,
    #[serde(default, rename = "client-request-id", deserialize_with = "text")]
    client_request_id: String,
    #[serde(default, deserialize_with = "text")]
    date: String,
}

/// A string, or nothing for null or another type: an error body is read for what it can tell.
fn text<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Ok(match serde_json::Value::deserialize(deserializer)? {
        serde_json::Value::String(s) => s,
        _ => String::new(),
    })
}

/// Trace events of one recipient, and those that could not be read: (page URL, index, why).
#[derive(Debug, Default)]
pub struct Details {
    pub events: Vec<DetailEvent>,
    pub skipped: Vec<(String, usize, String)>,
}

pub struct GraphClient {
    http: reqwest::Client,
    /// `{graph_url}/{api_version}/admin/exchange/tracing/messageTraces`.
    traces: Url,
    tokens: TokenSource,
    limits: Limits,
    pacer: Pacer,
    stats: Stats,
    progress: Arc<Progress>,
}

impl GraphClient {
    pub fn new(
        graph_url: &str,
        api_version: &str,
        tokens: TokenSource,
        limits: Limits,
        progress: Arc<Progress>,
    ) -> Result<GraphClient, String> {
        // reqwest is built without a default crypto provider; mailflow uses ring everywhere.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .user_agent(concat!("mailflow/", env!("CARGO_PKG_VERSION")))
            .timeout(limits.timeout)
            // A redirect would resend the token request's form, secret included, elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot set up the HTTP client: {}", error_chain(&e)))?;
        let base = format!("{}/{}/admin/exchange/tracing/messageTraces", graph_url.trim_end_matches('/'), api_version);
        let traces = Url::parse(&base).map_err(|e| format!("`graph_url`: {e}"))?;
        let pacer = Pacer { limit: limits.requests_per_5min, taken: VecDeque::new() };
        Ok(GraphClient { http, traces, tokens, limits, pacer, stats: Stats::default(), progress })
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Announces calls to come, for the progress bar.
    pub fn plan_calls(&self, calls: u64) {
        self.progress.add_calls(calls);
    }

    /// Lists `[start, end)`, page by page; `on_page` gets each page's rows, its URL and the rows
    /// that did not parse (index, why).
    pub async fn list(
        &mut self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        top: u32,
        mut on_page: impl FnMut(Vec<ListRow>, &str, Vec<(usize, String)>),
    ) -> Result<(), ApiError> {
        // Both bounds are inclusive and in whole seconds, as the API documents them; a row at
        // `end` itself belongs to the next window, which starts there.
        let filter = format!(
            "receivedDateTime ge {} and receivedDateTime le {}",
            start.format("%Y-%m-%dT%H:%M:%SZ"),
            end.format("%Y-%m-%dT%H:%M:%SZ")
        );
        // Written as Microsoft's examples write it: `$` plain, spaces as %20 (not form encoding's `+`).
        let mut url = self.traces.clone();
        url.set_query(Some(&format!("$filter={}&$top={top}", filter.replace(' ', "%20"))));
        let max_pages = (MAX_ROWS / top.max(1) as usize).max(1);
        self.walk(url, Call::List, max_pages, |rows: Vec<ListRow>, page, skipped| {
            let inside = rows.into_iter().filter(|r| r.received_date_time >= start && r.received_date_time < end);
            on_page(inside.collect(), page, skipped)
        })
        .await
    }

    /// Every trace event of one recipient of one message, and those that could not be read.
    pub async fn details(&mut self, id: &str, recipient: &str) -> Result<Details, ApiError> {
        let mut url = self.traces.clone();
        url.path_segments_mut()
            .map_err(|_| ApiError::Malformed { url: self.traces.to_string(), why: "not a base URL".into() })?
            .push(id)
            .push(&format!("getDetailsByRecipient(recipientAddress='{}')", recipient.replace('\'', "''")));
        let mut details = Details::default();
        self.walk(url, Call::Detail, MAX_ROWS / 1000, |rows, page, skipped| {
            details.events.extend(rows);
            details.skipped.extend(skipped.into_iter().map(|(index, why)| (page.to_string(), index, why)));
        })
        .await?;
        Ok(details)
    }

    /// GETs `url` and every `@odata.nextLink` after it, exactly as given.
    async fn walk<T: serde::de::DeserializeOwned>(
        &mut self,
        mut url: Url,
        call: Call,
        max_pages: usize,
        mut on_page: impl FnMut(Vec<T>, &str, Vec<(usize, String)>),
    ) -> Result<(), ApiError> {
        let mut visited = std::collections::HashSet::new();
        loop {
            if !visited.insert(url.to_string()) || visited.len() > max_pages {
                return Err(ApiError::Malformed {
                    url: url.to_string(),
                    why: format!("the API keeps giving next pages (a link repeated, or over {max_pages} pages)"),
                });
            }
            let body = self.get(&url, call).await?;
            let page: Page = serde_json::from_slice(&body).map_err(|e| ApiError::Malformed {
                url: url.to_string(),
                why: format!("expected a JSON page with a `value` list ({} bytes read): {e}", body.len()),
            })?;
            let mut rows = Vec::with_capacity(page.value.len());
            let mut skipped = Vec::new();
            for (index, raw) in page.value.iter().enumerate() {
                match serde_json::from_str::<T>(raw.get()) {
                    Ok(row) => rows.push(row),
                    Err(e) => skipped.push((index, e.to_string())),
                }
            }
            on_page(rows, url.as_str(), skipped);
            let Some(next) = page.next_link else { return Ok(()) };
            let next = Url::parse(&next).map_err(|e| ApiError::Malformed {
                url: url.to_string(),
                why: format!("its next page link is not a URL: {e}"),
            })?;
            if next.origin() != self.traces.origin() {
                return Err(ApiError::ForeignLink { url: next.to_string() });
            }
            self.progress.add_calls(1);
            url = next;
        }
    }

    /// One paced, authorized GET with retries; the body of a 2xx answer.
    async fn get(&mut self, url: &Url, call: Call) -> Result<Vec<u8>, ApiError> {
        let mut attempts = 0u32;
        let mut token_renewed = false;
        loop {
            // The token first: its retries may take minutes, and the slot is for the request.
            let token = self.token().await?;
            self.pacer.acquire(&mut self.stats).await;
            // A short-lived token may have run out while the pacer waited.
            let token = if self.tokens.cached().is_some() { token } else { self.token().await? };
            self.stats.calls += 1;
            attempts += 1;
            let mut request = self.http.get(url.clone()).bearer_auth(token.expose()).header(ACCEPT, "application/json");
            if call == Call::List {
                request = request.header("Prefer", HeaderValue::from_static(PREFER_UNKNOWN_ENUM_MEMBERS));
            }
            let (why, retry_after, throttled) = match request.send().await {
                Err(e) => (error_chain(&e), None, false),
                Ok(response) => {
                    let status = response.status();
                    let retry_after = retry_after(response.headers().get(RETRY_AFTER));
                    let body = response.bytes().await;
                    match (status, body) {
                        (s, Ok(body)) if s.is_success() => {
                            self.progress.advance_calls(1);
                            return Ok(body.to_vec());
                        }
                        (s, Err(e)) if s.is_success() => {
                            (format!("the answer broke off: {}", error_chain(&e)), None, false)
                        }
                        (s, body) => {
                            let body = body.as_deref().unwrap_or_default();
                            let detail = graph_error(status, body);
                            let url = url.to_string();
                            let missing_app = s == StatusCode::UNAUTHORIZED && names_missing_trace_app(body);
                            match s {
                                StatusCode::UNAUTHORIZED if !token_renewed && !missing_app => {
                                    // A token revoked or expired early: one more try with a new one.
                                    token_renewed = true;
                                    self.tokens.forget();
                                    continue;
                                }
                                StatusCode::UNAUTHORIZED => {
                                    return Err(ApiError::Unauthorized { url, detail, missing_app });
                                }
                                StatusCode::FORBIDDEN => return Err(ApiError::Forbidden { url, detail }),
                                StatusCode::TOO_MANY_REQUESTS => (format!("{s} ({detail})"), retry_after, true),
                                s if s.is_server_error() || s == StatusCode::REQUEST_TIMEOUT => {
                                    (format!("{s} ({detail})"), retry_after, false)
                                }
                                s => return Err(ApiError::Refused { url, status: s, detail, call }),
                            }
                        }
                    }
                }
            };
            if attempts > self.limits.max_retries {
                self.progress.advance_calls(1);
                return Err(ApiError::GaveUp { url: url.to_string(), attempts, why });
            }
            // A 429 without `Retry-After`: the tenant's count falls only as requests leave its
            // 5-minute window, so an earlier retry would be refused too and waste an attempt.
            let delay = retry_after.unwrap_or_else(|| {
                let backoff = backoff(attempts);
                if throttled { backoff.max(self.pacer.window_frees_in()) } else { backoff }
            });
            tracing::debug!(%url, %why, delay_ms = delay.as_millis() as u64, "retrying");
            self.stats.retries += 1;
            self.stats.backed_off += delay;
            tokio::time::sleep(delay).await;
        }
    }

    /// A valid token: the cached one, or a new one (retried like API calls when the identity
    /// platform is unreachable or busy).
    async fn token(&mut self) -> Result<Secret, ApiError> {
        if let Some(token) = self.tokens.cached() {
            return Ok(token.clone());
        }
        let mut attempts = 0;
        loop {
            attempts += 1;
            self.stats.token_requests += 1;
            match self.tokens.fetch(&self.http).await {
                Ok(token) => return Ok(token),
                Err(TokenError::Refused(why)) => return Err(ApiError::Token(why)),
                Err(TokenError::Transient(why)) if attempts > self.limits.max_retries => {
                    return Err(ApiError::Token(format!("no access token after {attempts} attempts: {why}")));
                }
                Err(TokenError::Transient(why)) => {
                    let delay = backoff(attempts);
                    tracing::debug!(%why, delay_ms = delay.as_millis() as u64, "retrying the token request");
                    self.stats.backed_off += delay;
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }
}

/// 1 s, 2 s, 4 s … up to 60 s, each with full jitter in its upper half, so many clients that
/// failed together do not retry together.
fn backoff(attempt: u32) -> Duration {
    let ceiling = Duration::from_secs(1 << attempt.saturating_sub(1).min(6)).min(Duration::from_secs(60));
    ceiling.mul_f64(0.5 + fastrand::f64() / 2.0)
}

/// `Retry-After` as seconds or an HTTP date, capped at [`MAX_RETRY_AFTER`].
fn retry_after(value: Option<&reqwest::header::HeaderValue>) -> Option<Duration> {
    let text = value?.to_str().ok()?.trim();
    let wait = match text.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => {
            let at = DateTime::parse_from_rfc2822(text).ok()?.with_timezone(&Utc);
            (at - Utc::now()).to_std().unwrap_or(Duration::ZERO)
        }
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// Graph's code and message from an error body, escaped and cut short, then its request ids and
/// date when given; else the status reason.
fn graph_error(status: StatusCode, body: &[u8]) -> String {
    let Ok(ErrorBody { error }) = serde_json::from_slice::<ErrorBody>(body) else {
        return status.canonical_reason().unwrap_or("no reason given").to_string();
    };
    let mut text = if error.code.is_empty() && error.message.is_empty() {
        status.canonical_reason().unwrap_or("no reason given").to_string()
    } else {
        fit(&printable(&format!("{}: {}", error.code, error.message)), 300)
    };
    let inner = error.inner_error.unwrap_or_default();
    for (name, value) in
        [("request-id", &inner.request_id), ("client-request-id", &inner.client_request_id), ("date", &inner.date)]
    {
        if !value.trim().is_empty() {
            text.push_str(&format!("; {name} {}", fit(&printable(value.trim()), 80)));
        }
    }
    text
}

/// Whether a 401's body says the tenant lacks the service principal of [`TRACE_APP_ID`]; Graph's
/// wording varies, so either the app id or "service principal" will do.
fn names_missing_trace_app(body: &[u8]) -> bool {
    let body = String::from_utf8_lossy(body).to_ascii_lowercase();
    body.contains(TRACE_APP_ID) || body.contains("service principal")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_a_minute_with_jitter() {
        for attempt in 1..20 {
            let d = backoff(attempt);
            let ceiling = Duration::from_secs(1 << (attempt - 1).min(6)).min(Duration::from_secs(60));
            assert!(d >= ceiling / 2 && d <= ceiling, "{attempt}: {d:?}");
        }
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let header = |s: &str| reqwest::header::HeaderValue::from_str(s).unwrap();
        assert_eq!(retry_after(Some(&header("30"))), Some(Duration::from_secs(30)));
        assert_eq!(retry_after(Some(&header("86400"))), Some(MAX_RETRY_AFTER));
        assert_eq!(retry_after(Some(&header("Wed, 21 Oct 2015 07:28:00 GMT"))), Some(Duration::ZERO));
        assert_eq!(retry_after(Some(&header("soon"))), None);
        assert_eq!(retry_after(None), None);
    }

    #[test]
    fn graph_errors_are_escaped_and_short() {
        let body = br#"{"error":{"code":"Forbidden","message":"Missing role\u001b[31m"}}"#;
        assert_eq!(graph_error(StatusCode::FORBIDDEN, body), "Forbidden: Missing role\\u{1b}[31m");
        assert_eq!(graph_error(StatusCode::FORBIDDEN, b"<html>"), "Forbidden");
    }

    #[test]
    fn graph_errors_carry_the_ids_support_asks_for() {
        let body = br#"{"error":{"code":"BadRequest","message":"Invalid filter","innerError":{"date":"2026-01-05T10:00:00","request-id":"0f1e2d3c-aaaa-bbbb-cccc-000000000001","client-request-id":"0f1e2d3c-aaaa-bbbb-cccc-000000000002","extra":1}}}"#;
        assert_eq!(
            graph_error(StatusCode::BAD_REQUEST, body),
            "BadRequest: Invalid filter; request-id 0f1e2d3c-aaaa-bbbb-cccc-000000000001; client-request-id \
             0f1e2d3c-aaaa-bbbb-cccc-000000000002; date 2026-01-05T10:00:00"
        );
        let lower = br#"{"error":{"code":"X","message":"y","innererror":{"request-id":"r1","date":null}}}"#;
        assert_eq!(graph_error(StatusCode::BAD_REQUEST, lower), "X: y; request-id r1");
        let odd = br#"{"error":{"code":7,"message":null,"innerError":"none"}}"#;
        assert_eq!(graph_error(StatusCode::BAD_REQUEST, odd), "Bad Request");
    }

    #[test]
    fn only_a_list_request_hears_about_the_window_rules() {
        let refused = |call| {
            ApiError::Refused { url: "u".into(), status: StatusCode::BAD_REQUEST, detail: "d".into(), call }.to_string()
        };
        assert!(refused(Call::List).contains("at most 10 days"));
        assert!(!refused(Call::Detail).contains("10 days"));
    }

    #[tokio::test(start_paused = true)]
    async fn the_window_frees_when_its_oldest_request_leaves() {
        let mut pacer = Pacer { limit: 100, taken: VecDeque::new() };
        let mut stats = Stats::default();
        assert_eq!(pacer.window_frees_in(), Duration::ZERO);
        pacer.acquire(&mut stats).await;
        tokio::time::sleep(Duration::from_secs(100)).await;
        pacer.acquire(&mut stats).await;
        assert_eq!(pacer.window_frees_in(), Duration::from_secs(200));
        tokio::time::sleep(Duration::from_secs(250)).await;
        assert_eq!(pacer.window_frees_in(), Duration::from_secs(50), "the first one has left");
        tokio::time::sleep(Duration::from_secs(50)).await;
        assert_eq!(pacer.window_frees_in(), Duration::ZERO);
    }
}
