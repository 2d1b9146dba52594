//! The agent API on axum (see `sverka_shared::protocol` and `docs/agent-api.yaml`).
//!
//! Every handler answers untrusted input with a 4xx and a JSON [`ApiError`]; a
//! database that is locked, full or gone answers 503 with `Retry-After`, so agents
//! keep their spool and try again.

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use sverka_shared::protocol::{
    ApiError, CATALOG_PATH, ENROLL_PATH, EnrollRequest, EnrollResponse, REPORTS_PATH, ReportAck,
};
use sverka_shared::report::SCAN_SCHEMA;
use sverka_shared::{Inventory, Observation};

use crate::catalog::CatalogState;
use crate::evaluate::{Evaluator, host_findings};
use crate::keys;
use crate::limits::{
    LimitError, RequestLimits, check_string_lengths, decode_body, parse_bounded, parse_typed,
};
use crate::store::{
    Enrollment, EvaluatedFindings, HostCredentials, ReportRecord, Store, StoreError,
};

/// How long a checked host key is trusted without asking the database again.
const CREDENTIAL_TTL: Duration = Duration::from_secs(30);
/// What a 503 asks agents to wait, in seconds.
const UNAVAILABLE_RETRY_SECONDS: u64 = 15;
const ENROLL_BODY_LIMIT: usize = 64 * 1024;
/// Reports decoded and evaluated at once; the rest wait their turn.
const REPORTS_IN_FLIGHT: usize = 256;

/// Per-host request budget: a token bucket.
#[derive(Debug, Clone, Copy, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimit {
    /// Requests a host may make in a burst (a spool emptied after an outage).
    pub burst: f64,
    /// Requests per minute a host may keep up.
    pub per_minute: f64,
}

impl Default for RateLimit {
    fn default() -> RateLimit {
        RateLimit {
            burst: 120.0,
            per_minute: 60.0,
        }
    }
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// Shared by every request.
#[derive(Debug)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub limits: RequestLimits,
    pub rate: RateLimit,
    catalog: RwLock<Arc<CatalogState>>,
    evaluator: Evaluator,
    credentials: Mutex<HashMap<i64, (HostCredentials, Instant)>>,
    buckets: Mutex<HashMap<i64, Bucket>>,
    in_flight: tokio::sync::Semaphore,
}

impl AppState {
    pub fn new(
        store: Arc<dyn Store>,
        catalog: CatalogState,
        limits: RequestLimits,
        rate: RateLimit,
    ) -> AppState {
        AppState {
            store,
            limits,
            rate,
            catalog: RwLock::new(Arc::new(catalog)),
            evaluator: Evaluator::default(),
            credentials: Mutex::new(HashMap::new()),
            buckets: Mutex::new(HashMap::new()),
            in_flight: tokio::sync::Semaphore::new(REPORTS_IN_FLIGHT),
        }
    }

    pub fn catalog(&self) -> Arc<CatalogState> {
        match self.catalog.read() {
            Ok(catalog) => catalog.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn replace_catalog(&self, catalog: CatalogState) {
        let catalog = Arc::new(catalog);
        match self.catalog.write() {
            Ok(mut current) => *current = catalog,
            Err(poisoned) => *poisoned.into_inner() = catalog,
        }
    }

    /// Reloads the catalog when the store holds a newer revision (another process or
    /// the CLI changed it).
    pub async fn refresh_catalog(&self) -> Result<bool, crate::catalog::CatalogLoadError> {
        let stored = self.store.current_catalog().await?;
        let revision = stored.as_ref().map_or(0, |stored| stored.revision);
        if revision == self.catalog().revision {
            return Ok(false);
        }
        self.replace_catalog(CatalogState::build(stored.as_ref())?);
        Ok(true)
    }

    fn take_token(&self, host_id: i64) -> Result<(), ApiFailure> {
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        let now = Instant::now();
        let rate = self.rate;
        let bucket = buckets.entry(host_id).or_insert(Bucket {
            tokens: rate.burst,
            updated: now,
        });
        let elapsed = now.duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate.per_minute / 60.0).min(rate.burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = ((1.0 - bucket.tokens) * 60.0 / rate.per_minute.max(0.001)).ceil() as u64;
            Err(ApiFailure::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many requests from this host",
            )
            .retry_after(wait.max(1)))
        }
    }

