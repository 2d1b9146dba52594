//! The collector's agent API over HTTP (`sverka_shared::protocol`): enroll, send one
//! report, fetch the catalog. One attempt per call; when to try again is
//! `retry.rs`'s business. TLS is rustls (ring), never OpenSSL; timeouts are 10 s to
//! connect and 60 s for a whole request; every answer body is read with a bound.

use std::io::Read;
use std::time::{Duration, SystemTime};
use sverka_shared::error_chain;
use sverka_shared::protocol::{
    ApiError, CATALOG_PATH, ENROLL_PATH, EnrollRequest, EnrollResponse, REPORTS_PATH, ReportAck,
};

use crate::delivery::retry::parse_retry_after;
use crate::delivery::state::MAX_CATALOG_BYTES;

pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// How long an unused connection is kept for the next request: less than the
/// collector's idle limit (`[connections] header_seconds`, 10 s by default).
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(5);
/// Acknowledgements and error bodies are small.
const MAX_ANSWER_BYTES: u64 = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the collector URL `{url}` is not valid: {message}")]
    BadUrl { url: String, message: String },
    #[error("cannot set up HTTP: {0}")]
    Setup(String),
    #[error("cannot reach the collector at {url}: {message}")]
    Unreachable { url: String, message: String },
    #[error("the collector answered {status} to {url}: {message}")]
    Status {
        url: String,
        status: u16,
        message: String,
        retry_after: Option<Duration>,
    },
    #[error("the collector's answer to {url} is not understood: {message}")]
    BadAnswer { url: String, message: String },
}

impl ClientError {
    /// The HTTP status, when the collector answered at all.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ClientError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// What `GET /api/v1/catalog` gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatalogFetch {
    /// `304`: the cached catalog is current.
    NotModified,
    Changed {
        text: String,
        etag: String,
    },
}

#[derive(Debug)]
pub struct CollectorClient {
    server: String,
    http: reqwest::blocking::Client,
}

