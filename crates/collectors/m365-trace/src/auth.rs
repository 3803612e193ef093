//! OAuth2 client credentials against the Microsoft identity platform.
//!
//! A secret is sent as `client_secret`; a certificate signs a short-lived JWT (RS256, with the
//! certificate's SHA-256 thumbprint as `x5t#S256` and its SHA-1 thumbprint as `x5t`, which older
//! endpoints still ask for) sent as `client_assertion`, so no secret crosses the wire. The token
//! is kept until five minutes before it expires, or half its life if that is shorter. Neither
//! secret nor token is ever formatted: [`Secret`] prints as `***`.

use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mailflow_config::Secret;
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use tokio::time::{Duration, Instant};

/// How the app proves who it is.
#[derive(Clone)]
pub enum Credential {
    Secret(Secret),
    Certificate { key: Arc<RsaKeyPair>, thumbprints: Thumbprints },
}

/// A certificate's thumbprints, base64url: SHA-1 (`x5t`) and SHA-256 (`x5t#S256`).
#[derive(Debug, Clone)]
pub struct Thumbprints {
    pub sha1: String,
    pub sha256: String,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Secret(_) => f.write_str("Secret(***)"),
            Credential::Certificate { thumbprints, .. } => write!(f, "Certificate(x5t {})", thumbprints.sha1),
        }
    }
}

impl Credential {
    /// Reads a PEM certificate and its RSA key (PKCS#8 or PKCS#1); errors name the file.
    pub fn certificate(certificate: &Path, key: &Path) -> Result<Credential, String> {
        let cert = CertificateDer::from_pem_file(certificate).map_err(|e| {
            format!("`certificate_file` {}: expected a PEM certificate (BEGIN CERTIFICATE): {e}", certificate.display())
        })?;
        let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| {
            format!("`private_key_file` {}: expected a PEM private key (BEGIN PRIVATE KEY): {e}", key.display())
        })?;
        let key_pair = match &key_der {
            PrivateKeyDer::Pkcs8(der) => RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()),
            PrivateKeyDer::Pkcs1(der) => RsaKeyPair::from_der(der.secret_pkcs1_der()),
            _ => {
                return Err(format!(
                    "`private_key_file` {}: Microsoft accepts only RSA keys for client certificates",
                    key.display()
                ));
            }
        }
        .map_err(|e| format!("`private_key_file` {}: not a usable RSA key: {e}", key.display()))?;
        let thumbprint = |algorithm| URL_SAFE_NO_PAD.encode(ring::digest::digest(algorithm, &cert));
        let thumbprints = Thumbprints {
            sha1: thumbprint(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY),
            sha256: thumbprint(&ring::digest::SHA256),
        };
        Ok(Credential::Certificate { key: Arc::new(key_pair), thumbprints })
    }

    /// The form fields that prove the app's identity to `token_url`.
    fn form_fields(&self, client_id: &str, token_url: &str) -> Result<Vec<(&'static str, String)>, String> {
        match self {
            Credential::Secret(secret) => Ok(vec![("client_secret", secret.expose().to_string())]),
            Credential::Certificate { key, thumbprints } => Ok(vec![
                ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_string()),
                ("client_assertion", client_assertion(key, thumbprints, client_id, token_url)?),
            ]),
        }
    }
}

/// A signed JWT valid for ten minutes, as the identity platform's certificate credentials expect.
fn client_assertion(
    key: &RsaKeyPair,
    thumbprints: &Thumbprints,
    client_id: &str,
    audience: &str,
) -> Result<String, String> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let header = serde_json::json!({
        "alg": "RS256",
        "typ": "JWT",
        "x5t": thumbprints.sha1,
        "x5t#S256": thumbprints.sha256,
    });
    let mut nonce = [0u8; 16];
    ring::rand::SecureRandom::fill(&SystemRandom::new(), &mut nonce).map_err(|_| "no random numbers".to_string())?;
    let claims = serde_json::json!({
        "aud": audience,
        "iss": client_id,
        "sub": client_id,
        "jti": nonce.iter().map(|b| format!("{b:02x}")).collect::<String>(),
        "nbf": now,
        "iat": now,
        "exp": now + 600,
    });
    let signing_input =
        format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
    let mut signature = vec![0; key.public().modulus_len()];
    key.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), signing_input.as_bytes(), &mut signature)
        .map_err(|_| "signing the client assertion failed".to_string())?;
    Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature)))
}

/// Issues and caches access tokens.
pub struct TokenSource {
    pub token_url: String,
    client_id: String,
    scope: String,
    credential: Credential,
    /// The token, and when to stop using it.
    cached: Option<(Secret, Instant)>,
}

/// The identity platform's answer, success or error.
#[derive(Deserialize)]
struct TokenResponse {
    access_token: Option<Secret>,
    /// Seconds: a number from the v2.0 endpoint, a string ("3599") from v1-style ones and some proxies.
    #[serde(default, deserialize_with = "seconds")]
    expires_in: Option<u64>,
    #[serde(default, deserialize_with = "seconds")]
    ext_expires_in: Option<u64>,
    error: Option<String>,
    error_description: Option<String>,
}

/// Seconds as a number or a string of digits; anything else (null, "soon") as absent.
fn seconds<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    Ok(match serde_json::Value::deserialize(deserializer)? {
        serde_json::Value::Number(n) => n.as_u64().or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })
}

/// How long a token of `lifetime` is used: until five minutes before it expires, but at least
/// half its life, so a short-lived token is not fetched again for every call.
fn use_for(lifetime: Duration) -> Duration {
    lifetime - Duration::from_secs(300).min(lifetime / 2)
}