    async fn authenticate(&self, headers: &HeaderMap) -> Result<HostCredentials, ApiFailure> {
        let unauthorized = |message: &str| {
            ApiFailure::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                message.to_string(),
            )
        };
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .ok_or_else(|| unauthorized("a host key is required (Authorization: Bearer ...)"))?;
        let (host_id, random) =
            keys::parse_token(token).ok_or_else(|| unauthorized("not a host key"))?;
        let presented = keys::hash(random);
        let cached = self.credentials.lock().ok().and_then(|cache| {
            cache
                .get(&host_id)
                .filter(|(_, checked)| checked.elapsed() < CREDENTIAL_TTL)
                .map(|(credentials, _)| credentials.clone())
        });
        if let Some(credentials) = cached
            && keys::same_hash(&credentials.key_hash, &presented)
        {
            return Ok(credentials);
        }
        let credentials = self
            .store
            .host_credentials(host_id)
            .await
            .map_err(ApiFailure::from)?
            .ok_or_else(|| unauthorized("this host key is not valid; enroll the agent again"))?;
        if !keys::same_hash(&credentials.key_hash, &presented) {
            return Err(unauthorized(
                "this host key is not valid; enroll the agent again",
            ));
        }
        if let Ok(mut cache) = self.credentials.lock() {
            cache.insert(host_id, (credentials.clone(), Instant::now()));
        }
        Ok(credentials)
    }
}

/// An error answer: status, a machine-readable code and a message for people.
#[derive(Debug)]
pub struct ApiFailure {
    status: StatusCode,
    error: &'static str,
    message: String,
    retry_after: Option<u64>,
}

impl ApiFailure {
    fn new(status: StatusCode, error: &'static str, message: impl Into<String>) -> ApiFailure {
        ApiFailure {
            status,
            error,
            message: message.into(),
            retry_after: None,
        }
    }

    fn retry_after(mut self, seconds: u64) -> ApiFailure {
        self.retry_after = Some(seconds);
        self
    }

    fn unprocessable(message: impl Into<String>) -> ApiFailure {
        ApiFailure::new(StatusCode::UNPROCESSABLE_ENTITY, "unprocessable", message)
    }
}

impl From<StoreError> for ApiFailure {
    fn from(error: StoreError) -> ApiFailure {
        match error {
            StoreError::Unavailable(message) => {
                tracing::warn!("database unavailable: {message}");
                ApiFailure::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the collector cannot store this now; try again later",
                )
                .retry_after(UNAVAILABLE_RETRY_SECONDS)
            }
            StoreError::NotFound(what) => ApiFailure::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("{what} not found"),
            ),
            StoreError::Rejected(message) => {
                ApiFailure::new(StatusCode::FORBIDDEN, "forbidden", message)
            }
            StoreError::Invalid(message) => ApiFailure::unprocessable(message),
            StoreError::Database(message) => {
                tracing::error!("database error: {message}");
                ApiFailure::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "the collector failed to store this",
                )
            }
        }
    }
}

impl From<LimitError> for ApiFailure {
    fn from(error: LimitError) -> ApiFailure {
        let (status, code) = match &error {
            LimitError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            LimitError::UnsupportedEncoding(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_encoding")
            }
            LimitError::BadCompression(_) | LimitError::BadJson(_) => {
                (StatusCode::BAD_REQUEST, "bad_request")
            }
            LimitError::Shape(_) => (StatusCode::UNPROCESSABLE_ENTITY, "unprocessable"),
        };
        ApiFailure::new(status, code, error.to_string())
    }
}