/// `https://host/` → `https://host`; only http and https URLs with a host.
pub fn normalize_server_url(url: &str) -> Result<String, ClientError> {
    let trimmed = url.trim().trim_end_matches('/');
    let bad = |message: &str| ClientError::BadUrl {
        url: url.to_string(),
        message: message.to_string(),
    };
    let parsed = reqwest::Url::parse(trimmed).map_err(|error| bad(&error.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad("use http:// or https://"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(bad("it has no host"));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(bad("give the collector's base URL, without ? or #"));
    }
    Ok(trimmed.to_string())
}

/// Refuses a plain `http://` collector unless the admin allowed it: the enrollment
/// secret, the host key and every report would cross the network unencrypted.
pub fn require_https(url: &str, allow_http: bool) -> Result<(), ClientError> {
    let server = normalize_server_url(url)?;
    if allow_http || !server.to_ascii_lowercase().starts_with("http://") {
        return Ok(());
    }
    Err(ClientError::BadUrl {
        url: url.to_string(),
        message: "plain HTTP would send the enrollment secret, the host key and the reports unencrypted: use https://, or allow it explicitly (--allow-http, `allow_http = true` in agent.toml)".into(),
    })
}

impl CollectorClient {
    /// A client for the collector at `server`. `pinned_ca_pem` (PEM), for a collector
    /// whose certificate the authority's own CA issued, is then the only trust anchor:
    /// the system's CAs are not consulted for this collector.
    pub fn new(server: &str, pinned_ca_pem: Option<&[u8]>) -> Result<CollectorClient, ClientError> {
        let server = normalize_server_url(server)?;
        // reqwest is built without a default crypto provider; ring is ours. Installing
        // fails harmlessly when a provider is already installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::blocking::Client::builder();
        if let Some(pem) = pinned_ca_pem {
            builder = builder.tls_certs_only(parse_ca_pem(pem)?);
        }
        let http = builder
            .user_agent(concat!("sverka-agent/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            // Dropped before the collector closes an idle connection (after 10 s by
            // default), so a report never goes out on a connection being closed.
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            // A redirected POST would arrive as a GET; the admin fixes the URL instead.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|error| ClientError::Setup(error_chain(&error)))?;
        Ok(CollectorClient { server, http })
    }

    pub fn server(&self) -> &str {
        &self.server
    }

    /// `POST /api/v1/enroll`.
    pub fn enroll(&self, request: &EnrollRequest) -> Result<EnrollResponse, ClientError> {
        let url = format!("{}{ENROLL_PATH}", self.server);
        let body =
            serde_json::to_vec(request).map_err(|error| ClientError::Setup(error.to_string()))?;
        let response = self
            .http
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .map_err(|error| unreachable(&url, &error))?;
        let response = success(&url, response)?;
        read_json(&url, response)
    }

    /// `POST /api/v1/reports` with a gzip-compressed [`sverka_shared::protocol::ReportUpload`].
    /// Only an acknowledgement of this very report counts.
    pub fn send_report(
        &self,
        host_key: &str,
        report_id: &str,
        gzip_body: Vec<u8>,
    ) -> Result<ReportAck, ClientError> {
        let url = format!("{}{REPORTS_PATH}", self.server);
        let response = self
            .http
            .post(&url)
            .bearer_auth(host_key)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::CONTENT_ENCODING, "gzip")
            .body(gzip_body)
            .send()
            .map_err(|error| unreachable(&url, &error))?;
        let response = success(&url, response)?;
        let ack: ReportAck = read_json(&url, response)?;
        if ack.report_id != report_id {
            return Err(ClientError::BadAnswer {
                url,
                message: format!(
                    "it acknowledged report {} instead of {report_id}",
                    ack.report_id
                ),
            });
        }
        Ok(ack)
    }

    /// `GET /api/v1/catalog`, conditional on the ETag held.
    pub fn fetch_catalog(
        &self,
        host_key: &str,
        etag: Option<&str>,
    ) -> Result<CatalogFetch, ClientError> {
        let url = format!("{}{CATALOG_PATH}", self.server);
        let mut request = self.http.get(&url).bearer_auth(host_key);
        if let Some(etag) = etag {
            request = request.header(reqwest::header::IF_NONE_MATCH, etag);
        }
        let response = request.send().map_err(|error| unreachable(&url, &error))?;
        if response.status() == reqwest::StatusCode::NOT_MODIFIED {
            return Ok(CatalogFetch::NotModified);
        }
        let response = success(&url, response)?;
        let etag = header_text(&response, reqwest::header::ETAG).unwrap_or_default();
        let bytes = read_bounded(&url, response, MAX_CATALOG_BYTES)?;
        let text = String::from_utf8(bytes).map_err(|_| ClientError::BadAnswer {
            url: url.clone(),
            message: "the catalog is not UTF-8".into(),
        })?;
        Ok(CatalogFetch::Changed { text, etag })
    }
}

/// The certificates of a PEM bundle; at least one.
pub fn parse_ca_pem(pem: &[u8]) -> Result<Vec<reqwest::Certificate>, ClientError> {
    let certificates = reqwest::Certificate::from_pem_bundle(pem)
        .map_err(|error| ClientError::Setup(format!("the CA certificate is not PEM: {error}")))?;
    if certificates.is_empty() {
        return Err(ClientError::Setup(
            "the CA certificate file holds no certificate".into(),
        ));
    }
    Ok(certificates)
}

fn unreachable(url: &str, error: &reqwest::Error) -> ClientError {
    // reqwest's own message repeats the URL; the cause is in its sources.
    let mut message = match std::error::Error::source(error) {
        Some(cause) => error_chain(cause),
        None => error.to_string(),
    };
    if message.contains("certificate") {
        message.push_str(
            " (when the collector's certificate comes from your own CA, enroll with --ca-cert FILE)",
        );
    }
    ClientError::Unreachable {
        url: url.to_string(),
        message,
    }
}

fn header_text(
    response: &reqwest::blocking::Response,
    name: reqwest::header::HeaderName,
) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::to_string)
}

/// A 2xx answer, or the error it carries (with `Retry-After` when given).
fn success(
    url: &str,
    response: reqwest::blocking::Response,
) -> Result<reqwest::blocking::Response, ClientError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let retry_after = header_text(&response, reqwest::header::RETRY_AFTER)
        .and_then(|value| parse_retry_after(&value, SystemTime::now()));
    if status.is_redirection() {
        let location = header_text(&response, reqwest::header::LOCATION).unwrap_or_default();
        return Err(ClientError::Status {
            url: url.to_string(),
            status: status.as_u16(),
            message: format!("redirected to `{location}`: enroll with the collector's own URL"),
            retry_after,
        });
    }
    let body = read_bounded(url, response, MAX_ANSWER_BYTES).unwrap_or_default();
    let message = match serde_json::from_slice::<ApiError>(&body) {
        Ok(error) => format!("{}: {}", error.error, error.message),
        Err(_) => {
            let text = String::from_utf8_lossy(&body);
            let text: String = text.trim().chars().take(200).collect();
            if text.is_empty() {
                status.canonical_reason().unwrap_or("error").to_string()
            } else {
                text
            }
        }
    };
    Err(ClientError::Status {
        url: url.to_string(),
        status: status.as_u16(),
        message,
        retry_after,
    })
}

