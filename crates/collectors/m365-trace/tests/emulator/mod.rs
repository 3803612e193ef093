//! A local emulator of the parts of Microsoft Graph and the identity platform the collector
//! uses, on 127.0.0.1:0: token issue (secret or signed client assertion), the message trace
//! list with its `$filter` rules (both bounds, 10 days, 90 days back) and `@odata.nextLink`
//! paging, per-recipient details, the tenant's 100-requests-per-5-minutes limit, and scripted
//! faults (429 with `Retry-After`, 5xx bursts, 401, 403, truncated pages). Like Graph, the list
//! writes the `recalled` status as `unknownFutureValue` unless the request sends
//! `Prefer: include-unknown-enum-members`.
//!
//! Time is tokio's, so tests on a paused clock see pacing and `Retry-After` without waiting.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Form, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeDelta, Utc};
use mailflow_core::{Direction, TlsVersion};
use serde_json::{Value, json};
use tokio::time::{Duration, Instant};

pub const TENANT: &str = "11111111-2222-3333-4444-555555555555";
pub const CLIENT_ID: &str = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";
pub const SECRET: &str = "s3cr3t~value";

/// Which requests a fault hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    List,
    Detail,
    Any,
}

/// A scripted answer given instead of the real one, `times` times.
#[derive(Debug, Clone)]
pub struct Fault {
    pub route: Route,
    pub status: u16,
    pub retry_after: Option<u64>,
    pub body: String,
    pub times: u32,
}

impl Fault {
    pub fn new(route: Route, status: u16, times: u32) -> Fault {
        let body = json!({"error": {"code": "Fault", "message": format!("scripted {status}")}}).to_string();
        Fault { route, status, retry_after: None, body, times }
    }

    pub fn retry_after(mut self, secs: u64) -> Fault {
        self.retry_after = Some(secs);
        self
    }

    pub fn body(mut self, body: Value) -> Fault {
        self.body = body.to_string();
        self
    }
}

/// What client assertions must verify with: the public key (PKCS#1 DER), and the thumbprints
/// the emulator knows the certificate by; the header must carry one of them.
#[derive(Debug, Clone)]
pub struct AssertionKey {
    pub public_key: Vec<u8>,
    pub x5t: Option<String>,
    pub x5t_s256: Option<String>,
}

/// One request the emulator saw.
#[derive(Debug, Clone)]
pub struct Request {
    pub at: Instant,
    pub route: Route,
    pub path_and_query: String,
    pub status: u16,
    /// The request's `Prefer` header.
    pub prefer: Option<String>,
}

#[derive(Default)]
pub struct Inner {
    /// List rows, as the API returns them.
    pub rows: Vec<Value>,
    /// Details per (trace id, lowercased recipient).
    pub details: HashMap<(String, String), Vec<Value>>,
    pub faults: VecDeque<Fault>,
    /// List pages (1-based, over the whole run) to cut off in the middle.
    pub truncate_list_pages: Vec<usize>,
    pub list_pages_served: usize,
    /// A next-page link to give instead of the real one, once.
    pub next_link_override: Option<String>,
    /// Whether every list page names itself as the next page, as a broken server might.
    pub repeat_next_link: bool,
    pub requests: Vec<Request>,
    pub tokens: HashMap<String, Instant>,
    pub token_requests: u32,
    pub token_lifetime_secs: u64,
    /// Whether `expires_in` and `ext_expires_in` are strings ("3599"), as v1-style endpoints write them.
    pub token_expiry_as_string: bool,
    pub assertion_key: Option<AssertionKey>,
    /// The `jti` of every client assertion accepted: one seen again is a replay.
    pub seen_jtis: HashSet<String>,
    /// Error the token endpoint gives for every request, as (status, body).
    pub token_refusal: Option<(u16, Value)>,
    /// What the emulator takes as now, for the 90-day rule.
    pub now: DateTime<Utc>,
    pub limit: usize,
    pub throttled: u32,
    /// The `Retry-After` of a 429 for going over `limit`; `None` sends none.
    pub throttle_retry_after: Option<u64>,
}

#[derive(Clone)]
pub struct Emulator {
    pub inner: Arc<Mutex<Inner>>,
    pub base: String,
}