impl IntoResponse for ApiFailure {
    fn into_response(self) -> Response {
        let body = ApiError {
            error: self.error.to_string(),
            message: self.message,
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(seconds) = self.retry_after
            && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

/// The agent API and a health check.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route(ENROLL_PATH, post(enroll))
        .route(REPORTS_PATH, post(receive_report))
        .route(CATALOG_PATH, get(catalog))
        .route("/healthz", get(health))
        .fallback(not_found)
        .with_state(state)
}

async fn health() -> &'static str {
    "ok"
}

async fn not_found() -> ApiFailure {
    ApiFailure::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

async fn read_body(body: Body, limit: usize) -> Result<axum::body::Bytes, ApiFailure> {
    axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiFailure::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the body is larger than {limit} bytes or was cut off"),
        )
    })
}

fn content_encoding(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::CONTENT_ENCODING)
        .map(|value| value.to_str().unwrap_or("?"))
}

fn bounded_text(field: &str, value: &str, max: usize, required: bool) -> Result<(), ApiFailure> {
    if required && value.trim().is_empty() {
        return Err(ApiFailure::unprocessable(format!("{field} is empty")));
    }
    if value.len() > max {
        return Err(ApiFailure::unprocessable(format!(
            "{field} is longer than {max} bytes"
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(ApiFailure::unprocessable(format!(
            "{field} contains control characters"
        )));
    }
    Ok(())
}

async fn enroll(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<axum::Json<EnrollResponse>, ApiFailure> {
    let raw = read_body(body, ENROLL_BODY_LIMIT).await?;
    let plain = decode_body(&raw, content_encoding(&headers), &state.limits)?;
    let value = parse_bounded(&plain, &state.limits)?;
    let request: EnrollRequest = serde_json::from_value(value)
        .map_err(|error| ApiFailure::unprocessable(format!("not an enrollment: {error}")))?;
    bounded_text("machine_id", &request.machine_id, 256, true)?;
    bounded_text("hostname", &request.hostname, 255, true)?;
    bounded_text("os_id", &request.os_id, 64, false)?;
    bounded_text("os_name", &request.os_name, 256, false)?;
    bounded_text("agent_version", &request.agent_version, 64, false)?;
    let (secret_id, secret_random) = keys::parse_token(&request.secret).ok_or_else(|| {
        ApiFailure::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "not a valid enrollment secret",
        )
    })?;
    let (key_random, key_hash) = keys::generate();
    let enrolled = state
        .store
        .enroll(
            Enrollment {
                secret_id,
                secret_hash: keys::hash(secret_random),
                machine_id: request.machine_id.trim().to_string(),
                hostname: request.hostname,
                os_id: request.os_id,
                os_name: request.os_name,
                agent_version: request.agent_version,
                key_hash,
            },
            crate::now(),
        )
        .await?;
    if let Ok(mut cache) = state.credentials.lock() {
        cache.remove(&enrolled.host_id);
    }
    tracing::info!(
        host = enrolled.host_id,
        organization = enrolled.organization.id,
        re_enrolled = enrolled.re_enrolled,
        "host enrolled"
    );
    Ok(axum::Json(EnrollResponse {
        host_id: enrolled.host_id,
        host_key: format!("{}.{key_random}", enrolled.host_id),
        organization_id: enrolled.organization.id,
        organization_name: enrolled.organization.name,
    }))
}

/// The scan time, trusted only as far as it is plausible: never after the moment the
/// report arrived, and the arrival time when it cannot be read.
fn scanned_at(text: &str, received_at: i64) -> i64 {
    humantime::parse_rfc3339_weak(text.trim_end_matches('Z'))
        .ok()
        .and_then(|time| time.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|elapsed| elapsed.as_secs() as i64)
        .map_or(received_at, |seconds| seconds.min(received_at))
}

/// A [`sverka_shared::protocol::ReportUpload`] as received: the inventory stays raw JSON until the collector
/// knows it needs it, so a report whose inventory digest it already holds costs no more
/// to decode than a check-in.
#[derive(Debug, serde::Deserialize)]
struct IncomingReport {
    report_id: String,
    scan: sverka_shared::ScanReport,
    inventory_digest: String,
    #[serde(default)]
    inventory: Option<Box<serde_json::value::RawValue>>,
    #[serde(default)]
    evidence: Vec<Observation>,
}

fn check_upload(
    upload: &IncomingReport,
    credentials: &HostCredentials,
    limits: &RequestLimits,
) -> Result<(), ApiFailure> {
    let id = uuid::Uuid::parse_str(&upload.report_id)
        .map_err(|_| ApiFailure::unprocessable("report_id is not a UUID"))?;
    if id.is_nil() {
        return Err(ApiFailure::unprocessable("report_id is the nil UUID"));
    }
    if upload.scan.schema != SCAN_SCHEMA {
        return Err(ApiFailure::unprocessable(format!(
            "report schema {} is not supported (this collector reads schema {SCAN_SCHEMA})",
            upload.scan.schema
        )));
    }
    if upload.inventory_digest.len() != 64
        || !upload
            .inventory_digest
            .bytes()
            .all(|byte| byte.is_ascii_hexdigit())
    {
        return Err(ApiFailure::unprocessable(
            "inventory_digest is not a SHA-256 in hex",
        ));
    }
    if upload.scan.findings.len() > limits.max_findings {
        return Err(ApiFailure::unprocessable(format!(
            "{} findings in one report (at most {})",
            upload.scan.findings.len(),
            limits.max_findings
        )));
    }
    let longest_list = upload.scan.errors.len().max(upload.scan.skipped.len());
    if longest_list > limits.max_array_items {
        return Err(ApiFailure::unprocessable(format!(
            "a list of {longest_list} items (at most {})",
            limits.max_array_items
        )));
    }
    if upload.evidence.len() > limits.max_evidence {
        return Err(ApiFailure::unprocessable(format!(
            "{} evidence observations in one report (at most {})",
            upload.evidence.len(),
            limits.max_evidence
        )));
    }
    bounded_text("hostname", &upload.scan.host.hostname, 255, false)?;
    if let Some(machine_id) = &upload.scan.host.machine_id
        && machine_id.trim() != credentials.machine_id
    {
        return Err(ApiFailure::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this report describes another machine than the one this key was issued to",
        ));
    }
    Ok(())
}

async fn receive_report(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<axum::Json<ReportAck>, ApiFailure> {
    let credentials = state.authenticate(&headers).await?;
    state.take_token(credentials.host_id)?;
    // Bounds how many reports are decoded and evaluated at once, and so the memory
    // a boot storm can take.
    let _permit = state.in_flight.acquire().await.map_err(|_| {
        ApiFailure::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the collector is shutting down",
        )
        .retry_after(UNAVAILABLE_RETRY_SECONDS)
    })?;
    let raw = read_body(body, state.limits.max_body_bytes).await?;
    let plain = decode_body(&raw, content_encoding(&headers), &state.limits)?;
    drop(raw);
    check_string_lengths(&plain, state.limits.max_string_bytes)?;
    let upload: IncomingReport = parse_typed(&plain, "a report")?;
    check_upload(&upload, &credentials, &state.limits)?;

    let received_at = crate::now();
    let catalog = state.catalog();
    let digest = upload.inventory_digest.clone();
    let cache_key = (digest.clone(), catalog.revision);
    let mut inventory_wanted = false;
    // A digest the collector already evaluated needs neither checking nor storing
    // again: identical PCs cost one copy and one evaluation.
    let (inventory_record, matched, fresh) = match state.evaluator.cached(&cache_key) {
        Some(matched) => (None, Some(matched), false),
        None => match &upload.inventory {
            Some(raw) => {
                let observations: Vec<Observation> =
                    parse_typed(raw.get().as_bytes(), "an inventory")?;
                if observations.len() > state.limits.max_array_items {
                    return Err(ApiFailure::unprocessable(format!(
                        "an inventory of {} items (at most {})",
                        observations.len(),
                        state.limits.max_array_items
                    )));
                }
                let inventory = Inventory::from_observations(&observations);
                if inventory.digest != digest {
                    return Err(ApiFailure::unprocessable(
                        "inventory_digest does not match the inventory sent",
                    ));
                }
                let matched = state
                    .evaluator
                    .evaluate_inventory(&catalog.matcher, &inventory.observations);
                let body = serde_json::to_string(&inventory.observations)
                    .map_err(|error| ApiFailure::unprocessable(error.to_string()))?;
                (
                    Some((body, inventory.observations.len() as i64)),
                    Some(matched),
                    true,
                )
            }
            None => match state.store.inventory(&digest).await? {
                Some(body) => {
                    let observations: Vec<Observation> =
                        serde_json::from_str(&body).unwrap_or_default();
                    let matched = state
                        .evaluator
                        .evaluate_inventory(&catalog.matcher, &observations);
                    (None, Some(matched), true)
                }
                None => {
                    inventory_wanted = true;
                    (None, None, false)
                }
            },
        },
    };
    let findings = matched.as_ref().map(|matched| {
        if upload.evidence.is_empty() {
            // Most PCs: the findings follow from the inventory alone, shared by every PC
            // with the same inventory.
            state.evaluator.inventory_findings(&cache_key, || {
                EvaluatedFindings::new(host_findings(&catalog.matcher, matched, &[]))
            })
        } else {
            EvaluatedFindings::new(host_findings(&catalog.matcher, matched, &upload.evidence))
        }
    });
    let evidence = serde_json::to_string(&upload.evidence)
        .map_err(|error| ApiFailure::unprocessable(error.to_string()))?;
    let host = &upload.scan.host;
    let record = ReportRecord {
        report_id: upload.report_id.clone(),
        host_id: credentials.host_id,
        received_at,
        scanned_at: scanned_at(&upload.scan.scanned_at, received_at),
        hostname: host.hostname.clone(),
        os_id: host.os_id.chars().take(64).collect(),
        os_name: host.os_name.chars().take(256).collect(),
        agent_version: host.agent_version.chars().take(64).collect(),
        scan_errors: upload.scan.errors.len() as i64,
        inventory_digest: digest,
        inventory: inventory_record,
        evidence,
        catalog_revision: catalog.revision,
        findings,
    };
    drop(plain);
    let outcome = state.store.record_report(record).await?;
    // Only a stored inventory may be taken as known.
    if fresh && let Some(matched) = matched {
        state.evaluator.remember(cache_key, matched);
    }
    Ok(axum::Json(ReportAck {
        report_id: upload.report_id,
        duplicate: outcome.duplicate,
        inventory_wanted,
        catalog_etag: catalog.etag.clone(),
    }))
}

async fn catalog(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Response, ApiFailure> {
    state.authenticate(&headers).await?;
    let catalog = state.catalog();
    let etag = HeaderValue::from_str(&catalog.etag)
        .map_err(|_| ApiFailure::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "etag"))?;
    let unchanged = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.split(',').any(|tag| tag.trim() == catalog.etag));
    if unchanged {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response());
    }
    Ok((
        StatusCode::OK,
        [
            (header::ETAG, etag),
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/toml; charset=utf-8"),
            ),
        ],
        catalog.toml.clone(),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_times_are_never_later_than_arrival() {
        assert_eq!(
            scanned_at("2026-11-22T08:00:00Z", 2_000_000_000),
            1_795_334_400
        );
        assert_eq!(
            scanned_at("2099-01-01T00:00:00Z", 1_795_334_400),
            1_795_334_400
        );
        assert_eq!(scanned_at("yesterday", 42), 42);
    }
}
