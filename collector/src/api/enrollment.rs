//! `POST /api/v1/enroll`: an enrollment secret (which decides the organization) and
//! the machine's facts in, a host key out. Enrolling again replaces the host's key.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use std::sync::Arc;
use sverka_shared::protocol::{EnrollRequest, EnrollResponse};

use super::limits::{decode_body, parse_bounded};
use super::{ApiFailure, bounded_text, content_encoding, read_body};
use crate::app::AppState;
use crate::keys;
use crate::store::Enrollment;

const ENROLL_BODY_LIMIT: usize = 64 * 1024;

pub async fn enroll(
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
    state.forget_credentials(enrolled.host_id);
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