fn read_bounded(
    url: &str,
    response: reqwest::blocking::Response,
    limit: u64,
) -> Result<Vec<u8>, ClientError> {
    let mut bytes = Vec::new();
    response
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|error| ClientError::Unreachable {
            url: url.to_string(),
            message: format!("reading the answer: {error}"),
        })?;
    if bytes.len() as u64 > limit {
        return Err(ClientError::BadAnswer {
            url: url.to_string(),
            message: format!("the answer is larger than {limit} bytes"),
        });
    }
    Ok(bytes)
}

fn read_json<T: for<'de> serde::Deserialize<'de>>(
    url: &str,
    response: reqwest::blocking::Response,
) -> Result<T, ClientError> {
    let bytes = read_bounded(url, response, MAX_ANSWER_BYTES)?;
    serde_json::from_slice(&bytes).map_err(|error| ClientError::BadAnswer {
        url: url.to_string(),
        message: error.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tls_client_builds_with_the_ring_provider() {
        // reqwest is built without a default provider and would panic without ours.
        let client = CollectorClient::new("https://sverka.edu.example/", None).unwrap();
        assert_eq!(client.server(), "https://sverka.edu.example");
    }

    #[test]
    fn an_unreachable_collector_is_a_retryable_error_naming_the_cause() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        drop(listener);
        let client = CollectorClient::new(&format!("http://{address}"), None).unwrap();
        let error = client.send_report("1.key", "id", Vec::new()).unwrap_err();
        assert_eq!(error.status(), None);
        let text = error.to_string();
        assert!(
            text.starts_with("cannot reach the collector at http://"),
            "{text}"
        );
        assert!(text.contains("refused"), "{text}");
        assert_eq!(
            text.matches("/api/v1/reports").count(),
            1,
            "the URL is named once: {text}"
        );
    }

    #[test]
    fn ca_files_must_hold_certificates() {
        assert!(parse_ca_pem(b"").is_err());
        assert!(parse_ca_pem(b"not a certificate").is_err());
        let error = CollectorClient::new("https://x", Some(b"-----BEGIN CERTIFICATE-----\nAAAA\n"))
            .unwrap_err();
        assert!(error.to_string().contains("CA certificate"), "{error}");
    }

    #[test]
    fn server_urls() {
        let ok = |url: &str| normalize_server_url(url).unwrap();
        assert_eq!(
            ok("https://sverka.edu.example/"),
            "https://sverka.edu.example"
        );
        assert_eq!(ok(" http://10.0.0.5:8080 "), "http://10.0.0.5:8080");
        assert_eq!(
            ok("https://example.org/sverka//"),
            "https://example.org/sverka"
        );
        for bad in ["", "sverka.example", "ftp://x", "http://", "https://x/?a=1"] {
            assert!(normalize_server_url(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn plain_http_needs_to_be_allowed() {
        assert!(require_https("https://sverka.edu.example", false).is_ok());
        assert!(require_https("http://10.0.0.5:8440", true).is_ok());
        let error = require_https("HTTP://10.0.0.5:8440", false).unwrap_err();
        assert!(error.to_string().contains("allow_http"), "{error}");
        assert!(require_https("ftp://x", true).is_err());
    }
}
