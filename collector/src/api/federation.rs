//! An upstream's side of federation: a lower collector, holding a link's secret
//! (`Authorization: Bearer <id>.<64 hex>`), reads what the link allows
//! (`GET /api/v1/federation/link`) and sends its figures
//! (`POST /api/v1/federation/figures`, `sverka_shared::federation`).
//!
//! A message is checked whole before anything is stored (bounds, keys, parent chains,
//! counts); it can only write under the link's organization; a revoked link is
//! refused, also in the middle of a send (the store reads the link again in the
//! transaction). What the upstream does not take (fields of a newer protocol, PC names
//! on a counts-only link) is left out and named in the answer.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use std::sync::Arc;
use sverka_shared::federation::{
    Detail, FEDERATION_PROTOCOL, FiguresAck, FiguresMessage, LinkDescription, READABLE_PROTOCOLS,
};

use super::limits::{RequestLimits, check_string_lengths, decode_body, parse_typed};
use super::{ApiFailure, content_encoding, read_body};
use crate::api_docs::{BodyRefused, Unauthorized, Unavailable};
use crate::app::AppState;
use crate::keys;
use crate::store::LinkCredentials;
use sverka_shared::protocol::ApiError;

/// The most a message may be on the wire; a region's thousand schools with a year of
/// frozen weeks is a few megabytes of JSON before gzip.
const FIGURES_BODY_LIMIT: usize = 16 * 1024 * 1024;
const FIGURES_DECOMPRESSED_LIMIT: usize = 128 * 1024 * 1024;
/// Figures counted further ahead of this upstream's clock are refused (a clock that
/// far off, or a forged time meant to block later figures).
const FUTURE_TOLERANCE_SECONDS: i64 = 300;

fn unauthorized(message: &str) -> ApiFailure {
    ApiFailure::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
}

/// The link whose secret the request carries; 401 for none or a wrong one, 403 for a
/// revoked one.
async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<LinkCredentials, ApiFailure> {
    let token = keys::bearer(headers)
        .ok_or_else(|| unauthorized("a link secret is required (Authorization: Bearer)"))?;
    let (id, random) =
        keys::parse_token(token).ok_or_else(|| unauthorized("not a valid link secret"))?;
    let link = state
        .store
        .link_credentials(id)
        .await?
        .filter(|link| keys::same_hash(&keys::hash(random), &link.secret_hash))
        .ok_or_else(|| unauthorized("not a valid link secret"))?;
    if link.revoked_at.is_some() {
        return Err(ApiFailure::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("link {} was revoked", link.id),
        ));
    }
    Ok(link)
}

/// What a link secret allows
///
/// For a lower collector's administrator, before anything is sent.
#[utoipa::path(
    get,
    path = "/api/v1/federation/link",
    tag = "federation",
    security(("linkSecret" = [])),
    responses(
        (status = 200, description = "The link", body = LinkDescription),
        (status = 403, description = "The link was revoked", body = ApiError),
        (status = 404, description = "The link's organization no longer exists", body = ApiError),
        Unauthorized,
        Unavailable,
    )
)]
pub async fn describe_link(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<axum::Json<LinkDescription>, ApiFailure> {
    let link = authenticate(&state, &headers).await?;
    let organization = state
        .store
        .organization(link.organization_id)
        .await?
        .ok_or_else(|| {
            ApiFailure::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "the link's organization is gone",
            )
        })?;
    Ok(axum::Json(LinkDescription {
        link_id: link.id,
        organization_id: organization.id,
        organization: organization.name,
        detail: link.detail,
        protocols: READABLE_PROTOCOLS.to_vec(),
    }))
}

/// Send a lower collector's figures
#[utoipa::path(
    post,
    path = "/api/v1/federation/figures",
    tag = "federation",
    security(("linkSecret" = [])),
    request_body(content = FiguresMessage, content_type = "application/json"),
    responses(
        (status = 200, description = "Stored (or held before)", body = FiguresAck),
        (status = 403, description = "The link was revoked", body = ApiError),
        Unauthorized,
        BodyRefused,
        Unavailable,
    )
)]
pub async fn receive_figures(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<axum::Json<FiguresAck>, ApiFailure> {
    let link = authenticate(&state, &headers).await?;
    let raw = read_body(body, FIGURES_BODY_LIMIT).await?;
    let limits = RequestLimits {
        max_body_bytes: FIGURES_BODY_LIMIT,
        max_decompressed_bytes: FIGURES_DECOMPRESSED_LIMIT,
        ..RequestLimits::default()
    };
    let plain = decode_body(&raw, content_encoding(&headers), &limits)?;
    check_string_lengths(&plain, limits.max_string_bytes)?;
    let mut message: FiguresMessage = parse_typed(&plain, "a figures message")?;
    message.check().map_err(ApiFailure::unprocessable)?;
    let now = crate::now();
    if message.generated_at > now + FUTURE_TOLERANCE_SECONDS {
        return Err(ApiFailure::unprocessable(format!(
            "generated_at is {} s ahead of this collector's clock",
            message.generated_at - now
        )));
    }
    let mut refused: Vec<String> = message
        .not_understood
        .keys()
        .map(|field| format!("{field}: not read by protocol {FEDERATION_PROTOCOL}"))
        .collect();
    if link.detail == Detail::Counts && message.violations.iter().any(|row| !row.hosts.is_empty()) {
        for row in &mut message.violations {
            row.hosts.clear();
        }
        refused.push("PC names: this link receives counts only".into());
    }
    let outcome = state
        .store
        .store_federated_figures(link.id, &message, now)
        .await?;
    tracing::info!(
        link = link.id,
        message = %message.message_id,
        current_applied = outcome.current_applied,
        weeks_stored = outcome.weeks_stored,
        weeks_known = outcome.weeks_known,
        refused = refused.len(),
        "federated figures received"
    );
    Ok(axum::Json(FiguresAck {
        message_id: message.message_id,
        current_applied: outcome.current_applied,
        weeks_stored: outcome.weeks_stored,
        weeks_known: outcome.weeks_known,
        newest_week: outcome.newest_week,
        refused,
    }))
}