impl Emulator {
    /// Starts the emulator on 127.0.0.1:0 within the current runtime.
    pub async fn start(now: DateTime<Utc>) -> Emulator {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let inner = Arc::new(Mutex::new(Inner {
            now,
            limit: 100,
            token_lifetime_secs: 3599,
            throttle_retry_after: Some(60),
            ..Inner::default()
        }));
        let emulator = Emulator { inner, base };
        let app = Router::new()
            .route("/{tenant}/oauth2/v2.0/token", post(token))
            .route("/v1.0/admin/exchange/tracing/messageTraces", get(list))
            .route("/v1.0/admin/exchange/tracing/messageTraces/{id}/{call}", get(details))
            .with_state(emulator.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        emulator
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        f(&mut self.inner.lock().unwrap())
    }

    pub fn requests(&self) -> Vec<Request> {
        self.with(|i| i.requests.clone())
    }

    /// The most requests seen in any five minutes.
    pub fn busiest_five_minutes(&self) -> usize {
        let times: Vec<Instant> = self.requests().iter().map(|r| r.at).collect();
        (0..times.len())
            .map(|i| times[i..].iter().take_while(|t| **t < times[i] + Duration::from_secs(300)).count())
            .max()
            .unwrap_or(0)
    }
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, [("content-type", "application/json")], json!({"error": {"code": code, "message": message}}).to_string())
        .into_response()
}

async fn token(
    State(emulator): State<Emulator>,
    Path(tenant): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let mut inner = emulator.inner.lock().unwrap();
    inner.token_requests += 1;
    let refuse = |description: &str| {
        (StatusCode::UNAUTHORIZED, axum::Json(json!({"error": "invalid_client", "error_description": description})))
            .into_response()
    };
    if let Some((status, body)) = &inner.token_refusal {
        return (StatusCode::from_u16(*status).unwrap(), axum::Json(body.clone())).into_response();
    }
    if tenant != TENANT {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "invalid_request", "error_description": "AADSTS90002: Tenant not found."})),
        )
            .into_response();
    }
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    if field("grant_type") != "client_credentials"
        || field("client_id") != CLIENT_ID
        || field("scope") != format!("{}/.default", emulator.base)
    {
        return refuse(&format!("AADSTS900144: bad request {form:?}"));
    }
    let audience = format!("{}/{TENANT}/oauth2/v2.0/token", emulator.base);
    let proved = match (inner.assertion_key.clone(), form.get("client_secret"), form.get("client_assertion")) {
        (None, Some(secret), None) => secret == SECRET,
        (Some(key), None, Some(assertion)) => {
            field("client_assertion_type") == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
                && verify_assertion(assertion, &key, &audience, &mut inner.seen_jtis)
        }
        _ => false,
    };
    if !proved {
        // As careless servers do, the refusal quotes what it was sent.
        let sent = form.get("client_secret").map(String::as_str).unwrap_or("");
        return refuse(&format!("AADSTS7000215: Invalid client secret provided: '{sent}'."));
    }
    let token = format!("token-{}", inner.token_requests);
    let expires = Instant::now() + Duration::from_secs(inner.token_lifetime_secs);
    inner.tokens.insert(token.clone(), expires);
    let lifetime = if inner.token_expiry_as_string {
        json!(inner.token_lifetime_secs.to_string())
    } else {
        json!(inner.token_lifetime_secs)
    };
    axum::Json(
        json!({"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime, "access_token": token}),
    )
    .into_response()
}

/// Checks an RS256 client assertion as the identity platform does: header (either thumbprint),
/// claims (`nbf` ≤ now ≤ `exp`, audience, issuer and subject, a `jti` not seen before), signature.
fn verify_assertion(assertion: &str, key: &AssertionKey, audience: &str, seen_jtis: &mut HashSet<String>) -> bool {
    let parts: Vec<&str> = assertion.split('.').collect();
    let [header, claims, signature] = parts[..] else { return false };
    let decode = |s: &str| URL_SAFE_NO_PAD.decode(s).ok().and_then(|b| serde_json::from_slice::<Value>(&b).ok());
    let (Some(header), Some(claims)) = (decode(header), decode(claims)) else { return false };
    let now = Utc::now().timestamp();
    let Ok(signature) = URL_SAFE_NO_PAD.decode(signature) else { return false };
    let known = |name: &str, thumbprint: &Option<String>| {
        thumbprint.as_deref().is_some_and(|t| header[name].as_str() == Some(t))
    };
    let signed = ring::signature::UnparsedPublicKey::new(&ring::signature::RSA_PKCS1_2048_8192_SHA256, &key.public_key)
        .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature)
        .is_ok();
    let valid = header["alg"] == "RS256"
        && (known("x5t", &key.x5t) || known("x5t#S256", &key.x5t_s256))
        && claims["aud"] == audience
        && claims["iss"] == CLIENT_ID
        && claims["sub"] == CLIENT_ID
        && claims["nbf"].as_i64().is_some_and(|nbf| nbf <= now)
        && claims["exp"].as_i64().is_some_and(|exp| now <= exp && exp <= now + 3600)
        && signed;
    valid && claims["jti"].as_str().is_some_and(|j| !j.is_empty() && seen_jtis.insert(j.to_string()))
}

