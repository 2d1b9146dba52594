//! `POST /api/v1/enroll`: an enrollment secret (which decides the organization) and
//! the machine's facts in, a host key out. Enrolling again replaces the host's key.
//!
//! Enrollment has a brake: each client address has a token bucket (`429` with
//! `Retry-After` when it is empty), and an organization's secrets enroll at most its
//! allowance of active hosts (`403` with the reason; see
//! [`crate::store::lifecycle`]).

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{Extensions, HeaderMap, StatusCode};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use sverka_shared::protocol::{ApiError, EnrollRequest, EnrollResponse};

use crate::api_docs::{BodyRefused, RateLimited, Unavailable};

use super::RateLimit;
use super::host_auth::Bucket;
use super::limits::{decode_body, parse_bounded};
use super::{ApiFailure, bounded_text, content_encoding, read_body};
use crate::app::AppState;
use crate::keys;
use crate::store::{Enrollment, EnrollmentAllowance};

const ENROLL_BODY_LIMIT: usize = 64 * 1024;
/// Client addresses whose buckets are kept before the refilled ones are forgotten.
const ADDRESSES_KEPT: usize = 10_000;

/// The brake on enrollment (`[enrollment]` in the configuration).
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct EnrollmentConfig {
    /// The margin over an organization's expected PCs that its secrets may enroll, in
    /// percent of them.
    pub margin_percent: u32,
    /// The margin is at least this many PCs.
    pub margin_minimum: u32,
    /// Enrollments one client address may make in a burst (a school's PCs behind one
    /// NAT address enrolling on the first morning).
    pub per_address_burst: f64,
    /// Enrollments per minute one client address may keep up.
    pub per_address_per_minute: f64,
}

impl Default for EnrollmentConfig {
    fn default() -> EnrollmentConfig {
        let allowance = EnrollmentAllowance::default();
        EnrollmentConfig {
            margin_percent: allowance.margin_percent,
            margin_minimum: allowance.margin_minimum,
            per_address_burst: 60.0,
            per_address_per_minute: 30.0,
        }
    }
}

impl EnrollmentConfig {
    pub fn allowance(&self) -> EnrollmentAllowance {
        EnrollmentAllowance {
            margin_percent: self.margin_percent,
            margin_minimum: self.margin_minimum,
        }
    }

    fn per_address(&self) -> RateLimit {
        RateLimit {
            burst: self.per_address_burst,
            per_minute: self.per_address_per_minute,
        }
    }
}

/// The client's address, when the server recorded it (requests made in-process in
/// tests have none).
pub(crate) fn client_address(extensions: &Extensions) -> Option<IpAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(address)| address.ip())
}

impl AppState {
    /// Takes one enrollment from the address's bucket, or answers 429.
    fn take_enrollment_token(&self, address: IpAddr) -> Result<(), ApiFailure> {
        let Ok(mut buckets) = self.enrollment_buckets.lock() else {
            return Ok(());
        };
        let rate = self.enrollment.per_address();
        if buckets.len() >= ADDRESSES_KEPT {
            buckets.retain(|_, bucket| !bucket.is_refilled(rate));
        }
        Bucket::take(&mut buckets, address, rate).map_err(|wait| {
            ApiFailure::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!(
                    "too many enrollments from this address (at most {} at once, then {} a \
                     minute); try again in {wait} s",
                    rate.burst, rate.per_minute
                ),
            )
            .retry_after(wait)
        })
    }
}

/// Enroll a PC
///
/// The secret decides the organization; the machine id decides the host, so an agent
/// that is reinstalled enrolls into the same host again and gets a new key.
#[utoipa::path(
    post,
    path = "/api/v1/enroll",
    tag = "agents",
    request_body(content = EnrollRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Enrolled", body = EnrollResponse),
        (status = 403, description = "Unknown, revoked or expired secret, or the organization's allowance of PCs (its expected PCs plus a margin) is used up; the message says which", body = ApiError),
        BodyRefused,
        RateLimited,
        Unavailable,
    )
)]
pub async fn enroll(
    State(state): State<Arc<AppState>>,
    extensions: Extensions,
    headers: HeaderMap,
    body: Body,
) -> Result<axum::Json<EnrollResponse>, ApiFailure> {
    if let Some(address) = client_address(&extensions) {
        state.take_enrollment_token(address)?;
    }
    let raw = read_body(body, ENROLL_BODY_LIMIT).await?;
    let plain = decode_body(&raw, content_encoding(&headers), &state.limits)?;
    let mut value = parse_bounded(&plain, &state.limits)?;
    super::limits::whole_numbers_as_integers(&mut value);
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
                allowance: state.enrollment.allowance(),
            },
            crate::now(),
        )
        .await?;
    state.forget_credentials(enrolled.host_id);
    tracing::info!(
        host = enrolled.host_id,
        organization = enrolled.organization.id,
        re_enrolled = enrolled.re_enrolled,
        "host enrolled"
    );
    Ok(axum::Json(EnrollResponse {
        host_id: enrolled.host_id,
        host_key: crate::keys::token(enrolled.host_id, &key_random),
        organization_id: enrolled.organization.id,
        organization_name: enrolled.organization.name,
    }))
}