/// What went wrong getting a token; the client retries only `Transient`.
pub enum TokenError {
    Transient(String),
    Refused(String),
}

impl TokenSource {
    pub fn new(login_url: &str, tenant_id: &str, client_id: &str, graph_url: &str, credential: Credential) -> Self {
        TokenSource {
            token_url: format!("{}/{}/oauth2/v2.0/token", login_url.trim_end_matches('/'), tenant_id.trim()),
            client_id: client_id.trim().to_string(),
            scope: format!("{}/.default", graph_url.trim_end_matches('/')),
            credential,
            cached: None,
        }
    }

    /// The cached token, while it is still to be used (see [`use_for`]).
    pub fn cached(&self) -> Option<&Secret> {
        self.cached.as_ref().filter(|(_, until)| Instant::now() < *until).map(|(t, _)| t)
    }

    /// Drops the cached token, after the API refused it.
    pub fn forget(&mut self) {
        self.cached = None;
    }

    /// Asks the identity platform for a token and caches it.
    pub async fn fetch(&mut self, http: &reqwest::Client) -> Result<Secret, TokenError> {
        let mut form = vec![
            ("grant_type", "client_credentials".to_string()),
            ("client_id", self.client_id.clone()),
            ("scope", self.scope.clone()),
        ];
        form.extend(self.credential.form_fields(&self.client_id, &self.token_url).map_err(TokenError::Refused)?);
        let url = &self.token_url;
        let response = http.post(url).form(&form).send().await.map_err(|e| {
            TokenError::Transient(format!("cannot reach {url}: {}", mailflow_component::net::error_chain(&e)))
        })?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| TokenError::Transient(format!("{url}: {e}")))?;
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(TokenError::Transient(format!("{url} answered {status}")));
        }
        let parsed: TokenResponse = serde_json::from_slice(&body).map_err(|_| {
            TokenError::Refused(format!(
                "{url} answered {status} with something other than a token response; check `login_url`"
            ))
        })?;
        match (parsed.access_token, parsed.error) {
            (Some(token), None) if status.is_success() => {
                let lifetime = Duration::from_secs(parsed.expires_in.unwrap_or(3600));
                self.cached = Some((token.clone(), Instant::now() + use_for(lifetime)));
                tracing::debug!(
                    expires_in_secs = lifetime.as_secs(),
                    ext_expires_in_secs = parsed.ext_expires_in,
                    "access token issued"
                );
                Ok(token)
            }
            (_, error) => {
                let why = refusal(
                    url,
                    status,
                    error.as_deref().unwrap_or(""),
                    parsed.error_description.as_deref().unwrap_or(""),
                );
                // The answer is the server's to write: it must not bring our secret to a log.
                let why = match &self.credential {
                    Credential::Secret(secret) if !secret.expose().is_empty() => why.replace(secret.expose(), "***"),
                    _ => why,
                };
                Err(TokenError::Refused(why))
            }
        }
    }
}

/// Why the identity platform refused, and what to do about it.
fn refusal(url: &str, status: reqwest::StatusCode, error: &str, description: &str) -> String {
    // The description's first line holds the AADSTS code and reason; the rest is trace ids.
    let reason =
        mailflow_core::format::fit(&mailflow_core::format::printable(description.lines().next().unwrap_or("")), 300);
    let advice = if description.contains("AADSTS7000215") || description.contains("AADSTS7000222") {
        "the client secret is wrong or expired: create a new one under Certificates & secrets"
    } else if description.contains("AADSTS700027") || description.contains("AADSTS700024") {
        "the client assertion was refused: upload this certificate to the app registration, and check the clock"
    } else if description.contains("AADSTS700016") {
        "no app with this `client_id` exists in the tenant: check `client_id` and `tenant_id`"
    } else if description.contains("AADSTS90002") || description.contains("AADSTS900023") {
        "no such tenant: check `tenant_id` (and `login_url` for other clouds)"
    } else {
        "check `tenant_id`, `client_id` and the credential"
    };
    let error = mailflow_core::format::fit(&mailflow_core::format::printable(error), 60);
    format!("{url} refused a token ({status} {error}: {reason}); {advice}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let credential = Credential::Secret(Secret::new("hunter2"));
        assert!(!format!("{credential:?}").contains("hunter2"));
    }

    #[test]
    fn expiry_as_a_number_or_a_string() {
        let parse = |json: &str| serde_json::from_str::<TokenResponse>(json).map(|r| (r.expires_in, r.ext_expires_in));
        let number = r#"{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"t"}"#;
        assert_eq!(parse(number).unwrap(), (Some(3599), Some(3599)));
        let text = r#"{"token_type":"Bearer","expires_in":"3599","ext_expires_in":"3599","expires_on":"1700000000","access_token":"t"}"#;
        assert_eq!(parse(text).unwrap(), (Some(3599), Some(3599)));
        assert_eq!(parse(r#"{"access_token":"t","expires_in":null}"#).unwrap(), (None, None));
        assert_eq!(parse(r#"{"access_token":"t","expires_in":"soon"}"#).unwrap(), (None, None));
        assert_eq!(parse(r#"{"access_token":"t"}"#).unwrap(), (None, None));
    }

    #[test]
    fn a_short_lived_token_is_used_for_half_its_life() {
        assert_eq!(use_for(Duration::from_secs(3599)), Duration::from_secs(3299));
        assert_eq!(use_for(Duration::from_secs(600)), Duration::from_secs(300));
        assert_eq!(use_for(Duration::from_secs(240)), Duration::from_secs(120));
        assert_eq!(use_for(Duration::from_secs(60)), Duration::from_secs(30));
        assert_eq!(use_for(Duration::ZERO), Duration::ZERO);
    }
}