/// Authorization, the tenant's limit and scripted faults, shared by both Graph routes.
/// The refusal, if the request does not pass.
fn gate(inner: &mut Inner, headers: &HeaderMap, route: Route, path_and_query: String) -> Option<Response> {
    let now = Instant::now();
    let recent = inner.requests.iter().filter(|r| r.at + Duration::from_secs(300) > now).count();
    let prefer = headers.get("prefer").and_then(|v| v.to_str().ok()).map(str::to_string);
    let record = |inner: &mut Inner, status: u16| {
        let path_and_query = path_and_query.clone();
        inner.requests.push(Request { at: now, route, path_and_query, status, prefer: prefer.clone() })
    };
    if recent >= inner.limit {
        inner.throttled += 1;
        record(inner, 429);
        let mut response = error(StatusCode::TOO_MANY_REQUESTS, "TooManyRequests", "Too many requests");
        if let Some(secs) = inner.throttle_retry_after {
            response.headers_mut().insert("retry-after", secs.to_string().parse().unwrap());
        }
        return Some(response);
    }
    let authorized = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|t| inner.tokens.get(t))
        .is_some_and(|expires| *expires > now);
    if !authorized {
        record(inner, 401);
        return Some(error(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "Access token is missing or expired.",
        ));
    }
    if let Some(fault) = inner.faults.front_mut().filter(|f| f.route == route || f.route == Route::Any) {
        let (status, retry_after, body) = (fault.status, fault.retry_after, fault.body.clone());
        fault.times -= 1;
        if fault.times == 0 {
            inner.faults.pop_front();
        }
        record(inner, status);
        let mut response = (StatusCode::from_u16(status).unwrap(), body).into_response();
        if let Some(secs) = retry_after {
            response.headers_mut().insert("retry-after", secs.to_string().parse().unwrap());
        }
        return Some(response);
    }
    record(inner, 200);
    None
}

async fn list(State(emulator): State<Emulator>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    let query = query.unwrap_or_default();
    let path_and_query = format!("/v1.0/admin/exchange/tracing/messageTraces?{query}");
    let mut inner = emulator.inner.lock().unwrap();
    if let Some(response) = gate(&mut inner, &headers, Route::List, path_and_query.clone()) {
        return response;
    }
    let params: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    let filter = params.get("$filter").map(String::as_str).unwrap_or("");
    let bound = |op: &str| {
        let prefix = format!("receivedDateTime {op} ");
        filter
            .split(" and ")
            .find_map(|c| c.trim().strip_prefix(prefix.as_str()))
            .and_then(|t| t.parse::<DateTime<Utc>>().ok())
    };
    let (Some(start), Some(end)) = (bound("ge"), bound("le")) else {
        return error(StatusCode::BAD_REQUEST, "BadRequest", "Both start and end receivedDateTime are required.");
    };
    if end - start > TimeDelta::days(10) {
        return error(StatusCode::BAD_REQUEST, "BadRequest", "The date range may not exceed 10 days.");
    }
    if start < inner.now - TimeDelta::days(90) {
        return error(StatusCode::BAD_REQUEST, "BadRequest", "Start date may not be older than 90 days.");
    }
    let top: usize = params.get("$top").and_then(|t| t.parse().ok()).unwrap_or(1000);
    if !(1..=5000).contains(&top) {
        return error(StatusCode::BAD_REQUEST, "BadRequest", "$top must be between 1 and 5000.");
    }
    let skip: usize = params.get("$skiptoken").and_then(|t| t.parse().ok()).unwrap_or(0);
    let mut matching: Vec<&Value> = inner
        .rows
        .iter()
        .filter(|r| {
            let t: DateTime<Utc> = r["receivedDateTime"].as_str().unwrap().parse().unwrap();
            t >= start && t <= end
        })
        .collect();
    matching.sort_by_key(|r| r["receivedDateTime"].as_str().unwrap().to_string());
    let unknown_members = headers
        .get("prefer")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|p| p.trim().eq_ignore_ascii_case("include-unknown-enum-members")));
    let page: Vec<Value> = matching
        .iter()
        .skip(skip)
        .take(top)
        .map(|v| {
            let mut row = (*v).clone();
            // Members added to the enum after v1.0 are hidden from clients that do not ask for them.
            if !unknown_members && row["status"].as_str().is_some_and(|s| s.eq_ignore_ascii_case("recalled")) {
                row["status"] = json!("unknownFutureValue");
            }
            row
        })
        .collect();
    let mut body = json!({
        "@odata.context": format!("{}/v1.0/$metadata#admin/exchange/tracing/messageTraces", emulator.base),
        "value": page,
    });
    if skip + top < matching.len() {
        let mut next =
            url::Url::parse(&format!("{}/v1.0/admin/exchange/tracing/messageTraces", emulator.base)).unwrap();
        next.query_pairs_mut()
            .append_pair("$filter", filter)
            .append_pair("$top", &top.to_string())
            .append_pair("$skiptoken", &(skip + top).to_string());
        body["@odata.nextLink"] = json!(inner.next_link_override.take().unwrap_or_else(|| next.to_string()));
    }
    if inner.repeat_next_link {
        body["@odata.nextLink"] = json!(format!("{}{path_and_query}", emulator.base));
    }
    inner.list_pages_served += 1;
    let mut text = body.to_string();
    if inner.truncate_list_pages.contains(&inner.list_pages_served) {
        text.truncate(text.len() / 2);
    }
    ([("content-type", "application/json")], text).into_response()
}

async fn details(
    State(emulator): State<Emulator>,
    headers: HeaderMap,
    Path((id, call)): Path<(String, String)>,
) -> Response {
    let mut inner = emulator.inner.lock().unwrap();
    let path = format!("/v1.0/admin/exchange/tracing/messageTraces/{id}/{call}");
    if let Some(response) = gate(&mut inner, &headers, Route::Detail, path) {
        return response;
    }
    let recipient = call
        .strip_prefix("getDetailsByRecipient(recipientAddress='")
        .and_then(|r| r.strip_suffix("')"))
        .map(|r| r.replace("''", "'"));
    let Some(recipient) = recipient else {
        return error(StatusCode::BAD_REQUEST, "BadRequest", "Unknown function.");
    };
    match inner.details.get(&(id, recipient.to_ascii_lowercase())) {
        Some(events) => axum::Json(json!({ "value": events })).into_response(),
        None => error(StatusCode::NOT_FOUND, "NotFound", "No trace for this recipient."),
    }
}

/// What one generated message must turn into: (direction, connector, TLS) per counted part.
pub type Truth = BTreeMap<(Direction, Option<String>, Option<TlsVersion>), u64>;

fn mep(entries: &[(&str, &str)]) -> String {
    let mut xml = String::from("<root>");
    for (name, value) in entries {
        let value = value.replace('&', "&amp;").replace('"', "&quot;");
        xml.push_str(&format!(r#"<MEP Name="{name}" String="{value}" />"#));
    }
    xml + "</root>"
}

fn event(at: DateTime<Utc>, name: &str, description: &str, data: &[(&str, &str)]) -> Value {
    json!({"event": name, "action": "", "description": description,
           "dateTime": at.to_rfc3339(), "data": mep(data), "id": "00000000-0000-0000-0000-000000000000"})
}

/// Generates `n` messages over the `days` before `now` into the emulator; returns the truth.
pub fn populate(emulator: &Emulator, now: DateTime<Utc>, days: i64, n: usize) -> Truth {
    let mut truth = Truth::new();
    let mut rng = fastrand::Rng::with_seed(7);
    emulator.with(|inner| {
        for i in 0..n {
            let at = now - TimeDelta::seconds(rng.i64(60..days * 86_400));
            let id = format!("{:08x}-0000-4000-8000-{:012x}", i, i * 7919);
            let kind = i % 8;
            let (sender, recipients): (String, Vec<String>) = match kind {
                0..=2 => (format!("sender{i}@partner.example"), vec![format!("user{i}@corp.example")]),
                3 => (format!("news{i}@bulk.example"), vec![format!("a{i}@corp.example"), format!("b{i}@Corp.Example")]),
                4 | 5 => (format!("user{i}@corp.example"), vec![format!("x{i}@partner.example")]),
                6 => (format!("user{i}@corp.example"), vec![format!("y{i}@far.example"), format!("c{i}@corp.example")]),
                _ => (format!("user{i}@corp.example"), vec![format!("colleague{i}@corp.example")]),
            };
            let status = if kind == 5 && i % 16 == 5 { "Failed" } else { "Delivered" };
            for recipient in &recipients {
                inner.rows.push(json!({
                    "id": id, "senderAddress": sender, "recipientAddress": recipient,
                    "messageId": format!("<{i}@{}>", sender.split('@').nth(1).unwrap()),
                    "receivedDateTime": at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
                    "subject": "hello", "size": 1000 + i, "fromIP": "203.0.113.9", "toIP": "198.51.100.7",
                    "status": status,
                }));
            }
            let submit = event(at, "Receive", "Message received by: AM0PR01MB1234.eurprd01.prod.outlook.com",
                &[("ConnectorId", r"AM0PR01MB1234\Client Submission"), ("CustomData", "S:tlsversion=SP_PROT_TLS1_3_SERVER")]);
            let later = at + TimeDelta::seconds(2);
            let (events, key): (Vec<Value>, _) = match kind {
                0 => (vec![event(at, "Receive", "Message received by: X", &[
                        ("ConnectorId", "From Partner"),
                        ("CustomData", "S:InboundConnectorData=Name=From Partner;ConnectorType=Partner;S:tlsversion=SP_PROT_TLS1_2_SERVER;S:tlscipher=CALG_AES_256")])],
                      (Direction::Inbound, Some("From Partner"), Some(TlsVersion::Tls1_2))),
                1 => (vec![event(at, "Receive", "Message received by: X",
                        &[("ConnectorId", r"AM0PR01MB1234\Default AM0PR01MB1234"), ("CustomData", "S:ProxyHop1=EOP;S:tlsversion=TLS1_3")])],
                      (Direction::Inbound, None, Some(TlsVersion::Tls1_3))),
                2 => (vec![event(at, "Receive", "Message received by: X",
                        &[("ConnectorId", r"AM0PR01MB1234\Default AM0PR01MB1234")])],
                      (Direction::Inbound, None, None)),
                3 => (vec![event(at, "Receive", "Message received by: X",
                        &[("CustomData", "S:InboundConnectorData=Name=Bulk & Co;ConnectorType=Partner;S:tlsversion=SP_PROT_TLS1_0_SERVER")])],
                      (Direction::Inbound, Some("Bulk & Co"), Some(TlsVersion::Tls1_0))),
                4 => (vec![submit.clone(),
                        event(later, "Send external", "Message sent to mx.partner.example at 198.51.100.7 using TLS1.2 with AES256",
                        &[("ConnectorId", "To Partner"), ("CustomData",
                          "S:Microsoft.Exchange.Hygiene.TenantOutboundConnectorCustomData=Name=To Partner;ConnectorType=Partner;S:tlsversion=SP_PROT_TLS1_2_CLIENT")])],
                      (Direction::Outbound, Some("To Partner"), Some(TlsVersion::Tls1_2))),
                5 if status == "Failed" => (vec![submit.clone(),
                        event(later, "Fail", "Message failed to be delivered to x@partner.example using TLS1.1 with AES256: 550 5.7.1 refused", &[])],
                      (Direction::Outbound, None, Some(TlsVersion::Tls1_1))),
                5 => (vec![submit.clone(),
                        event(later, "Send external", "Message sent to mx at 198.51.100.7", &[("ConnectorId", "To_DefaultOpportunisticTLS"), ("CustomData", "S:tlsversion=TLS1_3")])],
                      (Direction::Outbound, None, Some(TlsVersion::Tls1_3))),
                6 => (vec![submit.clone(),
                        event(later, "Send external", "Message sent to mx.far.example at 198.51.100.8", &[("ConnectorId", "To_DefaultOpportunisticTLS")])],
                      (Direction::Outbound, None, None)),
                _ => (vec![submit.clone(), event(later, "Deliver", "The message was delivered to the mailbox", &[])], (Direction::Inbound, None, None)),
            };
            for recipient in &recipients {
                inner.details.insert((id.clone(), recipient.to_ascii_lowercase()), events.clone());
            }
            if kind != 7 {
                *truth.entry((key.0, key.1.map(str::to_string), key.2)).or_default() += 1;
            }
        }
        // The API repeats a row now and then; it must count once.
        let repeated = inner.rows[0].clone();
        inner.rows.push(repeated);
    });
    truth
}
